"""``identifiable experiment attention-heads``: Section 6.2 and Figure 3 of [SMBK26].

Trains the attention autoencoder (patch embedding + one multi-head attention layer with a single
query token, then the MLP) with the mirror loss of eq. (22), then detects how the left-right
mirror acts on the heads. For the attention layer the latent group is
K = GL(d_h)^h x| S_h (Section 5.2), so the mirror should permute heads; the permutation is found
twice, independently:

* from the attention maps: head h' of the mirrored image against the mirrored map of head h,
  matched by a linear assignment on the mean L1 distance;
* from the least-squares latent action A_1 of the attention output (256 = 8 x 32): the head
  blocks' Frobenius norms, matched by a linear assignment.

Draws Figure 3 for one test image and writes the rows as JSON. Imports torch only in :func:`run`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from identifiable.experiments import arguments as A
from identifiable.experiments.mirror_mlp import (
    add_common_arguments,
    leave_record,
    load_data,
    settings,
    setup_torch,
)
from identifiable.experiments.progress import log

__all__ = ["add_arguments", "run", "head_permutation_from_maps", "head_permutation_from_action"]

#: ``--quick`` for this experiment: the paper's lr and weight decay, fewer epochs
QUICK_ATTENTION = {"epochs": 20, "lr": 1e-3, "weight_decay": 0.99}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, "runs/attention-heads")


def head_permutation_from_maps(att, att_mirrored) -> tuple[list[int], Any]:
    """``perm[h]``: the head of the mirrored input whose map matches head h's mirrored map.

    ``att``, ``att_mirrored``: ``B x heads x h x w`` attention of the query token.
    Returns the permutation and the ``heads x heads`` cost matrix (mean L1 distance).
    """
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    a = att.flip(-1).flatten(2)          # mirror of head h's map, B x heads x n
    b = att_mirrored.flatten(2)
    cost = (a[:, :, None, :] - b[:, None, :, :]).abs().sum(-1).mean(0).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=int)
    perm[rows] = cols
    return perm.tolist(), cost


def head_permutation_from_action(A, heads: int) -> tuple[list[int], Any]:
    """``perm[h]``: the head block of ``f_1(mirror y)`` fed by head h (block norms of A_1)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    A = np.asarray(A)
    d = A.shape[0] // heads
    norms = np.linalg.norm(A.reshape(heads, d, heads, d), axis=(1, 3))  # [out block, in block]
    rows, cols = linear_sum_assignment(norms.T, maximize=True)  # in block h -> out block
    perm = np.empty(heads, dtype=int)
    perm[rows] = cols
    return perm.tolist(), norms


def run(args: argparse.Namespace) -> int:
    from identifiable.io import RunLock

    with RunLock(args.out, "attention-heads run"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    setup_torch(args)
    import torch

    from identifiable.io import write_json_atomic
    from identifiable.torch.augment import mirror_lr, resize
    from identifiable.torch.measure import equivariance_report
    from identifiable.torch.plots import figure3
    from identifiable.torch.train import TrainConfig, train

    s = settings(args)
    if args.quick:  # the attention net collapses under the MLP preset's strong decay
        s.update({k: v for k, v in QUICK_ATTENTION.items() if getattr(args, k) is None})
    out = Path(args.out)
    t0 = time.perf_counter()
    commit = A.started_commit(args)
    train_data, test_data = load_data(args, s)
    cfg = TrainConfig(task="autoencoder", activation="gelu", arch="attention", epochs=s["epochs"],
                      batch_size=s["batch_size"], lr=s["lr"], weight_decay=s["weight_decay"],
                      seed=args.seed, device=args.device,
                      checkpoint_every=args.checkpoint_every, log_every=max(1, s["epochs"] // 20))
    res = train(cfg, train_data, out / "attention", resume=True, fresh=args.fresh,
                test=test_data, log=log)
    net = res.net
    heads = net.heads
    with torch.no_grad():
        x = net.normalise(resize(test_data.tensor(args.device)[:2048], net.in_shape[-1]))
        att = net.attention_weights(x)
        att_m = net.attention_weights(mirror_lr(x))
    perm_maps, cost = head_permutation_from_maps(att, att_m)
    fits = equivariance_report(net, layers=(1, 2), probe="noise", n_fit=s["n_probes"],
                               n_eval=s["n_probes"], seed=args.seed)
    f1 = next(f for f in fits if f.layer == "f1" and f.mirror == "lr")
    perm_action, norms = head_permutation_from_action(f1.A, heads)
    moved = [h for h in range(heads) if perm_maps[h] != h]
    summary = {"epochs": s["epochs"], "data": train_data.source, **res.metrics,
               "head_perm_from_maps": perm_maps, "head_perm_from_action": perm_action,
               "agree": perm_maps == perm_action, "moved_heads": moved,
               "map_cost": cost.tolist(), "action_block_norms": norms.tolist(),
               "fits": [f.to_dict() for f in fits]}
    img = resize(test_data.tensor("cpu")[:1], 32)[0].permute(1, 2, 0).numpy()
    figure3(img, att[0].cpu().numpy(), att_m[0].cpu().numpy(), perm_maps,
            out / "figure3.png",
            title=f"attention of the query token per head ({s['epochs']} epochs); cyan: heads "
                  f"permuted by the mirror")
    print(f"head permutation under the left-right mirror (attention maps): {perm_maps}")
    print(f"head permutation from the latent action A_1 (block norms):    {perm_action}")
    for f in fits:
        d = f.to_dict()
        print(f"  {d['layer']} {d['mirror']}: ls_error {d['ls_error']:.4f}"
              + (f", k_error {d['k_error']:.4f}" if d["k_error"] is not None else ""))
    write_json_atomic(out / "results.json", summary)
    if args.json:
        write_json_atomic(args.json, summary)
    rows = [{k: v for k, v in summary.items() if k not in ("fits", "map_cost",
                                                          "action_block_norms")}]
    rows += [{"layer": f["layer"], "mirror": f["mirror"], "ls_error": f["ls_error"],
              "k_error": f["k_error"]} for f in summary["fits"]]
    leave_record(args, "attention-heads", s, train_data.source, rows,
                 time.perf_counter() - t0, [out / "figure3.png"],
                 train_seconds=[res.train_seconds],
                 commit=commit, trained_at=res.commits)
    log(f"done in {time.perf_counter() - t0:.1f} s; figure and results in {out}")
    return 0
