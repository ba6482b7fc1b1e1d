"""Training (eq. (22), Appendix C [SMBK26]): augmentation, loss, checkpoints, resume."""

import math

import pytest

torch = pytest.importorskip("torch")

from identifiable.torch.augment import augment, mirror_lr, mirror_ud, resize  # noqa: E402
from identifiable.torch.checkpoint import load_checkpoint, load_net, save_checkpoint  # noqa: E402
from identifiable.torch.data import embedded_patches  # noqa: E402
from identifiable.torch.nets import AttentionAutoencoder, MirrorMLP, build_net  # noqa: E402
from identifiable.torch.train import (  # noqa: E402
    TrainConfig,
    combined_loss,
    equivariance_weight,
    train,
)


@pytest.fixture(scope="module")
def small():
    return embedded_patches(384, seed=3)


def test_augment_shapes_and_mirror():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(x, g)
    assert out.shape == (64, 3, 14, 14) and out.min() >= 0 and out.max() <= 1
    # full-size crop, no jitter: every sample is the image or its mirror, exactly
    y = augment(x, g, size=32, scale=(1, 1), ratio=(1, 1), jitter=0.0)
    xf = x.float() / 255
    same = (y - xf).abs().flatten(1).amax(1) < 1e-5
    flipped = (y - mirror_lr(xf)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all()) and 10 < int(flipped.sum()) < 54
    assert torch.equal(mirror_ud(mirror_ud(xf)), xf)
    assert resize(x).shape == (64, 3, 14, 14)
    with pytest.raises(ValueError, match="x"):
        augment(torch.zeros(3, 32, 32), g)


def test_nets_expose_the_paper_layers():
    net = MirrorMLP("autoencoder", "tanh")
    assert [l.linear.out_features for l in net.layers] == [64, 256, 256, 588]
    assert [net.activation_of(i) for i in (1, 2, 3, 4)] == ["tanh", "gelu", "gelu", None]
    x = torch.randn(5, 3, 14, 14)
    assert torch.allclose(net.latent(x, 1), torch.tanh(net.layer(1).linear(x.flatten(1))))
    assert torch.allclose(net.layer(2)(net.latent(x, 1)), net.latent(x, 2))
    assert net(x).shape == (5, 3, 14, 14) and net(x.flatten(1)).shape == (5, 3, 14, 14)
    assert MirrorMLP("classifier", "gelu")(x).shape == (5, 10)
    att = AttentionAutoencoder()
    assert att(x).shape == (5, 3, 14, 14) and att.latent(x, 1).shape == (5, 256)
    w = att.attention_weights(x)
    assert w.shape == (5, 8, 7, 7) and torch.allclose(w.sum((2, 3)), torch.ones(5, 8))
    assert build_net(att.arch()).arch() == att.arch()
    with pytest.raises(ValueError, match="activation"):
        MirrorMLP("autoencoder", "relu6")
    with pytest.raises(ValueError, match="task"):
        MirrorMLP("segmenter", "tanh")
    with pytest.raises(ValueError, match="x"):
        net(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="layer"):
        net.layer(5)


@torch.no_grad()
def test_loss_of_eq_22_and_lambda_schedule():
    cfg = TrainConfig(task="autoencoder", epochs=10)
    assert [equivariance_weight(cfg, e) for e in (0, 4, 5, 9)] == [0, 0, 5, 5]
    assert TrainConfig(task="classifier", epochs=10).lam_after == 1
    torch.manual_seed(0)
    net = MirrorMLP("autoencoder", "tanh")
    x = torch.randn(8, 3, 14, 14)
    with torch.no_grad():
        total, eq = combined_loss(net, x, None, "autoencoder", 5.0)
        out = net(x)
    expected_eq = torch.mean((out - net(x.flip(-1)).flip(-1)) ** 2)
    assert math.isclose(float(eq), float(expected_eq), rel_tol=1e-5)
    assert math.isclose(float(total), float(torch.mean((out - x) ** 2) + 5 * expected_eq),
                        rel_tol=1e-5)
    clf = MirrorMLP("classifier", "tanh")
    y = torch.randint(0, 10, (8,))
    with torch.no_grad():
        _, eq_c = combined_loss(clf, x, y, "classifier", 1.0)  # no outer mirror for labels
    assert math.isclose(float(eq_c), float(torch.mean((clf(x) - clf(x.flip(-1))) ** 2)),
                        rel_tol=1e-5)
    with pytest.raises(ValueError, match="task"):
        TrainConfig(task="gan")


def test_resume_equals_uninterrupted_run(small, tmp_path):
    cfg = TrainConfig(task="classifier", activation="tanh", epochs=4, batch_size=128,
                      checkpoint_every=1, seed=7)
    full = train(cfg, small)
    part = train(cfg, small, tmp_path / "run", stop_after=2)  # "killed" after 2 epochs
    assert not part.finished and len(part.history) == 2
    resumed = train(cfg, small, tmp_path / "run", resume=True)
    assert resumed.finished and [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    secs = [h["seconds"] for h in resumed.history]       # cumulative across the resume
    assert secs == sorted(secs) and secs[2] > secs[1] > 0
    assert resumed.train_seconds == secs[-1] and part.train_seconds == secs[1]
    for (k, a), (_, b) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.history[-1]["loss"] == resumed.history[-1]["loss"]
    net, state = load_net(tmp_path / "run" / "checkpoint.pt")
    assert state["epoch"] == 4 and state["config"]["seed"] == 7
    assert torch.equal(net.layer(1).linear.weight, full.net.layer(1).linear.weight)


def test_checkpoint_of_another_architecture_is_refused(small, tmp_path):
    cfg = TrainConfig(task="autoencoder", activation="tanh", epochs=1, batch_size=128)
    train(cfg, small, tmp_path)
    other = TrainConfig(task="autoencoder", activation="gelu", epochs=1, batch_size=128)
    with pytest.raises(ValueError, match="architecture"):
        train(other, small, tmp_path, resume=True)
    longer = TrainConfig(task="autoencoder", activation="tanh", epochs=3, batch_size=128)
    with pytest.raises(ValueError, match=r"another run \(config.epochs: 1 there, 3 now"):
        train(longer, small, tmp_path, resume=True)
    with pytest.raises(ValueError, match="architecture"):
        load_checkpoint(tmp_path / "checkpoint.pt", arch=MirrorMLP("classifier", "tanh").arch())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"arch": {}, "model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="format"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="arch"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})


def test_attention_autoencoder_trains(small, tmp_path):
    cfg = TrainConfig(task="autoencoder", arch="attention", epochs=2, batch_size=192)
    res = train(cfg, small, tmp_path, test=small)
    assert res.finished and "test_mse" in res.metrics
    assert res.history[1]["lam"] == 5.0 and res.history[1]["eq_loss"] > 0
    with pytest.raises(ValueError, match="autoencoder"):
        TrainConfig(task="classifier", arch="attention")


def test_mirrors_agree_with_the_symbolic_image_flips():
    groups = pytest.importorskip("identifiable.groups")
    import numpy as np

    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    for rep, fn in ((groups.mirror(3, 4, 5), mirror_lr), (groups.flip_ud(3, 4, 5), mirror_ud)):
        M = np.asarray(rep.generators[0], dtype=float)
        np.testing.assert_array_equal(x.flatten(1).numpy() @ M.T, fn(x).flatten(1).numpy())


def _reference_attention(layer, x):
    """The layer as Section 6.2 states it (convolutions, einsums): ``literal``."""
    return layer.literal(x)


@pytest.mark.parametrize("in_shape, width, heads", [((3, 14, 14), 256, 8), ((3, 15, 13), 48, 4),
                                                    ((2, 6, 8), 12, 3), ((1, 4, 4), 8, 8)])
def test_factored_attention_is_the_literal_layer(in_shape, width, heads):
    """The factored forward (keys and values never formed) against the literal layer, values and
    gradients of every parameter in float64; odd sizes drop the last row / column like the conv."""
    torch.manual_seed(sum(in_shape) + width)
    net = AttentionAutoencoder(width=width, heads=heads, widths=(16,), in_shape=in_shape).double()
    layer = net.layer(1)
    with torch.no_grad():   # the conv biases start small: make them large enough to matter
        layer.key.bias.normal_()
        layer.value.bias.normal_()
    x = torch.randn(5, *in_shape, dtype=torch.float64)
    ref, a_ref, v_ref = _reference_attention(layer, x)
    out = layer(x)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    a, v = layer.attention(x)
    assert torch.allclose(a, a_ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(v, v_ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(out)
    g_fast = torch.autograd.grad((out * w).sum(), list(layer.parameters()))
    g_ref = torch.autograd.grad((_reference_attention(layer, x)[0] * w).sum(),
                                list(layer.parameters()))
    for (name, _), gf, gr in zip(layer.named_parameters(), g_fast, g_ref):
        assert torch.allclose(gf, gr, rtol=1e-10, atol=1e-12), name


def test_factored_attention_sees_every_patch_pixel_and_no_other():
    """Negative control for the patch layout: changing one pixel inside the conv's window changes
    the output exactly as the literal layer's does; a pixel the stride-2 conv never sees (the
    last row of an odd-height image) changes neither."""
    torch.manual_seed(1)
    layer = AttentionAutoencoder(width=16, heads=4, widths=(8,), in_shape=(3, 7, 6)).double() \
        .layer(1)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    for (r, c), seen in [((0, 0), True), ((5, 5), True), ((3, 2), True), ((6, 1), False)]:
        y = x.clone()
        y[:, 1, r, c] += 1.0
        changed = not torch.allclose(layer(y), layer(x), rtol=0, atol=1e-12)
        assert changed == seen, (r, c)
        assert torch.allclose(layer(y), _reference_attention(layer, y)[0], rtol=1e-12,
                              atol=1e-12)


def test_training_commits_ground_truth():
    from identifiable.torch.checkpoint import UNKNOWN_COMMIT, training_commits

    assert training_commits(None) == []
    assert training_commits(None, "a", trains=True) == ["a"]
    assert training_commits(None, None, trains=True) == [UNKNOWN_COMMIT]
    assert training_commits({"epoch": 3, "commits": ["a"]}, "b", trains=True) == ["a", "b"]
    assert training_commits({"epoch": 3, "commits": ["a", "b"]}, "a", trains=True) == ["a", "b"]
    assert training_commits({"epoch": 8, "commits": ["a"]}, "b", trains=False) == ["a"]
    # a checkpoint from before commits were kept: its epochs were trained by unknown code
    assert training_commits({"epoch": 3}, "b", trains=True) == [UNKNOWN_COMMIT, "b"]
    assert training_commits({"epoch": 0}, "b", trains=True) == ["b"]


def test_checkpoints_keep_the_commits_that_trained_them(small, tmp_path, monkeypatch):
    """A run killed at commit A and resumed at commit B lists both; loading the finished net at
    C adds nothing (it trains nothing); a checkpoint from before the list existed starts with
    'unknown'."""
    import identifiable.torch.train as T

    cfg = TrainConfig(task="classifier", activation="tanh", epochs=3, batch_size=128,
                      checkpoint_every=1, seed=1)
    monkeypatch.setattr(T, "git_commit", lambda path=None: "a" * 40)
    part = train(cfg, small, tmp_path / "run", stop_after=1)
    assert part.commits == ["a" * 40]
    monkeypatch.setattr(T, "git_commit", lambda path=None: "b" * 40)
    done = train(cfg, small, tmp_path / "run")
    assert done.finished and done.commits == ["a" * 40, "b" * 40]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["commits"] == done.commits
    monkeypatch.setattr(T, "git_commit", lambda path=None: "c" * 40)
    again = train(cfg, small, tmp_path / "run")
    assert again.commits == ["a" * 40, "b" * 40]
    # an old checkpoint (no "commits"), resumed for one more epoch
    ck = tmp_path / "run" / "checkpoint.pt"
    state = load_checkpoint(ck)
    del state["commits"]
    state["epoch"] = 2                                  # as if killed after epoch 2
    state["history"] = state["history"][:2]
    save_checkpoint(ck, state)
    resumed = train(cfg, small, tmp_path / "run")
    assert resumed.commits == ["unknown", "c" * 40]
