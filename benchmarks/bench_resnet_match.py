"""Benchmark: activation matching plus REPAIR on a ResNet-20 ([BK23] Section 4.2 / Table 3; REPAIR
of Jordan et al., ICLR 2023), streamed vs. stored.

* **streamed** (the library): :func:`identifiable.torch.match.match_activations` on two
  ResNet-20s (one lockstep pass, per permutation group float64 sums, sums of squares and the
  C x C cross moment, O(C^2) memory per group), then :func:`identifiable.torch.merge.repair`
  reusing the match's REPAIR-point statistics (one renormalising pass through the midpoint);
* **stored** (the baseline): both nets run over the images with forward hooks that *store*
  every activation at every matching point and every REPAIR point; then, per group, the
  stored activations of all its points are concatenated into ``2C x M`` rows and
  ``torch.corrcoef`` gives the correlations (the same linear assignment follows); REPAIR's
  endpoint statistics are the means / standard deviations of stored activations of a second
  pass over net_a and the aligned net_b; the same renormalising pass folds the correction.

Both give the same permutations (checked). Each method runs in its own subprocess, so that its
peak memory is the growth of ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` during the call
(torch's allocator does not track CPU tensors). Two random-weight ResNet-20s (``--width``),
``--n`` random 32 x 32 images, batches of ``--batch``, ``--threads`` torch threads.

    python benchmarks/bench_resnet_match.py [--n 1024] [--width 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from torch import Tensor, nn


def _nets(width: float, seed: int) -> tuple[nn.Module, nn.Module]:
    from identifiable.torch.resnet import resnet20

    torch.manual_seed(seed)
    a = resnet20(width).eval()
    torch.manual_seed(seed + 1)
    b = resnet20(width).eval()
    return a, b


def _streamed(a: nn.Module, b: nn.Module, x: Tensor, batch: int) -> list[np.ndarray]:
    from identifiable.torch.match import match_activations
    from identifiable.torch.merge import interpolate, permute_network, repair

    m = match_activations(a, b, x, batch)
    bb = permute_network(b, m.perms, m.signs, input_size=tuple(x.shape[-2:]))
    repair(interpolate(a, bb, 0.5), a, bb, x, 0.5, batch, match=m)
    return m.perms


def _stored_pass(net: nn.Module, x: Tensor, batch: int, names: list[str]) -> dict[str, Tensor]:
    """Every activation at the modules ``names`` for all images (hooks clone them)."""
    mods = dict(net.named_modules())
    store: dict[str, list[Tensor]] = {n: [] for n in names}
    hooks = [mods[n].register_forward_hook(
        lambda _m, _i, y, n=n: store[n].append(y.detach().clone())) for n in names]
    try:
        with torch.no_grad():
            for i in range(0, x.shape[0], batch):
                net(x[i:i + batch])
    finally:
        for h in hooks:
            h.remove()
    return {n: torch.cat(v) for n, v in store.items()}


def _rows(t: Tensor) -> Tensor:
    return t.transpose(0, 1).reshape(t.shape[1], -1)


def _stored(a: nn.Module, b: nn.Module, x: Tensor, batch: int) -> list[np.ndarray]:
    from scipy.optimize import linear_sum_assignment

    from identifiable.torch.graph import analyse_graph
    from identifiable.torch.graph_ops import _units, repair_with_stats
    from identifiable.torch.merge import interpolate, permute_network

    g = analyse_graph(a, tuple(x.shape[1:]))
    node_mod = {n.name: n.target for n in g.gm.graph.nodes if n.op == "call_module"}
    points = [[node_mod[p] for p in gr.points] for gr in g.groups]
    names = sorted({p for ps in points for p in ps})
    sa, sb = _stored_pass(a, x, batch, names), _stored_pass(b, x, batch, names)
    perms = []
    for gr, ps in zip(g.groups, points):
        c = gr.width
        rows = torch.cat([torch.cat([_rows(sa[p]) for p in ps], 1),
                          torch.cat([_rows(sb[p]) for p in ps], 1)])
        corr = torch.nan_to_num(torch.corrcoef(rows)[:c, c:].double()).numpy()
        r, cols = linear_sum_assignment(corr, maximize=True)
        perms.append(cols[np.argsort(r)])
    del sa, sb
    bb = permute_network(b, perms, input_size=tuple(x.shape[-2:]))
    units = _units(g)
    rnames = [bn or prod for _, prod, _, bn in units]
    ea, eb = _stored_pass(a, x, batch, rnames), _stored_pass(bb, x, batch, rnames)
    stats_a = [(_rows(ea[n]).double().mean(1).numpy(),
                _rows(ea[n]).double().std(1, unbiased=False).numpy()) for n in rnames]
    stats_b = [(_rows(eb[n]).double().mean(1).numpy(),
                _rows(eb[n]).double().std(1, unbiased=False).numpy()) for n in rnames]
    del ea, eb
    repair_with_stats(interpolate(a, bb, 0.5), x, stats_a, stats_b, 0.5, batch)
    return perms


def _child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    a, b = _nets(args.width, 0)
    x = torch.randn(args.n, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    run = _streamed if args.method == "streamed" else _stored
    run(a, b, x[:args.batch], args.batch)            # warm-up (imports, kernels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    perms = run(a, b, x, args.batch)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"seconds": dt, "peak_mib": peak / 1024,
                      "perms": [np.asarray(p).tolist() for p in perms]}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--method", choices=("streamed", "stored"), default=None)
    args = p.parse_args()
    if args.method is not None:
        _child(args)
        return
    res = {}
    for method in ("streamed", "stored"):
        cmd = [sys.executable, __file__, "--method", method, "--n", str(args.n), "--width",
               str(args.width), "--batch", str(args.batch), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        res[method] = json.loads(out.strip().splitlines()[-1])
    same = res["streamed"]["perms"] == res["stored"]["perms"]
    s, b = res["streamed"], res["stored"]
    print(f"ResNet-20 width {args.width}, {args.n} images 32 x 32, batch {args.batch}, "
          f"{args.threads} thread(s); matching + REPAIR")
    print(f"  streamed (O(C^2) per group): {s['seconds']:.2f} s, peak +{s['peak_mib']:.0f} MiB")
    print(f"  stored activations baseline: {b['seconds']:.2f} s, peak +{b['peak_mib']:.0f} MiB")
    print(f"  speed-up {b['seconds'] / s['seconds']:.2f}x (target >= 2x: "
          f"{'met' if b['seconds'] >= 2 * s['seconds'] else 'MISSED'}), memory ratio "
          f"{b['peak_mib'] / max(s['peak_mib'], 1):.1f}x; same permutations: {same}")


if __name__ == "__main__":
    main()
