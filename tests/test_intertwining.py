"""check_intertwiner / check_affine_intertwiner against an independent numeric ground truth."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identifiable import activations, check_affine_intertwiner, check_intertwiner
from identifiable.strategies import (
    activation_names,
    exact_intertwiner_pairs,
    invertible_matrices,
)

NAMES = ["relu", "leaky_relu:0.1", "tanh", "sigmoid", "gelu", "softplus", "power:2", "power:3",
         "identity"]


def numeric_residual(act, A, B, X, a=None, b=None):
    """Independent ground truth: max |sigma(A x + a) - B sigma(x) - b| over columns of X."""
    A = np.array(np.asarray(A, dtype=object).tolist(), dtype=float) if not isinstance(
        A, np.ndarray) else A
    A = np.array(sp.Matrix(A).evalf().tolist(), dtype=float)
    B = np.array(sp.Matrix(B).evalf().tolist(), dtype=float)
    Z = A @ X + (0 if a is None else np.array(a, dtype=float).reshape(-1, 1))
    R = act.reference(Z) - B @ act.reference(X) - (0 if b is None else np.array(
        b, dtype=float).reshape(-1, 1))
    return float(np.max(np.abs(R)))


def assert_counterexample_violates(act, A, B, cex, a=None, b=None):
    x = np.array([float(v) for v in cex["x"]]).reshape(-1, 1)
    assert numeric_residual(act, A, B, x, a, b) > 1e-6


PROBE = np.random.default_rng(0).standard_normal((4, 400)) * 3


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(exact_intertwiner_pairs(activation_names(NAMES), max_dim=4))
def test_members_are_proved_exactly(case):
    name, A, B = case
    act = activations.get(name)
    v = check_intertwiner(act, A, B)
    assert v.status == "proved", v
    d = A.shape[0]
    scale = max(1, float(max(abs(v) for v in A))) ** 3
    assert numeric_residual(act, A, B, PROBE[:d]) < 1e-8 * scale


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(exact_intertwiner_pairs(activation_names(NAMES), max_dim=4), st.data())
def test_perturbations_are_refuted_with_a_rechecked_counterexample(case, data):
    name, A, B = case
    act = activations.get(name)
    d = A.shape[0]
    i = data.draw(st.integers(0, d - 1))
    j = data.draw(st.integers(0, d - 1))
    eps = data.draw(st.sampled_from([sp.Rational(1, 2), sp.Integer(-1), sp.Rational(3, 1)]))
    which = data.draw(st.sampled_from(["A", "B"]))
    A2, B2 = sp.Matrix(A), sp.Matrix(B)
    (A2 if which == "A" else B2)[i, j] += eps
    if A2.rank() < d:
        with pytest.raises(ValueError, match="singular"):
            check_intertwiner(act, A2, B2)
        return
    truth = numeric_residual(act, A2, B2, PROBE[:d])
    v = check_intertwiner(act, A2, B2)
    if truth < 1e-9:  # a perturbation that happens to stay in K (e.g. power: rescaled entry)
        assert v.status == "proved", v
        return
    assert v.status == "refuted", (v, truth)
    assert_counterexample_violates(act, A2, B2, v.counterexample)


@settings(max_examples=40)
@given(activation_names(NAMES), invertible_matrices(max_dim=3))
def test_generic_matrices_agree_with_numeric_ground_truth(name, A):
    act = activations.get(name)
    truth = numeric_residual(act, A, A, PROBE[: A.shape[0]]) < 1e-9
    v = check_intertwiner(act, A, A)
    assert v.holds == truth, v
    if v.status == "refuted":
        assert_counterexample_violates(act, A, A, v.counterexample)


@settings(max_examples=40)
@given(exact_intertwiner_pairs(activation_names(NAMES), max_dim=5), st.data())
def test_float_inputs_are_tolerance_based(case, data):
    name, A, B = case
    act = activations.get(name)
    Af = np.array(A.evalf().tolist(), dtype=float)
    Bf = np.array(B.evalf().tolist(), dtype=float)
    v = check_intertwiner(act, Af, Bf)
    assert v.status == "checked" and v.tol is not None and v.n_samples > 0, v
    i, j = data.draw(st.integers(0, A.shape[0] - 1)), data.draw(st.integers(0, A.shape[0] - 1))
    Bf2 = Bf.copy()
    Bf2[i, j] += 0.25
    v = check_intertwiner(act, Af, Bf2)
    assert v.status == "refuted", v
    assert_counterexample_violates(act, Af, Bf2, v.counterexample)


def test_lemma_2_2_test_points():
    relu = activations.get("relu")
    v = check_intertwiner(relu, [[2, 1], [0, 1]], [[2, 1], [0, 1]])
    assert v.status == "refuted" and "Lemma 2.2" in v.reason
    # the lemma's point A_ik e_k' - A_ik' e_k = 2 e_1 - 1 e_0
    assert [float(t) for t in v.counterexample["x"]] in ([-1.0, 2.0], [1.0, -2.0]) or \
        numeric_residual(relu, [[2, 1], [0, 1]], [[2, 1], [0, 1]],
                         np.array([[float(t)] for t in v.counterexample["x"]])) > 0.5


def test_affine_lemma_e1_and_sigmoid_flip():
    assert check_affine_intertwiner("relu", [[1, 0], [0, 2]], [0, 0], [[1, 0], [0, 2]],
                                    [0, 0]).status == "proved"
    v = check_affine_intertwiner("relu", [[1]], [1], [[1]], [1])
    assert v.status == "refuted"
    assert_counterexample_violates(activations.get("relu"), [[1]], [[1]], v.counterexample,
                                   [1], [1])
    # sigmoid(-x) = 1 - sigmoid(x): an affine symmetry that is not a linear one
    assert check_affine_intertwiner("sigmoid", [[-1]], [0], [[-1]], [1]).status == "proved"
    assert check_intertwiner("sigmoid", [[-1]], [[-1]]).status == "refuted"
    # tanh(x + 1) is no affine image of tanh(x)
    v = check_affine_intertwiner("tanh", [[1]], [1], [[1]], [0])
    assert v.status == "refuted"


def test_linear_activation_gl():
    assert check_intertwiner("identity", [[1, 2], [3, 4]], [[1, 2], [3, 4]]).status == "proved"
    v = check_intertwiner("identity", [[1, 2], [3, 4]], [[1, 2], [3, 5]])
    assert v.status == "refuted"
    assert_counterexample_violates(activations.get("identity"), [[1, 2], [3, 4]],
                                   [[1, 2], [3, 5]], v.counterexample)


def test_undecided_activation_falls_back_to_samples():
    x = sp.Symbol("x")
    hardtanh = activations.from_sympy(sp.Max(-1, sp.Min(1, x)), x)
    v = check_intertwiner(hardtanh, [[-1]], [[-1]])
    assert v.status == "checked" and v.n_samples > 10
    v = check_intertwiner(hardtanh, [[2]], [[2]])
    assert v.status == "refuted"


@pytest.mark.parametrize("A,B,err,match", [
    ([[1, 0, 0], [0, 1, 0]], [[1, 0], [0, 1]], ValueError, "A: expected a square"),
    ([[1, 0], [0, 1]], [[1, 0, 0]], ValueError, "B: expected shape"),
    ([[1.0, float("nan")], [0, 1]], [[1, 0], [0, 1]], ValueError, "A: entry"),
    ([[1, 2], [2, 4]], [[1, 0], [0, 1]], ValueError, "A: matrix is singular"),
    ([[1.0, 2.0], [2.0, 4.0]], [[1, 0], [0, 1]], ValueError, "A: "),
    ([["a", 0], [0, 1]], [[1, 0], [0, 1]], TypeError, "A: entry"),
])
def test_bad_input(A, B, err, match):
    with pytest.raises(err, match=match):
        check_intertwiner("tanh", A, B)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        check_intertwiner("nope", [[1]], [[1]])
