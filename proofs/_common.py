"""Helpers shared by the claim files (not a claim itself)."""

from __future__ import annotations

import numpy as np
import sympy as sp


def random_rational_matrix(rng: np.random.Generator, d: int, density: float = 1.0) -> sp.Matrix:
    """A random invertible rational matrix (entries k/q, some zero with 1 - density)."""
    while True:
        M = sp.Matrix(d, d, lambda i, j: sp.Rational(int(rng.integers(-6, 7)),
                                                     int(rng.integers(1, 4)))
                      if rng.random() < density else 0)
        if M.rank() == d:
            return M


def recheck_counterexample(act, A, B, cex, a=None, b=None) -> float:
    """Re-evaluate a counterexample of an intertwiner check exactly; return |residual|."""
    x = sp.Matrix(cex["x"])
    A, B = sp.Matrix(A), sp.Matrix(B)
    pre = A * x + (sp.Matrix(a) if a is not None else sp.zeros(A.shape[0], 1))
    lhs = pre.applyfunc(act.at)
    rhs = B * x.applyfunc(act.at) + (sp.Matrix(b) if b is not None else sp.zeros(A.shape[0], 1))
    return float(max(abs(sp.N(v, 30)) for v in (lhs - rhs)))
