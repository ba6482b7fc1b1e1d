"""The .npy cache of decoded images (issue items 2, 5 and 6): a damaged entry is a miss that is
rebuilt, an unwritable cache folder means running uncached with one warning, stale temporary
files are cleaned, and the cache key is a content fingerprint."""

import hashlib
import io
import os
import shutil
import tarfile
import time
import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from identifiable.io import TMP_PREFIX  # noqa: E402
from identifiable.torch import data as D  # noqa: E402


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "d"
    for split, n in (("train", 3), ("test", 1)):
        for c, cls in enumerate(("cat", "dog")):
            (root / split / cls).mkdir(parents=True)
            for k in range(n):
                arr = np.full((32, 32, 3), 40 * c + k, np.uint8)
                Image.fromarray(arr).save(root / split / cls / f"{k}.png")
    return root


def _entry(cache, split="train"):
    files = sorted(cache.glob(f"cifar-*-{split}-*"))
    assert len(files) == 3, files
    return {f.name.rsplit("-", 1)[1]: f for f in files}  # classes.json, images.npy, labels.npy


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _forged_header(n):
    """A valid .npy header for uint8 n x 32 x 32 x 3 followed by one image's bytes only."""
    good = _npy_bytes(np.zeros((1, 32, 32, 3), np.uint8))
    old, new = b"(1, 32, 32, 3)", f"({n}, 32, 32, 3)".encode()
    pad = len(new) - len(old)
    head = good[:good.index(b"\n") + 1].replace(old, new).replace(b" " * pad + b"\n", b"\n")
    assert len(head) == good.index(b"\n") + 1  # same header length, still a valid .npy
    return head + b"\0" * 3072


DAMAGE = {
    "zero-byte images": ("images.npy", b""),
    "forged header": ("images.npy", _forged_header(10**12)),
    "forged labels header": ("labels.npy", _forged_header(10**12)),
    "classes.json = 5": ("classes.json", b"5"),
    "classes.json not json": ("classes.json", b"{"),
    "classes.json other names": ("classes.json", b'["x", "y"]'),
    "float images": ("images.npy", _npy_bytes(np.zeros((6, 32, 32, 3), np.float32))),
    "3-d images": ("images.npy", _npy_bytes(np.zeros((6, 32, 96), np.uint8))),
    "short images": ("images.npy", _npy_bytes(np.zeros((5, 32, 32, 3), np.uint8))),
    "float labels": ("labels.npy", _npy_bytes(np.zeros(6, np.float64))),
    "labels out of range": ("labels.npy", _npy_bytes(np.full(6, 7, np.int64))),
    "pickled labels": ("labels.npy", b"\x93NUMPY\x01\x00" + b"garbage" * 20),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_a_damaged_cache_entry_is_rebuilt(root, tmp_path, name):
    cache = tmp_path / "c"
    good = D.load_images(root, "train", cache=cache)
    part, blob = DAMAGE[name]
    _entry(cache)[part].write_bytes(blob)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a miss, quietly
        again = D.load_images(root, "train", cache=cache)
    np.testing.assert_array_equal(again.images, good.images)
    np.testing.assert_array_equal(again.labels, good.labels)
    assert again.classes == good.classes
    assert _entry(cache)[part].read_bytes() != blob  # replaced
    hit = D.load_images(root, "train", cache=cache)  # and valid again
    np.testing.assert_array_equal(hit.images, good.images)


def _cache_warnings(fn):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in rec if issubclass(w.category, D.CacheWarning)]


def test_a_cache_path_that_is_a_file_means_no_cache(root, tmp_path):
    blocker = tmp_path / "c"
    blocker.write_text("not a folder")
    tgz = tmp_path / "d.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(root, arcname="x")
    for src in (root, tgz):
        d, warned = _cache_warnings(lambda src=src: D.load_images(src, "train", cache=blocker))
        assert len(d) == 6 and len(warned) == 1, warned
        assert "without a cache" in str(warned[0].message) and str(blocker) in str(
            warned[0].message)


def test_an_unwritable_cache_folder_means_no_cache(root, tmp_path):
    cache = tmp_path / "c"
    cache.mkdir()
    cache.chmod(0o500)
    try:
        if os.access(cache, os.W_OK):
            pytest.skip("running as root: a 0o500 folder is writable")
        d, warned = _cache_warnings(lambda: D.load_images(root, "train", cache=cache))
        assert len(d) == 6 and len(warned) == 1
        assert not list(cache.iterdir())
    finally:
        cache.chmod(0o700)


def test_a_failed_cache_write_leaves_no_temporary(root, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    real_save = np.save

    def failing_save(fh, arr, **kw):
        real_save(fh, arr[:1], **kw)  # half written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", failing_save)
    d, warned = _cache_warnings(lambda: D.load_images(root, "train", cache=cache))
    assert len(d) == 6 and len(warned) == 1 and "No space" in str(warned[0].message)
    assert not list(cache.glob(f"{TMP_PREFIX}*")) and not list(cache.glob("*.npy"))

    def interrupted_save(fh, arr, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        D.load_images(root, "train", cache=cache)
    assert not list(cache.glob(f"{TMP_PREFIX}*"))


def test_stale_temporaries_are_cleaned_fresh_ones_kept(root, tmp_path):
    cache = tmp_path / "c"
    D.load_images(root, "train", cache=cache)
    stem = _entry(cache)["images.npy"].stem
    stale, fresh = cache / f"{TMP_PREFIX}{stem}.old1.npy", cache / f"{TMP_PREFIX}{stem}.new1.npy"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    D.load_images(root, "train", cache=cache)
    assert not stale.exists() and fresh.exists()


def test_cache_files_get_umask_permissions(root, tmp_path):
    cache = tmp_path / "c"
    D.load_images(root, "train", cache=cache)
    mask = os.umask(0)
    os.umask(mask)
    for f in _entry(cache).values():
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask


def test_fingerprint_is_the_content(root, tmp_path):
    cache = tmp_path / "c"
    blob = tmp_path / "x.tar.gz"
    blob.write_bytes(os.urandom(3 << 20))
    fp = D.fingerprint(blob, cache=cache)
    assert fp == "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    assert list(cache.glob("fingerprint-*.txt"))  # remembered
    D._FINGERPRINTS.clear()
    assert D.fingerprint(blob, cache=cache) == fp  # from the cache file
    copy = tmp_path / "y.tar.gz"
    shutil.copy(blob, copy)
    assert D.fingerprint(copy, cache=cache) == fp  # the content, not the path
    blob.write_bytes(b"other")
    assert D.fingerprint(blob, cache=cache) != fp

    # folders: relative paths and contents below train/ and test/, nothing else
    f1 = D.fingerprint(root, cache=cache)
    (root / "README").write_text("not data")
    assert D.fingerprint(root, cache=cache) == f1
    (root / "train" / "cat" / "0.png").rename(root / "train" / "cat" / "9.png")
    assert D.fingerprint(root, cache=cache) != f1


def test_image_data_carries_the_fingerprint(root, tmp_path):
    cache = tmp_path / "c"
    d = D.load_images(root, "train", cache=cache)
    assert d.fingerprint == D.fingerprint(root) and d.fingerprint.startswith("sha256:")
    assert d.source == str(root)
    hit = D.load_images(root, "test", cache=cache)
    assert hit.fingerprint == d.fingerprint
    assert D.load_images(root, "test", use_cache=False).fingerprint == d.fingerprint
    # the same content elsewhere is the same cache entry (no new .npy files)
    n = len(list(cache.glob("*.npy")))
    shutil.copytree(root, tmp_path / "copy")
    moved = D.load_images(tmp_path / "copy", "train", cache=cache)
    assert moved.fingerprint == d.fingerprint and len(list(cache.glob("*.npy"))) == n
    assert moved.source == str(tmp_path / "copy")
    emb = D.embedded_patches(16, seed=3)
    assert emb.fingerprint.startswith("embedded:") and "n=16" in emb.fingerprint
    assert emb.fingerprint != D.embedded_patches(16, seed=4).fingerprint
