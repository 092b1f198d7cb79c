"""preference_report_v0: ecosystem checkers, equivalence with reward_report_v0 on exact
truthful probabilities, batched == scalar, determinism and bad input (docs/model.md §6)."""

from __future__ import annotations

import functools
import warnings

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test
from test_env_determinism import _assert_identical

import strategic_feedback_env
from strategic_feedback_env import preference_report_v0, reward_report_v0
from strategic_feedback_env.batched import BatchedPreferenceReport, make_batched
from strategic_feedback_env.vector import ParameterSharingVecEnv, SingleLabelerVecEnv

SMALL = {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 3}
CONFIGS = [
    SMALL,
    {**SMALL, "pairs": 3, "report": "label", "mechanism": "sw_max", "mechanism_params": {"lam": 0.2}},
    {**SMALL, "reward_model": "pooled", "pairs": 4, "temperature": 0.3},
    {"n_labelers": 2, "n_outcomes": 3, "max_cycles": 2, "mechanism": "median_of_mles", "normalization": "max",
     "redraw_types": "episode", "ridge": 0.5},
    {"n_labelers": 4, "n_outcomes": 2, "max_cycles": 2, "report": "label", "reward_model": "pooled",
     "reward_distribution": "dirichlet", "sizes": [1, 2, 3, 4]},
]
IDS = [f"cfg{i}" for i in range(len(CONFIGS))]


def _actions(env, rng):
    """Random actions of the right kind: labels 0/1 or probabilities in [0, 1]."""
    labels = env.report == "label"
    return {a: (rng.random(env.m) < 0.5).astype(float) if labels else rng.random(env.m) for a in env.agents}


def _run(env, seed, episodes=2):
    rng = np.random.default_rng(99)
    transcript = []
    for ep in range(episodes):
        transcript.append(env.reset(seed=seed if ep == 0 else None))
        while env.agents:
            transcript.append(env.step(_actions(env, rng)))
    return transcript


# -- the game against reward_report_v0 ----------------------------------------------------------
@pytest.mark.parametrize("mechanism, lam", [("affine_maximizer", 0.1), ("sw_max", 0.05), ("affine_maximizer", 2.0)])
def test_exact_truthful_probabilities_reproduce_reward_report(mechanism, lam):
    """BT identifies r_i up to a shift; KL SW-Max and the affine maximizer ignore shifts, so the
    per-labeler game with exact probabilities on all pairs is the reward-report game."""
    cfg = {"n_labelers": 4, "n_outcomes": 6, "mechanism": mechanism, "mechanism_params": {"lam": lam},
           "max_cycles": 4}
    pref, rr = preference_report_v0.parallel_env(**cfg), reward_report_v0.parallel_env(**cfg)
    pref.reset(seed=3)
    rr.reset(seed=3)
    for _ in range(cfg["max_cycles"]):
        _, p_rew, _, _, p_info = pref.step(pref.truthful_actions())
        _, r_rew, _, _, r_info = rr.step(rr.truthful_actions())
        for a in pref.possible_agents:
            r = r_info[a]["true_reward"]
            np.testing.assert_array_equal(p_info[a]["true_reward"], r)
            np.testing.assert_allclose(p_info[a]["fitted_reward"], r - r.min(), atol=1e-9)
            np.testing.assert_allclose(p_info[a]["policy"], r_info[a]["policy"], atol=1e-9)
            for key in ("payment", "utility", "truthful_utility", "valuation"):
                np.testing.assert_allclose(p_info[a][key], r_info[a][key], atol=1e-9, err_msg=key)
            assert p_rew[a] == pytest.approx(r_rew[a], abs=1e-9)
            assert abs(p_info[a]["gain"]) < 1e-12


def test_truthful_probabilities_follow_bradley_terry():
    env = preference_report_v0.parallel_env(n_labelers=2, n_outcomes=5, pairs=6, temperature=0.2)
    obs, _ = env.reset(seed=4)
    lay = env.layout
    for i, a in enumerate(env.possible_agents):
        r = env.rewards[i]
        pairs = np.rint(obs[a][lay["pairs"]].reshape(-1, 2) * (env.K - 1)).astype(int)
        np.testing.assert_array_equal(pairs, env.pairs[i])
        assert len({tuple(sorted(p)) for p in pairs}) == 6  # sampled without replacement
        want = 1.0 / (1.0 + np.exp(-(r[pairs[:, 0]] - r[pairs[:, 1]]) / 0.2))
        np.testing.assert_allclose(obs[a][lay["preference"]], want, rtol=1e-12)
        np.testing.assert_array_equal(obs[a][lay["truthful"]], env.truthful_actions()[a])


def test_labels_are_drawn_from_the_bt_probabilities():
    env = preference_report_v0.parallel_env(n_labelers=5, n_outcomes=4, report="label", max_cycles=200)
    env.reset(seed=0)
    labels, probs = [], []
    while env.agents:
        labels.append(env.truthful.copy())
        probs.append(env.preferences.copy())
        env.step(env.truthful_actions())
    labels, probs = np.concatenate(labels).ravel(), np.concatenate(probs).ravel()
    assert set(np.unique(labels)) == {0.0, 1.0}
    # mean of label - probability over 6000 draws: 0 up to ~4 standard errors
    assert abs(np.mean(labels - probs)) < 4 * np.sqrt(0.25 / labels.size)


def test_pooled_fit_weights_comparisons_by_size():
    """Pooled BT = one fit of all comparisons with counts w_i: against bt_fit on the stacked data."""
    env = preference_report_v0.parallel_env(n_labelers=3, n_outcomes=4, reward_model="pooled", sizes=[1, 4, 9],
                                            max_cycles=1)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    acts = {a: rng.random(env.m) for a in env.agents}
    _, _, _, _, info = env.step(acts)
    from strategic_feedback_env.mechanisms import bt_fit

    want = bt_fit(env.pairs.reshape(-1, 2), np.concatenate(list(acts.values())), 4, temperature=env.temperature,
                  counts=np.repeat([1.0, 4.0, 9.0], env.m))
    for a in env.possible_agents:
        np.testing.assert_allclose(info[a]["fitted_reward"], np.minimum(want, 1.0), atol=1e-12)


def test_unilateral_gain_is_the_utility_difference_of_a_replayed_truthful_round():
    """info['gain'] = utility - utility had the labeler alone reported truthfully (pooled fit)."""
    cfg = {"n_labelers": 3, "n_outcomes": 4, "reward_model": "pooled", "max_cycles": 1,
           "mechanism_params": {"lam": 0.1}}
    rng = np.random.default_rng(1)
    env = preference_report_v0.parallel_env(**cfg)
    env.reset(seed=8)
    acts = {a: rng.random(env.m) for a in env.agents}
    truth = env.truthful_actions()
    _, rew, _, _, info = env.step(acts)
    for a in env.possible_agents:
        replay = preference_report_v0.parallel_env(**cfg)
        replay.reset(seed=8)
        _, rew_t, _, _, _ = replay.step({**acts, a: truth[a]})
        assert info[a]["truthful_utility"] == pytest.approx(rew_t[a], abs=1e-12)
        assert info[a]["gain"] == pytest.approx(rew[a] - rew_t[a], abs=1e-12)


# -- ecosystem checkers ----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_pettingzoo_api_and_seed_tests(cfg):
    cfg = {**cfg, "max_cycles": 4}
    parallel_api_test(preference_report_v0.parallel_env(**cfg), num_cycles=8)
    api_test(preference_report_v0.env(**cfg), num_cycles=8)
    seed_test(functools.partial(preference_report_v0.env, **cfg), num_cycles=6)
    parallel_seed_test(functools.partial(preference_report_v0.parallel_env, **cfg), num_cycles=6)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_multi_step_determinism(cfg):
    first = _run(preference_report_v0.parallel_env(**cfg), seed=11)
    _assert_identical(first, _run(preference_report_v0.parallel_env(**cfg), seed=11))
    env = preference_report_v0.parallel_env(**cfg)
    _run(env, seed=12)
    _assert_identical(first, _run(env, seed=11))  # reseeding replays


@pytest.mark.parametrize("report", ["probability", "label"])
def test_gymnasium_and_sb3_checkers(report):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kwargs = {"n_labelers": 3, "n_outcomes": 4, "report": report, "pairs": 4, "max_cycles": 3}
    env = gymnasium.make("StrategicFeedback/PreferenceReport-v0", **kwargs)
    assert env.unwrapped.game.metadata["name"] == "preference_report_v0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gymnasium.make("StrategicFeedback/PreferenceReport-v0", **kwargs).unwrapped, warn=True)
    obs, _ = env.reset(seed=0)
    obs, r, _, _, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and np.isfinite(r) and "fitted_reward" in info
    venv = gymnasium.make_vec("StrategicFeedback/PreferenceReport-v0", 2, vectorization_mode="vector_entry_point",
                              **kwargs)
    obs, _ = venv.reset(seed=1)
    _, rewards, _, _, infos = venv.step(venv.action_space.sample())
    assert obs.shape == (2, venv.single_observation_space.shape[0]) and rewards.shape == (2,) and "gain" in infos


def test_pettingzoo_registry_and_package_make():
    par = pettingzoo.make("parallel", "StrategicFeedback/preference_report-v0", n_labelers=2, n_outcomes=3)
    assert isinstance(par, preference_report_v0.PreferenceReportEnv)
    assert isinstance(strategic_feedback_env.make("preference_report_v0", n_outcomes=3),
                      preference_report_v0.PreferenceReportEnv)
    assert "pairs=" in preference_report_v0.__doc__ or "``pairs``" in preference_report_v0.__doc__


# -- batched and vector forms ----------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_batched_b1_matches_scalar(cfg):
    env = preference_report_v0.parallel_env(**cfg)
    benv = BatchedPreferenceReport(num_games=1, seed=5, **cfg)
    rng = np.random.default_rng(7)
    obs, _ = env.reset(seed=5)
    bobs = benv.reset()
    agents = env.possible_agents
    for t in range(2 * env.max_cycles):
        np.testing.assert_array_equal(np.stack([obs[a] for a in agents]), bobs[0])
        acts = benv.truthful_actions() if t % 2 == 0 else np.stack(list(_actions(env, rng).values()))[None]
        obs, rew, term, _, info = env.step({a: acts[0, i] for i, a in enumerate(agents)})
        bobs, brew, bterm, _, binfo = benv.step(acts)
        np.testing.assert_array_equal([rew[a] for a in agents], brew[0])
        for key in ("gain", "utility", "payment", "truthful_utility", "fitted_reward", "true_reward", "report"):
            np.testing.assert_array_equal(np.stack([info[a][key] for a in agents]), binfo[key][0], err_msg=key)
        np.testing.assert_array_equal(info[agents[0]]["policy"], binfo["policy"][0])
        assert bool(bterm[0]) == all(term.values())
        if all(term.values()):
            np.testing.assert_array_equal(np.stack([obs[a] for a in agents]), binfo["final_observation"][0])
            obs, _ = env.reset()


def test_batched_games_are_independent_and_vector_envs_run():
    b = make_batched("preference_report_v0", num_games=4, seed=0, **SMALL)
    obs = b.reset()
    assert obs.shape == (4, 3, 2 * 4 + 2 + 4 * 6)
    assert not np.array_equal(obs[0], obs[1])
    _, rewards, _, _, infos = b.step(b.truthful_actions())
    assert rewards.shape == (4, 3) and np.all(np.abs(infos["gain"]) < 1e-12)
    for venv in (SingleLabelerVecEnv("preference_report_v0", num_envs=3, seed=1, **SMALL),
                 ParameterSharingVecEnv("preference_report_v0", num_envs=2, seed=1, **SMALL)):
        o = venv.reset()
        o2, r, d, infos = venv.step(np.full((venv.num_envs, 6), 0.5))
        assert o.shape == o2.shape and r.shape == (venv.num_envs,) and "gain" in infos[0]


def test_batched_game_refuses_the_torch_backend_and_truthful_actions_before_reset():
    with pytest.raises(ValueError, match="backend='numpy' only"):
        make_batched("preference_report_v0", num_games=2, backend="torch", **SMALL)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before truthful_actions\(\)"):
        make_batched("preference_report_v0", num_games=2, **SMALL).truthful_actions()


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, pattern", [
    ({"pairs": 7}, r"pairs must be 'all' or at most K \(K - 1\) / 2 = 6"),
    ({"pairs": 0}, "pairs must be an integer >= 1"),
    ({"pairs": "some"}, "pairs must be an integer"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -1}, "temperature must be > 0"),
    ({"temperature": float("nan")}, "temperature must be a finite number"),
    ({"report": "ranking"}, "report must be one of"),
    ({"reward_model": "mixed"}, "reward_model must be one of"),
    ({"ridge": -0.1}, "ridge must be >= 0"),
    ({"clip": 0.5}, r"clip must lie in \(0, 0.5\)"),
    ({"n_outcomes": 1}, "n_outcomes must be an integer >= 2"),
    ({"mechanism": "online_weighted"}, "online rule"),
    ({"mechanism_params": {"normalization": "sum"}}, "normalization=None"),
    ({"normalization": "l2"}, "normalization must be one of"),
])
def test_bad_configuration(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        preference_report_v0.parallel_env(**{"n_outcomes": 4, **kwargs})


@pytest.mark.parametrize("report, bad, pattern", [
    ("probability", 1.5, r"\[0, 1\]"),
    ("probability", -0.1, r"\[0, 1\]"),
    ("probability", np.nan, "NaN or inf"),
    ("label", 0.5, "labels must be 0 or 1"),
    ("label", 2.0, r"\[0, 1\]"),
    ("label", np.nan, "NaN or inf"),
])
def test_bad_reports_raise_and_leave_the_state_unchanged(report, bad, pattern):
    cfg = {**SMALL, "report": report, "pairs": 3}
    env, fresh = preference_report_v0.parallel_env(**cfg), preference_report_v0.parallel_env(**cfg)
    env.reset(seed=2)
    fresh.reset(seed=2)
    env.step(env.truthful_actions())
    fresh.step(fresh.truthful_actions())
    acts = env.truthful_actions()
    acts["labeler_1"] = acts["labeler_1"].copy()
    acts["labeler_1"][0] = bad
    with pytest.raises(ValueError, match=pattern):
        env.step(acts)
    with pytest.raises(ValueError, match="shape"):
        env.step({**env.truthful_actions(), "labeler_0": np.zeros(4)})
    assert env.round == fresh.round == 1
    _assert_identical(env.step(env.truthful_actions()), fresh.step(fresh.truthful_actions()))
    b, bfresh = (BatchedPreferenceReport(num_games=2, seed=1, **cfg) for _ in range(2))
    b.reset()
    bfresh.reset()
    bad_actions = b.truthful_actions()
    bad_actions[1, 2, 0] = bad
    with pytest.raises(ValueError, match=pattern):
        b.step(bad_actions)
    _assert_identical(b.step(b.truthful_actions()), bfresh.step(bfresh.truthful_actions()))


def test_max_cycles_and_render():
    from pettingzoo.test import max_cycles_test, render_test

    max_cycles_test(preference_report_v0)
    render_test(functools.partial(preference_report_v0.env, **SMALL),
                custom_tests={"ansi": lambda res: isinstance(res, str) and "preference_report_v0" in res,
                              "rgb_array": lambda res: res.ndim == 3 and res.shape[2] == 3})
