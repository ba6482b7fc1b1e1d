"""Reproduced experiments, one module each, registered for ``identifiable experiment NAME``.

Each entry of :data:`EXPERIMENTS` is ``name -> (help, add_arguments(parser), run(args) -> int)``.
Importing this package does not import torch; the ``run`` functions do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Entry = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

EXPERIMENTS: dict[str, Entry] = {}

__all__ = ["EXPERIMENTS", "register"]


def register(name: str, help_text: str, add_arguments, run) -> None:
    EXPERIMENTS[name] = (help_text, add_arguments, run)
