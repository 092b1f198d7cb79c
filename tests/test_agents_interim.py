"""The interim white box: the best response to the prior over the others' types, from the own type only."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import mechanisms, reward_report_v0
from strategic_feedback_env.agents import GradientAdversary, InterimGradientAdversary
from strategic_feedback_env.reward_report import rules

M, n, K = 64, 3, 2


def _draws(seed):
    rng = np.random.default_rng(seed)
    reports = rng.random((M, n, K)) + 0.05
    return reports / reports.sum(-1, keepdims=True), rng.integers(1, 6, (M, n)).astype(float)


def _mean_utility(mech, reports, sizes, report, r_true, w_true):
    """Labeler 0's mean true utility over the draws when it reports ``report`` (its size kept)."""
    profile = reports.copy()
    profile[:, 0] = report
    sizes = sizes.copy()
    sizes[:, 0] = w_true
    out = mech.outcome(profile, sizes)
    return float(np.mean(w_true * out.policy @ r_true - out.payments[:, 0]))


@pytest.mark.parametrize("steps", [1, 3])
def test_matches_a_grid_search_of_the_mean_utility_and_never_beats_the_ex_post_white_box(steps):
    """K = 2 with sum normalisation: a report is one number ``a``, so a fine grid is the optimum."""
    mech = mechanisms.make("affine_maximizer", lam=0.1, solver="mirror_ascent", steps=steps, step_size=1.0)
    reports, sizes = _draws(steps)
    r_true, w_true = np.array([0.7, 0.3]), 3.0
    br = InterimGradientAdversary(samples=M, steps=200, seed=0).best_response(
        mech, reports, sizes, 0, r_true, w_true, expected=True)
    grid = np.linspace(0.0, 1.0, 2001)
    values = [_mean_utility(mech, reports, sizes, np.array([a, 1 - a]), r_true, w_true) for a in grid]
    found = _mean_utility(mech, reports, sizes, br.report[0], r_true, w_true)
    assert np.isclose(br.utility[0], found, rtol=1e-10)
    assert found >= max(values) - 1e-4 * abs(max(values))
    assert found > _mean_utility(mech, reports, sizes, r_true, r_true, w_true) + 1e-6  # truncation pays
    # knowing the others' reports can only help: the ex-post best responses' mean is an upper bound
    ex_post = GradientAdversary(steps=200, seed=0).best_response(
        mech, reports, np.where(np.arange(n) == 0, w_true, sizes), 0, np.tile(r_true, (M, 1)),
        np.full(M, w_true))
    assert ex_post.utility.mean() >= found - 1e-6


def test_gains_nothing_under_the_exact_affine_maximizer():
    mech = mechanisms.make("affine_maximizer", lam=0.1)
    reports, sizes = _draws(7)
    br = InterimGradientAdversary(samples=M, steps=80, seed=0).best_response(
        mech, reports, sizes, 0, np.array([0.55, 0.45]), 2.0, expected=True)
    assert br.gain[0] <= 1e-9


def test_acts_on_its_own_type_only():
    config = {"n_labelers": 4, "n_outcomes": 5, "report_size": True, "mechanism": "affine_maximizer",
              "mechanism_params": {"lam": 0.1, "solver": "mirror_ascent", "steps": 2}}
    env = reward_report_v0.parallel_env(**config)
    env.reset(seed=3)
    first = InterimGradientAdversary(samples=16, steps=20, seed=5).act_in(env, "labeler_1")
    env.rewards[[0, 2, 3]] = env.rewards[[0, 2, 3]][:, ::-1].copy()  # the others' types change...
    env.sizes[[0, 2, 3]] = 1.0
    again = InterimGradientAdversary(samples=16, steps=20, seed=5).act_in(env, "labeler_1")
    np.testing.assert_array_equal(first, again)  # ...and the action does not
    assert env.action_space("labeler_1").contains(first.astype(np.float32))
    env.rewards[1] = env.rewards[1][::-1].copy()  # its own type changes: so does the action
    other = InterimGradientAdversary(samples=16, steps=20, seed=5).act_in(env, "labeler_1")
    assert not np.array_equal(first, other)


def test_bad_arguments():
    with pytest.raises(ValueError, match="samples"):
        InterimGradientAdversary(samples=0)
    mech = mechanisms.make("sw_max", lam=0.1)
    reports, sizes = _draws(0)
    with pytest.raises(ValueError, match="expected=True needs"):
        GradientAdversary().best_response(mech, reports[0], sizes[0], 0, expected=True)
    env = reward_report_v0.parallel_env(n_labelers=2, n_outcomes=3, sybils=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="sybils"):
        InterimGradientAdversary(samples=4, steps=2).act_in(env, env.possible_agents[0])
