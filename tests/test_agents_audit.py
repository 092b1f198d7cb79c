"""The DSIC audit: expected signs per mechanism, paired samples, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env.agents import Truthful, audit, spec_of
from strategic_feedback_env import reward_report_v0

SMALL = {"n_labelers": 3, "n_outcomes": 4, "mechanism_params": {"lam": 0.1}, "report_size": True, "max_cycles": 3}


def _overall(result, adversary):
    return next(r for r in result.overall if r["adversary"] == adversary)


def test_sw_max_is_exploited_and_the_affine_maximizer_is_not():
    adversaries = ["exaggerate", "gradient"]
    sw = audit({**SMALL, "mechanism": "sw_max"}, adversaries, episodes=6, focal_agents=["labeler_1"],
               learn={"gradient": {"steps": 40}})
    am = audit({**SMALL, "mechanism": "affine_maximizer"}, adversaries, episodes=6, focal_agents=["labeler_1"],
               learn={"gradient": {"steps": 40}})
    assert _overall(sw, "gradient")["verdict"].startswith("profitable")
    assert _overall(sw, "gradient")["gain"] - _overall(sw, "gradient")["gain_ci"] > 0
    for adv in adversaries:
        row = _overall(am, adv)
        assert row["gain"] <= 1e-6 * abs(row["truthful_utility"]), row
        assert row["verdict"] == "no profitable misreport found"
    # Truthful labelers never lose under the affine maximizer (IR), whatever the deviator does.
    assert all(r["ir_violations"] == 0 for r in am.overall)
    assert all(r["payment"] >= 0 for r in am.overall)


def test_gains_are_paired_on_common_random_numbers():
    """A 'deviation' that is truthful play gives exactly zero gain: same seeds, same types."""
    spec = spec_of(reward_report_v0.parallel_env(**SMALL))
    result = audit({**SMALL, "mechanism": "sw_max"}, [("truthful-again", Truthful(spec))], episodes=3)
    for row in result.labelers:
        assert row["gain"] == 0.0 and row["gain_ci"] == 0.0


def test_utilities_match_an_episode_played_by_hand():
    config = {**SMALL, "mechanism": "affine_maximizer"}
    result = audit(config, ["exaggerate"], episodes=2, seed=11, focal_agents=["labeler_0"])
    env = reward_report_v0.parallel_env(**config)
    returns = []
    for seed in (11, 12):
        env.reset(seed=seed)
        total = 0.0
        while env.agents:
            _, rewards, *_ = env.step(env.truthful_actions())
            total += rewards["labeler_0"]
        returns.append(total)
    assert np.isclose(result.labelers[0]["truthful_utility"], np.mean(returns), rtol=1e-12)


def test_online_game_audit_runs_white_box_and_heuristics():
    result = audit({"n_labelers": 3, "mechanism": "average", "max_cycles": 20}, ["shade", "myopic"], episodes=3,
                   game="online_feedback_v0", focal_agents=["labeler_0"])
    # Under the plain average a biased labeler gains by pulling toward its target.
    assert _overall(result, "myopic")["gain"] > 0
    assert _overall(result, "myopic")["ir_violations"] is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown adversary"):
        audit({**SMALL}, ["liar"], episodes=2)
    with pytest.raises(ValueError, match="episodes"):
        audit({**SMALL}, ["exaggerate"], episodes=1)
    with pytest.raises(ValueError, match="unknown agent"):
        audit({**SMALL}, ["exaggerate"], episodes=2, focal_agents=["labeler_9"])


def test_joint_learners_report_the_per_step_unilateral_gain():
    """Labelers learning together: every labeler deviates, the gain is the env's info gain."""
    config = {**SMALL, "mechanism": "affine_maximizer", "report_size": False}
    result = audit(config, ["shared", "independent"], episodes=2,
                   learn={"shared": {"timesteps": 500}, "independent": {"timesteps": 300, "rounds": 1}})
    for adv in ("shared", "independent"):
        rows = [r for r in result.labelers if r["adversary"] == adv]
        assert [r["labeler"] for r in rows] == ["labeler_0", "labeler_1", "labeler_2"]
        # DSIC: whatever the others report, no labeler's report beats its truthful one.
        assert all(r["gain"] <= 1e-9 for r in rows)
        assert all(r["ir_violations"] is None for r in rows)
