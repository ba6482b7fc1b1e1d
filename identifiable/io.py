"""Small I/O helpers: atomic writes, stale temporary files, and the lock of a run folder.

* :func:`write_bytes_atomic`, :func:`write_json_atomic` and :class:`atomic_path` write to a
  hidden temporary file in the target's folder and rename it onto the target: a reader sees
  the old file or the new one, never half of one. The temporary file is removed when the write
  fails or is interrupted (any exception, KeyboardInterrupt included); a process killed with
  SIGKILL leaves it behind, and :func:`clean_stale_temporaries` removes such leftovers (every
  run folder does that when it is locked). Finished files get the permissions of an ordinary
  new file (``0o666`` minus the umask), not the ``0o600`` of :func:`tempfile.mkstemp`.
* :class:`RunLock`: a lock file ``.lock`` in a run folder holding the owner's process id, host
  and start time, created with ``O_EXCL``. A second run into the same folder is refused with
  the owner named; a lock whose process is gone (same host) is stale and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from identifiable.verdict import to_jsonable

__all__ = ["write_json_atomic", "write_bytes_atomic", "atomic_path", "clean_stale_temporaries",
           "RunLock", "RunLocked", "TMP_PREFIX"]

#: prefix of every temporary file this module creates (so that leftovers can be recognised)
TMP_PREFIX = ".idf-tmp-"
#: leftovers older than this many seconds are removed by :func:`clean_stale_temporaries`
STALE_SECONDS = 600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _finish_permissions(path: Path) -> None:
    try:
        os.chmod(path, 0o666 & ~_umask())
    except OSError:  # pragma: no cover - e.g. a file system without permissions
        pass


def _tmp_in(folder: Path, name: str, suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TMP_PREFIX}{name}.", suffix=suffix)
    os.close(fd)
    return Path(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a reader sees the old file or the new one."""
    path = Path(path)
    tmp = _tmp_in(path.parent, path.name, ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _finish_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """JSON-encode ``obj`` (numpy / sympy converted) and write it atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent) + "\n"
    return write_bytes_atomic(path, text.encode())


class atomic_path:
    """Context manager yielding a temporary path that is renamed onto ``path`` on success.

    Useful for writers that want a file name (``torch.save``, ``matplotlib.savefig``)::

        with atomic_path("out/fig.png") as tmp:
            fig.savefig(tmp)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.tmp = _tmp_in(self.path.parent, self.path.stem, self.path.suffix or ".tmp")
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            _finish_permissions(self.tmp)
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def clean_stale_temporaries(folder: str | os.PathLike, *, older_than: float = STALE_SECONDS,
                            recursive: bool = True) -> list[Path]:
    """Remove the temporary files this module left in ``folder`` (and below) when a process
    was killed mid-write: files named ``.idf-tmp-*`` older than ``older_than`` seconds (younger
    ones may belong to a writer that is still running). Returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    removed = []
    pattern = f"**/{TMP_PREFIX}*" if recursive else f"{TMP_PREFIX}*"
    for p in folder.glob(pattern):
        try:
            if p.is_file() and now - p.stat().st_mtime > older_than:
                p.unlink()
                removed.append(p)
        except OSError:  # pragma: no cover - raced with another cleaner
            continue
    return removed


class RunLocked(ValueError):
    """Raised when a run folder is locked by another live run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Exclusive lock of a run folder while a run writes into it (``folder/.lock``).

    ``with RunLock(out): ...`` creates the folder if needed, takes the lock (refusing with
    :class:`RunLocked`, naming the owner, when another live process holds it; taking over a
    stale lock whose process is gone), removes stale temporary files of killed writers, and
    releases the lock on exit. Folders the lock created are removed again on release when
    the run left nothing in them (a run refused after locking leaves no empty ``--out``).
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike, what: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.what = what
        self.held = False
        self._created: list[Path] = []     # folders acquire() created, innermost first

    def _owner(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> RunLock:
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                owner = self._owner()
                stale = (owner is not None and owner.get("host") == info["host"]
                         and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]))
                if stale or (owner is None and self._old(self.path)):
                    self.path.unlink(missing_ok=True)
                    continue
                who = ("an unknown process" if owner is None else
                       f"process {owner.get('pid')} on {owner.get('host')} (started "
                       f"{owner.get('started')})")
                raise RunLocked(f"--out: the {self.what} folder {self.folder} is in use by "
                                f"{who}; wait for it to finish or choose another --out (remove "
                                f"{self.path} only if that process is gone)") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self.held = True
            clean_stale_temporaries(self.folder)
            return self
        raise RunLocked(f"--out: could not lock {self.folder}")  # pragma: no cover

    @staticmethod
    def _old(path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime > STALE_SECONDS
        except OSError:
            return True

    def release(self) -> None:
        if self.held:
            owner = self._owner()
            if owner is None or owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False
            for folder in self._created:    # innermost first; stops at the first non-empty
                try:
                    folder.rmdir()
                except OSError:
                    break
            self._created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
