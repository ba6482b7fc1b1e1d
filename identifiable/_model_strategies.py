"""Hypothesis strategies for MLPs, their parameters and latent symmetries (re-exported by
:mod:`identifiable.strategies`).

* :func:`mlp_widths`: widths ``[d_0, ..., d_L]``;
* :func:`mlps`: :class:`~identifiable.models.MLP` with a drawn activation and widths;
* :func:`mlp_params`: a :class:`~identifiable.models.Theta` for a given MLP, exact (small
  rationals, :func:`identifiable._core_strategies.rationals`) or float;
* :func:`latent_elements`: ``k = (A_1, ..., A_{L-1})`` in ``K`` (exact monomial matrices with the
  activation's scalings via :func:`identifiable._core_strategies.monomial_matrices`, or exact
  invertible matrices for linear activations), or float elements seeded from a drawn integer;
* :func:`mlps_with_params`: ``(model, theta)`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from identifiable._core_strategies import invertible_matrices, monomial_matrices, rationals
from identifiable.models import MLP, Theta

__all__ = ["mlp_widths", "mlps", "mlp_params", "latent_elements", "mlps_with_params",
           "MODEL_ACTIVATIONS"]

#: activations with a derived intertwiner group, as used by :func:`mlps`
MODEL_ACTIVATIONS = ("tanh", "relu", "power:2", "power:3", "sigmoid", "identity", "gelu",
                     "leaky_relu:1/10")


@st.composite
def mlp_widths(draw: st.DrawFn, min_depth: int = 1, max_depth: int = 3, min_width: int = 1,
               max_width: int = 4) -> list[int]:
    """``[d_0, ..., d_L]`` with ``min_depth <= L <= max_depth`` and widths in
    ``[min_width, max_width]``."""
    L = draw(st.integers(min_depth, max_depth))
    return [draw(st.integers(min_width, max_width)) for _ in range(L + 1)]


@st.composite
def mlps(draw: st.DrawFn, activations: Sequence[str] = MODEL_ACTIVATIONS,
         widths: st.SearchStrategy[list[int]] | None = None,
         bias: bool | None = None) -> MLP:
    """An :class:`MLP` with one drawn activation (all hidden layers) and drawn widths."""
    ws = draw(widths if widths is not None else mlp_widths())
    act = draw(st.sampled_from(list(activations)))
    b = draw(st.booleans()) if bias is None else bias
    return MLP(ws, act, bias=b)


@st.composite
def mlp_params(draw: st.DrawFn, model: MLP, exact: bool = True, max_numerator: int = 5,
               max_denominator: int = 3, scale: float = 1.0) -> Theta:
    """Parameters for ``model``: exact rationals ``p/q`` or floats in ``[-scale, scale]``."""
    Ws, bs = [], []
    for i in range(model.depth):
        r, c = model.widths[i + 1], model.widths[i]
        if exact:
            ent = st.lists(rationals(max_numerator, max_denominator, nonzero=False),
                           min_size=r * c, max_size=r * c)
            Ws.append(sp.ImmutableMatrix(r, c, draw(ent)))
            if model.bias:
                bs.append(sp.ImmutableMatrix(r, 1, draw(st.lists(
                    rationals(max_numerator, max_denominator, nonzero=False), min_size=r,
                    max_size=r))))
        else:
            fl = st.floats(-scale, scale, allow_nan=False, allow_infinity=False, width=64)
            Ws.append(np.array(draw(st.lists(fl, min_size=r * c, max_size=r * c)),
                               dtype=float).reshape(r, c))
            if model.bias:
                bs.append(np.array(draw(st.lists(fl, min_size=r, max_size=r)), dtype=float))
    return model.params(Ws, bs if model.bias else None)


@st.composite
def latent_elements(draw: st.DrawFn, model: MLP, exact: bool = True) -> list:
    """``k = (A_1, ..., A_{L-1})`` in ``K = K_1 x ... x K_{L-1}`` of ``model``."""
    out = []
    for K in model.latent_groups():
        if K.d == 0:
            out.append(sp.ImmutableMatrix.zeros(0, 0) if exact else np.zeros((0, 0)))
        elif not exact:
            out.append(K.random(draw(st.integers(0, 2**31 - 1))))
        elif K.family == "monomial":
            out.append(draw(monomial_matrices(K.d, K.scalings.kind)))
        elif K.family == "GL":
            out.append(draw(invertible_matrices(max_dim=K.d, min_dim=K.d)))
        else:  # pragma: no cover - no other latent groups exist yet
            raise TypeError(f"unknown latent group {K!r}")
    return out


@st.composite
def mlps_with_params(draw: st.DrawFn, activations: Sequence[str] = MODEL_ACTIVATIONS,
                     exact: bool = True, widths: st.SearchStrategy[list[int]] | None = None,
                     bias: bool | None = None) -> tuple[MLP, Theta]:
    """``(model, theta)`` with drawn architecture and parameters."""
    model = draw(mlps(activations, widths, bias))
    return model, draw(mlp_params(model, exact=exact))
