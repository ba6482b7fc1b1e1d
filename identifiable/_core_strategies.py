"""Hypothesis strategies for activations and intertwiners (re-exported by
:mod:`identifiable.strategies`)."""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp
from hypothesis import strategies as st

from identifiable import activations
from identifiable.latent_groups import SCALINGS

__all__ = [
    "activation_names",
    "activation_family",
    "rationals",
    "monomial_matrices",
    "invertible_matrices",
    "exact_intertwiner_pairs",
]

DEFAULT_NAMES = ("relu", "leaky_relu:0.1", "tanh", "sigmoid", "gelu", "softplus", "power:2",
                 "power:3", "identity")


def activation_names(names: Sequence[str] = DEFAULT_NAMES) -> st.SearchStrategy[str]:
    """Names of built-in activations."""
    return st.sampled_from(list(names))


@st.composite
def activation_family(draw, max_degree: int = 4) -> activations.Activation:
    """Random activations from a family: polynomials c_1 x + ... + c_m x^m with small integer
    coefficients, optionally composed with tanh; their groups differ with the parity pattern."""
    x = sp.Symbol("x")
    degree = draw(st.integers(2, max_degree))
    coeffs = draw(st.lists(st.integers(-3, 3), min_size=degree, max_size=degree)
                  .filter(lambda c: any(c[1:])))
    expr = sum(c * x ** (k + 1) for k, c in enumerate(coeffs))
    if draw(st.booleans()):
        expr = sp.tanh(expr)
    return activations.from_sympy(expr, x)


def rationals(max_numerator: int = 6, max_denominator: int = 4,
              nonzero: bool = True) -> st.SearchStrategy[sp.Rational]:
    """Small exact rationals p/q."""
    return st.builds(lambda p, q: sp.Rational(p, q),
                     st.integers(-max_numerator, max_numerator).filter(
                         lambda p: p != 0 or not nonzero),
                     st.integers(1, max_denominator))


@st.composite
def monomial_matrices(draw, d: int | st.SearchStrategy[int] | None = None,
                      scalings: str = "nonzero") -> sp.ImmutableMatrix:
    """Exact monomial matrices P D with entries in a scaling set ("nonzero", "positive",
    "sign", "one": all monomial, positively scaled, signed, plain permutations)."""
    if scalings not in SCALINGS:
        raise ValueError(f"scalings must be one of {sorted(SCALINGS)}")
    if d is None:
        d = st.integers(1, 4)
    n = draw(d) if isinstance(d, st.SearchStrategy) else d
    perm = draw(st.permutations(range(n)))
    M = sp.zeros(n, n)
    for i, j in enumerate(perm):
        if scalings == "one":
            a = sp.Integer(1)
        elif scalings == "sign":
            a = draw(st.sampled_from([sp.Integer(1), sp.Integer(-1)]))
        else:
            a = abs(draw(rationals()))
            if scalings == "nonzero" and draw(st.booleans()):
                a = -a
        M[i, j] = a
    return sp.ImmutableMatrix(M)


@st.composite
def invertible_matrices(draw, max_dim: int = 4, min_dim: int = 1) -> sp.ImmutableMatrix:
    """Exact invertible rational matrices (rejection-sampled on the rank)."""
    n = draw(st.integers(min_dim, max_dim))
    entries = draw(st.lists(rationals(nonzero=False), min_size=n * n, max_size=n * n))
    M = sp.Matrix(n, n, entries)
    if M.rank() < n:
        M = M + sp.eye(n) * (1 + max((abs(e) for e in entries), default=0) * n)
    return sp.ImmutableMatrix(M)


@st.composite
def exact_intertwiner_pairs(draw, names: st.SearchStrategy[str] | None = None,
                            max_dim: int = 4) -> tuple[str, sp.ImmutableMatrix, sp.ImmutableMatrix]:
    """(activation name, A, B) with sigma(A x) = B sigma(x): A a random member of the derived
    intertwiner group, B its partner."""
    name = draw(names if names is not None else activation_names())
    act = activations.get(name)
    n = draw(st.integers(1, max_dim))
    K = act.intertwiner_group(n)
    if K.family == "monomial":
        A = draw(monomial_matrices(n, K.scalings.kind))
    else:
        A = draw(invertible_matrices(max_dim=n, min_dim=n))
    return name, A, sp.ImmutableMatrix(K.partner(A))
