"""Throughput of ``identifiable.torch.train.train`` versus a bare torch loop (Appendix C [SMBK26]).

Both run the same model (the depth-4 MLP autoencoder, tanh first layer), batch size, data
(uint8 images in memory), augmentation (:func:`identifiable.torch.augment.augment`), loss of
eq. (22) with lambda = 0 in the first half of the epochs and 5 after, and AdamW; the bare loop
has no schedule, checkpoints, history, progress bar or resumable RNG bookkeeping.
Target: train.py at least 90% of the bare loop's samples per second (best of interleaved
repeats, so that load from other processes hits both alike).

    python benchmarks/bench_train.py [--n 16384] [--batch-size 4096] [--epochs 4] [--threads T]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from identifiable.torch.augment import augment, mirror_lr
from identifiable.torch.data import ImageData
from identifiable.torch.nets import MirrorMLP
from identifiable.torch.train import TrainConfig, train


def bare_loop(data: ImageData, epochs: int, batch: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    mean, std = data.channel_stats()
    net = MirrorMLP("autoencoder", "tanh", mean=mean, std=std)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.99)
    gen = torch.Generator().manual_seed(seed + 1)
    images = data.tensor()
    n = images.shape[0]
    t = time.perf_counter()
    for epoch in range(epochs):
        lam = 5.0 if epoch >= epochs / 2 else 0.0
        perm = torch.randperm(n, generator=gen)
        for s in range(math.ceil(n / batch)):
            x = net.normalise(augment(images.index_select(0, perm[s * batch:(s + 1) * batch]),
                                      gen))
            out = net(x)
            loss = F.mse_loss(out, x)
            if lam:
                loss = loss + lam * F.mse_loss(out, mirror_lr(net(mirror_lr(x))))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t


def with_train(data: ImageData, epochs: int, batch: int, out: str, seed: int = 0) -> float:
    cfg = TrainConfig(task="autoencoder", activation="tanh", epochs=epochs, batch_size=batch,
                      seed=seed, checkpoint_every=epochs, progress=False)
    t = time.perf_counter()
    train(cfg, data, out)  # the whole call: setup, statistics, final checkpoint included
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    data = ImageData(rng.integers(0, 256, (a.n, 32, 32, 3), dtype=np.uint8),
                     rng.integers(0, 10, a.n), tuple("0123456789"), "synthetic")
    tb, tt = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            tb.append(bare_loop(data, a.epochs, a.batch_size))
            tt.append(with_train(data, a.epochs, a.batch_size, f"{tmp}/{r}"))
    samples = a.n * a.epochs
    b, t = samples / min(tb), samples / min(tt)
    print(f"training throughput, {a.n} images x {a.epochs} epochs, batch {a.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  bare torch loop   {b:9.0f} samples/s")
    print(f"  train.py          {t:9.0f} samples/s   {t / b:6.1%} of the bare loop "
          f"(target >= 90%: {'PASS' if t >= 0.9 * b else 'FAIL'})")


if __name__ == "__main__":
    main()
