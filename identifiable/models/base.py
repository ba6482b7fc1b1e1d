"""Models (Definition 3.1 [SMBK26]): layers, their composition (1), and the model protocol.

A *model of depth L* is a sequence of layers ``f_i: V_{i-1} x Theta_i -> V_i``; its end-to-end map
is the composition (1) ``f(x; theta) = f_L(.; theta_L) o ... o f_1(x; theta_1)``.

* :class:`Layer` is one ``f_i`` (a numeric map vectorised over a batch, and optionally a sympy
  map);
* :class:`Model` is a sequence of layers; models compose with :meth:`Model.then` (``>>``).

:class:`Model` also declares the *protocol* the theory needs of a model with latent symmetries
(:meth:`~Model.check_theta`, :meth:`~Model.latent_group`, :meth:`~Model.transform`,
:meth:`~Model.forward`, :meth:`~Model.symbolic`); :class:`~identifiable.models.mlp.MLP`
(eq. (7)) and :class:`~identifiable.models.attention.AttentionModel` (eq. (10)) implement it.
What each theorem needs beyond that (the action of eq. (12) on the first and last layer, layer
equivariance, alignment) is dispatched on the model's type in :mod:`identifiable.theory`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

__all__ = ["Layer", "Model", "input_symbols", "as_batch"]


def input_symbols(d: int, name: str = "x") -> sp.Matrix:
    """Real sympy symbols ``x1, ..., xd`` as a column matrix."""
    return sp.Matrix([sp.Symbol(f"{name}{j + 1}", real=True) for j in range(d)])



def as_batch(x: Any, d: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """(n, d) float64 batch and whether the input was a single vector."""
    if isinstance(x, sp.MatrixBase):
        x = np.array(x.evalf(17).tolist(), dtype=float)
        if x.shape == (d, 1):
            x = x[:, 0]
    if isinstance(x, np.ndarray) and x.dtype.kind not in "iufO":
        raise TypeError(f"{name}: expected numbers of shape (n, {d}) or ({d},), got an array of "
                        f"dtype {x.dtype}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: expected numbers of shape (n, {d}) or ({d},), got "
                         f"{type(x).__name__} that is not a rectangular array of numbers "
                         f"({exc})") from None
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name}: expected shape (n, {d}) or ({d},), got {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr, single



class Layer:
    """One layer ``f_i: V_{i-1} x Theta_i -> V_i`` of Definition 3.1 [SMBK26].

    Parameters
    ----------
    fn:
        Numeric map ``fn(X, theta_i) -> Y`` on a batch ``X`` of shape ``(n, in_dim)``.
    in_dim, out_dim:
        ``dim V_{i-1}`` and ``dim V_i``.
    symbolic:
        Optional sympy map ``symbolic(x, theta_i) -> sympy Matrix`` on a column ``x``.
    name:
        Display name.
    """

    def __init__(self, fn: Callable[[np.ndarray, Any], np.ndarray], in_dim: int, out_dim: int,
                 *, symbolic: Callable[[sp.Matrix, Any], sp.Matrix] | None = None,
                 name: str = "layer"):
        self._fn = fn
        self._symbolic = symbolic
        self.in_dim, self.out_dim, self.name = int(in_dim), int(out_dim), name

    def __call__(self, X: np.ndarray, theta_i: Any) -> np.ndarray:
        return self._fn(X, theta_i)

    def symbolic(self, x: sp.Matrix, theta_i: Any) -> sp.Matrix:
        if self._symbolic is None:
            raise NotImplementedError(f"{self.name}: no symbolic form was given")
        return self._symbolic(x, theta_i)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}: R^{self.in_dim} -> R^{self.out_dim})"



# ---------------------------------------------------------------------------------- models
class Model:
    """A deep model (Definition 3.1 [SMBK26]): layers ``f_1, ..., f_L`` composed as in (1).

    ``theta`` is any sequence ``(theta_1, ..., theta_L)`` the layers understand.
    """

    def __init__(self, layers: Sequence[Layer]):
        layers = list(layers)
        if not layers:
            raise ValueError("layers: a model has depth L >= 1")
        for i in range(1, len(layers)):
            if layers[i].in_dim != layers[i - 1].out_dim:
                raise ValueError(f"layers[{i}]: input dimension {layers[i].in_dim} differs from "
                                 f"the output dimension {layers[i - 1].out_dim} of layers[{i - 1}]")
        self.layers = layers

    @property
    def depth(self) -> int:
        """L, the number of layers."""
        return len(self.layers)

    @property
    def in_dim(self) -> int:
        return self.layers[0].in_dim

    @property
    def out_dim(self) -> int:
        return self.layers[-1].out_dim

    def _thetas(self, theta: Any) -> list:
        thetas = list(theta)
        if len(thetas) != self.depth:
            raise ValueError(f"theta: expected {self.depth} layer parameters, got {len(thetas)}")
        return thetas


    # ------------------------------------------------------------------ the protocol
    # What the theory (identifiable.theory) asks of a model with latent symmetries. A plain
    # Model (a chain of layers) has none: these raise NotImplementedError; MLP and
    # AttentionModel implement them.
    def check_theta(self, theta: Any, name: str = "theta") -> Any:
        """``theta`` validated for this model (a clear error naming ``name`` otherwise), in the
        model's parameter type."""
        return self._thetas(theta)

    def latent_group(self, i: int) -> Any:
        """``K_i`` (``1 <= i <= L - 1``): the latent symmetry group acting on ``V_i``
        (Section 3.2 [SMBK26]); an :class:`~identifiable.latent_groups.LatentGroup` for an
        MLP."""
        raise NotImplementedError(f"{type(self).__name__} declares no latent groups")

    def latent_groups(self) -> list:
        """``[K_1, ..., K_{L-1}]`` (Section 5.1 [SMBK26]; a model with other latent spaces, such
        as the residual MLP's shared stream, overrides it)."""
        return [self.latent_group(i) for i in range(1, self.depth)]

    @property
    def symmetry_dimension(self) -> int:
        """``dim K``: the sum of the Lie dimensions of :meth:`latent_groups` (0 for finite
        groups)."""
        return sum(K.dimension for K in self.latent_groups())

    def random_k(self, seed: Any = None, *, exact: bool = False) -> list:
        """A seeded random element of ``K``, one per group of :meth:`latent_groups` (exact
        entries with ``exact=True``)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return [K.random_exact(rng) if exact else K.random(rng) for K in self.latent_groups()]

    def transform(self, theta: Any, k: Sequence[Any]) -> Any:
        """``k . theta``: the action of ``k = (k_1, ..., k_{L-1})`` in ``K`` on parameters that
        makes eq. (3) hold (Definition 3.4 [SMBK26])."""
        raise NotImplementedError(f"{type(self).__name__} declares no action on parameters")

    def random_params(self, seed: Any = None) -> Any:
        """A seeded random parameter."""
        raise NotImplementedError(f"{type(self).__name__} has no parameter distribution")

    def forward(self, x: Any, theta: Any) -> np.ndarray:
        """``f(x; theta)`` on a batch ``x`` of shape ``(n, d_0)`` (or one vector ``(d_0,)``)."""
        X, single = as_batch(x, self.in_dim)
        for layer, th in zip(self.layers, self._thetas(theta)):
            X = layer(X, th)
        return X[0] if single else X

    __call__ = forward

    def latents(self, x: Any, theta: Any) -> list[np.ndarray]:
        """``[x, f_1(x), f_2(f_1(x)), ...]``: the points of ``V_0, ..., V_L``."""
        X, _ = as_batch(x, self.in_dim)
        out = [X]
        for layer, th in zip(self.layers, self._thetas(theta)):
            out.append(layer(out[-1], th))
        return out

    def symbolic(self, theta: Any, x: sp.Matrix | None = None) -> sp.Matrix:
        """``f(x; theta)`` as a sympy column in input symbols ``x`` (default ``x1..x_{d_0}``)."""
        v = input_symbols(self.in_dim) if x is None else sp.Matrix(x)
        for layer, th in zip(self.layers, self._thetas(theta)):
            v = layer.symbolic(v, th)
        return v

    def then(self, other: Model) -> Model:
        """The composed model ``self`` followed by ``other`` (depth ``L + L'``); its parameter
        is ``list(theta) + list(theta_other)``."""
        if other.in_dim != self.out_dim:
            raise ValueError(f"other: input dimension {other.in_dim} differs from this model's "
                             f"output dimension {self.out_dim}")
        return Model(self.layers + other.layers)

    __rshift__ = then

    def __repr__(self) -> str:
        dims = [self.in_dim] + [layer.out_dim for layer in self.layers]
        return f"Model(depth {self.depth}, dims {dims})"
