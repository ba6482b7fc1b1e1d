"""Kept for old imports: ``from identifiable.torch.align import X`` still works for every name
of its ``__all__``.

The module was split by concept (flipping, matching and merging of CNNs for the GCNN barrier of
[BK23], Bökman & Kahl, NeurIPS 2023); new code imports from the module that owns a name:

* :mod:`identifiable.torch.structure`: the permutation structure of a net
  (:func:`~identifiable.torch.structure.hidden_units`);
* :mod:`identifiable.torch.flip`: the flipped network and the stride check of [BK23] footnote 2
  (:func:`~identifiable.torch.flip.flip_network`, :func:`~identifiable.torch.flip.flip_images`,
  :class:`~identifiable.torch.flip.FlipReport`);
* :mod:`identifiable.torch.match`: activation statistics and matching, [BK23] Section 4
  (:func:`~identifiable.torch.match.match_activations`,
  :class:`~identifiable.torch.match.MatchResult`);
* :mod:`identifiable.torch.merge`: permuting, merging, BatchNorm reset, REPAIR and the barrier
  measures (:func:`~identifiable.torch.merge.permute_network`,
  :func:`~identifiable.torch.merge.gcnn_barrier`, :func:`~identifiable.torch.merge.merge_barrier`,
  ...).
"""

from __future__ import annotations

from identifiable.torch.flip import FlipReport, flip_images, flip_network
from identifiable.torch.match import MatchResult, match_activations
from identifiable.torch.merge import (
    BarrierResult,
    accuracy,
    barrier,
    gcnn_barrier,
    interpolate,
    invariance_error,
    merge_barrier,
    order_counts,
    permutation_orders,
    permute_network,
    repair,
    reset_bn_stats,
)
from identifiable.torch.structure import hidden_units

__all__ = ["FlipReport", "flip_network", "flip_images", "hidden_units", "MatchResult",
           "match_activations", "permute_network", "permutation_orders", "order_counts",
           "interpolate", "reset_bn_stats", "repair", "accuracy", "invariance_error", "barrier",
           "BarrierResult", "gcnn_barrier", "merge_barrier"]
