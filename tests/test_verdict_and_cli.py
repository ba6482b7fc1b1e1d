"""Verdict invariants, the claims runner and the `identifiable verify` command."""

import json
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from identifiable import Verdict
from identifiable.claims import load_claims, run_claims
from identifiable.cli import main


def test_verdict_rules():
    with pytest.raises(ValueError, match="counterexample"):
        Verdict("refuted", "no witness")
    with pytest.raises(ValueError, match="n_samples"):
        Verdict("checked", "how many?")
    with pytest.raises(ValueError, match="status"):
        Verdict("maybe", "x")
    with pytest.raises(ValueError, match="reason"):
        Verdict("proved", " ")
    with pytest.raises(TypeError, match="holds"):
        bool(Verdict.proved("x"))
    assert Verdict.proved("x").holds is True
    assert Verdict.checked("x", 3, 1e-9).holds is True
    assert Verdict.refuted("x", {"x": 1}).holds is False
    assert Verdict.undecided("x").holds is None


def test_verdict_to_dict_is_json_and_exact():
    v = Verdict.refuted("r", counterexample={"x": [sp.Rational(1, 3), np.float64(0.5)],
                                             "M": sp.Matrix([[1, sp.sqrt(2)]])},
                        witness=np.eye(2, dtype=int), tol=1e-9)
    d = json.loads(json.dumps(v.to_dict()))
    assert d["counterexample"]["x"] == ["1/3", 0.5]
    assert d["counterexample"]["M"] == [[1, "sqrt(2)"]]
    assert d["witness"] == [[1, 0], [0, 1]] and d["holds"] is False
    assert "refuted" in repr(v)


def test_claims_load_and_run_with_expected_status():
    claims = load_claims()
    ids = {c.id for c in claims}
    assert {"bk23.lem-2.2", "bk23.lem-e.1", "smbk26.bypass",
            "smbk26.sec-5.1-intertwiners"} <= ids
    results = run_claims(claims, only=["smbk26.bypass"])
    assert len(results) == 1 and results[0].ok
    with pytest.raises(ValueError, match="unknown claim"):
        run_claims(claims, only=["no.such.claim"])


def test_claims_of_a_folder_share_helpers_and_leave_sys_modules_alone(tmp_path):
    # a folder of claim files with a helper module imported relatively, like proofs/_common.py
    (tmp_path / "_shared.py").write_text("ANSWER = 'proved'\n")
    (tmp_path / "one.py").write_text(
        "from identifiable import Verdict\nfrom identifiable.claims import claim\n"
        "from ._shared import ANSWER\n"
        "@claim(id='folder.one', source='s', statement='st', expected='proved', method='m')\n"
        "def check():\n    return Verdict(ANSWER, 'from the helper')\n")
    before = set(sys.modules)
    claims = load_claims(tmp_path)
    assert [c.id for c in claims] == ["folder.one"]
    assert claims[0].path == str(tmp_path / "one.py")
    assert run_claims(claims)[0].ok
    # the folder's package was visible only while its files ran
    assert set(sys.modules) - before == set()
    # the installed catalog: ordinary submodules of identifiable_proofs, same claims as the folder
    installed = load_claims()
    assert {c.check.__module__.split(".")[0] for c in installed} == {"identifiable_proofs"}
    from identifiable.claims import default_claims_dir

    folder = load_claims(default_claims_dir())
    assert [c.id for c in folder] == [c.id for c in installed]
    assert not [k for k in sys.modules if k.startswith("identifiable_claims")]


def test_cli_verify_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--only", "smbk26.bypass", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows[0]["id"] == "smbk26.bypass" and rows[0]["status"] == "proved"
    printed = capsys.readouterr().out
    assert "smbk26.bypass" in printed and "1 of 1 claims" in printed
    assert main(["verify", "--only", "nope"]) == 2


def test_cli_verify_fails_when_status_differs(tmp_path):
    (tmp_path / "fake.py").write_text(
        "from identifiable.claims import claim\nfrom identifiable import Verdict\n"
        "@claim(id='fake.x', source='s', statement='st', expected='proved', method='m')\n"
        "def check():\n    return Verdict.undecided('cannot')\n")
    assert main(["verify", "--claims", str(tmp_path)]) == 1


def test_core_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import identifiable, identifiable.cli; "
            "import identifiable.experiments, identifiable.strategies; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_version_flag_matches_the_package_metadata(capsys):
    import importlib.metadata
    from pathlib import Path

    import identifiable

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"identifiable {identifiable.__version__}"
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert identifiable.__version__ == pyproject["project"]["version"]
    assert importlib.metadata.version("identifiable") == identifiable.__version__
