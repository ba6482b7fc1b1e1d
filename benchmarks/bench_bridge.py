"""Benchmark: the torch bridge round trip on a width-4096, depth-4 MLP (widths ``[4096] * 5``,
ReLU, biases, float32; about 67 M parameters): ``from_torch`` (torch -> eq. (7) ``MLP`` and a
float64 ``Theta``), ``to_torch`` (back to a float32 ``nn.Sequential``) and the two together.
Target: the round trip under 1 s. Printed next to baselines measured in the same run: one
``copy.deepcopy`` of the module, and cloning its ``state_dict()`` (the least any copy of the
parameters costs; the bridge must also convert float32 -> float64 -> float32, i.e. write 1.5x the
bytes of a float32 copy twice over). Each figure is the median of ``--repeats`` runs (after one
warm-up), with the user and system CPU time: the bridge's own work is the user time, page
faults of fresh memory the system time (a round trip whose memory is not freed at once, e.g.
through a reference cycle, re-faults ~0.8 GB every time and shows here as a large system time).
The round trip is checked to give the same function on a small batch.

    python benchmarks/bench_bridge.py [--width 4096] [--depth 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import time

import numpy as np
import torch
from torch import nn

from identifiable.torch.bridge import from_torch, to_torch


def _cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def median_time(fn, repeats: int) -> tuple[float, float, float, float]:
    """(median wall, min wall, median user CPU, median system CPU) seconds of ``fn()`` over
    ``repeats`` runs after a warm-up; the result of each run is dropped before the next (so
    memory does not pile up). The system time is the kernel's (page faults of fresh memory):
    it tells a slow wall time from slow code."""
    fn()
    walls, users, syss = [], [], []
    for _ in range(repeats):
        (u0, s0), t0 = _cpu(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        u1, s1 = _cpu()
        users.append(u1 - u0)
        syss.append(s1 - s0)
        del out
    return (statistics.median(walls), min(walls), statistics.median(users),
            statistics.median(syss))


def build(width: int, depth: int) -> nn.Sequential:
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for i in range(depth):
        mods.append(nn.Linear(width, width))
        if i < depth - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    net = build(args.width, args.depth)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"MLP widths [{args.width}] * {args.depth + 1}, {n_params / 1e6:.1f} M parameters, "
          f"float32; torch {torch.__version__}, {torch.get_num_threads()} threads; median (min) "
          f"of {args.repeats} runs; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")

    model, theta = from_torch(net)
    back = to_torch(model, theta)
    x = torch.randn(8, args.width)
    with torch.no_grad():
        y, y2 = net(x), back(x)
    assert torch.equal(y, y2), "round trip changed the function"
    ref = model.forward(x.double().numpy()[:2], theta)
    err = float(np.max(np.abs(ref - y[:2].double().numpy())))
    print(f"same function: torch -> model -> torch bit-identical; library float64 forward vs "
          f"torch float32: max |diff| {err:.2e}")
    del back, y, y2

    base_copy = median_time(lambda: copy.deepcopy(net), args.repeats)
    base_sd = median_time(lambda: {k: v.clone() for k, v in net.state_dict().items()},
                          args.repeats)
    t_from = median_time(lambda: from_torch(net), args.repeats)
    t_to = median_time(lambda: to_torch(model, theta), args.repeats)

    def round_trip():
        m, th = from_torch(net)
        return to_torch(m, th)

    t_rt = median_time(round_trip, args.repeats)
    print(f"{'':35s} {'median':>7s}   {'min':>5s}   {'user':>5s}   {'sys':>5s}   (seconds: wall "
          "median and min, CPU user and system medians)")
    rows = (("baseline copy.deepcopy(module)", base_copy), ("baseline state_dict() clone",
                                                             base_sd),
            ("from_torch", t_from), ("to_torch (float32)", t_to), ("round trip", t_rt))
    for label, t in rows:
        ratio = "" if label.startswith("baseline") else (
            f"   {t[0] / base_copy[0]:5.2f}x deepcopy, {t[0] / base_sd[0]:5.2f}x state_dict "
            "clone (wall medians)")
        print(f"{label + ':':35s} {t[0]:7.3f}   {t[1]:5.3f}   {t[2]:5.3f}   {t[3]:5.3f}{ratio}")
    print(f"target: round trip < 1 s: {'PASS' if t_rt[0] < 1.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
