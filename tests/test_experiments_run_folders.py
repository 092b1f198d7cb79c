"""Run folders a researcher can trust (issue "Runs a researcher can trust", items 1, 3, 6, 7):
``--force`` replaces only our own run folders and only the files they wrote; a run reruns
byte-identically from its own ``config.json``; ``--resume`` resumes or refuses; result files
honour the umask."""

from __future__ import annotations

import json
import os
import stat

import pytest

from strategic_feedback_env.experiments import cli, commands
from strategic_feedback_env.experiments.results import MARKER, RunFolder, RunFolderError

REPRODUCE = ["reproduce", "sun-table1", "--samples", "600", "--noise-samples", "20", "--noise-levels", "0.01,0.1",
             "--seed", "4", "--no-progress"]
AUDIT = ["audit", "--quick", "--mechanisms", "sw_max,average", "--adversaries", "exaggerate,shade",
         "--episodes", "2", "--seed", "2", "--no-progress"]


def _main(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr()


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_force_refuses_a_folder_sfe_did_not_make_and_keeps_it(tmp_path, capsys):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    code, out = _main([*REPRODUCE, "--out", str(mine), "--force"], capsys)
    assert code == 2 and "not a run folder" in out.err and len(out.err.strip().splitlines()) == 1
    assert _files(mine) == {"thesis.tex": b"x"}


def test_force_deletes_only_the_files_the_run_wrote(tmp_path):
    path = tmp_path / "run"
    first = RunFolder(path, {"seed": 0}, command="audit")
    first.write_csv("a.csv", [{"x": 1}])
    first.save_part("cell", {"g": 1})
    (first.claim_dir("models") / "labeler_0.zip").write_bytes(b"model")
    (path / "parts" / ".cell.json.abc123.tmp").write_text("half")  # what a killed atomic write leaves
    (path / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="notes.txt"):
        RunFolder(path, {"seed": 1}, command="audit", force=True)
    assert (path / "a.csv").exists() and (path / "notes.txt").read_text() == "mine"  # refused: nothing deleted
    (path / "notes.txt").unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.csv").write_text("keep")
    (path / "models" / "link").symlink_to(outside)  # inside a folder of ours: ours; its target is not
    RunFolder(path, {"seed": 1}, command="audit", force=True)
    assert (outside / "data.csv").read_text() == "keep"
    assert sorted(_files(path)) == [MARKER, "config.json"]
    assert json.loads((path / "config.json").read_text())["config"] == {"seed": 1}


def test_a_run_reruns_byte_identically_from_its_record(tmp_path, capsys):
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    assert _main([*REPRODUCE, "--out", str(first)], capsys)[0] == 0
    assert _main(["rerun", str(first), "--out", str(second), "--no-progress"], capsys)[0] == 0
    assert _main(["reproduce", "--config", str(first / "config.json"), "--out", str(third), "--no-progress"],
                 capsys)[0] == 0
    for name in ("table1.csv", "noisy_input.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes() == (third / name).read_bytes(), name
    record = json.loads((first / "config.json").read_text())
    assert record["command"] == "reproduce" and record["config"]["table"] == "sun-table1"
    # every option is recorded with the value that ran, defaults included
    assert record["config"]["regularizer"] == "kl" and record["config"]["lam"] == 0.01
    assert record["project"]["name"] == "strategic-feedback-env" and record["project"]["version"]
    assert "git_commit" in record["project"]
    assert record["versions"]["numpy"]


def test_an_audit_reruns_byte_identically_and_records_its_cells(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert _main([*AUDIT, "--out", str(first)], capsys)[0] == 0
    assert _main(["rerun", str(first), "--out", str(second), "--no-progress"], capsys)[0] == 0
    for name in ("audit.csv", "audit_labelers.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    record = json.loads((first / "config.json").read_text())
    assert record["resolved"]["cells"] == [["sw_max", "exaggerate"], ["average", "shade"]]
    assert record["resolved"]["focal"] == ["labeler_0"] and record["config"]["quick"] is True
    assert record["config"]["n_labelers"] == 3  # the quick setting that ran, not the flag's default


def test_a_record_of_another_command_is_refused(tmp_path, capsys):
    assert _main([*REPRODUCE, "--out", str(tmp_path / "r")], capsys)[0] == 0
    code, out = _main(["audit", "--config", str(tmp_path / "r" / "config.json"), "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "sfe reproduce, not sfe audit" in out.err and not (tmp_path / "a").exists()
    code, out = _main(["rerun", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "not a run folder" in out.err


def test_resume_of_a_missing_folder_is_an_error(tmp_path, capsys):
    code, out = _main([*REPRODUCE, "--out", str(tmp_path / "nope"), "--resume"], capsys)
    assert code == 2 and "nope" in out.err and "there is no run" in out.err
    assert not (tmp_path / "nope").exists()


def test_the_interrupt_message_names_the_real_folder(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "_parts", interrupted)
    out = tmp_path / "run"
    code, res = _main([*REPRODUCE, "--out", str(out)], capsys)
    assert code == 130 and f"sfe rerun {out} --resume" in res.err
    monkeypatch.undo()
    assert _main(["rerun", str(out), "--resume", "--no-progress"], capsys)[0] == 0
    assert (out / "table1.csv").exists()


def test_train_resume_loads_the_saved_models_and_never_retrains(tmp_path, capsys, monkeypatch):
    from strategic_feedback_env.agents import learning

    argv = ["train", "--timesteps", "64", "--episodes", "2", "--n-labelers", "2", "--n-outcomes", "2",
            "--max-cycles", "2", "--no-progress", "--out", str(tmp_path / "t")]
    assert _main(argv, capsys)[0] == 0
    before = _files(tmp_path / "t")
    assert "models/labeler_0.zip" in before and "learning_curve.png" in before

    def no_training(*args, **kwargs):
        raise AssertionError("retrained on --resume")

    monkeypatch.setattr(learning, "train_best_response", no_training)
    assert _main(argv + ["--resume"], capsys)[0] == 0
    after = _files(tmp_path / "t")
    assert after["models/labeler_0.zip"] == before["models/labeler_0.zip"]
    assert after["evaluation.csv"] == before["evaluation.csv"]
    # a folder holding only some of the models cannot be resumed
    (tmp_path / "t" / "parts" / "learning_curve.json").unlink()
    code, out = _main(argv + ["--resume"], capsys)
    assert code == 2 and "cannot resume" in out.err


def test_result_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        folder = RunFolder(tmp_path / "run", {"seed": 0}, command="audit")
        paths = [folder.write_csv("a.csv", [{"x": 1}]), folder.write_json("b.json", {}), tmp_path / "run" / "config.json"]
        os.umask(0o077)
        paths.append(folder.write_json("c.json", {}))
    finally:
        os.umask(old)
    modes = [stat.S_IMODE(p.stat().st_mode) for p in paths]
    assert modes == [0o644, 0o644, 0o644, 0o600]
