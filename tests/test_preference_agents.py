"""Agents in the preference game: heuristic misreports, the gradient adversary through the BT
fit, SB3 learners on probabilities and labels, and the audit's cells (docs/model.md §6)."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import preference_report_v0
from strategic_feedback_env.agents import (
    InvertOthersTop,
    PreferenceGradientAdversary,
    PreferTop,
    Random,
    Sharpen,
    Truthful,
    audit,
    spec_of,
)
from strategic_feedback_env.experiments import audit as audit_exp
from strategic_feedback_env.experiments.cli import parse

CFG = {"n_labelers": 3, "n_outcomes": 4, "mechanism_params": {"lam": 0.1}, "max_cycles": 3}


def _env(seed=4, **kwargs):
    env = preference_report_v0.parallel_env(**{**CFG, **kwargs})
    obs, _ = env.reset(seed=seed)
    return env, obs


@pytest.mark.parametrize("report", ["probability", "label"])
def test_heuristics_follow_their_definitions(report):
    env, obs = _env(report=report, pairs=5)
    spec = spec_of(env)
    assert spec.report == report and spec.act_dim == 5
    for i, a in enumerate(env.possible_agents):
        o, t, pairs = obs[a], env.truthful[i], env.pairs[i]
        np.testing.assert_array_equal(Truthful(spec)(o), t)
        top = env.rewards[i].argmax()
        want = np.where(pairs[:, 0] == top, 1.0, np.where(pairs[:, 1] == top, 0.0, t))
        np.testing.assert_array_equal(PreferTop(spec)(o), want)
        theirs = env.last_policy.argmax()
        favours = ((pairs[:, 0] == theirs) & (t > 0.5)) | ((pairs[:, 1] == theirs) & (t < 0.5))
        np.testing.assert_array_equal(InvertOthersTop(spec)(o), np.where(favours & (theirs != top), 1 - t, t))
        sharp = Sharpen(spec, factor=1.0)(o)
        np.testing.assert_array_equal(sharp, (t > 0.5).astype(float))
        random = Random(spec, seed=0)(o)
        assert random.shape == (5,) and np.all((random >= 0) & (random <= 1))
        if report == "label":
            for action in (PreferTop(spec)(o), InvertOthersTop(spec)(o), random):
                assert set(np.unique(action)) <= {0.0, 1.0}
    env.step({a: PreferTop(spec)(obs[a]) for a in env.agents})  # valid actions for the env


def test_heuristics_refuse_other_games():
    from strategic_feedback_env import reward_report_v0

    with pytest.raises(ValueError, match="plays preference_report_v0"):
        PreferTop(spec_of(reward_report_v0.parallel_env(n_outcomes=4)))


@pytest.mark.parametrize("mechanism, reward_model, profitable", [
    ("sw_max", "per_labeler", True),
    ("affine_maximizer", "per_labeler", False),
    ("affine_maximizer", "pooled", True),
    ("median_of_mles", "per_labeler", True),
])
def test_gradient_adversary_gain_is_the_envs_gain(mechanism, reward_model, profitable):
    env, _ = _env(seed=1, mechanism=mechanism, reward_model=reward_model, mechanism_params={"lam": 1.0})
    action, gain = PreferenceGradientAdversary(steps=25, restarts=4).best_response(env, 1)
    acts = env.truthful_actions()
    acts["labeler_1"] = action
    _, _, _, _, info = env.step(acts)
    assert info["labeler_1"]["gain"] == pytest.approx(gain, abs=1e-12)
    if profitable:
        assert gain > 1e-3
    else:  # per-labeler fit on all pairs + affine maximizer: exactly DSIC (a misreport is another r~_i)
        assert gain <= 1e-9


def test_gradient_adversary_in_the_label_game_returns_labels():
    env, _ = _env(report="label", mechanism="sw_max")
    action, gain = PreferenceGradientAdversary(steps=10, restarts=3).best_response(env, 0)
    assert set(np.unique(action)) <= {0.0, 1.0} and gain >= 0.0


@pytest.mark.parametrize("algo, report", [("ppo", "probability"), ("sac", "probability"), ("ppo", "label")])
def test_learners_train_save_and_load(algo, report, tmp_path):
    from strategic_feedback_env.agents.learning import LearnedPolicy, evaluate_gain, train_best_response

    cfg = {**CFG, "mechanism": "sw_max", "report": report, "pairs": 4}
    policy, info = train_best_response("preference_report_v0", cfg, algo=algo, timesteps=300, seed=1, n_envs=2,
                                       algo_kwargs={"learning_starts": 64} if algo == "sac" else {"n_steps": 16})
    env, obs = _env(**cfg)
    action = policy(obs["labeler_0"])
    assert action.shape == (4,)
    if report == "label":
        assert set(np.unique(action)) <= {0.0, 1.0}
    policy.save(tmp_path / "p")
    loaded = LearnedPolicy.load(tmp_path / "p", expected_spec=spec_of(env))
    np.testing.assert_array_equal(loaded(obs["labeler_0"]), action)
    assert np.isfinite(evaluate_gain(loaded, "preference_report_v0", cfg, episodes=4)["mean"])


def test_audit_finds_the_sw_max_exploit_and_none_under_the_affine_maximizer():
    advs = ["prefer_top", "gradient"]
    learn = {"gradient": {"steps": 20, "restarts": 3}}
    sw = audit({**CFG, "mechanism": "sw_max", "mechanism_params": {"lam": 1.0}}, advs, episodes=3, game="preference_report_v0",
               focal_agents=["labeler_0"], learn=learn)
    am = audit({**CFG, "mechanism": "affine_maximizer"}, advs, episodes=3, game="preference_report_v0",
               focal_agents=["labeler_0"], learn=learn)
    row = next(r for r in sw.overall if r["adversary"] == "gradient")
    assert row["verdict"].startswith("profitable")
    for r in am.overall:
        assert r["gain"] <= 1e-9 and r["ir_violations"] == 0


def test_audit_cells_name_the_preference_mechanisms():
    args = parse(["audit", "--quick", "--adversaries", "prefer_top,exaggerate"])
    cells = audit_exp.cells(args)
    assert ("affine_maximizer@pooled", "prefer_top") in cells and ("sw_max@pooled", "exaggerate") not in cells
    assert ("median_of_mles", "exaggerate") in cells  # median_of_mles also plays reward_report_v0
    config = audit_exp.env_config(parse(["audit", "--quick", "--pairs", "3"]), "sw_max@pooled")
    assert config["reward_model"] == "pooled" and config["pairs"] == 3 and config["mechanism"] == "sw_max"
    preference_report_v0.parallel_env(**config)
    for bad in ("sw_max@both", "average@pooled", "nope@pooled"):
        with pytest.raises(ValueError):
            audit_exp.game_of(bad)


def test_study_gains_respect_the_fit_error_bound_and_vanish_on_connected_pairs():
    """Thm 4.12-style: a misreport gains at most 2 w eps (eps = the truthful fit's error); with
    exact probabilities on connected pairs eps = 0 and nothing is gained."""
    from strategic_feedback_env.experiments.preference_study import dsic_vs_pairs, median_welfare

    rows = dsic_vs_pairs((2, 6), "probability", samples=2, seed=0, n=3, K=4, steps=10)
    assert rows[0]["connected"] == 0.0 and rows[0]["bound_2w_eps"] > 0
    assert all(r["bound_violations"] == 0 and r["max_gain_over_bound"] <= 1.0 for r in rows)
    assert rows[1]["connected"] == 1.0 and rows[1]["gain_max"] <= 1e-9 and rows[1]["bound_2w_eps"] < 1e-9
    welfare = median_welfare((3,), (0.5,), games=50, seed=0, K=4)[0]
    assert welfare["welfare_median"] <= welfare["welfare_sw_max"] + 1e-12
