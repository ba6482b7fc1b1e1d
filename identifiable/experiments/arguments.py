"""Argument types of the ``identifiable`` command line: bad values are refused by argparse
with ``error: argument --NAME: ...`` and exit status 2, before any work starts.

Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float",
           "device", "out_dir", "json_path", "add_results_arguments", "started_commit"]


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        val = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(val):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return val


def positive_int(text: str) -> int:
    """An integer >= 1."""
    val = _int(text)
    if val < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {val}")
    return val


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    val = _int(text)
    if val < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {val}")
    return val


def positive_float(text: str) -> float:
    """A finite number > 0."""
    val = _float(text)
    if val <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return val


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    val = _float(text)
    if val < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return val


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is available is checked when torch
    starts)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text or ""):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return text


def out_dir(text: str) -> str:
    """An output folder: it may exist (as a folder) or not; a file there is refused."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, got an empty path")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a folder")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{str(parent)!r} is a file, not a folder")
            break
    return text


def json_path(text: str) -> str:
    """A JSON output file: its folder must exist (or be creatable) and be writable, and the path
    must not be a folder; checked when the command line is read, before any work."""
    import os

    if not text:
        raise argparse.ArgumentTypeError("expected a file name, got an empty path")
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    existing = next((q for q in [parent, *parent.parents] if q.exists()), Path("."))
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{str(existing)!r} is a file, not a folder")
    import tempfile

    try:  # the only reliable test: create (and remove) a file where the output will go
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write into {str(existing)!r} "
                                         f"({exc.strerror or exc})") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot overwrite {text!r} (permission denied)")
    return text


def add_results_arguments(p: argparse.ArgumentParser, what: str, tag_from: str) -> None:
    """``--results DIR`` and ``--tag NAME``: leave a results record of the finished run
    (:mod:`identifiable.results`; ``what`` says what it holds, ``tag_from`` what the default
    tag is made of)."""
    p.add_argument("--results", default=None, metavar="DIR",
                   help=f"also leave a results record (configuration, version, commit, wall "
                        f"time, {what}) and the figures in DIR/<experiment>/<tag>/ (e.g. "
                        f"results; see `identifiable report`)")
    p.add_argument("--tag", default=None, metavar="NAME",
                   help=f"the record's folder name under --results (default: from {tag_from})")


def started_commit(args: argparse.Namespace) -> str | None:
    """The checkout's commit as a run starts (:func:`identifiable.results.git_commit`), for its
    record: a commit made while the run trains is not the code that runs. None without
    ``--results``."""
    if not args.results:
        return None
    from identifiable.results import git_commit

    return git_commit()
