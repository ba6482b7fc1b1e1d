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
* :func:`index_batchnorm` permutes a BatchNorm's channels;
* :func:`channel_group` / :func:`sign_blocker`: whether a hidden layer's channels may also be
  negated (signed permutations, the latent group K(tanh) of an odd activation, Section 5.1
  [SMBK26]) or only permuted (K(ReLU): positively scaled permutations, Lemma 2.2 [BK23]; GELU,
  sigmoid: permutations), decided from the library's activation table
  (:func:`activation_name`, :func:`odd_activation`).

It also holds the plumbing that every pass of :mod:`identifiable.torch.match` and
:mod:`identifiable.torch.merge` over such a net shares: :func:`check_images`, :func:`batches`,
:func:`reference_tensor`, :func:`to_net` and :func:`eval_mode`.

Networks are plain ``nn.Sequential`` s of ``Conv2d`` (groups = 1), ``BatchNorm2d`` /
``BatchNorm1d``, pointwise activations (``ReLU``, ``LeakyReLU``, ``GELU``, ``Tanh``, ``Sigmoid``,
``Identity``, ``Dropout``), ``MaxPool2d`` / ``AvgPool2d`` / ``AdaptiveAvgPool2d`` /
``AdaptiveMaxPool2d``, ``Flatten`` and ``Linear`` (:func:`identifiable.torch.vgg.to_plain` exports
the VGG11s to this form). Anything else raises ``ValueError``. Inputs are already-normalised
``N x C x H x W`` tensors. Nets with residual connections (ResNets) and other modules that are
not such chains: :mod:`identifiable.torch.graph` (permutation groups from a torch.fx trace).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["BATCHNORMS", "Step", "analyse", "hidden_layers", "hidden_units", "repair_point",
           "matching_point", "check_same_structure", "window_params", "index_batchnorm",
           "GROUPS", "odd_activation", "sign_blocker", "channel_group",
           "check_images", "batches", "reference_tensor", "to_net", "eval_mode",
           "batch_statistics_mode", "REPAIR_ENDPOINTS", "endpoint_mode"]

#: the BatchNorm modules a supported net may hold
BATCHNORMS = (nn.BatchNorm2d, nn.BatchNorm1d)
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout)
TRANSPARENT = (nn.Identity, nn.Dropout)      # identities in eval mode
WINDOW_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_SUPPORTED = ("Conv2d (groups=1), BatchNorm2d, BatchNorm1d, ReLU, LeakyReLU, GELU, Tanh, "
              "Sigmoid, Identity, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, "
              "AdaptiveMaxPool2d, Flatten, Linear")


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
    first = next((m for m in mods if not isinstance(m, POINTWISE)), None)
    if isinstance(first, (nn.Linear, nn.BatchNorm1d)):
        return (_features_of(first),)
    h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
    return (None, h, w)


def conv_out(m: nn.Conv2d, shape: tuple, where: str) -> tuple:
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


def linear_out(m: nn.Linear, shape: tuple, where: str) -> tuple:
    if len(shape) != 1:
        raise ValueError(f"{where}: receives a 4-D map; put an nn.Flatten before it")
    if shape[0] is not None and shape[0] != m.in_features:
        raise ValueError(f"{where}: expects {m.in_features} input features, gets "
                         f"{shape[0]} (wrong input_size?)")
    return (m.out_features,)


def batchnorm_out(m: nn.Module, shape: tuple, where: str) -> tuple:
    flat = len(shape) == 1
    if not m.track_running_stats:
        raise ValueError(f"{where}: BatchNorm without running statistics is not "
                         f"supported (its eval-mode function depends on the batch)")
    if isinstance(m, nn.BatchNorm2d) == flat:
        raise ValueError(f"{where}: receives {'flat features' if flat else 'a 4-D map'}")
    if shape[0] is not None and shape[0] != m.num_features:
        raise ValueError(f"{where}: has {m.num_features} features, gets {shape[0]}")
    return (m.num_features,) + tuple(shape[1:])


def pool_out(m: nn.Module, shape: tuple, where: str) -> tuple[tuple, str]:
    """Output shape and kind (``pool`` or ``adaptive``) of a window or adaptive pool."""
    if len(shape) == 1:
        raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
    if isinstance(m, WINDOW_POOLS):
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
    nxt = next((mm for mm in later if not isinstance(mm, POINTWISE)), None)
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
            out, kind = conv_out(m, shape, where), "conv"
        elif isinstance(m, nn.Linear):
            out, kind = linear_out(m, shape, where), "linear"
        elif isinstance(m, BATCHNORMS):
            out, kind = batchnorm_out(m, shape, where), "bn"
        elif isinstance(m, POINTWISE):
            out, kind = shape, "act"
        elif isinstance(m, WINDOW_POOLS + ADAPTIVE_POOLS):
            out, kind = pool_out(m, shape, where)
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
    while j < len(net) and isinstance(net[j], TRANSPARENT):
        j += 1
    return j if j < len(net) and isinstance(net[j], BATCHNORMS) else i


def matching_point(net: nn.Sequential, i: int) -> int:
    """Matching point of hidden layer i: the end of the run of BN / activations after it."""
    j = i
    while j + 1 < len(net) and isinstance(net[j + 1], BATCHNORMS + POINTWISE):
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


# ----------------------------------------------------------------------------- channel groups
#: the channel symmetry groups matching can use at a hidden layer: ``"perm"`` (permutations)
#: and ``"signed"`` (signed permutations)
GROUPS = ("perm", "signed")
_LINEAR_ODD = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)   # linear: commute with -1
_K_WORDS = {"one": "permutations", "sign": "signed permutations",
            "positive": "positively scaled permutations", "nonzero": "monomial matrices"}


def activation_name(m: nn.Module) -> str | None:
    """The name in :mod:`identifiable.activations` (for :func:`identifiable.activations.get`) of
    the function a pointwise module computes in eval mode; None where the library's table has
    no such activation (GELU's tanh approximation).

    ``Identity`` / ``Dropout`` are ``"identity"``; ``LeakyReLU`` is ``"leaky_relu:<slope>"``.
    """
    from identifiable.torch.bridge import activation_name as _name

    if isinstance(m, POINTWISE):
        return _name(m)
    raise ValueError(f"{type(m).__name__}: not a supported pointwise module")


@functools.lru_cache(maxsize=64)
def _odd_by_name(name: str) -> tuple[bool, str]:
    """:func:`odd_activation` of a library activation (the derivation is cached here)."""
    from identifiable import activations
    from identifiable.verdict import UndecidedError

    try:
        group = activations.get(name).intertwiner_group(1)
    except (UndecidedError, ValueError) as exc:
        return False, f"the library cannot derive K({name}) ({exc}), treated as not odd"
    if group.family == "GL":  # the group says what it is
        return True, f"{name} is linear: K = GL contains the signed permutations"
    sc = group.scalings
    words = _K_WORDS[sc.kind]
    if sc.kind in ("sign", "nonzero") and sc.c(-1) == -1:
        return True, f"K({name}) = {words} with {name}(-x) = -{name}(x): odd"
    if sc.kind in ("sign", "nonzero"):
        return False, f"K({name}) = {words} with {name}(-x) = {sc.c(-1)} {name}(x): not odd"
    why = f"K({name}) = {words}: -1 is no scaling of {name}, it is not odd"
    if name == "sigmoid":
        why += " (sigmoid(-x) = 1 - sigmoid(x) is affine, not linear)"
    return False, why


def odd_activation(m: nn.Module) -> tuple[bool, str]:
    """Whether a pointwise module is odd, ``sigma(-x) = -sigma(x)``, with the library's reason.

    Asked of the library's activation table: the module's function
    (:func:`activation_name`) is looked up with :func:`identifiable.activations.get` and its
    intertwiner group K of eq. (8) [SMBK26] derived; the module is odd iff K contains the sign
    flip ``-1`` with partner ``c(-1) = -1`` (K(tanh) = signed permutations, Section 5.1
    [SMBK26]; a linear activation, K = GL). K(ReLU) = K(LeakyReLU) = positively scaled
    permutations (Lemma 2.2 [BK23]) and K(GELU) = K(sigmoid) = permutations are not odd: for
    the sigmoid, ``sigmoid(-x) = 1 - sigmoid(x)`` is affine, not a multiple of ``sigmoid(x)``,
    so a sign flip would need a bias shift in the next layer, which no element of K is (the
    library derives K(sigmoid) = permutations). An activation missing from the table, or whose
    K cannot be derived, counts as not odd.
    """
    name = activation_name(m)
    if name is None:
        return False, f"{type(m).__name__}({m.extra_repr()}) is not in the library's table"
    return _odd_by_name(name)


def _sign_rule(m: nn.Module) -> str | None:
    """None where module m commutes with negating channels (a BatchNorm once its running mean
    and bias are negated, see :func:`identifiable.torch.merge.permute_network`), else why not."""
    if isinstance(m, BATCHNORMS + _LINEAR_ODD):
        return None
    if isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        return "max(-x) = -min(x), a max-pool does not commute with negating a channel"
    if isinstance(m, POINTWISE):
        odd, why = odd_activation(m)
        return None if odd else why
    return f"{type(m).__name__} is not known to commute with negating a channel"


def sign_blocker(net: nn.Sequential, i: int) -> str | None:
    """None if negating output channels of hidden layer i can be undone by negating the next
    affine layer's inputs, else the reason naming the first module that breaks it.

    Every module between layer i and the next conv / linear layer must be odd: odd
    activations (:func:`odd_activation`), BatchNorms (``BN(-z) = -BN(z)`` once their running
    mean and bias are negated), average pools and Flatten (linear). A max-pool, ReLU, GELU or
    sigmoid there allows permutations only.
    """
    for j in range(i + 1, len(net)):
        m = net[j]
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            return None
        why = _sign_rule(m)
        if why is not None:
            return f"module {j} ({type(m).__name__}) after layer {i}: {why}"
    return None


def channel_group(net: nn.Sequential, i: int) -> str:
    """The channel group matching uses at hidden layer i ([BK23] Section 4 made K-aware):
    ``"signed"`` (signed permutations, K of an odd activation such as tanh, Section 5.1
    [SMBK26]) where :func:`sign_blocker` finds nothing, else ``"perm"`` (permutations; the
    positive scalings of K(ReLU), Lemma 2.2 [BK23], need no matching, the correlation
    statistics are invariant to them)."""
    return "signed" if sign_blocker(net, i) is None else "perm"


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


@contextlib.contextmanager
def batch_statistics_mode(*nets: nn.Module) -> Iterator[None]:
    """Eval mode, except that every BatchNorm normalises with the statistics of the batch it
    sees (its train-mode forward) and leaves its running buffers untouched
    (``track_running_stats`` is off for the duration). Dropout stays off. Restores every
    module's training flag and every BatchNorm's ``track_running_stats`` afterwards.

    This is how the REPAIR authors' code (Jordan et al., ICLR 2023, the VGG11 notebooks that
    [BK23] uses) measures the endpoint statistics: ``model.train()`` over the training loader.
    """
    saved = [(m, m.training) for net in nets for m in net.modules()]
    bns = list({id(m): m for net in nets for m in net.modules()
                if isinstance(m, BATCHNORMS)}.values())
    tracked = [bn.track_running_stats for bn in bns]
    try:
        for net in nets:
            net.eval()
        for bn in bns:
            bn.train()
            bn.track_running_stats = False
        yield
    finally:
        for bn, t in zip(bns, tracked):
            bn.track_running_stats = t
        for m, t in saved:
            m.training = t


#: how the endpoints' BatchNorms normalise while REPAIR measures their per-channel statistics:
#: ``"train"`` with each batch's own statistics (the REPAIR authors' code, the default),
#: ``"eval"`` with their running statistics
REPAIR_ENDPOINTS = ("train", "eval")


def endpoint_mode(endpoints: str) -> Any:
    """The context manager of one :data:`REPAIR_ENDPOINTS` convention (a clear error for any
    other name)."""
    if endpoints == "train":
        return batch_statistics_mode
    if endpoints == "eval":
        return eval_mode
    raise ValueError(f"repair endpoints: expected one of {', '.join(REPAIR_ENDPOINTS)}, got "
                     f"{endpoints!r}")
