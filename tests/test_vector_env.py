"""SB3 VecEnv adapters and the Gymnasium vector entry point over the batched games."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import strategic_feedback_env  # noqa: F401  (registers the ids)
from strategic_feedback_env.vector import ParameterSharingVecEnv, SingleLabelerVecEnv, SingleLabelerVectorEnv

GAMES = ["reward_report_v0", "online_feedback_v0"]


def _check_vec(env, steps=7):
    obs = env.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (env.num_envs, *env.observation_space.shape)
    assert obs.dtype == env.observation_space.dtype
    assert all(env.observation_space.contains(o) for o in obs)
    saw_done = False
    for _ in range(steps):
        actions = np.stack([env.action_space.sample() for _ in range(env.num_envs)]).astype(np.float32)
        obs, rewards, dones, infos = env.step(actions)
        assert obs.shape == (env.num_envs, *env.observation_space.shape)
        assert rewards.shape == (env.num_envs,) and rewards.dtype == np.float32
        assert dones.shape == (env.num_envs,) and dones.dtype == bool
        assert isinstance(infos, list) and len(infos) == env.num_envs
        assert all(env.observation_space.contains(o) for o in obs)
        assert "gain" in infos[0] and isinstance(infos[0]["gain"], float)
        for k in np.flatnonzero(dones):
            saw_done = True
            assert env.observation_space.contains(infos[k]["terminal_observation"])
    assert saw_done


@pytest.mark.parametrize("game", GAMES)
def test_single_labeler_vec_env_semantics(game):
    env = SingleLabelerVecEnv(game, num_envs=4, focal_agent=1, seed=0, n_labelers=3, max_cycles=3)
    _check_vec(env)
    assert env.get_attr("n") == [3] * 4
    assert env.env_is_wrapped(gymnasium.Wrapper) == [False] * 4
    assert len(env.env_method("truthful_actions", indices=[0, 1])) == 2
    env.set_attr("max_cycles", 3)
    with pytest.raises(ValueError):
        env.set_attr("max_cycles", 3, indices=[0])


@pytest.mark.parametrize("game", GAMES)
def test_parameter_sharing_vec_env_semantics(game):
    env = ParameterSharingVecEnv(game, num_envs=3, seed=0, n_labelers=4, max_cycles=3)
    assert env.num_envs == 12
    _check_vec(env)
    obs = env.reset()
    ids = obs[:, -4:]
    assert np.array_equal(ids, np.tile(np.eye(4), (3, 1)))
    plain = ParameterSharingVecEnv(game, num_envs=3, seed=0, agent_id_in_obs=False, n_labelers=4)
    assert plain.observation_space.shape[0] == env.observation_space.shape[0] - 4


def test_truthful_focal_has_zero_gain_and_matches_batched_rewards():
    env = SingleLabelerVecEnv("reward_report_v0", num_envs=8, seed=3)
    env.reset()
    truthful = env.batched.truthful_actions()[:, 0]
    _, rewards, _, infos = env.step(truthful)
    assert np.allclose([i["gain"] for i in infos], 0.0, atol=1e-9)
    assert np.allclose(rewards, [i["utility"] for i in infos], atol=1e-6)


def test_other_policy_is_batched_callable():
    calls = []

    def zeros(obs):
        calls.append(obs.shape)
        return np.zeros((obs.shape[0], 10))

    env = SingleLabelerVecEnv("reward_report_v0", num_envs=4, other_policies=zeros, seed=0)
    env.reset()
    env.step(np.full((4, 10), 0.5))
    assert calls == [(16, 22)]


def test_seed_reproducible_and_validation():
    a = SingleLabelerVecEnv("reward_report_v0", num_envs=2, n_labelers=2)
    b = SingleLabelerVecEnv("reward_report_v0", num_envs=2, n_labelers=2)
    a.seed(11)
    b.seed(11)
    assert np.array_equal(a.reset(), b.reset())
    with pytest.raises(ValueError):
        a.step(np.full((2, 10), np.nan))
    with pytest.raises(ValueError):
        a.step(np.zeros((3, 10)))
    with pytest.raises(ValueError):
        SingleLabelerVecEnv("reward_report_v0", num_envs=2, focal_agent=5)


@pytest.mark.parametrize("cls", [SingleLabelerVecEnv, ParameterSharingVecEnv])
def test_ppo_trains_and_is_reproducible(cls):
    def run():
        torch.set_num_threads(1)
        env = cls("reward_report_v0", num_envs=2, seed=0, n_labelers=3, n_outcomes=4, max_cycles=4)
        model = PPO("MlpPolicy", env, seed=0, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
        model.learn(256)
        obs = env.reset()
        return model.predict(obs, deterministic=True)[0]

    assert np.array_equal(run(), run())


def test_gymnasium_make_vec_entry_point():
    for gym_id in ("StrategicFeedback/RewardReport-v0", "StrategicFeedback/OnlineFeedback-v0"):
        env = gymnasium.make_vec(gym_id, num_envs=3, vectorization_mode="vector_entry_point", max_cycles=2,
                                 autoreset_mode="same_step")
        assert isinstance(env, SingleLabelerVectorEnv)
        obs, _ = env.reset(seed=1)
        obs2, _ = gymnasium.make_vec(gym_id, num_envs=3, vectorization_mode="vector_entry_point",
                                     max_cycles=2).reset(seed=1)
        assert np.array_equal(obs, obs2) and env.observation_space.contains(obs)
        for t in range(2):
            obs, rew, term, trunc, info = env.step(env.action_space.sample())
            assert rew.shape == (3,) and term.shape == (3,)
        assert term.all() and "final_obs" in info


def test_vector_env_matches_scalar_single_labeler_env():
    """B=1 vector view == the scalar SingleLabelerEnv (truthful others) for the same seed and actions."""
    from strategic_feedback_env.single_agent import SingleLabelerEnv

    scalar = SingleLabelerEnv("reward_report_v0", n_labelers=3, max_cycles=3)
    vec = SingleLabelerVectorEnv("reward_report_v0", num_envs=1, n_labelers=3, max_cycles=3)
    o, _ = scalar.reset(seed=4)
    vo, _ = vec.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert np.array_equal(o, vo[0])
        a = rng.random(10)
        o, r, term, _, info = scalar.step(a)
        vo, vr, vterm, _, vinfo = vec.step(a[None])
        assert r == vr[0] and term == vterm[0] and info["gain"] == vinfo["gain"][0]
    assert np.array_equal(o, vo[0])  # NEXT_STEP (the default): the last step returns the final observation


def test_slot_infos_match_the_batched_infos_and_are_plain_dicts():
    import copy
    import pickle

    env = ParameterSharingVecEnv("reward_report_v0", num_envs=2, seed=0, n_labelers=3, max_cycles=2)
    env.reset()
    actions = np.full((env.num_envs, env.action_space.shape[0]), 0.5)
    _, _, _, infos = env.step(actions)
    from strategic_feedback_env.batched import BatchedRewardReport

    batched = BatchedRewardReport(num_games=2, seed=0, n_labelers=3, max_cycles=2)
    batched.reset()
    _, _, _, _, expected = batched.step(actions.reshape(2, 3, -1))
    info = infos[4]  # game 1, labeler 1
    assert info["gain"] == expected["gain"][1, 1] and info.get("social_welfare") == expected["social_welfare"][1]
    assert info.get("episode") is None and "episode" not in info and "gain" in info
    assert isinstance(info["gain"], float) and info["round"] == 1
    plain = dict(infos[4])
    assert type(plain) is dict and len(plain) == len(info) and plain == info and info == plain
    assert {**infos[5]} == infos[5].copy() == pickle.loads(pickle.dumps(infos[5])) == copy.deepcopy(infos[5])
    assert sorted(infos[0]) == sorted(plain)
    assert json.loads(json.dumps(infos[3])) == infos[3]
    infos[1]["extra"] = 1
    assert infos[1]["extra"] == 1 and "gain" in infos[1] and len(infos[1]) == len(plain) + 1
    with pytest.raises(KeyError):
        infos[2]["missing"]
    _, _, dones, infos = env.step(actions)
    assert dones.all() and all("terminal_observation" in i and "gain" in i for i in infos)


@pytest.mark.parametrize("n_outcomes", [3, 4])
def test_slot_infos_are_chosen_by_key_not_by_shape(n_outcomes):
    """With K == n the shared policy (B, K) has the shape of a per-labeler column; it must not
    turn into one slot's number. The infos' keys and values do not depend on K."""
    from strategic_feedback_env.batched import BatchedRewardReport

    config = dict(n_labelers=3, n_outcomes=n_outcomes, max_cycles=2)
    single = SingleLabelerVecEnv("reward_report_v0", num_envs=2, focal_agent=1, seed=0, **config)
    shared = ParameterSharingVecEnv("reward_report_v0", num_envs=2, seed=0, **config)
    vector = SingleLabelerVectorEnv("reward_report_v0", num_envs=2, focal_agent=1, seed=0, **config)
    reference = BatchedRewardReport(num_games=2, seed=0, **config)
    reference.reset()
    single.reset(), shared.reset(), vector.reset()
    truthful = reference.truthful_actions()
    _, _, _, _, expected = reference.step(truthful)
    _, _, _, single_infos = single.step(truthful[:, 1])
    _, _, _, shared_infos = shared.step(truthful.reshape(6, -1))
    _, _, _, _, vector_infos = vector.step(truthful[:, 1])
    keys = {"valuation", "payment", "utility", "truthful_utility", "gain", "reported_size", "true_size",
            "social_welfare", "total_payment", "round"}
    assert set(single_infos[0]) == set(shared_infos[0]) == set(vector_infos) == keys
    for b in range(2):
        assert single_infos[b]["payment"] == expected["payment"][b, 1]
        assert single_infos[b]["social_welfare"] == expected["social_welfare"][b]
        for i in range(3):
            assert shared_infos[3 * b + i]["gain"] == expected["gain"][b, i]
            assert shared_infos[3 * b + i]["total_payment"] == expected["total_payment"][b]
    np.testing.assert_array_equal(vector_infos["utility"], expected["utility"][:, 1])


def test_focal_views_reject_misuse_with_clear_errors():
    vec = SingleLabelerVecEnv("reward_report_v0", num_envs=2, seed=0, n_labelers=3)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 10)))
    vector = SingleLabelerVectorEnv("reward_report_v0", num_envs=2, seed=0, n_labelers=3)
    with pytest.raises(RuntimeError, match="reset"):
        vector.step(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="render"):
        gymnasium.make_vec("StrategicFeedback/RewardReport-v0", num_envs=2, vectorization_mode="vector_entry_point",
                           render_mode="ansi")
    wrong_shape = SingleLabelerVecEnv("reward_report_v0", num_envs=2, seed=0, n_labelers=3,
                                      other_policies=lambda obs: np.zeros((1, 10)))
    wrong_shape.reset()
    with pytest.raises(ValueError, match="other_policies"):
        wrong_shape.step(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="unknown agent"):
        SingleLabelerVecEnv("reward_report_v0", num_envs=2, n_labelers=3, other_policies={"labeler_7": np.zeros})
    for focal in (1.5, True, "labeler_x"):
        with pytest.raises(ValueError, match="focal_agent"):
            SingleLabelerVecEnv("reward_report_v0", num_envs=2, n_labelers=3, focal_agent=focal)


def test_dict_of_other_policies_in_make_vec_others_stay_exactly_truthful():
    """A dict names some labelers' policies; the rest report their type exactly."""
    from strategic_feedback_env.batched import BatchedRewardReport

    config = dict(n_labelers=3, report_size=True, max_size=25, max_cycles=2)
    exaggerate = {"labeler_2": lambda obs: np.clip(obs[:, :11] * 1.5, 0, 1)}
    env = gymnasium.make_vec("StrategicFeedback/RewardReport-v0", num_envs=4, vectorization_mode="vector_entry_point",
                             seed=3, other_policies=exaggerate, **config)
    reference = BatchedRewardReport(num_games=4, seed=3, **config)
    obs, _ = env.reset()
    ref_obs = reference.reset()
    actions = reference.truthful_actions()
    actions[:, 2] = exaggerate["labeler_2"](ref_obs[:, 2])
    _, rewards, _, _, infos = env.step(actions[:, 0])
    _, ref_rewards, _, _, ref_infos = reference.step(actions)
    np.testing.assert_array_equal(rewards, ref_rewards[:, 0])
    np.testing.assert_array_equal(infos["gain"], ref_infos["gain"][:, 0])
