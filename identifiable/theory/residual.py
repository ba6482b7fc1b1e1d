"""The theory for residual MLPs (:class:`~identifiable.models.residual.ResidualMLP`): an
extension beyond [SMBK26], whose Section 7 names skip connections as an open limitation.

* :func:`align_residual`: Definition 3.4 for ``K = Aff(d_s) x K_1 x ... x K_B`` (registered
  with :func:`identifiable.align`);
* :func:`reduce_residual`: dead, constant and duplicate block neurons and empty blocks removed;
* :func:`functional_dimension_residual` and :func:`residual_jacobian`: the rank of
  ``d f / d theta``, compared with ``#params - dim K`` (no larger group acts where equal);
* :func:`is_equivariant_residual`, :func:`theta_prime_residual` (eq. (12));
* :class:`ResidualSteps`: the algorithm of Theorem 4.1's proof run on residual networks
  (registered with :func:`identifiable.theory.latent_actions.steps_for`);
* :func:`planted_equivariant_residual`: layerwise-equivariant residual networks by
  construction, scrambled by a random ``k``.

How the aligner works
---------------------
Unrolled, a residual MLP is a *dense* network: block ``b``'s pre-activation is
``V_b h_{b-1} + c_b = V_b E x + (V_b e + c_b) + sum_{b' < b} V_b U_{b'} a_{b'}``, so the function
depends on theta only through the *collapsed* weights ``R_b = [V_b E | V_b e + c_b | V_b U_1 |
... | V_b U_{b-1}]`` and ``[O E | O e + o | O U_1 | ... | O U_B]``, which the stream element
leaves unchanged. If ``theta2 = k . theta`` then ``R2_b = A_b R_b (diag(1, B_1^{-1}, ...,
B_{b-1}^{-1}))``: the ``A_b`` are found block by block by matching rows up to the allowed
scalings (as for the MLP), branching over tied rows. Then the stream element ``S^ = [[S, t],
[0, 1]]`` solves the *linear* system ``S^ [E e; 0 1] = [E2 e2; 0 1]``, ``S U_b = U2_b B_b``,
``[V2_b | c2_b] S^ = A_b [V_b | c_b]``, ``[O2 | o2] S^ = [O | o]``. A unique invertible solution
is the witness; a solution space of positive dimension means the stabiliser of theta is not
discrete (the witness is then one of many, ``unique=False``); an inconsistent system (with the
``A_b`` forced) refutes. The answer is certified by recomputing ``k . theta`` and comparing it
with ``theta2`` entry by entry (exactly for exact input).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.groups import Rep, matrix_of_permutation
from identifiable.latent_groups import LatentGroup
from identifiable.models.residual import ResidualMLP, ResidualTheta, affine
from identifiable.numbers import (
    RANK_RTOL,
    default_tol,
    is_exact_zero,
    to_numpy,
    validate_count,
    validate_tol,
    validates_arguments,
)
from identifiable.theory.dimension import FunctionalDimension
from identifiable.theory.equivariance import (
    certified_counterexample,
    group_pair,
    is_equivariant,
    summand_representation,
)
from identifiable.theory.latent_actions import Generators, Rewrite, Theorem41Steps, steps_for
from identifiable.verdict import Verdict

__all__ = ["align_residual", "reduce_residual", "ResidualReduction", "residual_jacobian",
           "functional_dimension_residual", "is_equivariant_residual", "theta_prime_residual",
           "ResidualSteps", "planted_equivariant_residual", "ResidualCase"]

_MAX_BRANCHES = 2000


# ---------------------------------------------------------------------------------- arithmetic
class _Ar:
    """Exact (sympy) or float (numpy) matrix arithmetic with one interface."""

    def __init__(self, exact: bool):
        self.exact = exact

    def m(self, M: Any) -> Any:
        if self.exact:
            return sp.Matrix(M)
        return np.asarray(M, dtype=float).reshape(np.shape(M)) if np.ndim(M) == 2 else \
            np.asarray(M, dtype=float).reshape(-1, 1)

    def col(self, v: Any) -> Any:
        return sp.Matrix(v).reshape(len(list(v)), 1) if self.exact else \
            np.asarray(v, dtype=float).reshape(-1, 1)

    def mul(self, a: Any, b: Any) -> Any:
        return a * b if self.exact else a @ b

    def hcat(self, *ms: Any) -> Any:
        return sp.Matrix.hstack(*ms) if self.exact else np.hstack(ms)

    def vcat(self, *ms: Any) -> Any:
        return sp.Matrix.vstack(*ms) if self.exact else np.vstack(ms)

    def zeros(self, r: int, c: int) -> Any:
        return sp.zeros(r, c) if self.exact else np.zeros((r, c))

    def eye(self, n: int) -> Any:
        return sp.eye(n) if self.exact else np.eye(n)


@dataclass
class _Fail:
    where: str
    info: dict
    undecided: bool = False


# ---------------------------------------------------------------------------------- row matching
def _normalise_float(R: np.ndarray, kind: str, g: np.ndarray, tol: float):
    norms = np.max(np.abs(R), axis=1) if R.size else np.zeros(R.shape[0])
    U = R.copy()
    if kind in ("positive", "nonzero"):
        U = U / np.where(norms > tol, norms, 1.0)[:, None]
    if kind in ("sign", "nonzero"):
        s = np.sign(U @ g)
        s[s == 0] = 1.0
        U = U * s[:, None]
    return U, norms <= tol


def _match_rows(R: Any, R2: Any, K: LatentGroup, ar: _Ar, tol: float | None, g: np.ndarray):
    """Rows of ``R2`` as allowed multiples of rows of ``R``: ``(q, a, ties)`` with
    ``R2[r] = a[r] R[q[r]]``, ``ties`` the classes of equal rows ``(rows1, rows2, zero)``; or a
    :class:`_Fail`."""
    S = K.scalings
    m = R.shape[0]
    if ar.exact:
        n1 = [S.normalise(list(R.row(j))) for j in range(m)]
        n2 = [S.normalise(list(R2.row(j))) for j in range(m)]
        zero = (sp.Integer(0),) * R.shape[1]
        keys = [k if k is not None else zero for k, _ in n1 + n2]
        label = [0] * len(keys)
        for c, members in enumerate(_zero.group_equal(keys, "collapsed rows")):
            for j in members:
                label[j] = c
        f1 = [f for _, f in n1]
        f2 = [f for _, f in n2]
        is_zero1 = [k is None for k, _ in n1]
    else:
        U1, z1 = _normalise_float(np.asarray(R), S.kind, g, tol)
        U2, z2 = _normalise_float(np.asarray(R2), S.kind, g, tol)
        scale = max(1.0, float(np.max(np.abs(np.asarray(R)), initial=0.0)))
        ctol = 4.0 * tol / max(float(np.min(np.max(np.abs(np.asarray(R)), axis=1)[~z1],
                                            initial=scale)), tol) \
            if S.kind in ("positive", "nonzero") else 4.0 * tol
        allU = np.vstack([U1, U2])
        allz = np.concatenate([z1, z2])
        label = [-1] * (2 * m)
        reps: list[int] = []
        for j in range(2 * m):
            if allz[j]:
                label[j] = -2
                continue
            for c, rj in enumerate(reps):
                if np.max(np.abs(allU[j] - allU[rj])) <= ctol:
                    label[j] = c
                    break
            else:
                reps.append(j)
                label[j] = len(reps) - 1
        f1 = [None] * m
        f2 = [None] * m
        is_zero1 = list(z1)
    classes: dict[Any, list[int]] = {}
    for j in range(m):
        classes.setdefault(label[j], []).append(j)
    got: dict[Any, list[int]] = {}
    for r in range(m):
        key = label[m + r]
        if key not in classes:
            return _Fail("", {"row": r, "reason": f"row {r} of theta2's collapsed weights is not "
                                                  f"an allowed multiple ({S.name}) of any row of "
                                                  "theta's"})
        got.setdefault(key, []).append(r)
    q = [0] * m
    a: list = [None] * m
    ties = []
    for key, rows1 in classes.items():
        rows2 = got.get(key, [])
        if len(rows1) != len(rows2):
            return _Fail("", {"rows_theta": rows1, "rows_theta2": rows2,
                              "reason": f"{len(rows1)} rows of theta but {len(rows2)} of theta2 "
                                        "are multiples of the same collapsed row"})
        zero = is_zero1[rows1[0]]
        for j1, r in zip(rows1, rows2):
            q[r] = j1
            a[r] = _ratio(R, R2, r, j1, S, ar, zero, f1[j1], f2[r])
        if len(rows1) > 1 or (zero and S.kind != "one"):
            ties.append((rows1, rows2, zero))
    return q, a, ties


def _ratio(R, R2, r: int, j: int, S, ar: _Ar, zero: bool, f1=None, f2=None) -> Any:
    if zero:
        return sp.Integer(1) if ar.exact else 1.0
    if ar.exact:
        if f1 is not None and f2 is not None:
            return sp.nsimplify(f2 / f1) if False else f2 / f1
        v1, v2 = list(R.row(j)), list(R2.row(r))
        p = next(k for k, e in enumerate(v1) if not is_exact_zero(e))
        return v2[p] / v1[p]
    Rj, R2r = np.asarray(R)[j], np.asarray(R2)[r]
    a = float(R2r @ Rj / (Rj @ Rj))
    return {"one": 1.0, "sign": float(np.sign(a) or 1.0)}.get(S.kind, a)


def _branches(q, a, ties, R, R2, S, ar: _Ar):
    """The first assignment, then permutations within tied classes (and free signs of zero
    rows for sign scalings)."""
    yield q, a
    if not ties:
        return
    options = []
    for rows1, rows2, zero in ties:
        signs = list(itertools.product((1, -1), repeat=len(rows2))) \
            if zero and S.kind == "sign" else [None]
        options.append([(rows2, p, sg) for p in itertools.permutations(rows1) for sg in signs])
    first = True
    for combo in itertools.product(*options):
        if first:
            first = False
            continue
        qb, ab = list(q), list(a)
        for rows2, perm, sg in combo:
            for j, (r, qq) in enumerate(zip(rows2, perm)):
                qb[r] = qq
                if sg is not None:
                    ab[r] = sp.Integer(sg[j]) if ar.exact else float(sg[j])
                else:
                    ab[r] = _ratio(R, R2, r, qq, S, ar, False)
        yield qb, ab


def _monomial(q, a, ar: _Ar) -> Any:
    m = len(q)
    A = ar.zeros(m, m)
    for r in range(m):
        A[r, q[r]] = a[r]
    return sp.ImmutableMatrix(A) if ar.exact else A


# ---------------------------------------------------------------------------------- align
class _ResidualAligner:
    def __init__(self, model: ResidualMLP, t1: ResidualTheta, t2: ResidualTheta, exact: bool,
                 tol: float | None, max_branches: int):
        self.model, self.t1, self.t2 = model, t1, t2
        self.ar = _Ar(exact)
        self.exact = exact
        self.tol = None if exact else (tol if tol is not None else default_tol(
            *t1.matrices(), *t2.matrices()))
        self.groups = model.latent_groups()
        self.budget = max_branches
        self.exhausted = False
        self.free_scalings = False
        self.ambiguous = False
        self.nullity = 0
        self.g = np.random.default_rng(2026).standard_normal(
            model.d_in + 1 + sum(model.blocks))
        ar = self.ar
        d = model.d_stream
        self.d = d
        self.n = d + 1 if model.bias else d

        def unpack(t: ResidualTheta):
            E, e = ar.m(t.embed[0]), ar.col(list(t.embed[1]) if exact else t.embed[1])
            blocks = [(ar.m(V), ar.col(list(c) if exact else c), ar.m(U))
                      for V, c, U in t.blocks]
            return E, e, blocks, ar.m(t.readout[0]), ar.col(list(t.readout[1]) if exact
                                                         else t.readout[1])

        self.p1, self.p2 = unpack(t1), unpack(t2)

    # collapsed rows of block b (0-based) / of the readout (b = B)
    def _collapsed(self, p, b: int, Binvs: list | None) -> Any:
        E, e, blocks, O, o = p
        ar = self.ar
        if b < len(blocks):
            V, c, _ = blocks[b]
            left, bias = V, c
        else:
            left, bias = O, o
        cols = [ar.mul(left, E), ar.mul(left, e) + bias]
        for bb in range(b):
            U = blocks[bb][2]
            if U.shape[1] == 0:
                continue
            W = ar.mul(left, U)
            cols.append(ar.mul(W, Binvs[bb]) if Binvs is not None else W)
        return ar.hcat(*cols)

    def run(self) -> Verdict:
        res = self._search(0, [], [])
        method = "exact" if self.exact else "tolerance"
        if isinstance(res, list):
            reason = ("theta2 = k . theta with k = (S^, A_1, ..., A_B) in K = K_s x K_1 x ... x "
                      "K_B (Definition 3.4 [SMBK26] for a residual network, an extension beyond "
                      "[SMBK26]); certified by recomputing k . theta")
            unique = not self.ambiguous and self.nullity == 0
            extra = {"unique": unique, "stream_freedom": self.nullity}
            if self.nullity:
                reason += (f"; the stream element is not determined: the constraints leave a "
                           f"{self.nullity}-dimensional family of solutions S^ (theta has a "
                           "non-discrete stabiliser), this witness is one of them")
            if self.exact:
                return Verdict.proved(reason, witness=res, method=method, **extra)
            n = sum(int(np.size(M)) for M in self.t2.matrices())
            return Verdict.checked(reason + " within tol", n_samples=n, tol=self.tol,
                                   witness=res, method=method, **extra)
        if res.undecided or self.exhausted or self.free_scalings:
            why = (res.info["reason"] if res.undecided else
                   f"the search over tied neurons was cut off after {_MAX_BRANCHES} branches"
                   if self.exhausted else "zero collapsed rows with a continuous scaling group "
                   "leave A_b undetermined")
            return Verdict.undecided(f"align (residual): {res.where}: {why}; reduce the "
                                     "parameter first (reduce_residual)", witness=res.info,
                                     method=method, tol=self.tol)
        return Verdict.refuted(f"no k in K maps theta to theta2: {res.where}: "
                               f"{res.info['reason']}",
                               counterexample={"where": res.where, **res.info}, method=method,
                               tol=self.tol)

    def _search(self, b: int, ks: list, Binvs: list) -> list | _Fail:
        B = len(self.model.blocks)
        if b == B:
            return self._finish(ks, Binvs)
        K = self.groups[b + 1]
        m = self.model.blocks[b]
        ar = self.ar
        if m == 0:
            empty = sp.ImmutableMatrix.zeros(0, 0) if self.exact else np.zeros((0, 0))
            return self._search(b + 1, ks + [(empty, empty)], Binvs + [empty])
        R = self._collapsed(self.p1, b, Binvs)
        R2 = self._collapsed(self.p2, b, None)
        where = f"block {b + 1}"
        if K.family == "GL":
            A = self._match_gl(R, R2)
            if isinstance(A, _Fail):
                A.where = where
                return A
            Binv = K.partner_inverse(A)
            return self._search(b + 1, ks + [(A, A)], Binvs + [Binv])
        res = _match_rows(R, R2, K, ar, self.tol, self.g[:R.shape[1]])
        if isinstance(res, _Fail):
            res.where = where
            return res
        q, a, ties = res
        if ties:
            self.ambiguous = True
            if any(z for _, _, z in ties) and K.scalings.kind in ("positive", "nonzero"):
                self.free_scalings = True
        last: _Fail | None = None
        for qb, ab in _branches(q, a, ties, R, R2, K.scalings, ar):
            A = _monomial(qb, ab, ar)
            try:
                Bm = K.partner(A)
            except ValueError:
                last = _Fail(where, {"reason": "a matched scaling is not allowed"},
                             undecided=not self.exact)
                continue
            out = self._search(b + 1, ks + [(A, Bm)], Binvs + [K.partner_inverse(Bm)])
            if isinstance(out, list):
                return out
            last = out
            self.budget -= 1
            if self.budget <= 0:
                self.exhausted = True
                break
        return last

    def _match_gl(self, R, R2):
        ar = self.ar
        if self.exact:
            r1 = _zero.rank(R, "collapsed rows")
            if r1 < R.shape[0]:
                return _Fail("", {"reason": "the collapsed rows have rank < m_b: A_b is not "
                                            "determined"}, undecided=True)
            A = R2 * R.T * _zero.inverse(R * R.T, "R R^T")
            if any(not is_exact_zero(v) for v in A * R - R2):
                return _Fail("", {"reason": "R2_b is not A R_b for any matrix A"})
            if _zero.rank(A, "A") < A.shape[0]:
                return _Fail("", {"reason": "the only A_b is singular"})
            return sp.ImmutableMatrix(A)
        s = np.linalg.svd(R, compute_uv=False)
        if np.sum(s > self.tol) < R.shape[0]:
            return _Fail("", {"reason": "collapsed rows of rank < m_b"}, undecided=True)
        A = np.linalg.lstsq(R.T, R2.T, rcond=None)[0].T
        if np.max(np.abs(ar.mul(A, R) - R2)) > self.tol:
            return _Fail("", {"reason": "R2_b is not A R_b within tol"})
        return A

    def _finish(self, ks: list, Binvs: list) -> list | _Fail:
        B = len(self.model.blocks)
        R = self._collapsed(self.p1, B, Binvs)
        R2 = self._collapsed(self.p2, B, None)
        diff = R2 - R
        if self.exact:
            for r in range(diff.rows):
                for c in range(diff.cols):
                    if not is_exact_zero(diff[r, c]):
                        return _Fail("readout", {"entry": (r, c), "reason": (
                            f"the collapsed readout differs at entry ({r}, {c}): {R2[r, c]} vs "
                            f"{R[r, c]} (the two networks compute different functions)")})
        else:
            err = np.abs(diff)
            if err.size and np.max(err) > self.tol:
                r, c = np.unravel_index(int(np.argmax(err)), err.shape)
                return _Fail("readout", {"entry": (int(r), int(c)), "reason": (
                    f"the collapsed readout differs at entry ({r}, {c}) by {err[r, c]:.3g}")})
        return self._stream(ks)

    # the linear system for S^ (unknown: the top d rows T of S^)
    def _groups(self, ks: list) -> list[tuple[str, Any, Any, str]]:
        (E, e, bl, O, o), (E2, e2, bl2, O2, o2) = self.p1, self.p2
        ar, d, bias = self.ar, self.d, self.model.bias
        out = []
        if bias:
            X = ar.vcat(ar.hcat(E, e), ar.hcat(ar.zeros(1, E.shape[1]), ar.eye(1)))
            out.append(("embedding [E2 e2] = [S E | S e + t]", X, ar.hcat(E2, e2), "left"))
        else:
            out.append(("embedding E2 = S E", E, E2, "left"))
        for b, ((V, c, U), (V2, c2, U2)) in enumerate(zip(bl, bl2)):
            if U.shape[1] == 0:
                continue
            A, Bm = ks[b]
            X = ar.vcat(U, ar.zeros(1, U.shape[1])) if bias else U
            out.append((f"block {b + 1}: U2 B = S U", X, ar.mul(U2, ar.m(Bm)), "left"))
            Z, W = (ar.hcat(V2, c2), ar.mul(ar.m(A), ar.hcat(V, c))) if bias else \
                (V2, ar.mul(ar.m(A), V))
            out.append((f"block {b + 1}: [V2 | c2] S^ = A [V | c]", Z, W, "right"))
        Z, W = (ar.hcat(O2, o2), ar.hcat(O, o)) if bias else (O2, O)
        out.append(("readout [O2 | o2] S^ = [O | o]", Z, W, "right"))
        del d
        return out

    def _system(self, groups) -> tuple[Any, Any]:
        d, n, ar = self.d, self.n, self.ar
        rows, rhs = [], []
        for _, X, Y, side in groups:
            if side == "left":      # T X = Y
                for i in range(d):
                    for j in range(X.shape[1]):
                        row = [0] * (d * n)
                        for k in range(n):
                            row[i * n + k] = X[k, j]
                        rows.append(row)
                        rhs.append(Y[i, j])
            else:                   # Z[:, :d] T = W - Z[:, d] e_n^T
                for i in range(Z_rows(X)):
                    for j in range(n):
                        row = [0] * (d * n)
                        for k in range(d):
                            row[k * n + j] = X[i, k]
                        rows.append(row)
                        w = Y[i, j]
                        if n == d + 1 and j == d:
                            w = w - X[i, d]
                        rhs.append(w)
        if ar.exact:
            return sp.Matrix(rows), sp.Matrix(rhs)
        return np.array(rows, dtype=float).reshape(-1, d * n), np.array(rhs, dtype=float)

    def _solve_exact(self, M, rhs) -> tuple[Any, list] | None:
        aug = M.row_join(rhs)
        dm = _zero._domain_matrix(aug)
        if dm is not None:
            Rr, piv = dm.to_field().rref()
            Rm, piv = Rr.to_Matrix(), list(piv)
        else:
            rows, piv = _zero._rref(aug, "stream system")
            Rm = sp.Matrix(rows)
        N = M.shape[1]
        if N in piv:
            return None
        x = [sp.Integer(0)] * N
        for r, c in enumerate(piv):
            x[c] = Rm[r, N]
        free = [c for c in range(N) if c not in piv]
        basis = []
        for f in free:
            v = [sp.Integer(0)] * N
            v[f] = sp.Integer(1)
            for r, c in enumerate(piv):
                v[c] = -Rm[r, f]
            basis.append(v)
        return x, basis

    def _stream(self, ks: list) -> list | _Fail:
        groups = self._groups(ks)
        d, n = self.d, self.n
        M, rhs = self._system(groups)
        if self.exact:
            sol = self._solve_exact(M, rhs)
            if sol is None:
                for upto in range(1, len(groups) + 1):  # name the first inconsistent group
                    if self._solve_exact(*self._system(groups[:upto])) is None:
                        return _Fail("stream", {"constraint": groups[upto - 1][0], "reason": (
                            f"no stream element S^ satisfies '{groups[upto - 1][0]}' together "
                            "with the constraints before it (same collapsed weights, different "
                            "factorisation: not in the orbit)")})
            x, basis = sol
            rng = np.random.default_rng(7)
            tries = [x] + [[xi + sum(sp.Rational(int(rng.integers(-5, 6)), int(
                rng.integers(1, 4))) * v[j] for v in basis) for j, xi in enumerate(x)]
                for _ in range(6 if basis else 0)]
            for cand in tries:
                T = sp.Matrix(d, n, cand)
                if _zero.rank(T[:, :d], "S") == d:
                    self.nullity = len(basis)
                    return self._certify(T, ks)
            if not basis:
                return _Fail("stream", {"reason": "the only stream element S^ that fits is "
                                                  "singular"})
            return _Fail("stream", {"reason": f"the solutions S^ form a {len(basis)}-dimensional "
                                              "family; none tried is invertible"},
                         undecided=True)
        sol, *_ = np.linalg.lstsq(M, rhs, rcond=None)
        s = np.linalg.svd(M, compute_uv=False)
        rank = int(np.sum(s > RANK_RTOL * max(1.0, s[0] if s.size else 1.0)))
        resid = np.abs(M @ sol - rhs)
        if resid.size and np.max(resid) > self.tol:
            j = int(np.argmax(resid))
            return _Fail("stream", {"reason": f"no stream element S^ fits within tol (largest "
                                              f"residual {resid[j]:.3g})"})
        T = sol.reshape(d, n)
        if np.linalg.svd(T[:, :d], compute_uv=False)[-1] <= self.tol:
            return _Fail("stream", {"reason": "the stream element found is singular"},
                         undecided=rank < d * n)
        self.nullity = d * n - rank
        return self._certify(T, ks)

    def _certify(self, T: Any, ks: list) -> list | _Fail:
        d = self.d
        if self.model.bias:
            S = sp.ImmutableMatrix(T.col_join(sp.zeros(1, d).row_join(sp.ones(1, 1)))) \
                if self.exact else np.vstack([T, np.eye(1, d + 1, d)])
        else:
            S = sp.ImmutableMatrix(T) if self.exact else T
        k = [S] + [A for A, _ in ks]
        got = self.model.transform(self.t1, k)
        ok = got.equals(self.t2) if self.exact else got.equals(self.t2, tol=self.tol)
        if not ok:
            return _Fail("certificate", {"reason": "k . theta differs from theta2 although every "
                                                   "constraint holds (tolerance too loose?)"},
                         undecided=True)
        return k


def Z_rows(X: Any) -> int:  # noqa: N802 (a helper named after the Z of the docstring)
    return X.shape[0]


@validates_arguments
def align_residual(model: ResidualMLP, theta: Any, theta2: Any, *, tol: float | None = None,
                   max_branches: int = _MAX_BRANCHES) -> Verdict:
    """Definition 3.4 [SMBK26] for a residual MLP (an extension beyond [SMBK26]): is
    ``theta2 = k . theta`` for some ``k = (S^, A_1, ..., A_B)`` in ``K``?

    ``proved`` (exact) / ``checked`` (floats, within ``tol``) with witness ``k`` (``S^`` the
    augmented stream element with biases, else ``S``); ``details["unique"]`` is False when tied
    neurons or a non-determined stream element leave other witnesses (``stream_freedom``: the
    dimension of the family of ``S^``). ``refuted`` names the block, the readout entry or the
    stream constraint that fails; ``undecided`` where zero collapsed rows with continuous
    scalings, the branch budget or an undecidable zero test leave it open. See the module
    docstring for the algorithm."""
    tol = validate_tol(tol)
    max_branches = validate_count(max_branches, "max_branches")
    from identifiable.theory.align import check_pair

    theta, theta2, exact = check_pair(model, theta, theta2, ResidualMLP)
    try:
        return _ResidualAligner(model, theta, theta2, exact, tol, max_branches).run()
    except _zero.UndecidedZero as exc:
        return Verdict.undecided(f"align (residual): {exc}", method="exact")


# ---------------------------------------------------------------------------------- reduce
@dataclass
class ResidualReduction:
    """The result of :func:`reduce_residual`: the reduced model and parameter (same function)
    and what was removed (``removed[b]``: ``(neuron, why)`` pairs of block ``b + 1``;
    ``dropped_blocks``: the 1-based blocks left empty and removed)."""

    model: ResidualMLP
    theta: ResidualTheta
    removed: list = field(default_factory=list)
    dropped_blocks: list = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.dropped_blocks) or any(self.removed)


@validates_arguments
def reduce_residual(model: ResidualMLP, theta: Any, *, tol: float | None = None
                    ) -> ResidualReduction:
    """Remove what a residual network does not use, keeping its function (the residual analogue
    of the Remark 5.2 rewrite; extension beyond [SMBK26]):

    * *dead* neurons (zero column of ``U_b``): removed;
    * *constant* neurons (zero row of ``V_b``; with biases): their constant output
      ``delta = U_b[:, j] sigma(c_b[j])`` is absorbed by the later biases
      (``c_{b'} += V_{b'} delta``, ``o += O delta``), then removed;
    * *duplicate* neurons (row ``[V_b | c_b]_q = a [V_b | c_b]_p`` with ``a`` an allowed scaling
      of ``K_b``): merged (``U_b[:, p] += c(a) U_b[:, q]``), the second removed;
    * blocks left with no neuron are dropped.

    Exact for exact parameters (zero tests by :mod:`identifiable.zero`); floats zeroed within
    ``tol`` (default :func:`identifiable.numbers.default_tol`)."""
    tol = validate_tol(tol)
    theta = model.check_theta(theta)
    exact = theta.exact
    ar = _Ar(exact)
    if not exact:
        tol = default_tol(*theta.numeric.matrices()) if tol is None else tol

    def zero(v: Any) -> bool:
        return is_exact_zero(v) if exact else abs(float(v)) <= tol

    E, e = ar.m(theta.embed[0]), ar.col(list(theta.embed[1]) if exact else theta.embed[1])
    O, o = ar.m(theta.readout[0]), ar.col(list(theta.readout[1]) if exact else theta.readout[1])
    blocks = [[ar.m(V), ar.col(list(c) if exact else c), ar.m(U)] for V, c, U in theta.blocks]
    removed: list[list] = []
    for b, blk in enumerate(blocks):
        act = model.activations[b]
        K = model.latent_group(b + 1)
        rm: list = []
        keep: list[int] = []
        V, c, U = blk
        U = ar.m(U)
        for j in range(V.shape[0]):
            if all(zero(U[r, j]) for r in range(U.shape[0])):
                rm.append((j, "dead: zero outgoing column of U"))
                continue
            if model.bias and all(zero(V[j, r]) for r in range(V.shape[1])):
                val = act.at(c[j, 0]) if exact else float(act(np.array([float(c[j, 0])]))[0])
                delta = U[:, j] * val
                for b2 in range(b + 1, len(blocks)):
                    blocks[b2][1] = blocks[b2][1] + ar.mul(blocks[b2][0], delta)
                o = o + ar.mul(O, delta)
                rm.append((j, "constant: zero row of V, output absorbed by later biases"))
                continue
            merged = False
            if K.family == "monomial":
                for p in keep:
                    rp = [V[p, r] for r in range(V.shape[1])] + [c[p, 0]]
                    rq = [V[j, r] for r in range(V.shape[1])] + [c[j, 0]]
                    a = _scaling(rp, rq, K.scalings, exact, tol)
                    if a is not None:
                        cp = K.scalings.c(a) if exact else float(K.scalings.c_numeric(
                            np.array([a]))[0])
                        U[:, p] = U[:, p] + U[:, j] * cp
                        rm.append((j, f"duplicate of neuron {p} (scaling {a})"))
                        merged = True
                        break
            if not merged:
                keep.append(j)
        blk[:] = [V[keep, :] if not exact else V.extract(keep, list(range(V.shape[1]))),
                  c[keep, :] if not exact else c.extract(keep, [0]),
                  U[:, keep] if not exact else U.extract(list(range(U.shape[0])), keep)]
        removed.append(rm)
    widths = [blk[0].shape[0] for blk in blocks]
    kept = [b for b, w in enumerate(widths) if w > 0]
    dropped = [b + 1 for b, w in enumerate(widths) if w == 0]
    new = ResidualMLP(model.d_in, model.d_stream, [widths[b] for b in kept], model.d_out,
                      [model.activations[b] for b in kept] if kept else "tanh", model.bias)
    vec = (lambda v: v) if exact else (lambda v: np.asarray(v).reshape(-1))
    kw = {"e": vec(e), "cs": [vec(blocks[b][1]) for b in kept], "o": vec(o)} \
        if model.bias else {}
    th = new.params(E, [blocks[b][0] for b in kept], [blocks[b][2] for b in kept], O, **kw)
    return ResidualReduction(new, th, removed, dropped)


def _scaling(rp: list, rq: list, S, exact: bool, tol: float | None) -> Any:
    """``a`` in S with ``rq = a rp`` (None if there is none)."""
    if exact:
        kp, fp = S.normalise(rp)
        kq, fq = S.normalise(rq)
        if kp is None or kq is None or _zero.equal(list(kp), list(kq)) is not True:
            return None
        return fq / fp
    p, qv = np.asarray(rp, dtype=float), np.asarray(rq, dtype=float)
    nn = float(p @ p)
    if nn <= tol:
        return None
    a = float(qv @ p / nn)
    if np.max(np.abs(qv - a * p)) > tol or not S.contains(a, tol):
        return None
    return a


# ---------------------------------------------------------------------------------- dimension
def residual_jacobian(model: ResidualMLP, theta: Any, X: np.ndarray) -> np.ndarray:
    """``d f(x; theta) / d theta`` for every row of ``X``: shape ``(n * d_out, n_params)``,
    columns in the order of :meth:`ResidualTheta.flat` (bias columns only with biases).
    Forward-mode differentiation in numpy, vectorised over samples and parameters."""
    th = model.check_theta(theta).numeric
    X = np.asarray(X, dtype=float)
    n, d = X.shape[0], model.d_stream
    sizes = [int(np.size(M)) for M in th.matrices()]
    P = sum(sizes)
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def affine_tangent(Hin, dHin, W, off_W, off_b):
        """Tangent of ``Hin W^T + b`` w.r.t. everything (W row-major at off_W, b at off_b)."""
        r, c = W.shape
        out = np.einsum("npk,rk->nrp", dHin, W) if dHin is not None else np.zeros((n, r, P))
        idx = off_W + np.arange(r)[:, None] * c + np.arange(c)[None, :]
        for i in range(r):
            out[:, i, idx[i]] += Hin
        out[:, np.arange(r), off_b + np.arange(r)] += 1.0
        return out

    E, e = th.embed
    H = X @ E.T + e
    dH = affine_tangent(X, None, E, offs[0], offs[1])
    j = 2
    for b, (V, c, U) in enumerate(th.blocks):
        if V.shape[0] == 0:
            j += 3
            continue
        Z = H @ V.T + c
        dZ = affine_tangent(H, dH.transpose(0, 2, 1), V, offs[j], offs[j + 1])
        act = model.activations[b]
        Aa = act(Z)
        dA = dZ * act.derivative_values(Z)[:, :, None]
        dU = np.einsum("nmp,rm->nrp", dA, U)
        idx = offs[j + 2] + np.arange(d)[:, None] * U.shape[1] + np.arange(U.shape[1])[None, :]
        for i in range(d):
            dU[:, i, idx[i]] += Aa
        H = H + Aa @ U.T
        dH = dH + dU
        j += 3
    O, o = th.readout
    dY = affine_tangent(H, dH.transpose(0, 2, 1), O, offs[j], offs[j + 1])
    J = dY.reshape(n * model.d_out, P)
    if not model.bias:  # drop the (zero) bias columns
        keep = np.ones(P, dtype=bool)
        j = 1
        keep[offs[1]:offs[2]] = False
        j = 2
        for _ in th.blocks:
            keep[offs[j + 1]:offs[j + 2]] = False
            j += 3
        keep[offs[j + 1]:offs[j + 2]] = False
        J = J[:, keep]
    return J


@validates_arguments
def functional_dimension_residual(model: ResidualMLP, theta: Any, n_samples: int | None = None,
                                  *, seed: int = 0, scale: float = 2.0,
                                  rtol: float | None = None) -> FunctionalDimension:
    """The rank of the Jacobian of the outputs at ``n_samples`` random inputs with respect to
    ``theta`` (the idea of :func:`identifiable.theory.dimension.functional_dimension`), with
    ``symmetry_dimension = dim K`` so that ``.predicted_by_symmetry = #params - dim K``. Equal
    rank means that no group larger than ``K`` (indeed no continuous family beyond the orbits)
    leaves the function unchanged near ``theta``. ``expected`` is None: no theorem predicts it
    (extension beyond [SMBK26])."""
    theta = model.check_theta(theta)
    P = model.n_params
    if n_samples is None:
        n_samples = max(32, int(math.ceil(3 * P / model.d_out)))
    X = np.random.default_rng(seed).standard_normal((int(n_samples), model.d_in)) * scale
    J = residual_jacobian(model, theta, X)
    s = np.linalg.svd(J, compute_uv=False) if J.size else np.zeros(0)
    thr = (s[0] if s.size else 0.0) * (RANK_RTOL if rtol is None else rtol)
    rank = int(np.sum(s > thr))
    gap = float(s[rank - 1] / s[rank]) if 0 < rank < s.size and s[rank] > 0 else float("inf")
    return FunctionalDimension(rank, s, gap, float(thr), P, int(n_samples),
                               model.symmetry_dimension, None,
                               "no prediction (residual networks: extension beyond [SMBK26]); "
                               "compare with #params - dim K", {"jacobian_shape": J.shape})


# ---------------------------------------------------------------------------------- equivariance
@validates_arguments
@_zero.undecided_on_zero_tests
def is_equivariant_residual(model: ResidualMLP, theta: Any, rep_in: Any, rep_out: Any = None,
                            *, n_samples: int = 256, tol: float | None = None, seed: int = 0,
                            exact_limit: int = 60) -> Verdict:
    """Definition 3.6 for a residual MLP: exact parameters and representations with at most
    ``exact_limit`` parameters are decided symbolically (``proved`` / ``refuted``); otherwise
    :func:`identifiable.is_equivariant` on samples (``checked``), whose float refutation of an
    exact network is re-decided at a rational input (certified) or by the symbolic decision."""
    from identifiable.diagrams import expr_is_zero

    theta = model.check_theta(theta)
    G = group_pair(rep_in, rep_out, model.d_in, model.d_out)
    exact = G.exact and theta.exact
    if exact and model.n_params <= exact_limit:
        x = sp.Matrix([sp.Symbol(f"x{j + 1}", real=True) for j in range(model.d_in)])
        fx = model.symbolic(theta, x)
        weakest = None
        for word, gi, go in zip(G.words, G.gin, G.gout):
            lhs = model.symbolic(theta, sp.Matrix(gi) * x)
            rhs = sp.Matrix(go) * fx
            for r in range(lhs.rows):
                v = expr_is_zero(lhs[r] - rhs[r], list(x))
                if v.status == "refuted":
                    return Verdict.refuted(f"f(g x) != g f(x) for g = {word}, output {r} "
                                           "(Definition 3.6 [SMBK26])",
                                           counterexample={"g": word, "output": r,
                                                           **v.counterexample})
                if v.status != "proved":
                    weakest = v
        if weakest is None:
            return Verdict.proved("f(g x) = g f(x) exactly for every generator (Definition 3.6 "
                                  "[SMBK26])", witness={"generators": G.words})
    v = is_equivariant(model, theta.numeric if exact else theta, [to_numpy(g) for g in G.gin],
                       [to_numpy(g) for g in G.gout], n_samples=n_samples, tol=tol, seed=seed)
    if v.status == "refuted" and exact:
        c = certified_counterexample(model, theta, G, v.counterexample)
        if c is not None:
            return c
        return is_equivariant_residual(model, theta, G.gin, G.gout, exact_limit=10**9)
    return v


def theta_prime_residual(model: ResidualMLP, theta: Any, g_in: Any, g_out: Any
                         ) -> ResidualTheta:
    """eq. (12) [SMBK26] for a residual MLP: ``g^{-1}`` acts on the first and last layer,
    ``E -> E g_in``, ``O -> g_out^{-1} O``, ``o -> g_out^{-1} o``, so that
    ``f(x; theta') = g_out^{-1} f(g_in x; theta)``."""
    theta = model.check_theta(theta)
    exact = theta.exact and isinstance(g_in, sp.MatrixBase) and isinstance(g_out, sp.MatrixBase)
    th = theta if exact else theta.numeric
    ar = _Ar(exact)
    gi = ar.m(g_in)
    go_inv = _zero.inverse(g_out, "g_out") if exact else np.linalg.inv(to_numpy(g_out))
    E = ar.mul(ar.m(th.embed[0]), gi)
    O = ar.mul(ar.m(go_inv), ar.m(th.readout[0]))
    o = ar.mul(ar.m(go_inv), ar.col(list(th.readout[1]) if exact else th.readout[1]))
    vec = (lambda v: v) if exact else (lambda v: np.asarray(v).reshape(-1))
    kw = {"e": vec(th.embed[1]), "cs": [vec(c) for _, c, _ in th.blocks], "o": vec(o)} \
        if model.bias else {}
    return model.params(E, [V for V, _, _ in th.blocks], [U for _, _, U in th.blocks], O, **kw)


# ---------------------------------------------------------------------------------- Theorem 4.1
class ResidualSteps(Theorem41Steps):
    """The algorithm of Theorem 4.1's proof (Appendix A [SMBK26]) on a residual MLP: an
    extension beyond [SMBK26], whose theorem does not cover skip connections.

    ``k`` has ``B + 1`` entries: ``k_1 = S^(g)`` in the stream group (acting on every stream
    point ``h_0, ..., h_B`` by ``h -> S h + t``) and ``k_{b+1} = A_b(g)`` in ``K_b`` (acting on
    block ``b``'s hidden layer by its partner). eq. (12) acts on ``E`` and ``(O, o)``; the
    aligner is :func:`align_residual`; the layer checks are
    :meth:`~identifiable.models.residual.ResidualMLP.check_layers` (exact for exact input), so a
    ``proved`` answer proves that *these* actions make every sublayer equivariant; what no
    theorem provides is the existence of such actions for every equivariant residual network.
    No rewrite (Remark 5.2): reduce with :func:`reduce_residual` first when the aligner says
    the parameter is not identifiable."""

    theorem = ("the residual generalisation of Theorem 4.1 (an unproved extension beyond "
               "[SMBK26])")
    cites = ("the algorithm of the proof of Theorem 4.1, Appendix A, run on a residual network: "
             "an extension beyond [SMBK26], not covered by its Theorem 4.1; every sublayer's "
             "equivariance is verified directly")

    def n_latent(self, rw: Rewrite) -> int:
        return rw.model.n_blocks + 1

    def latent_group(self, rw: Rewrite, i: int) -> LatentGroup:
        return rw.model.latent_group(i - 1)

    def generators(self, rep_in: Any, rep_out: Any) -> Generators:
        G = group_pair(rep_in, rep_out, self.model.d_in, self.model.d_out)
        return Generators(G.words, G.gin, G.gout, G.group, G.exact, raw=G)

    def prepare(self, theta: Any, G: Generators) -> Any:
        return theta.numeric if (not G.exact and theta.exact) else theta

    def sample_inputs(self, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((n, self.model.d_in))

    def end_to_end(self, theta, G, *, n_samples, tol, seed) -> Verdict:
        # samples first; an exact refutation is certified; an exact alignment + exact layer
        # checks below prove equivariance
        return is_equivariant_residual(self.model, theta, G.gin, G.gout,
                                       n_samples=max(n_samples, 64), tol=tol, seed=seed,
                                       exact_limit=0)

    def eq_12(self, rw, g_in, g_out):
        return theta_prime_residual(rw.model, rw.theta, g_in, g_out)

    def align(self, rw, theta2, *, tol, n_samples, seed) -> Verdict:
        return align_residual(rw.model, rw.theta, theta2, tol=tol)

    def action(self, rw, i, k):
        K = self.latent_group(rw, i)
        if rw.theta.exact and not isinstance(k, sp.MatrixBase):
            k = sp.ImmutableMatrix(np.asarray(k).tolist())
        return K.partner(k)

    def check_layers(self, rw, G, rho_gens, *, n_samples, tol, seed) -> Verdict:
        weakest = None
        for j, (gi, go) in enumerate(zip(G.gin, G.gout)):
            v = rw.model.check_layers(rw.theta, rw.theta, gi, rho_gens[0][j],
                                      [r[j] for r in rho_gens[1:]], go, n_samples=n_samples,
                                      tol=tol, seed=seed + j)
            if not v.holds:
                return Verdict.refuted(f"generator {G.words[j]}: {v.reason}",
                                       counterexample=v.counterexample or {"generator": j},
                                       method=v.method or "sampled", tol=v.tol)
            if weakest is None or (v.status != "proved"):
                weakest = v
        return weakest if weakest is not None else Verdict.proved("no generators")


steps_for.register(ResidualMLP, ResidualSteps)


# ---------------------------------------------------------------------------------- planted
@dataclass
class ResidualCase:
    """A planted residual network: ``theta`` is layerwise equivariant for ``planted``
    (``{"in", "stream", "blocks", "out"}``: generator images), then scrambled by ``k``."""

    model: ResidualMLP
    theta: ResidualTheta
    rep_in: list
    rep_out: list
    planted: dict
    k: list
    group_order: int


def planted_equivariant_residual(activation: str, perms: list, stream: list[str],
                                 blocks: list[list[str]], *, invariant: bool = False,
                                 bias: bool = True, seed: int = 0,
                                 scramble: bool = True) -> ResidualCase:
    """An exact residual MLP that is layerwise equivariant by construction (extension beyond
    [SMBK26]), then scrambled by a random exact ``k`` in ``K`` (with a translation of the stream
    when there are biases).

    ``perms`` generate a permutation group on the input ``R^n``; ``stream`` and ``blocks[b]``
    list the summands (``"perm"``, ``"twisted"``, ``"trivial"``) of the representations on the
    stream and on block ``b``'s hidden layer (signed permutations, so ``A = B`` for odd
    activations like tanh); the output carries the permutation representation, or the trivial
    one (``invariant=True``). Every parameter is the Reynolds projection (the group average) of
    a random rational one, so every sublayer is equivariant."""
    rng = np.random.default_rng(seed)
    perms = [list(p) for p in perms]
    n = len(perms[0])
    P = [sp.ImmutableMatrix(matrix_of_permutation(p).tolist()) for p in perms]
    rs = summand_representation(P, stream, "stream")
    rb = [summand_representation(P, kinds, "blocks") for kinds in blocks]
    one = [sp.ImmutableMatrix([[1]]) for _ in P]
    rout = one if invariant else P
    d_s = rs[0].shape[0]
    model = ResidualMLP(n, d_s, [r[0].shape[0] for r in rb], rout[0].shape[0], activation, bias)
    offsets = [0]
    sizes = [n, d_s] + [r[0].shape[0] for r in rb] + [rout[0].shape[0]]
    for s in sizes:
        offsets.append(offsets[-1] + s)
    gens = [sp.ImmutableMatrix(sp.diag(P[j], rs[j], *[r[j] for r in rb], rout[j]))
            for j in range(len(P))]
    elements = Rep(gens, name="G").elements

    def blk(g, i):
        return sp.Matrix(g)[offsets[i]:offsets[i + 1], offsets[i]:offsets[i + 1]]

    def reynolds(i_out: int, i_in: int | None, r: int, c: int) -> sp.Matrix:
        M0 = sp.Matrix(r, c, lambda *_: sp.Rational(int(rng.integers(-4, 5)),
                                                    int(rng.integers(1, 3))))
        acc = sp.zeros(r, c)
        for g in elements:
            acc += blk(g, i_out) * M0 * (blk(g, i_in).T if i_in is not None else sp.eye(1))
        return acc / len(elements)

    E = reynolds(1, 0, d_s, n)
    Vs, Us, cs = [], [], []
    for b, r in enumerate(rb):
        m = r[0].shape[0]
        Vs.append(reynolds(2 + b, 1, m, d_s))
        Us.append(reynolds(1, 2 + b, d_s, m))
        cs.append(reynolds(2 + b, None, m, 1))
    O = reynolds(len(sizes) - 1, 1, sizes[-1], d_s)
    kw = {"e": reynolds(1, None, d_s, 1), "cs": cs,
          "o": reynolds(len(sizes) - 1, None, sizes[-1], 1)} if bias else {}
    theta = model.params(E, Vs, Us, O, **kw)
    planted = {"in": P, "stream": [affine(M) if bias else M for M in rs], "blocks": rb,
               "out": rout}
    if scramble:
        k = model.random_k(seed + 1, exact=True)
        theta = model.transform(theta, k)
    else:
        k = [sp.ImmutableMatrix.eye(d_s + 1 if bias else d_s)] + [
            sp.ImmutableMatrix.eye(r[0].shape[0]) for r in rb]
    return ResidualCase(model, theta, P, rout, planted, k, len(elements))
