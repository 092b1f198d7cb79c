"""Short soak (project issue "Reliability"): the functions of ``experiments.soak`` on ~1e4 steps.

Weights stay on the simplex, nothing becomes NaN/inf, observations stay in [0, 1], and memory
traced by ``tracemalloc`` does not grow over the run. The full 1e6-step soak is
``python -m strategic_feedback_env.experiments.soak``.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env.experiments import soak


# Aggregates (hence the "last aggregate" observation) can exceed 1 by one ulp: see
# test_observations_stay_in_the_unit_box_exactly. Everything else is checked exactly.
BOX_TOL = 1e-12


def _assert_healthy(result, traced_growth_mb=1.0):
    assert result["ok"], result["first_failure"]
    assert result["nonfinite"] == 0 and result["simplex_violations"] == 0
    assert result["max_box_excess"] <= BOX_TOL
    assert result["max_sum_dev"] <= soak.SUM_TOL
    assert result["min_weight"] >= 0.0
    assert result["steps_per_s"] > 0
    fractions = [s["fraction"] for s in result["memory_samples"]]
    assert fractions[0] == pytest.approx(0.1) and fractions[-1] == pytest.approx(1.0)
    assert 0.5 in fractions
    # Python-level allocations after warm-up (10 %) do not grow with the number of steps.
    assert result["traced_growth_mb"] < traced_growth_mb
    assert np.isfinite(result["rss_mb_100"]) and result["max_rss_mb"] >= result["rss_mb_10"] * 0.5


def test_parallel_env_soak():
    result = soak.soak_parallel(600, seed=3, max_cycles=20, box_tol=BOX_TOL)
    _assert_healthy(result)
    assert result["episodes"] == 30


@pytest.mark.parametrize("game", ["online_feedback_v0", "reward_report_v0"])
def test_batched_soak(game):
    result = soak.soak_batched(game, 10_000, num_games=256, seed=1, max_cycles=7, box_tol=BOX_TOL)
    _assert_healthy(result)
    assert result["steps"] >= 10_000 and result["calls"] == 40
    assert result["episodes"] == 1 + 40 // 7


def test_mechanism_soak():
    result = soak.soak_mechanism(2000, batch=16, seed=2, box_tol=BOX_TOL)
    _assert_healthy(result)
    assert result["min_weight"] > 0.0  # eta < 1: no weight can reach zero


@pytest.mark.parametrize("name", ["online_weighted", "hedge"])
def test_mechanism_soak_with_full_step_size_stays_on_the_simplex(name):
    """eta near its cap (horizon 1): the harshest update; weights may approach 0 but stay valid."""
    result = soak.soak_mechanism(1000, batch=8, seed=5, name=name, horizon=2, box_tol=BOX_TOL)
    _assert_healthy(result)


def test_observations_stay_in_the_unit_box_exactly():
    """Regression: weights summing to 1 + ulp once gave an aggregate of 1 + 2**-52."""
    result = soak.soak_batched("online_feedback_v0", 4096 * 30, num_games=4096, seed=0, max_cycles=100,
                               use_tracemalloc=False)
    assert result["out_of_bounds"] == 0, result["first_failure"]


def test_checker_flags_failures():
    c = soak.Checker()
    c.simplex(np.array([[0.5, 0.5]]), 1)
    assert c.ok
    c.simplex(np.array([[0.7, 0.5]]), 2)
    assert not c.ok and "simplex" in c.first_failure and c.simplex_violations == 1
    c = soak.Checker()
    c.finite(np.array([1.0, np.nan, np.inf]), 7, "rewards")
    c.unit_box(np.array([1.5]), 8)
    assert c.nonfinite == 2 and c.out_of_bounds == 1 and c.first_failure.startswith("step 7")


def test_cli_quick_runs_and_prints_a_table(capsys):
    rc = soak.main(["--steps", "2000", "--parts", "batched_online,mechanism", "--num-games", "128",
                    "--mechanism-batch", "4", "--mechanism-rounds", "500", "--no-tracemalloc"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "steps/s" in out and "RSS@100%" in out and "batched_online" in out and "mechanism" in out


def test_cli_rejects_unknown_part():
    with pytest.raises(SystemExit) as exc:
        soak.main(["--parts", "nope"])
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["--num-games", "0"], ["--mechanism-batch", "0"], ["--steps", "0"],
                                  ["--quick", "--json", "/nonexistent-folder/soak.json"]])
def test_soak_rejects_bad_options_before_running(argv, capsys):
    with pytest.raises(SystemExit) as info:
        soak.main(argv)
    assert info.value.code == 2 and "error:" in capsys.readouterr().err
