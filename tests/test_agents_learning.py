"""Learning labelers (agents.learning): best response, independent learners, parameter sharing,
save/load with a sidecar, and the empirical DSIC property a learner must reproduce:

* under ``sw_max`` (no payments) a short PPO best response finds a profitable misreport
  (mean gain - 2 stderr > 0 over fresh evaluation episodes);
* under ``affine_maximizer`` (DSIC) it does not (mean gain - 2 stderr <= 0).

Long runs (SAC, iterated best response, shared policy learning quality) are ``slow``.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import strategic_feedback_env
from strategic_feedback_env.agents import Exaggerate, GameSpec, Truthful, spec_of
from strategic_feedback_env.agents.learning import (
    LearnedPolicy,
    evaluate_gain,
    to_env_action,
    train_best_response,
    train_independent,
    train_shared,
)

SW_MAX = dict(n_labelers=3, n_outcomes=3, mechanism="sw_max", mechanism_params={"lam": 0.1}, max_cycles=1)
AFFINE = dict(SW_MAX, mechanism="affine_maximizer")
FAST_PPO = dict(timesteps=6000, n_envs=8, seed=0)
EVAL = dict(episodes=1000, seed=999)


def _spec(config, game="reward_report_v0"):
    return spec_of(strategic_feedback_env.make(game, **config))


def _obs(config, n=64, seed=3, game="reward_report_v0"):
    """A batch of real observations of labeler_0 (fresh episodes)."""
    env = strategic_feedback_env.make(game, **config)
    return np.stack([env.reset(seed=seed + k)[0]["labeler_0"] for k in range(n)])


@pytest.fixture(scope="module")
def sw_max_policy():
    return train_best_response(env_config=SW_MAX, **FAST_PPO)


@pytest.fixture(scope="module")
def tiny_policy():
    policy, _ = train_best_response(env_config=SW_MAX, timesteps=256, n_envs=4, seed=1)
    return policy


# -- the empirical DSIC property ------------------------------------------------------------------
def test_ppo_best_response_finds_profitable_misreport_under_sw_max(sw_max_policy):
    policy, info = sw_max_policy
    assert info["vec_env"] == "SingleLabelerVecEnv"
    result = evaluate_gain(policy, env_config=SW_MAX, **EVAL)
    assert result["mean"] - 2 * result["stderr"] > 0, result
    # the learned misreport moves mass to the top outcome (the Thm 4.2 direction)
    obs = _obs(SW_MAX)
    report = policy(obs)
    report = report / report.sum(-1, keepdims=True)
    top = obs[:, :3].argmax(-1)
    rows = np.arange(len(obs))
    assert np.mean(report[rows, top] > obs[rows, top]) > 0.9


def test_ppo_best_response_gains_nothing_under_affine_maximizer():
    policy, _ = train_best_response(env_config=AFFINE, **FAST_PPO)
    result = evaluate_gain(policy, env_config=AFFINE, **EVAL)
    assert result["mean"] - 2 * result["stderr"] <= 0, result


def test_evaluate_gain_truthful_is_zero_and_exaggeration_positive_under_sw_max():
    spec = _spec(SW_MAX)
    assert evaluate_gain(Truthful(spec), env_config=SW_MAX, episodes=50)["mean"] == pytest.approx(0, abs=1e-12)
    result = evaluate_gain(Exaggerate(spec, eps=0.3), env_config=SW_MAX, episodes=500)
    assert result["mean"] - 2 * result["stderr"] > 0


# -- reproducibility and the policy interface -----------------------------------------------------
def test_same_seed_same_learned_actions():
    obs = _obs(SW_MAX, n=16)
    a = train_best_response(env_config=SW_MAX, timesteps=512, n_envs=4, seed=7)[0](obs)
    b = train_best_response(env_config=SW_MAX, timesteps=512, n_envs=4, seed=7)[0](obs)
    c = train_best_response(env_config=SW_MAX, timesteps=512, n_envs=4, seed=8)[0](obs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_policy_single_and_batched_observations(tiny_policy):
    spec = tiny_policy.spec
    obs = _obs(SW_MAX, n=6)
    batch = tiny_policy(obs)
    assert batch.shape == (6, spec.act_dim)
    assert np.all((batch >= 0) & (batch <= 1))
    np.testing.assert_allclose(tiny_policy(obs[0]), batch[0], rtol=0, atol=1e-6)
    assert tiny_policy(obs.reshape(2, 3, -1)).shape == (2, 3, spec.act_dim)
    actions, state = tiny_policy.predict(obs)
    assert state is None and np.array_equal(actions, batch)
    with pytest.raises(ValueError):
        tiny_policy(np.zeros((4, spec.obs_dim + 1)))
    # usable as another labeler's policy in the single-labeler env
    env = strategic_feedback_env.SingleLabelerEnv(other_policies=tiny_policy, **SW_MAX)
    env.reset(seed=0)
    env.step(env.game.truthful_actions()["labeler_0"])


def test_residual_zero_action_is_truthful():
    spec = _spec(SW_MAX)
    obs = _obs(SW_MAX, n=10)
    action = to_env_action(np.zeros((10, spec.act_dim)), obs, spec)
    np.testing.assert_allclose(action / action.sum(-1, keepdims=True), obs[:, :3], atol=1e-12)
    # sharpening: positive u on the top outcome raises its reported share
    u = np.zeros((10, 3))
    u[np.arange(10), obs[:, :3].argmax(-1)] = 0.5
    sharp = to_env_action(u, obs, spec)
    sharp = sharp / sharp.sum(-1, keepdims=True)
    assert np.all(sharp.max(-1) > obs[:, :3].max(-1))


def test_residual_with_report_size_and_online_game():
    config = dict(n_labelers=2, n_outcomes=3, report_size=True, max_size=5)
    spec = _spec(config)
    obs = _obs(config, n=5)
    a = to_env_action(np.zeros((5, 4)), obs, spec)
    truthful = np.stack([Truthful(spec)(o) for o in obs])
    np.testing.assert_allclose(a[:, 3], truthful[:, 3], atol=1e-12)
    online = _spec({"n_labelers": 2}, "online_feedback_v0")
    o = _obs({"n_labelers": 2}, n=5, game="online_feedback_v0")
    np.testing.assert_allclose(to_env_action(np.zeros((5, 1)), o, online), o[:, 0:1])


def test_bad_arguments():
    with pytest.raises(ValueError):
        train_best_response(env_config=SW_MAX, algo="dqn", timesteps=10)
    with pytest.raises(ValueError):
        train_best_response(env_config=SW_MAX, action_mode="bogus", timesteps=10)
    with pytest.raises(ValueError):
        train_best_response(game="nope", timesteps=10)
    with pytest.raises(ValueError):
        train_best_response(env_config=SW_MAX, focal_agent="labeler_9", timesteps=10)



@pytest.mark.parametrize("call, name", [
    (lambda: train_shared(env_config=SW_MAX, n_envs=-3, timesteps=64), "n_envs"),
    (lambda: train_shared(env_config=SW_MAX, timesteps=0), "timesteps"),
    (lambda: train_best_response(env_config=SW_MAX, timesteps="x"), "timesteps"),
    (lambda: train_independent(env_config=SW_MAX, rounds="a", timesteps=64), "rounds"),
    (lambda: evaluate_gain(Truthful(_spec(SW_MAX)), env_config=SW_MAX, episodes=0), "episodes"),
    (lambda: evaluate_gain(Truthful(_spec(SW_MAX)), env_config=SW_MAX, episodes=2.5), "episodes"),
    (lambda: train_best_response(env_config=SW_MAX, focal_agent=1.5, timesteps=64), "focal_agent"),
])
def test_bad_counts_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# -- save / load ----------------------------------------------------------------------------------
def test_save_load_round_trip_identical_actions(sw_max_policy, tmp_path):
    policy, _ = sw_max_policy
    zip_path = policy.save(tmp_path / "br")
    assert zip_path.name == "br.zip" and (tmp_path / "br.json").is_file()
    meta = json.loads((tmp_path / "br.json").read_text())
    for key in ("algo", "game", "spec", "env_config", "seed", "timesteps", "versions", "agent_id", "action_mode"):
        assert key in meta
    assert meta["algo"] == "ppo" and meta["spec"]["K"] == 3 and meta["env_config"]["mechanism"] == "sw_max"
    assert meta["agent_id"]["one_hot"] is False
    loaded = LearnedPolicy.load(tmp_path / "br", expected_spec=_spec(SW_MAX))
    also = LearnedPolicy.load(zip_path)
    obs = _obs(SW_MAX, n=32)
    np.testing.assert_array_equal(loaded(obs), policy(obs))
    np.testing.assert_array_equal(also(obs), policy(obs))
    assert loaded.spec == policy.spec and loaded.metadata["seed"] == 0


def test_load_missing_files_raise(tiny_policy, tmp_path):
    with pytest.raises(ValueError, match="no saved model"):
        LearnedPolicy.load(tmp_path / "nothing")
    tiny_policy.save(tmp_path / "m")
    (tmp_path / "m.json").unlink()
    with pytest.raises(ValueError, match="sidecar"):
        LearnedPolicy.load(tmp_path / "m")


def test_load_corrupt_files_raise(tiny_policy, tmp_path):
    tiny_policy.save(tmp_path / "m")
    good = (tmp_path / "m.json").read_text()
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt sidecar"):
        LearnedPolicy.load(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError):
        LearnedPolicy.load(tmp_path / "m")
    (tmp_path / "m.json").write_text(good)
    (tmp_path / "m.zip").write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a zip"):
        LearnedPolicy.load(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m.zip", "w") as z:  # a zip, but not an SB3 model
        z.writestr("junk.txt", "junk")
    with pytest.raises(ValueError, match="cannot load"):
        LearnedPolicy.load(tmp_path / "m")


def test_load_mismatched_spec_raises(tiny_policy, tmp_path):
    tiny_policy.save(tmp_path / "m")
    other = _spec(dict(SW_MAX, n_outcomes=4))
    with pytest.raises(ValueError, match="trained for"):
        LearnedPolicy.load(tmp_path / "m", expected_spec=other)
    with pytest.raises(ValueError, match="trained for"):
        LearnedPolicy.load(tmp_path / "m", expected_spec=GameSpec("online_feedback_v0", 1, 6, 1))
    # sidecar edited to claim another game: the model's spaces no longer match
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["spec"].update(K=4, obs_dim=10, act_dim=4)
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match"):
        LearnedPolicy.load(tmp_path / "m")


# -- fast smoke runs of every trainer -------------------------------------------------------------
def test_sac_smoke():
    policy, info = train_best_response(env_config=SW_MAX, algo="sac", timesteps=300, n_envs=2, seed=0,
                                       algo_kwargs={"learning_starts": 100})
    assert policy.algo == "sac" and info["algo"] == "sac"
    assert policy(_obs(SW_MAX, n=4)).shape == (4, 3)


def test_best_response_against_dict_of_policies_and_online_game():
    spec = _spec(SW_MAX)
    policy, info = train_best_response(env_config=SW_MAX, focal_agent="labeler_1", timesteps=256, n_envs=4,
                                       other_policies={"labeler_0": Exaggerate(spec, 0.1)})
    assert info["focal_agent"] == "labeler_1"
    online, _ = train_best_response(game="online_feedback_v0", env_config={"n_labelers": 2, "max_cycles": 4},
                                    timesteps=256, n_envs=4)
    a = online(_obs({"n_labelers": 2}, n=3, game="online_feedback_v0"))
    assert a.shape == (3, 1) and np.all((a >= 0) & (a <= 1))


def test_independent_smoke():
    policies, infos = train_independent(env_config=SW_MAX, rounds=2, timesteps=128, n_envs=4, seed=0,
                                        return_info=True)
    assert sorted(policies) == ["labeler_0", "labeler_1", "labeler_2"]
    assert len(infos) == 6 and [i["round"] for i in infos] == [0, 0, 0, 1, 1, 1]
    assert all(isinstance(p, LearnedPolicy) for p in policies.values())
    assert policies["labeler_0"].model.num_timesteps >= 256  # kept learning in round 2
    env = strategic_feedback_env.make("reward_report_v0", **SW_MAX)
    obs, _ = env.reset(seed=0)
    env.step({a: policies[a](obs[a]) for a in env.agents})


def test_shared_smoke(tmp_path):
    policy, info = train_shared(env_config=SW_MAX, timesteps=384, n_envs=4, seed=0)
    assert info["vec_env"] == "ParameterSharingVecEnv" and policy.n_agents == 3
    obs = _obs(SW_MAX, n=5)
    with pytest.raises(ValueError, match="agent_index"):
        policy(obs)
    a0 = policy(obs, agent_index=0)
    np.testing.assert_array_equal(policy.for_agent("labeler_0")(obs), a0)
    mixed = policy(obs, agent_index=np.array([0, 1, 2, 0, 1]))
    np.testing.assert_array_equal(mixed[[0, 3]], a0[[0, 3]])
    with pytest.raises(ValueError):
        policy(obs, agent_index=3)
    policy.save(tmp_path / "shared")
    loaded = LearnedPolicy.load(tmp_path / "shared", expected_spec=_spec(SW_MAX))
    assert loaded.n_agents == 3
    np.testing.assert_array_equal(loaded.for_agent(2)(obs), policy.for_agent(2)(obs))


def test_tensorboard_and_progress_bar(tmp_path):
    _, info = train_best_response(env_config=SW_MAX, timesteps=256, n_envs=4, tensorboard_log=tmp_path,
                                  progress_bar=True)
    assert list(tmp_path.rglob("events.out.tfevents.*"))
    assert info["gain_history"] and len(info["gain_history"][0]) == 3


# -- slow: learning quality of the other trainers -------------------------------------------------
@pytest.mark.slow
def test_sac_learns_misreport_under_sw_max():
    policy, _ = train_best_response(env_config=SW_MAX, algo="sac", timesteps=3000, seed=0)
    result = evaluate_gain(policy, env_config=SW_MAX, **EVAL)
    assert result["mean"] - 2 * result["stderr"] > 0, result


@pytest.mark.slow
def test_sac_gains_nothing_under_affine_maximizer():
    policy, _ = train_best_response(env_config=AFFINE, algo="sac", timesteps=3000, seed=0)
    result = evaluate_gain(policy, env_config=AFFINE, **EVAL)
    assert result["mean"] - 2 * result["stderr"] <= 0, result


@pytest.mark.slow
def test_shared_policy_learns_misreport_under_sw_max():
    policy, _ = train_shared(env_config=SW_MAX, timesteps=12000, seed=0)
    for i in range(3):
        result = evaluate_gain(policy.for_agent(i), env_config=SW_MAX, focal_agent=i, **EVAL)
        assert result["mean"] - 2 * result["stderr"] > 0, (i, result)


@pytest.mark.slow
def test_independent_learners_all_misreport_under_sw_max():
    policies = train_independent(env_config=SW_MAX, rounds=2, timesteps=4000, seed=0)
    for agent, policy in policies.items():
        others = {a: p for a, p in policies.items() if a != agent}
        result = evaluate_gain(policy, env_config=SW_MAX, focal_agent=agent, other_policies=others, episodes=500)
        assert result["mean"] - 2 * result["stderr"] > 0, (agent, result)


@pytest.mark.slow
def test_ppo_longer_episodes_and_more_outcomes_under_sw_max():
    config = dict(n_labelers=3, n_outcomes=5, mechanism="sw_max", mechanism_params={"lam": 0.1}, max_cycles=5)
    policy, _ = train_best_response(env_config=config, timesteps=20000, seed=0)
    result = evaluate_gain(policy, env_config=config, episodes=400)
    assert result["mean"] - 2 * result["stderr"] > 0, result


def test_save_is_atomic_and_records_a_mechanism_object(tmp_path):
    """A config holding a Mechanism object is saved as its name and parameters; no temp files remain."""
    import json

    from strategic_feedback_env import mechanisms

    config = {"n_labelers": 2, "n_outcomes": 3, "mechanism": mechanisms.make("sw_max", lam=0.5), "max_cycles": 1}
    policy, _ = train_best_response("reward_report_v0", config, timesteps=64, n_envs=2, seed=0)
    policy.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.zip"]
    sidecar = json.loads((tmp_path / "m.json").read_text())
    expected = {"mechanism": "sw_max", "params": mechanisms.make("sw_max", lam=0.5).params()}
    assert sidecar["env_config"]["mechanism"] == expected
    assert "python" in sidecar["versions"] and sidecar["versions"]["strategic-feedback-env"]
    obs = np.random.default_rng(0).random((4, policy.spec.obs_dim))
    np.testing.assert_array_equal(LearnedPolicy.load(tmp_path / "m")(obs), policy(obs))


# -- per-coordinate exploration and the audit's defaults --------------------------------------------
SIZED = dict(SW_MAX, n_outcomes=4, report_size=True)


def test_exploration_sets_the_initial_log_std_per_coordinate_group():
    from strategic_feedback_env.agents.learning import _ActionTransform, _build_model, set_exploration
    from strategic_feedback_env.vector import SingleLabelerVecEnv

    spec = _spec(SIZED)
    venv = _ActionTransform(SingleLabelerVecEnv(game="reward_report_v0", num_envs=2, focal_agent="labeler_0",
                                                seed=0, **SIZED), spec, "sharpen", 1.0)
    model, _ = _build_model("ppo", venv, 0, None, "reward_report_v0", None, 0)
    assert model.action_space.shape == (4 + 1 + 1,)  # report, size, sharpening entry
    set_exploration(model, spec, "sharpen", {"report": -3.0, "size": -1.0, "sharpen": -0.5})
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), [-3.0] * 4 + [-1.0, -0.5])
    set_exploration(model, spec, "sharpen", {"size": -2.0})  # the other groups keep theirs
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), [-3.0] * 4 + [-2.0, -0.5])
    set_exploration(model, spec, "sharpen", -1.25)
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), [-1.25] * 6)
    with pytest.raises(ValueError, match="unknown coordinate group"):
        set_exploration(model, spec, "sharpen", {"sizes": -1.0})
    with pytest.raises(ValueError, match=r"exploration\['report'\]"):
        set_exploration(model, spec, "sharpen", {"size": -0.5, "report": "wide"})
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), [-1.25] * 6)  # a refused call changes nothing


def test_exploration_is_recorded_and_refused_where_it_does_not_apply():
    policy, _ = train_best_response(env_config=SIZED, timesteps=64, n_envs=2, action_mode="sharpen",
                                    exploration={"report": -3.0}, reward="gain")
    assert policy.metadata["exploration"] == {"report": -3.0} and policy.metadata["reward"] == "gain"
    with pytest.raises(ValueError, match="exploration sets PPO"):
        train_best_response(env_config=SIZED, algo="sac", timesteps=64, exploration=-2.0)
    with pytest.raises(ValueError, match="unknown coordinate group"):  # no size entry without report_size
        train_best_response(env_config=SW_MAX, timesteps=64, exploration={"size": -1.0})


def test_audit_defaults_give_about_twenty_ppo_updates_whatever_the_budget():
    from strategic_feedback_env.agents.learning import DEFAULT_N_ENVS, audit_defaults

    for steps in (3000, 20_000, 50_000, 200_000):
        options = audit_defaults("reward_report_v0", "ppo", steps)
        rollout = options["algo_kwargs"]["n_steps"] * DEFAULT_N_ENVS["ppo"]
        assert options["algo_kwargs"]["n_steps"] >= 32
        assert steps == 3000 or 14 <= steps / rollout <= 28, (steps, rollout)
    assert audit_defaults("reward_report_v0", "ppo", 20_000)["algo_kwargs"]["n_steps"] == 128
    assert audit_defaults("reward_report_v0", "sac") == {"action_mode": "sharpen"}
    assert audit_defaults("online_feedback_v0", "ppo") == {}


def test_audit_ppo_sees_only_its_type_where_types_are_redrawn_every_round():
    from strategic_feedback_env.agents.learning import audit_defaults, with_audit_defaults

    assert audit_defaults("reward_report_v0", "ppo")["observation"] == "type"
    assert audit_defaults("reward_report_v0", "ppo", env_config={"redraw_types": "round"})["observation"] == "type"
    # types kept for the episode: the last policy tells something about the others, so it stays in view
    assert "observation" not in audit_defaults("reward_report_v0", "ppo", env_config={"redraw_types": "episode"})
    assert with_audit_defaults("reward_report_v0", "ppo", {"observation": "full"})["observation"] == "full"


def test_audit_options_merge_dict_entries_key_by_key():
    from strategic_feedback_env.agents.learning import with_audit_defaults

    options = with_audit_defaults("reward_report_v0", "ppo", {"timesteps": 3000, "algo_kwargs": {"learning_rate": 3e-4},
                                                               "exploration": {"report": -2.0}})
    assert options["algo_kwargs"] == {"n_steps": 32, "learning_rate": 3e-4}
    assert options["exploration"] == {"report": -2.0, "size": -1.5, "sharpen": -2.0}
    assert options["timesteps"] == 3000 and options["reward"] == "gain"
    assert with_audit_defaults("reward_report_v0", "ppo", {"exploration": -1.0})["exploration"] == -1.0
    assert with_audit_defaults("online_feedback_v0", "ppo", None) == {}


# -- what the model sees -----------------------------------------------------------------------
def test_type_observation_hides_the_round_and_last_policy_from_the_model(tmp_path):
    policy, _ = train_best_response(env_config=SIZED, timesteps=64, n_envs=2, action_mode="sharpen",
                                    observation="type")
    assert policy.metadata["observation"] == "type"
    obs = _obs(SIZED, n=16)
    K = 4  # reward 0..3, size 4, round 5, last policy 6..9 (the layout, written out here)
    scrambled = obs.copy()
    scrambled[:, 5:] = np.random.default_rng(1).random((16, 1 + K))
    np.testing.assert_array_equal(policy(scrambled), policy(obs))
    x = policy.model_input(obs)
    np.testing.assert_array_equal(x[:, 5:], 0.0)
    np.testing.assert_array_equal(x[:, :5], obs[:, :5])
    other_type = obs.copy()
    other_type[:, 4] = 1.0 - other_type[:, 4]  # the size is seen: some action moves
    assert not np.array_equal(policy(other_type), policy(obs))
    policy.save(tmp_path / "m")
    loaded = LearnedPolicy.load(tmp_path / "m")
    assert loaded.observation == "type"
    np.testing.assert_array_equal(loaded(scrambled), policy(obs))


def test_full_observation_is_the_default_and_bad_observations_are_refused():
    policy, _ = train_best_response(env_config=SIZED, timesteps=64, n_envs=2)
    assert policy.observation == "full"
    obs = _obs(SIZED, n=16)
    np.testing.assert_array_equal(policy.model_input(obs), obs)
    with pytest.raises(ValueError, match="observation must be one of"):
        train_best_response(env_config=SIZED, timesteps=64, observation="own")
    with pytest.raises(ValueError, match="applies to the reward-report game"):
        train_best_response(game="online_feedback_v0", env_config={"n_labelers": 3}, timesteps=64,
                            observation="type")
