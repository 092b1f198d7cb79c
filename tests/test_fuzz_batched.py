"""Fuzzing the batched games' ``step`` (and the SB3 views over them) with hypothesis.

Every action either works (finite outputs of the documented shapes) or raises ``ValueError``,
and a rejected step changes nothing: the next valid step equals that of a twin env built with
the same seed that never saw the bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategic_feedback_env.batched import BatchedOnlineFeedback, BatchedRewardReport
from strategic_feedback_env.mechanisms.validation import BOX_TOL

FUZZ = settings(deadline=None, derandomize=True, max_examples=40, suppress_health_check=[HealthCheck.too_slow])

CONFIGS = {
    "online": (BatchedOnlineFeedback, {"n_labelers": 3, "max_cycles": 3}),
    "online_hedge": (BatchedOnlineFeedback, {"n_labelers": 2, "max_cycles": 2, "mechanism": "hedge"}),
    "reward_report": (BatchedRewardReport, {"n_labelers": 3, "n_outcomes": 3, "max_cycles": 3}),
    "reward_report_sized": (BatchedRewardReport, {"n_labelers": 2, "n_outcomes": 2, "max_cycles": 2,
                                                  "report_size": True, "mechanism": "sw_max"}),
}
B = 3
# Aggregates can exceed 1 by one ulp (weights summing to 1 + ulp): see test_reliability_soak.
ULP_TOL = 1e-12

SPECIAL = [np.nan, np.inf, -np.inf, -1.0, -1e-300, 1.0 + 1e-9, 1e300, 2.0, 5e-324, 0.0, 1.0]


def _make(name, seed):
    cls, config = CONFIGS[name]
    env = cls(num_games=B, seed=seed, **config)
    env.reset()
    return env


@st.composite
def actions_for(draw, shape):
    """Valid, extreme and malformed actions for a batched env with action shape ``shape``."""
    kind = draw(st.sampled_from(["valid", "valid", "zeros_ones", "special", "all_special", "huge_int",
                                 "float32", "uint8", "bool", "complex", "string", "object", "none",
                                 "scalar", "missing_batch", "extra_dim", "swapped", "empty", "ragged",
                                 "nested_list"]))
    size = int(np.prod(shape))
    base = np.asarray(draw(st.lists(st.floats(0, 1), min_size=size, max_size=size)), float).reshape(shape)
    if kind == "valid":
        return base
    if kind == "zeros_ones":
        return np.round(base)  # includes all-zero reports
    if kind == "special":
        a = base.copy()
        a.flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from(SPECIAL))
        return a
    if kind == "all_special":
        return np.full(shape, draw(st.sampled_from(SPECIAL)))
    if kind == "huge_int":
        return np.full(shape, draw(st.sampled_from([np.iinfo(np.int64).max, np.iinfo(np.int64).min, -1, 2])),
                       dtype=np.int64)
    if kind == "float32":
        return base.astype(np.float32)
    if kind == "uint8":
        return np.round(base).astype(np.uint8)
    if kind == "bool":
        return base > 0.5
    if kind == "complex":
        return base.astype(complex)
    if kind == "string":
        return base.astype(str)
    if kind == "object":
        return base.astype(object)
    if kind == "none":
        return None
    if kind == "scalar":
        return draw(st.sampled_from([0.5, np.nan, "x"]))
    if kind == "missing_batch":
        return base[0]
    if kind == "extra_dim":
        return base[..., None]
    if kind == "swapped":
        return np.swapaxes(base, 0, 1) if shape[0] != shape[1] else base[:-1]
    if kind == "empty":
        return np.zeros((0, *shape[1:]))
    if kind == "ragged":
        rows = base.tolist()
        rows[0] = rows[0][:-1]
        return rows
    return base.tolist()  # nested_list: valid as a list


def _assert_step_equal(got, want):
    for g, w in zip(got[:4], want[:4]):
        np.testing.assert_array_equal(g, w)
    assert got[4].keys() == want[4].keys()
    for key in want[4]:
        np.testing.assert_array_equal(got[4][key], want[4][key], err_msg=key)


def _assert_sane(env, out):
    obs, rewards, term, trunc, infos = out
    assert obs.shape == (B, env.n, env.obs_dim) and rewards.shape == (B, env.n)
    assert term.shape == trunc.shape == (B,) and term.dtype == bool
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))
    assert obs.min() >= 0.0 and obs.max() <= 1.0 + ULP_TOL
    for key, value in infos.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), key
    for key in ("weights", "policy"):
        if key in infos:
            w = np.asarray(infos[key])
            assert w.min() >= 0.0 and np.allclose(w.sum(-1), 1.0, atol=1e-9, rtol=0), key


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(CONFIGS)), seed=st.integers(0, 2**16), warmup=st.integers(0, 3))
def test_step_works_or_raises_value_error_and_rejection_changes_nothing(data, name, seed, warmup):
    env, twin = _make(name, seed), _make(name, seed)
    for _ in range(warmup):  # also crosses the episode boundary (auto-reset)
        _assert_step_equal(env.step(env.truthful_actions()), twin.step(twin.truthful_actions()))
    action = data.draw(actions_for(env._action_shape))
    round_before = env.round
    try:
        out = env.step(action)
    except ValueError as exc:
        assert str(exc)
        assert env.round == round_before
    else:
        # accepted: it was a valid action (entries within BOX_TOL of [0, 1] allowed), and it plays
        # exactly as its float64 value clipped into the box does
        a = np.asarray(action, dtype=np.float64)
        assert a.shape == env._action_shape and np.all(np.isfinite(a))
        assert a.min() >= -BOX_TOL and a.max() <= 1 + BOX_TOL
        _assert_sane(env, out)
        _assert_step_equal(out, twin.step(np.clip(a, 0.0, 1.0)))
    truthful = env.truthful_actions()
    np.testing.assert_array_equal(truthful, twin.truthful_actions())
    after, expected = env.step(truthful), twin.step(twin.truthful_actions())
    _assert_sane(env, after)
    _assert_step_equal(after, expected)


@FUZZ
@given(name=st.sampled_from(sorted(CONFIGS)), seed=st.integers(0, 2**16), steps=st.integers(1, 8),
       mode=st.sampled_from(["random", "extreme", "zeros", "ones"]))
def test_valid_extreme_actions_keep_everything_finite(name, seed, steps, mode):
    env = _make(name, seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        shape = env._action_shape
        a = {"random": rng.random(shape), "extreme": np.round(rng.random(shape)), "zeros": np.zeros(shape),
             "ones": np.ones(shape)}[mode]
        _assert_sane(env, env.step(a))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_step_before_reset_raises(name):
    cls, config = CONFIGS[name]
    env = cls(num_games=2, seed=0, **config)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, env.n, env.act_dim)))


@FUZZ
@given(data=st.data(), game=st.sampled_from(["online_feedback_v0", "reward_report_v0"]), seed=st.integers(0, 999),
       view=st.sampled_from(["single", "sharing"]))
def test_sb3_views_reject_bad_actions_without_changing_state(data, game, seed, view):
    from strategic_feedback_env.vector import ParameterSharingVecEnv, SingleLabelerVecEnv

    def make():
        if view == "single":
            env = SingleLabelerVecEnv(game, num_envs=B, seed=seed, n_labelers=3, max_cycles=2)
        else:
            env = ParameterSharingVecEnv(game, num_envs=B, seed=seed, n_labelers=3, max_cycles=2)
        env.reset()
        return env

    env, twin = make(), make()
    shape = (env.num_envs, *env.action_space.shape)
    action = data.draw(actions_for(shape))
    try:
        env.step(action)
    except ValueError:
        accepted = False
    else:
        accepted = True
        twin.step(np.asarray(action, dtype=np.float64))
    if accepted:
        a = np.asarray(action, dtype=np.float64)
        assert a.shape == shape and np.all(np.isfinite(a)) and -BOX_TOL <= a.min() and a.max() <= 1 + BOX_TOL
    good = np.full(shape, 0.5)
    got, want = env.step(good), twin.step(good)
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(g, w)
    assert len(got[3]) == len(want[3]) == env.num_envs
    for g, w in zip(got[3], want[3]):
        assert g.keys() == w.keys()
        for key in w:
            np.testing.assert_array_equal(g[key], w[key], err_msg=key)
