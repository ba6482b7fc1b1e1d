"""The latent symmetry groups K_i of Section 5.1 [SMBK26].

For an MLP with activation sigma, K_i is the *intertwiner group* of eq. (8): the invertible A for
which some B satisfies ``sigma(A x) = B sigma(x)``. Two shapes occur:

* :class:`GeneralLinear` ``GL(d)``: for linear sigma;
* :class:`Monomial`: matrices ``A = P D`` (a permutation P times an invertible diagonal D) whose
  non-zero entries lie in an allowed :class:`ScalingSet` S, a subgroup of R^x; with S = {1}
  these are permutations, with S = {+1, -1} signed permutations, with S = ``R_>0`` positively
  scaled permutations (ReLU, Lemma 2.2 [BK23]), with S = R^x all monomial matrices (powers).

A scaling set also carries the homomorphism ``c: S -> R^x`` with ``sigma(a x) = c(a) sigma(x)``,
so that the partner of ``A = P diag(a)`` in eq. (8) is ``B = P diag(c(a))``.

Which group belongs to which activation is *derived* in :mod:`identifiable.activations`; this
module only knows the groups: membership (exact for exact input, tolerance-based for floats),
the decomposition ``A = P D``, seeded random elements and the nearest element of a float matrix
(scipy's ``linear_sum_assignment``), used by the K-constrained latent fits of Section 6.

Every group answers for itself what the theory asks of it (no caller inspects its type):
:meth:`LatentGroup.membership`, :meth:`~LatentGroup.partner` (the B of eq. (8)),
:meth:`~LatentGroup.partner_inverse`, :meth:`~LatentGroup.entrywise_partner` (the partner of a
rectangular intertwiner, Section 5.1, eq. (9)), :meth:`~LatentGroup.generators`,
:meth:`~LatentGroup.random` / :meth:`~LatentGroup.random_exact`, and :attr:`~LatentGroup.family`
(``"GL"``, ``"monomial"`` or ``"trivial"``), the structural family that the reduction of
Section 5 and the aligner of Definition 3.4 branch on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from scipy.optimize import linear_sum_assignment

from identifiable import zero as _zero
from identifiable.numbers import (
    Matrix,
    as_matrix,
    default_tol,
    is_exact_zero,
    validate_tol,
    validates_arguments,
)
from identifiable.verdict import UndecidedError

__all__ = [
    "ScalingSet",
    "SCALINGS",
    "LatentGroup",
    "GeneralLinear",
    "TrivialGroup",
    "Monomial",
    "MonomialParts",
    "nearest_monomial",
]

_a = sp.Symbol("a", real=True, nonzero=True)


@dataclass(frozen=True)
class ScalingSet:
    """A closed subgroup S of R^x allowed on the diagonal of a monomial matrix.

    ``kind`` is one of ``"nonzero"`` (R^x), ``"positive"`` (R_{>0}), ``"sign"`` ({+1, -1}),
    ``"one"`` ({1}). ``partner`` is the sympy expression ``c(a)`` in the symbol ``a``
    (see :data:`SCALINGS`' ``symbol``) such that sigma(a x) = c(a) sigma(x).
    """

    kind: str
    partner: sp.Expr = _a

    symbol = _a

    def __post_init__(self) -> None:
        if self.kind not in ("nonzero", "positive", "sign", "one"):
            raise ValueError(f"unknown scaling kind {self.kind!r}")

    @property
    def name(self) -> str:
        return {"nonzero": "R^x", "positive": "R_>0", "sign": "{+1,-1}", "one": "{1}"}[self.kind]

    @property
    def is_finite(self) -> bool:
        return self.kind in ("sign", "one")

    @property
    def dimension(self) -> int:
        """Dimension as a Lie group (0 for the finite sets)."""
        return 0 if self.is_finite else 1

    def decide(self, a: Any) -> bool | None:
        """Is the exact scalar ``a`` in S? True / False, or None when a zero or sign test
        cannot be decided (:mod:`identifiable.zero`). A Python float is taken at its exact
        binary value."""
        a = sp.Rational(a) if isinstance(a, (float, np.floating)) else sp.sympify(a)
        if self.kind in ("nonzero", "positive"):
            s = _zero.sign(a)
            if s is None:
                return None
            return s != 0 if self.kind == "nonzero" else s > 0
        targets = (1, -1) if self.kind == "sign" else (1,)
        answers = [_zero.is_zero(a - t) for t in targets]
        if any(z is True for z in answers):
            return True
        return None if any(z is None for z in answers) else False

    @validates_arguments
    def contains(self, a: Any, tol: float | None = None) -> bool:
        """Is the scalar ``a`` in S? Exact for ``tol=None`` (raises
        :class:`~identifiable.zero.UndecidedZero` where that cannot be decided), else within
        ``tol``."""
        if tol is None:
            ans = self.decide(a)
            if ans is None:
                raise _zero.UndecidedZero(a, f"scaling in {self.name}")
            return ans
        tol = validate_tol(tol)
        a = float(a)
        if self.kind == "nonzero":
            return abs(a) > tol
        if self.kind == "positive":
            return a > tol
        if self.kind == "sign":
            return min(abs(a - 1.0), abs(a + 1.0)) <= tol
        return abs(a - 1.0) <= tol

    def normalise(self, v: Any) -> tuple[tuple, Any] | tuple[None, Any]:
        """An exact vector up to the allowed scalings: ``(v / f, f)`` with ``f`` in S fixed by
        the first non-zero entry of ``v`` (1, its sign, its absolute value or itself), so that
        two vectors are S-multiples of each other iff their keys are equal; ``(None, 1)`` for
        the zero vector. Zero tests and signs are exact (:mod:`identifiable.zero`) and raise
        :class:`~identifiable.zero.UndecidedZero` when they cannot be decided."""
        v = [sp.sympify(e) for e in v]
        p = next((k for k, e in enumerate(v) if not _zero.is_exact_zero(e)), None)
        if p is None:
            return None, sp.Integer(1)
        piv = v[p]
        if self.kind == "one":
            f = sp.Integer(1)
        elif self.kind == "nonzero":
            f = piv
        else:
            sg = _zero.sign(piv)
            if sg is None:
                raise _zero.UndecidedZero(piv, "sign of a pivot")
            f = sp.Integer(sg) if self.kind == "sign" else sg * piv
        return tuple(e / f for e in v), f

    def c(self, a: Any) -> Any:
        """The partner scaling c(a) with sigma(a x) = c(a) sigma(x); exact for exact ``a``."""
        if isinstance(a, (float, np.floating)):
            return float(sp.lambdify(_a, self.partner, "numpy")(a))
        e = self.partner.subs(_a, sp.sympify(a))
        # simplify only modest expressions: on values with huge rationals (a float's exact
        # value, a disguised zero) its logcombine runs for minutes; the value is the same, and
        # every later comparison goes through identifiable.zero
        huge = any(abs(q.p) > 10**12 or q.q > 10**12 for q in e.atoms(sp.Rational))
        return e if huge or sp.count_ops(e) > 200 else sp.simplify(e)

    def c_numeric(self, a: np.ndarray) -> np.ndarray:
        """Vectorised partner scaling for float arrays."""
        fn = sp.lambdify(_a, self.partner, "numpy")
        out = fn(np.asarray(a, dtype=np.float64))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), np.shape(a)).copy()

    def random(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.kind == "one":
            return np.ones(size)
        if self.kind == "sign":
            return rng.choice([-1.0, 1.0], size=size)
        mags = np.exp(rng.uniform(-1.0, 1.0, size=size))
        if self.kind == "positive":
            return mags
        return mags * rng.choice([-1.0, 1.0], size=size)

    def __repr__(self) -> str:
        return f"ScalingSet({self.name}, c(a)={self.partner})"


#: the four scaling sets with the identity partner c(a) = a
SCALINGS = {k: ScalingSet(k) for k in ("nonzero", "positive", "sign", "one")}


@dataclass(frozen=True)
class MonomialParts:
    """A = P D: ``perm[i]`` is the column of the non-zero entry of row i, ``scalings[i]`` its
    value. So ``P[i, perm[i]] = 1`` and ``D = diag(scalings permuted to columns)``; we store the
    row-wise values, i.e. ``A[i, perm[i]] = scalings[i]``."""

    perm: tuple[int, ...]
    scalings: tuple[Any, ...]

    def P(self) -> np.ndarray:
        d = len(self.perm)
        M = np.zeros((d, d), dtype=np.int64)
        M[np.arange(d), self.perm] = 1
        return M

    def D(self) -> list[Any]:
        """Diagonal of D in A = P D (column order): D[perm[i]] = scalings[i]."""
        d = len(self.perm)
        out: list[Any] = [None] * d
        for i, j in enumerate(self.perm):
            out[j] = self.scalings[i]
        return out


class LatentGroup:
    """A group K acting linearly on R^d (the latent space V_i of Section 3.2 [SMBK26])."""

    d: int
    name: str

    @validates_arguments
    def contains(self, A: Any, tol: float | None = None) -> bool:
        """``A in K`` as a bool (exact for exact A, within ``tol`` for floats); raises
        :class:`~identifiable.verdict.UndecidedError` where :meth:`membership` is
        ``undecided``."""
        v = self.membership(A, tol)
        if v.holds is None:
            raise UndecidedError(v.reason, v)
        return bool(v.holds)

    @validates_arguments
    def membership(self, A: Any, tol: float | None = None):
        """Like :meth:`contains` but returns a :class:`~identifiable.Verdict` with the reason."""
        raise NotImplementedError

    @property
    def dimension(self) -> int:
        """Dimension of K as a Lie group (``dim K`` in the functional-dimension count)."""
        raise NotImplementedError

    @property
    def is_finite(self) -> bool:
        return self.dimension == 0

    #: the structural family: ``"GL"`` (linear activations: every invertible matrix),
    #: ``"monomial"`` (P D with scalings in :attr:`scalings`) or ``"trivial"`` (width 0)
    family: str = ""
    #: the allowed diagonal entries of a monomial group (``None`` for the other families)
    scalings: ScalingSet | None = None

    def random(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """A seeded random element (float64)."""
        raise NotImplementedError

    def random_exact(self, seed: int | np.random.Generator | None = None) -> sp.ImmutableMatrix:
        """A seeded random element with exact rational entries."""
        raise NotImplementedError

    def partner(self, A: Matrix) -> Matrix:
        """The B with sigma(A x) = B sigma(x) for this A in K (eq. (8))."""
        raise NotImplementedError

    def partner_inverse(self, B: Matrix) -> Matrix:
        """``B^{-1}`` for a partner ``B = partner(A)`` (exact for exact B)."""
        raise NotImplementedError

    def entrywise_partner(self, M: Matrix) -> Matrix:
        """The partner of a rectangular intertwiner ``M`` (Section 5.1, eq. (9)), entry by
        entry: ``c(m)`` on every non-zero entry for a monomial group, ``M`` itself for GL.
        Symbolic entries are allowed (exact input gives exact output)."""
        raise NotImplementedError

    def generators(self, seed: int = 0, *, symbolic_below: int = 4) -> tuple[list, bool]:
        """Exact generators of K and whether they generate all of K.

        Finite parts by their classical generators (S_d by a transposition and a d-cycle); a
        continuous scaling by one symbolic scaling (``a`` positive or non-zero); GL(d) for
        ``d < symbolic_below`` by two generic symbolic matrices (``k``, ``h``), which then stand
        for every element, else by three seeded rational matrices (``False``: not all of K)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class TrivialGroup(LatentGroup):
    """The group of ``R^0`` (a hidden layer of width 0 in a reduced model)."""

    family = "trivial"

    def __init__(self, d: int = 0):
        if int(d) != 0:
            raise ValueError(f"TrivialGroup acts on R^0, got d = {d}")
        self.d = 0
        self.name = "{1} (width 0)"

    @property
    def dimension(self) -> int:
        return 0

    @validates_arguments
    def membership(self, A: Any, tol: float | None = None):
        from identifiable.verdict import Verdict

        if tuple(np.shape(A)) == (0, 0) or getattr(A, "shape", None) == (0, 0):
            return Verdict.proved("the empty matrix is the identity of R^0")
        return Verdict.refuted("expected a 0 x 0 matrix", counterexample={"shape": np.shape(A)})

    def partner(self, A: Any) -> Any:
        return A

    def partner_inverse(self, B: Any) -> Any:
        return B

    def entrywise_partner(self, M: Any) -> Any:
        return M

    def random(self, seed: Any = None) -> np.ndarray:
        return np.zeros((0, 0))

    def random_exact(self, seed: Any = None) -> sp.ImmutableMatrix:
        return sp.ImmutableMatrix.zeros(0, 0)

    def generators(self, seed: int = 0, *, symbolic_below: int = 4) -> tuple[list, bool]:
        return [], True


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class GeneralLinear(LatentGroup):
    """GL(d): the intertwiner group of a linear activation sigma(x) = c x (B = A)."""

    family = "GL"

    def __init__(self, d: int):
        if int(d) < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        self.d = int(d)
        self.name = f"GL({self.d})"

    @property
    def dimension(self) -> int:
        return self.d * self.d

    @validates_arguments
    def membership(self, A: Any, tol: float | None = None):
        from identifiable.verdict import Verdict

        tol = validate_tol(tol)
        M = as_matrix(A, "A", shape=(self.d, self.d))
        if isinstance(M, sp.MatrixBase):
            try:
                v = _zero.kernel_vector(M, "A")
            except _zero.UndecidedZero as exc:
                return Verdict.undecided(f"A in {self.name}: {exc}", method="exact")
            if v is None:
                return Verdict.proved(f"A has full rank {self.d} (exact elimination over QQ, "
                                      f"a number field or with certified pivots): A in "
                                      f"{self.name}")
            rank = _zero.rank(M, "A")
            return Verdict.refuted(f"A is singular: A v = 0 for v = {list(v)} (rank {rank} < "
                                   f"{self.d})", counterexample={"kernel_vector": v,
                                                                  "rank": rank})
        s = np.linalg.svd(M, compute_uv=False)
        tol = default_tol(M) if tol is None else tol
        if s[-1] > tol:
            return Verdict.checked(f"smallest singular value {s[-1]:.3g} > tol: invertible "
                                   "within tolerance", n_samples=self.d * self.d, tol=tol,
                                   method="tolerance")
        return Verdict.refuted(f"smallest singular value {s[-1]:.3g} <= tol: singular",
                               counterexample={"sigma_min": float(s[-1])}, method="tolerance",
                               tol=tol)


    def random(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        rng = _rng(seed)
        while True:
            M = rng.standard_normal((self.d, self.d))
            if np.linalg.cond(M) < 1e6:
                return M

    def random_exact(self, seed: int | np.random.Generator | None = None) -> sp.ImmutableMatrix:
        rng = _rng(seed)
        while True:
            M = sp.ImmutableMatrix(self.d, self.d, [sp.Rational(int(p), int(q)) for p, q in zip(
                rng.integers(-3, 4, self.d * self.d), rng.integers(1, 3, self.d * self.d))])
            if M.rank() == self.d:
                return M

    def partner(self, A: Matrix) -> Matrix:
        return A

    def partner_inverse(self, B: Matrix) -> Matrix:
        if B.shape[0] == 0:
            return B
        if isinstance(B, sp.MatrixBase):
            from identifiable.numbers import exact_inverse

            return exact_inverse(B, "B")
        return np.linalg.inv(B)

    def entrywise_partner(self, M: Matrix) -> Matrix:
        return M

    def generators(self, seed: int = 0, *, symbolic_below: int = 4) -> tuple[list, bool]:
        d = self.d
        if d < symbolic_below:  # two independent generic elements stand for all of GL(d)
            return [sp.ImmutableMatrix(d, d, lambda p, q, name=name: sp.Symbol(
                f"{name}_{p + 1}{q + 1}", real=True)) for name in ("k", "h")], True
        rng = np.random.default_rng(seed)
        return [sp.ImmutableMatrix(d, d, lambda p, q: sp.Rational(int(rng.integers(-3, 4)), 1)
                                   + (3 * d if p == q else 0)) for _ in range(3)], False


class Monomial(LatentGroup):
    """Monomial matrices P D whose non-zero entries lie in a :class:`ScalingSet`."""

    family = "monomial"

    def __init__(self, d: int, scalings: ScalingSet | str = "nonzero"):
        if int(d) < 1:
            raise ValueError(f"d must be >= 1, got {d}")
        if isinstance(scalings, str):
            if scalings not in SCALINGS:
                raise ValueError(f"scalings must be one of {sorted(SCALINGS)}, got {scalings!r}")
            scalings = SCALINGS[scalings]
        self.d = int(d)
        self.scalings = scalings
        self.name = {
            "one": f"S_{self.d} (permutations)",
            "sign": f"{{+-1}}^{self.d} x| S_{self.d} (signed permutations)",
            "positive": f"(R_>0)^{self.d} x| S_{self.d} (positively scaled permutations)",
            "nonzero": f"(R^x)^{self.d} x| S_{self.d} (monomial matrices)",
        }[scalings.kind]

    @property
    def dimension(self) -> int:
        return self.d * self.scalings.dimension

    # -------------------------------------------------------------- structure
    @validates_arguments
    def decompose(self, A: Any, tol: float | None = None) -> MonomialParts | None:
        """A = P D if A is monomial with entries in S (else None). Exact for exact input."""
        verdict = self.membership(A, tol)
        return verdict.witness if verdict.holds else None

    @validates_arguments
    def membership(self, A: Any, tol: float | None = None):
        """Verdict for ``A in K``; witness: the :class:`MonomialParts`; counterexample: the
        offending row / column / entry."""
        from identifiable.verdict import Verdict

        tol = validate_tol(tol)
        M = as_matrix(A, "A", shape=(self.d, self.d))
        exact = isinstance(M, sp.MatrixBase)
        if not exact:
            tol = default_tol(M) if tol is None else tol
        method = "exact" if exact else "tolerance"
        parts = monomial_support(M, None if exact else tol)
        if isinstance(parts, dict):
            reason = parts.pop("reason")
            if parts.pop("undecided", False):
                return Verdict.undecided(f"A in {self.name}: {reason}", method=method)
            return Verdict.refuted(reason, counterexample=parts, method=method,
                                   tol=tol if not exact else None)
        perm, vals = parts
        for i, a in enumerate(vals):
            ok = self.scalings.decide(a) if exact else self.scalings.contains(a, tol)
            if ok is None:
                return Verdict.undecided(
                    f"A in {self.name}: cannot decide whether A[{i},{perm[i]}] = {a} lies in "
                    f"{self.scalings.name} (sign / zero test undecided)", method=method)
            if not ok:
                return Verdict.refuted(
                    f"entry A[{i},{perm[i]}] = {a} is not in the allowed scalings "
                    f"{self.scalings.name}",
                    counterexample={"row": i, "column": perm[i], "value": a},
                    method=method, tol=None if exact else tol)
        witness = MonomialParts(tuple(perm), tuple(vals))
        if exact:
            return Verdict.proved(f"A is monomial with scalings in {self.scalings.name}",
                                  witness)
        return Verdict.checked(f"A is monomial with scalings in {self.scalings.name} within "
                               "tolerance", n_samples=self.d * self.d, tol=tol, witness=witness,
                               method="tolerance")


    def partner(self, A: Matrix) -> Matrix:
        """B = P diag(c(a)) for A = P diag(a) in K."""
        M = as_matrix(A, "A", shape=(self.d, self.d))
        parts = self.decompose(M)
        if parts is None:
            raise ValueError(f"A is not an element of {self.name}")
        if isinstance(M, sp.MatrixBase):
            B = sp.zeros(self.d, self.d)
            for i, (j, a) in enumerate(zip(parts.perm, parts.scalings)):
                B[i, j] = self.scalings.c(a)
            return sp.ImmutableMatrix(B)
        B = np.zeros((self.d, self.d))
        rows = np.arange(self.d)
        B[rows, list(parts.perm)] = self.scalings.c_numeric(np.array(parts.scalings, float))
        return B

    def partner_inverse(self, B: Matrix) -> Matrix:
        """``B^{-1}`` of a monomial partner: the transpose with reciprocal entries."""
        d = B.shape[0]
        if d == 0:
            return B
        if isinstance(B, sp.MatrixBase):
            out = sp.zeros(d, d)
            for r in range(d):
                for j in range(d):
                    if B[r, j] != 0:
                        out[j, r] = 1 / B[r, j]
            return sp.ImmutableMatrix(out)
        Bn = np.asarray(B)
        rows, cols = np.nonzero(Bn)
        out = np.zeros_like(Bn)
        out[cols, rows] = 1.0 / Bn[rows, cols]
        return out

    def entrywise_partner(self, M: Matrix) -> Matrix:
        if isinstance(M, sp.MatrixBase):
            # only the stored non-zero entries: a monomial matrix has d of its d^2 entries
            sym = self.scalings.symbol
            entries = {ij: sp.simplify(self.scalings.partner.subs(sym, v))
                       for ij, v in M.todok().items() if not is_exact_zero(v)}
            return sp.ImmutableMatrix(sp.SparseMatrix(M.shape[0], M.shape[1], entries))
        M = np.asarray(M, dtype=float)
        out = np.zeros_like(M)
        nz = M != 0
        out[nz] = self.scalings.c_numeric(M[nz])
        return out

    def generators(self, seed: int = 0, *, symbolic_below: int = 4) -> tuple[list, bool]:
        # S_d is generated by the transposition (0 1) and the cycle (0 1 ... d-1): two
        # generators whatever the width, so that checks over generators stay O(width^2)
        d = self.d
        gens = []
        if d >= 2:
            T = sp.eye(d)
            T[0, 0] = T[1, 1] = 0
            T[0, 1] = T[1, 0] = 1
            gens.append(sp.ImmutableMatrix(T))
        if d >= 3:
            gens.append(sp.ImmutableMatrix(sp.SparseMatrix(d, d, {((j + 1) % d, j): 1
                                                                  for j in range(d)})))
        kind = self.scalings.kind
        if kind != "one":
            a = {"sign": sp.Integer(-1),
                 "positive": sp.Symbol("a", positive=True),
                 "nonzero": sp.Symbol("a", real=True, nonzero=True)}[kind]
            D = sp.eye(d)
            D[0, 0] = a
            gens.append(sp.ImmutableMatrix(D))
        return gens, True

    def random(self, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """A random element (float64), seeded."""
        rng = _rng(seed)
        perm = rng.permutation(self.d)
        A = np.zeros((self.d, self.d))
        A[np.arange(self.d), perm] = self.scalings.random(rng, self.d)
        return A

    def random_exact(self, seed: int | np.random.Generator | None = None) -> sp.ImmutableMatrix:
        """A random element with exact rational entries, seeded."""
        rng = _rng(seed)
        perm = rng.permutation(self.d)
        A = sp.zeros(self.d, self.d)
        for i, j in enumerate(perm):
            if self.scalings.kind == "one":
                a = sp.Integer(1)
            elif self.scalings.kind == "sign":
                a = sp.Integer(int(rng.choice([-1, 1])))
            else:
                a = sp.Rational(int(rng.integers(1, 9)), int(rng.integers(1, 5)))
                if self.scalings.kind == "nonzero" and rng.random() < 0.5:
                    a = -a
            A[i, int(j)] = a
        return sp.ImmutableMatrix(A)

    def nearest(self, A: Any) -> tuple[np.ndarray, float]:
        """The element of K nearest to the float matrix A in Frobenius norm, and the distance."""
        M = np.asarray(as_matrix(A, "A", shape=(self.d, self.d), exact=False))
        K = nearest_monomial(M, self.scalings.kind)
        return K, float(np.linalg.norm(M - K))


def monomial_support(M: Matrix, tol: float | None) -> tuple[list[int], list[Any]] | dict:
    """For each row the unique non-zero column and its value, or a dict explaining failure.

    Exact entries are tested with :func:`identifiable.zero.is_zero`: a row with two entries
    proved non-zero is not monomial and a row whose entries are all proved zero is zero,
    whatever the undecided entries elsewhere are; where the answer depends on an entry whose
    zero test is undecided, the dict has ``"undecided": True``."""
    d = M.shape[0]
    if isinstance(M, sp.MatrixBase):
        zs = [[_zero.is_zero(M[i, j]) for j in range(M.shape[1])] for i in range(d)]
        nz = [[j for j, z in enumerate(row) if z is False] for row in zs]
        unknown = [[j for j, z in enumerate(row) if z is None] for row in zs]
        vals_of = lambda i, j: M[i, j]  # noqa: E731
    else:
        mask = np.abs(M) > tol
        counts = mask.sum(axis=1)
        if np.all(counts == 1):
            perm = np.argmax(mask, axis=1)
            if len(set(perm.tolist())) == d:
                return perm.tolist(), M[np.arange(d), perm].tolist()
        nz = [np.flatnonzero(mask[i]).tolist() for i in range(d)]
        unknown = [[] for _ in range(d)]
        vals_of = lambda i, j: float(M[i, j])  # noqa: E731
    for i, cols in enumerate(nz):
        if len(cols) > 1:
            return {"reason": f"row {i} of A has {len(cols)} non-zero entries "
                              f"(columns {cols[:2]}...): not monomial",
                    "row": i, "columns": cols[:2], "values": [vals_of(i, j) for j in cols[:2]]}
    for i, cols in enumerate(nz):
        if not cols and not unknown[i]:
            return {"reason": f"row {i} of A is zero (A is singular)", "row": i}
    for i in range(d):
        if unknown[i]:
            return {"reason": f"row {i} of A: cannot decide whether the entries in columns "
                              f"{unknown[i][:3]} are zero", "row": i, "undecided": True}
    perm = [cols[0] for cols in nz]
    if len(set(perm)) != d:
        seen: dict[int, int] = {}
        for i, j in enumerate(perm):
            if j in seen:
                return {"reason": f"rows {seen[j]} and {i} both use column {j}: A is singular",
                        "rows": [seen[j], i], "column": j}
            seen[j] = i
    return perm, [vals_of(i, j) for i, j in enumerate(perm)]


def nearest_monomial(A: np.ndarray, scalings: str = "one") -> np.ndarray:
    """Nearest monomial matrix to ``A`` in Frobenius norm with entries in the scaling set.

    For a fixed permutation the optimal entry of row i is the projection of A[i, pi(i)] onto S,
    so the best permutation maximises the summed gain, a linear assignment problem solved with
    :func:`scipy.optimize.linear_sum_assignment`:

    * ``one``: gain 2 A_ij - 1 (entry 1),
    * ``sign``: gain ``2 abs(A_ij) - 1`` (entry ``sign(A_ij)``),
    * ``positive``: gain ``max(A_ij, 0)^2`` (entry ``max(A_ij, 0)``, the closure of ``R_>0``),
    * ``nonzero``: gain A_ij^2 (entry A_ij).
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    if scalings == "one":
        gain = A
    elif scalings == "sign":
        gain = np.abs(A)
    elif scalings == "positive":
        gain = np.maximum(A, 0.0) ** 2
    elif scalings == "nonzero":
        gain = A * A
    else:
        raise ValueError(f"scalings must be one of {sorted(SCALINGS)}, got {scalings!r}")
    rows, cols = linear_sum_assignment(gain, maximize=True)
    K = np.zeros_like(A)
    vals = A[rows, cols]
    if scalings == "one":
        K[rows, cols] = 1.0
    elif scalings == "sign":
        K[rows, cols] = np.where(vals >= 0, 1.0, -1.0)
    elif scalings == "positive":
        K[rows, cols] = np.maximum(vals, 0.0)
    else:
        K[rows, cols] = vals
    return K
