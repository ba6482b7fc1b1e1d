"""Independent ground truth for the differential fuzz suite.

Nothing here calls the library's decision code (no ``check_intertwiner``, ``membership``,
``align``, ``same_function``, ``reduce``, ``identifiable``, ``is_equivariant``,
``latent_actions``, ``functional_dimension``, ``expr_is_zero``, ...). The library is only used by
the case generators to *build* models and parameters; the oracle works on plain data:

* a network is :class:`Net`: activation names per hidden layer, weight matrices and bias vectors
  as nested lists of numbers (python floats for float parameters, sympy numbers / Fractions for
  exact ones);
* every computation for exact data runs in mpmath at :data:`DPS` (150) significant digits, and
  a quantity counts as exactly zero when ``|v| <= ZERO`` (1e-110). This is sound for the inputs
  the generators build: small rationals (denominators <= 64) and disguised constants that are
  either exactly 0 or at least 1e-30 in magnitude (the "tiny" disguises are ~1e-28), combined
  by at most cubes and small products, so that a non-zero quantity stays far above 1e-100
  while rounding stays below 1e-140 (a cube of a 1e-29 disguise is 1e-87: non-zero);
* own activations (mpmath and numpy), own forward pass, own action of K on parameters
  (``W'_i = A_i W_i B_{i-1}^{-1}``, ``b'_i = A_i b_i``, ``W'_L = W_L B_{L-1}^{-1}`` with
  ``B_i`` the partner of ``A_i``: ``sigma(A z) = B sigma(z)``), brute-force alignment, the known
  intertwiner groups, dense 50-digit sampling of ``sigma(A x) = B sigma(x)``, high-precision
  Jacobian ranks, and re-evaluation of counterexamples at 50 digits.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from scipy import special as _special

DPS = 150
ZERO = mpmath.mpf(10) ** -110
MP = mpmath.MPContext()
MP.dps = DPS


# ---------------------------------------------------------------------------------- numbers
def mpf(v: Any) -> Any:
    """A DPS-digit mpf of a float, int, Fraction, sympy number or sympy constant expression."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("booleans are not numbers")
    if isinstance(v, mpmath.mpf) or type(v).__name__ == "mpf":
        return MP.mpf(v)
    if isinstance(v, (int, np.integer)):
        return MP.mpf(int(v))
    if isinstance(v, (float, np.floating)):
        return MP.mpf(float(v))
    if isinstance(v, Fraction):
        return MP.mpf(v.numerator) / v.denominator
    if isinstance(v, sp.Basic):
        if v.is_Rational:
            return MP.mpf(int(v.p)) / int(v.q)
        if v.is_Float:
            return MP.mpf(float(v))
        val = sp.N(v, DPS + 20)
        re, im = val.as_real_imag()
        if abs(float(im)) > 1e-30:
            raise ValueError(f"not real: {v}")
        return MP.mpf(str(re)) if re != 0 else MP.mpf(0)
    raise TypeError(f"not a number: {v!r}")


def is_zero(v: Any, tol: Any = None) -> bool:
    """Exact zero test (|v| <= ZERO at DPS digits) or ``|v| <= tol``."""
    x = v if type(v).__name__ == "mpf" else mpf(v)
    return abs(x) <= (ZERO if tol is None else tol)


def mat(M: Any) -> list[list[Any]]:
    """A matrix (nested lists, numpy, sympy) as a list of rows of DPS-digit mpf."""
    if isinstance(M, sp.MatrixBase):
        return [[mpf(M[i, j]) for j in range(M.shape[1])] for i in range(M.shape[0])]
    if isinstance(M, np.ndarray) and M.ndim == 2 and 0 in M.shape:
        return [[] for _ in range(M.shape[0])]
    arr = np.asarray(M, dtype=object)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return [[mpf(v) for v in row] for row in arr.tolist()]


def vec(b: Any) -> list[Any]:
    if isinstance(b, sp.MatrixBase):
        return [mpf(v) for v in list(b)]
    return [mpf(v) for v in np.asarray(b, dtype=object).reshape(-1).tolist()]


def matmul(A: list, B: list) -> list:
    n, k, m = len(A), len(B), (len(B[0]) if B else 0)
    return [[MP.fsum(A[i][t] * B[t][j] for t in range(k)) for j in range(m)] for i in range(n)]


def matvec(A: list, x: list) -> list:
    return [MP.fsum(a * b for a, b in zip(row, x)) for row in A]


def det(A: list) -> Any:
    """Determinant at DPS digits (Gaussian elimination with partial pivoting)."""
    n = len(A)
    M = [list(r) for r in A]
    d = MP.mpf(1)
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        if M[p][c] == 0:
            return MP.mpf(0)
        if p != c:
            M[c], M[p] = M[p], M[c]
            d = -d
        d *= M[c][c]
        for r in range(c + 1, n):
            f = M[r][c] / M[c][c]
            for j in range(c, n):
                M[r][j] -= f * M[c][j]
    return d


def singular(A: list) -> bool:
    """Is the square matrix singular (|det| <= ZERO times the scale)?"""
    scale = max([MP.mpf(1)] + [abs(v) for r in A for v in r]) ** len(A)
    return abs(det(A)) <= ZERO * scale


def rank(A: list, rel: float = 1e-30) -> int:
    """Numerical rank at DPS digits (row echelon with relative pivot threshold)."""
    M = [list(r) for r in A]
    if not M:
        return 0
    n, m = len(M), len(M[0])
    scale = max([MP.mpf(0)] + [abs(v) for r in M for v in r])
    if scale == 0:
        return 0
    thr = scale * rel
    rk = 0
    for c in range(m):
        p = max(range(rk, n), key=lambda r: abs(M[r][c]), default=None)
        if p is None or abs(M[p][c]) <= thr:
            continue
        M[rk], M[p] = M[p], M[rk]
        for r in range(rk + 1, n):
            f = M[r][c] / M[rk][c]
            for j in range(c, m):
                M[r][j] -= f * M[rk][j]
        rk += 1
        if rk == n:
            break
    return rk


def inverse(A: list) -> list:
    n = len(A)
    M = [list(r) + [MP.mpf(1 if i == j else 0) for j in range(n)] for i, r in enumerate(A)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        piv = M[c][c]
        M[c] = [v / piv for v in M[c]]
        for r in range(n):
            if r != c and M[r][c] != 0:
                f = M[r][c]
                M[r] = [a - f * b for a, b in zip(M[r], M[c])]
    return [row[n:] for row in M]


# ---------------------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Group:
    """The intertwiner group of eq. (8) of an activation, as known from the literature.

    ``kind``: ``"gl"`` (linear activation: GL(d), B = A) or ``"mono"`` (monomial matrices whose
    non-zero entries lie in ``S``: ``"one"``, ``"sign"``, ``"pos"``, ``"nonzero"``), with the
    partner scaling ``c(a)`` (``sigma(a t) = c(a) sigma(t)``).
    """

    kind: str
    S: str = "one"
    power: int = 1          # c(a) = a^power
    abs_partner: bool = False  # c(a) = |a| (leaky_relu:-1 = |t|)

    def c(self, a: Any) -> Any:
        if self.kind == "gl":
            return a
        if self.S == "one":
            return a
        if self.abs_partner:
            return abs(a)
        return a ** self.power

    def allowed(self, a: Any, tol: Any = None) -> bool:
        t = ZERO if tol is None else tol
        if abs(a) <= t:
            return False
        if self.S == "one":
            return abs(a - 1) <= t
        if self.S == "sign":
            return abs(a - 1) <= t or abs(a + 1) <= t
        if self.S == "pos":
            return a > t
        return True

    @property
    def dimension_per_neuron(self) -> int:
        return 1 if self.S in ("pos", "nonzero") else 0


def parse(name: str) -> tuple[str, Any]:
    name = name.strip().lower()
    if name.startswith("leaky_relu:"):
        return "leaky", Fraction(name.split(":", 1)[1])
    if name.startswith("power:"):
        return "power", int(name.split(":", 1)[1])
    return name, None


def group_of(name: str) -> Group:
    fam, arg = parse(name)
    if fam == "identity" or (fam == "power" and arg == 1) or (fam == "leaky" and arg == 1):
        return Group("gl")
    if fam == "relu" or (fam == "leaky" and arg != -1):
        return Group("mono", "pos", 1)
    if fam == "leaky" and arg == -1:
        return Group("mono", "nonzero", 1, abs_partner=True)
    if fam == "tanh":
        return Group("mono", "sign", 1)
    if fam == "power":
        return Group("mono", "nonzero", int(arg))
    if fam in ("sigmoid", "gelu", "softplus"):
        return Group("mono", "one", 1)
    raise ValueError(f"unknown activation {name}")


def act_mp(name: str, x: Any) -> Any:
    """sigma(x) at DPS digits, own implementation."""
    fam, arg = parse(name)
    if fam == "identity":
        return x
    if fam == "relu":
        return x if x > 0 else MP.mpf(0)
    if fam == "leaky":
        return x if x >= 0 else mpf(arg) * x
    if fam == "tanh":
        return MP.tanh(x)
    if fam == "sigmoid":
        return 1 / (1 + MP.exp(-x))
    if fam == "gelu":
        return x / 2 * (1 + MP.erf(x / MP.sqrt(2)))
    if fam == "softplus":
        return MP.log(1 + MP.exp(x))
    if fam == "power":
        return x ** int(arg)
    raise ValueError(name)


def dact_mp(name: str, x: Any) -> Any:
    """sigma'(x) at DPS digits (one-sided 1 at the ReLU kink; never sampled there)."""
    fam, arg = parse(name)
    if fam == "identity":
        return MP.mpf(1)
    if fam == "relu":
        return MP.mpf(1 if x > 0 else 0)
    if fam == "leaky":
        return MP.mpf(1) if x >= 0 else mpf(arg)
    if fam == "tanh":
        return 1 - MP.tanh(x) ** 2
    if fam == "sigmoid":
        s = 1 / (1 + MP.exp(-x))
        return s * (1 - s)
    if fam == "gelu":
        return (1 + MP.erf(x / MP.sqrt(2))) / 2 + x * MP.exp(-x * x / 2) / MP.sqrt(2 * MP.pi)
    if fam == "softplus":
        return 1 / (1 + MP.exp(-x))
    if fam == "power":
        m = int(arg)
        return m * x ** (m - 1)
    raise ValueError(name)


def act_np(name: str, x: np.ndarray) -> np.ndarray:
    """sigma on float64 arrays, own implementation (not the library's)."""
    fam, arg = parse(name)
    x = np.asarray(x, dtype=np.float64)
    if fam == "identity":
        return x.copy()
    if fam == "relu":
        return np.where(x > 0, x, 0.0)
    if fam == "leaky":
        return np.where(x >= 0, x, float(arg) * x)
    if fam == "tanh":
        return np.tanh(x)
    if fam == "sigmoid":
        return np.exp(-np.logaddexp(0.0, -x))
    if fam == "gelu":
        return 0.5 * x * (1.0 + _special.erf(x / math.sqrt(2.0)))
    if fam == "softplus":
        return np.logaddexp(0.0, x)
    if fam == "power":
        return x ** int(arg)
    raise ValueError(name)


# ---------------------------------------------------------------------------------- networks
@dataclass
class Net:
    """An MLP as plain data: ``acts[i]`` is the activation of hidden layer i + 1."""

    acts: list[str]
    Ws: list   # list of matrices (lists of rows) of raw numbers
    bs: list   # list of vectors of raw numbers
    exact: bool = True
    dims: list | None = None
    _mp: Any = field(default=None, repr=False)

    @property
    def widths(self) -> list[int]:
        if self.dims is not None:
            return list(self.dims)
        return [len(self.Ws[0][0])] + [len(W) for W in self.Ws]

    @property
    def depth(self) -> int:
        return len(self.Ws)

    @property
    def n_params(self) -> int:
        w = self.widths
        return sum(w[i + 1] * w[i] + w[i + 1] for i in range(len(w) - 1))

    def mp(self) -> tuple[list, list]:
        if self._mp is None:
            self._mp = ([mat(W) for W in self.Ws], [vec(b) for b in self.bs])
        return self._mp

    def floats(self) -> tuple[list, list]:
        Ws, bs = self.mp()
        w = self.widths
        return ([np.array([[float(v) for v in r] for r in W], dtype=float).reshape(w[i + 1], w[i])
                 for i, W in enumerate(Ws)],
                [np.array([float(v) for v in b], dtype=float) for b in bs])


def net_from_theta(acts: list[str], theta: Any) -> Net:
    """Read a library ``Theta`` (public attributes weights / biases / kind) into a :class:`Net`."""
    Ws, bs = [], []
    dims = [int(theta.weights[0].shape[1])] + [int(W.shape[0]) for W in theta.weights]
    for W, b in zip(theta.weights, theta.biases):
        if isinstance(W, sp.MatrixBase):
            Ws.append([[W[i, j] for j in range(W.shape[1])] for i in range(W.shape[0])])
            bs.append(list(b))
        else:
            Ws.append(np.asarray(W, dtype=float).tolist())
            bs.append(np.asarray(b, dtype=float).reshape(-1).tolist())
    return Net(list(acts), Ws, bs, exact=getattr(theta, "kind", "float") != "float", dims=dims)


def forward_mp(net: Net, x: list) -> list:
    """f(x; theta) at DPS digits."""
    Ws, bs = net.mp()
    h = [mpf(v) for v in x]
    L = len(Ws)
    for i in range(L):
        z = [MP.fsum(w * v for w, v in zip(row, h)) + b for row, b in zip(Ws[i], bs[i])]
        h = [act_mp(net.acts[i], v) for v in z] if i < L - 1 else z
    return h


def forward_np(net: Net, X: np.ndarray) -> np.ndarray:
    Ws, bs = net.floats()
    H = np.asarray(X, dtype=float)
    for i, (W, b) in enumerate(zip(Ws, bs)):
        Z = H @ W.T + b[None, :]
        H = act_np(net.acts[i], Z) if i < len(Ws) - 1 else Z
    return H


def layer_mp(net: Net, i: int, x: list) -> list:
    """f_i(x) (1-based layer i) at DPS digits."""
    Ws, bs = net.mp()
    z = [MP.fsum(w * v for w, v in zip(row, x)) + b for row, b in zip(Ws[i - 1], bs[i - 1])]
    return [act_mp(net.acts[i - 1], v) for v in z] if i < len(Ws) else z


def sample_points(d: int, n: int, rng: np.random.Generator, scale: float = 2.0) -> list[list]:
    """Ordinary random inputs (rationals with denominator 64, so they are exact everywhere)."""
    pts = []
    for _ in range(n):
        pts.append([Fraction(int(round(v * 64)), 64) for v in rng.standard_normal(d) * scale])
    return pts


def max_diff(net1: Net, net2: Net, pts: list, with_scale: bool = False) -> Any:
    """max over points and outputs of |f(x; net1) - f(x; net2)| at DPS digits (and, with
    ``with_scale``, max(1, max |f(x; net1)|) for relative comparisons)."""
    worst = MP.mpf(0)
    mag = MP.mpf(1)
    for x in pts:
        y1, y2 = forward_mp(net1, x), forward_mp(net2, x)
        worst = max([worst] + [abs(a - b) for a, b in zip(y1, y2)])
        mag = max([mag] + [abs(a) for a in y1])
    return (worst, mag) if with_scale else worst


# ---------------------------------------------------------------------------------- intertwiners
def monomial_parts(A: list, tol: Any = None) -> tuple[list[int], list] | None:
    """(perm, values) with A[i][perm[i]] = values[i] the only non-zero of row i, or None."""
    n = len(A)
    perm, vals = [], []
    for i in range(n):
        nz = [j for j in range(n) if not is_zero(A[i][j], tol)]
        if len(nz) != 1:
            return None
        perm.append(nz[0])
        vals.append(A[i][nz[0]])
    if len(set(perm)) != n:
        return None
    return perm, vals


def in_group(name: str, A: Any, tol: Any = None) -> bool:
    """Is A in K (the intertwiner group of ``name`` on R^d)? Exact at DPS digits (tol None) or
    within ``tol`` entry-wise."""
    A = A if isinstance(A, list) and A and isinstance(A[0], list) and (
        type(A[0][0]).__name__ == "mpf") else mat(A)
    G = group_of(name)
    if G.kind == "gl":
        if tol is None:
            return not singular(A)
        s = np.linalg.svd(np.array([[float(v) for v in r] for r in A]), compute_uv=False)
        return bool(s[-1] > tol)
    parts = monomial_parts(A, tol)
    if parts is None:
        return False
    return all(G.allowed(a, tol) for a in parts[1])


def partner(name: str, A: list) -> list:
    """B with sigma(A x) = B sigma(x) for A in K (A as mp rows)."""
    G = group_of(name)
    if G.kind == "gl":
        return [list(r) for r in A]
    n = len(A)
    B = [[MP.mpf(0)] * n for _ in range(n)]
    perm, vals = monomial_parts(A)
    for i, (j, a) in enumerate(zip(perm, vals)):
        B[i][j] = G.c(a)
    return B


def intertwines(name: str, A: Any, B: Any, tol: Any = None) -> bool | None:
    """Ground truth of ``sigma(A x) = B sigma(x) for all x`` by the known groups.

    A must be invertible (the caller checks :func:`singular` first). Exact (tol None) or within
    ``tol``; returns None when a float decision is within the tolerance fuzz zone.
    """
    A, B = mat(A), mat(B)
    G = group_of(name)
    n = len(A)
    if G.kind == "gl":
        return all(is_zero(A[i][j] - B[i][j], tol) for i in range(n) for j in range(n))
    parts = monomial_parts(A, tol)
    if parts is None:
        return False
    perm, vals = parts
    for i in range(n):
        if not G.allowed(vals[i], tol):
            return False
        for j in range(n):
            want = G.c(vals[i]) if j == perm[i] else 0
            if not is_zero(B[i][j] - want, tol):
                return False
    return True


def intertwining_residual(name: str, A: Any, B: Any, pts: list[list]) -> Any:
    """max over x in pts of |sigma(A x) - B sigma(x)| at DPS digits (dense sampling)."""
    A, B = mat(A), mat(B)
    worst = MP.mpf(0)
    for x in pts:
        xm = [mpf(v) for v in x]
        lhs = [act_mp(name, v) for v in matvec(A, xm)]
        rhs = matvec(B, [act_mp(name, v) for v in xm])
        worst = max([worst] + [abs(a - b) for a, b in zip(lhs, rhs)])
    return worst


def structured_points(d: int, rng: np.random.Generator, n_random: int = 40) -> list[list]:
    """Axis points +-e_k, 2 e_k, pairs e_k - e_j, and random rational points."""
    pts: list[list] = []
    for k in range(d):
        for s in (1, -1, 2, Fraction(-1, 2)):
            x = [Fraction(0)] * d
            x[k] = Fraction(s)
            pts.append(x)
        for j in range(d):
            if j != k:
                x = [Fraction(0)] * d
                x[k], x[j] = Fraction(1), Fraction(-1)
                pts.append(x)
    pts += sample_points(d, n_random, rng, 1.5)
    return pts


# ---------------------------------------------------------------------------------- K action
def transform(net: Net, ks: list) -> tuple[list, list]:
    """k . theta at DPS digits: ``W'_i = A_i W_i B_{i-1}^{-1}``, ``b'_i = A_i b_i``,
    ``W'_L = W_L B_{L-1}^{-1}``; ``ks[i]`` is A_{i+1} (mp rows). Returns (Ws, bs) in mp."""
    Ws, bs = net.mp()
    L = len(Ws)
    outW, outb = [], []
    Binv_prev = None
    for i in range(L):
        W, b = Ws[i], bs[i]
        if Binv_prev is not None:
            W = matmul(W, Binv_prev)
        if i < L - 1:
            A = [list(r) for r in ks[i]]
            W = matmul(A, W)
            b = matvec(A, b)
            Binv_prev = inverse(partner(net.acts[i], A))
        outW.append(W)
        outb.append(b)
    return outW, outb


def params_close(P1: tuple, P2: tuple, tol: Any = None) -> Any:
    """max entry-wise |difference| of two (Ws, bs) in mp; compared with ZERO / tol by callers."""
    worst = MP.mpf(0)
    for W1, W2 in zip(P1[0], P2[0]):
        for r1, r2 in zip(W1, W2):
            worst = max([worst] + [abs(a - b) for a, b in zip(r1, r2)])
    for b1, b2 in zip(P1[1], P2[1]):
        worst = max([worst] + [abs(a - b) for a, b in zip(b1, b2)])
    return worst


def param_scale(*nets: Net) -> Any:
    s = MP.mpf(1)
    for n in nets:
        Ws, bs = n.mp()
        for W in Ws:
            for r in W:
                for v in r:
                    s = max(s, abs(v))
        for b in bs:
            for v in b:
                s = max(s, abs(v))
    return s


def brute_align(net1: Net, net2: Net, tol: Any = None, max_nodes: int = 20000
                ) -> tuple[bool | None, list | None]:
    """Is ``net2 = k . net1`` for some k in K? Brute force over the matchings of rows.

    For each hidden layer: rows of ``M = [W_i B_{i-1}^{-1} | b_i]`` (net1) and ``M2`` (net2); a
    row r of M2 may be matched to row q of M when ``M2[r] = a M[q]`` with a an allowed scaling;
    every perfect matching is tried (depth first, all layers), the last layer must agree.
    Zero rows with a continuous scaling group whose outgoing column is non-zero make the answer
    unknown (None). GL layers: A is the unique solution of A M = M2 when M has full row rank,
    else unknown. Returns (True, [A_1, ...]) / (False, None) / (None, None).
    """
    W1, b1 = net1.mp()
    W2, b2 = net2.mp()
    L = len(W1)
    if [len(W) for W in W1] != [len(W) for W in W2]:
        return False, None
    unknown = [False]
    nodes = [0]

    def close(u, v):
        return is_zero(u - v, tol)

    def search(i: int, Wprev: list, ks: list):
        nodes[0] += 1
        if nodes[0] > max_nodes:
            unknown[0] = True
            return None
        if i == L:
            ok = all(close(a, b) for ra, rb in zip(Wprev, W2[L - 1]) for a, b in zip(ra, rb))
            ok = ok and all(close(a, b) for a, b in zip(b1[L - 1], b2[L - 1]))
            return ks if ok else None
        G = group_of(net1.acts[i - 1])
        d = len(W1[i - 1])
        M = [list(r) + [b] for r, b in zip(Wprev, b1[i - 1])]
        M2 = [list(r) + [b] for r, b in zip(W2[i - 1], b2[i - 1])]
        Wnext = W1[i]
        if G.kind == "gl":
            if rank(M) < d:
                unknown[0] = True
                return None
            # A M = M2: solve with the normal equations A = M2 M^T (M M^T)^-1
            MT = [list(c) for c in zip(*M)]
            A = matmul(matmul(M2, MT), inverse(matmul(M, MT)))
            AM = matmul(A, M)
            if not all(close(a, b) for ra, rb in zip(AM, M2) for a, b in zip(ra, rb)):
                return None
            if singular(A):
                return None
            Binv = inverse(A)
            return search(i + 1, matmul(Wnext, Binv), ks + [A])
        # monomial: candidates per row of M2
        cands: list[list[tuple[int, Any]]] = []
        for r in range(d):
            row2 = M2[r]
            opts = []
            z2 = all(is_zero(v, tol) for v in row2)
            for q in range(d):
                row = M[q]
                z1 = all(is_zero(v, tol) for v in row)
                if z1 or z2:
                    if not (z1 and z2):
                        continue
                    colz1 = all(is_zero(Wnext[o][q], tol) for o in range(len(Wnext)))
                    colz2 = all(is_zero(W2[i][o][r], tol) for o in range(len(W2[i])))
                    if G.S == "sign":
                        opts += [(q, MP.mpf(1)), (q, MP.mpf(-1))]
                    elif G.S == "one" or (colz1 and colz2):
                        opts.append((q, MP.mpf(1)))
                    else:
                        unknown[0] = True
                        opts.append((q, MP.mpf(1)))
                    continue
                p = max(range(len(row)), key=lambda k: abs(row[k]))
                a = row2[p] / row[p]
                if not G.allowed(a, tol):
                    # within tol a sign / one scaling may be off by rounding: snap
                    continue
                if G.S == "one":
                    a = MP.mpf(1)
                elif G.S == "sign":
                    a = MP.mpf(1) if a > 0 else MP.mpf(-1)
                if all(close(u, a * v) for u, v in zip(row2, row)):
                    opts.append((q, a))
            if not opts:
                return None
            cands.append(opts)

        def matchings(r: int, used: set, acc: list):
            if r == d:
                yield list(acc)
                return
            for q, a in cands[r]:
                if q in used:
                    continue
                acc.append((q, a))
                used.add(q)
                yield from matchings(r + 1, used, acc)
                used.discard(q)
                acc.pop()

        for match in matchings(0, set(), []):
            A = [[MP.mpf(0)] * d for _ in range(d)]
            for r, (q, a) in enumerate(match):
                A[r][q] = a
            # (W_{i+1} B^{-1})[:, r] = W_{i+1}[:, q(r)] / c(a_r)
            Wn = [[Wnext[o][q] / G.c(a) for (q, a) in match] for o in range(len(Wnext))]
            out = search(i + 1, Wn, ks + [A])
            if out is not None:
                return out
            if nodes[0] > max_nodes:
                break
        return None

    res = search(1, W1[0], [])
    if res is not None:
        return True, res
    if unknown[0]:
        return None, None
    return False, None


def verify_witness(net1: Net, net2: Net, ks: list, tol: Any = None) -> bool:
    """Does the library's witness k = (A_1, ...) lie in K and map net1 to net2?"""
    try:
        kmp = [mat(A) for A in ks]
    except Exception:
        return False
    for i, A in enumerate(kmp):
        if len(A) != net1.widths[i + 1]:
            return False
        if not in_group(net1.acts[i], A, tol):
            return False
    if tol is not None:  # snap float witnesses onto the group before transforming
        kmp = [_snap(net1.acts[i], A, tol) for i, A in enumerate(kmp)]
    P = transform(net1, kmp)
    err = params_close(P, net2.mp())
    return bool(err <= (ZERO if tol is None else 2 * tol + MP.mpf(10) ** -12))


def _snap(name: str, A: list, tol: Any) -> list:
    G = group_of(name)
    if G.kind == "gl":
        return A
    parts = monomial_parts(A, tol)
    n = len(A)
    B = [[MP.mpf(0)] * n for _ in range(n)]
    for i, (j, a) in enumerate(zip(*parts)):
        if G.S == "one":
            a = MP.mpf(1)
        elif G.S == "sign":
            a = MP.mpf(1) if a > 0 else MP.mpf(-1)
        B[i][j] = a
    return B


# ---------------------------------------------------------------------------------- reduce
def essential_violation(net: Net, tol: Any = None) -> str | None:
    """Is the (reduced) parameter free of removable neurons? Monomial groups only.

    Returns a description of the first neuron that is constant (zero incoming row), half-dead
    (zero outgoing column), or redundant (row of [W_i | b_i] an allowed multiple of another).
    """
    Ws, bs = net.mp()
    for i in range(1, net.depth):
        G = group_of(net.acts[i - 1])
        if G.kind == "gl":
            continue
        W, b, N = Ws[i - 1], bs[i - 1], Ws[i]
        rows = [list(r) + [bb] for r, bb in zip(W, b)]
        for r in range(len(W)):
            if all(is_zero(v, tol) for v in W[r]):
                return f"layer {i}: neuron {r} has a zero incoming row"
            if all(is_zero(N[o][r], tol) for o in range(len(N))):
                return f"layer {i}: neuron {r} has a zero outgoing column"
        for r, q in itertools.combinations(range(len(rows)), 2):
            p = max(range(len(rows[q])), key=lambda k: abs(rows[q][k]))
            if is_zero(rows[q][p], tol):
                continue
            a = rows[r][p] / rows[q][p]
            if G.allowed(a, tol) and all(is_zero(u - a * v, tol)
                                         for u, v in zip(rows[r], rows[q])):
                return f"layer {i}: neurons {q} and {r} are equal up to the scaling {a}"
    return None


def rectangular_intertwiner_residual(name: str, A: Any, c: Any, B: Any, pts: list) -> Any:
    """max |A sigma(y) + c - sigma(B y)| over sample y (Definition 3.2's alpha_i)."""
    A, B = mat(A), mat(B)
    cc = [MP.mpf(0)] * len(A) if c is None else vec(c)
    worst = MP.mpf(0)
    for y in pts:
        ym = [mpf(v) for v in y]
        lhs = [u + w for u, w in zip(matvec(A, [act_mp(name, v) for v in ym]), cc)]
        rhs = [act_mp(name, v) for v in matvec(B, ym)]
        worst = max([worst] + [abs(u - w) for u, w in zip(lhs, rhs)])
    return worst


# ---------------------------------------------------------------------------------- Jacobian rank
def jacobian_mp(net: Net, x: list) -> list[list]:
    """d f(x; theta) / d theta at DPS digits (own back-propagation), rows = outputs, columns in
    the order W_1 (row-major), b_1, W_2, b_2, ..."""
    Ws, bs = net.mp()
    L = len(Ws)
    hs = [[mpf(v) for v in x]]
    zs = []
    for i in range(L):
        z = [MP.fsum(w * v for w, v in zip(row, hs[-1])) + b for row, b in zip(Ws[i], bs[i])]
        zs.append(z)
        hs.append([act_mp(net.acts[i], v) for v in z] if i < L - 1 else z)
    dL = len(Ws[-1])
    G = [[MP.mpf(1 if a == o else 0) for a in range(dL)] for o in range(dL)]  # d out / d z_L
    blocks: list = []
    for i in range(L - 1, -1, -1):
        h = hs[i]
        JW = [[G[o][a] * h[j] for a in range(len(Ws[i])) for j in range(len(h))]
              for o in range(dL)]
        Jb = [list(G[o]) for o in range(dL)]
        blocks = [(JW, Jb)] + blocks
        if i > 0:
            W = Ws[i]
            dz = [dact_mp(net.acts[i - 1], v) for v in zs[i - 1]]
            G = [[MP.fsum(G[o][a] * W[a][j] for a in range(len(W))) * dz[j]
                  for j in range(len(W[0]))] for o in range(dL)]
    rows = []
    for o in range(dL):
        row = []
        for JW, Jb in blocks:
            row += JW[o] + Jb[o]
        rows.append(row)
    return rows


def jacobian_rank(net: Net, X: np.ndarray, lo: float = 1e-13, hi: float = 1e-8
                  ) -> tuple[int | None, list]:
    """Rank of the stacked Jacobian at the inputs X (DPS digits): the number of singular values
    above ``hi * s_max``, provided none lies in ``(lo, hi] * s_max`` (else None: ambiguous).
    Singular values from the eigenvalues of J^T J (exact at DPS digits for these sizes)."""
    J = []
    for x in X:
        J += jacobian_mp(net, [float(v) for v in x])
    P = len(J[0])
    with MP.workdps(DPS):
        G = MP.matrix(P, P)
        for a in range(P):
            for b in range(a, P):
                s = MP.fsum(row[a] * row[b] for row in J)
                G[a, b] = s
                G[b, a] = s
        ev = MP.eigsy(G, eigvals_only=True)
    ev = sorted([max(MP.mpf(0), e) for e in ev], reverse=True)
    sv = [MP.sqrt(e) for e in ev]
    smax = sv[0] if sv else MP.mpf(0)
    if smax == 0:
        return 0, sv
    r_hi = sum(1 for s in sv if s > hi * smax)
    r_lo = sum(1 for s in sv if s > lo * smax)
    return (r_hi if r_hi == r_lo else None), sv


# ---------------------------------------------------------------------------------- equivariance
def equivariance_residual(net: Net, gin: list, gout: list, pts: list,
                          with_scale: bool = False) -> Any:
    """max over generators and points of |f(g x) - g f(x)| at DPS digits (and, with
    ``with_scale``, max(1, max |g f(x)|))."""
    worst = MP.mpf(0)
    mag = MP.mpf(1)
    for P, Q in zip(gin, gout):
        Pm, Qm = mat(P), mat(Q)
        for x in pts:
            xm = [mpf(v) for v in x]
            lhs = forward_mp(net, matvec(Pm, xm))
            rhs = matvec(Qm, forward_mp(net, xm))
            worst = max([worst] + [abs(a - b) for a, b in zip(lhs, rhs)])
            mag = max([mag] + [abs(a) for a in rhs])
    return (worst, mag) if with_scale else worst


def layer_equivariance_residual(net: Net, i: int, P: Any, Q: Any, pts: list) -> Any:
    """max |f_i(P x) - Q f_i(x)| over sample x in V_{i-1} (DPS digits)."""
    Pm, Qm = mat(P), mat(Q)
    worst = MP.mpf(0)
    for x in pts:
        xm = [mpf(v) for v in x]
        lhs = layer_mp(net, i, matvec(Pm, xm))
        rhs = matvec(Qm, layer_mp(net, i, xm))
        worst = max([worst] + [abs(a - b) for a, b in zip(lhs, rhs)])
    return worst


# ---------------------------------------------------------------------------------- polynomials
def polynomial_function(net: Net) -> list:
    """The exact end-to-end polynomial(s) of a network with identity / power activations (sympy
    Poly over QQ in x1..x_{d0}); used to certify equal functions of non-K-related parameters."""
    d0 = net.widths[0]
    xs = sp.symbols(f"x1:{d0 + 1}")
    h = [sp.Poly(x, *xs, domain="QQ") for x in xs]
    L = net.depth
    for i in range(L):
        W, b = net.Ws[i], net.bs[i]
        z = []
        for row, bb in zip(W, b):
            acc = sp.Poly(sp.Rational(bb), *xs, domain="QQ")
            for w, v in zip(row, h):
                acc = acc + v * sp.Rational(w)
            z.append(acc)
        if i < L - 1:
            fam, arg = parse(net.acts[i])
            m = 1 if fam == "identity" else int(arg)
            z = [p ** m for p in z]
        h = z
    return h


def counterexample_residual_fn(net1: Net, net2: Net, x: list, output: int | None = None) -> Any:
    """|f(x; net1) - f(x; net2)| at DPS digits (max over outputs, or the named one)."""
    y1, y2 = forward_mp(net1, x), forward_mp(net2, x)
    diffs = [abs(a - b) for a, b in zip(y1, y2)]
    return max(diffs) if output is None or not (0 <= output < len(diffs)) else diffs[output]
