"""The permutation structure of a plain CNN ([BK23] Bökman & Kahl, NeurIPS 2023, Section 3).

Permuting the output channels of a hidden conv / linear layer, together with the BatchNorms that
follow it and the inputs of the next affine layer (through a Flatten in its ``(C, H, W)``
layout), is a function-preserving reparametrisation ([BK23] Section 3). This module finds that
structure:

* :func:`analyse` checks a net module by module and tracks the shape of the tensor through it
  (a list of :class:`Step`); the spatial sizes are what the flip check of [BK23] footnote 2
  (:mod:`identifiable.torch.flip`) and the Flatten layout of a permutation need;
* :func:`hidden_units` / :func:`hidden_layers`: the layers whose output channels are permutable
  (every affine layer but the logits), with their matching point (:func:`matching_point`,
  post-activation, as in Jordan et al. 2023) and REPAIR point (:func:`repair_point`,
  pre-activation after the BatchNorm);
* :func:`index_batchnorm` permutes a BatchNorm's channels.

It also holds the plumbing that every pass of :mod:`identifiable.torch.match` and
:mod:`identifiable.torch.merge` over such a net shares: :func:`check_images`, :func:`batches`,
:func:`reference_tensor`, :func:`to_net` and :func:`eval_mode`.

Networks are plain ``nn.Sequential`` s of ``Conv2d`` (groups = 1), ``BatchNorm2d`` /
``BatchNorm1d``, pointwise activations (``ReLU``, ``LeakyReLU``, ``GELU``, ``Tanh``, ``Identity``,
``Dropout``), ``MaxPool2d`` / ``AvgPool2d`` / ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``,
``Flatten`` and ``Linear`` (:func:`identifiable.torch.vgg.to_plain` exports the VGG11s to this
form). Anything else raises ``ValueError``. Inputs are already-normalised ``N x C x H x W``
tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["BATCHNORMS", "Step", "analyse", "hidden_layers", "hidden_units", "repair_point",
           "matching_point", "check_same_structure", "window_params", "index_batchnorm",
           "check_images", "batches", "reference_tensor", "to_net", "eval_mode"]

#: the BatchNorm modules a supported net may hold
BATCHNORMS = (nn.BatchNorm2d, nn.BatchNorm1d)
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Identity, nn.Dropout)
_TRANSPARENT = (nn.Identity, nn.Dropout)      # identities in eval mode
_WINDOW_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_SUPPORTED = ("Conv2d (groups=1), BatchNorm2d, BatchNorm1d, ReLU, LeakyReLU, GELU, Tanh, "
              "Identity, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, "
              "Flatten, Linear")


# ----------------------------------------------------------------------------- shapes
@dataclass
class Step:
    """One module of the Sequential with the shape of the tensor entering it.

    ``shape`` is ``(C, H, W)`` for maps (entries None where unknown) or ``(F,)`` for features.
    """

    index: int
    kind: str                     # conv, linear, bn, act, pool, adaptive, flatten
    shape_in: tuple
    shape_out: tuple
    spatial: int | None = None    # flatten only: H * W of the flattened map


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window_out(n: int | None, k: int, s: int, p: int, d: int, ceil: bool, what: str) -> int | None:
    """Output length of a conv / pool window along one axis (PyTorch's formula)."""
    if n is None:
        return None
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise ValueError(f"{what}: input size {n} is smaller than the (padded) window")
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


def window_params(m: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int],
                                          tuple[int, int], bool]:
    """(kernel, stride, padding, dilation, ceil_mode) of a conv or window pool, as (H, W) pairs.

    A convolution with ``padding="same"`` has padding ``(-1, -1)`` (its output size is its input
    size); ``padding="valid"`` is ``(0, 0)``. A pool without a stride has stride = kernel.
    """
    if isinstance(m, nn.Conv2d):
        k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
        if m.padding == "same":
            p = (-1, -1)          # marker: output size = input size
        elif m.padding == "valid":
            p = (0, 0)
        else:
            p = _pair(m.padding)
        return k, s, p, d, False
    k = _pair(m.kernel_size)
    s = k if m.stride is None or m.stride == [] or m.stride == () else _pair(m.stride)
    d = _pair(getattr(m, "dilation", 1))
    return k, s, _pair(m.padding), d, bool(m.ceil_mode)


def _features_of(m: nn.Module) -> int | None:
    if isinstance(m, nn.Linear):
        return m.in_features
    if isinstance(m, nn.BatchNorm1d):
        return m.num_features
    return None


def _input_shape(mods: Sequence[nn.Module], input_size: tuple[int, int] | None) -> tuple:
    """The shape entering the net: a feature vector when the first shape-defining module is
    Linear / BatchNorm1d, else a map of ``input_size`` (None: unknown)."""
    first = next((m for m in mods if not isinstance(m, _POINTWISE)), None)
    if isinstance(first, (nn.Linear, nn.BatchNorm1d)):
        return (_features_of(first),)
    h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
    return (None, h, w)


def _conv_out(m: nn.Conv2d, shape: tuple, where: str) -> tuple:
    if m.groups != 1:
        raise ValueError(f"{where}: only groups=1 convolutions are supported, got "
                         f"groups={m.groups}")
    if len(shape) == 1:
        raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
    if shape[0] is not None and shape[0] != m.in_channels:
        raise ValueError(f"{where}: expects {m.in_channels} input channels, gets "
                         f"{shape[0]}")
    k, s, p, d, _ = window_params(m)
    if p[0] < 0:       # padding="same"
        return (m.out_channels, shape[1], shape[2])
    return (m.out_channels,
            _window_out(shape[1], k[0], s[0], p[0], d[0], False, where),
            _window_out(shape[2], k[1], s[1], p[1], d[1], False, where))


def _linear_out(m: nn.Linear, shape: tuple, where: str) -> tuple:
    if len(shape) != 1:
        raise ValueError(f"{where}: receives a 4-D map; put an nn.Flatten before it")
    if shape[0] is not None and shape[0] != m.in_features:
        raise ValueError(f"{where}: expects {m.in_features} input features, gets "
                         f"{shape[0]} (wrong input_size?)")
    return (m.out_features,)


def _batchnorm_out(m: nn.Module, shape: tuple, where: str) -> tuple:
    flat = len(shape) == 1
    if not m.track_running_stats:
        raise ValueError(f"{where}: BatchNorm without running statistics is not "
                         f"supported (its eval-mode function depends on the batch)")
    if isinstance(m, nn.BatchNorm2d) == flat:
        raise ValueError(f"{where}: receives {'flat features' if flat else 'a 4-D map'}")
    if shape[0] is not None and shape[0] != m.num_features:
        raise ValueError(f"{where}: has {m.num_features} features, gets {shape[0]}")
    return (m.num_features,) + tuple(shape[1:])


def _pool_out(m: nn.Module, shape: tuple, where: str) -> tuple[tuple, str]:
    """Output shape and kind (``pool`` or ``adaptive``) of a window or adaptive pool."""
    if len(shape) == 1:
        raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
    if isinstance(m, _WINDOW_POOLS):
        k, s, p, d, c = window_params(m)
        return (shape[0], _window_out(shape[1], k[0], s[0], p[0], d[0], c, where),
                _window_out(shape[2], k[1], s[1], p[1], d[1], c, where)), "pool"
    o = m.output_size
    oh, ow = (o, o) if isinstance(o, int) else (o[0], o[1])
    return (shape[0], shape[1] if oh is None else oh, shape[2] if ow is None else ow), "adaptive"


def _flatten_out(m: nn.Flatten, shape: tuple, later: Sequence[nn.Module],
                 where: str) -> tuple[tuple, tuple, int | None]:
    """``(shape_in, shape_out, spatial)`` of a Flatten; the next module of ``later`` that fixes
    a feature count tells the spatial size (and the channels, on the input images) when they
    are not tracked, so ``shape_in`` may be more complete than ``shape``."""
    if len(shape) == 1:
        raise ValueError(f"{where}: receives already flattened features")
    if m.start_dim != 1 or m.end_dim != -1:
        raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
    c, h, w = shape
    spatial = h * w if h is not None and w is not None else None
    nxt = next((mm for mm in later if not isinstance(mm, _POINTWISE)), None)
    feats = _features_of(nxt) if nxt is not None else None
    if c is None and feats is not None and spatial is not None and feats % spatial == 0:
        c = feats // spatial        # Flatten straight on the input images
        shape = (c, h, w)
    if feats is not None and c is not None:
        if spatial is None:
            if feats % c:
                raise ValueError(f"{where}: {c} channels do not divide the "
                                 f"{feats} features of the next layer")
            spatial = feats // c
        elif feats != c * spatial:
            raise ValueError(f"{where}: flattens {c} x {h} x {w} = {c * spatial} "
                             f"features but the next layer expects {feats} (wrong "
                             f"input_size?)")
    return shape, (None if c is None or spatial is None else c * spatial,), spatial


def analyse(net: nn.Module, input_size: tuple[int, int] | None = None) -> list[Step]:
    """Check ``net`` module by module and track the shape of the tensor through it.

    ``input_size`` is the ``(H, W)`` of the input images (None: spatial sizes unknown, except
    where a Flatten's next layer fixes them). Raises ``ValueError`` naming the module for
    anything unsupported or inconsistent.
    """
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"net: expected an nn.Sequential, got {type(net).__name__}")
    mods = list(net)
    shape = _input_shape(mods, input_size)
    steps: list[Step] = []
    for i, m in enumerate(mods):
        where = f"module {i} ({type(m).__name__})"
        spatial = None
        if isinstance(m, nn.Conv2d):
            out, kind = _conv_out(m, shape, where), "conv"
        elif isinstance(m, nn.Linear):
            out, kind = _linear_out(m, shape, where), "linear"
        elif isinstance(m, BATCHNORMS):
            out, kind = _batchnorm_out(m, shape, where), "bn"
        elif isinstance(m, _POINTWISE):
            out, kind = shape, "act"
        elif isinstance(m, _WINDOW_POOLS + _ADAPTIVE_POOLS):
            out, kind = _pool_out(m, shape, where)
        elif isinstance(m, nn.Flatten):
            shape, out, spatial = _flatten_out(m, shape, mods[i + 1:], where)
            kind = "flatten"
        else:
            raise ValueError(f"{where}: unsupported module; supported are {_SUPPORTED}")
        steps.append(Step(i, kind, tuple(shape), tuple(out), spatial))
        shape = out
    return steps


# ----------------------------------------------------------------------------- hidden layers
def _affine(steps: Sequence[Step]) -> list[int]:
    return [s.index for s in steps if s.kind in ("conv", "linear")]


def hidden_layers(steps: Sequence[Step]) -> list[int]:
    """Indices of the permutable conv / linear modules among a net's steps (:func:`analyse`):
    every affine layer but the last (the logits)."""
    return _affine(steps)[:-1]


def repair_point(net: nn.Sequential, i: int) -> int:
    """REPAIR's point of hidden layer i: its BatchNorm's output if one follows, else its own."""
    j = i + 1
    while j < len(net) and isinstance(net[j], _TRANSPARENT):
        j += 1
    return j if j < len(net) and isinstance(net[j], BATCHNORMS) else i


def matching_point(net: nn.Sequential, i: int) -> int:
    """Matching point of hidden layer i: the end of the run of BN / activations after it."""
    j = i
    while j + 1 < len(net) and isinstance(net[j + 1], BATCHNORMS + _POINTWISE):
        j += 1
    return j


def hidden_units(net: nn.Sequential) -> list[int]:
    """Indices of the conv / linear modules whose output channels are permutable.

    All of them except the last affine layer (the logits). The matching point of each (where
    :func:`~identifiable.torch.match.match_activations` compares channels) is the output of the
    BatchNorm / activation run that follows it (post-activation, as in Jordan et al. 2023);
    REPAIR's point is its pre-activation output (after its BatchNorm if there is one). [BK23]
    Section 3.
    """
    return hidden_layers(analyse(net))


def check_same_structure(sa: Sequence[Step], sb: Sequence[Step]) -> None:
    """Raise ``ValueError`` unless two nets' steps (:func:`analyse`) have the same module kinds
    and widths (the condition for matching and merging them)."""
    if [s.kind for s in sa] != [s.kind for s in sb] or \
            [s.shape_out[0] for s in sa] != [s.shape_out[0] for s in sb]:
        raise ValueError("net_a, net_b: expected the same architecture (module types and widths)")


def index_batchnorm(bn: nn.Module, idx: Tensor) -> None:
    """Reorder a BatchNorm's channels in place: channel i becomes old channel ``idx[i]``
    (weight, bias, running mean and variance; call under ``torch.no_grad()``)."""
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(bn, name)
        if t is not None:
            t.copy_(t[idx])


# ----------------------------------------------------------------------------- feeding a net
def check_images(images: Tensor, what: str = "images") -> None:
    """Raise ``ValueError`` (naming ``what``) unless ``images`` is a non-empty N x ... tensor."""
    if not isinstance(images, Tensor) or images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty N x ... tensor")


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """``ceil(n / batch_size)`` contiguous batches of nearly equal sizes (never one of size 1
    unless ``n == 1``, which train-mode BatchNorm1d would reject)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    k = max(1, -(-n // batch_size))
    for j in range(k):
        yield slice(j * n // k, (j + 1) * n // k)


def reference_tensor(net: nn.Module) -> Tensor:
    """A tensor with the net's device and dtype: its first parameter, else its first buffer,
    else a float32 CPU scalar."""
    p = next(net.parameters(), None)
    if p is None:
        p = next(net.buffers(), None)
    return p if p is not None else torch.zeros(())


def to_net(x: Tensor, ref: Tensor) -> Tensor:
    """``x`` on the device of ``ref`` (:func:`reference_tensor`), in its dtype when ``ref`` is
    floating point."""
    dtype = ref.dtype if ref.is_floating_point() else x.dtype
    return x.to(device=ref.device, dtype=dtype)


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Put nets in eval mode, restoring each module's training flag afterwards."""
    saved = [(m, m.training) for net in nets for m in net.modules()]
    try:
        for net in nets:
            net.eval()
        yield
    finally:
        for m, t in saved:
            m.training = t
