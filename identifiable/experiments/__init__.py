"""Reproduced experiments, one module each, registered for ``identifiable experiment NAME``.

Each entry of :data:`EXPERIMENTS` is ``name -> (help, add_arguments(parser), run(args) -> int)``.
Importing this package does not import torch; the ``run`` functions do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Entry = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

EXPERIMENTS: dict[str, Entry] = {}

__all__ = ["EXPERIMENTS", "register"]


def register(name: str, help_text: str, add_arguments, run) -> None:
    EXPERIMENTS[name] = (help_text, add_arguments, run)


# --- Section 6 [SMBK26] (numeric torch backend; the modules import torch only inside run) ---
from identifiable.experiments import attention_heads as _attention_heads  # noqa: E402
from identifiable.experiments import gcnn_barrier as _gcnn_barrier  # noqa: E402
from identifiable.experiments import measure_cmd as _measure_cmd  # noqa: E402
from identifiable.experiments import mirror_mlp as _mirror_mlp  # noqa: E402

register("mirror-mlp", "Section 6.1 / Figure 2 [SMBK26]: train the four MLPs with the "
         "mirror loss of eq. (22) and measure their latent mirror actions",
         _mirror_mlp.add_arguments, _mirror_mlp.run)
register("attention-heads", "Section 6.2 / Figure 3 [SMBK26]: train the attention autoencoder "
         "and detect the head permutation under the mirror",
         _attention_heads.add_arguments, _attention_heads.run)

# --- Section 4.1 [BK23] ---
register("gcnn-barrier", "Section 4.1 / Tables 2 and 4 / Figures 1 and 4 [BK23]: train VGG11s, "
         "GCNNs and PGCNNs (Table 1 recipes) and measure invariance error and GCNN barrier",
         _gcnn_barrier.add_arguments, _gcnn_barrier.run)

#: ``identifiable measure CHECKPOINT``: (help, add_arguments, run)
MEASURE = ("latent actions of a saved or user network (Theorem 4.1 measured, Section 6 "
           "[SMBK26]): any checkpoint the library writes, or --model pkg.mod:factory --weights",
           _measure_cmd.add_arguments, _measure_cmd.run)
