"""Benchmark: check_intertwiner on float matrices at d = 512 (target: under 50 ms), printed next
to the baseline of one 512 x 512 float64 matmul measured in the same run; and the time of
``identifiable verify`` on the step-1 claims (target: under 10 s).

Run: ``python benchmarks/bench_intertwiner.py``
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np

from identifiable import activations, check_intertwiner


def median_time(fn, repeats: int = 15) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    d = 512
    rng = np.random.default_rng(0)
    M = rng.standard_normal((d, d))
    base = median_time(lambda: M @ M)
    print(f"baseline: one {d}x{d} float64 matmul: {base * 1e3:8.2f} ms")
    for name in ("tanh", "relu", "gelu", "power:3", "identity"):
        act = activations.get(name)
        K = act.intertwiner_group(d)
        A = K.random(1)
        B = K.partner(A)
        member = median_time(lambda act=act, A=A, B=B: check_intertwiner(act, A, B))
        A2 = A.copy()
        A2[3, (int(np.argmax(np.abs(A[3]))) + 1) % d] = 0.5
        non = median_time(lambda act=act, A2=A2, B=B: check_intertwiner(act, A2, B))
        v1, v2 = check_intertwiner(act, A, B).status, check_intertwiner(act, A2, B).status
        flag = "OK" if max(member, non) < 0.050 else "SLOW"
        print(f"check_intertwiner {name:9s} d={d}: member {member * 1e3:7.2f} ms ({v1}, "
              f"{member / base:5.1f}x matmul), non-member {non * 1e3:7.2f} ms ({v2}, "
              f"{non / base:5.1f}x matmul)  target < 50 ms: {flag}")
    ids = ["smbk26.sec-5.1-intertwiners", "smbk26.bypass", "bk23.lem-2.2", "bk23.lem-e.1"]
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "identifiable.cli", "verify", "--only", *ids],
                         capture_output=True, text=True)
    dt = time.perf_counter() - t0
    print(f"identifiable verify (step-1 claims, incl. interpreter start): {dt:6.2f} s, exit "
          f"{out.returncode}  target < 10 s: {'OK' if dt < 10 and out.returncode == 0 else 'FAIL'}")


if __name__ == "__main__":
    main()
