"""The attention layer of Section 6.2 [SMBK26]: factored forward against the literal one.

Baseline: :meth:`~identifiable.torch.nets._PatchAttention.literal`, the layer as the paper states
it (keys and values by two stride-2 convolutions plus positional encodings, the query's dot
products, softmax, the weighted sum of the values). Measured: the layer's ``forward``, which
contracts the query with the key weights and the attention weights with the patches so that
keys and values are never formed. Both on the same batch (default 4096, the paper's), forward
and backward, float32 on the CPU, best of interleaved repeats; the outputs are asserted equal
first. Also timed: one whole training step of the autoencoder (augmentation excluded).

    python benchmarks/bench_attention_layer.py [--batch 4096] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from identifiable.torch.nets import AttentionAutoencoder


def _step(net: AttentionAutoencoder, x: torch.Tensor, literal: bool) -> float:
    layer = net.layer(1)
    t = time.perf_counter()
    z = layer.literal(x)[0] if literal else layer(x)
    for k in range(1, net.n_layers):
        z = net.layers[k](z)
    loss = F.mse_loss(z.view_as(x), x)
    net.zero_grad(set_to_none=True)
    loss.backward()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = AttentionAutoencoder()
    x = torch.randn(a.batch, 3, 14, 14)
    with torch.no_grad():
        fast, ref = net.layer(1)(x), net.layer(1).literal(x)[0]
    err = float((fast - ref).abs().max() / ref.abs().max())
    assert err < 1e-5, err
    best = {True: float("inf"), False: float("inf")}
    for _ in range(a.repeats):
        for literal in (True, False):
            best[literal] = min(best[literal], _step(net, x, literal))
    print(f"batch {a.batch}, {a.threads} thread(s), best of {a.repeats}; "
          f"outputs agree (max rel. difference {err:.1e})")
    print(f"  literal layer (baseline): {best[True]:.3f} s per forward + backward step")
    print(f"  factored layer:           {best[False]:.3f} s per forward + backward step")
    print(f"  speed-up: {best[True] / best[False]:.1f}x")


if __name__ == "__main__":
    main()
