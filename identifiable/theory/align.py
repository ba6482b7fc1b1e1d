"""Definition 3.4 [SMBK26]: is ``theta2 = k . theta`` for some ``k`` in ``K``?

:func:`align` decides it for any model (dispatch on the model's type): for an
:class:`~identifiable.models.mlp.MLP`, layer by layer, returning the ``k_i`` as the witness, or
``refuted`` naming the first layer where no element of ``K_i`` fits. Exact for exact inputs (rows
hashed by a canonical form up to the allowed scalings); tolerance-based for floats (rows
normalised up to the allowed scalings, sorted by a random projection and matched, then verified
entry-wise within ``tol``): ``O(L d^2)`` time and memory. For an
:class:`~identifiable.models.attention.AttentionModel`:
:func:`identifiable.theory.attention.align_attention` (numeric, Section 5.2).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.latent_groups import LatentGroup
from identifiable.models import MLP, Theta
from identifiable.models.attention import AttentionModel
from identifiable.models.residual import ResidualMLP
from identifiable.numbers import (
    ENTRY_RTOL,
    default_tol,
    is_exact_zero,
    validate_count,
    validate_tol,
    validates_arguments,
)
from identifiable.theory.attention import align_attention
from identifiable.verdict import Verdict

__all__ = ["align", "align_mlp", "check_pair"]

_MAX_BRANCHES = 2000


# ---------------------------------------------------------------------------------- inputs
def check_pair(model: Any, theta: Any, theta2: Any,
               model_type: type = MLP) -> tuple[Any, Any, bool]:
    """Two parameters of ``model`` (a ``model_type``) validated (numeric, not symbolic), as
    floats unless both are exact, and whether both are exact."""
    if not isinstance(model, model_type):
        article = "an" if model_type.__name__[0] in "AEIMOU" else "a"
        raise TypeError(f"model: expected {article} {model_type.__name__}, got "
                        f"{type(model).__name__}")
    theta = model.check_theta(theta, "theta")
    theta2 = model.check_theta(theta2, "theta2")
    if theta.kind == "symbolic" or theta2.kind == "symbolic":
        raise ValueError("theta: symbolic parameters; substitute values first")
    exact = theta.exact and theta2.exact
    if not exact:
        theta, theta2 = theta.numeric, theta2.numeric
    return theta, theta2, exact


# ---------------------------------------------------------------------------------- align
@dataclass
class _Fail:
    layer: int
    info: dict
    undecided: bool = False


class _Aligner:
    def __init__(self, model: MLP, theta: Theta, theta2: Theta, exact: bool, tol: float | None,
                 max_branches: int):
        self.m, self.t1, self.t2, self.exact = model, theta, theta2, exact
        self.L = model.depth
        self.groups = [model.latent_group(i) for i in range(1, self.L)]
        self.tol = None if exact else (tol if tol is not None else default_tol(
            *theta.weights, *theta.biases, *theta2.weights, *theta2.biases))
        self.budget = max_branches
        self.exhausted = False
        self.free_scalings = False
        rng = np.random.default_rng(2024)
        self.g = [rng.standard_normal(w + 1) for w in model.widths]
        self.g2 = [rng.standard_normal(w + 1) for w in model.widths]

    # rows of [W_i B_{i-1}^{-1} | b_i] for theta (after the previous layers' k) and theta2
    def _rows(self, i: int, prev: Any) -> tuple[Any, Any]:
        W, b = self.t1[i - 1]
        W2, b2 = self.t2[i - 1]
        W = self._apply_prev(W, prev)
        if self.exact:
            return (sp.Matrix(W).row_join(sp.Matrix(b).reshape(W.shape[0], 1)),
                    sp.Matrix(W2).row_join(sp.Matrix(b2).reshape(W2.shape[0], 1)))
        return (np.hstack([W, np.asarray(b).reshape(-1, 1)]),
                np.hstack([W2, np.asarray(b2).reshape(-1, 1)]))

    def _apply_prev(self, W: Any, prev: Any) -> Any:
        """W B_{i-1}^{-1} for the previous layer's element (None: identity)."""
        if prev is None:
            return W
        kind, data = prev
        if kind == "monomial":
            q, c = data  # column r of the result is W[:, q[r]] / c[r]
            if self.exact:
                Wm = sp.Matrix(W)
                return sp.Matrix.hstack(*[Wm[:, int(q[r])] / c[r] for r in range(len(q))]) \
                    if len(q) else sp.zeros(Wm.rows, 0)
            c = np.asarray(c, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.asarray(W)[:, q] / c[None, :]
        Binv = data
        return sp.Matrix(W) * Binv if self.exact else np.asarray(W) @ Binv

    def run(self) -> Verdict:
        res = self._search(1, None, [])
        method = "exact" if self.exact else "tolerance"
        if isinstance(res, list):
            ks = [self._dense(i + 1, e) for i, e in enumerate(res)]
            reason = "theta2 = k . theta with k_i in K_i (Definition 3.4 [SMBK26]); "
            if self.exact:
                return Verdict.proved(reason + "verified exactly", witness=ks, method=method,
                                      unique=not self.ambiguous)
            n = sum(int(np.size(W)) + int(np.size(b)) for W, b in self.t2)
            return Verdict.checked(reason + "every entry of theta2 equals k . theta within tol",
                                   n_samples=n, tol=self.tol, witness=ks, method=method,
                                   unique=not self.ambiguous)
        if res.undecided or self.exhausted or self.free_scalings:
            if res.undecided:
                why = f"layer {res.layer}: {res.info['reason']}"
            elif self.exhausted:
                why = ("the search over neurons that are equal up to scaling was cut off after "
                       f"{_MAX_BRANCHES} branches")
            else:
                why = "zero rows with a continuous scaling group leave k undetermined"
            return Verdict.undecided(f"align: {why}; reduce the parameter first "
                                     "(identifiable.reduce)", witness=res.info, method=method,
                                     tol=self.tol)
        return Verdict.refuted(
            f"no element of K_{res.layer} fits at layer {res.layer}: {res.info['reason']}"
            if res.layer < self.L else f"the last layer differs: {res.info['reason']}",
            counterexample={"layer": res.layer, **res.info}, method=method, tol=self.tol)

    ambiguous = False

    def _dense(self, i: int, e: tuple) -> Any:
        kind, data = e
        if kind == "gl":
            return data[0]
        q, a = data
        d = len(q)
        if self.exact:
            A = sp.zeros(d, d)
            for r in range(d):
                A[r, int(q[r])] = a[r]
            return sp.ImmutableMatrix(A)
        A = np.zeros((d, d))
        A[np.arange(d), np.asarray(q, dtype=int)] = a
        return A

    def _search(self, i: int, prev: Any, ks: list) -> list | _Fail:
        if i == self.L:
            return self._last(prev) or ks
        K = self.groups[i - 1]
        M, M2 = self._rows(i, prev)
        if K.family == "trivial" or M.shape[0] == 0:
            return self._search(i + 1, ("monomial", (np.zeros(0, int), [])), ks + [
                ("monomial", ([], []))])
        if K.family == "GL":
            res = self._match_gl(i, M, M2)
            if isinstance(res, _Fail):
                return res
            A, Binv = res
            return self._search(i + 1, ("gl", Binv), ks + [("gl", (A,))])
        res = self._match_monomial(i, M, M2, K.scalings)
        if isinstance(res, _Fail):
            return res
        q, a, ties = res
        if ties:
            self.ambiguous = True
        last_fail: _Fail | None = None
        for q_b, a_b in self._branches(q, a, ties, M, M2, K.scalings):
            c = self._partner(K, a_b)
            if not self.exact and not np.all(np.isfinite(c) & (np.asarray(c) != 0)):
                last_fail = _Fail(i, {"reason": "a matched scaling is 0 or not finite (the "
                                                "tolerance is too loose to tell rows apart)"},
                                  undecided=True)
                continue
            out = self._search(i + 1, ("monomial", (q_b, c)), ks + [("monomial", (q_b, a_b))])
            if isinstance(out, list):
                return out
            last_fail = out if last_fail is None or out.layer > last_fail.layer else last_fail
            self.budget -= 1
            if self.budget <= 0:
                self.exhausted = True
                break
        return last_fail

    def _partner(self, K: LatentGroup, a: Any) -> Any:
        if self.exact:
            return [K.scalings.c(v) for v in a]
        return K.scalings.c_numeric(np.asarray(a, dtype=float))

    def _branches(self, q, a, ties, M, M2, S):
        """The first assignment, then permutations within classes of equal rows."""
        yield q, a
        if not ties:
            return
        options = []
        for rows1, rows2, free in ties:
            signs = list(itertools.product((1, -1), repeat=len(rows2))) \
                if free and S.kind == "sign" else [None]
            options.append([(rows2, p, sg) for p in itertools.permutations(rows1)
                            for sg in signs])
        first = True
        for combo in itertools.product(*options):
            if first:
                first = False
                continue
            q_b = list(q) if self.exact else np.array(q)
            a_b = list(a) if self.exact else np.array(a, dtype=float)
            for rows2, perm, sg in combo:
                for j, (r, qq) in enumerate(zip(rows2, perm)):
                    q_b[r] = qq
                    if sg is not None:  # zero rows: the sign is free
                        a_b[r] = sp.Integer(sg[j]) if self.exact else float(sg[j])
                    else:
                        a_b[r] = self._ratio(M2, M, r, qq, S)
            yield q_b, a_b

    def _ratio(self, M2, M, r: int, q: int, S) -> Any:
        if self.exact:
            v2, v1 = list(M2.row(r)), list(M.row(q))
            p = next((k for k, e in enumerate(v1) if not is_exact_zero(e)), None)
            return sp.Integer(1) if p is None else sp.simplify(v2[p] / v1[p])
        n1 = float(M[q] @ M[q])
        if n1 == 0.0:
            return 1.0
        a = float(M2[r] @ M[q] / n1)
        return float(np.sign(a)) if S.kind == "sign" else (1.0 if S.kind == "one" else a)

    # ------------------------------------------------------------------ matchers
    def _match_monomial(self, i: int, M, M2, S):
        return (self._match_exact if self.exact else self._match_float)(i, M, M2, S)

    def _match_exact(self, i: int, M, M2, S):
        """Rows of theta2 against rows of theta up to S, by exact equality of the normalised
        rows (:meth:`ScalingSet.normalise`, :func:`identifiable.zero.group_equal`)."""
        d = M.rows
        norm1 = [S.normalise(list(M.row(qq))) for qq in range(d)]
        norm2 = [S.normalise(list(M2.row(r))) for r in range(M2.rows)]
        width = M.cols
        keys = [k if k is not None else (sp.Integer(0),) * width for k, _ in norm1 + norm2]
        label = [0] * len(keys)
        for c, members in enumerate(_zero.group_equal(keys, "rows of theta and theta2")):
            for j in members:
                label[j] = c
        classes: dict[int, list[tuple[int, Any]]] = {}
        for qq, (_, f) in enumerate(norm1):
            classes.setdefault(label[qq], []).append((qq, f))
        assigned: dict[int, list[tuple[int, Any]]] = {}
        for r, (_, f) in enumerate(norm2):
            key = label[d + r]
            if key not in classes:
                return _Fail(i, {"row": r, "reason": (
                    f"row {r} of [W2_{i} | b2_{i}] is not an allowed multiple ({S.name}) of any "
                    f"row of [W_{i} B_{i - 1}^-1 | b_{i}]"), "theta2_row": list(M2.row(r))})
            assigned.setdefault(key, []).append((r, f))
        q = [0] * d
        a: list = [sp.Integer(1)] * d
        ties = []
        for key, members in classes.items():
            got = assigned.get(key, [])
            if len(got) != len(members):
                return _Fail(i, {"rows_theta": [m[0] for m in members],
                                 "rows_theta2": [g[0] for g in got],
                                 "reason": f"{len(members)} rows of theta but {len(got)} rows of "
                                           "theta2 are multiples of the same row"})
            for (qq, f1), (r, f2) in zip(members, got):
                q[r] = qq
                a[r] = sp.simplify(f2 / f1)
            zero_class = norm1[members[0][0]][0] is None
            free = zero_class and S.kind != "one"
            if free:
                fail = self._zero_rows(i, [m[0] for m in members], [g[0] for g in got], S)
                if fail is not None:
                    return fail
            if len(members) > 1 or free:
                ties.append(([m[0] for m in members], [g[0] for g in got], free))
        return q, a, ties

    def _zero_rows(self, i: int, rows1: list, rows2: list, S) -> _Fail | None:
        """Zero rows have a free scaling; it only acts on their outgoing columns. The numbers
        of zero outgoing columns must agree; non-zero ones leave k undetermined (continuous S)."""
        N1, N2 = self.t1.weights[i], self.t2.weights[i]

        def zero_col(N, r):
            if self.exact:
                return all(is_exact_zero(v) for v in N.col(r))
            return bool(np.max(np.abs(np.asarray(N)[:, r]), initial=0.0) <= self.tol)

        z1 = [zero_col(N1, r) for r in rows1]
        z2 = [zero_col(N2, r) for r in rows2]
        if sum(z1) != sum(z2):
            return _Fail(i, {"rows_theta": rows1, "rows_theta2": rows2, "reason": (
                f"{len(rows1) - sum(z1)} zero rows of theta but {len(rows2) - sum(z2)} of "
                f"theta2 have a non-zero outgoing column in layer {i + 1}; a scaling of a zero "
                "row cannot change that")})
        if S.kind in ("positive", "nonzero") and not all(z1):
            self.free_scalings = True
        return None

    def _canon_float(self, M: np.ndarray, S, i: int) -> tuple[np.ndarray, np.ndarray]:
        norms = np.linalg.norm(M, axis=1)
        if S.kind in ("positive", "nonzero"):
            U = M / np.where(norms > 0, norms, 1.0)[:, None]
        else:
            U = M.copy()
        if S.kind in ("sign", "nonzero"):
            s = np.sign(U @ self.g[i - 1])
            s[s == 0] = 1.0
            U *= s[:, None]
        return U, norms

    def _match_float(self, i: int, M, M2, S):
        tol = self.tol
        d = M.shape[0]
        if M2.shape[0] != d:
            return _Fail(i, {"reason": "different widths"})
        U1, n1 = self._canon_float(M, S, i)
        U2, n2 = self._canon_float(M2, S, i)
        z1, z2 = n1 <= tol, n2 <= tol
        # candidate tolerance on the canonical rows: an entry-wise error tol in M moves a
        # normalised row by at most 2 tol / |row|; the final test below is on M itself
        if S.kind in ("positive", "nonzero"):
            nmin = float(np.min(n1[~z1], initial=np.inf))
            ctol = 4.0 * tol / nmin if np.isfinite(nmin) and nmin > 0 else ENTRY_RTOL
        else:
            ctol = 4.0 * tol
        ctol = max(ctol, 0.1 * ENTRY_RTOL)  # never below rounding of a normalised row
        g2 = self.g2[i - 1]
        ktol = ctol * float(np.sum(np.abs(g2)))
        k1, k2 = U1 @ g2, U2 @ g2
        # classes of theta's non-zero rows: runs of near-equal keys, split by distance
        nz1 = np.flatnonzero(~z1)
        order = nz1[np.argsort(k1[nz1], kind="stable")]
        cls_of = -np.ones(d, dtype=int)
        reps: list[int] = []
        # runs of near-equal keys; singletons (the usual case) are classes of their own
        brk = np.flatnonzero(np.diff(k1[order]) > ktol) + 1
        starts = np.concatenate([[0], brk]) if order.size else np.zeros(0, dtype=int)
        ends = np.concatenate([brk, [order.size]]) if order.size else np.zeros(0, dtype=int)
        single = (ends - starts) == 1
        singles = order[starts[single]]
        cls_of[singles] = np.arange(singles.size)
        reps.extend(singles.tolist())
        for j, j2 in zip(starts[~single], ends[~single]):
            run = list(order[j:j2])
            while run:
                rep = run[0]
                reps.append(rep)
                cid = len(reps) - 1
                dist = np.max(np.abs(U1[run] - U1[rep]), axis=1)
                same = dist <= ctol
                same[0] = True  # the representative itself (even if a NaN crept in)
                for m_, s_ in zip(run, same):
                    if s_:
                        cls_of[m_] = cid
                run = [m_ for m_, s_ in zip(run, same) if not s_]
        n_cls = len(reps)
        zero_cls = n_cls
        cls_of[z1] = zero_cls
        # classes of theta2's rows: nearest representative key, then distance
        rep_arr = np.array(reps, dtype=int)
        rep_keys = k1[rep_arr] if n_cls else np.zeros(0)
        korder = np.argsort(rep_keys, kind="stable")
        sorted_keys = rep_keys[korder]
        cls2 = -np.ones(d, dtype=int)
        cls2[z2] = zero_cls
        nz2 = np.flatnonzero(~z2)
        if n_cls and nz2.size:
            kk = k2[nz2]
            pos = np.searchsorted(sorted_keys, kk)
            lo = np.clip(pos - 1, 0, n_cls - 1)
            hi = np.clip(pos, 0, n_cls - 1)
            near = np.where(np.abs(sorted_keys[lo] - kk) <= np.abs(sorted_keys[hi] - kk), lo, hi)
            cid = korder[near]
            best = np.max(np.abs(U2[nz2] - U1[rep_arr[cid]]), axis=1)
            cls2[nz2] = cid
            miss = np.flatnonzero(best > ctol)
            for off in (-2, -1, 0, 1, 2):  # near-equal keys: try the neighbours
                if not miss.size:
                    break
                cand = np.clip(pos[miss] + off, 0, n_cls - 1)
                cidm = korder[cand]
                dist = np.max(np.abs(U2[nz2[miss]] - U1[rep_arr[cidm]]), axis=1)
                better = dist < best[miss]
                best[miss[better]] = dist[better]
                cls2[nz2[miss[better]]] = cidm[better]
                miss = miss[best[miss] > ctol]
            cls2[nz2[best > ctol]] = -1
        bad = np.flatnonzero(cls2 < 0)
        if bad.size:
            r = int(bad[0])
            return _Fail(i, {"row": r, "reason": (
                f"row {r} of [W2_{i} | b2_{i}] is not an allowed multiple ({S.name}) of any row "
                f"of [W_{i} B_{i - 1}^-1 | b_{i}] within tol"),
                "theta2_row_norm": float(n2[r])})
        c1 = np.bincount(cls_of, minlength=n_cls + 1)
        c2 = np.bincount(cls2, minlength=n_cls + 1)
        if not np.array_equal(c1, c2):
            cid = int(np.flatnonzero(c1 != c2)[0])
            return _Fail(i, {"reason": (f"{int(c1[cid])} rows of theta but {int(c2[cid])} rows "
                                        "of theta2 are multiples of the same row"),
                             "rows_theta": np.flatnonzero(cls_of == cid)[:8].tolist(),
                             "rows_theta2": np.flatnonzero(cls2 == cid)[:8].tolist()})
        # assignment: within each class, in index order
        o1 = np.lexsort((np.arange(d), cls_of))
        o2 = np.lexsort((np.arange(d), cls2))
        q = np.empty(d, dtype=int)
        q[o2] = o1
        denom = np.einsum("ij,ij->i", M[q], M[q])
        a = np.where(denom > 0, np.einsum("ij,ij->i", M2, M[q]) / np.where(denom > 0, denom, 1),
                     1.0)
        if S.kind == "one":
            a = np.ones(d)
        elif S.kind == "sign":
            a = np.where(a >= 0, 1.0, -1.0)
        elif S.kind == "positive" and np.any(a[~z2] <= 0):
            r = int(np.flatnonzero((a <= 0) & ~z2)[0])
            return _Fail(i, {"row": r, "reason": f"row {r}: scaling {a[r]:.6g} is not in "
                                                 f"{S.name}"})
        resid = np.max(np.abs(M2 - a[:, None] * M[q]), axis=1)
        if np.any(resid > tol):
            r = int(np.argmax(resid))
            return _Fail(i, {"row": r, "reason": (
                f"row {r} of theta2 differs from {a[r]:.6g} x row {int(q[r])} of theta by "
                f"{resid[r]:.3g} > tol"), "residual": float(resid[r])})
        ties = []
        counts = np.bincount(cls_of, minlength=n_cls + 1)
        tie_ids = set(np.flatnonzero(counts > 1).tolist())
        if counts[zero_cls] and S.kind != "one":
            tie_ids.add(zero_cls)
        for cid in sorted(tie_ids):
            rows1 = np.flatnonzero(cls_of == cid).tolist()
            rows2 = np.flatnonzero(cls2 == cid).tolist()
            free = cid == zero_cls and S.kind != "one"
            if free:
                fail = self._zero_rows(i, rows1, rows2, S)
                if fail is not None:
                    return fail
            ties.append((rows1, rows2, free))
        return q, a, ties

    def _match_gl(self, i: int, M, M2):
        d = M.shape[0]
        if self.exact:
            M_, M2_ = sp.Matrix(M), sp.Matrix(M2)
            r1, r2 = _zero.rank(M_, f"[W_{i} | b_{i}]"), _zero.rank(M2_, f"[W2_{i} | b2_{i}]")
            if r1 != r2:
                return _Fail(i, {"reason": f"rank {r2} of [W2_{i} | b2_{i}] differs from rank "
                                           f"{r1} of [W_{i} A_{i - 1}^-1 | b_{i}]; an invertible "
                                           "A_i preserves rank"})
            if r1 < d:
                return _Fail(i, {"reason": "[W_i | b_i] has rank < d_i: A_i is not determined"},
                             undecided=True)
            A = M2_ * M_.T * _zero.inverse(M_ * M_.T, "M M^T")
            if any(not _zero.is_exact_zero(e, "A M - M2") for e in A * M_ - M2_):
                return _Fail(i, {"reason": f"[W2_{i} | b2_{i}] is not A [W_{i} | b_{i}] for any "
                                           "matrix A"})
            if _zero.rank(A, "A") < d:
                return _Fail(i, {"reason": "the only solution A_i is singular"})
            return sp.ImmutableMatrix(A), _zero.inverse(A, "A")
        # K = GL: A_i is determined by A_i [W_i | b_i] = [W2_i | b2_i] when [W_i | b_i] has rank
        # d_i. Refute only with a bound that holds for every A: the least-squares A minimises
        # the Frobenius residual, and an A with every entry within tol would have a Frobenius
        # residual <= tol sqrt(#entries). (A numeric rank of theta2's matrix with an absolute
        # threshold is no such bound: k . theta with an ill-conditioned k in GL has small
        # singular values, fuzz case align:6666 with seed 20261128.)
        s1 = np.linalg.svd(M, compute_uv=False)
        if int(np.sum(s1 > self.tol)) < d:
            return _Fail(i, {"reason": "[W_i | b_i] has numeric rank < d_i: A_i is not "
                                       "determined"}, undecided=True)
        A = np.linalg.lstsq(M.T, M2.T, rcond=None)[0].T
        R = A @ M - M2
        resid = float(np.max(np.abs(R))) if R.size else 0.0
        if resid > self.tol:
            fro = float(np.linalg.norm(R))
            bound = self.tol * np.sqrt(R.size) * (1.0 + 1e3 * np.finfo(float).eps)
            if fro > bound:
                return _Fail(i, {"reason": f"no A with A [W_i | b_i] = [W2_i | b2_i] within tol: "
                                           f"the least-squares residual {fro:.3g} (Frobenius) "
                                           f"exceeds tol sqrt(#entries) = {bound:.3g}"})
            return _Fail(i, {"reason": f"the least-squares A_i leaves an entry off by {resid:.3g}"
                                       f" > tol, but another A_i might fit every entry"},
                         undecided=True)
        sA = np.linalg.svd(A, compute_uv=False)
        if sA.size and sA.min() <= np.finfo(float).eps * 1e3 * sA.max():
            return _Fail(i, {"reason": "the fitted A_i is numerically singular"}, undecided=True)
        return A, np.linalg.inv(A)

    def _last(self, prev: Any) -> _Fail | None:
        L = self.L
        W, b = self.t1[L - 1]
        W2, b2 = self.t2[L - 1]
        W = self._apply_prev(W, prev)
        if self.exact:
            D = sp.Matrix(W) - sp.Matrix(W2)
            Db = sp.Matrix(b) - sp.Matrix(b2)
            for (r, c) in itertools.product(range(D.rows), range(D.cols)):
                if not is_exact_zero(D[r, c]):
                    return _Fail(L, {"entry": (r, c), "reason": (
                        f"W2_L[{r},{c}] = {W2[r, c]} but (W_L B_(L-1)^-1)[{r},{c}] = "
                        f"{W[r, c]}")})
            for r in range(Db.rows):
                if not is_exact_zero(Db[r]):
                    return _Fail(L, {"entry": r, "reason": f"b2_L[{r}] != b_L[{r}]"})
            return None
        err = np.abs(np.asarray(W) - np.asarray(W2))
        if err.size and np.max(err) > self.tol:
            r, c = np.unravel_index(int(np.argmax(err)), err.shape)
            return _Fail(L, {"entry": (int(r), int(c)), "reason": (
                f"W2_L[{r},{c}] differs from (W_L B_(L-1)^-1)[{r},{c}] by {err[r, c]:.3g}")})
        eb = np.abs(np.asarray(b) - np.asarray(b2))
        if eb.size and np.max(eb) > self.tol:
            r = int(np.argmax(eb))
            return _Fail(L, {"entry": r, "reason": f"b2_L[{r}] differs from b_L[{r}] by "
                                                   f"{eb[r]:.3g}"})
        return None


@validates_arguments
def align_mlp(model: MLP, theta: Any, theta2: Any, *, tol: float | None = None,
          max_branches: int = _MAX_BRANCHES) -> Verdict:
    """Decide whether ``theta2 = k . theta`` for some ``k`` in ``K`` (Definition 3.4 [SMBK26]).

    Returns ``proved`` with witness ``[A_1, ..., A_{L-1}]`` (``details["unique"]`` is False when
    rows equal up to scaling made the choice ambiguous), ``refuted`` with the first layer where
    no element of ``K_i`` fits (``counterexample``: the layer, the row of ``theta2`` and why), or
    ``undecided`` where zero rows with a continuous scaling group or too many equal rows leave the
    search open. Exact for exact inputs; float inputs are compared within ``tol`` (default
    ``1e-9 max(1, max |entry|)``), recorded in the verdict.
    """
    tol = validate_tol(tol)
    max_branches = validate_count(max_branches, "max_branches")
    theta, theta2, exact = check_pair(model, theta, theta2)
    try:
        return _Aligner(model, theta, theta2, exact, tol, max_branches).run()
    except _zero.UndecidedZero as exc:
        return Verdict.undecided(f"align: {exc}", method="exact")


@functools.singledispatch
def _align(model: Any, theta: Any, theta2: Any, **kwargs: Any) -> Verdict:
    raise TypeError(f"model: align supports MLP and AttentionModel, got {type(model).__name__}")


_align.register(MLP, align_mlp)
_align.register(AttentionModel, align_attention)


@_align.register(ResidualMLP)
def _align_residual(model: ResidualMLP, theta: Any, theta2: Any, **kwargs: Any) -> Verdict:
    """A residual MLP: :func:`identifiable.theory.residual.align_residual` (keywords ``tol``,
    ``max_branches``; an extension beyond [SMBK26])."""
    from identifiable.theory.residual import align_residual

    return align_residual(model, theta, theta2, **kwargs)


def align(model: Any, theta: Any, theta2: Any, **kwargs: Any) -> Verdict:
    """Definition 3.4 [SMBK26] for any model: :func:`align_mlp` for an MLP (keywords ``tol``,
    ``max_branches``), :func:`~identifiable.theory.attention.align_attention` for an attention
    model (keywords ``tol``, ``n_samples``, ``seed``). The witness is ``[k_1, ..., k_{L-1}]``
    (for a residual MLP, :func:`~identifiable.theory.residual.align_residual`, it is
    ``[S^, A_1, ..., A_B]``)."""
    return _align(model, theta, theta2, **kwargs)
