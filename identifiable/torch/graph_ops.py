"""Matching, permuting, flipping, BatchNorm reset and REPAIR on general CNNs (ResNets), from the
permutation groups of :mod:`identifiable.torch.graph` ([BK23] Bökman & Kahl, NeurIPS 2023,
Sections 3, 4 and 4.2 / Table 3).

The public functions of :mod:`identifiable.torch.match`, :mod:`identifiable.torch.merge` and
:mod:`identifiable.torch.flip` route every net that is not a plain ``nn.Sequential`` chain here
(:func:`identifiable.torch.graph.uses_graph`); the semantics are those of the Sequential path
with "hidden layer" replaced by "permutation group":

* :func:`match_graph`: one streamed pass over the images through both nets in lockstep (node by
  node of their fx traces, eval mode, no grad). Taps at fx nodes, forward hooks that also see
  functional operations such as ``out + shortcut(x)``, accumulate per group the float64
  sufficient statistics of Pearson's correlation (O(C^2) memory per group, one matmul per
  point and batch; :class:`identifiable.torch.match.CrossMoments`). A residual group's statistics
  combine every point where its stream is observable post-activation: the stem's activation
  output and the activation output after every addition on the stream (each pixel of each
  image at each point is one sample); a block's inner group is observed at its activation
  output. One linear assignment per group (signed where the group's operations are all odd,
  K(tanh), Section 5.1 [SMBK26]). The per-channel moments at every REPAIR point (each
  producer's BatchNorm output) are collected in the same pass.
* :func:`permute_graph`: the group's signed permutation on every producer's output channels,
  every BatchNorm on the group, every consumer's input channels (a Linear's input features in
  the ``(C, H, W)`` layout of a Flatten).
* :func:`flip_graph`: every convolution kernel flipped along its width and the footnote-2
  [BK23] stride check of every convolution (residual branches and shortcuts) and pool, named by
  its qualified module name.
* :func:`repair_graph`: REPAIR (Jordan et al., ICLR 2023) at every producer's REPAIR point (the
  branch and the shortcut of a block separately, before their addition).
* :func:`reset_bn_graph`: every BatchNorm's running statistics recomputed ([BK23] Table 3).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, fx, nn

from identifiable.torch.flip import FlipReport, adaptive_issue, window_issue
from identifiable.torch.graph import GraphStructure, analyse_graph, check_same_graph
from identifiable.torch.match import GROUPS, CrossMoments, MatchResult, Moments, assign_channels
from identifiable.torch.structure import (
    BATCHNORMS,
    batches,
    check_images,
    endpoint_mode,
    eval_mode,
    index_batchnorm,
    reference_tensor,
    to_net,
)

__all__ = ["GraphMatchResult", "match_graph", "permute_graph", "flip_graph", "repair_graph",
           "repair_with_stats", "reset_bn_graph", "analyse_for"]


def analyse_for(net: nn.Module, images: Tensor | None = None,
                input_size: tuple[int, int] | None = None) -> GraphStructure:
    """:func:`~identifiable.torch.graph.analyse_graph` with the input shape of ``images`` (or
    ``input_size`` and the channels of the first layer)."""
    if images is not None:
        return analyse_graph(net, tuple(int(v) for v in images.shape[1:]))
    return analyse_graph(net, input_size=input_size)


# ----------------------------------------------------------------------------- stepping
class _Stepper:
    """Runs a traced module node by node (fx Interpreter), freeing values after their last
    use; ``taps[node name]`` may observe (return None) or replace a node's output."""

    def __init__(self, gm: fx.GraphModule):
        self.interp = fx.Interpreter(gm, garbage_collect_values=True)
        self.nodes = list(gm.graph.nodes)

    def start(self, x: Tensor) -> None:
        self.interp.env = {}
        self.interp.args_iter = iter([x])

    def step(self, node: fx.Node) -> Tensor:
        it = self.interp
        out = it.run_node(node)
        it.env[node] = out
        for dead in it.user_to_last_uses.get(node, []):
            del it.env[dead]
        return out

    def replace(self, node: fx.Node, value: Tensor) -> None:
        if node in self.interp.env:
            self.interp.env[node] = value


def _single_pass(gm: fx.GraphModule, images: Tensor, batch_size: int, ref: Tensor,
                 taps: dict[str, Callable[[Tensor], Tensor | None]]) -> None:
    """One pass over the images (caller sets eval mode / no grad) with taps at nodes."""
    st = _Stepper(gm)
    for sl in batches(images.shape[0], batch_size):
        st.start(to_net(images[sl], ref))
        for node in st.nodes:
            if node.op == "output":
                break
            y = st.step(node)
            f = taps.get(node.name)
            if f is not None:
                r = f(y)
                if r is not None:
                    st.replace(node, r)


def _paired_pass(ga: GraphStructure, gb: GraphStructure, images: Tensor, batch_size: int,
                 ref: Tensor, taps: dict[str, list[Callable[[Tensor], None]]]) -> None:
    """Both nets in lockstep over the images; ``taps[node]`` get ``cat([a, b], 1)`` at that
    node, right after both computed it (so later in-place activations cannot touch it)."""
    sa, sb = _Stepper(ga.gm), _Stepper(gb.gm)
    last = max((i for i, n in enumerate(sa.nodes) if n.name in taps), default=-1)
    for sl in batches(images.shape[0], batch_size):
        x = to_net(images[sl], ref)
        sa.start(x)
        sb.start(x)
        for i, (na, nb) in enumerate(zip(sa.nodes, sb.nodes)):
            if i > last:
                break
            ya, yb = sa.step(na), sb.step(nb)
            fs = taps.get(na.name)
            if fs:
                y = torch.cat([ya, yb], 1)
                for f in fs:
                    f(y)


# ----------------------------------------------------------------------------- matching
@dataclass
class GraphMatchResult(MatchResult):
    """:class:`~identifiable.torch.match.MatchResult` of two general nets ([BK23] Section 4.2).

    ``layers`` are the group indices of :func:`~identifiable.torch.graph.analyse_graph`,
    ``perms[l]`` / ``signs[l]`` / ``correlations[l]`` per group; ``labels[l]`` names group l
    (``stream[...]`` for a residual stream) and ``points[l]`` its matching points (fx nodes).
    The ``pre_*`` statistics are per REPAIR unit, ``units[u] = (group, producer, fx node,
    BatchNorm or None)``.
    """

    labels: list[str] = field(default_factory=list)
    points: list[list[str]] = field(default_factory=list)
    units: list[tuple[int, str, str, str | None]] = field(default_factory=list)


def _units(g: GraphStructure) -> list[tuple[int, str, str, str | None]]:
    return [(gr.index, p, node, bn) for gr in g.groups for p, node, bn in gr.repair]


def _group_kinds(ga: GraphStructure, gb: GraphStructure, group: str) -> list[str]:
    if group not in ("auto",) + GROUPS:
        raise ValueError(f"group: expected 'auto', 'perm' or 'signed', got {group!r}")
    if group == "perm":
        return ["perm"] * len(ga.groups)
    out = []
    for a, b in zip(ga.groups, gb.groups):
        why = a.sign_blocker or b.sign_blocker
        if why is not None and group == "signed":
            raise ValueError(f"group='signed': channels of group {a.index} ({a.label()}) "
                             f"cannot be negated: {why}")
        out.append("perm" if why else "signed")
    return out


def match_graph(net_a: nn.Module, net_b: nn.Module, images: Tensor, batch_size: int = 500, *,
                group: str = "auto") -> GraphMatchResult:
    """Activation matching of two general nets per permutation group ([BK23] Section 4 / 4.2;
    the streaming and the points are described in the module docstring)."""
    check_images(images)
    ga, gb = analyse_for(net_a, images), analyse_for(net_b, images)
    check_same_graph(ga, gb)
    kinds = _group_kinds(ga, gb, group)
    dev = reference_tensor(net_a).device
    cross = [CrossMoments(g.width, dev) for g in ga.groups]
    units = _units(ga)
    width = {g.index: g.width for g in ga.groups}
    moms = [Moments(2 * width[u[0]], dev) for u in units]
    taps: dict[str, list] = {}
    for g in ga.groups:
        for p in g.points:
            taps.setdefault(p, []).append(cross[g.index].update)
    for k, u in enumerate(units):
        taps.setdefault(u[2], []).append(moms[k].update)
    with eval_mode(net_a, net_b), torch.no_grad():
        _paired_pass(ga, gb, images, batch_size, reference_tensor(net_a), taps)
    corrs = [c.correlation() for c in cross]
    assigned = [assign_channels(c, k) for c, k in zip(corrs, kinds)]
    stats = [m.stats() for m in moms]
    cs = [width[u[0]] for u in units]
    return GraphMatchResult(
        perms=[p for p, _ in assigned], correlations=corrs, layers=list(range(len(ga.groups))),
        n_images=int(images.shape[0]),
        pre_mean_a=[m[:c] for (m, _), c in zip(stats, cs)],
        pre_std_a=[sd[:c] for (_, sd), c in zip(stats, cs)],
        pre_mean_b=[m[c:] for (m, _), c in zip(stats, cs)],
        pre_std_b=[sd[c:] for (_, sd), c in zip(stats, cs)],
        signs=[s for _, s in assigned], groups=kinds,
        labels=[g.label() for g in ga.groups], points=[list(g.points) for g in ga.groups],
        units=units)


# ----------------------------------------------------------------------------- permuting
def _expand(idx: Tensor, n: int) -> Tensor:
    """A channel index expanded to the ``(C, H, W)`` features of a Flatten of n pixels."""
    return idx if n == 1 else (idx[:, None] * n + torch.arange(n)).reshape(-1)


def _bcast(v: Tensor, t: Tensor, dim: int) -> Tensor:
    shape = [1] * t.dim()
    shape[dim] = -1
    return v.to(device=t.device, dtype=t.dtype).view(shape)


def permute_graph(net: nn.Module, perms: Sequence, signs: Sequence | None = None, *,
                  layers: Sequence[int] | None = None,
                  input_size: tuple[int, int] | None = None) -> nn.Module:
    """A copy of ``net`` with the signed permutation ``signs[l] * P(perms[l])`` applied to
    permutation group ``layers[l]`` (default: every group): the new channel i is ``s[i]``
    times the old channel ``p[i]`` on every producer's output, BatchNorm and consumer's input
    of the group, so the function is unchanged ([BK23] Section 3; a residual stream's
    producers, Section 4.2, all move together)."""
    from identifiable.torch.merge import as_permutation

    out = copy.deepcopy(net)
    g = analyse_graph(out, input_size=input_size)
    layers = list(range(len(g.groups))) if layers is None else [int(i) for i in layers]
    if len(perms) != len(layers):
        raise ValueError(f"perms: expected {len(layers)} permutations (one per group), got "
                         f"{len(perms)}")
    if signs is not None and len(signs) != len(layers):
        raise ValueError(f"signs: expected {len(layers)} sign vectors (one per group), got "
                         f"{len(signs)}")
    mods = dict(out.named_modules())
    with torch.no_grad():
        for li, (gi, p) in enumerate(zip(layers, perms)):
            if not 0 <= gi < len(g.groups):
                raise ValueError(f"layers: {gi} is not a permutation group (there are "
                                 f"{len(g.groups)})")
            gr = g.groups[gi]
            idx = as_permutation(p, gr.width, gi)
            sgn = None
            if signs is not None:
                s = torch.as_tensor(np.asarray(signs[li], dtype=np.float64))
                if s.shape != (gr.width,) or not bool(((s == 1) | (s == -1)).all()):
                    raise ValueError(f"signs: group {gi} needs {gr.width} entries, each +1 or -1")
                if not bool((s == 1).all()):
                    if gr.sign_blocker is not None:
                        raise ValueError(f"signs: channels of group {gi} ({gr.label()}) cannot "
                                         f"be negated, only permuted: {gr.sign_blocker}")
                    sgn = s
            for name in gr.producers:
                m = mods[name]
                w = m.weight
                w.copy_(w[idx.to(w.device)])
                if m.bias is not None:
                    m.bias.copy_(m.bias[idx.to(w.device)])
                if sgn is not None:
                    w.mul_(_bcast(sgn, w, 0))
                    if m.bias is not None:
                        m.bias.mul_(_bcast(sgn, m.bias, 0))
            for name, n in gr.batchnorms:
                m = mods[name]
                index_batchnorm(m, _expand(idx, n).to(m.running_mean.device))
                if sgn is not None:
                    se = sgn.repeat_interleave(n)
                    m.running_mean.mul_(_bcast(se, m.running_mean, 0))
                    if m.bias is not None:
                        m.bias.mul_(_bcast(se, m.bias, 0))
            for name, n in gr.consumers:
                w = mods[name].weight
                w.copy_(w[:, _expand(idx, n).to(w.device)])
                if sgn is not None:
                    w.mul_(_bcast(sgn.repeat_interleave(n), w, 1))
    return out


# ----------------------------------------------------------------------------- flipping
def flip_graph(net: nn.Module, input_size: tuple[int, int] = (32, 32)
               ) -> tuple[nn.Module, FlipReport]:
    """The flipped net of [BK23] Section 3 for a general module (see
    :func:`identifiable.torch.flip.flip_network`), with the footnote-2 check of every
    convolution (branches and shortcuts) and pool at the width it sees."""
    out = copy.deepcopy(net)
    g = analyse_graph(out, input_size=input_size)
    if len(g.input_shape) == 1:
        raise ValueError("flip_network: the net takes flat features, expected image input")
    mods = dict(out.named_modules())
    nodes = {n.name: n for n in g.gm.graph.nodes}
    issues: list[str] = []
    with torch.no_grad():
        for name, node in g.convs:
            m = mods[name]
            w_in = g.shapes[nodes[node].args[0].name][2]
            issue = window_issue(f"{name} ({type(m).__name__})", m, w_in)
            m.weight.copy_(m.weight.flip(-1))
            if issue is not None:
                issues.append(issue)
        for label, node, m in g.pools:
            if m is None:                         # a mean over H, W: symmetric
                continue
            shp_in, shp_out = g.shapes[nodes[node].args[0].name], g.shapes[node]
            w_out = shp_out[2] if len(shp_out) == 3 else None
            if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                issue = window_issue(label, m, shp_in[2])
            else:
                issue = adaptive_issue(label, m, shp_in[2], w_out)
            if issue is not None:
                issues.append(issue)
        for name, (c, h, w) in g.flat_maps.items():
            if w <= 1:
                continue
            q = torch.arange(c * h * w).view(c, h, w).flip(-1).reshape(-1)
            m = mods[name]
            if isinstance(m, BATCHNORMS):
                index_batchnorm(m, q.to(m.running_mean.device))
            else:
                m.weight.copy_(m.weight[:, q.to(m.weight.device)])
    return out, FlipReport(exact=not issues, issues=issues)


# ----------------------------------------------------------------------------- BN reset
def reset_bn_graph(net: nn.Module, images: Tensor, batch_size: int = 500) -> nn.Module:
    """:func:`identifiable.torch.merge.reset_bn_stats` for a general module: every BatchNorm's
    running statistics recomputed on ``images`` (cumulative averages, only BatchNorms in train
    mode, no grad); returned in eval mode. [BK23] Table 3: statistics reset after merging."""
    from identifiable.torch.merge import recompute_bn_stats

    check_images(images)
    analyse_for(net, images)
    return recompute_bn_stats(net, images, batch_size)


# ----------------------------------------------------------------------------- REPAIR
def _measured_endpoints(net_a: nn.Module, net_b: nn.Module, images: Tensor, batch_size: int,
                        ga: GraphStructure, gb: GraphStructure,
                        endpoints: str) -> tuple[list, list]:
    units = _units(ga)
    width = {g.index: g.width for g in ga.groups}
    dev = reference_tensor(net_a).device
    moms = [Moments(2 * width[u[0]], dev) for u in units]
    taps: dict[str, list] = {}
    for k, u in enumerate(units):
        taps.setdefault(u[2], []).append(moms[k].update)
    with endpoint_mode(endpoints)(net_a, net_b), torch.no_grad():
        _paired_pass(ga, gb, images, batch_size, reference_tensor(net_a), taps)
    stats = [m.stats() for m in moms]
    cs = [width[u[0]] for u in units]
    return ([(m[:c], sd[:c]) for (m, sd), c in zip(stats, cs)],
            [(m[c:], sd[c:]) for (m, sd), c in zip(stats, cs)])


def repair_graph(net_mid: nn.Module, net_a: nn.Module, net_b_aligned: nn.Module,
                 images: Tensor, alpha: float = 0.5, batch_size: int = 500, *,
                 match: MatchResult | None = None, endpoints: str = "train") -> nn.Module:
    """REPAIR (Jordan et al., ICLR 2023; [BK23] Section 4) for a general module: every
    producer's REPAIR point (its BatchNorm output, else its own output) is renormalised to the
    interpolated endpoint statistics and the correction folded into the BatchNorm's affine
    parameters or the producer's weight and bias (see
    :func:`identifiable.torch.merge.repair`). ``match``: a :class:`GraphMatchResult` of net_a
    and the unaligned net_b on the same images, whose (eval-mode) statistics are reused with
    ``endpoints="eval"``; ``endpoints``: how the endpoints' BatchNorms normalise while their
    statistics are measured (``"train"``: batch statistics, the REPAIR authors' convention)."""
    endpoint_mode(endpoints)                     # a clear error for an unknown convention
    check_images(images)
    gm_, ga, gb = (analyse_for(n, images) for n in (net_mid, net_a, net_b_aligned))
    check_same_graph(gm_, ga)
    check_same_graph(gm_, gb)
    units = _units(gm_)
    if match is None or endpoints != "eval":
        sa, sb = _measured_endpoints(net_a, net_b_aligned, images, batch_size, ga, gb,
                                     endpoints)
    else:
        if not isinstance(match, GraphMatchResult) or match.units != units:
            raise ValueError("match: a GraphMatchResult of these architectures is needed")
        if match.n_images != images.shape[0]:
            raise ValueError(f"match: measured on {match.n_images} images, repair got "
                             f"{images.shape[0]}")
        sa = list(zip(match.pre_mean_a, match.pre_std_a))
        sb = []
        for (gi, _, _, _), m, sd in zip(units, match.pre_mean_b, match.pre_std_b):
            p, sg = match.perms[gi], match.signs[gi]
            sb.append((m[p] * sg, sd[p]))
    return repair_with_stats(net_mid, images, sa, sb, alpha, batch_size)


def repair_with_stats(net_mid: nn.Module, images: Tensor, stats_a: list, stats_b: list,
                      alpha: float = 0.5, batch_size: int = 500) -> nn.Module:
    """REPAIR's renormalising pass and fold (:func:`repair_graph`) given the endpoint
    statistics: per REPAIR unit (``_units`` order) ``(mean, std)`` arrays of net_a and of the
    aligned net_b, in a's channel order."""
    from identifiable.torch.merge import fold_into, repair_targets, safe_ratio

    out = copy.deepcopy(net_mid).eval()
    g = analyse_for(out, images)
    units = _units(g)
    ref = reference_tensor(out)
    targets = repair_targets(stats_a, stats_b, alpha, ref.device)
    width = {gr.index: gr.width for gr in g.groups}
    moms = [Moments(width[u[0]], ref.device) for u in units]

    def renorm(k: int) -> Callable[[Tensor], Tensor]:
        def f(y: Tensor) -> Tensor:
            mean, var = moms[k].update(y)
            mu_t, sd_t = targets[k]
            scale = safe_ratio(sd_t, var.sqrt())
            shift = mu_t - mean * scale
            shape = (1, -1) + (1,) * (y.dim() - 2)
            return torch.addcmul(shift.to(y.dtype).view(shape), y, scale.to(y.dtype).view(shape))
        return f

    taps = {u[2]: renorm(k) for k, u in enumerate(units)}
    mods = dict(out.named_modules())
    with torch.no_grad():
        _single_pass(g.gm, images, batch_size, ref, taps)
        for k, (_, producer, _, bn) in enumerate(units):
            fold_into(mods[bn if bn is not None else producer], bn is not None, moms[k],
                       targets[k], ref)
    return out.eval()
