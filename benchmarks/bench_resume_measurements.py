"""Benchmark: resuming a finished ``gcnn-barrier`` run with and without the measurement cache
(:mod:`identifiable.experiments.cache`), measured in the same process.

1. a first run trains and measures the nets (not timed against anything);
2. **baseline**: the same command again with ``OUT/measurements`` removed first: the nets are
   reused, every net and merge is measured again (what every resume did before the cache);
3. **cached**: the same command again: the nets are reused and so are their measurements.

Both reruns must report identical rows (asserted). The cost of a resume is dominated by the
measurements, so the ratio grows with the measured images and the width; on the real sweep
(width-0.25 VGG11s, 5000 images) a net took about a minute to re-measure.

    python benchmarks/bench_resume_measurements.py [--width 0.0625] [--n-match 512]
                                                   [--epochs 1] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from identifiable.cli import main


def _run(args: list[str]) -> float:
    t = time.perf_counter()
    assert main(args) == 0
    return time.perf_counter() - t


def bench(width: float, n_match: int, epochs: int, seeds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "gb"
        args = ["experiment", "gcnn-barrier", "--quick", "--recipe", "cnn", "gcnn",
                "--width", str(width), "--epochs", str(epochs), "--seeds", str(seeds),
                "--n-match", str(n_match), "--n-inv", str(n_match), "--threads", "1",
                "--out", str(out)]
        first = _run(args + ["--json", str(Path(d) / "first.json")])
        shutil.rmtree(out / "measurements")
        baseline = _run(args + ["--json", str(Path(d) / "baseline.json")])
        cached = _run(args + ["--json", str(Path(d) / "cached.json")])
        rows = [json.loads((Path(d) / f"{k}.json").read_text())
                for k in ("first", "baseline", "cached")]
        assert rows[0] == rows[1] == rows[2], "a rerun changed a number"
    return {"first": first, "baseline": baseline, "cached": cached}


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.0625)
    p.add_argument("--n-match", type=int, default=512)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seeds", type=int, default=2)
    a = p.parse_args()
    t = bench(a.width, a.n_match, a.epochs, a.seeds)
    print(f"first run (train + measure): {t['first']:.1f} s")
    print(f"resume, measurements recomputed (baseline): {t['baseline']:.1f} s")
    print(f"resume, measurements cached: {t['cached']:.1f} s "
          f"({t['baseline'] / t['cached']:.1f}x faster than the baseline)")


if __name__ == "__main__":
    cli()
