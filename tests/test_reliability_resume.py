"""Interrupted runs (project issue "Reliability"): ``sfe regret`` / ``sfe audit`` stopped part-way
keep their finished parts, and ``--resume`` continues from them to the same results as an
uninterrupted run. Run folders are never overwritten without ``--force``; stray temp files
in ``parts/`` are ignored; a corrupt part is moved aside and recomputed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strategic_feedback_env.experiments import audit as audit_exp
from strategic_feedback_env.experiments import cli
from strategic_feedback_env.experiments import regret as regret_exp

REGRET = ["regret", "--mechanisms", "average,online_weighted", "--horizons", "40,80", "--games", "2",
          "--strategies", "truthful,shade", "--seed", "3", "--no-progress"]
REGRET_CELLS = 8
AUDIT = ["audit", "--adversaries", "exaggerate,shade", "--quick", "--mechanisms", "sw_max,average",
         "--episodes", "2", "--seed", "1", "--no-progress"]
AUDIT_CELLS = 2
RESULTS = {"regret": ("regret.csv", "fits.json"), "audit": ("audit.csv", "audit_labelers.csv")}
ROOT = Path(__file__).resolve().parents[1]


def _run(argv, out, *extra):
    return cli.main([*argv, "--out", str(out), *extra])


def _parts(folder):
    return sorted(p.name for p in (Path(folder) / "parts").glob("*.json")) if (Path(folder) / "parts").exists() else []


def _same_results(command, a, b):
    for name in RESULTS[command]:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of both commands."""
    root = tmp_path_factory.mktemp("reference")
    assert _run(REGRET, root / "regret") == 0
    assert _run(AUDIT, root / "audit") == 0
    assert len(_parts(root / "regret")) == REGRET_CELLS and len(_parts(root / "audit")) == AUDIT_CELLS
    return root


def _interrupt_after(monkeypatch, module, name, k):
    """Make ``module.name`` raise KeyboardInterrupt on its call number ``k + 1``; returns the call log."""
    real = getattr(module, name)
    calls = []

    def wrapped(*args, **kwargs):
        if len(calls) == k:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def _count_calls(monkeypatch, module, name):
    real = getattr(module, name)
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


CASES = {"regret": (REGRET, regret_exp, "run_games", REGRET_CELLS), "audit": (AUDIT, audit_exp, "run_cell", AUDIT_CELLS)}


@pytest.mark.parametrize("command, k", [("regret", 0), ("regret", 3), ("audit", 1)])
def test_keyboard_interrupt_keeps_parts_and_resume_matches(command, k, reference, tmp_path, monkeypatch, capsys):
    argv, module, func, total = CASES[command]
    out = tmp_path / command
    with monkeypatch.context() as m:
        _interrupt_after(m, module, func, k)
        assert _run(argv, out) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err
    assert (out / "config.json").exists()
    assert len(_parts(out)) == k
    assert not any((out / name).exists() for name in RESULTS[command])
    # finished parts are those of the uninterrupted run, byte for byte
    for name in _parts(out):
        assert (out / "parts" / name).read_bytes() == (reference / command / "parts" / name).read_bytes()
    with monkeypatch.context() as m:
        calls = _count_calls(m, module, func)
        assert _run(argv, out, "--resume") == 0
    assert len(calls) == total - k  # finished parts are not recomputed
    _same_results(command, out, reference / command)
    # resuming a finished run recomputes nothing and rewrites the same results
    with monkeypatch.context() as m:
        calls = _count_calls(m, module, func)
        assert _run(argv, out, "--resume") == 0
    assert calls == []
    _same_results(command, out, reference / command)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_real_process_killed_after_first_part_then_resumed(sig, tmp_path):
    """A real ``sfe regret`` process, signalled as soon as its first part file appears."""
    argv = ["regret", "--mechanisms", "average", "--horizons", "100,3000", "--games", "2",
            "--strategies", "truthful", "--seed", "5", "--no-progress"]
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "strategic_feedback_env.experiments.cli", *argv, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _parts(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        finished_first = proc.poll() is not None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if finished_first:
        pytest.skip(f"the run ended before it could be signalled (rc {proc.returncode}): {err[-300:]}")
    parts = _parts(out)
    if len(parts) == 2:
        pytest.skip("the second cell finished before the signal arrived")
    assert parts == ["truthful-average-T100.json"]
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "interrupted" in err and "--resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    assert not (out / "regret.csv").exists()
    assert cli.main([*argv, "--out", str(out), "--resume"]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / "straight")]) == 0
    _same_results("regret", out, tmp_path / "straight")


def test_existing_folder_is_not_overwritten_without_force(reference, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(AUDIT, out) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _run(AUDIT, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sfe: error:") and "already exists" in err and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a different config is refused on --resume too
    assert _run([*AUDIT, "--episodes", "3"], out, "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config differs" in err
    # --resume needs --out
    assert cli.main([*AUDIT, "--resume"]) == 2
    assert "--out" in capsys.readouterr().err
    # --force refuses a folder holding a file sfe did not write, and keeps it
    (out / "notes.txt").write_text("mine")
    assert _run(AUDIT, out, "--force") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.txt" in err and (out / "notes.txt").read_text() == "mine"
    # without it, --force replaces the run (same results again)
    (out / "notes.txt").unlink()
    assert _run(AUDIT, out, "--force") == 0
    _same_results("audit", out, reference / "audit")


def test_stray_temp_file_is_ignored(reference, tmp_path, monkeypatch):
    """A half-written part (what a kill during ``atomic_write_bytes`` leaves) is not a part."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after(m, regret_exp, "run_games", 2)
        assert _run(REGRET, out) == 130
    stray = out / "parts" / ".truthful-online_weighted-T40.json.k3j9x.tmp"
    stray.write_text('[1.0, 2.')
    with monkeypatch.context() as m:
        calls = _count_calls(m, regret_exp, "run_games")
        assert _run(REGRET, out, "--resume") == 0
    assert len(calls) == REGRET_CELLS - 2
    _same_results("regret", out, reference / "regret")


@pytest.mark.parametrize("damage", ["truncated", "empty", "binary"])
def test_corrupt_part_is_moved_aside_and_recomputed(damage, reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_after(m, regret_exp, "run_games", 3)
        assert _run(REGRET, out) == 130
    victim = out / "parts" / _parts(out)[0]
    good = victim.read_bytes()
    victim.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "binary": b"\xff\xfe\x00"}[damage])
    capsys.readouterr()
    with monkeypatch.context() as m:
        calls = _count_calls(m, regret_exp, "run_games")
        assert _run(REGRET, out, "--resume") == 0
    err = capsys.readouterr().err
    assert "corrupt" in err and victim.name in err
    assert len(calls) == REGRET_CELLS - 3 + 1
    assert victim.read_bytes() == good
    assert (victim.parent / f".{victim.name}.corrupt").exists()
    _same_results("regret", out, reference / "regret")


def test_load_part_of_a_corrupt_file_names_it(tmp_path):
    from strategic_feedback_env.experiments.results import RunFolder, RunFolderError

    folder = RunFolder(tmp_path / "run", {"seed": 0}, command="regret")
    folder.save_part("a", [1, 2])
    (tmp_path / "run" / "parts" / "a.json").write_text("{")
    with pytest.raises(RunFolderError, match=r"a\.json.*corrupt"):
        folder.load_part("a")
