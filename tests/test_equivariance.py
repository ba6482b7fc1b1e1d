"""Equivariance, adjunction and Theorem 4.1 (latent_actions) against independent ground truth."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identifiable import groups
from identifiable.equivariance import (
    check_adjunction,
    check_layer_equivariance,
    intertwiner_space,
    is_equivariant,
    random_equivariant_params,
)
from identifiable.models import MLP
from identifiable.strategies import layerwise_equivariant_networks
from identifiable.theory.latent_actions import latent_actions

J = sp.ImmutableMatrix([[0, 1], [1, 0]])
STATS = {"generated": 0, "recovered": 0, "refuted": 0}


def numeric_layer_residual(model, theta, i, Ps, Ns, X):
    """Independent ground truth: max over generators and rows of X of
    |f_i(P x) - N f_i(x)| (relative to max |N f_i(x)|) for the generator images P on V_{i-1}
    and N on V_i."""
    th = theta.numeric
    layer = model.layers[i - 1]
    worst = 0.0
    for P, N in zip(Ps, Ns, strict=True):
        P = np.array(sp.Matrix(P).evalf().tolist(), float).reshape(layer.in_dim, layer.in_dim)
        N = np.array(sp.Matrix(N).evalf().tolist(), float).reshape(layer.out_dim, layer.out_dim)
        rhs = layer(X, th[i - 1]) @ N.T
        r = np.abs(layer(X @ P.T, th[i - 1]) - rhs) / max(1.0, float(np.max(np.abs(rhs))))
        worst = max(worst, float(np.max(r, initial=0.0)))
    return worst


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(layerwise_equivariant_networks())
def test_latent_actions_recovers_verified_homomorphisms(case):
    STATS["generated"] += 1
    m, th = case.model, case.theta
    v = latent_actions(m, th, case.rep_in, case.rep_out)
    assert v.status == "proved", v
    w = v.witness
    rng = np.random.default_rng(0)
    # the (possibly rewritten) ambient parameter computes the same function
    X = rng.standard_normal((40, m.widths[0])) * 2
    assert np.allclose(m.forward(X, th.numeric), m.forward(X, w["ambient_theta"].numeric),
                       atol=1e-9)
    # independent re-check: every layer equivariant with the witness on the generators
    on, theta_used = w["model"], w["theta"]
    prev = case.rep_in
    for i in range(1, on.depth + 1):
        nxt = case.rep_out if i == on.depth else w["rho_generators"][i - 1]
        Xi = rng.standard_normal((30, on.widths[i - 1])) * 2
        assert numeric_layer_residual(on, theta_used, i, [sp.Matrix(P) for P in prev],
                                      [sp.Matrix(N) for N in nxt], Xi) < 1e-8
        prev = nxt
    # ... and each rho_i is a homomorphism into K_i (Remark 4.2), checked by brute force
    words = w["words"]
    for i, ki in enumerate(w["k"], start=1):
        K = on.latent_group(i)
        for word in words:
            assert K.contains(ki[word])
        order = len(words)
        assert order == case.group_order
    STATS["recovered"] += 1


@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(layerwise_equivariant_networks(activations=("tanh",)), st.data())
def test_perturbed_networks_are_refuted_with_a_rechecked_counterexample(case, data):
    m = case.model
    Ws = [sp.Matrix(W) for W in case.theta.weights]
    i = data.draw(st.integers(0, m.depth - 1))
    r = data.draw(st.integers(0, Ws[i].rows - 1))
    c = data.draw(st.integers(0, Ws[i].cols - 1))
    Ws[i][r, c] += sp.Rational(7, 3)
    th = m.params(Ws, [sp.Matrix(b) for b in case.theta.biases])
    v = is_equivariant(m, th, case.rep_in, case.rep_out, exact_limit=0)
    if v.status != "refuted":  # the perturbation may keep f equivariant (rare, e.g. a dead row)
        assert v.status == "checked"
        return
    STATS["refuted"] += 1
    cex = v.counterexample
    x = np.array(cex["x"], float)
    g = int(cex["g"][1:])
    gin = np.array(sp.Matrix(case.rep_in[g]).evalf().tolist(), float)
    gout = np.array(sp.Matrix(case.rep_out[g]).evalf().tolist(), float)
    f = lambda z: m.forward(z[None, :], th.numeric)[0]  # noqa: E731
    assert np.max(np.abs(f(gin @ x) - gout @ f(x))) > 1e-6
    lv = latent_actions(m, th, case.rep_in, case.rep_out)
    assert lv.status == "refuted"


def test_statistics_are_reported(capsys):
    with capsys.disabled():
        print(f"\nlayerwise-equivariant networks: {STATS}")


def test_example_2_1_rewrite():
    m = MLP([2, 2, 1], "relu", bias=False)
    th = m.params([[[1, 0], [0, 0]], [[0, 0]]])
    assert is_equivariant(m, th, [J], None).status == "proved"
    # W1 itself is not layerwise equivariant for any rho_1 (a scalar): rho_1 W1 = W1 J fails
    v = latent_actions(m, th, [J], None)
    assert v.status == "proved" and v.witness["rewritten"]
    W1 = sp.Matrix(v.witness["ambient_theta"].weights[0])
    assert W1 * J == W1  # the rewrite is the zero layer
    assert W1.is_zero_matrix


def test_not_equivariant_refuted():
    m = MLP([2, 2, 1], "tanh", bias=False)
    th = m.params([[[1, 2], [3, 1]], [[1, 1]]])
    v = is_equivariant(m, th, [J], None)
    assert v.status == "refuted"
    x = [float(t) for t in v.counterexample["x"]]
    f = lambda z: m.forward(np.array([z]), th.numeric)[0, 0]  # noqa: E731
    assert abs(f([x[1], x[0]]) - f(x)) > 1e-6
    assert latent_actions(m, th, [J], None).status == "refuted"


def test_adjunction_and_layer_checks():
    m = MLP([2, 2, 2], "tanh")
    assert check_adjunction(m, [J], [J]).status == "proved"
    th = random_equivariant_params(m, [[J], [J], [J]], seed=3, exact=True)
    assert check_layer_equivariance(m, th, 1, [J], [J]).status == "proved"
    v = check_layer_equivariance(m, th, 1, [J], [sp.eye(2)])
    assert v.status in ("refuted", "proved")  # proved only if W1 rows coincide


def test_intertwiner_space_matches_brute_force():
    basis = intertwiner_space([J], [J])
    assert len(basis) == 2  # span of I and J
    for B in basis:
        assert J * B == B * J
    fb = intertwiner_space([np.array(J.tolist(), float)], [np.eye(1)], exact=False)
    assert len(fb) == 1 and np.allclose(fb[0] @ np.array(J.tolist(), float), fb[0])


def test_float_benchmark_shape_runs():
    g = groups.mirror(1, 2, 2).generators[0].astype(float)
    m = MLP([4, 6, 3], "tanh")
    r1 = np.eye(6)[[1, 0, 3, 2, 5, 4]] * np.array([1, 1, -1, -1, 1, 1])[:, None]
    th = random_equivariant_params(m, [[g], [r1], [np.eye(3)]], seed=0)
    th2 = m.transform(th, m.random_k(2))
    v = latent_actions(m, th2, [g], None)
    assert v.status == "checked" and v.n_samples > 0 and v.tol is not None


@pytest.mark.parametrize("bad,match", [
    ([np.eye(3)], "rep_in: generator 0 acts on R\\^3"),
    ([[[1, 0], [0, 2]]], "finite group"),
])
def test_bad_reps(bad, match):
    m = MLP([2, 2, 1], "tanh")
    th = m.random_params(0)
    with pytest.raises(ValueError, match=match):
        is_equivariant(m, th, bad, None)


def test_actions_are_carried_to_theta_when_reduce_only_changes_basis():
    """Regression (fuzz case latent_actions:304, seed 20261128): for K = GL (identity
    activation) reduce returns a canonical parameter of the same widths (W1 = I) whose embedding
    is theta again; the actions found on the canonical parameter must be carried to theta's own
    layers through gamma, not returned as they are. Checked against theta itself, exactly."""
    R = sp.Rational
    m = MLP([3, 3, 3], "identity")
    th = m.params([[[R(-8, 3), R(4, 3), R(8, 3)], [R(-1, 3), 1, R(-5, 3)],
                    [R(-8, 3), R(-4, 3), R(8, 3)]],
                   [[R(25, 72), R(1, 9), R(-23, 72)], [R(25, 144), R(-4, 9), R(-11, 144)],
                    [R(-5, 144), R(-4, 9), R(-41, 144)]]],
                  [[R(-4, 3), 1, R(4, 3)], [1, 1, 1]])
    P = sp.Matrix([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    v = latent_actions(m, th, [P], [P])
    assert v.status == "proved"
    W1, b1 = sp.Matrix(th.weights[0]), sp.Matrix(th.biases[0])
    W2, b2 = sp.Matrix(th.weights[1]), sp.Matrix(th.biases[1])
    r = sp.Matrix(v.witness["rho"][0]["s0"])
    assert r != P  # the canonical parameter's action is P; theta's is its conjugate
    assert (r * W1 - W1 * P).is_zero_matrix and (r * b1 - b1).is_zero_matrix
    assert (P * W2 - W2 * r).is_zero_matrix and (P * b2 - b2).is_zero_matrix


def _nearly_mirror_invariant_tanh_net():
    rng = np.random.default_rng(0)
    m = MLP([4, 6, 6, 1], "tanh")
    P = np.eye(4)[::-1]
    W1 = rng.standard_normal((6, 4)) * 0.3
    W = [(W1 + W1 @ P) / 2 + 1e-3 * rng.standard_normal((6, 4)),
         rng.standard_normal((6, 6)) * 0.3, rng.standard_normal((1, 6))]
    b = [rng.standard_normal(6) * 0.1, rng.standard_normal(6) * 0.1, np.zeros(1)]
    return m, m.params(W, b), P


def test_a_loose_tol_does_not_buy_a_vacuous_checked():
    """Issue 13 item 4: tol = 1.0 on tanh layers (outputs below 1) would accept unrelated
    values; the answer is undecided and points to the approximate measurement."""
    m, th, P = _nearly_mirror_invariant_tanh_net()
    assert latent_actions(m, th, [P]).status == "refuted"  # not invariant at float64 precision
    v = latent_actions(m, th, [P], tol=1.0)
    assert v.status == "undecided"
    assert "not small against the values compared" in v.reason
    assert "measure_latent_actions" in v.reason
    assert v.witness["layer_scales"][0] < 1.0
    # a zeroing threshold that removes every hidden neuron changes the function: undecided
    v = latent_actions(m, th, [P], tol=1.0, zero_tol=1.0)
    assert v.status == "undecided" and "does not compute theta's function" in v.reason


def test_checked_records_what_it_measured_and_names_a_large_reduction():
    """A float network with 4 of 6 hidden neurons dead (zero outgoing weights): reduce removes
    them, the reason says so, and the witness records the function gap (0 here) and the layer
    scales against which the tolerance was judged."""
    m = MLP([2, 6, 1], "tanh")
    W1 = np.array([[0.7, -0.4], [-0.4, 0.7], [0.3, 0.9], [-1.1, 0.2], [0.5, 0.5], [0.8, -0.6]])
    b1 = np.array([0.1, 0.1, -0.2, 0.3, 0.0, 0.4])
    W2 = np.array([[1.3, 1.3, 0.0, 0.0, 0.0, 0.0]])
    th = m.params([W1, W2], [b1, np.array([0.25])])
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    v = latent_actions(m, th, [P])
    assert v.status == "checked", v
    assert "reduce removed 4 of 6 hidden neurons" in v.reason
    assert v.witness["function_gap"] <= v.witness["function_tol"]
    assert v.tol < 1e-6 and v.details["homomorphism_tol"] >= 0.0
    # the actions found: the swap of the two live neurons, lifted to the ambient layer
    r = np.asarray(v.witness["rho"][0]["s0"], dtype=float)
    x = np.array([0.3, -1.2])
    y, gy = np.tanh(W1 @ x + b1), np.tanh(W1 @ x[::-1] + b1)
    np.testing.assert_allclose((r @ y)[:2], gy[:2], atol=1e-12)  # the live neurons swap
