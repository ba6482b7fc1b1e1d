"""Progress lines of the experiment commands: one timestamped line per step, flushed at once so
that a log followed with ``tail -f`` (or a run cut off) shows where the run stands.

Importing this module does not import torch.
"""

from __future__ import annotations

import time

__all__ = ["log"]


def log(msg: str) -> None:
    """Print ``HH:MM:SS msg`` and flush."""
    print(time.strftime("%H:%M:%S"), msg, flush=True)
