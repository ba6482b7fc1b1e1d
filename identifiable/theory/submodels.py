"""Submodels (Definition 3.2 [SMBK26]), their builders (eq. (9)) and :func:`reduce`.

A submodel of an MLP is a smaller MLP (widths ``d~_i``) with maps

* ``alpha_i: V~_i -> V_i``, ``v~ -> A_i v~ + c_i`` (``c_i = 0`` for origin-passing sigma; for
  sigma(0) != 0 the inactive neurons output the constant sigma(0), which ``c_i`` carries);
* ``alpha*_i: V_i -> V~_i``, ``v -> A*_i v``, a left inverse (``alpha*_i o alpha_i = Id``);
* ``beta_i: Theta~_i -> Theta_i``, ``(W~, b~) -> (B_i W~ A*_{i-1}, B_i b~)`` (eq. (9));
* ``gamma_i: K~_i -> K_i`` with ``alpha_i`` and ``alpha*_i`` equivariant (eq. (2)),

where ``B_i`` is a *rectangular intertwiner*: ``A_i sigma(y) + c_i = sigma(B_i y)`` for all y.
For a monomial intertwiner group every row of ``B_i`` has at most one non-zero entry ``b`` (an
allowed scaling, column k: the neuron is a copy of submodel neuron k) and then
``A_i[r, k] = c(b)``; a zero row is an inactive neuron. For linear sigma, ``A_i = B_i`` is any
injective matrix. ``alpha_0``, ``alpha_L`` are identities (``B_L = Id``).

:meth:`Submodel.check` returns a :class:`~identifiable.verdict.Verdict` for Definition 3.2 and
eq. (2): the identities, ``alpha*_i alpha_i = Id``, the diagram of Definition 3.2 for *every*
submodel parameter (with the submodel parameters as sympy symbols where that is small enough,
otherwise on random samples: ``checked``), and eq. (2) on generators of ``K~_i`` (with a symbolic
scaling ``a`` for the continuous scaling groups, a symbolic matrix for ``GL``).

Redundant neurons with unequal multiplicities (two copies of one submodel neuron, one of another)
give a valid Definition 3.2 submodel but **no** ``gamma_i`` satisfies eq. (2) on all of
``K~_i`` (a transposition of the two submodel neurons cannot be matched by a permutation of the
big layer); :meth:`Submodel.check` then answers ``refuted`` naming that element. :func:`reduce`
therefore, by default, turns copies into inactive neurons (their outgoing columns are combined
into the representative's, Remark 5.2 zeroing then applies), so that its result always has a
``gamma``; ``reduce(..., copies=True)`` keeps the copies (eq. (9)).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.diagrams import Diagram
from identifiable.models import MLP, Theta, input_symbols
from identifiable.numbers import (
    ENTRY_RTOL,
    FLOAT64_RTOL,
    as_matrix,
    default_tol,
    exact_inverse,
    is_exact_zero,
    to_numpy,
    validate_tol,
    validates_arguments,
)
from identifiable.theory.same_function import same_function
from identifiable.verdict import Verdict

__all__ = [
    "Submodel",
    "GammaUndefined",
    "from_intertwiners",
    "half_dead_are_copies",
    "inactive_neurons",
    "redundant_neurons",
    "reduce",
]

#: largest submodel layer (entries of W~_i plus b~_i) checked with symbolic parameters
EXACT_MAX_SYMBOLS = 160


class GammaUndefined(ValueError):
    """No ``gamma_i(k~)`` in ``K_i`` makes ``alpha_i`` equivariant (eq. (2))."""


# ---------------------------------------------------------------------------------- helpers
def _nonzero_expr(e: Any) -> bool:
    """Exact: is the expression not identically zero? True only with a certified non-zero
    value at a rational point; :class:`~identifiable.zero.UndecidedZero` when neither that nor
    an exact proof of zero is found."""
    z = _zero.identically_zero(e)
    if z is None:
        raise _zero.UndecidedZero(e, "identity of eq. (2)")
    return not z


def _nonzero_entries(M: Any) -> list[tuple[int, int]]:
    """The (row, column) positions of the non-zero entries of an exact or float matrix: one pass
    over the stored entries (sympy keeps them sparse), each exactly zero-tested."""
    if isinstance(M, sp.MatrixBase):
        return [(int(r), int(c)) for (r, c), v in sp.SparseMatrix(M).todok().items()
                if not is_exact_zero(v)]
    arr = np.asarray(M)
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(arr))]


def _row_support(M: Any, rows: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(rows)]
    for r, c in sorted(_nonzero_entries(M)):
        out[r].append(c)
    return out


def _activation_zero(act: Any) -> Any:
    """sigma(0) exactly."""
    return sp.simplify(act.exact(0))


class _AffineMap:
    """``v -> M v + c`` with numeric (batched), symbolic and augmented-matrix forms."""

    def __init__(self, M: Any, c: Any = None, name: str = ""):
        self.matrix, self.offset, self.name = M, c, name

    @property
    def exact(self) -> bool:
        return isinstance(self.matrix, sp.MatrixBase)

    def __call__(self, X: Any) -> np.ndarray:
        Y = np.asarray(X, dtype=float) @ to_numpy(self.matrix).T
        if self.offset is not None:
            Y = Y + to_numpy(self.offset).reshape(1, -1)
        return Y

    def symbolic(self, v: Any) -> sp.Matrix:
        out = sp.Matrix(self.matrix) * sp.Matrix(v)
        if self.offset is not None:
            out = out + sp.Matrix(self.offset).reshape(out.rows, 1)
        return out

    def augmented(self, exact: bool) -> Any:
        r, c = self.matrix.shape
        if exact:   # joined blocks, not slice assignment (entry by entry, quadratic in sympy)
            off = sp.zeros(r, 1) if self.offset is None else \
                sp.Matrix(self.offset).reshape(r, 1)
            top = sp.Matrix(self.matrix).row_join(off)
            bottom = sp.zeros(1, c).row_join(sp.Matrix([[1]]))
            return sp.ImmutableMatrix(top.col_join(bottom))
        M = np.zeros((r + 1, c + 1))
        M[:r, :c] = to_numpy(self.matrix)
        if self.offset is not None:
            M[:r, c] = to_numpy(self.offset).reshape(-1)
        M[r, c] = 1.0
        return M

    def __repr__(self) -> str:
        return f"{self.name}: R^{self.matrix.shape[1]} -> R^{self.matrix.shape[0]}"


def _aug_linear(M: Any, exact: bool) -> Any:
    return _AffineMap(M, None).augmented(exact)


# ---------------------------------------------------------------------------------- Submodel
class Submodel:
    """A submodel of an :class:`~identifiable.models.mlp.MLP` (Definition 3.2 [SMBK26]).

    Attributes
    ----------
    ambient:
        The big model.
    model:
        The submodel (widths ``d~``).
    theta:
        The submodel parameter ``theta~`` (or None: the submodel without a chosen parameter).
    alpha, alpha_star:
        Lists ``alpha_0..alpha_L`` and ``alpha*_0..alpha*_L`` (callables on batches, with
        ``.matrix``, ``.offset``, ``.symbolic``).
    beta:
        List ``beta_1..beta_L`` of callables ``(W~, b~) -> (W, b)`` (eq. (9)).
    gamma:
        List ``gamma_0..gamma_L`` of callables ``k~ -> k`` (``gamma_0``, ``gamma_L`` identities);
        a hidden ``gamma_i`` raises :class:`GammaUndefined` where no element of ``K_i`` fits.
    B:
        The rectangular intertwiners ``B_0 = Id, B_1, ..., B_L = Id``.
    steps:
        What :func:`reduce` did to get here (empty for the builders).
    """

    def __init__(self, ambient: MLP, B: Sequence[Any], theta: Theta | None = None, *,
                 A: Sequence[Any] | None = None, A_star: Sequence[Any] | None = None,
                 offsets: Sequence[Any] | None = None, name: str = "submodel",
                 steps: Sequence[str] = ()):
        if not isinstance(ambient, MLP):
            raise TypeError(f"ambient: expected an MLP, got {type(ambient).__name__}")
        L = ambient.depth
        B = list(B)
        if len(B) != L - 1:
            raise ValueError(f"B: expected {L - 1} rectangular intertwiners (one per hidden "
                             f"layer), got {len(B)}")
        exact = all(isinstance(b, sp.MatrixBase) for b in B)
        Bs = []
        for i, b in enumerate(B):
            d = ambient.widths[i + 1]
            if np.size(b) == 0 or (getattr(b, "shape", (0, 0))[1] == 0):
                Bs.append(sp.ImmutableMatrix.zeros(d, 0) if exact else np.zeros((d, 0)))
                continue
            Bs.append(as_matrix(b, f"B[{i}]", shape=(d, None), exact=exact or None))
        self.exact = exact and all(isinstance(b, sp.MatrixBase) for b in Bs)
        if not self.exact:
            Bs = [to_numpy(b) for b in Bs]
        self.ambient = ambient
        self.name = name
        self.steps = list(steps)
        widths = [ambient.widths[0]] + [b.shape[1] for b in Bs] + [ambient.widths[-1]]
        self.model = MLP(widths, list(ambient.activations), bias=ambient.bias)
        eye = (lambda d: sp.ImmutableMatrix.eye(d)) if self.exact else (lambda d: np.eye(d))
        I0, IL = eye(widths[0]), eye(widths[-1])  # shared, never mutated
        self.B = [I0] + Bs + [IL]
        self.groups = ambient.latent_groups()
        self.sub_groups = self.model.latent_groups()
        # alpha: derived from B unless given
        As = list(A) if A is not None else [self._derive_A(i) for i in range(1, L)]
        if len(As) != L - 1:
            raise ValueError(f"A: expected {L - 1} matrices, got {len(As)}")
        As = [self._conv(a, f"A[{i}]", (ambient.widths[i + 1], widths[i + 1]))
              for i, a in enumerate(As)]
        offs = list(offsets) if offsets is not None else [self._derive_offset(i)
                                                          for i in range(1, L)]
        self.A = [I0] + As + [IL]
        self.offsets = [None] + [None if o is None else (
            sp.ImmutableMatrix(sp.Matrix(o).reshape(len(o), 1)) if self.exact
            else to_numpy(o).reshape(-1)) for o in offs] + [None]
        Ast = list(A_star) if A_star is not None else [self._default_left_inverse(i)
                                                       for i in range(1, L)]
        if len(Ast) != L - 1:
            raise ValueError(f"A_star: expected {L - 1} matrices, got {len(Ast)}")
        Ast = [self._conv(a, f"A_star[{i}]", (widths[i + 1], ambient.widths[i + 1]))
               for i, a in enumerate(Ast)]
        self.A_star = [I0] + Ast + [IL]
        self.alpha = [_AffineMap(self.A[i], self.offsets[i], f"alpha_{i}") for i in range(L + 1)]
        self.alpha_star = [_AffineMap(self.A_star[i], None, f"alpha*_{i}")
                           for i in range(L + 1)]
        self.beta = [self._beta_fn(i) for i in range(1, L + 1)]
        self.gamma = [lambda k: k] + [self._gamma_fn(i) for i in range(1, L)] + [lambda k: k]
        if theta is not None:
            theta = self.model.check_theta(theta, "theta")
        self.theta = theta

    # ------------------------------------------------------------------ construction helpers
    def _conv(self, M: Any, name: str, shape: tuple[int, int]) -> Any:
        if 0 in shape:
            return sp.ImmutableMatrix.zeros(*shape) if self.exact else np.zeros(shape)
        if self.exact:
            return as_matrix(M, name, shape=shape, exact=True)
        return to_numpy(as_matrix(M, name, shape=shape, allow_symbols=False))

    def _derive_A(self, i: int) -> Any:
        """alpha_i's matrix from B_i: c(b) on monomial rows (A = B for linear sigma)."""
        K = self.groups[i - 1]
        B = self.B[i]
        if K.family in ("GL", "trivial"):
            return B
        d, dt = B.shape
        S = K.scalings
        if not self.exact:
            return self._derive_A_float(i, B, S)
        A = sp.zeros(d, dt)
        for r in range(d):
            cols = [k for k in range(dt) if not is_exact_zero(B[r, k])]
            if len(cols) > 1:
                raise ValueError(
                    f"B[{i - 1}]: row {r} has {len(cols)} non-zero entries; sigma = "
                    f"{self.ambient.activations[i - 1].name} is not affine, so a rectangular "
                    "intertwiner (eq. (9)) has at most one per row (pass A= to test another "
                    "embedding)")
            if cols:
                b = B[r, cols[0]]
                if not S.contains(b, None if self.exact else ENTRY_RTOL):
                    raise ValueError(f"B[{i - 1}]: entry ({r}, {cols[0]}) = {b} is not an "
                                     f"allowed scaling {S.name} of "
                                     f"{self.ambient.activations[i - 1].name}")
                A[r, cols[0]] = S.c(b) if self.exact else float(S.c_numeric(np.array([b]))[0])
        return sp.ImmutableMatrix(A) if self.exact else A

    def _derive_A_float(self, i: int, B: np.ndarray, S: Any) -> np.ndarray:
        nnz = np.count_nonzero(B, axis=1)
        if np.any(nnz > 1):
            r = int(np.flatnonzero(nnz > 1)[0])
            raise ValueError(
                f"B[{i - 1}]: row {r} has {int(nnz[r])} non-zero entries; sigma = "
                f"{self.ambient.activations[i - 1].name} is not affine, so a rectangular "
                "intertwiner (eq. (9)) has at most one per row (pass A= to test another "
                "embedding)")
        rows, cols = np.nonzero(B)
        vals = B[rows, cols]
        ok = {"one": np.abs(vals - 1.0) <= ENTRY_RTOL,
              "sign": np.abs(np.abs(vals) - 1.0) <= ENTRY_RTOL,
              "positive": vals > 0, "nonzero": vals != 0}[S.kind]
        if not np.all(ok):
            j = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"B[{i - 1}]: entry ({int(rows[j])}, {int(cols[j])}) = {vals[j]} is "
                             f"not an allowed scaling {S.name} of "
                             f"{self.ambient.activations[i - 1].name}")
        A = np.zeros(B.shape)
        if vals.size:
            A[rows, cols] = S.c_numeric(vals)
        return A

    def _derive_offset(self, i: int) -> Any:
        act = self.ambient.activations[i - 1]
        s0 = _activation_zero(act)
        if s0 == 0:
            return None
        B = self.B[i]
        if not self.exact:
            zr = np.count_nonzero(B, axis=1) == 0
            if not np.any(zr):
                return None
            return np.where(zr, float(s0), 0.0)
        rows = [r for r in range(B.shape[0])
                if all(is_exact_zero(B[r, k]) for k in range(B.shape[1]))]
        if not rows:
            return None
        off = [s0 if r in rows else 0 for r in range(B.shape[0])]
        return sp.Matrix(off) if self.exact else np.array([float(v) for v in off])

    def _default_left_inverse(self, i: int) -> Any:
        """alpha*_i: for monomial A, read each submodel neuron off its first copy; for GL,
        the Moore-Penrose left inverse (A^T A)^{-1} A^T."""
        A = self.A[i]
        d, dt = A.shape
        if dt == 0:
            return sp.ImmutableMatrix.zeros(0, d) if self.exact else np.zeros((0, d))
        K = self.groups[i - 1]
        if K.family == "GL":
            if self.exact:
                At = sp.Matrix(A).T
                return sp.ImmutableMatrix(exact_inverse(At * sp.Matrix(A), f"A[{i - 1}]^T A")
                                          * At)
            return np.linalg.pinv(A)
        return _first_copy_inverse(A, self.exact, f"B[{i - 1}]")

    def _beta_fn(self, i: int):
        def beta(theta_i: tuple) -> tuple:
            W, b = theta_i
            B, Ast = self.B[i], self.A_star[i - 1]
            if isinstance(W, sp.MatrixBase) and self.exact:
                return (sp.ImmutableMatrix(sp.Matrix(B) * sp.Matrix(W) * sp.Matrix(Ast)),
                        sp.ImmutableMatrix(sp.Matrix(B) * sp.Matrix(b).reshape(W.shape[0], 1)))
            return to_numpy(B) @ to_numpy(W) @ to_numpy(Ast), to_numpy(B) @ to_numpy(b).reshape(-1)
        beta.__name__ = f"beta_{i}"
        return beta

    def _gamma_fn(self, i: int):
        def gamma(k: Any) -> Any:
            return self._gamma(i, k)
        gamma.__name__ = f"gamma_{i}"
        return gamma

    def _copy_classes(self, i: int) -> list[list[int]]:
        """For every submodel neuron k of layer i the rows of B_i that copy it, the
        representatives (which alpha*_i reads) first; computed once per layer (one pass over the
        non-zero entries of B_i and alpha*_i)."""
        cache = self.__dict__.setdefault("_classes_cache", {})
        if i not in cache:
            B, Ast = self.B[i], self.A_star[i]
            dt = B.shape[1]
            classes: list[list[int]] = [[] for _ in range(dt)]
            for (r, k) in sorted(_nonzero_entries(B)):
                classes[k].append(r)
            reads = set(_nonzero_entries(Ast))
            for k in range(dt):
                reps = [r for r in classes[k] if (k, r) in reads]
                classes[k] = reps + [r for r in classes[k] if r not in reps]
            cache[i] = classes
        return cache[i]

    def _gamma(self, i: int, kt: Any) -> Any:
        """gamma_i(k~): the element of K_i matching k~ on the copies (identity elsewhere)."""
        K = self.groups[i - 1]
        A, Ast, B = self.A[i], self.A_star[i], self.B[i]
        d, dt = B.shape
        exact = isinstance(kt, sp.MatrixBase)
        if K.family in ("GL", "trivial"):
            if exact:
                A_, Ast_ = sp.Matrix(A), sp.Matrix(Ast)
                return sp.ImmutableMatrix(A_ * sp.Matrix(kt) * Ast_ + sp.eye(d) - A_ * Ast_)
            A_, Ast_ = to_numpy(A), to_numpy(Ast)
            return A_ @ np.asarray(kt, float) @ Ast_ + np.eye(d) - A_ @ Ast_
        classes = self._copy_classes(i)
        G = sp.zeros(d, d) if exact else np.zeros((d, d))
        covered = set()
        support = _row_support(kt, dt)
        for kp in range(dt):
            cols = support[kp]
            if len(cols) != 1:
                raise ValueError(f"k~ is not monomial (row {kp})")
            k = cols[0]
            s = kt[kp, k]
            if len(classes[kp]) != len(classes[k]):
                raise GammaUndefined(
                    f"layer {i}: k~ sends submodel neuron {k} (with {len(classes[k])} copies in "
                    f"the big layer) to neuron {kp} (with {len(classes[kp])} copies); no element "
                    f"of K_{i} = {K.name} matches it")
            for r_to, r_from in zip(classes[kp], classes[k]):
                G[r_to, r_from] = B[r_to, kp] * s / B[r_from, k]
                covered.add(r_to)
        for r in range(d):
            if r not in covered:
                G[r, r] = 1
        return sp.ImmutableMatrix(G) if exact else G

    #: the ambient parameter :func:`reduce` started from (None for the builders)
    source: Theta | None = None
    #: the float tolerance ``reduce`` compared entries with (None: exact)
    source_tol: float | None = None

    def verify_function(self, theta: Theta | None = None, **kwargs: Any) -> Verdict:
        """``f(.; theta) = f(.; beta(theta~))`` for the parameter ``reduce`` started from (or
        ``theta``): :func:`identifiable.theory.same_function.same_function`."""
        theta = self.source if theta is None else theta
        if theta is None:
            raise ValueError("theta: this submodel was not made by reduce; pass a parameter")
        if self.source_tol is not None and theta is self.source:
            kwargs.setdefault("param_tol", self.source_tol)
        return same_function(self.ambient, theta, self.embed(), **kwargs)

    # ------------------------------------------------------------------ parameters
    def embed(self, theta: Theta | None = None) -> Theta:
        """``beta(theta~)``: the ambient parameter of the submodel parameter (default
        :attr:`theta`)."""
        theta = self.theta if theta is None else self.model.check_theta(theta)
        if theta is None:
            raise ValueError("theta: this submodel has no parameter; pass one")
        Ws, bs = [], []
        for i, th in enumerate(theta):
            W, b = self.beta[i](th)
            Ws.append(W)
            bs.append(b)
        if theta.exact and self.exact:
            return self.ambient.params(Ws, bs if self.ambient.bias else None)
        return Theta(tuple(to_numpy(W) for W in Ws),
                     tuple(to_numpy(b).reshape(-1) for b in bs), "float")

    def __repr__(self) -> str:
        return (f"Submodel({self.name}: widths {self.model.widths} in {self.ambient.widths}, "
                f"{'exact' if self.exact else 'float'})")

    # ------------------------------------------------------------------ diagrams
    def diagram(self, i: int) -> Diagram:
        """The square of Definition 3.2 for layer ``i`` (``1 <= i <= L``)."""
        L = self.ambient.depth
        if not 1 <= i <= L:
            raise ValueError(f"i: layers are 1..{L}, got {i}")
        amb, sub = self.ambient, self.model
        d_in, dt_in, dt_out = amb.widths[i - 1], sub.widths[i - 1], sub.widths[i]
        layer, layer_t = amb.layers[i - 1], sub.layers[i - 1]
        bias = amb.bias
        x = input_symbols(d_in, "x")
        Wt = sp.Matrix(dt_out, dt_in, lambda p, q: sp.Symbol(f"u{i}_{p + 1}_{q + 1}", real=True))
        bt = sp.Matrix(dt_out, 1, lambda p, q: sp.Symbol(f"c{i}_{p + 1}", real=True)) if bias \
            else sp.zeros(dt_out, 1)
        n_sym = dt_out * (dt_in + 1)
        point = (x, (Wt, bt)) if n_sym <= EXACT_MAX_SYMBOLS and amb.widths[i] <= 64 else None

        def sample(rng: np.random.Generator, n: int):
            X = rng.standard_normal((n, d_in)) * 2.0
            W = rng.standard_normal((n, dt_out, dt_in))
            b = rng.standard_normal((n, dt_out)) if bias else np.zeros((n, dt_out))
            return X, W, b

        B, Ast = self.B[i], self.A_star[i - 1]
        Bn, Astn = to_numpy(B), to_numpy(Ast)

        def beta_num(p):
            X, W, b = p
            return X, Bn @ W @ Astn, b @ Bn.T  # batched: O(n d^3), not einsum's O(n d^4)

        def beta_sym(p):
            xx, (W, b) = p
            return xx, (sp.Matrix(B) * W * sp.Matrix(Ast), sp.Matrix(B) * b)

        def f_num(lay):
            def f(p):
                X, W, b = p
                Z = np.einsum("nrc,nc->nr", W, X) + b
                return Z if lay.activation is None else lay.activation(Z)
            return f

        def f_sym(lay):
            return lambda p: lay.symbolic(p[0], p[1])

        Am = self.alpha_star[i - 1]
        D = Diagram(f"Definition 3.2, layer {i}")
        src = D.space(f"V_{i - 1} x Theta~_{i}", sample=sample, point=point)
        D.space(f"V_{i - 1} x Theta_{i}")
        D.space(f"V~_{i - 1} x Theta~_{i}")
        D.space(f"V~_{i}")
        dst = D.space(f"V_{i}")
        D.arrow(src, f"V_{i - 1} x Theta_{i}", f"Id x beta_{i}", beta_num, symbolic=beta_sym)
        D.arrow(f"V_{i - 1} x Theta_{i}", dst, f"f_{i}", f_num(layer), symbolic=f_sym(layer))
        D.arrow(src, f"V~_{i - 1} x Theta~_{i}", f"alpha*_{i - 1} x Id",
                lambda p: (Am(p[0]), p[1], p[2]),
                symbolic=lambda p: (Am.symbolic(p[0]), p[1]))
        D.arrow(f"V~_{i - 1} x Theta~_{i}", f"V~_{i}", f"f~_{i}", f_num(layer_t),
                symbolic=f_sym(layer_t))
        al = self.alpha[i]
        D.arrow(f"V~_{i}", dst, f"alpha_{i}", al, symbolic=al.symbolic)
        return D

    def left_inverse_diagram(self, i: int) -> Diagram:
        """``alpha*_i o alpha_i = Id`` on ``V~_i`` (affine maps as augmented matrices)."""
        exact = self.exact
        D = Diagram(f"alpha*_{i} alpha_{i} = Id")
        D.space("V~_i")
        D.space("V_i")
        D.space("V~_i (back)")
        D.arrow("V~_i", "V_i", f"alpha_{i}", matrix=self.alpha[i].augmented(exact))
        D.arrow("V_i", "V~_i (back)", f"alpha*_{i}",
                matrix=self.alpha_star[i].augmented(exact))
        dt = self.model.widths[i]
        D.arrow("V~_i", "V~_i (back)", "Id",
                matrix=sp.ImmutableMatrix.eye(dt + 1) if exact else np.eye(dt + 1))
        return D

    def gamma_diagrams(self, i: int, kt: Any) -> list[Diagram]:
        """Eq. (2) for ``k~``: ``alpha_i`` and ``alpha*_i`` equivariant, and the pre-activation
        form ``gamma_i(k~) B_i = B_i k~`` (so ``gamma_i`` is injective)."""
        G = self._gamma(i, kt)
        K, Kt = self.groups[i - 1], self.sub_groups[i - 1]
        exact = isinstance(kt, sp.MatrixBase) and self.exact
        Pt, P = Kt.entrywise_partner(kt), K.entrywise_partner(G)
        if not exact:
            Pt, P, G, kt = to_numpy(Pt), to_numpy(P), to_numpy(G), to_numpy(kt)
        al, als = self.alpha[i].augmented(exact), self.alpha_star[i].augmented(exact)
        aPt, aP = _aug_linear(Pt, exact), _aug_linear(P, exact)
        D1 = Diagram(f"eq. (2) alpha_{i}")
        for s in ("V~", "V~'", "V", "V'"):
            D1.space(s)
        D1.arrow("V~", "V~'", "k~", matrix=aPt)
        D1.arrow("V~'", "V'", f"alpha_{i}", matrix=al)
        D1.arrow("V~", "V", f"alpha_{i}", matrix=al)
        D1.arrow("V", "V'", f"gamma_{i}(k~)", matrix=aP)
        D2 = Diagram(f"eq. (2) alpha*_{i}")
        for s in ("V", "V'", "V~", "V~'"):
            D2.space(s)
        D2.arrow("V", "V~", f"alpha*_{i}", matrix=als)
        D2.arrow("V~", "V~'", "k~", matrix=aPt)
        D2.arrow("V", "V'", f"gamma_{i}(k~)", matrix=aP)
        D2.arrow("V'", "V~'", f"alpha*_{i}", matrix=als)
        D3 = Diagram(f"gamma_{i}(k~) B_{i} = B_{i} k~")
        for s in ("Z~", "Z~'", "Z", "Z'"):
            D3.space(s)
        Bm = self.B[i] if exact else to_numpy(self.B[i])
        D3.arrow("Z~", "Z~'", "k~", matrix=kt)
        D3.arrow("Z~'", "Z'", f"B_{i}", matrix=Bm)
        D3.arrow("Z~", "Z", f"B_{i}", matrix=Bm)
        D3.arrow("Z", "Z'", f"gamma_{i}(k~)", matrix=G)
        return [D1, D2, D3]

    def _generators(self, i: int) -> tuple[list, bool]:
        """Generators of K~_i (exact; symbolic scaling / matrix for the continuous groups) and
        whether they generate all of K~_i."""
        Kt = self.sub_groups[i - 1]
        dt = self.model.widths[i]
        if dt == 0:
            return [], True
        return Kt.generators(seed=i)

    # ------------------------------------------------------------------ checks
    @validates_arguments
    @_zero.undecided_on_zero_tests
    def check_definition(self, *, method: str = "auto", n_samples: int = 48,
                         seed: int = 0) -> Verdict:
        """Definition 3.2: identities at 0 and L, ``alpha*_i alpha_i = Id``, and the diagram of
        every layer for all submodel parameters."""
        L = self.ambient.depth
        for i, d in ((0, self.ambient.widths[0]), (L, self.ambient.widths[-1])):
            if self.model.widths[i] != d:
                return Verdict.refuted(f"V~_{i} != V_{i}", counterexample={"layer": i})
        parts = []
        for i in range(1, L):
            v = self.left_inverse_diagram(i).commutes()
            if v.status == "refuted":
                return Verdict.refuted(f"alpha*_{i} alpha_{i} != Id: {v.reason}",
                                       counterexample={"layer": i, **v.counterexample})
            parts.append(v)
        for i in range(1, L + 1):
            D = self.diagram(i)
            m = method
            if self.exact is False and m == "auto":
                m = "sampled"
            v = D.commutes(method=m, n_samples=n_samples, seed=seed + i)
            if v.status == "refuted":
                return Verdict.refuted(f"the diagram of Definition 3.2 does not commute at layer "
                                       f"{i}: {v.reason}",
                                       counterexample={"layer": i, **v.counterexample},
                                       tol=v.tol, method=v.method)
            parts.append(v)
        return _combine(parts, "Definition 3.2 [SMBK26]: alpha_0, alpha_L identities, "
                               "alpha*_i alpha_i = Id, diagrams commute for all submodel "
                               "parameters")

    @_zero.undecided_on_zero_tests
    def check_gamma(self) -> Verdict:
        """Eq. (2) on generators of every ``K~_i``, ``gamma_i`` homomorphic on generator pairs,
        ``gamma_i(k~) B_i = B_i k~`` (injectivity), and ``gamma_i(k~)`` in ``K_i``."""
        L = self.ambient.depth
        parts = []
        for i in range(1, L):
            gens, complete = self._generators(i)
            K = self.groups[i - 1]
            for g in gens:
                if not self.exact:
                    g = sp.ImmutableMatrix(g.subs({s: 2 for s in g.free_symbols}))
                try:
                    G = self._gamma(i, g)
                except GammaUndefined as exc:
                    return Verdict.refuted(f"eq. (2) fails: {exc}",
                                           counterexample={"layer": i, "k_tilde": g})
                for D in self.gamma_diagrams(i, g):
                    v = D.commutes()
                    if v.status == "refuted":
                        return Verdict.refuted(f"eq. (2) fails at layer {i}: {v.reason}",
                                               counterexample={"layer": i, "k_tilde": g,
                                                               **v.counterexample})
                    parts.append(v)
                if isinstance(G, sp.MatrixBase) and G.free_symbols:
                    # membership on an instance: a = 2, or an invertible matrix for GL
                    dt = g.shape[0]
                    inst = sp.ImmutableMatrix(dt, dt, lambda p, q: 1 if p >= q else 0) \
                        if self.sub_groups[i - 1].family == "GL" else \
                        sp.ImmutableMatrix(g.subs({s: 2 for s in g.free_symbols}))
                    Gc = self._gamma(i, inst)
                else:
                    Gc = G
                if K.d and not K.contains(Gc):
                    return Verdict.refuted(f"gamma_{i}(k~) is not in K_{i} = {K.name}",
                                           counterexample={"layer": i, "k_tilde": g,
                                                           "gamma": G})
            # GL: gamma(k) = A k A* + (I - A A*) is a homomorphism as soon as A* A = Id (checked
            # above): gamma(g) gamma(h) = A g h A* + (I - A A*). Monomial: check generator pairs.
            pair_gens = [] if self.sub_groups[i - 1].family == "GL" else gens
            for g in pair_gens:
                for h in pair_gens:
                    gh = sp.ImmutableMatrix(sp.Matrix(g) * sp.Matrix(h))
                    if not self.exact:
                        gh = sp.ImmutableMatrix(gh.subs({s: 2 for s in gh.free_symbols}))
                        g2 = g.subs({s: 2 for s in g.free_symbols})
                        h2 = h.subs({s: 2 for s in h.free_symbols})
                        err = np.max(np.abs(to_numpy(self._gamma(i, gh))
                                            - to_numpy(self._gamma(i, g2))
                                            @ to_numpy(self._gamma(i, h2))), initial=0.0)
                        if err > FLOAT64_RTOL:
                            return Verdict.refuted(f"gamma_{i} is not a homomorphism",
                                                   counterexample={"layer": i, "g": g, "h": h})
                        continue
                    D = sp.Matrix(self._gamma(i, gh)) - sp.Matrix(self._gamma(i, g)) * \
                        sp.Matrix(self._gamma(i, h))
                    if any(_nonzero_expr(e) for e in D if e != 0):
                        return Verdict.refuted(f"gamma_{i} is not a homomorphism",
                                               counterexample={"layer": i, "g": g, "h": h})
            if not complete:
                parts.append(Verdict.checked(f"layer {i}: eq. (2) on {len(gens)} random elements "
                                             "of K~_i", n_samples=len(gens), tol=0.0))
        if not self.exact:
            parts.append(Verdict.checked("eq. (2) on generators with the scaling a = 2 (float "
                                         "submodel)", n_samples=max(1, len(parts)),
                                         tol=FLOAT64_RTOL))
        return _combine(parts, "eq. (2) [SMBK26]: alpha_i, alpha*_i equivariant under gamma_i on "
                               "generators of K~_i (transpositions, a symbolic scaling a in S / "
                               "generic symbolic matrices for GL), gamma_i homomorphic (generator "
                               "pairs; for GL from A*_i A_i = Id) and injective "
                               "(gamma_i(k~) B_i = B_i k~)")

    @validates_arguments
    @_zero.undecided_on_zero_tests
    def check(self, *, method: str = "auto", n_samples: int = 48, seed: int = 0) -> Verdict:
        """Definition 3.2 and eq. (2) [SMBK26] for these alpha, alpha*, beta, gamma."""
        v1 = self.check_definition(method=method, n_samples=n_samples, seed=seed)
        if v1.status == "refuted":
            return v1
        v2 = self.check_gamma()
        if v2.status == "refuted":
            return v2.but(reason=f"Definition 3.2 {v1.status}, but {v2.reason}")
        return _combine([v1, v2], "Definition 3.2 and eq. (2) [SMBK26] hold")


def _combine(parts: list[Verdict], reason: str) -> Verdict:
    statuses = {v.status for v in parts}
    if not parts or statuses == {"proved"}:
        tols = [v.tol for v in parts if v.tol is not None]
        return Verdict.proved(reason, method="exact" if not tols else "tolerance",
                              tol=max(tols) if tols else None)
    if "undecided" in statuses:
        v = next(v for v in parts if v.status == "undecided")
        return v.but(reason=f"{reason}; but {v.reason}")
    checked = [v for v in parts if v.status == "checked"]
    return Verdict.checked(reason + " (partly on samples: " + "; ".join(
        v.reason for v in checked[:2]) + ")", n_samples=min(v.n_samples for v in checked),
        tol=max(v.tol for v in checked))


# ---------------------------------------------------------------------------------- builders
def from_intertwiners(ambient: MLP, B: Sequence[Any], *, theta: Theta | None = None,
                      theta_sub: Theta | None = None, A: Sequence[Any] | None = None,
                      A_star: Sequence[Any] | None = None, name: str = "eq. (9) submodel",
                      steps: Sequence[str] = ()) -> Submodel:
    """The submodel of eq. (9) [SMBK26] given rectangular intertwiners ``B_1..B_{L-1}``
    (``d_i x d~_i``).

    ``alpha_i`` (matrix ``A_i`` with ``A_i sigma(y) = sigma(B_i y)``) is derived from ``B_i``
    unless ``A`` is given; ``alpha*_i`` defaults to reading each submodel neuron off its first
    copy (pseudo-inverse for linear sigma). The submodel parameter is ``theta_sub``, or the
    restriction of an ambient ``theta``: ``W~_i = B_i^+ W_i A_{i-1}``, ``b~_i = B_i^+ b_i`` with
    ``B_i^+`` the left inverse reading the representatives (this combines the outgoing columns of
    copies with the partner factors ``c(a)``).
    """
    sub = Submodel(ambient, B, None, A=A, A_star=A_star, name=name, steps=steps)
    if theta_sub is not None:
        sub.theta = sub.model.check_theta(theta_sub, "theta_sub")
    elif theta is not None:
        sub.theta = _restrict(sub, ambient.check_theta(theta))
    return sub


def _restrict(sub: Submodel, theta: Theta) -> Theta:
    L = sub.ambient.depth
    exact = theta.exact and sub.exact
    Ws, bs = [], []
    for i, (W, b) in enumerate(theta):
        Bplus = _left_inverse_rows(sub, i + 1)
        A_prev = sub.A[i]
        if exact:
            Wt = sp.Matrix(Bplus) * sp.Matrix(W) * sp.Matrix(A_prev)
            # fold the constant outputs of inactive neurons (sigma(0) != 0) into the bias
            bt = sp.Matrix(Bplus) * sp.Matrix(b).reshape(W.shape[0], 1)
            off = sub.offsets[i]
            if off is not None:
                bt = bt + sp.Matrix(Bplus) * sp.Matrix(W) * sp.Matrix(off)
            Ws.append(sp.ImmutableMatrix(Wt))
            bs.append(sp.ImmutableMatrix(bt))
        else:
            from scipy import sparse

            Wn = to_numpy(W)
            Bp = sparse.csr_matrix(to_numpy(Bplus))
            Ap = sparse.csr_matrix(to_numpy(A_prev))
            Wt = np.asarray((Ap.T @ (Bp @ Wn).T).T)
            bt = Bp @ to_numpy(b).reshape(-1)
            off = sub.offsets[i]
            if off is not None:
                bt = bt + to_numpy(Bplus) @ Wn @ to_numpy(off).reshape(-1)
            Ws.append(Wt)
            bs.append(bt)
    del L
    return sub.model.params(Ws, bs if sub.ambient.bias else None) if exact else Theta(
        tuple(Ws), tuple(bs), "float")


def _left_inverse_rows(sub: Submodel, i: int) -> Any:
    """B_i^+: reads submodel neuron k off its first copy (pseudo-inverse for linear sigma)."""
    B = sub.B[i]
    d, dt = B.shape
    if i == sub.ambient.depth:
        return B
    K = sub.groups[i - 1]
    if K.family == "GL":
        return sub.A_star[i] if sub.A[i] is B or _same(sub.A[i], B) else (
            np.linalg.pinv(to_numpy(B)))
    return _first_copy_inverse(B, sub.exact, f"B[{i - 1}]")


def _first_copy_inverse(A: Any, exact: bool, name: str) -> Any:
    """The left inverse reading submodel neuron k off the first non-zero row of column k."""
    d, dt = A.shape
    if not exact:
        An = np.asarray(A)
        nz = An != 0
        if dt and not np.all(nz.any(axis=0)):
            k = int(np.flatnonzero(~nz.any(axis=0))[0])
            raise ValueError(f"{name}: column {k} is zero; alpha is not injective")
        first = np.argmax(nz, axis=0)
        out = np.zeros((dt, d))
        out[np.arange(dt), first] = 1.0 / An[first, np.arange(dt)]
        return out
    out = sp.zeros(dt, d)
    for k in range(dt):
        rows = [r for r in range(d) if not is_exact_zero(A[r, k])]
        if not rows:
            raise ValueError(f"{name}: column {k} is zero; alpha is not injective")
        out[k, rows[0]] = 1 / A[rows[0], k]
    return sp.ImmutableMatrix(out)


def _same(M: Any, N: Any) -> bool:
    if isinstance(M, sp.MatrixBase) and isinstance(N, sp.MatrixBase):
        return M == N
    return np.array_equal(to_numpy(M), to_numpy(N))


def inactive_neurons(ambient: MLP, theta: Theta, inactive: dict[int, Iterable[int]],
                     **kwargs: Any) -> Submodel:
    """The submodel without the given neurons: ``inactive[i]`` lists neurons of hidden layer
    ``i`` (1-based layer, 0-based neuron). ``B_i`` keeps the other neurons; the submodel
    parameter is the restriction of ``theta``."""
    theta = ambient.check_theta(theta)
    exact = theta.exact
    Bs = []
    for i in range(1, ambient.depth):
        drop = set(int(r) for r in inactive.get(i, ()))
        d = ambient.widths[i]
        bad = [r for r in drop if not 0 <= r < d]
        if bad:
            raise ValueError(f"inactive[{i}]: neuron {bad[0]} out of range 0..{d - 1}")
        keep = [r for r in range(d) if r not in drop]
        B = sp.zeros(d, len(keep)) if exact else np.zeros((d, len(keep)))
        for k, r in enumerate(keep):
            B[r, k] = 1
        Bs.append(sp.ImmutableMatrix(B) if exact else B)
    for i in inactive:
        if not 1 <= int(i) <= ambient.depth - 1:
            raise ValueError(f"inactive: hidden layers are 1..{ambient.depth - 1}, got {i}")
    return from_intertwiners(ambient, Bs, theta=theta, name="inactive neurons", **kwargs)


def redundant_neurons(ambient: MLP, theta: Theta, copies: dict[int, dict[int, tuple[int, Any]]],
                      **kwargs: Any) -> Submodel:
    """The submodel of eq. (9) merging copies: ``copies[i][r] = (q, a)`` says neuron ``r`` of
    hidden layer ``i`` is ``a`` times neuron ``q`` (row of ``[W_i | b_i]``), ``a`` an allowed
    scaling. Row r of ``B_i`` is ``a e_k`` where k is q's submodel neuron."""
    theta = ambient.check_theta(theta)
    exact = theta.exact
    Bs = []
    for i in range(1, ambient.depth):
        cp = {int(r): (int(q), a) for r, (q, a) in copies.get(i, {}).items()}
        d = ambient.widths[i]
        reps = [r for r in range(d) if r not in cp]
        index = {r: k for k, r in enumerate(reps)}
        B = sp.zeros(d, len(reps)) if exact else np.zeros((d, len(reps)))
        for r in range(d):
            if r in cp:
                q, a = cp[r]
                if q not in index:
                    raise ValueError(f"copies[{i}][{r}]: neuron {q} is itself a copy; point to "
                                     "its representative")
                B[r, index[q]] = sp.sympify(a) if exact else float(a)
            else:
                B[r, index[r]] = 1
        Bs.append(sp.ImmutableMatrix(B) if exact else B)
    return from_intertwiners(ambient, Bs, theta=theta, name="redundant neurons (eq. (9))",
                             **kwargs)


# ---------------------------------------------------------------------------------- reduce
@validates_arguments
def reduce(model: MLP, theta: Theta, *, tol: float | None = None,
           copies: bool = False) -> Submodel:
    """The submodel ``theta`` comes from, after Remark 5.2 zeroing [SMBK26].

    Repeated to a fixed point, on every hidden layer i (monomial intertwiner groups):

    1. *constant neurons* (row of ``W_i`` zero): their output ``sigma(b)`` is folded into
       ``b_{i+1}`` and their outgoing column zeroed (needs biases when ``sigma(b) != 0``);
    2. *half-dead neurons* (Remark 5.2): a zero outgoing column with a non-zero row: the row is
       zeroed (and the converse is case 1);
    3. *redundant neurons*: rows of ``[W_i | b_i]`` equal up to an allowed scaling ``a`` of the
       activation; the outgoing columns are combined into the representative's
       (``col_q += c(a) col_r``) and the copy's column zeroed, so that it is half-dead (and
       zeroed in the next round) unless ``copies=True`` keeps it as a copy (eq. (9)).

    For linear activations (``K_i = GL``) the row space of ``W_{i+1}`` and the column space of
    ``[W_i | b_i]`` are projected onto each other instead, and the submodel layer is that
    column space (``B_i`` a basis of it).

    Every step keeps the function: the result's :meth:`Submodel.embed` computes
    ``f(.; theta)``. Float parameters are compared within ``tol`` (default
    ``1e-9 max(1, max |theta|)``); exact ones exactly.
    """
    tol = validate_tol(tol)
    theta = model.check_theta(theta)
    if theta.kind == "symbolic":
        raise ValueError("theta: symbolic parameters cannot be reduced; substitute values")
    return _Reducer(model, theta, tol, copies).run()



class _Reducer:
    """The fixed-point iteration of :func:`reduce` on a mutable copy of the parameters."""

    def __init__(self, model: MLP, theta: Theta, tol: float | None, copies: bool):
        self.model, self.theta0, self.copies = model, theta, copies
        self.exact = theta.exact
        L = model.depth
        if self.exact:
            self.W = [sp.Matrix(W) for W in theta.weights]
            self.b = [sp.Matrix(b).reshape(W.shape[0], 1) for W, b in theta]
            self.tol = None
        else:
            self.W = [np.array(W, dtype=float) for W in theta.weights]
            self.b = [np.array(b, dtype=float).reshape(-1) for b in theta.biases]
            self.tol = float(tol) if tol is not None else default_tol(*self.W, *self.b)
        self.groups = model.latent_groups()
        self.copy_of: dict[int, dict[int, tuple[int, Any]]] = {i: {} for i in range(1, L)}
        self.steps: list[str] = []
        rng = np.random.default_rng(12345)
        self._g = [rng.standard_normal(w + 1) for w in model.widths]
        self._g2 = [rng.standard_normal(w + 1) for w in model.widths]

    # ------------------------------------------------------------------ small helpers
    def _row_zero(self, i: int) -> np.ndarray:
        """Per neuron of hidden layer i: is the row of W_i zero? (and of [W_i | b_i])."""
        W, b = self.W[i - 1], self.b[i - 1]
        d = W.shape[0]
        if self.exact:
            wz = np.array([all(is_exact_zero(v) for v in W.row(r)) for r in range(d)], dtype=bool)
            bz = np.array([is_exact_zero(b[r]) for r in range(d)], dtype=bool)
        else:
            wz = np.max(np.abs(W), axis=1, initial=0.0) <= self.tol
            bz = np.abs(b) <= self.tol
        return wz, bz

    def _col_zero(self, i: int) -> np.ndarray:
        N = self.W[i]
        d = N.shape[1]
        if self.exact:
            return np.array([all(is_exact_zero(v) for v in N.col(r)) for r in range(d)], dtype=bool)
        return np.max(np.abs(N), axis=0, initial=0.0) <= self.tol

    def _zero_row(self, i: int, r: int) -> None:
        self.W[i - 1][r, :] = sp.zeros(1, self.W[i - 1].shape[1]) if self.exact else 0.0
        self.b[i - 1][r] = 0

    def _zero_col(self, i: int, r: int) -> None:
        self.W[i][:, r] = sp.zeros(self.W[i].shape[0], 1) if self.exact else 0.0

    # ------------------------------------------------------------------ the iteration
    def run(self) -> Submodel:
        L = self.model.depth
        for _ in range(100):
            changed = False
            for i in range(1, L):
                K = self.groups[i - 1]
                if K.family == "GL":
                    changed |= self._linear_step(i)
                elif K.family == "monomial":
                    changed |= self._monomial_step(i)
            if not changed:
                break
        else:  # pragma: no cover - the iteration only removes structure
            raise RuntimeError("reduce: no fixed point after 100 rounds")
        return self._build()

    def _monomial_step(self, i: int) -> bool:
        act = self.model.activations[i - 1]
        S = self.groups[i - 1].scalings
        changed = False
        copies = self.copy_of[i]
        # 1. constant neurons (row of W_i zero): fold sigma(b_r) into b_{i+1}, zero the column
        wz, bz = self._row_zero(i)
        cz = self._col_zero(i)
        for r in np.flatnonzero(wz & ~cz):
            r = int(r)
            value = act.exact(self.b[i - 1][r]) if self.exact else float(
                act(np.array([self.b[i - 1][r]]))[0])
            nonzero = not is_exact_zero(value) if self.exact else abs(value) > 0.0
            if nonzero:
                if not self.model.bias:
                    raise ValueError(
                        f"theta: neuron {r} of layer {i} is constant sigma(b) = {value} with a "
                        f"non-zero outgoing column; folding it needs biases, but the MLP has "
                        "bias=False")
                col = self.W[i][:, r]
                self.b[i] = self.b[i] + (col * value if self.exact else col * value)
            self._zero_col(i, r)
            self.steps.append(f"layer {i}: neuron {r} is constant (row of W_{i} zero): "
                              f"sigma(b) = {value} folded into b_{i + 1}, column zeroed "
                              "(Remark 5.2)")
            changed = True
        # 2. half-dead neurons: zero column, non-zero row -> zero the row (and its copies)
        wz, bz = self._row_zero(i)
        cz = self._col_zero(i)
        for r in np.flatnonzero(cz & ~(wz & bz)):
            r = int(r)
            if r in copies:
                continue
            self._zero_row(i, r)
            for rc in [c for c, (q, _) in copies.items() if q == r]:
                self._zero_row(i, rc)
                del copies[rc]
            self.steps.append(f"layer {i}: neuron {r} is half-dead (outgoing column zero): "
                              "row zeroed (Remark 5.2)")
            changed = True
        # 3. redundant neurons: rows equal up to an allowed scaling
        wz, bz = self._row_zero(i)
        cand = [int(r) for r in np.flatnonzero(~(wz & bz)) if int(r) not in copies]
        groups = self._classes(i, cand, S)
        if not self.exact and groups and not self.copies:
            qs = np.array([g[0][0] for g in groups for _ in g[1:]], dtype=int)
            rs = np.array([r for g in groups for r, _ in g[1:]], dtype=int)
            aa = np.array([a for g in groups for _, a in g[1:]], dtype=float)
            cc = S.c_numeric(aa)
            N = self.W[i]
            add = N[:, rs] * cc[None, :]
            np.add.at(N.T, qs, add.T)
            N[:, rs] = 0.0
            self.W[i - 1][rs, :] = 0.0
            self.b[i - 1][rs] = 0.0
            self.steps.extend(
                f"layer {i}: neuron {r} = {a:.6g} x neuron {q} (redundant): column combined into "
                f"neuron {q} with c(a) = {c:.6g}, row zeroed"
                for q, r, a, c in zip(qs.tolist(), rs.tolist(), aa.tolist(), cc.tolist()))
            return True
        for group in groups:
            q = group[0][0]
            for r, a in group[1:]:
                ca = S.c(a) if self.exact else float(S.c_numeric(np.array([a]))[0])
                self.W[i][:, q] = self.W[i][:, q] + self.W[i][:, r] * ca
                self._zero_col(i, r)
                if self.copies:
                    for rc, (qq, aa) in list(copies.items()):
                        if qq == r:
                            copies[rc] = (q, aa * a)
                    copies[r] = (q, a)
                    what = "kept as a copy (eq. (9))"
                else:
                    self._zero_row(i, r)
                    for rc in [c for c, (qq, _) in copies.items() if qq == r]:
                        self._zero_row(i, rc)
                        del copies[rc]
                    what = "row zeroed"
                self.steps.append(f"layer {i}: neuron {r} = {a} x neuron {q} (redundant): "
                                  f"column combined into neuron {q} with c(a) = {ca}, {what}")
                changed = True
        return changed

    def _classes(self, i: int, rows: list[int], S: Any) -> list[list[tuple[int, Any]]]:
        """Groups [(rep, 1), (r, a_r), ...] of rows of [W_i | b_i] with row_r = a_r row_rep."""
        if len(rows) < 2:
            return []
        W, b = self.W[i - 1], self.b[i - 1]
        if self.exact:
            # rows up to S, compared by exact equality of their normalised forms
            norm = [S.normalise(list(W.row(r)) + [b[r]]) for r in rows]
            width = W.shape[1] + 1
            keys = [k if k is not None else (sp.Integer(0),) * width for k, _ in norm]
            out = []
            for members in _zero.group_equal(keys, f"rows of [W_{i} | b_{i}]"):
                if len(members) > 1:
                    q, fq = rows[members[0]], norm[members[0]][1]
                    out.append([(q, sp.Integer(1))] + [(rows[j], sp.simplify(norm[j][1] / fq))
                                                        for j in members[1:]])
            return out
        M = np.hstack([W[rows], b[rows, None]])
        g, g2 = self._g[i - 1], self._g2[i - 1]
        norms = np.linalg.norm(M, axis=1)
        U = M / norms[:, None] if S.kind in ("positive", "nonzero") else M.copy()
        if S.kind in ("sign", "nonzero"):
            s = np.sign(U @ g)
            s[s == 0] = 1.0
            U *= s[:, None]
        key = U @ g2
        order = np.argsort(key, kind="stable")
        if S.kind in ("positive", "nonzero"):
            ctol = 4.0 * self.tol / max(float(np.min(norms)), 1e-300)
        else:
            ctol = 4.0 * self.tol
        ktol = max(ctol, 0.1 * ENTRY_RTOL) * float(np.sum(np.abs(g2)))
        out = []
        j = 0
        n = len(rows)
        while j < n:
            start = order[j]
            members = [start]
            j2 = j + 1
            while j2 < n and key[order[j2]] - key[order[j2 - 1]] <= ktol:
                members.append(order[j2])
                j2 += 1
            j = j2
            if len(members) < 2:
                continue
            # split the run into classes, verified on the rows themselves within tol
            remaining = sorted(members, key=lambda m: rows[m])
            while len(remaining) > 1:
                q = remaining[0]
                cls, rest = [(rows[q], 1.0)], []
                for m in remaining[1:]:
                    a = float(M[m] @ M[q] / (M[q] @ M[q]))
                    if S.contains(a, FLOAT64_RTOL) and np.max(np.abs(M[m] - a * M[q])) <= self.tol:
                        if S.kind == "one":
                            a = 1.0
                        elif S.kind == "sign":
                            a = float(np.sign(a))
                        cls.append((rows[m], a))
                    else:
                        rest.append(m)
                if len(cls) > 1:
                    out.append(cls)
                remaining = rest
        return out

    def _linear_step(self, i: int) -> bool:
        """Project [W_i | b_i] onto the row space of W_{i+1}, and W_{i+1} onto the column space
        of [W_i | b_i] (linear sigma: the submodel layer is that column space)."""
        W, b, N = self.W[i - 1], self.b[i - 1], self.W[i]
        d = W.shape[0]
        if self.exact:
            M = W.row_join(b)
            P_out = _projector_rows(N, d)
            M2 = P_out * M
            P_in = _projector_cols(M2, d)
            N2 = N * P_in
            changed = (M2 != M) or (N2 != N)
            self.W[i - 1], self.b[i - 1], self.W[i] = M2[:, :-1], M2[:, -1], N2
        else:
            M = np.hstack([W, b[:, None]])
            P_out = _projector_rows_np(N, self.tol)
            M2 = P_out @ M
            P_in = _projector_cols_np(M2, self.tol)
            N2 = N @ P_in
            changed = bool(np.max(np.abs(M2 - M), initial=0.0) > self.tol
                           or np.max(np.abs(N2 - N), initial=0.0) > self.tol)
            self.W[i - 1], self.b[i - 1], self.W[i] = M2[:, :-1], M2[:, -1], N2
        if changed:
            self.steps.append(f"layer {i}: [W_{i} | b_{i}] projected onto the row space of "
                              f"W_{i + 1} and W_{i + 1} onto its column space (linear sigma)")
        return bool(changed)

    # ------------------------------------------------------------------ the submodel
    def _theta_prime(self) -> Theta:
        m = self.model
        if self.exact:
            return m.params([sp.ImmutableMatrix(W) for W in self.W],
                            [sp.ImmutableMatrix(b) for b in self.b] if m.bias else None)
        return Theta(tuple(self.W), tuple(self.b), "float")

    def _build(self) -> Submodel:
        m = self.model
        L = m.depth
        exact = self.exact
        Bs = []
        for i in range(1, L):
            K = self.groups[i - 1]
            d = m.widths[i]
            if K.family == "GL":
                Bs.append(self._basis(i))
                continue
            if d == 0:
                Bs.append(sp.zeros(0, 0) if exact else np.zeros((0, 0)))
                continue
            wz, bz = self._row_zero(i)
            copies = self.copy_of[i]
            keep = [r for r in range(d) if not (wz[r] and bz[r]) and r not in copies]
            index = {r: k for k, r in enumerate(keep)}
            B = sp.zeros(d, len(keep)) if exact else np.zeros((d, len(keep)))
            for r in keep:
                B[r, index[r]] = 1
            for r, (q, a) in copies.items():
                B[r, index[q]] = a
            Bs.append(sp.ImmutableMatrix(B) if exact else B)
        theta_p = self._theta_prime()
        name = "reduce(theta)" + (" with copies" if self.copies else "")
        sub = from_intertwiners(m, Bs, theta=theta_p, name=name, steps=self.steps)
        if self.copies and any(self.copy_of.values()):
            sub = self._weighted(sub, Bs) or sub
        sub.source = self.theta0
        sub.source_tol = self.tol
        return sub

    def _basis(self, i: int) -> Any:
        M = (self.W[i - 1].row_join(self.b[i - 1])) if self.exact else np.hstack(
            [self.W[i - 1], self.b[i - 1][:, None]])
        d = M.shape[0]
        if self.exact:
            cols = sp.Matrix(M).columnspace()
            return sp.ImmutableMatrix(sp.Matrix.hstack(*cols)) if cols else sp.zeros(d, 0)
        if M.size == 0:
            return np.zeros((d, 0))
        U, s, _ = np.linalg.svd(M, full_matrices=False)
        r = int(np.sum(s > self.tol))
        return U[:, :r]

    def _weighted(self, sub: Submodel, Bs: list) -> Submodel | None:
        """Left inverses alpha*_i weighted by the original outgoing columns of the copies, so
        that ``beta(theta~) = theta`` where the copies' columns are proportional."""
        theta = self.theta0
        L = self.model.depth
        Ast = []
        for i in range(1, L):
            A, Ast_i = sub.A[i], sub.A_star[i]
            copies = self.copy_of[i]
            if not copies:
                Ast.append(Ast_i)
                continue
            N0 = theta.weights[i]
            Nc = self._theta_prime().weights[i]
            out = sp.Matrix(Ast_i) if self.exact else np.array(Ast_i, dtype=float)
            dt = A.shape[1]
            for k in range(dt):
                members = [r for r in range(A.shape[0]) if not is_exact_zero(A[r, k])]
                if len(members) < 2:
                    continue
                u = Nc[:, members[0]]
                if self.exact:
                    uu = (sp.Matrix(u).T * sp.Matrix(u))[0]
                    if uu == 0:
                        return None
                    for r in members:
                        col = sp.Matrix(N0[:, r])
                        lam = (col.T * sp.Matrix(u))[0] / uu
                        if any(not is_exact_zero(e) for e in col - lam * sp.Matrix(u)):
                            return None
                        out[k, r] = lam
                else:
                    u = np.asarray(u, dtype=float)
                    uu = float(u @ u)
                    if uu == 0.0:
                        return None
                    for r in members:
                        col = np.asarray(N0[:, r], dtype=float)
                        lam = float(col @ u / uu)
                        if np.max(np.abs(col - lam * u), initial=0.0) > self.tol:
                            return None
                        out[k, r] = lam
            Ast.append(sp.ImmutableMatrix(out) if self.exact else out)
        try:
            cand = from_intertwiners(self.model, Bs, theta_sub=sub.theta, A_star=Ast,
                                     name=sub.name + ", weighted alpha*", steps=self.steps)
        except ValueError:
            return None
        emb = cand.embed()
        if emb.equals(theta, None if self.exact else self.tol):
            return cand
        return None


def _projector_rows(N: sp.Matrix, d: int) -> sp.Matrix:
    rows = sp.Matrix(N).rowspace()
    if not rows:
        return sp.zeros(d, d)
    R = sp.Matrix.vstack(*rows)
    return R.T * exact_inverse(R * R.T, "R R^T") * R


def _projector_cols(M: sp.Matrix, d: int) -> sp.Matrix:
    cols = sp.Matrix(M).columnspace()
    if not cols:
        return sp.zeros(d, d)
    C = sp.Matrix.hstack(*cols)
    return C * exact_inverse(C.T * C, "C^T C") * C.T


def _projector_rows_np(N: np.ndarray, tol: float) -> np.ndarray:
    """Orthogonal projector onto the row space of N (the column space of N^T)."""
    return _projector_cols_np(N.T, tol)


def _projector_cols_np(M: np.ndarray, tol: float) -> np.ndarray:
    d = M.shape[0]
    if M.size == 0:
        return np.zeros((d, d))
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    r = int(np.sum(s > tol))
    U = U[:, :r]
    return U @ U.T


def half_dead_are_copies(model: MLP, theta: Theta, tol: float | None) -> bool:
    """Are all neurons with a zero outgoing column copies (allowed multiples) of other rows?
    (Remark 5.2 [SMBK26]: then the half-dead neurons are accounted for by the submodel built
    with copies, and ``theta`` itself is ``beta(theta~)``.)"""
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
