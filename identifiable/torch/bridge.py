"""The bridge between torch modules and the library's models: :func:`from_torch`, :func:`to_torch`.

Multi-layer perceptrons (eq. (7) [SMBK26])
------------------------------------------
:func:`from_torch` reads an ``nn.Sequential`` (nested Sequentials are flattened) or any module
that ``torch.fx`` traces into a *chain* (every operation feeds the next one and nothing else) of

* ``nn.Linear`` layers (or ``F.linear`` with the module's own parameters), and
* pointwise activations between them, as modules or as functional calls in the trace:
  ``Tanh`` / ``torch.tanh`` -> ``"tanh"``, ``ReLU`` / ``F.relu`` -> ``"relu"``,
  ``LeakyReLU(s)`` / ``F.leaky_relu`` -> ``"leaky_relu:<s>"`` (``s`` the exact rational of the
  float's repr, e.g. ``0.01 -> 1/100``; ``s = 0`` is ``"relu"``, ``s = 1`` ``"identity"``),
  ``GELU()`` / ``F.gelu`` -> ``"gelu"`` (``approximate='tanh'`` is a different function: an
  error), ``Sigmoid`` -> ``"sigmoid"``, ``Softplus(beta)`` -> ``"softplus"`` (``beta = 1``) or
  ``"softplus:<beta>"`` (torch's switch to ``x`` above ``threshold`` is ignored; a threshold
  below 16 changes the function by more than 1e-7 and is an error), ``SiLU`` / ``F.silu`` ->
  ``"silu"``, :class:`Power` / ``x ** m`` -> ``"power:<m>"``;
* no-ops, dropped: ``nn.Identity`` and dropout (``nn.Dropout``, ``nn.AlphaDropout``,
  ``F.dropout``: their eval-mode function, the identity).

The result is an :class:`~identifiable.models.mlp.MLP` (eq. (7): one activation per hidden
layer, the last layer affine) and its float64 :class:`~identifiable.models.mlp.Theta`
(``exact=True``: every float at its exact binary value as a sympy rational). Two Linear layers
with nothing between them become a hidden layer with the ``"identity"`` activation (``K_i = GL``);
different activations in different hidden layers are kept (an MLP holds one per hidden layer).
Errors (``ValueError``, naming the module by its qualified name and type, or the traced call):
any other module or call, two activations in a row, an activation before the first or after the
last Linear (eq. (7) ends affine), biases on some Linear layers but not others, widths that do
not chain, non-finite weights, a trace that is not a chain (residual connections).

:func:`to_torch` builds the ``nn.Sequential`` ``Linear, act, Linear, act, ..., Linear`` (the
identity activation as ``nn.Identity``) with the same function, in any float dtype.

Attention (eq. (10) [SMBK26])
-----------------------------
:class:`Eq10Attention` is one layer of eq. (10) as a torch module, exactly:
``Y[..., :, :, j] = smax(Xbar W_A^j Xbar^T) Xbar W_V^j`` with ``Xbar = X W_O (+ P)`` on inputs
``(..., n, d_in h_in)`` flattened row-major as in :mod:`identifiable.models.attention`, output
``(..., n, d_out h_out)`` flattened the same way (index ``q h_out + j``). :func:`to_torch` of an
:class:`~identifiable.models.attention.AttentionModel` is an ``nn.Sequential`` of these, and
:func:`from_torch` reads such chains back (the same parameters).

``nn.MultiheadAttention`` is mapped only where its function *is* a chain of eq. (10) layers:

* self-attention ``mha(x, x, x)[0]`` (a bare MHA given to :func:`from_torch` is read so), no
  ``attn_mask`` / ``key_padding_mask`` / ``is_causal``;
* ``batch_first=True`` (the layout of eq. (10)'s batches), ``bias=False`` (an in-projection bias
  ``b_q`` adds a term ``b_q . k_t`` to the logits that no ``W_A`` gives), ``add_bias_kv=False``,
  ``add_zero_attn=False``, ``kdim = vdim = embed_dim``; dropout is read at its eval-mode function.

With ``E = embed_dim``, ``H = num_heads``, ``r = E / H`` and ``W_q^j, W_k^j, W_v^j`` the rows
``j r .. (j + 1) r`` of ``in_proj_weight``, head ``j`` is eq. (10) with
``W_A^j = W_q^j^T W_k^j / sqrt(r)`` (the ``1 / sqrt(head_dim)`` scale folds into ``W_A``; its
rank is at most ``r``, so the converse map does not exist in general) and ``W_V^j = W_v^j^T``;
the layer's own ``W_O`` is the identity (or the previous layer's pending output projection). The
``out_proj`` acts *after* the heads are concatenated, which eq. (10) has no place for inside a
layer: it becomes the *next* layer's ``W_O`` (rows reordered from torch's head-major
concatenation ``j r + q`` to the library's ``q H + j``), and after the *last* MHA it folds into
``W_V`` only when that MHA has one head (eq. (10) has ``h_L = 1`` and no output projection; the
sum over ``H > 1`` heads that a final multi-head ``out_proj`` forms is no eq. (10) layer, an
error). So ``MHA(E, H_1), ..., MHA(E, H_{m-1}), MHA(E, 1)`` maps to an attention model with
``dims = [E, r_1, ..., r_{m-1}, E]``, ``heads = [H_1, ..., H_{m-1}]`` and inner widths ``E``;
:class:`Eq10Attention` and MHA layers may be mixed in one chain. An MHA does not fix the sequence
length ``n``: pass ``n_tokens=`` unless an :class:`Eq10Attention` of the chain gives it.
Not mapped (errors): biases, bias_kv, zero attention, ``kdim``/``vdim`` different from
``embed_dim``, ``batch_first=False``, masks, cross-attention (different query/key/value), a final
multi-head MHA, and ``to_torch`` to MHA (an eq. (10) ``W_A`` is not of rank ``<= r`` in general;
:func:`to_torch` always gives :class:`Eq10Attention` layers). Attention parameters are float64
only (``exact=True`` is an error).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F
from torch import fx, nn

from identifiable import activations as _acts
from identifiable.activations import Activation
from identifiable.models.attention import AttentionModel, AttentionTheta
from identifiable.models.mlp import MLP, Theta

__all__ = [
    "activation_name",
    "from_torch",
    "to_torch",
    "activation_from_torch",
    "activation_to_torch",
    "Eq10Attention",
    "Power",
    "SUPPORTED",
]

#: what :func:`from_torch` reads (quoted in its errors)
SUPPORTED = (
    "nn.Sequential / fx-traceable chains of nn.Linear (or F.linear) and pointwise activations "
    "Tanh, ReLU, LeakyReLU, GELU(approximate='none'), Sigmoid, Softplus, SiLU, Power (as modules "
    "or functional calls), with no-ops Identity / Dropout dropped; or chains of Eq10Attention "
    "and self-attention nn.MultiheadAttention(batch_first=True, bias=False)")

#: softplus's switch to x above the threshold changes it by log1p(exp(-threshold)) / beta
_SOFTPLUS_MAX_DEVIATION = 1e-7


# ---------------------------------------------------------------------------------- modules
class Power(nn.Module):
    """``x -> x ** m`` pointwise (the library's ``"power:<m>"`` activation)."""

    def __init__(self, m: int):
        super().__init__()
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"m: expected a positive integer, got {m!r}")
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x ** self.m

    def extra_repr(self) -> str:
        return f"m={self.m}"


class Eq10Attention(nn.Module):
    """One attention layer of eq. (10) [SMBK26], exactly, as a torch module.

    ``forward`` maps ``(..., n, d_in h_in)`` to ``(..., n, d_out h_out)`` (both flattened
    row-major, head index last, as in :mod:`identifiable.models.attention`)::

        Xbar = X W_O (+ P),   Y[..., :, :, j] = smax(Xbar W_A^j Xbar^T) Xbar W_V^j

    with parameters ``W_O (d_in h_in, e)``, ``W_A (h_out, e, e)``, ``W_V (h_out, e, d_out)`` and,
    with ``positional=True``, ``P (n, e)``. No skip connection, no normalisation, no scale
    (a scale is part of ``W_A``).
    """

    def __init__(self, n_tokens: int, d_in: int, h_in: int, d_out: int, h_out: int, e: int,
                 positional: bool = False, *, dtype: torch.dtype | None = None):
        super().__init__()
        self.n_tokens, self.d_in, self.h_in = int(n_tokens), int(d_in), int(h_in)
        self.d_out, self.h_out, self.e = int(d_out), int(h_out), int(e)
        kw = {"dtype": dtype}
        self.W_O = nn.Parameter(torch.empty(self.d_in * self.h_in, self.e, **kw))
        self.W_A = nn.Parameter(torch.empty(self.h_out, self.e, self.e, **kw))
        self.W_V = nn.Parameter(torch.empty(self.h_out, self.e, self.d_out, **kw))
        if positional:
            self.P = nn.Parameter(torch.empty(self.n_tokens, self.e, **kw))
        else:
            self.register_parameter("P", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian entries with logits and values of order one (as
        :meth:`AttentionModel.random_params`)."""
        with torch.no_grad():
            self.W_O.normal_(0.0, 1.0 / math.sqrt(max(self.W_O.shape[0], 1)))
            self.W_A.normal_(0.0, 1.0 / self.e)
            self.W_V.normal_(0.0, 1.0 / math.sqrt(self.e))
            if self.P is not None:
                self.P.normal_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Xb = x @ self.W_O
        if self.P is not None:
            Xb = Xb + self.P
        S = torch.einsum("...pe,jef,...tf->...jpt", Xb, self.W_A, Xb)
        A = torch.softmax(S, dim=-1)
        V = torch.einsum("...te,jed->...jtd", Xb, self.W_V)
        Y = torch.einsum("...jpt,...jtd->...pdj", A, V)
        return Y.reshape(*Y.shape[:-2], self.d_out * self.h_out)

    def extra_repr(self) -> str:
        pe = ", positional" if self.P is not None else ""
        return (f"n_tokens={self.n_tokens}, in=({self.d_in} x {self.h_in}), "
                f"out=({self.d_out} x {self.h_out}), inner={self.e}{pe}")


# ---------------------------------------------------------------------------------- activations
def _rational_text(v: float) -> sp.Rational:
    """The exact rational of a float's shortest repr (``0.01 -> 1/100``)."""
    return sp.Rational(repr(float(v)))


def _leaky_name(slope: float) -> str:
    s = _rational_text(slope)
    if s == 0:
        return "relu"
    if s == 1:
        return "identity"
    return f"leaky_relu:{s}"


def _gelu_name(approximate: str, where: str) -> str:
    if approximate != "none":
        raise ValueError(f"{where}: GELU(approximate={approximate!r}) is the tanh approximation, "
                         "a different function from the library's 'gelu' (x Phi(x)); only "
                         "approximate='none' is mapped")
    return "gelu"


def _softplus_name(beta: float, threshold: float, where: str) -> str:
    b = _rational_text(beta)
    if b <= 0:
        raise ValueError(f"{where}: Softplus(beta={beta}) needs beta > 0")
    if math.log1p(math.exp(-float(threshold))) / float(beta) > _SOFTPLUS_MAX_DEVIATION:
        raise ValueError(f"{where}: Softplus(threshold={threshold}) switches to x early enough "
                         f"to change the function by more than {_SOFTPLUS_MAX_DEVIATION:g}; the "
                         "library's softplus is log(1 + exp(beta x)) / beta (use threshold >= 16)")
    return "softplus" if b == 1 else f"softplus:{b}"


def activation_from_torch(module: nn.Module) -> str:
    """The library name (:func:`identifiable.activations.get`) of a torch activation module.

    ``nn.Tanh -> "tanh"``, ``nn.ReLU -> "relu"``, ``nn.LeakyReLU(s) -> "leaky_relu:<s>"``,
    ``nn.GELU() -> "gelu"``, ``nn.Sigmoid -> "sigmoid"``, ``nn.Softplus(beta) -> "softplus"`` /
    ``"softplus:<beta>"``, ``nn.SiLU -> "silu"``, :class:`Power` ``-> "power:<m>"``,
    ``nn.Identity -> "identity"``. Anything else: ``ValueError``.
    """
    return _activation_name(module, f"module ({type(module).__name__})")


def activation_name(module: nn.Module) -> str | None:
    """The library name of the function a pointwise torch module computes in eval mode, or None
    where the library has no such activation (e.g. ``GELU(approximate='tanh')``) or the module
    is not a pointwise activation. ``Identity`` and ``Dropout`` (the identity in eval mode) are
    ``"identity"``. The one table of torch activations for the whole backend (matching,
    measuring and the bridge use it)."""
    if isinstance(module, (nn.Identity, nn.Dropout)):
        return "identity"
    try:
        return _activation_name(module, "")
    except ValueError:
        return None


def _activation_name(module: nn.Module, where: str) -> str:
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.LeakyReLU):
        return _leaky_name(module.negative_slope)
    if isinstance(module, nn.GELU):
        return _gelu_name(module.approximate, where)
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.Softplus):
        return _softplus_name(module.beta, module.threshold, where)
    if isinstance(module, nn.SiLU):
        return "silu"
    if isinstance(module, Power):
        return "identity" if module.m == 1 else f"power:{module.m}"
    if isinstance(module, nn.Identity):
        return "identity"
    raise ValueError(f"{where}: not a supported activation (Tanh, ReLU, LeakyReLU, "
                     "GELU(approximate='none'), Sigmoid, Softplus, SiLU, Power, Identity)")


def activation_to_torch(act: Activation | str) -> nn.Module:
    """The torch module of a built-in activation (inverse of :func:`activation_from_torch`).

    A custom :class:`~identifiable.activations.Activation` (from
    :func:`~identifiable.activations.from_sympy`) has no torch counterpart: ``ValueError``.
    """
    act = _acts.get(act)
    name = act.name.strip().lower()
    try:
        builtin = _acts.get(name)
    except ValueError:
        builtin = None
    if builtin is None or builtin.expr != act.expr:
        raise ValueError(f"activation {act.name!r} (x -> {act.expr}) is not a built-in "
                         f"activation; to_torch maps {', '.join(_acts.NAMES)} except custom "
                         "expressions")
    head, _, arg = name.partition(":")
    simple = {"identity": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
              "gelu": nn.GELU, "softplus": nn.Softplus, "silu": nn.SiLU}
    if not arg and head in simple:
        return simple[head]()
    if head == "leaky_relu":
        return nn.LeakyReLU(float(sp.Rational(arg)))
    if head == "softplus":
        return nn.Softplus(beta=float(sp.Rational(arg)))
    if head == "power":
        return Power(int(arg))
    raise ValueError(f"activation {act.name!r}: no torch module known")  # pragma: no cover


# ---------------------------------------------------------------------------------- the chain
@dataclass
class _Step:
    """One operation of the chain: ``kind`` in linear / act / noop / eq10 / mha."""

    kind: str
    where: str
    module: Any = None
    act: str | None = None
    weight: Any = None
    bias: Any = None


_NOOP_MODULES = (nn.Identity, nn.Dropout, nn.AlphaDropout)
_ACT_MODULES = (nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Sigmoid, nn.Softplus, nn.SiLU, Power)


def _describe(qualname: str, module: nn.Module) -> str:
    return f"'{qualname}' ({type(module).__name__})" if qualname else \
        f"the module ({type(module).__name__})"


def _unsupported(where: str, extra: str = "") -> ValueError:
    return ValueError(f"{where}: not supported{extra}; from_torch reads {SUPPORTED}")


def _leaf_step(module: nn.Module, qualname: str) -> _Step | None:
    """The step of a supported leaf module (None: not a leaf this bridge knows)."""
    where = _describe(qualname, module)
    if isinstance(module, nn.Linear):
        return _Step("linear", where, module, weight=module.weight, bias=module.bias)
    if isinstance(module, _NOOP_MODULES):
        return _Step("noop", where, module)
    if isinstance(module, _ACT_MODULES):
        name = _activation_name(module, where)
        return _Step("noop" if name == "identity" else "act", where, module, act=name)
    if isinstance(module, Eq10Attention):
        return _Step("eq10", where, module)
    if isinstance(module, nn.MultiheadAttention):
        return _Step("mha", where, module)
    return None


def _is_torch_nn(module: nn.Module) -> bool:
    mod = type(module).__module__
    return mod.startswith("torch.nn") or mod.startswith("torch.ao.nn")


def _module_steps(module: nn.Module, qualname: str) -> list[_Step]:
    """The chain of a module: a Sequential walked (nested ones flattened), a known leaf, or a
    custom module traced with torch.fx."""
    if isinstance(module, nn.Sequential):
        steps: list[_Step] = []
        for name, child in module.named_children():
            q = f"{qualname}.{name}" if qualname else name
            if isinstance(child, nn.MultiheadAttention):
                raise ValueError(f"{_describe(q, child)}: an nn.Sequential cannot call it (it "
                                 "takes query, key, value and returns a tuple); wrap it in a "
                                 "module whose forward is mha(x, x, x)[0]")
            steps += _module_steps(child, q)
        return steps
    step = _leaf_step(module, qualname)
    if step is not None:
        return [step]
    if _is_torch_nn(module):
        raise _unsupported(_describe(qualname, module))
    return _trace_steps(module, qualname)


class _Tracer(fx.Tracer):
    """torch.fx tracer that keeps this bridge's modules (and torch.nn's) as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (Eq10Attention, Power)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _fn_name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", None) or str(target)


def _node_desc(node: fx.Node) -> str:
    """``the call 'relu_1' (call_function relu)``: a traced call by its node and target."""
    return f"the call '{node.name}' ({node.op} {_fn_name(node.target)})"


_RELU = {torch.relu, F.relu, torch.relu_, F.relu_}
_TANH = {torch.tanh, F.tanh, torch.tanh_}
_SIGMOID = {torch.sigmoid, F.sigmoid, torch.sigmoid_}
_DROPOUT = {F.dropout, torch.dropout, F.alpha_dropout, torch.alpha_dropout}
_POW = {operator.pow, torch.pow}
_METHODS = {"relu": "relu", "relu_": "relu", "tanh": "tanh", "tanh_": "tanh",
            "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}


def _arg(node: fx.Node, i: int, key: str, default: Any) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _function_step(node: fx.Node, root: nn.Module, prefix: str) -> _Step:
    """The step of a call_function / call_method node (its first argument the chain's value)."""
    where = _node_desc(node) + (f" in '{prefix}'" if prefix else "")
    t = node.target
    others = [a for a in list(node.args[1:]) + list(node.kwargs.values())
              if isinstance(a, fx.Node)]
    if node.op == "call_function" and t is F.linear:
        w, b = _arg(node, 1, "weight", None), _arg(node, 2, "bias", None)
        tensors = []
        for a in (w, b):
            if a is None:
                tensors.append(None)
            elif isinstance(a, fx.Node) and a.op == "get_attr":
                tensors.append(_get_attr(root, a.target))
            else:
                raise _unsupported(where, " (F.linear is read only with the module's own "
                                          "parameters as weight and bias)")
        return _Step("linear", where, weight=tensors[0], bias=tensors[1])
    if others:
        raise _unsupported(where, " (an argument other than the chain's value is computed)")
    if node.op == "call_method":
        if t in _METHODS:
            return _Step("act", where, act=_METHODS[t])
        if t == "pow":
            return _pow_step(_arg(node, 1, "exponent", None), where)
        raise _unsupported(where)
    if t in _RELU:
        return _Step("act", where, act="relu")
    if t in _TANH:
        return _Step("act", where, act="tanh")
    if t in _SIGMOID:
        return _Step("act", where, act="sigmoid")
    if t is F.silu:
        return _Step("act", where, act="silu")
    if t is F.gelu:
        return _Step("act", where, act=_gelu_name(_arg(node, 1, "approximate", "none"), where))
    if t is F.leaky_relu or t is F.leaky_relu_:
        name = _leaky_name(_arg(node, 1, "negative_slope", 0.01))
        return _Step("noop" if name == "identity" else "act", where, act=name)
    if t is F.softplus:
        return _Step("act", where, act=_softplus_name(_arg(node, 1, "beta", 1.0),
                                                      _arg(node, 2, "threshold", 20.0), where))
    if t in _DROPOUT:
        return _Step("noop", where)
    if t in _POW:
        return _pow_step(_arg(node, 1, "exponent", None), where)
    raise _unsupported(where, f" ({_fn_name(t)})")


def _get_attr(root: nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _pow_step(m: Any, where: str) -> _Step:
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise _unsupported(where, f" (x ** {m!r}: only positive integer powers are activations)")
    return _Step("noop" if m == 1 else "act", where, act=f"power:{m}")


_MHA_FREE_KWARGS = {"need_weights", "average_attn_weights"}


def _trace_steps(module: nn.Module, qualname: str) -> list[_Step]:
    """The chain of a module traced with torch.fx (nodes followed from the input)."""
    where = _describe(qualname, module)
    try:
        graph = _Tracer().trace(module)
    except Exception as exc:  # noqa: BLE001 - any tracing failure becomes one clear error
        raise ValueError(f"{where}: not an nn.Sequential, and torch.fx cannot trace it "
                         f"({type(exc).__name__}: {exc}); from_torch reads {SUPPORTED}") from None
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ValueError(f"{where}: forward takes {len(inputs)} inputs; a chain takes one")
    prefix = f"{qualname}." if qualname else ""

    def dead(n: fx.Node) -> bool:  # an unused element of a tuple (y, _ = mha(...))
        return n.op == "call_function" and n.target is operator.getitem and not n.users

    steps: list[_Step] = []
    seen = {inputs[0]}
    cur = inputs[0]
    while True:
        users = [u for u in cur.users if not dead(u)]
        seen.update(u for u in cur.users if dead(u))
        if len(users) != 1:
            raise ValueError(f"{where}: not a chain: the value '{cur.name}' feeds {len(users)} "
                             f"operations ({', '.join(u.name for u in users) or 'none'}); "
                             "residual or branching networks are not eq. (7)/(10) models")
        node = users[0]
        seen.add(node)
        if node.op == "output":
            if node.args[0] is not cur:
                raise ValueError(f"{where}: forward returns '{node.args[0]}', not one tensor")
            break
        if node.op == "call_module":
            sub = module.get_submodule(node.target)
            step = _leaf_step(sub, prefix + node.target)
            if step is None:
                raise _unsupported(_describe(prefix + node.target, sub))
            if step.kind == "mha":
                seen.update(node.users)  # mha(...)[0] and the unused [1]
                node = _mha_call(node, cur, step.where)
            elif list(node.args) != [cur] or node.kwargs:
                raise ValueError(f"{step.where}: called with arguments other than the chain's "
                                 f"value ({node.format_node()})")
            steps.append(step)
        elif node.op in ("call_function", "call_method"):
            if not node.args or node.args[0] is not cur:
                raise ValueError(f"{where}: {_node_desc(node)} does not take the "
                                 "chain's value as its first argument")
            steps.append(_function_step(node, module, qualname))
            seen.update(a for a in node.args[1:] if isinstance(a, fx.Node))
        else:
            raise _unsupported(f"{where}: {_node_desc(node)}")
        cur = node
    for n in nodes:
        if n not in seen and n.op != "get_attr":
            raise ValueError(f"{where}: {_node_desc(n)} is not part of the "
                             "chain from the input to the output")
    return steps


def _mha_call(node: fx.Node, cur: fx.Node, where: str) -> fx.Node:
    """Check ``mha(x, x, x, ...)[0]`` (self-attention, no masks); the getitem node."""
    names = ("query", "key", "value")
    qkv = list(node.args[:3]) + [node.kwargs.get(k) for k in names[len(node.args[:3]):]]
    if any(a is not cur for a in qkv):
        raise ValueError(f"{where}: only self-attention mha(x, x, x) is an eq. (10) layer "
                         f"(called as {node.format_node()})")
    if len(node.args) > 3:
        raise ValueError(f"{where}: pass only query, key, value positionally "
                         f"({node.format_node()})")
    for k, v in node.kwargs.items():
        if k in names or k in _MHA_FREE_KWARGS:
            continue
        if v is None or (k == "is_causal" and v is False):
            continue
        raise ValueError(f"{where}: {k}={v!r}: masked attention is not eq. (10)")
    users = list(node.users)
    live = [u for u in users if u.users]
    ok = (len(live) == 1 and live[0].op == "call_function" and live[0].target is operator.getitem
          and live[0].args[1] == 0
          and all(u.op == "call_function" and u.target is operator.getitem for u in users))
    if not ok:
        raise ValueError(f"{where}: only the attention output mha(...)[0] may be used "
                         "(the chain continues with it)")
    return live[0]


# ---------------------------------------------------------------------------------- to numpy
#: torch dtypes numpy holds too (converted by numpy, which is faster on large arrays)
_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _np64(t: torch.Tensor, where: str) -> np.ndarray:
    """A float64 numpy copy of a tensor (never a view of the module's memory)."""
    t = t.detach()
    if t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES:
        src = t.numpy()
        arr = np.empty(src.shape, dtype=np.float64)
        np.copyto(arr, src)
    else:
        arr = t.to(device="cpu", dtype=torch.float64, copy=True).numpy()
    # a finite sum proves every entry finite; only a non-finite one needs the entry-wise test
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        raise ValueError(f"{where}: has NaN or inf entries")
    return arr


def _exact(arr: np.ndarray) -> sp.ImmutableMatrix:
    """Every float at its exact binary value (sympy rationals)."""
    rows, cols = arr.shape if arr.ndim == 2 else (arr.shape[0], 1)
    return sp.ImmutableMatrix(rows, cols, [sp.Rational(v) for v in arr.ravel().tolist()])


def _mlp_from_steps(steps: list[_Step], exact: bool) -> tuple[MLP, Theta]:
    lins: list[_Step] = []
    after: list[list[_Step]] = []
    for st in steps:
        if st.kind == "noop":
            continue
        if st.kind == "linear":
            lins.append(st)
            after.append([])
        elif st.kind == "act":
            if not lins:
                raise ValueError(f"{st.where}: an activation before the first Linear layer; "
                                 "eq. (7) [SMBK26] starts with an affine map")
            after[-1].append(st)
        else:
            raise ValueError(f"{st.where}: attention and Linear layers cannot be mixed in one "
                             "model (an MLP of eq. (7) or an attention model of eq. (10))")
    if not lins:
        raise ValueError(f"no Linear layer found; from_torch reads {SUPPORTED}")
    if after[-1]:
        raise ValueError(f"{after[-1][0].where}: an activation after the last Linear layer "
                         f"{lins[-1].where}; eq. (7) [SMBK26] ends with an affine layer (drop "
                         "it, or apply it outside the model)")
    names = []
    for i, acts in enumerate(after[:-1]):
        if len(acts) > 1:
            raise ValueError(f"{acts[0].where} and {acts[1].where}: two activations in a row "
                             f"after {lins[i].where}; an MLP has one pointwise activation per "
                             "hidden layer (eq. (7))")
        names.append(acts[0].act if acts else "identity")
    has_bias = [st.bias is not None for st in lins]
    if any(has_bias) and not all(has_bias):
        with_b = [st.where for st, b in zip(lins, has_bias) if b]
        without = [st.where for st, b in zip(lins, has_bias) if not b]
        raise ValueError(f"mixed biases: {', '.join(with_b)} have biases, {', '.join(without)} "
                         "do not; an MLP has biases on every layer or on none (bias=)")
    widths = [int(lins[0].weight.shape[1])]
    for i, st in enumerate(lins):
        out_f, in_f = (int(s) for s in st.weight.shape)
        if in_f != widths[-1]:
            raise ValueError(f"{st.where}: takes {in_f} inputs, but {lins[i - 1].where} gives "
                             f"{widths[-1]}")
        widths.append(out_f)
    Ws = [_np64(st.weight, f"{st.where}.weight") for st in lins]
    bs = [_np64(st.bias, f"{st.where}.bias") for st in lins] if all(has_bias) else None
    model = MLP(widths, names, bias=all(has_bias))
    if exact:
        theta = model.params([_exact(W) for W in Ws],
                             None if bs is None else [_exact(b) for b in bs])
    else:
        zeros = [np.zeros(W.shape[0]) for W in Ws]
        theta = Theta(tuple(Ws), tuple(zeros if bs is None else bs), "float")
        model.check_theta(theta)
    return model, theta


def _mha_check(m: nn.MultiheadAttention, where: str) -> None:
    problems = []
    if not m.batch_first:
        problems.append("batch_first=False (eq. (10) batches are (batch, n, d): set "
                        "batch_first=True and feed (batch, n, E))")
    if m.in_proj_bias is not None or m.out_proj.bias is not None:
        problems.append("bias=True (the bias b_q adds b_q . k_t to the logits, which no W_A "
                        "gives; eq. (10) has no biases)")
    if m.bias_k is not None or m.bias_v is not None:
        problems.append("add_bias_kv=True (an extra key/value token)")
    if m.add_zero_attn:
        problems.append("add_zero_attn=True (an extra zero token)")
    if not m._qkv_same_embed_dim or m.kdim != m.embed_dim or m.vdim != m.embed_dim:
        problems.append(f"kdim={m.kdim}, vdim={m.vdim} differ from embed_dim={m.embed_dim}")
    if problems:
        raise ValueError(f"{where}: this nn.MultiheadAttention is not a layer of eq. (10) "
                         f"[SMBK26]: {'; '.join(problems)}")


def _attention_from_steps(steps: list[_Step], n_tokens: int | None
                          ) -> tuple[AttentionModel, AttentionTheta]:
    layers: list[dict] = []
    pending: np.ndarray | None = None   # an MHA's out_proj, waiting for the next layer's W_O
    ns: dict[int, str] = {}
    for st in steps:
        if st.kind == "noop":
            continue
        if st.kind not in ("eq10", "mha"):
            raise ValueError(f"{st.where}: attention and Linear/activation layers cannot be "
                             "mixed in one model (eq. (10) layers only)")
        m = st.module
        if st.kind == "eq10":
            W_O = _np64(m.W_O, f"{st.where}.W_O")
            W_A, W_V = _np64(m.W_A, f"{st.where}.W_A"), _np64(m.W_V, f"{st.where}.W_V")
            P = None if m.P is None else _np64(m.P, f"{st.where}.P")
            ns.setdefault(int(m.n_tokens if P is None else P.shape[0]), st.where)
            d_out, h_out = m.d_out, m.h_out
        else:
            _mha_check(m, st.where)
            E, H = m.embed_dim, m.num_heads
            r = E // H
            Wq, Wk, Wv = np.split(_np64(m.in_proj_weight, f"{st.where}.in_proj_weight"), 3)
            W_A = np.stack([Wq[j * r:(j + 1) * r].T @ Wk[j * r:(j + 1) * r] / math.sqrt(r)
                            for j in range(H)])
            W_V = np.stack([Wv[j * r:(j + 1) * r].T for j in range(H)])
            W_O, P, d_out, h_out = np.eye(E), None, r, H
        if pending is not None:
            if pending.shape[1] != W_O.shape[0]:
                raise ValueError(f"{st.where}: takes width {W_O.shape[0]}, but the previous "
                                 f"MultiheadAttention gives {pending.shape[1]}")
            W_O = pending @ W_O
            pending = None
        if layers and W_O.shape[0] != layers[-1]["d"] * layers[-1]["h"]:
            raise ValueError(f"{st.where}: takes width {W_O.shape[0]}, but {layers[-1]['where']} "
                             f"gives {layers[-1]['d']} x {layers[-1]['h']}")
        if st.kind == "mha":
            E, H, r = m.embed_dim, m.num_heads, m.embed_dim // m.num_heads
            Wout = _np64(m.out_proj.weight, f"{st.where}.out_proj.weight")  # (E, H r)
            # torch concatenates heads head-major (j r + q); the library flattens (q H + j)
            pending = Wout.T.reshape(H, r, E).transpose(1, 0, 2).reshape(r * H, E)
        layers.append({"W_A": W_A, "W_V": W_V, "W_O": W_O, "P": P, "d": d_out, "h": h_out,
                       "where": st.where})
    if not layers:
        raise ValueError(f"no attention layer found; from_torch reads {SUPPORTED}")
    last = layers[-1]
    if pending is not None:
        if last["h"] != 1:
            raise ValueError(f"{last['where']}: the last MultiheadAttention has "
                             f"{last['h']} heads; its out_proj sums the heads after attention, "
                             "which no eq. (10) layer does (h_L = 1, no output projection); "
                             "end the chain with a one-head layer")
        last["W_V"] = last["W_V"] @ pending
        last["d"] = pending.shape[1]
    elif last["h"] != 1:
        raise ValueError(f"{last['where']}: the last layer has {last['h']} heads; eq. (10) has "
                         "h_L = 1")
    if n_tokens is not None:
        ns.setdefault(int(n_tokens), "n_tokens=")
    if not ns:
        raise ValueError("n_tokens: a MultiheadAttention chain does not fix the sequence "
                         "length n; pass n_tokens=")
    if len(ns) > 1:
        raise ValueError("n_tokens: the layers disagree on the sequence length: "
                         + ", ".join(f"{n} ({w})" for n, w in ns.items()))
    model = AttentionModel(next(iter(ns)), [layers[0]["W_O"].shape[0]] + [p["d"] for p in layers],
                           heads=[1] + [p["h"] for p in layers[:-1]] + [1],
                           positional=[p["P"] is not None for p in layers],
                           inner=[p["W_O"].shape[1] for p in layers])
    theta = model.params([p["W_A"] for p in layers], [p["W_V"] for p in layers],
                         [p["W_O"] for p in layers], [p["P"] for p in layers])
    return model, theta


# ---------------------------------------------------------------------------------- public
def from_torch(module: nn.Module, *, exact: bool = False, n_tokens: int | None = None
               ) -> tuple[MLP, Theta] | tuple[AttentionModel, AttentionTheta]:
    """A library model and its parameter computing the same function as ``module``.

    A chain of ``nn.Linear`` and pointwise activations gives an
    :class:`~identifiable.models.mlp.MLP` of eq. (7) [SMBK26] and its float64
    :class:`~identifiable.models.mlp.Theta` (``exact=True``: exact rationals, each float at its
    binary value); a chain of :class:`Eq10Attention` / self-attention
    ``nn.MultiheadAttention`` layers gives an
    :class:`~identifiable.models.attention.AttentionModel` of eq. (10) and its
    :class:`~identifiable.models.attention.AttentionTheta` (``n_tokens``: the sequence length,
    needed when only MHA layers are present). What is read, and the errors, are listed in the
    module docstring; every error names the offending module or call.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    steps = _module_steps(module, "")
    if any(st.kind in ("eq10", "mha") for st in steps):
        if exact:
            raise ValueError("exact=True: attention parameters are float64 only (AttentionTheta)")
        return _attention_from_steps(steps, n_tokens)
    return _mlp_from_steps(steps, exact)


def _view(arr: Any) -> torch.Tensor:
    """A float64 tensor reading ``arr`` (a view where possible: only ever copied *from*)."""
    a = np.ascontiguousarray(np.asarray(arr, dtype=np.float64))
    return torch.from_numpy(a) if a.flags.writeable else torch.tensor(a)


def _parameter(arr: Any, dtype: torch.dtype) -> nn.Parameter:
    """A parameter of ``dtype`` holding a copy of ``arr``."""
    src = np.asarray(arr, dtype=np.float64)
    np_dtype = _NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        return nn.Parameter(_view(src).to(dtype=dtype, copy=True))
    out = np.empty(src.shape, dtype=np_dtype)
    np.copyto(out, src)
    return nn.Parameter(torch.from_numpy(out))


def _mlp_to_torch(model: MLP, theta: Any, dtype: torch.dtype) -> nn.Sequential:
    theta = model.check_theta(theta).numeric
    mods: list[nn.Module] = []
    L = model.depth
    for i, (W, b) in enumerate(theta):
        # built on the meta device (no allocation, no initialisation), then given theta's values
        lin = nn.Linear(model.widths[i], model.widths[i + 1], bias=model.bias, device="meta",
                        dtype=dtype)
        lin.weight = _parameter(W, dtype)
        if model.bias:
            lin.bias = _parameter(np.asarray(b).reshape(-1), dtype)
        mods.append(lin)
        if i < L - 1:
            mods.append(activation_to_torch(model.activations[i]))
    return nn.Sequential(*mods)


def _attention_to_torch(model: AttentionModel, theta: Any, dtype: torch.dtype) -> nn.Sequential:
    theta = model.check_theta(theta)
    mods = []
    for layer, p in zip(model.layers, theta):
        mod = Eq10Attention(model.n_tokens, layer.d_in, layer.h_in, layer.d_out, layer.h_out,
                            layer.e, p.P is not None, dtype=dtype)
        with torch.no_grad():
            for key in ("W_O", "W_A", "W_V", "P"):
                val = getattr(p, key)
                if val is not None:
                    getattr(mod, key).copy_(_view(val))
        mods.append(mod)
    return nn.Sequential(*mods)


def to_torch(model: MLP | AttentionModel, theta: Any, dtype: torch.dtype | None = None
             ) -> nn.Sequential:
    """An ``nn.Sequential`` computing ``f(.; theta)`` of ``model`` (default dtype float32).

    An :class:`~identifiable.models.mlp.MLP` (eq. (7) [SMBK26]) gives ``Linear, act, ...,
    Linear``; an :class:`~identifiable.models.attention.AttentionModel` (eq. (10)) a chain of
    :class:`Eq10Attention` layers on inputs ``(batch, n, d_0)``. The tensors are copies:
    training the module leaves ``theta`` unchanged.
    """
    dtype = torch.float32 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    if isinstance(model, MLP):
        return _mlp_to_torch(model, theta, dtype)
    if isinstance(model, AttentionModel):
        return _attention_to_torch(model, theta, dtype)
    raise TypeError(f"model: expected an MLP or AttentionModel, got {type(model).__name__}")
