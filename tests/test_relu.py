"""[BK23] ReLU results (identifiable.relu) against numeric and brute-force ground truth."""

import numpy as np
import pytest
import sympy as sp
import sympy.stats as sst
from helpers import fl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from identifiable import groups
from identifiable.relu import (
    LayerwiseRewrite,
    ex_c_1,
    ex_c_1_numeric,
    prop_2_3,
    prop_b_1,
    prop_d_1,
    relu_sum_identity,
)
from identifiable.strategies import invertible_matrices

SETTINGS = settings(max_examples=30,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
RNG = np.random.default_rng(0)


def relu_sum_numeric(c, U, lin, Y):
    """Ground truth F(y) = sum c_t ReLU(u_t . y) + l . y on the rows of Y (float)."""
    c, U = np.asarray(c, float), np.asarray(U, float).reshape(len(c), -1)
    return np.maximum(Y @ U.T, 0) @ c + Y @ np.asarray(lin, float)


# ------------------------------------------------------------------ relu_sum_identity
@st.composite
def relu_sums(draw, zero: bool | None = None):
    """(coeffs, normals, linear): random sums, or sums that are zero by construction."""
    n = draw(st.integers(1, 3))
    vec = st.lists(st.integers(-3, 3), min_size=n, max_size=n).filter(any)
    terms = draw(st.lists(st.tuples(st.integers(-3, 3), vec), min_size=0, max_size=3))
    c = [t[0] for t in terms]
    U = [t[1] for t in terms]
    lin = [0] * n
    make_zero = draw(st.booleans()) if zero is None else zero
    if make_zero:  # cancel every term: by a scaled copy, or by the bypass identity
        for ci, ui in list(zip(c, U)):
            lam = draw(st.integers(1, 3))
            if draw(st.booleans()):  # c ReLU(u.y) = (c/lam) ReLU(lam u.y)
                c.append(sp.Rational(-ci, lam))
                U.append([lam * a for a in ui])
            else:  # c ReLU(u.y) = c ReLU(-u.y) + c u.y
                c.append(-ci)
                U.append([-a for a in ui])
                lin = [v - ci * a for v, a in zip(lin, ui)]
    if not c:
        c, U = [0], [[1] * n]
    return c, U, lin


PROBE3 = RNG.standard_normal((4000, 3))


@SETTINGS
@given(relu_sums())
def test_relu_sum_identity_matches_numeric_ground_truth(data):
    c, U, lin = data
    n = len(lin)
    v = relu_sum_identity(c, U, lin)
    event(v.status)
    vals = relu_sum_numeric([float(x) for x in c], U, lin, PROBE3[:, :n])
    if v.status == "proved":
        assert np.abs(vals).max() < 1e-9
    else:
        assert v.status == "refuted"
        y = [sp.Rational(t) for t in v.counterexample["y"]]
        exact = sum((sp.Rational(ci) * sp.Max(0, sum(a * b for a, b in zip(ui, y)))
                     for ci, ui in zip(c, U)), sp.Integer(0)) + sum(a * b for a, b in zip(lin, y))
        assert exact == v.counterexample["F(y)"] != 0
        # ground truth agrees that F is not zero (F is non-zero on an open cone)
        assert np.abs(vals).max() > 1e-9


@SETTINGS
@given(relu_sums(zero=True))
def test_relu_sum_identity_proves_constructed_zeros(data):
    c, U, lin = data
    assert relu_sum_identity(c, U, lin).status == "proved"
    # the float path agrees
    vf = relu_sum_identity([float(x) for x in c], np.asarray(U, float), np.asarray(lin, float))
    assert vf.status == "checked"


def test_relu_sum_identity_examples():
    assert relu_sum_identity([1, -1], [[1], [-1]], [-1]).status == "proved"  # bypass identity
    v = relu_sum_identity([1, 1], [[1, 0], [0, 1]])
    assert v.status == "refuted"
    v = relu_sum_identity([1.0, -1.0], [[1.0, 0.0], [0.0, 1.0]])
    assert v.status == "refuted" and abs(v.counterexample["F(y)"]) > 1e-6
    # sqrt(2) entries stay exact
    v = relu_sum_identity([sp.sqrt(2), -1], [[1, 0], [sp.sqrt(2), 0]])
    assert v.status == "proved"
    with pytest.raises(ValueError, match="coeffs"):
        relu_sum_identity([1, 2, 3], [[1, 0], [0, 1]])


# ------------------------------------------------------------------ Prop 2.3
def pd_involution(rng, m):
    """A positively scaled permutation of order <= 2 (swap with d, 1/d)."""
    A = sp.eye(m)
    if m >= 2:
        i, j = rng.choice(m, size=2, replace=False)
        d = sp.Rational(int(rng.integers(1, 5)), int(rng.integers(1, 4)))
        A[i, i] = A[j, j] = 0
        A[i, j], A[j, i] = d, 1 / d
    return A


def non_pd_involution(rng, m, kind):
    if kind == "signed":
        A = pd_involution(rng, m)
        k = int(rng.integers(0, m))
        if all(A[k, j] == 0 for j in range(m) if j != k):
            A[k, k] = -1
        else:
            A = -A
        return A
    C = sp.Matrix(m, m, lambda i, j: int(rng.integers(-3, 4)))
    while C.rank() < m:
        C = C + sp.eye(m)
    S = sp.eye(m)
    S[0, 0] = -1
    return C * S * C.inv()


def f_num(W1, W2, X):
    return np.maximum(X @ W1.T, 0) @ W2.T


def best_linear_fit_residual(W1, W2, G, n=400):
    """Ground truth for 'some linear rho2 makes f equivariant': least-squares fit of R with
    f(G x) = R f(x) on samples; a large residual means no linear rho2 exists."""
    X = RNG.standard_normal((n, W1.shape[0]))
    F, FG = f_num(W1, W2, X), f_num(W1, W2, X @ G.T)
    R, *_ = np.linalg.lstsq(F, FG, rcond=None)
    return float(np.abs(F @ R - FG).max() / max(1.0, np.abs(FG).max()))


@SETTINGS
@given(invertible_matrices(max_dim=3, min_dim=2), invertible_matrices(max_dim=3, min_dim=2),
       st.integers(0, 2**32 - 1), st.sampled_from(["pd", "signed", "conjugate"]))
def test_prop_2_3_against_numeric_equivariance(W1, W2, seed, kind):
    m = min(W1.shape[0], W2.shape[0])
    W1, W2 = sp.Matrix(W1[:m, :m]), sp.Matrix(W2[:m, :m])
    if W1.rank() < m or W2.rank() < m:
        return
    rng = np.random.default_rng(seed)
    A = pd_involution(rng, m) if kind == "pd" else non_pd_involution(rng, m, kind)
    rho0 = W1.inv() * A * W1
    v = prop_2_3(W1, W2, [rho0])
    event(v.status)
    G = fl(rho0)
    if v.status == "proved":
        R2 = fl(v.witness["rho2"]["s0"])
        X = RNG.standard_normal((300, m))
        err = np.abs(f_num(fl(W1), fl(W2), X @ G.T) - f_num(fl(W1), fl(W2), X) @ R2.T).max()
        assert err < 1e-8
        rho1 = v.witness["rho1"]
        assert sp.Matrix(rho1.get("s0", rho1["e"])) == A
    else:
        assert v.status == "refuted"
        assert kind != "pd"
        # no linear rho2 at all (least-squares ground truth)
        assert best_linear_fit_residual(fl(W1), fl(W2), G) > 1e-6
        ce = v.counterexample
        x = sp.Matrix(ce["x"])
        relu = lambda z: z.applyfunc(lambda t: sp.Max(0, t))  # noqa: E731
        assert W2 * relu(W1 * rho0 * x) != sp.Matrix(ce["rho2(g)"]) * W2 * relu(W1 * x)
        y = sp.Matrix(ce["y"])
        assert relu(A * y) != A * relu(y)


def test_prop_2_3_with_rho2_and_groups():
    W1 = sp.Matrix([[1, 2, 0], [0, 1, 3], [1, 0, 1]])
    W2 = sp.Matrix([[2, 1, 0], [1, 1, 1], [0, 1, 3]])
    D = sp.diag(1, 3, sp.Rational(1, 2))
    G = groups.symmetric(3)
    rho1 = [D * sp.Matrix(P) * D.inv() for P in G.generators]
    rho0 = groups.Rep([W1.inv() * A * W1 for A in rho1])
    v = prop_2_3(W1, W2, rho0)
    assert v.status == "proved" and len(v.witness["rho1"]) == 6
    right = [W2 * A * W2.inv() for A in rho1]
    assert prop_2_3(W1, W2, rho0, right).status == "proved"
    wrong = [W2 * sp.Matrix(P) * W2.inv() for P in G.generators]
    w = prop_2_3(W1, W2, rho0, wrong)
    assert w.status == "refuted"
    # float input: checked / refuted
    vf = prop_2_3(fl(W1), fl(W2), [fl(M) for M in rho0.generators])
    assert vf.status == "checked" and vf.n_samples > 0
    vf = prop_2_3(fl(W1), fl(W2), [fl(M) for M in rho0.generators], [fl(M) for M in wrong])
    assert vf.status == "refuted"


def test_prop_2_3_bad_input():
    W = [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="W1.*singular"):
        prop_2_3([[1, 2], [2, 4]], W, [[[0, 1], [1, 0]]])
    with pytest.raises(ValueError, match="W2.*singular"):
        prop_2_3(W, [[1, 2], [2, 4]], [[[0, 1], [1, 0]]])
    with pytest.raises(ValueError, match="W1.*singular"):
        prop_2_3([[1.0, 2.0], [2.0, 4.0]], W, [[[0, 1], [1, 0]]])
    with pytest.raises(ValueError, match="W1.*square"):
        prop_2_3([[1, 2, 3], [3, 4, 5]], W, [[[0, 1], [1, 0]]])
    with pytest.raises(ValueError, match="rho0.*R\\^3.*width is 2"):
        prop_2_3(W, W, [np.eye(3, dtype=int)[[1, 0, 2]]])
    with pytest.raises(ValueError, match="rho0"):
        prop_2_3(W, W, [[[2, 0], [0, 1]]])  # infinite order
    with pytest.raises(ValueError, match="rho2"):
        prop_2_3(W, W, [[[0, 1], [1, 0]]], [[[0, 1], [1, 0]], [[1, 0], [0, 1]]])
    with pytest.raises(ValueError, match="rho2\\[0\\]"):
        prop_2_3(W, W, [[[0, 1], [1, 0]]], [np.eye(3)])
    with pytest.raises(TypeError, match="rho0"):
        prop_2_3(W, W, np.eye(2))


# ------------------------------------------------------------------ Prop B.1
@SETTINGS
@given(invertible_matrices(max_dim=4, min_dim=2), st.integers(0, 2**32 - 1),
       st.sampled_from(["block", "mix", "scaled", "signed"]))
def test_prop_b_1_against_numeric_invariance(W1, seed, kind):
    W1 = sp.Matrix(W1)
    m = W1.shape[0]
    rng = np.random.default_rng(seed)
    mplus = int(rng.integers(0, m + 1))
    s = [1] * mplus + [-1] * (m - mplus)
    p = list(range(m))
    if kind == "block" or kind == "scaled":
        block = [i for i in range(m) if s[i] == s[0]]
        if len(block) >= 2:
            i, j = block[:2]
            p[i], p[j] = j, i
    elif kind == "mix" and 0 < mplus < m:
        p[0], p[m - 1] = m - 1, 0
    A = sp.Matrix(groups.matrix_of_permutation(p))
    if kind == "scaled" and p != list(range(m)):
        i = p.index(next(j for j in range(m) if p[j] != j))
        A[p[i], i], A[i, p[i]] = 2, sp.Rational(1, 2)
    if kind == "signed":
        A[0, :] = -A[0, :]
    rho0 = W1.inv() * A * W1
    v = prop_b_1(W1, s, [rho0])
    event(v.status)
    X = RNG.standard_normal((400, m))
    sv = np.array(s, float)
    W1f, G = fl(W1), fl(rho0)
    err = np.abs(np.maximum(X @ (W1f @ G).T, 0) @ sv - np.maximum(X @ W1f.T, 0) @ sv).max()
    if v.status == "proved":
        assert err < 1e-8
        rho1 = v.witness["rho1"]
        assert sp.Matrix(rho1.get("s0", rho1["e"])) == A
    else:
        assert v.status == "refuted" and err > 1e-8
        x = sp.Matrix(v.counterexample["x"])
        relu = lambda z: z.applyfunc(lambda t: sp.Max(0, t))  # noqa: E731
        f = lambda z: (sp.Matrix([s]) * relu(W1 * z))[0]  # noqa: E731
        assert f(rho0 * x) != f(x)
        assert f(rho0 * x) == v.counterexample["f(g x)"]


def test_prop_b_1_inputs_and_floats():
    W1 = sp.Matrix([[1, 2, 0], [0, 1, 3], [1, 0, 1]])
    P = sp.Matrix([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert prop_b_1(W1, 2, [W1.inv() * P * W1]).status == "proved"
    assert prop_b_1(W1, [1, 1, -1], [W1.inv() * P * W1]).status == "proved"
    assert prop_b_1(W1, [-1, 1, 1], [W1.inv() * P * W1]).status == "refuted"
    assert prop_b_1(fl(W1), 2, [fl(W1.inv() * P * W1)]).status == "checked"
    assert prop_b_1(fl(W1), 1, [fl(W1.inv() * P * W1)]).status == "refuted"
    with pytest.raises(ValueError, match="signs"):
        prop_b_1(W1, [1, 2, -1], [P])
    with pytest.raises(ValueError, match="signs"):
        prop_b_1(W1, 4, [P])
    with pytest.raises(ValueError, match="W1.*singular"):
        prop_b_1([[1, 1], [1, 1]], 1, [[[0, 1], [1, 0]]])
    with pytest.raises(ValueError, match="rho0"):
        prop_b_1(W1, 1, [[[0, 1], [1, 0]]])


# ------------------------------------------------------------------ Prop D.1
J = np.array([[0.0, 1.0], [1.0, 0.0]])
PROBE2 = RNG.standard_normal((3000, 2))


@SETTINGS
@given(st.lists(st.integers(-2, 2), min_size=4, max_size=4),
       st.lists(st.integers(-2, 2), min_size=2, max_size=2),
       st.sampled_from(["random", "equivariant_I", "equivariant_J", "cancel"]),
       st.integers(1, 4), st.integers(1, 4))
def test_prop_d_1_against_numeric_invariance(w, c, family, d1, d2):
    a, b, e, g = w
    if family == "random":
        W1, W2 = sp.Matrix([[a, b], [e, g]]), sp.Matrix([c])
    elif family == "equivariant_I":
        W1, W2 = sp.Matrix([[a, a], [b, b]]), sp.Matrix([c])
    elif family == "equivariant_J":
        W1, W2 = sp.Matrix([[a, b], [b, a]]), sp.Matrix([[c[0], c[0]]])
    else:
        W1 = sp.Matrix([[d1 * a, d1 * b], [d2 * a, d2 * b]])
        W2 = sp.Matrix([[c[0] * sp.Rational(1, d1), -c[0] * sp.Rational(1, d2)]])
    if family != "random":  # scramble the hidden layer by a positive diagonal
        D = sp.diag(d1, sp.Rational(1, d2))
        W1, W2 = D * W1, W2 * D.inv()
    v = prop_d_1(W1, W2)
    event(v.status)
    W1f, W2f = fl(W1), fl(W2)
    fx = f_num(W1f, W2f, PROBE2)
    inv_err = np.abs(f_num(W1f, W2f, PROBE2 @ J.T) - fx).max()
    if v.status == "refuted":
        assert inv_err > 1e-9 and family == "random"
        x = np.array([float(t) for t in v.counterexample["x"]])
        assert v.counterexample["f(Jx)"] != v.counterexample["f(x)"]
        assert abs(f_num(W1f, W2f, (J @ x)[None]) - f_num(W1f, W2f, x[None])).max() > 1e-9
        return
    assert v.status == "proved" and inv_err < 1e-9
    rw = v.witness
    assert isinstance(rw, LayerwiseRewrite)
    R, A, B = fl(rw.rho1), fl(rw.W1), fl(rw.W2)
    assert np.allclose(R @ A, A @ J) and np.allclose(B @ R, B)
    assert np.abs(f_num(A, B, PROBE2) - fx).max() < 1e-9
    assert A.shape == (2, 2) and B.shape == (1, 2)


def test_prop_d_1_cases_and_bad_input():
    v = prop_d_1([[1, 2], [1, 2]], [1, -1])  # cancelling rank one -> zero net
    assert v.status == "proved" and "zero net" in v.witness.case
    v = prop_d_1([[2, 4], [1, 2]], [[1, 1]])  # not invariant
    assert v.status == "refuted"
    v = prop_d_1([[1.0, 2.0], [2.0, 1.0]], [[3.0, 3.0]])
    assert v.status == "checked"
    with pytest.raises(ValueError, match="W1"):
        prop_d_1([[1, 2, 3], [1, 2, 3]], [1, 1])
    with pytest.raises(ValueError, match="W2"):
        prop_d_1([[1, 2], [1, 2]], [1, 1, 1])


# ------------------------------------------------------------------ Example C.1
def test_ex_c_1_exact_matches_numeric_fit():
    sample = [sp.Rational(k, 4) for k in range(1, 13)]
    sample = sample + [-v for v in sample]
    v = ex_c_1(sample)
    assert v.status == "proved" and v.witness["ratio"] == sp.Rational(1, 2)
    w = ex_c_1_numeric(np.array([float(t) for t in sample]), n_starts=6)
    assert w.status == "checked"
    assert abs(w.witness["best_width1_error"] - float(v.witness["best_width1_error"])) < 1e-6
    assert abs(w.witness["equivariant_width1_error"]
               - float(v.witness["equivariant_width1_error"])) < 1e-9
    assert w.witness["width2_equivariant_error"] < 1e-6
    vs = ex_c_1(sample, loss="squared")
    ws = ex_c_1_numeric(np.array([float(t) for t in sample]), loss="squared", n_starts=6)
    assert abs(ws.witness["best_width1_error"] - float(vs.witness["best_width1_error"])) < 1e-6


def test_ex_c_1_distributions_and_bad_input():
    v = ex_c_1(sst.Uniform("u", -1, 1))
    assert v.witness["equivariant_width1_error"] == sp.Rational(1, 2)
    assert v.witness["best_width1_error"] == sp.Rational(1, 4)
    v = ex_c_1(sst.FiniteRV("d", {-1: sp.Rational(1, 4), 0: sp.Rational(1, 2),
                                  1: sp.Rational(1, 4)}))
    assert v.witness["best_width1_error"] == sp.Rational(1, 4)
    assert ex_c_1().status == "proved"
    with pytest.raises(ValueError, match="symmetric"):
        ex_c_1([-1, 2])
    with pytest.raises(ValueError, match="symmetric"):
        ex_c_1(sst.Uniform("u", -1, 2))
    with pytest.raises(ValueError, match="not finite"):
        ex_c_1(sst.Cauchy("c", 0, 1))
    with pytest.raises(ValueError, match="loss"):
        ex_c_1(loss="hinge")
    with pytest.raises(ValueError, match="X = 0"):
        ex_c_1([0, 0])
