"""``sfe horizon`` in its smoke form: a tiny (T, beta, n) grid, seconds."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from strategic_feedback_env.experiments import cli, horizon


def test_horizon_smoke_grid(tmp_path):
    out = tmp_path / "run"
    code = cli.main(["horizon", "--quick", "--horizons", "4,8", "--biases", "0,0.3", "--ns", "3", "--games", "3",
                     "--ppo-timesteps", "64", "--grid", "51", "--out", str(out), "--no-progress"])
    assert code == 0
    rows = list(csv.DictReader((out / "horizon.csv").open()))
    assert len(rows) == 2 * 3 * 1 * 2 * 2  # adversaries x mechanisms x n x beta x T
    assert (out / "horizon_myopic.png").stat().st_size > 0 and (out / "horizon_ppo.png").stat().st_size > 0
    # common random numbers: the truthful baseline of a (mechanism, n, beta, T) is the same for both adversaries
    base = {}
    for r in rows:
        key = (r["mechanism"], r["n"], r["bias"], r["T"])
        base.setdefault(key, r["truthful_per_round"])
        assert r["truthful_per_round"] == base[key]
    # a biased labeler pulls the average toward its target: the myopic misreport pays
    avg = [r for r in rows if r["adversary"] == "myopic" and r["mechanism"] == "average" and r["bias"] == "0.3"]
    assert all(float(r["gain_per_round"]) > float(r["ci"]) for r in avg)


def test_myopic_cell_matches_a_hand_played_game():
    """labeler_0's gain per round is its return with the batched myopic reports minus its truthful
    return, both played here round by round with the scalar env and the unilateral adversary."""
    from strategic_feedback_env import online_feedback_v0
    from strategic_feedback_env.agents.gradient import MyopicOnlineAdversary

    class Args:
        seed, games, gamma, grid, outcome_model = 0, 1, 1.0, 101, "bernoulli"

    row = horizon.run_cell(Args, ("myopic", "online_weighted", 3, 0.2, 6))
    seed = horizon.cell_seed(0, 3, 0.2, 6)
    totals = []
    for adversary in (None, MyopicOnlineAdversary(gamma=1.0, grid=101)):
        env = online_feedback_v0.parallel_env(n_labelers=3, biases=0.2, max_cycles=6)
        env.reset(seed=seed)
        total = 0.0
        while env.agents:
            actions = env.truthful_actions()
            if adversary is not None:
                actions["labeler_0"] = adversary.act_in(env, "labeler_0")
            total += env.step(actions)[1]["labeler_0"]
        totals.append(total)
    assert np.isclose(row["gain_per_round"], (totals[1] - totals[0]) / 6, atol=1e-12)


@pytest.mark.parametrize("argv, pattern", [
    (["--mechanisms", "hedge"], "--mechanisms"), (["--adversaries", "sac"], "--adversaries"),
    (["--horizons", "0"], "--horizons"), (["--ns", "1"], "--ns"), (["--games", "1"], "--games"),
])
def test_horizon_bad_options(argv, pattern, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["horizon", "--quick", "--out", str(out), *argv]) == 2
    assert pattern in capsys.readouterr().err and not out.exists()
