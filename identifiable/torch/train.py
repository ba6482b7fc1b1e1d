"""Training with the mirror-equivariance loss of eq. (22) [SMBK26], as in Appendix C.

``loss = l(f(x), y) + lambda * MSE(f(x), mirror[f(mirror[x])])`` where l is the MSE to ``y = x``
for the autoencoder and cross-entropy for the classifier (whose outer mirror is omitted, labels
being mirror invariant). lambda is 0 in the first half of the epochs and 5 (autoencoder) / 1
(classifier) after. AdamW with a cosine learning-rate schedule per step; the paper uses batch
4096, 1000 epochs, lr 1e-3, weight decay 0.99.

The data set lives on the device as a ``uint8`` tensor; each batch is augmented in torch at once
(:func:`identifiable.torch.augment.augment`) and normalised per channel with the training set's
statistics. All randomness after the initialisation comes from one :class:`torch.Generator`
whose state is part of every checkpoint, so a killed run resumed with ``resume=True`` ends in
exactly the state of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from identifiable.results import git_commit
from identifiable.torch.augment import augment, mirror_lr, resize
from identifiable.torch.checkpoint import (
    data_identity,
    load_checkpoint,
    require_same_run,
    save_checkpoint,
    training_commits,
)
from identifiable.torch.data import ImageData
from identifiable.torch.nets import TASKS, AttentionAutoencoder, MirrorMLP

__all__ = ["TrainConfig", "TrainResult", "train", "build_model", "equivariance_weight",
           "combined_loss", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"
#: config fields that may differ between an interrupted run and its resumption
_RESUMABLE = {"device", "checkpoint_every", "progress", "log_every"}


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults: Appendix C [SMBK26])."""

    task: str = "autoencoder"
    activation: str = "tanh"
    arch: str = "mlp"
    epochs: int = 1000
    batch_size: int = 4096
    lr: float = 1e-3
    weight_decay: float = 0.99
    lam: float | None = None
    seed: int = 0
    crop: int = 14
    crop_scale: tuple[float, float] = (0.3, 1.0)
    jitter: float = 0.4
    device: str = "cpu"
    checkpoint_every: int = 50
    log_every: int = 0
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, got {self.task!r}")
        if self.arch not in ("mlp", "attention"):
            raise ValueError(f"arch: expected 'mlp' or 'attention', got {self.arch!r}")
        if self.arch == "attention" and self.task != "autoencoder":
            raise ValueError("task: the attention network of Section 6.2 is an autoencoder")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        self.crop_scale = tuple(float(s) for s in self.crop_scale)

    @property
    def lam_after(self) -> float:
        """lambda of eq. (22) in the second half: 5 (autoencoder) / 1 (classifier) by default."""
        if self.lam is not None:
            return float(self.lam)
        return 5.0 if self.task == "autoencoder" else 1.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        return d


def equivariance_weight(config: TrainConfig, epoch: int) -> float:
    """lambda of eq. (22) at ``epoch`` (0-based): 0 in the first half, then ``lam_after``."""
    return config.lam_after if epoch >= config.epochs / 2 else 0.0


def combined_loss(net: torch.nn.Module, x: Tensor, y: Tensor | None, task: str,
                  lam: float) -> tuple[Tensor, Tensor]:
    """eq. (22): (total loss, equivariance term). The mirror pass is skipped when lam = 0."""
    out = net(x)
    base = F.mse_loss(out, x) if task == "autoencoder" else F.cross_entropy(out, y)
    if lam == 0:
        return base, torch.zeros((), device=x.device)
    out_m = net(mirror_lr(x))
    target = mirror_lr(out_m) if task == "autoencoder" else out_m
    eq = F.mse_loss(out, target)
    return base + lam * eq, eq.detach()


@dataclass
class TrainResult:
    net: torch.nn.Module
    config: TrainConfig
    history: list[dict[str, float]]
    checkpoint: Path | None
    metrics: dict[str, float]
    finished: bool
    #: the commits that trained the net (:func:`identifiable.torch.checkpoint.training_commits`)
    commits: list[str] = field(default_factory=list)

    @property
    def train_seconds(self) -> float | None:
        """Training time so far, accumulated across resumes (the last epoch's ``seconds``);
        None before any epoch."""
        return self.history[-1]["seconds"] if self.history else None


def build_model(config: TrainConfig, mean=None, std=None, n_classes: int = 10):
    """The network the config asks for, seeded with ``config.seed``."""
    torch.manual_seed(config.seed)
    if config.arch == "attention":
        return AttentionAutoencoder(in_shape=(3, config.crop, config.crop), mean=mean, std=std)
    return MirrorMLP(config.task, config.activation, in_shape=(3, config.crop, config.crop),
                     n_classes=n_classes, mean=mean, std=std)


def _label(config: TrainConfig) -> str:
    return "attention" if config.arch == "attention" else f"{config.task}-{config.activation}"


def _lr_at(config: TrainConfig, step: int, total: int) -> float:
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


@torch.no_grad()
def evaluate(net, data: ImageData, config: TrainConfig, batch: int = 4096) -> dict[str, float]:
    """Test metrics on whole images resized to the crop size: MSE (autoencoder) / accuracy."""
    dev = next(net.parameters()).device
    images = data.tensor(dev)
    labels = torch.from_numpy(data.labels).to(dev)
    tot, correct, n = 0.0, 0, 0
    net.eval()
    for s in range(0, len(data), batch):
        x = net.normalise(resize(images[s:s + batch], config.crop))
        out = net(x)
        if config.task == "autoencoder":
            tot += float(F.mse_loss(out, x, reduction="sum"))
        else:
            tot += float(F.cross_entropy(out, labels[s:s + batch], reduction="sum"))
            correct += int((out.argmax(1) == labels[s:s + batch]).sum())
        n += x.shape[0]
    net.train()
    if config.task == "autoencoder":
        return {"test_mse": tot / (n * x[0].numel())}
    return {"test_loss": tot / n, "test_accuracy": correct / n}


def _state(net, opt, gen, config, epoch, history, mean, std, data_id,
           commits) -> dict[str, Any]:
    return {"arch": net.arch(), "config": config.to_dict(), "epoch": epoch,
            "model": net.state_dict(), "optimizer": opt.state_dict(), "rng": gen.get_state(),
            "history": history, "norm": {"mean": mean, "std": std},
            "classes": list(data_id["classes"]), "data": data_id, "commits": commits}


def train(config: TrainConfig, data: ImageData, out_dir: str | os.PathLike | None = None,
          resume: bool = True, test: ImageData | None = None, stop_after: int | None = None,
          log: Callable[[str], None] | None = None, fresh: bool = False) -> TrainResult:
    """Train per ``config`` on ``data``; checkpoints in ``out_dir`` (``checkpoint.pt``).

    An existing ``out_dir/checkpoint.pt`` is never silently overwritten: by default
    (``resume=True``) training continues from it, after checking that it belongs to the same
    run (architecture, every training setting outside device / logging, and the data: source
    fingerprint, size, classes; a mismatch is refused naming the fields); ``fresh=True``
    starts over and replaces it; ``resume=False`` without ``fresh`` refuses to touch it.
    ``stop_after`` stops after that many epochs in total (used to simulate a killed run).
    ``log`` receives one line every ``config.log_every`` epochs and at each checkpoint.
    """
    dev = torch.device(config.device)
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT_NAME if out is not None else None
    mean, std = data.channel_stats()
    net = build_model(config, mean, std, n_classes=max(10, len(data.classes))).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed + 1)
    history: list[dict[str, float]] = []
    start = 0
    state = None
    data_id = data_identity(data)
    if ckpt is not None and ckpt.exists() and not fresh:
        if not resume:
            raise ValueError(f"--out: {ckpt} exists; resume it (the default) or pass --fresh "
                             "to start over")
        state = load_checkpoint(ckpt, arch=net.arch(), map_location=dev)
        require_same_run(ckpt, state, config.to_dict(), data_id, ignore=_RESUMABLE)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"])
        history = list(state["history"])
        start = int(state["epoch"])
        mean, std = state["norm"]["mean"], state["norm"]["std"]
    images = data.tensor(dev)
    labels = torch.from_numpy(data.labels).to(dev)
    n = len(data)
    bs = min(config.batch_size, n)
    steps = math.ceil(n / bs)
    total = config.epochs * steps
    end = config.epochs if stop_after is None else min(config.epochs, stop_after)
    commits = training_commits(state, git_commit() if start < end else None, trains=start < end)
    show = config.progress and sys.stderr.isatty()
    try:
        from tqdm.auto import tqdm
        bar = tqdm(range(start, end), initial=start, total=config.epochs, disable=not show,
                   desc=_label(config), leave=False)
    except ImportError:  # pragma: no cover
        bar = range(start, end)
    # training seconds accumulate across resumes (an epoch's "seconds" is the total so far)
    base = float(history[-1].get("seconds", 0.0)) if history else 0.0
    t0 = time.perf_counter()
    net.train()
    for epoch in bar:
        lam = equivariance_weight(config, epoch)
        perm = torch.randperm(n, generator=gen).to(dev)
        sums = torch.zeros(2, device=dev)
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            x = net.normalise(augment(images.index_select(0, idx), gen, config.crop,
                                      config.crop_scale, jitter=config.jitter))
            for g in opt.param_groups:
                g["lr"] = _lr_at(config, epoch * steps + s, total)
            loss, eq = combined_loss(net, x, labels[idx], config.task, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += torch.stack([loss.detach(), eq])
        rec = {"epoch": epoch + 1, "loss": float(sums[0]) / steps,
               "eq_loss": float(sums[1]) / steps, "lam": lam, "lr": opt.param_groups[0]["lr"],
               "seconds": base + time.perf_counter() - t0}
        history.append(rec)
        if show:
            bar.set_postfix(loss=f"{rec['loss']:.4f}", eq=f"{rec['eq_loss']:.4f}")
        done = epoch + 1
        save_now = ckpt is not None and (done % max(1, config.checkpoint_every) == 0
                                         or done == end)
        if save_now:
            save_checkpoint(ckpt, _state(net, opt, gen, config, done, history, mean, std,
                                         data_id, commits))
        if log is not None and ((config.log_every and done % config.log_every == 0) or save_now):
            log(f"[{_label(config)}] epoch {done}/{config.epochs} "
                f"loss {rec['loss']:.5f} eq {rec['eq_loss']:.5f} lam {lam:g} "
                f"lr {rec['lr']:.2e} {rec['seconds']:.0f}s" + (" (checkpoint)" if save_now else ""))
    net.eval()
    finished = (history[-1]["epoch"] if history else 0) >= config.epochs
    metrics = evaluate(net, test, config) if (test is not None and finished) else {}
    return TrainResult(net, config, history, ckpt, metrics, finished, commits)
