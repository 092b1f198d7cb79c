"""``sfe audit``, ``sfe train`` and ``sfe bench`` end to end in tiny configurations."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from strategic_feedback_env.experiments import cli
from strategic_feedback_env.experiments.bench import PPO_SETTINGS

TINY = ["--quick", "--episodes", "4", "--no-progress"]


def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_quick_audit_contrasts_sw_max_and_the_affine_maximizer(tmp_path, capsys):
    out_dir = tmp_path / "audit"
    code, out, _ = run(["audit", *TINY, "--mechanisms", "sw_max,affine_maximizer,online_weighted",
                        "--adversaries", "exaggerate,gradient,ppo,shade,myopic", "--out", str(out_dir)], capsys)
    assert code == 0, out
    assert f"results written to {out_dir}" in out
    rows = {(r["mechanism"], r["adversary"]): r for r in rows_of(out_dir / "audit.csv")}
    assert {a for m, a in rows if m == "sw_max"} == {"truthful", "exaggerate", "gradient", "ppo"}
    assert {a for m, a in rows if m == "online_weighted"} == {"truthful", "shade", "myopic", "ppo"}
    # sw_max: the white-box and the learned adversaries find a profitable misreport.
    for adv in ("gradient", "ppo"):
        row = rows["sw_max", adv]
        assert float(row["gain"]) > 0 and row["verdict"].startswith("profitable"), row
    # affine maximizer: no gain beyond noise, no IR violation, payments >= 0.
    for adv in ("exaggerate", "gradient", "ppo"):
        row = rows["affine_maximizer", adv]
        assert float(row["gain"]) - float(row["gain_ci"]) <= 1e-6, row
        assert row["verdict"] == "no profitable misreport found"
        assert int(row["ir_violations"]) == 0 and float(row["payment"]) >= 0
    config = json.loads((out_dir / "config.json").read_text())
    assert config["config"]["seed"] == 0 and "torch" in config["versions"]
    assert (out_dir / "audit.png").stat().st_size > 1000
    assert len(rows_of(out_dir / "audit_labelers.csv")) >= 5


def test_audit_rejects_unknown_names_in_one_line(tmp_path, capsys):
    code, _, err = run(["audit", *TINY, "--adversaries", "liar", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown adversary" in err and "Traceback" not in err
    code, _, err = run(["audit", *TINY, "--mechanisms", "nope", "--out", str(tmp_path / "y")], capsys)
    assert code == 2 and "nope" in err


def test_train_saves_a_loadable_labeler_and_reports_its_gain(tmp_path, capsys):
    from strategic_feedback_env.agents.learning import LearnedPolicy

    out_dir = tmp_path / "train"
    code, out, _ = run(["train", "--quick", "--no-progress", "--mechanism", "sw_max", "--timesteps", "3000",
                        "--out", str(out_dir)], capsys)
    assert code == 0, out
    policy = LearnedPolicy.load(out_dir / "models" / "labeler_0")
    assert policy.spec.game == "reward_report_v0" and policy.spec.K == 4
    rows = rows_of(out_dir / "evaluation.csv")
    assert len(rows) == 1 and float(rows[0]["gain"]) > 0


def test_train_rejects_a_mechanism_of_the_other_game(tmp_path, capsys):
    code, _, err = run(["train", "--quick", "--mechanism", "average", "--out", str(tmp_path / "t")], capsys)
    assert code == 2 and "online_feedback_v0" in err


@pytest.mark.slow
def test_full_quick_audit_runs_every_adversary(tmp_path, capsys):
    code, out, _ = run(["audit", "--quick", "--no-progress", "--out", str(tmp_path / "a")], capsys)
    assert code == 0, out


def test_quick_bench_reports_throughput_ratios_and_scaling(tmp_path, capsys):
    pytest.importorskip("pygame", reason="sfe bench needs the [bench] extra (pygame for rps_v2)")
    pytest.importorskip("supersuit", reason="sfe bench needs the [bench] extra (SuperSuit)")
    out_dir = tmp_path / "bench"
    code, out, _ = run(["bench", "--quick", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0, out
    result = json.loads((out_dir / "bench.json").read_text())
    rows = {r["name"]: r for r in result["throughput"]}
    baseline = next(r for name, r in rows.items() if "rps_v2" in name)
    assert baseline["ratio_vs_rps"] == 1.0
    for row in rows.values():
        assert row["steps_per_s"] > 0
        assert abs(row["ratio_vs_rps"] - row["steps_per_s"] / baseline["steps_per_s"]) < 1e-9
    assert any("Batched" in name for name in rows)
    # PPO rows come in (ours, SuperSuit) pairs with the same games and settings; the ratio is ours / theirs.
    training = result["training"]
    assert len(training) >= 2 and len(training) % 2 == 0
    for ours, theirs in zip(training[::2], training[1::2]):
        assert "SuperSuit" in theirs["name"] and "SuperSuit" not in ours["name"]
        assert ours["ppo"] == theirs["ppo"] and ours["ppo"] in PPO_SETTINGS and ours["games"] == theirs["games"]
        assert ours["timesteps"] == theirs["timesteps"] > 0
        assert theirs["ratio_vs_supersuit"] == 1.0
        assert abs(ours["ratio_vs_supersuit"] - ours["agent_steps_per_s"] / theirs["agent_steps_per_s"]) < 1e-9
    assert (out_dir / "scaling.png").stat().st_size > 1000
    torch_rows = result["torch"]  # the torch backend against numpy at the same B, in the same process
    assert all(abs(r["ratio_vs_numpy"] - r["labeler_steps_per_s"] / r["numpy_labeler_steps_per_s"]) < 1e-9
               for r in torch_rows["backend"]) and "Torch backend of the batched game" in out
    assert "results written to" in out


def test_regret_trains_the_learned_policy_once_for_all_cells(tmp_path, capsys, monkeypatch):
    from strategic_feedback_env.agents import learning

    calls = []
    original = learning.train_best_response
    monkeypatch.setattr(learning, "train_best_response", lambda *a, **k: calls.append(1) or original(*a, **k))
    argv = ["regret", "--strategies", "learned", "--horizons", "100,200", "--games", "2", "--mechanisms",
            "average,online_weighted", "--learn-timesteps", "300", "--no-progress", "--out", str(tmp_path / "r")]
    code, out, _ = run(argv, capsys)
    assert code == 0, out
    assert len(calls) == 1 and len(rows_of(tmp_path / "r" / "regret.csv")) == 4
    # A cell (possibly one of many parallel Ray tasks) only loads the driver's model, never trains.
    from types import SimpleNamespace

    from strategic_feedback_env.experiments import commands

    empty = SimpleNamespace(path=tmp_path / "empty")
    args = SimpleNamespace(n_labelers=3, seed=0, learn_timesteps=300, bias=0.1, outcome_model="probability", games=2)
    with pytest.raises(ValueError, match="no learned policy"):
        commands._regret_cell(args, empty, np.linspace(0.05, 0.5, 3), ("learned", "average", 100))
    assert len(calls) == 1


def test_regret_with_learned_labelers_saves_and_reuses_the_policy(tmp_path, capsys):
    out_dir = tmp_path / "regret"
    argv = ["regret", "--strategies", "learned", "--horizons", "100,200", "--games", "2", "--mechanisms",
            "average", "--learn-timesteps", "500", "--no-progress", "--out", str(out_dir)]
    code, out, _ = run(argv, capsys)
    assert code == 0, out
    assert (out_dir / "models" / "learned.zip").exists() and (out_dir / "models" / "learned.json").exists()
    rows = rows_of(out_dir / "regret.csv")
    assert {r["strategy"] for r in rows} == {"learned"} and len(rows) == 2
    assert all(float(r["mean_regret"]) > 0 for r in rows)
