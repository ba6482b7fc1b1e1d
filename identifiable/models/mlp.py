"""The multi-layer perceptron of eq. (7) [SMBK26] (a :class:`~identifiable.models.base.Model`).

A *model of depth L* is a sequence of layers ``f_i: V_{i-1} x Theta_i -> V_i``; its end-to-end map
is the composition (1) ``f(x; theta) = f_L(.; theta_L) o ... o f_1(x; theta_1)``. Here

* :class:`Layer` is one ``f_i`` (a numeric map vectorised over a batch, and optionally a sympy
  map), :class:`AffineLayer` the layer ``x -> sigma(W x + b)`` of eq. (7);
* :class:`Model` is a sequence of layers; models compose with :meth:`Model.then` (``>>``);
* :class:`MLP` is eq. (7): widths ``d_0, ..., d_L``, an activation per hidden layer (the last
  layer is affine), parameters ``theta = ((W_1, b_1), ..., (W_L, b_L))`` held by :class:`Theta`.

The latent symmetry group of an MLP
-----------------------------------
``K = K_1 x ... x K_{L-1}`` with ``K_i`` the intertwiner group of eq. (8) of the activation on
``R^{d_i}``, *derived* from the activation (:meth:`Activation.intertwiner_group`). An element
``A_i`` of ``K_i`` comes with its partner ``B_i`` (``sigma(A_i z) = B_i sigma(z)``). The
pre-activation ``z_i = W_i x + b_i`` transforms by ``A_i`` and the latent ``V_i`` (the
post-activation, where ``f_i`` takes its values) by ``B_i``: ``k_i . v = B_i v``. Eq. (3),
``f_i(x; theta'_i) = k_i . f_i(k_{i-1}^{-1} . x; theta_i)``, then reads

    sigma(W'_i x + b'_i) = B_i sigma(W_i B_{i-1}^{-1} x + b_i)
                         = sigma(A_i W_i B_{i-1}^{-1} x + A_i b_i)

so the action of ``k`` on parameters is (:meth:`MLP.transform`)

    W'_i = A_i W_i B_{i-1}^{-1},   b'_i = A_i b_i   (i < L, with B_0 = Id),
    W'_L = W_L B_{L-1}^{-1},       b'_L = b_L.

``k -> B`` is a homomorphism (``P diag(a) -> P diag(c(a))``), so this is a group action. For even
powers ``c(a) = a^m`` is not injective: a sign flip acts trivially on ``V_i`` but not on
parameters (it negates ``W_i``'s row and ``b_i``), so ``theta'`` determines ``k`` while eq. (3)
alone determines it only up to ``{+-1}^{d_i}``; :func:`identifiable.align` returns the ``A_i``.
:meth:`MLP.check_symmetry` verifies eq. (3) layer by layer, exactly for exact input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from identifiable import activations as _acts
from identifiable import zero as _zero
from identifiable.activations import Activation
from identifiable.latent_groups import LatentGroup, TrivialGroup
from identifiable.models.base import Layer, Model, as_batch, input_symbols
from identifiable.models.params import (
    as_param_matrix,
    as_param_vector,
    float_array,
    param_kind,
    zero_vector,
)
from identifiable.numbers import as_matrix, default_tol, sample_tol, to_numpy, validates_arguments
from identifiable.verdict import UndecidedError, Verdict

__all__ = ["AffineLayer", "MLP", "Theta"]


# ---------------------------------------------------------------------------------- helpers
# ---------------------------------------------------------------------------------- layers
class AffineLayer(Layer):
    """``f(x; (W, b)) = sigma(W x + b)``, eq. (7) [SMBK26]; affine when ``activation`` is None."""

    def __init__(self, in_dim: int, out_dim: int, activation: Activation | None = None,
                 bias: bool = True, name: str = "layer"):
        self.activation = activation
        self.bias = bool(bias)
        super().__init__(self._numeric, in_dim, out_dim, symbolic=self._sym, name=name)

    @property
    def n_params(self) -> int:
        return self.out_dim * self.in_dim + (self.out_dim if self.bias else 0)

    def pre(self, X: np.ndarray, theta_i: tuple) -> np.ndarray:
        W, b = theta_i
        return X @ np.asarray(W, dtype=float).T + np.asarray(b, dtype=float).reshape(1, -1)

    def _numeric(self, X: np.ndarray, theta_i: tuple) -> np.ndarray:
        Z = self.pre(X, theta_i)
        return Z if self.activation is None else self.activation(Z)

    def _sym(self, x: sp.Matrix, theta_i: tuple) -> sp.Matrix:
        W, b = theta_i
        z = sp.Matrix(W) * sp.Matrix(x) + sp.Matrix(b).reshape(self.out_dim, 1)
        if self.activation is None:
            return z
        return z.applyfunc(self.activation.at)


# ---------------------------------------------------------------------------------- parameters
@dataclass(frozen=True, eq=False)
class Theta:
    """Parameters ``((W_1, b_1), ..., (W_L, b_L))`` of an :class:`MLP`.

    ``kind`` is ``"exact"`` (sympy matrices of exact numbers), ``"symbolic"`` (sympy matrices with
    free symbols) or ``"float"`` (float64 numpy arrays). Biases are sympy columns ``(d, 1)`` or
    numpy vectors ``(d,)``; a bias-free MLP holds zero biases. Iterating yields the pairs
    ``(W_i, b_i)``; ``theta[i]`` is layer ``i + 1``'s pair.
    """

    weights: tuple
    biases: tuple
    kind: str

    @property
    def exact(self) -> bool:
        """True for exact or symbolic parameters (sympy), False for float64."""
        return self.kind != "float"

    @property
    def depth(self) -> int:
        return len(self.weights)

    def __len__(self) -> int:
        return len(self.weights)

    def __iter__(self) -> Iterator[tuple]:
        return iter(zip(self.weights, self.biases))

    def __getitem__(self, i: int) -> tuple:
        return self.weights[i], self.biases[i]

    @property
    def numeric(self) -> Theta:
        """The float64 version (itself when already float; converted once otherwise)."""
        # a float Theta is returned, not cached: caching self would make a reference cycle that
        # keeps large parameters alive until the cyclic garbage collector runs
        return self if self.kind == "float" else self._numeric

    @functools.cached_property
    def _numeric(self) -> Theta:
        if self.kind == "symbolic":
            raise ValueError("theta: has free symbols; substitute values (theta.subs) before "
                             "numeric evaluation")
        return Theta(tuple(float_array(W) for W in self.weights),
                     tuple(float_array(b).reshape(-1) for b in self.biases), "float")

    def subs(self, values: dict) -> Theta:
        """Substitute values for symbols (symbolic parameters)."""
        Ws = tuple(sp.ImmutableMatrix(sp.Matrix(W).subs(values)) for W in self.weights)
        bs = tuple(sp.ImmutableMatrix(sp.Matrix(b).subs(values)) for b in self.biases)
        return Theta(Ws, bs, param_kind(*Ws, *bs))

    @property
    def free_symbols(self) -> set:
        if self.kind != "symbolic":
            return set()
        out: set = set()
        for W, b in self:
            out |= W.free_symbols | b.free_symbols
        return out

    def flat(self, bias: bool = True) -> np.ndarray:
        """All entries as one float64 vector: ``W_1`` (row-major), ``b_1``, ``W_2``, ..."""
        th = self.numeric
        parts = []
        for W, b in th:
            parts.append(np.asarray(W).ravel())
            if bias:
                parts.append(np.asarray(b).ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    @validates_arguments
    def equals(self, other: Theta, tol: float | None = None) -> bool:
        """Entry-wise equality: exact for two exact parameters (``tol=None``), else within
        ``tol`` (default :func:`identifiable.numbers.default_tol`)."""
        if len(self) != len(other):
            return False
        for W, W2 in zip(self.weights, other.weights):
            if tuple(W.shape) != tuple(W2.shape):
                return False
        if self.kind != "float" and other.kind != "float" and tol is None:
            for (W, b), (W2, b2) in zip(self, other):
                for u, v in zip(list(W) + list(b), list(W2) + list(b2)):
                    if u != v and not _zero.is_exact_zero(u - v, "theta entry difference"):
                        return False
            return True
        a, c = self.numeric, other.numeric
        if tol is None:
            tol = default_tol(*a.weights, *a.biases, *c.weights, *c.biases)
        return bool(np.all([np.max(np.abs(np.asarray(u) - np.asarray(v)), initial=0.0) <= tol
                            for u, v in zip(a.weights + a.biases, c.weights + c.biases)]))

    def max_abs_diff(self, other: Theta) -> float:
        a, c = self.numeric, other.numeric
        return float(max((np.max(np.abs(np.asarray(u) - np.asarray(v)), initial=0.0)
                          for u, v in zip(a.weights + a.biases, c.weights + c.biases)),
                         default=0.0))

    def __repr__(self) -> str:
        shapes = ", ".join(f"W{i + 1}{tuple(W.shape)}" for i, W in enumerate(self.weights))
        return f"Theta({self.kind}: {shapes})"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weights": list(self.weights), "biases": list(self.biases)}


# ---------------------------------------------------------------------------------- MLP
class MLP(Model):
    """The multi-layer perceptron of eq. (7) [SMBK26].

    Parameters
    ----------
    widths:
        ``[d_0, d_1, ..., d_L]`` with ``L >= 1``; ``d_0, d_L >= 1``. Hidden widths may be 0 (a
        reduced model whose layer has no active neuron).
    activation:
        A name (see :func:`identifiable.activations.get`), an
        :class:`~identifiable.activations.Activation`, or a list of ``L - 1`` of them (one per
        hidden layer). The last layer is affine.
    bias:
        Whether the layers have bias vectors.
    """

    def __init__(self, widths: Sequence[int], activation: Any = "tanh", bias: bool = True):
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
            raise TypeError(f"widths: expected a list of integers, got {widths!r}")
        widths = list(widths)
        if any(isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer, float,
                                                                       np.floating))
               for w in widths):
            raise TypeError(f"widths: expected a list of integers, got {widths!r}")
        try:
            ws = [int(w) for w in widths]
        except (TypeError, ValueError, OverflowError):
            raise TypeError(f"widths: expected a list of integers, got {widths!r}") from None
        if any(int(w) != w for w in widths):
            raise TypeError(f"widths: expected integers, got {list(widths)}")
        if len(ws) < 2:
            raise ValueError(f"widths: expected [d_0, ..., d_L] with L >= 1, got {ws}")
        if ws[0] < 1 or ws[-1] < 1 or any(w < 0 for w in ws):
            raise ValueError(f"widths: d_0 and d_L must be >= 1 and hidden widths >= 0, got {ws}")
        L = len(ws) - 1
        if isinstance(activation, (list, tuple)):
            if len(activation) != L - 1:
                raise ValueError(f"activation: expected one activation per hidden layer "
                                 f"({L - 1} for widths {ws}), got {len(activation)}")
            acts = [self._act(a, f"activation[{i}]") for i, a in enumerate(activation)]
        else:
            acts = [self._act(activation, "activation")] * (L - 1)
        self.widths = ws
        self.activations = acts
        self.bias = bool(bias)
        layers = [AffineLayer(ws[i], ws[i + 1], acts[i] if i < L - 1 else None, self.bias,
                              name=f"f_{i + 1}") for i in range(L)]
        super().__init__(layers)

    @staticmethod
    def _act(a: Any, name: str) -> Activation:
        if isinstance(a, Activation):
            return a
        if not isinstance(a, str):
            raise TypeError(f"{name}: expected an activation name or Activation, got "
                            f"{type(a).__name__}")
        return _acts.get(a)

    def __repr__(self) -> str:
        names = sorted({a.name for a in self.activations})
        return (f"MLP(widths={self.widths}, activation={'/'.join(names) or '-'}"
                f"{'' if self.bias else ', bias=False'})")

    @property
    def n_params(self) -> int:
        """The number of real parameters ``dim Theta``."""
        return sum(layer.n_params for layer in self.layers)

    @property
    def hidden_widths(self) -> list[int]:
        return self.widths[1:-1]

    @property
    def activation_family(self) -> tuple[str, Any]:
        """The :attr:`~identifiable.activations.Activation.family` shared by every activation
        (``("none", None)`` without hidden layers, ``("mixed", None)`` when they differ): what
        the identifiability theorems and the functional-dimension predictions branch on."""
        fams = {a.family for a in self.activations}
        if not fams:
            return "none", None
        if len(fams) > 1:
            return "mixed", None
        return next(iter(fams))

    # ------------------------------------------------------------------ parameters
    def params(self, weights: Sequence[Any], biases: Sequence[Any] | None = None) -> Theta:
        """Validate and convert parameters into a :class:`Theta`.

        ``weights[i]`` must have shape ``(d_{i+1}, d_i)`` and ``biases[i]`` length ``d_{i+1}``
        (``biases=None``: zero biases). Entries may be numbers (numpy, sympy, nested lists),
        ``Fraction`` or sympy symbols. The result is exact (sympy) when every entry is exact,
        symbolic when some entry is a symbol, float64 otherwise. Errors name the layer and the
        argument, e.g. ``weights[1]: expected shape (16, 8), got (16, 9)``.
        """
        L = self.depth
        if isinstance(weights, (np.ndarray, sp.MatrixBase)) and np.ndim(weights) == 2:
            raise TypeError("weights: expected a list of L matrices, got a single matrix")
        try:
            weights = list(weights)
        except TypeError:
            raise TypeError("weights: expected a list of weight matrices") from None
        if len(weights) != L:
            raise ValueError(f"weights: expected {L} matrices (one per layer of widths "
                             f"{self.widths}), got {len(weights)}")
        if biases is not None:
            if not self.bias:
                raise ValueError("biases: this MLP was built with bias=False; pass biases=None")
            try:
                biases = list(biases)
            except TypeError:
                raise TypeError("biases: expected a list of bias vectors") from None
            if len(biases) != L:
                raise ValueError(f"biases: expected {L} vectors (one per layer of widths "
                                 f"{self.widths}), got {len(biases)}")
        Ws, bs = [], []
        for i in range(L):
            shape = (self.widths[i + 1], self.widths[i])
            Ws.append(self._read(weights[i], f"weights[{i}]", shape))
            if biases is None:
                bs.append(None)
            else:
                bs.append(self._read_vec(biases[i], f"biases[{i}]", shape[0]))
        kind = param_kind(*Ws, *[b for b in bs if b is not None])
        exact = kind != "float"
        Ws = tuple(as_param_matrix(W, exact) for W in Ws)
        bs = tuple(zero_vector(W.shape[0], exact) if b is None else as_param_vector(b, exact)
                   for W, b in zip(Ws, bs))
        return Theta(Ws, bs, kind)

    @staticmethod
    def _read(M: Any, name: str, shape: tuple[int, int]):
        if 0 in shape:
            arr = M if isinstance(M, (np.ndarray, sp.MatrixBase)) else np.array(M, dtype=object)
            got = tuple(arr.shape) if np.ndim(arr) == 2 else None
            if got not in (shape, None) or (got is None and np.size(arr) != 0):
                raise ValueError(f"{name}: expected shape {shape}, got {np.shape(arr)}")
            if isinstance(M, np.ndarray) and M.dtype.kind == "f":
                return np.zeros(shape)
            return sp.ImmutableMatrix.zeros(*shape)
        return as_matrix(M, name, shape=shape, allow_symbols=True)

    @staticmethod
    def _read_vec(b: Any, name: str, d: int):
        if d == 0:
            if np.size(np.asarray(b, dtype=object)) != 0:
                raise ValueError(f"{name}: expected length 0, got {np.size(b)}")
            return sp.ImmutableMatrix.zeros(0, 1)
        if isinstance(b, sp.MatrixBase):
            if 1 not in b.shape:
                raise ValueError(f"{name}: expected a vector of length {d}, got shape {b.shape}")
            b = list(b)
        arr = b if isinstance(b, np.ndarray) else np.array(b, dtype=object)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected a vector of length {d}, got shape {arr.shape}")
        if arr.shape[0] != d:
            raise ValueError(f"{name}: expected length {d}, got {arr.shape[0]}")
        return as_matrix(arr.reshape(-1, 1), name, allow_symbols=True)

    def check_theta(self, theta: Any, name: str = "theta") -> Theta:
        if not isinstance(theta, Theta):
            if isinstance(theta, (tuple, list)) and len(theta) == 2 and not isinstance(
                    theta[0], (np.ndarray, sp.MatrixBase)):
                return self.params(theta[0], theta[1])
            raise TypeError(f"{name}: expected a Theta from MLP.params, got "
                            f"{type(theta).__name__}")
        if len(theta) != self.depth:
            raise ValueError(f"{name}: has {len(theta)} layers, the model has {self.depth}")
        for i, (W, b) in enumerate(theta):
            want = (self.widths[i + 1], self.widths[i])
            if tuple(W.shape) != want:
                raise ValueError(f"{name}.weights[{i}]: expected shape {want}, got "
                                 f"{tuple(W.shape)}")
            if int(np.size(b)) != want[0]:
                raise ValueError(f"{name}.biases[{i}]: expected length {want[0]}, got "
                                 f"{int(np.size(b))}")
            if not self.bias and any(v != 0 for v in (list(b) if isinstance(b, sp.MatrixBase)
                                                      else np.asarray(b).ravel())):
                raise ValueError(f"{name}.biases[{i}]: this MLP was built with bias=False, but "
                                 "theta has non-zero biases (they would be ignored)")
        return theta

    def symbols(self, prefix: str = "w", bias_prefix: str = "b") -> Theta:
        """Symbolic parameters: ``w{i}_{r}_{c}`` and ``b{i}_{r}`` (real symbols, 1-based)."""
        Ws, bs = [], []
        for i in range(self.depth):
            r, c = self.widths[i + 1], self.widths[i]
            Ws.append(sp.ImmutableMatrix(r, c, lambda p, q, i=i: sp.Symbol(
                f"{prefix}{i + 1}_{p + 1}_{q + 1}", real=True)))
            if self.bias:
                bs.append(sp.ImmutableMatrix(r, 1, lambda p, q, i=i: sp.Symbol(
                    f"{bias_prefix}{i + 1}_{p + 1}", real=True)))
            else:
                bs.append(sp.ImmutableMatrix.zeros(r, 1))
        return Theta(tuple(Ws), tuple(bs), "symbolic" if self.n_params else "exact")

    def random_params(self, seed: int | np.random.Generator | None = None, *,
                      exact: bool = False, scale: float = 1.0) -> Theta:
        """Seeded random parameters: float ``N(0, scale^2 / d_in)``-ish entries, or exact small
        non-zero rationals ``p/q`` (``1 <= |p| <= 6``, ``q <= 4``)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        def nums(n: int) -> np.ndarray:
            return rng.integers(1, 7, n) * rng.choice([-1, 1], n)

        Ws, bs = [], []
        for i in range(self.depth):
            r, c = self.widths[i + 1], self.widths[i]
            if exact:
                Ws.append(sp.ImmutableMatrix(r, c, [sp.Rational(int(p), int(q)) for p, q in zip(
                    nums(r * c), rng.integers(1, 5, r * c))]))
                bs.append(sp.ImmutableMatrix(r, 1, [sp.Rational(int(p), int(q)) for p, q in zip(
                    nums(r), rng.integers(1, 5, r))]) if self.bias
                    else sp.ImmutableMatrix.zeros(r, 1))
            else:
                Ws.append(rng.standard_normal((r, c)) * scale / np.sqrt(max(c, 1)))
                bs.append(rng.standard_normal(r) * scale * 0.5 if self.bias else np.zeros(r))
        return Theta(tuple(Ws), tuple(bs), "exact" if exact else "float")

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: Any, theta: Any) -> np.ndarray:
        """``f(x; theta)``, vectorised: ``x`` of shape ``(n, d_0)`` or ``(d_0,)``."""
        theta = self.check_theta(theta)
        X, single = as_batch(x, self.widths[0])
        for layer, th in zip(self.layers, theta.numeric):
            X = layer(X, th)
        return X[0] if single else X

    __call__ = forward

    def latents(self, x: Any, theta: Any) -> list[np.ndarray]:
        theta = self.check_theta(theta)
        return super().latents(x, theta.numeric)

    def forward_precise(self, x: Any, theta: Any, dps: int = 60) -> list:
        """``f(x; theta)`` for one input vector at ``dps`` digits (mpmath), every float taken at
        its exact binary value: the reference against which a float64 residual is re-checked
        (a residual that float rounding alone produced is not a counterexample)."""
        import mpmath

        theta = self.check_theta(theta)

        def mp(v: Any):
            if isinstance(v, mpmath.mpf):
                return v
            return mpmath.mpf(sp.N(v, dps + 10)) if isinstance(v, sp.Basic) else \
                mpmath.mpf(float(v))

        def rows(M: Any) -> list[list]:
            arr = M.tolist() if isinstance(M, sp.MatrixBase) else np.asarray(M).tolist()
            return [[mp(v) for v in row] for row in arr]

        with mpmath.workdps(dps):
            h = [mp(v) for v in (list(x) if isinstance(x, sp.MatrixBase) else
                                 np.asarray(x, dtype=object).ravel())]
            for i, (W, b) in enumerate(theta):
                Wr = rows(W)
                bv = [mp(v) for v in (list(b) if isinstance(b, sp.MatrixBase)
                                      else np.asarray(b).ravel())]
                h = [mpmath.fsum(w * v for w, v in zip(Wr[r], h)) + bv[r]
                     for r in range(W.shape[0])]
                if i < self.depth - 1:
                    h = [self.activations[i].precise(v) for v in h]
            return list(h)

    def pre_activations(self, x: Any, theta: Any) -> list[np.ndarray]:
        """``[z_1, ..., z_L]`` with ``z_i = W_i h_{i-1} + b_i`` on a batch."""
        theta = self.check_theta(theta)
        X, _ = as_batch(x, self.widths[0])
        zs = []
        for layer, th in zip(self.layers, theta.numeric):
            Z = layer.pre(X, th)
            zs.append(Z)
            X = Z if layer.activation is None else layer.activation(Z)
        return zs

    def symbolic(self, theta: Any, x: sp.Matrix | None = None) -> sp.Matrix:
        """``f(x; theta)`` as a sympy column in input symbols (parameters may be symbols)."""
        theta = self.check_theta(theta)
        if theta.kind == "float":
            theta = Theta(tuple(sp.ImmutableMatrix(np.asarray(W).tolist()) for W in theta.weights),
                          tuple(sp.ImmutableMatrix(np.asarray(b).reshape(-1, 1).tolist())
                                for b in theta.biases), "exact")
        return super().symbolic(theta, x)

    # ------------------------------------------------------------------ symmetries
    def latent_group(self, i: int) -> LatentGroup:
        """``K_i`` (``1 <= i <= L - 1``): the intertwiner group of eq. (8) on ``R^{d_i}``."""
        if not 1 <= i <= self.depth - 1:
            raise ValueError(f"i: hidden layers are 1..{self.depth - 1}, got {i}")
        d = self.widths[i]
        if d == 0:
            return TrivialGroup()
        act = self.activations[i - 1]
        try:
            return act.intertwiner_group(d)
        except UndecidedError as exc:
            raise UndecidedError(
                f"layer {i} (activation[{i - 1}] = {act.name}): no derived intertwiner group "
                f"K_{i}: {exc}", exc.verdict) from None

    def _k(self, k: Sequence[Any], tol: float | None = None) -> list[tuple]:
        """Validate k and return [(A_i, B_i, B_i^{-1}), ...]."""
        k = list(k)
        if len(k) != self.depth - 1:
            raise ValueError(f"k: expected {self.depth - 1} matrices (one per hidden layer), "
                             f"got {len(k)}")
        out = []
        for i, (A, K) in enumerate(zip(k, self.latent_groups())):
            if K.d == 0:
                out.append((A, A, A))
                continue
            Am = as_matrix(A, f"k[{i}]", shape=(K.d, K.d))
            v = K.membership(Am, tol)
            if v.holds is not True:
                raise ValueError(f"k[{i}]: not an element of K_{i + 1} = {K.name}: {v.reason}")
            B = K.partner(Am)
            out.append((Am, B, K.partner_inverse(B)))
        return out

    def transform(self, theta: Any, k: Sequence[Any]) -> Theta:
        """``k . theta`` (see the module docstring): ``W'_i = A_i W_i B_{i-1}^{-1}``,
        ``b'_i = A_i b_i``, ``W'_L = W_L B_{L-1}^{-1}``."""
        theta = self.check_theta(theta)
        parts = self._k(k)
        exact = theta.exact and all(isinstance(A, sp.MatrixBase) or A.shape == (0, 0)
                                    for A, _, _ in parts)
        Ws, bs = [], []
        for i, (W, b) in enumerate(theta):
            W = as_param_matrix(W, exact)
            b = as_param_vector(b, exact)
            if i > 0:
                Binv = as_param_matrix(parts[i - 1][2], exact) if W.shape[1] else parts[i - 1][2]
                W = W * Binv if exact else W @ Binv
            if i < self.depth - 1 and W.shape[0]:
                A = as_param_matrix(parts[i][0], exact)
                W, b = (A * W, A * b) if exact else (A @ W, A @ b)
            Ws.append(sp.ImmutableMatrix(W) if exact else W)
            bs.append(sp.ImmutableMatrix(b) if exact else b)
        return Theta(tuple(Ws), tuple(bs), param_kind(*Ws, *bs) if exact else "float")

    @validates_arguments
    @_zero.undecided_on_zero_tests
    def check_symmetry(self, theta: Any, theta2: Any, k: Sequence[Any], *,
                       n_samples: int = 64, tol: float | None = None, seed: int = 0) -> Verdict:
        """Verify eq. (3): ``f_i(x; theta2_i) = k_i . f_i(k_{i-1}^{-1} . x; theta_i)`` for every
        layer and all x (``k_i`` acting on ``V_i`` by its partner ``B_i``).

        Exact inputs: both sides as sympy expressions in symbols x, compared exactly
        (:func:`identifiable.diagrams.expr_is_zero`); floats: on ``n_samples`` random inputs.
        """
        from identifiable.diagrams import expr_is_zero

        theta = self.check_theta(theta)
        theta2 = self.check_theta(theta2, "theta2")
        parts = self._k(k)
        L = self.depth
        exact = theta.exact and theta2.exact and all(
            isinstance(A, sp.MatrixBase) for A, _, _ in parts)
        rng = np.random.default_rng(seed)
        worst, t_used = 0.0, 0.0
        for i in range(L):
            layer = self.layers[i]
            d_in, d_out = self.widths[i], self.widths[i + 1]
            Bprev = sp.eye(d_in) if i == 0 else parts[i - 1][1]
            Bprev_inv = sp.eye(d_in) if i == 0 else parts[i - 1][2]
            Bi = sp.eye(d_out) if i == L - 1 else parts[i][1]
            if exact:
                x = input_symbols(d_in, "v")
                lhs = layer.symbolic(x, theta2[i])
                rhs = sp.Matrix(Bi) * layer.symbolic(sp.Matrix(Bprev_inv) * x, theta[i])
                for r in range(d_out):
                    v = expr_is_zero(lhs[r] - rhs[r], x)
                    if v.status == "refuted":
                        return Verdict.refuted(
                            f"eq. (3) fails at layer {i + 1}, output {r}",
                            counterexample={"layer": i + 1, "output": r, **v.counterexample})
                    if v.status != "proved":
                        return v.but(reason=f"layer {i + 1}, output {r}: {v.reason}")
                continue
            X = rng.standard_normal((n_samples, d_in)) * 2.0
            th, th2 = theta.numeric, theta2.numeric
            lhs = layer(X, th2[i])
            Xin = X @ np.asarray(to_numpy(Bprev_inv) if isinstance(Bprev_inv, sp.MatrixBase)
                                 else Bprev_inv).T
            rhs = layer(Xin, th[i]) @ np.asarray(to_numpy(Bi) if isinstance(Bi, sp.MatrixBase)
                                                else Bi).T
            t = sample_tol(tol, rhs)
            t_used = max(t_used, t)
            err = np.abs(lhs - rhs)
            worst = max(worst, float(np.max(err, initial=0.0)))
            if np.max(err, initial=0.0) > t:
                j, r = np.unravel_index(int(np.argmax(err)), err.shape)
                return Verdict.refuted(
                    f"eq. (3) fails at layer {i + 1}, output {r}: residual {err[j, r]:.3g}",
                    counterexample={"layer": i + 1, "output": int(r), "x": X[j].tolist(),
                                    "lhs": float(lhs[j, r]), "rhs": float(rhs[j, r])},
                    method="sampled", tol=t)
        if exact:
            _ = Bprev  # noqa: F841 (kept for symmetry with the numeric branch)
            return Verdict.proved("eq. (3) holds exactly at every layer (Definition 3.4 "
                                  "[SMBK26]; k_i acts on V_i by its partner B_i)", witness=list(k))
        return Verdict.checked("eq. (3) holds at every layer on random inputs",
                               n_samples=n_samples, tol=t_used,
                               witness=list(k), max_residual=worst)

    def check_invariance(self, theta: Any, k: Sequence[Any], **kwargs: Any) -> Verdict:
        """``f(.; k . theta) = f(.; theta)``: eq. (3) for ``theta' = k . theta`` at every layer."""
        return self.check_symmetry(theta, self.transform(theta, k), k, **kwargs)

    # ------------------------------------------------------------------ torch
    def to_torch(self, theta: Any, dtype: Any = None) -> Any:
        """An ``nn.Sequential`` ``Linear, act, ..., Linear`` computing ``f(.; theta)`` of
        eq. (7) [SMBK26] in ``dtype`` (a torch float dtype, default float32); see
        :func:`identifiable.torch.bridge.to_torch`. Needs torch (imported here, not by the
        symbolic core)."""
        from identifiable.torch.bridge import to_torch

        return to_torch(self, theta, dtype)
