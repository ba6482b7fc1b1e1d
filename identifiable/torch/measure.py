"""Measured layerwise equivariance of trained networks (Section 6 and Appendix C [SMBK26]).

For the latent space V_i of a network (``f_i o ... o f_1``; ``"f1"`` is the first layer's output,
``"f2"`` the composite ``f_2 o f_1``) and a mirror m of the input, we fit the latent action

* **least squares**: the matrix ``A_i`` minimising ``sum |A_i f(y) - f(m y)|^2`` over one draw
  of probes y (Theorem 4.1 predicts that such an A_i exists and, by Remark 4.2, lies in the
  intertwiner group K_i of the layer's activation);
* **K-constrained**: the element of K_i (signed permutations for tanh, permutations for GELU,
  Section 5.1) with the smallest least-squares residual (a linear assignment on the same
  statistics, :func:`identifiable.latent_groups.nearest_monomial`), and the nearest element of
  K_i to A_i, with the distance ``|A_i - K|_F / |A_i|_F``;

and evaluate them on an *independent* draw: the relative equivariance error is the median over
the draw of ``|f(m y) - A f(y)| / |f(y)|``. The statistics ``Z^T Z`` and ``Z^T Y`` are streamed
in batches (memory O(width^2)); the evaluation keeps one float per sample.

Probes (recorded in every result): ``"noise"``, N(0, 1) in the normalised input space (the
default, as in the paper), and ``"crops"``, random crops of real images. The ``identity_error``
(A = I) and the ``latent_mean_ratio`` (``|mean f| / spread of f``) are reported beside each fit: a
probe on which mirroring hardly changes f, or whose mean dominates the latents, says nothing.
The up-down mirror ``"ud"``, which is never trained, is the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from identifiable.latent_groups import nearest_monomial
from identifiable.numbers import RANK_RTOL
from identifiable.torch.augment import MIRRORS, augment
from identifiable.torch.nets import INTERTWINER_KIND

__all__ = ["CrossStats", "LatentFit", "least_squares", "solve_normal", "best_monomial_fit",
           "relative_errors", "equivariance_report", "noise_probe", "crop_probe",
           "monomial_parts", "PROBES"]

PROBES = ("noise", "crops")
#: floor of a denominator where it is 0 (a guard against 0 / 0 in the branch that is not taken,
#: not a tolerance)
_DIVISION_GUARD = 1e-30
#: relative gain on the diagonal that breaks ties of the assignment towards the identity (dead
#: units); far below any gain difference that the data can show
_TIE_BREAK = 1e-9


class CrossStats:
    """Streaming ``G = sum z z^T`` and ``C = sum z y^T`` (float64 accumulators).

    Each batch's products ``Z^T Z`` and ``Z^T Y`` are computed in the batch's dtype (no copy of
    the batch) and added into float64 totals, so memory stays O(width^2) for any number of samples.
    """

    def __init__(self, d_in: int, d_out: int | None = None):
        d_out = d_in if d_out is None else d_out
        self.G = np.zeros((d_in, d_in))
        self.C = np.zeros((d_in, d_out))
        self.s = np.zeros(d_in)
        self.n = 0

    def update(self, Z: Tensor | np.ndarray, Y: Tensor | np.ndarray) -> None:
        Z, Y = torch.as_tensor(Z), torch.as_tensor(Y)
        if Z.dim() != 2 or Y.dim() != 2 or Z.shape[0] != Y.shape[0]:
            raise ValueError(f"Z, Y: expected N x d matrices with equal N, got {tuple(Z.shape)} "
                             f"and {tuple(Y.shape)}")
        if Z.shape[1] != self.G.shape[0] or Y.shape[1] != self.C.shape[1]:
            raise ValueError(f"Z, Y: expected widths {self.G.shape[0]}, {self.C.shape[1]}, got "
                             f"{Z.shape[1]}, {Y.shape[1]}")
        d = Z.shape[1]
        if d >= 128:  # G is symmetric: three of its four blocks are enough (3/4 of the flops)
            h = d // 2
            a, b = Z[:, :h], Z[:, h:]
            ab = (a.T @ b).cpu().double().numpy()
            self.G[:h, :h] += (a.T @ a).cpu().double().numpy()
            self.G[h:, h:] += (b.T @ b).cpu().double().numpy()
            self.G[:h, h:] += ab
            self.G[h:, :h] += ab.T
        else:
            self.G += (Z.T @ Z).cpu().double().numpy()
        self.C += (Z.T @ Y).cpu().double().numpy()
        self.s += Z.sum(dim=0).cpu().double().numpy()
        self.n += int(Z.shape[0])

    def mean_ratio(self) -> float:
        """``|mean z| / sqrt(E |z - mean z|^2)``: large when a constant vector dominates the
        latents (then every fit looks good and the probe says little)."""
        m = self.s / max(self.n, 1)
        var = max(np.trace(self.G) / max(self.n, 1) - m @ m, 0.0)
        return float(np.sqrt(m @ m) / np.sqrt(var)) if var > 0 else float("inf")

    def solve(self, rcond: float = RANK_RTOL) -> np.ndarray:
        """The least-squares A with ``A z ~ y`` (minimum-norm where the z span a subspace).

        Solved through the eigen-decomposition of the symmetric ``G``; eigenvalues below
        ``rcond * max`` (dead or redundant units) are treated as zero, as in ``lstsq`` (the
        default is the numeric-rank tolerance :data:`identifiable.numbers.RANK_RTOL`: the
        eigenvalues of the symmetric ``G`` are its singular values).
        """
        if self.n == 0:
            raise ValueError("CrossStats: no samples")
        return solve_normal(self.G, self.C, rcond)

    def best_monomial(self, kind: str) -> np.ndarray:
        """The element K of the monomial group ``kind`` minimising ``sum |K z - y|^2``.

        For (signed) permutations ``|K z|= |z|``, so this maximises ``<K, sum y z^T>_F``: a
        linear assignment, solved by :func:`nearest_monomial` on ``C^T`` (only its argmax
        structure matters, so the scale of ``C`` is irrelevant).
        """
        if kind not in ("one", "sign"):
            raise ValueError(f"kind: the best-fit assignment needs 'one' or 'sign', got {kind!r}")
        M = self.C.T
        return nearest_monomial(M / max(np.abs(M).max(), 1e-300), kind)


def solve_normal(G: np.ndarray, C: np.ndarray, rcond: float = RANK_RTOL) -> np.ndarray:
    """The least-squares ``A`` with ``A z ~ y`` from ``G = sum z z^T`` and ``C = sum z y^T``
    (minimum-norm where the z span a subspace): eigen-decomposition of the symmetric G,
    eigenvalues below ``rcond * max`` treated as zero (Section 6 / Appendix C [SMBK26])."""
    w, V = np.linalg.eigh(G)
    keep = w > rcond * max(w.max(), 1e-300)
    X = (V[:, keep] / w[keep]) @ (V[:, keep].T @ C)
    return X.T


def best_monomial_fit(G: np.ndarray, C: np.ndarray, kind: str) -> np.ndarray:
    """The element K of the monomial group ``kind`` (scalings ``"one"``, ``"sign"``,
    ``"positive"``, ``"nonzero"``, Section 5.1 [SMBK26]) minimising ``sum |K z - y|^2``, from
    ``G = sum z z^T`` and ``C = sum z y^T``.

    Row i of ``K`` takes one input j with value ``a``: the residual of that row is
    ``sum y_i^2 - (2 a C[j, i] - a^2 G[j, j])``, so the best permutation maximises the summed
    gain, a linear assignment (:func:`nearest_monomial` for +-1 entries, whose gain is linear in
    ``C``): ``a = C/G`` with gain ``C^2/G`` for ``"nonzero"``, and ``C`` replaced by
    ``max(C, 0)`` (the closure of ``R_>0``, as :func:`nearest_monomial`) for ``"positive"``.
    A unit with ``G[j, j] = 0`` (dead) gets the value 1. Ties (dead units, whose column of the
    gain is zero, so that any assignment fits them equally) are broken towards the identity by
    a gain of ``1e-9 * max gain`` on the diagonal, so that an exactly equivariant net with dead
    units still gives a k that is a homomorphism.
    """
    M = np.asarray(C, dtype=np.float64).T
    if kind in ("one", "sign"):
        M = M / max(np.abs(M).max(), 1e-300)
        if M.shape[0] == M.shape[1]:
            M = M + _TIE_BREAK * np.eye(M.shape[0])
        return nearest_monomial(M, kind)
    if kind not in ("positive", "nonzero"):
        raise ValueError(f"kind: expected 'one', 'sign', 'positive' or 'nonzero', got {kind!r}")
    from scipy.optimize import linear_sum_assignment

    g = np.diag(np.asarray(G, dtype=np.float64)).copy()
    alive = g > 0
    num = np.maximum(M, 0.0) if kind == "positive" else M
    gain = np.where(alive[None, :], num * num / np.where(alive, g, 1.0)[None, :], 0.0)
    if gain.shape[0] == gain.shape[1]:
        gain = gain + _TIE_BREAK * max(float(gain.max()), 1e-300) * np.eye(gain.shape[0])
    rows, cols = linear_sum_assignment(gain, maximize=True)
    vals = np.where(alive[cols], num[rows, cols] / np.where(alive[cols], g[cols], 1.0), 1.0)
    K = np.zeros_like(M)
    K[rows, cols] = vals
    return K


def least_squares(Z: Tensor | np.ndarray, Y: Tensor | np.ndarray) -> np.ndarray:
    """All-in-memory least squares ``A = argmin |Z A^T - Y|`` (reference for CrossStats)."""
    Z = np.asarray(torch.as_tensor(Z).double())
    Y = np.asarray(torch.as_tensor(Y).double())
    return np.linalg.lstsq(Z, Y, rcond=None)[0].T


def relative_errors(Z: Tensor, Y: Tensor, A: np.ndarray | Tensor) -> Tensor:
    """Per-sample ``|y - A z| / |z|`` (NaN where ``z = 0``)."""
    A = torch.as_tensor(A, dtype=Z.dtype, device=Z.device)
    num = torch.linalg.vector_norm(Y - Z @ A.T, dim=1)
    den = torch.linalg.vector_norm(Z, dim=1)
    return torch.where(den > 0, num / den.clamp_min(_DIVISION_GUARD),
                       torch.full_like(den, float("nan")))


def monomial_parts(K: np.ndarray) -> tuple[list[int], list[float]]:
    """For a monomial K: ``perm[i]`` with ``K[i, perm[i]] != 0`` and the signs / values."""
    perm = np.abs(K).argmax(axis=1)
    return perm.tolist(), K[np.arange(K.shape[0]), perm].tolist()


@dataclass
class LatentFit:
    """One row of the equivariance table: latent ``layer`` under ``mirror`` on ``probe``."""

    layer: str
    index: int
    mirror: str
    probe: str
    activation: str | None
    kind: str | None
    ls_error: float
    identity_error: float
    n_fit: int
    n_eval: int
    k_error: float | None = None
    k_nearest_error: float | None = None
    dist_to_K: float | None = None
    A: np.ndarray | None = field(default=None, repr=False)
    K: np.ndarray | None = field(default=None, repr=False)
    K_nearest: np.ndarray | None = field(default=None, repr=False)
    K_sign: np.ndarray | None = field(default=None, repr=False)
    k_sign_error: float | None = None
    mean_ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {"layer": self.layer, "index": self.index, "mirror": self.mirror, "probe": self.probe,
             "layer_activation": self.activation, "K": _K_NAMES.get(self.kind),
             "ls_error": self.ls_error, "k_error": self.k_error,
             "k_nearest_error": self.k_nearest_error, "dist_ls_to_K": self.dist_to_K,
             "k_sign_error": self.k_sign_error,
             "identity_error": self.identity_error, "latent_mean_ratio": self.mean_ratio,
             "probe_detail": _PROBE_DETAIL.get(self.probe, self.probe),
             "n_fit": self.n_fit, "n_eval": self.n_eval}
        if self.K is not None:
            perm, vals = monomial_parts(self.K)
            d["K_perm"], d["K_signs"] = perm, [int(np.sign(v)) for v in vals]
            d["K_fixed_points"] = int(sum(i == p for i, p in enumerate(perm)))
            d["K_negated"] = int(sum(v < 0 for v in vals))
        d.update(self.extra)
        return d


_K_NAMES = {"sign": "signed permutations", "one": "permutations"}
_PROBE_DETAIL = {"noise": "N(0,1) per pixel in the normalised input space",
                 "crops": "random resized crops of real images, normalised"}


def noise_probe(shape: Sequence[int]) -> Callable[[int, torch.Generator], Tensor]:
    """N(0, 1) images in the normalised input space (the paper's probe)."""
    shape = tuple(shape)

    def draw(n: int, gen: torch.Generator) -> Tensor:
        return torch.randn((n, *shape), generator=gen)

    return draw


def crop_probe(images: Tensor, net) -> Callable[[int, torch.Generator], Tensor]:
    """Random resized crops (no mirror, no jitter) of real ``uint8`` images, normalised."""
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f"images: expected uint8 N x 3 x H x W, got {images.dtype} "
                         f"{tuple(images.shape)}")
    size = net.in_shape[-1]

    def draw(n: int, gen: torch.Generator) -> Tensor:
        idx = torch.randint(0, images.shape[0], (n,), generator=gen)
        x = augment(images.index_select(0, idx.to(images.device)), gen, size, mirror=False,
                    jitter=0.0)
        return net.normalise(x.to(net.mean.device)).cpu()

    return draw


def _kind_of(net, i: int) -> tuple[str | None, str | None]:
    act = net.activation_of(i) if hasattr(net, "activation_of") else None
    return act, INTERTWINER_KIND.get(act) if act else None


@torch.no_grad()
def equivariance_report(net, layers: Sequence[int] = (1, 2), mirrors: Sequence[str] = ("lr", "ud"),
                        probe: str = "noise", images: Tensor | None = None,
                        n_fit: int = 100_000, n_eval: int = 100_000, batch: int = 8192,
                        seed: int = 0) -> list[LatentFit]:
    """Fit and evaluate the latent mirror actions of ``net`` (one :class:`LatentFit` per pair).

    ``probe="crops"`` needs ``images`` (uint8 ``N x 3 x H x W``). The fit uses ``n_fit`` probes,
    the errors an independent draw of ``n_eval``; both are streamed in batches of ``batch``.
    """
    if probe not in PROBES:
        raise ValueError(f"probe: expected one of {PROBES}, got {probe!r}")
    for m in mirrors:
        if m not in MIRRORS:
            raise ValueError(f"mirrors: expected entries of {sorted(MIRRORS)}, got {m!r}")
    n_layers = getattr(net, "n_layers", None)
    for i in layers:
        if not isinstance(i, int) or not 1 <= i < (n_layers or 10**9):
            raise ValueError(f"layers: expected latent indices 1..{(n_layers or 2) - 1}, got {i}")
    if n_fit < 1 or n_eval < 1:
        raise ValueError(f"n_fit, n_eval: expected positive counts, got {n_fit}, {n_eval}")
    if probe == "crops":
        if images is None:
            raise ValueError("images: the 'crops' probe needs images (uint8 N x 3 x H x W)")
        draw = crop_probe(images, net)
    else:
        draw = noise_probe(net.in_shape)
    dev = next(net.parameters()).device
    was_training = net.training
    net.eval()
    gen = torch.Generator().manual_seed(seed)

    def batches(n: int):
        for s in range(0, n, batch):
            y = draw(min(batch, n - s), gen).to(dev)
            base = net.latents(y, layers)
            for m in mirrors:
                yield m, base, net.latents(MIRRORS[m](y), layers)

    stats: dict[tuple[int, str], CrossStats] = {}
    for m, base, mirrored in batches(n_fit):
        for i in layers:
            z, y = base[i].flatten(1), mirrored[i].flatten(1)
            if (i, m) not in stats:
                stats[(i, m)] = CrossStats(z.shape[1], y.shape[1])
            stats[(i, m)].update(z, y)
    fits: dict[tuple[int, str], dict[str, Any]] = {}
    for (i, m), st in stats.items():
        act, kind = _kind_of(net, i)
        A = st.solve()
        f: dict[str, Any] = {"A": A, "act": act, "kind": kind, "mean_ratio": st.mean_ratio()}
        if kind is not None and A.shape[0] == A.shape[1]:
            f["K"] = st.best_monomial(kind)
            f["K_nearest"] = nearest_monomial(A, kind)
            f["dist"] = float(np.linalg.norm(A - f["K_nearest"]) / max(np.linalg.norm(A), 1e-300))
        if A.shape[0] == A.shape[1]:
            # the best signed permutation whatever the activation: shows GELU's negated copies
            # (the bypass sigma(x) - sigma(-x) = x) in Figure 2, as the paper colours them
            f["K_sign"] = st.best_monomial("sign")
        fits[(i, m)] = f
    errs: dict[tuple[int, str], dict[str, list[Tensor]]] = {key: {} for key in fits}
    for m, base, mirrored in batches(n_eval):
        for i in layers:
            z, y = base[i].flatten(1), mirrored[i].flatten(1)
            f, e = fits[(i, m)], errs[(i, m)]
            for name in ("A", "K", "K_nearest", "K_sign"):
                if name in f:
                    e.setdefault(name, []).append(relative_errors(z, y, f[name]).cpu())
            if z.shape == y.shape:
                e.setdefault("I", []).append(relative_errors(z, y, np.eye(z.shape[1])).cpu())
    net.train(was_training)

    def med(key, name):
        vals = errs[key].get(name)
        return float(torch.nanmedian(torch.cat(vals)).item()) if vals else None

    out = []
    for (i, m), f in fits.items():
        out.append(LatentFit(
            layer=f"f{i}", index=i, mirror=m, probe=probe, activation=f["act"], kind=f["kind"],
            ls_error=med((i, m), "A"), identity_error=med((i, m), "I"), n_fit=n_fit,
            n_eval=n_eval, k_error=med((i, m), "K"), k_nearest_error=med((i, m), "K_nearest"),
            dist_to_K=f.get("dist"), A=f["A"], K=f.get("K"), K_nearest=f.get("K_nearest"),
            K_sign=f.get("K_sign"), k_sign_error=med((i, m), "K_sign"),
            mean_ratio=f["mean_ratio"]))
    out.sort(key=lambda r: (r.index, list(mirrors).index(r.mirror)))
    return out
