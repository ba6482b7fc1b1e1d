"""Damaged and hostile sources (issue items 3 and 4): garbage or truncated archives, refused or
truncated pickles, oversized images and decompression bombs are ValueErrors naming the file."""

import gzip
import io
import os
import pickle
import struct
import tarfile
import zlib

import numpy as np
import pytest
from helpers import Evil

Image = pytest.importorskip("PIL.Image")

from identifiable.torch import data as D  # noqa: E402


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tgz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def _valid_tgz(path, n=40):
    rng = np.random.default_rng(0)  # incompressible pixels: the archive is a few hundred kB
    members = {f"x/{s}/{c}/{k}.png": _png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
               for s in ("train", "test") for c in ("cat", "dog") for k in range(n)}
    return _tgz(path, members)


@pytest.mark.parametrize("blob", [
    b"",
    os.urandom(4096),
    gzip.compress(os.urandom(4096)),
    b"\x1f\x8b\x08\x00" + os.urandom(200),  # gzip magic, garbage deflate stream
], ids=["empty", "random", "gzip of random", "gzip magic"])
def test_a_garbage_archive_is_named(tmp_path, blob):
    path = tmp_path / "cifar.tar.gz"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=r"archive .*cifar\.tar\.gz is damaged or truncated"):
        D.load_images(path, "train", cache=tmp_path / "c")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -100, -8, -1])  # fraction, or bytes cut
def test_a_truncated_archive_is_named(tmp_path, keep):
    good = _valid_tgz(tmp_path / "good.tar.gz")
    assert len(D.load_images(good, "train", use_cache=False)) == 80
    blob = good.read_bytes()
    path = tmp_path / "cut.tar.gz"
    # the last bytes hold the gzip checksum and length: their loss is noticed too
    path.write_bytes(blob[:int(len(blob) * keep)] if keep > 0 else blob[:keep])
    with pytest.raises(ValueError, match=r"archive .*cut\.tar\.gz is damaged or truncated"):
        D.load_images(path, "train", cache=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy"))


def test_a_corrupted_archive_is_named(tmp_path):
    good = _valid_tgz(tmp_path / "good.tar.gz").read_bytes()
    bad = bytearray(good)
    for k in range(len(bad) // 2, len(bad) // 2 + 64):
        bad[k] ^= 0xFF
    path = tmp_path / "flip.tar.gz"
    path.write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=r"flip\.tar\.gz"):
        D.load_images(path, "train", use_cache=False)


@pytest.mark.parametrize("name", ["data_batch_1", "batches.meta"])
def test_a_malicious_pickle_is_refused_and_never_run(tmp_path, name):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    marker = tmp_path / "pwned"
    (folder / name).write_bytes(pickle.dumps({b"label_names": Evil(marker)}))
    with pytest.raises(ValueError, match=rf"refused to load .*{name}: not a CIFAR-10 batch"):
        D.load_images(tmp_path, "train", cache=tmp_path / "c")
    assert not marker.exists()


@pytest.mark.parametrize("cut", [0, 1, 50, -10])
def test_a_truncated_batch_is_named(tmp_path, cut):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    blob = pickle.dumps(batch, protocol=2)
    (folder / "data_batch_1").write_bytes(blob[:cut])
    with pytest.raises(ValueError, match=r"data_batch_1.*(damaged or truncated|not a CIFAR)"):
        D.load_images(tmp_path, "train", use_cache=False)


def _png_header_only(w, h):
    """A PNG announcing w x h pixels with one empty data chunk: cheap to write, a bomb to
    decode."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("w, h, match", [
    (12000, 12000, "decompression bomb"),
    (5000, 40, "5000 x 40 pixels, larger than 4096 x 4096"),
    (100000, 100000, "decompression bomb"),
])
def test_huge_images_are_refused_before_decoding(tmp_path, w, h, match):
    cls = tmp_path / "d" / "train" / "cat"
    cls.mkdir(parents=True)
    (cls / "0.png").write_bytes(_png(np.zeros((32, 32, 3), np.uint8)))
    (cls / "1.png").write_bytes(_png_header_only(w, h))
    with pytest.raises(ValueError, match=match) as err:
        D.load_images(tmp_path / "d", "train", use_cache=False)
    assert "1.png" in str(err.value)
    tgz = _tgz(tmp_path / "d.tar.gz", {"train/cat/1.png": _png_header_only(w, h)})
    with pytest.raises(ValueError, match=match) as err:
        D.load_images(tgz, "train", use_cache=False)
    assert "d.tar.gz:train/cat/1.png" in str(err.value)


@pytest.mark.parametrize("limit", [3000, 1000])  # PIL warns above the limit, fails above 2x
def test_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    cls = tmp_path / "d" / "train" / "cat"
    cls.mkdir(parents=True)
    (cls / "0.png").write_bytes(_png(np.zeros((64, 64, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"refused the image .*0\.png: a decompression bomb"):
        D.load_images(tmp_path / "d", "train", use_cache=False)


def test_images_of_another_size_are_named(tmp_path):
    cls = tmp_path / "d" / "train" / "cat"
    cls.mkdir(parents=True)
    for k in range(3):
        (cls / f"{k}.png").write_bytes(_png(np.zeros((32, 32, 3), np.uint8)))
    (cls / "odd.png").write_bytes(_png(np.zeros((40, 48, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"most are 32 x 32, cat/odd\.png is 48 x 40"):
        D.load_images(tmp_path / "d", "train", use_cache=False)


def test_undecodable_member_is_named(tmp_path):
    tgz = _tgz(tmp_path / "d.tar.gz", {"train/cat/0.png": b"not a png"})
    with pytest.raises(ValueError, match=r"d\.tar\.gz:train/cat/0\.png"):
        D.load_images(tgz, "train", use_cache=False)
