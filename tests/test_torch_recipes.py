"""Training recipes of Table 1 [BK23]: augmentation, schedule, inv-loss, resume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from identifiable.torch.data import embedded_patches  # noqa: E402
from identifiable.torch.recipes import (  # noqa: E402
    RECIPES,
    ClassifierConfig,
    checkpoint_path,
    invariance_loss,
    load_classifier,
    lr_at,
    random_crop_flip,
    train_recipe,
)
from identifiable.torch.table1 import recipe_names  # noqa: E402

pytestmark = pytest.mark.torch


def test_table_1_recipes():
    assert recipe_names() == ("cnn", "cnn-noaug", "cnn-inv", "cnn-late-inv", "gcnn", "pgcnn",
                              "pgcnn-late-inv")
    assert not RECIPES["cnn-noaug"].flip_augment
    assert all(RECIPES[r].flip_augment for r in recipe_names() if r != "cnn-noaug")
    late = ClassifierConfig(recipe="cnn-late-inv", epochs=10)
    assert [late.inv_on(e) for e in range(10)] == [False, False] + [True] * 8
    assert all(ClassifierConfig(recipe="cnn-inv", epochs=5).inv_on(e) for e in range(5))
    assert not any(ClassifierConfig(recipe="gcnn", epochs=5).inv_on(e) for e in range(5))
    with pytest.raises(ValueError, match="recipe"):
        ClassifierConfig(recipe="resnet")
    with pytest.raises(ValueError, match="epochs"):
        ClassifierConfig(epochs=0)


def test_triangular_schedule():
    c = ClassifierConfig(lr=0.1, warmup=0.2)
    lrs = [lr_at(c, s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(0.1)
    assert lrs.index(max(lrs)) in (19, 20)
    assert lrs[0] == pytest.approx(0.1 / 20)
    assert lrs[-1] == pytest.approx(0.1 / 80)
    assert all(a <= b for a, b in zip(lrs[:19], lrs[1:20]))
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), pad=st.integers(0, 4), flip=st.booleans())
def test_random_crop_flip_against_per_sample_slicing(seed, pad, flip):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 3, 8, 9)
    y = random_crop_flip(x, gen, pad, flip)
    xp = torch.nn.functional.pad(x, (pad,) * 4)
    for i in range(6):                       # brute force: every output is some crop (or flip)
        cands = [xp[i, :, a:a + 8, b:b + 9] for a in range(2 * pad + 1)
                 for b in range(2 * pad + 1)]
        cands += [c.flip(-1) for c in cands] if flip else []
        assert any(torch.equal(y[i], c) for c in cands)


def test_flip_probability_and_crop_offsets_cover_the_range():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 1, 4, 5)
    y = random_crop_flip(x, gen, 0, True)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    assert ((y == x).flatten(1).all(1) | flipped).all()
    assert 0.45 < flipped.float().mean().item() < 0.55
    assert torch.equal(random_crop_flip(x, gen, 0, False), x)
    # with padding 2 and a constant image the zero border shows all 5 x 5 offsets
    ones = torch.ones(2000, 1, 4, 4)
    z = random_crop_flip(ones, torch.Generator().manual_seed(1), 2, False)
    zero = z[:, 0] == 0
    offsets = set(zip(zero.all(2).sum(1).tolist(), zero.all(1).sum(1).tolist()))
    assert offsets == {(r, c) for r in range(3) for c in range(3)}  # zero rows x zero columns


def test_invariance_loss():
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert invariance_loss(a, torch.zeros_like(a)).item() == pytest.approx(2.5)
    assert invariance_loss(a, a).item() == 0.0


@pytest.fixture(scope="module")
def tiny_data():
    return embedded_patches(512, "train", seed=3), embedded_patches(128, "test", seed=3)


def _same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_equals_uninterrupted_and_reuse(tiny_data, tmp_path, monkeypatch):
    import identifiable.torch.recipes as R

    train, test = tiny_data
    cfg = ClassifierConfig(recipe="cnn-late-inv", width=0.0625, epochs=3, batch_size=128, seed=1)
    full = train_recipe(cfg, train, test, tmp_path / "a")
    monkeypatch.setattr(R, "git_commit", lambda path=None: "a" * 40)
    train_recipe(cfg, train, None, tmp_path / "b", stop_after=1)
    monkeypatch.setattr(R, "git_commit", lambda path=None: "b" * 40)
    resumed = train_recipe(cfg, train, test, tmp_path / "b")
    assert resumed.commits == ["a" * 40, "b" * 40]       # the commits that trained it
    assert _same_state(full.net, resumed.net)
    assert resumed.accuracy == full.accuracy
    assert [h["inv_on"] for h in resumed.history] == [False, True, True]
    # training seconds accumulate across a resume (the record's training time is the total):
    # a checkpoint whose first epoch claims 1000 s resumes at more than 1000 s
    from identifiable.torch.checkpoint import load_checkpoint, save_checkpoint

    train_recipe(cfg, train, None, tmp_path / "c", stop_after=1)
    path = checkpoint_path(tmp_path / "c", "cnn-late-inv", 1)
    state = load_checkpoint(path)
    state["history"][0]["seconds"] = 1000.0
    save_checkpoint(path, state)
    res_c = train_recipe(cfg, train, None, tmp_path / "c")
    secs = [h["seconds"] for h in res_c.history]
    assert secs[0] == 1000.0 and 1000.0 < secs[1] < secs[2]
    assert res_c.train_seconds == secs[2]
    # a finished checkpoint is reused, not retrained; another config is refused
    again = train_recipe(cfg, train, None, tmp_path / "b")
    assert _same_state(again.net, full.net) and len(again.history) == 3
    assert again.commits == ["a" * 40, "b" * 40]          # reusing trains nothing: no new one
    net, state = load_classifier(checkpoint_path(tmp_path / "a", "cnn-late-inv", 1))
    assert _same_state(net, full.net) and state["epoch"] == 3
    with pytest.raises(ValueError, match=r"another run \(config.lr: 0.05 there, 0.01 now"):
        train_recipe(ClassifierConfig(recipe="cnn-late-inv", width=0.0625, epochs=3,
                                      batch_size=128, seed=1, lr=0.01), train, None,
                     tmp_path / "a")


def test_trained_gcnn_stays_invariant_and_cnn_does_not(tiny_data):
    train, _ = tiny_data
    x = torch.randn(8, 3, 32, 32)
    for recipe, invariant in (("gcnn", True), ("cnn", False)):
        res = train_recipe(ClassifierConfig(recipe=recipe, width=0.0625, epochs=1,
                                            batch_size=128), train)
        with torch.no_grad():
            err = (res.net(x) - res.net(x.flip(-1))).abs().max().item()
        assert (err < 1e-4) == invariant, (recipe, err)


def test_resnet20_recipes_never_share_checkpoints_with_vgg11(tiny_data, tmp_path):
    """The Table 1 recipes train ResNet-20s too (``net="resnet20"``); the checkpoint records
    the family (path, arch and config), so a VGG11 run in the same folder never reuses it, and
    a checkpoint from before the ResNets (no ``net`` in its config) is still a VGG11's."""
    import shutil

    from identifiable.torch.checkpoint import load_checkpoint, save_checkpoint
    from identifiable.torch.resnet import ResNet

    train, _ = tiny_data
    small = embedded_patches(128, "train", seed=4)
    rn = ClassifierConfig(recipe="gcnn", width=0.125, epochs=1, batch_size=64, net="resnet20")
    res = train_recipe(rn, small, None, tmp_path)
    path = checkpoint_path(tmp_path, "gcnn", 0, "resnet20")
    assert res.path == path and path.name == "resnet20-gcnn-s0.pt"
    net, state = load_classifier(path)
    assert isinstance(net, ResNet) and state["arch"]["kind"] == "resnet"
    assert state["arch"]["net"] == "resnet20" and state["config"]["net"] == "resnet20"
    assert _same_state(net, res.net)
    x = torch.randn(4, 3, 33, 33)
    with torch.no_grad():                      # a trained GCNN-ResNet stays exactly invariant
        assert (net(x) - net(x.flip(-1))).abs().max() < 1e-4
    # the VGG11 of the same recipe and seed has its own file; a ResNet checkpoint at the VGG
    # path is refused, not loaded
    vgg = ClassifierConfig(recipe="gcnn", width=0.0625, epochs=1, batch_size=64)
    assert checkpoint_path(tmp_path, "gcnn", 0) != path
    shutil.copy(path, checkpoint_path(tmp_path, "gcnn", 0))
    with pytest.raises(ValueError, match="another architecture"):
        train_recipe(vgg, small, None, tmp_path)
    with pytest.raises(ValueError, match="net"):
        ClassifierConfig(net="resnet56")
    # a pre-ResNet VGG11 checkpoint (config without "net") is reused as before
    old = train_recipe(vgg, small, None, tmp_path / "old")
    ck = checkpoint_path(tmp_path / "old", "gcnn", 0)
    st = load_checkpoint(ck)
    st["config"].pop("net")
    save_checkpoint(ck, {k: v for k, v in st.items() if k != "format"})
    again = train_recipe(vgg, small, None, tmp_path / "old")
    assert _same_state(again.net, old.net) and len(again.history) == 1
