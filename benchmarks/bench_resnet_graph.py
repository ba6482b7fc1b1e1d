"""Benchmark: the torch.fx permutation analysis (:func:`identifiable.torch.graph.analyse_graph`)
of a ResNet-50-sized graph ([BK23] Section 4.2 / Table 3 aligns ResNet50s): bottleneck blocks
[3, 4, 6, 3], widths 64 .. 2048, option-B shortcuts, random weights, 224 x 224 input (no
torchvision: the net is built here). Target: under 2 s.

    python benchmarks/bench_resnet_graph.py [--size 224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn


class Bottleneck(nn.Module):
    """``relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`` (He et al.)."""

    def __init__(self, c_in: int, mid: int, stride: int):
        super().__init__()
        c_out = 4 * mid
        self.conv1, self.bn1 = nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                       nn.BatchNorm2d(c_out))
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet50(nn.Module):
    """ImageNet ResNet-50 layout: 7 x 7 stride-2 stem, 3 x 3 max-pool, [3, 4, 6, 3] blocks."""

    def __init__(self, n_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, c = [], 64
        for i, (mid, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(c, mid, 2 if i > 0 and j == 0 else 1))
                c = 4 * mid
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main() -> None:
    from identifiable.torch.graph import analyse_graph

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    net = ResNet50().eval()
    n_params = sum(q.numel() for q in net.parameters())
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        g = analyse_graph(net, (3, args.size, args.size))
        times.append(time.perf_counter() - t0)
    streams = [gr for gr in g.groups if gr.residual]
    print(f"ResNet-50: {n_params / 1e6:.1f} M parameters, {len(g.gm.graph.nodes)} fx nodes, "
          f"{len(g.groups)} permutation groups ({len(streams)} residual streams: "
          f"{[len(s.producers) for s in streams]} producers, widths "
          f"{[s.width for s in streams]})")
    print(f"analyse_graph at {args.size} x {args.size}: first {times[0]:.3f} s, best "
          f"{min(times):.3f} s over {args.repeat} (target < 2 s: "
          f"{'met' if times[0] < 2 else 'MISSED'})")


if __name__ == "__main__":
    main()
