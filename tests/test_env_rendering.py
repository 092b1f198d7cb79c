"""Rendering of both games and the single-agent (focal labeler) Gymnasium view."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from strategic_feedback_env import SingleLabelerEnv, online_feedback_v0, reward_report_v0

GAMES = [(reward_report_v0, {"n_labelers": 3, "n_outcomes": 4}), (online_feedback_v0, {"n_labelers": 3})]
IDS = ["reward_report", "online_feedback"]


@pytest.mark.parametrize("module, cfg", GAMES, ids=IDS)
def test_ansi_lists_every_labeler_and_the_numbers(module, cfg):
    env = module.parallel_env(render_mode="ansi", max_cycles=3, **cfg)
    env.reset(seed=0)
    before = env.render()
    assert isinstance(before, str) and before.strip() and env.metadata["name"] in before
    _, rew, _, _, infos = env.step(env.truthful_actions())
    text = env.render()
    assert isinstance(text, str) and env.mechanism.name in text and "round 1/3" in text
    lines = text.splitlines()
    for agent in env.possible_agents:
        row = [ln for ln in lines if ln.startswith(agent)]
        assert len(row) == 1, agent
        # the utility column shows the agent's reward
        assert float(row[0].split()[1]) == pytest.approx(rew[agent], abs=1e-4)
    assert text != before


@pytest.mark.parametrize("module, cfg", GAMES, ids=IDS)
def test_rgb_array_is_an_image_that_changes(module, cfg):
    env = module.parallel_env(render_mode="rgb_array", max_cycles=3, **cfg)
    env.reset(seed=0)
    empty = env.render()
    env.step(env.truthful_actions())
    img = env.render()
    for im in (empty, img):
        assert isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3
        assert im.shape[0] > 50 and im.shape[1] > 50
    assert img.shape == empty.shape
    assert img.std() > 0 and not np.array_equal(img, empty)  # something was drawn
    env.step(env.truthful_actions())
    assert not np.array_equal(env.render(), img)  # a new round, a new picture
    env.close()


@pytest.mark.parametrize("module, cfg", GAMES, ids=IDS)
def test_human_prints_and_none_warns(module, cfg, capsys):
    env = module.parallel_env(render_mode="human", max_cycles=2, **cfg)
    env.reset(seed=1)
    env.step(env.truthful_actions())
    assert env.render() is None
    assert "labeler_2" in capsys.readouterr().out
    quiet = module.parallel_env(max_cycles=2, **cfg)
    quiet.reset(seed=1)
    with pytest.warns(UserWarning, match="render_mode"):
        assert quiet.render() is None


# -- SingleLabelerEnv ----------------------------------------------------------------------

class _Recorder:
    """A constant policy that records the observations it is given."""

    def __init__(self, value, shape):
        self.value, self.shape, self.seen = value, shape, []

    def __call__(self, obs):
        self.seen.append(np.array(obs))
        return np.full(self.shape, self.value)


class _Model:
    """SB3-like model: ``predict(obs, deterministic) -> (action, state)``."""

    def __init__(self, value, shape):
        self.value, self.shape, self.calls = value, shape, []

    def predict(self, obs, deterministic=False):
        self.calls.append(deterministic)
        return np.full(self.shape, self.value), None


def _reports(env):
    return env.game.last_round["agent_infos"]["report"]


def test_single_agent_dict_policies_are_used_and_missing_ones_are_truthful():
    rec = _Recorder(0.7, (4,))
    env = SingleLabelerEnv(n_labelers=3, n_outcomes=4, max_cycles=3, other_policies={"labeler_1": rec})
    obs, _ = env.reset(seed=2)
    game_obs = env._obs
    truthful_2 = env.game.truthful_actions()["labeler_2"].copy()
    _, r, term, trunc, info = env.step(np.full(4, 0.2))
    np.testing.assert_array_equal(rec.seen[0], game_obs["labeler_1"])  # its own observation
    reports = _reports(env)
    np.testing.assert_allclose(reports[0], np.full(4, 0.25))  # focal, normalised
    np.testing.assert_allclose(reports[1], np.full(4, 0.25))  # constant 0.7 normalised
    np.testing.assert_allclose(reports[2], truthful_2)  # missing -> truthful
    assert info["utility"] == r and not term and not trunc


def test_single_agent_callable_policy_for_all_others():
    rec = _Recorder(0.3, (1,))
    env = SingleLabelerEnv(game="online_feedback_v0", focal_agent="labeler_1", other_policies=rec,
                           n_labelers=3, max_cycles=2)
    env.reset(seed=0)
    _, r, _, _, info = env.step(np.array([0.9]))
    np.testing.assert_allclose(_reports(env), [0.3, 0.9, 0.3])
    assert len(rec.seen) == 2  # called for labelers 0 and 2 only
    assert info["report"] == 0.9 and info["utility"] == r


def test_single_agent_predict_model():
    model = _Model(0.6, (1,))
    env = SingleLabelerEnv(game="online_feedback_v0", other_policies={"labeler_1": model, "labeler_2": model},
                           n_labelers=3, max_cycles=2)
    env.reset(seed=0)
    env.step(np.array([0.1]))
    np.testing.assert_allclose(_reports(env), [0.1, 0.6, 0.6])
    assert model.calls == [True, True]  # deterministic prediction


def test_single_agent_errors():
    with pytest.raises(ValueError, match=r"unknown agent\(s\) \['labeler_5'\]"):
        SingleLabelerEnv(n_labelers=3, other_policies={"labeler_5": lambda o: o})
    with pytest.raises(ValueError, match="callables"):
        SingleLabelerEnv(n_labelers=3, other_policies={"labeler_1": 42})
    with pytest.raises(ValueError, match="callables"):
        SingleLabelerEnv(n_labelers=3, other_policies=42)
    with pytest.raises(ValueError, match="unknown agent"):
        SingleLabelerEnv(n_labelers=3, focal_agent="labeler_3")


def test_single_agent_matches_the_parallel_game():
    """Truthful others, focal action a: same reward, obs and termination as the parallel env."""
    env = SingleLabelerEnv(focal_agent="labeler_1", n_labelers=3, n_outcomes=4, max_cycles=4)
    par = reward_report_v0.parallel_env(n_labelers=3, n_outcomes=4, max_cycles=4)
    obs, _ = env.reset(seed=9)
    pobs, _ = par.reset(seed=9)
    np.testing.assert_array_equal(obs, pobs["labeler_1"])
    rng = np.random.default_rng(0)
    done = False
    while not done:
        a = rng.random(4)
        actions = par.truthful_actions()
        actions["labeler_1"] = a
        obs, r, done, trunc, info = env.step(a)
        pobs, prew, pterm, _, pinfo = par.step(actions)
        np.testing.assert_array_equal(obs, pobs["labeler_1"])
        assert r == prew["labeler_1"] and done == pterm["labeler_1"]
        assert info["gain"] == pinfo["labeler_1"]["gain"]
    assert par.agents == []


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_single_agent_render_and_gym_make(mode):
    env = gymnasium.make("StrategicFeedback/OnlineFeedback-v0", render_mode=mode, n_labelers=2, max_cycles=2)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    out = env.render()
    if mode == "ansi":
        assert "labeler_0" in out and "labeler_1" in out
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    env.close()
