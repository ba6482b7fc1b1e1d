"""Identifiability of MLP parameters: Definitions 3.4 and 3.5 [SMBK26].

* :func:`align` decides whether ``theta2 = k . theta`` for some ``k`` in
  ``K = K_1 x ... x K_{L-1}`` (the action of :meth:`MLP.transform`), layer by layer, and returns
  the ``k_i`` as the witness, or ``refuted`` naming the first layer where no element of ``K_i``
  fits. Exact for exact inputs (rows hashed by a canonical form up to the allowed scalings);
  tolerance-based for floats (rows normalised up to the allowed scalings, sorted by a random
  projection and matched, then verified entry-wise within ``tol``): ``O(L d^2)`` time and memory.
* :func:`same_function` decides ``f(.; theta) = f(.; theta2)``.
* :func:`identifiable` applies the known identifiability theorems to ``theta`` itself
  (Definition 3.4), :func:`weakly_identifiable` to the parameter of the submodel ``theta`` comes
  from (Definition 3.5, via :func:`identifiable.submodels.reduce`).
* :func:`functional_dimension` is the rank of the Jacobian of the outputs at sample inputs with
  respect to ``theta`` (analytic back-propagation in numpy, vectorised over the samples),
  compared with ``#params - dim K``.

The theorems and exactly which hypotheses are checked (on the reduced parameter):

tanh
    One hidden layer: Sussmann (1992): an *irreducible* net (every hidden neuron has a non-zero
    incoming weight vector and a non-zero outgoing weight, and no two hidden neurons have
    ``(w_j, b_j) = +-(w_k, b_k)``) is determined by its function up to permutations and sign
    flips, i.e. up to ``K`` (vector outputs reduce to a generic linear combination of them).
    Deeper nets: Vlacic & Bolcskei (2021), who settle identifiability for tanh in full
    generality; we check the same conditions on every hidden layer (no zero incoming row, no zero
    outgoing column, no clones up to sign). Our reading of their non-degeneracy conditions.
logistic sigmoid
    ``sigma(-x) = 1 - sigma(x)`` is an *affine* symmetry, not in the linear intertwiner group
    ``K_i = S_{d_i}`` of eq. (8) (:func:`identifiable.check_affine_intertwiner` proves it): with
    biases, flipping a neuron and shifting the next bias gives the same function, and no
    permutation relates the two parameters. So a sigmoid parameter with a hidden neuron is not
    identifiable in the sense of Definition 3.4 (``refuted`` with that witness); the results of
    Fefferman (1994) and Vlacic & Bolcskei (2022) hold up to these affine symmetries. (The paper
    assumes origin-passing activations for MLPs, Section 5.1, which excludes the sigmoid.)
powers ``t^m`` (m >= 2)
    One hidden layer: the function is the tensor ``sum_j c_j (x) v_j^{(x) m} (+ b_2 (x) e_0^m)``
    with ``v_j = (w_j, b_j)``; by Kruskal's theorem (Kruskal 1977; N-way form of Sidiropoulos &
    Bro 2000) the decomposition is unique when ``k_C + m k_V >= 2R + m`` (``k`` the Kruskal ranks,
    ``R`` the number of terms), and uniqueness of the terms is exactly ``K``-equivalence. Deeper
    nets: Kileel et al. (2019) / Finkel et al. (2025) prove statements about *generic*
    parameters (the neurovariety reaches its expected dimension ``#params - dim K`` above an
    activation degree threshold, at most ``6w^2 - 6w + 1`` for largest width w and no width-one
    bottleneck, and 1 for equi-width architectures); they do not certify a given parameter, so
    the answer is ``undecided`` with the functional dimension attached.
linear (``sigma(t) = s t``)
    Trager et al. (2020): without biases a parameter whose hidden widths are all equal to ``r``
    with ``r <= min(d_0, d_L)`` and every ``W_i`` of rank ``r`` is determined by the product up to
    ``GL(r)`` in every hidden layer. With biases ``b_i -> b_i + t``,
    ``b_{i+1} -> b_{i+1} - W_{i+1} t`` is a symmetry outside ``K`` (refuted with that witness).
ReLU, leaky ReLU, GELU, softplus, others
    ``undecided``: identifiability is open (ReLU, GELU and softplus also satisfy the bypass
    identity ``sigma(x) - sigma(-x) = x``); Grillo & Montufar (2026) show that ReLU
    architectures with input and hidden widths >= 2 have an open set of identifiable parameters
    and functional dimension ``#params - #hidden neurons``, a statement about some parameters.
    The functional dimension at ``theta`` is attached as evidence.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.latent_groups import LatentGroup
from identifiable.models import MLP, Theta
from identifiable.numbers import (
    FLOAT64_RESOLUTION,
    RANK_RTOL,
    default_tol,
    is_exact_zero,
    rationalise,
    sample_tol,
    validate_count,
    validate_tol,
    validates_arguments,
)
from identifiable.verdict import Verdict

__all__ = [
    "align",
    "same_function",
    "identifiable",
    "is_identifiable",
    "weakly_identifiable",
    "functional_dimension",
    "FunctionalDimension",
    "activation_family",
]

_MAX_BRANCHES = 2000


# ---------------------------------------------------------------------------------- inputs
def _prepare(model: MLP, theta: Any, theta2: Any) -> tuple[Theta, Theta, bool]:
    if not isinstance(model, MLP):
        raise TypeError(f"model: expected an MLP, got {type(model).__name__}")
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
            ctol = 4.0 * tol / nmin if np.isfinite(nmin) and nmin > 0 else 1e-12
        else:
            ctol = 4.0 * tol
        ctol = max(ctol, 1e-13)
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
        s1 = np.linalg.svd(M, compute_uv=False)
        s2 = np.linalg.svd(M2, compute_uv=False)
        r1, r2 = int(np.sum(s1 > self.tol)), int(np.sum(s2 > self.tol))
        if r1 != r2:
            return _Fail(i, {"reason": f"rank {r2} of [W2_{i} | b2_{i}] differs from rank {r1}"})
        if r1 < d:
            return _Fail(i, {"reason": "[W_i | b_i] has rank < d_i: A_i is not determined"},
                         undecided=True)
        A = np.linalg.lstsq(M.T, M2.T, rcond=None)[0].T
        resid = float(np.max(np.abs(A @ M - M2)))
        if resid > self.tol:
            return _Fail(i, {"reason": f"no A with A [W_i | b_i] = [W2_i | b2_i] (residual "
                                       f"{resid:.3g})"})
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
def align(model: MLP, theta: Any, theta2: Any, *, tol: float | None = None,
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
    theta, theta2, exact = _prepare(model, theta, theta2)
    try:
        return _Aligner(model, theta, theta2, exact, tol, max_branches).run()
    except _zero.UndecidedZero as exc:
        return Verdict.undecided(f"align: {exc}", method="exact")


# ---------------------------------------------------------------------------------- same function
def _entry_tolerance_effect(model: MLP, theta: Theta, X: np.ndarray, param_tol: float) -> float:
    """First-order bound on ``max_x |f(x; theta') - f(x; theta)|`` over the rows of ``X`` when
    ``theta'`` differs from ``theta`` in entries of size at most ``param_tol`` (e.g. entries a
    float :func:`~identifiable.submodels.reduce` treated as zero).

    A change of at most ``t`` in each entry of ``W_i, b_i`` moves ``z_i`` by at most
    ``t (||h_{i-1}||_1 + 1)``; it reaches the output through ``|sigma'| <= s_j`` and
    ``||W_j||_inf`` of the later layers, where ``s_j`` is the largest slope of the activation
    over the sampled pre-activations (a local Lipschitz constant, estimated by central
    differences)."""
    th = theta.numeric
    hs = model.latents(X, th)
    zs = model.pre_activations(X, th)
    gains = []
    for layer, z in zip(model.layers, zs):
        act = getattr(layer, "activation", None)
        if act is None:
            gains.append(1.0)
            continue
        lo, hi = float(np.min(z, initial=0.0)) - 1.0, float(np.max(z, initial=0.0)) + 1.0
        grid = np.linspace(lo, hi, 2049)
        eps = 1e-4 * max(1.0, hi - lo)
        slope = np.abs(act(grid + eps) - act(grid - eps)) / (2 * eps)
        gains.append(float(np.max(slope)) if np.all(np.isfinite(slope)) else np.inf)
    L = len(zs)
    total = np.zeros(X.shape[0])
    for i in range(L):
        # effect on z_i, pushed through sigma_i, W_{i+1}, sigma_{i+1}, ...
        g = gains[i]
        for j in range(i + 1, L):
            g *= float(np.max(np.sum(np.abs(th.weights[j]), axis=1), initial=0.0)) * gains[j]
        total += param_tol * (np.sum(np.abs(hs[i]), axis=1) + 1.0) * g
    return float(np.max(total, initial=0.0))


@validates_arguments
def same_function(model: MLP, theta: Any, theta2: Any, *, n_samples: int = 256,
                  tol: float | None = None, seed: int = 0, exact_limit: int = 200,
                  param_tol: float | None = None) -> Verdict:
    """Decide ``f(.; theta) = f(.; theta2)``.

    Exact inputs with at most ``exact_limit`` parameters: ``proved`` when :func:`align` proves
    ``theta2 = k . theta`` (then eq. (3) at every layer gives equal functions) or when the two
    sympy expressions agree (:func:`identifiable.diagrams.expr_is_zero`), ``refuted`` with an
    input ``x`` where they differ (re-evaluated to 30 digits). Otherwise ``checked`` on
    ``n_samples`` random inputs (with the tolerance), or ``refuted`` with the input.

    ``param_tol``: for float parameters that are only claimed equal up to entries of size
    ``param_tol`` treated as zero (a float ``reduce``), the default tolerance is raised by the
    first-order effect of such entries on the sampled inputs (:func:`_entry_tolerance_effect`),
    and the tolerance used is recorded in the verdict.
    """
    from identifiable.diagrams import expr_is_zero

    theta, theta2, exact = _prepare(model, theta, theta2)
    x = sp.Matrix([sp.Symbol(f"x{j + 1}", real=True) for j in range(model.widths[0])])
    if exact and model.n_params <= exact_limit:
        v = align(model, theta, theta2)
        if v.status == "proved":
            return Verdict.proved("theta2 = k . theta (align, Definition 3.4); eq. (3) at every "
                                  "layer gives f(.; theta2) = f(.; theta)", witness=v.witness)
        f1, f2 = model.symbolic(theta, x), model.symbolic(theta2, x)
        weakest = None
        for o in range(f1.rows):
            vz = expr_is_zero(f1[o] - f2[o], list(x), n_probe=16)
            if vz.status == "refuted":
                pt = vz.counterexample["point"]
                xs = [pt.get(str(s), sp.Integer(0)) for s in x]
                return Verdict.refuted(
                    f"f(x; theta) and f(x; theta2) differ at output {o} (exact evaluation)",
                    counterexample={"x": xs, "output": o, "difference": vz.counterexample[
                        "value"]})
            if vz.status != "proved":
                weakest = vz
        if weakest is None:
            return Verdict.proved("the end-to-end sympy expressions agree exactly")
    rng = np.random.default_rng(seed)
    d0 = model.widths[0]
    X = np.vstack([rng.standard_normal((n_samples // 2, d0)),
                   rng.standard_normal((n_samples - n_samples // 2, d0)) * 4.0])
    Y1 = model(X, theta)
    Y2 = model(X, theta2)
    tl = sample_tol(tol, Y1)
    if tol is None and param_tol is not None and not exact:
        tl = max(tl, _entry_tolerance_effect(model, theta, X, float(param_tol)))
    err = np.abs(Y1 - Y2)
    size = max(float(np.max(np.abs(Y1), initial=0.0)), float(np.max(np.abs(Y2), initial=0.0)))
    if (not exact and tl >= size and np.max(err, initial=0.0) <= tl
            and np.max(err, initial=0.0) > FLOAT64_RESOLUTION * max(1.0, size)):
        # a tolerance that covers the outputs themselves cannot tell two functions apart: a
        # "checked" here would be vacuous
        return Verdict.undecided(
            f"f(.; theta) and f(.; theta2) differ by up to {float(np.max(err)):.3g} on the "
            f"samples, but the tolerance {tl:.3g} is at least the size of the outputs "
            f"({size:.3g}): the comparison cannot tell the functions apart"
            + (" (the tolerance was raised by the effect of the entries treated as zero, "
               "param_tol)" if tol is None and param_tol is not None else ""), tol=tl)
    if np.max(err, initial=0.0) > tl and not exact:
        # float64 rounding alone can exceed a small tol: re-evaluate the worst inputs at 60
        # digits (floats at their exact binary values) before refuting
        worst_rows = [int(k) for k in np.argsort(-err.max(axis=1))[:3]]
        precise = {}
        for k in worst_rows:
            a = model.forward_precise(X[k], theta)
            b = model.forward_precise(X[k], theta2)
            precise[k] = float(max(abs(u - v) for u, v in zip(a, b)))
        confirmed = [k for k in worst_rows if precise[k] > tl]
        if not confirmed:
            return Verdict.undecided(
                f"f(.; theta) and f(.; theta2) differ by {float(np.max(err)):.3g} in float64, "
                f"but by at most {max(precise.values()):.3g} <= tol {tl:.2g} at 60 digits: "
                "float rounding exceeds the tolerance (raise tol)", tol=tl)
        err = err.copy()
        err[[k for k in worst_rows if k not in confirmed]] = 0.0
    if np.max(err, initial=0.0) > tl:
        j, o = np.unravel_index(int(np.argmax(err)), err.shape)
        xs = X[j]
        cex = {"x": xs.tolist(), "output": int(o), "f_theta": float(Y1[j, o]),
               "f_theta2": float(Y2[j, o])}
        if exact:
            xr = rationalise(xs)
            xm = sp.Matrix(xr)
            exact_diff = model.symbolic(theta, xm)[o] - model.symbolic(theta2, xm)[o]
            if not _zero.sign(exact_diff):  # 0 or undecided: no certified counterexample
                return Verdict.undecided("a numeric difference did not survive exact "
                                         "re-evaluation at a rational input", tol=tl)
            cex = {"x": xr, "output": int(o), "difference": float(sp.N(exact_diff, 30))}
        return Verdict.refuted(f"f(x; theta) and f(x; theta2) differ at output {o} by "
                               f"{err[j, o]:.3g}", counterexample=cex,
                               method="exact" if exact else "sampled", tol=None if exact else tl)
    return Verdict.checked("f(.; theta) = f(.; theta2) on random inputs", n_samples=n_samples,
                           tol=tl, max_difference=float(np.max(err, initial=0.0)))


# ---------------------------------------------------------------------------------- families
def activation_family(act: Any) -> tuple[str, Any]:
    """``("tanh", None)``, ``("sigmoid", None)``, ``("power", m)``, ``("linear", s)``,
    ``("relu", None)`` or ``("other", None)``: :attr:`Activation.family
    <identifiable.activations.Activation.family>`, decided from the expression."""
    return act.family


def _family(model: MLP) -> tuple[str, Any]:
    fams = {a.family for a in model.activations}
    if not fams:
        return "none", None
    if len(fams) > 1:
        return "mixed", None
    return next(iter(fams))


# ---------------------------------------------------------------------------------- identifiable
def _nonzero(v: Any, tol: float | None) -> bool:
    return not is_exact_zero(v) if tol is None else abs(float(v)) > tol


def _rows(theta: Theta, i: int) -> list[list]:
    W, b = theta[i - 1]
    if theta.exact:
        return [list(W.row(r)) + [b[r]] for r in range(W.shape[0])]
    return np.hstack([W, np.asarray(b).reshape(-1, 1)]).tolist()


def _tanh_hypotheses(model: MLP, theta: Theta, tol: float | None) -> dict | None:
    """The first violated hypothesis (no zero incoming row, no zero outgoing column, no
    clones up to sign), or None."""
    for i in range(1, model.depth):
        W, _ = theta[i - 1]
        N = theta.weights[i]
        rows = _rows(theta, i)
        for r in range(W.shape[0]):
            w = list(W.row(r)) if theta.exact else W[r].tolist()
            if not any(_nonzero(v, tol) for v in w):
                return {"layer": i, "neuron": r, "hypothesis": "non-zero incoming weights"}
            col = list(N.col(r)) if theta.exact else N[:, r].tolist()
            if not any(_nonzero(v, tol) for v in col):
                return {"layer": i, "neuron": r, "hypothesis": "non-zero outgoing weights"}
        for r, q in itertools.combinations(range(W.shape[0]), 2):
            for s in (1, -1):
                if all(not _nonzero(u - s * v, tol) for u, v in zip(rows[r], rows[q])):
                    return {"layer": i, "neurons": (q, r), "hypothesis":
                            "no two neurons with (w, b) equal up to sign"}
    return None


def _kruskal_rank(cols: list, tol: float | None) -> int:
    """Largest k such that every k of the columns are linearly independent."""
    n = len(cols)
    k = 0
    for size in range(1, n + 1):
        for comb in itertools.combinations(range(n), size):
            if tol is None:
                rank = _zero.rank(sp.Matrix.hstack(*[cols[j] for j in comb]), "Kruskal rank")
            else:
                M = np.column_stack([cols[j] for j in comb])
                s = np.linalg.svd(M, compute_uv=False)
                rank = int(np.sum(s > tol * max(1.0, s[0] if s.size else 1.0)))
            if rank < size:
                return k
        k = size
    return k


def _flip_witness(model: MLP, theta: Theta) -> Theta:
    """Sigmoid: flip the first neuron of the last hidden layer, shift the next bias
    (sigma(-z) = 1 - sigma(z))."""
    i = max(j for j in range(1, model.depth) if model.widths[j] > 0)
    Ws = [sp.Matrix(W) if theta.exact else np.array(W, float) for W in theta.weights]
    bs = [sp.Matrix(b) if theta.exact else np.array(b, float).reshape(-1) for b in theta.biases]
    col = Ws[i][:, 0].copy() if not theta.exact else sp.Matrix(Ws[i][:, 0])
    Ws[i - 1][0, :] = -Ws[i - 1][0, :]
    bs[i - 1][0] = -bs[i - 1][0]
    Ws[i][:, 0] = -Ws[i][:, 0]
    bs[i] = bs[i] + (col if theta.exact else col)
    return model.params(Ws, bs) if theta.exact else Theta(tuple(Ws), tuple(bs), "float")


def _translation_witness(model: MLP, theta: Theta) -> Theta:
    """Linear sigma(t) = s t with biases: b_1 -> b_1 + e_1, b_2 -> b_2 - s W_2 e_1 (the first
    hidden layer's output moves by s e_1, which the next bias takes back)."""
    s = model.activations[0].derive().witness.slope
    Ws = list(theta.weights)
    bs = [sp.Matrix(b) if theta.exact else np.array(b, float).reshape(-1) for b in theta.biases]
    bs[0][0] = bs[0][0] + 1
    bs[1] = bs[1] - (s * sp.Matrix(Ws[1][:, 0]) if theta.exact
                     else float(s) * np.asarray(Ws[1])[:, 0])
    return model.params(Ws, bs) if theta.exact else Theta(tuple(Ws), tuple(bs), "float")


def _not_identifiable_witness(model: MLP, theta: Theta, tol: float | None) -> Verdict | None:
    """If reduce changes or shrinks theta: a second parameter with the same function that no
    element of K relates to theta."""
    from identifiable.submodels import reduce

    sub = reduce(model, theta, tol=tol)
    emb = sub.embed()
    if not emb.equals(theta, tol):
        other = emb
        why = "; ".join(sub.steps[:3])
    elif sub.model.widths != model.widths:
        # an inactive neuron: give it a non-zero incoming row (its outgoing column is zero)
        i = next(j for j in range(1, model.depth) if sub.model.widths[j] < model.widths[j])
        B = sub.B[i]
        r = next(rr for rr in range(B.shape[0]) if all(is_exact_zero(B[rr, k]) if theta.exact
                                                       else B[rr, k] == 0
                                                       for k in range(B.shape[1])))
        Ws = [sp.Matrix(W) if theta.exact else np.array(W, float) for W in theta.weights]
        Ws[i - 1][r, :] = (sp.ones(1, Ws[i - 1].shape[1]) * 7 if theta.exact
                           else np.full(Ws[i - 1].shape[1], 7.0))
        other = model.params(Ws, list(theta.biases) if model.bias else None) if theta.exact \
            else Theta(tuple(Ws), theta.biases, "float")
        why = f"neuron {r} of layer {i} is inactive; its incoming row is free"
    else:
        return None
    va = align(model, theta, other, tol=tol)
    if va.status != "refuted":
        return None
    vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
    if vs.status not in ("proved", "checked"):
        return None
    return Verdict.refuted(
        f"theta is not identifiable: theta' (same function, {vs.status}) is not k . theta "
        f"({why})", counterexample={"theta_prime": other, "align": va.reason,
                                    "same_function": vs.status},
        method="exact" if theta.exact else "tolerance", tol=tol)


def _positive(reason: str, theta: Theta, tol: float | None, **details: Any) -> Verdict:
    """``proved`` for exact parameters; for floats, whose hypotheses were checked entry-wise
    within ``tol``, ``checked`` with that tolerance."""
    if theta.exact:
        return Verdict.proved(reason, method="theorem", **details)
    n = sum(int(np.size(W)) + int(np.size(b)) for W, b in theta)
    return Verdict.checked(reason + " (hypotheses checked within tol)", n_samples=max(n, 1),
                           tol=tol or 0.0, method="tolerance", **details)


def _theta_and_tol(model: MLP, theta: Any, tol: float | None) -> tuple[Theta, float | None]:
    """Validate an MLP parameter; exact parameters get ``tol = None``, float ones a default."""
    tol = validate_tol(tol)
    if not isinstance(model, MLP):
        raise TypeError(f"model: expected an MLP, got {type(model).__name__}")
    theta = model.check_theta(theta)
    if theta.kind == "symbolic":
        raise ValueError("theta: symbolic parameters; substitute values first")
    if theta.exact:
        return theta, None
    return theta, default_tol(*theta.weights, *theta.biases) if tol is None else tol


@validates_arguments
@_zero.undecided_on_zero_tests
def identifiable(model: MLP, theta: Any, *, tol: float | None = None,
                 evidence: bool = True) -> Verdict:
    """Is ``theta`` identifiable (Definition 3.4 [SMBK26])? See the module docstring for the
    theorems and the hypotheses checked. ``refuted`` carries a second parameter ``theta_prime``
    with the same function that no element of ``K`` relates to ``theta``."""
    theta, tol = _theta_and_tol(model, theta, tol)
    method = "theorem" if theta.exact else "tolerance"
    L = model.depth
    hidden = [w for w in model.hidden_widths]
    if L == 1 or sum(hidden) == 0:
        return Verdict.proved("no hidden neurons: K is trivial and f determines theta "
                              "(affine map / constant)" if L == 1 else
                              "a hidden layer of width 0: theta~ reduces to the output bias, "
                              "which f determines", method="exact")
    w = _not_identifiable_witness(model, theta, tol)
    if w is not None:
        return w
    fam, arg = _family(model)
    if fam == "tanh":
        bad = _tanh_hypotheses(model, theta, tol)
        if bad is not None:
            return Verdict.undecided(f"tanh: hypothesis '{bad['hypothesis']}' fails at layer "
                                     f"{bad['layer']}", witness=bad, tol=tol)
        cite = ("Sussmann (1992), one hidden layer" if L == 2 else
                "Vlacic & Bolcskei (2021), tanh networks of any depth")
        return _positive(
            f"{cite}: every hidden neuron has non-zero incoming and outgoing weights and no two "
            "neurons of a layer have (w, b) equal up to sign, so theta is determined by f up to "
            "permutations and sign flips = K (Definition 3.4)", theta, tol, theorem=cite)
    if fam == "sigmoid":
        if not model.bias:
            return Verdict.undecided("logistic sigmoid without biases: no theorem applied "
                                     "(sigma(0) != 0; Section 5.1 assumes origin-passing "
                                     "activations)", tol=tol)
        from identifiable.intertwining import check_affine_intertwiner

        aff = check_affine_intertwiner(model.activations[-1], [[-1]], [0], [[-1]], [1])
        other = _flip_witness(model, theta)
        va = align(model, theta, other, tol=tol)
        vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
        if aff.status == "proved" and va.status == "refuted" and vs.status in ("proved",
                                                                               "checked"):
            return Verdict.refuted(
                "logistic sigmoid: sigma(-z) = 1 - sigma(z) (proved) lets a neuron flip with a "
                "shift of the next bias; the flipped parameter has the same function but no "
                "permutation (K_i = S_d, eq. (8)) relates it to theta",
                counterexample={"theta_prime": other, "align": va.reason,
                                "same_function": vs.status}, method=method, tol=tol)
        return Verdict.undecided("sigmoid: the flip witness did not separate", tol=tol)
    if fam == "linear":
        if model.bias:
            other = _translation_witness(model, theta)
            va = align(model, theta, other, tol=tol)
            vs = same_function(model, theta, other, tol=None if tol is None else 1e3 * tol)
            if va.status == "refuted" and vs.status in ("proved", "checked"):
                return Verdict.refuted(
                    "linear activation with biases: b_1 -> b_1 + t, b_2 -> b_2 - W_2 t keeps f "
                    "but is not in K = GL (Trager et al. 2020 concerns bias-free networks)",
                    counterexample={"theta_prime": other, "align": va.reason,
                                    "same_function": vs.status}, method=method, tol=tol)
            return Verdict.undecided("linear with biases: translation witness not separated",
                                     tol=tol)
        r = hidden[0]
        ranks = []
        for W in theta.weights:
            if theta.exact:
                ranks.append(_zero.rank(W, "W_i"))
            else:
                s = np.linalg.svd(W, compute_uv=False)
                ranks.append(int(np.sum(s > tol)))
        if all(h == r for h in hidden) and r <= min(model.widths[0], model.widths[-1]) and all(
                k == r for k in ranks):
            return _positive(
                f"Trager et al. (2020): bias-free linear network with equal hidden widths {r} <= "
                "min(d_0, d_L) and every W_i of rank r: the product determines theta up to "
                "GL(r) in every hidden layer", theta, tol)
        return Verdict.undecided(f"linear: hidden widths {hidden} / ranks {ranks} outside "
                                 "Trager et al.'s hypotheses", tol=tol)
    if fam == "power" and L == 2:
        m = int(arg)
        W1, b1 = theta[0]
        W2, b2 = theta[1]
        exact = theta.exact
        cols_v, cols_c = [], []
        for j in range(model.widths[1]):
            if exact:
                v = list(W1.row(j)) + ([b1[j]] if model.bias else [])
                cols_v.append(sp.Matrix(v))
                cols_c.append(sp.Matrix(W2.col(j)))
            else:
                v = np.concatenate([W1[j], [b1[j]] if model.bias else []])
                cols_v.append(v)
                cols_c.append(np.asarray(W2[:, j]))
        # With biases the output bias is one more rank-one term b_L (x) e_0^(x)m, counted even
        # when b_L = 0: a competing parameter may have b_L' != 0, and the uniqueness must hold
        # among decompositions with that many terms. A zero column (b_L = 0, or a neuron with
        # c_j = 0) has Kruskal rank 0, and the N-way theorem needs every k >= 1.
        b_zero = False
        if model.bias:
            e0 = [0] * model.widths[0] + [1]
            cols_v.append(sp.Matrix(e0) if exact else np.array(e0, float))
            cols_c.append(sp.Matrix(b2) if exact else np.asarray(b2, float))
            b_zero = not any(_nonzero(v, tol) for v in (list(b2) if exact else b2))
        R = len(cols_v)
        kv, kc = _kruskal_rank(cols_v, tol), _kruskal_rank(cols_c, tol)
        if min(kv, kc) >= 1 and kc + m * kv >= 2 * R + m:
            return _positive(
                f"x^{m}, one hidden layer: f is the tensor sum_j c_j (x) v_j^(x){m}"
                + (" + b_L (x) e_0^(x)" + str(m) if model.bias else "")
                + f" with R = {R} terms and Kruskal ranks k_V = {kv}, k_C = {kc} >= 1; "
                f"k_C + m k_V = {kc + m * kv} >= 2R + m = {2 * R + m}, so every decomposition "
                f"with at most R terms is this one (Kruskal 1977; Sidiropoulos & Bro 2000) and "
                "theta is determined up to K (monomial matrices)", theta, tol)
        why = (f"x^{m}: Kruskal's condition k_C + m k_V >= 2R + m with k_V, k_C >= 1 fails "
               f"(R = {R}, k_V = {kv}, k_C = {kc})")
        if b_zero:
            why += ("; b_L = 0, so the output-bias term is a zero column (k_C = 0), yet a "
                    "competing parameter may use b_L' != 0 as one more rank-one term")
    elif fam == "power":
        why = (f"x^{arg}, depth {L}: Kileel et al. (2019) / Finkel et al. (2025) concern generic "
               "parameters (expected neurovariety dimension above an activation degree "
               "threshold <= 6w^2 - 6w + 1, = 1 for equi-width), not this theta")
    elif fam == "relu":
        why = ("ReLU: identifiability of a given parameter is open (bypass sigma(x) - sigma(-x) = "
               "x; Grillo & Montufar 2026: an open set of identifiable parameters exists when "
               "input and hidden widths are >= 2)")
    else:
        why = (f"no identifiability theorem for activation(s) "
               f"{sorted({a.name for a in model.activations})} (open problem)")
    fd = None
    if evidence:
        try:
            fd = functional_dimension(model, theta)
        except ValueError:  # beyond the memory budget: no evidence attached
            fd = None
    return Verdict.undecided(why + ("" if fd is None else f"; functional dimension {fd.rank} of "
                                    f"{fd.n_params} parameters (dim K = "
                                    f"{model.symmetry_dimension})"),
                             witness=fd, tol=tol)


@validates_arguments
@_zero.undecided_on_zero_tests
def weakly_identifiable(model: MLP, theta: Any, *, tol: float | None = None,
                        evidence: bool = True) -> Verdict:
    """Is ``theta`` weakly identifiable (Definition 3.5 [SMBK26])?

    ``theta`` is reduced (:func:`identifiable.submodels.reduce`); when ``theta`` is exactly
    ``beta(theta~)`` for the resulting submodel (whose Definition 3.2 and eq. (2) are checked) the
    answer is :func:`identifiable` of ``theta~``. A half-dead neuron that is no copy of another
    (Remark 5.2) makes ``theta`` the image of no identifiable submodel parameter: in any submodel
    of eq. (9) its submodel neuron is itself half-dead, so ``refuted`` with the zeroed parameter
    as witness. Redundant neurons whose outgoing columns were not already combined give
    ``undecided`` (whether ``theta`` itself comes from an identifiable submodel parameter depends
    on the left inverse alpha*, Definition 3.2 admits many) with the weakly identifiable
    ``theta'`` of the same function as witness.
    """
    from identifiable.submodels import reduce

    theta, tol = _theta_and_tol(model, theta, tol)
    sub = reduce(model, theta, tol=tol)
    emb = sub.embed()
    vid = identifiable(sub.model, sub.theta, tol=tol, evidence=evidence)
    base = {"submodel": sub, "theta_tilde": sub.theta, "identifiable": vid}
    candidates = [sub]
    if not emb.equals(theta, tol):
        subc = reduce(model, theta, tol=tol, copies=True)
        candidates = [subc] if subc.embed().equals(theta, tol) else []
    for cand in candidates:
        chk = cand.check()
        if chk.status not in ("proved", "checked"):
            if chk.status == "refuted":
                return Verdict.undecided(
                    f"theta = beta(theta~) for a Definition 3.2 submodel, but {chk.reason}; "
                    f"theta~ is {vid.status} identifiable ({vid.reason})",
                    witness={**base, "submodel": cand, "check": chk}, tol=tol)
            continue
        if vid.status in ("proved", "checked"):
            reason = (f"theta = beta(theta~) for the submodel {cand.model.widths} (Definition "
                      f"3.2 and eq. (2) {chk.status}) and theta~ is identifiable: {vid.reason}")
            if vid.status == "proved" and chk.status == "proved":
                return Verdict.proved(reason, witness={**base, "submodel": cand, "check": chk},
                                      method=vid.method)
            return Verdict.checked(reason, n_samples=vid.n_samples or chk.n_samples or 1,
                                   tol=max(vid.tol or 0.0, chk.tol or 0.0), method=vid.method,
                                   witness={**base, "submodel": cand, "check": chk})
        if vid.status == "refuted":
            return Verdict.refuted(
                f"theta = beta(theta~) and theta~ is not identifiable ({vid.reason}); the same "
                "symmetry exists in every submodel of this class that has a hidden neuron",
                counterexample=vid.counterexample, witness=base, method=vid.method, tol=tol)
        return vid.but(reason=f"theta = beta(theta~) for the submodel {cand.model.widths}; "
                              f"{vid.reason}", witness={**base, "evidence": vid.witness})
    # theta is not beta(theta~): half-dead neurons that are no copies, or uncombined copies
    half_dead = [s for s in sub.steps if "half-dead" in s or "constant" in s]
    copies_only = all("redundant" in s or "half-dead" in s for s in sub.steps) and \
        _half_dead_are_copies(model, theta, tol)
    va = align(model, theta, emb, tol=tol)
    vs = same_function(model, theta, emb, tol=None if tol is None else 1e3 * tol)
    if half_dead and not copies_only and va.status == "refuted" and vs.status in ("proved",
                                                                                   "checked"):
        return Verdict.refuted(
            "theta has half-dead neurons (Remark 5.2: " + "; ".join(half_dead[:2]) + "); in "
            "every submodel of eq. (9) with beta(theta~) = theta the corresponding submodel "
            "neuron is half-dead too, so theta~ is never identifiable; theta' = beta(theta~) "
            f"after zeroing has the same function ({vs.status}) and is "
            f"{vid.status} weakly identifiable",
            counterexample={"theta_prime": emb, "align": va.reason, "same_function": vs.status},
            witness={**base, "weakly_identifiable_prime": vid.status}, method="exact"
            if theta.exact else "tolerance", tol=tol)
    if any(K.family == "GL" for K in model.latent_groups()):
        return Verdict.undecided(
            "linear activation: reduce projects [W_i | b_i] and W_(i+1) onto each other and "
            "changes theta; whether theta itself is beta(theta~) for another left inverse "
            f"alpha* is not decided; theta' = beta(theta~) (same function, {vs.status}) is "
            f"weakly identifiable: {vid.status}", witness={**base, "theta_prime": emb}, tol=tol)
    return Verdict.undecided(
        "theta has redundant neurons whose outgoing columns are not combined: theta itself is "
        "not beta(theta~) for the submodels built here; theta' = beta(theta~) (same function, "
        f"{vs.status}) is weakly identifiable: {vid.status}", witness={**base, "theta_prime": emb},
        tol=tol)


def _half_dead_are_copies(model: MLP, theta: Theta, tol: float | None) -> bool:
    """Are all neurons with a zero outgoing column copies (allowed multiples) of other rows?"""
    from identifiable.submodels import _Reducer

    red = _Reducer(model, theta, tol, copies=True)
    for i in range(1, model.depth):
        K = red.groups[i - 1]
        if K.family != "monomial":
            continue
        cz = red._col_zero(i)
        wz, bz = red._row_zero(i)
        rows = [int(r) for r in np.flatnonzero(~(wz & bz))]
        groups = red._classes(i, rows, K.scalings)
        in_group = {r for g in groups for r, _ in g}
        for r in np.flatnonzero(cz & ~(wz & bz)):
            if int(r) not in in_group:
                return False
    return True


# ---------------------------------------------------------------------------------- dimension
@dataclass
class FunctionalDimension:
    """Rank of the Jacobian ``d f(x_s; theta) / d theta`` over sample inputs ``x_s``."""

    rank: int
    singular_values: np.ndarray
    gap: float
    threshold: float
    n_params: int
    n_samples: int
    symmetry_dimension: int | None
    expected: int | None
    expected_reason: str
    details: dict = field(default_factory=dict)

    @property
    def predicted_by_symmetry(self) -> int | None:
        """``#params - dim K``."""
        return None if self.symmetry_dimension is None else self.n_params - \
            self.symmetry_dimension

    def __repr__(self) -> str:
        return (f"FunctionalDimension(rank={self.rank} of {self.n_params} params, expected="
                f"{self.expected}, gap={self.gap:.3g}, n_samples={self.n_samples})")

    def to_dict(self) -> dict:
        return {"rank": self.rank, "n_params": self.n_params, "expected": self.expected,
                "expected_reason": self.expected_reason, "gap": self.gap,
                "threshold": self.threshold, "n_samples": self.n_samples,
                "symmetry_dimension": self.symmetry_dimension,
                "singular_values_tail": self.singular_values[-8:].tolist()}


def jacobian(model: MLP, theta: Any, X: np.ndarray) -> np.ndarray:
    """``d f(x; theta) / d theta`` for every row of X: shape ``(n * d_L, n_params)``, columns in
    the order of :meth:`Theta.flat` (``W_1`` row-major, ``b_1``, ``W_2``, ...; no biases for a
    bias-free MLP). Analytic back-propagation, vectorised over the samples."""
    theta = model.check_theta(theta).numeric
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    L = model.depth
    hs = [X]
    zs = []
    for i, (W, b) in enumerate(theta):
        Z = hs[-1] @ np.asarray(W).T + np.asarray(b)[None, :]
        zs.append(Z)
        if i < L - 1:
            hs.append(model.activations[i](Z))
    dL = model.widths[-1]
    G = np.broadcast_to(np.eye(dL), (n, dL, dL))  # d out / d z_L
    blocks: list[np.ndarray] = []
    for i in range(L - 1, -1, -1):
        JW = np.einsum("nao,nj->naoj", G, hs[i]).reshape(n, dL, -1)
        parts = [JW] + ([G] if model.bias else [])
        blocks = parts + blocks
        if i > 0:
            W = np.asarray(theta.weights[i])
            G = (G @ W) * model.activations[i - 1].derivative_values(zs[i - 1])[:, None, :]
    J = np.concatenate(blocks, axis=2)
    return J.reshape(n * dL, -1)


def _expected(model: MLP) -> tuple[int | None, str]:
    P = model.n_params
    fam, arg = _family(model)
    hidden = model.hidden_widths
    d0, dL = model.widths[0], model.widths[-1]
    if fam in ("tanh", "sigmoid"):
        return P, f"{fam}: K finite, generic parameters identifiable up to finitely many: #params"
    if fam == "linear":
        r = min(model.widths)
        val = r * (d0 + dL - r) + (dL if model.bias else 0)
        return val, (f"linear: matrices of rank <= {r} ({r}(d_0 + d_L - {r}))"
                     + (" plus the output constant" if model.bias else ""))
    if fam == "power":
        D = int(arg) ** (model.depth - 1)
        amb = dL * (math.comb(d0 + D, D) if model.bias else math.comb(d0 + D - 1, D))
        sym = P - sum(hidden)
        return min(sym, amb), (f"x^{arg}: min(#params - #hidden = {sym}, dim of polynomial maps "
                               f"of degree {D} = {amb}) (expected; some architectures are "
                               "defective)")
    if fam == "relu":
        if d0 >= 2 and all(h >= 2 for h in hidden):
            return P - sum(hidden), ("ReLU, input and hidden widths >= 2: #params - #hidden "
                                     "(Grillo & Montufar 2026), the maximum over parameters, "
                                     "attained on an open set; dead, always-active or "
                                     "otherwise degenerate neurons give less")
        return None, "ReLU with a width-1 input or hidden layer: no prediction"
    return None, "no prediction for this activation"


#: default memory budget of :func:`functional_dimension` (the Jacobian and its SVD), bytes
FUNCTIONAL_DIMENSION_MAX_BYTES = 2 * 2**30


@validates_arguments
def functional_dimension(model: MLP, theta: Any, n_samples: int | None = None, *,
                         seed: int = 0, scale: float = 2.0, rtol: float | None = None,
                         max_bytes: int = FUNCTIONAL_DIMENSION_MAX_BYTES) -> FunctionalDimension:
    """The rank of the Jacobian of the outputs at ``n_samples`` random inputs
    (``N(0, scale^2)``) with respect to ``theta``, with the singular values and the gap
    ``s_rank / s_(rank+1)`` at the threshold ``rtol * s_max`` (default ``1e-10``); compared with
    ``#params - dim K`` and, where known, the predicted dimension (``.expected``).

    Cost: the Jacobian has ``m = n_samples * d_L`` rows and ``P = #params`` columns, so memory
    ``8 m P`` bytes (about twice that at the peak of back-propagation) and the SVD
    ``O(m P min(m, P))`` time (``n_samples`` defaults to ``max(32, 3 P / d_L)``, so both grow
    like ``P^2`` and ``P^3``). An estimate above ``max_bytes`` (default 2 GiB) is refused
    before anything is allocated: pass fewer ``n_samples`` or a larger ``max_bytes``."""
    if not isinstance(model, MLP):
        raise TypeError(f"model: expected an MLP, got {type(model).__name__}")
    theta = model.check_theta(theta)
    P = model.n_params
    dL = model.widths[-1]
    if n_samples is None:
        n_samples = max(32, int(math.ceil(3 * P / dL)))
    if int(n_samples) < 1:
        raise ValueError(f"n_samples: expected a positive integer, got {n_samples}")
    need = 2 * 8 * int(n_samples) * dL * P
    if need > max_bytes:
        raise ValueError(
            f"functional_dimension: the Jacobian of {int(n_samples)} samples x {dL} outputs x "
            f"{P} parameters needs about {need / 2**30:.3g} GiB, above max_bytes = "
            f"{max_bytes / 2**30:.3g} GiB; pass fewer n_samples (at least {-(-P // dL)} to "
            "see every direction) or a larger max_bytes")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((int(n_samples), model.widths[0])) * scale
    J = jacobian(model, theta, X)
    s = np.linalg.svd(J, compute_uv=False) if J.size else np.zeros(0)
    rtol = RANK_RTOL if rtol is None else rtol
    thr = (s[0] if s.size else 0.0) * rtol
    rank = int(np.sum(s > thr))
    if 0 < rank < s.size:
        with np.errstate(over="ignore", divide="ignore"):
            gap = float(s[rank - 1] / s[rank]) if s[rank] > 0 else float("inf")
    else:
        gap = float("inf")
    try:
        symdim: int | None = model.symmetry_dimension
    except ValueError:
        symdim = None
    exp, why = _expected(model)
    return FunctionalDimension(rank, s, gap, float(thr), P, int(n_samples), symdim, exp, why,
                               {"jacobian_shape": J.shape})



#: Definition 3.4 by the theorems of Section 5 (DESIGN.md's public name)
is_identifiable = identifiable
