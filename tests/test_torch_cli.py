"""The torch commands: experiment mirror-mlp / attention-heads, measure; figures."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from identifiable.cli import main  # noqa: E402
from identifiable.torch.plots import figure2, figure3, filter_categories  # noqa: E402


def test_filter_categories_and_figures(tmp_path):
    K = np.zeros((6, 6))
    K[0, 0] = 1          # self-symmetric
    K[1, 2] = K[2, 1] = 1  # mirrored pair
    K[3, 4] = K[4, 3] = -1  # mirrored and negated
    K[5, 5] = -1         # its own negated mirror
    cats = filter_categories(K)
    assert cats == [([0], "self-symmetric"), ([1, 2], "mirrored pair"),
                    ([3, 4], "mirrored and negated"), ([5], "mirrored and negated")]
    p = figure2(np.random.default_rng(0).normal(size=(6, 3, 14, 14)), K, tmp_path / "f2.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    att = np.random.default_rng(1).random((8, 7, 7))
    p3 = figure3(np.random.default_rng(2).random((32, 32, 3)), att, att[:, :, ::-1],
                 [0, 4, 2, 3, 1, 5, 6, 7], tmp_path / "f3.png")
    assert p3.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="K"):
        figure2(np.zeros((6, 3, 14, 14)), np.eye(5), tmp_path / "bad.png")


def test_mirror_mlp_command_and_measure(tmp_path, capsys):
    out, js = tmp_path / "run", tmp_path / "rows.json"
    rc = main(["experiment", "mirror-mlp", "--quick", "--epochs", "2", "--n-probes", "2000",
               "--task", "classifier", "--activation", "both", "--out", str(out),
               "--json", str(js), "--threads", "1"])
    assert rc == 0
    rows = json.loads(js.read_text())
    assert len(rows) == 8
    for r in rows:
        assert r["task"] == "classifier" and r["activation"] in ("tanh", "gelu")
        assert r["layer"] in ("f1", "f2") and r["mirror"] in ("lr", "ud")
        assert isinstance(r["ls_error"], float) and isinstance(r["k_error"], float)
        assert r["probe"] == "noise" and r["epochs"] == 2
    assert (out / "figure2-classifier-tanh.png").exists()
    assert "tanh (ls / K)" in capsys.readouterr().out
    # resuming a finished run only measures again
    rc = main(["experiment", "mirror-mlp", "--quick", "--epochs", "2", "--n-probes", "2000",
               "--task", "classifier", "--activation", "tanh", "--out", str(out), "--resume"])
    assert rc == 0
    ck = out / "classifier-tanh" / "checkpoint.pt"
    rc = main(["measure", str(ck), "--n-probes", "2000", "--layers", "1", "--json",
               str(tmp_path / "m.json")])
    assert rc == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert [r["mirror"] for r in m] == ["lr", "ud"] and m[0]["K"] == "signed permutations"
    assert main(["measure", str(tmp_path / "nothing.pt")]) == 2


def test_attention_heads_command(tmp_path):
    out = tmp_path / "att"
    rc = main(["experiment", "attention-heads", "--quick", "--epochs", "1", "--n-probes", "1000",
               "--out", str(out), "--threads", "1"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert sorted(res["head_perm_from_maps"]) == list(range(8))
    assert sorted(res["head_perm_from_action"]) == list(range(8))
    assert (out / "figure3.png").exists()


def test_head_permutations_are_recovered():
    import torch

    from identifiable.experiments.attention_heads import (
        head_permutation_from_action,
        head_permutation_from_maps,
    )

    g = torch.Generator().manual_seed(0)
    att = torch.rand(16, 8, 7, 7, generator=g)
    perm = [2, 1, 0, 3, 5, 4, 7, 6]
    att_m = torch.empty_like(att)
    for h, p in enumerate(perm):  # head p of the mirrored image = mirror of head h's map
        att_m[:, p] = att[:, h].flip(-1)
    assert head_permutation_from_maps(att, att_m)[0] == perm
    A = np.zeros((256, 256))
    for h, p in enumerate(perm):
        A[32 * p:32 * p + 32, 32 * h:32 * h + 32] = np.random.default_rng(h).normal(size=(32, 32))
    assert head_permutation_from_action(A, 8)[0] == perm


def test_experiments_register_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import identifiable.experiments as e\n"
            "from identifiable.cli import build_parser\n"
            "build_parser()\n"
            "assert {'mirror-mlp', 'attention-heads', 'gcnn-barrier'} <= set(e.EXPERIMENTS)\n"
            "assert len(e.MEASURE) == 3\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gcnn_barrier_command(tmp_path, capsys):
    """[BK23] Section 4.1: the Table 2 / Table 4 command on the embedded data (tiny nets)."""
    out, js = tmp_path / "gb", tmp_path / "rows.json"
    args = ["experiment", "gcnn-barrier", "--quick", "--recipe", "cnn", "gcnn", "--epochs", "1",
            "--n-match", "256", "--n-inv", "256", "--out", str(out), "--threads", "1"]
    assert main(args + ["--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert [(r["recipe"], r["seed"]) for r in rows] == [("cnn", 0), ("cnn", 1), ("gcnn", 0),
                                                      ("gcnn", 1)]
    for r in rows:
        assert set(r) == {"recipe", "seed", "accuracy", "invariance_error", "barrier",
                          "barrier_repair"}
        assert all(isinstance(r[k], float) for k in ("accuracy", "invariance_error", "barrier",
                                                     "barrier_repair"))
    for r in rows:
        if r["recipe"] == "gcnn":       # exactly invariant; its flipped copy is a permutation
            assert r["invariance_error"] < 1e-5 and abs(r["barrier_repair"]) < 0.02
        else:
            assert r["invariance_error"] > 1e-3
    report = json.loads((out / "results.json").read_text())
    gcnn = [n for n in report["nets"] if n["recipe"] == "gcnn"]
    widths = [4, 8, 16, 16, 32, 32, 32, 32]          # VGG11 at width 1/16
    for n in report["nets"]:
        assert [sum(o.values()) for o in n["orders"]] == widths
    # the matcher finds mostly the ground truth (order 2) in a GCNN; dead channels of a barely
    # trained net are matched arbitrarily, which [BK23] Figure 4 also shows
    pairs = sum(o["2"] for n in gcnn for o in n["orders"])
    assert pairs >= 0.75 * len(gcnn) * sum(widths)
    assert all(n["flip_exact"] for n in report["nets"])
    assert {(m["recipe_a"], m["recipe_b"]) for m in report["merges"]} == {("cnn", "cnn"),
                                                                         ("gcnn", "gcnn")}
    for name in ("figure4.png", "figure1-cnn.png", "figure1-gcnn.png", "table.txt"):
        assert (out / name).exists()
    text = capsys.readouterr().out
    assert "GCNN barrier" in text and "Table 4" in text
    # a second run reuses the trained nets (their checkpoints are not rewritten)
    stamp = (out / "nets" / "cnn-s0.pt").stat().st_mtime_ns
    assert main(args + ["--merge", "none", "--seeds", "1"]) == 0
    assert (out / "nets" / "cnn-s0.pt").stat().st_mtime_ns == stamp
    assert main(["experiment", "gcnn-barrier", "--recipe", "resnet", "--out", str(out)]) == 2
    assert "--recipe: unknown ['resnet']" in capsys.readouterr().err
