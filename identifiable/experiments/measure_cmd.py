"""``identifiable measure CHECKPOINT``: the equivariance report of a saved network.

Loads a checkpoint written by :mod:`identifiable.torch.train` (``torch.load(weights_only=True)``)
and prints the least-squares and K-constrained latent mirror fits of Section 6 [SMBK26]
(:func:`identifiable.torch.measure.equivariance_report`). Importing this module does not
import torch.
"""

from __future__ import annotations

import argparse
import time

from identifiable.experiments import arguments as A

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.pt written by training")
    p.add_argument("--probe", choices=("noise", "crops"), default="noise",
                   help="N(0,1) noise in the normalised input space (default) or image crops")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="images for --probe crops (test split; default: embedded stand-in)")
    p.add_argument("--layers", type=A.positive_int, nargs="+", default=[1, 2], metavar="I",
                   help="latent indices: 1 = f1, 2 = f2 o f1, ... (default 1 2)")
    p.add_argument("--mirrors", nargs="+", choices=("lr", "ud"), default=["lr", "ud"])
    p.add_argument("--n-probes", type=A.positive_int, default=100_000,
                   help="probes for the fit and, independently, the errors (default 100000)")
    p.add_argument("--seed", type=A.nonnegative_int, default=0)
    p.add_argument("--device", type=A.device, default="cpu")
    p.add_argument("--threads", type=A.positive_int, default=None)
    p.add_argument("--json", type=A.json_path, metavar="FILE", help="write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    import torch

    from identifiable.io import write_json_atomic
    from identifiable.torch.checkpoint import load_net
    from identifiable.torch.data import load_images
    from identifiable.torch.measure import equivariance_report

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    net, state = load_net(args.checkpoint, map_location=args.device)
    net = net.to(args.device)
    # crops only: their labels play no part in the measurement
    images = load_images(args.data, "test").tensor(args.device) if args.probe == "crops" else None
    fits = equivariance_report(net, layers=tuple(args.layers), mirrors=tuple(args.mirrors),
                               probe=args.probe, images=images, n_fit=args.n_probes,
                               n_eval=args.n_probes, seed=args.seed)
    arch = state["arch"]
    rows = [{"task": arch.get("task"), "activation": arch.get("activation"),
             "epochs": state.get("epoch"), **f.to_dict()} for f in fits]
    print(f"{args.checkpoint}: {arch} after {state.get('epoch')} epochs; probe {args.probe}, "
          f"{args.n_probes} fit + {args.n_probes} eval")
    head = f"{'layer':<6}| {'mirror':<7}| {'K':<21}| {'ls_error':>9} | {'k_error':>9} | " \
           f"{'|A-K|/|A|':>9} | {'identity':>9}"
    print(head)
    print("-" * len(head))

    def num(v):
        return f"{v:9.4f}" if v is not None else f"{'-':>9}"

    for r in rows:
        k_name = str(r["K"] or "-")
        print(f"{r['layer']:<6}| {r['mirror']:<7}| {k_name:<21}| {num(r['ls_error'])} | "
              f"{num(r['k_error'])} | {num(r['dist_ls_to_K'])} | {num(r['identity_error'])}")
    if args.json:
        write_json_atomic(args.json, rows)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0
