"""Aligning, merging and repairing CNNs: the GCNN barrier of [BK23] (Bökman & Kahl, NeurIPS 2023).

* **Flipped network** ([BK23] Section 3): :func:`flip_network` flips every convolution kernel along
  its width, so that ``hat-Phi(x) = Phi(tau x)`` where ``tau`` flips the image width. This is
  exact only when every strided / padded window is symmetric under the flip; [BK23] footnote 2
  and Appendix A.2.1 (a stride-2 layer on an even width never reaches the right edge) describe
  the defect, which :class:`FlipReport` lists layer by layer.
* **Activation matching** ([BK23] Section 4, refs. [1, 25]): :func:`match_activations` streams a
  set of images once through both networks, accumulating in float64 the per-layer sufficient
  statistics of Pearson's correlation (per-channel sums, the diagonals of ``a^T a`` and
  ``b^T b``, and the co-moment ``a^T b``, over every pixel of every image; memory O(C^2) per
  layer), forms the correlations of the channels and solves one linear assignment per layer.
  :func:`permute_network` applies the permutations (a function-preserving reparametrisation,
  [BK23] Section 3).
* **Merging**: :func:`interpolate` averages weights, :func:`reset_bn_stats` recomputes the
  BatchNorm statistics ([BK23] Table 3: "we still reset batch norm statistics after merging"),
  and :func:`repair` is REPAIR (Jordan et al., "REPAIR: REnormalizing Permuted Activations for
  Interpolation Repair", ICLR 2023): every channel of the merged net is renormalised to the
  interpolated mean and standard deviation of the endpoints, and the correction is folded into
  the weights so that the architecture is unchanged.
* **Measures**: the barrier of eq. (4) ([BK23] Section 3) in :func:`barrier`, the relative
  invariance error of [BK23] Section 4 in :func:`invariance_error`, the permutation orders of
  [BK23] Figure 4 in :func:`order_counts`, and the whole pipeline in :func:`gcnn_barrier` (the
  "GCNN barrier", [BK23] Section 3) and :func:`merge_barrier` (two different nets, [BK23]
  Table 4).

Networks are plain ``nn.Sequential`` s of ``Conv2d`` (groups = 1), ``BatchNorm2d`` /
``BatchNorm1d``, pointwise activations (``ReLU``, ``LeakyReLU``, ``GELU``, ``Tanh``, ``Identity``,
``Dropout``), ``MaxPool2d`` / ``AvgPool2d`` / ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``,
``Flatten`` and ``Linear`` (:func:`identifiable.torch.vgg.to_plain` exports the VGG11s to this
form). Anything else raises ``ValueError``. Inputs are already-normalised ``N x C x H x W``
tensors.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn.utils import skip_init

__all__ = ["FlipReport", "flip_network", "flip_images", "hidden_units", "MatchResult",
           "match_activations", "permute_network", "permutation_orders", "order_counts",
           "interpolate", "reset_bn_stats", "repair", "accuracy", "invariance_error", "barrier",
           "BarrierResult", "gcnn_barrier", "merge_barrier"]

_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Identity, nn.Dropout)
_TRANSPARENT = (nn.Identity, nn.Dropout)      # identities in eval mode
_BN = (nn.BatchNorm2d, nn.BatchNorm1d)
_WINDOW_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_SUPPORTED = ("Conv2d (groups=1), BatchNorm2d, BatchNorm1d, ReLU, LeakyReLU, GELU, Tanh, "
              "Identity, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, "
              "Flatten, Linear")


# ----------------------------------------------------------------------------- structure
@dataclass
class _Step:
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


def _window_params(m: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int],
                                           tuple[int, int], bool]:
    """(kernel, stride, padding, dilation, ceil_mode) of a conv or window pool, as (H, W) pairs."""
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


def _analyse(net: nn.Module, input_size: tuple[int, int] | None = None) -> list[_Step]:
    """Check ``net`` module by module and track the shape of the tensor through it."""
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"net: expected an nn.Sequential, got {type(net).__name__}")
    mods = list(net)
    # the input is a feature vector when the first shape-defining module is Linear / BatchNorm1d
    first = next((m for m in mods if not isinstance(m, _POINTWISE)), None)
    if isinstance(first, (nn.Linear, nn.BatchNorm1d)):
        shape: tuple = (_features_of(first),)
    else:
        h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
        shape = (None, h, w)
    steps: list[_Step] = []
    for i, m in enumerate(mods):
        where = f"module {i} ({type(m).__name__})"
        flat = len(shape) == 1
        spatial = None
        if isinstance(m, nn.Conv2d):
            if m.groups != 1:
                raise ValueError(f"{where}: only groups=1 convolutions are supported, got "
                                 f"groups={m.groups}")
            if flat:
                raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
            if shape[0] is not None and shape[0] != m.in_channels:
                raise ValueError(f"{where}: expects {m.in_channels} input channels, gets "
                                 f"{shape[0]}")
            k, s, p, d, _ = _window_params(m)
            if p[0] < 0:       # padding="same"
                out = (m.out_channels, shape[1], shape[2])
            else:
                out = (m.out_channels,
                       _window_out(shape[1], k[0], s[0], p[0], d[0], False, where),
                       _window_out(shape[2], k[1], s[1], p[1], d[1], False, where))
            kind = "conv"
        elif isinstance(m, nn.Linear):
            if not flat:
                raise ValueError(f"{where}: receives a 4-D map; put an nn.Flatten before it")
            if shape[0] is not None and shape[0] != m.in_features:
                raise ValueError(f"{where}: expects {m.in_features} input features, gets "
                                 f"{shape[0]} (wrong input_size?)")
            out, kind = (m.out_features,), "linear"
        elif isinstance(m, _BN):
            if not m.track_running_stats:
                raise ValueError(f"{where}: BatchNorm without running statistics is not "
                                 f"supported (its eval-mode function depends on the batch)")
            if isinstance(m, nn.BatchNorm2d) == flat:
                raise ValueError(f"{where}: receives {'flat features' if flat else 'a 4-D map'}")
            if shape[0] is not None and shape[0] != m.num_features:
                raise ValueError(f"{where}: has {m.num_features} features, gets {shape[0]}")
            out = (m.num_features,) + tuple(shape[1:])
            kind = "bn"
        elif isinstance(m, _POINTWISE):
            out, kind = shape, "act"
        elif isinstance(m, _WINDOW_POOLS + _ADAPTIVE_POOLS):
            if flat:
                raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
            if isinstance(m, _WINDOW_POOLS):
                k, s, p, d, c = _window_params(m)
                out = (shape[0], _window_out(shape[1], k[0], s[0], p[0], d[0], c, where),
                       _window_out(shape[2], k[1], s[1], p[1], d[1], c, where))
                kind = "pool"
            else:
                o = m.output_size
                oh, ow = (o, o) if isinstance(o, int) else (o[0], o[1])
                out = (shape[0], shape[1] if oh is None else oh, shape[2] if ow is None else ow)
                kind = "adaptive"
        elif isinstance(m, nn.Flatten):
            if flat:
                raise ValueError(f"{where}: receives already flattened features")
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
            c, h, w = shape
            if h is not None and w is not None:
                spatial = h * w
            # the next module that fixes a feature count tells the spatial size when untracked
            nxt = next((mm for mm in mods[i + 1:] if not isinstance(mm, _POINTWISE)), None)
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
            out = (None if c is None or spatial is None else c * spatial,)
            kind = "flatten"
        else:
            raise ValueError(f"{where}: unsupported module; supported are {_SUPPORTED}")
        steps.append(_Step(i, kind, tuple(shape), tuple(out), spatial))
        shape = out
    return steps


def _affine(steps: Sequence[_Step]) -> list[int]:
    return [s.index for s in steps if s.kind in ("conv", "linear")]


def _hidden(steps: Sequence[_Step]) -> list[int]:
    return _affine(steps)[:-1]


def _pre_point(net: nn.Sequential, i: int) -> int:
    """REPAIR's point of hidden layer i: its BatchNorm's output if one follows, else its own."""
    j = i + 1
    while j < len(net) and isinstance(net[j], _TRANSPARENT):
        j += 1
    return j if j < len(net) and isinstance(net[j], _BN) else i


def _post_point(net: nn.Sequential, i: int) -> int:
    """Matching point of hidden layer i: the end of the run of BN / activations after it."""
    j = i
    while j + 1 < len(net) and isinstance(net[j + 1], _BN + _POINTWISE):
        j += 1
    return j


def hidden_units(net: nn.Sequential) -> list[int]:
    """Indices of the conv / linear modules whose output channels are permutable.

    All of them except the last affine layer (the logits). The matching point of each (where
    :func:`match_activations` compares channels) is the output of the BatchNorm / activation run
    that follows it (post-activation, as in Jordan et al. 2023); REPAIR's point is its
    pre-activation output (after its BatchNorm if there is one). [BK23] Section 3.
    """
    return _hidden(_analyse(net))


# ----------------------------------------------------------------------------- helpers
def _batches(n: int, batch_size: int) -> Iterator[slice]:
    """``ceil(n / batch_size)`` contiguous batches of nearly equal sizes (never one of size 1
    unless ``n == 1``, which train-mode BatchNorm1d would reject)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    k = max(1, -(-n // batch_size))
    for j in range(k):
        yield slice(j * n // k, (j + 1) * n // k)


def _param(net: nn.Module) -> Tensor:
    p = next(net.parameters(), None)
    if p is None:
        p = next(net.buffers(), None)
    return p if p is not None else torch.zeros(())


def _to_net(x: Tensor, ref: Tensor) -> Tensor:
    dtype = ref.dtype if ref.is_floating_point() else x.dtype
    return x.to(device=ref.device, dtype=dtype)


@contextlib.contextmanager
def _eval(*nets: nn.Module) -> Iterator[None]:
    """Put nets in eval mode, restoring each module's training flag afterwards."""
    saved = [(m, m.training) for net in nets for m in net.modules()]
    try:
        for net in nets:
            net.eval()
        yield
    finally:
        for m, t in saved:
            m.training = t


def _check_images(images: Tensor, what: str = "images") -> None:
    if not isinstance(images, Tensor) or images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty N x ... tensor")


def _same_structure(sa: Sequence[_Step], sb: Sequence[_Step]) -> None:
    if [s.kind for s in sa] != [s.kind for s in sb] or \
            [s.shape_out[0] for s in sa] != [s.shape_out[0] for s in sb]:
        raise ValueError("net_a, net_b: expected the same architecture (module types and widths)")


def _channel_sums(y: Tensor) -> tuple[Tensor, Tensor, float]:
    """Per-channel sum and sum of squares of ``y`` (N x C or N x C x H x W) in float64, and the
    number of samples per channel.

    Two contiguous reductions each (over one image's pixels, then over the images) in y's dtype
    (torch sums pairwise, so float32 keeps ~1e-7 relative accuracy), then float64; callers
    centre the data where the mean may dwarf the spread (:class:`_Cross`), and REPAIR's points
    are BatchNorm / affine outputs of moderate mean.
    """
    n, c = y.shape[0], y.shape[1]
    norm = torch.linalg.vector_norm
    if y.dim() == 2:
        return y.sum(0).double(), norm(y, dim=0).double().square(), float(n)
    y3 = y.reshape(n, c, -1)
    s = y3.sum(2).sum(0).double()
    q = norm(norm(y3, dim=2), dim=0).double().square()
    return s, q, float(n * y3.shape[2])


class _Moments:
    """Per-channel count, sum and sum of squares (float64) of a stream of batches; the samples
    of a channel are all its pixels in all images."""

    def __init__(self, c: int, device: torch.device):
        self.n = 0.0
        self.s = torch.zeros(c, dtype=torch.float64, device=device)
        self.q = torch.zeros(c, dtype=torch.float64, device=device)

    def update(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Add a batch ``N x C (x H x W)``; returns its per-channel mean and (biased) variance
        in float64."""
        s, q, nb = _channel_sums(y)
        self.s += s
        self.q += q
        self.n += nb
        mean = s / nb
        return mean, (q / nb - mean * mean).clamp_min(0.0)

    def mean_var(self) -> tuple[Tensor, Tensor]:
        n = max(self.n, 1.0)
        mean = self.s / n
        return mean, (self.q / n - mean * mean).clamp_min(0.0)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, population standard deviation) as float64 arrays."""
        mean, var = self.mean_var()
        return mean.cpu().numpy(), var.sqrt().cpu().numpy()


#: images per batched matmul chunk: at most this many floats in the N x C x C products
_BMM_FLOATS = 1 << 24


def _centred_rows(y: Tensor, shift: Tensor) -> Tensor:
    """``y`` (N x C or N x C x H x W) as a new C x M matrix minus ``shift`` (one pass)."""
    c = y.shape[1]
    if y.dim() == 2:
        out = torch.empty((c, y.shape[0]), dtype=y.dtype, device=y.device)
        torch.sub(y.t(), shift[:, None], out=out)
        return out
    yv = y.reshape(y.shape[0], c, -1)
    out = torch.empty((c, yv.shape[0], yv.shape[2]), dtype=y.dtype, device=y.device)
    torch.sub(yv.transpose(0, 1), shift[:, None, None], out=out)
    return out.view(c, -1)


class _Cross:
    """Streaming correlation statistics of two C-channel activations (float64, O(C^2) memory).

    Fed the two activations stacked along channels, ``[a; b]`` (N x 2C (x H x W)): accumulates
    the per-channel sums and sums of squares of both and the C x C cross moment ``a^T b`` in
    float64; the diagonals of ``a^T a``, ``b^T b`` are all that Pearson's correlation needs of
    those. Per batch, ``a^T b`` is one product in the activations' dtype:

    * wide maps (H*W >= C): batched per-image matmuls straight on the N x C x HW views (no copy),
      summed over images (each float32 dot product has at most H*W terms);
    * narrow maps and flat features: one copy to 2C x M minus a fixed per-channel shift (the
      first batch's means, so that the float32 products see centred data), then one matmul.
    """

    def __init__(self, c: int, device: torch.device):
        self.c = c
        self.mom = _Moments(2 * c, device)
        self.p = torch.zeros((c, c), dtype=torch.float64, device=device)
        self.shift: Tensor | None = None

    def update(self, y: Tensor) -> None:
        n, c = y.shape[0], self.c
        if y.dim() == 4 and y.shape[2] * y.shape[3] >= c:
            self.mom.update(y)
            y3 = y.reshape(n, 2 * c, -1)
            chunk = max(1, _BMM_FLOATS // (c * c))
            for i in range(0, n, chunk):
                part = y3[i:i + chunk]
                self.p += torch.bmm(part[:, :c], part[:, c:].transpose(1, 2)).sum(0).double()
            return
        if self.shift is None:
            self.shift = (_channel_sums(y)[0] / (y.numel() // y.shape[1])).to(y.dtype)
        x = _centred_rows(y, self.shift)
        self.mom.update(x.T)
        self.p += (x[:c] @ x[c:].T).double()

    def correlation(self) -> np.ndarray:
        """Pearson correlations ``corr[i, j] = corr(a_i, b_j)``; 0 for dead channels (constant
        up to float32 resolution: std <= 1e-3 of the channel's RMS, or var <= 1e-12 of the
        largest in its net's layer)."""
        c, n = self.c, max(self.mom.n, 1.0)
        mean, var = self.mom.mean_var()
        cov = (self.p / n - torch.outer(mean[:c], mean[c:])).cpu().numpy()
        mean, var = mean.cpu().numpy(), var.cpu().numpy()
        raw_mean = mean if self.shift is None else mean + self.shift.double().cpu().numpy()
        alive = var > 1e-6 * (var + raw_mean ** 2)
        for part in (slice(0, c), slice(c, 2 * c)):
            alive[part] &= var[part] > 1e-12 * max(var[part].max(initial=0.0), 1e-300)
        sd = np.sqrt(np.where(alive, var, 1.0))
        corr = cov / sd[:c, None] / sd[None, c:]
        corr[~alive[:c], :] = 0.0
        corr[:, ~alive[c:]] = 0.0
        return np.clip(corr, -1.0, 1.0)


class _PairLinear(nn.Module):
    """Two Linear layers side by side on stacked features ``[x_a, x_b]``."""

    def __init__(self, a: nn.Linear, b: nn.Linear):
        super().__init__()
        self.a, self.b, self.f = a, b, a.in_features

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.a(x[:, :self.f]), self.b(x[:, self.f:])], 1)


def _cat_or(ta: Tensor | None, tb: Tensor | None, n: int, fill: float, ref: Tensor) -> Tensor:
    def full(t):
        return torch.full((n,), fill, dtype=ref.dtype, device=ref.device) if t is None else t
    return torch.cat([full(ta), full(tb)]).detach()


def _same_state(ma: nn.Module, mb: nn.Module) -> bool:
    """Same type, hyper-parameters (``inplace`` and dropout rates aside) and tensors."""
    def hyper(m: nn.Module) -> dict:
        return {k: v for k, v in vars(m).items()
                if not k.startswith("_") and k not in ("training", "inplace", "p")}
    sa, sb = ma.state_dict(), mb.state_dict()
    return type(ma) is type(mb) and hyper(ma) == hyper(mb) and sa.keys() == sb.keys() and \
        all(torch.equal(sa[k], sb[k]) for k in sa)


def _pair_net(net_a: nn.Sequential, net_b: nn.Sequential) -> nn.Sequential | None:
    """Both nets as one net on channel-stacked activations ``[a; b]`` (eval mode), or None.

    The first affine layer gets both nets' output channels, later convolutions become
    ``groups=2`` convolutions, BatchNorms are concatenated, linear layers act side by side;
    pointwise modules and pools are shared. Module k's output is ``cat([a_k, b_k], 1)``, so
    every statistic of a batch is one operation for both nets. None where the nets differ in a
    way this cannot express (then they run separately).
    """
    mods: list[nn.Module] = []
    stacked = False
    with torch.no_grad():
        for ma, mb in zip(net_a, net_b):
            if type(ma) is not type(mb):
                return None
            if isinstance(ma, nn.Conv2d):
                if any(getattr(ma, k) != getattr(mb, k) for k in
                       ("kernel_size", "stride", "padding", "dilation", "padding_mode",
                        "in_channels", "out_channels")) or ma.groups != 1 or mb.groups != 1:
                    return None
                w = torch.cat([ma.weight, mb.weight], 0)
                g = 2 if stacked else 1
                m = skip_init(nn.Conv2d, ma.in_channels * g, 2 * ma.out_channels,
                              ma.kernel_size, ma.stride, ma.padding, ma.dilation, g, True,
                              ma.padding_mode, device=w.device, dtype=w.dtype)
                m.weight.copy_(w)
                m.bias.copy_(_cat_or(ma.bias, mb.bias, ma.out_channels, 0.0, w))
                stacked = True
            elif isinstance(ma, nn.Linear):
                if ma.weight.shape != mb.weight.shape:
                    return None
                if stacked:
                    m = _PairLinear(ma, mb)
                else:
                    w = torch.cat([ma.weight, mb.weight], 0)
                    m = skip_init(nn.Linear, ma.in_features, 2 * ma.out_features,
                                  device=w.device, dtype=w.dtype)
                    m.weight.copy_(w)
                    m.bias.copy_(_cat_or(ma.bias, mb.bias, ma.out_features, 0.0, w))
                    stacked = True
            elif isinstance(ma, _BN) and stacked:
                if ma.eps != mb.eps or ma.num_features != mb.num_features:
                    return None
                c, ref = ma.num_features, ma.running_mean
                m = type(ma)(2 * c, eps=ma.eps, device=ref.device, dtype=ref.dtype)
                m.weight.copy_(_cat_or(ma.weight, mb.weight, c, 1.0, ref))
                m.bias.copy_(_cat_or(ma.bias, mb.bias, c, 0.0, ref))
                m.running_mean.copy_(torch.cat([ma.running_mean, mb.running_mean]))
                m.running_var.copy_(torch.cat([ma.running_var, mb.running_var]))
            else:     # pointwise, pools, flatten, or a BatchNorm on the shared input
                if not _same_state(ma, mb):
                    return None
                m = copy.deepcopy(ma)
            mods.append(m)
    return nn.Sequential(*mods).eval()


def _stacked_passes(net_a: nn.Sequential, net_b: nn.Sequential, images: Tensor,
                    batch_size: int, last: int) -> Iterator[tuple[int, Tensor]]:
    """For each batch and each module k <= last: ``(k, cat([a_k, b_k], 1))`` (eval, no grad).

    Through :func:`_pair_net` when possible (one op per module for both nets), else both nets
    side by side and a concatenation at each requested point (the caller reads only some k;
    the pairs are built lazily).
    """
    ref = _param(net_a)
    pair = _pair_net(net_a, net_b)
    with _eval(net_a, net_b), torch.no_grad():
        for sl in _batches(images.shape[0], batch_size):
            x = _to_net(images[sl], ref)
            if pair is not None:
                for k in range(last + 1):
                    x = pair[k](x)
                    yield k, x
            else:
                xa = xb = x
                for k in range(last + 1):
                    xa, xb = net_a[k](xa), net_b[k](xb)
                    yield k, _LazyCat(xa, xb)


class _LazyCat:
    """``cat([a, b], 1)`` made on first use (the separate-nets path of :func:`_stacked_passes`)."""

    def __init__(self, a: Tensor, b: Tensor):
        self.a, self.b, self.t = a, b, None

    def get(self) -> Tensor:
        if self.t is None:
            self.t = torch.cat([self.a, self.b], 1)
        return self.t


def _tensor(y: Tensor | _LazyCat) -> Tensor:
    return y.get() if isinstance(y, _LazyCat) else y


def _assign(corr: np.ndarray) -> np.ndarray:
    rows, cols = linear_sum_assignment(corr, maximize=True)
    perm = np.empty(corr.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm


# ----------------------------------------------------------------------------- flipping
@dataclass
class FlipReport:
    """Whether :func:`flip_network` is exact, and why not ([BK23] footnote 2, Appendix A.2.1)."""

    exact: bool
    issues: list[str] = field(default_factory=list)


def flip_images(x: Tensor) -> Tensor:
    """``tau``: flip images (or feature maps) along their width, ``x.flip(-1)``."""
    return x.flip(-1)


def _window_issue(i: int, m: nn.Module, w: int | None) -> str | None:
    """Footnote 2 [BK23]: a window layer commutes with the width flip iff its windows tile the
    (padded) width symmetrically, ``(W + 2p - d(k-1) - 1) % s == 0``."""
    name = f"module {i} ({type(m).__name__})"
    k, s, p, d, _ = _window_params(m)
    k, s, p, d = k[1], s[1], p[1], d[1]
    if p < 0:       # padding="same", stride 1
        if d * (k - 1) % 2:
            return (f"{name}: padding='same' with an even effective kernel {d * (k - 1) + 1} "
                    f"pads asymmetrically (one more column on the right), so it does not "
                    f"commute with the flip")
        return None
    if w is None:
        return f"{name}: input width unknown, flip-equivariance not checked"
    r = (w + 2 * p - d * (k - 1) - 1) % s
    if r:
        return (f"{name}: input width {w}, kernel {k}, stride {s}, padding {p}, dilation {d}: "
                f"(W + 2p - d(k-1) - 1) % s = {r} != 0, the last window stops {r} column(s) "
                f"short of the right edge, so the layer does not commute with the flip "
                f"([BK23] footnote 2)")
    return None


def _adaptive_issue(i: int, m: nn.Module, w: int | None, ow: int | None) -> str | None:
    if ow is None or ow == w:
        return None
    if w is None:
        return f"module {i} ({type(m).__name__}): input width unknown, bins not checked"
    j = np.arange(ow)
    start, end = (j * w) // ow, -((-(j + 1) * w) // ow)
    if np.array_equal(start, w - end[::-1]):
        return None
    return (f"module {i} ({type(m).__name__}): input width {w} -> {ow} gives bins that are not "
            f"symmetric under the flip")


def flip_network(net: nn.Sequential,
                 input_size: tuple[int, int] = (32, 32)) -> tuple[nn.Sequential, FlipReport]:
    """The flipped network ``hat-Phi`` of [BK23] Section 3, with ``hat-Phi(x) = Phi(tau x)``.

    A deep copy with every conv kernel flipped along its width (``weight.flip(-1)``); BatchNorm and
    pools unchanged; the first Linear after a Flatten of a map of width ``W > 1`` (and any
    BatchNorm1d between them) gets its input features permuted by the width flip of the
    ``(C, H, W)`` flatten layout. Spatial sizes are tracked from ``input_size``; every conv / pool
    whose windows are not symmetric under the flip (footnote 2 [BK23], Appendix A.2.1: e.g. a
    stride-2 layer on an even width) is listed in the report, which is then not ``exact``.
    """
    steps = _analyse(net, input_size)
    if steps and len(steps[0].shape_in) == 1:
        raise ValueError("flip_network: the net takes flat features, expected image input")
    out = copy.deepcopy(net)
    issues: list[str] = []
    q: Tensor | None = None        # width flip of the flattened features, while they last
    with torch.no_grad():
        for st in steps:
            m = out[st.index]
            if st.kind == "conv":
                issue = _window_issue(st.index, m, st.shape_in[2])
                m.weight.copy_(m.weight.flip(-1))
            elif st.kind == "pool":
                issue = _window_issue(st.index, m, st.shape_in[2])
            elif st.kind == "adaptive":
                issue = _adaptive_issue(st.index, m, st.shape_in[2], st.shape_out[2])
            else:
                issue = None
                if st.kind == "flatten":
                    c, h, w = st.shape_in
                    if w is None or h is None or c is None:
                        raise ValueError(f"module {st.index} (Flatten): the map size is unknown; "
                                         f"pass input_size")
                    if w > 1:
                        q = torch.arange(c * h * w).view(c, h, w).flip(-1).reshape(-1)
                elif st.kind == "bn" and q is not None:
                    _index_bn(m, q.to(m.running_mean.device))
                elif st.kind == "linear" and q is not None:
                    m.weight.copy_(m.weight[:, q.to(m.weight.device)])
                    q = None
            if issue is not None:
                issues.append(issue)
    return out, FlipReport(exact=not issues, issues=issues)


# ----------------------------------------------------------------------------- matching
@dataclass
class MatchResult:
    """Activation matching of ``net_b`` to ``net_a`` ([BK23] Section 4).

    ``perms[l][i]`` is the channel of net_b matched to channel i of net_a at hidden layer
    ``layers[l]`` (so ``b[:, perm]`` is aligned to ``a``); ``correlations[l]`` the C x C float64
    Pearson correlations ``corr(a_i, b_j)``. The ``pre_*`` fields are the per-channel mean and
    (population) standard deviation at each layer's REPAIR point (pre-activation, after its BN),
    in each net's own channel order, measured on the same images; :func:`repair` can reuse them.
    """

    perms: list[np.ndarray]
    correlations: list[np.ndarray]
    layers: list[int]
    n_images: int
    pre_mean_a: list[np.ndarray] = field(default_factory=list)
    pre_std_a: list[np.ndarray] = field(default_factory=list)
    pre_mean_b: list[np.ndarray] = field(default_factory=list)
    pre_std_b: list[np.ndarray] = field(default_factory=list)

    def matched_correlation(self) -> list[float]:
        """Mean correlation of the matched pairs, per layer."""
        return [float(np.mean(c[np.arange(len(p)), p])) for c, p in
                zip(self.correlations, self.perms)]


def match_activations(net_a: nn.Sequential, net_b: nn.Sequential, images: Tensor,
                      batch_size: int = 500) -> MatchResult:
    """Activation matching ([BK23] Section 4; Ainsworth et al., Li et al.): align net_b to net_a.

    One pass over ``images`` in batches through both nets side by side (eval mode; where their
    hyper-parameters agree, as one channel-stacked net so that every operation serves both). At
    the matching point of every hidden layer (:func:`hidden_units`), each pixel of each image is
    a sample; the float64 sums, sums of squares and cross moments ``a^T b`` are accumulated in
    O(C^2) memory (one matmul per layer and batch), the Pearson correlation matrix is formed
    (dead channels correlate 0) and ``linear_sum_assignment(corr, maximize=True)`` gives the
    permutation. All layers come from the one pass, since permuting a net only reorders its
    channels. The pre-activation moments REPAIR needs are collected too.
    """
    _check_images(images)
    sa, sb = _analyse(net_a), _analyse(net_b)
    _same_structure(sa, sb)
    layers = _hidden(sa)
    post = {_post_point(net_a, i): li for li, i in enumerate(layers)}
    pre = {_pre_point(net_a, i): li for li, i in enumerate(layers)}
    dev = _param(net_a).device
    widths = [sa[i].shape_out[0] for i in layers]
    cross = [_Cross(c, dev) for c in widths]
    moms = [_Moments(2 * c, dev) for c in widths]
    last = max(list(post) + list(pre), default=-1)
    for k, y in _stacked_passes(net_a, net_b, images, batch_size, last):
        if k in pre:
            moms[pre[k]].update(_tensor(y))
        if k in post:
            cross[post[k]].update(_tensor(y))
    corrs = [c.correlation() for c in cross]
    stats = [m.stats() for m in moms]
    stats_a = [(m[:c], sd[:c]) for (m, sd), c in zip(stats, widths)]
    stats_b = [(m[c:], sd[c:]) for (m, sd), c in zip(stats, widths)]
    return MatchResult(perms=[_assign(c) for c in corrs], correlations=corrs, layers=layers,
                       n_images=int(images.shape[0]),
                       pre_mean_a=[s[0] for s in stats_a], pre_std_a=[s[1] for s in stats_a],
                       pre_mean_b=[s[0] for s in stats_b], pre_std_b=[s[1] for s in stats_b])


def _index_bn(bn: nn.Module, idx: Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(bn, name)
        if t is not None:
            t.copy_(t[idx])


def permute_network(net: nn.Sequential, perms: Sequence[Sequence[int] | np.ndarray | Tensor],
                    layers: Sequence[int] | None = None) -> nn.Sequential:
    """A copy of ``net`` with the output channels of hidden layers permuted ([BK23] Section 3).

    For hidden layer ``layers[l]`` with permutation ``p = perms[l]`` the new channel i is the old
    channel ``p[i]``: weight rows and bias, the following BatchNorms (weight, bias, running mean
    and variance) and the next affine layer's inputs (in the ``(C, H, W)`` layout of a Flatten of
    an ``H x W`` map) are permuted. The function is unchanged. ``layers`` defaults to
    :func:`hidden_units`.
    """
    steps = _analyse(net)
    hidden = _hidden(steps)
    layers = hidden if layers is None else [int(i) for i in layers]
    if len(perms) != len(layers):
        raise ValueError(f"perms: expected {len(layers)} permutations (one per layer), got "
                         f"{len(perms)}")
    pmap: dict[int, Tensor] = {}
    for i, p in zip(layers, perms):
        if i not in hidden:
            raise ValueError(f"layers: {i} is not a hidden conv / linear layer (hidden: {hidden})")
        p = torch.as_tensor(np.asarray(p), dtype=torch.long)
        c = steps[i].shape_out[0]
        if p.shape != (c,) or not torch.equal(p.sort().values, torch.arange(c)):
            raise ValueError(f"perms: layer {i} needs a permutation of range({c})")
        pmap[i] = p
    out = copy.deepcopy(net)
    idx: Tensor | None = None
    with torch.no_grad():
        for st in steps:
            m = out[st.index]
            if st.kind in ("conv", "linear"):
                if idx is not None:
                    m.weight.copy_(m.weight[:, idx.to(m.weight.device)])
                p = pmap.get(st.index)
                if p is not None:
                    p = p.to(m.weight.device)
                    m.weight.copy_(m.weight[p])
                    if m.bias is not None:
                        m.bias.copy_(m.bias[p])
                idx = p
            elif st.kind == "bn" and idx is not None:
                _index_bn(m, idx.to(m.running_mean.device))
            elif st.kind == "flatten" and idx is not None:
                s = st.spatial
                if s is None:
                    raise ValueError(f"module {st.index} (Flatten): spatial size unknown")
                idx = (idx[:, None] * s + torch.arange(s, device=idx.device)).reshape(-1)
    return out


def permutation_orders(perm: Sequence[int] | np.ndarray) -> np.ndarray:
    """The order of each element under ``perm``: the length of its cycle ([BK23] Figure 4)."""
    p = np.asarray(perm, dtype=np.int64)
    n = p.size
    if not np.array_equal(np.sort(p), np.arange(n)):
        raise ValueError("perm: expected a permutation of range(n)")
    orders = np.zeros(n, dtype=np.int64)
    for start in range(n):
        if orders[start]:
            continue
        cycle = [start]
        j = p[start]
        while j != start:
            cycle.append(j)
            j = p[j]
        orders[cycle] = len(cycle)
    return orders


def order_counts(perm: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Number of channels of order 1, 2 and > 2 under ``perm`` ([BK23] Figure 4).

    For a GCNN aligned to its flipped copy all orders are <= 2 (the permutations are the
    representations ``P_j`` of the flip, eq. (3)).
    """
    o = permutation_orders(perm)
    return {"1": int((o == 1).sum()), "2": int((o == 2).sum()), ">2": int((o > 2).sum())}


# ----------------------------------------------------------------------------- merging
def interpolate(net_a: nn.Sequential, net_b: nn.Sequential, alpha: float) -> nn.Sequential:
    """``(1 - alpha) a + alpha b`` for every parameter and BatchNorm buffer ([BK23] eq. (4)).

    ``num_batches_tracked`` is kept from ``net_a``. Returns a new network (a's training mode).
    """
    sd_a, sd_b = net_a.state_dict(), net_b.state_dict()
    if sd_a.keys() != sd_b.keys() or any(sd_a[k].shape != sd_b[k].shape for k in sd_a):
        raise ValueError("net_a, net_b: expected the same architecture (state dict keys / shapes)")
    out = copy.deepcopy(net_a)
    new = {}
    for k, va in sd_a.items():
        if va.is_floating_point():
            vb = sd_b[k].to(device=va.device, dtype=va.dtype)
            new[k] = torch.lerp(va, vb, float(alpha))
        else:
            new[k] = va.clone()
    out.load_state_dict(new)
    return out


def reset_bn_stats(net: nn.Sequential, images: Tensor, batch_size: int = 500) -> nn.Sequential:
    """A copy of ``net`` with every BatchNorm's running statistics recomputed on ``images``.

    Cumulative averages over the batches (``momentum=None``), only BatchNorm in train mode (so
    dropout stays off), no gradients; returned in eval mode. With ``batch_size >= len(images)``
    the running mean / variance are the data's mean and unbiased variance. A net without
    BatchNorm comes back unchanged. ([BK23] Table 3: statistics are reset after merging.)
    """
    _check_images(images)
    _analyse(net)
    out = copy.deepcopy(net).eval()
    bns = [m for m in out if isinstance(m, _BN)]
    if not bns:
        return out
    ref = _param(out)
    saved = []
    for bn in bns:
        saved.append(bn.momentum)
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for sl in _batches(images.shape[0], batch_size):
            out(_to_net(images[sl], ref))
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    return out.eval()


def _endpoint_stats(net_a: nn.Sequential, net_b: nn.Sequential, images: Tensor, layers: list[int],
                    batch_size: int) -> tuple[list, list]:
    """Per-channel (mean, std) at each layer's REPAIR point in both nets (one pass)."""
    pts = {_pre_point(net_a, i): li for li, i in enumerate(layers)}
    widths = [net_a[i].weight.shape[0] for i in layers]
    moms = [_Moments(2 * c, _param(net_a).device) for c in widths]
    for k, y in _stacked_passes(net_a, net_b, images, batch_size, max(pts, default=-1)):
        if k in pts:
            moms[pts[k]].update(_tensor(y))
    stats = [m.stats() for m in moms]
    return ([(m[:c], sd[:c]) for (m, sd), c in zip(stats, widths)],
            [(m[c:], sd[c:]) for (m, sd), c in zip(stats, widths)])


def _bshape(v: Tensor, y: Tensor) -> Tensor:
    return v.view((1, -1) + (1,) * (y.dim() - 2))


def repair(net_mid: nn.Sequential, net_a: nn.Sequential, net_b_aligned: nn.Sequential,
           images: Tensor, alpha: float = 0.5, batch_size: int = 500, *,
           match: MatchResult | None = None) -> nn.Sequential:
    """REPAIR (Jordan et al., ICLR 2023; [BK23] Section 4): renormalise the merged net's channels.

    For every hidden conv / linear layer the target point is its pre-activation output (after
    its BatchNorm if it has one). The per-channel mean and standard deviation there are measured
    in ``net_a`` and ``net_b_aligned`` (eval mode) over ``images``, and the targets are
    ``mu_t = (1 - alpha) mu_a + alpha mu_b`` and ``sigma_t`` likewise. One pass through a copy of
    ``net_mid`` renormalises each target point BatchNorm-style (batch statistics -> ``sigma_t``,
    ``mu_t``) while accumulating the mean ``mu`` and std ``sigma`` of the uncorrected values; the
    correction ``y -> (y - mu) / sigma * sigma_t + mu_t`` is then folded into the BatchNorm's
    affine parameters (``gamma <- gamma sigma_t / sigma``, ``beta <- (beta - mu) sigma_t / sigma +
    mu_t``) or into the conv / linear weight and bias. Returns a new net in eval mode.

    ``match``: a :class:`MatchResult` of ``net_a`` and the *unaligned* net_b measured on the same
    ``images``; its endpoint statistics are reused (b's permuted by ``match.perms``) instead of a
    second pass over net_a and net_b_aligned.
    """
    _check_images(images)
    steps = _analyse(net_mid)
    for other in (net_a, net_b_aligned):
        _same_structure(steps, _analyse(other))
    layers = _hidden(steps)
    if match is not None:
        if match.layers != layers or len(match.pre_mean_a) != len(layers):
            raise ValueError("match: a MatchResult of these architectures (with REPAIR "
                             "statistics) is needed")
        if match.n_images != images.shape[0]:
            raise ValueError(f"match: measured on {match.n_images} images, repair got "
                             f"{images.shape[0]}")
        sa = list(zip(match.pre_mean_a, match.pre_std_a))
        sb = [(m[p], s[p]) for m, s, p in zip(match.pre_mean_b, match.pre_std_b, match.perms)]
    else:
        sa, sb = _endpoint_stats(net_a, net_b_aligned, images, layers, batch_size)
    out = copy.deepcopy(net_mid).eval()
    ref = _param(out)
    dev, dt = ref.device, ref.dtype
    targets = []
    for (ma, sda), (mb, sdb) in zip(sa, sb):
        mu_t = (1 - alpha) * ma + alpha * mb
        sd_t = (1 - alpha) * sda + alpha * sdb
        targets.append((torch.as_tensor(mu_t, device=dev), torch.as_tensor(sd_t, device=dev)))
    pts = {_pre_point(out, i): li for li, i in enumerate(layers)}
    moms = [_Moments(out[i].weight.shape[0], dev) for i in layers]
    last = max(pts, default=-1)
    with torch.no_grad():
        for sl in _batches(images.shape[0], batch_size):
            x = _to_net(images[sl], ref)
            for k in range(last + 1):
                x = out[k](x)
                li = pts.get(k)
                if li is not None:
                    mean, var = moms[li].update(x)
                    mu_t, sd_t = targets[li]
                    scale = _safe_ratio(sd_t, var.sqrt())
                    shift = mu_t - mean * scale
                    x = torch.addcmul(_bshape(shift.to(x.dtype), x), x,
                                      _bshape(scale.to(x.dtype), x))
        for li, i in enumerate(layers):
            mu, sd = (torch.as_tensor(v, device=dev) for v in moms[li].stats())
            mu_t, sd_t = targets[li]
            s = _safe_ratio(sd_t, sd)
            k = _pre_point(out, i)
            m = out[k]
            if k != i:                                   # BatchNorm output
                if m.weight is None:
                    c = m.num_features
                    m.weight = nn.Parameter(torch.ones(c, device=dev, dtype=dt))
                    m.bias = nn.Parameter(torch.zeros(c, device=dev, dtype=dt))
                    m.affine = True
                w, b = m.weight.double(), m.bias.double()
                m.weight.copy_((w * s).to(dt))
                m.bias.copy_(((b - mu) * s + mu_t).to(dt))
            else:                                        # conv / linear output
                if m.bias is None:
                    m.bias = nn.Parameter(torch.zeros(m.weight.shape[0], device=dev, dtype=dt))
                w = m.weight.double()
                m.weight.copy_((w * s.view((-1,) + (1,) * (w.dim() - 1))).to(dt))
                m.bias.copy_(((m.bias.double() - mu) * s + mu_t).to(dt))
    return out.eval()


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` per channel, 1 where ``den`` is (relatively) zero: a dead channel is only
    shifted to its target mean."""
    dead = den <= 1e-6 * den.max().clamp_min(1e-30)
    return torch.where(dead, torch.ones_like(num), num / torch.where(dead, torch.ones_like(den),
                                                                     den))


# ----------------------------------------------------------------------------- measures
def accuracy(net: nn.Sequential, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` (eval mode) on ``images``."""
    _check_images(images)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels: expected {images.shape[0]}, got {labels.shape[0]}")
    ref = _param(net)
    correct = 0
    with _eval(net), torch.no_grad():
        for sl in _batches(images.shape[0], batch_size):
            pred = net(_to_net(images[sl], ref)).argmax(1)
            correct += int((pred == labels[sl].to(pred.device)).sum())
    return correct / images.shape[0]


def invariance_error(net: nn.Sequential, images: Tensor, batch_size: int = 1000) -> float:
    """Relative invariance error of [BK23] Section 4 on the logits: the mean over samples of
    ``||Phi(x) - Phi(tau x)|| / (0.5 ||Phi(x)|| + 0.5 ||Phi(tau x)||)`` (0 where both vanish)."""
    _check_images(images)
    ref = _param(net)
    total = 0.0
    with _eval(net), torch.no_grad():
        for sl in _batches(images.shape[0], batch_size):
            x = _to_net(images[sl], ref)
            y1, y2 = net(x).flatten(1).double(), net(flip_images(x)).flatten(1).double()
            num = torch.linalg.vector_norm(y1 - y2, dim=1)
            den = 0.5 * torch.linalg.vector_norm(y1, dim=1) + \
                0.5 * torch.linalg.vector_norm(y2, dim=1)
            total += float(torch.where(den > 0, num / den.clamp_min(1e-300), 0.0).sum())
    return total / images.shape[0]


def barrier(acc_a: float, acc_b: float, acc_mid: float) -> tuple[float, float]:
    """(relative barrier of eq. (4) [BK23], absolute barrier) at the halfway point.

    ``abs = 0.5 (acc_a + acc_b) - acc_mid`` and ``rel = abs / (0.5 (acc_a + acc_b))``.
    """
    mean = 0.5 * (float(acc_a) + float(acc_b))
    if mean == 0:
        raise ValueError("barrier: the mean endpoint accuracy is 0, eq. (4) is undefined")
    absolute = mean - float(acc_mid)
    return absolute / mean, absolute


@dataclass
class BarrierResult:
    """Result of :func:`gcnn_barrier` / :func:`merge_barrier` ([BK23] Section 3, Tables 2-4)."""

    accuracy_a: float
    accuracy_b: float
    accuracy_mid: float            # halfway, BatchNorm statistics reset, no REPAIR
    accuracy_mid_repair: float     # halfway with REPAIR
    barrier: float
    barrier_abs: float
    barrier_repair: float
    barrier_repair_abs: float
    orders: list[dict[str, int]]
    perms: list[np.ndarray]
    flip_report: FlipReport | None
    n_match: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able content (permutations as lists)."""
        return {"accuracy_a": float(self.accuracy_a), "accuracy_b": float(self.accuracy_b),
                "accuracy_mid": float(self.accuracy_mid),
                "accuracy_mid_repair": float(self.accuracy_mid_repair),
                "barrier": float(self.barrier), "barrier_abs": float(self.barrier_abs),
                "barrier_repair": float(self.barrier_repair),
                "barrier_repair_abs": float(self.barrier_repair_abs),
                "orders": [dict(o) for o in self.orders],
                "perms": [np.asarray(p).tolist() for p in self.perms],
                "flip_report": None if self.flip_report is None else
                {"exact": bool(self.flip_report.exact), "issues": list(self.flip_report.issues)},
                "n_match": int(self.n_match)}


def _merge(net_a: nn.Sequential, net_b: nn.Sequential, match_images: Tensor, test_images: Tensor,
           test_labels: Tensor, bn_images: Tensor | None, alpha: float, batch_size: int,
           report: FlipReport | None) -> BarrierResult:
    match = match_activations(net_a, net_b, match_images, batch_size)
    b_aligned = permute_network(net_b, match.perms, match.layers).eval()
    acc_a = accuracy(net_a, test_images, test_labels, batch_size)
    acc_b = accuracy(b_aligned, test_images, test_labels, batch_size)
    same = bn_images is None or bn_images is match_images
    bn_x = match_images if bn_images is None else bn_images
    mid = reset_bn_stats(interpolate(net_a, b_aligned, alpha), bn_x, batch_size)
    acc_mid = accuracy(mid, test_images, test_labels, batch_size)
    mid_rep = repair(mid, net_a, b_aligned, bn_x, alpha, batch_size,
                     match=match if same else None)
    acc_rep = accuracy(mid_rep, test_images, test_labels, batch_size)
    rel, absolute = barrier(acc_a, acc_b, acc_mid)
    rel_r, abs_r = barrier(acc_a, acc_b, acc_rep)
    return BarrierResult(accuracy_a=acc_a, accuracy_b=acc_b, accuracy_mid=acc_mid,
                         accuracy_mid_repair=acc_rep, barrier=rel, barrier_abs=absolute,
                         barrier_repair=rel_r, barrier_repair_abs=abs_r,
                         orders=[order_counts(p) for p in match.perms], perms=match.perms,
                         flip_report=report, n_match=int(match_images.shape[0]))


def gcnn_barrier(net: nn.Sequential, match_images: Tensor, test_images: Tensor,
                 test_labels: Tensor, *, bn_images: Tensor | None = None, alpha: float = 0.5,
                 batch_size: int = 500, input_size: tuple[int, int] | None = None
                 ) -> BarrierResult:
    """The GCNN barrier of [BK23] Section 3: how far ``net`` is from a GCNN.

    ``hat-Phi = flip_network(net)`` is aligned to ``net`` by :func:`match_activations` on
    ``match_images`` and permuted; ``accuracy_a`` / ``accuracy_b`` are the test accuracies of the
    net and of the aligned flipped net (= accuracy on flipped test images); the halfway net
    (``alpha``) gets its BatchNorm statistics reset on ``bn_images`` (default ``match_images``)
    -> ``accuracy_mid``, and REPAIR on top of that -> ``accuracy_mid_repair``; barriers by eq.
    (4). ``orders`` counts channel orders per hidden layer ([BK23] Figure 4). ``input_size``
    defaults to the match images' size. ``net`` is not modified.
    """
    _check_images(match_images, "match_images")
    size = tuple(match_images.shape[-2:]) if input_size is None else input_size
    base = copy.deepcopy(net).eval()
    flipped, report = flip_network(base, size)
    return _merge(base, flipped.eval(), match_images, test_images, test_labels, bn_images, alpha,
                  batch_size, report)


def merge_barrier(net_a: nn.Sequential, net_b: nn.Sequential, match_images: Tensor,
                  test_images: Tensor, test_labels: Tensor, *, bn_images: Tensor | None = None,
                  alpha: float = 0.5, batch_size: int = 500,
                  input_size: tuple[int, int] | None = None) -> BarrierResult:
    """Barrier of merging two different nets ([BK23] Table 4 baseline): net_b is aligned to
    net_a by activation matching, no flipping (``flip_report`` is None). ``input_size`` is
    accepted for symmetry with :func:`gcnn_barrier` and unused. The inputs are not modified."""
    _check_images(match_images, "match_images")
    del input_size
    a, b = copy.deepcopy(net_a).eval(), copy.deepcopy(net_b).eval()
    return _merge(a, b, match_images, test_images, test_labels, bn_images, alpha, batch_size,
                  None)
