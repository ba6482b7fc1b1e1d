"""Multi-head attention networks (Section 5.2, eq. (10) [SMBK26]) and their latent symmetries.

The model
---------
A depth-``L`` attention network on sequences of ``n`` tokens has latent spaces
``V_i = R^{n x d_i x h_i}`` (``h_0 = h_L = 1``): for each of the ``h_i`` heads a sequence of ``n``
vectors of ``R^{d_i}``. Layer ``i`` has parameters ``theta_i = (W_A^i, W_V^i, W_O^i[, P_i])``:

* ``W_O^i`` of shape ``(d_{i-1} h_{i-1}, e_i)``: the cross-head projection. ``X in V_{i-1}`` is
  flattened to ``X in R^{n x d_{i-1} h_{i-1}}`` ("the last two indices have been flattened",
  row-major, so column ``q * h_{i-1} + s`` holds coordinate ``q`` of head ``s``) and
  ``Xbar = X W_O^i``. The *inner width* ``e_i`` is ``d_{i-1}`` in the paper; it can be chosen
  (``inner=``), e.g. to make room for several copies of the input;
* ``W_A^{i,j}`` (``e_i x e_i``) and ``W_V^{i,j}`` (``e_i x d_i``), ``j = 1..h_i``: the attention
  matrix ``W_A = W_Q W_K^T`` and the value matrix of head ``j``;
* optionally a learnable absolute positional encoding ``P_i`` (``n x e_i``), **added to Xbar**:
  ``Xbar = X W_O^i + P_i``. Adding it after the cross-head projection keeps it out of the way of
  the latent symmetries (``K_{i-1}`` acts on ``W_O^i`` only, never on ``P_i``) and of the
  token-wise action of ``G`` (which acts on ``W_O^1`` only).

Eq. (10): ``f_i(X; theta_i)[:, :, j] = smax(Xbar W_A^{i,j} Xbar^T) Xbar W_V^{i,j}`` with the
softmax taken row-wise; no skip connections, no normalisation. Arrays of a batch are shaped
``(batch, n, d_i, h_i)``; :class:`AttentionModel` also reads and writes the flattened form
``(batch, n * d_i * h_i)`` (row-major), which is what generic code
(:class:`~identifiable.models.base.Model`, ``is_equivariant``) uses.

Latent symmetries: ``K_i = GL(d_i)^{h_i} x| S_{h_i}``
-----------------------------------------------------
An element ``k = (pi, A_1, ..., A_h)`` (:class:`HeadAction`) moves head ``s`` to position
``pi(s)`` after multiplying its ``d_i``-vectors by ``A_s`` on the left (Section 5.2):
``(k . Y)[p, :, pi(s)] = A_s Y[p, :, s]``. Eq. (3), ``f_i(x; k . theta_i) = k_i . f_i(k_{i-1}^{-1}
. x; theta_i)``, holds with the action on parameters (:meth:`AttentionModel.transform`)

    W_A'^{i, pi_i(s)} = W_A^{i, s},    W_V'^{i, pi_i(s)} = W_V^{i, s} A_{i,s}^T,
    W_O'^{i+1}[:, pi_i(s), :] = A_{i,s}^{-T} W_O^{i+1}[:, s, :]   (W_O^{i+1} seen as d_i x h_i x e).

The actions of ``G``, the adjunctions (5) / (6), equivariance, alignment and the planted
equivariant networks are in :mod:`identifiable.theory.attention`.

The symbolic core: numpy, with sympy only in :func:`symbolic_attention_layer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.groups import Rep
from identifiable.models.base import Layer, Model
from identifiable.numbers import FIT_RTOL, FLOAT64_RTOL, default_tol, validates_arguments
from identifiable.verdict import Verdict

__all__ = [
    "AttentionModel",
    "AttentionLayer",
    "AttentionTheta",
    "AttentionLayerParams",
    "HeadAction",
    "HeadGroup",
    "TokenwiseAction",
    "token_permutations",
    "factor_tokenwise",
    "symbolic_attention_layer",
    "softmax",
    "rel_err",
    "perm_rows",
    "as_rng",
    "random_gl",
    "perm_matrix",
    "positive_int",
    "DEFAULT_TOL",
    "RANK_RTOL",
]

DEFAULT_TOL = FIT_RTOL  # relative tolerance of the numeric fits and comparisons
RANK_RTOL = FLOAT64_RTOL  # singular values below this (relative) count as zero


# ---------------------------------------------------------------------------------- helpers
def softmax(S: np.ndarray, axis: int = -1) -> np.ndarray:
    """Row-wise softmax (along ``axis``), stabilised by subtracting the maximum."""
    Z = S - np.max(S, axis=axis, keepdims=True)
    np.exp(Z, out=Z)
    Z /= np.sum(Z, axis=axis, keepdims=True)
    return Z


def _float_array(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A finite float64 array of exactly ``shape`` (sympy matrices and nested lists accepted)."""
    if isinstance(value, sp.MatrixBase):
        if value.free_symbols:
            raise TypeError(f"{name}: has free symbols; numeric parameters are needed here "
                            "(see symbolic_attention_layer for symbolic ones)")
        value = np.array(value.evalf(17).tolist(), dtype=float)
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an array of real numbers of shape {shape}, got "
                        f"{type(value).__name__}") from None
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def positive_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_gl(d: int, rng: np.random.Generator) -> np.ndarray:
    """A well-conditioned random invertible ``d x d`` matrix (orthogonal times scalings times
    orthogonal, singular values in [0.5, 2])."""
    Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q1 @ np.diag(rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d)) @ Q2


def perm_rows(X: np.ndarray, perm: np.ndarray, axis: int) -> np.ndarray:
    """``Pi X`` along ``axis``: ``out[sigma(p)] = X[p]``."""
    out = np.empty_like(X)
    idx = [slice(None)] * X.ndim
    idx[axis] = perm
    out[tuple(idx)] = X
    return out


def _check_perm(perm: Any, n: int, name: str) -> np.ndarray:
    p = np.asarray(perm)
    if p.shape != (n,) or p.dtype.kind not in "iu" or sorted(p.tolist()) != list(range(n)):
        raise ValueError(f"{name}: expected a permutation of 0..{n - 1}, got {perm!r}")
    return p.astype(np.intp)


def rel_err(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[float, float]:
    """``(max |a - b|, tol * max(1, max |b|))``: the largest difference and the absolute
    threshold it is compared with."""
    err = float(np.max(np.abs(a - b), initial=0.0))
    return err, tol * max(1.0, float(np.max(np.abs(b), initial=0.0)))


# ---------------------------------------------------------------------------------- K_i
@dataclass(frozen=True, eq=False)
class HeadAction:
    """An element ``k = (pi, A_1, ..., A_h)`` of ``K_i = GL(d)^h x| S_h`` (Section 5.2 [SMBK26]).

    ``perm[s]`` is where head ``s`` goes and ``per_head[s]`` the ``d x d`` matrix applied (on the
    left of its ``d``-vectors) to head ``s`` before it moves:
    ``(k . Y)[p, :, perm[s]] = per_head[s] @ Y[p, :, s]``. The product ``k @ k2`` is "``k2``
    first": ``(k @ k2) . Y = k . (k2 . Y)``.
    """

    perm: tuple[int, ...]
    per_head: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        h = len(self.perm)
        if h == 0:
            raise ValueError("perm: expected at least one head")
        _check_perm(np.asarray(self.perm), h, "perm")
        if len(self.per_head) != h:
            raise ValueError(f"per_head: expected {h} matrices (one per head), got "
                             f"{len(self.per_head)}")
        try:
            mats = tuple(np.asarray(A, dtype=np.float64) for A in self.per_head)
        except (TypeError, ValueError):
            raise TypeError("per_head: expected real square matrices") from None
        object.__setattr__(self, "perm", tuple(int(p) for p in self.perm))
        object.__setattr__(self, "per_head", mats)
        if mats[0].ndim != 2 or mats[0].shape[0] != mats[0].shape[1] or mats[0].size == 0:
            raise ValueError(f"per_head[0]: expected a non-empty square matrix, got shape "
                             f"{mats[0].shape}")
        d = mats[0].shape[0]
        for s, A in enumerate(mats):
            if A.shape != (d, d):
                raise ValueError(f"per_head[{s}]: expected a square {d} x {d} matrix like "
                                 f"per_head[0], got shape {np.shape(A)}")
            if not np.all(np.isfinite(A)):
                raise ValueError(f"per_head[{s}]: contains NaN or inf")
            sv = np.linalg.svd(A, compute_uv=False)
            if sv[-1] <= RANK_RTOL * max(sv[0], 1e-300):
                raise ValueError(f"per_head[{s}]: singular matrix (not in GL({d}))")

    @classmethod
    def make(cls, perm: Sequence[int], per_head: Sequence[Any] | None = None,
             d: int | None = None) -> HeadAction:
        """From a permutation and matrices (default: identities of size ``d``)."""
        perm = tuple(int(p) for p in perm)
        if per_head is None:
            if d is None:
                raise ValueError("d: needed when per_head is not given")
            per_head = [np.eye(d)] * len(perm)
        mats = tuple(_float_array(A, f"per_head[{s}]", np.shape(A))
                     for s, A in enumerate(per_head))
        return cls(perm, mats)

    @classmethod
    def identity(cls, d: int, h: int) -> HeadAction:
        return cls(tuple(range(h)), tuple(np.eye(d) for _ in range(h)))

    @classmethod
    def random(cls, d: int, h: int, seed: int | np.random.Generator | None = None, *,
               permute: bool = True) -> HeadAction:
        """A seeded random element (well-conditioned per-head matrices)."""
        rng = as_rng(seed)
        perm = tuple(int(p) for p in (rng.permutation(h) if permute else range(h)))
        return cls(perm, tuple(random_gl(d, rng) for _ in range(h)))

    @property
    def h(self) -> int:
        return len(self.perm)

    @property
    def d(self) -> int:
        return int(np.shape(self.per_head[0])[0])

    def _stack(self) -> np.ndarray:
        return np.stack(self.per_head)  # (h, d, d)

    def act(self, Y: np.ndarray) -> np.ndarray:
        """``k . Y`` for ``Y`` of shape ``(..., d, h)`` (e.g. ``(batch, n, d, h)``)."""
        Y = np.asarray(Y, dtype=float)
        if Y.shape[-2:] != (self.d, self.h):
            raise ValueError(f"Y: expected trailing shape ({self.d}, {self.h}) (d, heads), got "
                             f"{Y.shape}")
        Z = np.einsum("srq,...qs->...rs", self._stack(), Y)
        return perm_rows(Z, np.asarray(self.perm), axis=-1)

    def inverse(self) -> HeadAction:
        inv = [0] * self.h
        mats: list[np.ndarray] = [np.empty(0)] * self.h
        for s, t in enumerate(self.perm):
            inv[t] = s
            mats[t] = np.linalg.inv(self.per_head[s])
        return HeadAction(tuple(inv), tuple(mats))

    def __matmul__(self, other: HeadAction) -> HeadAction:
        """``self @ other``: apply ``other`` first."""
        if (other.d, other.h) != (self.d, self.h):
            raise ValueError(f"other: an element of GL({other.d})^{other.h} x| S_{other.h} "
                             f"cannot be composed with one of GL({self.d})^{self.h} x| "
                             f"S_{self.h}")
        perm = tuple(self.perm[other.perm[s]] for s in range(self.h))
        mats = tuple(self.per_head[other.perm[s]] @ other.per_head[s] for s in range(self.h))
        return HeadAction(perm, mats)

    def matrix(self) -> np.ndarray:
        """The ``(d h) x (d h)`` matrix of ``k`` on one token's ``R^{d x h}`` flattened
        row-major (index ``q * h + s``): ``vec(k . Y) = M vec(Y)``."""
        d, h = self.d, self.h
        M = np.zeros((d, h, d, h))
        for s, t in enumerate(self.perm):
            M[:, t, :, s] = self.per_head[s]
        return M.reshape(d * h, d * h)

    def distance(self, other: HeadAction) -> float:
        """``inf`` for different permutations, else the largest entry of ``A_s - A'_s``."""
        if tuple(self.perm) != tuple(other.perm):
            return float("inf")
        return float(max(np.max(np.abs(a - b)) for a, b in zip(self.per_head, other.per_head)))

    def to_dict(self) -> dict:
        return {"heads": [int(p) for p in self.perm],
                "per_head": [np.asarray(A).tolist() for A in self.per_head]}

    def __repr__(self) -> str:
        return f"HeadAction(heads={list(self.perm)}, per_head={self.h} x GL({self.d}))"


@dataclass(frozen=True)
class HeadGroup:
    """``K_i = GL(d)^h x| S_h`` (Section 5.2 [SMBK26]) as a description with seeded elements."""

    d: int
    h: int

    @property
    def name(self) -> str:
        return f"GL({self.d})^{self.h} x| S_{self.h}"

    @property
    def dimension(self) -> int:
        """Lie dimension ``h d^2``."""
        return self.h * self.d * self.d

    def identity(self) -> HeadAction:
        return HeadAction.identity(self.d, self.h)

    def random(self, seed: int | np.random.Generator | None = None) -> HeadAction:
        return HeadAction.random(self.d, self.h, seed)

    def contains(self, k: Any) -> bool:
        return isinstance(k, HeadAction) and (k.d, k.h) == (self.d, self.h)


# ---------------------------------------------------------------------------------- parameters
@dataclass(frozen=True, eq=False)
class AttentionLayerParams:
    """``theta_i = (W_A (h, e, e), W_V (h, e, d), W_O (d_prev h_prev, e), P (n, e) or None)``."""

    W_A: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray
    P: np.ndarray | None = None

    def replace(self, **changes: Any) -> AttentionLayerParams:
        data = {"W_A": self.W_A, "W_V": self.W_V, "W_O": self.W_O, "P": self.P}
        data.update(changes)
        return AttentionLayerParams(**data)

    def arrays(self) -> list[np.ndarray]:
        return [a for a in (self.W_A, self.W_V, self.W_O, self.P) if a is not None]

    def to_dict(self) -> dict:
        return {"W_A": self.W_A, "W_V": self.W_V, "W_O": self.W_O, "P": self.P}


@dataclass(frozen=True, eq=False)
class AttentionTheta:
    """Parameters ``(theta_1, ..., theta_L)`` of an :class:`AttentionModel` (float64).

    Iterating yields the :class:`AttentionLayerParams`; ``theta[i]`` is layer ``i + 1``.
    """

    layers: tuple[AttentionLayerParams, ...]
    kind: str = field(default="float")

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[AttentionLayerParams]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> AttentionLayerParams:
        return self.layers[i]

    @property
    def depth(self) -> int:
        return len(self.layers)

    def replace_layer(self, i: int, params: AttentionLayerParams) -> AttentionTheta:
        """A copy with layer ``i + 1`` (0-based ``i``) replaced."""
        layers = list(self.layers)
        layers[i] = params
        return AttentionTheta(tuple(layers))

    def flat(self) -> np.ndarray:
        """All entries as one vector: per layer ``W_A, W_V, W_O, P`` (row-major)."""
        parts = [a.ravel() for p in self.layers for a in p.arrays()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def max_abs_diff(self, other: AttentionTheta) -> float:
        return float(np.max(np.abs(self.flat() - other.flat()), initial=0.0))

    @validates_arguments
    def equals(self, other: AttentionTheta, tol: float | None = None) -> bool:
        """Entry-wise equality within ``tol`` (default ``1e-9 max(1, max |entry|)``)."""
        a, b = self.flat(), other.flat()
        if a.shape != b.shape:
            return False
        t = default_tol(a) if tol is None else tol
        return bool(np.max(np.abs(a - b), initial=0.0) <= t)

    def __repr__(self) -> str:
        parts = []
        for i, p in enumerate(self.layers):
            pe = "" if p.P is None else f", P{p.P.shape}"
            parts.append(f"[{i + 1}] W_A{p.W_A.shape}, W_V{p.W_V.shape}, W_O{p.W_O.shape}{pe}")
        return "AttentionTheta(" + "; ".join(parts) + ")"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layers": [p.to_dict() for p in self.layers]}


# ---------------------------------------------------------------------------------- layers
class AttentionLayer(Layer):
    """One layer of eq. (10) [SMBK26]: ``V_{i-1} = R^{n x d_in x h_in} -> V_i = R^{n x d_out x
    h_out}`` with inner width ``e``. As a :class:`~identifiable.models.base.Layer` it maps flattened
    batches ``(batch, n d_in h_in) -> (batch, n d_out h_out)``; :meth:`heads` works on shaped
    arrays ``(batch, n, d_in, h_in)``."""

    def __init__(self, n: int, d_in: int, h_in: int, d_out: int, h_out: int, e: int,
                 positional: bool = False, name: str = "layer"):
        self.n, self.d_in, self.h_in, self.d_out, self.h_out, self.e = (
            n, d_in, h_in, d_out, h_out, e)
        self.positional = bool(positional)
        super().__init__(self._flat, n * d_in * h_in, n * d_out * h_out, name=name)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.n, self.d_in, self.h_in)

    def xbar(self, X: np.ndarray, p: AttentionLayerParams) -> np.ndarray:
        """``Xbar = X W_O (+ P)`` of shape ``(batch, n, e)``."""
        B = X.shape[0]
        Xb = X.reshape(B, self.n, self.d_in * self.h_in) @ p.W_O
        if p.P is not None:
            Xb = Xb + p.P
        return Xb

    def attention(self, X: np.ndarray, p: AttentionLayerParams) -> np.ndarray:
        """The attention matrices ``smax(Xbar W_A^j Xbar^T)``, shape ``(batch, h_out, n, n)``."""
        Xb = self.xbar(X, p)
        S = np.einsum("bpe,jef,btf->bjpt", Xb, p.W_A, Xb, optimize=True)
        return softmax(S, axis=-1)

    def heads(self, X: np.ndarray, p: AttentionLayerParams) -> np.ndarray:
        """``f_i(X; theta_i)`` of shape ``(batch, n, d_out, h_out)`` for ``X`` of shape
        ``(batch, n, d_in, h_in)``."""
        Xb = self.xbar(X, p)
        S = np.einsum("bpe,jef,btf->bjpt", Xb, p.W_A, Xb, optimize=True)
        A = softmax(S, axis=-1)
        V = np.einsum("bte,jed->bjtd", Xb, p.W_V, optimize=True)
        return np.einsum("bjpt,bjtd->bpdj", A, V, optimize=True)

    def _flat(self, X: np.ndarray, p: AttentionLayerParams) -> np.ndarray:
        B = X.shape[0]
        return self.heads(X.reshape(B, *self.in_shape), p).reshape(B, -1)

    def __repr__(self) -> str:
        pe = ", positional" if self.positional else ""
        return (f"AttentionLayer({self.name}: R^({self.n}x{self.d_in}x{self.h_in}) -> "
                f"R^({self.n}x{self.d_out}x{self.h_out}), inner width {self.e}{pe})")


# ---------------------------------------------------------------------------------- G actions
@dataclass(frozen=True, eq=False)
class TokenwiseAction:
    """A map ``X -> Pi X M^T`` on sequences ``X in R^{n x d}``: token permutation ``tokens``
    (``(Pi X)[tokens[p]] = X[p]``) and the token-wise matrix ``M`` (``d x d``), Section 5.2."""

    tokens: np.ndarray
    M: np.ndarray

    @property
    def permutes_tokens(self) -> bool:
        return bool(np.any(self.tokens != np.arange(self.tokens.size)))

    def act(self, X: np.ndarray) -> np.ndarray:
        """``Pi X M^T`` on arrays of shape ``(..., n, d)``."""
        return perm_rows(np.asarray(X) @ self.M.T, self.tokens, axis=-2)

    def inverse(self) -> TokenwiseAction:
        inv = np.empty_like(self.tokens)
        inv[self.tokens] = np.arange(self.tokens.size)
        return TokenwiseAction(inv, np.linalg.inv(self.M))


def token_permutations(perm_rep: Rep, d: int) -> Rep:
    """``G <= S_n`` acting on sequences of ``n`` tokens of ``R^d`` (flattened row-major, index
    ``p * d + q``) by permuting tokens: from a permutation representation on ``R^n``."""
    if not isinstance(perm_rep, Rep):
        raise TypeError(f"perm_rep: expected a Rep, got {type(perm_rep).__name__}")
    d = positive_int(d, "d")
    n = perm_rep.dim
    perms = []
    for k, M in enumerate(perm_rep.generators):
        Mn = np.asarray(M, dtype=float)
        sigma = np.argmax(np.abs(Mn), axis=0)
        if not np.allclose(Mn, perm_matrix(sigma), atol=0):
            raise ValueError(f"perm_rep: generator {k} is not a permutation matrix")
        perms.append((sigma[:, None] * d + np.arange(d)[None, :]).ravel())
    return Rep.from_permutations(perms, name=f"tokens({perm_rep.name or n}, d={d})")


def perm_matrix(sigma: np.ndarray) -> np.ndarray:
    n = sigma.size
    M = np.zeros((n, n))
    M[sigma, np.arange(n)] = 1.0
    return M


def factor_tokenwise(M: Any, n: int, d: int, name: str = "rep") -> TokenwiseAction:
    """Write a matrix on ``V = R^{n x d}`` (flattened row-major) as ``Pi_sigma (x) g``: a token
    permutation times one ``d x d`` matrix acting on every token alike (Section 5.2, Remark 4.3).

    A ``d x d`` matrix is read as the token-wise action with no permutation. Raises
    ``ValueError`` (naming ``name``) for a matrix of another size or not of this form.
    """
    A = np.asarray(M.tolist() if isinstance(M, sp.MatrixBase) else M, dtype=float)
    if A.shape == (d, d):
        return TokenwiseAction(np.arange(n), A)
    if A.shape != (n * d, n * d):
        raise ValueError(f"{name}: expected {d} x {d} matrices (acting on each token of R^{d}) "
                         f"or {n * d} x {n * d} (acting on R^({n} x {d}) flattened), got shape "
                         f"{A.shape}")
    blocks = A.reshape(n, d, n, d).transpose(0, 2, 1, 3)  # blocks[p', p] = d x d
    norms = np.abs(blocks).max(axis=(2, 3))
    sigma = np.argmax(norms, axis=0)
    tol = default_tol(A)
    g = blocks[sigma[0], 0]
    ok = sorted(sigma.tolist()) == list(range(n))
    if ok:
        rest = norms.copy()
        rest[sigma, np.arange(n)] = 0.0
        ok = rest.max(initial=0.0) <= tol and all(
            np.max(np.abs(blocks[sigma[p], p] - g)) <= tol for p in range(n))
    if not ok:
        raise ValueError(f"{name}: the {n * d} x {n * d} matrix is not of the form Pi_sigma (x) g "
                         "(a token permutation with one d x d map on every token); attention "
                         "layers admit the adjunctions (5)/(6) only for such actions "
                         "(Section 5.2, Remark 4.3 [SMBK26])")
    if np.linalg.matrix_rank(g) < d:
        raise ValueError(f"{name}: the token-wise block is singular")
    return TokenwiseAction(sigma.astype(np.intp), g)


# ---------------------------------------------------------------------------------- the model
class AttentionModel(Model):
    """A multi-head attention network of eq. (10) [SMBK26] (Section 5.2).

    Parameters
    ----------
    n_tokens:
        ``n``, the sequence length.
    dims:
        ``[d_0, d_1, ..., d_L]`` (``L >= 1``): token width of each latent space.
    heads:
        ``[h_1, ..., h_{L-1}]`` (the hidden layers' numbers of heads) or the full list
        ``[h_0, ..., h_L]`` with ``h_0 = h_L = 1``; default one head everywhere.
    positional:
        Learnable absolute positional encodings ``P_i`` (``n x e_i``, added to ``Xbar``): ``True``
        for every layer, ``False`` for none, or one boolean per layer.
    inner:
        ``[e_1, ..., e_L]``, the inner widths (columns of ``W_O^i``); default ``e_i = d_{i-1}``
        as in the paper.
    """

    def __init__(self, n_tokens: int, dims: Sequence[int], heads: Sequence[int] | None = None,
                 positional: bool | Sequence[bool] = False,
                 inner: Sequence[int] | None = None):
        n = positive_int(n_tokens, "n_tokens")
        try:
            ds = [int(v) for v in dims]
        except (TypeError, ValueError):
            raise TypeError(f"dims: expected a list of integers, got {dims!r}") from None
        if any(int(v) != v for v in dims) or len(ds) < 2 or min(ds) < 1:
            raise ValueError(f"dims: expected [d_0, ..., d_L] with L >= 1 and every d_i >= 1, "
                             f"got {list(dims)}")
        L = len(ds) - 1
        if heads is None:
            hs = [1] * (L + 1)
        else:
            hl = [int(v) for v in heads]
            if len(hl) == L - 1:
                hs = [1] + hl + [1]
            elif len(hl) == L + 1:
                if hl[0] != 1 or hl[-1] != 1:
                    raise ValueError(f"heads: h_0 = h_L = 1 (Section 5.2), got {hl}")
                hs = hl
            else:
                raise ValueError(f"heads: expected {L - 1} numbers [h_1..h_{L - 1}] (or {L + 1} "
                                 f"with h_0 = h_L = 1) for dims {ds}, got {hl}")
            if min(hs) < 1:
                raise ValueError(f"heads: every h_i must be >= 1, got {hl}")
        if isinstance(positional, (bool, np.bool_)):
            pos = [bool(positional)] * L
        else:
            pos = [bool(v) for v in positional]
            if len(pos) != L:
                raise ValueError(f"positional: expected a bool or {L} booleans (one per layer), "
                                 f"got {list(positional)}")
        if inner is None:
            es = ds[:-1]
        else:
            es = [int(v) for v in inner]
            if len(es) != L or min(es) < 1:
                raise ValueError(f"inner: expected {L} positive widths [e_1..e_L], got "
                                 f"{list(inner)}")
        self.n_tokens, self.dims, self.heads = n, ds, hs
        self.inner, self.positional = es, tuple(pos)
        layers = [AttentionLayer(n, ds[i], hs[i], ds[i + 1], hs[i + 1], es[i], pos[i],
                                 name=f"f_{i + 1}") for i in range(L)]
        super().__init__(layers)

    def __repr__(self) -> str:
        pe = "" if not any(self.positional) else f", positional={list(self.positional)}"
        inner = "" if self.inner == self.dims[:-1] else f", inner={self.inner}"
        return (f"AttentionModel(n_tokens={self.n_tokens}, dims={self.dims}, "
                f"heads={self.heads[1:-1]}{inner}{pe})")

    # ------------------------------------------------------------------ shapes
    def latent_shape(self, i: int) -> tuple[int, int, int]:
        """``(n, d_i, h_i)``: the shape of ``V_i``."""
        if not 0 <= i <= self.depth:
            raise ValueError(f"i: latent spaces are 0..{self.depth}, got {i}")
        return (self.n_tokens, self.dims[i], self.heads[i])

    def latent_group(self, i: int) -> HeadGroup:
        """``K_i = GL(d_i)^{h_i} x| S_{h_i}`` for a hidden layer ``1 <= i <= L - 1``."""
        if not 1 <= i <= self.depth - 1:
            raise ValueError(f"i: hidden layers are 1..{self.depth - 1}, got {i}")
        return HeadGroup(self.dims[i], self.heads[i])

    def latent_groups(self) -> list[HeadGroup]:
        return [self.latent_group(i) for i in range(1, self.depth)]

    @property
    def n_params(self) -> int:
        total = 0
        for i, layer in enumerate(self.layers):
            e = layer.e
            total += layer.h_out * e * e + layer.h_out * e * layer.d_out
            total += layer.d_in * layer.h_in * e + (self.n_tokens * e if self.positional[i] else 0)
        return total

    # ------------------------------------------------------------------ parameters
    def params(self, W_A: Sequence[Any], W_V: Sequence[Any], W_O: Sequence[Any],
               P: Sequence[Any] | None = None) -> AttentionTheta:
        """Parameters from per-layer arrays: ``W_A[i]`` of shape ``(h_{i+1}, e, e)``,
        ``W_V[i]`` ``(h_{i+1}, e, d_{i+1})``, ``W_O[i]`` ``(d_i h_i, e)`` and, for layers with
        positional encodings, ``P[i]`` ``(n, e)`` (``None`` elsewhere)."""
        L = self.depth
        for name, val in (("W_A", W_A), ("W_V", W_V), ("W_O", W_O)):
            if not isinstance(val, (list, tuple)):
                raise TypeError(f"{name}: expected a list of {L} arrays (one per layer), got "
                                f"{type(val).__name__}")
            if len(val) != L:
                raise ValueError(f"{name}: expected {L} arrays (one per layer of dims "
                                 f"{self.dims}), got {len(val)}")
        if P is None:
            P = [None] * L
        if len(P) != L:
            raise ValueError(f"P: expected {L} entries (an array or None per layer), got {len(P)}")
        layers = []
        for i, layer in enumerate(self.layers):
            e, h, d, dp, hp = layer.e, layer.h_out, layer.d_out, layer.d_in, layer.h_in
            WA = _float_array(W_A[i], f"W_A[{i}]", (h, e, e))
            WV = _float_array(W_V[i], f"W_V[{i}]", (h, e, d))
            WO = _float_array(W_O[i], f"W_O[{i}]", (dp * hp, e))
            if self.positional[i]:
                if P[i] is None:
                    raise ValueError(f"P[{i}]: layer {i + 1} has positional encodings; expected "
                                     f"an array of shape ({self.n_tokens}, {e})")
                Pi = _float_array(P[i], f"P[{i}]", (self.n_tokens, e))
            else:
                if P[i] is not None:
                    raise ValueError(f"P[{i}]: layer {i + 1} has no positional encodings "
                                     "(positional=False); pass None")
                Pi = None
            layers.append(AttentionLayerParams(WA, WV, WO, Pi))
        return AttentionTheta(tuple(layers))

    def random_params(self, seed: int | np.random.Generator | None = None, *,
                      scale: float = 1.0) -> AttentionTheta:
        """Seeded Gaussian parameters with logits and values of order ``scale``."""
        rng = as_rng(seed)
        layers = []
        for i, layer in enumerate(self.layers):
            e, h, d = layer.e, layer.h_out, layer.d_out
            din = layer.d_in * layer.h_in
            WO = rng.standard_normal((din, e)) / np.sqrt(din)
            WA = rng.standard_normal((h, e, e)) * scale / e
            WV = rng.standard_normal((h, e, d)) * scale / np.sqrt(e)
            Pi = rng.standard_normal((self.n_tokens, e)) if self.positional[i] else None
            layers.append(AttentionLayerParams(WA, WV, WO, Pi))
        return AttentionTheta(tuple(layers))

    def check_theta(self, theta: Any, name: str = "theta") -> AttentionTheta:
        if not isinstance(theta, AttentionTheta):
            raise TypeError(f"{name}: expected an AttentionTheta from AttentionModel.params, got "
                            f"{type(theta).__name__}")
        if len(theta) != self.depth:
            raise ValueError(f"{name}: has {len(theta)} layers, the model has {self.depth}")
        for i, (p, layer) in enumerate(zip(theta, self.layers)):
            e = layer.e
            want = {"W_A": (layer.h_out, e, e), "W_V": (layer.h_out, e, layer.d_out),
                    "W_O": (layer.d_in * layer.h_in, e)}
            for key, shape in want.items():
                if getattr(p, key).shape != shape:
                    raise ValueError(f"{name}[{i}].{key}: expected shape {shape}, got "
                                     f"{getattr(p, key).shape}")
            if self.positional[i] != (p.P is not None):
                raise ValueError(f"{name}[{i}].P: layer {i + 1} "
                                 f"{'has' if self.positional[i] else 'has no'} positional "
                                 "encodings")
            if p.P is not None and p.P.shape != (self.n_tokens, e):
                raise ValueError(f"{name}[{i}].P: expected shape {(self.n_tokens, e)}, got "
                                 f"{p.P.shape}")
        return theta

    # ------------------------------------------------------------------ evaluation
    def _read_input(self, x: Any, i: int = 0, name: str = "x") -> tuple[np.ndarray, str]:
        """``(batch, n, d_i, h_i)`` array and the input style (to shape the output alike)."""
        n, d, h = self.latent_shape(i)
        arr = np.asarray(x, dtype=np.float64)
        flat = n * d * h
        if arr.ndim == 1 and arr.shape[0] == flat:
            style, arr = "flat1", arr[None, :]
        elif arr.ndim == 2 and arr.shape[1] == flat:
            style = "flat"
        elif h == 1 and arr.shape == (n, d):
            style, arr = "seq", arr[None]
        elif h == 1 and arr.ndim == 3 and arr.shape[1:] == (n, d):
            style = "batch"
        elif arr.ndim == 4 and arr.shape[1:] == (n, d, h):
            style = "batch4"
        else:
            raise ValueError(f"{name}: expected shape (batch, {flat}) (flattened), ({flat},), "
                             f"({n}, {d}) or (batch, {n}, {d})"
                             + (f" or (batch, {n}, {d}, {h})" if h > 1 else "")
                             + f", got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: contains NaN or inf")
        return arr.reshape(arr.shape[0], n, d, h), style

    @staticmethod
    def _write(Y: np.ndarray, style: str) -> np.ndarray:
        B = Y.shape[0]
        if style == "flat1":
            return Y.reshape(-1)
        if style == "flat":
            return Y.reshape(B, -1)
        if style == "seq":
            return Y[0, :, :, 0] if Y.shape[-1] == 1 else Y[0]
        if style == "batch":
            return Y[..., 0] if Y.shape[-1] == 1 else Y
        return Y

    def forward(self, x: Any, theta: Any) -> np.ndarray:
        """``f(x; theta)`` (eq. (1) with the layers of eq. (10)), vectorised over a batch.

        ``x``: flattened ``(batch, n d_0)`` or ``(n d_0,)``, or shaped ``(n, d_0)`` /
        ``(batch, n, d_0)``; the output has the same style (``d_L`` in place of ``d_0``).
        """
        theta = self.check_theta(theta)
        X, style = self._read_input(x)
        for layer, p in zip(self.layers, theta):
            X = layer.heads(X, p)
        return self._write(X, style)

    __call__ = forward

    def latents(self, x: Any, theta: Any, *, shaped: bool = False) -> list[np.ndarray]:
        """``[x, f_1(x), ..., f(x)]``: flattened ``(batch, n d_i h_i)`` (as
        :meth:`Model.latents`), or ``(batch, n, d_i, h_i)`` with ``shaped=True``."""
        theta = self.check_theta(theta)
        X, _ = self._read_input(x)
        out = [X]
        for layer, p in zip(self.layers, theta):
            out.append(layer.heads(out[-1], p))
        return out if shaped else [Y.reshape(Y.shape[0], -1) for Y in out]

    def attention_maps(self, x: Any, theta: Any, layer: int = 1) -> np.ndarray:
        """The attention matrices of layer ``layer``: ``(batch, h_layer, n, n)``."""
        theta = self.check_theta(theta)
        if not 1 <= layer <= self.depth:
            raise ValueError(f"layer: expected 1..{self.depth}, got {layer}")
        Xs = self.latents(x, theta, shaped=True)
        return self.layers[layer - 1].attention(Xs[layer - 1], theta[layer - 1])

    # ------------------------------------------------------------------ the K action
    def random_k(self, seed: int | np.random.Generator | None = None) -> list[HeadAction]:
        """A seeded random ``k = (k_1, ..., k_{L-1})`` in ``K``."""
        rng = as_rng(seed)
        return [K.random(rng) for K in self.latent_groups()]

    def _k(self, k: Sequence[Any]) -> list[HeadAction]:
        k = list(k)
        if len(k) != self.depth - 1:
            raise ValueError(f"k: expected {self.depth - 1} HeadAction elements (one per hidden "
                             f"layer), got {len(k)}")
        for i, (ki, K) in enumerate(zip(k, self.latent_groups())):
            if not isinstance(ki, HeadAction):
                raise TypeError(f"k[{i}]: expected a HeadAction, got {type(ki).__name__}")
            if not K.contains(ki):
                raise ValueError(f"k[{i}]: an element of GL({ki.d})^{ki.h} x| S_{ki.h}, but "
                                 f"K_{i + 1} = {K.name}")
        return k

    def transform(self, theta: Any, k: Sequence[HeadAction]) -> AttentionTheta:
        """``k . theta`` (module docstring; eq. (3) then holds with these ``k_i``)."""
        theta = self.check_theta(theta)
        ks = self._k(k)
        layers = list(theta)
        for i, ki in enumerate(ks):  # k_{i+1} acts between layer i+1 and layer i+2 (1-based)
            perm = np.asarray(ki.perm)
            A = ki._stack()  # (h, d, d)
            p = layers[i]
            WA = perm_rows(p.W_A, perm, axis=0)
            WV = perm_rows(np.einsum("sed,srd->ser", p.W_V, A), perm, axis=0)
            layers[i] = p.replace(W_A=WA, W_V=WV)
            q = layers[i + 1]
            d, h = ki.d, ki.h
            WO = q.W_O.reshape(d, h, -1)
            Ainv_T = np.linalg.inv(A).transpose(0, 2, 1)  # A_s^{-T}
            WO = np.einsum("sqr,rse->qse", Ainv_T, WO)
            WO = perm_rows(WO, perm, axis=1).reshape(d * h, -1)
            layers[i + 1] = q.replace(W_O=WO)
        return AttentionTheta(tuple(layers))

    @validates_arguments
    @_zero.undecided_on_zero_tests
    def check_symmetry(self, theta: Any, theta2: Any, k: Sequence[HeadAction], *,
                       n_samples: int = 32, tol: float = DEFAULT_TOL, seed: int = 0) -> Verdict:
        """Eq. (3) on samples: ``f_i(x; theta2_i) = k_i . f_i(k_{i-1}^{-1} . x; theta_i)`` for
        every layer, ``x`` random in ``V_{i-1}`` (relative tolerance ``tol``)."""
        theta = self.check_theta(theta)
        theta2 = self.check_theta(theta2, "theta2")
        ks = self._k(k)
        rng = as_rng(seed)
        worst = 0.0
        for i in range(1, self.depth + 1):
            X = rng.standard_normal((n_samples, *self.latent_shape(i - 1)))
            Xin = X if i == 1 else ks[i - 2].inverse().act(X)
            rhs = self.layers[i - 1].heads(Xin, theta[i - 1])
            if i < self.depth:
                rhs = ks[i - 1].act(rhs)
            lhs = self.layers[i - 1].heads(X, theta2[i - 1])
            err, t = rel_err(lhs, rhs, tol)
            worst = max(worst, err / t * tol)
            if err > t:
                j = int(np.argmax(np.abs(lhs - rhs).reshape(n_samples, -1).max(axis=1)))
                return Verdict.refuted(
                    f"eq. (3) fails at layer {i}: residual {err:.3g} > tol {t:.3g}",
                    counterexample={"layer": i, "x": X[j], "lhs": lhs[j], "rhs": rhs[j]},
                    method="sampled", tol=t)
        return Verdict.checked("eq. (3) holds at every layer on random inputs (Definition 3.4 "
                               "[SMBK26], K_i = GL(d_i)^h_i x| S_h_i, Section 5.2)",
                               n_samples=n_samples * self.depth, tol=tol, witness=ks,
                               max_relative_residual=worst)

    def check_invariance(self, theta: Any, k: Sequence[HeadAction], **kwargs: Any) -> Verdict:
        """``f(.; k . theta) = f(.; theta)``, by eq. (3) at every layer for ``k . theta``."""
        return self.check_symmetry(theta, self.transform(theta, k), k, **kwargs)

    # ------------------------------------------------------------------ the G action
    def act_params(self, theta: Any, *, feature_in: Any = None, feature_out: Any = None,
                   tokens: Any = None) -> AttentionTheta:
        """``g . theta`` for ``g`` given by its parts (module docstring, eq. (5)/(6)):
        ``W_O^1 -> rho_in(g)^{-T} W_O^1``, ``W_V^L -> W_V^L rho_out(g)^T`` and, for a token
        permutation ``tokens``, every ``P_i -> Pi_g P_i``. Omitted parts act trivially."""
        theta = self.check_theta(theta)
        layers = list(theta)
        d0, dL = self.dims[0], self.dims[-1]
        if feature_in is not None:
            g = _float_array(feature_in, "feature_in", (d0, d0))
            layers[0] = layers[0].replace(W_O=np.linalg.solve(g.T, layers[0].W_O))
        if feature_out is not None:
            g = _float_array(feature_out, "feature_out", (dL, dL))
            layers[-1] = layers[-1].replace(W_V=layers[-1].W_V @ g.T)
        if tokens is not None:
            sigma = _check_perm(tokens, self.n_tokens, "tokens")
            layers = [p if p.P is None else p.replace(P=perm_rows(p.P, sigma, axis=0))
                      for p in layers]
        return AttentionTheta(tuple(layers))

    # ------------------------------------------------------------------ torch
    def to_torch(self, theta: Any, dtype: Any = None) -> Any:
        """An ``nn.Sequential`` of :class:`~identifiable.torch.bridge.Eq10Attention` layers
        computing ``f(.; theta)`` (eq. (10) [SMBK26]) on inputs ``(batch, n, d_0)`` in ``dtype``
        (a torch float dtype, default float32); see :func:`identifiable.torch.bridge.to_torch`.
        Needs torch (imported here, not by the symbolic core)."""
        from identifiable.torch.bridge import to_torch

        return to_torch(self, theta, dtype)


# ---------------------------------------------------------------------------------- symbolic
def symbolic_attention_layer(X: sp.Matrix, W_A: Sequence[sp.Matrix], W_V: Sequence[sp.Matrix],
                             W_O: sp.Matrix, P: sp.Matrix | None = None) -> list[sp.Matrix]:
    """Eq. (10) in sympy: ``[smax(Xbar W_A^j Xbar^T) Xbar W_V^j for j]`` with ``Xbar = X W_O
    (+ P)``, ``X`` the flattened ``n x (d h)`` input. Logits and values are expanded
    polynomials, so equal inputs give structurally equal expressions (used for exact checks of
    the adjunction (6), Remark 4.3)."""
    X, W_O = sp.Matrix(X), sp.Matrix(W_O)
    if X.cols != W_O.rows:
        raise ValueError(f"W_O: expected {X.cols} rows (the flattened input width), got "
                         f"{W_O.rows}")
    Xb = X * W_O
    if P is not None:
        P = sp.Matrix(P)
        if P.shape != Xb.shape:
            raise ValueError(f"P: expected shape {Xb.shape}, got {P.shape}")
        Xb = Xb + P
    Xb = Xb.applyfunc(sp.expand)
    n = X.rows
    outs = []
    for j, (WA, WV) in enumerate(zip(W_A, W_V)):
        WA, WV = sp.Matrix(WA), sp.Matrix(WV)
        if WA.shape != (Xb.cols, Xb.cols) or WV.rows != Xb.cols:
            raise ValueError(f"W_A[{j}] / W_V[{j}]: expected {Xb.cols} x {Xb.cols} and "
                             f"{Xb.cols} x d, got {WA.shape} and {WV.shape}")
        S = (Xb * WA * Xb.T).applyfunc(sp.expand)
        E = S.applyfunc(sp.exp)
        V = (Xb * WV).applyfunc(sp.expand)
        rows = []
        for p in range(n):
            Z = sp.Add(*[E[p, t] for t in range(n)])
            rows.append([sp.Add(*[E[p, t] * V[t, q] for t in range(n)]) / Z
                         for q in range(V.cols)])
        outs.append(sp.Matrix(rows))
    return outs
