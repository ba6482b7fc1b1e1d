"""Benchmark: latent_actions (Theorem 4.1 as an algorithm) on a float tanh MLP of widths
[192, 256, 256, 10] with the mirror on 3 x 8 x 8 inputs (target: under 2 s), printed next to the
time of one forward pass on 10,000 inputs measured in the same run.

Run: ``python benchmarks/bench_latent_actions.py``
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import identifiable as idf
from identifiable import groups


def involution(d: int, rng: np.random.Generator) -> np.ndarray:
    M = np.eye(d)
    idx = rng.permutation(d)
    for a, b in zip(idx[0 : d // 2 : 2], idx[1 : d // 2 : 2]):
        s = -1.0 if rng.random() < 0.5 else 1.0
        M[a, a] = M[b, b] = 0.0
        M[a, b] = M[b, a] = s
    return M


def main() -> None:
    rng = np.random.default_rng(0)
    g = groups.mirror(3, 8, 8).generators[0].astype(float)
    model = idf.MLP([192, 256, 256, 10], "tanh")
    theta = idf.random_equivariant_params(
        model, [[g], [involution(256, rng)], [involution(256, rng)], [np.eye(10)]], seed=1)
    theta = model.transform(theta, model.random_k(seed=2))
    X = rng.standard_normal((10_000, 192))
    model.forward(X, theta)
    fwd = statistics.median(_time(lambda: model.forward(X, theta)) for _ in range(5))
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        v = idf.latent_actions(model, theta, [g])
        runs.append(time.perf_counter() - t0)
    la = statistics.median(runs)
    print(f"baseline: forward pass on 10,000 inputs: {fwd * 1e3:8.1f} ms")
    print(f"latent_actions [192, 256, 256, 10], mirror 3x8x8: {la * 1e3:8.1f} ms "
          f"({la / fwd:4.1f}x the forward pass), status {v.status}; target < 2 s: "
          f"{'OK' if la < 2 else 'SLOW'}")


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
