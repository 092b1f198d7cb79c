"""Rounding at the edges of [0, 1] and the AEC env's errors (issue "Runs a researcher can trust",
items 9 and 10): ``1 + 2**-52`` and ``-2**-60`` are accepted (and clipped) wherever an entry in
[0, 1] is, consistently in mechanisms, ParallelEnvs, AEC envs, batched envs and the Gymnasium
env; anything farther out is a ``ValueError`` that shows the offending value exactly."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import strategic_feedback_env  # noqa: F401  (registers the Gymnasium ids)
from strategic_feedback_env import mechanisms, online_feedback_v0, reward_report_v0
from strategic_feedback_env.batched import BatchedOnlineFeedback, BatchedRewardReport

ABOVE, BELOW = 1 + 2**-52, -(2**-60)
GAMES = [(reward_report_v0, {"n_labelers": 2, "n_outcomes": 3}), (online_feedback_v0, {"n_labelers": 2})]


def _outcome(name, reports):
    mech = mechanisms.make(name)
    if mech.online:
        mech.reset(2)
    return mech.outcome(reports, np.ones(2))


@pytest.mark.parametrize("name", mechanisms.available())
def test_mechanisms_accept_and_clip_entries_a_few_ulps_outside(name):
    reports = np.array([[1.0, 0.0], [0.3, 0.7]])
    edge = reports.copy()
    edge[0] = ABOVE, BELOW
    assert np.array_equal(_outcome(name, edge).policy, _outcome(name, reports).policy)
    edge[0, 0] = 1.000001
    with pytest.raises(ValueError, match=r"reports must lie in \[0, 1\], got min -8\.673617379884035e-19, max 1\.000001$"):
        _outcome(name, edge)


@pytest.mark.parametrize("module, config", GAMES)
def test_parallel_and_aec_envs_accept_the_same_edges_and_raise_the_same_errors(module, config):
    par = module.parallel_env(**config)
    par.reset(seed=0)
    actions = par.truthful_actions()
    edge = actions["labeler_0"].copy()
    edge[0] = ABOVE
    actions["labeler_0"] = edge
    _, _, _, _, infos = par.step(actions)
    assert np.max(infos["labeler_0"]["report"]) <= 1.0

    aec = module.env(**config)
    aec.reset(seed=0)
    aec.step(edge)
    bad = edge.copy()
    bad[0] = 1 + 1e-9
    with pytest.raises(ValueError, match=r"action of labeler_1 must lie in \[0, 1\], got min .*, max 1\.000000001$"):
        aec.step(bad)
    par.reset(seed=0)
    actions = par.truthful_actions()
    actions["labeler_0"] = bad
    with pytest.raises(ValueError, match=r"action of labeler_0 must lie in \[0, 1\], got min .*, max 1\.000000001$"):
        par.step(actions)


@pytest.mark.parametrize("module, config", GAMES)
def test_truthful_actions_before_reset_is_a_clear_error(module, config):
    with pytest.raises(RuntimeError, match=r"call reset\(\) before truthful_actions\(\)"):
        module.parallel_env(**config).truthful_actions()
    with pytest.raises(RuntimeError, match=r"call reset\(\) before truthful_actions\(\)"):
        module.env(**config).unwrapped.truthful_actions()


@pytest.mark.parametrize("cls, config", [(BatchedRewardReport, {"n_outcomes": 3}), (BatchedOnlineFeedback, {})])
def test_batched_envs_clip_the_same_edges(cls, config):
    games = cls(num_games=3, n_labelers=2, seed=0, **config)
    with pytest.raises(RuntimeError, match="reset"):
        games.truthful_actions()
    games.reset()
    actions = games.truthful_actions()
    actions[0, 0, 0], actions[1, 1, 0] = ABOVE, BELOW
    assert np.array_equal(games.check_actions(actions), np.clip(actions, 0.0, 1.0))
    actions[2, 0, 0] = -1e-9
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 1\], got min -1e-09, max"):
        games.check_actions(actions)


@pytest.mark.parametrize("gym_id", ["StrategicFeedback/RewardReport-v0", "StrategicFeedback/OnlineFeedback-v0"])
def test_the_gymnasium_env_accepts_the_edges(gym_id):
    env = gymnasium.make(gym_id, disable_env_checker=True)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape)
    action[0] = ABOVE
    env.step(action)
