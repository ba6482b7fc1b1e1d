"""Checkpoints: a plain dict of tensors and JSON-able data, saved atomically, loaded safely.

Saved with ``torch.save`` through :func:`identifiable.io.atomic_path` (a killed run never leaves a
half-written file) and read with ``torch.load(weights_only=True)`` (never arbitrary pickles).
A checkpoint records the network's :meth:`arch`; loading it into another architecture is
refused with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from identifiable.io import atomic_path

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "load_net", "build_checked",
           "build_any", "load_state_dict_file",
           "differences",
           "require_same_run", "data_identity", "training_commits", "UNKNOWN_COMMIT"]

FORMAT = "identifiable.checkpoint/1"

#: the commit of epochs trained by code that did not record it (checkpoints from before the
#: ``"commits"`` entry), or outside a git checkout
UNKNOWN_COMMIT = "unknown"


def training_commits(state: dict[str, Any] | None, now: str | None = None,
                     trains: bool = False) -> list[str]:
    """The commits that trained a checkpoint, in order (provenance of a resumed net).

    ``state`` is the loaded checkpoint (None: a new net); its ``"commits"``, or
    ``[UNKNOWN_COMMIT]`` for a checkpoint from before they were kept that has trained epochs.
    ``trains``: this invocation trains at least one epoch, at ``now``
    (:func:`identifiable.results.git_commit` taken when training starts; None counts as
    unknown), which is appended unless already listed. A finished net that is only loaded keeps
    its list."""
    if state is None:
        commits: list[str] = []
    elif "commits" in state:
        commits = [str(c) for c in state["commits"]]
    else:
        commits = [UNKNOWN_COMMIT] if int(state.get("epoch", 0)) > 0 else []
    if trains:
        c = now or UNKNOWN_COMMIT
        if c not in commits:
            commits.append(c)
    return commits


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (must hold ``arch`` and ``model``) atomically to ``path``."""
    if "arch" not in state or "model" not in state:
        raise ValueError("state: a checkpoint needs 'arch' and 'model'")
    state = {"format": FORMAT, **state}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _load_file(path: Path, name: str, what: str, map_location: Any) -> Any:
    """``torch.load(path, weights_only=True)`` (no code runs from the file); a missing file is
    a FileNotFoundError and any unpickling failure a ValueError, both naming ``name``."""
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ValueError(f"{name}: {path} is not {what} ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """One informative line of an exception's text: torch's weights-only refusals span many
    lines of advice (including to retry with ``weights_only=False``, which would run the file's
    code); keep only what was refused."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if text.startswith("Weights only load failed"):
        rest = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text \
            else "\n".join(lines[1:])
        detail = next((ln.strip() for ln in rest.splitlines() if ln.strip()
                       and not ln.strip().startswith(("Check the documentation", "Please file"))),
                      "")
        return f"refused by the weights-only unpickler: {detail or 'unsupported content'}"[:300]
    return (lines or [type(exc).__name__])[0][:300]


def load_checkpoint(path: str | os.PathLike, arch: dict[str, Any] | None = None,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``); refuse one whose arch differs from ``arch``."""
    path = Path(path)
    state = _load_file(path, "checkpoint", "a readable identifiable checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint: {path} is not an identifiable checkpoint "
                         f"(expected format {FORMAT!r})")
    if arch is not None and state.get("arch") != arch:
        raise ValueError(f"checkpoint: {path} holds a network of another architecture: "
                         f"{state['arch']} (expected {arch})")
    return state


def build_checked(path: str | os.PathLike, state: dict[str, Any], build) -> torch.nn.Module:
    """``build(state["arch"])`` with the checkpoint's weights, after checking on the ``meta``
    device (no memory allocated) that the architecture is complete and that every parameter
    it declares has the shape of the stored tensor: a tampered or truncated checkpoint (missing
    keys, an architecture claiming width 200,000 over small tensors) is refused with a
    ValueError instead of a KeyError or a huge allocation."""
    arch, model = state.get("arch"), state.get("model")
    if not isinstance(arch, dict) or not isinstance(model, dict):
        raise ValueError(f"checkpoint: {path} has no architecture / weights")
    try:
        with torch.device("meta"):
            skeleton = build(arch)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise ValueError(f"checkpoint: {path}: incomplete or invalid architecture {arch} "
                         f"({type(exc).__name__}: {exc})") from None
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in model.items() if isinstance(v, torch.Tensor)}
    if want != got:
        bad = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        detail = "; ".join(f"{k}: {want.get(k, 'absent')} declared, {got.get(k, 'absent')} "
                           "stored" for k in bad[:4])
        raise ValueError(f"checkpoint: {path}: the weights do not match the architecture "
                         f"({detail})")
    net = build(arch)
    net.load_state_dict(model)
    return net


def build_any(arch: dict[str, Any]) -> torch.nn.Module:
    """Rebuild any network the library saves from its ``arch``: ``"mlp"`` and ``"attention"``
    (:func:`identifiable.torch.nets.build_net`, Section 6 [SMBK26]), ``"vgg"`` and
    ``"resnet"`` (the CNN / GCNN / PGCNN classifiers of [BK23] Table 1 as VGG11s or ResNet-20s,
    written by the gcnn-barrier experiment, :func:`identifiable.torch.vgg.build_classifier`)."""
    kind = arch.get("kind")
    if kind in ("vgg", "resnet"):
        from identifiable.torch.vgg import build_classifier

        return build_classifier(arch["arch"], arch["width"], arch.get("n_classes", 10),
                                net=arch.get("net", "vgg11"))
    if kind in ("mlp", "attention"):
        from identifiable.torch.nets import build_net

        return build_net(arch)
    raise ValueError(f"arch: unknown network kind {kind!r} (expected 'mlp', 'attention', "
                     "'vgg' or 'resnet')")


def load_net(path: str | os.PathLike, map_location: Any = "cpu"):
    """The trained network of a checkpoint (any kind of :func:`build_any`), in eval mode, and
    the checkpoint dict."""
    state = load_checkpoint(path, map_location=map_location)
    net = build_checked(path, state, build_any)
    return net.eval(), state


def load_state_dict_file(module: torch.nn.Module, path: str | os.PathLike,
                         name: str = "--weights", map_location: Any = "cpu") -> torch.nn.Module:
    """Load the weights file ``path`` (``torch.load(weights_only=True)``: a ``state_dict``, or
    an identifiable checkpoint, whose ``model`` is used) into ``module`` with
    ``load_state_dict(strict=True)``. A file that is not a state_dict, or one that does not fit
    the module, is refused with a ValueError naming ``name`` and listing the missing and
    unexpected keys and the shape mismatches."""
    path = Path(path)
    sd = _load_file(path, name, "a readable weights file", map_location)
    if isinstance(sd, dict) and sd.get("format") == FORMAT and isinstance(sd.get("model"), dict):
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in sd.items()):
        raise ValueError(f"{name}: {path} does not hold a state_dict (a dict of tensors)")
    want = module.state_dict()
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    shapes = [f"{k}: {tuple(want[k].shape)} in the module, {tuple(sd[k].shape)} stored"
              for k in want if k in sd and tuple(want[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        if shapes:
            parts.append("shape mismatches " + "; ".join(shapes[:4]))
        raise ValueError(f"{name}: the state_dict in {path} does not fit the module: "
                         + "; ".join(parts))
    module.load_state_dict(sd, strict=True)
    return module


def differences(saved: dict[str, Any], wanted: dict[str, Any],
                ignore: set[str] | frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved, wanted)}`` for every field (outside ``ignore``) whose values differ;
    a field missing on one side counts as different."""
    keys = (set(saved) | set(wanted)) - set(ignore)
    return {k: (saved.get(k, "<missing>"), wanted.get(k, "<missing>")) for k in sorted(keys)
            if saved.get(k, "<missing>") != wanted.get(k, "<missing>")}


def require_same_run(path: str | os.PathLike, state: dict[str, Any], config: dict[str, Any],
                     data: dict[str, Any], ignore: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse to resume or reuse the checkpoint ``state`` at ``path`` for another run: its
    training settings (``config``, outside ``ignore``) and its data identity (``data``: source
    fingerprint, split, size, classes) must equal the current ones. The error names every
    differing field."""
    diff = {f"config.{k}": v for k, v in differences(state.get("config") or {}, config,
                                                     ignore).items()}
    diff.update({f"data.{k}": v for k, v in differences(state.get("data") or {}, data).items()})
    if diff:
        shown = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise ValueError(f"--out: {path} belongs to another run ({shown}); choose another "
                         f"--out, or pass --fresh to discard it")


def data_identity(data: Any) -> dict[str, Any]:
    """What identifies a training set in a run's identity: the content fingerprint of its
    source (not only its path), its size and its class list."""
    return {"source": str(getattr(data, "fingerprint", None) or data.source or "embedded"),
            "n": int(len(data)), "classes": [str(c) for c in data.classes]}
