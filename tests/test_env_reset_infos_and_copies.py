"""``reset()`` infos have ``step()``'s layout, and copies of a game mid-episode continue it."""

import copy
import pickle

import gymnasium
import numpy as np
import pytest

import strategic_feedback_env  # noqa: F401  (registers the Gymnasium ids)
from strategic_feedback_env import online_feedback_v0, reward_report_v0

GAMES = {"reward_report_v0": reward_report_v0, "online_feedback_v0": online_feedback_v0}
CONFIG = {"n_labelers": 3, "max_cycles": 5}


def _random_actions(env, rng):
    return {a: rng.random(env.action_space(a).shape) for a in env.agents}


def _assert_same_step(one, other):
    for got, want in zip(one, other):
        assert got.keys() == want.keys()
        for agent in got:
            if isinstance(got[agent], dict):
                assert got[agent].keys() == want[agent].keys()
                for key in got[agent]:
                    assert np.array_equal(got[agent][key], want[agent][key]), (agent, key)
            else:
                assert np.array_equal(got[agent], want[agent]), agent


@pytest.mark.parametrize("game", list(GAMES))
def test_reset_infos_have_the_keys_shapes_and_types_of_step_infos_as_zeros(game):
    env = GAMES[game].parallel_env(**CONFIG)
    _, reset_infos = env.reset(seed=0)
    step_infos = env.step(_random_actions(env, np.random.default_rng(0)))[4]
    assert reset_infos.keys() == step_infos.keys()
    for agent, info in reset_infos.items():
        assert info.keys() == step_infos[agent].keys()
        for key, value in info.items():
            ref = step_infos[agent][key]
            assert type(value) is type(ref) and np.shape(value) == np.shape(ref), key
            assert not np.any(value), key
    assert {"gain", "payment", "utility", "truthful_utility"} <= set(reset_infos["labeler_0"])


@pytest.mark.parametrize("game", list(GAMES))
def test_learning_the_info_layout_draws_nothing_from_the_env(game):
    """The first reset learns the layout on a copy: the seeded episode is the one an env whose
    layout was already known plays."""
    rng = np.random.default_rng(1)
    fresh, known = GAMES[game].parallel_env(**CONFIG), GAMES[game].parallel_env(**CONFIG)
    known.reset(seed=9)
    assert np.array_equal(fresh.reset(seed=3)[0]["labeler_1"], known.reset(seed=3)[0]["labeler_1"])
    for _ in range(3):
        actions = _random_actions(fresh, rng)
        _assert_same_step(fresh.step(actions), known.step(actions))


def test_mutating_a_reset_info_does_not_change_the_next_one():
    env = reward_report_v0.parallel_env(**CONFIG)
    _, infos = env.reset(seed=0)
    infos["labeler_0"]["report"][:] = 7.0
    assert not np.any(env.reset(seed=0)[1]["labeler_0"]["report"])


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda env: pickle.loads(pickle.dumps(env))], ids=["deepcopy", "pickle"])
@pytest.mark.parametrize("game", list(GAMES))
def test_a_copy_mid_episode_continues_the_episode(game, clone):
    rng = np.random.default_rng(2)
    env = GAMES[game].parallel_env(**CONFIG)
    env.reset(seed=4)
    env.step(_random_actions(env, rng))
    twin = clone(env)
    assert twin.agents == env.agents and twin.round == env.round == 1
    while env.agents:
        actions = _random_actions(env, rng)
        _assert_same_step(env.step(actions), twin.step(actions))
    assert twin.agents == []
    assert np.array_equal(twin.reset()[0]["labeler_0"], env.reset()[0]["labeler_0"])  # same generator state


@pytest.mark.parametrize("game", list(GAMES))
def test_copies_of_the_aec_and_gymnasium_views_continue_too(game):
    aec = GAMES[game].env(**CONFIG)
    aec.reset(seed=5)
    aec.step(aec.action_space(aec.agent_selection).sample())
    twin = copy.deepcopy(aec)
    assert twin.agent_selection == aec.agent_selection == "labeler_1"
    action = np.full(aec.action_space("labeler_1").shape, 0.25)
    for env in (aec, twin):
        env.step(action)
        env.step(action)
    assert aec.last()[1] == twin.last()[1] and aec.last()[4]["gain"] == twin.last()[4]["gain"]

    gym_id = {"reward_report_v0": "StrategicFeedback/RewardReport-v0",
              "online_feedback_v0": "StrategicFeedback/OnlineFeedback-v0"}[game]
    single = gymnasium.make(gym_id, **CONFIG)
    single.reset(seed=6)
    single.step(single.action_space.sample())
    twin = pickle.loads(pickle.dumps(single))
    action = np.full(single.action_space.shape, 0.5)
    assert single.step(action)[4]["gain"] == twin.step(action)[4]["gain"]
