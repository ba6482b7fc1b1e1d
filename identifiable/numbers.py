"""The number policy of the library: exact versus float inputs, tolerances, validation.

One module owns the boundary between exact theory and numeric reality:

* **which kind an input is** (:func:`as_matrix`, :func:`as_vector`, :func:`exact_scalar`), with
  a clear error at the API boundary naming the argument;
* **one tolerance table** (:data:`TOLERANCE`, relative tolerances per float dtype, as e3nn's
  ``FLOAT_TOLERANCE``), :func:`default_tol` for entry-wise comparisons and :func:`sample_tol` for
  sampled ones (never below float64 resolution);
* **validation** of every user tolerance and sample count (:func:`validates_arguments`);
* **one inverse** with one singularity test (:func:`exact_inverse`, over QQ or a number field
  via :mod:`identifiable.zero`) and one zero test (:func:`is_exact_zero`);
* **one way to rationalise** a float counterexample (:func:`rationalise`), which is then
  re-evaluated exactly.

The kinds of input:

* **exact**: Python ``int``, :class:`fractions.Fraction`, sympy numbers (``Rational``,
  ``sqrt(2)``, ...), numpy integer arrays, sympy matrices without floats. Converted to an
  immutable sympy matrix.
* **float**: anything holding a Python/numpy/sympy float. Converted to a ``float64`` numpy array
  and checked to be finite.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Union

import numpy as np
import sympy as sp

from identifiable import zero as _zero

Matrix = Union[sp.ImmutableMatrix, np.ndarray]  # noqa: UP007 (a runtime alias)

__all__ = [
    "Matrix",
    "as_matrix",
    "as_vector",
    "is_exact",
    "default_tol",
    "to_numpy",
    "to_sympy",
    "exact_scalar",
    "is_exact_zero",
    "is_zero_entry",
    "exact_inverse",
    "validate_tol",
    "validate_count",
    "validates_arguments",
    "sample_tol",
    "rationalise",
    "TOLERANCE",
    "PROBE_TOL",
    "RANK_RTOL",
    "FIT_RTOL",
    "ENTRY_RTOL",
    "RESIDUAL_RTOL",
    "EIGENVALUE_TOL",
]

#: relative tolerances of float comparisons per dtype (entry-wise and sampled defaults)
TOLERANCE: dict[str, float] = {"float32": 1e-5, "float64": 1e-9}
FLOAT64_RTOL = TOLERANCE["float64"]
FLOAT32_RTOL = TOLERANCE["float32"]
#: an exact identity counts as zero at a 30-digit probe point when its residual is below this
#: (``checked`` verdicts of symbolic identities record it); refutations need a certified value
PROBE_TOL = 1e-12
#: singular values below ``RANK_RTOL * s_max`` count as zero in numeric ranks
RANK_RTOL = 1e-10
#: relative tolerance of numeric fits (attention heads: least-squares blocks, group elements)
FIT_RTOL = 1e-6
#: a float computed in a few operations from exact values (a scaling, a matrix entry) equals an
#: exact number when within this (relative) distance
ENTRY_RTOL = 1e-12
#: sampled residuals of layers and networks (a few float layers deep): default relative tolerance
RESIDUAL_RTOL = 1e-8
#: numeric eigenvalues off the unit circle by more than this mean infinite order
EIGENVALUE_TOL = 1e-6


def _scalar_kind(v: Any, name: str) -> str:
    """'exact', 'float' or raise TypeError."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: booleans are not numbers here")
    if isinstance(v, (int, np.integer, Fraction)):
        return "exact"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, (complex, np.complexfloating)):
        raise TypeError(f"{name}: complex entries are not supported (real matrices only)")
    if isinstance(v, sp.Basic):
        v = sp.sympify(v)
        if v.free_symbols:
            return "symbolic"
        if v.has(sp.Float):
            return "float"
        if v.is_real is False or v.has(sp.I):
            raise TypeError(f"{name}: entry {v} is not real")
        if v.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise ValueError(f"{name}: entry {v} is not finite")
        return "exact"
    raise TypeError(f"{name}: entry {v!r} of type {type(v).__name__} is not a number")


def _as_exact_entry(v: Any) -> sp.Expr:
    """An exact entry as sympy; a rational number in disguise becomes that rational
    (:func:`identifiable.zero.canonical`), so that later structural comparisons see it."""
    if isinstance(v, Fraction):
        return sp.Rational(v.numerator, v.denominator)
    if isinstance(v, (int, np.integer)):
        return sp.Integer(int(v))
    return _zero.canonical(sp.sympify(v))


def exact_scalar(v: Any, name: str = "value") -> sp.Expr:
    """Convert an exact scalar (int, Fraction, sympy number) to sympy, else raise TypeError."""
    kind = _scalar_kind(v, name)
    if kind != "exact":
        raise TypeError(f"{name}: expected an exact number, got {v!r}")
    return _as_exact_entry(v)


def _rational_sympy(m: sp.MatrixBase) -> bool:
    """Whether sympy stores ``m`` over ZZ or QQ (its entries are Integers / Rationals)."""
    dom = getattr(getattr(m, "_rep", None), "domain", None)
    return dom is not None and bool(dom.is_ZZ or dom.is_QQ)


def as_matrix(
    value: Any,
    name: str,
    *,
    shape: tuple[int | None, int | None] | None = None,
    square: bool = False,
    allow_symbols: bool = False,
    exact: bool | None = None,
) -> Matrix:
    """Convert ``value`` into an exact sympy matrix or a finite float64 numpy array.

    Parameters
    ----------
    value:
        Nested lists, numpy array or sympy matrix.
    name:
        The argument's name, used in error messages.
    shape:
        Expected ``(rows, cols)``; ``None`` in a slot means any.
    square:
        Require a square matrix.
    allow_symbols:
        Accept sympy symbols in entries (the result is then a sympy matrix).
    exact:
        Force the result type: ``True`` demands exact input, ``False`` converts to float.
    """
    if isinstance(value, sp.MatrixBase):
        rows, cols = value.shape
        if exact is not False and _rational_sympy(value) and rows and cols and \
                (not square or rows == cols) and \
                (shape is None or all(e is None or e == g for e, g in zip(shape, (rows, cols)))):
            # every entry is a sympy Integer / Rational already: no per-entry conversion
            return value if isinstance(value, sp.ImmutableMatrix) else sp.ImmutableMatrix(value)
        entries = list(value)
    else:
        if isinstance(value, np.ndarray) and value.dtype != object:
            arr = value
            if arr.dtype.kind == "b":
                raise TypeError(f"{name}: boolean arrays are not matrices of numbers")
            if arr.dtype.kind == "c":
                raise TypeError(f"{name}: complex matrices are not supported")
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"{name}: dtype {arr.dtype} is not numeric")
        else:
            try:
                arr = np.array(value, dtype=object)
            except Exception as exc:  # ragged input and the like
                raise ValueError(f"{name}: cannot be read as a matrix ({exc})") from None
        if arr.ndim == 1 and arr.size > 0 and shape is None and not square:
            raise ValueError(f"{name}: expected a 2-d matrix, got a 1-d array of length "
                             f"{arr.shape[0]}")
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected a 2-d matrix, got an array of shape {arr.shape}")
        rows, cols = arr.shape
        if arr.dtype.kind in "iu":
            entries = None
            kinds = {"exact"}
        elif arr.dtype.kind == "f":
            entries = None
            kinds = {"float"}
        else:
            entries = list(arr.ravel())
    if rows == 0 or cols == 0:
        raise ValueError(f"{name}: empty matrix of shape ({rows}, {cols})")
    if square and rows != cols:
        raise ValueError(f"{name}: expected a square matrix, got shape ({rows}, {cols})")
    if shape is not None:
        er, ec = shape
        if (er is not None and rows != er) or (ec is not None and cols != ec):
            want = f"({'any' if er is None else er}, {'any' if ec is None else ec})"
            raise ValueError(f"{name}: expected shape {want}, got ({rows}, {cols})")

    if entries is not None:
        kinds = {_scalar_kind(v, name) for v in entries}
    if "symbolic" in kinds and not allow_symbols:
        raise TypeError(f"{name}: symbolic entries are not allowed here")
    if "symbolic" in kinds or (("float" not in kinds) and exact is not False):
        if exact is False:
            raise TypeError(f"{name}: cannot convert symbolic entries to floats")
        if entries is None:
            out = sp.ImmutableMatrix(rows, cols, [sp.Integer(int(v)) for v in arr.ravel()])
        else:
            out = sp.ImmutableMatrix(rows, cols, [_as_exact_entry(v) for v in entries])
        return out
    if exact is True:
        raise TypeError(f"{name}: expected exact entries (int, Fraction, sympy Rational), "
                        "got floats")
    if entries is None:
        out_f = np.asarray(arr, dtype=np.float64)
    else:
        out_f = np.array([float(v) for v in entries], dtype=np.float64).reshape(rows, cols)
    if not np.all(np.isfinite(out_f)):
        bad = np.argwhere(~np.isfinite(out_f))[0]
        raise ValueError(f"{name}: entry {tuple(int(i) for i in bad)} is not finite "
                         f"({out_f[tuple(bad)]})")
    return out_f


def as_vector(value: Any, name: str, *, length: int | None = None,
              allow_symbols: bool = False, exact: bool | None = None) -> Matrix:
    """Convert a vector to a column matrix (``n x 1``), exact or float as in :func:`as_matrix`."""
    if isinstance(value, sp.MatrixBase):
        if 1 not in value.shape:
            raise ValueError(f"{name}: expected a vector, got shape {value.shape}")
        value = list(value)
    arr = value if isinstance(value, np.ndarray) else None
    if arr is None:
        try:
            arr = np.array(value, dtype=object)
        except Exception as exc:
            raise ValueError(f"{name}: cannot be read as a vector ({exc})") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d vector, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}, got {arr.shape[0]}")
    return as_matrix(arr.reshape(-1, 1), name, allow_symbols=allow_symbols, exact=exact)


def is_exact(M: Any) -> bool:
    """True for sympy matrices (exact or symbolic), False for numpy arrays."""
    return isinstance(M, sp.MatrixBase)


def to_numpy(M: Any) -> np.ndarray:
    """Float64 view of an exact or float matrix (empty sympy matrices keep their shape)."""
    if isinstance(M, sp.MatrixBase):
        if _rational_sympy(M) and 0 not in M.shape:
            # ZZ / QQ storage: integer division of numerator by denominator is correctly
            # rounded (as evalf would be), without creating a sympy Float per entry
            rep = M._rep
            flat = rep.to_list_flat()
            if rep.domain.is_ZZ:
                vals = [int(x) for x in flat]
            else:
                vals = [int(x.numerator) / int(x.denominator) for x in flat]
            return np.array(vals, dtype=np.float64).reshape(M.shape)
        return np.array(M.evalf(17).tolist(), dtype=np.float64).reshape(M.shape)
    return np.asarray(M, dtype=np.float64)


def to_sympy(M: np.ndarray | sp.MatrixBase) -> sp.ImmutableMatrix:
    """Exact sympy copy (floats are kept as sympy Floats)."""
    if isinstance(M, sp.MatrixBase):
        return sp.ImmutableMatrix(M)
    return sp.ImmutableMatrix(np.asarray(M).tolist())


def default_tol(*arrays: np.ndarray, rtol: float | None = None) -> float:
    """Absolute tolerance for float comparisons: ``rtol * max(1, max |entry|)``."""
    if rtol is None:
        rtol = FLOAT32_RTOL if any(
            isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays
        ) else FLOAT64_RTOL
    scale = 1.0
    for a in arrays:
        if isinstance(a, np.ndarray) and a.size:
            scale = max(scale, float(np.max(np.abs(a))))
    return rtol * scale


#: float64 evaluation alone can move a value of size s by this many units of s * eps
FLOAT64_RESOLUTION = 1e3 * float(np.finfo(np.float64).eps)


def sample_tol(tol: float | None, *arrays: Any, rtol: float = FLOAT64_RTOL) -> float:
    """The absolute tolerance of a sampled float comparison of values like ``arrays``:
    the user's ``tol`` (default ``rtol * max(1, max |entry|)``), but never below the float64
    resolution ``1e3 eps max(1, max |entry|)``, under which a difference may be rounding alone
    and cannot refute anything. The value returned is the one a verdict records."""
    scale = 1.0
    for a in arrays:
        if a is not None and np.size(a):
            scale = max(scale, float(np.max(np.abs(np.asarray(a, dtype=np.float64)))))
    chosen = rtol * scale if tol is None else float(tol)
    return max(chosen, FLOAT64_RESOLUTION * scale)


def validate_tol(tol: Any, name: str = "tol", *, allow_none: bool = True) -> float | None:
    """A user's tolerance, checked at the API boundary: a finite number >= 0 (or None for the
    default). NaN, infinities, negative values and non-numbers raise a ValueError / TypeError
    naming the argument: a NaN tolerance makes every comparison false and an infinite one makes
    every check pass, so neither may reach a verdict."""
    if tol is None:
        if allow_none:
            return None
        raise TypeError(f"{name}: expected a finite number >= 0, got None")
    if isinstance(tol, (bool, np.bool_)) or not isinstance(
            tol, (int, float, Fraction, np.integer, np.floating, sp.Basic)):
        raise TypeError(f"{name}: expected a finite number >= 0, got {type(tol).__name__}")
    try:
        val = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a finite number >= 0, got {tol!r}") from None
    if not np.isfinite(val):
        raise ValueError(f"{name}: expected a finite number >= 0, got {val}")
    if val < 0:
        raise ValueError(f"{name}: expected a number >= 0, got {val}")
    return val


def validate_count(n: Any, name: str = "n_samples", *, minimum: int = 1) -> int:
    """A user's sample count (or other count), checked at the API boundary: an integer
    ``>= minimum``; anything else raises a ValueError / TypeError naming the argument."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        if isinstance(n, (float, np.floating)) and np.isfinite(n) and float(n).is_integer():
            n = int(n)
        else:
            raise TypeError(f"{name}: expected an integer >= {minimum}, got {n!r}")
    if int(n) < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {int(n)}")
    return int(n)


_TOL_NAMES = ("tol", "rtol", "atol")
_COUNT_NAMES = {"n_samples": 1, "n_probe": 1, "max_branches": 1, "max_order": 1}


def validates_arguments(fn: Callable) -> Callable:
    """Decorator for public checks: every tolerance argument (``tol``, ``rtol``, ``atol``,
    ``*_tol``) must be a finite number >= 0 or None, and every count (``n_samples``,
    ``n_probe``, ``max_branches``, ``max_order``) an integer >= 1 or None; a bad value raises a
    ValueError / TypeError naming the argument before any work is done."""
    sig = inspect.signature(fn)
    tols = [n for n in sig.parameters if n in _TOL_NAMES or n.endswith("_tol")]
    counts = [n for n in sig.parameters if n in _COUNT_NAMES]
    if not tols and not counts:
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:
            return fn(*args, **kwargs)  # let Python report the bad call
        given = bound.arguments
        for n in tols:
            if n in given:
                validate_tol(given[n], n)
        for n in counts:
            if n in given and given[n] is not None:
                validate_count(given[n], n, minimum=_COUNT_NAMES[n])
        return fn(*args, **kwargs)

    return wrapper


def is_exact_zero(v: Any) -> bool:
    """Exact zero test of one entry (:func:`identifiable.zero.is_exact_zero`): never a guess;
    raises :class:`identifiable.zero.UndecidedZero` when it cannot be decided."""
    if isinstance(v, (int, float, Fraction, np.integer, np.floating)):
        return v == 0
    return _zero.is_exact_zero(v)


def is_zero_entry(v: Any, tol: float | None) -> bool:
    """Exact zero test (tol None, :func:`is_exact_zero`) or ``|v| <= tol``."""
    if tol is None:
        return is_exact_zero(v)
    return abs(float(v)) <= tol


def exact_inverse(M: sp.MatrixBase, name: str) -> sp.ImmutableMatrix:
    """Exact inverse (:func:`identifiable.zero.inverse`): ValueError naming ``name`` if
    singular, :class:`identifiable.zero.UndecidedZero` if singularity cannot be decided."""
    return _zero.inverse(M, name)


def rationalise(values: Any, max_denominator: int = 1024) -> list[sp.Rational]:
    """Rationals near the floats ``values`` (denominators at most ``max_denominator``): the one
    way a float counterexample becomes an exact input, at which the identity is then
    re-evaluated exactly (the rational point is the counterexample, not the float)."""
    out = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        q = Fraction(float(v)).limit_denominator(max_denominator)
        out.append(sp.Rational(q.numerator, q.denominator))
    return out
