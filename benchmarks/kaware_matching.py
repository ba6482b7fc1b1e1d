"""Benchmark: K-aware activation matching ([BK23] Section 4 with the latent group K(tanh) =
signed permutations of Section 5.1 [SMBK26]) against plain permutation matching, on a tanh
VGG-style net and a copy of it with a hidden random signed channel permutation.

The net (conv + BatchNorm + tanh blocks, 2 x 2 average pools, a linear head; average pools,
not max-pools, because ``max(-x) = -min(x)`` would forbid the signs) is trained for
``--steps`` Adam steps on the library's embedded stand-in images
(:func:`identifiable.torch.data.load_images` with ``path=None``: crops of bundled photographs,
labelled by source photograph; not CIFAR-10), or left random with ``--steps 0``. The copy
``b = permute_network(a, perms, signs)`` computes the same function. Printed:

* the test accuracies of a and b, and the barrier of eq. (4) [BK23] (halfway net, BatchNorm
  statistics reset; and with REPAIR) after K-aware matching (``group="auto"``: signed
  permutations at every layer here) and after plain permutation matching (``group="perm"``);
  K-aware should give 0 (the aligned copy is the net up to round-off);
* whether each matching recovered the planted signed permutation, its mean matched
  correlation, the wall time of each matching (one streamed pass over the match images) and
  the largest parameter difference between the halfway net (before the BatchNorm reset) and a.

The BatchNorm statistics of a are reset on the match images after training, as those of the
halfway nets are, so that a halfway net equal to a is measured exactly like a.

    python benchmarks/kaware_matching.py [--steps 300] [--train-batch 64] [--width 16]
                                         [--n-match 2000] [--seed 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from identifiable.torch import (
    accuracy,
    hidden_units,
    interpolate,
    load_images,
    match_activations,
    merge_barrier,
    normalise,
    permute_network,
    reset_bn_stats,
)


def tanh_vgg(width: int, n_classes: int) -> nn.Sequential:
    """conv-BN-tanh blocks of widths w, 2w, 4w, 4w on 32 x 32 images, average pools, a linear
    head (VGG-style, in the plain form of :mod:`identifiable.torch.structure`)."""
    w = [width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    c = 3
    for j, k in enumerate(w):
        layers += [nn.Conv2d(c, k, 3, padding=1), nn.BatchNorm2d(k), nn.Tanh()]
        layers.append(nn.AvgPool2d(2) if j < 3 else nn.AdaptiveAvgPool2d(1))
        c = k
    layers += [nn.Flatten(), nn.Linear(c, n_classes)]
    return nn.Sequential(*layers)


def train(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int,
          seed: int) -> float:
    """``steps`` Adam steps (lr 3e-3) on random mini-batches; returns the wall time."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    return time.perf_counter() - t0


def planted(net: nn.Sequential, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    perms, signs = [], []
    for i in hidden_units(net):
        c = net[i].weight.shape[0]
        perms.append(rng.permutation(c))
        signs.append(rng.choice([-1, 1], size=c))
    return perms, signs


def recovered(match, perms, signs) -> bool:
    return all(np.array_equal(fp, np.argsort(p)) and np.array_equal(fs, s[np.argsort(p)])
               for p, s, fp, fs in zip(perms, signs, match.perms, match.signs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps (0: random net)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n-match", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    tr, te = load_images(None, "train"), load_images(None, "test")
    mean = tr.images.reshape(-1, 3).mean(0) / 255.0
    std = tr.images.reshape(-1, 3).std(0) / 255.0

    def prep(d):
        x = normalise(torch.from_numpy(np.ascontiguousarray(d.images.transpose(0, 3, 1, 2))),
                      mean, std)
        return x, torch.as_tensor(d.labels, dtype=torch.long)

    x_tr, y_tr = prep(tr)
    x_te, y_te = prep(te)
    x_match = x_tr[:args.n_match]
    n_classes = len(tr.classes)

    a = tanh_vgg(args.width, n_classes)
    t_train = train(a, x_tr, y_tr, args.steps, args.train_batch, args.seed) if args.steps else 0.
    # the halfway nets get their BatchNorm statistics reset on the match images: so does a, so
    # that the endpoint and a halfway net equal to it are measured alike
    a = reset_bn_stats(a, x_match, args.batch_size)
    perms, signs = planted(a, args.seed + 1)
    b = permute_network(a, perms, signs).eval()
    with torch.no_grad():
        dev = float((a(x_te[:500]) - b(x_te[:500])).abs().max())
    how = f"trained {args.steps} Adam steps ({t_train:.1f} s)" if args.steps else "random"
    print(f"tanh VGG-style net, widths {[a[i].out_channels for i in hidden_units(a)]}, {how} "
          f"on the embedded stand-in images ({n_classes} pseudo-classes, 32 x 32; not CIFAR-10)")
    print(f"  test accuracy {accuracy(a, x_te, y_te):.4f} (chance {1 / n_classes:.3f}); hidden "
          f"signed permutation applied, {sum(int((s < 0).sum()) for s in signs)} of "
          f"{sum(len(s) for s in signs)} channels negated; max |logit a - logit b| = {dev:.2e}")
    print(f"  matching on {x_match.shape[0]} images, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads\n")
    print(f"{'matching':<24}{'time [s]':>10}{'recovered':>11}{'corr':>8}{'acc a':>8}"
          f"{'acc b':>8}{'acc mid':>9}{'barrier':>10}{'acc REP':>9}{'barrier REP':>13}"
          f"{'|mid - a|':>11}")
    for label, group in (("K-aware (signed perms)", "auto"), ("plain permutations", "perm")):
        match_activations(a, b, x_match[:args.batch_size], args.batch_size, group=group)  # warm
        t0 = time.perf_counter()
        match = match_activations(a, b, x_match, args.batch_size, group=group)
        t = time.perf_counter() - t0
        res = merge_barrier(a, b, x_match, x_te, y_te, batch_size=args.batch_size, group=group)
        mid = interpolate(a, permute_network(b, match.perms, match.signs), 0.5)
        gap = max(float((u - v).abs().max()) for u, v in
                  zip(mid.state_dict().values(), a.state_dict().values()) if u.is_floating_point())
        print(f"{label:<24}{t:>10.3f}{str(recovered(match, perms, signs)):>11}"
              f"{np.mean(match.matched_correlation()):>8.3f}{res.accuracy_a:>8.4f}"
              f"{res.accuracy_b:>8.4f}{res.accuracy_mid:>9.4f}{res.barrier:>10.4f}"
              f"{res.accuracy_mid_repair:>9.4f}{res.barrier_repair:>13.4f}{gap:>11.2e}")


if __name__ == "__main__":
    main()
