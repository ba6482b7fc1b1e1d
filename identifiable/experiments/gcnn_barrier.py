"""``identifiable experiment gcnn-barrier``: Sections 4.1 and 4.2, Tables 2, 3 and 4, Figures 1
and 4 [BK23].

For every requested recipe of Table 1 and seed: train the VGG11 / GCNN / PGCNN
(``--arch vgg11``, the default) or the CIFAR ResNet-20 / GCNN / PGCNN ResNet-20
(``--arch resnet20``, :mod:`identifiable.torch.resnet`)
(:func:`identifiable.torch.recipes.train_recipe`; a finished checkpoint in ``OUT/nets`` is
reused, and so are its measurements, ``OUT/measurements``, while its bytes, the settings and
the measuring code are unchanged: :mod:`identifiable.experiments.cache`), export it to plain
modules (:func:`identifiable.torch.vgg.to_plain`) and
measure with :mod:`identifiable.torch.merge` (flipping: :mod:`identifiable.torch.flip`, matching:
:mod:`identifiable.torch.match`; a ResNet's permutation groups, one per residual stream and one
per block's inner layer, come from its torch.fx trace, :mod:`identifiable.torch.graph`):

* the test accuracy;
* the relative invariance error of Section 4, averaged over ``--n-inv`` training images;
* the GCNN barrier (eq. (4) on test accuracy) between the net and its flipped copy aligned by
  activation matching over ``--n-match`` training images, after a BatchNorm-statistics reset
  (``barrier``) and with REPAIR (``barrier_repair``), with the absolute barriers, the accuracy of
  the flipped net and the permutation-order counts per layer (Figure 4).

REPAIR is measured in both endpoint conventions (:func:`identifiable.torch.merge.repair`'s
``endpoints``): ``train``, the REPAIR authors' code (the endpoints' BatchNorms normalise each
batch with its own statistics) and ``eval`` (their running statistics). ``--repair-endpoints``
picks the one reported as ``barrier_repair`` (default ``train``); the rows of ``results.json``
and of the results record carry both (``barrier_repair_train``, ``barrier_repair_eval``) and the
tables print both.

Then, for the Table 4 baseline, the same interpolation barrier between two *different* trained
nets (``--merge``): ``paper`` (the default) merges every pair of seeds of one recipe and, per
seed, the recipe pairs of the paper's Table 4 (among cnn, cnn-inv and gcnn); ``all`` every pair
of recipes per seed; ``same`` only nets of one recipe.

ResNets: the images are resized to ``--image-size`` (default 33 for ``resnet20``: odd widths at
both stride-2 stages make the flip exact, as the paper's 225 instead of 224, Appendix A.2.1;
``--image-size 32`` keeps CIFAR's size and the footnote-2 defect, reported per layer in
``flip_issues``); a Table 3-style table (invariance error, accuracy, flip-accuracy, halfway
accuracies and GCNN barriers without / with REPAIR) is printed too, and the Figure 4 orders are
also given per residual stream (``stream_orders``). Checkpoints record the architecture family
(``OUT/nets/resnet20-RECIPE-sSEED.pt``; its config holds ``net``), so nets are never reused
across families.

Prints a Table 2-style table (mean +- sample std over seeds) and the Table 4 table, writes
``OUT/results.json`` (everything), ``OUT/table.txt``, ``OUT/figure4.png`` (order histogram) and
``OUT/figure1-RECIPE.png`` (first-layer filters of seed 0 next to their matched flipped
filters); ``--json FILE`` writes one row per trained net with the keys
``recipe, seed, accuracy, invariance_error, barrier, barrier_repair`` (``barrier_repair`` in the
``--repair-endpoints`` convention).

Under ``torchrun --nproc_per_node N`` the (recipe, seed) jobs and then the merge jobs are split
between the processes (:mod:`identifiable.torch.distributed`; gloo on CPU, nccl on CUDA), and
rank 0 writes the report. Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from identifiable.experiments import arguments as A
from identifiable.experiments.progress import log
from identifiable.results import mean_std

__all__ = ["add_arguments", "run", "QUICK", "QUICK_RESNET", "format_table2", "format_table3",
           "format_table4", "summarise", "stream_orders"]

DEFAULT_RECIPES = ("cnn", "cnn-inv", "gcnn")
#: the recipes whose cross pairs [BK23] Table 4 reports (``--merge paper``)
TABLE4_RECIPES = ("cnn", "cnn-inv", "gcnn")
#: ``--merge`` choices
MERGE_MODES = ("none", "same", "paper", "all")
#: REPAIR's endpoint conventions, the default first (the names of
#: :data:`identifiable.torch.structure.REPAIR_ENDPOINTS`, which this module cannot import
#: without importing torch)
REPAIR_CONVENTIONS = ("train", "eval")
#: seeds of the training-image subsets for matching / BN reset / REPAIR and for the invariance
#: error (part of the measurement cache's key)
MATCH_SUBSET_SEED, INV_SUBSET_SEED = 1, 2

#: ``--quick``: the embedded stand-in data, tiny nets, two epochs, two seeds, every recipe,
#: Table 4 only within recipes; batch 64, so that the BatchNorm running statistics (momentum
#: 0.1) have settled by the end of the 64 steps
QUICK = {"width": 0.0625, "epochs": 2, "seeds": 2, "n_match": 512, "n_inv": 512,
         "n_train": 2048, "n_test": 1024, "recipes": None, "merge": "same", "batch_size": 64}
#: ``--quick`` changes for ``--arch resnet20`` (under a minute on a CPU): 4 / 8 / 16 channels,
#: one seed, fewer images, the default recipes (CNN, CNN + inv-loss, GCNN) only
QUICK_RESNET = {"width": 0.25, "seeds": 1, "n_train": 512, "n_test": 256, "n_match": 256,
                "n_inv": 256, "batch_size": 32}
#: the architecture families (:data:`identifiable.torch.vgg.NETWORKS`)
ARCHS = ("vgg11", "resnet20")
#: default image size per family (None: the data's own); 33 for the ResNets: [BK23] A.2.1
IMAGE_SIZE = {"vgg11": None, "resnet20": 33}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from identifiable.torch.table1 import recipe_names

    p.add_argument("--recipe", nargs="+", default=None, metavar="NAME",
                   help=f"recipes of Table 1 [BK23] among {', '.join(recipe_names())} "
                        f"(default: {' '.join(DEFAULT_RECIPES)}; every recipe with --quick)")
    p.add_argument("--arch", choices=ARCHS, default="vgg11",
                   help="network family: vgg11 (Table 2 [BK23], the default) or resnet20 (CIFAR "
                        "ResNet-20 and its flip-GCNNs; Table 3-style rows)")
    p.add_argument("--width", type=A.positive_float, default=None,
                   help="width multiplier (VGG11: 1.0 = 9.23 M parameters; ResNet-20: 1.0 = "
                        "16/32/64 channels, 0.27 M; default 1.0)")
    p.add_argument("--image-size", type=A.positive_int, default=None, metavar="PX",
                   help="resize the images to PX x PX (default: vgg11 as stored, resnet20 33, "
                        "so that the stride-2 layers see odd widths, [BK23] Appendix A.2.1)")
    p.add_argument("--epochs", type=A.positive_int, default=None,
                   help="training epochs (default 30)")
    p.add_argument("--seeds", type=A.positive_int, default=None,
                   help="seeds per recipe (default 3)")
    p.add_argument("--first-seed", type=A.nonnegative_int, default=0,
                   help="seeds are FIRST .. FIRST+N-1")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="CIFAR-10 (.tar.gz / image folders / cifar-10-batches-py); default: the "
                        "embedded stand-in (photograph crops, not CIFAR-10)")
    p.add_argument("--out", type=A.out_dir, default="runs/gcnn-barrier", metavar="DIR",
                   help="output folder; trained nets are kept in DIR/nets and reused")
    p.add_argument("--json", type=A.json_path, metavar="FILE",
                   help="write one row per trained net as JSON")
    p.add_argument("--fresh", action="store_true",
                   help="start over: retrain and overwrite the nets in DIR/nets (by default a "
                        "finished net of the same run is reused and an interrupted one resumed)")
    A.add_results_arguments(p, "per-net rows, merges", "arch, data, width, epochs and seeds")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run on the embedded data (about a minute on a CPU; with "
                        "--arch resnet20: the default recipes, one seed)")
    p.add_argument("--device", type=A.device, default="cpu",
                   help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=A.positive_int, default=None,
                   help="torch CPU threads per process")
    p.add_argument("--batch-size", type=A.positive_int, default=None,
                   help="training batch size (default 256)")
    p.add_argument("--lr", type=A.positive_float, default=0.05,
                   help="peak learning rate (triangular)")
    p.add_argument("--inv-weight", type=A.nonnegative_float, default=1.0,
                   help="weight of the inv-loss")
    p.add_argument("--n-match", type=A.positive_int, default=None,
                   help="training images for activation matching, BN reset and REPAIR "
                        "(default 5000)")
    p.add_argument("--n-inv", type=A.positive_int, default=None,
                   help="training images for the invariance error (default 5000)")
    p.add_argument("--merge", choices=MERGE_MODES, default=None,
                   help="Table 4: merge different nets of one recipe (same), and per seed the "
                        "recipe pairs of [BK23] Table 4 among cnn, cnn-inv, gcnn (paper, the "
                        "default; 'same' with --quick) or every pair of recipes (all)")
    p.add_argument("--repair-endpoints", choices=REPAIR_CONVENTIONS,
                   default=REPAIR_CONVENTIONS[0],
                   help="REPAIR endpoint statistics reported as barrier_repair: BatchNorms "
                        "with batch statistics as the REPAIR authors' code (train, the "
                        "default) or with running statistics (eval); both are measured and "
                        "tabulated")



def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from identifiable.torch.table1 import recipe_names

    s: dict[str, Any] = {"width": 1.0, "epochs": 30, "seeds": 3, "n_match": 5000,
                         "n_inv": 5000, "n_train": None, "n_test": None,
                         "recipes": list(DEFAULT_RECIPES), "merge": "paper", "batch_size": 256}
    if args.quick:
        s.update(QUICK)
        s["recipes"] = list(recipe_names())
        if getattr(args, "arch", "vgg11") == "resnet20":
            s.update(QUICK_RESNET)
            s["recipes"] = list(DEFAULT_RECIPES)
    for key, name in (("width", "width"), ("epochs", "epochs"), ("seeds", "seeds"),
                      ("n_match", "n_match"), ("n_inv", "n_inv"), ("recipes", "recipe"),
                      ("merge", "merge"), ("batch_size", "batch_size")):
        if getattr(args, name) is not None:
            s[key] = getattr(args, name)
    unknown = [r for r in s["recipes"] if r not in recipe_names()]
    if unknown:
        raise ValueError(f"--recipe: unknown {unknown}; expected among {list(recipe_names())}")
    s["recipes"] = list(dict.fromkeys(s["recipes"]))
    s["arch"] = getattr(args, "arch", "vgg11")
    s["repair_endpoints"] = getattr(args, "repair_endpoints", REPAIR_CONVENTIONS[0])
    size = getattr(args, "image_size", None)
    s["image_size"] = IMAGE_SIZE[s["arch"]] if size is None else size
    if s["seeds"] < 1:
        raise ValueError(f"--seeds: expected >= 1, got {s['seeds']}")
    return s


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std over seeds (:func:`identifiable.results.mean_std`)."""
    m, sd, _ = mean_std(values)
    return m, sd


def _pm(values: list[float]) -> str:
    m, sd = _mean_std(values)
    return f"{m:.3g} +- {sd:.2g}"


def summarise(rows: list[dict[str, Any]], key: str = "recipe") -> dict[str, dict[str, Any]]:
    """Per recipe: mean and std over seeds of every numeric measurement."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r[key] for r in rows):
        rs = [r for r in rows if r[key] == name]
        out[name] = {"n": len(rs)}
        for k in ("accuracy", "flip_accuracy", "invariance_error", "barrier", "barrier_abs",
                  "barrier_repair", "barrier_repair_abs", "barrier_repair_train",
                  "barrier_repair_eval"):
            if all(k in r for r in rs):
                out[name][k] = _mean_std([r[k] for r in rs])
    return out


def _repair_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, header) of the REPAIR barrier columns: one per endpoint convention the rows carry
    (``barrier_repair_train`` / ``_eval``), else the one ``barrier_repair``."""
    both = [(f"barrier_repair_{c}", f"REPAIR ({c} endpoints)") for c in REPAIR_CONVENTIONS]
    if rows and all(k in r for r in rows for k, _ in both):
        return both
    return [("barrier_repair", "REPAIR")]


def format_table2(rows: list[dict[str, Any]]) -> str:
    """Table 2 [BK23]: accuracy, invariance error, GCNN barrier (BN reset / REPAIR, in each
    endpoint convention the rows carry)."""
    reps = _repair_columns(rows)
    head = (f"{'recipe':<16}| {'n':>2} | {'accuracy':<18}| {'invariance error':<20}| "
            f"{'GCNN barrier':<20}| " + "| ".join(f"{h:<22}" for _, h in reps))
    lines = [head, "-" * len(head)]
    for name in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == name]
        lines.append(f"{name:<16}| {len(rs):>2} | {_pm([r['accuracy'] for r in rs]):<18}| "
                     f"{_pm([r['invariance_error'] for r in rs]):<20}| "
                     f"{_pm([r['barrier'] for r in rs]):<20}| "
                     + "| ".join(f"{_pm([r[k] for r in rs]):<22}" for k, _ in reps))
    return "\n".join(lines)


def format_table3(rows: list[dict[str, Any]]) -> str:
    """Table 3 [BK23] style (means over seeds): invariance error, accuracy, flip-accuracy,
    halfway accuracy without / with REPAIR, GCNN barrier without / with REPAIR."""
    keys = (("invariance_error", "inv. error"), ("accuracy", "accuracy"),
            ("flip_accuracy", "flip-acc."), ("halfway_accuracy", "halfway, no REP."),
            ("halfway_accuracy_repair", "halfway"), ("barrier", "barrier, no REP."),
            ("barrier_repair", "GCNN barrier"))
    head = f"{'recipe':<16}| {'n':>2} | " + " | ".join(f"{h:>16}" for _, h in keys)
    lines = [head, "-" * len(head)]
    for name in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == name]
        cells = [f"{_mean_std([r[k] for r in rs])[0]:>16.4g}" for k, _ in keys]
        lines.append(f"{name:<16}| {len(rs):>2} | " + " | ".join(cells))
    return "\n".join(lines)


def stream_orders(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The Figure 4 [BK23] order counts of a ResNet row's residual streams, with their labels."""
    return [{"stream": lab, **o} for lab, o in zip(detail.get("group_labels", []),
                                                    detail["orders"])
            if lab.startswith("stream[")]


def format_table4(merges: list[dict[str, Any]]) -> str:
    """Table 4 [BK23]: barrier of merging two different nets (mean +- std over pairs; REPAIR
    in each endpoint convention the merges carry)."""
    reps = _repair_columns(merges)
    head = (f"{'model 1':<16}| {'model 2':<16}| {'n':>2} | {'barrier':<20}| "
            + "| ".join(f"{h:<22}" for _, h in reps))
    lines = [head, "-" * len(head)]
    for a, b in dict.fromkeys((m["recipe_a"], m["recipe_b"]) for m in merges):
        ms = [m for m in merges if (m["recipe_a"], m["recipe_b"]) == (a, b)]
        lines.append(f"{a:<16}| {b:<16}| {len(ms):>2} | {_pm([m['barrier'] for m in ms]):<20}| "
                     + "| ".join(f"{_pm([m[k] for m in ms]):<22}" for k, _ in reps))
    return "\n".join(lines)


def _short_labels(labels: list[str]) -> list[str]:
    """Figure 4 tick labels of a ResNet's groups: ``S1, S2, ...`` for the residual streams, the
    producer's block (``1.0``) for a block's inner layer."""
    out, k = [], 0
    for lab in labels:
        if lab.startswith("stream["):
            k += 1
            out.append(f"S{k}")
        else:
            out.append(lab.replace("layer", "").replace(".conv1", "").replace(".conv2", ""))
    return out


def merge_jobs(recipes: list[str], seeds: list[int], mode: str) -> list[tuple]:
    """Pairs of different nets for Table 4: ((recipe, seed), (recipe, seed)); ``mode`` one of
    :data:`MERGE_MODES` (``paper``: the cross pairs only among :data:`TABLE4_RECIPES`)."""
    if mode not in MERGE_MODES:
        raise ValueError(f"--merge: expected one of {', '.join(MERGE_MODES)}, got {mode!r}")
    if mode == "none":
        return []
    jobs = [((r, s), (r, t)) for r in recipes for s, t in itertools.combinations(seeds, 2)]
    if mode in ("all", "paper"):
        cross = recipes if mode == "all" else [r for r in recipes if r in TABLE4_RECIPES]
        jobs += [((r1, s), (r2, s)) for r1, r2 in itertools.combinations(cross, 2)
                 for s in seeds]
    return jobs


#: the per-convention REPAIR columns kept in the results record's rows
RECORD_EXTRA = ("barrier_repair_train", "barrier_repair_eval")


def _by_convention(b: Any) -> dict[str, float]:
    """``barrier_repair_{train,eval}``, ``barrier_repair_abs_*`` and
    ``halfway_accuracy_repair_*`` of a :class:`~identifiable.torch.merge.BarrierResult`, and
    the convention of its ``barrier_repair``."""
    out: dict[str, Any] = {"repair_endpoints": b.repair_endpoints}
    for conv, r in b.repairs.items():
        out[f"barrier_repair_{conv}"] = r["barrier_repair"]
        out[f"barrier_repair_abs_{conv}"] = r["barrier_repair_abs"]
        out[f"halfway_accuracy_repair_{conv}"] = r["accuracy_mid_repair"]
    return out


def _repair_text(m: dict[str, Any]) -> str:
    """``train 0.12, eval 0.11``: the REPAIR barrier of a measured row in each convention."""
    return ", ".join(f"{conv} {m[f'barrier_repair_{conv}']:.3g}" for conv in REPAIR_CONVENTIONS
                     if f"barrier_repair_{conv}" in m)


#: the modules whose source decides a cached measurement (:func:`_code`): the whole library.
#: This module imports, directly or through the packages' ``__init__`` files, nearly every
#: module of the library (core ones among them: the activations behind the matcher's groups,
#: the results' statistics), so hashing only the numeric backend (as before) missed code that
#: runs, and a finer set would save little.
MEASURING_CODE = ("identifiable",)


def _code() -> str:
    """Fingerprint of the measuring code (:data:`MEASURING_CODE`): a change to any module of
    the library invalidates the measurement cache."""
    from identifiable.experiments.cache import code_fingerprint

    return code_fingerprint(*MEASURING_CODE)


def _numeric_versions() -> dict[str, str]:
    """Versions of the numeric libraries a measurement runs on (part of the cache key: another
    torch may round differently)."""
    import numpy
    import scipy
    import torch

    return {"torch": torch.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def _measure_net(plain, res, recipe: str, seed: int, s: dict[str, Any], inv_x, match_x,
                 test_x, test_y, conventions: list[str], train) -> dict[str, Any]:
    """Table 2 [BK23] for one trained net: accuracy, invariance error (Section 4), GCNN
    barrier with BN reset and REPAIR in every convention, Figure 4 orders; ``perm0`` is the
    first layer's matching (Figure 1)."""
    from identifiable.torch.merge import gcnn_barrier, invariance_error
    from identifiable.torch.recipes import RECIPES
    from identifiable.torch.vgg import n_parameters

    inv = invariance_error(plain, inv_x)
    b = gcnn_barrier(plain, match_x, test_x, test_y, repair_endpoints=conventions)
    detail = {"recipe": recipe, "seed": seed, "accuracy": b.accuracy_a,
              "invariance_error": inv, "barrier": b.barrier,
              "barrier_repair": b.barrier_repair, **_by_convention(b),
              "flip_accuracy": b.accuracy_b, "halfway_accuracy": b.accuracy_mid,
              "halfway_accuracy_repair": b.accuracy_mid_repair,
              "barrier_abs": b.barrier_abs, "barrier_repair_abs": b.barrier_repair_abs,
              "orders": b.orders, "flip_exact": b.flip_report.exact,
              "flip_issues": list(b.flip_report.issues), "n_match": b.n_match,
              "n_inv": int(inv_x.shape[0]), "parameters": n_parameters(res.net),
              "arch": RECIPES[recipe].arch, "net": s["arch"],
              "image_size": int(train.images.shape[1]), "group_labels": list(b.labels),
              "width": s["width"], "epochs": s["epochs"],
              "train_seconds": res.train_seconds,
              "trained_at": list(res.commits),
              "description": RECIPES[recipe].description,
              "perm0": b.perms[0].tolist()}
    if b.labels:
        detail["stream_orders"] = stream_orders(detail)
    return detail


def _net_line(detail: dict[str, Any]) -> str:
    """The log line of one measured net."""
    streams = ""
    if detail.get("stream_orders"):
        streams = ", streams " + "; ".join(
            f"{o['1']}/{o['2']}/{o['>2']}" for o in detail["stream_orders"]) + " (order 1/2/>2)"
    return (f"accuracy {detail['accuracy']:.4f}, flipped {detail['flip_accuracy']:.4f}, "
            f"invariance error {detail['invariance_error']:.3g}, GCNN barrier "
            f"{detail['barrier']:.3g} (REPAIR {_repair_text(detail)}), orders "
            f"{[o['>2'] for o in detail['orders']]} (>2){streams}")


def _merge_pair(path_a, path_b, a: tuple[str, int], b: tuple[str, int], match_x, test_x,
                test_y, conventions: list[str], device) -> dict[str, Any]:
    """Table 4 [BK23]: the interpolation barrier of two different trained nets."""
    from identifiable.torch.merge import merge_barrier
    from identifiable.torch.recipes import load_classifier
    from identifiable.torch.vgg import to_plain

    net_a, _ = load_classifier(path_a, device)
    net_b, _ = load_classifier(path_b, device)
    m = merge_barrier(to_plain(net_a), to_plain(net_b), match_x, test_x, test_y,
                      repair_endpoints=conventions)
    return {"recipe_a": a[0], "seed_a": a[1], "recipe_b": b[0], "seed_b": b[1],
            "accuracy_a": m.accuracy_a, "accuracy_b": m.accuracy_b,
            "halfway_accuracy": m.accuracy_mid,
            "halfway_accuracy_repair": m.accuracy_mid_repair,
            "barrier": m.barrier, "barrier_abs": m.barrier_abs,
            "barrier_repair": m.barrier_repair,
            "barrier_repair_abs": m.barrier_repair_abs, **_by_convention(m)}


def _load_data(args: argparse.Namespace, s: dict[str, Any]):
    from identifiable.torch.data import embedded_patches, load_images

    if args.data is None or args.data == "embedded":
        train, test = (embedded_patches(s["n_train"], "train", seed=0),
                       embedded_patches(s["n_test"], "test", seed=0))
    else:
        train = load_images(args.data, "train")
        test = load_images(args.data, "test", classes=train.classes)
    size = s.get("image_size")
    return _resized(train, size), _resized(test, size)


def _resized(data, size: int | None):
    """``data`` with its images resized to ``size x size`` (bilinear, antialiased, rounded to
    uint8; in chunks, no loop over images); its fingerprint records the size, so a net trained
    on one size is never reused for another."""
    import dataclasses

    import numpy as np
    import torch

    from identifiable.torch.augment import resize

    if size is None or data.images.shape[1:3] == (size, size):
        return data
    out = np.empty((len(data), size, size, 3), dtype=np.uint8)
    for i in range(0, len(data), 4096):
        x = torch.from_numpy(np.ascontiguousarray(data.images[i:i + 4096].transpose(0, 3, 1, 2)))
        y = (resize(x, size) * 255.0).round_().to(torch.uint8)
        out[i:i + 4096] = y.permute(0, 2, 3, 1).numpy()
    fp = data.fingerprint or data.source or "embedded"
    return dataclasses.replace(data, images=out, fingerprint=f"{fp}|resized:{size}")


def _subset(n_total: int, n: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:min(n, n_total)]


def run(args: argparse.Namespace) -> int:
    import torch

    from identifiable.io import RunLock
    from identifiable.torch import distributed as dist

    s = _settings(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {args.device!r} requested but CUDA is not available")
    d = dist.init(args.device, args.threads)
    lock = RunLock(args.out, "gcnn-barrier run")
    dist.on_main(d, lambda: lock.acquire() and None)   # every rank stops if rank 0 cannot lock
    try:
        return _run(args, s, d)
    finally:
        lock.release()


def _run(args: argparse.Namespace, s: dict[str, Any], d) -> int:
    import torch

    from identifiable.experiments.cache import MeasurementCache
    from identifiable.torch import distributed as dist
    from identifiable.torch.checkpoint import data_identity
    from identifiable.torch.recipes import (
        ClassifierConfig,
        checkpoint_path,
        normalise,
        train_recipe,
    )
    from identifiable.torch.vgg import to_plain

    device = dist.device_for(d, args.device)
    say = log if d.is_main else (lambda msg: log(f"[rank {d.rank}] {msg}"))
    t0 = time.perf_counter()
    commit = A.started_commit(args) if d.is_main else None
    out = Path(args.out)
    train, test = _load_data(args, s)
    seeds = list(range(args.first_seed, args.first_seed + s["seeds"]))
    if d.is_main:
        log(f"data: {train.source or 'embedded'} ({len(train)} train, {len(test)} test, "
            f"{train.images.shape[1]} x {train.images.shape[2]}); {s['arch']}, "
            f"recipes {s['recipes']}, width {s['width']}, {s['epochs']} epochs, seeds {seeds}"
            + (f"; {d.world} processes" if d.active else ""))
    stats = train.channel_stats()
    test_x = normalise(test.tensor(device), *stats)
    test_y = torch.from_numpy(test.labels).to(device)
    images = train.tensor(device)
    match_x = normalise(images[_subset(len(train), s["n_match"], MATCH_SUBSET_SEED)
                               .to(device)], *stats)
    inv_x = normalise(images[_subset(len(train), s["n_inv"], INV_SUBSET_SEED).to(device)],
                      *stats)

    def config(recipe: str, seed: int) -> ClassifierConfig:
        return ClassifierConfig(recipe=recipe, width=s["width"], epochs=s["epochs"],
                                batch_size=s["batch_size"], lr=args.lr,
                                inv_weight=args.inv_weight, seed=seed, net=s["arch"])

    def tag(recipe: str, seed: int) -> str:
        return f"{recipe}-s{seed}" if s["arch"] == "vgg11" else f"{s['arch']}-{recipe}-s{seed}"

    # REPAIR in both endpoint conventions, the chosen one first (it fills barrier_repair)
    conventions = [s["repair_endpoints"]] + [c for c in REPAIR_CONVENTIONS
                                             if c != s["repair_endpoints"]]

    # measurements of finished nets are cached in OUT/measurements (experiments.cache): a
    # resumed sweep re-measures only what changed (checkpoint bytes, settings or code)
    cache = MeasurementCache(out / "measurements", _code(), enabled=not args.fresh)
    measure_settings = {"train": data_identity(train), "test": data_identity(test),
                        "n_match": int(match_x.shape[0]), "n_inv": int(inv_x.shape[0]),
                        "subset_seeds": [MATCH_SUBSET_SEED, INV_SUBSET_SEED],
                        "repair_endpoints": conventions,
                        "device": str(device).split(":")[0],
                        "versions": _numeric_versions()}

    # ---- Table 2: train (or reuse) and measure each net; jobs split between processes
    rows_local, first_layers = [], {}
    for recipe, seed in dist.shard(d, [(r, sd) for sd in seeds for r in s["recipes"]]):
        t1 = time.perf_counter()
        res = train_recipe(config(recipe, seed), train, None, out, device=device, log=say,
                           fresh=args.fresh)
        plain = to_plain(res.net)
        measure = functools.partial(_measure_net, plain, res, recipe, seed, s, inv_x, match_x,
                                    test_x, test_y, conventions, train)
        detail, cached = cache.measure(f"net-{tag(recipe, seed)}", [res.path],
                                       {**measure_settings, "kind": "net"}, measure)
        perm0 = detail.pop("perm0")
        rows_local.append(detail)
        if seed == seeds[0]:
            first = next(m for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
            first_layers[recipe] = (first.weight.detach().cpu().numpy(), perm0)
        say(f"[{tag(recipe, seed)}] {_net_line(detail)} "
            f"[{time.perf_counter() - t1:.0f} s{', cached' if cached else ''}]")
    details = dist.gather(d, rows_local)
    figs = dist.gather(d, list(first_layers.items()))
    dist.barrier(d)   # every net is trained and saved before the merges read them

    # ---- Table 4: merge two different nets
    merges_local = []
    for (ra, sa), (rb, sb) in dist.shard(d, merge_jobs(s["recipes"], seeds, s["merge"])):
        pa, pb = (checkpoint_path(out, ra, sa, s["arch"]), checkpoint_path(out, rb, sb, s["arch"]))
        merge = functools.partial(_merge_pair, pa, pb, (ra, sa), (rb, sb), match_x, test_x,
                                  test_y, conventions, device)
        m, cached = cache.measure(f"merge-{tag(ra, sa)}+{tag(rb, sb)}", [pa, pb],
                                  {**measure_settings, "kind": "merge"}, merge)
        merges_local.append(m)
        say(f"[merge {tag(ra, sa)} + {tag(rb, sb)}] barrier {m['barrier']:.3g} "
            f"(REPAIR {_repair_text(m)}){' [cached]' if cached else ''}")
    merges = dist.gather(d, merges_local)
    if cache.hits:
        say(f"measurement cache: {cache.hits} reused, {cache.misses} measured "
            f"({out / 'measurements'})")

    if d.is_main:
        _write_report(args, s, out, seeds, train, details, merges, figs, d.world, t0,
                      commit)
    dist.finish(d)
    return 0


def _trained_at(details: list[dict[str, Any]]) -> list[str]:
    """Every commit that trained a net of the run (each checkpoint's ``commits``), sorted."""
    return sorted({c for r in details for c in (r.get("trained_at") or [])})


def _train_hours(details: list[dict[str, Any]]) -> float | None:
    """Training time of every net of the run, summed (:func:`identifiable.results.train_hours`)."""
    from identifiable.results import train_hours

    return train_hours([r.get("train_seconds") for r in details])


def _write_report(args: argparse.Namespace, s: dict[str, Any], out: Path, seeds: list[int],
                  train, details: list[dict[str, Any]], merges: list[dict[str, Any]],
                  figs: list, processes: int, t0: float, commit: str | None) -> None:
    """Rank 0: the tables (printed and ``OUT/table.txt``), Figures 1 and 4, ``OUT/results.json``,
    ``--json`` rows and the results record (``--results``; ``commit``: the checkout's when the
    run started)."""
    from identifiable.io import write_bytes_atomic, write_json_atomic
    from identifiable.torch.plots import figure1_filter_pairs, figure4_orders

    order = {(r, sd): i for i, (r, sd) in
             enumerate((r, sd) for r in s["recipes"] for sd in seeds)}
    details.sort(key=lambda r: order[(r["recipe"], r["seed"])])
    rows = [{k: r[k] for k in ("recipe", "seed", "accuracy", "invariance_error", "barrier",
                               "barrier_repair")} for r in details]
    text = ("Table 2 [BK23] style: mean +- std over seeds; GCNN barrier = eq. (4) on test "
            "accuracy, net vs. its aligned flipped copy (BN reset / REPAIR with the "
            "endpoints' BatchNorms in train mode, the REPAIR authors' convention, and in "
            f"eval mode; barrier_repair = {s['repair_endpoints']})\n"
            + format_table2(details))
    if s["arch"] != "vgg11":
        size = details[0]["image_size"] if details else s["image_size"]
        text = (f"{s['arch']} on {size} x {size} images\n" + text +
                "\n\nTable 3 [BK23] style (means over seeds)\n" + format_table3(details))
    if merges:
        text += ("\n\nTable 4 [BK23] style: barrier of merging two different nets\n"
                 + format_table4(merges))
    print(text)
    orders = {}
    for recipe in s["recipes"]:
        per_seed = [r["orders"] for r in details if r["recipe"] == recipe]
        orders[recipe] = [{k: sum(o[j][k] for o in per_seed) / len(per_seed)
                           for k in ("1", "2", ">2")} for j in range(len(per_seed[0]))]
    names = None
    if details and details[0].get("group_labels"):
        names = _short_labels(details[0]["group_labels"])
    figure4_orders(orders, out / "figure4.png",
                   title=f"{s['arch']}: channels by permutation order (mean over "
                         f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}), width "
                         f"{s['width']}, {s['epochs']} epochs", layer_names=names)
    for recipe, (w, perm) in figs:
        figure1_filter_pairs(w, perm, out / f"figure1-{recipe}.png",
                             title=f"{recipe} seed {seeds[0]}: first-layer filters | "
                                   f"matched filters of the flipped net")
    report = {"settings": {**s, "data": train.source or "embedded", "seeds": seeds,
                           "lr": args.lr,
                           "inv_weight": args.inv_weight, "processes": processes},
              "nets": details, "merges": merges, "summary": summarise(details),
              "orders": orders, "group_names": names}
    write_json_atomic(out / "results.json", report)
    write_bytes_atomic(out / "table.txt", (text + "\n").encode())
    if args.json:
        write_json_atomic(args.json, rows)
    if args.results:
        from identifiable.results import write_record

        data = "embedded" if train.source in (None, "", "embedded") else "cifar10"
        tag = args.tag or (f"{s['arch']}-{data}-w{s['width']:g}-e{s['epochs']}-"
                           f"{len(seeds)}seeds{'-quick' if args.quick else ''}")
        record_rows = [{"arch": s["arch"], "width": s["width"], "epochs": s["epochs"],
                        **r, **{k: dr[k] for k in RECORD_EXTRA if k in dr}}
                       for r, dr in zip(rows, details)]
        merge_rows = [{"arch": s["arch"], "recipe": f"{m['recipe_a']} + {m['recipe_b']}",
                       "seed": f"{m['seed_a']} + {m['seed_b']}",
                       **{k: m[k] for k in ("barrier", "barrier_repair", *RECORD_EXTRA)
                          if k in m}}
                      for m in merges]
        path = write_record(args.results, "gcnn-barrier", tag,
                            {**report["settings"], "quick": bool(args.quick),
                             "train_hours": _train_hours(details),
                             "trained_at": _trained_at(details)},
                            record_rows + merge_rows, time.perf_counter() - t0,
                            figures=sorted(out.glob("figure*.png")),
                            notes=f"{len(record_rows)} nets (net vs its flipped copy) and "
                                  f"{len(merge_rows)} merges of two different nets "
                                  "(rows 'A + B', [BK23] Table 4)", commit=commit)
        log(f"results record: {path}")
    log(f"done in {time.perf_counter() - t0:.1f} s; results and figures in {out}")


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
