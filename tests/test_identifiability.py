"""align / same_function / (weakly_)identifiable / functional_dimension against brute force and
numeric ground truth, including the "no" answers."""

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identifiable.identifiability import (
    FunctionalDimension,
    align,
    functional_dimension,
    identifiable,
    jacobian,
    same_function,
    weakly_identifiable,
)
from identifiable.models import MLP
from identifiable.strategies import latent_elements, mlp_params

SETTINGS = settings(max_examples=12,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
R = sp.Rational


# ---------------------------------------------------------------------------- align
@pytest.mark.parametrize("act", ["tanh", "power:2", "power:3", "relu", "sigmoid", "gelu"])
def test_align_recovers_hidden_k_float(act):
    m = MLP([8, 16, 16, 4], act)
    th = m.random_params(1)
    k = m.random_k(2)
    v = align(m, th, m.transform(th, k))
    assert v.status == "checked" and v.details["unique"], v
    for A, Ahat in zip(k, v.witness):
        assert np.allclose(A, Ahat, atol=1e-9)
    assert align(m, th, m.random_params(3)).status == "refuted"


@SETTINGS
@given(st.sampled_from(["tanh", "relu", "power:2", "power:3", "sigmoid", "identity"]),
       st.data())
def test_align_recovers_hidden_k_exact(act, data):
    m = MLP([2, 3, 3, 2], act) if act != "identity" else MLP([3, 3, 3, 2], act)
    th = data.draw(mlp_params(m, exact=True))
    k = data.draw(latent_elements(m, exact=True))
    th2 = m.transform(th, k)
    v = align(m, th, th2)
    if v.status == "undecided":  # zero rows of a continuous group / rank-deficient GL layers
        assert "reduce" in v.reason or "not determined" in v.reason
        return
    assert v.status == "proved", v
    assert m.transform(th, v.witness).equals(th2)
    if v.details["unique"] and act not in ("identity",):
        assert all(sp.Matrix(A) == sp.Matrix(B) for A, B in zip(v.witness, k))


def brute_force_tanh(m, th, th2):
    """Ground truth for finite K: try every element of K (signed permutations)."""
    layers = []
    for d in m.hidden_widths:
        elems = []
        for perm in itertools.permutations(range(d)):
            for signs in itertools.product([1, -1], repeat=d):
                A = sp.zeros(d, d)
                for r, (c, s) in enumerate(zip(perm, signs)):
                    A[r, c] = s
                elems.append(A)
        layers.append(elems)
    return any(m.transform(th, list(k)).equals(th2) for k in itertools.product(*layers))


@SETTINGS
@given(st.data())
def test_align_decisions_match_brute_force(data):
    m = MLP([2, 2, 2, 1], "tanh")
    th = data.draw(mlp_params(m, exact=True, max_numerator=3, max_denominator=2))
    k = data.draw(latent_elements(m, exact=True))
    th2 = m.transform(th, k)
    how = data.draw(st.sampled_from(["same", "entry", "rowswap", "random"]))
    Ws = [sp.Matrix(W) for W in th2.weights]
    bs = [sp.Matrix(b) for b in th2.biases]
    if how == "entry":
        i = data.draw(st.integers(0, 2))
        Ws[i][0, 0] += 1
    elif how == "rowswap":  # swap two rows of layer 1 but not the columns of layer 2
        Ws[0] = Ws[0].extract([1, 0], [0, 1])
        bs[0] = bs[0].extract([1, 0], [0])
    elif how == "random":
        th2 = data.draw(mlp_params(m, exact=True, max_numerator=3, max_denominator=2))
    if how != "random":
        th2 = m.params(Ws, bs)
    v = align(m, th, th2)
    truth = brute_force_tanh(m, th, th2)
    if v.status == "undecided":
        return
    assert v.holds is truth, (v, how)
    if v.status == "refuted":
        assert 1 <= v.counterexample["layer"] <= 3


def test_align_with_redundant_neurons_backtracks():
    m = MLP([2, 3, 1], "tanh")
    # neurons 0 and 1 identical rows, different outgoing weights
    th = m.params([[[1, 2], [1, 2], [3, -1]], [[2, 5, 1]]], [[1, 1, 0], [0]])
    k = [sp.Matrix([[0, 1, 0], [1, 0, 0], [0, 0, -1]])]
    v = align(m, th, m.transform(th, k))
    assert v.status == "proved" and not v.details["unique"]
    assert m.transform(th, v.witness).equals(m.transform(th, k))


def test_align_errors():
    m = MLP([2, 3, 1], "tanh")
    with pytest.raises(ValueError, match="theta2.weights"):
        align(m, m.random_params(0), MLP([2, 4, 1], "tanh").random_params(0))
    with pytest.raises(ValueError, match="symbolic"):
        align(m, m.symbols(), m.symbols())
    with pytest.raises(TypeError, match="model"):
        align("tanh", m.random_params(0), m.random_params(0))


# ---------------------------------------------------------------------------- same function
def test_same_function_exact_and_refuted():
    m = MLP([2, 3, 1], "tanh")
    th = m.random_params(0, exact=True)
    th2 = m.transform(th, m.random_k(1, exact=True))
    assert same_function(m, th, th2).status == "proved"
    Ws = [sp.Matrix(W) for W in th.weights]
    Ws[1][0, 1] += 1
    bad = m.params(Ws, list(th.biases))
    v = same_function(m, th, bad)
    assert v.status == "refuted"
    x = np.array([float(t) for t in v.counterexample["x"]])
    assert abs(m(x, th)[0] - m(x, bad)[0]) > 1e-9
    thf = th.numeric
    assert same_function(m, thf, m.transform(thf, m.random_k(3))).status == "checked"
    vf = same_function(m, thf, bad.numeric)
    assert vf.status == "refuted"
    xf = np.array(vf.counterexample["x"])
    assert abs(m(xf, thf)[0] - m(xf, bad)[0]) > 1e-9


def test_same_function_of_the_remark_5_2_zeroing():
    m = MLP([2, 2, 1], "relu", bias=False)
    th0 = m.params([[[1, 1], [2, 3]], [[-2, 0]]])
    th1 = m.params([[[1, 1], [0, 0]], [[-2, 0]]])
    assert same_function(m, th0, th1).status == "proved"
    assert align(m, th0, th1).status == "refuted"


# ---------------------------------------------------------------------------- identifiability
def test_appendix_b_weak_identifiability():
    m = MLP([2, 2, 1], "tanh", bias=False)
    v0 = weakly_identifiable(m, m.params([[[1, 1], [2, 3]], [[-2, 0]]]))
    assert v0.status == "refuted"
    th_p = v0.counterexample["theta_prime"]
    assert th_p.weights[0] == sp.Matrix([[1, 1], [0, 0]])
    v1 = weakly_identifiable(m, th_p)
    assert v1.status == "proved" and "Sussmann" in v1.reason


@pytest.mark.parametrize("widths", [[2, 3, 1], [3, 4, 4, 2]])
def test_tanh_generic_is_weakly_identifiable(widths):
    m = MLP(widths, "tanh")
    assert weakly_identifiable(m, m.random_params(0, exact=True)).status == "proved"
    assert weakly_identifiable(m, m.random_params(0)).status == "checked"
    assert identifiable(m, m.random_params(0, exact=True)).status == "proved"


def test_tanh_inactive_neuron_is_not_identifiable_but_weakly():
    m = MLP([2, 3, 1], "tanh")
    th = m.params([[[1, 2], [0, 0], [3, -1]], [[2, 0, 1]]], [[1, 0, 1], [3]])
    v = identifiable(m, th)
    assert v.status == "refuted"
    other = v.counterexample["theta_prime"]
    X = np.random.default_rng(0).standard_normal((30, 2))
    assert np.allclose(m(X, th), m(X, other))
    assert weakly_identifiable(m, th).status == "proved"


def test_sigmoid_affine_flip_refutes_identifiability():
    m = MLP([2, 3, 1], "sigmoid")
    th = m.random_params(2, exact=True)
    v = weakly_identifiable(m, th)
    assert v.status == "refuted"
    other = v.counterexample["theta_prime"]
    X = np.random.default_rng(1).standard_normal((30, 2)) * 3
    assert np.allclose(m(X, th), m(X, other), atol=1e-9)
    assert align(m, th, other).status == "refuted"
    assert identifiable(MLP([2, 3, 1], "sigmoid", bias=False),
                        MLP([2, 3, 1], "sigmoid", bias=False).random_params(0),
                        evidence=False).status == "undecided"


def test_linear_networks():
    m = MLP([3, 3, 3, 3], "identity", bias=False)
    assert weakly_identifiable(m, m.random_params(1, exact=True)).status == "proved"
    mb = MLP([3, 3, 3], "identity")
    th = mb.random_params(1, exact=True)
    v = identifiable(mb, th)
    assert v.status == "refuted"
    other = v.counterexample["theta_prime"]
    X = np.random.default_rng(1).standard_normal((10, 3))
    assert np.allclose(mb(X, th), mb(X, other))


def test_shallow_power_kruskal_and_deep_power_undecided():
    m = MLP([2, 2, 1], "power:3")
    v = identifiable(m, m.random_params(0, exact=True))
    assert v.status == "proved" and "Kruskal" in v.reason
    deep = MLP([2, 2, 2, 1], "power:3")
    vd = identifiable(deep, deep.random_params(0, exact=True))
    assert vd.status == "undecided" and isinstance(vd.witness, FunctionalDimension)


def test_relu_undecided_with_evidence_and_bk23_example():
    m = MLP([3, 4, 2], "relu")
    v = weakly_identifiable(m, m.random_params(0))
    assert v.status == "undecided"
    assert isinstance(v.witness["evidence"], FunctionalDimension)
    mr = MLP([2, 2, 1], "relu", bias=False)
    th = mr.params([[[1, 0], [0, 0]], [[0, 0]]])  # BK23 Example 2.1
    v = weakly_identifiable(mr, th)
    assert v.status == "refuted"
    assert v.counterexample["theta_prime"].weights[0] == sp.zeros(2, 2)


# ---------------------------------------------------------------------------- functional dim.
def test_jacobian_matches_finite_differences():
    for act in ("tanh", "relu", "power:2", "sigmoid"):
        m = MLP([3, 4, 3, 2], act)
        th = m.random_params(5)
        X = np.random.default_rng(0).standard_normal((4, 3))
        J = jacobian(m, th, X)
        flat = th.flat()
        eps = 1e-6
        num = np.zeros_like(J)
        for j in range(flat.size):
            e = np.zeros_like(flat)
            e[j] = eps
            num[:, j] = (m(X, unflat(m, flat + e)) - m(X, unflat(m, flat - e))).ravel() / (2 * eps)
        assert np.allclose(J, num, atol=1e-5), act


def unflat(m, v):
    Ws, bs, p = [], [], 0
    for i in range(m.depth):
        r, c = m.widths[i + 1], m.widths[i]
        Ws.append(v[p:p + r * c].reshape(r, c))
        p += r * c
        bs.append(v[p:p + r])
        p += r
    return m.params(Ws, bs)


@pytest.mark.parametrize("act,widths,bias,seed", [
    ("tanh", [2, 3, 1], True, 0), ("tanh", [3, 4, 4, 2], True, 0),
    ("sigmoid", [3, 4, 2], True, 0), ("identity", [3, 3, 3, 3], False, 0),
    ("identity", [3, 3, 3], True, 0), ("power:2", [3, 4, 2], True, 0),
    ("relu", [3, 4, 2], True, 0), ("relu", [3, 5, 5, 2], True, 1)])
def test_functional_dimension_matches_prediction(act, widths, bias, seed):
    m = MLP(widths, act, bias=bias)
    fd = functional_dimension(m, m.random_params(seed))
    assert fd.expected is not None
    assert fd.rank == fd.expected, (fd, fd.expected_reason)
    assert fd.gap > 1e3
    if act in ("tanh", "sigmoid"):
        assert fd.rank == fd.predicted_by_symmetry
    if act == "identity" and not bias:
        assert fd.rank == m.n_params - sum(d * d for d in m.hidden_widths)


def test_align_zero_rows_with_a_continuous_scaling():
    m = MLP([2, 3, 1], "relu")
    # neuron 1: zero row, non-zero outgoing column (half-dead); theta1 zeroes the column
    th = m.params([[[1, 2], [0, 0], [3, -1]], [[2, 5, 1]]], [[1, 0, 1], [3]])
    th1 = m.params([[[1, 2], [0, 0], [3, -1]], [[2, 0, 1]]], [[1, 0, 1], [3]])
    v = align(m, th, th1)
    assert v.status == "refuted" and "zero rows" in v.reason
    # an inactive neuron: its scaling is free but acts on a zero column only
    th2 = m.params([[[1, 2], [0, 0], [3, -1]], [[2, 0, 1]]], [[1, 0, 1], [3]])
    k = [sp.Matrix([[0, 0, 2], [R(1, 2), 0, 0], [0, 3, 0]])]
    v = align(m, th2, m.transform(th2, k))
    assert v.status == "proved" and not v.details["unique"]
    assert m.transform(th2, v.witness).equals(m.transform(th2, k))
