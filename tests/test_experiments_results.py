"""Run folders: atomic writes, no silent overwrite, --force, --resume, recorded versions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from strategic_feedback_env.experiments.results import RunFolder, RunFolderError, atomic_write_bytes


def test_config_records_seed_and_versions(tmp_path):
    folder = RunFolder(tmp_path / "run", {"seed": 3, "x": np.float64(1.5)}, command="regret")
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"] == {"seed": 3, "x": 1.5}
    assert record["command"] == "regret"
    for pkg in ("numpy", "torch", "gymnasium", "pettingzoo", "stable-baselines3"):
        assert record["versions"][pkg], pkg
    assert folder.path == tmp_path / "run"


def test_existing_folder_is_never_overwritten_without_force(tmp_path):
    RunFolder(tmp_path / "run", {"seed": 0}, command="audit").write_json("result.json", {"a": 1})
    with pytest.raises(RunFolderError, match="already exists.*--force"):
        RunFolder(tmp_path / "run", {"seed": 0}, command="audit")
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == {"a": 1}
    RunFolder(tmp_path / "run", {"seed": 1}, command="audit", force=True)
    assert not (tmp_path / "run" / "result.json").exists()


def test_resume_keeps_parts_and_refuses_a_different_config(tmp_path):
    first = RunFolder(tmp_path / "run", {"seed": 0}, command="audit")
    first.save_part("sw_max/ppo", {"gain": 0.25})
    again = RunFolder(tmp_path / "run", {"seed": 0}, command="audit", resume=True)
    assert again.has_part("sw_max/ppo") and again.load_part("sw_max/ppo") == {"gain": 0.25}
    assert not again.has_part("affine_maximizer/ppo")
    with pytest.raises(RunFolderError, match="config differs"):
        RunFolder(tmp_path / "run", {"seed": 1}, command="audit", resume=True)


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
