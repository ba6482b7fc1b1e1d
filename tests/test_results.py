"""Results records (identifiable.results) and `identifiable report`."""

import json

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
