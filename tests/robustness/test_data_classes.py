"""One class list per data set (issue items 1 and 3): labels never shift between splits, and
bad pixels / labels in python batches are refused naming the file."""

import pickle
import tarfile

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from identifiable.torch import data as D  # noqa: E402


def _tree(root, split, classes, n=2):
    for c, cls in enumerate(classes):
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            arr = np.full((32, 32, 3), 10 * c + k, np.uint8)
            Image.fromarray(arr).save(root / split / cls / f"{k}.png")


def _tgz(root, out):
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root, arcname="CIFAR-10-images")
    return out


def test_folder_with_a_missing_class_in_test_is_refused(tmp_path):
    root = tmp_path / "d"
    _tree(root, "train", ["cat", "dog", "frog"])
    _tree(root, "test", ["cat", "frog"])
    assert D.load_images(root, "train", use_cache=False).labels.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match=r"test.*missing classes \['dog'\]"):
        D.load_images(root, "test", cache=tmp_path / "c")


def test_folder_with_an_unknown_class_in_test_is_refused(tmp_path):
    root = tmp_path / "d"
    _tree(root, "train", ["cat", "frog"])
    _tree(root, "test", ["cat", "emu", "frog"])
    with pytest.raises(ValueError, match=r"unknown classes \['emu'\]"):
        D.load_images(root, "test", use_cache=False)
    # an explicit list is checked against the train split too
    with pytest.raises(ValueError, match=r"missing classes \['emu'\]"):
        D.load_images(root, "train", use_cache=False, classes=["cat", "emu", "frog"])


def test_both_splits_share_the_train_class_list(tmp_path):
    root = tmp_path / "d"
    _tree(root, "train", ["cat", "dog", "frog"])
    _tree(root, "test", ["cat", "dog", "frog"], n=1)
    train = D.load_images(root, "train", cache=tmp_path / "c")
    test = D.load_images(root, "test", cache=tmp_path / "c")
    assert train.classes == test.classes == ("cat", "dog", "frog")
    assert test.labels.tolist() == [0, 1, 2]
    # an explicit order is used for both splits
    order = ("frog", "cat", "dog")
    t2 = D.load_images(root, "test", cache=tmp_path / "c", classes=order)
    assert t2.classes == order and t2.labels.tolist() == [0, 1, 2]
    assert t2.images[0, 0, 0, 0] == 20  # frog is class 0 now
    assert D.load_images(root, "train", cache=tmp_path / "c", classes=order).labels[0] == 0


def test_a_source_without_train_needs_classes(tmp_path):
    root = tmp_path / "d"
    _tree(root, "test", ["cat", "frog"])
    with pytest.raises(ValueError, match="classes="):
        D.load_images(root, "test", use_cache=False)
    d = D.load_images(root, "test", use_cache=False, classes=["cat", "dog", "frog"][::2])
    assert d.classes == ("cat", "frog")


def test_tarball_with_a_missing_class_is_refused(tmp_path):
    root = tmp_path / "d"
    _tree(root, "train", ["cat", "dog", "frog"])
    _tree(root, "test", ["cat", "frog"])
    tgz = _tgz(root, tmp_path / "d.tar.gz")
    for split in ("test", "train"):  # every split of the archive is checked
        with pytest.raises(ValueError, match=r"d\.tar\.gz:test.*missing classes \['dog'\]"):
            D.load_images(tgz, split, cache=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy"))  # nothing cached


def test_tarball_splits_agree(tmp_path):
    root = tmp_path / "d"
    _tree(root, "train", ["cat", "dog", "frog"])
    _tree(root, "test", ["cat", "dog", "frog"], n=1)
    tgz = _tgz(root, tmp_path / "d.tar.gz")
    test = D.load_images(tgz, "test", cache=tmp_path / "c")
    assert test.classes == ("cat", "dog", "frog") and test.labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="repeated"):
        D.load_images(tgz, "test", use_cache=False, classes=["cat", "cat"])
    with pytest.raises(ValueError, match="string"):
        D.load_images(tgz, "test", use_cache=False, classes="cat")


def _batches(folder, data, labels, meta=True):
    folder.mkdir(parents=True, exist_ok=True)
    batch = {b"batch_label": b"x", b"labels": labels, b"data": data}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    if meta:
        names = {b"label_names": [c.encode() for c in D.CIFAR10_CLASSES]}
        (folder / "batches.meta").write_bytes(pickle.dumps(names))
    return folder


@pytest.mark.parametrize("data, labels, match", [
    (np.full((2, 3072), 300, np.int64), [0, 1], r"pixel values outside 0\.\.255.*300"),
    (np.full((2, 3072), -1, np.int16), [0, 1], r"pixel values outside 0\.\.255"),
    (np.zeros((2, 3072), np.float32), [0, 1], r"pixel values must be integers.*float32"),
    (np.zeros((2, 3000), np.uint8), [0, 1], r"not 2 x 3072"),
    (np.zeros((2, 3072), np.uint8), [0, 99], r"labels out of range 0\.\.9.*99"),
    (np.zeros((2, 3072), np.uint8), [-1, 0], r"labels out of range"),
    (np.zeros((2, 3072), np.uint8), np.array([0.0, np.nan]), "NaN"),
    (np.zeros((2, 3072), np.uint8), [0.5, 1.0], "labels must be integers"),
    (np.zeros((2, 3072), np.uint8), ["a", "b"], "labels must be integers"),
])
def test_bad_python_batches_are_named(tmp_path, data, labels, match):
    _batches(tmp_path / "cifar-10-batches-py", data, labels)
    with pytest.raises(ValueError, match=match) as err:
        D.load_images(tmp_path, "train", cache=tmp_path / "c")
    assert "data_batch_1" in str(err.value)


def test_python_batch_labels_index_the_meta_class_list(tmp_path):
    folder = _batches(tmp_path / "b", np.zeros((2, 3072), np.uint8), [3, 9])
    d = D.load_images(folder, "train", use_cache=False)
    assert d.classes == D.CIFAR10_CLASSES and d.labels.tolist() == [3, 9]
    with pytest.raises(ValueError, match="differs from the class list"):
        D.load_images(folder, "train", use_cache=False, classes=["a", "b"])
    # without batches.meta: an explicit list (labels must be in its range) or CIFAR-10's
    (folder / "batches.meta").unlink()
    with pytest.raises(ValueError, match=r"out of range 0\.\.1"):
        D.load_images(folder, "train", use_cache=False, classes=["a", "b"])
    assert D.load_images(folder, "train", use_cache=False).classes == D.CIFAR10_CLASSES


def test_image_data_refuses_labels_outside_its_classes():
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        D.ImageData(images, np.array([0, 5]), ("a", "b"))
    with pytest.raises(ValueError, match="integers"):
        D.ImageData(images, np.array([0.0, 1.0]), ("a", "b"))
