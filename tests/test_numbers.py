"""identifiable.numbers: float views of exact matrices and the exact fast paths."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from identifiable.numbers import as_matrix, to_numpy

_big = st.integers(-10**40, 10**40)


@given(st.lists(st.tuples(_big, st.integers(1, 10**40)), min_size=1, max_size=12))
def test_to_numpy_of_rationals_is_correctly_rounded(pairs):
    """Ground truth: Fraction -> float is correctly rounded; the fast ZZ/QQ path and sympy's
    evalf route agree with it on every entry."""
    vals = [sp.Rational(p, q) for p, q in pairs]
    M = sp.Matrix(1, len(vals), vals)
    want = np.array([[float(Fraction(p, q)) for p, q in pairs]])
    assert np.array_equal(to_numpy(M), want)
    assert np.array_equal(to_numpy(sp.ImmutableMatrix(M)), want)


def test_to_numpy_other_storage():
    assert np.array_equal(to_numpy(sp.Matrix([[1, -2], [3, 0]])), [[1.0, -2.0], [3.0, 0.0]])
    S = sp.ImmutableMatrix(sp.SparseMatrix(2, 3, {(0, 1): sp.Rational(1, 3)}))
    assert np.array_equal(to_numpy(S), [[0, 1 / 3, 0], [0, 0, 0]])
    assert to_numpy(sp.zeros(0, 3)).shape == (0, 3)
    assert to_numpy(sp.Matrix([[sp.sqrt(2)]]))[0, 0] == float(np.sqrt(2))


@given(st.lists(st.lists(st.fractions(max_denominator=50), min_size=3, max_size=3),
                min_size=1, max_size=4))
def test_as_matrix_fast_path_keeps_exact_entries(rows):
    """A ZZ/QQ sympy matrix comes back unchanged (as an ImmutableMatrix), equal to the
    entry-by-entry conversion of the same values given as nested lists."""
    M = sp.Matrix([[sp.Rational(x.numerator, x.denominator) for x in r] for r in rows])
    out = as_matrix(M, "M")
    assert isinstance(out, sp.ImmutableMatrix) and out == M
    assert out == as_matrix([[Fraction(x) for x in r] for r in rows], "M")
