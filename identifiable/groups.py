"""Finite groups given by generator matrices, closed by enumeration.

Every group action in the papers is a finite group ``G`` acting linearly: on the input and output
spaces ``V_0``, ``V_L`` of an equivariant network (Definition 3.6 of [SMBK26]), on the latent
spaces through the ``rho_i`` of Theorem 4.1, and, in the experiments, the horizontal mirror of
images (Section 6 of [SMBK26], Section 4 of [BK23]). As in EMLP, a group *is* its generators:
:class:`Rep` takes a list of generator matrices and enumerates the whole group by breadth-first
search, so that every later check can run over all of ``G`` (or over its generators).

Internally an element is stored in the cheapest exact form that fits all generators:

* **signed permutation matrices** (the common case: mirrors, rotations by 90 degrees, sympy
  permutation groups) as an index array and a sign array, ``M e_i = sign[i] e_{perm[i]}``, so
  that a product costs ``O(d)`` and the mirror on ``3 x 32 x 32`` images never builds a dense
  ``3072 x 3072`` matrix unless asked to;
* other **integer** matrices as ``int64`` numpy arrays (exact; products are exact in float64
  while entries stay small, and are checked for overflow);
* other **exact** matrices (``sqrt(3)/2``, ``cos(pi/7)``, rationals) as sympy ``DomainMatrix``
  over one number field, whose elements have a canonical form (so they hash exactly);
* **floats** as ``float64`` arrays, identified up to the absolute tolerance ``tol``.

Matrices handed out (:attr:`Rep.elements`, :attr:`Rep.generators`, ...) are ``int64`` numpy
arrays for integer groups, ``float64`` arrays for float groups and sympy ``ImmutableMatrix``
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp
from sympy.polys.constructor import construct_domain
from sympy.polys.matrices import DomainMatrix

from identifiable import zero as _zero
from identifiable.numbers import (
    EIGENVALUE_TOL,
    ENTRY_RTOL,
    as_matrix,
    as_vector,
    default_tol,
    to_numpy,
    validates_arguments,
)
from identifiable.verdict import Verdict

__all__ = [
    "Rep",
    "check_homomorphism",
    "matrix_of_permutation",
    "permutation_of",
    "mirror",
    "flip_ud",
    "rot90",
    "from_permutation_group",
    "cyclic",
    "dihedral",
    "symmetric",
    "trivial",
]

_EXACT_IN_FLOAT64 = 2**53  # integer products below this are exact in float64 (BLAS)
_INT64_SAFE = 2**62
_EXACT_PRECHECK_MAX_DIM = 16  # exact finite-order pre-check over a number field up to this size
_EXACT_RATIONAL_PRECHECK_MAX_DIM = 96  # ... over QQ (characteristic polynomial: milliseconds)
_NUMERIC_PRECHECK_MAX_DIM = 512  # numeric (eigenvalue, Jordan block) pre-check up to this size


# ---------------------------------------------------------------------------------- helpers
def matrix_of_permutation(perm: Sequence[int]) -> np.ndarray:
    """The ``int64`` permutation matrix with ``M[perm[i], i] = 1``, so ``M e_i = e_{perm[i]}``.

    Raises ``ValueError`` if ``perm`` is not a permutation of ``0, ..., n-1``.
    """
    p = _check_perm(perm, "perm")
    n = p.shape[0]
    M = np.zeros((n, n), dtype=np.int64)
    M[p, np.arange(n)] = 1
    return M


def permutation_of(matrix: Any) -> list[int] | None:
    """The permutation ``perm`` with ``matrix[perm[i], i] = 1`` (inverse of
    :func:`matrix_of_permutation`), or ``None`` if ``matrix`` is not a permutation matrix."""
    sp_ = _signed_perm(matrix)
    if sp_ is None or np.any(sp_[1] != 1):
        return None
    return [int(i) for i in sp_[0]]


def _check_perm(perm: Any, name: str) -> np.ndarray:
    try:
        p = np.asarray(perm)
    except Exception:  # pragma: no cover - exotic input
        p = None
    if p is None or p.ndim != 1 or p.size == 0 or p.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected a non-empty 1-d sequence of integers, got {perm!r}")
    n = p.shape[0]
    if p.min() < 0 or p.max() >= n or np.bincount(p, minlength=n).max() != 1:
        raise ValueError(f"{name}: not a permutation of 0..{n - 1}: {list(p)[:20]}")
    return p.astype(np.intp)


def _signed_perm(M: Any, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """``(perm, signs)`` with ``M e_i = signs[i] e_{perm[i]}``, or None if M is not monomial with
    entries +-1 (entries compared exactly, or within ``tol``)."""
    if isinstance(M, sp.MatrixBase):
        if not all(getattr(e, "is_Integer", False) and abs(int(e)) <= 1 for e in M):
            return None
        A = np.array(M.tolist(), dtype=np.int64)
    else:
        A = np.asarray(M)
        if A.dtype.kind not in "iuf":
            return None
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.size == 0:
        return None
    d = A.shape[0]
    cols = np.arange(d)
    rows = np.argmax(np.abs(A), axis=0)
    vals = A[rows, cols]
    if np.any(np.abs(np.abs(vals) - 1) > tol) or np.bincount(rows, minlength=d).max() != 1:
        return None
    if tol == 0:
        if np.count_nonzero(A) != d:
            return None
    else:
        rest = np.abs(A).astype(np.float64)
        rest[rows, cols] = 0.0
        if rest.max() > tol:
            return None
    return rows.astype(np.intp), np.where(vals > 0, 1, -1).astype(np.int8)


def _read_matrix(value: Any, name: str) -> Any:
    """Validate a square matrix: ``int64`` array (integer entries), float64 array or sympy."""
    if (isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim == 2
            and value.shape[0] == value.shape[1] and value.size > 0):
        if value.dtype.kind == "u" and value.max() >= _INT64_SAFE:
            return sp.ImmutableMatrix(value.tolist())
        return np.array(value, dtype=np.int64)  # fast path (a copy): no sympy for big arrays
    M = as_matrix(value, name, square=True)
    if isinstance(M, sp.MatrixBase) and all(e.is_Integer for e in M):
        if all(abs(int(e)) < _INT64_SAFE for e in M):
            return np.array([[int(e) for e in row] for row in M.tolist()], dtype=np.int64)
    return M


def _sympy_entries(M: Any) -> list:
    """Entries of an int64 array or sympy matrix as sympy numbers, row-major."""
    if isinstance(M, np.ndarray):
        return [sp.Integer(int(v)) for v in M.ravel()]
    return list(M)


def _in_field(K, entries: list) -> list | None:
    """The entries as elements of the domain ``K``, or None if one is not in it."""
    try:
        return [K.from_sympy(e) for e in entries]
    except Exception:
        return None


def _maxabs(A: np.ndarray) -> int:
    return int(np.max(np.abs(A))) if A.size else 0


def _word_str(word: Sequence[int]) -> str:
    return "*".join(f"s{k}" for k in word) if word else "e"


# ---------------------------------------------------------------------------------- lookups
class _ExactLookup:
    def __init__(self, key):
        self._key, self._table = key, {}

    def find(self, x) -> int | None:
        return self._table.get(self._key(x))

    def add(self, x, i: int) -> None:
        self._table[self._key(x)] = i


class _NearLookup:
    """Find float arrays within ``tol`` (max-abs) of a stored one.

    A fixed random projection ``s(x) = <R, x>`` is cut into cells of width ``h`` chosen so that
    two arrays within ``tol`` land in the same or adjacent cells; the candidates in those three
    cells are then compared entrywise, so rounding boundaries never split an element in two.
    """

    def __init__(self, shape: tuple[int, ...], tol: float):
        self._proj = np.random.default_rng(0).standard_normal(shape)
        self._tol = tol
        self._h = max(2.0 * tol * float(np.abs(self._proj).sum()), 1e-300)
        self._cells: dict[int, list[tuple[int, np.ndarray]]] = {}

    def _cell(self, x: np.ndarray) -> int:
        return math.floor(float(np.vdot(self._proj, x)) / self._h)

    def find(self, x: np.ndarray) -> int | None:
        c = self._cell(x)
        for cc in (c - 1, c, c + 1):
            for j, y in self._cells.get(cc, ()):
                if np.max(np.abs(x - y)) <= self._tol:
                    return j
        return None

    def add(self, x: np.ndarray, i: int) -> None:
        self._cells.setdefault(self._cell(x), []).append((i, x))


# ---------------------------------------------------------------------------------- engines
class _PermEngine:
    """Signed permutation matrices as ``(perm, signs)``: ``M e_i = signs[i] e_{perm[i]}``."""

    def __init__(self, d: int, exact: bool, tol: float | None = None):
        self.d, self.exact, self.tol = d, exact, (None if exact else tol)

    def identity(self):
        return np.arange(self.d, dtype=np.intp), np.ones(self.d, dtype=np.int8)

    def mul(self, a, b):
        return a[0][b[0]], b[1] * a[1][b[0]]

    def lookup(self):
        return _ExactLookup(lambda x: x[0].tobytes() + x[1].tobytes())

    def equal(self, a, b) -> bool:
        return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))

    def dense(self, a) -> np.ndarray:
        M = np.zeros((self.d, self.d), dtype=np.int64 if self.exact else np.float64)
        M[a[0], np.arange(self.d)] = a[1]
        return M

    def convert(self, M):
        return _signed_perm(M, 0.0 if self.exact else self.tol)

    def act(self, a, x: np.ndarray) -> np.ndarray:
        signs = a[1].astype(object) if x.dtype == object else a[1]
        prod = x * signs
        out = np.empty_like(prod)
        out[..., a[0]] = prod
        return out


class _IntEngine:
    """Integer matrices as ``int64`` arrays, with exact, overflow-checked products."""

    exact, tol = True, None

    def __init__(self, d: int):
        self.d = d

    def identity(self):
        return np.eye(self.d, dtype=np.int64)

    def mul(self, a, b):
        bound = _maxabs(a) * _maxabs(b) * self.d
        if bound < _EXACT_IN_FLOAT64:
            return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
        if bound < _INT64_SAFE:
            return a @ b
        raise ValueError("matrix entries grew beyond the int64 range while enumerating the "
                         "group (the group is infinite or its entries are huge)")

    def lookup(self):
        return _ExactLookup(lambda x: x.tobytes())

    def equal(self, a, b) -> bool:
        return bool(np.array_equal(a, b))

    def dense(self, a) -> np.ndarray:
        return a.copy()

    def convert(self, M):
        if isinstance(M, np.ndarray) and M.dtype.kind == "f":
            if not np.all(M == np.rint(M)) or np.max(np.abs(M)) >= _INT64_SAFE:
                return None
            return M.astype(np.int64)
        return M if isinstance(M, np.ndarray) else None

    def act(self, a, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind in "iu" and _maxabs(a) * _maxabs(x) * self.d < _INT64_SAFE:
            return x.astype(np.int64) @ a.T
        if x.dtype.kind in "iu" or x.dtype == object:
            return x.astype(object) @ a.T.astype(object)
        return x @ a.T.astype(np.float64)


class _FieldEngine:
    """Exact matrices as sympy ``DomainMatrix`` over one number field (canonical elements)."""

    exact, tol = True, None

    def __init__(self, d: int, domain):
        self.d, self.K = d, domain
        self._float_cache: dict[int, np.ndarray] = {}

    def identity(self):
        return DomainMatrix.eye(self.d, self.K).to_dense()

    def mul(self, a, b):
        return a.matmul(b)

    def lookup(self):
        return _ExactLookup(lambda x: tuple(x.to_list_flat()))

    def equal(self, a, b) -> bool:
        return a.to_list_flat() == b.to_list_flat()

    def dense(self, a) -> sp.ImmutableMatrix:
        return sp.ImmutableMatrix(a.to_Matrix())

    def convert(self, M):
        if isinstance(M, np.ndarray) and M.dtype.kind == "f":
            return None
        els = _in_field(self.K, _sympy_entries(M))
        if els is None:
            return None
        d = self.d
        return DomainMatrix([els[r * d:(r + 1) * d] for r in range(d)], (d, d), self.K)

    def act(self, a, x: np.ndarray) -> np.ndarray:
        if x.dtype == object or x.dtype.kind in "iu":
            return x.astype(object) @ np.array(self.dense(a).T.tolist(), dtype=object)
        key = id(a)
        if key not in self._float_cache:
            self._float_cache[key] = to_numpy(self.dense(a))
        return x @ self._float_cache[key].T


class _FloatEngine:
    """Float matrices as ``float64`` arrays, identified within the absolute tolerance ``tol``."""

    exact = False

    def __init__(self, d: int, tol: float):
        self.d, self.tol = d, tol

    def identity(self):
        return np.eye(self.d)

    def mul(self, a, b):
        return a @ b

    def lookup(self):
        return _NearLookup((self.d, self.d), self.tol)

    def equal(self, a, b) -> bool:
        return bool(np.max(np.abs(a - b)) <= self.tol)

    def dense(self, a) -> np.ndarray:
        return a.copy()

    def convert(self, M):
        return M if isinstance(M, np.ndarray) else to_numpy(M)

    def act(self, a, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ a.T


def _make_engine(mats: list, tol: float | None, name: str):
    """Pick the cheapest engine for validated matrices and convert them to its form."""
    d = mats[0].shape[0]
    if any(isinstance(m, np.ndarray) and m.dtype.kind == "f" for m in mats):
        floats = [np.array(to_numpy(m), dtype=np.float64) for m in mats]  # own copies
        if tol is None:
            tol = default_tol(*floats)
        perms = [_signed_perm(m) for m in floats]
        if all(p is not None for p in perms):
            return _PermEngine(d, exact=False, tol=tol), perms
        return _FloatEngine(d, tol), floats
    if all(isinstance(m, np.ndarray) for m in mats):
        perms = [_signed_perm(m) for m in mats]
        if all(p is not None for p in perms):
            return _PermEngine(d, exact=True), perms
        return _IntEngine(d), list(mats)
    flat = [e for m in mats for e in _sympy_entries(m)]
    try:
        K, elems = construct_domain(flat, extension=True)
    except Exception as exc:  # pragma: no cover - sympy internals
        raise ValueError(f"{name}: sympy could not build a number field for the exact entries "
                         f"({exc}); pass floats for a tolerance-based group") from None
    if K.is_EX or K.is_EXRAW:
        raise ValueError(f"{name}: exact entries must be algebraic numbers (sympy found no "
                         "canonical domain for them); pass floats for a tolerance-based group")
    out, n = [], d * d
    for k in range(len(mats)):
        chunk = elems[k * n:(k + 1) * n]
        out.append(DomainMatrix([chunk[r * d:(r + 1) * d] for r in range(d)], (d, d), K))
    return _FieldEngine(d, K), out


# ---------------------------------------------------------------------------------- pre-checks
def _singular_or_infinite(engine, g, name: str) -> None:
    """Raise ValueError if ``g`` is singular or cannot have finite order (so G is infinite).

    An element of a finite group has finite order, hence is diagonalisable over C with
    root-of-unity eigenvalues. Small exact matrices are decided exactly (determinant; for
    rational matrices the characteristic polynomial must be a product of cyclotomic polynomials;
    its square-free part must annihilate g); larger ones and floats numerically (eigenvalue
    moduli, a Jordan-block rank test). Beyond ``_NUMERIC_PRECHECK_MAX_DIM`` only singularity is
    checked and the ``max_order`` cap ends the enumeration of an infinite group.
    """
    if isinstance(engine, _PermEngine):
        return
    d = engine.d
    infinite = ", so it has infinite order and the group it generates is infinite"
    limit = (_EXACT_PRECHECK_MAX_DIM if isinstance(engine, _FieldEngine)
             and not (engine.K.is_QQ or engine.K.is_ZZ) else _EXACT_RATIONAL_PRECHECK_MAX_DIM)
    if engine.exact and d <= limit:
        dm = g if isinstance(engine, _FieldEngine) else DomainMatrix.from_list(g.tolist(), sp.ZZ)
        if dm.det() == dm.domain.zero:
            raise ValueError(f"{name}: matrix is singular (determinant 0); generators of a "
                             "finite group must be invertible")
        reason = _exact_infinite_order(dm)
        if reason:
            raise ValueError(f"{name} {reason}{infinite}")
        return
    A = to_numpy(engine.dense(g)) if isinstance(engine, _FieldEngine) else g.astype(np.float64)
    tol = engine.tol if engine.tol is not None else default_tol(A, rtol=ENTRY_RTOL)
    sv = np.linalg.svd(A, compute_uv=False)
    if sv[-1] <= tol:
        raise ValueError(f"{name}: matrix is singular (smallest singular value {sv[-1]:.3g} "
                         f"<= tol {tol:.3g}); generators of a finite group must be invertible")
    if d <= _NUMERIC_PRECHECK_MAX_DIM:
        reason = _float_infinite_order(A, tol)
        if reason:
            raise ValueError(f"{name} {reason}{infinite}")


def _exact_infinite_order(dm: DomainMatrix) -> str | None:
    K, d = dm.domain, dm.shape[0]
    x = sp.Symbol("x")
    coeffs = dm.charpoly()
    p = sp.Poly([K.to_sympy(c) for c in coeffs], x, domain=K)
    if K.is_ZZ or K.is_QQ:
        if not all(c.is_Integer for c in p.all_coeffs()):
            text = str(p.as_expr())
            if len(text) > 120:
                text = f"of degree {p.degree()} ({text[:80]} ...)"
            return (f"has characteristic polynomial {text} with non-integer "
                    "coefficients (some eigenvalue is not a root of unity)")
        for f, _ in sp.Poly(p.as_expr(), x, domain=sp.ZZ).factor_list()[1]:
            if not f.is_cyclotomic:
                text = str(f.as_expr())
                if len(text) > 120:
                    text = f"of degree {f.degree()} ({text[:80]} ...)"
                return (f"has characteristic polynomial with the non-cyclotomic factor "
                        f"{text} (some eigenvalue is not a root of unity)")
    else:
        lam = np.linalg.eigvals(to_numpy(sp.ImmutableMatrix(dm.to_Matrix())))
        if np.max(np.abs(np.abs(lam) - 1)) > EIGENVALUE_TOL:
            return f"has an eigenvalue of modulus {_off_unit(lam):.6g} != 1"
    q = p.sqf_part()
    R = DomainMatrix.zeros((d, d), K).to_dense()
    I = DomainMatrix.eye(d, K).to_dense()
    for c in q.all_coeffs():
        R = R.matmul(dm) + I * K.from_sympy(c)
    if not R.is_zero_matrix:
        return "is not diagonalisable (it has a Jordan block, so its powers grow without bound)"
    return None


#: the eigenvalue order test of :func:`_order_beyond` runs when its separation argument holds:
#: ``eta * max_order**2 <= _ORDER_TEST_MARGIN`` (eta: the eigenvalues' assumed accuracy)
_ORDER_TEST_MARGIN = 0.25
#: ... and for ``max_order`` up to this (the test costs O(d * max_order))
_ORDER_TEST_MAX = 10**6
#: assumed relative accuracy of float64 eigenvalues of a well-scaled matrix (times its
#: condition number) in the eigenvalue-order test of :func:`_order_beyond`
_EIGENVALUE_EPS = 1e-13


def _order_beyond(engine, g, name: str, max_order: int) -> None:
    """Raise ValueError, before any enumeration, when ``g``'s order exceeds ``max_order``: some
    eigenvalue ``exp(2 pi i phi)`` is not a root of unity of order <= max_order, i.e.
    ``n phi`` is not an integer for any ``n <= max_order``.

    Enumerating such a group costs ``max_order`` exact products, minutes to hours for exact
    generators of size ~100 or over a number field (a rotation by an angle that is not a
    rational multiple of pi passes every exact pre-check). The test reads the eigenvalues in
    float64, assumed accurate to ``eta = 1e-13 cond(g)``; then ``|n phi - round(n phi)| <= n
    eta`` at the true order and ``>= 1 / max_order`` at every other n, which separates the two
    when ``eta max_order^2 <= 1/4``; it only runs then (exact generators of moderate condition;
    float generators with a tolerance skip it) and for ``d <= _NUMERIC_PRECHECK_MAX_DIM``.
    """
    if isinstance(engine, _PermEngine) or not engine.exact or max_order > _ORDER_TEST_MAX:
        return
    if engine.d > _NUMERIC_PRECHECK_MAX_DIM:
        return
    A = to_numpy(engine.dense(g)) if isinstance(engine, _FieldEngine) else \
        np.asarray(g, dtype=np.float64)
    eta = _EIGENVALUE_EPS * max(1.0, float(np.linalg.cond(A)))
    if eta * max_order ** 2 > _ORDER_TEST_MARGIN:
        return
    phis = np.angle(np.linalg.eigvals(A)) / (2 * np.pi)
    n = np.arange(1, max_order + 1, dtype=np.float64)
    orders = []
    phis = np.abs(phis)                          # phi and -phi have the same order
    _, first = np.unique(np.round(phis, 9), return_index=True)
    for phi in phis[first]:                      # one representative per cluster, unrounded
        frac = np.abs(n * phi - np.round(n * phi))
        hit = np.flatnonzero(frac <= n * eta)
        if hit.size == 0:
            raise ValueError(
                f"{name} has the eigenvalue exp(2 pi i {phi:.12g}), not a root of unity of "
                f"order <= max_order={max_order} (|n phi - round(n phi)| > n {eta:.2g} for every "
                f"n <= {max_order}), so the group it generates has more than max_order elements "
                "(or is infinite); pass a larger max_order if it is finite")
        orders.append(int(hit[0]) + 1)
    order = math.lcm(*orders) if orders else 1
    if order > max_order:
        raise ValueError(f"{name} has eigenvalues of orders {sorted(set(orders))}, so its order "
                         f"is at least {order} > max_order={max_order}; the group it generates "
                         "has more than max_order elements; pass a larger max_order")


def _off_unit(lam: np.ndarray) -> float:
    mods = np.abs(lam)
    return float(mods[np.argmax(np.abs(mods - 1))])


def _float_infinite_order(A: np.ndarray, tol: float) -> str | None:
    lam = np.linalg.eigvals(A)
    if np.max(np.abs(np.abs(lam) - 1)) > max(EIGENVALUE_TOL, 1e3 * tol):
        return f"has an eigenvalue of modulus {_off_unit(lam):.6g} != 1"
    scale, eps = max(1.0, float(np.abs(A).max())), max(1e-5, 100 * tol)
    seen: list[complex] = []
    for mu in lam:
        # one SVD per cluster of eigenvalues, not per eigenvalue: diag(R, I_198) has 198 equal
        # ones (it took 198 SVDs of 200 x 200, minutes when other processes share the cores)
        if any(abs(mu - c) <= eps for c in seen):
            continue
        seen.append(complex(mu))
        m = int(np.sum(np.abs(lam - mu) <= eps))
        if m > 1:
            sv = np.linalg.svd(A - mu * np.eye(A.shape[0]), compute_uv=False)
            if int(np.sum(sv <= eps * scale)) < m:
                return (f"is not diagonalisable (eigenvalue {complex(mu):.6g} of multiplicity {m} "
                        "has a Jordan block, so its powers grow without bound)")
    return None


# ---------------------------------------------------------------------------------- Rep
class Rep:
    """A finite matrix group ``G`` given by generators, closed by enumeration.

    Parameters
    ----------
    generators:
        Non-empty list of square matrices of one size ``d`` (numpy arrays, sympy matrices or
        nested lists). Exact entries (integers, rationals, algebraic numbers) give an exact group;
        any float entry gives a float group compared within ``tol``.
    max_order:
        Enumeration stops with ``ValueError`` once the group has more elements than this.
    tol:
        Absolute tolerance for float groups (default ``1e-9 * max(1, max |entry|)``, see
        :func:`identifiable.numbers.default_tol`); ignored for exact groups.
    name:
        Shown in ``repr``.

    Notes
    -----
    Elements are numbered in breadth-first order from the identity (index 0) by
    right-multiplication with the generators, so :attr:`words` holds a shortest word for each
    element. A word ``"s0*s1"`` means the matrix product ``generators[0] @ generators[1]`` in
    the order written; the identity's word is ``"e"``.

    Raises ``ValueError`` for bad generators (naming ``generators[k]``): non-square, mismatched
    sizes, NaN or inf, singular, of infinite order (an eigenvalue off the unit circle, a Jordan
    block, or for rational matrices a non-cyclotomic characteristic polynomial), or when the
    group has more than ``max_order`` elements.

    Cost: the enumeration makes ``|G| x (number of generators)`` matrix products and hash
    lookups, slow for exact matrices of size ~100 (about a second per element there). Before it,
    each exact generator whose order exceeds ``max_order`` is refused from its eigenvalues
    (``O(d^3 + d max_order)``, :func:`_order_beyond`), so an infinite or too large group costs
    no enumeration unless its eigenvalues are too ill-conditioned to separate the orders.
    """

    def __init__(self, generators: Sequence[Any], *, max_order: int = 10_000,
                 tol: float | None = None, name: str | None = None):
        if isinstance(generators, (np.ndarray, sp.MatrixBase)) and np.ndim(generators) == 2:
            raise TypeError("generators: expected a list of matrices, got a single matrix "
                            "(wrap it in a list)")
        try:
            gens = list(generators)
        except TypeError:
            raise TypeError("generators: expected a list of matrices") from None
        if not gens:
            raise ValueError("generators: expected at least one generator matrix")
        mats = []
        for k, g in enumerate(gens):
            M = _read_matrix(g, f"generators[{k}]")
            if mats and M.shape != mats[0].shape:
                raise ValueError(f"generators[{k}]: expected a {mats[0].shape[0]}x"
                                 f"{mats[0].shape[0]} matrix like generators[0], got shape "
                                 f"{tuple(M.shape)}")
            mats.append(M)
        if tol is not None and not (tol > 0 and math.isfinite(tol)):
            raise ValueError(f"tol: expected a positive finite number, got {tol!r}")
        if int(max_order) < 1:
            raise ValueError(f"max_order: expected a positive integer, got {max_order!r}")
        engine, internal = _make_engine(mats, tol, "generators")
        for k, g in enumerate(internal):
            _singular_or_infinite(engine, g, f"generators[{k}]")
            _order_beyond(engine, g, f"generators[{k}]", int(max_order))
        self._build(engine, internal, max_order, name)

    @classmethod
    @validates_arguments
    def from_permutations(cls, perms: Sequence[Sequence[int]],
                          signs: Sequence[Sequence[int]] | None = None, *,
                          max_order: int = 10_000, name: str | None = None) -> Rep:
        """The group of signed permutation matrices ``M e_i = signs[i] e_{perm[i]}``.

        Builds no dense matrix, so it is the fast way to make large permutation actions.
        ``signs`` defaults to all ``+1`` (plain permutation matrices).
        """
        perms = list(perms)
        if not perms:
            raise ValueError("perms: expected at least one permutation")
        internal = []
        for k, perm in enumerate(perms):
            p = _check_perm(perm, f"perms[{k}]")
            if p.shape[0] != len(perms[0]):
                raise ValueError(f"perms[{k}]: length {p.shape[0]} differs from perms[0] "
                                 f"({len(perms[0])})")
            if signs is None:
                s = np.ones(p.shape[0], dtype=np.int8)
            else:
                s = np.asarray(signs[k])
                if s.shape != p.shape or not np.all(np.abs(s) == 1):
                    raise ValueError(f"signs[{k}]: expected {p.shape[0]} entries, each +1 or -1")
                s = s.astype(np.int8)
            internal.append((p, s))
        obj = cls.__new__(cls)
        obj._build(_PermEngine(internal[0][0].shape[0], exact=True), internal, max_order, name)
        return obj

    def _build(self, engine, gens: list, max_order: int, name: str | None) -> None:
        if int(max_order) < 1:
            raise ValueError(f"max_order: expected a positive integer, got {max_order!r}")
        self._engine, self._gens = engine, gens
        self.name, self.max_order = name, int(max_order)
        lookup = engine.lookup()
        elems, parent, last, right = [engine.identity()], [0], [-1], []
        lookup.add(elems[0], 0)
        i = 0
        while i < len(elems):
            row = []
            for k, g in enumerate(gens):
                x = engine.mul(elems[i], g)
                j = lookup.find(x)
                if j is None:
                    j = len(elems)
                    if j >= self.max_order:
                        hint = " or a larger tol for noisy float generators" \
                            if not engine.exact else ""
                        raise ValueError(
                            f"group generated by {len(gens)} generator(s) of size {engine.d}x"
                            f"{engine.d}{'' if name is None else f' ({name})'} has more than "
                            f"max_order={self.max_order} elements (or is infinite); pass a "
                            f"larger max_order{hint}")
                    elems.append(x)
                    parent.append(i)
                    last.append(k)
                    lookup.add(x, j)
                row.append(j)
            right.append(row)
            i += 1
        self._elems, self._parent, self._last, self._lookup = elems, parent, last, lookup
        self._word_cache: list[tuple[int, ...]] | None = None
        self._right = np.array(right, dtype=np.intp).reshape(len(elems), len(gens))
        self._gen_index = [int(j) for j in self._right[0]]

    # ------------------------------------------------------------------ basic properties
    @property
    def order(self) -> int:
        """``|G|``, the number of elements."""
        return len(self._elems)

    @property
    def dim(self) -> int:
        """``d``: the group acts on ``R^d``."""
        return self._engine.d

    @property
    def is_exact(self) -> bool:
        """True when elements are compared exactly (integer or exact sympy generators)."""
        return self._engine.exact

    @property
    def tol(self) -> float | None:
        """The absolute tolerance of a float group; ``None`` for an exact group."""
        return self._engine.tol

    @property
    def generators(self) -> list:
        """The generator matrices (``int64`` / ``float64`` arrays or sympy matrices)."""
        return [self._engine.dense(g) for g in self._gens]

    @property
    def generator_indices(self) -> list[int]:
        """``index(generators[k])`` for each k."""
        return list(self._gen_index)

    @property
    def elements(self) -> list:
        """All element matrices, identity first, in breadth-first order (dense: for large ``d``
        prefer :meth:`element` or :meth:`act`)."""
        return [self._engine.dense(x) for x in self._elems]

    def element(self, i: int):
        """The matrix of element ``i``."""
        return self._engine.dense(self._elems[self._check_index(i)])

    @property
    def identity(self):
        """The identity matrix (element 0)."""
        return self._engine.dense(self._elems[0])

    @property
    def words(self) -> list[str]:
        """For each element a shortest word in the generators: ``"e"``, ``"s0"``, ``"s0*s1"``...

        The element is the matrix product of the generators in the order written.
        """
        return [_word_str(w) for w in self._words]

    def _word(self, j: int) -> list[int]:
        """The word of element ``j`` as generator indices (follows the BFS parents)."""
        letters = []
        while j:
            letters.append(self._last[j])
            j = self._parent[j]
        return letters[::-1]

    @property
    def _words(self) -> list[tuple[int, ...]]:
        """Shortest words as tuples of generator indices (built on first use)."""
        if self._word_cache is None:
            words: list[tuple[int, ...]] = [()]
            for j in range(1, self.order):
                words.append(words[self._parent[j]] + (self._last[j],))
            self._word_cache = words
        return self._word_cache

    def signed_permutation(self, i: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(perm, signs)`` with ``M_i e_j = signs[j] e_{perm[j]}`` when the group is stored as
        signed permutations, else ``None``."""
        if not isinstance(self._engine, _PermEngine):
            return None
        p, s = self._elems[self._check_index(i)]
        return p.copy(), s.astype(np.int64)

    def _check_index(self, i: Any) -> int:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"element index must be an int, got {i!r}")
        if not 0 <= int(i) < self.order:
            raise IndexError(f"element index {i} out of range for a group of order {self.order}")
        return int(i)

    # ------------------------------------------------------------------ group structure
    def index(self, matrix: Any) -> int:
        """The index of ``matrix`` among :attr:`elements`; ``KeyError`` if it is not one.

        Exact groups compare exactly (a float matrix matches an integer group only when its
        entries are exactly those integers); float groups compare within :attr:`tol`.
        """
        M = _read_matrix(matrix, "matrix")
        if M.shape != (self.dim, self.dim):
            raise KeyError(f"a {M.shape[0]}x{M.shape[1]} matrix is not an element of a group of "
                           f"{self.dim}x{self.dim} matrices")
        x = self._engine.convert(M)
        j = None if x is None else self._lookup.find(x)
        if j is None:
            raise KeyError(f"matrix is not an element of {self!r}")
        return j

    def __contains__(self, matrix: Any) -> bool:
        try:
            self.index(matrix)
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def multiply(self, i: int, j: int) -> int:
        """Index of ``elements[i] @ elements[j]`` (follows the word of ``j``)."""
        i = self._check_index(i)
        for k in self._word(self._check_index(j)):
            i = int(self._right[i, k])
        return i

    def inverse(self, i: int) -> int:
        """Index of the inverse of element ``i``."""
        i = self._check_index(i)
        p = 0
        while True:
            q = self.multiply(p, i)
            if q == 0:
                return p
            p = q

    def element_order(self, i: int) -> int:
        """The order of element ``i``: the least ``k >= 1`` with ``g_i^k = e``."""
        i = self._check_index(i)
        k, p = 1, i
        while p != 0:
            p, k = self.multiply(p, i), k + 1
        return k

    def multiplication_table(self) -> np.ndarray:
        """``table[i, j] = index(elements[i] @ elements[j])`` (an ``order x order`` int array)."""
        n = self.order
        table = np.empty((n, n), dtype=np.intp)
        table[:, 0] = np.arange(n)
        for j in range(1, n):
            table[:, j] = self._right[table[:, self._parent[j]], self._last[j]]
        return table

    @property
    def is_abelian(self) -> bool:
        """True when the generators commute pairwise (hence every pair of elements does)."""
        g = self._gen_index
        return all(self.multiply(a, b) == self.multiply(b, a) for a in g for b in g)

    # ------------------------------------------------------------------ action on vectors
    def act(self, i: int, x: Any) -> np.ndarray:
        """Apply element ``i`` to each vector along the last axis of ``x`` (``x @ M_i.T``).

        Uses index arithmetic for signed permutation groups, so mirroring a batch of images
        never builds the dense matrix.
        """
        arr = np.asarray(x)
        if arr.shape[-1:] != (self.dim,):
            raise ValueError(f"x: expected last axis of length {self.dim}, got shape {arr.shape}")
        return self._engine.act(self._elems[self._check_index(i)], arr)

    @validates_arguments
    def orbit(self, v: Any, *, tol: float | None = None) -> list:
        """The distinct images ``g v`` for ``g`` in ``G``, ``v`` first.

        Exact vectors under an exact group are compared exactly and returned as ``int64`` 1-d
        arrays (integer vectors under integer groups) or sympy column matrices; otherwise as
        ``float64`` 1-d arrays, compared within ``tol``.
        """
        col = as_vector(v, "v", length=self.dim)
        eng, gens, act = self._engine, self._gens, self._engine.act
        out, x = (lambda y: y), None
        if isinstance(col, sp.MatrixBase) and eng.exact:
            entries = list(col)
            integer = all(e.is_Integer and abs(int(e)) < _INT64_SAFE for e in entries)
            if integer and not isinstance(eng, _FieldEngine):
                x = np.array([int(e) for e in entries], dtype=np.int64)
                lookup = _ExactLookup(lambda y: tuple(int(e) for e in y))
                out = lambda y: np.asarray(y, dtype=np.int64)  # noqa: E731
            elif isinstance(eng, _PermEngine):  # entries are only permuted and negated
                x = np.array(entries, dtype=object)
                lookup = _ExactLookup(tuple)
                out = lambda y: sp.ImmutableMatrix(list(y))  # noqa: E731
            else:  # compute in a number field holding the group and v
                K, els = getattr(eng, "K", None), None
                if K is not None:
                    els = _in_field(K, entries)
                if els is None:
                    flat = [e for g in self.generators for e in _sympy_entries(g)]
                    K, all_els = construct_domain(flat + entries, extension=True)
                    els = all_els[len(flat):]
                    d = self.dim
                    gens = [DomainMatrix([all_els[k * d * d + r * d:k * d * d + (r + 1) * d]
                                          for r in range(d)], (d, d), K)
                            for k in range(len(self._gens))]
                if not K.is_EX and not K.is_EXRAW:
                    x = DomainMatrix([[e] for e in els], (self.dim, 1), K)
                    act = lambda g, y: g.matmul(y)  # noqa: E731
                    lookup = _ExactLookup(lambda y: tuple(y.to_list_flat()))
                    out = lambda y: sp.ImmutableMatrix(y.to_Matrix())  # noqa: E731
        if x is None:
            gens = self._gens
            x = to_numpy(col).ravel()
            t = tol if tol is not None else max(eng.tol or 0.0, default_tol(x))
            lookup = _NearLookup(x.shape, t)
        found = [x]
        lookup.add(x, 0)
        i = 0
        while i < len(found):
            for g in gens:
                y = act(g, found[i])
                if lookup.find(y) is None:
                    lookup.add(y, len(found))
                    found.append(y)
            i += 1
        return [out(y) for y in found]

    # ------------------------------------------------------------------ homomorphisms
    def extend(self, images: Sequence[Any]) -> dict[int, Any]:
        """Extend generator images to every element along the words: ``rho(s_a*s_b*...) =
        images[a] @ images[b] @ ...``. Whether this is well defined is
        :func:`check_homomorphism`'s job."""
        eng, rho, _ = self._extend(images)
        return {j: eng.dense(r) for j, r in enumerate(rho)}

    def extend_with(self, images: Sequence[Any], compose: Callable[[Any, Any], Any],
                    identity: Any) -> list[Any]:
        """Like :meth:`extend` for images in any group: ``out[j]`` is
        ``compose(...compose(compose(identity, images[a]), images[b])..., images[c])`` along
        the word ``s_a*s_b*...*s_c`` of element ``j`` (e.g. head actions of an attention layer,
        or token permutations with ``compose = lambda s, p: s[p]``)."""
        imgs = list(images)
        if len(imgs) != len(self._gens):
            raise ValueError(f"images: expected one element per generator ({len(self._gens)}), "
                             f"got {len(imgs)}")
        out = [identity]
        for j in range(1, self.order):
            out.append(compose(out[self._parent[j]], imgs[self._last[j]]))
        return out

    def _extend(self, images: Sequence[Any], tol: float | None = None):
        if isinstance(images, (np.ndarray, sp.MatrixBase)) and np.ndim(images) == 2:
            raise TypeError("images: expected a list of matrices (one per generator), got a "
                            "single matrix")
        imgs = list(images)
        if len(imgs) != len(self._gens):
            raise ValueError(f"images: expected one matrix per generator ({len(self._gens)}), "
                             f"got {len(imgs)}")
        eng, internal = _make_engine(_read_images(imgs, range(len(imgs))), tol, "images")
        rho = [eng.identity()]
        for j in range(1, self.order):
            rho.append(eng.mul(rho[self._parent[j]], internal[self._last[j]]))
        return eng, rho, internal

    # ------------------------------------------------------------------ dunder
    def __len__(self) -> int:
        return self.order

    def __iter__(self) -> Iterator:
        return (self._engine.dense(x) for x in self._elems)

    def __repr__(self) -> str:
        kind = "exact" if self.is_exact else f"float, tol={self.tol:.3g}"
        tail = "" if self.name is None else f", name={self.name!r}"
        return f"Rep(order={self.order}, dim={self.dim}, {kind}{tail})"


def _read_images(imgs: Sequence[Any], labels) -> list:
    mats = []
    for label, M in zip(labels, imgs):
        name = f"images[{label!r}]"
        A = _read_matrix(M, name)
        if mats and A.shape != mats[0].shape:
            raise ValueError(f"{name}: expected shape {tuple(mats[0].shape)} like the other "
                             f"images, got {tuple(A.shape)}")
        mats.append(A)
    return mats


@validates_arguments
@_zero.undecided_on_zero_tests
def check_homomorphism(rep: Rep, images: Sequence[Any] | Mapping[Any, Any], *,
                       tol: float | None = None) -> Verdict:
    """Is ``rho: G -> GL(m)`` a group homomorphism (a representation)?

    Parameters
    ----------
    rep:
        The group ``G``.
    images:
        Either a list with one matrix per *generator* (extended to all of ``G`` along the words
        of :attr:`Rep.words`, see :meth:`Rep.extend`), or a dict giving ``rho(g)`` for every
        element, keyed by element index or word.
    tol:
        Absolute tolerance for float images or float groups (default: relative ``1e-9``).

    Returns
    -------
    Verdict
        ``proved`` (exact group and images) with witness ``{word: rho(g)}``; ``checked`` with
        ``n_samples`` the number of pairs ``(g, h)`` compared for float input; ``refuted`` with a
        counterexample ``{"g", "h", "gh", "rho(gh)", "rho(g) rho(h)", "words"}``: ``words`` are
        two words for the same element ``gh`` whose images differ, or ``{"g": "e", "rho(g)"}``
        when ``rho(e)`` is not the identity.

    Notes
    -----
    ``rho(e) = I`` and ``rho(g s) = rho(g) rho(s)`` for every element ``g`` and generator ``s``
    imply ``rho(gh) = rho(g) rho(h)`` for all ``g, h`` by induction on the word length of ``h``;
    that is the exact proof. Float checks compare all pairs (up to 250,000 of them; beyond that
    the generator edges only), so that tolerances do not compound along words.
    """
    if not isinstance(rep, Rep):
        raise TypeError(f"rep: expected a Rep, got {type(rep).__name__}")
    n, words = rep.order, rep.words
    if isinstance(images, Mapping):
        by_index: dict[int, Any] = {}
        for key, M in images.items():
            if isinstance(key, str):
                if key not in words:
                    raise ValueError(f"images: key {key!r} is not one of rep.words")
                j = words.index(key)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                j = rep._check_index(key)
            else:
                raise TypeError(f"images: keys must be element indices or words, got {key!r}")
            if j in by_index:
                raise ValueError(f"images: element {words[j]!r} is given twice")
            by_index[j] = M
        missing = [words[j] for j in range(n) if j not in by_index]
        if missing:
            raise ValueError(f"images: no matrix for {len(missing)} element(s), e.g. "
                             f"{missing[:5]}; give all elements or a list of generator images")
        eng, rho = _make_engine(_read_images([by_index[j] for j in range(n)],
                                             [words[j] for j in range(n)]), tol, "images")
        gen_img = [rho[j] for j in rep._gen_index]
    else:
        eng, rho, gen_img = rep._extend(images, tol)
    m = eng.d
    exact = rep.is_exact and eng.exact
    tol_used = None if exact else (eng.tol if eng.tol is not None else rep.tol)
    method = "exact" if exact else "tolerance"
    D = eng.dense

    def close(a, b) -> bool:
        if eng.exact or isinstance(eng, _PermEngine):
            return eng.equal(a, b)
        return bool(np.max(np.abs(a - b)) <= tol_used)

    if not close(rho[0], eng.identity()):
        return Verdict.refuted(
            "rho(e) is not the identity matrix, so rho is not a homomorphism into GL(m)",
            {"g": "e", "rho(g)": D(rho[0]), "expected": np.eye(m, dtype=np.int64)},
            method=method, tol=tol_used)

    def refute(i, j, h_word, prod):
        gh = rep.multiply(i, j)
        left = "*".join(w for w in (words[i], h_word) if w != "e") or "e"
        return Verdict.refuted(
            f"rho(gh) != rho(g) rho(h) for g = {words[i]}, h = {h_word}: the words {left} and "
            f"{words[gh]} name the same element of G but get different images",
            {"g": words[i], "h": h_word, "gh": words[gh], "rho(gh)": D(rho[gh]),
             "rho(g) rho(h)": D(prod), "words": (left, words[gh])},
            method=method, tol=tol_used)

    edges = n * len(gen_img)
    if exact or n * n > 250_000:
        for i in range(n):
            for k, s in enumerate(gen_img):
                prod = eng.mul(rho[i], s)
                if not close(rho[rep._right[i, k]], prod):
                    return refute(i, rep._gen_index[k], f"s{k}", prod)
        reason = ("rho(e) = I and rho(g s) = rho(g) rho(s) for every g in G and generator s, "
                  "hence rho(gh) = rho(g) rho(h) for all g, h (induction on word length)")
        witness = {words[j]: D(r) for j, r in enumerate(rho)}
        if exact:
            return Verdict.proved(reason, witness, checked_relations=edges)
        return Verdict.checked(reason + " within tol", edges, tol_used, witness,
                               method="tolerance")
    table = rep.multiplication_table()
    for i in range(n):
        for j in range(n):
            prod = eng.mul(rho[i], rho[j])
            if not close(rho[table[i, j]], prod):
                return refute(i, j, words[j], prod)
    witness = {words[j]: D(r) for j, r in enumerate(rho)}
    return Verdict.checked("rho(gh) = rho(g) rho(h) within tol for every pair g, h in G",
                           n * n, tol_used, witness, method="tolerance")


# ---------------------------------------------------------------------------------- built-ins
def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _image_rep(channels: int, height: int, width: int, transform, name: str) -> Rep:
    idx = np.arange(channels * height * width).reshape(channels, height, width)
    src = transform(idx).ravel()  # (M x)[j] = x[src[j]]
    perm = np.empty_like(src)
    perm[src] = np.arange(src.size)  # M e_i = e_{perm[i]}, perm = src^{-1}
    return Rep.from_permutations([perm], name=name)


def mirror(channels: int, height: int, width: int) -> Rep:
    """Left-right flip of ``C x H x W`` images flattened row-major ([SMBK26] Section 6, [BK23]).

    Index ``c*H*W + h*W + w`` maps to ``c*H*W + h*W + (W-1-w)``, i.e. ``M x`` equals
    ``numpy.flip(x.reshape(C, H, W), axis=2).ravel()``. Order 2, or 1 when ``width == 1``
    (the flip is then the identity).
    """
    C, H, W = (_positive(channels, "channels"), _positive(height, "height"),
               _positive(width, "width"))
    return _image_rep(C, H, W, lambda a: a[:, :, ::-1], f"mirror({C},{H},{W})")


def flip_ud(channels: int, height: int, width: int) -> Rep:
    """Up-down flip of ``C x H x W`` images (``numpy.flip(..., axis=1)``); order 2, or 1 when
    ``height == 1``."""
    C, H, W = (_positive(channels, "channels"), _positive(height, "height"),
               _positive(width, "width"))
    return _image_rep(C, H, W, lambda a: a[:, ::-1, :], f"flip_ud({C},{H},{W})")


def rot90(channels: int, n: int) -> Rep:
    """Rotation by 90 degrees of ``C x n x n`` images, ``M x`` equal to
    ``numpy.rot90(x.reshape(C, n, n), k=1, axes=(1, 2)).ravel()``; order 4, or 1 when ``n == 1``.
    """
    C, N = _positive(channels, "channels"), _positive(n, "n")
    return _image_rep(C, N, N, lambda a: np.rot90(a, k=1, axes=(1, 2)), f"rot90({C},{N})")


@validates_arguments
def from_permutation_group(G: Any, *, max_order: int = 10_000,
                           name: str | None = None) -> Rep:
    """The permutation representation of a sympy ``PermutationGroup``: ``M(p) e_i = e_{p(i)}``.

    sympy composes left to right (``(p*q)(i) = q(p(i))``), so ``M(p*q) = M(q) @ M(p)``.
    Raises ``ValueError`` before enumerating if ``G.order() > max_order``.
    """
    from sympy.combinatorics import PermutationGroup

    if not isinstance(G, PermutationGroup):
        raise TypeError(f"G: expected a sympy PermutationGroup, got {type(G).__name__}")
    if G.order() > max_order:
        raise ValueError(f"G has {G.order()} elements, more than max_order={max_order}")
    n = G.degree
    perms = [list(g.array_form) + list(range(len(g.array_form), n)) for g in G.generators]
    return Rep.from_permutations(perms or [list(range(n))], max_order=max_order, name=name)


def cyclic(n: int) -> Rep:
    """The cyclic group ``C_n`` permuting ``n`` points (sympy ``CyclicGroup``)."""
    from sympy.combinatorics.named_groups import CyclicGroup

    return from_permutation_group(CyclicGroup(_positive(n, "n")), name=f"cyclic({n})")


def dihedral(n: int) -> Rep:
    """The dihedral group of order ``2n`` as sympy's ``DihedralGroup(n)`` (on ``n`` points for
    ``n >= 3``; sympy uses 2 and 4 points for ``n = 1, 2``)."""
    from sympy.combinatorics.named_groups import DihedralGroup

    return from_permutation_group(DihedralGroup(_positive(n, "n")), name=f"dihedral({n})")


def symmetric(n: int) -> Rep:
    """The symmetric group ``S_n`` permuting ``n`` points (sympy ``SymmetricGroup``)."""
    from sympy.combinatorics.named_groups import SymmetricGroup

    return from_permutation_group(SymmetricGroup(_positive(n, "n")), name=f"symmetric({n})")


def trivial(d: int) -> Rep:
    """The trivial group ``{I}`` acting on ``R^d``."""
    d = _positive(d, "d")
    return Rep.from_permutations([np.arange(d)], name=f"trivial({d})")
