"""Latent mirror fits (Section 6 [SMBK26]) on networks built exactly equivariant or random."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from identifiable.torch.measure import (  # noqa: E402
    CrossStats,
    equivariance_report,
    least_squares,
    monomial_parts,
)
from identifiable.torch.nets import INTERTWINER_KIND, MirrorMLP, intertwiner_kind  # noqa: E402


def _mirror_perm(shape=(3, 14, 14)) -> np.ndarray:
    """Index map of the left-right mirror on C x H x W flattened row-major."""
    idx = np.arange(np.prod(shape)).reshape(shape)
    return idx[..., ::-1].ravel()


def equivariant_first_layer(net: MirrorMLP, n_self: int, n_pairs: int, n_neg: int, seed: int = 0):
    """Set W_1, b_1 so that f_1(mirror x) = K f_1(x) exactly for a known signed permutation K.

    Filters come as self-symmetric (M w = w), mirrored pairs (w_j = M w_i, b_j = b_i) and
    mirrored-negated pairs (w_j = -M w_i, b_j = -b_i; only for odd activations).
    """
    rng = np.random.default_rng(seed)
    d = net.widths[0]
    assert n_self + 2 * n_pairs + 2 * n_neg == d
    p = _mirror_perm(net.in_shape)
    d0 = p.size
    W = np.zeros((d, d0))
    b = rng.normal(size=d) * 0.3
    K = np.zeros((d, d))
    order = rng.permutation(d)  # scatter the structure over the neuron indices
    k = 0
    for _ in range(n_self):
        i = order[k]
        w = rng.normal(size=d0)
        W[i] = (w + w[p]) / 2
        K[i, i] = 1
        k += 1
    for s, n in ((1, n_pairs), (-1, n_neg)):
        for _ in range(n):
            i, j = order[k], order[k + 1]
            W[i] = rng.normal(size=d0)
            W[j] = s * W[i][p]
            b[j] = s * b[i]
            K[i, j] = K[j, i] = s
            k += 2
    W /= np.sqrt(d0)
    with torch.no_grad():
        net.layer(1).linear.weight.copy_(torch.tensor(W, dtype=torch.float32))
        net.layer(1).linear.bias.copy_(torch.tensor(b, dtype=torch.float32))
    return K


def test_exactly_equivariant_tanh_layer_gives_its_signed_permutation():
    torch.manual_seed(0)
    net = MirrorMLP("autoencoder", "tanh")
    K_true = equivariant_first_layer(net, n_self=10, n_pairs=15, n_neg=12)
    fits = equivariance_report(net, layers=(1,), mirrors=("lr", "ud"), n_fit=4000, n_eval=4000)
    lr, ud = fits
    assert lr.mirror == "lr" and lr.kind == "sign"
    assert lr.ls_error < 1e-4
    assert lr.k_error < 1e-5 and lr.k_nearest_error < 1e-5
    np.testing.assert_array_equal(lr.K, K_true)
    np.testing.assert_array_equal(lr.K_nearest, K_true)
    np.testing.assert_array_equal(lr.K_sign, K_true)
    assert lr.k_sign_error < 1e-5
    np.testing.assert_allclose(lr.A, K_true, atol=1e-3)
    assert lr.dist_to_K < 1e-3
    assert lr.identity_error > 0.3  # the probe does move the features
    # the up-down mirror was never built in: large errors
    assert ud.ls_error > 0.3 and ud.k_error > 0.5
    d = lr.to_dict()
    assert d["K"] == "signed permutations" and d["probe"] == "noise"
    assert d["K_negated"] == 24 and d["K_fixed_points"] == 10


def test_exactly_equivariant_gelu_layer_gives_its_permutation():
    torch.manual_seed(1)
    net = MirrorMLP("classifier", "gelu")
    K_true = equivariant_first_layer(net, n_self=20, n_pairs=22, n_neg=0, seed=3)
    (lr,) = equivariance_report(net, layers=(1,), mirrors=("lr",), n_fit=3000, n_eval=3000)
    assert lr.kind == "one"
    assert lr.ls_error < 1e-4 and lr.k_error < 1e-5
    np.testing.assert_array_equal(lr.K, K_true)


def test_random_network_measures_a_large_error():
    torch.manual_seed(2)
    net = MirrorMLP("autoencoder", "tanh")
    fits = equivariance_report(net, layers=(1, 2), n_fit=3000, n_eval=3000)
    assert len(fits) == 4
    for f in fits:
        assert f.ls_error > 0.3, f
        assert f.k_error > f.ls_error


def test_crop_probe_is_recorded():
    torch.manual_seed(0)
    net = MirrorMLP("autoencoder", "gelu")
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    (f,) = equivariance_report(net, layers=(2,), mirrors=("lr",), probe="crops", images=images,
                               n_fit=1000, n_eval=1000)
    assert f.probe == "crops" and f.layer == "f2" and f.kind == "one"
    with pytest.raises(ValueError, match="images"):
        equivariance_report(net, probe="crops")
    with pytest.raises(ValueError, match="probe"):
        equivariance_report(net, probe="sky")
    with pytest.raises(ValueError, match="layers"):
        equivariance_report(net, layers=(4,))


@pytest.mark.parametrize("d", [20, 160])  # 160: the blocked symmetric Z^T Z
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_streaming_statistics_equal_in_memory_least_squares(dtype, d):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(5000, d, generator=g, dtype=dtype)
    B = torch.randn(d, d, generator=g, dtype=dtype)
    Y = Z @ B.T + 0.1 * torch.randn(5000, d, generator=g, dtype=dtype)
    st = CrossStats(d)
    for s in range(0, 5000, 700):
        st.update(Z[s:s + 700], Y[s:s + 700])
    assert st.n == 5000
    assert st.mean_ratio() < 0.1  # centred data
    np.testing.assert_allclose(st.G, st.G.T, rtol=1e-6, atol=1e-6)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(st.G, (Z.T @ Z).double().numpy(), rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(st.solve(), least_squares(Z, Y), atol=tol)
    with pytest.raises(ValueError, match="widths"):
        st.update(Z[:, :3], Y)


def test_best_monomial_minimises_the_residual_over_signed_permutations():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2000, 6))
    perm = rng.permutation(6)
    signs = rng.choice([-1.0, 1.0], size=6)
    K = np.zeros((6, 6))
    K[np.arange(6), perm] = signs
    Y = Z @ K.T + 0.3 * rng.normal(size=Z.shape)
    st = CrossStats(6)
    st.update(torch.tensor(Z), torch.tensor(Y))
    np.testing.assert_array_equal(st.best_monomial("sign"), K)
    assert monomial_parts(K) == (perm.tolist(), signs.tolist())


def test_intertwiner_kinds_agree_with_the_activation_module():
    activations = pytest.importorskip("identifiable.activations")
    for name, kind in INTERTWINER_KIND.items():
        assert activations.get(name).intertwiner_group(5).scalings.kind == kind
    with pytest.raises(ValueError, match="activation"):
        intertwiner_kind("relu6")
