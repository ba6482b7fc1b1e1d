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
               "--json", str(js), "--threads", "1", "--results", str(tmp_path / "results")])
    assert rc == 0
    rec = json.loads((tmp_path / "results" / "mirror-mlp" / "embedded-e2-seed0-quick" /
                      "record.json").read_text())
    assert isinstance(rec["settings"]["train_hours"], float)     # two nets' training, summed
    trained_at = rec["settings"]["trained_at"]                    # the commits that trained them
    assert trained_at and all(isinstance(c, str) for c in trained_at)
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
               "--out", str(out), "--threads", "1", "--results", str(tmp_path / "results")])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    rec = json.loads((tmp_path / "results" / "attention-heads" / "embedded-e1-seed0-quick" /
                      "record.json").read_text())
    assert isinstance(rec["settings"]["train_hours"], float)
    assert 0 <= rec["settings"]["train_hours"] < 1
    assert sorted(res["head_perm_from_maps"]) == list(range(8))
    assert sorted(res["head_perm_from_action"]) == list(range(8))
    assert (out / "figure3.png").exists()


def test_record_claims_the_commit_the_run_started_from(tmp_path, monkeypatch):
    """A commit made while a run trains is not the code that ran: the record carries the
    checkout's commit as the run started (here the first git_commit answer; every later one is
    another commit)."""
    import identifiable.results as R

    answers = iter(["a" * 40, "b" * 40])
    monkeypatch.setattr(R, "git_commit", lambda path=None: next(answers, "c" * 40))
    rc = main(["experiment", "attention-heads", "--quick", "--epochs", "1", "--n-probes", "500",
               "--out", str(tmp_path / "att"), "--threads", "1",
               "--results", str(tmp_path / "results")])
    assert rc == 0
    rec = json.loads((tmp_path / "results" / "attention-heads" / "embedded-e1-seed0-quick" /
                      "record.json").read_text())
    assert rec["commit"] == "a" * 40 and rec["commit_at_write"] == "b" * 40
    (loaded,) = R.load_records(tmp_path / "results")
    assert loaded.commit_at_write == "b" * 40
    assert loaded.provenance(short=True) == (
        f"commit {'a' * 12} (the checkout was at {'b' * 12} when the record was written; "
        "modules imported late in the run may come from it)")
    report = R.format_report([loaded])
    assert f"commit {'a' * 40} (the checkout was at {'b' * 40}" in report
    # without a start commit: the checkout's now, and nothing moved
    p = R.write_record(tmp_path / "r2", "x", "t", {}, [], 1.0)
    assert json.loads(p.read_text())["commit"] == "c" * 40
    assert "commit_at_write" not in json.loads(p.read_text())
    monkeypatch.setattr(R, "git_commit", lambda path=None: None)       # not a checkout
    p = R.write_record(tmp_path / "r3", "x", "t", {}, [], 1.0, commit=None)
    assert json.loads(p.read_text())["commit"] is None
    assert R.load_records(tmp_path / "r3")[0].provenance() == "commit unknown"
    dirty = R.ResultRecord("x", "t", {}, [], "0", "d" * 40 + "+dirty", 1.0)
    assert dirty.provenance(short=True) == f"commit {'d' * 12}+dirty"


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


def test_gcnn_barrier_command(tmp_path, capsys, monkeypatch):
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
    report = json.loads((out / "results.json").read_text())
    for r, n in zip(rows, report["nets"]):
        # barrier_repair is the REPAIR authors' convention (train-mode endpoints); both are kept
        assert n["repair_endpoints"] == "train" and r["barrier_repair"] == n["barrier_repair_train"]
        assert all(isinstance(n[f"{k}_{c}"], float) for c in ("train", "eval") for k in
                   ("barrier_repair", "barrier_repair_abs", "halfway_accuracy_repair"))
        if r["recipe"] == "gcnn":       # exactly invariant; its flipped copy is a permutation
            # (eval-mode endpoints: REPAIR is then the identity on an exact self-merge; the
            # train convention renormalises to batch statistics of a barely trained net)
            assert r["invariance_error"] < 1e-5 and abs(n["barrier_repair_eval"]) < 0.02
        else:
            assert r["invariance_error"] > 1e-3
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
    assert "REPAIR (train endpoints)" in text and "REPAIR (eval endpoints)" in text
    # a second run reuses the trained nets (their checkpoints are not rewritten)
    stamp = (out / "nets" / "cnn-s0.pt").stat().st_mtime_ns
    assert main(args + ["--merge", "none", "--seeds", "1"]) == 0
    assert (out / "nets" / "cnn-s0.pt").stat().st_mtime_ns == stamp
    # ... and their measurements (OUT/measurements): with the measuring functions disabled, a
    # rerun reports exactly the numbers of the first run
    import identifiable.torch.merge as merge_module

    def refuse(*a, **k):
        raise AssertionError("a cached measurement was recomputed")

    monkeypatch.setattr(merge_module, "gcnn_barrier", refuse)
    monkeypatch.setattr(merge_module, "merge_barrier", refuse)
    js2 = tmp_path / "rows2.json"
    assert main(args + ["--json", str(js2)]) == 0
    assert json.loads(js2.read_text()) == rows
    again = json.loads((out / "results.json").read_text())
    assert again["merges"] == report["merges"] and again["nets"] == report["nets"]
    assert "measurement cache: 6 reused, 0 measured" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(["experiment", "gcnn-barrier", "--recipe", "resnet", "--out", str(out)]) == 2
    assert "--recipe: unknown ['resnet']" in capsys.readouterr().err


def test_gcnn_barrier_command_resnet20(tmp_path, capsys):
    """[BK23] Section 4.2 / Table 3 at CIFAR size: ``--arch resnet20`` trains ResNet-20s and
    flip-GCNN ResNet-20s (33 x 33 images: exact flips) and reports the GCNN barrier per net,
    with Figure 4 orders per residual stream."""
    out, js = tmp_path / "rn", tmp_path / "rows.json"
    args = ["experiment", "gcnn-barrier", "--arch", "resnet20", "--quick", "--epochs", "1",
            "--recipe", "cnn", "gcnn", "--n-match", "128", "--n-inv", "128", "--out", str(out),
            "--threads", "1"]
    assert main(args + ["--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert [(r["recipe"], r["seed"]) for r in rows] == [("cnn", 0), ("gcnn", 0)]
    report = json.loads((out / "results.json").read_text())
    by = {n["recipe"]: n for n in report["nets"]}
    # the exact self-merge: REPAIR is the identity with eval-mode endpoints (the train
    # convention renormalises to batch statistics, far from the running ones after 16 steps)
    assert by["gcnn"]["invariance_error"] < 1e-5 and abs(by["gcnn"]["barrier_repair_eval"]) < 0.02
    assert by["cnn"]["invariance_error"] > 1e-3
    assert report["settings"]["arch"] == "resnet20" and report["settings"]["image_size"] == 33
    assert report["group_names"][:2] == ["S1", "1.0"]
    for n in report["nets"]:
        assert n["net"] == "resnet20" and n["image_size"] == 33 and n["flip_exact"]
        assert [s["stream"].split(",")[0] for s in n["stream_orders"]] == [
            "stream[conv1", "stream[layer2.0.conv2", "stream[layer3.0.conv2"]
        assert [sum(s[k] for k in ("1", "2", ">2")) for s in n["stream_orders"]] == [4, 8, 16]
    gcnn = next(n for n in report["nets"] if n["recipe"] == "gcnn")
    assert sum(s["2"] for s in gcnn["stream_orders"]) >= 0.75 * 28
    assert (out / "nets" / "resnet20-gcnn-s0.pt").exists()
    assert not (out / "nets" / "gcnn-s0.pt").exists()
    assert (out / "figure4.png").exists()
    text = capsys.readouterr().out
    assert "resnet20 on 33 x 33" in text and "Table 3 [BK23] style" in text
    # --image-size 32 keeps CIFAR's size (then footnote 2 applies); VGG11 keeps the data's size
    import argparse

    from identifiable.experiments.gcnn_barrier import _settings, add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    s = _settings(p.parse_args(["--arch", "resnet20", "--image-size", "32"]))
    assert s["image_size"] == 32 and _settings(p.parse_args([]))["image_size"] is None


# ----------------------------------------------------------------------------- measure: any net
_FACTORY = '''
import torch
from torch import nn


def make():
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))


def make_conv():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 6, 2))


def not_a_module():
    return 3


def planted():
    """tanh([V; -V R] x + [c; -c]) is exactly equivariant under the reversal R of the 12
    inputs, with the latent action [[0, -I], [-I, 0]] (a signed permutation, Remark 4.2)."""
    g = torch.Generator().manual_seed(0)
    V = torch.randn(8, 12, generator=g) / 4
    c = torch.randn(8, generator=g) / 4
    net = make()
    with torch.no_grad():
        net[0].weight.copy_(torch.cat([V, -V.flip(1)]))
        net[0].bias.copy_(torch.cat([c, -c]))
    return net
'''


def _factory_module(tmp_path, monkeypatch, name):
    (tmp_path / f"{name}.py").write_text(_FACTORY)
    monkeypatch.chdir(tmp_path)         # the command finds the module in the working folder
    monkeypatch.syspath_prepend(str(tmp_path))      # and the test imports it too
    return name


def test_measure_vgg_checkpoint(tmp_path, capsys):
    """A gcnn-barrier checkpoint ([BK23] Table 1 GCNN): exactly flip-equivariant at init, so
    the lr rows show k = the orbit swap with errors ~ 0 and ud, the reference, does not."""
    import torch

    from identifiable.torch.checkpoint import save_checkpoint
    from identifiable.torch.vgg import build_classifier

    torch.manual_seed(0)
    net = build_classifier("gcnn", 1 / 16, 10)
    ck = save_checkpoint(tmp_path / "gcnn-s0.pt", {
        "arch": {"kind": "vgg", "arch": "gcnn", "width": 1 / 16, "n_classes": 10},
        "model": net.state_dict(), "epoch": 3})
    js = tmp_path / "rows.json"
    assert main(["measure", str(ck), "--n-probes", "48", "--layers", "2", "6", "--json",
                 str(js), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "gcnn VGG11" in out and "reference: ud" in out and "ud (ref)" in out
    rows = json.loads(js.read_text())
    assert [(r["layer"], r["group_spec"]) for r in rows] == [("2", "lr"), ("6", "lr"),
                                                             ("2", "ud"), ("6", "ud")]
    for r in rows:
        assert r["K"] == "positively scaled permutations" and r["spatial"] == r["group_spec"]
        if r["group_spec"] == "lr":
            m = r["latent_shape"][0] // 2
            assert r["k_perm"] == [(c + m) % (2 * m) for c in range(2 * m)]
            assert r["k_error"] < 1e-5 and r["homomorphism"] is True and not r["reference"]
        else:
            assert r["reference"] and r["k_error"] > 0.1
    assert main(["measure", str(ck), "--probe", "crops"]) == 2
    assert "--probe" in capsys.readouterr().err


def test_measure_model_factory(tmp_path, monkeypatch, capsys):
    import torch

    mod = _factory_module(tmp_path, monkeypatch, "lm_factory_ok")
    sd = tmp_path / "planted.pt"
    torch.save(__import__(mod).planted().state_dict(), sd)
    js = tmp_path / "rows.json"
    assert main(["measure", "--model", f"{mod}:make", "--weights", str(sd), "--group", "lr",
                 "--n-probes", "500", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert f"--model {mod}:make --weights" in out and "input (12,)" in out
    (r,) = json.loads(js.read_text())
    assert r["layer"] == "1" and r["K"] == "signed permutations" and r["homomorphism"]
    assert r["k_perm"] == [(i + 8) % 16 for i in range(16)] and set(r["k_values"]) == {-1.0}
    assert r["k_error"] < 1e-5 and r["identity_error"] > 0.5
    # the factory's own initialisation, a conv net with --input-shape and a named layer
    assert main(["measure", "--model", f"{mod}:make_conv", "--input-shape", "3", "8", "6",
                 "--group", "lr", "ud", "--layers", "1", "--n-probes", "64"]) == 0
    out = capsys.readouterr().out
    assert "4x8x6" in out and "ud (ref)" in out


@pytest.mark.parametrize("argv, message", [
    (["--model", "lm_no_such_module:make"], "--model: cannot import 'lm_no_such_module'"),
    (["--model", "{mod}:nothere"], "has no attribute 'nothere'"),
    (["--model", "{mod}:not_a_module"], "returned a int, not a torch.nn.Module"),
    (["--model", "{mod}"], "--model: expected package.module:factory"),
    (["--weights", "w.pt"], "--weights: needs --model"),
    (["--model", "{mod}:make", "--weights", "{bad}"], "missing keys ['0.bias', '0.weight']"),
    (["--model", "{mod}:make", "--weights", "{bad}"], "unexpected keys ['fc.weight']"),
    (["--model", "{mod}:make", "--weights", "{shape}"], "shape mismatches 0.weight"),
    (["--model", "{mod}:make", "--weights", "nothing.pt"], "--weights: no such file"),
    (["--model", "{mod}:make"], "--group: give the group"),
    (["--model", "{mod}:make_conv", "--input-shape", "3", "8", "6", "--group", "rot90"],
     "--group: 'rot90' does not fit the input shape (3, 8, 6)"),
    (["--model", "{mod}:make_conv", "--group", "lr"], "--input-shape: cannot infer"),
    (["--model", "{mod}:make", "--group", "lr", "--layers", "nope"],
     "--layers: no module named ['nope']"),
    (["--model", "{mod}:make", "--group", "lr", "--input-shape", "3", "4"],
     "--input-shape / --group: probes"),
    ([], "CHECKPOINT: give a checkpoint"),
])
def test_measure_model_errors(tmp_path, monkeypatch, capsys, argv, message):
    import torch

    mod = _factory_module(tmp_path, monkeypatch, "lm_factory_err")
    torch.save({"fc.weight": torch.zeros(2, 2), "2.weight": torch.zeros(3, 16),
                "2.bias": torch.zeros(3)}, tmp_path / "bad.pt")
    sd = __import__(mod).make().state_dict()
    sd["0.weight"] = torch.zeros(16, 11)
    torch.save(sd, tmp_path / "shape.pt")
    argv = [a.format(mod=mod, bad=tmp_path / "bad.pt", shape=tmp_path / "shape.pt")
            for a in argv]
    assert main(["measure", *argv, "--n-probes", "16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("identifiable measure: error:") and message in err


def test_repair_conventions_match_the_backend():
    from identifiable.experiments.gcnn_barrier import REPAIR_CONVENTIONS
    from identifiable.torch.structure import REPAIR_ENDPOINTS

    assert REPAIR_CONVENTIONS == REPAIR_ENDPOINTS


def test_table4_merge_jobs():
    """--merge: 'same' pairs the seeds of each recipe; 'paper' adds, per seed, the cross pairs
    of [BK23] Table 4 (among cnn, cnn-inv, gcnn); 'all' every pair of recipes; counted against
    itertools."""
    import itertools

    from identifiable.experiments.gcnn_barrier import merge_jobs

    recipes, seeds = ["cnn", "cnn-noaug", "cnn-inv", "gcnn", "pgcnn"], [0, 1, 2]
    same = merge_jobs(recipes, seeds, "same")
    assert len(same) == len(recipes) * 3 and all(a[0] == b[0] and a[1] < b[1] for a, b in same)
    paper = merge_jobs(recipes, seeds, "paper")
    cross = {(a[0], b[0]) for a, b in paper if a[0] != b[0]}
    assert cross == {("cnn", "cnn-inv"), ("cnn", "gcnn"), ("cnn-inv", "gcnn")}
    assert len(paper) == len(same) + 3 * len(seeds)
    full = merge_jobs(recipes, seeds, "all")
    assert len(full) == len(same) + len(list(itertools.combinations(recipes, 2))) * len(seeds)
    assert merge_jobs(recipes, seeds, "none") == []
    with pytest.raises(ValueError, match="--merge"):
        merge_jobs(recipes, seeds, "most")
