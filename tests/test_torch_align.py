"""Flipping, activation matching, merging and REPAIR (Sections 3, 4, Appendix A.2.1 [BK23])."""

from __future__ import annotations

import copy
import functools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from identifiable.torch import align, flip, merge, structure  # noqa: E402
from identifiable.torch import match as matching  # noqa: E402
from identifiable.torch.vgg import gcnn_vgg11, swap_permutation, to_plain  # noqa: E402

pytestmark = pytest.mark.torch

FAST = settings(max_examples=8, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: one intra-op thread avoids thread start-up and, on a busy
    machine, waits at every parallel region (10x the run time on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- builders
def _images(n: int, size: int = 8, seed: int = 0, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=g)


def _flip_closed(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.flip(-1)])


def _symmetrise_bn(net: nn.Sequential) -> None:
    """Average the running statistics over each orbit {c, c + m} (exact ties)."""
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                h = m.num_features // 2
                for t in (m.running_mean, m.running_var):
                    avg = 0.5 * (t[:h] + t[h:])
                    t.copy_(torch.cat([avg, avg]))


def _tied_bn(n_orbits: int, g: torch.Generator, one_d: bool = False) -> nn.Module:
    bn = (nn.BatchNorm1d if one_d else nn.BatchNorm2d)(2 * n_orbits)
    with torch.no_grad():
        gamma = 0.5 + torch.rand(n_orbits, generator=g)
        beta = 0.3 * torch.randn(n_orbits, generator=g)
        bn.weight.copy_(gamma.repeat(2))
        bn.bias.copy_(beta.repeat(2))
    return bn


def tied_gcnn(orbits=(3, 4, 5), n_classes: int = 5, seed: int = 0, spatial_head: bool = False,
              hidden: int = 0, calib: torch.Tensor | None = None) -> nn.Sequential:
    """An exactly flip-equivariant CNN with tied kernels (eq. (3) [BK23]), on 8 x 8 inputs.

    Lifting conv ``[phi; tau phi]``, group convs ``[[A, B], [tau B, tau A]]``, BatchNorm shared
    over orbits; a 2 x 2 map at the end, either averaged (head columns duplicated / 2) or
    flattened (head weights symmetric under flip + swap), optionally through a hidden group
    linear layer with ``hidden`` orbits. Independent of vgg.py.
    """
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    c_in, m_prev = 3, None
    for j, m in enumerate(orbits):
        if j == 0:
            phi = torch.randn(m, c_in, 3, 3, generator=g) / 3
            w = torch.cat([phi, phi.flip(-1)], 0)
        else:
            a = torch.randn(m, m_prev, 3, 3, generator=g) / (3 * m_prev ** 0.5)
            b = torch.randn(m, m_prev, 3, 3, generator=g) / (3 * m_prev ** 0.5)
            w = torch.cat([torch.cat([a, b], 1), torch.cat([b.flip(-1), a.flip(-1)], 1)], 0)
        conv = nn.Conv2d(w.shape[1], 2 * m, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_((0.1 * torch.randn(m, generator=g)).repeat(2))
        layers += [conv, _tied_bn(m, g), nn.ReLU(inplace=True)]
        if j < 2:
            layers.append(nn.MaxPool2d(2))
        c_in, m_prev = 2 * m, m
    m = m_prev
    if not spatial_head and not hidden:
        v = torch.randn(n_classes, m, generator=g)
        head = nn.Linear(2 * m, n_classes)
        with torch.no_grad():
            head.weight.copy_(torch.cat([v, v], 1) / 2)
            head.bias.copy_(0.1 * torch.randn(n_classes, generator=g))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), head]
    else:
        layers.append(nn.Flatten())

        def g_act(t: torch.Tensor) -> torch.Tensor:   # the flip on (rows, 2m, 2, 2) weights
            return torch.cat([t[:, m:], t[:, :m]], 1).flip(-1)

        if hidden:
            top = torch.randn(hidden, 2 * m, 2, 2, generator=g) / (2 * m ** 0.5)
            lin = nn.Linear(2 * m * 4, 2 * hidden)
            with torch.no_grad():
                lin.weight.copy_(torch.cat([top, g_act(top)]).reshape(2 * hidden, -1))
                lin.bias.copy_((0.1 * torch.randn(hidden, generator=g)).repeat(2))
            v = torch.randn(n_classes, hidden, generator=g)
            head = nn.Linear(2 * hidden, n_classes)
            with torch.no_grad():
                head.weight.copy_(torch.cat([v, v], 1) / 2)
                head.bias.copy_(0.1 * torch.randn(n_classes, generator=g))
            layers += [lin, _tied_bn(hidden, g, one_d=True), nn.ReLU(), head]
        else:
            v = torch.randn(n_classes, m, 2, 2, generator=g)
            head = nn.Linear(2 * m * 4, n_classes)
            with torch.no_grad():
                head.weight.copy_(torch.cat([v, v.flip(-1)], 1).reshape(n_classes, -1))
                head.bias.copy_(0.1 * torch.randn(n_classes, generator=g))
            layers.append(head)
    net = nn.Sequential(*layers).eval()
    if calib is not None:
        net = align.reset_bn_stats(net, calib)
        _symmetrise_bn(net)
    return net


def random_cnn(seed: int, *, bn: bool = True, stride2: bool = False, spatial: int = 1,
               hidden: int = 0, act: type = nn.ReLU, widths=(4, 6, 8),
               n_classes: int = 5) -> nn.Sequential:
    """An unconstrained small CNN; ``spatial``: the side of the map before Flatten."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c = 3
    for j, w in enumerate(widths):
        layers.append(nn.Conv2d(c, w, 3, padding=1, stride=2 if (stride2 and j == 1) else 1))
        if bn:
            layers.append(nn.BatchNorm2d(w))
        layers.append(act())
        if j == 0:
            layers.append(nn.MaxPool2d(2))
        c = w
    layers.append(nn.AdaptiveAvgPool2d(spatial) if spatial == 1 else nn.AdaptiveMaxPool2d(spatial))
    layers.append(nn.Flatten())
    feats = c * spatial * spatial
    if hidden:
        layers += [nn.Linear(feats, hidden)] + ([nn.BatchNorm1d(hidden)] if bn else []) + \
                  [act(), nn.Dropout(0.5)]
        feats = hidden
    layers.append(nn.Linear(feats, n_classes))
    net = nn.Sequential(*layers).eval()
    _randomise_bn(net, seed)
    return net


def _randomise_bn(net: nn.Sequential, seed: int) -> None:
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.3 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))


def _rand_perms(net: nn.Sequential, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.permutation(net[i].weight.shape[0]) for i in align.hidden_units(net)]


def _max_param_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa
               if sa[k].is_floating_point())


def _point_stats(net: nn.Sequential, k: int, x: torch.Tensor):
    """Per-channel mean and population std of the output of module k (eval mode)."""
    with torch.no_grad():
        y = net.eval()[:k + 1](x).double()
    dims = [0] + list(range(2, y.dim()))
    return y.mean(dims), y.var(dims, correction=0).sqrt()


def _batch_point_stats(net: nn.Sequential, k: int, x: torch.Tensor, batch_size: int):
    """Like :func:`_point_stats`, but every batch of ``batch_size`` images normalised by its own
    BatchNorm statistics (a copy of the net in train mode): the REPAIR authors' endpoints."""
    net = copy.deepcopy(net).train()
    with torch.no_grad():
        y = torch.cat([net[:k + 1](x[i:i + batch_size]).double()
                       for i in range(0, x.shape[0], batch_size)])
    dims = [0] + list(range(2, y.dim()))
    return y.mean(dims), y.var(dims, correction=0).sqrt()


def _pre_point(net: nn.Sequential, i: int) -> int:
    return i + 1 if isinstance(net[i + 1], (nn.BatchNorm2d, nn.BatchNorm1d)) else i


# ----------------------------------------------------------------------------- exact GCNNs
@pytest.mark.parametrize("spatial_head,hidden", [(False, 0), (True, 0), (True, 3)])
def test_tied_gcnn_is_recovered_exactly(spatial_head, hidden):
    x = _flip_closed(_images(48, seed=1))
    net = tied_gcnn(seed=2, spatial_head=spatial_head, hidden=hidden, calib=x)
    assert align.invariance_error(net, x) < 1e-5
    flipped, report = align.flip_network(net, (8, 8))
    assert report.exact and report.issues == []
    with torch.no_grad():
        torch.testing.assert_close(flipped(x), net(x.flip(-1)), atol=1e-5, rtol=1e-5)
    match = align.match_activations(net, flipped, x, batch_size=40)
    layers = align.hidden_units(net)
    assert match.layers == layers and match.n_images == x.shape[0]
    for p, i in zip(match.perms, layers):
        c = net[i].weight.shape[0]
        np.testing.assert_array_equal(p, swap_permutation(c // 2))
        assert align.order_counts(p) == {"1": 0, "2": c, ">2": 0}
    # the aligned flipped net *is* the net: the halfway weights are the original ones
    aligned = align.permute_network(flipped, match.perms)
    mid = align.interpolate(net, aligned, 0.5)
    assert _max_param_diff(mid, net) < 1e-6
    with torch.no_grad():
        torch.testing.assert_close(align.reset_bn_stats(mid, x)(x), net(x), atol=1e-4, rtol=1e-4)
    labels = net(x).argmax(1)
    # one batch, as in the calibration: the reset statistics are the net's own
    res = align.gcnn_barrier(net, x, x, labels, batch_size=len(x))
    assert res.flip_report.exact
    assert res.accuracy_a == 1.0 and res.accuracy_b >= 0.98
    assert abs(res.barrier) < 0.02 and abs(res.barrier_repair) < 0.02
    assert all(o[">2"] == 0 and o["1"] == 0 for o in res.orders)


@pytest.mark.parametrize("seed", [0, 1])
def test_exported_gcnn_vgg11_recovers_swap(seed):
    torch.manual_seed(seed)
    x = _images(40, size=32, seed=seed)
    gnet = gcnn_vgg11(width=0.0625, n_classes=4)
    with torch.no_grad():                         # calibrate, then perturb the orbit statistics
        bns = [m for m in gnet.modules() if isinstance(m, nn.BatchNorm3d)]
        for bn in bns:
            bn.momentum = None
        gnet.train()(_flip_closed(x))
        gnet.eval()
        for bn in bns:
            c = bn.num_features
            bn.running_mean.add_(0.1 * torch.randn(c) * bn.running_var.sqrt())
            bn.running_var.mul_(torch.empty(c).uniform_(0.8, 1.25))
            bn.weight.copy_(torch.empty(c).uniform_(0.5, 1.5))
            bn.bias.copy_(0.1 * torch.randn(c))
    net = to_plain(gnet)
    assert align.invariance_error(net, x) < 1e-5
    flipped, report = align.flip_network(net, (32, 32))
    assert report.exact
    match = align.match_activations(net, flipped, x, batch_size=16)
    for p, i in zip(match.perms, match.layers):
        np.testing.assert_array_equal(p, swap_permutation(net[i].out_channels // 2))
        assert align.order_counts(p)[">2"] == 0
    aligned = align.permute_network(flipped, match.perms)
    assert _max_param_diff(align.interpolate(net, aligned, 0.5), net) < 1e-6
    with torch.no_grad():
        labels = net(x).argmax(1)
    res = align.gcnn_barrier(net, x, x, labels, batch_size=16)
    assert res.flip_report.exact and res.accuracy_a == res.accuracy_b == 1.0
    assert all(o[">2"] == 0 and o["1"] == 0 for o in res.orders)
    for p, q in zip(res.perms, match.perms):
        np.testing.assert_array_equal(p, q)


def test_untied_cnn_is_not_a_gcnn():
    x = _images(64, seed=3)
    net = align.reset_bn_stats(random_cnn(3, widths=(6, 8, 8)), x)
    assert align.invariance_error(net, x) > 0.02
    flipped, report = align.flip_network(net, (8, 8))
    assert report.exact
    match = align.match_activations(net, flipped, x)
    aligned = align.permute_network(flipped, match.perms)
    convs = [i for i in align.hidden_units(net)]
    diff = max(float((net[i].weight - aligned[i].weight).abs().max().detach()) for i in convs)
    assert diff > 0.05
    res = align.gcnn_barrier(net, x, x, net(x).argmax(1))
    assert res.accuracy_a == 1.0 and res.accuracy_b < 1.0
    assert np.isfinite(res.barrier) and np.isfinite(res.barrier_repair)


# ----------------------------------------------------------------------------- permutations
_VARIANTS = [dict(), dict(stride2=True), dict(spatial=2), dict(spatial=2, hidden=7),
             dict(bn=False, hidden=5, act=nn.LeakyReLU), dict(act=nn.GELU, spatial=3),
             dict(act=nn.Tanh, stride2=True, hidden=4)]


@FAST
@given(seed=st.integers(0, 10_000), variant=st.sampled_from(range(len(_VARIANTS))))
def test_permute_network_keeps_function(seed, variant):
    net = random_cnn(seed, **_VARIANTS[variant])
    x = _images(6, seed=seed)
    perms = _rand_perms(net, seed)
    out = align.permute_network(net, perms)
    with torch.no_grad():
        torch.testing.assert_close(out(x), net(x), atol=1e-5, rtol=1e-4)
    # the hidden channels really moved, and permuting back restores the weights
    back = align.permute_network(out, [np.argsort(p) for p in perms])
    assert _max_param_diff(back, net) == 0.0


def test_permute_network_rejects_bad_input():
    net = random_cnn(0)
    perms = _rand_perms(net, 0)
    with pytest.raises(ValueError, match="permutations"):
        align.permute_network(net, perms[:-1])
    with pytest.raises(ValueError, match="permutation of range"):
        align.permute_network(net, [np.zeros_like(p) for p in perms])
    with pytest.raises(ValueError, match="not a hidden"):
        align.permute_network(net, [np.arange(5)], layers=[len(net) - 1])


@FAST
@given(seed=st.integers(0, 10_000), variant=st.sampled_from([0, 1, 3, 5]))
def test_matcher_recovers_a_known_permutation(seed, variant):
    x = _images(32, seed=seed + 1)
    net_a = align.reset_bn_stats(random_cnn(seed, **_VARIANTS[variant]), x)
    perms = _rand_perms(net_a, seed)
    net_b = align.permute_network(net_a, perms)
    match = align.match_activations(net_a, net_b, x, batch_size=12)
    for p, found in zip(perms, match.perms):
        np.testing.assert_array_equal(found, np.argsort(p))
    for c, p in zip(match.correlations, match.perms):
        assert c.dtype == np.float64 and not np.isnan(c).any()
        assert np.allclose(c[np.arange(len(p)), p], 1.0, atol=1e-4)


@pytest.mark.parametrize("variant", [0, 3, 4])
def test_paired_pass_equals_separate_nets(variant, monkeypatch):
    """The channel-stacked pair net computes both nets' activations; the fallback (nets run
    separately) gives the same statistics."""
    x = _images(20, seed=9)
    a = align.reset_bn_stats(random_cnn(9, **_VARIANTS[variant]), x)
    b = align.reset_bn_stats(random_cnn(10, **_VARIANTS[variant]), x)
    pair = matching._pair_net(a, b)
    assert pair is not None
    ya, yb, yp = x, x, x
    with torch.no_grad():
        for k in range(len(a)):
            ya, yb, yp = a[k](ya), b[k](yb), pair[k](yp)
            torch.testing.assert_close(yp, torch.cat([ya, yb], 1), atol=1e-5, rtol=1e-5)
    paired = align.match_activations(a, b, x, batch_size=8)
    monkeypatch.setattr(matching, "_pair_net", lambda net_a, net_b: None)
    separate = align.match_activations(a, b, x, batch_size=8)
    for p, q in zip(paired.perms, separate.perms):
        np.testing.assert_array_equal(p, q)
    for name in ("correlations", "pre_mean_a", "pre_std_a", "pre_mean_b", "pre_std_b"):
        for u, v in zip(getattr(paired, name), getattr(separate, name)):
            np.testing.assert_allclose(u, v, atol=1e-5)


def test_align_is_kept_for_old_imports():
    """``identifiable.torch.align`` re-exports every name of its ``__all__`` from the one
    module of the split that owns it (the same objects)."""
    owners = (structure, flip, matching, merge)
    for name in align.__all__:
        homes = [m for m in owners if name in m.__all__]
        assert len(homes) == 1, name
        assert getattr(align, name) is getattr(homes[0], name)
        assert getattr(homes[0], name).__module__ == homes[0].__name__


def test_pair_net_declines_different_hyperparameters():
    a = random_cnn(0, act=nn.LeakyReLU)
    b = copy.deepcopy(a)
    b[2].negative_slope = 0.3
    assert matching._pair_net(a, b) is None
    b = copy.deepcopy(a)
    b[1].eps = 1e-3
    assert matching._pair_net(a, b) is None
    c = copy.deepcopy(a)
    c[2].inplace = True
    assert matching._pair_net(a, c) is not None


def test_dead_channels_give_zero_correlation():
    x = _images(16, seed=0)
    net = random_cnn(0, bn=False)
    with torch.no_grad():
        net[0].weight[1:3] = 0.0
        net[0].bias[1] = -1.0                    # channel 1 of layer 0 is always 0 after ReLU
        net[0].bias[2] = 0.7                     # channel 2 is the constant 0.7
    match = align.match_activations(net, net, x)
    c = match.correlations[0]
    assert not np.isnan(c).any()
    for dead in (1, 2):
        assert np.all(c[dead] == 0) and np.all(c[:, dead] == 0)
    assert np.allclose(np.diag(c)[[0, 3]], 1.0)


def _brute_orders(perm: list[int]) -> list[int]:
    out = []
    for i in range(len(perm)):
        j, k = perm[i], 1
        while j != i:
            j, k = perm[j], k + 1
        out.append(k)
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.permutations(list(range(n)))))
def test_permutation_orders_match_brute_force(perm):
    orders = align.permutation_orders(perm)
    brute = _brute_orders(perm)
    assert orders.tolist() == brute
    counts = align.order_counts(perm)
    assert counts == {"1": brute.count(1), "2": brute.count(2),
                      ">2": sum(o > 2 for o in brute)}
    assert sum(counts.values()) == len(perm)


# ----------------------------------------------------------------------------- flipping
@pytest.mark.parametrize("variant", range(len(_VARIANTS)))
def test_flip_network_is_the_net_on_flipped_images(variant):
    kwargs = dict(_VARIANTS[variant])
    size = 14 if kwargs.get("stride2") else 8   # pool 14 -> 7, then stride 2 on an odd width
    net = random_cnn(variant, **kwargs)
    flipped, report = align.flip_network(net, (size, size))
    assert report.exact, report.issues
    x = _images(5, size=size, seed=variant)
    with torch.no_grad():
        torch.testing.assert_close(flipped(x), net(align.flip_images(x)), atol=1e-5, rtol=1e-4)
    assert torch.equal(align.flip_images(x), x.flip(-1))


def _strided(width_in: int) -> tuple[nn.Sequential, tuple[int, int]]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(5 * 3 * ((width_in + 1) // 2), 3))
    return net, (6, width_in)


@pytest.mark.parametrize("width,exact", [(8, False), (7, True)])
def test_footnote2_stride2_on_even_width(width, exact):
    net, size = _strided(width)
    flipped, report = align.flip_network(net, size)
    assert report.exact is exact
    x = torch.randn(4, 3, *size)
    with torch.no_grad():
        err = float((flipped(x) - net(x.flip(-1))).abs().max())
    if exact:
        assert report.issues == [] and err < 1e-5
    else:
        assert len(report.issues) == 1
        assert "module 2 (Conv2d)" in report.issues[0] and "width 8" in report.issues[0]
        assert "stride 2" in report.issues[0]
        assert err > 1e-3


def test_flip_report_pools_and_padding():
    net = nn.Sequential(nn.Conv2d(3, 4, 2, padding="same"), nn.MaxPool2d(2), nn.AvgPool2d(3, 2),
                        nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(24, 2))
    _, report = align.flip_network(net, (11, 11))
    assert not report.exact
    text = "\n".join(report.issues)
    assert "module 0 (Conv2d)" in text and "same" in text           # even kernel, 'same'
    assert "module 1 (MaxPool2d)" in text and "width 11" in text    # 2 x 2 pool on 11
    assert "module 2 (AvgPool2d)" not in text                # 3 x 3 / stride 2 on 5: fine
    assert len(report.issues) == 2


def test_flip_network_needs_the_right_input_size():
    net = random_cnn(0, spatial=2)
    with pytest.raises(ValueError):
        align.flip_network(nn.Sequential(*list(net)[:-3], nn.Flatten(), nn.Linear(8 * 4, 5)),
                           (16, 16))


# ----------------------------------------------------------------------------- merging
def test_interpolate_endpoints_and_num_batches_tracked():
    a, b = random_cnn(0), random_cnn(1)
    for m in b:
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.fill_(7)
    assert _max_param_diff(align.interpolate(a, b, 0.0), a) == 0.0
    assert _max_param_diff(align.interpolate(a, b, 1.0), b) == 0.0
    mid = align.interpolate(a, b, 0.25)
    torch.testing.assert_close(mid[0].weight, 0.75 * a[0].weight + 0.25 * b[0].weight)
    torch.testing.assert_close(mid[1].running_var,
                               0.75 * a[1].running_var + 0.25 * b[1].running_var)
    assert int(mid[1].num_batches_tracked) == int(a[1].num_batches_tracked)
    with pytest.raises(ValueError):
        align.interpolate(a, random_cnn(0, widths=(4, 6, 9)), 0.5)


def test_reset_bn_stats_equals_data_statistics():
    x = _images(20, seed=4)
    net = random_cnn(4, hidden=6)
    out = align.reset_bn_stats(net, x, batch_size=64)
    assert not out.training
    # independent: the train-mode forward, recording (mean, unbiased var) of each BN input
    y = x.double()
    with torch.no_grad():
        for m_old, m_new in zip(net, out):
            if isinstance(m_old, (nn.BatchNorm2d, nn.BatchNorm1d)):
                dims = [0] + list(range(2, y.dim()))
                mean, var = y.mean(dims), y.var(dims, correction=1)
                torch.testing.assert_close(m_new.running_mean.double(), mean, rtol=1e-5,
                                           atol=1e-6)
                torch.testing.assert_close(m_new.running_var.double(), var, rtol=1e-5, atol=1e-6)
                shape = (1, -1) + (1,) * (y.dim() - 2)
                yb = (y - mean.view(shape)) / (y.var(dims, correction=0).view(shape)
                                               + m_old.eps).sqrt()
                y = yb * m_old.weight.double().view(shape) + m_old.bias.double().view(shape)
            elif isinstance(m_old, nn.Dropout):
                continue
            else:
                y = m_old.double()(y)
                m_old.float()
    # the input net is untouched; a net without BN comes back unchanged
    assert _max_param_diff(net, random_cnn(4, hidden=6)) == 0.0
    plain = random_cnn(5, bn=False)
    assert _max_param_diff(align.reset_bn_stats(plain, x), plain) == 0.0


@pytest.mark.parametrize("endpoints", ["train", "eval"])
@pytest.mark.parametrize("bn", [True, False])
def test_repair_exact_for_one_hidden_layer(bn, endpoints):
    """The repaired net's statistics at the REPAIR point are the interpolated endpoint
    statistics, measured with the endpoints' BatchNorms in the convention asked for (train:
    batch statistics per batch of ``batch_size``, computed here on train-mode copies)."""
    x = _images(30, seed=5)

    def one_layer(seed):
        torch.manual_seed(seed)
        layers = [nn.Conv2d(3, 6, 3, padding=1)] + ([nn.BatchNorm2d(6)] if bn else []) + \
                 [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)]
        net = nn.Sequential(*layers).eval()
        _randomise_bn(net, seed)
        return net

    a, b = one_layer(0), one_layer(1)
    mid = align.interpolate(a, b, 0.3)
    out = align.repair(mid, a, b, x, alpha=0.3, batch_size=10, endpoints=endpoints)
    k = _pre_point(a, 0)
    stats = _point_stats if endpoints == "eval" else functools.partial(_batch_point_stats,
                                                                        batch_size=10)
    ma, sa = stats(a, k, x)
    mb, sb = stats(b, k, x)
    m, s = _point_stats(out, k, x)
    torch.testing.assert_close(m, 0.7 * ma + 0.3 * mb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s, 0.7 * sa + 0.3 * sb, rtol=1e-5, atol=1e-5)
    assert not out.training and [type(q) for q in out] == [type(q) for q in mid]


def test_repair_restores_endpoint_statistics():
    x = _images(160, seed=6)
    a = align.reset_bn_stats(random_cnn(6, spatial=2, hidden=8), x)
    b = align.reset_bn_stats(random_cnn(7, spatial=2, hidden=8), x)
    match = align.match_activations(a, b, x, batch_size=40)
    b_al = align.permute_network(b, match.perms)
    mid = align.reset_bn_stats(align.interpolate(a, b_al, 0.5), x)
    out = align.repair(mid, a, b_al, x, batch_size=40, endpoints="eval")
    reused = align.repair(mid, a, b_al, x, batch_size=40, match=match, endpoints="eval")
    assert _max_param_diff(out, reused) < 1e-4
    for i in align.hidden_units(a):
        k = _pre_point(a, i)
        ma, sa = _point_stats(a, k, x)
        mb, sb = _point_stats(b_al, k, x)
        m, s = _point_stats(out, k, x)
        s_t = 0.5 * (sa + sb)
        assert float(((s - s_t).abs() / s_t).max()) < 0.05
        assert float(((m - 0.5 * (ma + mb)).abs() / s_t).max()) < 0.05
    with pytest.raises(ValueError, match="measured on"):
        align.repair(mid, a, b_al, x[:10], match=match, endpoints="eval")


def test_repair_train_endpoints_use_batch_statistics_and_leave_the_nets_alone():
    """endpoints="train" (the default, the REPAIR authors' convention) differs from "eval" on
    nets whose running statistics are not the data's, ignores a match's eval-mode statistics,
    leaves every buffer and training flag of the endpoints as it was, and unknown names are
    refused."""
    x = _images(120, seed=8)
    a, b = random_cnn(8, spatial=2, hidden=8), random_cnn(9, spatial=2, hidden=8)
    for n, net in ((0, a), (1, b)):
        _randomise_bn(net, n)               # running statistics far from the data's
    a.eval()
    b.train()                               # training flags that must survive
    before = [copy.deepcopy(n.state_dict()) for n in (a, b)]
    match = align.match_activations(a, b, x, batch_size=40)
    b_al = align.permute_network(b, match.perms)
    mid = align.reset_bn_stats(align.interpolate(a, b_al, 0.5), x)
    train = align.repair(mid, a, b_al, x, batch_size=40)
    train_m = align.repair(mid, a, b_al, x, batch_size=40, match=match)
    ev = align.repair(mid, a, b_al, x, batch_size=40, endpoints="eval")
    assert _max_param_diff(train, train_m) < 1e-5
    assert _max_param_diff(train, ev) > 1e-2
    for net, sd in zip((a, b), before):
        for key, v in net.state_dict().items():
            assert torch.equal(v, sd[key]), key
    assert not a.training and b.training and all(m.training for m in b.modules())
    for i in align.hidden_units(a):        # targets: batch-statistics endpoints
        k = _pre_point(a, i)
        ma, sa = _batch_point_stats(a, k, x, 40)
        mb, sb = _batch_point_stats(b_al, k, x, 40)
        m, s = _point_stats(train, k, x)
        s_t = 0.5 * (sa + sb)
        assert float(((s - s_t).abs() / s_t).max()) < 0.05
        assert float(((m - 0.5 * (ma + mb)).abs() / s_t).max()) < 0.05
    with pytest.raises(ValueError, match="repair endpoints"):
        align.repair(mid, a, b_al, x, endpoints="test")


def test_barrier_reports_both_repair_conventions():
    x = _images(60, seed=9)
    labels = torch.arange(60) % 5
    a, b = random_cnn(10, spatial=2), random_cnn(11, spatial=2)
    res = align.merge_barrier(a, b, x, x, labels, batch_size=30,
                              repair_endpoints=("eval", "train"))
    assert res.repair_endpoints == "eval" and set(res.repairs) == {"train", "eval"}
    assert res.barrier_repair == res.repairs["eval"]["barrier_repair"]
    one = align.merge_barrier(a, b, x, x, labels, batch_size=30)
    assert one.repair_endpoints == "train" and set(one.repairs) == {"train"}
    assert one.barrier_repair == pytest.approx(res.repairs["train"]["barrier_repair"])
    d = json.loads(json.dumps(res.to_dict()))
    assert d["repairs"]["train"]["barrier_repair"] == res.repairs["train"]["barrier_repair"]
    with pytest.raises(ValueError, match="repair_endpoints"):
        align.gcnn_barrier(a, x, x, labels, repair_endpoints=())


# ----------------------------------------------------------------------------- measures
def test_barrier_formula():
    assert align.barrier(0.8, 0.6, 0.7) == (0.0, 0.0)
    rel, ab = align.barrier(0.9, 0.7, 0.6)
    assert ab == pytest.approx(0.2) and rel == pytest.approx(0.25)
    rel, ab = align.barrier(0.5, 0.5, 0.6)
    assert ab == pytest.approx(-0.1) and rel == pytest.approx(-0.2)
    with pytest.raises(ValueError):
        align.barrier(0.0, 0.0, 0.1)


def test_accuracy_and_invariance_error_direct():
    x = _images(25, seed=7)
    net = random_cnn(7, spatial=2)
    with torch.no_grad():
        y1, y2 = net(x), net(x.flip(-1))
    ref = ((y1 - y2).norm(dim=1) / (0.5 * y1.norm(dim=1) + 0.5 * y2.norm(dim=1))).mean()
    assert align.invariance_error(net, x, batch_size=7) == pytest.approx(float(ref), rel=1e-5)
    labels = y1.argmax(1)
    labels[:5] = (labels[:5] + 1) % 5
    assert align.accuracy(net, x, labels, batch_size=6) == pytest.approx(20 / 25)


@pytest.mark.parametrize("bad,pattern", [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softmax(dim=1), nn.Flatten(), nn.Linear(4, 2)),
     r"module 1 \(Softmax\)"),
    (nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.Conv2d(4, 4, 3, groups=2)),
     r"module 1 \(Conv2d\).*groups"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2)), r"module 1 \(Linear\).*Flatten"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.PReLU(), nn.Flatten(), nn.Linear(4, 2)),
     r"module 1 \(PReLU\)"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)),
     r"module 1 \(BatchNorm2d\).*running"),
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(2)), r"module 1 \(Flatten\)"),
    (nn.Sequential(nn.Conv1d(3, 4, 3)), r"module 0 \(Conv1d\)"),
])
def test_unsupported_modules_raise(bad, pattern):
    x = _images(4)
    with pytest.raises(ValueError, match=pattern):
        align.hidden_units(bad)
    with pytest.raises(ValueError, match=pattern):
        align.match_activations(bad, bad, x)
    with pytest.raises(ValueError, match=pattern):
        align.flip_network(bad, (8, 8))


def test_merge_barrier_of_a_permuted_copy_is_zero_and_inputs_untouched():
    x = _images(40, seed=8)
    a = align.reset_bn_stats(random_cnn(8, spatial=2, hidden=6), x)
    b = align.permute_network(a, _rand_perms(a, 8))
    before = {k: v.clone() for k, v in a.state_dict().items()}
    labels = a(x).argmax(1)
    res = align.merge_barrier(a, b, x, x, labels, batch_size=16)
    assert res.flip_report is None and res.n_match == 40
    assert res.accuracy_a == res.accuracy_b == 1.0
    assert abs(res.barrier) < 0.03 and abs(res.barrier_repair) < 0.03
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
    d = json.loads(json.dumps(res.to_dict()))
    assert d["flip_report"] is None and len(d["perms"]) == len(align.hidden_units(a))
    g = align.gcnn_barrier(a, x, x, labels, batch_size=16)
    d = json.loads(json.dumps(g.to_dict()))
    assert d["flip_report"]["exact"] is True and isinstance(d["perms"][0][0], int)
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
