"""CIFAR ResNet-20 and its horizontal-flip GCNNs ([BK23] Bökman & Kahl, NeurIPS 2023: the
ResNets of Section 4.2 / Table 3, at CIFAR size; the GCNN recipes of Table 1).

* :func:`resnet20`: He et al.'s CIFAR ResNet-20: a 3 x 3 stem convolution, three stages of three
  BasicBlocks with ``16, 32, 64`` channels times ``width`` (rounded to even numbers, as
  :func:`identifiable.torch.vgg.channel_widths`), the first block of stages 2 and 3 with stride
  2 and an *option-B* shortcut (1 x 1 stride-2 convolution and BatchNorm) where the shape
  changes, identity shortcuts elsewhere; BatchNorm after every convolution, ReLU, global
  average pooling and a Linear head. Convolutions have no bias (a BatchNorm follows each).
* :func:`gcnn_resnet20`: the regular flip-GCNN: every convolution a flip lifting / group
  convolution with the kernel constraint of eq. (3) [BK23] built into the parametrisation
  (:class:`~identifiable.torch.vgg.FlipLiftingConv2d`,
  :class:`~identifiable.torch.vgg.FlipGroupConv2d`, 1 x 1 stride-2 shortcuts included), the
  BatchNorms shared over each orbit (:class:`~identifiable.torch.vgg.FlipBatchNorm2d`) and an
  orbit-mean head (:class:`~identifiable.torch.vgg.OrbitMeanLinear`). Channels come in flip
  orbits ``{c, c + m}`` (the flip swaps them); a residual addition of two regular maps is a
  regular map, so every block, and the net, is exactly flip-equivariant / the logits exactly
  invariant, *on inputs whose width is odd at every stride-2 layer* (33 x 33: 33 -> 17 -> 9).
  On 32 x 32 images a stride-2 window never reaches the right edge, the defect of footnote 2 /
  Appendix A.2.1 [BK23] (the paper's ResNet-50 at 224 vs 225), which
  :func:`identifiable.torch.flip.flip_network` reports layer by layer.
* :func:`pgcnn_resnet20`: the partial GCNN of Table 1: the stem and the first block's first
  convolution flip convolutions, the rest ordinary.

:func:`identifiable.torch.vgg.to_plain` exports any of them to the same ``ResNet`` class with
standard ``Conv2d`` / ``BatchNorm2d`` / ``Linear`` modules (same function in eval mode), the
form that :mod:`identifiable.torch.graph` analyses: the permutation groups are one residual
stream per stage (stem, every block's ``conv2`` and the stage's shortcut convolution) and one
group per block's ``conv1``; the flip of the exported GCNN is exactly the orbit swap
:func:`~identifiable.torch.vgg.swap_permutation` on every group.

:data:`ARCHITECTURES` is this family's entry in the classifier registry
(:data:`identifiable.torch.vgg.NETWORKS`), so the Table 1 recipes train ResNet-20s too.
"""

from __future__ import annotations

from torch import Tensor, nn

from identifiable.torch.vgg import (
    FlipBatchNorm2d,
    FlipGroupConv2d,
    FlipLiftingConv2d,
    OrbitMeanLinear,
)

__all__ = ["RESNET20_WIDTHS", "resnet_widths", "BasicBlock", "ResNet", "resnet20",
           "gcnn_resnet20", "pgcnn_resnet20", "ARCHITECTURES", "FLIP_EXACT_SIZE"]

#: stage widths of ResNet-20 at ``width=1`` (He et al. 2016, Section 4.2)
RESNET20_WIDTHS = (16, 32, 64)
#: an input size on which the flip of a ResNet-20 is exact (odd widths at the strided layers)
FLIP_EXACT_SIZE = 33


def resnet_widths(width: float) -> list[int]:
    """The three stage widths at multiplier ``width``, rounded to even numbers >= 2 (so that
    the GCNNs, ``c / 2`` orbits of size 2, and the CNN have the same widths)."""
    if not width > 0:
        raise ValueError(f"width: expected a positive multiplier, got {width}")
    return [max(2, 2 * round(c * width / 2)) for c in RESNET20_WIDTHS]


class _Convs:
    """Hands out the net's convolutions in forward order: the first ``n_group`` are flip
    convolutions (eq. (3) [BK23]), the rest ordinary."""

    def __init__(self, n_group: int):
        self.n_group, self.k = n_group, 0

    def next_is_flip(self) -> bool:
        flip = self.k < self.n_group
        self.k += 1
        return flip

    @staticmethod
    def make(flip: bool, c_in: int, c_out: int, kernel: int, stride: int, lifting: bool
             ) -> tuple[nn.Module, nn.Module]:
        """A convolution (no bias) and its BatchNorm."""
        pad = kernel // 2
        if not flip:
            return (nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False),
                    nn.BatchNorm2d(c_out))
        if lifting:
            conv: nn.Module = FlipLiftingConv2d(c_in, c_out // 2, kernel, pad, stride, bias=False)
        else:
            conv = FlipGroupConv2d(c_in // 2, c_out // 2, kernel, pad, stride, bias=False)
        return conv, FlipBatchNorm2d(c_out // 2)


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` (He et al. 2016); the
    shortcut is a 1 x 1 convolution with BatchNorm (option B) when the stride or the width
    changes, else the identity."""

    def __init__(self, c_in: int, c_out: int, stride: int, convs: _Convs):
        super().__init__()
        f1 = convs.next_is_flip()
        self.conv1, self.bn1 = convs.make(f1, c_in, c_out, 3, stride, False)
        self.relu1 = nn.ReLU(inplace=True)
        f2 = convs.next_is_flip()
        self.conv2, self.bn2 = convs.make(f2, c_out, c_out, 3, 1, False)
        if stride != 1 or c_in != c_out:
            conv, bn = convs.make(f2, c_in, c_out, 1, stride, False)
            self.shortcut: nn.Module = nn.Sequential(conv, bn)
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR ResNet: stem, ``len(blocks)`` stages of BasicBlocks, global average pool, head.

    ``n_group`` (0: CNN; at least the number of convolutions: GCNN) convolutions, counted in
    forward order from the stem, are flip convolutions (a stage's shortcut follows its block's
    second convolution); the head is an orbit mean when all are.
    """

    def __init__(self, widths: list[int], blocks: tuple[int, ...] = (3, 3, 3),
                 n_classes: int = 10, n_group: int = 0, in_channels: int = 3):
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes: expected >= 1, got {n_classes}")
        if len(blocks) != 3 or len(widths) != 3:
            raise ValueError(f"blocks, widths: expected three stages, got {blocks}, {widths}")
        convs = _Convs(n_group)
        c = widths[0]
        self.conv1, self.bn1 = convs.make(convs.next_is_flip(), in_channels, c, 3, 1, True)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layer = []
            for j in range(n):
                layer.append(BasicBlock(c, w, 2 if (i > 0 and j == 0) else 1, convs))
                c = w
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        all_flip = convs.k <= n_group
        self.fc: nn.Module = OrbitMeanLinear(c // 2, n_classes) if all_flip else \
            nn.Linear(c, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


def resnet20(width: float = 1.0, n_classes: int = 10) -> ResNet:
    """CIFAR ResNet-20 with option-B shortcuts (0.27 M parameters at ``width=1``); [BK23]
    Table 1 "CNN" recipes on a ResNet."""
    return ResNet(resnet_widths(width), (3, 3, 3), n_classes, 0)


def gcnn_resnet20(width: float = 1.0, n_classes: int = 10) -> ResNet:
    """Regular flip-GCNN ResNet-20 (eq. (3) [BK23] in every convolution; Table 1 "GCNN")."""
    return ResNet(resnet_widths(width), (3, 3, 3), n_classes, 1 << 30)


def pgcnn_resnet20(width: float = 1.0, n_classes: int = 10) -> ResNet:
    """Partial GCNN ResNet-20: the stem and the first block's first convolution are flip
    convolutions (Table 1 "PGCNN" [BK23])."""
    return ResNet(resnet_widths(width), (3, 3, 3), n_classes, 2)


#: this family's builders per Table 1 architecture (:data:`identifiable.torch.vgg.NETWORKS`)
ARCHITECTURES = {"cnn": resnet20, "gcnn": gcnn_resnet20, "pgcnn": pgcnn_resnet20}
