"""Commuting diagrams: spaces as nodes, maps as edges of a networkx ``MultiDiGraph``.

Definition 3.2 [SMBK26] asks a square of maps to commute for every input and every submodel
parameter; eq. (2) asks two more squares (alpha_i and alpha*_i equivariant) to commute. A
:class:`Diagram` holds such squares generically: each node is a space, each edge a map with a
numeric form (on batches), optionally a symbolic form (sympy) and, for linear maps, a matrix.
:meth:`Diagram.commutes` composes the maps along every path between two nodes and compares every
pair of paths:

* **matrices**: when every map on the paths is linear (a matrix), the composed matrices are
  compared exactly (sympy) or within a tolerance (floats);
* **exact**: the symbolic forms are applied to the source's generic symbolic point (sympy
  symbols), and each entry of the difference is decided by :func:`expr_is_zero`;
* **sampled**: the numeric forms are applied to random points of the source; the answer is
  ``checked`` with the number of samples and the tolerance, or ``refuted`` with the point.

:func:`expr_is_zero` decides ``expr == 0`` for all real values of its symbols: it expands, then
*lifts* the innermost arguments of kinks (``Max``, ``Abs``, ...) to fresh symbols and splits their
sign cases (sympy's ``simplify`` alone cannot see ``Max(0, 2 t) = 2 Max(0, t)``), and otherwise
searches random rational points for a counterexample (evaluated to 30 digits).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import sympy as sp

from identifiable import zero as _zero
from identifiable.numbers import PROBE_TOL, sample_tol, to_numpy, validates_arguments
from identifiable.verdict import Verdict

__all__ = ["Diagram", "Arrow", "expr_is_zero"]

_KINKS = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, sp.Piecewise)
_MAX_LIFTS = 6
_RESIDUAL = PROBE_TOL
_SIMPLIFY_MAX_OPS = 300


# ---------------------------------------------------------------------------------- zero test
def _innermost_kink_args(expr: sp.Expr) -> list[sp.Expr]:
    """Arguments of kink applications that contain no kink themselves."""
    out = []
    for f in expr.atoms(*_KINKS):
        if isinstance(f, sp.Piecewise):
            args = [c for _, c in f.args if c not in (True, False)]
            args = [a.lhs - a.rhs for a in args if isinstance(a, sp.core.relational.Relational)]
        else:
            args = list(f.args)
        for a in args:
            if a.is_number or a.has(*_KINKS):
                continue
            out.append(sp.expand(a))
    return out


def _representatives(args: list[sp.Expr]) -> list[sp.Expr]:
    """One argument per class of arguments that are numeric multiples of each other."""
    reps: list[sp.Expr] = []
    for a in args:
        for r in reps:
            q = sp.simplify(a / r)
            if q.is_number:
                break
        else:
            reps.append(a)
    return reps


def _linear_symbol(v: sp.Expr, avoid: set) -> tuple[sp.Symbol, sp.Expr] | None:
    """A symbol s in v with a non-zero numeric coefficient and v linear in s."""
    for s in sorted(v.free_symbols - avoid, key=str):
        c = sp.diff(v, s)
        if c.is_number and _zero.is_zero(c) is False:
            return s, c
    return None


def _ts_subs(ts: list) -> list[tuple]:
    """(symbol, replacement) pairs of the lifts made so far."""
    return [(s, repl) for _, s, repl in ts]


def _lift(expr: sp.Expr, depth: int = 0) -> bool | None:
    """True: zero for all real values; None: could not decide by lifting."""
    e = sp.expand(expr)
    if e == 0:
        return True
    args = _innermost_kink_args(e)
    if not args:
        if sp.count_ops(e) > _SIMPLIFY_MAX_OPS:  # simplify (trigsimp...) may run for hours
            return None
        s = sp.simplify(e)
        return True if s == 0 else None
    if depth > 3:
        return None
    reps = _representatives(args)
    if len(reps) > _MAX_LIFTS:
        return None
    lifted = e
    ts: list = []
    for v in reps:
        for s_old, repl in _ts_subs(ts):
            v = sp.expand(v.subs(s_old, repl))
        found = _linear_symbol(v, {t for t, _, _ in ts})
        if found is None:
            return None
        s, c = found
        t = sp.Dummy("t", real=True)
        # v = c s + rest  =>  s = (t - rest) / c, so that v becomes t
        repl = (t - (v - c * s)) / c
        lifted = sp.expand(lifted.subs(s, repl))
        ts.append((t, s, repl))
    for signs in itertools.product((1, 0, -1), repeat=len(ts)):
        case = {}
        for (t, _, _), sg in zip(ts, signs):
            if sg == 0:
                case[t] = sp.Integer(0)
            else:
                case[t] = sp.Dummy("tp", positive=True) if sg > 0 else sp.Dummy("tn",
                                                                                negative=True)
        r = _lift(lifted.xreplace(case), depth + 1)
        if r is not True:
            return None
    return True


@validates_arguments
@_zero.undecided_on_zero_tests
def expr_is_zero(expr: Any, symbols: Iterable[sp.Symbol] | None = None, *, n_probe: int = 24,
                 seed: int = 0, scale: int = 3) -> Verdict:
    """Decide ``expr = 0`` for all real values of its free symbols.

    ``proved`` when sympy (after expansion, or after lifting kink arguments and splitting their
    sign cases) reduces it to 0; ``refuted`` with a point (exact rationals) where it is non-zero
    at 30 digits; ``checked`` (zero at ``n_probe`` random rational points) otherwise.
    """
    expr = sp.sympify(expr)
    syms = sorted(expr.free_symbols, key=str) if symbols is None else [
        s for s in symbols if s in expr.free_symbols] + sorted(
        expr.free_symbols - set(symbols), key=str)
    if sp.expand(expr) == 0:
        return Verdict.proved("the difference expands to 0")
    rng = np.random.default_rng(seed)
    points = [{s: sp.Rational(1, 1 + k) for k, s in enumerate(syms)}]
    points += [{s: sp.Rational(int(rng.integers(-8 * scale, 8 * scale + 1)),
                                int(rng.integers(1, 8))) for s in syms}
               for _ in range(max(n_probe - 1, 0))]
    try:
        f = sp.lambdify(syms, expr, modules="mpmath") if syms else None
    except (SyntaxError, RecursionError, MemoryError):  # too deeply nested for Python's parser
        return Verdict.undecided("the difference is too large to evaluate (nested beyond what "
                                 "lambdify can compile) and sympy could not reduce it to 0")
    import mpmath

    def value(point: dict) -> float:
        """|expr| at the point (30 digits); inf where it cannot be evaluated (never 'zero')."""
        with mpmath.workdps(30):
            try:
                val = f(*[mpmath.mpf(p.p) / p.q for p in point.values()]) if f else \
                    mpmath.mpf(sp.N(expr, 30))
                out = float(abs(val))
            except (TypeError, ValueError, ZeroDivisionError):
                try:
                    out = float(abs(sp.N(expr.subs(point), 30)))
                except (TypeError, ValueError, ZeroDivisionError):
                    out = float("inf")
        return out if out == out else float("inf")

    def refutation(point: dict, val: float) -> Verdict | None:
        # a refutation needs a certified non-zero value at the exact rational point
        try:
            at_point = expr.subs(point)
        except (TypeError, ValueError, ZeroDivisionError):  # sympy cannot order an argument
            return None
        # any certified non-zero value refutes an exact identity, however small
        if val > 0 and _zero.exceeds(at_point, 0.0):
            return Verdict.refuted(
                f"non-zero ({val:.6g}) at a rational point (certified enclosure)",
                counterexample={"point": {str(k): v for k, v in point.items()}, "value": val},
                tol=_RESIDUAL)
        return None

    # a few probes first: a difference that is not zero is usually refuted at once, before the
    # (possibly slow) symbolic attempts below
    vals: list[float] = []
    for point in points[:4]:
        vals.append(value(point))
        r = refutation(point, vals[-1])
        if r is not None:
            return r
    try:
        lifted = _lift(expr)
    except Exception:  # pragma: no cover - sympy internals
        lifted = None
    if lifted:
        return Verdict.proved("the difference is 0 on every sign case of the kink arguments")
    uncertified, worst = None, 0.0
    for j, point in enumerate(points):
        val = vals[j] if j < len(vals) else value(point)
        worst = max(worst, val)
        r = refutation(point, val) if j >= len(vals) else None
        if r is not None:
            return r
        if val > _RESIDUAL:
            uncertified = (point, val)
    if uncertified is not None:
        return Verdict.undecided(
            f"sympy could not reduce the difference to 0, and its value {uncertified[1]:.3g} at "
            f"a rational point could not be certified", tol=_RESIDUAL,
            details_point={str(k): v for k, v in uncertified[0].items()})
    return Verdict.checked("sympy could not reduce the difference to 0; zero at every probe "
                           "point (30 digits)", n_samples=n_probe, tol=_RESIDUAL,
                           max_residual=worst)


# ---------------------------------------------------------------------------------- diagrams
@dataclass(frozen=True)
class Arrow:
    """A map between two spaces of a :class:`Diagram`."""

    name: str
    numeric: Callable[[Any], Any] | None = None
    symbolic: Callable[[Any], Any] | None = None
    matrix: Any = None


class Diagram:
    """Spaces (nodes) and maps (edges) of a diagram; :meth:`commutes` compares paths.

    A node may carry ``sample(rng, n)`` (a batch of random points, for the sampled comparison)
    and ``point`` (a generic symbolic point, for the exact comparison). Points of a product space
    ``V x Theta`` are tuples; maps take and return whatever their neighbours expect. The end of a
    path must be a numpy array ``(n, d)`` (numeric) or a sympy column (symbolic).
    """

    def __init__(self, name: str = ""):
        self.name = name
        self.graph = nx.MultiDiGraph(name=name)

    def space(self, name: str, *, sample: Callable[[np.random.Generator, int], Any] | None = None,
              point: Any = None, label: str | None = None) -> str:
        """Add a space; returns its name."""
        self.graph.add_node(name, sample=sample, point=point, label=label or name)
        return name

    def arrow(self, src: str, dst: str, name: str, numeric: Callable | None = None, *,
              symbolic: Callable | None = None, matrix: Any = None) -> None:
        """Add a map ``src -> dst``. ``matrix`` (sympy or numpy) marks a linear map; its numeric
        and symbolic forms default to multiplication by it."""
        for node in (src, dst):
            if node not in self.graph:
                raise ValueError(f"{node!r}: unknown space of diagram {self.name!r}; add it "
                                 "with Diagram.space first")
        if matrix is not None:
            M = matrix
            if numeric is None:
                numeric = (lambda X, M=M: np.asarray(X) @ to_numpy(M).T)  # noqa: E731
            if symbolic is None:
                symbolic = (lambda v, M=M: sp.Matrix(M) * sp.Matrix(v))  # noqa: E731
        self.graph.add_edge(src, dst, key=name,
                            arrow=Arrow(name, numeric, symbolic, matrix))

    def paths(self, src: str, dst: str) -> list[list[Arrow]]:
        """Every simple path from ``src`` to ``dst`` as a list of arrows."""
        out = []
        for path in nx.all_simple_edge_paths(self.graph, src, dst):
            out.append([self.graph.edges[u, v, k]["arrow"] for u, v, k in path])
        return out

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = []
        for s in self.graph.nodes:
            for t in self.graph.nodes:
                if s != t and len(self.paths(s, t)) >= 2:
                    pairs.append((s, t))
        return pairs

    @validates_arguments
    @_zero.undecided_on_zero_tests
    def commutes(self, src: str | None = None, dst: str | None = None, *,
                 method: str = "auto", n_samples: int = 64, tol: float | None = None,
                 seed: int = 0) -> Verdict:
        """Do all paths ``src -> dst`` agree? (every pair of nodes with two or more paths when
        ``src`` and ``dst`` are None.)

        ``method``: ``"matrix"``, ``"exact"``, ``"sampled"`` or ``"auto"`` (matrices when every
        map is linear, else exact when every map has a symbolic form and the source a symbolic
        point, else sampled).
        """
        if method not in ("auto", "matrix", "exact", "sampled"):
            raise ValueError(f"method: expected auto, matrix, exact or sampled, got {method!r}")
        pairs = [(src, dst)] if src is not None else self._pairs()
        if not pairs:
            raise ValueError(f"diagram {self.name!r}: no two nodes are joined by two paths")
        results = []
        for s, t in pairs:
            v = self._commutes_pair(s, t, method, n_samples, tol, seed)
            if v.status == "refuted":
                return v
            results.append(v)
        statuses = {v.status for v in results}
        if statuses == {"proved"}:
            return Verdict.proved(f"diagram {self.name}: every pair of paths agrees "
                                  f"({'; '.join(v.reason for v in results)})",
                                  witness=[(s, t) for s, t in pairs])
        if "undecided" in statuses:
            return next(v for v in results if v.status == "undecided")
        n = min(v.n_samples or n_samples for v in results if v.status == "checked")
        tl = max(v.tol or 0.0 for v in results if v.status == "checked")
        return Verdict.checked(f"diagram {self.name}: every pair of paths agrees on samples",
                               n_samples=n, tol=tl, witness=[(s, t) for s, t in pairs])

    def _commutes_pair(self, s: str, t: str, method: str, n_samples: int, tol: float | None,
                       seed: int) -> Verdict:
        paths = self.paths(s, t)
        if len(paths) < 2:
            raise ValueError(f"diagram {self.name!r}: fewer than two paths from {s!r} to {t!r}")
        names = [" o ".join(a.name for a in reversed(p)) for p in paths]
        linear = all(a.matrix is not None for p in paths for a in p)
        node = self.graph.nodes[s]
        symbolic_ok = node["point"] is not None and all(a.symbolic is not None
                                                         for p in paths for a in p)
        if method == "matrix" or (method == "auto" and linear):
            if not linear:
                raise ValueError("method='matrix' needs a matrix on every arrow")
            return self._by_matrices(paths, names, s, t, tol)
        if method == "exact" or (method == "auto" and symbolic_ok):
            if not symbolic_ok:
                raise ValueError(f"method='exact' needs a symbolic point at {s!r} and a symbolic "
                                 "form on every arrow")
            return self._exactly(paths, names, s, t)
        return self._sampled(paths, names, s, t, n_samples, tol, seed)

    def _by_matrices(self, paths, names, s, t, tol) -> Verdict:
        mats = []
        for p in paths:
            M = None
            for a in p:
                M = a.matrix if M is None else (
                    sp.Matrix(a.matrix) * sp.Matrix(M) if _is_sym(a.matrix) and _is_sym(M)
                    else to_numpy(a.matrix) @ to_numpy(M))
            mats.append(M)
        first = mats[0]
        for M, name in zip(mats[1:], names[1:]):
            if tuple(M.shape) != tuple(first.shape):
                return Verdict.refuted(f"paths {names[0]} and {name} have shapes "
                                       f"{first.shape} and {M.shape}",
                                       counterexample={"paths": [names[0], name]})
            if _is_sym(first) and _is_sym(M):
                D = sp.Matrix(first) - sp.Matrix(M)
                # each entry decided exactly (identically in any symbols); an undecided one
                # gives undecided, never refuted
                zs = {(i, j): _zero.identically_zero(D[i, j]) for (i, j), v in
                      sp.SparseMatrix(D).todok().items()}
                bad = [ij for ij, z in zs.items() if z is False]
                if not bad and any(z is None for z in zs.values()):
                    i, j = next(ij for ij, z in zs.items() if z is None)
                    return Verdict.undecided(
                        f"diagram {self.name}: cannot decide whether paths {names[0]} and {name} "
                        f"agree at entry ({i}, {j}) (difference {D[i, j]})")
                if bad:
                    i, j = bad[0]
                    e = sp.zeros(D.cols, 1)
                    e[j] = 1
                    return Verdict.refuted(
                        f"diagram {self.name}: paths {names[0]} and {name} differ on the basis "
                        f"vector e_{j} (entry {i})",
                        counterexample={"from": s, "to": t, "paths": [names[0], name],
                                        "x": list(e), "entry": i, "difference": D[i, j]})
            else:
                A, B = to_numpy(first), to_numpy(M)
                tl = sample_tol(tol, A)
                err = np.abs(A - B)
                if np.max(err, initial=0.0) > tl:
                    i, j = np.unravel_index(int(np.argmax(err)), err.shape)
                    return Verdict.refuted(
                        f"diagram {self.name}: paths {names[0]} and {name} differ on e_{j}",
                        counterexample={"from": s, "to": t, "paths": [names[0], name],
                                        "entry": int(i), "column": int(j),
                                        "difference": float(A[i, j] - B[i, j])},
                        method="tolerance", tol=tl)
                return Verdict.checked(f"{s} -> {t}: composed matrices agree entry-wise within "
                                       "tol", n_samples=int(A.size), tol=tl, method="tolerance")
        return Verdict.proved(f"{s} -> {t}: composed matrices are equal")

    def _exactly(self, paths, names, s, t) -> Verdict:
        point = self.graph.nodes[s]["point"]
        values = []
        for p in paths:
            v = point
            for a in p:
                v = a.symbolic(v)
            values.append(sp.Matrix(v))
        first = values[0]
        symbols = sorted(_free(point), key=str)
        weakest = None
        for v, name in zip(values[1:], names[1:]):
            if v.shape != first.shape:
                return Verdict.refuted(f"paths {names[0]} and {name} end in different shapes",
                                       counterexample={"paths": [names[0], name]})
            for r in range(v.rows * v.cols):
                d = first[r] - v[r]
                verdict = expr_is_zero(d, symbols)
                if verdict.status == "refuted":
                    return Verdict.refuted(
                        f"diagram {self.name}: paths {names[0]} and {name} differ at entry {r}",
                        counterexample={"from": s, "to": t, "paths": [names[0], name],
                                        "entry": r, **verdict.counterexample})
                if verdict.status != "proved":
                    weakest = verdict
        if weakest is not None:
            return weakest.but(reason=f"{s} -> {t}: {weakest.reason}")
        return Verdict.proved(f"{s} -> {t}: exact for all values of "
                              f"{len(symbols)} symbols")

    def _sampled(self, paths, names, s, t, n_samples, tol, seed) -> Verdict:
        sample = self.graph.nodes[s]["sample"]
        if sample is None:
            raise ValueError(f"space {s!r} has no sampler; pass sample= to Diagram.space")
        rng = np.random.default_rng(seed)
        pts = sample(rng, n_samples)
        values = []
        for p in paths:
            v = pts
            for a in p:
                if a.numeric is None:
                    raise ValueError(f"arrow {a.name!r} has no numeric form")
                v = a.numeric(v)
            values.append(np.asarray(v, dtype=float).reshape(n_samples, -1))
        first = values[0]
        tl = sample_tol(tol, first)
        for v, name in zip(values[1:], names[1:]):
            if v.shape != first.shape:
                return Verdict.refuted(f"paths {names[0]} and {name} end in different shapes",
                                       counterexample={"paths": [names[0], name]})
            err = np.abs(first - v)
            if np.max(err, initial=0.0) > tl:
                j, r = np.unravel_index(int(np.argmax(err)), err.shape)
                return Verdict.refuted(
                    f"diagram {self.name}: paths {names[0]} and {name} differ by "
                    f"{err[j, r]:.3g} at a sample",
                    counterexample={"from": s, "to": t, "paths": [names[0], name],
                                    "sample": _index(pts, j), "entry": int(r),
                                    "values": [float(first[j, r]), float(v[j, r])]},
                    method="sampled", tol=tl)
        return Verdict.checked(f"{s} -> {t}: paths agree on random samples",
                               n_samples=n_samples, tol=tl)

    def __repr__(self) -> str:
        return (f"Diagram({self.name}: {self.graph.number_of_nodes()} spaces, "
                f"{self.graph.number_of_edges()} maps)")


def _is_sym(M: Any) -> bool:
    return isinstance(M, sp.MatrixBase)


def _free(point: Any) -> set:
    if isinstance(point, sp.Basic):
        return point.free_symbols
    if isinstance(point, (tuple, list)):
        out: set = set()
        for p in point:
            out |= _free(p)
        return out
    if hasattr(point, "free_symbols"):
        return set(point.free_symbols)
    return set()


def _index(pts: Any, j: int) -> Any:
    """The j-th point of a batch (arrays row j; tuples element-wise)."""
    if isinstance(pts, tuple):
        return tuple(_index(p, j) for p in pts)
    if isinstance(pts, np.ndarray):
        return pts[j].tolist()
    return repr(pts)
