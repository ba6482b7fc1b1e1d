"""Image data for the experiments of Section 6 [SMBK26]: CIFAR-10 and an embedded stand-in.

Sources (:func:`load_images`):

* the official python-batch folder ``cifar-10-batches-py/`` (``data_batch_1..5``,
  ``test_batch``), read with :class:`RestrictedUnpickler`, which only builds dicts, lists,
  bytes and numpy arrays (never plain ``pickle.load``);
* an image-folder tree ``train/<class>/*.{png,jpg}`` and ``test/<class>/...``;
* a ``.tar.gz`` (or ``.tgz`` / ``.tar``) of that tree, streamed with :mod:`tarfile` and decoded
  with PIL in memory, never unpacked to disk;
* ``None`` / ``"embedded"``: :func:`embedded_patches`, 32 x 32 crops of the colour photographs
  that ship inside matplotlib and scikit-image. **A stand-in** for quick runs and CI, not CIFAR-10:
  the labels are the index of the source photograph.

Decoded arrays are cached as ``.npy`` files (``$IDENTIFIABLE_CACHE`` or
``~/.cache/identifiable``), keyed by the source path, size and mtime, and loaded with
``np.load(allow_pickle=False)``. Images are ``uint8`` arrays ``N x 32 x 32 x 3`` (NHWC, as
CIFAR-10 ships them); :meth:`ImageData.tensor` gives the ``N x 3 x H x W`` torch tensor.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from identifiable.io import atomic_path, write_json_atomic

__all__ = [
    "ImageData",
    "RestrictedUnpickler",
    "restricted_load",
    "load_images",
    "load_python_batches",
    "load_image_folder",
    "load_tarball",
    "embedded_patches",
    "cache_dir",
    "CIFAR10_CLASSES",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_VERSION = "1"


@dataclass
class ImageData:
    """Images ``uint8 N x H x W x 3`` with integer ``labels`` (N,) and class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images: expected uint8 N x H x W x 3, got {self.images.dtype} "
                             f"{self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels: expected shape ({self.images.shape[0]},), got "
                             f"{self.labels.shape}")

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
class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build dicts, lists, bytes, str, numbers and numpy arrays.

    ``find_class`` allows exactly the globals numpy's array pickles use; anything else (e.g.
    ``os.system``, ``builtins.eval``) raises :class:`pickle.UnpicklingError`.
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
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only dicts, lists, bytes and numpy "
            f"arrays are allowed in a CIFAR-10 batch")


def restricted_load(fh, encoding: str = "bytes") -> Any:
    """``pickle.load`` with :class:`RestrictedUnpickler` (CIFAR-10 batches: ``bytes`` keys)."""
    return RestrictedUnpickler(fh, encoding=encoding).load()


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """``$IDENTIFIABLE_CACHE`` or ``~/.cache/identifiable``."""
    env = os.environ.get("IDENTIFIABLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "identifiable"


def _source_key(path: Path) -> str:
    """Hash of the absolute path, size and mtime of the source (every file of a folder)."""
    h = hashlib.sha1(f"{_CACHE_VERSION}|{path.resolve()}".encode())
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                h.update(f"|{os.path.relpath(os.path.join(root, name), path)}|{st.st_size}|"
                         f"{st.st_mtime_ns}".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _cache_files(key: str, split: str, cache: Path) -> tuple[Path, Path, Path]:
    base = cache / f"cifar-{key}-{split}"
    return (base.with_name(base.name + "-images.npy"), base.with_name(base.name + "-labels.npy"),
            base.with_name(base.name + "-classes.json"))


def _cache_read(key: str, split: str, cache: Path, source: str) -> ImageData | None:
    img, lab, cls = _cache_files(key, split, cache)
    if not (img.exists() and lab.exists() and cls.exists()):
        return None
    try:
        images = np.load(img, allow_pickle=False)
        labels = np.load(lab, allow_pickle=False)
        classes = tuple(json.loads(cls.read_text()))
        return ImageData(images, labels.astype(np.int64), classes, source)
    except (OSError, ValueError):
        return None


def _cache_write(key: str, split: str, cache: Path, data: ImageData) -> None:
    img, lab, cls = _cache_files(key, split, cache)
    for path, arr in ((img, data.images), (lab, data.labels)):
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    write_json_atomic(cls, list(data.classes))


# --------------------------------------------------------------------------- sources
def load_python_batches(folder: str | os.PathLike, split: str = "train") -> ImageData:
    """CIFAR-10 from the official ``cifar-10-batches-py`` folder (restricted unpickling)."""
    folder = Path(folder)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    names = [n for n in names if (folder / n).exists()]
    if not names:
        raise FileNotFoundError(f"data: no CIFAR-10 {split} batches in {folder}")
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as fh:
            batch = restricted_load(fh)
        if not isinstance(batch, dict):
            raise ValueError(f"data: {folder / name} is not a CIFAR-10 batch (no dict)")
        data = batch.get(b"data", batch.get("data"))
        labs = batch.get(b"labels", batch.get("labels"))
        if not isinstance(data, np.ndarray) or labs is None:
            raise ValueError(f"data: {folder / name} has no 'data' array / 'labels'")
        images.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(labs, dtype=np.int64))
    classes = CIFAR10_CLASSES
    meta = folder / "batches.meta"
    if meta.exists():
        with open(meta, "rb") as fh:
            m = restricted_load(fh)
        names_ = m.get(b"label_names", m.get("label_names")) if isinstance(m, dict) else None
        if names_:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names_)
    return ImageData(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels),
                     classes, str(folder))


def _decode(blob: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"data: cannot decode the image {where}: {exc}") from exc


def _assemble(items: list[tuple[str, str, np.ndarray]], source: str) -> ImageData:
    """(class, name, image) triples -> ImageData with alphabetical class order."""
    if not items:
        raise FileNotFoundError(f"data: no images found in {source}")
    classes = tuple(sorted({c for c, _, _ in items}))
    items.sort(key=lambda t: (t[0], t[1]))
    shapes = {im.shape for _, _, im in items}
    if len(shapes) != 1:
        raise ValueError(f"data: images of different sizes in {source}: {sorted(shapes)[:4]}")
    index = {c: i for i, c in enumerate(classes)}
    images = np.stack([im for _, _, im in items])
    labels = np.array([index[c] for c, _, _ in items], dtype=np.int64)
    return ImageData(images, labels, classes, source)


def load_image_folder(root: str | os.PathLike, split: str = "train") -> ImageData:
    """Images ``root/<split>/<class>/*.{png,jpg,jpeg}``; classes in alphabetical order."""
    root = Path(root)
    base = root / split
    if not base.is_dir():
        raise FileNotFoundError(f"data: no folder {base}")
    items = []
    for cdir in sorted(p for p in base.iterdir() if p.is_dir()):
        for f in sorted(cdir.iterdir()):
            if f.suffix.lower() in _IMAGE_SUFFIXES:
                items.append((cdir.name, f.name, _decode(f.read_bytes(), str(f))))
    return _assemble(items, str(base))


def _split_member(name: str) -> tuple[str, str, str] | None:
    """``[prefix/]train/<class>/<file>`` -> (split, class, file)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 3 or Path(parts[-1]).suffix.lower() not in _IMAGE_SUFFIXES:
        return None
    split, cls, fname = parts[-3], parts[-2], parts[-1]
    if split not in ("train", "test"):
        return None
    return split, cls, fname


def load_tarball(path: str | os.PathLike) -> dict[str, ImageData]:
    """Both splits of a ``.tar.gz`` of an image-folder tree, streamed (nothing unpacked)."""
    path = Path(path)
    items: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            where = _split_member(member.name)
            if where is None:
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            split, cls, fname = where
            items[split].append((cls, fname, _decode(fh.read(), member.name)))
    return {s: _assemble(v, f"{path}:{s}") for s, v in items.items() if v}


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
                cache: str | os.PathLike | None = None, use_cache: bool = True) -> ImageData:
    """Load ``split`` ("train" or "test") from any supported source (see the module doc).

    ``path=None`` or ``"embedded"`` gives :func:`embedded_patches` (a stand-in, not CIFAR-10).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if path is None or str(path) == "embedded":
        return embedded_patches(split=split)
    path = Path(path).expanduser()
    kind = _kind(path)
    cache_path = Path(cache) if cache is not None else cache_dir()
    key = _source_key(path) if use_cache else ""
    if use_cache:
        hit = _cache_read(key, split, cache_path, str(path))
        if hit is not None:
            return hit
    if kind == "tarball":
        splits = load_tarball(path)
        if use_cache:
            for s, d in splits.items():
                _cache_write(key, s, cache_path, d)
        if split not in splits:
            raise FileNotFoundError(f"data: no {split}/ images in {path}")
        return splits[split]
    data = load_python_batches(path, split) if kind == "batches" else load_image_folder(path, split)
    if use_cache:
        _cache_write(key, split, cache_path, data)
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
                     "embedded")
