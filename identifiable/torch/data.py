"""Image data for the experiments of Section 6 [SMBK26]: CIFAR-10 and an embedded stand-in.

Sources (:func:`load_images`):

* the official python-batch folder ``cifar-10-batches-py/`` (``data_batch_1..5``,
  ``test_batch``, ``batches.meta``), read with :class:`RestrictedUnpickler`, which only builds
  dicts, lists, bytes and numpy arrays (never plain ``pickle.load``);
* an image-folder tree ``train/<class>/*.{png,jpg}`` and ``test/<class>/...``;
* a ``.tar.gz`` (or ``.tgz`` / ``.tar``) of that tree, streamed with :mod:`tarfile` and decoded
  with PIL in memory, never unpacked to disk;
* ``None`` / ``"embedded"``: :func:`embedded_patches`, 32 x 32 crops of the colour photographs
  that ship inside matplotlib and scikit-image. **A stand-in** for quick runs and CI, not CIFAR-10:
  the labels are the index of the source photograph.

**One class list per data set.** Label ``i`` means ``classes[i]`` in every split of a source:
the list is ``batches.meta`` (or :data:`CIFAR10_CLASSES`) for python batches, and the class
folders of the *train* split (alphabetical) for image folders and archives, whichever split is
loaded; ``classes=`` passes an explicit list instead. A split whose class folders differ from
the list (unknown or missing classes), or a batch whose labels are out of range, is refused
with a :class:`ValueError` naming them. A source without a train split needs ``classes=``.

**Validation.** Every failure of a source is a :class:`ValueError` naming the file (or
archive member) and the problem: a damaged or truncated archive or batch file, a batch that
the restricted unpickler refuses, pixel values outside 0..255 or of a non-integer type, labels
that are out of range, not integers or NaN, images of different sizes within a split, and
images larger than :data:`MAX_IMAGE_SIDE` pixels on a side (refused from the image header,
before decoding; PIL's decompression-bomb warning is an error here).

**Cache.** Decoded arrays are cached as ``.npy`` files (``$IDENTIFIABLE_CACHE`` or
``~/.cache/identifiable``), keyed by the content :func:`fingerprint` of the source (remembered
per path, size and mtime, so that it is computed once) and the class list, and read back
without pickle. A cache entry that is damaged or fails validation (dtype, shape, label range)
is a miss: it is rebuilt and replaced. A cache folder that cannot be written means running
without a cache, with one :class:`CacheWarning`. Temporary files that a killed writer left in
the cache folder (``.idf-tmp-*``, older than ten minutes) are removed when a load starts.

Images are ``uint8`` arrays ``N x H x W x 3`` (NHWC, as CIFAR-10 ships them, 32 x 32 there);
:meth:`ImageData.tensor` gives the ``N x 3 x H x W`` torch tensor. :attr:`ImageData.fingerprint`
identifies the content of the source, for a run's identity.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import tarfile
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from identifiable.io import (
    atomic_path,
    clean_stale_temporaries,
    write_bytes_atomic,
    write_json_atomic,
)

__all__ = [
    "ImageData",
    "RestrictedUnpickler",
    "restricted_load",
    "load_images",
    "load_python_batches",
    "load_image_folder",
    "load_tarball",
    "embedded_patches",
    "fingerprint",
    "cache_dir",
    "CacheWarning",
    "CIFAR10_CLASSES",
    "MAX_IMAGE_SIDE",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
#: images wider or taller than this are refused from their header, before decoding
MAX_IMAGE_SIDE = 4096
#: an image file (or archive member) larger than this is refused before it is read
MAX_IMAGE_BYTES = 64 << 20
#: a python batch file larger than this is refused before it is read (CIFAR-10's are 30 MB)
MAX_BATCH_BYTES = 1 << 30
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_VERSION = "2"
_CHUNK = 1 << 20
_FP_RE = re.compile(r"sha256:[0-9a-f]{64}")


class CacheWarning(UserWarning):
    """The cache folder could not be written: the data were loaded without a cache."""


@dataclass
class ImageData:
    """Images ``uint8 N x H x W x 3`` with integer ``labels`` (N,) indexing ``classes``.

    ``source`` is where the data came from (a path, or ``"embedded"``); ``fingerprint``
    identifies its content (``sha256:...`` of the archive or folder, see :func:`fingerprint`;
    ``embedded:<parameters>`` for the stand-in), for a run's identity.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str = ""
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images: expected uint8 N x H x W x 3, got {self.images.dtype} "
                             f"{self.images.shape}")
        self.labels = np.asarray(self.labels)
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels: expected shape ({self.images.shape[0]},), got "
                             f"{self.labels.shape}")
        if self.labels.dtype.kind not in "iu":
            raise ValueError(f"labels: expected integers, got {self.labels.dtype}")
        self.labels = self.labels.astype(np.int64, copy=False)
        self.classes = tuple(self.classes)
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels: expected 0..{len(self.classes) - 1} ({len(self.classes)} "
                             f"classes), got {self.labels.min()}..{self.labels.max()}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def tensor(self, device: Any = "cpu"):
        """The images as a ``uint8`` torch tensor ``N x 3 x H x W`` (kept uint8 to save memory)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.images.transpose(0, 3, 1, 2))).to(device)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the pixel values in [0, 1]."""
        # exact, from per-channel histograms of the uint8 values (no float copy of the data)
        flat = self.images.reshape(-1, 3)
        v = np.arange(256) / 255.0
        mean, std = [], []
        for c in range(3):
            h = np.bincount(flat[:, c], minlength=256).astype(np.float64)
            m = float(h @ v / h.sum())
            mean.append(m)
            std.append(float(np.sqrt(max(h @ (v - m) ** 2 / h.sum(), 0.0))))
        return mean, std


# --------------------------------------------------------------------------- safe unpickling
class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked :class:`RestrictedUnpickler` for a global it does not allow."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build dicts, lists, bytes, str, numbers and numpy arrays.

    ``find_class`` allows exactly the globals numpy's array pickles use; anything else (e.g.
    ``os.system``, ``builtins.eval``) raises :class:`RefusedGlobal`, a
    :class:`pickle.UnpicklingError`.
    """

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes pickled by python 3 with protocol 2
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise RefusedGlobal(
            f"refusing to load global {module}.{name}: only dicts, lists, bytes and numpy "
            f"arrays are allowed in a CIFAR-10 batch")


def restricted_load(fh, encoding: str = "bytes") -> Any:
    """``pickle.load`` with :class:`RestrictedUnpickler` (CIFAR-10 batches: ``bytes`` keys)."""
    return RestrictedUnpickler(fh, encoding=encoding).load()


def _unpickle_file(path: Path) -> Any:
    """A batch file through :func:`restricted_load`; every failure a ValueError naming it."""
    size = path.stat().st_size
    if size > MAX_BATCH_BYTES:
        raise ValueError(f"data: {path} is not a CIFAR-10 batch: {size} bytes, more than "
                         f"{MAX_BATCH_BYTES}")
    blob = path.read_bytes()  # unpickled from memory: a forged length cannot allocate more
    try:
        return restricted_load(io.BytesIO(blob))
    except RefusedGlobal as exc:
        raise ValueError(f"data: refused to load {path}: not a CIFAR-10 batch ({exc})") from None
    except Exception as exc:  # EOFError, UnpicklingError, ValueError, MemoryError, ...
        raise ValueError(f"data: cannot read {path}: the batch file is damaged or truncated "
                         f"({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- fingerprints
def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every regular file below ``root``, sorted."""
    out, seen = [], set()
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a symbolic link loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in files:
            p = Path(dirpath) / name
            if p.is_file():
                out.append((p.relative_to(root).as_posix(), p))
    out.sort(key=lambda t: t[0])
    return out


def _fingerprint_files(path: Path) -> tuple[Path, list[tuple[str, Path]] | None]:
    """What :func:`fingerprint` hashes: the file itself (``None``), or the files of a folder
    relative to a base (see there)."""
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise FileNotFoundError(f"data: no such file or folder: {path}")
    if (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-batches-py"
        return path, _walk_files(path)
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path, [(f"{s}/{rel}", p) for s in ("train", "test") if (path / s).is_dir()
                      for rel, p in _walk_files(path / s)]
    return path, _walk_files(path)


def _stat_key(path: Path, files: list[tuple[str, Path]] | None) -> str:
    """Hash of the absolute path and of (size, mtime_ns, inode) of every file hashed."""
    h = hashlib.sha256(f"fp1|{path.resolve()}".encode("utf-8", "surrogateescape"))
    for rel, p in files if files is not None else [("", path)]:
        st = p.stat()
        h.update(f"|{rel}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}".encode(
            "utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


def _sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.digest()


_FINGERPRINTS: dict[str, str] = {}


def _fingerprint(path: Path, store: _Cache | None) -> str:
    base, files = _fingerprint_files(path)
    key = _stat_key(base, files)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    memo = store.folder / f"fingerprint-{key}.txt" if store is not None else None
    if memo is not None:
        try:
            text = memo.read_text(encoding="ascii").strip() if memo.stat().st_size < 200 else ""
            if _FP_RE.fullmatch(text):
                _FINGERPRINTS[key] = text
                return text
        except (OSError, ValueError):
            pass  # absent or damaged: computed again (and replaced)
    if files is None:
        fp = "sha256:" + _sha256_file(base).hex()
    else:
        h = hashlib.sha256(b"identifiable-folder-v1\0")
        for rel, p in files:
            h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
            h.update(_sha256_file(p))
        fp = "sha256:" + h.hexdigest()
    _FINGERPRINTS[key] = fp
    if store is not None:
        store.write(lambda: write_bytes_atomic(memo, (fp + "\n").encode()))
    return fp


def fingerprint(path: str | os.PathLike, cache: str | os.PathLike | None = None) -> str:
    """Content fingerprint ``"sha256:<hex>"`` of a data source, for a run's identity.

    A file (an archive): the SHA-256 of its bytes (as ``sha256sum`` prints it), read in 1 MiB
    chunks. A folder: the SHA-256 over the sorted relative paths of its files, each followed by
    the SHA-256 of the file's content; for a folder holding ``cifar-10-batches-py/`` the files
    of that folder, for an image-folder tree the files below ``train/`` and ``test/`` (other
    files beside them do not count), otherwise every file below the folder.

    The result is remembered per absolute path, size, mtime and inode of the files, in memory
    and in the cache folder (``cache``, default :func:`cache_dir`; silently skipped where it
    cannot be written), so that a repeated call only stats the files.
    """
    store = _Cache(Path(cache) if cache is not None else cache_dir())
    return _fingerprint(Path(path).expanduser(), store)


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """``$IDENTIFIABLE_CACHE`` or ``~/.cache/identifiable``."""
    env = os.environ.get("IDENTIFIABLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "identifiable"


class _Cache:
    """The cache folder of one load: writes that fail switch it off and are reported once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.failed: OSError | None = None

    def write(self, fn) -> None:
        if self.failed is not None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fn()
        except OSError as exc:
            self.failed = exc

    def clean(self) -> None:
        try:
            clean_stale_temporaries(self.folder, recursive=False)
        except OSError:
            pass

    def warn(self) -> None:
        if self.failed is not None:
            warnings.warn(CacheWarning(
                f"data: cannot write the cache folder {self.folder} ({self.failed}); running "
                f"without a cache (set $IDENTIFIABLE_CACHE or pass cache= to use another)"),
                stacklevel=3)


def _cache_key(fp: str, kind: str, classes: tuple[str, ...] | None) -> str:
    text = json.dumps([_CACHE_VERSION, kind, fp, list(classes) if classes else None])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cache_files(key: str, split: str, cache: Path) -> tuple[Path, Path, Path]:
    base = cache / f"cifar-{key}-{split}"
    return (base.with_name(base.name + "-images.npy"), base.with_name(base.name + "-labels.npy"),
            base.with_name(base.name + "-classes.json"))


def _load_npy(path: Path) -> np.ndarray:
    # memory-mapped first: a forged header (10**12 images) fails here without allocating
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    return np.array(arr)


def _cache_read(key: str, split: str, cache: Path,
                expected: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray,
                                                            tuple[str, ...]] | None:
    """A validated cache entry, or ``None`` (absent or damaged: a miss)."""
    img, lab, cls = _cache_files(key, split, cache)
    try:
        if not (img.is_file() and lab.is_file() and cls.is_file()):
            return None
        if cls.stat().st_size > 1 << 20:
            return None
        classes = json.loads(cls.read_text(encoding="utf-8"))
        if not (isinstance(classes, list) and classes and all(
                isinstance(c, str) and c for c in classes) and len(set(classes)) == len(classes)):
            return None
        classes = tuple(classes)
        if expected is not None and classes != expected:
            return None
        labels = _load_npy(lab)
        if labels.dtype != np.int64 or labels.ndim != 1 or labels.size == 0:
            return None
        if labels.min() < 0 or labels.max() >= len(classes):
            return None
        images = np.load(img, mmap_mode="r", allow_pickle=False)
        if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3
                or images.shape[0] != labels.shape[0]
                or not 0 < images.shape[1] <= MAX_IMAGE_SIDE
                or not 0 < images.shape[2] <= MAX_IMAGE_SIDE):
            return None
        return np.ascontiguousarray(np.array(images)), labels, classes
    except Exception:  # any damage (EOFError, ValueError, OSError...) is a miss
        return None


def _cache_write(key: str, split: str, store: _Cache, data: ImageData) -> None:
    img, lab, cls = _cache_files(key, split, store.folder)

    def write() -> None:
        for path, arr in ((img, data.images), (lab, data.labels)):
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        write_json_atomic(cls, list(data.classes))  # last: the entry is complete once it exists

    store.write(write)


# --------------------------------------------------------------------------- validation
def _check_classes(classes: Iterable[str] | None) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)):
        raise ValueError(f"classes: expected a list of class names, got the string {classes!r}")
    out = tuple(classes)
    bad = [c for c in out if not isinstance(c, str) or not c or "/" in c or "\\" in c]
    if not out or bad:
        raise ValueError(f"classes: expected a non-empty list of non-empty names, got {out!r}")
    dup = sorted(c for c, k in Counter(out).items() if k > 1)
    if dup:
        raise ValueError(f"classes: repeated class names {dup}")
    return out


def _class_mismatch(found: Iterable[str], classes: Sequence[str], what: str,
                    origin: str) -> None:
    found = set(found)
    unknown = sorted(found - set(classes))
    missing = [c for c in classes if c not in found]
    if unknown or missing:
        parts = ([f"unknown classes {unknown}"] if unknown else []) + (
            [f"missing classes {missing}"] if missing else [])
        raise ValueError(f"data: {what} does not match the class list of {origin} "
                         f"({', '.join(classes)}): {'; '.join(parts)}")


def _check_labels(labs: Any, n_classes: int, where: str) -> np.ndarray:
    try:
        arr = np.asarray(labs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"data: {where}: the labels are not a list of integers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"data: {where}: the labels are not a flat list (shape {arr.shape})")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind in "fc" and np.isnan(arr).any():
            raise ValueError(f"data: {where}: labels must be integers, found NaN")
        raise ValueError(f"data: {where}: labels must be integers, got {arr.dtype} values "
                         f"such as {arr[:3].tolist()}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = arr[(arr < 0) | (arr >= n_classes)]
        raise ValueError(f"data: {where}: labels out of range 0..{n_classes - 1} "
                         f"({n_classes} classes): found {bad[:5].tolist()} "
                         f"({bad.size} of {arr.size} labels)")
    return arr.astype(np.int64)


def _check_pixels(data: Any, n: int, where: str) -> np.ndarray:
    """A batch's ``data`` (N x 3072, channel-major as CIFAR-10) -> uint8 N x 32 x 32 x 3."""
    if not isinstance(data, np.ndarray):
        raise ValueError(f"data: {where}: 'data' is not an array ({type(data).__name__})")
    if data.dtype.kind not in "iu":
        raise ValueError(f"data: {where}: pixel values must be integers in 0..255, got "
                         f"{data.dtype}")
    if data.size != n * 3072:
        raise ValueError(f"data: {where}: 'data' of shape {data.shape} is not {n} x 3072 "
                         f"({n} labels, 32 x 32 x 3 pixels each)")
    if data.dtype != np.uint8 and data.size:
        lo, hi = data.min(), data.max()
        if lo < 0 or hi > 255:
            raise ValueError(f"data: {where}: pixel values outside 0..255 (min {lo}, max {hi})")
    return np.asarray(data, dtype=np.uint8).reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)


# --------------------------------------------------------------------------- sources
def _batch_folder(folder: Path) -> Path:
    return folder / "cifar-10-batches-py" if (folder / "cifar-10-batches-py").is_dir() else folder


def _batch_classes(folder: Path, classes: tuple[str, ...] | None) -> tuple[str, ...]:
    """The class list of a batch folder: ``batches.meta``, else ``classes`` or CIFAR-10's."""
    meta = folder / "batches.meta"
    if not meta.exists():
        return classes or CIFAR10_CLASSES
    m = _unpickle_file(meta)
    names = m.get(b"label_names", m.get("label_names")) if isinstance(m, dict) else None
    try:
        found = _check_classes(n.decode() if isinstance(n, bytes) else n for n in names)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"data: {meta} has no valid 'label_names' ({exc})") from None
    if classes is not None and classes != found:
        raise ValueError(f"data: classes= ({', '.join(classes)}) differs from the class list "
                         f"of {meta} ({', '.join(found)})")
    return found


def load_python_batches(folder: str | os.PathLike, split: str = "train",
                        classes: Sequence[str] | None = None) -> ImageData:
    """CIFAR-10 from the official ``cifar-10-batches-py`` folder (restricted unpickling).

    The class list is ``batches.meta``'s ``label_names`` (``classes``, when given, must equal
    it), or ``classes`` / :data:`CIFAR10_CLASSES` without a meta file; labels must index it.
    """
    folder = _batch_folder(Path(folder))
    classes = _check_classes(classes)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    names = [n for n in names if (folder / n).exists()]
    if not names:
        raise FileNotFoundError(f"data: no CIFAR-10 {split} batches in {folder}")
    classes = _batch_classes(folder, classes)
    images, labels = [], []
    for name in names:
        path = folder / name
        batch = _unpickle_file(path)
        if not isinstance(batch, dict):
            raise ValueError(f"data: {path} is not a CIFAR-10 batch (no dict)")
        data = batch.get(b"data", batch.get("data"))
        labs = batch.get(b"labels", batch.get("labels"))
        if data is None or labs is None:
            raise ValueError(f"data: {path} has no 'data' array / 'labels'")
        labs = _check_labels(labs, len(classes), str(path))
        images.append(_check_pixels(data, len(labs), str(path)))
        labels.append(labs)
    return ImageData(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                     classes, str(folder))


def _decode(blob: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as im:
                w, h = im.size
                if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
                    raise ValueError(f"data: the image {where} is {w} x {h} pixels, larger than "
                                     f"{MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE}")
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ValueError as exc:
        if str(exc).startswith("data: "):
            raise
        raise ValueError(f"data: cannot decode the image {where}: {exc}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ValueError(f"data: refused the image {where}: a decompression bomb ({exc})") \
            from None
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        raise ValueError(f"data: cannot decode the image {where}: {exc}") from None
    if arr.ndim != 3 or arr.shape[-1] != 3 or 0 in arr.shape:
        raise ValueError(f"data: cannot decode the image {where}: shape {arr.shape}")
    return arr


def _read_image(path: Path) -> np.ndarray:
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"data: the image {path} is {size} bytes, more than {MAX_IMAGE_BYTES}")
    return _decode(path.read_bytes(), str(path))


def _assemble(items: list[tuple[str, str, np.ndarray]], source: str,
              classes: tuple[str, ...], origin: str) -> ImageData:
    """(class, name, image) triples -> ImageData with labels indexing ``classes``."""
    if not items:
        raise FileNotFoundError(f"data: no images found in {source}")
    _class_mismatch({c for c, _, _ in items}, classes, source, origin)
    index = {c: i for i, c in enumerate(classes)}
    items.sort(key=lambda t: (index[t[0]], t[1]))
    shapes = Counter(im.shape for _, _, im in items)
    if len(shapes) != 1:
        (h, w, _), _ = shapes.most_common(1)[0]
        odd = [(c, n, im.shape) for c, n, im in items if im.shape[:2] != (h, w)]
        c, n, (oh, ow, _) = odd[0]
        raise ValueError(f"data: images of different sizes in {source}: most are {w} x {h}, "
                         f"{c}/{n} is {ow} x {oh} ({len(odd)} images differ)")
    images = np.stack([im for _, _, im in items])
    labels = np.array([index[c] for c, _, _ in items], dtype=np.int64)
    return ImageData(images, labels, classes, source)


def _image_files(base: Path) -> dict[str, list[Path]]:
    """``{class: sorted image files}`` of a split folder, classes with at least one image."""
    out = {}
    for cdir in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(f for f in cdir.iterdir()
                       if f.suffix.lower() in _IMAGE_SUFFIXES and f.is_file())
        if files:
            out[cdir.name] = files
    return out


def _folder_classes(root: Path, classes: tuple[str, ...] | None) -> tuple[str, ...]:
    """The class list of an image-folder tree: ``classes``, else the train split's folders."""
    if classes is not None:
        return classes
    if not (root / "train").is_dir():
        raise ValueError(f"data: {root} has no train/ folder to take the class list from; "
                         f"pass classes= (the training set's class list)")
    found = tuple(_image_files(root / "train"))
    if not found:
        raise FileNotFoundError(f"data: no images found in {root / 'train'}")
    return found


def load_image_folder(root: str | os.PathLike, split: str = "train",
                      classes: Sequence[str] | None = None) -> ImageData:
    """Images ``root/<split>/<class>/*.{png,jpg,jpeg}``.

    Labels index ``classes``, by default the class folders of ``root/train`` (alphabetical,
    folders holding at least one image) whichever split is loaded; the split must have
    exactly these classes (checked before any image is decoded).
    """
    root = Path(root)
    explicit = _check_classes(classes)
    classes = _folder_classes(root, explicit)
    origin = "classes=" if explicit is not None else str(root / "train")
    base = root / split
    if not base.is_dir():
        raise FileNotFoundError(f"data: no folder {base}")
    files = _image_files(base)
    if not files:
        raise FileNotFoundError(f"data: no images found in {base}")
    _class_mismatch(files, classes, f"the {split} split {base}", origin)
    items = [(c, f.name, _read_image(f)) for c, fs in files.items() for f in fs]
    return _assemble(items, str(base), classes, origin)


def _split_member(name: str) -> tuple[str, str, str] | None:
    """``[prefix/]train/<class>/<file>`` -> (split, class, file)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 3 or Path(parts[-1]).suffix.lower() not in _IMAGE_SUFFIXES:
        return None
    split, cls, fname = parts[-3], parts[-2], parts[-1]
    if split not in ("train", "test"):
        return None
    return split, cls, fname


def _decompressed(raw) -> Any:
    """``raw`` (a binary file) decompressed by its magic bytes: gzip, bzip2, xz, or as is. The
    decompressors check the stream's checksum and length once it is read to its end."""
    import bz2
    import gzip
    import lzma

    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw, mode="rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, mode="rb")
    return raw


def _stream_tarball(path: Path) -> dict[str, list]:
    items: dict[str, list] = {"train": [], "test": []}
    with open(path, "rb") as raw:  # errors opening the file are not "damaged archive"
        try:
            stream = _decompressed(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    where = _split_member(member.name)
                    if where is None:
                        continue
                    if member.size > MAX_IMAGE_BYTES:
                        raise ValueError(f"data: the image {path}:{member.name} is "
                                         f"{member.size} bytes, more than {MAX_IMAGE_BYTES}")
                    fh = tar.extractfile(member)
                    if fh is None:
                        continue
                    split, cls, fname = where
                    items[split].append((cls, fname, _decode(fh.read(),
                                                             f"{path}:{member.name}")))
            while stream.read(_CHUNK):  # to the end: a truncated or corrupted tail (checksum)
                pass
        except ValueError as exc:
            if str(exc).startswith("data: "):
                raise
            raise ValueError(f"data: the archive {path} is damaged or truncated "
                             f"({type(exc).__name__}: {exc})") from None
        except Exception as exc:  # tarfile.ReadError, EOFError, zlib.error, BadGzipFile, ...
            raise ValueError(f"data: the archive {path} is damaged or truncated "
                             f"({type(exc).__name__}: {exc})") from None
    return items


def load_tarball(path: str | os.PathLike,
                 classes: Sequence[str] | None = None) -> dict[str, ImageData]:
    """Both splits of a ``.tar.gz`` of an image-folder tree, streamed (nothing unpacked).

    Labels index ``classes``, by default the class folders of the archive's train split
    (alphabetical); every split in the archive must have exactly these classes. A damaged or
    truncated archive is a ValueError naming it (a truncation is noticed at its end).
    """
    path = Path(path)
    classes = _check_classes(classes)
    items = _stream_tarball(path)
    if classes is None:
        if not items["train"]:
            raise ValueError(f"data: the archive {path} has no train/ images to take the class "
                             f"list from; pass classes= (the training set's class list)")
        classes = tuple(sorted({c for c, _, _ in items["train"]}))
        origin = f"{path}:train"
    else:
        origin = "classes="
    return {s: _assemble(v, f"{path}:{s}", classes, origin) for s, v in items.items() if v}


def _kind(path: Path) -> str:
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return "tarball"
        raise ValueError(f"data: {path} is a file but not a .tar.gz / .tgz / .tar archive")
    if path.is_dir():
        if (path / "cifar-10-batches-py").is_dir() or (path / "data_batch_1").exists() \
                or (path / "test_batch").exists():
            return "batches"
        if (path / "train").is_dir() or (path / "test").is_dir():
            return "folder"
        raise ValueError(f"data: {path} holds neither CIFAR-10 python batches "
                         f"(data_batch_1...) nor train/ and test/ image folders")
    raise FileNotFoundError(f"data: no such file or folder: {path}")


def load_images(path: str | os.PathLike | None = None, split: str = "train",
                cache: str | os.PathLike | None = None, use_cache: bool = True,
                classes: Sequence[str] | None = None) -> ImageData:
    """Load ``split`` ("train" or "test") from any supported source (see the module doc).

    Labels index one class list per source, the same for both splits: ``batches.meta`` (or
    :data:`CIFAR10_CLASSES`) for python batches, the train split's class folders for image
    folders and archives, or ``classes`` when given (e.g. ``train.classes``). A split that does
    not match it is a ValueError naming the unknown and missing classes.

    ``path=None`` or ``"embedded"`` gives :func:`embedded_patches` (a stand-in, not CIFAR-10).
    The result's ``fingerprint`` is the source's :func:`fingerprint`.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    classes = _check_classes(classes)
    if path is None or str(path) == "embedded":
        data = embedded_patches(split=split)
        if classes is not None and classes != data.classes:
            raise ValueError(f"classes: ({', '.join(classes)}) differs from the class list of "
                             f"the embedded stand-in ({', '.join(data.classes)})")
        return data
    path = Path(path).expanduser()
    kind = _kind(path)
    store = _Cache(Path(cache) if cache is not None else cache_dir())
    if use_cache:
        store.clean()
    fp = _fingerprint(path, store if use_cache else None)
    try:
        data = _load_cached(path, kind, split, classes, fp, store, use_cache)
    finally:
        if use_cache:
            store.warn()
    data.source, data.fingerprint = str(path), fp
    return data


def _load_cached(path: Path, kind: str, split: str, classes: tuple[str, ...] | None, fp: str,
                 store: _Cache, use_cache: bool) -> ImageData:
    # the class list where it is known without decoding (checked against the cache entry)
    known = classes
    if kind == "folder":
        known = _folder_classes(path, classes)
    elif kind == "batches":
        known = _batch_classes(_batch_folder(path), classes)
    key = _cache_key(fp, kind, known)
    if use_cache:
        hit = _cache_read(key, split, store.folder, known)
        if hit is not None:
            return ImageData(*hit, str(path))
    if kind == "tarball":
        splits = load_tarball(path, classes)
        if use_cache:
            for s, d in splits.items():
                _cache_write(key, s, store, d)
        if split not in splits:
            raise FileNotFoundError(f"data: no {split}/ images in {path}")
        return splits[split]
    if kind == "batches":
        data = load_python_batches(path, split, classes)
    else:
        data = load_image_folder(path, split, classes)
    if use_cache:
        _cache_write(key, split, store, data)
    return data


# --------------------------------------------------------------------------- embedded stand-in
#: colour photographs bundled (not downloaded) with scikit-image, plus matplotlib's Grace Hopper
_SKIMAGE_IMAGES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                   "motorcycle_left.png", "retina.jpg", "hubble_deep_field.jpg", "ihc.png")


def _embedded_sources() -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    out = []
    try:
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            out.append(("grace_hopper", np.asarray(im.convert("RGB"), dtype=np.uint8)))
    except (ImportError, OSError):
        pass
    try:
        import skimage

        folder = Path(skimage.__file__).parent / "data"
        for name in _SKIMAGE_IMAGES:
            f = folder / name
            if f.exists():
                with Image.open(f) as im:
                    out.append((f.stem, np.asarray(im.convert("RGB"), dtype=np.uint8)))
    except ImportError:
        pass
    if not out:
        raise FileNotFoundError("data: no embedded sample images found (needs matplotlib or "
                                "scikit-image); pass --data PATH to CIFAR-10")
    return out[:10]


def embedded_patches(n: int | None = None, split: str = "train", size: int = 32,
                     seed: int = 0) -> ImageData:
    """Random ``size x size`` RGB crops of photographs bundled with matplotlib / scikit-image.

    A **stand-in** for CIFAR-10 that needs no download: natural-image statistics (edges,
    colour), but the "classes" are just the source photograph's index (pseudo-labels, at most
    10). Each photograph is first downscaled so that a crop covers a few percent of it.
    ``n`` defaults to 8192 for ``train`` and 2048 for ``test`` (different seeds).
    """
    from PIL import Image

    n = n if n is not None else (8192 if split == "train" else 2048)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    sources = _embedded_sources()
    scaled = []
    for _, arr in sources:
        h, w = arr.shape[:2]
        f = 160.0 / min(h, w)
        im = Image.fromarray(arr).resize((max(size, round(w * f)), max(size, round(h * f))),
                                         Image.Resampling.LANCZOS)
        scaled.append(np.asarray(im, dtype=np.uint8))
    labels = rng.integers(0, len(scaled), size=n)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for k, src in enumerate(scaled):
        idx = np.flatnonzero(labels == k)
        h, w = src.shape[:2]
        ys = rng.integers(0, h - size + 1, size=idx.size)
        xs = rng.integers(0, w - size + 1, size=idx.size)
        # gather all crops of this photograph at once (no loop over samples)
        rows = ys[:, None] + np.arange(size)[None, :]
        cols = xs[:, None] + np.arange(size)[None, :]
        images[idx] = src[rows[:, :, None], cols[:, None, :]]
    return ImageData(images, labels.astype(np.int64), tuple(name for name, _ in sources),
                     "embedded", f"embedded:n={n},split={split},size={size},seed={seed},"
                     f"photographs={len(sources)}")
