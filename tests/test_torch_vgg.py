"""VGG11 / GCNN-VGG11 / PGCNN-VGG11 of Table 1 [BK23]; the flip layers are exactly equivariant."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from identifiable.kernels import check_flip_kernel  # noqa: E402
from identifiable.torch.vgg import (  # noqa: E402
    FlipBatchNorm2d,
    FlipGroupConv2d,
    FlipLiftingConv2d,
    build_classifier,
    channel_widths,
    gcnn_vgg11,
    group_layers,
    n_parameters,
    pgcnn_vgg11,
    swap_permutation,
    to_plain,
    vgg11,
)

pytestmark = pytest.mark.torch


def _tau_regular(y: torch.Tensor, m: int) -> torch.Tensor:
    """The flip on a regular feature map with m orbits: spatial flip and channel swap."""
    return y.flip(-1)[:, swap_permutation(m)]


def test_parameter_counts_match_table_1():
    # Table 1 [BK23]: 9.23 M (CNN), 4.61 M (GCNN), 9.19 M (PGCNN), truncated to 10k
    assert n_parameters(vgg11(1.0)) // 10_000 == 923
    assert n_parameters(gcnn_vgg11(1.0)) // 10_000 == 461
    assert n_parameters(pgcnn_vgg11(1.0)) // 10_000 == 919


def test_widths_and_errors():
    assert channel_widths(1.0) == [64, 128, 256, 256, 512, 512, 512, 512]
    assert channel_widths(0.25) == [16, 32, 64, 64, 128, 128, 128, 128]
    assert all(c % 2 == 0 for c in channel_widths(0.3))
    with pytest.raises(ValueError, match="width"):
        vgg11(0)
    with pytest.raises(ValueError, match="arch"):
        build_classifier("resnet")
    assert vgg11(0.25)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), c_in=st.integers(1, 4), m=st.integers(1, 4),
       w=st.sampled_from([5, 6, 8]))
def test_lifting_conv_is_equivariant(seed, c_in, m, w):
    torch.manual_seed(seed)
    layer = FlipLiftingConv2d(c_in, m).double()
    x = torch.randn(3, c_in, 7, w, dtype=torch.float64)
    lhs = layer(x.flip(-1))                  # input: tau acts only spatially (P_0 = I)
    rhs = _tau_regular(layer(x), m)
    assert torch.allclose(lhs, rhs, atol=1e-12)
    psi = layer.weight().detach().numpy()
    assert check_flip_kernel(psi, list(range(c_in)), swap_permutation(m)).status == "checked"


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), m_in=st.integers(1, 4), m_out=st.integers(1, 4))
def test_group_conv_and_batchnorm_are_equivariant(seed, m_in, m_out):
    torch.manual_seed(seed)
    conv = FlipGroupConv2d(m_in, m_out).double()
    bn = FlipBatchNorm2d(m_out).double()
    with torch.no_grad():
        bn.bn.weight.uniform_(0.5, 2)
        bn.bn.bias.normal_()
    x = torch.randn(4, 2 * m_in, 6, 9, dtype=torch.float64)
    for mode in (True, False):               # batch statistics and running statistics
        bn.train(mode)
        lhs = bn(conv(_tau_regular(x, m_in)))
        rhs = _tau_regular(bn(conv(x)), m_out)
        assert torch.allclose(lhs, rhs, atol=1e-10)
    psi = conv.weight().detach().numpy()
    assert check_flip_kernel(psi, swap_permutation(m_in), swap_permutation(m_out)).status \
        == "checked"


def test_untied_conv_is_not_equivariant():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1).double()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    assert not torch.allclose(conv(_tau_regular(x, 2)), _tau_regular(conv(x), 2), atol=1e-3)
    assert check_flip_kernel(conv.weight.detach().numpy(), swap_permutation(2),
                             swap_permutation(2)).status == "refuted"


def _randomise_bn(net: nn.Module) -> None:
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.3)
                mod.running_mean.normal_(0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("builder", [vgg11, gcnn_vgg11, pgcnn_vgg11])
def test_to_plain_is_the_same_function(builder):
    torch.manual_seed(1)
    net = builder(0.125)
    _randomise_bn(net)
    net.eval()
    plain = to_plain(net)
    assert all(type(m) in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Flatten,
                           nn.Linear) for m in plain)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(plain(x), net(x), atol=1e-5)


def test_gcnn_is_invariant_and_pgcnn_only_early_equivariant():
    torch.manual_seed(2)
    x = torch.randn(4, 3, 32, 32)
    g = gcnn_vgg11(0.125)
    _randomise_bn(g)
    with torch.no_grad():
        for mode in (True, False):
            g.train(mode)
            assert torch.allclose(g(x), g(x.flip(-1)), atol=1e-5)
        p = pgcnn_vgg11(0.125).eval()
        assert not torch.allclose(p(x), p(x.flip(-1)), atol=1e-4)
        # the first two (group) blocks of the PGCNN are equivariant
        idx = group_layers(p)
        assert len(idx) == 2
        head = p[: idx[1] + 3]               # conv, BN, ReLU, pool, conv, BN, ReLU
        m = head[-3].out_orbits
        assert torch.allclose(head(x.flip(-1)), _tau_regular(head(x), m), atol=1e-5)
