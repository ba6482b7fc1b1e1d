"""equivariance_error (Definition 3.6 [SMBK26], measured): against a direct loop over group
elements and inputs, on exactly equivariant networks (errors at round-off), perturbed ones (errors
of the size of the perturbation) and every kind of f (model + theta, torch module, callable)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identifiable.groups import Rep
from identifiable.theory.equivariance import planted_equivariant_mlp
from identifiable.theory.equivariance_error import equivariance_error


def _brute(f, mats_in, mats_out, X):
    """Independent ground truth: one input and one element at a time."""
    absr, relr = [], []
    for gi, go in zip(mats_in, mats_out):
        for x in X:
            fx = np.asarray(f(x[None]))[0]
            d = np.asarray(f((gi @ x)[None]))[0] - go @ fx
            absr.append(np.max(np.abs(d)))
            n = np.linalg.norm(fx)
            relr.append(np.linalg.norm(d) / n if n > 0 else (0.0 if not d.any() else np.inf))
    return np.array(absr), np.array(relr)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), noise=st.sampled_from([0.0, 1e-6, 1e-2]))
def test_matches_brute_force_over_the_group(seed, noise):
    case = planted_equivariant_mlp("tanh", [[1, 2, 0]], [["perm"]], seed=seed % 50)
    m = case.model
    th = case.theta.numeric
    rng = np.random.default_rng(seed)
    th = m.params([w + noise * rng.standard_normal(np.shape(w)) for w in th.weights],
                  [b + noise * rng.standard_normal(np.shape(b)) for b in th.biases])
    X = rng.standard_normal((20, 3))
    rec = equivariance_error((m, th), case.rep_in, case.rep_out, x=X)
    G = Rep([np.block([[np.asarray(a, float), np.zeros((3, 3))],
                       [np.zeros((3, 3)), np.asarray(b, float)]])
             for a, b in zip(case.rep_in, case.rep_out)])
    mats = [np.asarray(M, dtype=float) for M in G.elements[1:]]  # the identity left out
    a, r = _brute(lambda Z: m.forward(Z, th), [M[:3, :3] for M in mats],
                  [M[3:, 3:] for M in mats], X)
    assert rec.n_elements == G.order - 1 == 2 and rec.over == "group"
    np.testing.assert_allclose([rec.max_abs, rec.mean_abs, rec.median_abs],
                               [a.max(), a.mean(), np.median(a)], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose([rec.max_rel, rec.mean_rel, rec.median_rel],
                               [r.max(), r.mean(), np.median(r)], rtol=1e-9, atol=1e-15)
    ga, gr = _brute(lambda Z: m.forward(Z, th), [np.asarray(case.rep_in[0], float)],
                    [np.asarray(case.rep_out[0], float)], X)
    assert rec.per_generator["s0"].max_abs == pytest.approx(ga.max(), rel=1e-9, abs=1e-15)
    assert rec.per_generator["s0"].median_rel == pytest.approx(np.median(gr), rel=1e-9,
                                                               abs=1e-15)
    if noise == 0.0:
        assert rec.within() and rec.max_rel < 1e-12
    if noise == 1e-2:
        assert not rec.within()  # a perturbation of 1e-2 is far above float64's 1e-9


def test_a_non_equivariant_network_is_far_from_zero_and_dtypes_are_recorded():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    P = np.eye(4)[[1, 0, 3, 2]]
    rec = equivariance_error(net, [P], n_samples=500)
    assert rec.dtype == "float32" and rec.rtol == 1e-5 and rec.n_samples == 500
    assert rec.max_rel > 1e-3 and not rec.within()
    # invariant by construction: symmetrise over the group
    with torch.no_grad():
        W = net[0].weight
        W.copy_(torch.cat([W[:4], W[:4][:, [1, 0, 3, 2]]]))
        net[0].bias.copy_(torch.cat([net[0].bias[:4], net[0].bias[:4]]))
        net[2].weight[0, 4:] = net[2].weight[0, :4]
    rec = equivariance_error(net, [P], n_samples=500)
    assert rec.within(), rec  # float32 round-off only
    net64 = net.double()
    rec64 = equivariance_error(net64, [P], n_samples=500)
    assert rec64.dtype == "float64" and rec64.rtol == 1e-9 and rec64.within()


def test_callables_images_and_bad_input():
    # a callable on images (n, 2, 2): the left-right flip acts on 4 flattened coordinates
    flip = np.eye(4)[[1, 0, 3, 2]]
    f = lambda X: X.reshape(len(X), -1).sum(axis=1, keepdims=True)  # noqa: E731
    x = np.random.default_rng(0).standard_normal((10, 2, 2))
    rec = equivariance_error(f, [flip], x=x)
    assert rec.max_abs < 1e-12 and rec.per_generator["s0"].n == 10
    g = lambda X: X.reshape(len(X), -1)[:, :1]  # noqa: E731   not invariant
    assert equivariance_error(g, [flip], x=x).median_rel > 0.1
    with pytest.raises(ValueError, match="rep_in"):
        equivariance_error(f, [np.eye(3)], x=x)
    with pytest.raises(ValueError, match="rep_out"):
        equivariance_error(f, [flip], [np.eye(2)], x=x)
    with pytest.raises(ValueError, match="x:"):
        equivariance_error(f, [flip], x=np.zeros(4))
    with pytest.raises(TypeError, match="f:"):
        equivariance_error(3, [flip], x=x)
    rec = equivariance_error(f, [flip], x=x)
    assert set(rec.to_dict()) >= {"max_abs", "mean_abs", "median_abs", "max_rel", "mean_rel",
                                  "median_rel", "per_generator", "dtype", "rtol"}
