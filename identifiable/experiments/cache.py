"""Measurement cache of a run folder: what was measured on a finished checkpoint is not
measured again when the run is resumed.

A resumed sweep (``identifiable experiment gcnn-barrier`` continued across stops) retrains
nothing that is finished, but it used to re-measure every finished net (invariance error,
GCNN barrier, REPAIR in both conventions: about a minute per width-0.25 VGG11 on one core).
:class:`MeasurementCache` keeps one JSON file per measured object in ``OUT/measurements``;
an entry is reused only when **everything the measurement depends on** is unchanged:

* the bytes of the checkpoint(s) measured (their SHA-256, so a retrained or resumed net is
  measured anew);
* the caller's settings (data identities, image counts, subset seeds, REPAIR conventions,
  device type ...), compared field by field;
* the source code of the measuring modules (:func:`code_fingerprint`), so that a fix in the
  matcher, in REPAIR or in a core module they use invalidates every cached number (the
  gcnn-barrier experiment hashes the whole library: its measuring code imports, directly or
  through the packages' ``__init__`` files, all but a handful of the library's modules, so a
  narrower set would save little and could miss one);
* the versions of the numeric libraries (the caller's settings).

Anything else (a missing, unreadable or damaged file, another key) is a miss: the object is
measured and the entry rewritten atomically (:func:`identifiable.io.write_bytes_atomic`). A
cache never changes a number, only whether it is recomputed: values are stored as plain JSON
(NaN and infinities included) and the computed value is passed through the same JSON round trip
before it is returned, so a hit and a miss return identical data. Importing this module does
not import torch.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from identifiable.io import write_bytes_atomic

__all__ = ["MeasurementCache", "file_sha256", "code_fingerprint", "source_files"]

#: format version of a cache entry (bumped when the entry layout changes)
FORMAT = 1


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (read in chunks, memory O(chunk))."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def source_files(*modules: str) -> list[tuple[str, Path]]:
    """``(label, path)`` of every source file of ``modules`` (dotted names; a package
    contributes every ``.py`` file below it, in sorted order, labelled with its relative path):
    what :func:`code_fingerprint` hashes."""
    out = []
    for name in modules:
        mod = importlib.import_module(name)
        path = Path(mod.__file__)
        files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
        out.extend((f"{name}:{f.relative_to(path.parent).as_posix()}", f) for f in files)
    return out


def code_fingerprint(*modules: str) -> str:
    """SHA-256 over the source files of ``modules`` (:func:`source_files`)."""
    h = hashlib.sha256()
    for label, f in source_files(*modules):
        h.update(f"{label}\0".encode())
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _json_round_trip(obj: Any, what: str) -> Any:
    """``obj`` as JSON reads it back (tuples become lists); a non-JSON value is an error."""
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"measurement cache: {what} is not JSON data ({exc})") from None


def _safe_name(name: str) -> str:
    if not name or not re.fullmatch(r"[A-Za-z0-9._+-]+", name) or name.startswith("."):
        raise ValueError(f"measurement cache: entry name {name!r} must be non-empty and use "
                         f"only letters, digits and . _ + - (not leading .)")
    return name


def _same(a: Any, b: Any) -> bool:
    """JSON equality that treats NaN as equal to NaN (a NaN measurement is a valid entry)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class MeasurementCache:
    """One JSON entry per measured object under ``folder`` (see the module docstring).

    ``code`` is the fingerprint of the measuring code (:func:`code_fingerprint`); ``enabled``
    False measures everything and rewrites every entry (``--fresh``).
    """

    def __init__(self, folder: str | os.PathLike, code: str, enabled: bool = True):
        self.folder = Path(folder)
        self.code = str(code)
        self.enabled = bool(enabled)
        self.hits = 0
        self.misses = 0

    def path(self, name: str) -> Path:
        return self.folder / f"{_safe_name(name)}.json"

    def key(self, checkpoints: list[str | os.PathLike], settings: dict[str, Any]) -> dict:
        """The full key of an entry: checkpoint digests, settings and code fingerprint."""
        return _json_round_trip({"format": FORMAT, "code": self.code,
                                 "checkpoints": [file_sha256(p) for p in checkpoints],
                                 "settings": settings}, "the key")

    def get(self, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The cached value of ``name`` under ``key``, or None (a miss)."""
        if not self.enabled:
            return None
        try:
            entry = json.loads(self.path(name).read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or not _same(entry.get("key"), key):
            return None
        value = entry.get("value")
        return value if isinstance(value, dict) else None

    def measure(self, name: str, checkpoints: list[str | os.PathLike],
                settings: dict[str, Any], compute: Callable[[], dict[str, Any]]
                ) -> tuple[dict[str, Any], bool]:
        """``(value, cached)``: the entry of ``name`` when its key matches, else ``compute()``
        (a JSON-able dict), stored under the key taken *before* computing."""
        key = self.key(checkpoints, settings)
        value = self.get(name, key)
        if value is not None:
            self.hits += 1
            return value, True
        self.misses += 1
        value = compute()
        if not isinstance(value, dict):
            raise TypeError(f"measurement cache: {name}: compute() must return a dict, got "
                            f"{type(value).__name__}")
        value = _json_round_trip(value, f"{name}'s value")
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "value": value}, indent=1) + "\n"
        write_bytes_atomic(self.path(name), text.encode())
        return value, False
