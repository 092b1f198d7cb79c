"""PettingZoo / Gymnasium / SB3 conformance of both games over a sampled parameter grid.

The grid is not the full product: 20 (resp. 12) combinations drawn with a fixed seed;
``test_grid_covers_every_value`` checks that every value of every axis is exercised."""

from __future__ import annotations

import functools
import random
import warnings

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
)

import strategic_feedback_env
from strategic_feedback_env import online_feedback_v0, reward_report_v0

RR_AXES = {
    "n_labelers": [1, 2, 5],
    "n_outcomes": [1, 2, 10],
    "mechanism": ["sw_max", "affine_maximizer", "average", "median"],
    "regularizer": ["kl", "chi2", "tv"],
    "report_size": [True, False],
    "redraw_types": ["round", "episode"],
    "input_noise": [0.0, 0.05],
    "normalization": ["sum", "max"],
}
OF_AXES = {
    "n_labelers": [1, 3, 5],
    "mechanism": ["average", "median", "online_weighted", "hedge"],
    "outcome_model": ["bernoulli", "probability"],
}


def _grid(axes: dict, count: int, seed: int) -> list[dict]:
    """``count`` distinct combinations drawn at random (fixed seed) from the product."""
    rng = random.Random(seed)
    combos, seen = [], set()
    while len(combos) < count:
        combo = {name: rng.choice(values) for name, values in axes.items()}
        key = tuple(combo.items())
        if key not in seen:
            seen.add(key)
            combos.append(combo)
    return combos


def _rr_config(combo: dict) -> dict:
    cfg = dict(combo)
    reg = cfg.pop("regularizer")
    if cfg["mechanism"] in ("sw_max", "affine_maximizer"):
        cfg["mechanism_params"] = {"regularizer": reg, "lam": 0.5}
    else:  # one-round aggregators need sum normalisation and exact input
        cfg["normalization"] = "sum"
        cfg["input_noise"] = 0.0
    return cfg


RR_RAW = _grid(RR_AXES, 20, seed=1)
RR_CONFIGS = [_rr_config(c) for c in RR_RAW]
OF_CONFIGS = _grid(OF_AXES, 12, seed=2)
ALL = [(reward_report_v0, c) for c in RR_CONFIGS] + [(online_feedback_v0, c) for c in OF_CONFIGS]


def _id(param):
    module, cfg = param
    return module.__name__.rsplit(".", 1)[-1] + "-" + "-".join(
        f"{v}" if not isinstance(v, dict) else v["regularizer"] for v in cfg.values()
    )


def test_grid_covers_every_value():
    for axes, configs in ((RR_AXES, RR_RAW), (OF_AXES, OF_CONFIGS)):
        for name, values in axes.items():
            assert {c[name] for c in configs} == set(values), name
    # the payment-free rules force sum/no noise: the constrained axes must still vary
    assert {(c["normalization"], c["input_noise"]) for c in RR_CONFIGS} == {
        ("sum", 0.0), ("sum", 0.05), ("max", 0.0), ("max", 0.05)}


@pytest.fixture(params=ALL, ids=[_id(p) for p in ALL])
def game(request):
    return request.param


def test_parallel_api(game):
    module, cfg = game
    parallel_api_test(module.parallel_env(max_cycles=6, **cfg), num_cycles=20)


def test_aec_api(game):
    module, cfg = game
    api_test(module.env(max_cycles=6, **cfg), num_cycles=20)


def test_seed(game):
    module, cfg = game
    seed_test(functools.partial(module.env, max_cycles=6, **cfg), num_cycles=12)
    parallel_seed_test(functools.partial(module.parallel_env, max_cycles=6, **cfg), num_cycles=12)


@pytest.mark.parametrize("module", [reward_report_v0, online_feedback_v0])
def test_max_cycles(module):
    max_cycles_test(module)


class _ConfiguredModule:
    """A module look-alike whose env constructors carry a fixed configuration."""

    def __init__(self, module, cfg):
        self.parallel_env = functools.partial(module.parallel_env, **cfg)
        self.env = functools.partial(module.env, **cfg)


@pytest.mark.parametrize("module, cfg", [(reward_report_v0, RR_CONFIGS[3]), (online_feedback_v0, OF_CONFIGS[2])])
def test_max_cycles_configured(module, cfg):
    max_cycles_test(_ConfiguredModule(module, cfg))


@pytest.mark.parametrize("module, cfg", [(reward_report_v0, {"n_labelers": 3, "n_outcomes": 4}),
                                         (online_feedback_v0, {"n_labelers": 3})])
def test_render(module, cfg, capsys):
    def checks_ansi(res):
        # before the first round there is no table yet; afterwards every labeler is listed
        return isinstance(res, str) and "round" in res and (
            "no round played yet" in res or ("labeler_0" in res and "labeler_2" in res))

    def checks_rgb(res):
        return res.ndim == 3 and res.shape[2] == 3 and res.dtype == np.uint8 and res.shape[0] > 10

    render_test(functools.partial(module.env, max_cycles=3, **cfg),
                custom_tests={"ansi": checks_ansi, "rgb_array": checks_rgb})


# -- registries -------------------------------------------------------------------------

GYM_IDS = [("StrategicFeedback/RewardReport-v0", "reward_report_v0"),
           ("StrategicFeedback/OnlineFeedback-v0", "online_feedback_v0")]


@pytest.mark.parametrize("gym_id, game_name", GYM_IDS)
def test_gymnasium_make_and_checkers(gym_id, game_name):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(gym_id, max_cycles=5)
    assert isinstance(env.unwrapped, strategic_feedback_env.SingleLabelerEnv)
    assert env.unwrapped.game.metadata["name"] == game_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(gymnasium.make(gym_id, max_cycles=5).unwrapped, warn=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert np.isfinite(r) and env.observation_space.contains(obs) and "gain" in info


def test_gymnasium_make_passes_config():
    env = gymnasium.make("StrategicFeedback/RewardReport-v0", n_labelers=3, n_outcomes=4, report_size=True)
    assert env.action_space.shape == (5,)
    assert env.unwrapped.game.n == 3


@pytest.mark.parametrize("pz_id, cls", [("StrategicFeedback/reward_report-v0", reward_report_v0.RewardReportEnv),
                                        ("StrategicFeedback/online_feedback-v0", online_feedback_v0.OnlineFeedbackEnv)])
def test_pettingzoo_registry(pz_id, cls):
    par = pettingzoo.make("parallel", pz_id, n_labelers=2)
    assert isinstance(par, cls) and par.possible_agents == ["labeler_0", "labeler_1"]
    aec = pettingzoo.make("aec", pz_id, n_labelers=2)
    assert isinstance(aec, pettingzoo.AECEnv) and isinstance(aec.unwrapped, cls)
    aec.reset(seed=0)
    assert aec.agent_selection == "labeler_0"


def test_package_make():
    par = strategic_feedback_env.make("reward_report_v0", n_labelers=3, n_outcomes=2)
    assert isinstance(par, reward_report_v0.RewardReportEnv)
    assert par.n == 3 and par.K == 2
    aec = strategic_feedback_env.make("online_feedback_v0", parallel=False, n_labelers=4)
    aec.reset(seed=1)
    assert aec.possible_agents == [f"labeler_{i}" for i in range(4)]
    with pytest.raises(ValueError, match="unknown game 'nope'.*reward_report_v0.*online_feedback_v0"):
        strategic_feedback_env.make("nope")
    with pytest.raises(ValueError, match="reward_report_v0"):
        strategic_feedback_env.make("reward_report_v1")


@pytest.mark.parametrize("module", [reward_report_v0, online_feedback_v0])
def test_spaces_are_cached_and_metadata(module):
    env = module.parallel_env(n_labelers=3)
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is env.action_space(a)
    md = env.metadata
    assert md["name"] == module.__name__.rsplit(".", 1)[-1]
    assert md["is_parallelizable"] is True and "rgb_array" in md["render_modes"]
    assert hasattr(env, "render_mode")
