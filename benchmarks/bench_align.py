"""Benchmark: activation matching + REPAIR on VGG11 over 5,000 CIFAR-10-sized images ([BK23]
Section 4, Jordan et al. 2023), streamed (:mod:`identifiable.torch.align`) versus a
straightforward baseline that keeps every activation in memory, measured in the same run.

* **streamed**: ``match_activations(net, flip_network(net)[0], images)`` (one pass through both
  nets, float64 co-moments, O(C^2) memory per layer) and ``repair(...)`` (one pass through the
  merged net with BatchNorm-style renormalisation, then folding), which reuses the endpoint
  statistics collected during matching (``match=``); the time of ``repair`` measuring them
  itself (one more pass through both nets) is printed too.
* **baseline**: one pass storing the post-activations of every hidden layer of both nets for all
  images (float32 ``N*H*W x C``), Pearson correlations on the stored activations (centre,
  ``A^T B``, norms), ``linear_sum_assignment``; REPAIR storing the pre-activations of both
  endpoints (one pass) and then, layer by layer, those of the merged net (a pass truncated at
  the layer, since each layer's statistics depend on the corrections before it), folding each
  correction before measuring the next layer.

Both must give the same permutations (asserted). Target: streamed >= 2x faster.

The streamed pass runs the two nets as one channel-stacked net (first conv with both nets'
filters, then ``groups=2`` convolutions, concatenated BatchNorms), so each statistic of a batch
is one operation for both nets; the baseline runs them one after the other, as one would.

    python benchmarks/bench_align.py [--width 1.0] [--n 5000] [--batch-size 500] [--data PATH]
                                     [--repeats 1]
"""

from __future__ import annotations

import argparse
import copy
import resource
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from identifiable.torch import align
from identifiable.torch.vgg import vgg11

_BN = (nn.BatchNorm2d, nn.BatchNorm1d)
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Identity, nn.Dropout)


# ----------------------------------------------------------------------------- memory
def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:   # Linux: reset VmHWM to the current RSS
            fh.write("5")
    except OSError:
        pass


def _rss_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2 ** 30:.3f} GiB" if nbytes >= 2 ** 27 else f"{nbytes / 2 ** 20:.2f} MiB"


def measured(fn, *args, **kwargs):
    """(seconds, peak RSS increase in bytes, result) of ``fn(*args, **kwargs)``."""
    _reset_peak()
    base = _rss_kib("VmRSS")
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t
    return dt, max(0, _rss_kib("VmHWM") - base) * 1024, out


# ----------------------------------------------------------------------------- baseline
def _hidden_points(net: nn.Sequential) -> tuple[list[int], list[int], list[int]]:
    """Hidden conv / linear layers, their matching (post-activation) and REPAIR (pre-activation,
    after BN) points: the same rules as align.hidden_units."""
    affine = [i for i, m in enumerate(net) if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    post, pre = [], []
    for i in affine:
        j = i
        while j + 1 < len(net) and isinstance(net[j + 1], _BN + _POINTWISE):
            j += 1
        post.append(j)
        pre.append(i + 1 if isinstance(net[i + 1], _BN) else i)
    return affine, post, pre


def _rows(y: torch.Tensor) -> torch.Tensor:
    """N x C (x H x W) -> (N*H*W) x C, channels last."""
    return y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]) if y.dim() == 4 else y


class Store:
    """Preallocated float32 (N*H*W) x C tensors, filled batch by batch."""

    def __init__(self, n_images: int):
        self.n, self.data, self.pos = n_images, {}, {}

    def add(self, key, y: torch.Tensor) -> None:
        r = _rows(y)
        if key not in self.data:
            per_image = r.shape[0] // y.shape[0]
            self.data[key] = torch.empty((self.n * per_image, r.shape[1]), dtype=r.dtype)
            self.pos[key] = 0
        p = self.pos[key]
        self.data[key][p:p + r.shape[0]].copy_(r)
        self.pos[key] = p + r.shape[0]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.data.values())


def _store_pass(nets: list[nn.Sequential], points: list[int], images: torch.Tensor, bs: int,
                stop: int | None = None) -> Store:
    store = Store(images.shape[0])
    last = max(points) if stop is None else stop
    with torch.no_grad():
        for s in range(0, images.shape[0], bs):
            xs = [images[s:s + bs]] * len(nets)
            for k in range(last + 1):
                xs = [net[k](x) for net, x in zip(nets, xs)]
                if k in points:
                    for j, x in enumerate(xs):
                        store.add((j, k), x)
    return store


def baseline_match(net_a, net_b, images, bs):
    layers, post, _ = _hidden_points(net_a)
    store = _store_pass([net_a.eval(), net_b.eval()], post, images, bs)
    stored = store.nbytes()
    perms = []
    for k in post:
        A, B = store.data.pop((0, k)), store.data.pop((1, k))
        A = A - A.mean(0)
        B = B - B.mean(0)
        cov = (A.T @ B).double()
        va, vb = (A * A).sum(0).double(), (B * B).sum(0).double()
        del A, B
        alive_a, alive_b = va > 1e-12 * va.max(), vb > 1e-12 * vb.max()
        corr = cov / va.clamp_min(1e-300).sqrt()[:, None] / vb.clamp_min(1e-300).sqrt()[None]
        corr[~alive_a] = 0.0
        corr[:, ~alive_b] = 0.0
        rows, cols = linear_sum_assignment(corr.numpy(), maximize=True)
        perms.append(cols[np.argsort(rows)])
    return perms, layers, stored


def baseline_repair(net_mid, net_a, net_b, images, bs, alpha=0.5):
    layers, _, pre = _hidden_points(net_a)
    ends = _store_pass([net_a.eval(), net_b.eval()], pre, images, bs)
    stored = ends.nbytes()
    targets = []
    for k in pre:
        A, B = ends.data.pop((0, k)).double(), ends.data.pop((1, k)).double()
        sa, ma = torch.std_mean(A, 0, correction=0)
        sb, mb = torch.std_mean(B, 0, correction=0)
        del A, B
        targets.append(((1 - alpha) * ma + alpha * mb, (1 - alpha) * sa + alpha * sb))
    out = copy.deepcopy(net_mid).eval()
    for (mu_t, sd_t), i, k in zip(targets, layers, pre):
        one = _store_pass([out], [k], images, bs, stop=k)
        stored = max(stored, one.nbytes())
        Y = one.data.pop((0, k)).double()
        sd, mu = torch.std_mean(Y, 0, correction=0)
        del Y, one
        s = sd_t / sd
        m = out[k]
        with torch.no_grad():
            if k != i:
                m.weight.copy_(m.weight.double() * s)
                m.bias.copy_((m.bias.double() - mu) * s + mu_t)
            else:
                m.weight.copy_(m.weight.double() * s.view(-1, *([1] * (m.weight.dim() - 1))))
                m.bias.copy_((m.bias.double() - mu) * s + mu_t)
    return out, stored


# ----------------------------------------------------------------------------- streamed
def stats_bytes(net: nn.Sequential) -> int:
    """Accumulators of the streamed version, per hidden layer of width C: the C x C float64 cross
    moment, float64 sums and sums of squares of 2C channels at the matching point and at the
    REPAIR point (8 C-vectors), and a float32 shift of 2C channels."""
    layers = align.hidden_units(net)
    return sum(8 * c * c + 64 * c + 8 * c for c in (net[i].weight.shape[0] for i in layers))


def batch_bytes(net: nn.Sequential, bs: int, size=(32, 32)) -> int:
    """Largest activation of one batch (both nets are in flight at once in the streamed pass)."""
    x = torch.zeros(1, 3, *size)
    big = 0
    with torch.no_grad():
        for m in net.eval():
            x = m(x)
            big = max(big, x.numel() * 4 * bs)
    return big


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--data", default=None, help="CIFAR-10 (any source load_images reads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1,
                    help="interleaved repetitions; the best time of each is reported")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    if args.data:
        from identifiable.torch.data import load_images

        data = load_images(args.data, "train")
        mean, std = data.channel_stats()
        x = data.tensor()[:args.n].float() / 255.0
        images = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        source = f"CIFAR-10 train ({data.source or args.data})"
    else:
        images = torch.randn(args.n, 3, 32, 32)
        source = "random N(0, 1)"
    bs = args.batch_size
    net = align.reset_bn_stats(vgg11(args.width), images, bs)    # realistic BN statistics
    flipped, report = align.flip_network(net)
    widths = [net[i].weight.shape[0] for i in align.hidden_units(net)]
    print(f"VGG11 width {args.width} (hidden widths {widths}), {images.shape[0]} images "
          f"({source}), batch {bs}, {torch.get_num_threads()} threads, best of {args.repeats}; "
          f"flip exact: {report.exact}")

    # warm-up on one batch (first-call allocations, oneDNN primitive creation)
    warm = images[:min(bs, images.shape[0])]
    wm = align.match_activations(net, flipped, warm, bs)
    w_al = align.permute_network(flipped, wm.perms)
    align.repair(align.interpolate(net, w_al, 0.5), net, w_al, warm, batch_size=bs, match=wm)
    baseline_repair(align.interpolate(net, w_al, 0.5), net, w_al, warm, bs)
    best: dict[str, tuple[float, int]] = {}

    def keep(name: str, t: float, mem: int) -> None:
        old = best.get(name)
        best[name] = (min(t, old[0]) if old else t, max(mem, old[1]) if old else mem)

    for _ in range(args.repeats):         # interleaved, best time of each: load hits both alike
        # ---- streamed
        t, m, match = measured(align.match_activations, net, flipped, images, bs)
        keep("match", t, m)
        aligned = align.permute_network(flipped, match.perms)
        mid = align.interpolate(net, aligned, 0.5)
        t, m, rep = measured(align.repair, mid, net, aligned, images, batch_size=bs, match=match)
        keep("repair", t, m)
        t, m, _ = measured(align.repair, mid, net, aligned, images, batch_size=bs)
        keep("repair_own", t, m)
        # ---- baseline
        t, m, (bperms, blayers, stored_match) = measured(baseline_match, net, flipped, images, bs)
        keep("bmatch", t, m)
        t, m, (brep, stored_rep) = measured(baseline_repair, mid, net, aligned, images, bs)
        keep("brepair", t, m)
    (t_match, mem_match), (t_rep, mem_rep) = best["match"], best["repair"]
    t_rep_own = best["repair_own"][0]
    (t_bmatch, mem_bmatch), (t_brep, mem_brep) = best["bmatch"], best["brepair"]
    t_stream, t_base = t_match + t_rep, t_bmatch + t_brep

    same = blayers == match.layers and all(np.array_equal(p, q)
                                           for p, q in zip(bperms, match.perms))
    n_diff = sum(int((np.asarray(p) != q).sum()) for p, q in zip(bperms, match.perms))
    with torch.no_grad():
        probe = images[:min(500, images.shape[0])]
        y1, y2 = rep(probe), brep(probe)
    logit_diff = float((y1 - y2).abs().max() / y2.abs().max())
    print(f"streamed : match {t_match:7.2f} s + REPAIR {t_rep:7.2f} s = {t_stream:7.2f} s "
          f"(REPAIR re-measuring the endpoints itself: {t_rep_own:7.2f} s)")
    print(f"baseline : match {t_bmatch:7.2f} s + REPAIR {t_brep:7.2f} s = {t_base:7.2f} s")
    print(f"speed-up : {t_base / t_stream:5.2f}x (match {t_bmatch / t_match:5.2f}x, REPAIR "
          f"{t_brep / t_rep:5.2f}x; with REPAIR re-measuring the endpoints "
          f"{t_base / (t_match + t_rep_own):5.2f}x)  target >= 2x: "
          f"{'OK' if t_base >= 2 * t_stream else 'MISSED'}")
    print(f"memory   : streamed statistics {_gib(stats_bytes(net))} (+ one batch in flight, "
          f"largest activation {_gib(batch_bytes(net, bs))} per net); baseline stored "
          f"activations {_gib(stored_match)} (matching), {_gib(stored_rep)} (REPAIR)")
    print(f"peak RSS : streamed match +{_gib(mem_match)}, REPAIR +{_gib(mem_rep)}; baseline "
          f"match +{_gib(mem_bmatch)}, REPAIR +{_gib(mem_brep)}")
    print(f"agreement: permutations identical: {same} ({n_diff} channels differ); orders "
          f"(>2) per layer {[align.order_counts(p)['>2'] for p in match.perms]}; max |logit "
          f"difference| of the two REPAIRed nets / max |logit| = {logit_diff:.2g}")
    assert same, "streamed and baseline permutations differ"


if __name__ == "__main__":
    main()
