"""The training recipes of Table 1 [BK23] for VGG11 / GCNN-VGG11 / PGCNN-VGG11 on CIFAR-10, and
the same recipes for the CIFAR ResNet-20 / GCNN / PGCNN ResNet-20 of
:mod:`identifiable.torch.resnet` (``ClassifierConfig(net="resnet20")``; the ResNets of [BK23]
Section 4.2 / Table 3 at CIFAR size).

==================  =====  ==========  ===============================================
recipe              net    flip aug.   loss
==================  =====  ==========  ===============================================
``cnn``             CNN    yes         cross-entropy (C.-E.)
``cnn-noaug``       CNN    no          C.-E.
``cnn-inv``         CNN    yes         C.-E. + inv-loss from the start
``cnn-late-inv``    CNN    yes         C.-E., + inv-loss after 20% of the epochs
``gcnn``            GCNN   yes         C.-E.
``pgcnn``           PGCNN  yes         C.-E.
``pgcnn-late-inv``  PGCNN  yes         C.-E., + inv-loss after 20% of the epochs
==================  =====  ==========  ===============================================

The invariance loss of Section 4 [BK23] is ``||Phi(x) - Phi(tau x)||`` (Euclidean norm of the
logit difference, averaged over the batch; ``tau`` flips the width), added to the cross-entropy
with weight :attr:`ClassifierConfig.inv_weight` (1 by default). ``x`` and ``tau x`` go through
the network as one batch.

Optimiser and schedule (the paper's appendix does not give them; ours, fixed here):
SGD with Nesterov momentum 0.9, weight decay 5e-4 (not on BatchNorm and bias parameters),
batch 256, a triangular learning rate rising linearly from 0 to ``lr`` = 0.05 over the first
15% of the steps and falling linearly to 0 at the end (per step). Augmentation (all recipes):
random crops of the 4-pixel zero-padded image; plus horizontal flips with probability 1/2
except for ``cnn-noaug``. Inputs are normalised per channel with the training set's statistics;
the normalisation is outside the network (the networks take normalised images).

Everything random after the initialisation comes from one :class:`torch.Generator`; a
checkpoint (written after every epoch) holds its state, so a killed run resumed ends where an
uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from identifiable.results import git_commit
from identifiable.torch.checkpoint import (
    build_checked,
    data_identity,
    load_checkpoint,
    require_same_run,
    save_checkpoint,
    training_commits,
)
from identifiable.torch.data import ImageData
from identifiable.torch.table1 import RECIPES, Recipe
from identifiable.torch.vgg import build_classifier

__all__ = ["Recipe", "RECIPES", "ClassifierConfig", "TrainedClassifier", "train_recipe",
           "load_classifier", "normalise", "random_crop_flip", "invariance_loss", "lr_at",
           "evaluate_accuracy", "checkpoint_path"]


@dataclass
class ClassifierConfig:
    """Hyper-parameters of :func:`train_recipe` (see the module docstring for the defaults)."""

    recipe: str = "cnn"
    width: float = 1.0
    #: the network family (:data:`identifiable.torch.vgg.NETWORKS`): "vgg11" or "resnet20"
    net: str = "vgg11"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 0.05
    warmup: float = 0.15
    momentum: float = 0.9
    weight_decay: float = 5e-4
    inv_weight: float = 1.0
    crop_padding: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe: expected one of {sorted(RECIPES)}, got {self.recipe!r}")
        if not self.width > 0:
            raise ValueError(f"width: expected > 0, got {self.width}")
        from identifiable.torch.vgg import NETWORKS

        if self.net not in NETWORKS:
            raise ValueError(f"net: expected one of {list(NETWORKS)}, got {self.net!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup: expected a fraction in [0, 1), got {self.warmup}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def arch(self, n_classes: int) -> dict[str, Any]:
        """The checkpoint's architecture record (a VGG11's is unchanged from before ResNets)."""
        if self.net == "vgg11":
            return {"kind": "vgg", "arch": RECIPES[self.recipe].arch, "width": self.width,
                    "n_classes": n_classes}
        return {"kind": "resnet", "net": self.net, "arch": RECIPES[self.recipe].arch,
                "width": self.width, "n_classes": n_classes}

    def inv_on(self, epoch: int) -> bool:
        """Whether the inv-loss is on in ``epoch`` (0-based)."""
        start = RECIPES[self.recipe].inv_start
        return start is not None and epoch >= math.ceil(start * self.epochs)


@dataclass
class TrainedClassifier:
    """A trained net (eval mode), its config, test accuracy, history and checkpoint path."""

    net: nn.Module
    config: ClassifierConfig
    accuracy: float
    history: list[dict[str, float]]
    path: Path | None
    mean: list[float]
    std: list[float]
    #: the commits that trained the net (:func:`identifiable.torch.checkpoint.training_commits`)
    commits: list[str] = dataclasses.field(default_factory=list)

    @property
    def train_seconds(self) -> float | None:
        """Training time so far, accumulated across resumes (the last epoch's ``seconds``);
        None before any epoch."""
        return self.history[-1]["seconds"] if self.history else None


def checkpoint_path(out_dir: str | os.PathLike, recipe: str, seed: int,
                    net: str = "vgg11") -> Path:
    """``OUT/nets/RECIPE-sSEED.pt`` for a VGG11, ``OUT/nets/NET-RECIPE-sSEED.pt`` otherwise (so
    that the families never share a checkpoint)."""
    prefix = "" if net == "vgg11" else f"{net}-"
    return Path(out_dir) / "nets" / f"{prefix}{recipe}-s{seed}.pt"


def normalise(images: Tensor, mean, std) -> Tensor:
    """``uint8 N x 3 x H x W`` -> float32, per-channel ``(x / 255 - mean) / std``."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255.0 - m) / s


def random_crop_flip(x: Tensor, gen: torch.Generator, padding: int = 4,
                     flip: bool = True) -> Tensor:
    """Random crops of the zero-padded batch and random horizontal flips, no loop over samples."""
    n, c, h, w = x.shape
    if padding:
        xp = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen).to(x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        x = xp.gather(2, rows.expand(n, c, h, w + 2 * padding)).gather(3, cols.expand(n, c, h, w))
    if flip:
        mask = (torch.rand(n, generator=gen) < 0.5).to(x.device).view(n, 1, 1, 1)
        x = torch.where(mask, x.flip(-1), x)
    return x


def invariance_loss(logits: Tensor, logits_flipped: Tensor) -> Tensor:
    """``mean_x ||Phi(x) - Phi(tau x)||`` (Section 4 [BK23])."""
    return (logits - logits_flipped).norm(dim=1).mean()


def lr_at(config: ClassifierConfig, step: int, total: int) -> float:
    """Triangular schedule: 0 -> lr over ``warmup * total`` steps, then linearly to 0."""
    peak = max(1, round(config.warmup * total))
    if step < peak:
        return config.lr * (step + 1) / peak
    return config.lr * max(0.0, (total - step) / max(1, total - peak))


def evaluate_accuracy(net: nn.Module, images: Tensor, labels: Tensor, mean, std,
                      batch: int = 1000) -> float:
    """Test accuracy on ``uint8`` images (eval mode): :func:`identifiable.torch.merge.accuracy`
    on the normalised images."""
    from identifiable.torch.merge import accuracy

    net.eval()
    return accuracy(net, normalise(images, mean, std), labels, batch)


def _param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for module in net.modules():
        for name, p in module.named_parameters(recurse=False):
            is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
            (no_decay if (is_bn or name == "bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def load_classifier(path: str | os.PathLike, map_location: Any = "cpu"
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a :func:`train_recipe` checkpoint (eval mode) and the checkpoint dict."""
    state = load_checkpoint(path, map_location=map_location)
    arch = state.get("arch")
    if not isinstance(arch, dict) or arch.get("kind") not in ("vgg", "resnet"):
        raise ValueError(f"checkpoint: {path} does not hold a VGG11 / ResNet classifier "
                         f"({arch})")
    net = build_checked(path, state, lambda a: build_classifier(
        a["arch"], a["width"], a["n_classes"], net=a.get("net", "vgg11")))
    return net.to(map_location).eval(), state


def train_recipe(config: ClassifierConfig, train: ImageData, test: ImageData | None = None,
                 out_dir: str | os.PathLike | None = None, device: str = "cpu",
                 log: Callable[[str], None] | None = None,
                 stop_after: int | None = None, fresh: bool = False) -> TrainedClassifier:
    """Train ``config.recipe`` (Table 1 [BK23]); resume from / reuse ``out_dir/nets/...pt``.

    A checkpoint of the same run (same config and same training data: source fingerprint,
    size, classes) is resumed, or, when finished, loaded and not retrained; one of another run
    is refused naming the differing fields; ``fresh=True`` starts over and replaces it.
    ``stop_after`` stops after that many epochs (a simulated kill).
    """
    recipe = RECIPES[config.recipe]
    dev = torch.device(device)
    n_classes = max(10, len(train.classes))
    ckpt = (checkpoint_path(out_dir, config.recipe, config.seed, config.net)
            if out_dir is not None else None)
    torch.manual_seed(config.seed)
    net = build_classifier(recipe.arch, config.width, n_classes, net=config.net).to(dev)
    opt = torch.optim.SGD(_param_groups(net, config.weight_decay), lr=config.lr,
                          momentum=config.momentum, nesterov=True)
    gen = torch.Generator().manual_seed(10_000 + config.seed)
    history: list[dict[str, float]] = []
    start = 0
    state = None
    data_id = data_identity(train)
    if ckpt is None or not ckpt.exists() or fresh:
        mean, std = train.channel_stats()
    else:
        state = load_checkpoint(ckpt, arch=config.arch(n_classes), map_location=dev)
        # checkpoints from before the ResNets have no "net": they are VGG11s
        saved = {"net": "vgg11", **(state.get("config") or {})}
        require_same_run(ckpt, {**state, "config": saved}, config.to_dict(), data_id)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"])
        history, start = list(state["history"]), int(state["epoch"])
        mean, std = state["norm"]["mean"], state["norm"]["std"]
    images = train.tensor(dev)
    labels = torch.from_numpy(train.labels).to(dev)
    n = len(train)
    bs = min(config.batch_size, n)
    steps = n // bs                     # drop the last partial batch (BatchNorm)
    total = config.epochs * steps
    end = config.epochs if stop_after is None else min(config.epochs, stop_after)
    commits = training_commits(state, git_commit() if start < end else None, trains=start < end)
    label = (f"{config.recipe}-s{config.seed}" if config.net == "vgg11" else
             f"{config.net}-{config.recipe}-s{config.seed}")
    # training seconds accumulate across resumes (an epoch's "seconds" is the total so far)
    base = float(history[-1].get("seconds", 0.0)) if history else 0.0
    t0 = time.perf_counter()
    for epoch in range(start, end):
        net.train()
        inv_on = config.inv_on(epoch)
        perm = torch.randperm(n, generator=gen).to(dev)
        sums = torch.zeros(3, device=dev)
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            x = random_crop_flip(normalise(images.index_select(0, idx), mean, std), gen,
                                 config.crop_padding, recipe.flip_augment)
            for g in opt.param_groups:
                g["lr"] = lr_at(config, epoch * steps + s, total)
            if inv_on:
                out, out_flipped = net(torch.cat([x, x.flip(-1)])).chunk(2)
                inv = invariance_loss(out, out_flipped)
            else:
                out = net(x)
                inv = torch.zeros((), device=dev)
            ce = F.cross_entropy(out, labels[idx])
            loss = ce + config.inv_weight * inv if inv_on else ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += torch.stack([ce.detach(), inv.detach(),
                                 (out.argmax(1) == labels[idx]).float().mean()])
        rec = {"epoch": epoch + 1, "ce": float(sums[0]) / steps, "inv": float(sums[1]) / steps,
               "train_accuracy": float(sums[2]) / steps, "inv_on": inv_on,
               "seconds": base + time.perf_counter() - t0}
        history.append(rec)
        if ckpt is not None:
            save_checkpoint(ckpt, {"arch": config.arch(n_classes), "model": net.state_dict(),
                                   "optimizer": opt.state_dict(), "rng": gen.get_state(),
                                   "config": config.to_dict(), "epoch": epoch + 1,
                                   "history": history, "norm": {"mean": mean, "std": std},
                                   "classes": list(train.classes), "data": data_id,
                                   "commits": commits})
        if log is not None:
            log(f"[{label}] epoch {epoch + 1}/{config.epochs} ce {rec['ce']:.3f} "
                f"inv {rec['inv']:.3f} train acc {rec['train_accuracy']:.3f} "
                f"{rec['seconds']:.0f}s")
    net.eval()
    acc = float("nan")
    if test is not None:
        acc = evaluate_accuracy(net, test.tensor(dev), torch.from_numpy(test.labels).to(dev),
                                mean, std)
    return TrainedClassifier(net, config, acc, history, ckpt, list(mean), list(std), commits)
