"""``sfe`` end to end in tiny configurations: outputs exist and say what the papers claim."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from strategic_feedback_env.experiments import cli
from strategic_feedback_env.experiments.regret import fit_slopes, run_games


def run(argv, capsys):
    code = cli.main(argv + ["--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_reproduce_table1_shape_matches_the_paper(tmp_path, capsys):
    code, out, _ = run(["reproduce", "sun-table1", "--samples", "4000", "--noise-samples", "300",
                        "--out", str(tmp_path / "t1")], capsys)
    assert code == 0
    assert f"results written to {tmp_path / 't1'}" in out
    rows = read_csv(tmp_path / "t1" / "table1.csv")
    dv = np.array([float(r["ours_dvaluation_e2"]) for r in rows])
    du = np.array([float(r["ours_dutility_e4"]) for r in rows])
    # The claim is the shape: valuation up, utility down, both growing with eps then saturating.
    assert np.all(dv > 0) and np.all(du < 0)
    assert np.all(np.diff(dv) > -0.05) and np.all(np.diff(du) < 0.5)
    # Thm 4.12: no misreport under eps-noisy input gains more than 2 w_i eps.
    noisy = read_csv(tmp_path / "t1" / "noisy_input.csv")
    assert all(int(r["violations"]) == 0 and float(r["max_gain_over_bound"]) <= 1.0 for r in noisy)
    assert (tmp_path / "t1" / "table1.png").stat().st_size > 1000
    assert json.loads((tmp_path / "t1" / "config.json").read_text())["config"]["samples"] == 4000


def test_unavailable_tables_say_why_in_one_line(capsys):
    code, out, err = run(["reproduce", "sun-table2"], capsys)
    assert code == 2
    assert "Shi et al." in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, needle", [
    (["regret", "--horizons", "abc"], "comma-separated horizons"),
    (["regret", "--mechanisms", "nope"], "unknown mechanism"),
    (["audit-not-a-command"], "invalid choice"),
    (["regret", "--frobnicate"], "unrecognized arguments"),
])
def test_bad_flags_give_one_error_line(argv, needle, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_config_file_sets_options_and_flags_override(tmp_path, capsys):
    cfg = tmp_path / "t1.toml"
    cfg.write_text('samples = 2000\nnoise-samples = 100\nlam = 0.05\n')
    code, out, _ = run(["reproduce", "sun-table1", "--config", str(cfg), "--lam", "0.02",
                        "--out", str(tmp_path / "r")], capsys)
    assert code == 0
    stored = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert stored["samples"] == 2000 and stored["lam"] == 0.02
    bad = tmp_path / "bad.yaml"
    bad.write_text("samplez: 10\n")
    code, _, err = run(["reproduce", "sun-table1", "--config", str(bad)], capsys)
    assert code == 2 and "samplez" in err


def test_existing_run_folder_needs_force(tmp_path, capsys):
    argv = ["reproduce", "sun-table1", "--samples", "1000", "--noise-samples", "50", "--out", str(tmp_path / "r")]
    assert run(argv, capsys)[0] == 0
    code, _, err = run(argv, capsys)
    assert code == 2 and "--force" in err
    assert run(argv + ["--force"], capsys)[0] == 0


def truthful(obs):
    return obs[:, 0:1]


def test_regret_slopes_separate_average_from_online_weighted():
    acc = np.linspace(0.05, 0.5, 5)
    horizons = [300, 1000, 3000]
    results = {m: {T: run_games(m, T, 6, truthful, acc, 0.1, "probability", seed=T) for T in horizons}
               for m in ("average", "online_weighted")}
    fits = fit_slopes(horizons, results)
    assert 0.85 <= fits["average"]["slope"] <= 1.15
    assert 0.3 <= fits["online_weighted"]["slope"] <= 0.7
    assert fits["online_weighted"]["hi"] < fits["average"]["lo"]


@pytest.mark.parametrize("module, extra", [("pygame", "bench"), ("ray", "ray")])
def test_a_missing_optional_package_is_one_line_naming_its_extra(module, extra, monkeypatch, tmp_path, capsys):
    from strategic_feedback_env.experiments import commands

    def missing(args):
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    monkeypatch.setattr(commands, "bench", missing)
    code = cli.main(["bench", "--out", str(tmp_path / "b"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f".[{extra}]" in err and module in err


@pytest.mark.parametrize("argv", [
    ["audit", "--quick", "--focal", "labeler_9"],
    ["audit", "--quick", "--n-labelers", "0"],
    ["audit", "--quick", "--ppo-timesteps", "0"],
    ["audit", "--quick", "--mechanisms", "average", "--adversaries", "exaggerate"],
    ["train", "--quick", "--episodes", "1"],
    ["train", "--quick", "--timesteps", "0"],
    ["train", "--quick", "--n-outcomes", "0"],
])
def test_bad_options_fail_before_a_run_folder_is_made(argv, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, _, err = run(argv + ["--out", str(out_dir)], capsys)
    assert code == 2 and err.startswith("sfe: error:") and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_an_unwritable_out_folder_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(["reproduce", "sun-table1", "--samples", "10", "--out", str(blocker / "run")], capsys)
    assert code == 2 and err.startswith("sfe: error:") and len(err.strip().splitlines()) == 1


def test_train_on_the_online_game(tmp_path, capsys):
    code, out, _ = run(["train", "--mechanism", "online_weighted", "--game", "online_feedback_v0", "--timesteps", "64",
                        "--episodes", "2", "--n-labelers", "3", "--online-cycles", "5", "--out", str(tmp_path / "t")],
                       capsys)
    assert code == 0 and "online_feedback_v0" in out
    code, _, err = run(["train", "--mechanism", "online_weighted", "--game", "reward_report_v0",
                        "--out", str(tmp_path / "t2")], capsys)
    assert code == 2 and "belongs to online_feedback_v0" in err
