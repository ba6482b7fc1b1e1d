"""Activation matching of [BK23] (Bökman & Kahl, NeurIPS 2023) Section 4 (refs. [1, 25]:
Ainsworth et al., Li et al.; the post-activation statistics of Jordan et al., ICLR 2023), made
aware of the latent group K of each layer's activation (Section 5.1 [SMBK26]).

:func:`match_activations` streams a set of images once through both networks, accumulating in
float64 the per-layer sufficient statistics of Pearson's correlation (per-channel sums, the
diagonals of ``a^T a`` and ``b^T b``, and the co-moment ``a^T b``, over every pixel of every
image; memory O(C^2) per layer), forms the correlations of the channels and solves one linear
assignment per layer (``scipy.optimize.linear_sum_assignment``). Where the activation after a
layer is odd (tanh: K = signed permutations) the assignment is on ``|corr|`` and the sign of
each matched correlation is recorded, so a net with negated channels is matched to itself; else
(ReLU: K = positively scaled permutations, Lemma 2.2 [BK23]; GELU, sigmoid: permutations) it is
a plain permutation, the positive scalings being invisible to correlations. The result
(:class:`MatchResult`) also carries the per-channel moments at each layer's REPAIR point, which
:func:`identifiable.torch.merge.repair` can reuse.

Nets that are not ``nn.Sequential`` chains (ResNets) are matched per permutation group of
their torch.fx trace (:func:`identifiable.torch.graph_ops.match_graph`, [BK23] Section 4.2).

The streaming machinery is shared with :mod:`identifiable.torch.merge`: :class:`Moments`
(per-channel float64 moments of a stream of batches) and :func:`stacked_passes` (both nets run
as one channel-stacked net where their hyper-parameters agree, :func:`stacked_tensor` reads a
point of it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import skip_init

from identifiable.torch.structure import (
    BATCHNORMS,
    GROUPS,
    analyse,
    batches,
    check_images,
    check_same_structure,
    endpoint_mode,
    hidden_layers,
    matching_point,
    reference_tensor,
    repair_point,
    sign_blocker,
    to_net,
)

__all__ = ["MatchResult", "match_activations", "Moments", "stacked_passes", "stacked_tensor"]

#: a channel is dead (constant up to float32 resolution) when its variance is at most this
#: fraction of its mean square (its standard deviation at most 1e-3 of its RMS) ...
DEAD_CHANNEL_RTOL = 1e-6
#: ... or at most this fraction of the largest variance in its net's layer
DEAD_LAYER_RTOL = 1e-12
#: images per batched matmul chunk: at most this many floats in the N x C x C products
_BMM_FLOATS = 1 << 24


# ----------------------------------------------------------------------------- statistics
def _channel_sums(y: Tensor) -> tuple[Tensor, Tensor, float]:
    """Per-channel sum and sum of squares of ``y`` (N x C or N x C x H x W) in float64, and the
    number of samples per channel.

    Two contiguous reductions each (over one image's pixels, then over the images) in y's dtype
    (torch sums pairwise, so float32 keeps ~1e-7 relative accuracy), then float64; callers
    centre the data where the mean may dwarf the spread (:class:`CrossMoments`), and REPAIR's points
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


class Moments:
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
        """Per-channel mean and (population) variance of everything added, float64 tensors."""
        n = max(self.n, 1.0)
        mean = self.s / n
        return mean, (self.q / n - mean * mean).clamp_min(0.0)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, population standard deviation) as float64 arrays."""
        mean, var = self.mean_var()
        return mean.cpu().numpy(), var.sqrt().cpu().numpy()


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


class CrossMoments:
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
        self.mom = Moments(2 * c, device)
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
        largest in its net's layer; :data:`DEAD_CHANNEL_RTOL`, :data:`DEAD_LAYER_RTOL`)."""
        c, n = self.c, max(self.mom.n, 1.0)
        mean, var = self.mom.mean_var()
        cov = (self.p / n - torch.outer(mean[:c], mean[c:])).cpu().numpy()
        mean, var = mean.cpu().numpy(), var.cpu().numpy()
        raw_mean = mean if self.shift is None else mean + self.shift.double().cpu().numpy()
        alive = var > DEAD_CHANNEL_RTOL * (var + raw_mean ** 2)
        for part in (slice(0, c), slice(c, 2 * c)):
            alive[part] &= var[part] > DEAD_LAYER_RTOL * max(var[part].max(initial=0.0), 1e-300)
        sd = np.sqrt(np.where(alive, var, 1.0))
        corr = cov / sd[:c, None] / sd[None, c:]
        corr[~alive[:c], :] = 0.0
        corr[:, ~alive[c:]] = 0.0
        return np.clip(corr, -1.0, 1.0)


# ----------------------------------------------------------------------------- paired passes
class _PairLinear(nn.Module):
    """Two Linear layers side by side on stacked features ``[x_a, x_b]``.

    The layers are held in a tuple, not as child modules: the pair net's ``eval()`` / ``train()``
    must not reach the caller's nets (it once switched their Linear layers to eval mode)."""

    def __init__(self, a: nn.Linear, b: nn.Linear):
        super().__init__()
        self.layers, self.f = (a, b), a.in_features

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.layers
        return torch.cat([F.linear(x[:, :self.f], a.weight, a.bias),
                          F.linear(x[:, self.f:], b.weight, b.bias)], 1)


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
            elif isinstance(ma, BATCHNORMS) and stacked:
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


class _LazyCat:
    """``cat([a, b], 1)`` made on first use (the separate-nets path of :func:`stacked_passes`)."""

    def __init__(self, a: Tensor, b: Tensor):
        self.a, self.b, self.t = a, b, None

    def get(self) -> Tensor:
        if self.t is None:
            self.t = torch.cat([self.a, self.b], 1)
        return self.t


def stacked_passes(net_a: nn.Sequential, net_b: nn.Sequential, images: Tensor,
                   batch_size: int, last: int, *, bn: str = "eval"
                   ) -> Iterator[tuple[int, Tensor]]:
    """For each batch and each module k <= last: ``(k, cat([a_k, b_k], 1))`` (no grad; eval
    mode, or with ``bn="train"`` BatchNorms normalising with each batch's statistics,
    :func:`~identifiable.torch.structure.batch_statistics_mode`).

    Through the pair net (both nets as one channel-stacked net: one op per module for both)
    when possible, else both nets side by side and a concatenation at each requested point:
    the caller reads only some k, so the pairs are built lazily and must be read with
    :func:`stacked_tensor`.
    """
    ref = reference_tensor(net_a)
    pair = _pair_net(net_a, net_b)
    mode = endpoint_mode(bn)
    with mode(net_a, net_b, *([] if pair is None else [pair])), torch.no_grad():
        for sl in batches(images.shape[0], batch_size):
            x = to_net(images[sl], ref)
            if pair is not None:
                for k in range(last + 1):
                    x = pair[k](x)
                    yield k, x
            else:
                xa = xb = x
                for k in range(last + 1):
                    xa, xb = net_a[k](xa), net_b[k](xb)
                    yield k, _LazyCat(xa, xb)


def stacked_tensor(y: Tensor | _LazyCat) -> Tensor:
    """The tensor ``cat([a_k, b_k], 1)`` of one point yielded by :func:`stacked_passes`."""
    return y.get() if isinstance(y, _LazyCat) else y


# ----------------------------------------------------------------------------- matching
def assign_channels(corr: np.ndarray, group: str) -> tuple[np.ndarray, np.ndarray]:
    """``(perm, signs)`` maximising the matched correlation in the channel group: for
    ``"perm"`` ``sum_i corr[i, perm[i]]`` (signs all +1); for ``"signed"``
    ``sum_i |corr[i, perm[i]]|`` with ``signs[i]`` the sign of ``corr[i, perm[i]]`` (+1 at 0),
    i.e. the nearest signed permutation of :func:`identifiable.latent_groups.nearest_monomial`
    with scalings ``"sign"``."""
    gain = np.abs(corr) if group == "signed" else corr
    rows, cols = linear_sum_assignment(gain, maximize=True)
    perm = np.empty(corr.shape[0], dtype=np.int64)
    perm[rows] = cols
    signs = np.ones(corr.shape[0], dtype=np.int64)
    if group == "signed":
        signs[corr[np.arange(corr.shape[0]), perm] < 0] = -1
    return perm, signs


@dataclass
class MatchResult:
    """Activation matching of ``net_b`` to ``net_a`` ([BK23] Section 4, K-aware).

    ``perms[l][i]`` is the channel of net_b matched to channel i of net_a at hidden layer
    ``layers[l]``, and ``signs[l][i]`` (+1 or -1, an int64 array) its sign: channel i of net_a
    is matched to ``signs[l][i] * b[:, perms[l][i]]``, the signed channel permutation that
    :func:`~identifiable.torch.merge.permute_network` applies to net_b. ``groups[l]`` is the
    channel group searched (``"signed"`` or ``"perm"``; signs are all +1 for ``"perm"``).
    ``correlations[l]`` are the C x C float64 Pearson correlations ``corr(a_i, b_j)`` (of the
    unaligned net_b). The ``pre_*`` fields are the per-channel mean and (population) standard
    deviation at each layer's REPAIR point (pre-activation, after its BN), in each net's own
    channel order and signs, measured on the same images;
    :func:`~identifiable.torch.merge.repair` can reuse them.
    """

    perms: list[np.ndarray]
    correlations: list[np.ndarray]
    layers: list[int]
    n_images: int
    pre_mean_a: list[np.ndarray] = field(default_factory=list)
    pre_std_a: list[np.ndarray] = field(default_factory=list)
    pre_mean_b: list[np.ndarray] = field(default_factory=list)
    pre_std_b: list[np.ndarray] = field(default_factory=list)
    signs: list[np.ndarray] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.signs:
            self.signs = [np.ones(len(p), dtype=np.int64) for p in self.perms]
        if not self.groups:
            self.groups = ["perm"] * len(self.perms)

    def matched_correlation(self) -> list[float]:
        """Mean correlation of the matched pairs ``corr(a_i, s_i b_{p_i})``, per layer (1.0
        for a net matched to a signed-permuted copy of itself)."""
        return [float(np.mean(s * c[np.arange(len(p)), p])) for c, p, s in
                zip(self.correlations, self.perms, self.signs)]


def _layer_groups(net_a: nn.Sequential, net_b: nn.Sequential, layers: list[int],
                  group: str) -> list[str]:
    """The channel group of each hidden layer for ``group`` ("auto", "perm" or "signed")."""
    if group not in ("auto",) + GROUPS:
        raise ValueError(f"group: expected 'auto', 'perm' or 'signed', got {group!r}")
    if group == "perm":
        return ["perm"] * len(layers)
    out = []
    for i in layers:
        why = sign_blocker(net_a, i) or sign_blocker(net_b, i)
        if why is not None and group == "signed":
            raise ValueError(f"group='signed': channels of layer {i} cannot be negated: {why}")
        out.append("perm" if why else "signed")
    return out


def match_activations(net_a: nn.Module, net_b: nn.Module, images: Tensor,
                      batch_size: int = 500, *, group: str = "auto") -> MatchResult:
    """Activation matching ([BK23] Section 4; Ainsworth et al., Li et al.): align net_b to net_a
    by the channel group of each layer's latent group K (Section 5.1 [SMBK26]).

    One pass over ``images`` in batches through both nets side by side (eval mode; where their
    hyper-parameters agree, as one channel-stacked net so that every operation serves both). At
    the matching point of every hidden layer
    (:func:`~identifiable.torch.structure.hidden_units`), each pixel of each image is a sample;
    the float64 sums, sums of squares and cross moments ``a^T b`` are accumulated in O(C^2)
    memory (one matmul per layer and batch), the Pearson correlation matrix is formed (dead
    channels correlate 0) and one linear assignment per layer gives the match. All layers come
    from the one pass, since permuting (and negating) a net's channels only reorders (and
    negates) its activations.

    ``group`` chooses the channel group per layer:

    * ``"auto"`` (default): ``"signed"`` where every module between the layer and the next
      affine layer is odd (:func:`~identifiable.torch.structure.sign_blocker`: an odd
      activation such as ``Tanh``, K = signed permutations, Section 5.1 [SMBK26], asked of the
      library's activation table; BatchNorms; average pools), else ``"perm"`` (ReLU,
      LeakyReLU: K = positively scaled permutations, Lemma 2.2 [BK23]; GELU, sigmoid:
      permutations; or a max-pool after the activation, which breaks ``x -> -x``);
    * ``"perm"``: plain permutations everywhere (the matching of [BK23]);
    * ``"signed"``: signed permutations everywhere, a ``ValueError`` where a layer's channels
      cannot be negated.

    Signed layers solve ``linear_sum_assignment`` on ``|corr|`` and record the sign of each
    matched correlation (``MatchResult.signs``); permutation layers on ``corr`` (signs +1). The
    positive scalings of K(ReLU) need no matching: the correlations are normalised statistics,
    invariant to a positive scaling of a channel, so a positively scaled copy is matched by its
    permutation alone (:func:`~identifiable.torch.merge.permute_network` does not rescale;
    REPAIR renormalises the merged channels). The pre-activation moments REPAIR needs are
    collected too.

    Any net that is not a plain ``nn.Sequential`` chain (a ResNet) is matched per permutation
    group of its torch.fx trace (:mod:`identifiable.torch.graph`, [BK23] Section 4.2): a
    residual stream's statistics pool the stem's activation output and the activation output
    after every addition on the stream, still O(C^2) memory per group
    (:func:`identifiable.torch.graph_ops.match_graph`, which returns a
    :class:`~identifiable.torch.graph_ops.GraphMatchResult`: ``layers`` are group indices).
    """
    from identifiable.torch.graph import uses_graph

    if uses_graph(net_a) or uses_graph(net_b):
        from identifiable.torch.graph_ops import match_graph

        return match_graph(net_a, net_b, images, batch_size, group=group)
    check_images(images)
    sa, sb = analyse(net_a), analyse(net_b)
    check_same_structure(sa, sb)
    layers = hidden_layers(sa)
    groups = _layer_groups(net_a, net_b, layers, group)
    post = {matching_point(net_a, i): li for li, i in enumerate(layers)}
    pre = {repair_point(net_a, i): li for li, i in enumerate(layers)}
    dev = reference_tensor(net_a).device
    widths = [sa[i].shape_out[0] for i in layers]
    cross = [CrossMoments(c, dev) for c in widths]
    moms = [Moments(2 * c, dev) for c in widths]
    last = max(list(post) + list(pre), default=-1)
    for k, y in stacked_passes(net_a, net_b, images, batch_size, last):
        if k in pre:
            moms[pre[k]].update(stacked_tensor(y))
        if k in post:
            cross[post[k]].update(stacked_tensor(y))
    corrs = [c.correlation() for c in cross]
    stats = [m.stats() for m in moms]
    stats_a = [(m[:c], sd[:c]) for (m, sd), c in zip(stats, widths)]
    stats_b = [(m[c:], sd[c:]) for (m, sd), c in zip(stats, widths)]
    assigned = [assign_channels(c, g) for c, g in zip(corrs, groups)]
    return MatchResult(perms=[p for p, _ in assigned], correlations=corrs, layers=layers,
                       n_images=int(images.shape[0]),
                       pre_mean_a=[s[0] for s in stats_a], pre_std_a=[s[1] for s in stats_a],
                       pre_mean_b=[s[0] for s in stats_b], pre_std_b=[s[1] for s in stats_b],
                       signs=[s for _, s in assigned], groups=groups)
