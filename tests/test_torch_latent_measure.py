"""Measured latent actions (Theorem 4.1 [SMBK26], Section 6 / Appendix C) on planted networks.

Each network is built exactly equivariant with a known latent action (a signed permutation for
tanh, a positively scaled permutation for ReLU, the orbit swap of a flip-GCNN, eq. (3) [BK23]);
the measurement must recover it, and must report large errors once the weights are perturbed.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from identifiable.groups import Rep  # noqa: E402
from identifiable.torch.latent_measure import (  # noqa: E402
    channel_permutation,
    coordinate_permutation,
    cyclic_shift,
    image_group,
    layer_activation_name,
    measure_latent_actions,
)
from identifiable.torch.measure import best_monomial_fit, noise_probe  # noqa: E402
from identifiable.torch.vgg import gcnn_vgg11, swap_permutation  # noqa: E402


def _perm_matrix(perm, signs=None):
    """``M e_i = s_i e_{perm[i]}``."""
    n = len(perm)
    M = np.zeros((n, n))
    M[np.asarray(perm), np.arange(n)] = 1.0 if signs is None else np.asarray(signs, float)
    return M


def _planted_signed(width: int, rng, scaled: bool = False) -> np.ndarray:
    """A monomial Q with Q^4 = I: fixed points (+-1), 2-cycles (signs / scales a, 1/a with
    product 1, or for signs also -1: Q^2 = -I) and 4-cycles whose values multiply to 1."""
    blocks, n = [], 0
    patterns = [[1.0], [1.0, 1.0], [1.0] * 4] if scaled else \
        [[1.0], [-1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [1.0, -1.0, 1.0, -1.0],
         [-1.0, -1.0, 1.0, 1.0]]
    k = 0
    while n < width:
        vals = list(patterns[k % len(patterns)])
        k += 1
        if n + len(vals) > width:
            vals = [1.0]
        if scaled and len(vals) > 1:
            a = float(np.exp(rng.uniform(-0.5, 0.5)))
            vals = [a, 1.0 / a] if len(vals) == 2 else [a, 2.0, 1.0 / a, 0.5]
        blocks.append(vals)
        n += len(vals)
    idx = rng.permutation(width)
    Q = np.zeros((width, width))
    pos = 0
    for vals in blocks:
        cyc = idx[pos:pos + len(vals)]
        for t, v in enumerate(vals):      # Q e_{cyc[t]} = v e_{cyc[t+1]}
            Q[cyc[(t + 1) % len(vals)], cyc[t]] = v
        pos += len(vals)
    assert np.allclose(np.linalg.matrix_power(Q, 4), np.eye(width))
    return Q


def _average(rng, shape, rho_out, rho_in):
    """``W = 1/4 sum_k rho_out^k W0 rho_in^{-k}``: ``rho_out W = W rho_in`` (the kernel
    constraint of Theorem 4.1 [SMBK26] for a cyclic group of order 4)."""
    W0 = rng.normal(size=shape) / np.sqrt(shape[1])
    W = np.zeros(shape)
    for k in range(4):
        W += np.linalg.matrix_power(rho_out, k) @ W0 @ np.linalg.matrix_power(
            np.linalg.inv(rho_in), k)
    return W / 4


def planted_mlp(act: str = "tanh", noise: float = 0.0, d0: int = 16, widths=(24, 20), seed=0):
    """A [d0, *widths, 3] MLP equivariant under a 4-cycle structure P of the inputs, with
    latent actions Q_i (signed permutations for tanh, scaled permutations for ReLU) and an
    invariant output; plus absolute weight noise ``noise``."""
    rng = np.random.default_rng(seed)
    perm = np.concatenate([np.roll(np.arange(4 * b, 4 * b + 4), 1) for b in range(d0 // 4)])
    P = _perm_matrix(perm)
    Qs = [_planted_signed(w, rng, scaled=(act == "relu")) for w in widths]
    layers, rho_in = [], P
    for Q, w in zip(Qs, widths):
        lin = nn.Linear(rho_in.shape[0], w)
        W = _average(rng, (w, rho_in.shape[0]), Q, rho_in)
        b0 = rng.normal(size=w) * 0.3
        b = sum(np.linalg.matrix_power(Q, k) @ b0 for k in range(4)) / 4
        if act == "relu":
            b = b + 0.5                  # keep the units alive on N(0, 1) probes
            b = sum(np.linalg.matrix_power(Q, k) @ b for k in range(4)) / 4
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W + noise * rng.normal(size=W.shape)))
            lin.bias.copy_(torch.tensor(b + noise * rng.normal(size=b.shape)))
        layers += [lin, nn.Tanh() if act == "tanh" else nn.ReLU()]
        rho_in = Q
    head = nn.Linear(widths[-1], 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(_average(rng, (3, widths[-1]), np.eye(3), rho_in)))
    return nn.Sequential(*layers, head), perm, Qs


@pytest.mark.parametrize("noise", [1e-6, 1e-3])
def test_planted_tanh_signed_permutations_are_recovered(noise):
    net, perm, Qs = planted_mlp("tanh", noise)
    recs = measure_latent_actions(net, coordinate_permutation(perm), noise_probe((16,)),
                                  n_fit=3000, n_eval=1000)
    assert [r.layer for r in recs] == ["1", "3"]
    for r, Q in zip(recs, Qs):
        assert r.K == "signed permutations" and r.activation == "tanh"
        assert r.generator_order == 4 and r.model == "dense"
        assert np.array_equal(r.k, Q)
        assert r.homomorphism is True and r.power_is_identity is True
        assert r.relation_error == 0.0
        assert r.ls_error < 30 * noise and r.k_error < 30 * noise
        assert r.dist_to_K < 100 * noise      # the LS map amplifies the noise (G ill-posed)
        assert r.identity_error > 0.5
        d = r.to_dict()
        assert d["k_perm"] == np.abs(Q).argmax(1).tolist() and d["n_fit"] == 3000


def test_noisy_tanh_net_reports_large_errors():
    net, perm, Qs = planted_mlp("tanh", 1e-1)
    recs = measure_latent_actions(net, coordinate_permutation(perm), noise_probe((16,)),
                                  n_fit=3000, n_eval=1000)
    for r in recs:
        # far from equivariant: neither the K element nor the LS map explains the action
        assert r.k_error > 0.2 and r.ls_error > 0.1 and r.dist_to_K > 0.1
        assert r.k_error >= r.ls_error


@pytest.mark.parametrize("noise", [1e-6, 1e-3])
def test_planted_relu_scaled_permutations_are_recovered(noise):
    net, perm, Qs = planted_mlp("relu", noise, seed=1)
    recs = measure_latent_actions(net, coordinate_permutation(perm), noise_probe((16,)),
                                  n_fit=3000, n_eval=1000)
    for r, Q in zip(recs, Qs):
        assert r.K == "positively scaled permutations"
        assert np.array_equal(r.k != 0, Q != 0)
        assert np.allclose(r.k, Q, atol=100 * noise)
        assert r.homomorphism is True and r.relation_error < 100 * noise
        assert r.ls_error < 30 * noise and r.k_error < 30 * noise


def test_gcnn_flip_channel_map_is_the_orbit_swap():
    """eq. (3) [BK23]: the flip acts on a regular feature map by the flip of the grid and the
    swap of the two channels of each orbit; a GCNN at random init is exactly equivariant."""
    torch.manual_seed(0)
    net = gcnn_vgg11(width=1 / 16).eval()
    x = torch.randn(48, 3, 32, 32)
    recs = measure_latent_actions(net, "lr", x, layers=["2", "6", "10"])
    assert [r.layer for r in recs] == ["2", "6", "10"]
    for r in recs:
        assert r.model == "grid" and r.spatial == "lr" and r.K == "positively scaled permutations"
        m = r.latent_shape[0] // 2
        swap = np.eye(2 * m)[swap_permutation(m)].T
        assert np.array_equal(r.k != 0, swap != 0) and np.allclose(r.k, swap, atol=1e-5)
        assert r.homomorphism is True and r.k_error < 1e-5 and r.ls_error < 1e-5
        assert r.identity_error > 0.1
    # the same net under the up-down flip it was never built for: no channel map explains it
    ud = measure_latent_actions(net, "ud", x, layers=["2"])
    assert ud[0].spatial == "ud" and ud[0].k_error > 0.1


def test_rotation_and_fallback_models():
    """rot90 carries over to square feature maps; a permutation of the pixels that is no grid
    transform falls back to the flattened latent when it is small."""
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh())
    x = torch.randn(300, 2, 4, 4)
    r = measure_latent_actions(conv, "rot90", x)[0]
    assert r.model == "grid" and r.spatial == "rot90" and r.generator_order == 4
    rng = np.random.default_rng(0)
    rep = coordinate_permutation(rng.permutation(32))
    f = measure_latent_actions(conv, rep, x)[0]
    assert f.model == "flat" and f.A.shape == (48, 48)
    c = measure_latent_actions(conv, channel_permutation([1, 0], (2, 4, 4)), x)[0]
    assert c.model == "grid" and c.spatial == "identity" and c.A.shape == (3, 3)


def test_group_specs():
    assert image_group("flips", (3, 4, 4)).order == 4
    assert image_group("rot90", (1, 3, 3)).order == 4
    assert image_group("rot180", (1, 3, 3)).order == 2
    assert image_group("shift", (2, 5)).order == 5
    assert cyclic_shift(6, 2).order == 3
    g = image_group("lr", (1, 2, 3))
    x = np.arange(6)
    assert g.act(g.generator_indices[0], x).tolist() == [2, 1, 0, 5, 4, 3]
    with pytest.raises(ValueError, match="square"):
        image_group("rot90", (3, 4, 5))
    with pytest.raises(ValueError, match="kind"):
        image_group("ud", (12,))
    with pytest.raises(ValueError, match="perm"):
        channel_permutation([0, 0, 1], (3, 2, 2))


def test_activation_names_and_best_fit():
    assert layer_activation_name(nn.Tanh()) == "tanh" and layer_activation_name(nn.ReLU()) == "relu"
    assert layer_activation_name(nn.LeakyReLU(0.25)) == "leaky_relu:1/4"
    assert layer_activation_name(nn.Linear(2, 2)) is None
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 4))
    K = np.array([[0, 2.0, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, 3.0], [0, 0, 1.5, 0]])
    Y = Z @ K.T
    assert np.allclose(best_monomial_fit(Z.T @ Z, Z.T @ Y, "positive"), K)
    assert np.allclose(best_monomial_fit(Z.T @ Z, Z.T @ -Y, "nonzero"), -K)


def test_dense_rep_and_rep_out():
    """A general (dense) generator matrix, and the output record of rep_out (Definition 3.6)."""
    R = np.array([[0.0, -1.0], [1.0, 0.0]])              # rotation by 90 degrees of R^2
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Tanh())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
    rep = Rep([R])
    recs = measure_latent_actions(net, rep, noise_probe((2,)), rep_out=rep, n_fit=500,
                                  n_eval=200)
    assert [r.layer for r in recs] == ["1", "output"]
    assert np.array_equal(recs[0].k, R) and recs[0].homomorphism is True
    assert recs[1].K == "given by rep_out" and recs[1].k_error < 1e-6
    assert recs[1].homomorphism is True


def test_clear_errors():
    net, perm, _ = planted_mlp("tanh", 0.0)
    rep = coordinate_permutation(perm)
    with pytest.raises(ValueError, match="rep_in"):
        measure_latent_actions(net, coordinate_permutation(np.arange(10)[::-1]),
                               noise_probe((16,)), n_fit=10, n_eval=10)
    with pytest.raises(ValueError, match="probes"):
        measure_latent_actions(net, rep, torch.randn(20, 15))
    with pytest.raises(ValueError, match="probes"):
        measure_latent_actions(net, rep, torch.randn(1, 16))
    with pytest.raises(TypeError, match="probes"):
        measure_latent_actions(net, rep, [1, 2, 3])
    with pytest.raises(ValueError, match="layers: no module named"):
        measure_latent_actions(net, rep, torch.randn(20, 16), layers=["nope"])
    with pytest.raises(ValueError, match="layers: the module has no activation"):
        measure_latent_actions(nn.Sequential(nn.Linear(16, 4)), rep, torch.randn(20, 16))
    with pytest.raises(ValueError, match="rep_out"):
        measure_latent_actions(net, rep, torch.randn(20, 16), rep_out=image_group("lr", (4,)))
    shared = nn.Tanh()
    twice = nn.Sequential(nn.Linear(16, 16), shared, nn.Linear(16, 16), shared)
    with pytest.raises(ValueError, match="more than once"):
        measure_latent_actions(twice, rep, torch.randn(20, 16))
    # the module's mode and its in-place flags are restored
    relu = nn.ReLU(inplace=True)
    m = nn.Sequential(nn.Linear(16, 8), relu).train()
    measure_latent_actions(m, rep, torch.randn(40, 16))
    assert m.training and relu.inplace


def test_dead_units_are_assigned_to_themselves():
    """A dead unit (zero column of the statistics) fits any assignment equally: the tie goes to
    the identity, so an exactly equivariant net with dead units keeps a homomorphic k."""
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(400, 5))
    Z[:, [1, 3]] = 0.0
    K = np.zeros((5, 5))
    K[2, 0] = K[0, 2] = 1.0
    K[4, 4] = 1.0
    Y = Z @ K.T
    for kind in ("one", "sign", "positive"):
        k = best_monomial_fit(Z.T @ Z, Z.T @ Y, kind)
        assert k[1, 1] == 1.0 and k[3, 3] == 1.0 and np.allclose(k[[0, 2, 4]], K[[0, 2, 4]])
