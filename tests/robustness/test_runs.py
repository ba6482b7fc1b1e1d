"""Runs under faults and careless use: locks, kill -9 and resume, reuse across data sets,
tampered checkpoints, temporary files, permissions, and the command line's error messages.

Each test is built from a probe that once gave a silent wrong result or a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from identifiable.io import (
    TMP_PREFIX,
    RunLock,
    RunLocked,
    atomic_path,
    clean_stale_temporaries,
    write_json_atomic,
)

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "identifiable.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ locks
def test_second_run_into_a_locked_folder_is_refused(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLocked, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    # released: a new run may lock it
    with RunLock(tmp_path / "run"):
        pass
    assert not (tmp_path / "run" / ".lock").exists()


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    """Folders the lock created are removed on release when the run left them empty (a run
    refused after locking leaves no empty --out); anything written, or a folder that existed
    before, is kept."""
    with RunLock(tmp_path / "a" / "b" / "run"):
        assert (tmp_path / "a" / "b" / "run" / ".lock").exists()
    assert list(tmp_path.iterdir()) == []
    with RunLock(tmp_path / "a" / "run"):
        (tmp_path / "a" / "run" / "results.json").write_text("{}")
    assert (tmp_path / "a" / "run" / "results.json").exists()
    (tmp_path / "b").mkdir()
    with RunLock(tmp_path / "b" / "new"):
        pass
    assert (tmp_path / "b").is_dir() and not (tmp_path / "b" / "new").exists()
    with RunLock(tmp_path / "b"):
        pass
    assert (tmp_path / "b").is_dir()


@pytest.mark.torch
def test_cli_refused_after_locking_leaves_no_empty_out(tmp_path):
    data = tmp_path / "data"
    for split in ("train", "test"):
        (data / split / "cat").mkdir(parents=True)
    out = tmp_path / "never" / "out"
    r = _cli("experiment", "gcnn-barrier", "--data", str(data), "--out", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "never").exists()


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    code = textwrap.dedent(f"""
        import time
        from identifiable.io import RunLock
        RunLock({str(tmp_path / 'run')!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    with pytest.raises(RunLocked, match=f"process {p.pid}"):
        RunLock(tmp_path / "run").acquire()
    p.send_signal(signal.SIGKILL)
    p.wait()
    with RunLock(tmp_path / "run") as lock:  # the owner is gone: stale, taken over
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


@pytest.mark.torch
def test_cli_refuses_a_second_run_into_one_out(tmp_path):
    out = tmp_path / "out"
    with RunLock(out):
        r = _cli("experiment", "mirror-mlp", "--quick", "--out", str(out))
    assert r.returncode == 2
    assert "is in use by process" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------ temporary files
def test_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fig.png") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_cleaned_and_fresh_ones_kept(tmp_path):
    old = tmp_path / f"{TMP_PREFIX}checkpoint.abc.pt"
    new = tmp_path / "sub" / f"{TMP_PREFIX}results.json.def.tmp"
    new.parent.mkdir()
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    past = time.time() - 3600
    os.utime(old, (past, past))
    removed = clean_stale_temporaries(tmp_path)
    assert removed == [old] and new.exists()
    # locking a run folder cleans it too
    os.utime(new, (past, past))
    with RunLock(tmp_path):
        pass
    assert not new.exists()


def test_output_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "results.json", {"a": 1})
        with atomic_path(tmp_path / "fig.png") as tmp:
            tmp.write_bytes(b"png")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "fig.png").stat().st_mode & 0o777) == 0o644


# ------------------------------------------------------------------ kill -9 and resume
_TRAIN = textwrap.dedent("""
    import sys
    from identifiable.torch.data import embedded_patches
    from identifiable.torch.train import TrainConfig, train
    cfg = TrainConfig(task="classifier", activation="tanh", epochs=int(sys.argv[2]),
                      batch_size=128, checkpoint_every=1, progress=False, seed=3)
    data = embedded_patches(512, "train")
    res = train(cfg, data, sys.argv[1])
    print("finished", res.finished, flush=True)
""")


@pytest.mark.torch
def test_kill_minus_9_then_resume_is_bit_identical(tmp_path):
    import torch

    from identifiable.torch.checkpoint import load_net

    epochs = 40  # long enough that the kill lands mid-run even on a fast machine
    full = subprocess.run([sys.executable, "-c", _TRAIN, str(tmp_path / "full"), str(epochs)],
                          capture_output=True, text=True, timeout=600)
    assert "finished True" in full.stdout, full.stderr
    run = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-c", _TRAIN, str(run), str(epochs)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoint.pt"
    t0 = time.time()
    while time.time() - t0 < 300:
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=True)["epoch"] >= 2:
                    break
            except Exception:  # noqa: BLE001 - a rename in progress
                pass
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    state = torch.load(ckpt, weights_only=True)
    assert 2 <= state["epoch"] < epochs, "the kill came too late to test a resume"
    again = subprocess.run([sys.executable, "-c", _TRAIN, str(run), str(epochs)],
                           capture_output=True, text=True, timeout=600)
    assert "finished True" in again.stdout, again.stderr
    a, sa = load_net(tmp_path / "full" / "checkpoint.pt")
    b, sb = load_net(ckpt)
    assert sa["epoch"] == sb["epoch"] == epochs
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    assert not list(run.glob(f"{TMP_PREFIX}*")) or all(
        time.time() - f.stat().st_mtime < 600 for f in run.glob(f"{TMP_PREFIX}*"))


# ------------------------------------------------------------------ run identity
@pytest.mark.torch
def test_nets_are_not_reused_across_data_sets(tmp_path):
    from identifiable.torch.data import embedded_patches
    from identifiable.torch.train import TrainConfig, train

    cfg = TrainConfig(task="classifier", activation="tanh", epochs=1, batch_size=128,
                      progress=False)
    train(cfg, embedded_patches(256, "train", seed=0), tmp_path)
    with pytest.raises(ValueError, match=r"another run \(data\."):
        train(cfg, embedded_patches(256, "train", seed=1), tmp_path)
    with pytest.raises(ValueError, match=r"data\.n: 256 there, 512 now"):
        train(cfg, embedded_patches(512, "train", seed=0), tmp_path)
    # --fresh starts over explicitly
    res = train(cfg, embedded_patches(256, "train", seed=1), tmp_path, fresh=True)
    assert res.finished


@pytest.mark.torch
def test_rerun_without_resume_flag_continues_instead_of_restarting(tmp_path):
    from identifiable.torch.checkpoint import load_checkpoint
    from identifiable.torch.data import embedded_patches
    from identifiable.torch.train import TrainConfig, train

    data = embedded_patches(256, "train")
    cfg = TrainConfig(task="classifier", activation="tanh", epochs=4, batch_size=128,
                      progress=False, checkpoint_every=1)
    train(cfg, data, tmp_path, stop_after=3)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 3
    res = train(cfg, data, tmp_path)  # the default resumes: no silent restart from epoch 0
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="exists; resume it"):
        train(cfg, data, tmp_path, resume=False)


# ------------------------------------------------------------------ tampered checkpoints
@pytest.mark.torch
def test_tampered_checkpoints_give_clear_errors(tmp_path):
    from identifiable.torch.checkpoint import save_checkpoint
    from identifiable.torch.nets import MirrorMLP

    net = MirrorMLP("classifier", "tanh")
    wide = dict(net.arch(), widths=[200_000, 200_000, 200_000])
    save_checkpoint(tmp_path / "wide.pt", {"arch": wide, "model": net.state_dict()})
    notask = {k: v for k, v in net.arch().items() if k != "task"}
    save_checkpoint(tmp_path / "notask.pt", {"arch": notask, "model": net.state_dict()})
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04garbage")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "x", "e": Evil()}))
    expect = {"wide.pt": "do not match the architecture", "notask.pt": "KeyError: 'task'",
              "junk.pt": "not a readable identifiable checkpoint",
              "evil.pt": "not a readable identifiable checkpoint"}
    for name, msg in expect.items():
        r = _cli("measure", str(tmp_path / name), "--n-probes", "100")
        assert r.returncode == 2, (name, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
        if name == "evil.pt":
            # one line, naming what was refused; never torch's advice to retry with
            # weights_only=False (which would run the file's code)
            err = [ln for ln in r.stderr.splitlines() if "error:" in ln]
            assert len(err) == 1 and "weights-only unpickler" in err[0], r.stderr
            assert "weights_only` set to `False" not in r.stderr
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ command line
@pytest.mark.torch
@pytest.mark.parametrize("args,needle", [
    (["experiment", "gcnn-barrier", "--quick", "--width", "inf"], "--width: expected a finite"),
    (["experiment", "mirror-mlp", "--quick", "--threads", "-1"], "--threads: expected an integer"),
    (["experiment", "mirror-mlp", "--quick", "--device", "tpu"], "--device: expected cpu, cuda"),
    (["experiment", "gcnn-barrier", "--quick", "--seeds", "0"], "--seeds: expected an integer"),
    (["measure", "missing.pt"], "no such file"),
])
def test_cli_bad_arguments_exit_2_without_traceback(tmp_path, args, needle):
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.torch
def test_cli_out_naming_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = _cli("experiment", "mirror-mlp", "--quick", "--out", str(tmp_path / "afile"))
    assert r.returncode == 2 and "is not a folder" in r.stderr


def test_verify_checks_json_and_claims_before_work(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "noclaim").mkdir()
    (tmp_path / "noclaim" / "a.py").write_text("x = 1\n")
    cases = [
        (["verify", "--json", ""], "expected a file name"),
        (["verify", "--json", str(tmp_path)], "is a folder"),
        (["verify", "--claims", str(tmp_path / "empty")], "no claims in"),
        (["verify", "--claims", str(tmp_path / "noclaim")], "defines no @claim"),
        (["verify", "--only", "no.such-claim"], "unknown claim id"),
    ]
    for args, needle in cases:
        t0 = time.perf_counter()
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert time.perf_counter() - t0 < 30  # refused before the claims run


def test_verify_does_not_import_claims_from_the_current_folder(tmp_path):
    # an untrusted folder with a proofs/ of its own: verify must run the installed catalog
    (tmp_path / "proofs").mkdir()
    (tmp_path / "proofs" / "evil.py").write_text(
        f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')\n")
    r = _cli("verify", "--only", "smbk26.bypass", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "pwned").exists()
