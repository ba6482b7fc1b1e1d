"""Batch-wise data augmentation in plain torch (Appendix C [SMBK26]), no loop over samples.

Random resized crops to 14 x 14 (one ``affine_grid`` / ``grid_sample`` for the whole batch),
left-right mirroring (folded into the same affine map: a negative x-scale), and colour jitter
(brightness, contrast, saturation). All random numbers come from one explicit
:class:`torch.Generator` on the CPU, so a run is reproducible and resumable on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["augment", "resize", "mirror_lr", "mirror_ud", "MIRRORS"]


def mirror_lr(x: Tensor) -> Tensor:
    """Left-right mirror of images ``... x C x H x W`` (flip the width axis)."""
    return x.flip(-1)


def mirror_ud(x: Tensor) -> Tensor:
    """Up-down mirror (flip the height axis): the reference symmetry that is not trained."""
    return x.flip(-2)


MIRRORS = {"lr": mirror_lr, "ud": mirror_ud}


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment(x: Tensor, gen: torch.Generator, size: int = 14,
            scale: tuple[float, float] = (0.3, 1.0),
            ratio: tuple[float, float] = (3 / 4, 4 / 3), mirror: bool = True,
            jitter: float = 0.4) -> Tensor:
    """Augment a batch of ``uint8`` (or [0, 1] float) images ``B x 3 x H x W``.

    Returns float images in [0, 1] of shape ``B x 3 x size x size``: a random crop covering a
    fraction ``scale`` of the area with aspect ratio in ``ratio``, mirrored left-right with
    probability 1/2, with brightness / contrast / saturation factors in ``[1 - jitter,
    1 + jitter]``.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x: expected B x 3 x H x W images, got {tuple(x.shape)}")
    b = x.shape[0]
    dev = x.device
    # uint8 stays in 0..255 until the small 14 x 14 output (saves a pass over the big batch)
    unit = 255.0 if x.dtype == torch.uint8 else 1.0
    area = _uniform(gen, b, *scale)
    logr = _uniform(gen, b, math.log(ratio[0]), math.log(ratio[1]))
    sw = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
    sh = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
    cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sw)
    cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sh)
    flip = (torch.rand(b, generator=gen) < 0.5) if mirror else torch.zeros(b, dtype=torch.bool)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -sw, sw)
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sh
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(dev), [b, 3, size, size], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    if jitter > 0:
        # brightness f0, contrast f1 (around the mean grey), saturation f2 (towards the grey
        # image) are all affine in the pixel: one per-sample 3 x 3 colour matrix and offset,
        # out = f1 f0 S x + (1 - f1) f0 m, with S = f2 I + (1 - f2) 1 w^T and m the mean grey.
        f = (1 + (torch.rand(b, 3, generator=gen) * 2 - 1) * jitter).to(dev)
        w = torch.tensor([0.299, 0.587, 0.114], device=dev)
        S = f[:, 2, None, None] * torch.eye(3, device=dev) + (1 - f[:, 2, None, None]) * w
        M = (f[:, 1] * f[:, 0])[:, None, None] * S / unit
        m = torch.einsum("c,bc->b", w, out.mean(dim=(2, 3))) * f[:, 0]
        off = (1 - f[:, 1]) * m / unit
        out = torch.baddbmm(off[:, None, None], M, out.flatten(2)).view_as(out)
    elif unit != 1.0:
        out = out / unit
    return out.clamp_(0.0, 1.0)


def resize(x: Tensor, size: int = 14) -> Tensor:
    """Whole images (uint8 or float in [0, 1]) resized to ``size x size`` with antialiasing."""
    xf = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return F.interpolate(xf, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp_(0.0, 1.0)
