"""Eq. (3) [BK23], the kernel constraint of horizontal-flip GCNN layers: a convolution with
kernel psi (c1 x c0 x k x k), with S_2 acting by tau(P0 x) on its input and tau(P1 y) on its
output (channel permutations P0, P1 of order <= 2, tau the horizontal flip), is equivariant iff
tau(psi) = P1 psi P0^T.

How the claim is checked, exactly: for generated channel permutations (the three special cases
of Section 2.2: P0 = P1 = I, lifting P0 = I with fixed-point-free P1, regular P0 and P1, and
random mixtures of invariant and regular channels) and kernel sizes k = 1..4:

* a random integer kernel is projected with :func:`identifiable.kernels.project_flip_kernel`
  (exact Fractions); the projection must satisfy (3) (:func:`check_flip_kernel`, exact), be
  idempotent, and be orthogonal (<psi - P psi, P phi> = 0 exactly for another projected phi);
* the layer with the projected kernel must be proved equivariant by
  :func:`check_conv_equivariance` (exact integer convolution of all c0 * H * W basis images;
  linearity makes this a proof for every image of that size), with valid padding and, for odd
  k, symmetric "same" padding;
* the unprojected kernel (when it violates (3)) must be refuted by both checks, the
  convolution check with a basis image that re-checks: "only if".

Status: ``checked``, not ``proved``: every case is decided exactly, but the claim quantifies
over all kernels and image sizes and the library verifies finitely many of them.
"""

from fractions import Fraction

import numpy as np

from identifiable.claims import claim
from identifiable.kernels import (
    check_conv_equivariance,
    check_flip_kernel,
    conv2d,
    flip,
    gcnn_permutation,
    project_flip_kernel,
)
from identifiable.verdict import Verdict


def _perm_pair(rng, case):
    if case == "symmetric":
        c0 = c1 = int(rng.integers(1, 4))
        return gcnn_permutation(c0, 0), gcnn_permutation(c1, 0)
    if case == "lifting":
        return gcnn_permutation(int(rng.integers(1, 4)), 0), \
            gcnn_permutation(0, int(rng.integers(1, 3)))
    if case == "regular":
        return gcnn_permutation(0, int(rng.integers(1, 3))), \
            gcnn_permutation(0, int(rng.integers(1, 3)))
    P0 = gcnn_permutation(int(rng.integers(0, 3)), int(rng.integers(1, 3)))
    P1 = gcnn_permutation(int(rng.integers(0, 3)), int(rng.integers(1, 3)))
    q0, q1 = rng.permutation(P0.shape[0]), rng.permutation(P1.shape[0])
    return P0[np.ix_(q0, q0)], P1[np.ix_(q1, q1)]  # relabelled channels, still involutions


def _act(x, P):
    return np.einsum("ab,bhw->ahw", P, x)[..., ::-1]


@claim(id="bk23.eq-3", source="[BK23] eq. (3) (Section 2.2)",
       statement="a conv layer is flip-equivariant for channel permutations P0, P1 of order "
                 "<= 2 iff tau(psi) = P1 psi P0^T; the projection onto (3) is orthogonal",
       expected="checked", method="exact: integer convolution of basis images, Fractions")
def check() -> Verdict:
    rng = np.random.default_rng(3)
    n_yes = n_no = 0
    for trial in range(16):
        case = ("symmetric", "lifting", "regular", "mixed")[trial % 4]
        P0, P1 = _perm_pair(rng, case)
        k = int(rng.integers(1, 5))
        shape = (P1.shape[0], P0.shape[0], k, k)
        raw = rng.integers(-4, 5, size=shape)
        proj = project_flip_kernel(raw, P0, P1)
        other = project_flip_kernel(rng.integers(-4, 5, size=shape), P0, P1)
        if check_flip_kernel(proj, P0, P1).status != "proved":
            return Verdict.refuted("projection violates (3)", counterexample={"case": case})
        if np.any(project_flip_kernel(proj, P0, P1) != proj):
            return Verdict.refuted("projection is not idempotent", counterexample={"case": case})
        inner = sum((Fraction(int(a)) - b) * c for a, b, c in
                    zip(raw.ravel(), proj.ravel(), other.ravel()))
        if inner != 0:
            return Verdict.refuted("projection is not orthogonal",
                                   counterexample={"case": case, "inner": str(inner)})
        size = (k + int(rng.integers(0, 3)), k + int(rng.integers(0, 3)))
        pads = [0] + ([(k - 1) // 2] if k % 2 == 1 and k > 1 else [])
        for pad in pads:
            v = check_conv_equivariance(proj, P0, P1, image_size=size, padding=pad)
            if v.status != "proved":
                return Verdict.refuted("constrained kernel not proved equivariant",
                                       counterexample={"case": case, "padding": pad,
                                                       "verdict": v.to_dict()})
        n_yes += 1
        if check_flip_kernel(raw, P0, P1).status == "proved":
            continue
        v = check_conv_equivariance(raw, P0, P1, image_size=size)
        if v.status != "refuted":
            return Verdict.refuted("kernel violating (3) not refuted by the convolution check",
                                   counterexample={"case": case, "verdict": v.to_dict()})
        x = np.array(v.counterexample["image"], dtype=np.int64)
        if np.array_equal(conv2d(_act(x, P0), raw), _act(conv2d(x, raw), P1)):
            return Verdict.refuted("basis-image counterexample does not re-check",
                                   counterexample=v.counterexample)
        n_no += 1
    # tau is the width flip: a symmetric kernel is its own flip
    sym = project_flip_kernel(rng.integers(-4, 5, size=(2, 2, 3, 3)), np.eye(2, dtype=int),
                              np.eye(2, dtype=int))
    if np.any(flip(sym) != sym):
        return Verdict.refuted("P0 = P1 = I does not give symmetric filters",
                               counterexample={"kernel": sym.tolist()})
    return Verdict.checked(
        f"{n_yes} projected kernels satisfy (3) exactly, the projection is idempotent and "
        "orthogonal, and their layers are equivariant on every basis image (a proof by "
        f"linearity); {n_no} kernels violating (3) give non-equivariant layers with re-checked "
        "basis-image counterexamples",
        n_samples=n_yes + n_no, tol=0.0,
        witness={"constrained": n_yes, "violating": n_no})
