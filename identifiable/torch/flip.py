"""The flipped network of [BK23] (Bökman & Kahl, NeurIPS 2023) Section 3 and its footnote 2.

:func:`flip_network` flips every convolution kernel along its width, so that
``hat-Phi(x) = Phi(tau x)`` where ``tau`` (:func:`flip_images`) flips the image width. This is
exact only when every strided / padded window is symmetric under the flip; [BK23] footnote 2
and Appendix A.2.1 (a stride-2 layer on an even width never reaches the right edge) describe
the defect, which :class:`FlipReport` lists layer by layer.

The supported networks are those of :mod:`identifiable.torch.structure` and, for any other
module (ResNets), :mod:`identifiable.torch.graph`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from identifiable.torch.structure import analyse, index_batchnorm, window_params

__all__ = ["FlipReport", "flip_network", "flip_images"]


@dataclass
class FlipReport:
    """Whether :func:`flip_network` is exact, and why not ([BK23] footnote 2, Appendix A.2.1)."""

    exact: bool
    issues: list[str] = field(default_factory=list)


def flip_images(x: Tensor) -> Tensor:
    """``tau``: flip images (or feature maps) along their width, ``x.flip(-1)``."""
    return x.flip(-1)


def window_issue(i: int | str, m: nn.Module, w: int | None) -> str | None:
    """Footnote 2 [BK23]: a window layer commutes with the width flip iff its windows tile the
    (padded) width symmetrically, ``(W + 2p - d(k-1) - 1) % s == 0``. ``i``: the module's
    index in a Sequential, or its name."""
    name = f"module {i} ({type(m).__name__})" if isinstance(i, int) else i
    k, s, p, d, _ = window_params(m)
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


def adaptive_issue(i: int | str, m: nn.Module, w: int | None, ow: int | None) -> str | None:
    name = f"module {i} ({type(m).__name__})" if isinstance(i, int) else i
    if ow is None or ow == w:
        return None
    if w is None:
        return f"{name}: input width unknown, bins not checked"
    j = np.arange(ow)
    start, end = (j * w) // ow, -((-(j + 1) * w) // ow)
    if np.array_equal(start, w - end[::-1]):
        return None
    return (f"{name}: input width {w} -> {ow} gives bins that are not symmetric under the "
            f"flip")


def flip_network(net: nn.Module,
                 input_size: tuple[int, int] = (32, 32)) -> tuple[nn.Module, FlipReport]:
    """The flipped network ``hat-Phi`` of [BK23] Section 3, with ``hat-Phi(x) = Phi(tau x)``.

    A deep copy with every conv kernel flipped along its width (``weight.flip(-1)``); BatchNorm and
    pools unchanged; the first Linear after a Flatten of a map of width ``W > 1`` (and any
    BatchNorm1d between them) gets its input features permuted by the width flip of the
    ``(C, H, W)`` flatten layout. Spatial sizes are tracked from ``input_size``; every conv / pool
    whose windows are not symmetric under the flip (footnote 2 [BK23], Appendix A.2.1: e.g. a
    stride-2 layer on an even width) is listed in the report, which is then not ``exact``.

    Any other module (a ResNet, :mod:`identifiable.torch.graph`) is flipped the same way from
    its torch.fx trace: every ``Conv2d`` in the residual branches *and the shortcuts* is checked
    with the width it sees (a stride-2 3 x 3 convolution with padding 1, or a 1 x 1 stride-2
    shortcut, on an even width is reported by its qualified name, e.g. ``layer2.0.shortcut.0``),
    and so are the pools.
    """
    from identifiable.torch.graph import uses_graph

    if uses_graph(net):
        from identifiable.torch.graph_ops import flip_graph

        return flip_graph(net, input_size)
    steps = analyse(net, input_size)
    if steps and len(steps[0].shape_in) == 1:
        raise ValueError("flip_network: the net takes flat features, expected image input")
    out = copy.deepcopy(net)
    issues: list[str] = []
    q: Tensor | None = None        # width flip of the flattened features, while they last
    with torch.no_grad():
        for st in steps:
            m = out[st.index]
            if st.kind == "conv":
                issue = window_issue(st.index, m, st.shape_in[2])
                m.weight.copy_(m.weight.flip(-1))
            elif st.kind == "pool":
                issue = window_issue(st.index, m, st.shape_in[2])
            elif st.kind == "adaptive":
                issue = adaptive_issue(st.index, m, st.shape_in[2], st.shape_out[2])
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
                    index_batchnorm(m, q.to(m.running_mean.device))
                elif st.kind == "linear" and q is not None:
                    m.weight.copy_(m.weight[:, q.to(m.weight.device)])
                    q = None
            if issue is not None:
                issues.append(issue)
    return out, FlipReport(exact=not issues, issues=issues)
