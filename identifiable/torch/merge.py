"""Permuting, merging and repairing CNNs, and the GCNN barrier of [BK23] (Bökman & Kahl,
NeurIPS 2023).

* **Permuting** ([BK23] Section 3): :func:`permute_network` applies the signed permutations
  found by :func:`identifiable.torch.match.match_activations` (a function-preserving
  reparametrisation; signs only before odd activations, K(tanh), Section 5.1 [SMBK26]);
  :func:`permutation_orders` / :func:`order_counts` are the permutation orders of [BK23]
  Figure 4.
* **Merging**: :func:`interpolate` averages weights, :func:`reset_bn_stats` recomputes the
  BatchNorm statistics ([BK23] Table 3: "we still reset batch norm statistics after merging"),
  and :func:`repair` is REPAIR (Jordan et al., "REPAIR: REnormalizing Permuted Activations for
  Interpolation Repair", ICLR 2023): every channel of the merged net is renormalised to the
  interpolated mean and standard deviation of the endpoints, and the correction is folded into
  the weights so that the architecture is unchanged.
* **Measures**: the barrier of eq. (4) ([BK23] Section 3) in :func:`barrier`, the relative
  invariance error of [BK23] Section 4 in :func:`invariance_error`, :func:`accuracy`, and the
  whole pipeline in :func:`gcnn_barrier` (the "GCNN barrier", [BK23] Section 3: a net merged
  with its flipped copy, :func:`identifiable.torch.flip.flip_network`) and
  :func:`merge_barrier` (two different nets, [BK23] Table 4).

The supported networks are those of :mod:`identifiable.torch.structure` (``nn.Sequential``
chains) and any other module that :mod:`identifiable.torch.graph` analyses from its torch.fx
trace (ResNets: every public function here routes it to :mod:`identifiable.torch.graph_ops`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from identifiable.torch.flip import FlipReport, flip_images, flip_network
from identifiable.torch.graph import uses_graph
from identifiable.torch.match import (
    MatchResult,
    Moments,
    match_activations,
    stacked_passes,
    stacked_tensor,
)
from identifiable.torch.structure import (
    BATCHNORMS,
    REPAIR_ENDPOINTS,
    analyse,
    batches,
    check_images,
    check_same_structure,
    endpoint_mode,
    eval_mode,
    hidden_layers,
    index_batchnorm,
    reference_tensor,
    repair_point,
    sign_blocker,
    to_net,
)

__all__ = ["permute_network", "permutation_orders", "order_counts", "interpolate",
           "reset_bn_stats", "repair", "accuracy", "invariance_error", "barrier",
           "BarrierResult", "gcnn_barrier", "merge_barrier"]

#: REPAIR: a channel whose standard deviation is at most this fraction of the largest in its
#: layer is dead; it is only shifted to its target mean (no rescaling)
DEAD_STD_RTOL = 1e-6
#: floor of that largest standard deviation (a guard for an all-dead layer, not a tolerance)
_STD_FLOOR = 1e-30


# ----------------------------------------------------------------------------- permuting
def as_permutation(p: Sequence[int] | np.ndarray | Tensor, c: int, i: int) -> Tensor:
    p = torch.as_tensor(np.asarray(p), dtype=torch.long)
    if p.shape != (c,) or not torch.equal(p.sort().values, torch.arange(c)):
        raise ValueError(f"perms: layer {i} needs a permutation of range({c})")
    return p


def _as_signs(s: Sequence[int] | np.ndarray | Tensor, c: int, i: int,
              net: nn.Sequential) -> Tensor | None:
    """Layer i's signs as a float64 tensor, None when all are +1; ValueError unless they are
    +-1 and, where one is -1, the modules after layer i are odd
    (:func:`~identifiable.torch.structure.sign_blocker`)."""
    s = torch.as_tensor(np.asarray(s, dtype=np.float64))
    if s.shape != (c,) or not bool(((s == 1) | (s == -1)).all()):
        raise ValueError(f"signs: layer {i} needs {c} entries, each +1 or -1")
    if bool((s == 1).all()):
        return None
    why = sign_blocker(net, i)
    if why is not None:
        raise ValueError(f"signs: channels of layer {i} cannot be negated, only permuted: "
                         f"{why}")
    return s


def _bcast(v: Tensor, t: Tensor, dim: int) -> Tensor:
    """``v`` shaped to broadcast along dimension ``dim`` of ``t``, in t's device and dtype."""
    shape = [1] * t.dim()
    shape[dim] = -1
    return v.to(device=t.device, dtype=t.dtype).view(shape)


def permute_network(net: nn.Module, perms: Sequence[Sequence[int] | np.ndarray | Tensor],
                    signs: Sequence[Sequence[int] | np.ndarray | Tensor] | None = None, *,
                    layers: Sequence[int] | None = None,
                    input_size: tuple[int, int] | None = None) -> nn.Module:
    """A copy of ``net`` with the output channels of hidden layers permuted and negated: the
    signed permutation of the latent group K ([BK23] Section 3; Section 5.1 [SMBK26]).

    For hidden layer ``layers[l]`` with permutation ``p = perms[l]`` and signs
    ``s = signs[l]`` (+-1; None: all +1) the new channel i is ``s[i]`` times the old channel
    ``p[i]``: weight rows and bias are permuted and multiplied by s; the following BatchNorms
    are permuted (weight, bias, running mean and variance) and have their running mean and bias
    multiplied by s, so that ``BN(-z) = -BN(z)``; the next affine layer's input columns (in the
    ``(C, H, W)`` layout of a Flatten of an ``H x W`` map) are permuted and multiplied by s.
    The function is unchanged: negating a channel commutes with the odd modules up to the next
    affine layer, which :func:`~identifiable.torch.structure.sign_blocker` checks (a
    ``ValueError`` where a sign -1 meets a ReLU, GELU, sigmoid or max-pool). ``layers``
    defaults to :func:`~identifiable.torch.structure.hidden_units`.

    Any other module (a ResNet) is permuted per permutation group of its torch.fx trace
    (:mod:`identifiable.torch.graph`; ``layers`` are group indices, ``input_size`` the image
    size for the trace's shapes, default 32 x 32): every producer of a residual stream, its
    BatchNorms and its consumers move together ([BK23] Section 4.2;
    :func:`identifiable.torch.graph_ops.permute_graph`).
    """
    if uses_graph(net):
        from identifiable.torch.graph_ops import permute_graph

        return permute_graph(net, perms, signs, layers=layers, input_size=input_size)
    steps = analyse(net)
    hidden = hidden_layers(steps)
    layers = hidden if layers is None else [int(i) for i in layers]
    if len(perms) != len(layers):
        raise ValueError(f"perms: expected {len(layers)} permutations (one per layer), got "
                         f"{len(perms)}")
    if signs is not None and len(signs) != len(layers):
        raise ValueError(f"signs: expected {len(layers)} sign vectors (one per layer), got "
                         f"{len(signs)}")
    pmap: dict[int, tuple[Tensor, Tensor | None]] = {}
    for li, (i, p) in enumerate(zip(layers, perms)):
        if i not in hidden:
            raise ValueError(f"layers: {i} is not a hidden conv / linear layer (hidden: {hidden})")
        c = steps[i].shape_out[0]
        pmap[i] = (as_permutation(p, c, i),
                   None if signs is None else _as_signs(signs[li], c, i, net))
    out = copy.deepcopy(net)
    idx: Tensor | None = None
    sgn: Tensor | None = None
    with torch.no_grad():
        for st in steps:
            m = out[st.index]
            if st.kind in ("conv", "linear"):
                w = m.weight
                if idx is not None:
                    w.copy_(w[:, idx.to(w.device)])
                if sgn is not None:
                    w.mul_(_bcast(sgn, w, 1))
                idx, sgn = pmap.get(st.index, (None, None))
                if idx is not None:
                    w.copy_(w[idx.to(w.device)])
                    if m.bias is not None:
                        m.bias.copy_(m.bias[idx.to(w.device)])
                if sgn is not None:
                    w.mul_(_bcast(sgn, w, 0))
                    if m.bias is not None:
                        m.bias.mul_(_bcast(sgn, m.bias, 0))
            elif st.kind == "bn" and idx is not None:
                index_batchnorm(m, idx.to(m.running_mean.device))
                if sgn is not None:
                    m.running_mean.mul_(_bcast(sgn, m.running_mean, 0))
                    if m.bias is not None:
                        m.bias.mul_(_bcast(sgn, m.bias, 0))
            elif st.kind == "flatten" and idx is not None:
                n = st.spatial
                if n is None:
                    raise ValueError(f"module {st.index} (Flatten): spatial size unknown")
                idx = (idx[:, None] * n + torch.arange(n, device=idx.device)).reshape(-1)
                if sgn is not None:
                    sgn = sgn.repeat_interleave(n)
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
def interpolate(net_a: nn.Module, net_b: nn.Module, alpha: float) -> nn.Module:
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


def reset_bn_stats(net: nn.Module, images: Tensor, batch_size: int = 500) -> nn.Module:
    """A copy of ``net`` with every BatchNorm's running statistics recomputed on ``images``.

    Cumulative averages over the batches (``momentum=None``), only BatchNorm in train mode (so
    dropout stays off), no gradients; returned in eval mode. With ``batch_size >= len(images)``
    the running mean / variance are the data's mean and unbiased variance. A net without
    BatchNorm comes back unchanged. ([BK23] Table 3: statistics are reset after merging.)
    Any other module (a ResNet): :func:`identifiable.torch.graph_ops.reset_bn_graph`, the
    same for every BatchNorm of the module.
    """
    if uses_graph(net):
        from identifiable.torch.graph_ops import reset_bn_graph

        return reset_bn_graph(net, images, batch_size)
    check_images(images)
    analyse(net)
    return recompute_bn_stats(net, images, batch_size)


def recompute_bn_stats(net: nn.Module, images: Tensor, batch_size: int) -> nn.Module:
    """A copy of ``net`` (already validated) whose BatchNorms' running statistics are
    recomputed on ``images`` as cumulative averages (only the BatchNorms in train mode, no
    grad); returned in eval mode. Shared by the Sequential and the graph paths."""
    out = copy.deepcopy(net).eval()
    bns = [m for m in out.modules() if isinstance(m, BATCHNORMS)]
    if not bns:
        return out
    ref = reference_tensor(out)
    saved = []
    for bn in bns:
        saved.append(bn.momentum)
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for sl in batches(images.shape[0], batch_size):
            out(to_net(images[sl], ref))
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    return out.eval()


# ----------------------------------------------------------------------------- REPAIR
def _endpoint_stats(net_a: nn.Sequential, net_b: nn.Sequential, images: Tensor, layers: list[int],
                    batch_size: int, endpoints: str) -> tuple[list, list]:
    """Per-channel (mean, std) at each layer's REPAIR point in both nets (one pass, the
    BatchNorms in the ``endpoints`` convention)."""
    pts = {repair_point(net_a, i): li for li, i in enumerate(layers)}
    widths = [net_a[i].weight.shape[0] for i in layers]
    moms = [Moments(2 * c, reference_tensor(net_a).device) for c in widths]
    for k, y in stacked_passes(net_a, net_b, images, batch_size, max(pts, default=-1),
                               bn=endpoints):
        if k in pts:
            moms[pts[k]].update(stacked_tensor(y))
    stats = [m.stats() for m in moms]
    return ([(m[:c], sd[:c]) for (m, sd), c in zip(stats, widths)],
            [(m[c:], sd[c:]) for (m, sd), c in zip(stats, widths)])


def _repair_endpoints(net_a: nn.Sequential, net_b_aligned: nn.Sequential, images: Tensor,
                      layers: list[int], batch_size: int, match: MatchResult | None,
                      endpoints: str) -> tuple[list, list]:
    """Per-layer (mean, std) at the REPAIR points of both endpoints, in a's channel order: with
    ``endpoints="eval"`` and a ``match``, from the match (b's permuted by ``match.perms`` and its
    means negated by ``match.signs``) after checking that it fits, else measured."""
    if match is None or endpoints != "eval":
        return _endpoint_stats(net_a, net_b_aligned, images, layers, batch_size, endpoints)
    if match.layers != layers or len(match.pre_mean_a) != len(layers):
        raise ValueError("match: a MatchResult of these architectures (with REPAIR "
                         "statistics) is needed")
    if match.n_images != images.shape[0]:
        raise ValueError(f"match: measured on {match.n_images} images, repair got "
                         f"{images.shape[0]}")
    sa = list(zip(match.pre_mean_a, match.pre_std_a))
    sb = [(m[p] * sg, sd[p]) for m, sd, p, sg in
          zip(match.pre_mean_b, match.pre_std_b, match.perms, match.signs)]
    return sa, sb


def repair_targets(sa: list, sb: list, alpha: float,
                    dev: torch.device) -> list[tuple[Tensor, Tensor]]:
    """Per layer ``(mu_t, sigma_t)``: the endpoints' statistics interpolated at ``alpha``."""
    targets = []
    for (ma, sda), (mb, sdb) in zip(sa, sb):
        mu_t = (1 - alpha) * ma + alpha * mb
        sd_t = (1 - alpha) * sda + alpha * sdb
        targets.append((torch.as_tensor(mu_t, device=dev), torch.as_tensor(sd_t, device=dev)))
    return targets


def _bshape(v: Tensor, y: Tensor) -> Tensor:
    return v.view((1, -1) + (1,) * (y.dim() - 2))


def _renormalised_pass(out: nn.Sequential, images: Tensor, layers: list[int],
                       targets: list[tuple[Tensor, Tensor]], batch_size: int,
                       ref: Tensor) -> list[Moments]:
    """One pass through ``out`` renormalising each REPAIR point BatchNorm-style (batch
    statistics -> the targets); returns the moments of the uncorrected values per layer."""
    pts = {repair_point(out, i): li for li, i in enumerate(layers)}
    moms = [Moments(out[i].weight.shape[0], ref.device) for i in layers]
    last = max(pts, default=-1)
    for sl in batches(images.shape[0], batch_size):
        x = to_net(images[sl], ref)
        for k in range(last + 1):
            x = out[k](x)
            li = pts.get(k)
            if li is not None:
                mean, var = moms[li].update(x)
                mu_t, sd_t = targets[li]
                scale = safe_ratio(sd_t, var.sqrt())
                shift = mu_t - mean * scale
                x = torch.addcmul(_bshape(shift.to(x.dtype), x), x,
                                  _bshape(scale.to(x.dtype), x))
    return moms


def fold_into(m: nn.Module, is_bn: bool, mom: Moments, target: tuple[Tensor, Tensor],
               ref: Tensor) -> None:
    """Fold ``y -> (y - mu) / sigma * sigma_t + mu_t`` into BatchNorm ``m``'s affine parameters
    (made affine if needed) or into conv / linear ``m``'s weight and bias (``is_bn`` False)."""
    dev, dt = ref.device, ref.dtype
    mu, sd = (torch.as_tensor(v, device=dev) for v in mom.stats())
    mu_t, sd_t = target
    s = safe_ratio(sd_t, sd)
    if is_bn:                                    # BatchNorm output
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


def _fold_correction(out: nn.Sequential, i: int, mom: Moments, target: tuple[Tensor, Tensor],
                     ref: Tensor) -> None:
    """Fold ``y -> (y - mu) / sigma * sigma_t + mu_t`` at hidden layer i's REPAIR point into its
    BatchNorm's affine parameters (made affine if needed) or its conv / linear weight and bias."""
    k = repair_point(out, i)
    fold_into(out[k], k != i, mom, target, ref)


def repair(net_mid: nn.Module, net_a: nn.Module, net_b_aligned: nn.Module,
           images: Tensor, alpha: float = 0.5, batch_size: int = 500, *,
           match: MatchResult | None = None, endpoints: str = "train") -> nn.Module:
    """REPAIR (Jordan et al., ICLR 2023; [BK23] Section 4): renormalise the merged net's channels.

    For every hidden conv / linear layer the target point is its pre-activation output (after
    its BatchNorm if it has one). The per-channel mean and standard deviation there are measured
    in ``net_a`` and ``net_b_aligned`` over ``images`` in batches of ``batch_size``, with the
    endpoints' BatchNorms as ``endpoints`` says: ``"train"`` (the default, as the REPAIR
    authors' code does it: each batch normalised with its own statistics, running buffers
    untouched) or ``"eval"`` (their running statistics); the targets are
    ``mu_t = (1 - alpha) mu_a + alpha mu_b`` and ``sigma_t`` likewise. One pass through a copy of
    ``net_mid`` renormalises each target point BatchNorm-style (batch statistics -> ``sigma_t``,
    ``mu_t``) while accumulating the mean ``mu`` and std ``sigma`` of the uncorrected values; the
    correction ``y -> (y - mu) / sigma * sigma_t + mu_t`` is then folded into the BatchNorm's
    affine parameters (``gamma <- gamma sigma_t / sigma``, ``beta <- (beta - mu) sigma_t / sigma +
    mu_t``) or into the conv / linear weight and bias. Returns a new net in eval mode.

    ``match``: a :class:`~identifiable.torch.match.MatchResult` of ``net_a`` and the *unaligned*
    net_b measured on the same ``images``; with ``endpoints="eval"`` its endpoint statistics
    (measured in eval mode) are reused (b's permuted by ``match.perms``, its means multiplied by
    ``match.signs``: negating a channel negates its mean and keeps its standard deviation)
    instead of a second pass over net_a and net_b_aligned; with ``"train"`` it is not used.

    Any other module (a ResNet): every producer of every permutation group has its own REPAIR
    point (its BatchNorm output), so a block's branch and its shortcut are renormalised
    separately before they are added (:func:`identifiable.torch.graph_ops.repair_graph`).
    """
    endpoint_mode(endpoints)       # an unknown convention is refused before any work
    if uses_graph(net_mid):
        from identifiable.torch.graph_ops import repair_graph

        return repair_graph(net_mid, net_a, net_b_aligned, images, alpha, batch_size,
                            match=match, endpoints=endpoints)
    check_images(images)
    steps = analyse(net_mid)
    for other in (net_a, net_b_aligned):
        check_same_structure(steps, analyse(other))
    layers = hidden_layers(steps)
    sa, sb = _repair_endpoints(net_a, net_b_aligned, images, layers, batch_size, match,
                               endpoints)
    out = copy.deepcopy(net_mid).eval()
    ref = reference_tensor(out)
    targets = repair_targets(sa, sb, alpha, ref.device)
    with torch.no_grad():
        moms = _renormalised_pass(out, images, layers, targets, batch_size, ref)
        for li, i in enumerate(layers):
            _fold_correction(out, i, moms[li], targets[li], ref)
    return out.eval()


def safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` per channel, 1 where ``den`` is (relatively) zero: a dead channel is only
    shifted to its target mean."""
    dead = den <= DEAD_STD_RTOL * den.max().clamp_min(_STD_FLOOR)
    return torch.where(dead, torch.ones_like(num), num / torch.where(dead, torch.ones_like(den),
                                                                     den))


# ----------------------------------------------------------------------------- measures
def accuracy(net: nn.Sequential, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` (eval mode) on ``images``."""
    check_images(images)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels: expected {images.shape[0]}, got {labels.shape[0]}")
    ref = reference_tensor(net)
    correct = 0
    with eval_mode(net), torch.no_grad():
        for sl in batches(images.shape[0], batch_size):
            pred = net(to_net(images[sl], ref)).argmax(1)
            correct += int((pred == labels[sl].to(pred.device)).sum())
    return correct / images.shape[0]


def invariance_error(net: nn.Sequential, images: Tensor, batch_size: int = 1000) -> float:
    """Relative invariance error of [BK23] Section 4 on the logits: the mean over samples of
    ``||Phi(x) - Phi(tau x)|| / (0.5 ||Phi(x)|| + 0.5 ||Phi(tau x)||)`` (0 where both vanish)."""
    check_images(images)
    ref = reference_tensor(net)
    total = 0.0
    with eval_mode(net), torch.no_grad():
        for sl in batches(images.shape[0], batch_size):
            x = to_net(images[sl], ref)
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
    accuracy_mid_repair: float     # halfway with REPAIR (endpoint convention repair_endpoints)
    barrier: float
    barrier_abs: float
    barrier_repair: float
    barrier_repair_abs: float
    orders: list[dict[str, int]]
    perms: list[np.ndarray]
    flip_report: FlipReport | None
    n_match: int
    signs: list[np.ndarray] = field(default_factory=list)   # per layer, +-1 (K-aware match)
    groups: list[str] = field(default_factory=list)         # per layer, "signed" or "perm"
    labels: list[str] = field(default_factory=list)         # per group of a general net
    #: the REPAIR endpoint convention of accuracy_mid_repair / barrier_repair(_abs)
    repair_endpoints: str = "train"
    #: per endpoint convention measured: {"accuracy_mid_repair", "barrier_repair",
    #: "barrier_repair_abs"} (the first is the one above)
    repairs: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able content (permutations and signs as lists)."""
        return {"accuracy_a": float(self.accuracy_a), "accuracy_b": float(self.accuracy_b),
                "accuracy_mid": float(self.accuracy_mid),
                "accuracy_mid_repair": float(self.accuracy_mid_repair),
                "barrier": float(self.barrier), "barrier_abs": float(self.barrier_abs),
                "barrier_repair": float(self.barrier_repair),
                "barrier_repair_abs": float(self.barrier_repair_abs),
                "orders": [dict(o) for o in self.orders],
                "perms": [np.asarray(p).tolist() for p in self.perms],
                "signs": [np.asarray(s).tolist() for s in self.signs],
                "groups": list(self.groups), "labels": list(self.labels),
                "repair_endpoints": self.repair_endpoints,
                "repairs": {k: dict(v) for k, v in self.repairs.items()},
                "flip_report": None if self.flip_report is None else
                {"exact": bool(self.flip_report.exact), "issues": list(self.flip_report.issues)},
                "n_match": int(self.n_match)}


def _conventions(repair_endpoints: str | Sequence[str]) -> list[str]:
    """The REPAIR endpoint conventions asked for, the primary one first, without repeats."""
    names = [repair_endpoints] if isinstance(repair_endpoints, str) else list(repair_endpoints)
    if not names:
        raise ValueError("repair_endpoints: name at least one of "
                         f"{', '.join(REPAIR_ENDPOINTS)}")
    for n in names:
        endpoint_mode(n)
    return list(dict.fromkeys(names))


def _merge(net_a: nn.Sequential, net_b: nn.Sequential, match_images: Tensor, test_images: Tensor,
           test_labels: Tensor, bn_images: Tensor | None, alpha: float, batch_size: int,
           report: FlipReport | None, group: str,
           repair_endpoints: str | Sequence[str]) -> BarrierResult:
    conventions = _conventions(repair_endpoints)
    match = match_activations(net_a, net_b, match_images, batch_size, group=group)
    size = tuple(match_images.shape[-2:]) if match_images.dim() == 4 else None
    kw = {"input_size": size} if uses_graph(net_b) else {}
    b_aligned = permute_network(net_b, match.perms, match.signs, layers=match.layers,
                                **kw).eval()
    acc_a = accuracy(net_a, test_images, test_labels, batch_size)
    acc_b = accuracy(b_aligned, test_images, test_labels, batch_size)
    same = bn_images is None or bn_images is match_images
    bn_x = match_images if bn_images is None else bn_images
    mid = reset_bn_stats(interpolate(net_a, b_aligned, alpha), bn_x, batch_size)
    acc_mid = accuracy(mid, test_images, test_labels, batch_size)
    repairs = {}
    for conv in conventions:
        mid_rep = repair(mid, net_a, b_aligned, bn_x, alpha, batch_size,
                         match=match if same else None, endpoints=conv)
        acc_rep = accuracy(mid_rep, test_images, test_labels, batch_size)
        rel_r, abs_r = barrier(acc_a, acc_b, acc_rep)
        repairs[conv] = {"accuracy_mid_repair": acc_rep, "barrier_repair": rel_r,
                         "barrier_repair_abs": abs_r}
    rel, absolute = barrier(acc_a, acc_b, acc_mid)
    first = repairs[conventions[0]]
    return BarrierResult(accuracy_a=acc_a, accuracy_b=acc_b, accuracy_mid=acc_mid,
                         accuracy_mid_repair=first["accuracy_mid_repair"], barrier=rel,
                         barrier_abs=absolute, barrier_repair=first["barrier_repair"],
                         barrier_repair_abs=first["barrier_repair_abs"],
                         repair_endpoints=conventions[0], repairs=repairs,
                         orders=[order_counts(p) for p in match.perms], perms=match.perms,
                         flip_report=report, n_match=int(match_images.shape[0]),
                         signs=match.signs, groups=match.groups,
                         labels=list(getattr(match, "labels", [])))


def gcnn_barrier(net: nn.Sequential, match_images: Tensor, test_images: Tensor,
                 test_labels: Tensor, *, bn_images: Tensor | None = None, alpha: float = 0.5,
                 batch_size: int = 500, input_size: tuple[int, int] | None = None,
                 group: str = "auto", repair_endpoints: str | Sequence[str] = "train"
                 ) -> BarrierResult:
    """The GCNN barrier of [BK23] Section 3: how far ``net`` is from a GCNN.

    ``hat-Phi = flip_network(net)`` is aligned to ``net`` by
    :func:`~identifiable.torch.match.match_activations` on ``match_images`` and permuted;
    ``accuracy_a`` / ``accuracy_b`` are the test accuracies of the net and of the aligned flipped
    net (= accuracy on flipped test images); the halfway net (``alpha``) gets its BatchNorm
    statistics reset on ``bn_images`` (default ``match_images``) -> ``accuracy_mid``, and REPAIR
    on top of that -> ``accuracy_mid_repair``; barriers by eq. (4). ``orders`` counts channel
    orders per hidden layer ([BK23] Figure 4). ``input_size`` defaults to the match images'
    size. ``group`` is :func:`~identifiable.torch.match.match_activations`'s: by default the
    channels of layers before an odd activation (tanh) are matched by signed permutations, and
    the aligned net is signed-permuted (:func:`permute_network`) before interpolation.
    ``repair_endpoints``: how the endpoints' BatchNorms normalise while REPAIR measures their
    statistics (:func:`repair`'s ``endpoints``): ``"train"`` (the REPAIR authors' code, the
    default) or ``"eval"``, or a sequence of both: the first fills ``barrier_repair`` and every
    one is in ``repairs``. ``net`` is not modified.

    ``net`` may be any module :mod:`identifiable.torch.graph` analyses (a ResNet, [BK23]
    Section 4.2 / Table 3): then ``perms`` / ``orders`` are per permutation group (one per
    residual stream and one per block's inner layer, named in ``labels``) and the flip report
    lists the strided convolutions of branches and shortcuts that footnote 2 concerns.
    """
    check_images(match_images, "match_images")
    size = tuple(match_images.shape[-2:]) if input_size is None else input_size
    base = copy.deepcopy(net).eval()
    flipped, report = flip_network(base, size)
    return _merge(base, flipped.eval(), match_images, test_images, test_labels, bn_images, alpha,
                  batch_size, report, group, repair_endpoints)


def merge_barrier(net_a: nn.Sequential, net_b: nn.Sequential, match_images: Tensor,
                  test_images: Tensor, test_labels: Tensor, *, bn_images: Tensor | None = None,
                  alpha: float = 0.5, batch_size: int = 500,
                  input_size: tuple[int, int] | None = None, group: str = "auto",
                  repair_endpoints: str | Sequence[str] = "train") -> BarrierResult:
    """Barrier of merging two different nets ([BK23] Table 4 baseline): net_b is aligned to
    net_a by activation matching (K-aware: signed permutations before odd activations, see
    ``group`` in :func:`~identifiable.torch.match.match_activations`), no flipping
    (``flip_report`` is None); ``repair_endpoints`` as in :func:`gcnn_barrier`.
    ``input_size`` is accepted for symmetry with :func:`gcnn_barrier` and unused. The inputs
    are not modified."""
    check_images(match_images, "match_images")
    del input_size
    a, b = copy.deepcopy(net_a).eval(), copy.deepcopy(net_b).eval()
    return _merge(a, b, match_images, test_images, test_labels, bn_images, alpha, batch_size,
                  None, group, repair_endpoints)
