"""Proposition D.1 [BK23]: every S_2-invariant 2-2-1 ReLU net f(x) = W2 ReLU(W1 x) (S_2
swapping the two inputs, trivial on the output) equals a layerwise-equivariant net with the same
layer dimensions.

How the claim is checked: :func:`identifiable.relu.prop_d_1` decides invariance exactly, builds
the rewrite of the proof's cases (W2 normalised to signs, dead neurons zeroed, rho1(h) = I or J,
or the zero net) and verifies it exactly: same function by the complete kink decision of
:func:`identifiable.relu.relu_sum_identity`, and every layer equivariant. We run it on

* every net with W1 in {-1, 0, 1}^(2x2) and W2 in {-1, 0, 2}^2 (729 nets, exhaustive on that
  grid): each invariant net must be proved with a rewrite, each other net refuted with an
  input x where f(Jx) != f(x);
* random rational families that reach every case of the proof: layerwise-equivariant nets
  (rho1 = I or J) scrambled by a random positive diagonal and a hidden permutation (full rank and
  rank one with u_2 = -u_1), cancelling rank-one nets, dead neurons beside a symmetric one.

Every witness is re-checked here independently: rho1 W1 = W1 J and W2 rho1 = W2 by matrix
algebra, rho1 a permutation, and the rewrite agrees with f at random rational inputs; every
counterexample is re-evaluated exactly.

Status: ``checked``, not ``proved``: every case is decided exactly, but the proposition
quantifies over all networks and the library verifies finitely many (exact on each of finitely
many nets).
"""

import itertools

import numpy as np
import sympy as sp

from identifiable.claims import claim
from identifiable.relu import prop_d_1
from identifiable.verdict import Verdict

J = sp.Matrix([[0, 1], [1, 0]])


def _f(W1, W2, x):
    return (sp.Matrix(W2) * (sp.Matrix(W1) * sp.Matrix(x)).applyfunc(lambda t: sp.Max(0, t)))[0]


def _recheck(W1, W2, v, rng):
    """None if the verdict re-checks, else a message."""
    if v.status == "refuted":
        x = sp.Matrix(v.counterexample["x"])
        return None if _f(W1, W2, J * x) != _f(W1, W2, x) else "counterexample fails"
    if v.status != "proved":
        return f"status {v.status}"
    w = v.witness
    R, A, B = sp.Matrix(w.rho1), sp.Matrix(w.W1), sp.Matrix(w.W2)
    if R not in (sp.eye(2), J) or R * A != A * J or B * R != B:
        return "rewrite is not layerwise equivariant"
    for _ in range(6):
        x = [sp.Rational(int(rng.integers(-12, 13)), int(rng.integers(1, 5))) for _ in range(2)]
        if _f(A, B, x) != _f(W1, W2, x):
            return f"rewrite differs from f at {x}"
    return None


def _rat(rng, lo=-5, hi=6):
    return sp.Rational(int(rng.integers(lo, hi)), int(rng.integers(1, 4)))


def _families(rng):
    for _ in range(12):
        a, b, c, d = (_rat(rng) for _ in range(4))
        D = sp.diag(sp.Rational(int(rng.integers(1, 7)), int(rng.integers(1, 4))),
                    sp.Rational(int(rng.integers(1, 7)), int(rng.integers(1, 4))))
        K = D * (J if rng.random() < 0.5 else sp.eye(2))  # hidden PD scramble
        for W1, W2, label in (
            (sp.Matrix([[a, a], [b, b]]), sp.Matrix([[c, d]]), "rho1 = I"),
            (sp.Matrix([[a, b], [b, a]]), sp.Matrix([[c, c]]), "rho1 = J, full rank"),
            (sp.Matrix([[a, -a], [-a, a]]), sp.Matrix([[c, c]]), "rho1 = J, rank one"),
        ):
            yield K * W1, W2 * K.inv(), "scrambled " + label
        p, q = abs(_rat(rng, 1, 6)), abs(_rat(rng, 1, 6))
        v1, v2 = _rat(rng), _rat(rng)
        yield (sp.Matrix([[p * v1, p * v2], [q * v1, q * v2]]), sp.Matrix([[c / p, -c / q]]),
               "cancelling rank one")
        yield sp.Matrix([[a, a], [b, d]]), sp.Matrix([[c, 0]]), "dead neuron"
        yield sp.Matrix([[a, b], [c, d]]), sp.Matrix([[_rat(rng), _rat(rng)]]), "random"


@claim(id="bk23.prop-d.1", source="[BK23] Proposition D.1 (App. D)",
       statement="an S_2-invariant 2-2-1 ReLU net W2 ReLU(W1 x) equals a layerwise-equivariant "
                 "net with the same layer dimensions",
       expected="checked", method="exact invariance + exact rewrite check (grid + families)")
def check() -> Verdict:
    rng = np.random.default_rng(41)
    cases: dict[str, int] = {}
    n_inv = n_not = 0
    grid = itertools.product(itertools.product((-1, 0, 1), repeat=4),
                             itertools.product((-1, 0, 2), repeat=2))
    nets = [(sp.Matrix([[a, b], [c, d]]), sp.Matrix([[e, f]]), "grid")
            for (a, b, c, d), (e, f) in grid]
    nets += list(_families(rng))
    for W1, W2, label in nets:
        v = prop_d_1(W1, W2)
        msg = _recheck(W1, W2, v, rng)
        if msg is not None:
            return Verdict.refuted(f"{label} net: {msg}",
                                   counterexample={"W1": W1, "W2": W2, "verdict": v.to_dict()})
        if label != "grid" and label != "random" and v.status != "proved":
            return Verdict.refuted(f"{label} net is invariant by construction but was "
                                   f"{v.status}", counterexample={"W1": W1, "W2": W2})
        if v.status == "proved":
            n_inv += 1
            cases[v.witness.case] = cases.get(v.witness.case, 0) + 1
        else:
            n_not += 1
    return Verdict.checked(
        f"of {len(nets)} nets (the exhaustive 729-net grid plus generated families), {n_inv} are "
        "invariant and each was rewritten layerwise equivariant with the same function, "
        f"exactly; the other {n_not} were refuted with re-checked counterexamples",
        n_samples=len(nets), tol=0.0,
        witness={"rewrites_by_case": cases, "invariant": n_inv, "not_invariant": n_not})
