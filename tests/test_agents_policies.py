"""Heuristic policies: each misreport family computed independently from the observation."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import strategic_feedback_env
from strategic_feedback_env.agents import Exaggerate, Extreme, Mix, Random, Shade, SizeScaling, Truthful, make_policy, spec_of
from strategic_feedback_env import online_feedback_v0, reward_report_v0


def _obs_matrix(obs):
    return np.stack(list(obs.values()))


@pytest.mark.parametrize("report_size", [False, True])
@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_truthful_equals_the_env_truthful_action(report_size, normalization):
    env = reward_report_v0.parallel_env(report_size=report_size, normalization=normalization)
    obs, _ = env.reset(seed=3)
    policy = Truthful(spec_of(env))
    truth = env.truthful_actions()
    for agent, o in obs.items():
        np.testing.assert_allclose(policy(o), truth[agent], rtol=0, atol=1e-12)
    batch = policy(_obs_matrix(obs))
    assert batch.shape == (env.n, env.K + int(report_size))


def test_truthful_online_reports_the_signal():
    env = online_feedback_v0.parallel_env()
    obs, _ = env.reset(seed=1)
    actions = Truthful(spec_of(env))(_obs_matrix(obs))
    np.testing.assert_array_equal(actions[:, 0], env.signals)


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_exaggeration_is_the_thm_4_2_report_after_normalisation(normalization):
    env = reward_report_v0.parallel_env(normalization=normalization, n_outcomes=6)
    env.reset(seed=5)
    eps = 0.03
    action = Exaggerate(spec_of(env), eps=eps)(env._observations())
    for r, a in zip(env.rewards, action):
        expected = r.copy()
        hi, lo = np.argmax(r), np.argmin(r)
        if normalization == "sum":
            step = min(eps, r[lo])
            expected[hi] += step
            expected[lo] -= step
            report = a / a.sum()
        else:
            expected[lo] = max(r[lo] - eps, 0.0)
            report = a / a.max()
        np.testing.assert_allclose(report, expected, atol=1e-12)


def test_size_scaling_reports_alpha_times_the_size_clipped():
    env = reward_report_v0.parallel_env(report_size=True, max_size=10)
    obs, _ = env.reset(seed=2)
    action = SizeScaling(spec_of(env), alpha=1.7)(_obs_matrix(obs))
    reported = 1.0 + action[:, -1] * 9.0
    np.testing.assert_allclose(reported, np.clip(1.7 * env.sizes, 1, 10), atol=1e-12)
    np.testing.assert_allclose(action[:, :-1], env.rewards, atol=1e-12)
    with pytest.raises(ValueError, match="report_size=True"):
        SizeScaling(spec_of(reward_report_v0.parallel_env()), alpha=2.0)


def test_mix_blends_with_the_last_public_policy():
    env = reward_report_v0.parallel_env(n_outcomes=4)
    obs, _ = env.reset(seed=0)
    env.step(env.truthful_actions())
    o = env._observations()
    action = Mix(spec_of(env), beta=0.25)(o)
    np.testing.assert_allclose(action, 0.75 * env.rewards + 0.25 * env.last_policy, atol=1e-12)


def test_shade_and_extreme_in_the_online_game():
    env = online_feedback_v0.parallel_env(biases=0.2)
    obs, _ = env.reset(seed=4)
    o = _obs_matrix(obs)
    spec = spec_of(env)
    np.testing.assert_allclose(Shade(spec, factor=0.0)(o)[:, 0], env.signals)
    np.testing.assert_allclose(Shade(spec, factor=1.0)(o)[:, 0], env.targets)
    np.testing.assert_allclose(Shade(spec, factor=0.5)(o)[:, 0], (env.signals + env.targets) / 2)
    np.testing.assert_array_equal(Extreme(spec)(o)[:, 0], (env.targets > 0.5).astype(float))


def test_random_is_seeded_and_in_the_box():
    spec = spec_of(reward_report_v0.parallel_env())
    obs = np.zeros((7, spec.obs_dim))
    a, b = Random(spec, seed=9)(obs), Random(spec, seed=9)(obs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (7, spec.act_dim) and a.min() >= 0 and a.max() <= 1


def test_policies_drive_the_gymnasium_view():
    env = gymnasium.make("StrategicFeedback/RewardReport-v0", mechanism="sw_max")
    assert strategic_feedback_env.SingleLabelerEnv is not None
    policy = Exaggerate(spec_of(env), eps=0.05)
    obs, _ = env.reset(seed=0)
    _, reward, *_ , info = env.step(policy(obs))
    assert np.isclose(reward, info["utility"])


def test_bad_inputs_are_named():
    spec = spec_of(reward_report_v0.parallel_env())
    with pytest.raises(ValueError, match="shape"):
        Truthful(spec)(np.zeros(3))
    with pytest.raises(ValueError, match="plays"):
        Shade(spec)
    with pytest.raises(ValueError, match="eps"):
        Exaggerate(spec, eps=-1)
    with pytest.raises(ValueError, match="beta"):
        Mix(spec, beta=2)
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("liar", spec)
    with pytest.raises(ValueError, match="spec_of"):
        Truthful("reward_report_v0")
