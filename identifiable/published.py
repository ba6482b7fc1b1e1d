"""The papers' published numbers, as data, for the side-by-side tables of the docs' Reproduction
page (:mod:`identifiable.results`). Copied from the papers' texts (``../shared/papers``); every
value is ``(mean, standard deviation)`` over the paper's nets.

* :data:`BK23_TABLE2`: [BK23] Table 2, VGG11s on CIFAR-10 (18-24 good nets per recipe, full width,
  the Table 1 recipes). Its "GCNN Barrier" is measured *with* REPAIR ([BK23] Section 3: "We will
  also report results without REPAIR"; Table 3 labels the REPAIR-free columns "no REPAIR"), so it
  is compared with this library's ``barrier_repair`` columns.
* :data:`BK23_TABLE4`: [BK23] Table 4, the barrier of merging two *different* VGG11s.

[SMBK26] publishes no numbers for its Section 6 experiments (Figures 2 and 3 are qualitative).

Importing this module imports nothing but the standard library.
"""

from __future__ import annotations

__all__ = ["BK23_TABLE2", "BK23_TABLE4", "BK23_SCALE"]

#: how [BK23] trained the nets of Tables 2 and 4 (Section 4.1, Appendix A.1.1)
BK23_SCALE = ("VGG11 at full width (9.23 M parameters), CIFAR-10, 18-24 nets per recipe, "
              "trained on T4 GPUs (1-2 h per net)")

#: [BK23] Table 2: recipe (Table 1 name of :mod:`identifiable.torch.table1`) -> measurement ->
#: (mean, std)
BK23_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "cnn": {"accuracy": (0.901, 2.1e-3), "invariance_error": (0.282, 1.8e-2),
            "barrier_repair": (4.00e-2, 4.9e-3)},
    "cnn-noaug": {"accuracy": (0.879, 1.8e-3), "invariance_error": (0.410, 4.0e-2),
                  "barrier_repair": (4.98e-2, 6.1e-3)},
    "cnn-inv": {"accuracy": (0.892, 2.3e-3), "invariance_error": (0.0628, 6.7e-3),
                "barrier_repair": (1.90e-3, 8.9e-4)},
    "cnn-late-inv": {"accuracy": (0.902, 2.8e-3), "invariance_error": (0.126, 1.6e-2),
                     "barrier_repair": (1.33e-2, 2.8e-3)},
    "gcnn": {"accuracy": (0.899, 2.5e-3), "invariance_error": (1.34e-6, 1.5e-7),
             "barrier_repair": (8.92e-4, 1.6e-3)},
    "pgcnn": {"accuracy": (0.902, 3.7e-3), "invariance_error": (0.274, 2.0e-2),
              "barrier_repair": (3.09e-2, 7.8e-3)},
    "pgcnn-late-inv": {"accuracy": (0.915, 2.3e-3), "invariance_error": (0.124, 1.5e-2),
                       "barrier_repair": (7.56e-3, 1.8e-3)},
}

#: [BK23] Table 4: (recipe of model 1, recipe of model 2) -> barrier (mean, std)
BK23_TABLE4: dict[tuple[str, str], tuple[float, float]] = {
    ("cnn", "cnn"): (5.08e-2, 5.7e-3),
    ("cnn", "cnn-inv"): (4.87e-2, 4.5e-3),
    ("cnn", "gcnn"): (6.50e-2, 8.9e-3),
    ("cnn-inv", "cnn-inv"): (3.73e-2, 4.1e-3),
    ("cnn-inv", "gcnn"): (7.53e-2, 9.6e-3),
    ("gcnn", "gcnn"): (6.59e-2, 7.7e-3),
}
