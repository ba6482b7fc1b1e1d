"""How the models store their parameters (Definition 3.1 [SMBK26]: theta is a point of a real
vector space): exact entries as immutable sympy matrices, float entries as float64 numpy arrays,
never a mix. Shared by :mod:`identifiable.models.mlp` and :mod:`identifiable.models.residual`."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from identifiable.numbers import to_numpy

__all__ = ["zero_vector", "float_array", "param_kind", "as_param_matrix", "as_param_vector"]


def zero_vector(d: int, exact: bool) -> Any:
    """A zero column: an exact ``d x 1`` sympy matrix, or a float ``(d,)`` array."""
    return sp.ImmutableMatrix.zeros(d, 1) if exact else np.zeros(d)


def float_array(M: Any) -> np.ndarray:
    """Float64 array of a sympy or numpy matrix, keeping empty shapes."""
    if isinstance(M, sp.MatrixBase):
        if 0 in M.shape:
            return np.zeros(M.shape)
        return to_numpy(M).reshape(M.shape)
    return np.asarray(M, dtype=np.float64)


def param_kind(*mats: Any) -> str:
    """'float', 'symbolic' or 'exact' for a collection of converted matrices."""
    if any(isinstance(m, np.ndarray) for m in mats):
        return "float"
    if any(isinstance(m, sp.MatrixBase) and m.free_symbols for m in mats):
        return "symbolic"
    return "exact"


def as_param_matrix(M: Any, exact: bool) -> Any:
    """A converted matrix in the wanted representation (float arrays stay float)."""
    if exact:
        if isinstance(M, sp.MatrixBase):
            return M
        return sp.ImmutableMatrix.zeros(*np.shape(M)) if np.size(M) == 0 else \
            sp.ImmutableMatrix(np.asarray(M).tolist())
    return float_array(M)


def as_param_vector(b: Any, exact: bool) -> Any:
    """A bias as an exact ``d x 1`` sympy column or a float ``(d,)`` array."""
    if exact:
        if isinstance(b, sp.MatrixBase):
            return sp.ImmutableMatrix(b.reshape(b.shape[0] * b.shape[1], 1))
        return sp.ImmutableMatrix(np.asarray(b).reshape(-1, 1).tolist())
    if isinstance(b, sp.MatrixBase):
        return float_array(b).reshape(-1)
    return np.asarray(b, dtype=np.float64).reshape(-1)
