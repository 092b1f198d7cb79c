"""White-box adversaries: found gains re-checked with the numpy mechanism, closed forms for the grid search."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import mechanisms
from strategic_feedback_env.agents import GradientAdversary, MyopicOnlineAdversary
from strategic_feedback_env import online_feedback_v0, reward_report_v0


def _instances(seed, count, n=4, K=6):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        r = rng.random((n, K)) + 0.05
        r /= r.sum(-1, keepdims=True)
        yield r, rng.integers(1, 11, n).astype(float)


def _utility(mech, reports, sizes, i, report, size, r_true, w_true):
    """Labeler i's true utility when it reports (report, size), computed from scratch."""
    profile, profile_sizes = reports.copy(), sizes.copy()
    profile[i], profile_sizes[i] = report, size
    out = mech.outcome(profile, profile_sizes)
    return w_true * float(out.policy @ r_true) - float(out.payments[i])


@pytest.mark.parametrize("regularizer", ["kl", "chi2"])
def test_finds_a_strictly_profitable_misreport_without_payments(regularizer):
    mech = mechanisms.make("sw_max", lam=0.1, regularizer=regularizer)
    adversary = GradientAdversary(steps=60, restarts=4, seed=1)
    for reports, sizes in _instances(0, 4):
        br = adversary.best_response(mech, reports, sizes, labeler=1)
        truthful = _utility(mech, reports, sizes, 1, reports[1], sizes[1], reports[1], sizes[1])
        found = _utility(mech, reports, sizes, 1, br.report, br.size, reports[1], sizes[1])
        assert np.isclose(br.truthful_utility, truthful, rtol=1e-10)
        assert np.isclose(br.utility, found, rtol=1e-10)
        assert found - truthful > 1e-4 * abs(truthful)


@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
def test_cannot_gain_under_the_affine_maximizer(regularizer):
    mech = mechanisms.make("affine_maximizer", lam=0.1, regularizer=regularizer)
    adversary = GradientAdversary(steps=60, restarts=4, seed=2)
    for reports, sizes in _instances(1, 4):
        br = adversary.best_response(mech, reports, sizes, labeler=0, report_size=True, max_size=10)
        assert br.gain <= 1e-6 * abs(br.truthful_utility)


def test_batched_instances_and_size_misreports():
    reports, sizes = next(_instances(3, 1))
    mech = mechanisms.make("sw_max", lam=0.1)
    br = GradientAdversary(restarts=3).best_response(
        mech, np.stack([reports] * 3), np.stack([sizes] * 3), labeler=2, report_size=True, max_size=10)
    assert br.gain.shape == (3,) and np.all(br.gain > 0)
    np.testing.assert_allclose(br.gain, br.gain[0], rtol=1e-12)
    assert np.all((br.size >= 1) & (br.size <= 10))
    truthful = _utility(mech, reports, sizes, 2, reports[2], sizes[2], reports[2], sizes[2])
    found = _utility(mech, reports, sizes, 2, br.report[0], br.size[0], reports[2], sizes[2])
    assert np.isclose(found - truthful, br.gain[0], rtol=1e-9)


def test_acts_in_the_env_with_positive_env_gain_under_sw_max():
    env = reward_report_v0.parallel_env(mechanism="sw_max", mechanism_params={"lam": 0.1}, n_outcomes=5)
    env.reset(seed=0)
    actions = env.truthful_actions()
    actions["labeler_3"] = GradientAdversary(steps=40, restarts=3).act_in(env, "labeler_3")
    *_, infos = env.step(actions)
    assert infos["labeler_3"]["gain"] > 0


def test_myopic_without_weight_term_matches_the_closed_form_under_average():
    env = online_feedback_v0.parallel_env(mechanism="average", biases=0.15)
    env.reset(seed=7)
    n, i = env.n, 2
    x = MyopicOnlineAdversary(gamma=0.0, grid=100_001).best_report(env.mechanism, env.signals, i, env.targets[i],
                                                                    env.signals[i])
    others = env.signals.sum() - env.signals[i]
    assert abs(x - np.clip(n * env.targets[i] - others, 0, 1)) <= 1e-5


def test_myopic_weight_seeker_reports_its_belief_under_online_weighted():
    """Only the weight term: the Brier score is proper, so the belief maximises the expected weight."""
    mech = mechanisms.make("online_weighted", eta=0.5)
    mech.reset(4)
    signals = np.array([0.2, 0.7, 0.4, 0.9])
    adversary = MyopicOnlineAdversary(gamma=1e9, grid=10_001)
    for i in range(4):
        x = adversary.best_report(mech, signals, i, target=1.0, belief=signals[i])
        assert abs(x - signals[i]) <= 2e-4


def test_bad_arguments():
    mech = mechanisms.make("average")
    with pytest.raises(ValueError, match="sw_max or affine_maximizer"):
        GradientAdversary().best_response(mech, np.full((2, 2), 0.5), None, 0)
    with pytest.raises(ValueError, match="labeler"):
        GradientAdversary().best_response(mechanisms.make("sw_max"), np.full((2, 2), 0.5), None, 5)
    with pytest.raises(ValueError, match="restarts"):
        GradientAdversary(restarts=1)
