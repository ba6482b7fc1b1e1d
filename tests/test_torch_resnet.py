"""ResNets in the torch backend: the permutation groups of a torch.fx trace, matching, permuting,
flipping, REPAIR and the GCNN barrier on residual streams ([BK23] Sections 3, 4.2, Table 3,
eq. (3), footnote 2)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from identifiable.torch import flip, merge  # noqa: E402
from identifiable.torch import match as matching  # noqa: E402
from identifiable.torch.graph import analyse_graph, uses_graph  # noqa: E402
from identifiable.torch.graph_ops import GraphMatchResult  # noqa: E402
from identifiable.torch.resnet import (  # noqa: E402
    FLIP_EXACT_SIZE,
    gcnn_resnet20,
    pgcnn_resnet20,
    resnet20,
    resnet_widths,
)
from identifiable.torch.vgg import (  # noqa: E402
    build_classifier,
    n_parameters,
    swap_permutation,
    to_plain,
)

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _random_bn(net: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm affine parameters and running statistics (a 'trained-looking' net)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.3 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
    return net.eval()


# ----------------------------------------------------------------------------- structure
def test_resnet20_structure_from_the_trace():
    """One residual stream per stage (stem / every conv2 / the shortcut conv) and one group per
    block's conv1; the logits are fixed; ReLU: permutations only."""
    net = resnet20(0.5)
    assert resnet_widths(1) == [16, 32, 64] and resnet_widths(0.5) == [8, 16, 32]
    assert 270_000 < n_parameters(resnet20()) < 275_000        # He et al.: 0.27 M
    g = analyse_graph(net)
    streams = [gr for gr in g.groups if gr.residual]
    assert [s.producers for s in streams] == [
        ["conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"],
        ["layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2", "layer2.2.conv2"],
        ["layer3.0.conv2", "layer3.0.shortcut.0", "layer3.1.conv2", "layer3.2.conv2"]]
    assert [s.width for s in streams] == [8, 16, 32]
    assert len(g.groups) == 12 and sum(not gr.residual for gr in g.groups) == 9
    s2 = streams[1]
    assert ("layer2.0.shortcut.1", 1) in s2.batchnorms and len(s2.batchnorms) == 4
    assert [c for c, _ in s2.consumers] == ["layer2.1.conv1", "layer2.2.conv1",
                                            "layer3.0.conv1", "layer3.0.shortcut.0"]
    assert streams[2].consumers[-1] == ("fc", 1)
    # the stream is observed post-activation where the blocks read it
    assert s2.points == ["layer2_0_relu2", "layer2_1_relu2", "layer2_2_relu2"]
    assert streams[0].points == ["relu", "layer1_0_relu2", "layer1_1_relu2", "layer1_2_relu2"]
    assert ("layer2.0.shortcut.0", "layer2_0_shortcut_1", "layer2.0.shortcut.1") in s2.repair
    assert g.fixed == {"fc": "it reaches the output (the logits)"}
    assert all(gr.group == "perm" and "relu" in gr.sign_blocker for gr in g.groups)
    assert uses_graph(net) and not uses_graph(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))


class _TanhRes(nn.Module):
    """A small residual tanh net written with functional ops (+, torch.tanh, flatten, mean)."""

    def __init__(self, c: int = 6):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, c, 3, padding=1)
        self.head = nn.Linear(c * 4, 5)
        self.pool = nn.AvgPool2d(4)

    def forward(self, x):
        h = torch.tanh(self.stem(x))
        h = torch.tanh(h + self.bn(self.b(torch.tanh(self.a(h)))))
        return self.head(torch.flatten(self.pool(h), 1))


def test_functional_ops_and_signed_groups():
    """Odd activations (tanh), additions, BatchNorm and average pools allow signed
    permutations (Section 5.1 [SMBK26]); a planted signed permutation of every group keeps the
    function and is recovered by K-aware matching."""
    torch.manual_seed(1)
    net = _random_bn(_TanhRes(), 1)
    x = _images(48, 8, seed=1)
    g = analyse_graph(net, (3, 8, 8))
    assert [gr.producers for gr in g.groups] == [["stem", "b"], ["a"]]
    assert all(gr.group == "signed" for gr in g.groups)
    assert g.groups[0].consumers == [("a", 1), ("head", 4)]      # Flatten of a 2 x 2 map
    rng = np.random.default_rng(3)
    perms = [rng.permutation(6) for _ in g.groups]
    signs = [rng.choice([-1, 1], 6) for _ in g.groups]
    b = merge.permute_network(net, perms, signs, input_size=(8, 8))
    assert torch.allclose(net(x), b(x), atol=1e-5)
    m = matching.match_activations(net, b, x, batch_size=20)
    assert m.groups == ["signed", "signed"]
    for p, s, pm, sm in zip(perms, signs, m.perms, m.signs):
        inv = np.argsort(p)
        assert np.array_equal(pm, inv) and np.array_equal(sm, s[inv])
    back = merge.permute_network(b, m.perms, m.signs, input_size=(8, 8))
    assert all(torch.allclose(v, back.state_dict()[k], atol=1e-6)
               for k, v in net.state_dict().items())


# ----------------------------------------------------------------------------- planted perms
def test_planted_permutation_of_every_group_is_recovered_and_merges_for_free():
    torch.manual_seed(0)
    x = _images(64, 16)
    # BatchNorm statistics of these images: the merged net's reset equals them
    net = merge.reset_bn_stats(_random_bn(resnet20(0.5), 0), x)
    g = analyse_graph(net, (3, 16, 16))
    rng = np.random.default_rng(0)
    planted = [rng.permutation(gr.width) for gr in g.groups]
    b = merge.permute_network(net, planted, input_size=(16, 16))
    assert not torch.equal(b.conv1.weight, net.conv1.weight)
    y_a, y_b = net(x), b(x)
    assert (y_a - y_b).abs().max() <= 1e-5 * y_a.abs().max()       # round-off only
    # permuting only one producer of a stream is not a symmetry: the stream must move as one
    broken = merge.permute_network(net, [np.arange(gr.width) for gr in g.groups],
                                   input_size=(16, 16))
    with torch.no_grad():
        broken.layer1[1].conv2.weight.copy_(broken.layer1[1].conv2.weight.flip(0))
    assert (broken(x) - y_a).abs().max() > 1e-3
    m = matching.match_activations(net, b, x, batch_size=24)
    assert isinstance(m, GraphMatchResult) and len(m.perms) == len(g.groups)
    assert all(np.array_equal(p, np.argsort(q)) for p, q in zip(m.perms, planted))
    assert min(m.matched_correlation()) > 1 - 1e-6
    assert m.labels[0].startswith("stream[conv1")
    assert len(m.pre_mean_a) == sum(len(gr.repair) for gr in g.groups)
    labels = y_a.argmax(1)
    # one batch: REPAIR's batch-wise renormalisation then sees the statistics it corrects to
    res = merge.merge_barrier(net, b, x, x, labels, batch_size=64)
    assert res.accuracy_a == res.accuracy_b == 1.0
    assert abs(res.barrier) < 1e-9 and abs(res.barrier_repair) < 1e-9
    assert all(o["1"] == sum(o.values()) for o in merge.merge_barrier(
        net, net, x, x, labels, batch_size=24).orders)
    d = json.loads(json.dumps(res.to_dict()))
    assert len(d["perms"]) == len(g.groups) and len(d["labels"]) == len(g.groups)


@pytest.mark.parametrize("endpoints", ["train", "eval"])
def test_repair_restores_endpoint_statistics_on_a_resnet(endpoints):
    """REPAIR at every producer's BatchNorm (branch and shortcut separately): the repaired
    midpoint of two different nets has the interpolated endpoint statistics at its first REPAIR
    point, with or without the match's statistics (used only by the eval convention); with
    "train" the endpoints' statistics are those of train-mode copies, batch by batch."""
    x = _images(40, 16, seed=2)
    torch.manual_seed(2)
    a = _random_bn(resnet20(0.25), 2)
    torch.manual_seed(3)
    b = _random_bn(resnet20(0.25), 3)
    m = matching.match_activations(a, b, x, batch_size=20)
    bb = merge.permute_network(b, m.perms, m.signs, input_size=(16, 16))
    mid = merge.reset_bn_stats(merge.interpolate(a, bb, 0.5), x)
    before = copy.deepcopy(a.state_dict())
    r1 = merge.repair(mid, a, bb, x, batch_size=20, endpoints=endpoints)
    r2 = merge.repair(mid, a, bb, x, batch_size=20, match=m, endpoints=endpoints)
    for k, v in r1.state_dict().items():
        assert torch.allclose(v.double(), r2.state_dict()[k].double(), atol=1e-4), k
    assert all(torch.equal(v, before[k]) for k, v in a.state_dict().items())

    def stem_stats(net, batch_stats=False):
        net = copy.deepcopy(net).train() if batch_stats else net.eval()
        y = torch.cat([net.bn1(net.conv1(x[i:i + 20])) for i in (0, 20)])
        return y.mean((0, 2, 3)), y.std((0, 2, 3), unbiased=False)

    train = endpoints == "train"
    with torch.no_grad():
        (ma, sa), (mb, sb) = stem_stats(a, train), stem_stats(bb, train)
        mr, sr = stem_stats(r1)
    assert torch.allclose(mr, (ma + mb) / 2, atol=1e-4)
    assert torch.allclose(sr, (sa + sb) / 2, atol=1e-4)


# ----------------------------------------------------------------------------- GCNN ResNet
@pytest.mark.parametrize("builder", [resnet20, gcnn_resnet20, pgcnn_resnet20])
def test_to_plain_is_the_same_function(builder):
    torch.manual_seed(4)
    net = _random_bn(builder(0.25), 4)
    plain = to_plain(net)
    x = _images(6, 17, seed=4)
    assert not any(type(m).__name__.startswith(("Flip", "Orbit")) for m in plain.modules())
    assert torch.allclose(net(x), plain(x), atol=1e-5)


def test_gcnn_resnet_is_exactly_invariant_on_odd_grids_only():
    """Eq. (3) [BK23] in every convolution, shortcuts included: the logits are invariant on a
    33 x 33 input (odd widths at both stride-2 stages); on 32 x 32 the stride-2 windows miss
    the right edge (footnote 2, Appendix A.2.1) and the net is not."""
    torch.manual_seed(5)
    net = _random_bn(gcnn_resnet20(0.25), 5)
    assert n_parameters(net) * 2 - n_parameters(resnet20(0.25)) < 400   # half, heads aside
    x = _images(8, FLIP_EXACT_SIZE, seed=5)
    with torch.no_grad():
        y = net(x)
        assert (y - net(x.flip(-1))).abs().max() < 1e-5 * y.abs().max()
        x32 = _images(8, 32, seed=5)
        assert (net(x32) - net(x32.flip(-1))).abs().max() > 1e-4
        p = _random_bn(pgcnn_resnet20(0.25), 6)
        assert (p(x) - p(x.flip(-1))).abs().max() > 1e-4


def test_gcnn_resnet_and_its_flipped_self_are_matched_exactly():
    """Ground truth: the flip of an exported GCNN-ResNet is the orbit swap of every group
    (weights equal), so matching recovers swap_permutation on every group, every channel has
    order 2 (Figure 4 [BK23]) and the GCNN barrier is 0."""
    torch.manual_seed(7)
    x = _images(24, FLIP_EXACT_SIZE, seed=7)
    x = torch.cat([x, x.flip(-1)])        # flip-closed: the reset statistics are orbit-tied
    plain = merge.reset_bn_stats(to_plain(_random_bn(gcnn_resnet20(0.25), 7)), x)
    flipped, report = flip.flip_network(plain, (FLIP_EXACT_SIZE, FLIP_EXACT_SIZE))
    assert report.exact and report.issues == []
    with torch.no_grad():
        assert torch.allclose(flipped(x), plain(x.flip(-1)), atol=1e-5)
    g = analyse_graph(plain, (3, FLIP_EXACT_SIZE, FLIP_EXACT_SIZE))
    truth = [swap_permutation(gr.width // 2) for gr in g.groups]
    swapped = merge.permute_network(plain, truth, input_size=(FLIP_EXACT_SIZE,) * 2)
    sd = flipped.state_dict()
    assert all(torch.allclose(v, sd[k], atol=1e-5) for k, v in swapped.state_dict().items())
    m = matching.match_activations(plain, flipped, x, batch_size=24)
    assert all(np.array_equal(p, t) for p, t in zip(m.perms, truth))
    labels = plain(x).argmax(1)
    res = merge.gcnn_barrier(plain, x, x, labels, batch_size=48)
    assert res.flip_report.exact and res.accuracy_a == res.accuracy_b == 1.0
    assert abs(res.barrier) < 1e-9 and abs(res.barrier_repair) < 1e-9
    assert all(o["2"] == sum(o.values()) for o in res.orders), res.orders


def test_flip_check_names_strided_convs_in_branches_and_shortcuts():
    """Footnote 2 [BK23]: on 32 x 32 the 3 x 3 stride-2 branch convolution and the 1 x 1
    stride-2 shortcut of stages 2 and 3 are reported by name; 33 x 33 is exact."""
    net = resnet20(0.25)
    _, rep = flip.flip_network(net, (32, 32))
    named = [i.split(" ")[0] for i in rep.issues]
    assert not rep.exact and named == ["layer2.0.conv1", "layer2.0.shortcut.0",
                                       "layer3.0.conv1", "layer3.0.shortcut.0"]
    assert "input width 32, kernel 1, stride 2, padding 0" in rep.issues[1]
    assert "footnote 2" in rep.issues[1]
    assert flip.flip_network(net, (33, 33))[1].exact
    with torch.no_grad():                          # the report is right: only 33 is exact
        x = _images(4, 33)
        net.eval()
        fl, _ = flip.flip_network(net, (33, 33))
        assert torch.allclose(fl(x), net(x.flip(-1)), atol=1e-5)


# ----------------------------------------------------------------------------- errors
class _ViewMix(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        y = y.view(y.size(0), 2, 2 * y.size(2), y.size(3))     # channels into the height
        return self.conv2(y).mean((2, 3))


class _Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


class _Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, groups=2)

    def forward(self, x):
        return self.b(self.a(x)).flatten(1)


class _Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.a(self.a(x))


class _Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act = nn.Conv2d(3, 4, 3), nn.PReLU()

    def forward(self, x):
        return self.act(self.a(x)).flatten(1)


class _FlattenView(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        y = torch.relu(self.a(x))
        return self.fc(y.view(y.size(0), -1))


@pytest.mark.parametrize("bad, pattern", [
    (_ViewMix(), r"fx node view .*mixes or splits channels"),
    (_Concat(), r"fx node cat .*concatenation"),
    (_Grouped(), r"fx node b \(b: Conv2d\).*grouped"),
    (_Shared(), r"fx node a_1 .*also called at fx node a"),
    (_Unknown(), r"fx node act \(act: PReLU\): unsupported module"),
])
def test_unsupported_graphs_name_the_node(bad, pattern):
    x = _images(4, 4)
    with pytest.raises(ValueError, match=pattern):
        analyse_graph(bad, (3, 4, 4))
    with pytest.raises(ValueError, match=pattern):
        matching.match_activations(bad, bad, x)
    with pytest.raises(ValueError, match=pattern):
        flip.flip_network(bad, (4, 4))


def test_a_flattening_view_is_a_flatten():
    net = _FlattenView()
    g = analyse_graph(net, (3, 4, 4))
    assert g.groups[0].consumers == [("fc", 16)] and g.flat_maps["fc"] == (4, 4, 4)
    x = _images(4, 4)
    fl, rep = flip.flip_network(net, (4, 4))
    assert rep.exact and torch.allclose(fl(x), net(x.flip(-1)), atol=1e-6)


# ----------------------------------------------------------------------------- registry
def test_registry_builds_resnets():
    for arch, cls in (("cnn", "Linear"), ("gcnn", "OrbitMeanLinear"), ("pgcnn", "Linear")):
        net = build_classifier(arch, 0.25, 10, net="resnet20")
        assert type(net.fc).__name__ == cls and net(_images(2, 33)).shape == (2, 10)
    with pytest.raises(ValueError, match="net"):
        build_classifier("cnn", 1.0, 10, net="resnet56")
