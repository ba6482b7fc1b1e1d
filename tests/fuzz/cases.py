"""Seeded case generators for the differential fuzz suite (one per decision procedure).

A case is reproducible from ``(seed, procedure, index)``: :func:`make_case` seeds
``numpy.random.default_rng([seed, crc32(procedure), index])``. Each case carries

* ``call()``: the library call under test (returns a Verdict or a result object);
* ``judge(result) -> Judgement``: the classification against the oracle (:mod:`.oracle`),
  which never calls the library's decision code;
* ``bad_arg``: for an invalid input, the argument a ``ValueError`` must name (then any
  returned verdict is a failure, ``bad_arg_accepted``);
* ``may_raise``: argument names about which a documented error is acceptable (e.g. a
  singular ``A``).

Generators produce "yes" cases (planted: ``theta2 = k . theta`` for a random k in K, planted
equivariant networks, constructed non-identifiable parameters with the same function) and "no"
cases (one entry perturbed, two entries of different rows swapped, a non-member matrix applied),
in exact (small rationals) and float variants, disguised-zero variants for the exact-zero
boundary, and bad-argument variants (NaN / negative / infinite tol, n_samples 0 / -1).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from . import oracle as O

MP = O.MP

# ---------------------------------------------------------------------------------- records
STATUSES = ("proved", "refuted", "checked", "undecided")
FAILURES = ("false_proved", "false_refuted", "false_checked", "wrong_result",
            "unclear_exception", "bad_arg_accepted", "rejected_valid")


@dataclass
class Judgement:
    status: str                 # proved / refuted / checked / undecided (or "result")
    failure: str | None = None  # one of FAILURES, or None
    note: str = ""
    truth: Any = None


@dataclass
class Case:
    proc: str
    index: int
    variant: str
    call: Callable[[], Any]
    judge: Callable[[Any], Judgement]
    bad_arg: str | None = None
    may_raise: tuple = ()
    desc: str = ""
    params: tuple = ()          # argument names of the called function (error messages)
    meta: dict = field(default_factory=dict)


def _idf():
    import identifiable as idf

    return idf


# ---------------------------------------------------------------------------------- helpers
ACTS_ALL = ["identity", "relu", "leaky_relu:1/5", "leaky_relu:2", "leaky_relu:-1/2",
            "leaky_relu:-1", "leaky_relu:1", "tanh", "sigmoid", "gelu", "softplus", "power:2",
            "power:3", "power:1"]
ACTS_CHEAP = ["identity", "relu", "leaky_relu:1/5", "tanh", "power:2", "power:3", "sigmoid",
              "softplus", "gelu"]
BAD_TOLS = [float("nan"), -1.0, float("inf"), -1e-12]
BAD_NS = [0, -1]


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def rat(rng: np.random.Generator, lo: int = 1, hi: int = 6, qmax: int = 4,
        nonzero: bool = True) -> sp.Rational:
    p = int(rng.integers(lo, hi + 1)) * int(rng.choice([-1, 1]))
    if not nonzero and rng.random() < 0.1:
        p = 0
    return sp.Rational(p, int(rng.integers(1, qmax + 1)))


def rand_net_data(rng, widths: list[int], exact: bool, bias: bool = True):
    Ws, bs = [], []
    for i in range(len(widths) - 1):
        r, c = widths[i + 1], widths[i]
        if exact:
            Ws.append(sp.Matrix(r, c, lambda *_: rat(rng)))
            bs.append(sp.Matrix(r, 1, lambda *_: rat(rng)) if bias else sp.zeros(r, 1))
        else:
            Ws.append(rng.standard_normal((r, c)) / math.sqrt(c) * 1.5)
            bs.append(rng.standard_normal(r) * 0.5 if bias else np.zeros(r))
    return Ws, bs


def to_lib(model, Ws, bs):
    """Library parameter from the generator's matrices (exact sympy or float numpy)."""
    if isinstance(Ws[0], sp.MatrixBase):
        return model.params([sp.Matrix(W) for W in Ws],
                            [sp.Matrix(b) for b in bs] if model.bias else None)
    return model.params([np.asarray(W, float) for W in Ws],
                        [np.asarray(b, float).reshape(-1) for b in bs] if model.bias else None)


def net_of(acts, Ws, bs) -> O.Net:
    exact = isinstance(Ws[0], sp.MatrixBase)
    if exact:
        return O.Net(list(acts), [[[W[i, j] for j in range(W.shape[1])] for i in range(W.shape[0])]
                                  for W in Ws], [list(b) for b in bs], True)
    return O.Net(list(acts), [np.asarray(W, float).tolist() for W in Ws],
                 [np.asarray(b, float).reshape(-1).tolist() for b in bs], False)


def rand_scaling(rng, G: O.Group, exact: bool):
    S = G.S
    if S == "one":
        return sp.Integer(1) if exact else 1.0
    if S == "sign":
        s = int(rng.choice([-1, 1]))
        return sp.Integer(s) if exact else float(s)
    if exact:
        a = pick(rng, [sp.Rational(1, 2), sp.Integer(2), sp.Integer(3), sp.Rational(1, 3),
                       sp.Rational(3, 2), sp.Integer(1), sp.Rational(2, 3)])
    else:
        a = float(np.exp(rng.uniform(-1, 1)))
    if S == "nonzero" and rng.random() < 0.5:
        a = -a
    return a


def rand_k(rng, name: str, d: int, exact: bool):
    """A random element of K (the known intertwiner group of ``name`` on R^d) and its partner."""
    G = O.group_of(name)
    if G.kind == "gl":
        while True:
            if exact:
                A = sp.Matrix(d, d, lambda *_: sp.Rational(int(rng.integers(-3, 4)),
                                                            int(rng.integers(1, 3))))
                if A.det() != 0:
                    return A, A
            else:
                A = rng.standard_normal((d, d))
                if np.linalg.cond(A) < 50:
                    return A, A.copy()
    perm = rng.permutation(d)
    A = sp.zeros(d, d) if exact else np.zeros((d, d))
    B = sp.zeros(d, d) if exact else np.zeros((d, d))
    for i, j in enumerate(perm):
        a = rand_scaling(rng, G, exact)
        A[i, int(j)] = a
        B[i, int(j)] = G.c(a) if exact else float(G.c(a))
    return A, B


def exact_transform(acts, Ws, bs, ks):
    """k . theta (generator side; exact sympy or float numpy), own formula."""
    L = len(Ws)
    exact = isinstance(Ws[0], sp.MatrixBase)
    outW, outb = [], []
    Binv = None
    for i in range(L):
        W, b = Ws[i], bs[i]
        if Binv is not None:
            W = W * Binv if exact else W @ Binv
        if i < L - 1:
            A, B = ks[i]
            W, b = (A * W, A * b) if exact else (A @ W, A @ b)
            Binv = B.inv() if exact else np.linalg.inv(B)
        outW.append(W)
        outb.append(b)
    return outW, outb


def perturb(rng, Ws, bs, exact: bool, layer: int | None = None):
    Ws = [W.copy() for W in Ws]
    bs = [b.copy() for b in bs]
    i = int(rng.integers(len(Ws))) if layer is None else layer
    if rng.random() < 0.75 or not np.size(bs[i]):
        r, c = int(rng.integers(Ws[i].shape[0])), int(rng.integers(Ws[i].shape[1]))
        Ws[i][r, c] = Ws[i][r, c] + (rat(rng, 1, 3, 2) if exact else
                                     float(rng.choice([-1, 1]) * rng.uniform(0.05, 1.0)))
    else:
        r = int(rng.integers(bs[i].shape[0]))
        bs[i][r] = bs[i][r] + (rat(rng, 1, 3, 2) if exact else
                               float(rng.choice([-1, 1]) * rng.uniform(0.05, 1.0)))
    return Ws, bs


def swap_rows(rng, Ws, bs):
    """Swap two entries of different rows of a hidden layer's W (None if not possible)."""
    Ws = [W.copy() for W in Ws]
    cands = [i for i in range(len(Ws) - 1) if Ws[i].shape[0] >= 2]
    if not cands:
        return None
    i = pick(rng, cands)
    r1, r2 = rng.choice(Ws[i].shape[0], 2, replace=False)
    c1, c2 = int(rng.integers(Ws[i].shape[1])), int(rng.integers(Ws[i].shape[1]))
    if Ws[i][r1, c1] == Ws[i][r2, c2]:
        return None
    Ws[i][r1, c1], Ws[i][r2, c2] = Ws[i][r2, c2], Ws[i][r1, c1]
    return Ws, bs


def nonmember(rng, name: str, d: int, exact: bool):
    """A matrix that is not in K, with the 'naive' partner a user would guess."""
    G = O.group_of(name)
    choice = rng.random()
    if G.kind == "gl":
        A, _ = rand_k(rng, name, d, exact)
        return A, A  # only singular matrices are excluded; use a wrong partner elsewhere
    if d >= 2 and choice < 0.4:  # a dense row
        A, B = rand_k(rng, name, d, exact)
        i = int(rng.integers(d))
        j = [c for c in range(d) if (A[i, c] == 0)][0]
        A = A.copy()
        A[i, j] = sp.Rational(1, 2) if exact else 0.5
        return A, B
    A, B = rand_k(rng, name, d, exact)
    A, B = A.copy(), B.copy()
    i = int(rng.integers(d))
    j = [c for c in range(d) if A[i, c] != 0][0]
    bad = {"one": 2, "sign": 2, "pos": -2, "nonzero": None}[G.S]
    if bad is None:  # every non-zero scaling is allowed: break the partner instead
        B[i, j] = B[i, j] * 2
        return A, B
    A[i, j] = sp.Integer(bad) if exact else float(bad)
    B[i, j] = sp.Integer(bad) if exact else float(bad)
    return A, B


def sym(M):
    return sp.Matrix(M)


def short(obj, limit=160) -> str:
    t = " ".join(repr(obj).split())
    return t if len(t) <= limit else t[:limit - 3] + "..."


def mat_repr(M) -> str:
    if isinstance(M, sp.MatrixBase):
        return str(M.tolist())
    return np.array2string(np.asarray(M), precision=17, separator=",").replace("\n", "")


def theta_repr(model, Ws, bs) -> str:
    return (f"m = idf.MLP({model.widths}, {model.activations[0].name!r}"
            f"{'' if model.bias else ', bias=False'}); th = m.params("
            f"[{', '.join(mat_repr(W) for W in Ws)}], "
            f"[{', '.join(_vec_repr(b) for b in bs)}])")


def _vec_repr(b) -> str:
    return mat_repr(sp.Matrix(b).T if isinstance(b, sp.MatrixBase) else b)


def _kw(kw: dict) -> str:
    return "".join(f", {k}={v!r}" for k, v in kw.items())


def status_of(v) -> str:
    return getattr(v, "status", "result")


def cex_x(cex) -> list | None:
    if isinstance(cex, dict):
        x = cex.get("x")
        if x is None and "point" in cex:
            x = list(cex["point"].values())
        return x
    return None


def to_frac_list(x) -> list:
    out = []
    for v in x:
        if isinstance(v, sp.Basic):
            out.append(v)
        else:
            out.append(float(v))
    return out


def float_gap(v_tol, scale) -> Any:
    t = O.mpf(v_tol) if v_tol is not None else O.mpf(1e-9) * scale
    return t


# ---------------------------------------------------------------------------------- procedures
def gen_check_intertwiner(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_ALL)
    d = int(rng.integers(1, 4))
    exact = rng.random() < 0.35
    r = rng.random()
    tol = None
    bad = None
    if r < 0.4:
        variant = "yes"
        A, B = rand_k(rng, name, d, exact)
    elif r < 0.6:
        variant = "no-A"
        A, B = nonmember(rng, name, d, exact)
        if O.group_of(name).kind == "gl":
            B = B.copy()
            B[0, 0] = B[0, 0] + (1 if exact else 0.5)
    elif r < 0.78:
        variant = "no-B"
        A, B = rand_k(rng, name, d, exact)
        B = B.copy()
        i, j = int(rng.integers(d)), int(rng.integers(d))
        B[i, j] = B[i, j] + (sp.Rational(1, 2) if exact else 0.25)
    elif r < 0.88:
        variant = "singular"
        A, B = rand_k(rng, name, d, exact)
        A = A.copy()
        if d == 1 or rng.random() < 0.5:
            A[int(rng.integers(d)), :] = (sp.zeros(1, d) if exact else np.zeros(d))
        else:
            A[1, :] = A[0, :]
        bad = "A"
    else:
        variant = "badtol"
        A, B = rand_k(rng, name, d, False)
        exact = False
        tol = pick(rng, BAD_TOLS)
        bad = "tol"
    if not exact and bad is None and rng.random() < 0.2:
        tol = float(pick(rng, [1e-6, 1e-8, 1e-3]))
    Ai = sym(A) if exact else np.asarray(A, float)
    Bi = sym(B) if exact else np.asarray(B, float)
    kw = {} if tol is None else {"tol": tol}

    def call():
        return idf.check_intertwiner(name, Ai, Bi, **kw)

    def judge(v):
        return judge_intertwiner(name, Ai, Bi, v, exact, rng_seed=idx)

    desc = (f"idf.check_intertwiner({name!r}, {mat_repr(Ai)}, {mat_repr(Bi)}"
            f"{'' if tol is None else f', tol={tol!r}'})")
    return Case("check_intertwiner", idx, f"{'exact' if exact else 'float'}-{variant}", call,
                judge, bad_arg=bad, desc=desc, params=("act", "A", "B", "tol"))


def judge_intertwiner(name, A, B, v, exact, rng_seed=0, disguised=False):
    st = status_of(v)
    Am, Bm = O.mat(A), O.mat(B)
    if O.singular(Am):
        return Judgement(st, "bad_arg_accepted" if st != "undecided" else None,
                         "A is singular: a ValueError naming A is expected", truth=None)
    scale = max([O.mpf(1)] + [abs(x) for r in Am for x in r])
    if exact:
        truth = O.intertwines(name, Am, Bm)
    else:
        t_yes = O.intertwines(name, Am, Bm, tol=O.mpf(1e-7) * scale)
        t_no = O.intertwines(name, Am, Bm, tol=O.mpf(1e-2) * scale)
        truth = t_yes if t_yes == t_no else None
    # oracle self-consistency: dense 50-digit sampling agrees with the known group
    pts = O.structured_points(len(Am), np.random.default_rng(rng_seed), 12)
    res = O.intertwining_residual(name, Am, Bm, pts)
    if truth is True and res > (O.ZERO * 1e10 if exact else O.mpf(1e-8) * scale ** 4):
        return Judgement(st, "wrong_result", f"ORACLE INCONSISTENT: group says yes, sampled "
                         f"residual {float(res):.3g}", truth)
    if st == "proved":
        if truth is False:
            return Judgement(st, "false_proved", "sigma(Ax) != B sigma(x) by the known group "
                             f"(sampled residual {float(res):.3g})", truth)
    elif st == "checked":
        if truth is False and res > 10 * O.mpf(v.tol if v.tol is not None else 1e-9):
            return Judgement(st, "false_checked", f"statement false; sampled residual "
                             f"{float(res):.3g} > 10 x tol {v.tol}", truth)
    elif st == "refuted":
        if truth is True:
            return Judgement(st, "false_refuted", "statement holds by the known group", truth)
        x = cex_x(v.counterexample)
        if x is None:
            return Judgement(st, "false_refuted", "refuted without an input x", truth)
        r = O.intertwining_residual(name, Am, Bm, [to_frac_list(x)])
        thr = O.ZERO if exact else O.mpf(v.tol if v.tol is not None else 1e-12)
        if r <= thr:
            return Judgement(st, "false_refuted", f"counterexample x={short(x)} has residual "
                             f"{float(r):.3g} <= {float(thr):.3g} at 50 digits", truth)
    return Judgement(st, None, "", truth)


def gen_membership(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_ALL)
    d = int(rng.integers(1, 5))
    exact = rng.random() < 0.4
    r = rng.random()
    bad, tol = None, None
    if r < 0.45:
        variant = "member"
        A, _ = rand_k(rng, name, d, exact)
    elif r < 0.8:
        variant = "nonmember"
        A, _ = nonmember(rng, name, d, exact)
        if O.group_of(name).kind == "gl":
            A = A.copy()
            A[int(rng.integers(d)), :] = sp.zeros(1, d) if exact else np.zeros(d)
    elif r < 0.9:
        variant = "near"  # float member with a 1e-3 off-support entry
        A, _ = rand_k(rng, name, d, False)
        exact = False
        if O.group_of(name).kind == "gl":
            pass
        elif d >= 2:
            i = int(rng.integers(d))
            j = [c for c in range(d) if A[i, c] == 0][0]
            A[i, j] = 1e-3
        else:
            A = A * 0.0 + 1e-3 * (O.group_of(name).kind != "gl")
    else:
        variant = "badtol"
        A, _ = rand_k(rng, name, d, False)
        exact = False
        tol = pick(rng, BAD_TOLS)
        bad = "tol"
    Ai = sym(A) if exact else np.asarray(A, float)
    use_contains = rng.random() < 0.3
    kw = {} if tol is None else {"tol": tol}

    def call():
        K = idf.activations.get(name).intertwiner_group(d)
        if use_contains:
            return ("contains", K.contains(Ai, **kw))
        return K.membership(Ai, **kw)

    def judge(v):
        return judge_membership(name, Ai, v, exact)

    desc = (f"idf.activations.get({name!r}).intertwiner_group({d})."
            f"{'contains' if use_contains else 'membership'}({mat_repr(Ai)}"
            f"{'' if tol is None else f', tol={tol!r}'})")
    return Case("membership", idx, f"{'exact' if exact else 'float'}-{variant}"
                f"{'-contains' if use_contains else ''}", call, judge, bad_arg=bad, desc=desc,
                params=("A", "tol"))


def judge_membership(name, A, v, exact):
    if isinstance(v, tuple) and v and v[0] == "contains":
        st = ("proved" if exact else "checked") if v[1] else "refuted"
    else:
        st = status_of(v)
    Am = O.mat(A)
    scale = max([O.mpf(1)] + [abs(x) for r in Am for x in r])
    if exact:
        truth = O.in_group(name, Am)
    else:
        t1 = O.in_group(name, Am, O.mpf(1e-7) * scale)
        t2 = O.in_group(name, Am, O.mpf(1e-4) * scale)
        truth = t1 if t1 == t2 else None
    if st in ("proved", "checked") and truth is False:
        return Judgement(st, "false_" + st, "A is not in K (known group, 60 digits)", truth)
    if st == "refuted" and truth is True:
        return Judgement(st, "false_refuted", "A is in K (known group, 60 digits)", truth)
    return Judgement(st, None, "", truth)


def _arch(rng, max_width=4, max_depth=3, d0max=3):
    L = int(rng.integers(2, max_depth + 1))
    widths = [int(rng.integers(1, d0max + 1))] + [int(rng.integers(1, max_width + 1))
                                                  for _ in range(L - 1)] + \
        [int(rng.integers(1, 3))]
    return widths


def gen_align(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_ALL)
    widths = _arch(rng)
    exact = rng.random() < 0.3
    bias = rng.random() < 0.9
    model = idf.MLP(widths, name, bias=bias)
    acts = [name] * (len(widths) - 2)
    Ws, bs = rand_net_data(rng, widths, exact, bias)
    r = rng.random()
    if r < 0.12 and max(widths[1:-1]) >= 2:  # ties: duplicate rows up to an allowed scaling
        i = pick(rng, [j for j in range(len(widths) - 2) if widths[j + 1] >= 2])
        a = rand_scaling(rng, O.group_of(name), exact)
        Ws[i][1, :] = Ws[i][0, :] * a
        bs[i][1] = bs[i][0] * a
    ks = [rand_k(rng, name, w, exact) for w in widths[1:-1]]
    W2, b2 = exact_transform(acts, Ws, bs, ks)
    r = rng.random()
    bad, tol = None, None
    if r < 0.45:
        variant = "planted"
    elif r < 0.7:
        variant = "perturb"
        W2, b2 = perturb(rng, W2, b2, exact)
        if not bias:
            b2 = [b * 0 for b in b2]
    elif r < 0.82:
        variant = "swap"
        out = swap_rows(rng, W2, b2)
        if out is None:
            variant = "planted"
        else:
            W2, b2 = out
    elif r < 0.93:
        variant = "nonmember"
        i = int(rng.integers(len(widths) - 2))
        ks2 = list(ks)
        A, B = nonmember(rng, name, widths[i + 1], exact)
        if O.group_of(name).kind == "gl":
            variant = "planted"
        else:
            ks2[i] = (A, B if not (exact and B.det() == 0) else A)
            try:
                W2, b2 = exact_transform(acts, Ws, bs, ks2)
            except Exception:
                variant = "planted"
    else:
        variant = "badtol"
        if exact:
            Ws = [np.array(W.tolist(), float) for W in Ws]
            bs = [np.array(b.tolist(), float).reshape(-1) for b in bs]
            W2 = [np.array(W.tolist(), float) for W in W2]
            b2 = [np.array(b.tolist(), float).reshape(-1) for b in b2]
            exact = False
        tol, bad = pick(rng, BAD_TOLS), "tol"
    if not exact and bad is None and rng.random() < 0.15:
        tol = float(pick(rng, [1e-6, 1e-3]))
    th = to_lib(model, Ws, bs)
    th2 = to_lib(model, W2, b2)
    kw = {} if tol is None else {"tol": tol}

    def call():
        return idf.align(model, th, th2, **kw)

    def judge(v):
        n1, n2 = O.net_from_theta(acts, th), O.net_from_theta(acts, th2)
        return judge_align(n1, n2, v, exact)

    desc = (f"{theta_repr(model, Ws, bs)}; th2 = m.params([{', '.join(mat_repr(W) for W in W2)}],"
            f" [{', '.join(mat_repr(sp.Matrix(b).T if exact else b) for b in b2)}]); "
            f"idf.align(m, th, th2{'' if tol is None else f', tol={tol!r}'})")
    return Case("align", idx, f"{'exact' if exact else 'float'}-{variant}", call, judge,
                bad_arg=bad, desc=desc, params=("model", "theta", "theta2", "tol"))


def judge_align(n1, n2, v, exact):
    st = status_of(v)
    if exact:
        truth, _ = O.brute_align(n1, n2)
    else:
        scale = O.param_scale(n1, n2)
        vt = O.mpf(v.tol) if getattr(v, "tol", None) is not None else O.mpf(1e-9) * scale
        if st in ("proved", "checked"):
            truth, _ = O.brute_align(n1, n2, tol=2 * vt + O.mpf(1e-12) * scale)
        elif st == "refuted":
            truth, _ = O.brute_align(n1, n2, tol=vt / 2)
        else:
            truth = None
    if st in ("proved", "checked"):
        if truth is False:
            return Judgement(st, "false_" + st, "no k in K maps theta to theta2 (brute force)",
                             truth)
        tol = None if exact else 2 * vt
        if not isinstance(v.witness, (list, tuple)) or not O.verify_witness(
                n1, n2, list(v.witness), tol):
            return Judgement(st, "false_" + st, "the witness k is not in K or k . theta != "
                             "theta2", truth)
    if st == "refuted" and truth is True:
        return Judgement(st, "false_refuted", "theta2 = k . theta for a k found by brute force",
                         truth)
    return Judgement(st, None, "", truth)


# ---------------------------------------------------------------------------------- same function
def constructed_pair(rng, exact: bool, kind: str | None = None):
    """Parameters with the same function that are NOT related by K (non-identifiable), with the
    second one and a label. Kinds: power (case 1 family), sigmoid flip, relu bypass, linear
    translation, tanh clones, tanh constant neuron, half-dead neuron."""
    kind = kind or pick(rng, ["power", "power", "power", "sigmoid", "relu", "linear", "clones",
                              "constant", "halfdead"])
    d0 = int(rng.integers(1, 4))
    dL = int(rng.integers(1, 3))
    extra = int(rng.integers(0, 3))
    R = lambda: rat(rng)  # noqa: E731
    if kind == "power":
        m = int(pick(rng, [2, 3]))
        name = f"power:{m}"
        w = [R() for _ in range(d0)]
        b1, b2 = rat(rng, 1, 4, 2), rat(rng, 1, 4, 2)
        while b2 == b1:
            b2 = b1 + 1
        rows = [w, w]
        bias = [b1, b2]
        cs = [R() for _ in range(dL)]
        if m == 3:
            C = [[c, -c] for c in cs]
        else:
            C = [[c, R()] for c in cs]
        b0 = [R() if rng.random() < 0.5 else sp.Integer(0) for _ in range(dL)]
        # new biases: m = 3 keeps b1' + b2' = b1 + b2; m = 2 any distinct pair
        b1n = b1 + pick(rng, [1, 2, -1, sp.Rational(1, 2)])
        b2n = (b1 + b2 - b1n) if m == 3 else b2 + pick(rng, [1, -2, sp.Rational(3, 2)])
        if b2n == b1n or {b1n, b2n} == {b1, b2}:
            b2n = b1n + 5
            if m == 3:
                return constructed_pair(rng, exact, kind)
        # solve c1', c2', b0' per output: sum_j c_j (t + b_j)^m + b0 = sum c'_j (t + b'_j)^m + b0'
        t = sp.Symbol("t")
        Cn, b0n = [], []
        for o in range(dL):
            c1p, c2p, b0p = sp.symbols("c1p c2p b0p")
            lhs = sp.expand(C[o][0] * (t + b1) ** m + C[o][1] * (t + b2) ** m + b0[o])
            rhs = sp.expand(c1p * (t + b1n) ** m + c2p * (t + b2n) ** m + b0p)
            sol = sp.solve(sp.Poly(lhs - rhs, t).all_coeffs(), [c1p, c2p, b0p], dict=True)
            if not sol:
                return constructed_pair(rng, exact, kind)
            Cn.append([sol[0][c1p], sol[0][c2p]])
            b0n.append(sol[0][b0p])
        # extra generic neurons
        for _ in range(extra):
            rows.append([R() for _ in range(d0)])
            bias.append(R())
        Cx = [[R() for _ in range(extra)] for _ in range(dL)]
        W1 = sp.Matrix(rows)
        b1v = sp.Matrix(bias)
        W1n = W1.copy()
        b1vn = b1v.copy()
        b1vn[0], b1vn[1] = b1n, b2n
        W2 = sp.Matrix([C[o] + Cx[o] for o in range(dL)])
        W2n = sp.Matrix([Cn[o] + Cx[o] for o in range(dL)])
        Ws, bs = [W1, W2], [b1v, sp.Matrix(b0)]
        Ws2, bs2 = [W1n, W2n], [b1vn, sp.Matrix(b0n)]
        widths = [d0, 2 + extra, dL]
    elif kind == "sigmoid":
        name = "sigmoid"
        widths = [d0, int(rng.integers(1, 4)), dL]
        Ws, bs = rand_net_data(rng, widths, True)
        Ws2 = [W.copy() for W in Ws]
        bs2 = [b.copy() for b in bs]
        j = int(rng.integers(widths[1]))
        Ws2[0][j, :] = -Ws2[0][j, :]
        bs2[0][j] = -bs2[0][j]
        bs2[1] = bs2[1] + Ws2[1][:, j]
        Ws2[1][:, j] = -Ws2[1][:, j]
    elif kind == "relu":
        name = "relu"
        w = [R() for _ in range(d0)]
        c = [R() for _ in range(dL)]
        beta = rat(rng, 1, 3, 2)
        rows = [w, [-x for x in w]]
        bias = [sp.Integer(0), sp.Integer(0)]
        bias2 = [beta, -beta]
        for _ in range(extra):
            rows.append([R() for _ in range(d0)])
            bias.append(R())
            bias2.append(bias[-1])
        Cx = [[R() for _ in range(extra)] for _ in range(dL)]
        b0 = [R() for _ in range(dL)]
        W1 = sp.Matrix(rows)
        W2 = sp.Matrix([[c[o], -c[o]] + Cx[o] for o in range(dL)])
        Ws, bs = [W1, W2], [sp.Matrix(bias), sp.Matrix(b0)]
        Ws2 = [W1, W2]
        bs2 = [sp.Matrix(bias2), sp.Matrix([b0[o] - c[o] * beta for o in range(dL)])]
        widths = [d0, 2 + extra, dL]
    elif kind == "linear":
        name = "identity"
        widths = [d0, int(rng.integers(1, 4)), dL]
        Ws, bs = rand_net_data(rng, widths, True)
        Ws2 = list(Ws)
        bs2 = [b.copy() for b in bs]
        tvec = sp.Matrix(widths[1], 1, lambda *_: rat(rng))
        bs2[0] = bs2[0] + tvec
        bs2[1] = bs2[1] - Ws[1] * tvec
    elif kind == "clones":
        name = "tanh"
        widths = [d0, int(rng.integers(2, 4)), dL]
        Ws, bs = rand_net_data(rng, widths, True)
        Ws[0][1, :] = Ws[0][0, :]
        bs[0][1] = bs[0][0]
        Ws2 = [W.copy() for W in Ws]
        bs2 = list(bs)
        tt = rat(rng)
        Ws2[1][:, 0] = Ws2[1][:, 0] + sp.Matrix([tt] * dL)
        Ws2[1][:, 1] = Ws2[1][:, 1] - sp.Matrix([tt] * dL)
    elif kind == "constant":
        # a constant neuron (zero incoming row): its value moves into the output bias
        name = pick(rng, ["tanh", "sigmoid", "softplus", "power:2"])
        widths = [d0, int(rng.integers(1, 4)), dL]
        Ws, bs = rand_net_data(rng, widths, True)
        Ws[0][0, :] = sp.zeros(1, d0)
        sig = {"tanh": sp.tanh, "sigmoid": lambda z: 1 / (1 + sp.exp(-z)),
               "softplus": lambda z: sp.log(1 + sp.exp(z)), "power:2": lambda z: z ** 2}[name]
        Ws2 = [W.copy() for W in Ws]
        bs2 = [b.copy() for b in bs]
        if name == "power:2":  # b -> b + 1 with the output bias compensating
            bs2[0][0] = bs[0][0] + 1
            bs2[1] = bs[1] + Ws[1][:, 0] * (sig(bs[0][0]) - sig(bs2[0][0]))
        else:  # zero the outgoing column, fold sigma(b) into the output bias
            Ws2[1][:, 0] = sp.zeros(dL, 1)
            bs2[1] = bs[1] + Ws[1][:, 0] * sig(bs[0][0])
    else:  # half-dead neuron: zero outgoing column, the incoming row is free
        name = pick(rng, ["tanh", "relu", "power:3", "sigmoid", "gelu"])
        widths = [d0, int(rng.integers(1, 4)), dL]
        Ws, bs = rand_net_data(rng, widths, True)
        Ws[1][:, 0] = sp.zeros(dL, 1)
        Ws2 = [W.copy() for W in Ws]
        bs2 = [b.copy() for b in bs]
        Ws2[0][0, :] = Ws2[0][0, :] + sp.Matrix([[rat(rng)] * d0])
    if not exact:
        def fl(M):
            return np.array(sp.Matrix(M).evalf(20).tolist(), dtype=float)
        Ws = [fl(W) for W in Ws]
        bs = [fl(b).reshape(-1) for b in bs]
        Ws2 = [fl(W) for W in Ws2]
        bs2 = [fl(b).reshape(-1) for b in bs2]
    return kind, name, widths, (Ws, bs), (Ws2, bs2)


def gen_same_function(rng, idx):
    idf = _idf()
    exact = rng.random() < 0.3
    r = rng.random()
    bad = None
    kw: dict = {}
    if r < 0.3:
        kind, name, widths, (Ws, bs), (W2, b2) = constructed_pair(rng, exact)
        variant = f"constructed-{kind}"
        # the constant-neuron construction for tanh/sigmoid/softplus has transcendental
        # entries: keep it numeric-exact (sympy) only for the exact variant
    else:
        name = pick(rng, ACTS_ALL)
        widths = _arch(rng)
        # exact transcendental nets with different functions hang sympy (see report); keep
        # them rare
        if exact and O.parse(name)[0] in ("tanh", "sigmoid", "gelu", "softplus") and \
                rng.random() < 0.9:
            name = pick(rng, ["power:2", "power:3", "identity", "relu", "leaky_relu:1/5"])
        Ws, bs = rand_net_data(rng, widths, exact)
        ks = [rand_k(rng, name, w, exact) for w in widths[1:-1]]
        W2, b2 = exact_transform([name] * (len(widths) - 2), Ws, bs, ks)
        if r < 0.6:
            variant = "planted"
        else:
            variant = "perturb"
            W2, b2 = perturb(rng, W2, b2, exact)
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    q = rng.random()
    if q < 0.08:
        kw["tol"], bad = pick(rng, BAD_TOLS), "tol"
    elif q < 0.12:
        kw["n_samples"], bad = pick(rng, BAD_NS), "n_samples"
    elif not exact and q < 0.2:
        kw["tol"] = float(pick(rng, [1e-6, 1e-3]))
    th = to_lib(model, Ws, bs)
    th2 = to_lib(model, W2, b2)
    if bad:
        variant = "badarg-" + bad

    def call():
        return idf.same_function(model, th, th2, **kw)

    def judge(v):
        n1, n2 = O.net_from_theta(acts, th), O.net_from_theta(acts, th2)
        return judge_same_function(n1, n2, v, exact, variant, idx)

    desc = (f"{theta_repr(model, Ws, bs)}; th2 = m.params([{', '.join(mat_repr(W) for W in W2)}]"
            f", [{', '.join(mat_repr(sp.Matrix(b).T if exact else b) for b in b2)}]); "
            f"idf.same_function(m, th, th2{''.join(f', {k}={v!r}' for k, v in kw.items())})")
    return Case("same_function", idx, f"{'exact' if exact else 'float'}-{variant}", call, judge,
                bad_arg=bad, desc=desc, params=("model", "theta", "theta2", "tol", "n_samples"))


def _ordinary_points(d0, rng, n=16):
    pts = O.sample_points(d0, n // 2, rng, 1.0) + O.sample_points(d0, n - n // 2, rng, 4.0)
    return pts


def judge_same_function(n1, n2, v, exact, variant, seed):
    st = status_of(v)
    rng = np.random.default_rng(seed)
    pts = _ordinary_points(n1.widths[0], rng)
    diff, mag = O.max_diff(n1, n2, pts, with_scale=True)
    if variant.startswith("constructed") or variant == "planted":
        # planted / constructed: equal functions by construction; self-check at 60 digits
        lim = O.mpf(10) ** -30 if exact else O.mpf(1e-9) * mag
        if diff > lim:
            return Judgement(st, "wrong_result", f"ORACLE/GENERATOR INCONSISTENT: constructed "
                             f"equal functions differ by {float(diff):.3g}", None)
        truth = True
    else:
        noise = O.mpf(10) ** -35 if exact else O.mpf(1e-6) * mag
        # equal at the sample points is no proof (ReLU nets can differ on a small region)
        truth = False if diff > noise else None
    vt = O.mpf(v.tol) if getattr(v, "tol", None) is not None else None
    if st == "proved" and truth is False:
        return Judgement(st, "false_proved", f"functions differ by {float(diff):.3g}", truth)
    if st == "checked" and truth is False:
        if diff > 100 * (vt if vt is not None else O.mpf(1e-9)):
            return Judgement(st, "false_checked", f"functions differ by {float(diff):.3g} on "
                             f"ordinary inputs, tol {v.tol}", truth)
    if st == "refuted":
        if truth is True and exact:
            return Judgement(st, "false_refuted", "the functions are equal (construction)", truth)
        cex = v.counterexample
        x = cex_x(cex)
        if x is None:
            return Judgement(st, "false_refuted", "refuted without an input x", truth)
        r = O.counterexample_residual_fn(n1, n2, to_frac_list(x))
        thr = O.ZERO if exact else (vt if vt is not None else O.mpf(1e-12))
        if r <= thr:
            return Judgement(st, "false_refuted", f"counterexample x={short(x)} gives "
                             f"|difference| {float(r):.3g} <= {float(thr):.3g} at 50 digits",
                             truth)
    return Judgement(st, None, "", truth)


# ---------------------------------------------------------------------------------- identifiability
def _sussmann_ok(net: O.Net) -> bool:
    """Own check of Sussmann's (1992) irreducibility for a one-hidden-layer tanh net."""
    Ws, bs = net.mp()
    W1, b1, W2 = Ws[0], bs[0], Ws[1]
    n = len(W1)
    for j in range(n):
        if all(O.is_zero(v) for v in W1[j]):
            return False
        if all(O.is_zero(W2[o][j]) for o in range(len(W2))):
            return False
    for j, k in itertools.combinations(range(n), 2):
        for s in (1, -1):
            if all(O.is_zero(a - s * b) for a, b in zip(W1[j] + [b1[j]], W1[k] + [b1[k]])):
                return False
    return True


def gen_identifiable(rng, idx, weak: bool = False):
    idf = _idf()
    from identifiable import identifiability as ident

    exact = rng.random() < 0.45
    r = rng.random()
    witness_pair = None
    if r < 0.6:
        kind, name, widths, (Ws, bs), (W2, b2) = constructed_pair(rng, exact)
        variant = f"constructed-{kind}"
        truth = False
        if kind in ("clones", "constant", "halfdead") and weak:
            truth = None  # weak identifiability of these is not known to the oracle
        witness_pair = (W2, b2)
    elif r < 0.85:
        name = "tanh"
        widths = [int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 3))]
        Ws, bs = rand_net_data(rng, widths, exact)
        variant = "generic-tanh-1hidden"
        truth = None  # decided in judge (Sussmann's hypotheses, own check)
    else:
        name = pick(rng, ACTS_ALL)
        widths = _arch(rng, 3, 3)
        Ws, bs = rand_net_data(rng, widths, exact)
        variant = "generic"
        truth = None
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)
    fn = idf.weakly_identifiable if weak else (getattr(idf, "is_identifiable", None)
                                               or ident.identifiable)

    def call():
        return fn(model, th)

    def judge(v):
        n1 = O.net_from_theta(acts, th)
        t = truth
        if variant == "generic-tanh-1hidden":
            t = True if _sussmann_ok(n1) else None
        if witness_pair is not None:  # self-check the construction (same function, not K)
            n2 = net_of(acts, *witness_pair)
            if witness_pair is not None and exact:
                if O.max_diff(n1, n2, _ordinary_points(n1.widths[0],
                                                       np.random.default_rng(idx), 6)) > 1e-30:
                    return Judgement(status_of(v), "wrong_result",
                                     "GENERATOR INCONSISTENT: constructed pair differs", None)
                ba, _ = O.brute_align(n1, n2)
                if ba is not False:
                    t = None
        return judge_identifiable(n1, v, t, exact)

    pname = "weakly_identifiable" if weak else "identifiable"
    fname = "weakly_identifiable" if weak else "identifiability.identifiable"
    desc = f"{theta_repr(model, Ws, bs)}; idf.{fname}(m, th)"
    return Case(pname, idx, f"{'exact' if exact else 'float'}-{variant}", call, judge, desc=desc,
                params=("model", "theta", "tol"))


def judge_identifiable(n1, v, truth, exact):
    st = status_of(v)
    if st in ("proved", "checked") and truth is False:
        return Judgement(st, "false_" + st, "a parameter with the same function that is not "
                         "k . theta exists (construction, verified by exact expansion / 60-digit "
                         "evaluation and brute-force alignment)", truth)
    if st == "refuted":
        if truth is True:
            return Judgement(st, "false_refuted", "identifiable by Sussmann (1992); own "
                             "hypothesis check", truth)
        cex = v.counterexample
        if isinstance(cex, dict) and "theta_prime" in cex:
            tp = cex["theta_prime"]
            try:
                n2 = O.net_from_theta(n1.acts, tp)
                pts = _ordinary_points(n1.widths[0], np.random.default_rng(7), 8)
                diff = O.max_diff(n1, n2, pts)
                lim = O.mpf(10) ** -30 if exact and tp.kind != "float" else O.mpf(1e-6) * \
                    O.param_scale(n1, n2) ** 3
                if diff > lim:
                    return Judgement(st, "false_refuted", f"witness theta_prime has a different "
                                     f"function (|diff| {float(diff):.3g})", truth)
                ba, _ = O.brute_align(n1, n2, tol=None if exact and tp.kind != "float"
                                      else O.mpf(1e-9) * O.param_scale(n1, n2))
                if ba is True:
                    return Judgement(st, "false_refuted", "witness theta_prime is k . theta",
                                     truth)
            except Exception as exc:  # noqa: BLE001 - the witness is malformed
                return Judgement(st, "false_refuted", f"witness unreadable: {exc!r}", truth)
    return Judgement(st, None, "", truth)


# ---------------------------------------------------------------------------------- equivariance
def _cyclic_elements(P: sp.Matrix) -> list:
    els = [sp.eye(P.shape[0])]
    M = P
    while M != sp.eye(P.shape[0]):
        els.append(M)
        M = M * P
    return els


def perm_matrix(perm) -> sp.Matrix:
    n = len(perm)
    M = sp.zeros(n, n)
    for i, j in enumerate(perm):
        M[j, i] = 1  # M e_i = e_perm[i]
    return M


def planted_equivariant(rng, name: str, n: int, hidden_copies: list[tuple[int, int]],
                        invariant: bool, scramble: bool = True):
    """Own construction: G cyclic, generated by a random non-trivial permutation of R^n; V_i
    carries ``c`` copies of the permutation representation plus ``t`` trivial ones
    (``hidden_copies[i] = (c, t)``); the output the permutation representation or the trivial
    one. Weights: Reynolds average of random rational matrices (exact). Then every hidden
    layer is scrambled by a random k_i in K (partner B_i acts on V_i)."""
    while True:
        perm = list(rng.permutation(n))
        if perm != list(range(n)):
            break
    P = perm_matrix(perm)
    els = _cyclic_elements(P)

    def rep(g, copies, triv):
        blocks = [g] * copies + [sp.eye(1)] * triv
        return sp.diag(*blocks)

    reps = [[g for g in els]]
    widths = [n]
    for c, t in hidden_copies:
        reps.append([rep(g, c, t) for g in els])
        widths.append(c * n + t)
    if invariant:
        reps.append([sp.eye(1) for _ in els])
        widths.append(1)
    else:
        reps.append([g for g in els])
        widths.append(n)
    Ws, bs = [], []
    for i in range(len(widths) - 1):
        W0 = sp.Matrix(widths[i + 1], widths[i], lambda *_: sp.Rational(int(rng.integers(-4, 5)),
                                                                          int(rng.integers(1, 3))))
        b0 = sp.Matrix(widths[i + 1], 1, lambda *_: sp.Rational(int(rng.integers(-3, 4)), 2))
        W = sp.zeros(*W0.shape)
        b = sp.zeros(*b0.shape)
        for j in range(len(els)):
            Pi, Po = reps[i][j], reps[i + 1][j]
            W += Po * W0 * Pi.T  # permutation matrices: inverse = transpose
            b += Po * b0
        Ws.append(W / len(els))
        bs.append(b / len(els))
    acts = [name] * (len(widths) - 2)
    if scramble:
        ks = [rand_k(rng, name, w, True) for w in widths[1:-1]]
        Ws, bs = exact_transform(acts, Ws, bs, ks)
    return widths, Ws, bs, [P], [reps[-1][1] if len(els) > 1 else reps[-1][0]]


def gen_is_equivariant(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_CHEAP + ["leaky_relu:-1", "power:1"])
    n = int(rng.integers(2, 4))
    hidden = [(int(rng.integers(0, 2)) + 1, int(rng.integers(0, 2)))
              for _ in range(int(rng.integers(1, 3)))]
    invariant = rng.random() < 0.4
    exact = rng.random() < 0.3
    if exact and O.parse(name)[0] in ("tanh", "sigmoid", "gelu", "softplus"):
        if rng.random() < 0.8:  # exact symbolic decisions of these hang (see timeouts): rare
            name = pick(rng, ["relu", "power:2", "power:3", "identity", "leaky_relu:1/5"])
        else:
            n, hidden = 2, [(1, 0)]
    widths, Ws, bs, gin, gout = planted_equivariant(rng, name, n, hidden, invariant)
    r = rng.random()
    variant = "planted"
    kw: dict = {}
    bad = None
    if r < 0.35:
        variant = "perturb"
        Ws, bs = perturb(rng, Ws, bs, True)
    elif r < 0.45 and not invariant:
        variant = "wrong-rep-out"
        gout = [sp.eye(n)]
    q = rng.random()
    if q < 0.07:
        kw["tol"], bad = pick(rng, BAD_TOLS), "tol"
    elif q < 0.11:
        kw["n_samples"], bad = pick(rng, BAD_NS), "n_samples"
    if bad:
        variant = "badarg-" + bad
    if not exact:
        Ws = [np.array(W.evalf(20).tolist(), float) for W in Ws]
        bs = [np.array(b.evalf(20).tolist(), float).reshape(-1) for b in bs]
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)
    rin = gin if exact or rng.random() < 0.5 else [np.array(g.tolist(), float) for g in gin]
    rout = gout if exact or rng.random() < 0.5 else [np.array(g.tolist(), float) for g in gout]

    def call():
        return idf.is_equivariant(model, th, rin, rout, **kw)

    def judge(v):
        n1 = O.net_from_theta(acts, th)
        return judge_equivariant(n1, gin, gout, v, exact, idx, planted=variant == "planted")

    desc = (f"{theta_repr(model, Ws, bs)}; idf.is_equivariant(m, th, [{mat_repr(gin[0])}], "
            f"[{mat_repr(gout[0])}]{''.join(f', {k}={v!r}' for k, v in kw.items())})")
    return Case("is_equivariant", idx, f"{'exact' if exact else 'float'}-{variant}", call, judge,
                bad_arg=bad, desc=desc,
                params=("model", "theta", "rep_in", "rep_out", "tol", "n_samples"))


def _gen_index(word, n):
    try:
        return int(str(word).lstrip("s"))
    except ValueError:
        return 0


def judge_equivariant(n1, gin, gout, v, exact, seed, planted=False):
    st = status_of(v)
    rng = np.random.default_rng(seed)
    pts = O.sample_points(n1.widths[0], 12, rng, 1.5)
    res, mag = O.equivariance_residual(n1, gin, gout, pts, with_scale=True)
    small = res <= (O.ZERO * 1e5 if exact else O.mpf(1e-9) * mag)
    if planted and not small:
        return Judgement(st, "wrong_result", f"GENERATOR INCONSISTENT: planted equivariant net "
                         f"has residual {float(res):.3g}")
    # sampled equality is no proof (ReLU); only the planted construction is known equivariant
    truth = True if planted else (False if res > (O.mpf(1e-8) if exact else
                                                  O.mpf(1e-5) * mag) else None)
    vt = O.mpf(v.tol) if getattr(v, "tol", None) is not None else O.mpf(1e-8)
    if st == "proved" and truth is False:
        return Judgement(st, "false_proved", f"f(gx) != g f(x): residual {float(res):.3g}", truth)
    if st == "checked" and truth is False and res > 100 * vt:
        return Judgement(st, "false_checked", f"f(gx) - g f(x) = {float(res):.3g} on ordinary "
                         f"inputs, tol {v.tol}", truth)
    if st == "refuted":
        if truth is True and exact:
            return Judgement(st, "false_refuted", "f is equivariant (60-digit sampling of a "
                             "planted construction)", truth)
        cex = v.counterexample
        x = cex_x(cex)
        if x is None:
            return Judgement(st, "false_refuted", "refuted without an input x", truth)
        j = _gen_index(cex.get("g", "s0"), len(gin))
        r = O.equivariance_residual(n1, [gin[j]], [gout[j]], [to_frac_list(x)])
        thr = O.ZERO if exact else vt
        if r <= thr:
            return Judgement(st, "false_refuted", f"counterexample x={short(x)} has residual "
                             f"{float(r):.3g} <= {float(thr):.3g} at 50 digits", truth)
    return Judgement(st, None, "", truth)


def gen_latent_actions(rng, idx):
    idf = _idf()
    exact = rng.random() < 0.3
    r = rng.random()
    kw: dict = {}
    if r < 0.12:
        # the reproducer's shape: tanh [4, 8, 8, 1], invariant under the mirror of 1 x 2 x 2
        # images (idf.groups.mirror(1, 2, 2) is the permutation [1, 0, 3, 2])
        name = "tanh"
        P = perm_matrix([1, 0, 3, 2])
        widths, Ws, bs, gin, gout = _planted_with(rng, name, P, [(2, 0), (2, 0)], True)
        exact = False
        noise = pick(rng, [0.0, 0.1, 0.1, 0.01])
        tol = pick(rng, [None, 2.0, 0.5, 1e-6])
        if tol is not None:
            kw["tol"] = tol
        variant = f"mirror-4-8-8-1-noise{noise}"
    else:
        name = pick(rng, ["tanh", "relu", "power:2", "power:3", "sigmoid", "leaky_relu:1/5",
                          "identity"])
        n = int(rng.integers(2, 4))
        hidden = [(1, int(rng.integers(0, 2))) for _ in range(int(rng.integers(1, 3)))]
        widths, Ws, bs, gin, gout = planted_equivariant(rng, name, n, hidden,
                                                        rng.random() < 0.5)
        noise = 0.0 if rng.random() < 0.6 else pick(rng, [1e-3, 0.1])
        variant = "planted" if noise == 0 else f"noise{noise}"
        if not exact and rng.random() < 0.3:
            kw["tol"] = pick(rng, [1e-6, 0.5, 2.0])
    if noise:
        exact = False
    if not exact:
        Ws = [np.array(sp.Matrix(W).evalf(20).tolist(), float) for W in Ws]
        bs = [np.array(sp.Matrix(b).evalf(20).tolist(), float).reshape(-1) for b in bs]
        if noise:
            Ws = [W + noise * rng.standard_normal(W.shape) for W in Ws]
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)
    rin = gin if exact else [np.array(g.tolist(), float) for g in gin]
    rout = gout if exact else [np.array(g.tolist(), float) for g in gout]

    def call():
        return idf.latent_actions(model, th, rin, rout, **kw)

    def judge(v):
        n1 = O.net_from_theta(acts, th)
        return judge_latent(n1, gin, gout, v, exact, idx, planted=noise == 0)

    desc = (f"{theta_repr(model, Ws, bs)}; idf.latent_actions(m, th, [{mat_repr(gin[0])}], "
            f"[{mat_repr(gout[0])}]{''.join(f', {k}={v!r}' for k, v in kw.items())})")
    return Case("latent_actions", idx, f"{'exact' if exact else 'float'}-{variant}"
                f"{'-tol' + str(kw['tol']) if 'tol' in kw else ''}", call, judge, desc=desc,
                params=("model", "theta", "rep_in", "rep_out", "tol", "n_samples"))


def _planted_with(rng, name, P, hidden_copies, invariant):
    n = P.shape[0]
    els = _cyclic_elements(P)

    def rep(g, c, t):
        return sp.diag(*([g] * c + [sp.eye(1)] * t))

    reps = [els]
    widths = [n]
    for c, t in hidden_copies:
        reps.append([rep(g, c, t) for g in els])
        widths.append(c * n + t)
    reps.append([sp.eye(1) for _ in els] if invariant else els)
    widths.append(1 if invariant else n)
    Ws, bs = [], []
    for i in range(len(widths) - 1):
        W0 = sp.Matrix(widths[i + 1], widths[i], lambda *_: sp.Rational(int(rng.integers(-4, 5)),
                                                                          int(rng.integers(1, 3))))
        b0 = sp.Matrix(widths[i + 1], 1, lambda *_: sp.Rational(int(rng.integers(-3, 4)), 2))
        W = sp.zeros(*W0.shape)
        b = sp.zeros(*b0.shape)
        for j in range(len(els)):
            W += reps[i + 1][j] * W0 * reps[i][j].T
            b += reps[i + 1][j] * b0
        Ws.append(W / len(els))
        bs.append(b / len(els))
    ks = [rand_k(rng, name, w, True) for w in widths[1:-1]]
    Ws, bs = exact_transform([name] * (len(widths) - 2), Ws, bs, ks)
    return widths, Ws, bs, [P], [reps[-1][1 % len(els)]]


def judge_latent(n1, gin, gout, v, exact, seed, planted=False):
    st = status_of(v)
    rng = np.random.default_rng(seed)
    vt = O.mpf(v.tol) if getattr(v, "tol", None) is not None else None
    if st in ("proved", "checked"):
        w = v.witness
        try:
            wm, wt = w["model"], w["theta"]
            acts = [a.name for a in wm.activations]
            n2 = O.net_from_theta(acts, wt)
            rhos = [list(r) for r in w["rho_generators"]]
        except Exception as exc:  # noqa: BLE001
            return Judgement(st, "false_" + st, f"witness unreadable: {exc!r}")
        lim = O.mpf(10) ** -30 if st == "proved" else (vt if vt is not None else O.mpf(1e-8)) \
            + O.mpf(1e-9)
        pts = O.sample_points(n1.widths[0], 16, rng, 1.5)
        diff = O.max_diff(n1, n2, pts)
        if diff > lim:
            return Judgement(st, "false_" + st, f"the witness parameter's function differs "
                             f"from theta's by {float(diff):.3g} > tol {float(lim):.3g}")
        L = n2.depth
        prev = gin
        for i in range(1, L + 1):
            nxt = gout if i == L else rhos[i - 1]
            lp = O.sample_points(n2.widths[i - 1], 6, rng, 1.5)
            for P, Q in zip(prev, nxt):
                res = O.layer_equivariance_residual(n2, i, P, Q, lp)
                lim2 = O.mpf(10) ** -30 if st == "proved" else 10 * (
                    vt if vt is not None else O.mpf(1e-8)) + O.mpf(1e-9)
                if res > lim2:
                    return Judgement(st, "false_" + st, f"layer {i} is not equivariant for the "
                                     f"returned rho (residual {float(res):.3g} > "
                                     f"{float(lim2):.3g})")
            prev = nxt
        return Judgement(st, None, "")
    if st == "refuted":
        pts = O.sample_points(n1.widths[0], 12, rng, 1.5)
        res, mag = O.equivariance_residual(n1, gin, gout, pts, with_scale=True)
        truth = True if planted else (False if res > O.mpf(1e-6) * mag else None)
        if truth is True and exact:
            return Judgement(st, "false_refuted", "f is equivariant (60-digit sampling)", truth)
        cex = v.counterexample
        x = cex_x(cex)
        if x is None:
            return Judgement(st, "false_refuted", "refuted without an input x", truth)
        j = _gen_index(cex.get("g", "s0"), len(gin))
        r = O.equivariance_residual(n1, [gin[j]], [gout[j]], [to_frac_list(x)])
        thr = O.ZERO if exact else (vt if vt is not None else O.mpf(1e-12))
        if r <= thr:
            return Judgement(st, "false_refuted", f"counterexample x={short(x)} has residual "
                             f"{float(r):.3g} at 50 digits", truth)
    return Judgement(st, None, "")


# ---------------------------------------------------------------------------------- reduce
def gen_reduce(rng, idx):
    idf = _idf()
    name = pick(rng, ["tanh", "relu", "power:2", "power:3", "sigmoid", "softplus", "gelu",
                      "leaky_relu:1/5", "identity", "leaky_relu:-1"])
    widths = _arch(rng, 4, 3)
    exact = rng.random() < 0.4
    Ws, bs = rand_net_data(rng, widths, exact)
    G = O.group_of(name)
    plants = []
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(len(widths) - 2))
        d = widths[i + 1]
        what = pick(rng, ["dup", "zero_row", "zero_col", "zero_both"])
        r = int(rng.integers(d))
        if what == "dup" and d >= 2:
            q = pick(rng, [c for c in range(d) if c != r])
            a = rand_scaling(rng, G, exact) if G.kind != "gl" else (sp.Integer(2) if exact else 2.0)
            Ws[i][r, :] = Ws[i][q, :] * a
            bs[i][r] = bs[i][q] * a
        elif what == "zero_row":
            Ws[i][r, :] = sp.zeros(1, widths[i]) if exact else 0.0
        elif what == "zero_col":
            Ws[i + 1][:, r] = sp.zeros(widths[i + 2], 1) if exact else 0.0
        else:
            Ws[i][r, :] = sp.zeros(1, widths[i]) if exact else 0.0
            bs[i][r] = 0
        plants.append(f"{what}@{i + 1}:{r}")
    kw: dict = {}
    bad = None
    if not exact and rng.random() < 0.08:
        kw["tol"], bad = pick(rng, BAD_TOLS), "tol"
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)

    def call():
        sub = idf.reduce(model, th, **kw)
        return ("reduce", sub, sub.check())

    def judge(res):
        return judge_reduce(model, acts, th, res, exact, idx)

    desc = f"{theta_repr(model, Ws, bs)}; s = idf.reduce(m, th{_kw(kw)}); s.check()"
    what = "+".join(p.split("@")[0] for p in plants)
    return Case("reduce", idx, f"{'exact' if exact else 'float'}-{what}"
                if not bad else "badarg-tol", call, judge, bad_arg=bad, desc=desc,
                params=("model", "theta", "tol"))


def judge_reduce(model, acts, th, res, exact, seed):
    _, sub, chk = res
    st = status_of(chk)
    rng = np.random.default_rng(seed)
    n1 = O.net_from_theta(acts, th)
    try:
        emb = sub.embed()
        n_emb = O.net_from_theta(acts, emb)
        sw = sub.model.widths
        n_sub = O.net_from_theta([a.name for a in sub.model.activations], sub.theta) \
            if all(w > 0 for w in sw) else None
    except Exception as exc:  # noqa: BLE001
        return Judgement(st, "wrong_result", f"submodel unreadable: {exc!r}")
    if sw[0] != model.widths[0] or sw[-1] != model.widths[-1] or any(
            a > b for a, b in zip(sw, model.widths)):
        return Judgement(st, "wrong_result", f"submodel widths {sw} vs {model.widths}")
    pts = O.sample_points(model.widths[0], 10, rng, 1.5)
    diff = O.max_diff(n1, n_emb, pts)
    scale = O.param_scale(n1)
    lim = O.mpf(10) ** -30 if exact else O.mpf(1e-6) * scale ** 3
    if diff > lim:
        return Judgement(st, "wrong_result", f"f(beta(theta~)) differs from f(theta) by "
                         f"{float(diff):.3g}")
    if n_sub is not None:
        diff2 = O.max_diff(n1, n_sub, pts)
        if diff2 > lim:
            return Judgement(st, "wrong_result", f"f(theta~) on the submodel differs from "
                             f"f(theta) by {float(diff2):.3g}")
        viol = O.essential_violation(n_sub, None if exact else O.mpf(1e-9) * scale)
        if viol:
            return Judgement(st, "wrong_result", f"reduced parameter not minimal: {viol}")
    if st in ("proved", "checked"):
        # own check of Definition 3.2's pieces: alpha* alpha = Id, A sigma(y) + c = sigma(B y)
        L = model.depth
        for i in range(1, L):
            if sw[i] == 0:
                continue
            A, Ast, B = O.mat(sub.A[i]), O.mat(sub.A_star[i]), O.mat(sub.B[i])
            prod = O.matmul(Ast, A)
            tol = O.ZERO if sub.exact else O.mpf(1e-8)
            if any(not O.is_zero(prod[a][b] - (1 if a == b else 0), tol)
                   for a in range(len(prod)) for b in range(len(prod))):
                return Judgement(st, "false_" + st, f"alpha*_{i} alpha_{i} != Id")
            ypts = O.sample_points(sw[i], 6, rng, 1.5)
            r = O.rectangular_intertwiner_residual(acts[i - 1], A, sub.offsets[i], B, ypts)
            if r > (O.mpf(10) ** -30 if sub.exact else O.mpf(1e-7)):
                return Judgement(st, "false_" + st, f"A_{i} sigma(y) + c_{i} != sigma(B_{i} y) "
                                 f"(residual {float(r):.3g})")
    return Judgement(st, None, "")


# ---------------------------------------------------------------------------------- functional dim
def gen_functional_dimension(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_ALL)
    L = int(rng.integers(2, 4))
    widths = [int(rng.integers(1, 4))] + [int(rng.integers(1, 4)) for _ in range(L - 1)] + \
        [int(rng.integers(1, 3))]
    exact = rng.random() < 0.35
    Ws, bs = rand_net_data(rng, widths, exact)
    variant = "generic"
    if rng.random() < 0.4 and max(widths[1:-1]) >= 2:
        i = pick(rng, [j for j in range(L - 1) if widths[j + 1] >= 2])
        how = pick(rng, ["dup", "zero_row", "zero_col"])
        if how == "dup":
            Ws[i][1, :] = Ws[i][0, :] * (2 if exact else 2.0)
            bs[i][1] = bs[i][0] * 2
        elif how == "zero_row":
            Ws[i][0, :] = sp.zeros(1, widths[i]) if exact else 0.0
        else:
            Ws[i + 1][:, 0] = sp.zeros(widths[i + 2], 1) if exact else 0.0
        variant = how
    kw: dict = {}
    bad = None
    q = rng.random()
    if q < 0.05:
        kw["n_samples"], bad = pick(rng, BAD_NS), "n_samples"
    elif q < 0.1:
        kw["rtol"], bad = pick(rng, BAD_TOLS), "rtol"
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)

    def call():
        return ("fd", idf.functional_dimension(model, th, **kw))

    def judge(res):
        fd = res[1]
        n1 = O.net_from_theta(acts, th)
        P = n1.n_params
        n = max(32, int(math.ceil(3 * P / widths[-1])))
        X = np.random.default_rng(0).standard_normal((n, widths[0])) * 2.0
        # the library evaluates float64 parameters: use them (exact rationals rounded)
        nf = O.Net(acts, [W.tolist() for W in O.Net(acts, n1.Ws, n1.bs).floats()[0]],
                   [b.tolist() for b in O.Net(acts, n1.Ws, n1.bs).floats()[1]], False)
        rk, sv = O.jacobian_rank(nf, X)
        if rk is not None and fd.rank != rk:
            return Judgement("checked", "wrong_result", f"rank {fd.rank} but the 60-digit "
                             f"Jacobian has rank {rk} (of {P})", rk)
        return Judgement("checked", None, "", rk)

    desc = f"{theta_repr(model, Ws, bs)}; idf.functional_dimension(m, th{_kw(kw)}).rank"
    return Case("functional_dimension", idx, f"{'exact' if exact else 'float'}-{variant}"
                if not bad else f"badarg-{bad}", call, judge, bad_arg=bad, desc=desc,
                params=("model", "theta", "n_samples", "rtol", "seed", "scale"))


# ---------------------------------------------------------------------------------- adjunction
def rotation(n: int) -> sp.Matrix:
    c, s_ = sp.cos(2 * sp.pi / n), sp.sin(2 * sp.pi / n)
    return sp.Matrix([[c, -s_], [s_, c]])


def gen_check_adjunction(rng, idx):
    idf = _idf()
    name = pick(rng, ACTS_ALL)
    rot = rng.random() < 0.2
    n = 2 if rot else int(rng.integers(1, 4))
    widths = [n] + [int(rng.integers(1, 4)) for _ in range(int(rng.integers(1, 3)))] + \
        [2 if rot and rng.random() < 0.5 else int(rng.integers(1, 4))]
    model = idf.MLP(widths, name, bias=rng.random() < 0.85)
    if rot:  # exact rotations: radicals (order 8, 12), nested radicals (order 5, 10)
        order = int(pick(rng, [3, 4, 6, 8, 12, 3, 4, 6, 5, 10]))
        gin = [rotation(order)]
    else:
        gin = [perm_matrix(list(rng.permutation(n)))]
        if rng.random() < 0.3:
            gin = [gin[0] * -1]  # a signed permutation
    dL = widths[-1]
    if rot and dL == 2 and rng.random() < 0.6:
        gout = [rotation(order)]
    elif rot:
        gout = None if rng.random() < 0.5 else [sp.eye(dL) * (-1) ** (order % 2 == 0)]
    else:
        gout = None if rng.random() < 0.4 else [perm_matrix(list(rng.permutation(dL)))]

    def call():
        return idf.check_adjunction(model, gin, gout)

    def judge(v):
        st = status_of(v)
        if st == "refuted":
            note = "eq. (5) holds identically for MLPs (a change of variables)"
            if cex_x(v.counterexample) is None:
                note += "; and the counterexample names no input point"
            return Judgement(st, "false_refuted", note, True)
        return Judgement(st, None, "", True)

    desc = (f"m = idf.MLP({widths}, {name!r}, bias={model.bias}); idf.check_adjunction(m, "
            f"[sp.Matrix({gin[0].tolist()})], "
            f"{None if gout is None else f'[sp.Matrix({gout[0].tolist()})]'})")
    return Case("check_adjunction", idx, f"{name}-{'rot' + str(order) if rot else 'perm'}", call,
                judge, desc=desc, params=("model", "rep_in", "rep_out"))


# ---------------------------------------------------------------------------------- exact zeros
def _z():
    s2, s3, s5, s6, s7 = (sp.sqrt(k) for k in (2, 3, 5, 6, 7))
    pi = sp.pi
    return [
        (s2 + s3) ** 2 - 5 - 2 * s6,
        sp.sqrt(5 + 2 * s6) - s2 - s3,
        sp.sqrt(3 + 2 * s2) - 1 - s2,
        sp.sqrt(11 + 6 * s2) - 3 - s2,
        sp.cos(pi / 7) - sp.cos(2 * pi / 7) + sp.cos(3 * pi / 7) - sp.Rational(1, 2),
        sp.cos(pi / 5) - (1 + s5) / 4,
        sp.sin(pi / 12) - (s6 - s2) / 4,
        sp.cos(pi / 9) * sp.cos(2 * pi / 9) * sp.cos(4 * pi / 9) - sp.Rational(1, 8),
        sp.tan(pi / 8) - s2 + 1,
        sp.log(6) - sp.log(2) - sp.log(3),
        sp.log(8) - 3 * sp.log(2),
        sp.log(s2) - sp.log(2) / 2,
        sp.atan(sp.Rational(1, 2)) + sp.atan(sp.Rational(1, 3)) - pi / 4,
        sp.sin(pi / 7) * sp.sin(2 * pi / 7) * sp.sin(3 * pi / 7) - s7 / 8,
    ]


def _tiny():
    out = []
    for e in (sp.sqrt(2), sp.pi, sp.log(2), sp.cos(sp.pi / 7), sp.sqrt(3) + sp.sqrt(5)):
        v = sp.N(e, 60)
        q = sp.Rational(int(sp.floor(v * 10 ** 27)), 10 ** 27)
        out.append(e - q)  # in (0, 1e-27]
    z = _z()
    out.append(z[4] + sp.Rational(1, 10 ** 29))
    out.append(z[0] - sp.Rational(1, 10 ** 30))
    return out


ZEROS = _z()
TINIES = _tiny()


def gen_exact_zero(rng, idx):
    idf = _idf()
    target = pick(rng, ["membership", "check_intertwiner", "check_intertwiner", "align",
                        "same_function", "membership"])
    tiny = rng.random() < 0.3
    pool = TINIES if tiny else ZEROS
    zi = int(rng.integers(len(pool)))
    z = pool[zi]
    coef = pick(rng, [1, -1, 2, sp.Rational(1, 2), 3])
    dz = coef * z
    label = f"{'tiny' if tiny else 'zero'}{zi}"
    if target in ("membership", "check_intertwiner"):
        name = pick(rng, ACTS_ALL)
        d = int(rng.integers(1, 4))
        A, B = rand_k(rng, name, d, True)
        A, B = sp.Matrix(A), sp.Matrix(B)
        where = pick(rng, ["off", "on", "singular", "B"])
        if O.group_of(name).kind == "gl" and where in ("off", "singular"):
            where = "on"
        if where == "off" and d >= 2:
            i = int(rng.integers(d))
            j = [c for c in range(d) if A[i, c] == 0][0]
            A[i, j] = dz
        elif where == "singular":
            i = int(rng.integers(d))
            j = [c for c in range(d) if A[i, c] != 0][0]
            A[i, j] = dz
        elif where == "B":
            i, j = int(rng.integers(d)), int(rng.integers(d))
            B[i, j] = B[i, j] + dz
        else:
            i = int(rng.integers(d))
            j = [c for c in range(d) if A[i, c] != 0][0]
            A[i, j] = A[i, j] + dz
            if O.group_of(name).kind == "gl":
                B[i, j] = B[i, j] + dz
        Ai, Bi = sp.ImmutableMatrix(A), sp.ImmutableMatrix(B)
        if target == "membership":
            def call():
                return idf.activations.get(name).intertwiner_group(d).membership(Ai)

            def judge(v):
                return judge_membership(name, Ai, v, True)

            desc = (f"idf.activations.get({name!r}).intertwiner_group({d}).membership("
                    f"sp.Matrix({sp.srepr(Ai) if False else Ai.tolist()}))")
            return Case("exact_zero", idx, f"membership-{where}-{label}", call, judge, desc=desc,
                        params=("A",))
        sing = O.singular(O.mat(Ai))

        def call():
            return idf.check_intertwiner(name, Ai, Bi)

        def judge(v):
            return judge_intertwiner(name, Ai, Bi, v, True, idx)

        desc = (f"idf.check_intertwiner({name!r}, sp.Matrix({Ai.tolist()}), "
                f"sp.Matrix({Bi.tolist()}))")
        return Case("exact_zero", idx, f"intertwiner-{where}-{label}", call, judge,
                    bad_arg="A" if sing else None, desc=desc, params=("act", "A", "B"))
    # align / same_function: theta2 = k . theta with one entry shifted by a disguised zero
    name = pick(rng, ["tanh", "relu", "power:2", "power:3", "identity", "sigmoid"])
    widths = _arch(rng, 3, 2, 2)
    Ws, bs = rand_net_data(rng, widths, True)
    ks = [rand_k(rng, name, w, True) for w in widths[1:-1]]
    W2, b2 = exact_transform([name] * (len(widths) - 2), Ws, bs, ks)
    i = int(rng.integers(len(W2)))
    r, c = int(rng.integers(W2[i].shape[0])), int(rng.integers(W2[i].shape[1]))
    W2 = [sp.Matrix(W) for W in W2]
    W2[i][r, c] = W2[i][r, c] + dz
    model = idf.MLP(widths, name)
    acts = [name] * (len(widths) - 2)
    th = to_lib(model, Ws, bs)
    th2 = to_lib(model, W2, b2)
    if target == "align":
        def call():
            return idf.align(model, th, th2)

        def judge(v):
            return judge_align(O.net_from_theta(acts, th), O.net_from_theta(acts, th2), v, True)
    else:
        def call():
            return idf.same_function(model, th, th2)

        def judge(v):
            return judge_same_function(O.net_from_theta(acts, th), O.net_from_theta(acts, th2),
                                       v, True, "planted" if not tiny else "perturb-tiny", idx)
    desc = (f"{theta_repr(model, Ws, bs)}; th2 = th with W{i + 1}[{r},{c}] of k.th plus "
            f"{coef}*({z}); idf.{target}(m, th, th2)")
    return Case("exact_zero", idx, f"{target}-{label}", call, judge, desc=desc,
                params=("model", "theta", "theta2"))


# ---------------------------------------------------------------------------------- registry
GENERATORS: dict[str, Callable] = {
    "check_intertwiner": gen_check_intertwiner,
    "membership": gen_membership,
    "align": gen_align,
    "same_function": gen_same_function,
    "identifiable": lambda rng, i: gen_identifiable(rng, i, weak=False),
    "weakly_identifiable": lambda rng, i: gen_identifiable(rng, i, weak=True),
    "reduce": gen_reduce,
    "is_equivariant": gen_is_equivariant,
    "latent_actions": gen_latent_actions,
    "functional_dimension": gen_functional_dimension,
    "check_adjunction": gen_check_adjunction,
    "exact_zero": gen_exact_zero,
}
PROCEDURES = list(GENERATORS)


def case_rng(seed: int, proc: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(proc.encode()), int(index)])


def make_case(seed: int, proc: str, index: int) -> Case:
    """The case (seed, proc, index), reproducibly."""
    rng = case_rng(seed, proc, index)
    for _attempt in range(20):
        try:
            return GENERATORS[proc](rng, index)
        except _Retry:
            continue
    raise RuntimeError("generator gave up")


class _Retry(Exception):
    pass


# ---------------------------------------------------------------------------------- hypothesis
def hypothesis_cases(proc: str, seed: int = 0):
    """A Hypothesis strategy of cases of one procedure (the index is drawn)."""
    from hypothesis import strategies as st

    return st.integers(min_value=0, max_value=2 ** 31 - 1).map(
        lambda i: make_case(seed, proc, i))
