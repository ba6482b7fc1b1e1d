"""The networks of Section 6 and Appendix C [SMBK26], with layers addressable by index.

* :class:`MirrorMLP`: the depth-4 MLP of Section 6.1 / Appendix C on 3 x 14 x 14 inputs
  (588 numbers), widths 64-256-256; the first activation is tanh or GELU, the next two GELU;
  the last layer is affine (eq. (7)): 588 outputs for the autoencoder, 10 for the classifier.
* :class:`AttentionAutoencoder`: Section 6.2, the first linear layer replaced by a patch
  embedding and one multi-head attention layer (a single learnable query token, 8 heads of
  total width 256), then the MLP layers 256-256-256-588.

Both expose the paper's layer functions: ``net.layer(i)`` is ``f_i`` (1-based), so that
``f_1(x) = sigma_1(W_1 x + b_1)``, and ``net.latent(x, i) = f_i o ... o f_1 (x)`` is the point
of the latent space V_i. Inputs are normalised images ``B x 3 x 14 x 14`` (or flattened
``B x 588``); normalisation (per-channel mean / std of the training set) is stored in the
buffers ``mean`` and ``std`` and applied by :meth:`normalise`, not inside ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MirrorMLP", "AttentionAutoencoder", "build_net", "ACTIVATIONS", "TASKS",
           "INTERTWINER_KIND", "intertwiner_kind"]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "gelu": F.gelu}
TASKS = ("autoencoder", "classifier")

#: = activations.get(name).intertwiner_group(d).scalings.kind (derived in identifiable.activations):
#: tanh is odd, so K = signed permutations; GELU's intertwiners are permutations only.
INTERTWINER_KIND = {"tanh": "sign", "gelu": "one"}


def intertwiner_kind(activation: str) -> str:
    """Scaling kind of the intertwiner group K of eq. (8) for ``activation`` (Section 5.1)."""
    try:
        return INTERTWINER_KIND[activation]
    except KeyError:
        raise ValueError(f"activation: expected one of {sorted(INTERTWINER_KIND)}, "
                         f"got {activation!r}") from None


def _check(task: str, activation: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")


class _Base(nn.Module):
    in_shape: tuple[int, int, int]
    task: str

    def _init_norm(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        c = self.in_shape[0]
        self.register_buffer("mean", torch.tensor(list(mean) if mean else [0.0] * c).view(c, 1, 1))
        self.register_buffer("std", torch.tensor(list(std) if std else [1.0] * c).view(c, 1, 1))

    def normalise(self, x01: Tensor) -> Tensor:
        """Images with values in [0, 1] -> zero-mean unit-variance channels (training stats)."""
        return (x01 - self.mean) / self.std

    def _as_image(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.in_shape)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"x: expected B x {self.in_shape} or B x {math.prod(self.in_shape)},"
                             f" got {tuple(x.shape)}")
        return x

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer(self, i: int) -> Callable[[Tensor], Tensor]:
        """The layer function f_i of the paper (1-based)."""
        if not 1 <= i <= self.n_layers:
            raise ValueError(f"i: expected a layer index in 1..{self.n_layers}, got {i}")
        return self.layers[i - 1]

    def latent(self, x: Tensor, i: int) -> Tensor:
        """``f_i o ... o f_1 (x)``, the image of x in the latent space V_i."""
        if not 0 <= i <= self.n_layers:
            raise ValueError(f"i: expected 0..{self.n_layers}, got {i}")
        z = self._as_image(x)
        for k in range(i):
            z = self.layers[k](z)
        return z

    def latents(self, x: Tensor, indices: Sequence[int]) -> dict[int, Tensor]:
        """Several latents in one pass: ``{i: net.latent(x, i)}``."""
        want = set(indices)
        out = {}
        z = self._as_image(x)
        for k in range(max(want, default=0)):
            z = self.layers[k](z)
            if k + 1 in want:
                out[k + 1] = z
        return out

    def forward(self, x: Tensor) -> Tensor:
        z = self.latent(x, self.n_layers)
        if self.task == "autoencoder":
            z = z.view(z.shape[0], *self.in_shape)
        return z

    def arch(self) -> dict[str, Any]:
        """JSON-able description; a checkpoint refuses to load into another architecture."""
        raise NotImplementedError


class _Dense(nn.Module):
    """``sigma(W z + b)``, or ``W z + b`` for ``activation=None`` (the affine last layer)."""

    def __init__(self, d_in: int, d_out: int, activation: str | None):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.activation = activation
        self.fn = ACTIVATIONS[activation] if activation else None

    def forward(self, z: Tensor) -> Tensor:
        y = self.linear(z.flatten(1))
        return self.fn(y) if self.fn is not None else y

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


class MirrorMLP(_Base):
    """Depth-4 MLP of Appendix C: 588 -> 64 -> 256 -> 256 -> 588 (autoencoder) / 10 (classifier).

    ``activation`` is the first nonlinearity (``"tanh"`` or ``"gelu"``); the other two are GELU.
    """

    def __init__(self, task: str = "autoencoder", activation: str = "tanh",
                 widths: Sequence[int] = (64, 256, 256), in_shape: Sequence[int] = (3, 14, 14),
                 n_classes: int = 10, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        super().__init__()
        _check(task, activation)
        self.task, self.activation = task, activation
        self.in_shape = tuple(int(s) for s in in_shape)
        self.widths = tuple(int(w) for w in widths)
        self.n_classes = int(n_classes)
        d0 = math.prod(self.in_shape)
        d_out = d0 if task == "autoencoder" else self.n_classes
        dims = (d0, *self.widths, d_out)
        acts = [activation] + ["gelu"] * (len(self.widths) - 1) + [None]
        self.layers = nn.ModuleList(_Dense(a, b, s) for a, b, s in zip(dims[:-1], dims[1:], acts))
        self._init_norm(mean, std)

    def activation_of(self, i: int) -> str | None:
        """The activation of layer i (None for the affine last layer)."""
        return self.layer(i).activation

    def arch(self) -> dict[str, Any]:
        return {"kind": "mlp", "task": self.task, "activation": self.activation,
                "widths": list(self.widths), "in_shape": list(self.in_shape),
                "n_classes": self.n_classes}


class _PatchAttention(nn.Module):
    """Patchify (stride-2 2 x 2 convs for keys and values, + learnable positional encodings) and
    attend from one learnable query token; output: the 8 heads' outputs concatenated (256).

    The keys and values are affine in the patches ``P`` (``B x n x c p p``): ``K = P W_k^T + b_k
    + E_k`` and ``V = P W_v^T + b_v + E_v``. Both are contracted at once (the query against the
    keys, the attention weights against the values), so :meth:`forward` never forms them: the
    logits are ``P (W_k^T Q) + (b_k + E_k) Q`` with ``Q`` the query laid out block-diagonally
    (``width x heads``), and head ``h``'s output is ``(a_h P) W_{v,h}^T + b_{v,h} + a_h E_{v,h}``
    (the weights ``a_h`` sum to 1). The same function as the convolutions and the two einsums it
    replaces (checked in the tests), about 20x cheaper at batch 4096 on a CPU.
    """

    def __init__(self, in_shape: tuple[int, int, int], width: int, heads: int, patch: int = 2):
        super().__init__()
        if width % heads:
            raise ValueError(f"width: must be divisible by heads={heads}, got {width}")
        c, h, w = in_shape
        self.heads, self.width, self.patch = heads, width, patch
        self.grid = (h // patch, w // patch)
        n = self.grid[0] * self.grid[1]
        self.key = nn.Conv2d(c, width, patch, stride=patch)
        self.value = nn.Conv2d(c, width, patch, stride=patch)
        self.pos_key = nn.Parameter(0.02 * torch.randn(n, width))
        self.pos_value = nn.Parameter(0.02 * torch.randn(n, width))
        self.query = nn.Parameter(torch.randn(width) / math.sqrt(width))
        self.activation = None

    def patches(self, x: Tensor) -> Tensor:
        """``B x n x (c p p)``: the patches the stride-p convolutions see, each flattened in the
        order of a conv weight's ``(c, kh, kw)``, tokens row by row (the conv's output order)."""
        b, c = x.shape[:2]
        (gh, gw), p = self.grid, self.patch
        x = x[:, :, :gh * p, :gw * p]
        return x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw,
                                                                                 c * p * p)

    def _logits(self, patches: Tensor) -> Tensor:
        """``B x heads x n``: the query's scaled dot products with the keys."""
        dh = self.width // self.heads
        q = torch.block_diag(*self.query.view(self.heads, dh, 1))              # width x heads
        wk = self.key.weight.flatten(1)                                          # width x c p p
        logits = patches @ (wk.T @ q) + (self.key.bias + self.pos_key) @ q      # B x n x heads
        return logits.transpose(1, 2) / math.sqrt(dh)

    def attention(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(weights B x heads x tokens, values B x tokens x heads x head_dim)."""
        p = self.patches(x)
        dh = self.width // self.heads
        v = p @ self.value.weight.flatten(1).T + self.value.bias + self.pos_value
        return self._logits(p).softmax(dim=-1), v.view(x.shape[0], -1, self.heads, dh)

    def literal(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Section 6.2 as stated: keys and values by the convolutions plus positional encodings,
        the query's dot products, softmax over the tokens, the weighted sum of the values.
        Returns (output, weights, values); the reference :meth:`forward` is tested and
        benchmarked against (``benchmarks/bench_attention_layer.py``)."""
        b = x.shape[0]
        dh = self.width // self.heads
        k = self.key(x).flatten(2).transpose(1, 2) + self.pos_key                # B x n x width
        v = self.value(x).flatten(2).transpose(1, 2) + self.pos_value
        k, v = k.view(b, -1, self.heads, dh), v.view(b, -1, self.heads, dh)
        logits = torch.einsum("bnhd,hd->bhn", k, self.query.view(self.heads, dh)) / math.sqrt(dh)
        a = logits.softmax(dim=-1)
        return torch.einsum("bhn,bnhd->bhd", a, v).flatten(1), a, v

    def forward(self, x: Tensor) -> Tensor:
        p = self.patches(x)
        a = self._logits(p).softmax(dim=-1)                                      # B x heads x n
        dh = self.width // self.heads
        wv = self.value.weight.flatten(1).view(self.heads, dh, -1)             # heads x dh x cpp
        out = (torch.einsum("bhc,hdc->bhd", a @ p, wv)
               + torch.einsum("bhn,nhd->bhd", a, self.pos_value.view(-1, self.heads, dh))
               + self.value.bias.view(self.heads, dh))
        return out.flatten(1)


class AttentionAutoencoder(_Base):
    """Section 6.2: patch-embedding attention layer (8 heads, width 256), then MLP 256-256-588.

    ``f_1`` is the attention layer (image -> 256, the heads concatenated), ``f_2, f_3`` are
    GELU layers of width 256 and ``f_4`` is affine to 588 (an autoencoder).
    """

    def __init__(self, width: int = 256, heads: int = 8, widths: Sequence[int] = (256, 256),
                 in_shape: Sequence[int] = (3, 14, 14), mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        super().__init__()
        self.task, self.activation = "autoencoder", "attention"
        self.in_shape = tuple(int(s) for s in in_shape)
        self.width, self.heads, self.widths = int(width), int(heads), tuple(int(w) for w in widths)
        d0 = math.prod(self.in_shape)
        dims = (self.width, *self.widths, d0)
        acts = ["gelu"] * len(self.widths) + [None]
        self.layers = nn.ModuleList([_PatchAttention(self.in_shape, self.width, self.heads)] + [
            _Dense(a, b, s) for a, b, s in zip(dims[:-1], dims[1:], acts)])
        self._init_norm(mean, std)

    def attention_weights(self, x: Tensor) -> Tensor:
        """Attention of the query token, ``B x heads x H/2 x W/2`` (Figure 3)."""
        a, _ = self.layers[0].attention(self._as_image(x))
        return a.view(a.shape[0], self.heads, *self.layers[0].grid)

    def activation_of(self, i: int) -> str | None:
        return getattr(self.layer(i), "activation", None)

    def arch(self) -> dict[str, Any]:
        return {"kind": "attention", "task": "autoencoder", "width": self.width,
                "heads": self.heads, "widths": list(self.widths), "in_shape": list(self.in_shape)}


def build_net(arch: dict[str, Any]) -> _Base:
    """Rebuild a network from :meth:`arch` (e.g. read from a checkpoint)."""
    kind = arch.get("kind")
    if kind == "mlp":
        return MirrorMLP(arch["task"], arch["activation"], arch["widths"], arch["in_shape"],
                         arch.get("n_classes", 10))
    if kind == "attention":
        return AttentionAutoencoder(arch["width"], arch["heads"], arch["widths"], arch["in_shape"])
    raise ValueError(f"arch: unknown network kind {kind!r} (expected 'mlp' or 'attention')")
