"""Fuzzing the public surface with hypothesis: every input either works correctly or raises
a documented error (ValueError; RuntimeError for stepping a finished episode), and no
rejected input leaves a mechanism or an environment in a broken state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms
from strategic_feedback_env import online_feedback_v0, reward_report_v0

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

special = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 1e300, -1e-12, 1.0 + 1e-9, 0.0, 1.0, 0.5])


@st.composite
def maybe_bad_array(draw, shape):
    arr = draw(st.lists(st.floats(0, 1), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    arr = np.asarray(arr, dtype=np.float64).reshape(shape)
    if draw(st.booleans()) and arr.size:
        idx = draw(st.integers(0, arr.size - 1))
        arr.flat[idx] = draw(special)
    return arr


@FUZZ
@given(data=st.data(), name=st.sampled_from(mechanisms.available()),
       n=st.integers(1, 4), K=st.integers(1, 5), batch=st.sampled_from([(), (2,), (2, 3)]))
def test_mechanism_outcome_works_or_raises_value_error(data, name, n, K, batch):
    mech = mechanisms.make(name)
    reports = data.draw(maybe_bad_array((*batch, n, K)))
    if mech.online and data.draw(st.booleans()):
        reports = reports / np.where(reports.sum(-1, keepdims=True) > 0, reports.sum(-1, keepdims=True), 1)
    sizes = data.draw(st.one_of(st.none(), maybe_bad_array((*batch, n)).map(lambda a: 1 + 9 * a)))
    try:
        out = mech.outcome(reports, sizes)
    except ValueError as exc:
        assert str(exc)
        return
    assert np.all(np.isfinite(out.policy)) and np.all(np.isfinite(out.payments))
    assert out.policy.shape == (*batch, K) and out.payments.shape == (*batch, n)
    assert np.all(out.policy >= -1e-12)
    np.testing.assert_allclose(out.policy.sum(-1), 1.0, atol=1e-9)


@FUZZ
@given(shape=st.sampled_from([(3,), (0, 3), (3, 0), (2, 3, 4, 0)]), name=st.sampled_from(mechanisms.available()))
def test_degenerate_shapes_are_rejected_by_name(shape, name):
    with pytest.raises(ValueError, match="shape|labeler|outcome"):
        mechanisms.make(name).outcome(np.zeros(shape))


@FUZZ
@given(lam=st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e6]), size=st.sampled_from([1.0, 1e3, 1e6]),
       reg=st.sampled_from(["kl", "chi2", "tv"]), seed=st.integers(0, 2**16))
def test_extreme_parameters_stay_finite_and_on_the_simplex(lam, size, reg, seed):
    rng = np.random.default_rng(seed)
    r = rng.random((3, 4))
    r /= r.sum(-1, keepdims=True)
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg).outcome(r, np.full(3, size))
    assert np.all(np.isfinite(out.policy)) and np.all(np.isfinite(out.payments))
    np.testing.assert_allclose(out.policy.sum(), 1.0, atol=1e-9)
    scale = size * (1 + lam)
    assert np.all(out.payments >= -1e-9 * scale)


def _bad_action(draw, good):
    kind = draw(st.sampled_from(["nan", "inf", "neg", "big", "shape", "dtype", "none", "list_short"]))
    a = np.array(good, dtype=np.float64)
    if kind == "nan":
        a[0] = np.nan
    elif kind == "inf":
        a[-1] = np.inf
    elif kind == "neg":
        a[0] = -0.1
    elif kind == "big":
        a[0] = 1e9
    elif kind == "shape":
        a = np.concatenate([a, a])
    elif kind == "dtype":
        return np.array(["a"] * a.size)
    elif kind == "none":
        return None
    else:
        return list(a[:-1]) if a.size > 1 else []
    return a


@FUZZ
@given(data=st.data(), module=st.sampled_from([reward_report_v0, online_feedback_v0]), seed=st.integers(0, 1000))
def test_env_rejects_malformed_actions_without_changing_state(data, module, seed):
    env, twin = module.parallel_env(max_cycles=3), module.parallel_env(max_cycles=3)
    obs, _ = env.reset(seed=seed)
    twin.reset(seed=seed)
    good = env.truthful_actions()
    victim = data.draw(st.sampled_from(env.agents))
    mutation = data.draw(st.sampled_from(["bad_action", "missing", "extra", "not_dict"]))
    if mutation == "bad_action":
        actions = {**good, victim: _bad_action(data.draw, good[victim])}
    elif mutation == "missing":
        actions = {a: v for a, v in good.items() if a != victim}
    elif mutation == "extra":
        actions = {**good, "labeler_99": good[victim]}
    else:
        actions = list(good.values())
    with pytest.raises(ValueError):
        env.step(actions)
    assert env.round == 0 and env.agents == twin.agents
    after = env.step(good)
    expected = twin.step(twin.truthful_actions())
    for got, want in zip(after[:2], expected[:2]):
        for agent in want:
            np.testing.assert_array_equal(got[agent], want[agent])


@pytest.mark.parametrize("module", [reward_report_v0, online_feedback_v0])
def test_step_after_the_episode_ended_raises_and_reset_recovers(module):
    env = module.parallel_env(max_cycles=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset(seed=0)
    while env.agents:
        env.step(env.truthful_actions())
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step({"labeler_0": np.zeros(env.action_space("labeler_0").shape)})
    env.reset(seed=0)
    assert env.step(env.truthful_actions())[0]


def _cases():
    one_hot = np.eye(4)[[0, 2, 2]]
    equal = np.full((3, 4), 0.25)
    return {"K=1": np.ones((3, 1)), "n=1": np.array([[0.1, 0.2, 0.7]]), "all-equal": equal, "one-hot": one_hot}


@pytest.mark.parametrize("case", ["K=1", "n=1", "all-equal", "one-hot"])
@pytest.mark.parametrize("reg", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("lam", [1e-6, 1.0, 1e6])
def test_degenerate_instances_are_exact(case, reg, lam):
    """K=1, n=1, all-equal and one-hot reports: the policy is the known optimum and the
    affine maximizer's truthful utility is >= 0 with payments >= 0."""
    r = _cases()[case]
    n, K = r.shape
    w = np.arange(1, n + 1, dtype=float)
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg).outcome(r, w)
    assert np.all(np.isfinite(out.policy)) and np.all(np.isfinite(out.payments))
    np.testing.assert_allclose(out.policy.sum(), 1.0, atol=1e-12)
    if case in ("K=1", "all-equal"):
        # Every outcome scores the same: the regularised optimum is the reference (uniform).
        np.testing.assert_allclose(out.policy, np.full(K, 1.0 / K), atol=1e-12)
        np.testing.assert_allclose(out.payments, 0.0, atol=1e-9 * (1 + lam))
    if case == "n=1":
        # Alone, ASW_-i is just -lam D, so the payment is the regularisation cost lam D(theta*, ref).
        theta, ref = out.policy, np.full(K, 1.0 / K)
        divergence = {
            "kl": np.sum(theta * np.log(np.where(theta > 0, theta / ref, 1.0))),
            "chi2": np.sum(theta**2 / ref) - 1.0,
            "tv": 0.5 * np.abs(theta - ref).sum(),
        }[reg]
        np.testing.assert_allclose(out.payments, lam * divergence, rtol=1e-6, atol=1e-9 * (1 + lam))
    u = mechanisms.utility(out.policy, out.payments, r, w)
    assert np.all(u >= -1e-9 * (1 + lam) * w.sum()) and np.all(out.payments >= -1e-9 * (1 + lam) * w.sum())


@pytest.mark.parametrize("n, K", [(1, 1), (1, 4), (3, 1)])
def test_env_runs_with_a_single_labeler_or_outcome(n, K):
    env = reward_report_v0.parallel_env(n_labelers=n, n_outcomes=K, max_cycles=3)
    env.reset(seed=0)
    while env.agents:
        _, rewards, _, _, infos = env.step(env.truthful_actions())
        for agent in rewards:
            assert np.isfinite(rewards[agent]) and abs(infos[agent]["gain"]) <= 1e-12
