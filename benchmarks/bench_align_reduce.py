"""Benchmark: ``align`` and ``reduce`` on depth-4 tanh MLPs (float64), each printed next to a
baseline measured in the same run (one forward pass of a batch of ``d`` inputs, and one
``d x d`` matmul).

Targets (issue 3): ``align`` at width 1024 under 1 s (width 4096 reported); ``reduce`` at width
1024 with 10% inactive and 10% redundant neurons per hidden layer under 1 s.

Run: ``python benchmarks/bench_align_reduce.py [--skip-4096]``
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from identifiable.identifiability import align
from identifiable.models import MLP
from identifiable.submodels import reduce


def median_time(fn, repeats: int = 3) -> tuple[float, object]:
    out = fn() if repeats > 1 else None  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def planted(model: MLP, seed: int):
    """10% inactive and 10% redundant (sign-flipped copies) neurons in every hidden layer."""
    rng = np.random.default_rng(seed)
    th = model.random_params(seed)
    Ws = [np.array(W) for W in th.weights]
    bs = [np.array(b) for b in th.biases]
    d = model.widths[1]
    for i in range(1, model.depth):
        idx = rng.permutation(d)
        n = d // 10
        ina, red, src = idx[:n], idx[n:2 * n], idx[2 * n:3 * n]
        Ws[i - 1][ina] = 0.0
        bs[i - 1][ina] = 0.0
        Ws[i][:, ina] = 0.0
        s = rng.choice([-1.0, 1.0], size=n)
        Ws[i - 1][red] = s[:, None] * Ws[i - 1][src]
        bs[i - 1][red] = s * bs[i - 1][src]
    return model.params(Ws, bs), d - 2 * (d // 10)


def run(d: int, with_reduce: bool, repeats: int = 3) -> None:
    m = MLP([d] * 5, "tanh")
    th = m.random_params(0)
    k = m.random_k(1)
    th2 = m.transform(th, k)
    X = np.random.default_rng(2).standard_normal((d, d))
    t_fwd, _ = median_time(lambda: m(X, th), repeats)
    M = th.weights[1]
    t_mm, _ = median_time(lambda: M @ M, repeats)
    print(f"width {d}: baseline forward pass ({d} inputs) {t_fwd * 1e3:8.1f} ms, one {d}x{d} "
          f"matmul {t_mm * 1e3:8.1f} ms")
    t_al, v = median_time(lambda: align(m, th, th2), repeats)
    ok = v.status == "checked" and all(np.array_equal(a, b) for a, b in zip(v.witness, k))
    flag = "" if d != 1024 else ("  target < 1 s: " + ("OK" if t_al < 1.0 else "SLOW"))
    print(f"  align (theta2 = k . theta): {t_al * 1e3:8.1f} ms = {t_al / t_fwd:5.2f} forward "
          f"passes = {t_al / t_mm:5.2f} matmuls; {v.status}, hidden k recovered: {ok}{flag}")
    th3 = m.random_params(7)
    t_no, v3 = median_time(lambda: align(m, th, th3), repeats)
    print(f"  align (unrelated theta2):   {t_no * 1e3:8.1f} ms; {v3.status} at layer "
          f"{v3.counterexample['layer'] if v3.counterexample else '-'}")
    if with_reduce:
        thr, want = planted(m, 3)
        t_red, sub = median_time(lambda: reduce(m, thr), repeats)
        Xs = X[:64]
        err = float(np.max(np.abs(m(Xs, thr) - sub.model(Xs, sub.theta))))
        print(f"  reduce (10% inactive, 10% redundant): {t_red * 1e3:8.1f} ms = "
              f"{t_red / t_fwd:5.2f} forward passes; widths {sub.model.widths} (expected "
              f"{want} per hidden layer), max |f - f~| = {err:.2g}"
              + ("" if d != 1024 else "  target < 1 s: " + (
                  "OK" if t_red < 1.0 and sub.model.widths[1] == want else "SLOW/FAIL")))


def main() -> None:
    run(1024, with_reduce=True)
    if "--skip-4096" not in sys.argv:
        run(4096, with_reduce=True, repeats=1)


if __name__ == "__main__":
    main()
