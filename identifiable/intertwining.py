"""Deciding ``sigma(A x) = B sigma(x)`` for all x in R^d (eq. (8) [SMBK26]) and its affine form
``sigma(A x + a) = B sigma(x) + b`` (Lemma E.1 [BK23]).

The decision rests on the derived intertwiner group of the activation
(:meth:`identifiable.activations.Activation.derive`):

* linear sigma(x) = s x: the identity holds iff A = B (and s a = b);
* continuous non-affine sigma: it holds iff A is monomial, A = P diag(alpha), B = P diag(gamma)
  has the same support, and every row satisfies the one-variable identity
  ``sigma(alpha_i t + a_i) = gamma_i sigma(t) + b_i``; for a = b = 0 this is alpha_i in S and
  gamma_i = c(alpha_i).

Exact inputs get ``proved`` / ``refuted``; float inputs get tolerance-based answers with the
tolerance recorded (``checked`` after a structural test and a numeric test on samples). Every
``refuted`` carries a concrete x at which the two sides differ by far more than the tolerance;
for ReLU the search starts from the test points of the constructive proof of Lemma 2.2 [BK23]
(-e_k, e_k, A_ik e_k' - A_ik' e_k) and of Lemma E.1 (0, +-A^-1 a, -2 A^-1 a).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import sympy as sp

from identifiable import activations as _acts
from identifiable import zero as _zero
from identifiable.activations import Activation, zero_test
from identifiable.latent_groups import monomial_support
from identifiable.numbers import (
    FLOAT64_RTOL,
    as_matrix,
    as_vector,
    default_tol,
    is_zero_entry,
    rationalise,
    to_numpy,
    validate_tol,
    validates_arguments,
)
from identifiable.verdict import Verdict

__all__ = ["check_intertwiner", "check_affine_intertwiner"]

_N_RANDOM = 24


# ---------------------------------------------------------------------- inputs
def _prepare(act: Any, A: Any, B: Any, a: Any = None, b: Any = None, tol: float | None = None):
    tol = validate_tol(tol)
    act = _acts.get(act) if not isinstance(act, Activation) else act
    A = as_matrix(A, "A", square=True)
    d = A.shape[0]
    B = as_matrix(B, "B", shape=(d, d))
    vecs = []
    for name, v in (("a", a), ("b", b)):
        vecs.append(None if v is None else as_vector(v, name, length=d))
    items = [A, B] + [v for v in vecs if v is not None]
    exact = all(isinstance(m, sp.MatrixBase) for m in items)
    if not exact:
        A, B = to_numpy(A), to_numpy(B)
        vecs = [None if v is None else to_numpy(v)[:, 0] for v in vecs]
        if tol is None:
            tol = default_tol(A, B, *[v for v in vecs if v is not None])
    else:
        vecs = [None if v is None else sp.ImmutableMatrix(v) for v in vecs]
        tol = None
    return act, A, B, vecs[0], vecs[1], exact, tol


def _require_invertible(A: Any, exact: bool, tol: float | None) -> None:
    d = A.shape[0]
    if exact:
        rank = _zero.rank(A, "A")  # UndecidedZero when singularity cannot be decided
        if rank < d:
            raise ValueError(f"A: matrix is singular (rank {rank} < {d}); intertwiners are "
                             "invertible (eq. (8) [SMBK26])")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        lu, piv = scipy.linalg.lu_factor(A, check_finite=False)
    anorm = np.abs(A).sum(axis=0).max()
    rcond, info = scipy.linalg.lapack.dgecon(lu, anorm)
    if info != 0 or rcond < 1e3 * np.finfo(float).eps:
        raise ValueError(f"A: matrix is singular to working precision (reciprocal condition "
                         f"number {rcond:.2g}); intertwiners are invertible (eq. (8) [SMBK26])")


# ---------------------------------------------------------------------- counterexamples
def _residual_numeric(act: Activation, A, B, a, b, X: np.ndarray) -> np.ndarray:
    """sigma(A X + a) - B sigma(X) - b for a batch of columns X (float64)."""
    Af, Bf = to_numpy(A), to_numpy(B)
    Z = Af @ X
    if a is not None:
        Z = Z + to_numpy(a).reshape(-1, 1)
    R = act(Z) - Bf @ act(X)
    if b is not None:
        R = R - to_numpy(b).reshape(-1, 1)
    return R


def _hint_points(A: np.ndarray, a: np.ndarray | None, focus_rows: list[int]) -> list[np.ndarray]:
    """Structured candidates: Lemma 2.2 and Lemma E.1 [BK23] test points, axis points."""
    d = A.shape[0]
    pts: list[np.ndarray] = []
    scales = (1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0)
    cols = set()
    for i in focus_rows:
        nz = np.flatnonzero(A[i])
        cols.update(nz.tolist())
        if len(nz) >= 2:  # Lemma 2.2: x = A_ik e_k' - A_ik' e_k
            k, k2 = nz[0], nz[1]
            x = np.zeros(d)
            x[k2] += A[i, k]
            x[k] -= A[i, k2]
            pts += [x, -x]
            for s in scales:
                for t in scales:
                    y = np.zeros(d)
                    y[k] += s
                    y[k2] += t
                    pts.append(y)
    if not focus_rows:
        cols = set(range(min(d, 4)))
    for k in sorted(cols):
        for s in scales:  # -e_k, e_k and friends
            x = np.zeros(d)
            x[k] = s
            pts.append(x)
    pts.append(np.zeros(d))
    if a is not None and np.any(a != 0):  # Lemma E.1: 0, A^-1 a, -A^-1 a, -2 A^-1 a
        y = np.linalg.solve(A, a)
        pts += [y, -y, -2 * y, 2 * y]
    return pts


def _counterexample(act: Activation, A, B, a, b, exact: bool, tol: float | None,
                    focus_rows: list[int], seed: int = 0) -> dict | None:
    """Search for x with a large residual; for exact input re-evaluate it exactly."""
    Af = to_numpy(A)
    af = None if a is None else to_numpy(a)[:, 0] if exact else a
    d = Af.shape[0]
    pts = _hint_points(Af, af, focus_rows)
    rng = np.random.default_rng(seed)
    rand = rng.standard_normal((_N_RANDOM, d))
    if exact:  # rational random points so that the exact check is possible
        rand = np.round(rand * 8) / 8
    X = np.column_stack(pts + list(rand))
    R = _residual_numeric(act, A, B, a if not exact else (None if a is None else to_numpy(a)),
                          b if not exact else (None if b is None else to_numpy(b)), X)
    R = np.where(np.isfinite(R), R, 0.0)
    score = np.abs(R).max(axis=0)
    j = int(np.argmax(score))
    best = float(score[j])
    if exact:
        # float residuals only rank the candidates (a difference of 1e-27 is invisible in
        # float64): the best few, and the structured test points, are re-evaluated exactly and
        # the first certified non-zero residual is the counterexample
        order = list(np.argsort(-score, kind="stable")[:8]) + list(range(min(len(pts), 24)))
        for j in dict.fromkeys(int(k) for k in order):
            xs = rationalise(X[:, j])
            xm = sp.Matrix(xs)
            pre = sp.Matrix(A) * xm + (sp.Matrix(a) if a is not None else sp.zeros(d, 1))
            rows = [int(np.argmax(np.abs(R[:, j])))] + [r for r in focus_rows if r < d]
            for row in dict.fromkeys(rows):
                try:
                    lhs = act.at(pre[row])
                    rhs = sum((B[row, k] * act.at(xs[k]) for k in range(d) if B[row, k] != 0),
                              sp.Integer(0)) + (b[row] if b is not None else 0)
                except (TypeError, ValueError):  # sympy cannot order a disguised argument
                    continue
                if _zero.sign(lhs - rhs):  # certified non-zero
                    return {"x": xs, "row": row, "lhs": lhs, "rhs": rhs,
                            "residual": float(sp.N(lhs - rhs, 30))}
        return None
    if best <= 10 * tol:
        return None
    x = X[:, j]
    row = int(np.argmax(np.abs(R[:, j])))
    return {"x": x.tolist(), "row": row,
            "lhs": float(act(np.array([Af[row] @ x + (0 if af is None else af[row])]))[0]),
            "rhs": float(to_numpy(B)[row] @ act(x) + (0 if b is None else b[row])),
            "residual": float(R[row, j]), "max_abs_residual": best}


def _refute(act, A, B, a, b, exact, tol, reason: str, rows: list[int], witness=None) -> Verdict:
    cex = _counterexample(act, A, B, a, b, exact, tol, rows)
    if cex is None:
        return Verdict.undecided(
            f"{reason}; but no input with a residual above the tolerance was found",
            witness=witness, tol=tol, method="exact" if exact else "tolerance")
    return Verdict.refuted(reason, counterexample=cex, witness=witness,
                           method="exact" if exact else "tolerance", tol=tol)


# ---------------------------------------------------------------------- decisions
@validates_arguments
def check_intertwiner(act: Any, A: Any, B: Any, *, tol: float | None = None) -> Verdict:
    """Decide ``sigma(A x) = B sigma(x)`` for all x in R^d (eq. (8) [SMBK26]).

    Parameters
    ----------
    act:
        An :class:`~identifiable.activations.Activation` or a built-in name.
    A, B:
        Square matrices of equal size; A must be invertible (ValueError otherwise).
    tol:
        Absolute tolerance for float inputs (default ``1e-9 * max(1, max |entry|)``).

    Returns
    -------
    Verdict
        ``proved`` (exact input) or ``checked`` (float input) with witness
        ``{"perm", "P", "scalings", "B_factors"}`` (monomial case) or ``{"B": A}`` (linear case);
        ``refuted`` with a counterexample ``{"x", "row", "lhs", "rhs", "residual"}``.
    """
    return _decide(act, A, B, None, None, tol)


@validates_arguments
def check_affine_intertwiner(act: Any, A: Any, a: Any, B: Any, b: Any, *,
                             tol: float | None = None) -> Verdict:
    """Decide ``sigma(A x + a) = B sigma(x) + b`` for all x (Lemma E.1 [BK23]).

    For ReLU, Lemma E.1 forces a = b = 0 and then Lemma 2.2 applies. For other activations the
    affine symmetries may be richer (sigmoid: sigma(-x) = 1 - sigma(x)), and are decided row by
    row once A is known to be monomial.
    """
    return _decide(act, A, B, a, b, tol)


def _decide(act, A, B, a, b, tol) -> Verdict:
    act, A, B, a, b, exact, tol = _prepare(act, A, B, a, b, tol)
    try:
        return _decide_prepared(act, A, B, a, b, exact, tol)
    except _zero.UndecidedZero as exc:
        return Verdict.undecided(f"eq. (8) for {act.name}: {exc}", method="exact")


def _decide_prepared(act, A, B, a, b, exact, tol) -> Verdict:
    affine = a is not None or b is not None
    d = A.shape[0]
    zeros = (sp.zeros(d, 1) if exact else np.zeros(d))
    a_ = zeros if a is None else a
    b_ = zeros if b is None else b
    der = act.derive()
    lemma = " (Lemma E.1 and Lemma 2.2 [BK23])" if act.name == "relu" and affine else (
        " (Lemma 2.2 [BK23])" if act.name == "relu" else "")

    if der.status != "proved":
        _require_invertible(A, exact, tol)
        return _sampled(act, A, B, a, b, exact, tol,
                        f"intertwiner group of {act.name} not derived ({der.reason})")

    kind = der.witness.kind
    if kind == "linear":
        _require_invertible(A, exact, tol)
        s = der.witness.slope
        diffA = (sp.Matrix(A) - sp.Matrix(B)) if exact else (A - B)
        diffa = (s * sp.Matrix(a_) - sp.Matrix(b_)) if exact else (float(s) * a_ - b_)
        bad = _nonzero(diffA, tol) or _nonzero(diffa, tol)
        if bad:
            return _refute(act, A, B, a, b, exact, tol,
                           f"{act.name} is linear, so the identity needs A = B"
                           + (f" and {s} a = b" if affine else ""), [])
        witness = {"B": B}
        if exact:
            return Verdict.proved(f"{act.name} is linear and A = B"
                                  + (" and s a = b" if affine else "") + ": eq. (8) holds",
                                  witness)
        return _sampled(act, A, B, a, b, exact, tol, "linear activation and A = B within tol",
                        witness=witness)

    # monomial case
    parts = monomial_support(A, tol)
    if isinstance(parts, dict):
        if parts.get("undecided"):
            return Verdict.undecided(f"eq. (8) for {act.name}: {parts['reason']}",
                                     method="exact")
        if "columns" not in parts:
            raise ValueError(f"A: {parts['reason']}; intertwiners are invertible "
                             "(eq. (8) [SMBK26])")
        _require_invertible(A, exact, tol)
        i = parts["row"]
        return _refute(act, A, B, a, b, exact, tol,
                       f"row {i} of A has two non-zero entries, but {act.name} is not affine so "
                       f"every intertwiner is monomial{lemma or ' (Section 5.1 [SMBK26])'}", [i])
    perm, alphas = parts
    scal = der.witness.scalings
    # B must have the support of A (B = P diag(gamma) with A's permutation)
    if exact:
        off_rows = [(i, j) for i, k in enumerate(perm) for j in range(d)
                    if j != k and not is_zero_entry(B[i, j], None)]
    else:
        mask = np.abs(B) > tol
        mask[np.arange(d), perm] = False
        off_rows = [tuple(int(v) for v in ij) for ij in np.argwhere(mask)[:1]]
    if off_rows:
        i, j = off_rows[0]
        return _refute(act, A, B, a, b, exact, tol,
                       f"row {i}: B[{i},{j}] != 0 outside the support of A; B must be "
                       f"P diag(c) with the same permutation as A", [i])
    gammas = [B[i, k] for i, k in enumerate(perm)]
    witness = {"perm": list(perm), "P": _perm_matrix(perm), "scalings": list(alphas),
               "B_factors": list(gammas)}
    if affine:
        witness.update({"a": a_, "b": b_})
    if exact:
        checked_rows: dict[tuple, Verdict] = {}
        for i in range(d):
            key = (alphas[i], a_[i], gammas[i], b_[i])
            if key not in checked_rows:
                checked_rows[key] = _row_identity(act, scal, *key)
            v = checked_rows[key]
            if v.status == "refuted":
                return _refute(act, A, B, a, b, exact, tol,
                               f"row {i}: {_row_statement(*key)} fails{lemma}", [i],
                               witness=witness)
            if v.status != "proved":
                return v.but(reason=f"row {i}: {v.reason}", witness=witness)
        if affine:
            return Verdict.proved(
                f"A and B monomial with the same support and every row's identity "
                f"sigma(alpha t + a_i) = gamma sigma(t) + b_i holds exactly{lemma}", witness)
        return Verdict.proved(
            f"A = P D with scalings in {scal.name} and B = P diag(c(a)){lemma}"
            + f" (intertwiner group of {act.name}, Section 5.1 [SMBK26])", witness)
    # float: per-row structural test within tol, then the numeric check on samples
    alph = np.asarray(alphas, float)
    gam = np.asarray(gammas, float)
    if not affine or (np.all(np.abs(a_) <= tol) and np.all(np.abs(b_) <= tol)):
        in_s = {
            "nonzero": np.abs(alph) > tol,
            "positive": alph > tol,
            "sign": np.minimum(np.abs(alph - 1), np.abs(alph + 1)) <= tol,
            "one": np.abs(alph - 1) <= tol,
        }[scal.kind]
        if not np.all(in_s):
            i = int(np.flatnonzero(~in_s)[0])
            return _refute(act, A, B, a, b, exact, tol,
                           f"row {i}: scaling A[{i},{perm[i]}] = {alph[i]:.6g} is not in "
                           f"{scal.name}{lemma}", [i], witness=witness)
        want = scal.c_numeric(alph)
        bad = np.flatnonzero(np.abs(want - gam) > tol)
        if bad.size:
            i = int(bad[0])
            return _refute(act, A, B, a, b, exact, tol,
                           f"row {i}: B[{i},{perm[i]}] = {gam[i]:.6g} but c(a) = {want[i]:.6g}"
                           f"{lemma}", [i], witness=witness)
        reason = f"A = P D with scalings in {scal.name} and B = P diag(c(a)) within tol{lemma}"
    else:
        reason = "A and B monomial with matching support; per-row affine identities sampled"
    return _sampled(act, A, B, a, b, exact, tol, reason, witness=witness)


def _row_identity(act: Activation, scal, alpha, beta, gamma, delta) -> Verdict:
    """Exact decision of sigma(alpha t + beta) = gamma sigma(t) + delta for all real t."""
    if _zero.is_exact_zero(beta, "a") and _zero.is_exact_zero(delta, "b"):
        # the derived group decides: S is exactly the set of a with sigma(a t) = c sigma(t)
        # for some c, and then c = c(a) (sigma is not identically zero); a "refuted" here is
        # turned into a certified counterexample input by the caller, or into undecided
        if not scal.contains(alpha):  # UndecidedZero when the sign test is undecided
            return Verdict.refuted(f"the scaling {alpha} is not in {scal.name}",
                                   counterexample={"alpha": alpha})
        c = scal.c(alpha)
        if _zero.is_exact_zero(c - gamma, "c(alpha) - gamma"):
            return Verdict.proved(f"{alpha} in {scal.name} and c({alpha}) = {gamma}")
        return Verdict.refuted(f"c({alpha}) = {c} != {gamma}", counterexample={"alpha": alpha})
    return zero_test(lambda t: act.at(alpha * t + beta) - gamma * act.at(t) - delta,
                     f"sigma({alpha} t + {beta}) = {gamma} sigma(t) + {delta}")


def _row_statement(alpha, beta, gamma, delta) -> str:
    if beta == 0 and delta == 0:
        return f"sigma(({alpha}) t) = ({gamma}) sigma(t)"
    return f"sigma(({alpha}) t + {beta}) = ({gamma}) sigma(t) + {delta}"


def _sampled(act, A, B, a, b, exact, tol, reason: str, witness=None) -> Verdict:
    """Numeric test on structured + random samples; refuted if a residual exceeds tol."""
    d = A.shape[0]
    Af = to_numpy(A)
    af = None if a is None else (to_numpy(a)[:, 0] if exact else a)
    pts = _hint_points(Af, af, [])
    rng = np.random.default_rng(12345)
    X = np.column_stack(pts + list(rng.standard_normal((_N_RANDOM, d)) * 2.0))
    R = _residual_numeric(act, A, B, None if a is None else (to_numpy(a) if exact else a),
                          None if b is None else (to_numpy(b) if exact else b), X)
    if not np.all(np.isfinite(R)):
        return Verdict.undecided(f"{reason}; the residual is not finite at some sample inputs "
                                 "(sigma undefined or not real there)", witness=witness, tol=tol)
    scale = max(1.0, float(np.abs(act(Af @ X)).max()))
    tol_r = (tol if tol is not None else FLOAT64_RTOL) * scale * 10
    worst = float(np.abs(R).max())
    if worst > tol_r:
        return _refute(act, A, B, a, b, exact, tol if tol is not None else FLOAT64_RTOL,
                       f"residual {worst:.3g} on samples", [])
    return Verdict.checked(f"{reason}; residual <= {tol_r:.2g} on {X.shape[1]} sample inputs",
                           n_samples=X.shape[1], tol=tol_r, witness=witness,
                           max_residual=worst)


def _nonzero(M, tol) -> bool:
    if tol is None:
        return any(not is_zero_entry(v, None) for v in M)
    return bool(np.any(np.abs(M) > tol))


def _perm_matrix(perm: list[int]) -> np.ndarray:
    d = len(perm)
    P = np.zeros((d, d), dtype=np.int64)
    P[np.arange(d), perm] = 1
    return P
