"""Bad input to both games raises a clear error naming the problem, and a rejected step
leaves the env exactly as if it never happened (compared with a fresh env of the same seed).

The random fuzzing of malformed actions lives in test_fuzz_public_surface.py; here each
case is named, checks the error *message*, and plays several rounds after the rejection."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import SingleLabelerEnv, online_feedback_v0, preference_report_v0, reward_report_v0

GAMES = {
    "reward_report": (reward_report_v0, {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 4}),
    "reward_report_size": (reward_report_v0, {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 4,
                                              "report_size": True, "input_noise": 0.05}),
    "online_feedback": (online_feedback_v0, {"n_labelers": 3, "max_cycles": 4}),
}


def _fixed_actions(env, t):
    """Deterministic non-truthful actions (different per round) so that the rounds matter."""
    return {a: np.linspace(0.1, 0.9, env.action_space(a).shape[0]) ** (1 + 0.3 * (i + t))
            for i, a in enumerate(env.agents)}


def _bad_actions(env, case):
    good = _fixed_actions(env, 0)
    a0 = "labeler_0"
    shape = env.action_space(a0).shape
    if case == "unknown_agent":
        return {**good, "labeler_7": good[a0]}, "unknown agent"
    if case == "typo_agent":
        return {**{k: v for k, v in good.items() if k != a0}, "Labeler_0": good[a0]}, "unknown agent"
    if case == "missing_agent":
        return {k: v for k, v in good.items() if k != "labeler_1"}, "missing action.*labeler_1"
    if case == "nan":
        return {**good, a0: np.full(shape, np.nan)}, "NaN or inf"
    if case == "inf":
        bad = good[a0].copy()
        bad[-1] = np.inf
        return {**good, a0: bad}, "NaN or inf"
    if case == "neg_inf":
        bad = good[a0].copy()
        bad[0] = -np.inf
        return {**good, a0: bad}, "NaN or inf"
    if case == "too_long":
        return {**good, a0: np.zeros(shape[0] + 1)}, "shape"
    if case == "too_short":
        return {**good, a0: np.zeros(shape[0] - 1) if shape[0] > 1 else np.zeros(0)}, "shape"
    if case == "2d":
        return {**good, a0: good[a0][None, :]}, "shape"
    if case == "scalar":
        return {**good, a0: 0.5}, "shape" if shape != () else None
    if case == "strings":
        return {**good, a0: np.array(["0.5"] * shape[0])}, "numeric"
    if case == "string":
        return {**good, a0: "0.5"}, "numeric"
    if case == "object":
        return {**good, a0: np.array([None] * shape[0])}, "numeric"
    if case == "negative":
        bad = good[a0].copy()
        bad[0] = -1e-6
        return {**good, a0: bad}, r"\[0, 1\]"
    if case == "above_one":
        bad = good[a0].copy()
        bad[-1] = 1.0 + 1e-9
        return {**good, a0: bad}, r"\[0, 1\]"
    if case == "not_a_dict":
        return list(good.values()), "dict"
    raise AssertionError(case)


CASES = ["unknown_agent", "typo_agent", "missing_agent", "nan", "inf", "neg_inf", "too_long", "too_short",
         "2d", "scalar", "strings", "string", "object", "negative", "above_one", "not_a_dict"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("game", list(GAMES))
def test_bad_action_raises_and_leaves_env_unchanged(game, case):
    module, cfg = GAMES[game]
    env, fresh = module.parallel_env(**cfg), module.parallel_env(**cfg)
    env.reset(seed=5)
    fresh.reset(seed=5)
    # play one good round first, then the bad step in round 2 (state is not the initial one)
    env.step(_fixed_actions(env, 0))
    fresh.step(_fixed_actions(fresh, 0))
    bad, pattern = _bad_actions(env, case)
    with pytest.raises(ValueError, match=pattern):
        env.step(bad)
    assert env.round == fresh.round == 1 and env.agents == fresh.agents
    for t in range(1, cfg["max_cycles"]):
        got = env.step(_fixed_actions(env, t))
        want = fresh.step(_fixed_actions(fresh, t))
        for g, w in zip(got, want):
            assert g.keys() == w.keys()
            for agent in w:
                if isinstance(w[agent], dict):
                    for key in w[agent]:
                        np.testing.assert_array_equal(g[agent][key], w[agent][key], err_msg=key)
                else:
                    np.testing.assert_array_equal(g[agent], w[agent])
    assert env.agents == [] and fresh.agents == []


@pytest.mark.parametrize("game", list(GAMES))
def test_step_before_reset_and_after_termination(game):
    module, cfg = GAMES[game]
    env = module.parallel_env(**cfg)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_fixed_actions(module.parallel_env(**cfg), 0) or {"labeler_0": np.zeros(1)})
    env.reset(seed=0)
    for t in range(cfg["max_cycles"]):
        env.step(_fixed_actions(env, t))
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step({a: np.zeros(env.action_space(a).shape) for a in env.possible_agents})
    # a second reset with the same seed replays the first episode
    env.reset(seed=0)
    fresh = module.parallel_env(**cfg)
    fresh.reset(seed=0)
    np.testing.assert_array_equal(env.step(_fixed_actions(env, 0))[1]["labeler_2"],
                                  fresh.step(_fixed_actions(fresh, 0))[1]["labeler_2"])


@pytest.mark.parametrize("game", list(GAMES))
def test_unknown_agent_in_space_lookups(game):
    module, cfg = GAMES[game]
    env = module.parallel_env(**cfg)
    for bad in ("labeler_3", "labeler_-1", "agent_0", 0, None):
        with pytest.raises(ValueError, match="unknown agent"):
            env.observation_space(bad)
        with pytest.raises(ValueError, match="unknown agent"):
            env.action_space(bad)


def test_aec_wrapper_rejects_out_of_bounds_and_order():
    env = reward_report_v0.env(n_labelers=2, n_outcomes=3, max_cycles=2)
    with pytest.raises(Exception, match="reset"):
        env.step(np.zeros(3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action of labeler_0 must lie in \[0, 1\], got min 2, max 2"):
        env.step(np.full(3, 2.0))  # the ParallelEnv's own check, as the README promises


@pytest.mark.parametrize("module, cfg, bad, match", [
    (online_feedback_v0, {"n_labelers": 2}, np.array([1.5]), r"action of labeler_0 must lie in \[0, 1\]"),
    (preference_report_v0, {"n_labelers": 2, "n_outcomes": 3}, np.full(3, -0.5), r"action of labeler_0 must lie"),
    (preference_report_v0, {"n_labelers": 2, "n_outcomes": 3, "report": "label"}, np.array([0.0, 0.5, 1.0]),
     "labels must be 0 or 1"),
])
def test_every_games_aec_env_raises_the_parallel_envs_value_error(module, cfg, bad, match):
    env = module.env(**cfg)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    assert env.agent_selection == "labeler_0"  # the rejected action changed nothing


# -- configuration -------------------------------------------------------------------------------

RR_BAD = [
    ({"n_labelers": 0}, "n_labelers must be an integer >= 1"),
    ({"n_labelers": -2}, "n_labelers"),
    ({"n_labelers": 2.5}, "n_labelers"),
    ({"n_labelers": True}, "n_labelers"),
    ({"n_outcomes": 0}, "n_outcomes"),
    ({"max_cycles": 0}, "max_cycles"),
    ({"max_size": 0}, "max_size"),
    ({"normalization": "l2"}, "normalization must be one of"),
    ({"normalization": None}, "normalization"),
    ({"mechanism": "vcg"}, "unknown mechanism 'vcg'.*affine_maximizer"),
    ({"mechanism": 3}, "mechanism must be"),
    ({"mechanism_params": {"lambda": 0.1}}, r"unknown parameter\(s\) \['lambda'\].*lam"),
    ({"mechanism_params": {"regularizer": "l1"}}, "regularizer"),
    ({"mechanism_params": {"lam": -1.0}}, "lam"),
    ({"input_noise": -0.1}, "input_noise"),
    ({"input_noise": float("nan")}, "input_noise"),
    ({"input_noise": 2.0}, "input_noise"),
    ({"sizes": [1, 2]}, "sizes must be 3 numbers"),
    ({"sizes": [1, 2, 3, 4]}, "sizes must be 3 numbers"),
    ({"sizes": [1, 2, 11]}, "sizes"),
    ({"sizes": [0, 2, 3]}, "sizes"),
    ({"sizes": [1, np.nan, 3]}, "sizes"),
    ({"redraw_types": "never"}, "redraw_types"),
    ({"reward_distribution": "normal"}, "reward_distribution"),
    ({"dirichlet_alpha": 0.0}, "dirichlet_alpha"),
    ({"reference": [0.5, 0.5]}, "reference"),
    ({"render_mode": "video"}, "render_mode"),
    ({"mechanism": "average", "normalization": "max"}, "normalization='sum'"),
    # wrong types: still a ValueError naming the argument (not a TypeError from numpy)
    ({"input_noise": "0.1"}, "input_noise"),
    ({"input_noise": None}, "input_noise"),
    ({"dirichlet_alpha": "x"}, "dirichlet_alpha"),
    ({"sizes": "abc"}, "sizes must be 3 numbers"),
    ({"sizes": [1, 2, "a"]}, "sizes must be 3 numbers"),
    ({"mechanism_params": "lam"}, "mechanism_params must be a dict"),
    ({"mechanism_params": {"lam": float("inf")}}, "lam"),
    ({"mechanism": "median", "input_noise": 0.1}, "input_noise=0"),
]


@pytest.mark.parametrize("kwargs, pattern", RR_BAD, ids=[str(k) for k, _ in RR_BAD])
def test_reward_report_bad_config(kwargs, pattern):
    cfg = {"n_labelers": 3, "n_outcomes": 4, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        reward_report_v0.parallel_env(**cfg)


OF_BAD = [
    ({"n_labelers": 0}, "n_labelers"),
    ({"mechanism": "sw_max_typo"}, "unknown mechanism"),
    ({"mechanism_params": {"horizon": 0}}, "horizon"),
    ({"mechanism_params": {"eta": 2.0}}, "eta"),
    ({"mechanism_params": {"lam": 1.0}}, r"unknown parameter\(s\) \['lam'\]"),
    ({"mechanism": "average", "mechanism_params": {"eta": 0.1}}, "unknown parameter"),
    ({"accuracies": [0.1, 0.2]}, "accuracies must be"),
    ({"accuracies": [0.1, -0.2, 0.3]}, "accuracies"),
    ({"accuracies": [0.1, np.inf, 0.3]}, "accuracies"),
    ({"biases": [0.1, 0.2]}, "biases must be"),
    ({"biases": np.nan}, "biases"),
    ({"biases": "x"}, "biases must be"),
    ({"accuracies": "x"}, "accuracies must be"),
    ({"mechanism_params": 0.1}, "mechanism_params must be a dict"),
    ({"outcome_model": "gaussian"}, "outcome_model must be one of"),
    ({"max_cycles": 0}, "max_cycles"),
    ({"render_mode": "rgb"}, "render_mode"),
]


@pytest.mark.parametrize("kwargs, pattern", OF_BAD, ids=[str(k) for k, _ in OF_BAD])
def test_online_feedback_bad_config(kwargs, pattern):
    cfg = {"n_labelers": 3, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        online_feedback_v0.parallel_env(**cfg)


def test_mechanism_object_with_params_is_rejected():
    from strategic_feedback_env import mechanisms

    with pytest.raises(ValueError, match="mechanism_params only apply"):
        reward_report_v0.parallel_env(mechanism=mechanisms.make("sw_max"), mechanism_params={"lam": 1.0})


def test_single_agent_bad_input():
    with pytest.raises(ValueError, match="unknown game"):
        SingleLabelerEnv(game="nope")
    with pytest.raises(ValueError, match="unknown agent"):
        SingleLabelerEnv(focal_agent="labeler_9", n_labelers=3)
    env = SingleLabelerEnv(n_labelers=2, n_outcomes=3, max_cycles=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.full(3, 0.3))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.2, 0.3]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4))
    env.step(np.full(3, 0.3))
    env.step(np.full(3, 0.3))
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step(np.full(3, 0.3))


# -- boundary inputs that must be accepted ---------------------------------------------------------

@pytest.mark.parametrize("normalization, expected", [("sum", 0.25), ("max", 1.0)])
def test_all_zero_and_boundary_actions_are_valid(normalization, expected):
    env = reward_report_v0.parallel_env(n_labelers=2, n_outcomes=4, max_cycles=2, normalization=normalization)
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"labeler_0": np.zeros(4), "labeler_1": np.array([0.0, 1.0, 1.0, 0.0])})
    np.testing.assert_array_equal(infos["labeler_0"]["report"], np.full(4, expected))
    want = [0, 0.5, 0.5, 0] if normalization == "sum" else [0, 1, 1, 0]
    np.testing.assert_array_equal(infos["labeler_1"]["report"], want)


@pytest.mark.parametrize("convert", [lambda a: a.astype(np.float32), list, tuple,
                                     lambda a: (a > 0.5).astype(np.int64)], ids=["float32", "list", "tuple", "int"])
def test_other_numeric_action_containers_are_accepted(convert):
    """float32 (from torch/SB3), lists, tuples and ints behave like the same float64 values."""
    cfg = {"n_labelers": 2, "n_outcomes": 3, "max_cycles": 2}
    env, twin = reward_report_v0.parallel_env(**cfg), reward_report_v0.parallel_env(**cfg)
    env.reset(seed=1)
    twin.reset(seed=1)
    raw = {"labeler_0": np.array([0.2, 0.7, 1.0]), "labeler_1": np.array([1.0, 0.3, 0.6])}
    converted = {a: convert(v) for a, v in raw.items()}
    as64 = {a: np.asarray(v, dtype=np.float64) for a, v in converted.items()}
    got, want = env.step(converted), twin.step(as64)
    for agent in want[1]:
        assert got[1][agent] == want[1][agent]
        np.testing.assert_array_equal(got[0][agent], want[0][agent])


def test_reference_policy_is_used():
    ref = np.array([0.7, 0.1, 0.1, 0.1])
    env = reward_report_v0.parallel_env(n_labelers=2, n_outcomes=4, max_cycles=2, reference=ref,
                                        mechanism_params={"lam": 2.0})
    obs, _ = env.reset(seed=0)
    layout = reward_report_v0.observation_layout(4)
    np.testing.assert_array_equal(obs["labeler_0"][layout["last_policy"]], ref)  # before round 1
    _, _, _, _, infos = env.step(env.truthful_actions())
    R = np.array([i["true_reward"] for i in infos.values()])
    W = np.array([i["true_size"] for i in infos.values()])
    a = np.log(ref) + (W[:, None] * R).sum(0) / 2.0
    theta = np.exp(a - a.max())
    np.testing.assert_allclose(infos["labeler_0"]["policy"], theta / theta.sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="reference"):
        reward_report_v0.parallel_env(n_outcomes=4, reference=[0.5, 0.5, 0.0, 0.0])
