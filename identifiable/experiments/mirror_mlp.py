"""``identifiable experiment mirror-mlp``: Section 6.1 and Figure 2 of [SMBK26].

Trains the depth-4 MLPs of Appendix C ({autoencoder, classifier} x {tanh, GELU} first layer)
with the mirror-equivariance loss of eq. (22) in the second half of training, then measures the
latent mirror actions of f_1 and f_2 o f_1 (least squares and K-constrained,
:func:`identifiable.torch.measure.equivariance_report`) for the left-right mirror and, as the
untrained reference, the up-down mirror; prints the table task | layer | mirror | tanh | GELU,
writes the rows as JSON and draws Figure 2 for every net (filters paired by the best signed
permutation fit of f_1 under the left-right mirror, for GELU too, so that its negated copies,
the bypass sigma(x) - sigma(-x) = x, show as in the paper).

Importing this module does not import torch; :func:`run` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from identifiable.experiments import arguments as A
from identifiable.experiments.progress import log

__all__ = ["add_arguments", "run", "add_common_arguments", "format_table", "leave_record",
           "QUICK"]

#: the ``--quick`` preset: embedded stand-in data, small batch, few epochs, fewer probes. The
#: short schedule gets a larger lr and weight decay so that the decay factor of the initial
#: weights, exp(-lr * wd * steps / 2), comes closer to that of the paper's 1000 epochs.
QUICK = {"epochs": 40, "batch_size": 512, "n_probes": 20_000, "n_train": 4096, "n_test": 1024,
         "lr": 3e-3, "weight_decay": 5.0}


def add_common_arguments(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--data", default=None, metavar="PATH",
                   help="CIFAR-10 as a .tar.gz / image folder / cifar-10-batches-py folder "
                        "(default: the embedded stand-in of photographs shipped with "
                        "matplotlib / scikit-image)")
    p.add_argument("--device", type=A.device, default="cpu",
                   help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--epochs", type=A.positive_int, default=None,
                   help="epochs (default 1000, Appendix C)")
    p.add_argument("--batch-size", type=A.positive_int, default=None,
                   help="batch size (default 4096)")
    p.add_argument("--lr", type=A.positive_float, default=None,
                   help="initial learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=A.nonnegative_float, default=None,
                   help="AdamW weight decay (default 0.99, Appendix C)")
    p.add_argument("--seed", type=A.nonnegative_int, default=0)
    p.add_argument("--out", type=A.out_dir, default=out, metavar="DIR",
                   help=f"output folder (default {out})")
    p.add_argument("--json", type=A.json_path, metavar="FILE", help="write the result rows as JSON")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --out (the default; a finished net "
                        "is only measured, a checkpoint of another run is refused)")
    p.add_argument("--fresh", action="store_true",
                   help="start over: discard (overwrite) the checkpoints in --out")
    A.add_results_arguments(p, "rows", "data, epochs and seed")
    p.add_argument("--quick", action="store_true",
                   help="a quick smoke run on the embedded data (under 2 minutes on a CPU)")
    p.add_argument("--threads", type=A.positive_int, default=None, help="torch CPU threads")
    p.add_argument("--checkpoint-every", type=A.positive_int, default=50, metavar="N")
    p.add_argument("--probe", choices=("noise", "crops", "both"), default="noise",
                   help="probe inputs of the measurement (default: N(0,1) noise)")
    p.add_argument("--n-probes", type=A.positive_int, default=None,
                   help="probes for the fit and (independently) the errors (default 100000)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, "runs/mirror-mlp")
    p.add_argument("--task", choices=("autoencoder", "classifier", "both"), default="both")
    p.add_argument("--activation", choices=("tanh", "gelu", "both"), default="both",
                   help="the first layer's activation (the others are GELU)")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve ``--quick`` and defaults into epochs, batch size, probe count, data sizes."""
    s = {"epochs": 1000, "batch_size": 4096, "n_probes": 100_000, "n_train": None,
         "n_test": None, "lr": 1e-3, "weight_decay": 0.99}
    if args.quick:
        s.update(QUICK)
    for k in ("epochs", "batch_size", "n_probes", "lr", "weight_decay"):
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    return s


def load_data(args: argparse.Namespace, s: dict[str, Any]):
    from identifiable.torch.data import embedded_patches, load_images

    if args.data is None or args.data == "embedded":
        kw = {"seed": args.seed}
        train = embedded_patches(s["n_train"], "train", **kw)
        test = embedded_patches(s["n_test"], "test", **kw)
    else:
        train = load_images(args.data, "train")
        test = load_images(args.data, "test", classes=train.classes)
    return train, test


def leave_record(args: argparse.Namespace, experiment: str, s: dict[str, Any], source: str,
                 rows: list[dict[str, Any]], wall_s: float, figures: list[Path],
                 train_seconds: list[float] | None = None, commit: str | None = None,
                 trained_at: list[str] | None = None) -> None:
    """``--results DIR``: the run's record and figures (:mod:`identifiable.results`);
    ``train_seconds`` (one per trained net, accumulated across resumes) is recorded summed as
    ``train_hours``; ``commit`` is the checkout's commit when the run started, ``trained_at``
    the commits that trained its nets (their checkpoints' ``commits``)."""
    if not args.results:
        return
    from identifiable.results import train_hours, write_record

    data = "embedded" if args.data in (None, "embedded") else "cifar10"
    tag = args.tag or f"{data}-e{s['epochs']}-seed{args.seed}{'-quick' if args.quick else ''}"
    settings = {**s, "data": source, "seed": args.seed, "quick": bool(args.quick),
                "device": args.device,
                "train_hours": train_hours(train_seconds or []),
                "trained_at": sorted(set(trained_at or []))}
    path = write_record(args.results, experiment, tag, settings, rows, wall_s,
                        figures=[f for f in figures if f.is_file()], commit=commit)
    log(f"results record: {path}")


def setup_torch(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: {args.device!r} requested but CUDA is not available")



def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    k = r.get("k_error")
    return f"{r['ls_error']:.3f} / {k:.3f}" if k is not None else f"{r['ls_error']:.3f} / -"


def format_table(rows: list[dict[str, Any]]) -> str:
    """task | layer | mirror | probe | tanh | GELU, each cell 'least squares / K-constrained'."""
    keys = sorted({(r["task"], r["layer"], r["mirror"], r["probe"]) for r in rows},
                  key=lambda k: (k[0], k[3], k[1], k[2]))
    by = {(r["task"], r["layer"], r["mirror"], r["probe"], r["activation"]): r for r in rows}
    head = f"{'task':<12}| {'layer':<6}| {'mirror':<7}| {'probe':<6}| {'tanh (ls / K)':<16}| " \
           f"{'GELU (ls / K)':<16}"
    lines = [head, "-" * len(head)]
    for t, layer, m, p in keys:
        tanh, gelu = (_cell(by.get((t, layer, m, p, a))) for a in ("tanh", "gelu"))
        lines.append(f"{t:<12}| {layer:<6}| {m:<7}| {p:<6}| {tanh:<16}| {gelu:<16}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from identifiable.io import RunLock

    with RunLock(args.out, "mirror-mlp run"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from identifiable.io import write_bytes_atomic, write_json_atomic

    setup_torch(args)
    from identifiable.torch.measure import equivariance_report
    from identifiable.torch.plots import figure2
    from identifiable.torch.train import TrainConfig, train

    s = settings(args)
    tasks = ("autoencoder", "classifier") if args.task == "both" else (args.task,)
    acts = ("tanh", "gelu") if args.activation == "both" else (args.activation,)
    probes = ("noise", "crops") if args.probe == "both" else (args.probe,)
    out = Path(args.out)
    t0 = time.perf_counter()
    commit = A.started_commit(args)
    train_data, test_data = load_data(args, s)
    log(f"data: {train_data.source} ({len(train_data)} train, {len(test_data)} test)")
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    trained_at: list[str] = []
    for task in tasks:
        for act in acts:
            cfg = TrainConfig(task=task, activation=act, epochs=s["epochs"],
                              batch_size=s["batch_size"], lr=s["lr"],
                              weight_decay=s["weight_decay"], seed=args.seed, device=args.device,
                              checkpoint_every=args.checkpoint_every,
                              log_every=max(1, s["epochs"] // 20))
            res = train(cfg, train_data, out / f"{task}-{act}", resume=True,
                        fresh=args.fresh, test=test_data, log=log)
            if not res.finished:  # pragma: no cover - only with stop_after
                continue
            log(f"[{task}-{act}] trained {s['epochs']} epochs; test {res.metrics}")
            seconds.append(res.train_seconds)
            trained_at.extend(res.commits)
            for probe in probes:
                images = test_data.tensor(args.device) if probe == "crops" else None
                fits = equivariance_report(res.net, layers=(1, 2), probe=probe, images=images,
                                           n_fit=s["n_probes"], n_eval=s["n_probes"],
                                           seed=args.seed)
                for f in fits:
                    rows.append({"task": task, "activation": act, **f.to_dict(),
                                 "epochs": s["epochs"], "batch_size": s["batch_size"],
                                 "lr": s["lr"], "weight_decay": s["weight_decay"],
                                 "data": train_data.source, **res.metrics})
                lr1 = next(f for f in fits if f.layer == "f1" and f.mirror == "lr")
                if probe == "noise" and lr1.K_sign is not None:
                    W = res.net.layer(1).linear.weight.detach().cpu().numpy()
                    figure2(W.reshape(-1, *res.net.in_shape), lr1.K_sign,
                            out / f"figure2-{task}-{act}.png",
                            title=f"{task}, first activation {act}, {s['epochs']} epochs: "
                                  f"first-layer filters by the fitted signed permutation")
    table = format_table(rows)
    print(table)
    write_json_atomic(out / "results.json", rows)
    write_bytes_atomic(out / "table.txt", (table + "\n").encode())
    if args.json:
        write_json_atomic(args.json, rows)
    leave_record(args, "mirror-mlp", s, train_data.source, rows, time.perf_counter() - t0,
                 sorted(out.glob("figure2-*.png")), train_seconds=seconds, commit=commit,
                 trained_at=trained_at)
    log(f"done in {time.perf_counter() - t0:.1f} s; figures and results in {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser()
    add_arguments(p)
    sys.exit(run(p.parse_args()))
