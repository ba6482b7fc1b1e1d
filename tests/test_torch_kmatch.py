"""K-aware activation matching ([BK23] Section 4 with the latent groups of Section 5.1 [SMBK26]):
signed permutations before odd activations (K(tanh)), plain permutations otherwise (K(ReLU) =
positively scaled permutations, Lemma 2.2 [BK23]; GELU, sigmoid)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import identifiable.torch as itorch  # noqa: E402
from identifiable.torch import match as matching  # noqa: E402
from identifiable.torch import merge, structure  # noqa: E402

pytestmark = pytest.mark.torch

FAST = settings(max_examples=8, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- builders
def _images(n: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def vgg_style(seed: int, *, act: type = nn.Tanh, widths=(8, 12, 16), pool: type = nn.AvgPool2d,
              spatial: int = 1, hidden: int = 10, affine: bool = True, conv_bias: bool = True,
              n_classes: int = 5) -> nn.Sequential:
    """conv + BN + act blocks with 2 x 2 pools after the first two, an average pool to
    ``spatial x spatial``, Flatten, a hidden Linear + BN1d + act (+ Dropout) and a linear head;
    BatchNorm parameters and statistics random."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c = 3
    for j, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(w, affine=affine),
                   act()]
        if j < 2:
            layers.append(pool(2))
        c = w
    layers += [nn.AdaptiveAvgPool2d(spatial), nn.Flatten()]
    feats = c * spatial * spatial
    if hidden:
        layers += [nn.Linear(feats, hidden), nn.BatchNorm1d(hidden, affine=affine), act(),
                   nn.Dropout(0.3)]
        feats = hidden
    layers.append(nn.Linear(feats, n_classes))
    net = nn.Sequential(*layers).eval()
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                k = m.num_features
                if affine:
                    m.weight.copy_(0.5 + torch.rand(k, generator=g))
                    m.bias.copy_(0.5 * torch.randn(k, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(k, generator=g))
                m.running_var.copy_(0.5 + torch.rand(k, generator=g))
    return net


def planted(net: nn.Sequential, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A random signed channel permutation: signs -1 (at least one per layer) only where the
    layer's channels may be negated (:func:`structure.channel_group`)."""
    rng = np.random.default_rng(seed)
    perms, signs = [], []
    for i in structure.hidden_units(net):
        c = net[i].weight.shape[0]
        perms.append(rng.permutation(c))
        s = np.ones(c, dtype=np.int64)
        if structure.channel_group(net, i) == "signed":
            s = rng.choice([-1, 1], size=c)
            s[rng.integers(c)] = -1
        signs.append(s)
    return perms, signs


def _max_param_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa
               if sa[k].is_floating_point())


_VARIANTS = [dict(), dict(spatial=2), dict(affine=False, conv_bias=False), dict(hidden=0),
             dict(pool=nn.MaxPool2d), dict(spatial=2, widths=(6, 5, 7), hidden=4)]


# ----------------------------------------------------------------------------- the table
@pytest.mark.parametrize("module,odd,words", [
    (nn.Tanh(), True, "signed permutations"),
    (nn.Identity(), True, "GL"),
    (nn.Dropout(0.5), True, "GL"),
    (nn.ReLU(), False, "positively scaled permutations"),
    (nn.LeakyReLU(0.1), False, "positively scaled permutations"),
    (nn.GELU(), False, "K(gelu) = permutations"),
    (nn.Sigmoid(), False, "1 - sigmoid(x) is affine"),
    (nn.GELU(approximate="tanh"), False, "not in the library"),
])
def test_oddness_comes_from_the_library(module, odd, words):
    got, why = structure.odd_activation(module)
    assert got is odd and words in why


def test_channel_groups_per_layer():
    net = vgg_style(0, pool=nn.MaxPool2d)
    layers = structure.hidden_units(net)
    assert [structure.channel_group(net, i) for i in layers] == ["perm", "perm", "signed",
                                                                 "signed"]
    assert "MaxPool2d" in structure.sign_blocker(net, layers[0])
    for act in (nn.ReLU, nn.GELU, nn.Sigmoid, nn.LeakyReLU):
        relu = vgg_style(0, act=act)
        assert {structure.channel_group(relu, i) for i in structure.hidden_units(relu)} == \
            {"perm"}


# ----------------------------------------------------------------------------- permuting
@FAST
@given(seed=st.integers(0, 10_000), variant=st.sampled_from(range(len(_VARIANTS))))
def test_signed_permutation_keeps_function(seed, variant):
    net = vgg_style(seed, **_VARIANTS[variant])
    x = _images(6, seed=seed)
    perms, signs = planted(net, seed)
    out = itorch.permute_network(net, perms, signs)
    with torch.no_grad():
        torch.testing.assert_close(out(x), net(x), atol=1e-5, rtol=1e-4)
        # the pre-activations of a negated channel really are negated (the copy is not the net)
        i = structure.hidden_units(net)[-1]
        k = structure.repair_point(net, i)
        za, zb = net[:k + 1](x), out[:k + 1](x)
        p, s = perms[-1], torch.as_tensor(signs[-1], dtype=za.dtype)
        s = s.view((1, -1) + (1,) * (za.dim() - 2))
        torch.testing.assert_close(zb, za[:, p] * s, atol=1e-5, rtol=1e-4)
    # the inverse signed permutation (argsort(p), s[argsort(p)]) restores every tensor exactly
    inv = [np.argsort(p) for p in perms]
    back = itorch.permute_network(out, inv, [s[q] for s, q in zip(signs, inv)])
    assert _max_param_diff(back, net) == 0.0


def test_signs_refused_where_the_activation_is_not_odd():
    x = _images(4)
    for act, name in ((nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"), (nn.GELU, "gelu"),
                      (nn.LeakyReLU, "leaky_relu")):
        net = vgg_style(1, act=act)
        perms, _ = planted(net, 1)
        signs = [np.ones(len(p), dtype=np.int64) for p in perms]
        ok = itorch.permute_network(net, perms, signs)          # all +1: fine
        with torch.no_grad():
            torch.testing.assert_close(ok(x), net(x), atol=1e-5, rtol=1e-4)
        signs[1][0] = -1
        with pytest.raises(ValueError, match=f"layer 4 cannot be negated.*{name}"):
            itorch.permute_network(net, perms, signs)
        with pytest.raises(ValueError, match="group='signed'"):
            itorch.match_activations(net, net, x, group="signed")
    net = vgg_style(1, pool=nn.MaxPool2d)                       # tanh, then a max-pool
    perms, signs = planted(net, 1)
    signs[0][0] = -1
    with pytest.raises(ValueError, match=r"module 3 \(MaxPool2d\)"):
        itorch.permute_network(net, perms, signs)
    net = vgg_style(1)
    perms, signs = planted(net, 1)
    with pytest.raises(ValueError, match="each \\+1 or -1"):
        itorch.permute_network(net, perms, [s * 2 for s in signs])
    with pytest.raises(ValueError, match="sign vectors"):
        itorch.permute_network(net, perms, signs[:-1])
    with pytest.raises(ValueError, match="group"):
        itorch.match_activations(net, net, x, group="monomial")


# ----------------------------------------------------------------------------- matching
@FAST
@given(seed=st.integers(0, 10_000), variant=st.sampled_from([0, 1, 2, 4, 5]))
def test_kaware_matching_recovers_the_planted_signed_permutation(seed, variant):
    x = _images(40, seed=seed + 1)
    a = itorch.reset_bn_stats(vgg_style(seed, **_VARIANTS[variant]), x, batch_size=len(x))
    perms, signs = planted(a, seed)
    b = itorch.permute_network(a, perms, signs)
    match = itorch.match_activations(a, b, x, batch_size=16)
    assert match.groups == [structure.channel_group(a, i) for i in match.layers]
    for p, s, fp, fs in zip(perms, signs, match.perms, match.signs):
        q = np.argsort(p)
        np.testing.assert_array_equal(fp, q)
        np.testing.assert_array_equal(fs, s[q])
    assert np.allclose(match.matched_correlation(), 1.0, atol=1e-4)
    aligned = itorch.permute_network(b, match.perms, match.signs)
    assert _max_param_diff(aligned, a) < 1e-6
    # plain permutations cannot see the sign: a layer with a planted -1 is matched wrongly or
    # with a matched correlation of -1 somewhere (one negated channel: every swap with it ties
    # with the truth, corr(a_i, a_j) - corr(a_j, a_i) = 0; two or more: swapping two of them
    # gains -2 corr(a_i, a_j) + 2 > 0), never perfectly; a layer without -1 is matched exactly
    plain = itorch.match_activations(a, b, x, batch_size=16, group="perm")
    assert plain.groups == ["perm"] * len(plain.layers)
    assert all(np.all(s == 1) for s in plain.signs)
    for p, s, fp, c, g in zip(perms, signs, plain.perms, plain.correlations, match.groups):
        negated = bool((s == -1).any())
        assert not negated or g == "signed"     # signs are planted only where K allows them
        wrong = not np.array_equal(fp, np.argsort(p))
        perfect = bool(np.all(c[np.arange(len(fp)), fp] > 1 - 1e-4))
        assert (wrong or not perfect) == negated
        if int((s == -1).sum()) >= 2:
            assert wrong


def test_barrier_with_a_signed_permuted_copy_is_zero_only_when_k_aware():
    x = _images(200, seed=3)
    a = itorch.reset_bn_stats(vgg_style(3, widths=(12, 16, 16), hidden=12), x,
                              batch_size=len(x))
    perms, signs = planted(a, 3)
    b = itorch.permute_network(a, perms, signs)
    with torch.no_grad():
        labels = a(x).argmax(1)
    before = {k: v.clone() for k, v in b.state_dict().items()}
    k_aware = itorch.merge_barrier(a, b, x, x, labels, batch_size=len(x),
                                   repair_endpoints=("eval", "train"))
    assert k_aware.accuracy_a == k_aware.accuracy_b == 1.0
    assert k_aware.accuracy_mid == 1.0 and k_aware.accuracy_mid_repair == 1.0
    assert k_aware.barrier == 0.0 and k_aware.barrier_repair == 0.0
    # the authors' convention renormalises to batch statistics, which differ from the running
    # ones by the unbiased-variance factor n / (n - 1): not exactly the identity on a self merge
    assert k_aware.repairs["train"]["accuracy_mid_repair"] >= 0.99
    assert k_aware.groups == ["signed"] * 4
    plain = itorch.merge_barrier(a, b, x, x, labels, batch_size=len(x), group="perm")
    assert plain.accuracy_a == plain.accuracy_b == 1.0
    assert plain.barrier > 0.3, plain.to_dict()      # the merged net has lost the function
    d = json.loads(json.dumps(k_aware.to_dict()))
    assert d["groups"] == ["signed"] * 4
    assert d["signs"] == [s.tolist() for s in k_aware.signs]
    assert any(-1 in s for s in d["signs"])
    assert all(torch.equal(before[k], v) for k, v in b.state_dict().items())
    # the halfway net of the K-aware match is the net itself, up to round-off
    aligned = itorch.permute_network(b, k_aware.perms, k_aware.signs)
    mid = itorch.reset_bn_stats(itorch.interpolate(a, aligned, 0.5), x, batch_size=len(x))
    with torch.no_grad():
        torch.testing.assert_close(mid(x), a(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("act", [nn.ReLU, nn.GELU, nn.Sigmoid, nn.LeakyReLU])
def test_non_odd_nets_match_by_plain_permutations_as_before(act):
    x = _images(24, seed=5)
    a = itorch.reset_bn_stats(vgg_style(5, act=act), x)
    b = itorch.reset_bn_stats(vgg_style(6, act=act), x)
    auto = itorch.match_activations(a, b, x, batch_size=8)
    plain = itorch.match_activations(a, b, x, batch_size=8, group="perm")
    assert auto.groups == plain.groups == ["perm"] * 4
    for name in ("perms", "signs", "correlations", "pre_mean_b"):
        for u, v in zip(getattr(auto, name), getattr(plain, name)):
            np.testing.assert_array_equal(u, v)
    assert all(np.all(s == 1) for s in auto.signs)
    # the old assignment: linear_sum_assignment(corr, maximize=True)
    from scipy.optimize import linear_sum_assignment
    for c, p in zip(auto.correlations, auto.perms):
        rows, cols = linear_sum_assignment(c, maximize=True)
        np.testing.assert_array_equal(p[rows], cols)


def test_repair_reuses_signed_statistics():
    """REPAIR with the MatchResult's endpoint moments (b's means negated by the signs) equals
    REPAIR measuring the aligned nets; the two tanh nets are independent, so the match has -1s."""
    x = _images(120, seed=7)
    a = itorch.reset_bn_stats(vgg_style(7, spatial=2), x)
    b = itorch.reset_bn_stats(vgg_style(8, spatial=2), x)
    match = itorch.match_activations(a, b, x, batch_size=40)
    assert any((s == -1).any() for s in match.signs)
    b_al = itorch.permute_network(b, match.perms, match.signs)
    with torch.no_grad():
        torch.testing.assert_close(b_al(x), b(x), atol=1e-5, rtol=1e-4)
    assert min(match.matched_correlation()) > 0
    mid = itorch.reset_bn_stats(itorch.interpolate(a, b_al, 0.5), x)
    measured = itorch.repair(mid, a, b_al, x, batch_size=40)
    reused = itorch.repair(mid, a, b_al, x, batch_size=40, match=match)
    assert _max_param_diff(measured, reused) < 1e-4
    # and the statistics at each REPAIR point of b_al are b's, signed and permuted
    for li, i in enumerate(match.layers):
        k = structure.repair_point(a, i)
        with torch.no_grad():
            y = b_al[:k + 1](x).double()
        dims = [0] + list(range(2, y.dim()))
        want = match.pre_mean_b[li][match.perms[li]] * match.signs[li]
        np.testing.assert_allclose(y.mean(dims).numpy(), want, atol=1e-5)


def test_gcnn_barrier_of_a_tanh_net_runs_k_aware():
    x = _images(32, seed=9)
    net = itorch.reset_bn_stats(vgg_style(9, spatial=2), x)
    with torch.no_grad():
        labels = net(x).argmax(1)
    res = itorch.gcnn_barrier(net, x, x, labels, batch_size=16)
    assert res.groups == ["signed"] * 4 and res.flip_report.exact
    assert np.isfinite(res.barrier) and np.isfinite(res.barrier_repair)
    assert len(res.signs) == len(res.perms) == 4


# ----------------------------------------------------------------------------- the package
def test_package_reexports_the_backend_lazily():
    names = ("match_activations", "permute_network", "flip_network", "merge_barrier",
             "gcnn_barrier", "interpolate", "repair", "reset_bn_stats", "barrier", "accuracy",
             "invariance_error", "order_counts", "least_squares", "monomial_parts",
             "TrainConfig", "train_recipe", "channel_group", "MatchResult")
    for name in names:
        assert name in itorch.__all__ and name in dir(itorch)
    for name in itorch.__all__:
        owner = importlib.import_module(f"identifiable.torch.{itorch._OWNER[name]}")
        assert getattr(itorch, name) is getattr(owner, name), name
        assert name not in itorch._EXPORTS            # no name shadows a submodule
    assert itorch.barrier is merge.barrier and itorch.match_activations is \
        matching.match_activations
    with pytest.raises(AttributeError):
        itorch.no_such_name  # noqa: B018
    code = ("import sys, identifiable.torch as t; print([m for m in sys.modules "
            "if m == 'torch' or m.startswith('identifiable.torch.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
