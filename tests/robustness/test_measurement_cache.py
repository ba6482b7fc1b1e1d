"""The measurement cache of a run folder (identifiable.experiments.cache): a hit only when the
checkpoint bytes, the settings and the measuring code are all unchanged; every other case is a
miss that recomputes; a hit and a miss return identical data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identifiable.experiments.cache import (
    MeasurementCache,
    code_fingerprint,
    file_sha256,
    source_files,
)


class Counter:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


@pytest.fixture
def ckpt(tmp_path):
    p = tmp_path / "net.pt"
    p.write_bytes(b"weights v1")
    return p


def test_hit_only_when_everything_is_unchanged(tmp_path, ckpt):
    cache = MeasurementCache(tmp_path / "m", code="c1")
    f = Counter({"barrier": 0.25, "orders": [{"1": 3, "2": 1}], "pair": (1, 2)})
    v1, c1 = cache.measure("net-cnn-s0", [ckpt], {"n_match": 10}, f)
    v2, c2 = cache.measure("net-cnn-s0", [ckpt], {"n_match": 10}, f)
    assert (c1, c2, f.calls) == (False, True, 1)
    assert v1 == v2 == {"barrier": 0.25, "orders": [{"1": 3, "2": 1}], "pair": [1, 2]}
    assert (cache.hits, cache.misses) == (1, 1)
    # other settings, other code, other checkpoint bytes: each a miss
    cache.measure("net-cnn-s0", [ckpt], {"n_match": 11}, f)
    assert f.calls == 2
    MeasurementCache(tmp_path / "m", code="c2").measure("net-cnn-s0", [ckpt], {"n_match": 11}, f)
    assert f.calls == 3
    ckpt.write_bytes(b"weights v2")
    MeasurementCache(tmp_path / "m", code="c2").measure("net-cnn-s0", [ckpt], {"n_match": 11}, f)
    assert f.calls == 4
    # disabled (--fresh): always measured, the entry rewritten
    off = MeasurementCache(tmp_path / "m", code="c2", enabled=False)
    off.measure("net-cnn-s0", [ckpt], {"n_match": 11}, f)
    assert f.calls == 5


def test_the_checkpoint_list_is_part_of_the_key(tmp_path, ckpt):
    other = tmp_path / "other.pt"
    other.write_bytes(b"weights of another net")
    cache = MeasurementCache(tmp_path / "m", code="c")
    f = Counter({"barrier": 0.1})
    cache.measure("merge-a+b", [ckpt, other], {}, f)
    cache.measure("merge-a+b", [other, ckpt], {}, f)       # the order matters (a vs b)
    cache.measure("merge-a+b", [other, ckpt], {}, f)
    assert f.calls == 2


@pytest.mark.parametrize("damage", [b"", b"{", b"\xff\xfe", b"[1, 2]", b'{"key": 1}',
                                    b'{"key": null, "value": {}}'])
def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path, ckpt, damage):
    cache = MeasurementCache(tmp_path / "m", code="c")
    f = Counter({"barrier": 0.5})
    cache.measure("net-x", [ckpt], {}, f)
    cache.path("net-x").write_bytes(damage)
    v, cached = cache.measure("net-x", [ckpt], {}, f)
    assert (v, cached, f.calls) == ({"barrier": 0.5}, False, 2)
    assert cache.measure("net-x", [ckpt], {}, f)[1] is True


def test_an_entry_whose_value_is_not_a_dict_is_a_miss(tmp_path, ckpt):
    cache = MeasurementCache(tmp_path / "m", code="c")
    f = Counter({"barrier": 0.5})
    cache.measure("net-x", [ckpt], {}, f)
    entry = json.loads(cache.path("net-x").read_text())
    entry["value"] = [0.5]
    cache.path("net-x").write_text(json.dumps(entry))
    assert cache.measure("net-x", [ckpt], {}, f) == ({"barrier": 0.5}, False)


def test_nan_and_infinities_survive_and_hit(tmp_path, ckpt):
    cache = MeasurementCache(tmp_path / "m", code="c")
    f = Counter({"accuracy": float("nan"), "barrier": float("inf"), "settings": None})
    v1, _ = cache.measure("n", [ckpt], {"x": 1.5}, f)
    v2, cached = cache.measure("n", [ckpt], {"x": 1.5}, f)
    assert cached and f.calls == 1
    for v in (v1, v2):      # floats stay floats (not the strings "nan" / "inf")
        assert math.isnan(v["accuracy"]) and v["barrier"] == math.inf


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "sp ace"])
def test_bad_entry_names_are_refused(tmp_path, ckpt, name):
    with pytest.raises(ValueError, match="entry name"):
        MeasurementCache(tmp_path, code="c").measure(name, [ckpt], {}, Counter({}))


def test_non_json_values_and_non_dicts_are_refused(tmp_path, ckpt):
    cache = MeasurementCache(tmp_path, code="c")
    with pytest.raises(TypeError, match="must return a dict"):
        cache.measure("n", [ckpt], {}, Counter([1]))
    with pytest.raises(TypeError, match="not JSON data"):
        cache.measure("n", [ckpt], {}, Counter({"x": object()}))
    assert not cache.path("n").exists()


def test_a_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        MeasurementCache(tmp_path, code="c").measure("n", [tmp_path / "nope.pt"], {},
                                                     Counter({}))


def test_code_fingerprint_follows_the_source(tmp_path, monkeypatch):
    pkg = tmp_path / "fpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_fingerprint("fpkg")
    assert code_fingerprint("fpkg") == first
    (pkg / "a.py").write_text("X = 2\n")
    assert code_fingerprint("fpkg") != first
    (pkg / "a.py").write_text("X = 1\n")
    assert code_fingerprint("fpkg") == first
    (pkg / "b.py").write_text("")                      # a new module in the package counts
    assert code_fingerprint("fpkg") != first
    assert code_fingerprint("fpkg.a") != code_fingerprint("fpkg")


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=3000))
def test_file_sha256_against_hashlib(data):
    import hashlib
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f"
        p.write_bytes(data)
        assert file_sha256(p, chunk=7) == hashlib.sha256(data).hexdigest()


def test_the_gcnn_barrier_fingerprint_covers_every_module_its_measurements_load():
    """Ground truth from a fresh interpreter: import the experiment and every module its
    measuring functions import; each library module then loaded must be among the files the
    cache key hashes (hashing only identifiable.torch missed the core modules it runs, e.g.
    identifiable.activations through the matcher's activation groups)."""
    import subprocess
    import sys

    from identifiable.experiments.gcnn_barrier import MEASURING_CODE

    used = ["identifiable.experiments.gcnn_barrier", "identifiable.torch.merge",
            "identifiable.torch.recipes", "identifiable.torch.vgg", "identifiable.torch.data",
            "identifiable.torch.augment", "identifiable.torch.checkpoint",
            "identifiable.torch.plots", "identifiable.torch.distributed", "identifiable.io",
            "identifiable.results"]
    code = (f"import sys, importlib\nfor m in {used!r}: importlib.import_module(m)\n"
            "print(' '.join(f for m, mod in list(sys.modules.items()) "
            "if m.split('.')[0] == 'identifiable' and (f := getattr(mod, '__file__', None))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    hashed = {str(path.resolve()) for _, path in source_files(*MEASURING_CODE)}
    assert len(loaded) > 20
    missing = {f for f in loaded if str(Path(f).resolve()) not in hashed}
    assert not missing, missing
    assert any(f.endswith("activations.py") for f in loaded)   # a core module does run
