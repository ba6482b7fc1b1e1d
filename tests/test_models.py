"""Models (Definition 3.1), the MLP of eq. (7) and the action of K on parameters (eq. (3)),
against independent numpy ground truth."""

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identifiable import activations
from identifiable.models import MLP, AffineLayer, Layer, Model, Theta
from identifiable.strategies import latent_elements, mlp_params, mlp_widths, mlps
from identifiable.verdict import UndecidedError

SETTINGS = settings(max_examples=15,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ground_truth(widths, acts, Ws, bs, X):
    """f(x; theta) written out with numpy alone (the test's own implementation)."""
    fns = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "identity": lambda z: z,
           "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "power:2": lambda z: z ** 2,
           "power:3": lambda z: z ** 3}
    H = np.asarray(X, float)
    L = len(widths) - 1
    for i in range(L):
        W = np.array(sp.Matrix(Ws[i]).evalf().tolist(), float).reshape(widths[i + 1], widths[i])
        b = np.array(sp.Matrix(bs[i]).evalf().tolist(), float).reshape(-1)
        H = H @ W.T + b
        if i < L - 1:
            H = fns[acts[i]](H)
    return H


def to_float(M):
    return np.array(sp.Matrix(M).evalf().tolist(), float).reshape(np.shape(M))


# ---------------------------------------------------------------------------- construction
def test_widths_and_activation_errors():
    with pytest.raises(ValueError, match="widths"):
        MLP([3], "tanh")
    with pytest.raises(ValueError, match="widths"):
        MLP([0, 2, 1], "tanh")
    with pytest.raises(TypeError, match="widths"):
        MLP([2, 2.5, 1], "tanh")
    with pytest.raises(ValueError, match="activation: expected one activation per hidden layer"):
        MLP([2, 3, 3, 1], ["tanh"])
    with pytest.raises(ValueError, match="unknown activation"):
        MLP([2, 3, 1], "swish")
    m = MLP([2, 3, 3, 1], ["tanh", "relu"])
    assert [a.name for a in m.activations] == ["tanh", "relu"]
    assert m.n_params == 2 * 3 + 3 + 3 * 3 + 3 + 3 + 1
    assert MLP([2, 3, 1], "tanh", bias=False).n_params == 9


def test_params_validation_messages():
    m = MLP([8, 16, 16, 4], "tanh")
    Ws = [np.zeros((16, 8)), np.zeros((16, 9)), np.zeros((4, 16))]
    with pytest.raises(ValueError, match=r"weights\[1\]: expected shape \(16, 16\), got \(16, 9\)"):
        m.params(Ws)
    with pytest.raises(ValueError, match="weights: expected 3 matrices"):
        m.params(Ws[:2])
    bad = [np.zeros((16, 8)), np.zeros((16, 16)), np.zeros((4, 16))]
    bad[2][1, 3] = np.nan
    with pytest.raises(ValueError, match=r"weights\[2\]: entry \(1, 3\) is not finite"):
        m.params(bad)
    good = [np.zeros((16, 8)), np.zeros((16, 16)), np.zeros((4, 16))]
    with pytest.raises(ValueError, match=r"biases\[0\]: expected length 16, got 15"):
        m.params(good, [np.zeros(15), np.zeros(16), np.zeros(4)])
    with pytest.raises(ValueError, match=r"biases\[2\]: .*not finite"):
        m.params(good, [np.zeros(16), np.zeros(16), np.array([0, np.inf, 0, 0])])
    with pytest.raises(ValueError, match="bias=False"):
        MLP([2, 2, 1], "tanh", bias=False).params([np.eye(2), np.ones((1, 2))], [[0, 0], [0]])
    with pytest.raises(TypeError, match="single matrix"):
        m.params(np.zeros((16, 8)))


def test_kinds_exact_float_symbolic():
    m = MLP([2, 2, 1], "tanh")
    th = m.params([[[1, Fraction(1, 2)], [sp.Rational(2, 3), 0]], [[1, -1]]], [[0, 1], [2]])
    assert th.kind == "exact" and isinstance(th.weights[0], sp.MatrixBase)
    thf = m.params([[[1.0, 0.5], [2, 0]], [[1, -1]]])
    assert thf.kind == "float" and thf.weights[0].dtype == np.float64
    w = sp.Symbol("w", real=True)
    ths = m.params([[[w, 1], [0, 1]], [[1, 1]]])
    assert ths.kind == "symbolic"
    f = m.symbolic(ths)
    assert f[0] == sp.tanh(w * sp.Symbol("x1", real=True) + sp.Symbol("x2", real=True)) + \
        sp.tanh(sp.Symbol("x2", real=True)) or sp.simplify(
        f[0] - sp.tanh(w * sp.Symbol("x1", real=True) + sp.Symbol("x2", real=True))
        - sp.tanh(sp.Symbol("x2", real=True))) == 0
    with pytest.raises(ValueError, match="free symbols"):
        m.forward(np.zeros(2), ths)
    assert np.allclose(m.forward(np.ones(2), ths.subs({w: 2})),
                       np.tanh(3) + np.tanh(1))


@SETTINGS
@given(mlps(activations=("tanh", "relu", "identity", "sigmoid", "power:2", "power:3"),
            widths=mlp_widths(1, 3, 1, 4)), st.data())
def test_forward_matches_numpy_ground_truth_and_symbolic(model, data):
    th = data.draw(mlp_params(model, exact=True))
    X = np.random.default_rng(0).standard_normal((7, model.widths[0]))
    want = ground_truth(model.widths, [a.name for a in model.activations], th.weights,
                        th.biases, X)
    got = model.forward(X, th)
    assert got.shape == (7, model.widths[-1])
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9)
    assert np.allclose(model.forward(X[0], th), want[0])
    xs = sp.symbols(f"x1:{model.widths[0] + 1}", real=True)
    f = model.symbolic(th)
    val = f.subs(dict(zip(xs, [sp.nsimplify(v) for v in X[1]])))
    assert np.allclose(np.array(val.evalf(20).tolist(), float).ravel(), want[1], atol=1e-8)


def test_forward_input_errors():
    m = MLP([3, 2, 1], "tanh")
    th = m.random_params(0)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 3\)"):
        m.forward(np.zeros((4, 2)), th)
    with pytest.raises(ValueError, match="NaN"):
        m.forward(np.array([0, np.nan, 1.0]), th)
    with pytest.raises(ValueError, match="theta.weights"):
        m.forward(np.zeros(3), MLP([3, 4, 1], "tanh").random_params(0))


def test_model_composition():
    a = MLP([3, 4, 2], "tanh")
    b = MLP([2, 5, 1], "relu")
    ta, tb = a.random_params(1), b.random_params(2)
    ab = a >> b
    assert isinstance(ab, Model) and ab.depth == 4
    X = np.random.default_rng(3).standard_normal((6, 3))
    assert np.allclose(ab.forward(X, list(ta) + list(tb)), b(a(X, ta), tb))
    with pytest.raises(ValueError, match="input dimension"):
        a.then(MLP([3, 2, 1], "tanh"))
    square = Layer(lambda X, th: X ** 2, 2, 2, symbolic=lambda x, th: x.applyfunc(
        lambda e: e ** 2), name="square")
    lin = AffineLayer(2, 1)
    model = Model([square, lin])
    out = model.forward(np.array([[1.0, 2.0]]), [None, (np.ones((1, 2)), np.zeros(1))])
    assert np.allclose(out, [[5.0]])
    assert model.symbolic([None, (sp.Matrix([[1, 1]]), sp.Matrix([0]))])[0] == \
        sp.Symbol("x1", real=True) ** 2 + sp.Symbol("x2", real=True) ** 2


# ---------------------------------------------------------------------------- symmetries
def test_latent_groups_and_undecided_activation():
    m = MLP([2, 3, 4, 1], ["tanh", "relu"])
    Ks = m.latent_groups()
    assert Ks[0].scalings.kind == "sign" and Ks[1].scalings.kind == "positive"
    assert m.symmetry_dimension == 4
    x = sp.Symbol("x")
    affine = activations.from_sympy(x + 1, x, "x+1")
    with pytest.raises(UndecidedError, match=r"layer 1 \(activation\[0\] = x\+1\)"):
        MLP([2, 2, 1], affine).latent_groups()


@SETTINGS
@given(mlps(activations=("tanh", "relu", "power:2", "power:3", "sigmoid", "identity",
                         "leaky_relu:1/10"), widths=mlp_widths(2, 3, 1, 3)), st.data())
def test_action_keeps_the_function_exactly(model, data):
    th = data.draw(mlp_params(model, exact=True))
    k = data.draw(latent_elements(model, exact=True))
    th2 = model.transform(th, k)
    assert th2.kind == "exact"
    v = model.check_invariance(th, k)
    assert v.status == "proved", v
    X = np.random.default_rng(1).standard_normal((11, model.widths[0]))
    y1, y2 = model(X, th), model(X, th2)
    assert np.allclose(y1, y2, rtol=1e-8, atol=1e-8 * max(1, np.max(np.abs(y1))))


@pytest.mark.parametrize("act", ["tanh", "relu", "power:3", "identity", "gelu"])
def test_action_float_large(act):
    m = MLP([8, 16, 16, 4], act)
    th = m.random_params(4)
    k = m.random_k(5)
    th2 = m.transform(th, k)
    X = np.random.default_rng(2).standard_normal((50, 8))
    assert np.allclose(m(X, th), m(X, th2), rtol=1e-9, atol=1e-9)
    assert m.check_invariance(th, k).status == "checked"


def test_action_formula_by_hand():
    """W'_1 = A_1 W_1, b'_1 = A_1 b_1, W'_2 = W_2 B_1^{-1} with B_1 = partner(A_1)."""
    m = MLP([2, 2, 1], "power:2")
    th = m.params([[[1, 2], [3, 4]], [[5, 6]]], [[1, -1], [7]])
    A = sp.Matrix([[0, 2], [-3, 0]])
    th2 = m.transform(th, [A])
    assert th2.weights[0] == sp.Matrix([[6, 8], [-3, -6]])
    assert list(th2.biases[0]) == [-2, -3]
    # partner B = [[0, 4], [9, 0]]; W_2 B^{-1} = [5, 6] [[0, 1/9], [1/4, 0]]
    assert th2.weights[1] == sp.Matrix([[sp.Rational(6, 4), sp.Rational(5, 9)]])
    assert list(th2.biases[1]) == [7]


def test_non_member_k_is_rejected_and_wrong_k_refuted():
    m = MLP([2, 2, 1], "tanh")
    th = m.random_params(0, exact=True)
    with pytest.raises(ValueError, match=r"k\[0\]: not an element of K_1"):
        m.transform(th, [sp.Matrix([[2, 0], [0, 1]])])
    with pytest.raises(ValueError, match="k: expected 1"):
        m.transform(th, [])
    k = [sp.Matrix([[0, 1], [-1, 0]])]
    th2 = m.transform(th, k)
    v = m.check_symmetry(th, th2, [sp.Matrix([[0, 1], [1, 0]])])
    assert v.status == "refuted"
    assert v.counterexample["layer"] in (1, 2)
    assert m.check_symmetry(th, th2, k).status == "proved"


def test_theta_helpers():
    m = MLP([2, 3, 1], "tanh")
    th = m.random_params(0, exact=True)
    assert th.equals(th) and not th.equals(m.random_params(1, exact=True))
    assert isinstance(th.numeric, Theta) and th.numeric.kind == "float"
    assert th.flat().shape == (m.n_params,)
    sym = m.symbols()
    assert len(sym.free_symbols) == m.n_params
    assert m.forward(np.zeros(2), m.random_params(0)).shape == (1,)
