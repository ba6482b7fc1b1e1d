"""``identifiable measure``: the equivariance report of a saved or user-defined network.

::

    identifiable measure CHECKPOINT [options]
    identifiable measure --model package.module:factory [--weights state_dict.pt]
                         [--group lr|ud|rot90|rot180|flips|shift ...] [--input-shape 3 32 32]
                         [--layers NAME ...] [options]

* checkpoints of the mirror MLP / attention autoencoder (``arch.kind`` ``"mlp"`` /
  ``"attention"``): the least-squares and K-constrained latent mirror fits of Section 6 [SMBK26]
  (:func:`identifiable.torch.measure.equivariance_report`), layers by index (1 = f1, ...);
* checkpoints of the gcnn-barrier experiment (``arch.kind`` ``"vgg"`` or ``"resnet"``: CNN,
  GCNN, PGCNN of [BK23] Table 1, VGG11 or ResNet-20) and any module built by ``--model``: the
  latent actions of Theorem 4.1 [SMBK26] for each group of ``--group`` on every activation (or
  the modules named by ``--layers``),
  :func:`identifiable.torch.latent_measure.measure_latent_actions`.

The up-down flip ``ud`` is never trained by the library's recipes: its rows are the reference
for what "not learned" looks like. A learned symmetry shows ``k_error`` close to ``ls_error`` and
both small compared with the identity error. Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import time

from identifiable.experiments import arguments as A

__all__ = ["add_arguments", "run"]

_GROUPS = ("lr", "ud", "rot90", "rot180", "flips", "shift")
#: probes per draw when --n-probes is not given
_N_PROBES = {"mirror": 100_000, "latent": 2000}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", default=None,
                   help="a checkpoint.pt written by training (mirror-mlp, attention-heads, "
                        "gcnn-barrier); omit it with --model")
    p.add_argument("--model", metavar="MODULE:FACTORY", default=None,
                   help="measure a user network: the factory (called without arguments) "
                        "builds the torch module, e.g. mypkg.nets:make_net")
    p.add_argument("--weights", metavar="PATH", default=None,
                   help="state_dict for --model (torch.load(weights_only=True), loaded with "
                        "strict=True); default: the factory's own initialisation")
    p.add_argument("--group", nargs="+", choices=_GROUPS, default=None,
                   help="groups acting on the input, each measured separately (default lr ud "
                        "for images; mirror checkpoints: the same as --mirrors)")
    p.add_argument("--reference", choices=_GROUPS, default=None,
                   help="the group the net was never trained for, shown as the reference "
                        "(default ud when measured beside other groups)")
    p.add_argument("--input-shape", type=A.positive_int, nargs="+", default=None,
                   metavar="N", help="input shape of --model without the batch axis, e.g. "
                                     "3 32 32 (default: from its first Linear layer)")
    p.add_argument("--probe", choices=("noise", "crops"), default="noise",
                   help="N(0,1) noise in the normalised input space (default) or image crops "
                        "(mirror checkpoints only)")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="images for --probe crops (test split; default: embedded stand-in)")
    p.add_argument("--layers", nargs="+", default=None, metavar="L",
                   help="mirror checkpoints: latent indices 1 = f1, 2 = f2 o f1, ... (default "
                        "1 2); other nets: module names (default: every activation module)")
    p.add_argument("--mirrors", nargs="+", choices=("lr", "ud"), default=["lr", "ud"],
                   help="mirror checkpoints: the mirrors to fit (default lr ud)")
    p.add_argument("--n-probes", type=A.positive_int, default=None,
                   help="probes for the fit and, independently, the errors (default 100000 "
                        "for mirror checkpoints, 2000 for VGG and --model nets)")
    p.add_argument("--batch-size", type=A.positive_int, default=None,
                   help="probes per forward pass (default: sized from the latents)")
    p.add_argument("--seed", type=A.nonnegative_int, default=0)
    p.add_argument("--device", type=A.device, default="cpu")
    p.add_argument("--threads", type=A.positive_int, default=None)
    p.add_argument("--json", type=A.json_path, metavar="FILE", help="write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights is not None and args.model is None:
        raise ValueError("--weights: needs --model (the factory that builds the module the "
                         "state_dict belongs to)")
    if args.model is not None and args.checkpoint is not None:
        raise ValueError("CHECKPOINT, --model: give either a checkpoint or --model, not both")
    if args.model is None and args.checkpoint is None:
        raise ValueError("CHECKPOINT: give a checkpoint written by training, or --model "
                         "package.module:factory")
    if args.input_shape is not None and args.model is None:
        raise ValueError("--input-shape: only for --model (a checkpoint knows its input shape)")
    t0 = time.perf_counter()
    if args.model is not None:
        net, in_shape = _user_model(args)
        title = f"--model {args.model}" + (f" --weights {args.weights}" if args.weights else
                                           " (the factory's initialisation)")
        rows = _latent_report(args, net, in_shape, title, {"model": args.model})
    else:
        from identifiable.torch.checkpoint import load_net

        net, state = load_net(args.checkpoint, map_location=args.device)
        net = net.to(args.device)
        arch = state["arch"]
        if arch.get("kind") in ("vgg", "resnet"):
            from identifiable.experiments.gcnn_barrier import IMAGE_SIZE

            name = arch.get("net", "vgg11")
            shown = {"vgg11": "VGG11", "resnet20": "ResNet-20"}.get(name, name)
            side = arch.get("image_size") or IMAGE_SIZE.get(name) or 32
            title = (f"{args.checkpoint}: {arch.get('arch')} {shown} (width {arch.get('width')}) "
                     f"after {state.get('epoch')} epochs; images {side} x {side}")
            info = {"arch": arch.get("arch"), "net": name, "epochs": state.get("epoch")}
            rows = _latent_report(args, net, (3, side, side), title, info)
        else:
            rows = _mirror_report(args, net, state)
    if args.json:
        from identifiable.io import write_json_atomic

        write_json_atomic(args.json, rows)
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


# ----------------------------------------------------------------------------- mirror nets
def _mirror_report(args: argparse.Namespace, net, state) -> list[dict]:
    """Section 6 [SMBK26]: the latent mirror fits of a mirror-MLP / attention checkpoint."""
    from identifiable.torch.data import load_images
    from identifiable.torch.measure import equivariance_report

    mirrors = args.group if args.group is not None else args.mirrors
    bad = [g for g in mirrors if g not in ("lr", "ud")]
    if bad:
        raise ValueError(f"--group: the mirror-MLP / attention checkpoints are measured under "
                         f"lr and ud only, got {bad}")
    layers = [1, 2]
    if args.layers is not None:
        try:
            layers = [int(v) for v in args.layers]
        except ValueError:
            raise ValueError(f"--layers: a mirror-MLP / attention checkpoint takes latent "
                             f"indices (1 = f1, 2 = f2 o f1, ...), got {args.layers}") from None
        if any(i < 1 for i in layers):
            raise ValueError(f"--layers: expected indices >= 1, got {layers}")
    n = args.n_probes or _N_PROBES["mirror"]
    # crops only: their labels play no part in the measurement
    images = load_images(args.data, "test").tensor(args.device) if args.probe == "crops" else None
    fits = equivariance_report(net, layers=tuple(layers), mirrors=tuple(mirrors),
                               probe=args.probe, images=images, n_fit=n, n_eval=n,
                               seed=args.seed)
    arch = state["arch"]
    rows = [{"task": arch.get("task"), "activation": arch.get("activation"),
             "epochs": state.get("epoch"), **f.to_dict()} for f in fits]
    print(f"{args.checkpoint}: {arch} after {state.get('epoch')} epochs; probe {args.probe}, "
          f"{n} fit + {n} eval")
    if "ud" in mirrors and len(mirrors) > 1:
        print("reference: ud (never trained: what 'not learned' looks like); good: k_error "
              "close to ls_error, both small compared with identity")
    head = f"{'layer':<6}| {'mirror':<7}| {'K':<21}| {'ls_error':>9} | {'k_error':>9} | " \
           f"{'|A-K|/|A|':>9} | {'identity':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        k_name = str(r["K"] or "-")
        print(f"{r['layer']:<6}| {r['mirror']:<7}| {k_name:<21}| {_num(r['ls_error'])} | "
              f"{_num(r['k_error'])} | {_num(r['dist_ls_to_K'])} | {_num(r['identity_error'])}")
    return rows


def _num(v) -> str:
    return f"{v:9.4f}" if v is not None else f"{'-':>9}"


def _small(v) -> str:
    """Like :func:`_num`, but values below 1e-3 in scientific notation (an exact equivariance
    shows as 1e-7, not as 0.0000)."""
    if v is not None and v != 0 and abs(v) < 1e-3:
        return f"{v:9.1e}"
    return _num(v)


# ----------------------------------------------------------------------------- any net
def _user_model(args: argparse.Namespace):
    """The module built by ``--model`` (weights from ``--weights``) and its input shape."""
    import importlib
    import os
    import sys

    from torch import nn

    from identifiable.torch.checkpoint import load_state_dict_file

    spec = args.model
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"--model: expected package.module:factory, got {spec!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path    # a module next to the user, as `python -m` would find it
    if added:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        obj = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module
        raise ValueError(f"--model: cannot import {mod_name!r} ({type(exc).__name__}: "
                         f"{exc})") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--model: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"--model: {spec} is a {type(obj).__name__}, not a factory (a "
                         "callable returning a torch.nn.Module)")
    try:
        net = obj()
    except Exception as exc:  # noqa: BLE001 - the user's factory
        raise ValueError(f"--model: calling {spec}() failed ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(net, nn.Module):
        raise ValueError(f"--model: {spec}() returned a {type(net).__name__}, not a "
                         "torch.nn.Module")
    if args.weights is not None:
        load_state_dict_file(net, args.weights, "--weights", map_location="cpu")
    net = net.to(args.device).eval()
    if args.input_shape is not None:
        return net, tuple(args.input_shape)
    shape = getattr(net, "in_shape", None)
    if shape is not None:
        return net, tuple(int(s) for s in shape)
    first = next((m for m in net.modules() if next(m.children(), None) is None), None)
    if isinstance(first, nn.Linear):
        return net, (first.in_features,)
    raise ValueError(f"--input-shape: cannot infer the input shape of the model (its first "
                     f"layer is {type(first).__name__}); pass --input-shape, e.g. 3 32 32")


def _latent_report(args: argparse.Namespace, net, in_shape: tuple[int, ...], title: str,
                   info: dict) -> list[dict]:
    """Theorem 4.1 [SMBK26] measured: one row per (layer, group generator)."""
    from identifiable.torch.latent_measure import image_group, measure_latent_actions
    from identifiable.torch.measure import noise_probe

    if args.probe != "noise":
        raise ValueError("--probe: crops are only for the mirror-MLP / attention checkpoints; "
                         "VGG and --model nets are measured on noise")
    groups = args.group
    if groups is None:
        if len(in_shape) != 3:
            raise ValueError(f"--group: give the group acting on the input of shape {in_shape} "
                             f"(one of {', '.join(_GROUPS)})")
        groups = ["lr", "ud"]
    groups = list(dict.fromkeys(groups))
    reference = args.reference
    if reference is None and "ud" in groups and len(groups) > 1:
        reference = "ud"
    if reference is not None and reference not in groups:
        raise ValueError(f"--reference: {reference!r} is not among the measured groups {groups}")
    reps = {}
    for g in groups:
        try:
            reps[g] = image_group(g, in_shape)
        except ValueError as exc:
            raise ValueError(f"--group: {g!r} does not fit the input shape {in_shape} "
                             f"({exc})") from None
    n = args.n_probes or _N_PROBES["latent"]
    rows = []
    for g, rep in reps.items():
        try:
            recs = measure_latent_actions(net, rep, noise_probe(in_shape), layers=args.layers,
                                          n_fit=n, n_eval=n, seed=args.seed,
                                          batch_size=args.batch_size,
                                          probe_name="noise: N(0,1) in the normalised input "
                                                     "space")
        except ValueError as exc:
            msg = str(exc)
            if msg.startswith("layers:"):
                raise ValueError("--" + msg) from None
            if msg.startswith(("probes:", "rep_in:")):
                raise ValueError(f"--input-shape / --group: {msg}") from None
            raise
        for r in recs:
            rows.append({**info, "group_spec": g, "reference": g == reference, **r.to_dict()})
    print(f"{title}; input {in_shape}; probe N(0,1) noise in the normalised input space, "
          f"{n} fit + {n} eval")
    if reference is not None:
        print(f"reference: {reference} (never trained: its rows show what 'not learned' looks "
              "like)")
    print("good: k_error close to ls_error and both small compared with identity (A = I); "
          "hom: g -> k(g) is a homomorphism (Theorem 4.1, Remark 4.2 [SMBK26])")
    head = (f"{'layer':<12}| {'shape':<13}| {'group':<13}| {'K':<31}| {'ls_error':>9} | "
            f"{'k_error':>9} | {'|A-K|/|A|':>9} | {'identity':>9} | hom")
    print(head)
    print("-" * len(head))
    for r in rows:
        name = r["group_spec"]
        if len(reps[name].generator_indices) > 1:
            name += f" {r['generator_word']}"
        if r["reference"]:
            name += " (ref)"
        hom = {True: "yes", False: "no", None: "-"}[r["homomorphism"]]
        shape = "x".join(str(s) for s in r["latent_shape"])
        print(f"{r['layer']:<12}| {shape:<13}| {name:<13}| {str(r['K'] or '-'):<31}| "
              f"{_small(r['ls_error'])} | {_small(r['k_error'])} | {_small(r['dist_to_K'])} | "
              f"{_small(r['identity_error'])} | {hom}")
    return rows
