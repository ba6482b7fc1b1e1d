"""The figures of Section 6 [SMBK26] (matplotlib, Agg backend, PNG, written atomically).

* :func:`filter_categories` / :func:`figure2`: first-layer filters as RGB tiles, sorted and
  colour-coded by how the fitted signed permutation K_1 of the left-right mirror pairs them
  (Figure 2): self-symmetric (``K[i, i] = +1``), mirrored pair (``K[i, j] = +1``), mirrored and
  negated (``K[i, j] = -1``, including ``j = i``: a filter that is its own negated mirror).
* :func:`figure3`: the attention of the query token per head for an image and its mirror, with
  the detected head permutation marked (Figure 3).

and of [BK23]:

* :func:`figure1_filter_pairs`: each first-layer filter next to the filter of the horizontally
  flipped network that activation matching assigned to it (Figure 1 / 7 style);
* :func:`figure4_orders`: the number of channels of permutation order 1, 2 and > 2 found by
  activation matching, per layer and training recipe (Figure 4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from identifiable.io import atomic_path

__all__ = ["filter_categories", "figure2", "figure3", "figure1_filter_pairs", "figure4_orders",
           "CATEGORY_COLOURS"]

#: floor of the scales a filter pair is divided by (an all-zero pair is drawn grey with a relative
#: difference of 0; a guard against 0 / 0, not a tolerance)
_SCALE_FLOOR = 1e-12

CATEGORY_COLOURS = {"self-symmetric": "tab:blue", "mirrored pair": "tab:green",
                    "mirrored and negated": "gold"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def filter_categories(K: np.ndarray) -> list[tuple[list[int], str]]:
    """Groups of filter indices (a fixed point or a 2-cycle of K) with their category, sorted:
    self-symmetric first, then mirrored pairs, then mirrored-and-negated ones. Cycles longer
    than 2 (not an involution: a poor fit) are listed last as ``"unpaired"``."""
    K = np.asarray(K)
    perm = np.abs(K).argmax(axis=1)
    sign = np.sign(K[np.arange(len(perm)), perm])
    seen: set[int] = set()
    groups: dict[str, list[list[int]]] = {c: [] for c in (*CATEGORY_COLOURS, "unpaired")}
    for i in range(len(perm)):
        if i in seen:
            continue
        j = int(perm[i])
        if j == i:
            groups["self-symmetric" if sign[i] > 0 else "mirrored and negated"].append([i])
            seen.add(i)
        elif perm[j] == i and sign[i] == sign[j]:
            groups["mirrored pair" if sign[i] > 0 else "mirrored and negated"].append([i, j])
            seen.update((i, j))
        else:
            groups["unpaired"].append([i])
            seen.add(i)
    return [(g, c) for c, gs in groups.items() for g in gs]


def _tile(w: np.ndarray) -> np.ndarray:
    """A 3 x h x w filter -> an RGB image in [0, 1] (0.5 = zero weight)."""
    m = np.abs(w).max()
    return np.clip(0.5 + 0.5 * w / (m if m > 0 else 1.0), 0, 1).transpose(1, 2, 0)


def figure2(weights: np.ndarray, K: np.ndarray, path: str | os.PathLike | None, title: str = "",
            columns: int = 8):
    """First-layer filters ``weights`` (``n x 3 x h x w``) sorted and framed by category of K.

    Returns the PNG's path, or the open matplotlib figure for ``path=None``.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    weights = np.asarray(weights)
    if weights.ndim != 4 or weights.shape[1] != 3:
        raise ValueError(f"weights: expected n x 3 x h x w filters, got {weights.shape}")
    if np.asarray(K).shape != (weights.shape[0],) * 2:
        raise ValueError(f"K: expected {(weights.shape[0],) * 2}, got {np.asarray(K).shape}")
    order = [(i, c) for g, c in filter_categories(K) for i in g]
    rows = int(np.ceil(len(order) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.6))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (i, c) in zip(axes, order):
        ax.imshow(_tile(weights[i]), interpolation="nearest")
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        colour = CATEGORY_COLOURS.get(c, "lightgrey")
        for s in ax.spines.values():
            s.set_edgecolor(colour)
            s.set_linewidth(3)
        ax.set_title(str(i), fontsize=6, pad=1)
    handles = [Patch(facecolor="white", edgecolor=col, linewidth=3, label=c)
               for c, col in (*CATEGORY_COLOURS.items(), ("unpaired", "lightgrey"))]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return _save(fig, path)


def figure3(image: np.ndarray, attention: np.ndarray, attention_mirrored: np.ndarray,
            perm: Sequence[int], path: str | os.PathLike | None, title: str = ""):
    """Row 1: ``image`` and its heads' attention maps; row 2: the mirrored image and its maps.

    ``perm[h]`` is the head of the mirrored image that plays the role of head h; heads with
    ``perm[h] != h`` are framed in cyan (the two highlighted columns of Figure 3). Returns the
    PNG's path, or the open figure for ``path=None``.
    """
    plt = _pyplot()
    attention, attention_mirrored = np.asarray(attention), np.asarray(attention_mirrored)
    heads = attention.shape[0]
    if attention.shape != attention_mirrored.shape or len(perm) != heads:
        raise ValueError("attention, attention_mirrored, perm: expected heads x h x w twice and "
                         f"{heads} entries, got {attention.shape}, {attention_mirrored.shape}, "
                         f"{len(perm)}")
    fig, axes = plt.subplots(2, heads + 1, figsize=(1.3 * (heads + 1), 3.0))
    image = np.asarray(image)
    for r, (img, att) in enumerate(((image, attention), (image[:, ::-1], attention_mirrored))):
        axes[r, 0].imshow(np.clip(img, 0, 1))
        axes[r, 0].set_title("image" if r == 0 else "mirrored", fontsize=7)
        for h in range(heads):
            ax = axes[r, h + 1]
            ax.imshow(att[h], cmap="viridis")
            moved = perm[h] != h
            ax.set_title(f"head {h}" + (f" -> {perm[h]}" if moved and r == 0 else ""),
                         fontsize=7, color="darkcyan" if moved else "black", pad=5)
            for s in ax.spines.values():
                s.set_edgecolor("cyan" if moved else "none")
                s.set_linewidth(3)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(h_pad=1.5)     # the thick frames are not in tight_layout's bounding boxes
    return _save(fig, path)


def figure1_filter_pairs(weights: np.ndarray, perm: Sequence[int],
                         path: str | os.PathLike | None, title: str = "", columns: int = 8):
    """First-layer filters (``n x 3 x h x w``), each next to ``tau(weights[perm[i]])``.

    ``perm[i]`` is the channel of the flipped network matched to channel ``i`` (as returned by
    activation matching), so for a GCNN every pair is identical. Each pair shares one colour
    scale; the pair's relative difference is printed above it.
    """
    plt = _pyplot()
    w = np.asarray(weights, dtype=np.float64)
    perm = np.asarray(perm, dtype=int)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"weights: expected n x 3 x h x w, got {w.shape}")
    if perm.shape != (w.shape[0],):
        raise ValueError(f"perm: expected {w.shape[0]} entries, got {perm.shape}")
    flipped = w[perm][..., ::-1]
    n = w.shape[0]
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(2 * columns * 0.62, rows * 0.8 + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        a, b = w[i], flipped[i]
        m = max(np.abs(a).max(), np.abs(b).max(), _SCALE_FLOOR)
        rel = np.linalg.norm(a - b) / max(0.5 * (np.linalg.norm(a) + np.linalg.norm(b)),
                                          _SCALE_FLOOR)
        r, c = divmod(i, columns)
        for k, f in enumerate((a, b)):
            ax = axes[r, 2 * c + k]
            ax.imshow(np.clip(0.5 + 0.5 * f / m, 0, 1).transpose(1, 2, 0), interpolation="nearest")
        axes[r, 2 * c].set_title(f"{i}:{perm[i]} {rel:.2f}", fontsize=5, loc="left")
    fig.suptitle(title or "first-layer filters | matched filters of the flipped net", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def figure4_orders(orders: dict[str, Sequence[dict[str, float]]],
                   path: str | os.PathLike | None, title: str = "",
                   layer_names: Sequence[str] | None = None):
    """Stacked bars: channels of permutation order 1, 2, > 2 per layer, one panel per recipe.

    ``orders[recipe][j]`` is ``{"1": n1, "2": n2, ">2": n3}`` for hidden layer ``j`` (mean over
    seeds, say). For a GCNN all channels should have order <= 2 (Figure 4 [BK23]).
    ``layer_names``:
    tick labels of the layers (a ResNet's permutation groups: ``S1`` ... for its residual
    streams); default 1, 2, ...
    """
    plt = _pyplot()
    if not orders:
        raise ValueError("orders: nothing to plot")
    names = list(orders)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False,
                             sharey=True)
    colours = {"1": "tab:blue", "2": "tab:green", ">2": "tab:red"}
    for ax, name in zip(axes[0], names):
        layers = orders[name]
        x = np.arange(1, len(layers) + 1)
        bottom = np.zeros(len(layers))
        for key, col in colours.items():
            h = np.array([float(d.get(key, 0)) for d in layers])
            ax.bar(x, h, bottom=bottom, color=col, label=f"order {key}")
            bottom += h
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("layer" if layer_names is None else "permutation group")
        if layer_names is None:
            ax.set_xticks(x)
        else:
            ax.set_xticks(x, list(layer_names), rotation=90, fontsize=6)
    axes[0, 0].set_ylabel("channels")
    axes[0, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | os.PathLike | None):
    """Save atomically as PNG and close; with ``path=None`` return the open figure instead."""
    if path is None:
        return fig
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return path
