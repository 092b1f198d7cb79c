"""The Gymnasium vector view in each auto-reset mode, and Gymnasium's own vector wrappers on it.

The reference is Gymnasium's ``SyncVectorEnv`` over the scalar env (``vectorization_mode="sync"``,
``vector_kwargs={"autoreset_mode": mode}``): with one game both must agree bit for bit.
"""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

import strategic_feedback_env  # noqa: F401  (registers the ids)
from strategic_feedback_env.reward_report_v0 import observation_layout
from strategic_feedback_env.vector import SingleLabelerVectorEnv

GAMES = {
    "StrategicFeedback/RewardReport-v0": {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 3},
    "StrategicFeedback/OnlineFeedback-v0": {"n_labelers": 3, "max_cycles": 3},
}


def _pair(gym_id, mode, num_envs=1):
    config = GAMES[gym_id]
    ours = gymnasium.make_vec(gym_id, num_envs, vectorization_mode="vector_entry_point", autoreset_mode=mode, **config)
    sync = gymnasium.make_vec(gym_id, num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode},
                              **config)
    return ours, sync


def _assert_infos_equal(ours, reference):
    """Every per-labeler number of ours (``round`` is the batched game's own clock) equals the
    scalar env's."""
    final = {"final_obs", "_final_obs", "final_info", "_final_info"}
    assert set(ours) - {"round"} - final <= set(reference)
    for key in set(ours) & set(reference) - final:
        assert np.array_equal(ours[key], reference[key]), key


@pytest.mark.parametrize("mode", list(AutoresetMode))
@pytest.mark.parametrize("gym_id", list(GAMES))
def test_one_game_equals_gymnasiums_sync_vector_env_in_every_mode(gym_id, mode):
    ours, sync = _pair(gym_id, mode)
    assert ours.metadata["autoreset_mode"] == mode
    obs, info = ours.reset(seed=7)
    ref_obs, ref_info = sync.reset(seed=7)
    assert np.array_equal(obs, ref_obs)
    _assert_infos_equal(info, ref_info)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(11):
        actions = rng.random(ours.action_space.shape)
        step, ref = ours.step(actions), sync.step(actions)
        for got, want in zip(step[:4], ref[:4]):
            assert np.array_equal(got, want)
        _assert_infos_equal(step[4], ref[4])
        if mode == AutoresetMode.SAME_STEP and step[2].any():
            assert np.array_equal(step[4]["final_obs"][0], ref[4]["final_obs"][0])
            _assert_infos_equal(step[4]["final_info"], ref[4]["final_info"])
        if mode == AutoresetMode.DISABLED and step[2].any():
            with pytest.raises(RuntimeError, match="reset"):
                ours.step(actions)
            obs, info = ours.reset()
            ref_obs, ref_info = sync.reset()
            assert np.array_equal(obs, ref_obs)
        ends += int(step[2][0])
    assert ends >= 2


def test_default_mode_is_gymnasiums_and_modes_are_checked():
    env = SingleLabelerVectorEnv("reward_report_v0", num_envs=2, n_labelers=3)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert SingleLabelerVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert SingleLabelerVectorEnv(num_envs=1, autoreset_mode="SameStep").autoreset_mode == AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="autoreset_mode"):
        SingleLabelerVectorEnv(num_envs=1, autoreset_mode="sometimes")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.array([True, False])})


def test_next_step_reset_step_ignores_actions_and_returns_zero_reward():
    env = SingleLabelerVectorEnv("reward_report_v0", num_envs=3, n_labelers=3, max_cycles=2, seed=1)
    obs, info = env.reset()
    for _ in range(2):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
    assert term.all() and "final_obs" not in info
    first, reward, term, trunc, info = env.step(np.full(env.action_space.shape, np.nan))
    assert not term.any() and not trunc.any() and np.array_equal(reward, np.zeros(3))
    assert all(np.array_equal(v, np.zeros_like(v)) for v in info.values())
    assert np.array_equal(first[:, observation_layout(10)["round"]], np.zeros((3, 1)))  # the new episode's round 0


@pytest.mark.parametrize("gym_id", list(GAMES))
@pytest.mark.parametrize("wrap", [
    vector_wrappers.NormalizeObservation,
    vector_wrappers.FlattenObservation,
    lambda env: vector_wrappers.DtypeObservation(env, np.float32),
    lambda env: vector_wrappers.TransformObservation(env, lambda o: 2.0 * o - 1.0),
    vector_wrappers.RecordEpisodeStatistics,
    vector_wrappers.NormalizeReward,
], ids=["NormalizeObservation", "FlattenObservation", "DtypeObservation", "TransformObservation",
        "RecordEpisodeStatistics", "NormalizeReward"])
def test_gymnasium_vector_wrappers_match_them_on_the_sync_vector_env(gym_id, wrap):
    ours, sync = (wrap(env) for env in _pair(gym_id, AutoresetMode.NEXT_STEP))
    obs, _ = ours.reset(seed=3)
    ref_obs, _ = sync.reset(seed=3)
    assert np.array_equal(obs, ref_obs) and obs.dtype == ref_obs.dtype
    rng = np.random.default_rng(1)
    episode_returns = []
    for _ in range(8):
        actions = rng.random(ours.action_space.shape)
        step, ref = ours.step(actions), sync.step(actions)
        for got, want in zip(step[:4], ref[:4]):
            assert np.array_equal(got, want)
        if "episode" in step[4]:
            assert np.array_equal(step[4]["episode"]["r"], ref[4]["episode"]["r"])
            episode_returns.append(float(step[4]["episode"]["r"][0]))
    if isinstance(ours, vector_wrappers.RecordEpisodeStatistics):
        assert len(episode_returns) == 2


def test_record_episode_statistics_return_is_the_sum_of_the_episodes_rewards():
    env = vector_wrappers.RecordEpisodeStatistics(
        SingleLabelerVectorEnv("online_feedback_v0", num_envs=4, n_labelers=3, max_cycles=5, seed=2))
    env.reset()
    total = np.zeros(4)
    for _ in range(5):
        _, reward, term, _, info = env.step(env.action_space.sample())
        total += reward
    assert term.all()
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-6)
    assert np.array_equal(info["episode"]["l"], np.full(4, 5))
