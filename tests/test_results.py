"""Results records (identifiable.results) and `identifiable report`."""

import json
import os

import pytest

from identifiable.cli import main
from identifiable.results import format_report, load_records, rst_report, write_record


def test_write_load_report_round_trip(tmp_path, capsys):
    fig = tmp_path / "figure2-x.png"
    fig.write_bytes(b"\x89PNG fake")
    rows = [{"task": "autoencoder", "activation": "tanh", "layer": "f1", "mirror": "lr",
             "ls_error": 0.125, "k_error": 0.25, "K_perm": list(range(64))}]
    path = write_record(tmp_path / "results", "mirror-mlp", "cifar-e10-seed0",
                        {"epochs": 10, "data": "cifar10", "seed": 0}, rows, 75.0, figures=[fig])
    assert path.name == "record.json" and (path.parent / "figure2-x.png").is_file()
    d = json.loads(path.read_text())
    assert d["library_version"] and d["wall_s"] == 75.0 and d["figures"] == ["figure2-x.png"]
    (rec,) = load_records(tmp_path / "results")
    assert rec.rows == rows and rec.settings["epochs"] == 10
    text = format_report([rec])
    assert "mirror-mlp / cifar-e10-seed0" in text and "epochs=10" in text
    assert "0.125" in text and "K_perm" not in text  # curated columns, long lists left out
    rst = rst_report([rec], "mirror-mlp", figures_dir="../results")
    assert ".. list-table::" in rst and "mirror-mlp/cifar-e10-seed0/figure2-x.png" in rst
    assert "Not run" in rst_report([rec], "gcnn-barrier")
    assert main(["report", "--results", str(tmp_path / "results")]) == 0
    assert "cifar-e10-seed0" in capsys.readouterr().out
    assert main(["report", "--results", str(tmp_path / "none")]) == 1


def test_bad_records_and_names(tmp_path):
    bad = tmp_path / "r" / "x" / "t"
    bad.mkdir(parents=True)
    (bad / "record.json").write_text("{not json")
    with pytest.raises(ValueError, match="record.json"):
        load_records(tmp_path / "r")
    (bad / "record.json").write_text(json.dumps({"experiment": "x"}))
    with pytest.raises(ValueError, match="lacks"):
        load_records(tmp_path / "r")
    with pytest.raises(ValueError, match="experiment / tag"):
        write_record(tmp_path, "a/b", "t", {}, [], 1.0)


def _gb_record(tmp_path, conventions=True):
    """A synthetic gcnn-barrier record: two recipes x 3 seeds, their same-recipe merges and one
    cross pair."""
    rows = []
    for recipe, level in (("cnn", 0.1), ("gcnn", 0.0)):
        for seed in range(3):
            r = {"arch": "vgg11", "recipe": recipe, "seed": seed, "accuracy": 0.8 + 0.01 * seed,
                 "invariance_error": level + 0.001 * seed, "barrier": level + 0.01 * seed,
                 "barrier_repair": level + 0.02 * seed}
            if conventions:
                r |= {"barrier_repair_train": r["barrier_repair"],
                      "barrier_repair_eval": level + 0.03 * seed}
            rows.append(r)
    for name, level in (("cnn + cnn", 0.3), ("gcnn + gcnn", 0.3), ("cnn + gcnn", 0.2)):
        for k in range(3):
            v = level + 0.01 * k
            m = {"arch": "vgg11", "recipe": name, "seed": f"{k} + {k + 1}", "barrier": v,
                 "barrier_repair": v}
            if conventions:
                m |= {"barrier_repair_train": v, "barrier_repair_eval": v + 0.01}
            rows.append(m)
    settings = {"arch": "vgg11", "width": 0.25, "epochs": 8, "seeds": [0, 1, 2]}
    if conventions:
        settings["repair_endpoints"] = "train"
    write_record(tmp_path / "results", "gcnn-barrier", "t", settings, rows, 60.0)
    (rec,) = load_records(tmp_path / "results")
    return rec, rows


def test_gcnn_barrier_summaries_against_numpy(tmp_path):
    """Table 2 / Table 4 summaries: mean ± sample std per recipe (checked against numpy), the
    paper's numbers beside them (identifiable.published), both REPAIR conventions, and the
    flipped-self-versus-two-nets comparison."""
    import numpy as np

    from identifiable.published import BK23_TABLE2, BK23_TABLE4
    from identifiable.results import summary_tables

    rec, rows = _gb_record(tmp_path)
    (t2, c2, b2), (t4, c4, b4), (t5, c5, b5) = summary_tables(rec)
    assert "Table 2" in t2 and "Table 4" in t4
    assert "GCNN barrier, REPAIR (train endpoints)" in c2 and \
        "GCNN barrier, REPAIR (eval endpoints)" in c2
    cnn = dict(zip(c2, b2[0]))
    acc = [r["accuracy"] for r in rows if r["recipe"] == "cnn"]
    assert cnn["accuracy"] == f"{np.mean(acc):.3g} ± {np.std(acc, ddof=1):.2g}"
    ev = [r["barrier_repair_eval"] for r in rows if r["recipe"] == "cnn"]
    assert cnn["GCNN barrier, REPAIR (eval endpoints)"] == \
        f"{np.mean(ev):.3g} ± {np.std(ev, ddof=1):.2g}"
    m, sd = BK23_TABLE2["cnn"]["barrier_repair"]
    assert cnn["[BK23] GCNN barrier (REPAIR)"] == f"{m:.3g} ± {sd:.2g}"
    pairs = {(r[0], r[1]): dict(zip(c4, r)) for r in b4}
    pm, psd = BK23_TABLE4[("cnn", "gcnn")]
    assert pairs[("cnn", "gcnn")]["[BK23] barrier"] == f"{pm:.3g} ± {psd:.2g}"
    verdicts = {r[0]: r[3] for r in b5}
    # cnn: self 0.1 +- 0.02 against two nets 0.31 +- 0.01 -> yes; gcnn: 0.02 against 0.31 -> yes
    assert verdicts == {"cnn": "yes", "gcnn": "yes"}
    text = format_report([rec])
    assert "Table 4 [BK23]" in text and "every row" in text
    rst = rst_report([rec], "gcnn-barrier")
    assert rst.count(".. list-table::") == 4


def test_legacy_gcnn_barrier_record_names_its_convention(tmp_path):
    from identifiable.results import summary_tables

    rec, _ = _gb_record(tmp_path, conventions=False)
    (t2, c2, _), *_ = summary_tables(rec)
    assert "GCNN barrier, REPAIR (eval endpoints)" in c2
    assert not any("train endpoints" in c for c in c2)
    assert "repair_endpoints=eval (recorded before the option existed)" in format_report([rec])


def test_rst_cells_never_start_a_bullet(tmp_path):
    """A missing value ('-') or a negative number in a list-table cell must stay text: an
    unescaped leading '-' makes docutils render a bullet."""
    from identifiable.results import _rst_escape

    assert _rst_escape("-") == "\\-" and _rst_escape("-0.0023") == "\\-0.0023"
    assert _rst_escape("0.5") == "0.5"
    rec, _ = _gb_record(tmp_path)
    rec.settings["arch"] = "resnet20"          # no published numbers: no [BK23] columns
    from identifiable.results import summary_tables

    assert all(not any(c.startswith("[BK23]") for c in cols)
               for _, cols, _ in summary_tables(rec))


@pytest.mark.parametrize("data, shown", [("/work/shared/data/cifar10-jpeg.tar.gz",
                                          "data=cifar10-jpeg.tar.gz"),
                                         ("../data/cifar-10-batches-py/",
                                          "data=cifar-10-batches-py"),
                                         ("C:\\data\\cifar.tar.gz", "data=cifar.tar.gz"),
                                         ("embedded", "data=embedded")])
def test_settings_line_shows_data_by_name_and_training_hours(tmp_path, data, shown):
    write_record(tmp_path / "results", "gcnn-barrier", "t",
                 {"data": data, "width": 0.5, "n_train": None, "train_hours": 3.25}, [], 1.0)
    (rec,) = load_records(tmp_path / "results")
    text = format_report([rec])
    assert shown in text and "train_hours=3.25" in text
    assert "n_train" not in text               # an unset setting is left out, not shown as '-'
    assert "/work/shared" not in rst_report([rec], "gcnn-barrier")


def test_train_hours_sums_the_nets_or_says_unknown():
    from identifiable.experiments.gcnn_barrier import _train_hours
    from identifiable.results import train_hours

    assert _train_hours([{"train_seconds": 1800.0}, {"train_seconds": 5400}]) == 2.0
    assert _train_hours([{"train_seconds": 1800.0}, {"train_seconds": None}]) is None
    assert _train_hours([{"recipe": "cnn"}]) is None and _train_hours([]) is None
    assert train_hours([36.0]) == 0.01 and train_hours([True]) is None
    assert train_hours(["1800"]) is None


def test_git_commit_is_dirty_only_for_the_source_below_it(tmp_path):
    """Ground truth from a scratch repository: +dirty for a modified or new file below the
    folder asked about, not for changes elsewhere in the checkout (a results file a run writes),
    None outside a checkout."""
    import shutil
    import subprocess

    from identifiable.results import git_commit

    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                            "HOME": str(tmp_path), "PATH": os.environ["PATH"]})

    (tmp_path / "pkg").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("X = 1\n")
    (tmp_path / "results" / "r.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    sha = git_commit(tmp_path / "pkg")
    assert sha is not None and len(sha) == 40
    (tmp_path / "results" / "r.json").write_text('{"a": 1}\n')      # a run's output
    assert git_commit(tmp_path / "pkg") == sha
    assert git_commit(tmp_path) == sha + "+dirty"
    (tmp_path / "pkg" / "b.py").write_text("")                      # a new module
    assert git_commit(tmp_path / "pkg") == sha + "+dirty"
    (tmp_path / "pkg" / "b.py").unlink()
    (tmp_path / "pkg" / "a.py").write_text("X = 2\n")               # a modified one
    assert git_commit(tmp_path / "pkg") == sha + "+dirty"
    outside = tmp_path.parent / (tmp_path.name + "-nogit")
    outside.mkdir()
    assert git_commit(outside) is None
