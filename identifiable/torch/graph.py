"""The permutation structure of a general CNN from a torch.fx trace ([BK23] Bökman & Kahl,
NeurIPS 2023, Sections 3 and 4.2: ResNets).

:mod:`identifiable.torch.structure` describes ``nn.Sequential`` chains, where each hidden
layer's output channels carry their own permutation. In a ResNet the channels that are *added*
on a residual stream must share one permutation: permuting the output channels of one block's
last convolution alone changes the function, permuting every producer of the stream together
does not ([BK23] Section 4.2 aligns ResNet50s this way; Ainsworth et al. 2023).
:func:`analyse_graph` finds this structure for an ordinary ``nn.Module``, without
per-architecture tables:

1. the module is traced with :func:`torch.fx.symbolic_trace`; the per-sample shape of every
   node is inferred from the modules' hyper-parameters (no forward pass, so a ResNet-50 at
   224 x 224 is analysed in milliseconds);
2. every ``Conv2d`` / ``Linear`` node opens a new *channel space* (its output channels), the
   input images one more (fixed: never permuted); BatchNorms, pointwise activations, pools,
   Flatten, ``Identity`` / ``Dropout`` keep their input's space;
3. an addition of two tensors (``+``, ``operator.add`` / ``iadd``, ``torch.add``, ``Tensor.add``)
   joins the spaces of its operands (union-find): the block output, the identity shortcut and
   the 1x1 (or strided) shortcut convolution of a residual stream end up in one space, whose
   permutation is applied to the output channels of every producer, to every BatchNorm on it
   and to the input channels (the input features, in the ``(C, H, W)`` layout of a Flatten, for
   a Linear) of every consumer;
4. a space that reaches the output (the logits) or the input images is fixed; every other
   space with a producer is a :class:`PermGroup`.

A group may also take signs (signed permutations, the latent group K of an odd activation,
Section 5.1 [SMBK26]) only when every operation on its values is odd:
BatchNorms, additions, average pools, Flatten and odd activations
(:func:`identifiable.torch.structure.odd_activation`, asked of the library's activation table);
a ReLU, GELU, sigmoid, max-pool or an added constant allows permutations only.

Matching points ([BK23] Section 4; post-activation statistics as in Jordan et al., ICLR 2023):
the values of the group's channels *after an activation* that leave the BatchNorm / activation
run (are consumed by a convolution, a Linear, an addition, a pool, a Flatten or the output).
For a residual stream these are the stem's activation output and the activation output after
every addition on the stream (where the next block reads the stream); for a block's inner
layer, its activation output. A group without any activation (a linear net) is observed where
its values leave the BatchNorm run. REPAIR points (Jordan et al.): per producer, its
BatchNorm's output if one follows, else its own output (the branch and the shortcut of a block
are renormalised separately, before they are added).

Anything the analysis cannot handle raises ``ValueError`` naming the fx node and the reason: a
``view`` / ``reshape`` that is not a flatten from dimension 1 (it mixes or splits channels), a
concatenation, a grouped convolution, a module or function it does not know, a Conv2d / Linear /
BatchNorm called at two nodes (shared weights), parameters used as tensors (``get_attr``).
Nothing is silently skipped.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from identifiable.torch.structure import (
    ADAPTIVE_POOLS,
    BATCHNORMS,
    POINTWISE,
    TRANSPARENT,
    WINDOW_POOLS,
    batchnorm_out,
    conv_out,
    linear_out,
    odd_activation,
    pool_out,
)

__all__ = ["PermGroup", "GraphStructure", "analyse_graph", "uses_graph", "check_same_graph",
           "node_label", "DEFAULT_INPUT_SIZE"]

#: the (H, W) used for shape propagation when no images tell the size
DEFAULT_INPUT_SIZE = (32, 32)

_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_MUL_FUNCS = (operator.mul, operator.imul, torch.mul)
_PASS_METHODS = ("contiguous", "clone", "detach")
_AUX_FUNCS = (getattr, operator.getitem)
_CAT_FUNCS = (torch.cat, torch.concat, torch.stack)
_ARITH = (operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv)


def _act_module(target: Any, args: tuple, kwargs: dict) -> nn.Module | None:
    """The pointwise module equivalent to an activation function / method call, or None."""
    if target in (F.relu, torch.relu, "relu", "relu_", F.relu_, torch.relu_):
        return nn.ReLU()
    if target in (torch.tanh, F.tanh, "tanh", "tanh_"):
        return nn.Tanh()
    if target in (torch.sigmoid, F.sigmoid, "sigmoid", "sigmoid_"):
        return nn.Sigmoid()
    if target in (F.gelu, "gelu"):
        return nn.GELU(approximate=kwargs.get("approximate", "none"))
    if target in (F.leaky_relu, "leaky_relu"):
        slope = args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01)
        return nn.LeakyReLU(float(slope))
    return None


def node_label(node: fx.Node, module: nn.Module | None = None) -> str:
    """``fx node NAME (TARGET: Type)``: how errors and reports name a node."""
    if node.op == "call_module":
        kind = type(module).__name__ if module is not None else "module"
        return f"fx node {node.name} ({node.target}: {kind})"
    target = getattr(node.target, "__name__", str(node.target))
    return f"fx node {node.name} ({node.op} {target})"


# ----------------------------------------------------------------------------- results
@dataclass
class PermGroup:
    """One permutation group of a net's channels ([BK23] Section 3; a residual stream, Section
    4.2, when it has several producers).

    ``producers``: the conv / linear modules (qualified names) whose output channels carry the
    permutation; ``batchnorms``: ``(name, spatial)`` of the BatchNorms on the group's values
    (``spatial`` > 1 for a BatchNorm1d after a Flatten of an ``H x W`` map); ``consumers``:
    ``(name, spatial)`` of the conv / linear modules whose input channels (features, in the
    ``(C, H, W)`` layout of a Flatten) carry it; ``points``: the fx nodes where the matching
    statistics are taken (post-activation, see the module docstring); ``repair``: per producer,
    ``(producer, REPAIR node, BatchNorm name or None)``; ``sign_blocker``: None when the group
    may take signed permutations, else the first operation that forbids negating a channel.
    """

    index: int
    width: int
    producers: list[str]
    batchnorms: list[tuple[str, int]]
    consumers: list[tuple[str, int]]
    points: list[str]
    repair: list[tuple[str, str, str | None]]
    sign_blocker: str | None
    adds: list[str] = field(default_factory=list)

    @property
    def residual(self) -> bool:
        """Whether the group is a residual stream (several producers added together)."""
        return len(self.producers) > 1

    @property
    def group(self) -> str:
        """``"signed"`` or ``"perm"`` (:data:`identifiable.torch.structure.GROUPS`)."""
        return "signed" if self.sign_blocker is None else "perm"

    def label(self) -> str:
        """A short name: ``stream[a, b, ...]`` for a residual stream, else the producer."""
        if not self.residual:
            return self.producers[0]
        shown = self.producers if len(self.producers) <= 3 else \
            self.producers[:2] + [f"... {self.producers[-1]}"]
        return f"stream[{', '.join(shown)}]"


@dataclass
class GraphStructure:
    """The result of :func:`analyse_graph`.

    ``gm`` is the traced module (it shares the analysed net's submodules); ``groups`` the
    permutation groups in graph order; ``shapes[node]`` the per-sample shape of every tensor
    node; ``convs`` / ``pools`` the fx nodes of the convolutions and window / adaptive pools
    (for the flip check of footnote 2 [BK23]); ``flat_maps[name]`` the ``(C, H, W)`` of the
    flattened map entering a Linear / BatchNorm1d (for the flip of its input features);
    ``fixed``: modules whose output channels are not permuted (the logits) and why.
    """

    gm: fx.GraphModule
    groups: list[PermGroup]
    input_shape: tuple[int, ...]
    shapes: dict[str, tuple[int, ...]]
    convs: list[tuple[str, str]]              # (module name, fx node name)
    pools: list[tuple[str, str, Any]]         # (label, fx node name, equivalent module)
    flat_maps: dict[str, tuple[int, int, int]]
    fixed: dict[str, str]

    def group_of(self, producer: str) -> PermGroup | None:
        """The group whose producers include ``producer`` (None: its channels are fixed)."""
        return next((g for g in self.groups if producer in g.producers), None)

    def in_shape(self, node: str) -> tuple[int, ...]:
        """Per-sample shape of the (first) tensor entering fx node ``node``."""
        n = next(n for n in self.gm.graph.nodes if n.name == node)
        return self.shapes[n.args[0].name]


# ----------------------------------------------------------------------------- union-find
class _Spaces:
    """Union-find over channel spaces; a root carries fixed / sign-blocker reasons."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.fixed: dict[int, str] = {}
        self.blocker: dict[int, str] = {}

    def new(self, fixed: str | None = None) -> int:
        i = len(self.parent)
        self.parent.append(i)
        if fixed is not None:
            self.fixed[i] = fixed
        return i

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> int:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return ri
        if rj < ri:
            ri, rj = rj, ri
        self.parent[rj] = ri
        for d in (self.fixed, self.blocker):
            if rj in d:
                d.setdefault(ri, d.pop(rj))
        return ri

    def fix(self, i: int, why: str) -> None:
        self.fixed.setdefault(self.find(i), why)

    def block(self, i: int, why: str) -> None:
        self.blocker.setdefault(self.find(i), why)


@dataclass
class _Val:
    """What the analysis knows of a tensor node."""

    space: int
    shape: tuple[int, ...]                    # per sample: (C, H, W) or (F,)
    spatial: int = 1                          # features per channel (after a Flatten)
    chw: tuple[int, int, int] | None = None   # the flattened map
    act: bool = False                         # an activation since the last producer / add
    kind: str = "pass"                        # producer, bn, act, pass, add, pool, flatten

    @property
    def flat(self) -> bool:
        return len(self.shape) == 1


_BATCH = "batch"    # the batch size, a symbolic value of x.size(0) / x.shape[0]


# ----------------------------------------------------------------------------- tracing
def uses_graph(net: nn.Module) -> bool:
    """Whether ``net`` goes through the fx analysis: anything but an ``nn.Sequential`` of
    leaf modules (which :mod:`identifiable.torch.structure` handles as before)."""
    if not isinstance(net, nn.Sequential):
        return True
    return any(len(list(m.children())) > 0 and not isinstance(m, POINTWISE) for m in net)


def _trace(net: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(net)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is reported as unsupported
        raise ValueError(f"net: torch.fx cannot trace {type(net).__name__} "
                         f"({type(exc).__name__}: {exc})") from None


def _infer_input(gm: fx.GraphModule, mods: dict[str, nn.Module], x: fx.Node) -> int | None:
    """Channels (or features) of the input, from the first module that reads it."""
    todo = list(x.users)
    seen = set()
    while todo:
        n = todo.pop(0)
        if n in seen:
            continue
        seen.add(n)
        if n.op != "call_module":
            continue
        m = mods[n.target]
        if isinstance(m, nn.Conv2d):
            return m.in_channels
        if isinstance(m, nn.Linear):
            return -m.in_features
        if isinstance(m, BATCHNORMS):
            return m.num_features if isinstance(m, nn.BatchNorm2d) else -m.num_features
        if isinstance(m, POINTWISE):
            todo.extend(n.users)
    return None


def _input_shape(gm: fx.GraphModule, input_shape: tuple[int, ...] | None,
                 input_size: tuple[int, int] | None) -> tuple[fx.Node, tuple[int, ...]]:
    """The input node and its per-sample shape (inferred from the first layer if not given)."""
    mods = dict(gm.named_modules())
    xs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(xs) != 1:
        raise ValueError(f"net: expected one input, the traced forward has {len(xs)} "
                         f"({[n.name for n in xs]})")
    if input_shape is None:
        c = _infer_input(gm, mods, xs[0])
        if c is None:
            raise ValueError(f"{node_label(xs[0])}: cannot tell the input channels from the "
                             f"first layer; pass images or input_shape")
        h, w = input_size if input_size is not None else DEFAULT_INPUT_SIZE
        input_shape = (-c,) if c < 0 else (c, int(h), int(w))
    return xs[0], tuple(int(v) for v in input_shape)


# ----------------------------------------------------------------------------- analysis
class _Analysis:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.sp = _Spaces()
        self.vals: dict[fx.Node, _Val] = {}
        self.aux: dict[fx.Node, Any] = {}             # sizes: ints, _BATCH, tuples of them
        self.producer_space: dict[str, int] = {}      # module -> output space
        self.producer_node: dict[str, fx.Node] = {}
        self.consumers: list[tuple[str, int, int]] = []   # (module, space, spatial)
        self.bns: list[tuple[str, int, int]] = []
        self.adds: list[tuple[str, int]] = []
        self.used: dict[str, str] = {}
        self.convs: list[tuple[str, str]] = []
        self.pools: list[tuple[str, str, Any]] = []
        self.flat_maps: dict[str, tuple[int, int, int]] = {}

    # -- helpers
    def label(self, node: fx.Node) -> str:
        return node_label(node, self.mods.get(node.target) if node.op == "call_module" else None)

    def tensor_arg(self, node: fx.Node, a: Any) -> _Val:
        if not isinstance(a, fx.Node) or a not in self.vals:
            raise ValueError(f"{self.label(node)}: expected a tensor as argument, got {a!r}")
        return self.vals[a]

    def once(self, node: fx.Node) -> None:
        name = node.target
        if name in self.used:
            raise ValueError(f"{self.label(node)}: module {name} is also called at fx node "
                             f"{self.used[name]} (shared weights would have to carry two "
                             f"permutations)")
        self.used[name] = node.name

    def emit(self, node: fx.Node, v: _Val, blocker: str | None = None, *,
             shape: tuple[int, ...] | None = None, act: bool | None = None,
             kind: str = "pass") -> _Val:
        """The node's value: v's space and layout (a new shape for pools), and a reason why
        its group may not take signs."""
        if blocker is not None:
            self.sp.block(v.space, f"{self.label(node)}: {blocker}")
        out = _Val(v.space, v.shape if shape is None else shape, v.spatial, v.chw,
                   v.act if act is None else act, kind)
        self.vals[node] = out
        return out

    def pointwise(self, node: fx.Node, v: _Val, m: nn.Module) -> None:
        odd, why = odd_activation(m)
        is_act = not isinstance(m, TRANSPARENT)
        self.emit(node, v, None if odd else why, act=v.act or is_act,
                  kind="act" if is_act else "alias")

    def flatten(self, node: fx.Node, v: _Val) -> None:
        if v.flat:
            self.emit(node, v, kind="alias")
            return
        c, h, w = v.shape
        self.vals[node] = _Val(v.space, (c * h * w,), h * w, (c, h, w), v.act, "flatten")

    def producer(self, node: fx.Node, v: _Val, shape: tuple[int, ...]) -> None:
        name = node.target
        self.once(node)
        self.consumers.append((name, v.space, v.spatial))
        s = self.sp.new()
        self.producer_space[name] = s
        self.producer_node[name] = node
        self.vals[node] = _Val(s, shape, kind="producer")

    def pool(self, node: fx.Node, v: _Val, m: nn.Module) -> None:
        where = self.label(node)
        if v.flat:
            raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
        shape, _ = pool_out(m, v.shape, where)
        self.pools.append((where, node.name, m))
        mx = isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d))
        self.emit(node, v, "max(-x) = -min(x), a max-pool does not commute with negating a "
                           "channel" if mx else None, shape=tuple(shape), kind="pool")

    # -- node kinds
    def module(self, node: fx.Node) -> None:
        m = self.mods[node.target]
        v = self.tensor_arg(node, node.args[0] if node.args else None)
        where = self.label(node)
        if isinstance(m, nn.Conv2d):
            if m.groups != 1:
                raise ValueError(f"{where}: grouped convolution (groups={m.groups}) mixes only "
                                 f"channels within a group; only groups=1 is supported")
            if v.flat:
                raise ValueError(f"{where}: receives flattened features, expected a 4-D map")
            shape = conv_out(m, v.shape, where)
            self.convs.append((node.target, node.name))
            self.producer(node, v, tuple(shape))
        elif isinstance(m, nn.Linear):
            if not v.flat:
                raise ValueError(f"{where}: receives a 4-D map (a Linear on it acts on the "
                                 f"width, not the channels); flatten it first")
            shape = linear_out(m, v.shape, where)
            if v.chw is not None:
                self.flat_maps[node.target] = v.chw
            self.producer(node, v, tuple(shape))
        elif isinstance(m, BATCHNORMS):
            batchnorm_out(m, v.shape, where)
            self.once(node)
            self.bns.append((node.target, v.space, v.spatial))
            if v.chw is not None:
                self.flat_maps[node.target] = v.chw
            self.emit(node, v, kind="bn")
        elif isinstance(m, POINTWISE):
            self.pointwise(node, v, m)
        elif isinstance(m, WINDOW_POOLS + ADAPTIVE_POOLS):
            self.pool(node, v, m)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) keeps the "
                                 f"channels apart")
            self.flatten(node, v)
        else:
            raise ValueError(f"{where}: unsupported module; supported are Conv2d (groups=1), "
                             f"Linear, BatchNorm1d/2d, ReLU, LeakyReLU, GELU, Tanh, Sigmoid, "
                             f"Identity, Dropout, Max/AvgPool2d, Adaptive{{Avg,Max}}Pool2d, "
                             f"Flatten")

    def add(self, node: fx.Node, a: Any, b: Any) -> None:
        if isinstance(a, fx.Node) and a in self.vals and not (isinstance(b, fx.Node) and
                                                             b in self.vals):
            a, b = b, a
        if not (isinstance(a, fx.Node) and a in self.vals):
            v = self.tensor_arg(node, b)
            if not isinstance(a, (int, float)):
                raise ValueError(f"{self.label(node)}: adds {a!r}, expected a number or tensor")
            self.emit(node, v, None if a == 0 else f"adds the constant {a}, which does not "
                                                   f"commute with negating a channel")
            return
        va, vb = self.tensor_arg(node, a), self.tensor_arg(node, b)
        if va.shape != vb.shape or va.spatial != vb.spatial:
            raise ValueError(f"{self.label(node)}: adds tensors of shapes {va.shape} and "
                             f"{vb.shape} per sample (broadcasting or layouts mix channels)")
        s = self.sp.union(va.space, vb.space)
        self.adds.append((node.name, s))
        self.vals[node] = _Val(s, va.shape, va.spatial, va.chw, va.act and vb.act, "add")

    def mean(self, node: fx.Node, v: _Val, dims: Any, keepdim: bool) -> None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        if v.flat or sorted(d % 4 for d in dims) != [2, 3]:
            raise ValueError(f"{self.label(node)}: a mean over dims {dims} is supported only "
                             f"over the spatial dims (2, 3) of a map")
        c = v.shape[0]
        self.pools.append((self.label(node), node.name, None))
        out = self.emit(node, v, shape=(c, 1, 1) if keepdim else (c,), kind="pool")
        if not keepdim:
            out.spatial, out.chw = 1, (c, 1, 1)

    def size(self, node: fx.Node, v: _Val, dim: Any) -> None:
        full = (_BATCH,) + v.shape
        self.aux[node] = full if dim is None else full[dim]

    def resolve(self, a: Any) -> Any:
        """A size argument with its fx nodes replaced by their values."""
        if isinstance(a, fx.Node):
            if a not in self.aux:
                raise ValueError(f"{self.label(a)}: a tensor used as a size")
            return self.aux[a]
        if isinstance(a, (tuple, list)):
            return type(a)(self.resolve(x) for x in a)
        return a

    def reshape(self, node: fx.Node, v: _Val, sizes: tuple) -> None:
        where = self.label(node)
        sizes = self.resolve(sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list))
                             else sizes)
        numel = 1
        for d in v.shape:
            numel *= d
        per = list(sizes[1:])
        if not sizes or sizes[0] not in (_BATCH, -1) or any(not isinstance(d, int) for d in per):
            raise ValueError(f"{where}: reshape to {sizes} does not keep the batch dim apart")
        known = 1
        for d in per:
            known *= d if d != -1 else 1
        out = tuple(numel // known if d == -1 else d for d in per)
        if out == v.shape:
            self.emit(node, v, kind="alias")
        elif not v.flat and out == (numel,):
            self.flatten(node, v)
        else:
            raise ValueError(f"{where}: reshape {v.shape} -> {out} per sample mixes or splits "
                             f"channels (only a flatten from dim 1 is supported)")

    def size_arith(self, node: fx.Node) -> bool:
        """Arithmetic on sizes (``2 * x.size(2)``): recorded as an aux value; True if so."""
        ops = _flatten_args((node.args, node.kwargs))
        if not ops or any(a in self.vals for a in ops) or not all(a in self.aux for a in ops):
            return False
        vals = self.resolve(node.args)
        if any(not isinstance(v, int) for v in vals):
            self.aux[node] = _BATCH + "*"             # derived from the batch size
        else:
            self.aux[node] = node.target(*vals)
        return True

    def function(self, node: fx.Node) -> None:
        t, args, kw = node.target, node.args, node.kwargs
        where = self.label(node)
        if t in _ARITH and self.size_arith(node):
            return
        if t is getattr:
            v = self.tensor_arg(node, args[0])
            if args[1] != "shape":
                raise ValueError(f"{where}: unsupported attribute {args[1]} of a tensor")
            self.size(node, v, None)
            return
        if t is operator.getitem:
            if args[0] in self.aux:
                self.aux[node] = self.aux[args[0]][args[1]]
                return
            raise ValueError(f"{where}: indexing a tensor selects or mixes channels")
        if t in _CAT_FUNCS:
            raise ValueError(f"{where}: concatenation / stacking of tensors is not supported "
                             f"(the channels of the result come from several spaces)")
        if t in _ADD_FUNCS:
            if kw.get("alpha", 1) != 1:
                raise ValueError(f"{where}: torch.add with alpha != 1 is not supported")
            self.add(node, args[0], args[1] if len(args) > 1 else kw.get("other"))
            return
        if t in _MUL_FUNCS:
            a, b = args[0], args[1]
            if isinstance(a, (int, float)):
                a, b = b, a
            if not isinstance(b, (int, float)):
                raise ValueError(f"{where}: only multiplication by a number is supported")
            self.emit(node, self.tensor_arg(node, a))
            return
        act = _act_module(t, args, kw)
        if act is not None:
            self.pointwise(node, self.tensor_arg(node, args[0]), act)
            return
        if t is torch.flatten:
            start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
            if start != 1 or end != -1:
                raise ValueError(f"{where}: only flatten(x, 1) keeps the channels apart")
            self.flatten(node, self.tensor_arg(node, args[0]))
            return
        if t in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            size = args[1] if len(args) > 1 else kw["output_size"]
            cls = nn.AdaptiveAvgPool2d if t is F.adaptive_avg_pool2d else nn.AdaptiveMaxPool2d
            self.pool(node, self.tensor_arg(node, args[0]), cls(size))
            return
        if t is torch.mean:
            self.mean(node, self.tensor_arg(node, args[0]),
                      args[1] if len(args) > 1 else kw.get("dim"),
                      bool(args[2] if len(args) > 2 else kw.get("keepdim", False)))
            return
        if t in (torch.reshape,):
            self.reshape(node, self.tensor_arg(node, args[0]), tuple(args[1:]))
            return
        name = getattr(t, "__name__", str(t))
        raise ValueError(f"{where}: unsupported function {name}")

    def method(self, node: fx.Node) -> None:
        t, args, kw = node.target, node.args, node.kwargs
        where = self.label(node)
        v = self.tensor_arg(node, args[0])
        if t == "size":
            self.size(node, v, args[1] if len(args) > 1 else kw.get("dim"))
        elif t in _PASS_METHODS:
            self.emit(node, v, kind="alias")
        elif t in ("add", "add_"):
            if kw.get("alpha", 1) != 1:
                raise ValueError(f"{where}: add with alpha != 1 is not supported")
            self.add(node, args[0], args[1] if len(args) > 1 else kw.get("other"))
        elif _act_module(t, args, kw) is not None:
            self.pointwise(node, v, _act_module(t, args, kw))
        elif t == "flatten":
            start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
            if start != 1 or end != -1:
                raise ValueError(f"{where}: only flatten(1) keeps the channels apart")
            self.flatten(node, v)
        elif t in ("view", "reshape"):
            self.reshape(node, v, tuple(args[1:]))
        elif t == "mean":
            self.mean(node, v, args[1] if len(args) > 1 else kw.get("dim"),
                      bool(args[2] if len(args) > 2 else kw.get("keepdim", False)))
        else:
            raise ValueError(f"{where}: unsupported tensor method {t}")

    def run(self, x: fx.Node, shape: tuple[int, ...]) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.vals[node] = _Val(self.sp.new("it carries the input images' channels"),
                                       shape)
            elif node.op == "get_attr":
                raise ValueError(f"{self.label(node)}: a parameter or buffer used as a tensor "
                                 f"(get_attr) is not supported")
            elif node.op == "call_module":
                self.module(node)
            elif node.op == "call_function":
                self.function(node)
            elif node.op == "call_method":
                self.method(node)
            elif node.op == "output":
                for a in _flatten_args(node.args):
                    if a in self.vals:
                        self.sp.fix(self.vals[a].space, "it reaches the output (the logits)")


def _flatten_args(args: Any) -> list[fx.Node]:
    out: list[fx.Node] = []
    fx.node.map_arg(args, lambda n: out.append(n) or n)
    return out


def _repair_point(node: fx.Node, mods: dict[str, nn.Module]) -> tuple[fx.Node, str | None]:
    """The producer's BatchNorm output (through Identity / Dropout) if it is the producer's
    only reader, else the producer's own output."""
    cur = node
    while len(cur.users) == 1:
        nxt = next(iter(cur.users))
        if nxt.op != "call_module":
            break
        m = mods[nxt.target]
        if isinstance(m, BATCHNORMS):
            return nxt, nxt.target
        if not isinstance(m, TRANSPARENT):
            break
        cur = nxt
    return node, None


def _points(an: _Analysis, root: int) -> list[str]:
    """The matching points of a group (module docstring): the values that leave the group's
    BatchNorm / activation runs, post-activation where there is an activation."""
    run_kinds = ("bn", "act", "pass", "alias")
    leaving: list[tuple[fx.Node, _Val]] = []
    for node, v in an.vals.items():
        if node.op == "placeholder" or an.sp.find(v.space) != root or \
                v.kind in ("pool", "flatten"):
            continue
        users = list(node.users)
        inside = bool(users) and all(u in an.vals and an.vals[u].kind in run_kinds and
                                     an.sp.find(an.vals[u].space) == root for u in users)
        if inside:
            continue
        while v.kind == "alias" and node.args[0] in an.vals:      # the value it passes on
            node = node.args[0]
            v = an.vals[node]
        if v.kind not in ("pool", "flatten") and node.op != "placeholder" and \
                all(node is not n for n, _ in leaving):
            leaving.append((node, v))
    acts = [n.name for n, v in leaving if v.act]
    return acts or [n.name for n, _ in leaving]


def analyse_graph(net: nn.Module, input_shape: tuple[int, ...] | None = None, *,
                  input_size: tuple[int, int] | None = None) -> GraphStructure:
    """The permutation groups of ``net`` from its torch.fx trace (see the module docstring).

    ``input_shape`` is the per-sample input shape ``(C, H, W)`` (or ``(F,)``); by default the
    channels come from the first layer and ``(H, W)`` is ``input_size`` (default
    :data:`DEFAULT_INPUT_SIZE`). Raises ``ValueError`` naming the fx node for anything it
    cannot handle. [BK23] Sections 3 and 4.2.
    """
    gm = _trace(net)
    x, shape = _input_shape(gm, input_shape, input_size)
    an = _Analysis(gm)
    an.run(x, shape)
    roots: dict[int, list[str]] = {}
    fixed: dict[str, str] = {}
    for name, s in an.producer_space.items():
        r = an.sp.find(s)
        if r in an.sp.fixed:
            fixed[name] = an.sp.fixed[r]
        else:
            roots.setdefault(r, []).append(name)
    order = {n.name: i for i, n in enumerate(gm.graph.nodes)}
    groups: list[PermGroup] = []
    for r, prods in sorted(roots.items(), key=lambda kv: order[an.producer_node[kv[1][0]].name]):
        mods = an.mods
        width = {mods[p].out_channels if isinstance(mods[p], nn.Conv2d) else mods[p].out_features
                 for p in prods}
        if len(width) != 1:
            raise ValueError(f"{', '.join(prods)}: added outputs of different widths {width}")
        rep = []
        for p in prods:
            node, bn = _repair_point(an.producer_node[p], mods)
            rep.append((p, node.name, bn))
        groups.append(PermGroup(
            index=len(groups), width=width.pop(), producers=prods,
            batchnorms=[(n, sp) for n, s, sp in an.bns if an.sp.find(s) == r],
            consumers=[(n, sp) for n, s, sp in an.consumers if an.sp.find(s) == r],
            points=_points(an, r), repair=rep, sign_blocker=an.sp.blocker.get(r),
            adds=[n for n, s in an.adds if an.sp.find(s) == r]))
    shapes = {n.name: v.shape for n, v in an.vals.items()}
    return GraphStructure(gm=gm, groups=groups, input_shape=shape, shapes=shapes,
                          convs=an.convs, pools=an.pools, flat_maps=an.flat_maps, fixed=fixed)


def check_same_graph(ga: GraphStructure, gb: GraphStructure) -> None:
    """Raise ``ValueError`` unless two analysed nets have the same groups (producers, widths)
    and the same modules (the condition for matching and merging them)."""
    sig = [(g.producers, g.width, g.consumers, g.batchnorms) for g in ga.groups]
    if sig != [(g.producers, g.width, g.consumers, g.batchnorms) for g in gb.groups] or \
            [n.op for n in ga.gm.graph.nodes] != [n.op for n in gb.gm.graph.nodes]:
        raise ValueError("net_a, net_b: expected the same architecture (permutation groups, "
                         "widths and modules)")


