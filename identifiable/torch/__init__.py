"""Numeric torch backend; the symbolic core never imports it.

Your own network:

* :mod:`~identifiable.torch.bridge`: ``from_torch`` / ``to_torch`` between torch modules and
  the library's MLP (eq. (7)) and attention model (eq. (10)), and the one table of torch
  activations;
* :mod:`~identifiable.torch.latent_measure`: ``measure_latent_actions``, Theorem 4.1's latent
  actions measured on any layer of a trained module for any finite group on its input.

Section 6 and Appendix C [SMBK26]:

* :mod:`~identifiable.torch.data`: CIFAR-10 (python batches, image folders, .tar.gz) and an
  embedded stand-in;
* :mod:`~identifiable.torch.nets`: the depth-4 MLP and the attention autoencoder;
* :mod:`~identifiable.torch.augment`, :mod:`~identifiable.torch.train`,
  :mod:`~identifiable.torch.checkpoint`: training with the mirror loss of eq. (22);
* :mod:`~identifiable.torch.measure`: least-squares and K-constrained latent mirror fits;
* :mod:`~identifiable.torch.plots`: Figures 2 and 3 (and Figures 1 and 4 of [BK23]).

Sections 2.2, 3 and 4 [BK23]:

* :mod:`~identifiable.torch.vgg`: VGG11, the flip-GCNN-VGG11 and the PGCNN (eq. (3) built in);
* :mod:`~identifiable.torch.resnet`: the CIFAR ResNet-20 and its flip-GCNN / PGCNN versions
  (eq. (3) built in, shortcuts included; Section 4.2 / Table 3 at CIFAR size);
* :mod:`~identifiable.torch.table1` / :mod:`~identifiable.torch.recipes`: the training recipes
  of Table 1 with the invariance loss;
* :mod:`~identifiable.torch.structure`: the permutation structure of a plain CNN (which
  channels a hidden layer's permutation moves together, and whether its activation's latent
  group K lets them be negated too: signed permutations for tanh, Section 5.1 [SMBK26]);
* :mod:`~identifiable.torch.graph`: the permutation groups of any CNN from its torch.fx trace
  (residual streams joined over additions, shortcut convolutions; errors name the fx node), and
  :mod:`~identifiable.torch.graph_ops`: matching, permuting, flipping, BatchNorm reset and REPAIR
  on them (the public functions below route every non-Sequential net there);
* :mod:`~identifiable.torch.flip`: flipped networks and the stride check of footnote 2;
* :mod:`~identifiable.torch.match`: activation statistics and K-aware matching (Section 4);
* :mod:`~identifiable.torch.merge`: permuting, merging, BatchNorm reset, REPAIR, the GCNN barrier
  of eq. (4) and the relative invariance error (:mod:`~identifiable.torch.align`, the module
  these four were split from, is kept for old imports);
* :mod:`~identifiable.torch.distributed`: seed sweeps under ``torchrun``.

The public names of these modules are importable from the package itself
(``from identifiable.torch import match_activations, permute_network, least_squares``), each the
same object as in its module. They are loaded on first use (PEP 562), so
``import identifiable.torch`` imports neither torch nor any submodule. Not re-exported: the
functions :func:`identifiable.torch.train.train` and :func:`identifiable.torch.augment.augment`
(their names are those of their submodules) and :mod:`~identifiable.torch.distributed` (its
``barrier`` is a process barrier, not eq. (4)'s :func:`~identifiable.torch.merge.barrier`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: submodule -> the names the package re-exports from it (each name from exactly one module)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "structure": ("Step", "analyse", "hidden_units", "hidden_layers", "matching_point",
                  "repair_point", "GROUPS", "odd_activation",
                  "sign_blocker", "channel_group"),
    "bridge": ("from_torch", "to_torch", "activation_name", "activation_from_torch",
               "activation_to_torch", "Eq10Attention", "Power"),
    "latent_measure": ("LatentActionRecord", "measure_latent_actions", "image_group",
                       "cyclic_shift", "coordinate_permutation", "channel_permutation",
                       "IMAGE_GROUPS", "layer_activation_name"),
    "graph": ("PermGroup", "GraphStructure", "analyse_graph"),
    "graph_ops": ("GraphMatchResult", "match_graph", "permute_graph", "flip_graph",
                  "repair_graph", "reset_bn_graph"),
    "resnet": ("resnet20", "gcnn_resnet20", "pgcnn_resnet20", "ResNet", "BasicBlock",
               "resnet_widths", "RESNET20_WIDTHS", "FLIP_EXACT_SIZE"),
    "flip": ("FlipReport", "flip_network", "flip_images"),
    "match": ("MatchResult", "match_activations"),
    "merge": ("permute_network", "permutation_orders", "order_counts", "interpolate",
              "reset_bn_stats", "repair", "accuracy", "invariance_error", "barrier",
              "BarrierResult", "gcnn_barrier", "merge_barrier"),
    "measure": ("CrossStats", "LatentFit", "least_squares", "relative_errors",
                "equivariance_report", "noise_probe", "crop_probe", "monomial_parts", "PROBES"),
    "train": ("TrainConfig", "TrainResult", "build_model", "equivariance_weight",
              "combined_loss", "CHECKPOINT_NAME"),
    "table1": ("Recipe", "RECIPES", "recipe_names"),
    "recipes": ("ClassifierConfig", "TrainedClassifier", "train_recipe", "load_classifier",
                "normalise", "random_crop_flip", "invariance_loss", "lr_at",
                "evaluate_accuracy", "checkpoint_path"),
    "vgg": ("VGG11_CONFIG", "vgg11", "gcnn_vgg11", "pgcnn_vgg11", "build_classifier",
            "ARCHITECTURES", "NETWORKS", "FlipLiftingConv2d", "FlipGroupConv2d", "FlipBatchNorm2d",
            "OrbitMeanLinear", "to_plain", "n_parameters", "swap_permutation",
            "channel_widths"),
    "nets": ("MirrorMLP", "AttentionAutoencoder", "build_net", "ACTIVATIONS", "TASKS",
             "INTERTWINER_KIND", "intertwiner_kind"),
    "data": ("ImageData", "RestrictedUnpickler", "restricted_load", "load_images",
             "load_python_batches", "load_image_folder", "load_tarball", "embedded_patches",
             "fingerprint", "cache_dir", "CacheWarning", "CIFAR10_CLASSES", "MAX_IMAGE_SIDE"),
    "checkpoint": ("FORMAT", "save_checkpoint", "load_checkpoint", "load_net", "build_checked",
                   "differences", "require_same_run", "data_identity"),
    "augment": ("resize", "mirror_lr", "mirror_ud", "MIRRORS"),
    "plots": ("filter_categories", "figure2", "figure3", "figure1_filter_pairs",
              "figure4_orders", "CATEGORY_COLOURS"),
}

_OWNER: dict[str, str] = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_OWNER)


def __getattr__(name: str) -> Any:
    """Load a re-exported name from the submodule that owns it (once; then cached here)."""
    mod = _OWNER.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
