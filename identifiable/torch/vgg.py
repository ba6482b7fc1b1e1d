"""VGG11 and horizontal-flip GCNN-VGG11s for 32 x 32 images (Section 2.2 and Table 1 [BK23]).

* :func:`vgg11`: the ordinary VGG11 with BatchNorm of [BK23] Table 1 ("CNN"); ``width=1`` has
  the paper's 9.23 M parameters. Convs 3 x 3 / padding 1, max-pool 2 x 2 after blocks
  1, 2, 4, 6, 8, a linear head on the 1 x 1 x C feature map.
* :func:`gcnn_vgg11`: the *regular* flip-GCNN ("GCNN", 4.61 M parameters at ``width=1``): a
  lifting convolution, then regular group convolutions for S_2 = {1, tau}, BatchNorm shared over
  each orbit, and invariant (orbit-mean) pooling before the head.
* :func:`pgcnn_vgg11`: the partial GCNN ("PGCNN", 9.19 M): the first two convolutions are the
  lifting and a group convolution, the rest ordinary.

Channel layout of a regular feature map with ``m`` orbits: ``2m`` channels, channel ``c`` and
``c + m`` form an orbit and the flip tau swaps them, ``P = [[0, I], [I, 0]]``. The kernel
constraint of eq. (3), ``tau(psi) = P_1 psi P_0``, is built into the parametrisation:

* lifting (``P_0 = I``): ``psi = [phi ; tau(phi)]``;
* group convolution: ``psi = [[A, B], [tau(B), tau(A)]]``.

Both hold for every value of the free parameters (``tests/test_torch_vgg.py`` checks
equivariance of every layer and :func:`identifiable.kernels.check_flip_kernel` checks eq. (3)).
:func:`to_plain` exports any of these nets to a plain ``nn.Sequential`` of ``Conv2d`` /
``BatchNorm2d`` / ``ReLU`` / ``MaxPool2d`` / ``Flatten`` / ``Linear`` computing the same function
(in eval mode), the form that :mod:`identifiable.torch.structure` describes and that
:mod:`~identifiable.torch.flip`, :mod:`~identifiable.torch.match` and
:mod:`~identifiable.torch.merge` work on.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["VGG11_CONFIG", "vgg11", "gcnn_vgg11", "pgcnn_vgg11", "build_classifier",
           "ARCHITECTURES", "NETWORKS", "FlipLiftingConv2d", "FlipGroupConv2d", "FlipBatchNorm2d",
           "OrbitMeanLinear", "to_plain", "n_parameters", "swap_permutation", "channel_widths"]

#: conv output channels, "M" = 2 x 2 max-pool (Simonyan & Zisserman, configuration A)
VGG11_CONFIG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M",
                                       512, 512, "M")


def channel_widths(width: float) -> list[int]:
    """The eight conv widths of VGG11 at multiplier ``width``, rounded to even numbers >= 2.

    Even, so that the GCNNs (``c/2`` orbits of size 2) and the CNN have the same widths.
    """
    if not width > 0:
        raise ValueError(f"width: expected a positive multiplier, got {width}")
    return [max(2, 2 * round(c * width / 2)) for c in VGG11_CONFIG if c != "M"]


def n_parameters(net: nn.Module) -> int:
    """Number of trainable parameters (free parameters for the GCNNs)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def swap_permutation(n_orbits: int) -> list[int]:
    """The permutation ``c -> c + m mod 2m`` of tau on a regular feature map with m orbits."""
    return [(c + n_orbits) % (2 * n_orbits) for c in range(2 * n_orbits)]


# ----------------------------------------------------------------------------- flip layers
class _FlipConv(nn.Module):
    """A convolution whose kernel :meth:`weight` is computed from free parameters; the bias is
    shared by the two channels of each output orbit."""

    padding: int
    stride: int = 1
    bias: nn.Parameter | None

    def weight(self) -> Tensor:
        raise NotImplementedError

    def full_bias(self) -> Tensor | None:
        return None if self.bias is None else torch.cat([self.bias, self.bias])

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.conv2d(x, self.weight(), self.full_bias(), stride=self.stride,
                                    padding=self.padding)


class FlipLiftingConv2d(_FlipConv):
    """Lifting convolution for horizontal flips: ``psi = [phi ; tau(phi)]`` (eq. (3), P_0 = I).

    Input: ``in_channels`` channels on which tau acts only spatially; output: ``2 m`` channels,
    the regular representation (channel c <-> c + m).
    """

    def __init__(self, in_channels: int, n_orbits: int, kernel_size: int = 3, padding: int = 1,
                 stride: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels, self.n_orbits, self.padding = in_channels, n_orbits, padding
        self.stride = stride
        conv = nn.Conv2d(in_channels, n_orbits, kernel_size, padding=padding)  # default init
        self.phi = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if bias else None

    def weight(self) -> Tensor:
        return torch.cat([self.phi, self.phi.flip(-1)], 0)

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> 2 x {self.n_orbits}, lifting"


class FlipGroupConv2d(_FlipConv):
    """Regular group convolution for horizontal flips: ``psi = [[A, B], [tau B, tau A]]``.

    Input ``2 m_in`` and output ``2 m_out`` channels, both regular; free parameters A, B (half
    of those of an unconstrained convolution of the same widths).
    """

    def __init__(self, in_orbits: int, out_orbits: int, kernel_size: int = 3, padding: int = 1,
                 stride: int = 1, bias: bool = True):
        super().__init__()
        self.in_orbits, self.out_orbits, self.padding = in_orbits, out_orbits, padding
        self.stride = stride
        conv = nn.Conv2d(2 * in_orbits, out_orbits, kernel_size, padding=padding)
        w = conv.weight.detach().clone()           # fan-in of the full 2 m_in input channels
        self.A = nn.Parameter(w[:, :in_orbits].clone())
        self.B = nn.Parameter(w[:, in_orbits:].clone())
        self.bias = nn.Parameter(conv.bias.detach().clone()) if bias else None

    def weight(self) -> Tensor:
        top = torch.cat([self.A, self.B], 1)
        bottom = torch.cat([self.B.flip(-1), self.A.flip(-1)], 1)
        return torch.cat([top, bottom], 0)

    def extra_repr(self) -> str:
        return f"2 x {self.in_orbits} -> 2 x {self.out_orbits}, regular"


class FlipBatchNorm2d(nn.Module):
    """BatchNorm on a regular feature map, one set of statistics and affine per orbit.

    The batch statistics pool both channels of an orbit (and all positions), so the layer
    commutes with the flip exactly in train and in eval mode.
    """

    def __init__(self, n_orbits: int):
        super().__init__()
        self.n_orbits = n_orbits
        self.bn = nn.BatchNorm3d(n_orbits)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        z = x.view(n, 2, self.n_orbits, h, w).transpose(1, 2)          # N x m x 2 x H x W
        return self.bn(z).transpose(1, 2).reshape(n, c, h, w)


class OrbitMeanLinear(nn.Module):
    """Invariant pooling (mean over each orbit) followed by a linear head."""

    def __init__(self, n_orbits: int, out_features: int):
        super().__init__()
        self.n_orbits = n_orbits
        self.linear = nn.Linear(n_orbits, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.view(x.shape[0], 2, self.n_orbits).mean(1))


# ----------------------------------------------------------------------------- builders
def _vgg(width: float, n_classes: int, n_group: int) -> nn.Sequential:
    """VGG11 whose first ``n_group`` convs are flip group convs (0: CNN, 8: GCNN)."""
    if n_classes < 1:
        raise ValueError(f"n_classes: expected >= 1, got {n_classes}")
    widths = iter(channel_widths(width))
    layers: list[nn.Module] = []
    c_in, k = 3, 0
    for item in VGG11_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c = next(widths)
        if k < n_group:
            conv = FlipLiftingConv2d(c_in, c // 2) if k == 0 else FlipGroupConv2d(c_in // 2, c // 2)
            layers += [conv, FlipBatchNorm2d(c // 2)]
        else:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c)]
        layers.append(nn.ReLU(inplace=True))
        c_in, k = c, k + 1
    layers.append(nn.Flatten())
    if n_group >= 8:
        layers.append(OrbitMeanLinear(c_in // 2, n_classes))
    else:
        layers.append(nn.Linear(c_in, n_classes))
    return nn.Sequential(*layers)


def vgg11(width: float = 1.0, n_classes: int = 10) -> nn.Sequential:
    """VGG11 with BatchNorm for 32 x 32 inputs (Table 1 "CNN" [BK23]; 9.23 M parameters at 1)."""
    return _vgg(width, n_classes, 0)


def gcnn_vgg11(width: float = 1.0, n_classes: int = 10) -> nn.Sequential:
    """Regular horizontal-flip GCNN-VGG11 (Table 1 "GCNN" [BK23]; 4.61 M parameters at 1)."""
    return _vgg(width, n_classes, 8)


def pgcnn_vgg11(width: float = 1.0, n_classes: int = 10) -> nn.Sequential:
    """Partial GCNN-VGG11, first two convs flip group convs (Table 1 "PGCNN"; 9.19 M at 1)."""
    return _vgg(width, n_classes, 2)


ARCHITECTURES = {"cnn": vgg11, "gcnn": gcnn_vgg11, "pgcnn": pgcnn_vgg11}
#: the network families the Table 1 recipes train: family -> its :data:`ARCHITECTURES`
#: (``"resnet20"``: :data:`identifiable.torch.resnet.ARCHITECTURES`, loaded on use)
NETWORKS = ("vgg11", "resnet20")


def build_classifier(arch: str, width: float = 1.0, n_classes: int = 10,
                     net: str = "vgg11") -> nn.Module:
    """``arch`` in :data:`ARCHITECTURES` ("cnn", "gcnn", "pgcnn") of the family ``net`` in
    :data:`NETWORKS` (``"vgg11"``: this module; ``"resnet20"``:
    :mod:`identifiable.torch.resnet`). [BK23] Table 1."""
    if net not in NETWORKS:
        raise ValueError(f"net: expected one of {list(NETWORKS)}, got {net!r}")
    if net == "resnet20":
        from identifiable.torch.resnet import ARCHITECTURES as archs
    else:
        archs = ARCHITECTURES
    if arch not in archs:
        raise ValueError(f"arch: expected one of {sorted(archs)}, got {arch!r}")
    return archs[arch](width, n_classes)


# ----------------------------------------------------------------------------- export
def _plain_conv(m: nn.Module) -> nn.Conv2d:
    w, b = m.weight().detach(), m.full_bias()
    conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[-1], stride=m.stride, padding=m.padding,
                     bias=b is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        conv.weight.copy_(w)
        if b is not None:
            conv.bias.copy_(b.detach())
    return conv


def _plain_bn(m: FlipBatchNorm2d) -> nn.BatchNorm2d:
    src = m.bn
    bn = nn.BatchNorm2d(2 * m.n_orbits, eps=src.eps, momentum=src.momentum,
                        device=src.running_mean.device, dtype=src.running_mean.dtype)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(src, name).detach().repeat(2))
        bn.num_batches_tracked.copy_(src.num_batches_tracked)
    return bn


def _plain_head(m: OrbitMeanLinear) -> nn.Linear:
    src = m.linear
    lin = nn.Linear(2 * m.n_orbits, src.out_features, device=src.weight.device,
                    dtype=src.weight.dtype)
    with torch.no_grad():
        lin.weight.copy_(src.weight.detach().repeat(1, 2) / 2)
        lin.bias.copy_(src.bias.detach())
    return lin


def _plain_module(m: nn.Module) -> nn.Module | None:
    """The standard module computing flip layer ``m`` (None: ``m`` is no flip layer)."""
    if isinstance(m, _FlipConv):
        return _plain_conv(m)
    if isinstance(m, FlipBatchNorm2d):
        return _plain_bn(m)
    if isinstance(m, OrbitMeanLinear):
        return _plain_head(m)
    return None


def _replace_flip_layers(module: nn.Module) -> None:
    """Replace every flip layer below ``module`` (in place) by its standard module."""
    for name, child in list(module.named_children()):
        plain = _plain_module(child)
        if plain is None:
            _replace_flip_layers(child)
        else:
            setattr(module, name, plain)


def to_plain(net: nn.Module) -> nn.Module:
    """A net of standard modules with the same function as ``net`` (eval mode).

    Flip layers are materialised (their weights computed from the free parameters); standard
    modules are deep-copied. An ``nn.Sequential`` (the VGG11s) comes back as an
    ``nn.Sequential`` of ``Conv2d`` / ``BatchNorm2d`` / ``ReLU`` / ``MaxPool2d`` / ``Flatten`` /
    ``Linear``; any other module (the ResNets of :mod:`identifiable.torch.resnet`) as a deep
    copy with every flip layer, at any depth, replaced by its standard module (same forward,
    so :mod:`identifiable.torch.graph` traces it). The result is a new, independent network in
    eval mode.
    """
    if isinstance(net, nn.Sequential):
        out: list[nn.Module] = []
        for m in net:
            plain = _plain_module(m)
            out.append(copy.deepcopy(m) if plain is None else plain)
        plain_net: nn.Module = nn.Sequential(*out)
    else:
        plain_net = copy.deepcopy(net)
        _replace_flip_layers(plain_net)
    p = next(net.parameters(), None)
    if p is not None:
        plain_net = plain_net.to(p.device)
    return plain_net.eval()


def group_layers(net: nn.Sequential) -> Sequence[int]:
    """Indices (into ``net``) of the flip-equivariant convolutions."""
    return [i for i, m in enumerate(net) if isinstance(m, _FlipConv)]
