"""The kernel constraint of horizontal-flip GCNN layers, eq. (3) [BK23].

A convolution layer with kernel ``psi`` of shape ``(c1, c0, k, k)`` is equivariant to the
horizontal flip tau, acting on its input by ``x -> tau(P0 x)`` and on its output by
``y -> tau(P1 y)`` (P0, P1 channel permutations of order at most 2), iff

    tau(psi) = P1 psi P0^T                                                     (3)

where tau flips the spatial width axis of psi and P1, P0 act on its output and input channels
(Section 2.2 [BK23]). Here:

* :func:`flip` is tau, :func:`channel_permutation` and :func:`gcnn_permutation` build P0 / P1;
* :func:`check_flip_kernel` decides (3) (exact for integer / rational kernels, within a
  tolerance for floats) with the offending channel pair as counterexample;
* :func:`project_flip_kernel` is the orthogonal projection onto the kernels satisfying (3);
* :func:`conv2d` and :func:`check_conv_equivariance` check the layer itself:
  ``conv(tau(P0 x)) = tau(P1 conv(x))``. For exact kernels this is decided exactly on the basis
  images (conv is linear, so the basis decides it for every image of that size); for floats it
  is checked on random images.

Why (3) is the right condition: for cross-correlation with valid (or symmetric zero) padding,
``conv_psi(tau x) = tau conv_{tau psi}(x)``, and ``conv_{P1 psi P0^T}(x) = P1 conv_psi(P0^T x)``.
So under (3), ``conv_psi(tau P0 x) = tau P1 conv_psi(x)``. The map
``T(psi) = P1^T tau(psi) P0`` is an orthogonal involution of kernel space (tau, P0, P1 are
commuting permutations of the entries of order <= 2), (3) says ``T psi = psi``, and
``(psi + T psi) / 2`` is the orthogonal projection onto its fixed space.

This module uses numpy only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.numbers import default_tol, sample_tol, validates_arguments
from identifiable.verdict import Verdict

__all__ = [
    "flip",
    "channel_permutation",
    "gcnn_permutation",
    "check_flip_kernel",
    "project_flip_kernel",
    "random_flip_kernel",
    "conv2d",
    "check_conv_equivariance",
]


# ---------------------------------------------------------------------------- inputs
def _as_kernel(psi: Any, name: str = "psi") -> tuple[np.ndarray, bool]:
    """(array, exact): int64 / object-Fraction arrays are exact, float64 otherwise."""
    if isinstance(psi, sp.NDimArray):
        psi = np.array(psi.tolist(), dtype=object)
    arr = np.asarray(psi)
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected a kernel of shape (c1, c0, k, k), got shape "
                         f"{arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty kernel of shape {arr.shape}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name}: boolean arrays are not kernels")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64), True
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: kernel has NaN or inf entries")
        return arr.astype(np.float64), False
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex kernels are not supported")
    if arr.dtype == object:
        flat = arr.ravel()
        if all(_is_exact_scalar(v) for v in flat):
            out = np.empty(arr.shape, dtype=object)
            out.ravel()[:] = [_fraction(v) for v in flat]
            return out, True
        try:
            out_f = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: entries must be numbers") from None
        if not np.all(np.isfinite(out_f)):
            raise ValueError(f"{name}: kernel has NaN or inf entries")
        return out_f, False
    raise TypeError(f"{name}: dtype {arr.dtype} is not numeric")


def _is_exact_scalar(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer, Fraction)):
        return True
    return isinstance(v, sp.Basic) and bool(getattr(v, "is_Rational", False))


def _fraction(v: Any) -> Fraction:
    if isinstance(v, Fraction):
        return v
    if isinstance(v, (int, np.integer)):
        return Fraction(int(v))
    return Fraction(int(v.p), int(v.q))


def _as_permutation(P: Any, c: int, name: str) -> np.ndarray:
    """The index array p with P e_j = e_{p[j]} of a channel permutation of order <= 2.

    Accepts a permutation matrix or an index sequence (``perm[j]`` is the image of channel j).
    """
    arr = np.asarray(P.tolist() if isinstance(P, sp.MatrixBase) else P)
    if arr.ndim == 1:
        perm = _perm_indices(arr, name)
    elif arr.ndim == 2:
        if arr.shape[0] != arr.shape[1]:
            raise ValueError(f"{name}: expected a square permutation matrix, got shape "
                             f"{arr.shape}")
        try:
            M = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: entries must be numbers") from None
        if not (np.all((M == 0) | (M == 1)) and np.all(M.sum(axis=0) == 1)
                and np.all(M.sum(axis=1) == 1)):
            raise ValueError(f"{name}: not a permutation matrix (entries 0 / 1, one 1 in every "
                             "row and column)")
        perm = np.argmax(M, axis=0)  # column j has its 1 in row perm[j]
    else:
        raise ValueError(f"{name}: expected a permutation matrix or an index sequence, got "
                         f"shape {arr.shape}")
    if perm.shape[0] != c:
        raise ValueError(f"{name}: permutes {perm.shape[0]} channels, but the kernel has {c}")
    if np.any(perm[perm] != np.arange(c)):
        j = int(np.flatnonzero(perm[perm] != np.arange(c))[0])
        raise ValueError(f"{name}: channel permutation has order > 2 (channel {j} -> "
                         f"{perm[j]} -> {perm[perm[j]]}), so it is not a representation of "
                         "the flip group S_2 (Section 2.2 [BK23])")
    return perm


def _perm_indices(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected a non-empty sequence of channel indices")
    n = arr.shape[0]
    if arr.min() < 0 or arr.max() >= n or len(set(arr.tolist())) != n:
        raise ValueError(f"{name}: not a permutation of 0..{n - 1}: {arr.tolist()[:20]}")
    return arr.astype(np.intp)


# ---------------------------------------------------------------------------- builders
def channel_permutation(perm: Sequence[int], name: str = "perm") -> np.ndarray:
    """The ``int64`` permutation matrix with ``P e_j = e_{perm[j]}`` of a channel permutation
    of order at most 2 (ValueError naming ``name`` otherwise)."""
    p = _perm_indices(np.asarray(perm), name)
    p = _as_permutation(p, p.shape[0], name)
    P = np.zeros((p.shape[0], p.shape[0]), dtype=np.int64)
    P[p, np.arange(p.shape[0])] = 1
    return P


def gcnn_permutation(n_invariant: int, n_regular: int) -> np.ndarray:
    """``I_{n_invariant}`` followed by ``n_regular`` swapped pairs (regular channels of S_2):
    the P of a GCNN layer with that many invariant and regular fields (Section 2.2 [BK23]).

    ``gcnn_permutation(c, 0)`` is the identity (symmetric filters), ``gcnn_permutation(0, c//2)``
    the regular representation.
    """
    for nm, v in (("n_invariant", n_invariant), ("n_regular", n_regular)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{nm}: expected a non-negative integer, got {v!r}")
    c = int(n_invariant) + 2 * int(n_regular)
    if c == 0:
        raise ValueError("n_invariant + n_regular must be positive")
    perm = list(range(n_invariant))
    for r in range(n_regular):
        a = n_invariant + 2 * r
        perm += [a + 1, a]
    return channel_permutation(perm)


# ---------------------------------------------------------------------------- eq. (3)
def flip(psi: Any) -> np.ndarray:
    """tau: the horizontal flip of the spatial width axis (the last axis)."""
    return np.asarray(psi)[..., ::-1]


def _permute_channels(psi: np.ndarray, p1: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """``P1 psi P0^T`` for P e_j = e_{p[j]}: (P1 psi P0^T)[p1[a], p0[b]] = psi[a, b]."""
    out = np.empty_like(psi)
    out[np.ix_(p1, p0)] = psi
    return out


def _constraint_residual(psi: np.ndarray, p1: np.ndarray, p0: np.ndarray) -> np.ndarray:
    return flip(psi) - _permute_channels(psi, p1, p0)


@validates_arguments
@_zero.undecided_on_zero_tests
def check_flip_kernel(psi: Any, P0: Any, P1: Any, *, tol: float | None = None) -> Verdict:
    """Decide the kernel constraint ``tau(psi) = P1 psi P0^T`` of eq. (3) [BK23].

    Parameters
    ----------
    psi:
        Kernel of shape ``(c1, c0, kh, kw)``: integers, Fractions or sympy Rationals (exact) or
        floats.
    P0, P1:
        Channel permutations of order <= 2 on the c0 input and c1 output channels: permutation
        matrices or index sequences (``perm[j]`` is the image of channel j).
    tol:
        Absolute tolerance for float kernels (default ``1e-9 * max(1, max |psi|)``).

    Returns
    -------
    Verdict
        ``proved`` (exact kernel, every entry compared exactly); ``checked`` (float kernel,
        every entry within ``tol``; ``n_samples`` is the number of entries); ``refuted`` with
        counterexample
        ``{"out", "in", "max_abs_difference", "tau(psi)[out, in]", "(P1 psi P0^T)[out, in]"}``
        for the channel pair with the largest difference.
    """
    arr, exact = _as_kernel(psi)
    c1, c0 = arr.shape[:2]
    p0 = _as_permutation(P0, c0, "P0")
    p1 = _as_permutation(P1, c1, "P1")
    R = _constraint_residual(arr, p1, p0)
    if exact:
        absR = np.vectorize(lambda v: abs(Fraction(v)), otypes=[object])(R)
        per_pair = np.array([[max(absR[o, i].ravel()) for i in range(c0)] for o in range(c1)],
                            dtype=object)
        bad = [(o, i) for o in range(c1) for i in range(c0) if per_pair[o, i] != 0]
        tol_used = None
    else:
        tol_used = float(tol) if tol is not None else default_tol(arr)
        per_pair = np.abs(R).max(axis=(2, 3))
        bad = [tuple(int(v) for v in ij) for ij in np.argwhere(per_pair > tol_used)]
    method = "exact" if exact else "tolerance"
    if bad:
        o, i = max(bad, key=lambda oi: per_pair[oi])
        want = _permute_channels(arr, p1, p0)
        diff = per_pair[o, i]
        return Verdict.refuted(
            f"tau(psi) != P1 psi P0^T at output channel {o}, input channel {i} (max |diff| = "
            f"{diff}); {len(bad)} of {c1 * c0} channel pairs violate eq. (3) [BK23]",
            counterexample={"out": o, "in": i,
                            "max_abs_difference": _scalar_out(diff),
                            "tau(psi)[out, in]": _array_out(flip(arr)[o, i]),
                            "(P1 psi P0^T)[out, in]": _array_out(want[o, i])},
            method=method, tol=tol_used, n_bad_pairs=len(bad))
    witness = {"P0": p0.tolist(), "P1": p1.tolist(),
               "invariant_in": int(np.sum(p0 == np.arange(c0))),
               "invariant_out": int(np.sum(p1 == np.arange(c1)))}
    if exact:
        return Verdict.proved(f"tau(psi) = P1 psi P0^T exactly on all {c1 * c0} channel pairs "
                              "(eq. (3) [BK23])", witness)
    return Verdict.checked(f"|tau(psi) - P1 psi P0^T| <= {tol_used:.2g} on all {arr.size} "
                           "entries (eq. (3) [BK23])", n_samples=arr.size, tol=tol_used,
                           witness=witness, method="tolerance",
                           max_abs_difference=float(per_pair.max()))


def _scalar_out(v: Any) -> Any:
    return sp.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else float(v)


def _array_out(a: np.ndarray) -> list:
    if a.dtype == object:
        return [[_scalar_out(Fraction(v)) for v in row] for row in a]
    return a.tolist()


def project_flip_kernel(psi: Any, P0: Any, P1: Any) -> np.ndarray:
    """The orthogonal projection of ``psi`` onto the kernels satisfying eq. (3) [BK23]:
    ``(psi + P1^T tau(psi) P0) / 2``.

    Exact kernels stay exact (an object array of Fractions), float kernels give float64.
    """
    arr, exact = _as_kernel(psi)
    c1, c0 = arr.shape[:2]
    p0 = _as_permutation(P0, c0, "P0")
    p1 = _as_permutation(P1, c1, "P1")
    # P^T for an involution is P, so P1^T tau(psi) P0 = P1 tau(psi) P0^T
    T = _permute_channels(flip(arr), p1, p0)
    if exact:
        out = np.empty(arr.shape, dtype=object)
        out.ravel()[:] = [(Fraction(a) + Fraction(b)) / 2 for a, b in zip(arr.ravel(),
                                                                         T.ravel())]
        return out
    return (arr + T) / 2.0


def random_flip_kernel(P0: Any, P1: Any, k: int | tuple[int, int] = 3, *,
                       seed: int | np.random.Generator | None = None,
                       exact: bool = False) -> np.ndarray:
    """A random kernel satisfying eq. (3): the projection of a random one (Gaussian floats, or
    integers in [-4, 4] projected exactly when ``exact``)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    p0 = np.asarray(_perm_of_any(P0, "P0"))
    p1 = np.asarray(_perm_of_any(P1, "P1"))
    kh, kw = (k, k) if isinstance(k, (int, np.integer)) else k
    shape = (p1.shape[0], p0.shape[0], int(kh), int(kw))
    raw = rng.integers(-4, 5, size=shape) if exact else rng.standard_normal(shape)
    return project_flip_kernel(raw, p0, p1)


def _perm_of_any(P: Any, name: str) -> np.ndarray:
    arr = np.asarray(P.tolist() if isinstance(P, sp.MatrixBase) else P)
    c = arr.shape[0] if arr.ndim in (1, 2) else 0
    return _as_permutation(arr, c, name)


# ---------------------------------------------------------------------------- the layer
def conv2d(x: Any, psi: Any, padding: int = 0) -> np.ndarray:
    """Cross-correlation (as in torch's ``conv2d``, no bias) of images ``x`` of shape
    ``(N, c0, H, W)`` or ``(c0, H, W)`` with ``psi`` of shape ``(c1, c0, kh, kw)``, zero
    padding ``padding`` on every side, stride 1. Exact (int64 / object) for exact inputs."""
    xa = np.asarray(x)
    single = xa.ndim == 3
    if single:
        xa = xa[None]
    if xa.ndim != 4:
        raise ValueError(f"x: expected images of shape (N, c0, H, W), got shape {xa.shape}")
    w = np.asarray(psi)
    if w.ndim != 4 or w.shape[1] != xa.shape[1]:
        raise ValueError(f"psi: expected shape (c1, {xa.shape[1]}, kh, kw), got {w.shape}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding: expected a non-negative integer, got {padding!r}")
    if padding:
        xa = np.pad(xa, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    if xa.shape[2] < kh or xa.shape[3] < kw:
        raise ValueError(f"x: images of size {xa.shape[2:]} (padded) are smaller than the "
                         f"kernel {w.shape[2:]}")
    win = np.lib.stride_tricks.sliding_window_view(xa, (kh, kw), axis=(2, 3))
    if xa.dtype == object or w.dtype == object:
        out = np.einsum("nchwuv,ocuv->nohw", win.astype(object), w.astype(object),
                        optimize=False)
    else:
        out = np.einsum("nchwuv,ocuv->nohw", win, w, optimize=True)
    return out[0] if single else out


def _act(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """tau(P x) on images (N, c, H, W): channel j moves to p[j], then the width flips."""
    out = np.empty_like(x)
    out[:, p] = x
    return out[..., ::-1]


@validates_arguments
@_zero.undecided_on_zero_tests
def check_conv_equivariance(psi: Any, P0: Any, P1: Any, *, image_size: tuple[int, int] = (6, 7),
                            padding: int = 0, n_images: int = 16,
                            seed: int | np.random.Generator | None = 0,
                            tol: float | None = None) -> Verdict:
    """Is the convolution layer with kernel psi flip-equivariant:
    ``conv(tau(P0 x)) = tau(P1 conv(x))`` for every image x of size ``image_size``?

    Exact kernels (integers / rationals, scaled to integers) are decided exactly on all
    ``c0 * H * W`` basis images: conv is linear, so this is a proof for every image of that
    size. Float kernels are checked on ``n_images`` random Gaussian images (``checked``).
    ``padding`` is symmetric zero padding (any kernel size; the padded image of a flipped image
    is the flipped padded image). Stride 1 only: footnote 2 of [BK23] explains why stride 2 on
    even widths breaks the flip symmetry.

    Returns
    -------
    Verdict
        ``proved`` / ``checked``; ``refuted`` with counterexample ``{"image", "max_abs_error",
        "basis"}`` (the basis index ``(channel, row, col)`` for exact kernels).
    """
    arr, exact = _as_kernel(psi)
    c1, c0 = arr.shape[:2]
    p0 = _as_permutation(P0, c0, "P0")
    p1 = _as_permutation(P1, c1, "P1")
    H, W = (int(v) for v in image_size)
    if H < 1 or W < 1:
        raise ValueError(f"image_size: expected positive sizes, got {image_size}")
    if exact:
        den = 1
        for v in arr.ravel():
            den = den * Fraction(v).denominator // np.gcd(den, Fraction(v).denominator)
        ker = np.array([int(Fraction(v) * den) for v in arr.ravel()], dtype=object)
        ker = ker.reshape(arr.shape)
        if max(abs(int(v)) for v in ker.ravel()) < 2**40:
            ker = ker.astype(np.int64)
        X = np.eye(c0 * H * W, dtype=np.int64).reshape(c0 * H * W, c0, H, W)
    else:
        ker = arr
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) \
                or n_images < 1:
            raise ValueError(f"n_images: expected a positive integer, got {n_images!r}")
        X = rng.standard_normal((int(n_images), c0, H, W))
    lhs = conv2d(_act(X, p0), ker, padding)
    rhs = _act(conv2d(X, ker, padding), p1)
    err = np.abs(lhs - rhs).reshape(X.shape[0], -1).max(axis=1)
    if exact:
        bad = np.flatnonzero(err != 0)
        if bad.size:
            j = int(bad[0])
            c, r, s = np.unravel_index(j, (c0, H, W))
            return Verdict.refuted(
                f"conv(tau(P0 e)) != tau(P1 conv(e)) for the basis image e at channel {c}, "
                f"row {r}, column {s} (exact); the kernel violates eq. (3) [BK23]",
                counterexample={"basis": (int(c), int(r), int(s)), "image": X[j].tolist(),
                                "max_abs_error": _scalar_out(Fraction(int(err[j]), den))})
        return Verdict.proved(
            f"conv(tau(P0 x)) = tau(P1 conv(x)) exactly on all {X.shape[0]} basis images of "
            f"size {c0}x{H}x{W}, hence for every such image by linearity (eq. (3) [BK23])",
            witness={"basis_images": X.shape[0], "image_size": (H, W), "padding": padding})
    t = sample_tol(tol, rhs)
    j = int(np.argmax(err))
    if err[j] > t:
        return Verdict.refuted(
            f"|conv(tau(P0 x)) - tau(P1 conv(x))| = {err[j]:.3g} > {t:.2g} on a random image "
            "(eq. (3) [BK23])",
            counterexample={"image": X[j].tolist(), "max_abs_error": float(err[j])},
            method="tolerance", tol=t)
    return Verdict.checked(
        f"|conv(tau(P0 x)) - tau(P1 conv(x))| <= {t:.2g} on {X.shape[0]} random images of size "
        f"{c0}x{H}x{W} (eq. (3) [BK23])", n_samples=X.shape[0], tol=t,
        max_error=float(err.max()))
