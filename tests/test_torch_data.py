"""Data loaders of identifiable.torch.data on small sources written by the tests themselves."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from helpers import Evil

pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from identifiable.torch import data as D  # noqa: E402


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """train/<class>/*.png (lossless) with 2 classes; test/ with 1 image per class."""
    root = tmp_path / "cifar"
    expected = {}
    for split, per in (("train", 3), ("test", 1)):
        imgs, labels = [], []
        for c, cls in enumerate(("bird", "airplane")):  # written out of order on purpose
            arr = _images(per, 10 * c + per)
            (root / split / cls).mkdir(parents=True)
            for k in range(per):
                Image.fromarray(arr[k]).save(root / split / cls / f"{k:04d}.png")
        # expected order: classes alphabetical, files sorted
        for c, cls in enumerate(("airplane", "bird")):
            seed_c = ("bird", "airplane").index(cls)
            arr = _images(per, 10 * seed_c + per)
            imgs.append(arr)
            labels += [c] * per
        expected[split] = (np.concatenate(imgs), np.array(labels))
    return root, expected


def test_image_folder(folder, tmp_path):
    root, expected = folder
    d = D.load_images(root, "train", cache=tmp_path / "cache")
    assert d.classes == ("airplane", "bird")
    np.testing.assert_array_equal(d.images, expected["train"][0])
    np.testing.assert_array_equal(d.labels, expected["train"][1])
    # a second load comes from the .npy cache (allow_pickle=False), bit for bit
    assert any(p.suffix == ".npy" for p in (tmp_path / "cache").iterdir())
    d2 = D.load_images(root, "train", cache=tmp_path / "cache")
    np.testing.assert_array_equal(d2.images, d.images)
    t = D.load_images(root, "test", use_cache=False)
    np.testing.assert_array_equal(t.images, expected["test"][0])


def test_tarball_streamed_without_unpacking(folder, tmp_path):
    root, expected = folder
    tgz = tmp_path / "cifar.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(root, arcname="CIFAR-10-images")
    before = set(os.listdir(tmp_path))
    d = D.load_images(tgz, "train", cache=tmp_path / "cache")
    np.testing.assert_array_equal(d.images, expected["train"][0])
    np.testing.assert_array_equal(d.labels, expected["train"][1])
    t = D.load_images(tgz, "test", cache=tmp_path / "cache")  # from the cache
    np.testing.assert_array_equal(t.images, expected["test"][0])
    assert set(os.listdir(tmp_path)) - before == {"cache"}


def test_cache_key_follows_the_source(folder, tmp_path):
    root, _ = folder
    cache = tmp_path / "cache"
    D.load_images(root, "train", cache=cache)
    n = len(list(cache.iterdir()))
    img = root / "train" / "bird" / "0000.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    os.utime(img, ns=(1, 1))
    d = D.load_images(root, "train", cache=cache)
    assert len(list(cache.iterdir())) > n
    assert d.images[3].max() == 0  # the changed file, not the stale cache


def _write_batches(folder, n=4):
    folder.mkdir(parents=True)
    expected = []
    for name, seed in (("data_batch_1", 0), ("data_batch_2", 1), ("test_batch", 2)):
        arr = _images(n, seed)
        labels = list(range(seed, seed + n))
        batch = {b"batch_label": b"x", b"labels": labels,
                 b"data": arr.transpose(0, 3, 1, 2).reshape(n, -1)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        expected.append((arr, labels))
    meta = {b"label_names": [c.encode() for c in D.CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return expected


def test_python_batches(tmp_path):
    exp = _write_batches(tmp_path / "cifar-10-batches-py")
    d = D.load_images(tmp_path, "train", use_cache=False)
    np.testing.assert_array_equal(d.images, np.concatenate([exp[0][0], exp[1][0]]))
    assert d.labels.tolist() == exp[0][1] + exp[1][1]
    assert d.classes == D.CIFAR10_CLASSES
    t = D.load_images(tmp_path / "cifar-10-batches-py", "test", cache=tmp_path / "c")
    np.testing.assert_array_equal(t.images, exp[2][0])


def test_malicious_pickle_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(marker)}))
    with pytest.raises(ValueError, match="refus"):
        D.load_images(tmp_path, "train", use_cache=False)
    assert not marker.exists()
    for payload in (pickle.dumps(eval), pickle.dumps(io.BytesIO)):
        with pytest.raises(pickle.UnpicklingError):
            D.restricted_load(io.BytesIO(payload))


def test_bad_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="data"):
        D.load_images(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="tar"):
        D.load_images(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="split"):
        D.load_images(None, "valid")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither"):
        D.load_images(tmp_path / "empty")
    (tmp_path / "bad" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "cat" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="0.png"):
        D.load_images(tmp_path / "bad", use_cache=False)


def test_embedded_stand_in():
    d = D.embedded_patches(256, seed=1)
    assert d.images.shape == (256, 32, 32, 3) and d.images.dtype == np.uint8
    assert d.source == "embedded" and 2 <= len(d.classes) <= 10
    assert d.labels.max() < len(d.classes)
    assert d.images.std() > 20  # natural images, not constant
    again = D.embedded_patches(256, seed=1)
    np.testing.assert_array_equal(again.images, d.images)
    assert not np.array_equal(D.embedded_patches(256, "test", seed=1).images, d.images)
    assert d.tensor().shape == (256, 3, 32, 32)
