"""Online aggregation rules of [HD] (docs/model.md §2).

* Weighted-Score Update: ``pi_{i,t+1} = pi_{i,t} (1 - eta l_i + eta sum_j pi_j l_j)`` with
  quadratic loss ``l_i = 1/2 ||x_i - y||^2`` (= ``(p_i - y)^2`` for K = 2), renormalised;
  re-implemented here with plain Python loops.
* Weights stay on the simplex over 1e5 rounds (adversarial random reports and outcomes).
* Regret against the best labeler (truthful signals of different accuracy): log-log slope
  about 1 for ``average`` and about 1/2 for ``online_weighted``.
* Hedge: ``pi_i exp(-eta l_i) / normaliser``; median with K = 2 equals ``np.median(p)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms


def wsu_reference(weights, losses, eta):
    """Weighted-Score Update for one game, loop by loop (docs/model.md §2)."""
    n = len(weights)
    mean = sum(weights[j] * losses[j] for j in range(n))
    new = [weights[i] * (1 - eta * losses[i] + eta * mean) for i in range(n)]
    total = sum(new)
    return [x / total for x in new]


def hedge_reference(weights, losses, eta):
    new = [weights[i] * math.exp(-eta * losses[i]) for i in range(len(weights))]
    total = sum(new)
    return [x / total for x in new]


def brier_reference(report, y):
    """For K = 2 with report (p, 1-p) and y (q, 1-q): 1/2 ((p-q)^2 + (q-p)^2) = (p - q)^2."""
    return 0.5 * sum((a - b) ** 2 for a, b in zip(report, y))


@settings(deadline=None, derandomize=True, max_examples=100)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), eta=st.floats(0, 1))
def test_weighted_score_update_matches_reference(seed, n, eta):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(n))
    losses = rng.uniform(0, 1, n)
    got = mechanisms.weighted_score_update(w, losses, eta)
    np.testing.assert_allclose(got, wsu_reference(list(w), list(losses), eta), rtol=1e-12, atol=1e-15)
    got_h = mechanisms.hedge_update(w, losses, eta)
    np.testing.assert_allclose(got_h, hedge_reference(list(w), list(losses), eta), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,ref_update", [("online_weighted", wsu_reference), ("hedge", hedge_reference)])
@settings(deadline=None, derandomize=True, max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), K=st.integers(2, 4),
       horizon=st.sampled_from([10, 100, 1000]), eta=st.sampled_from([None, 0.05, 0.5, 1.0]))
def test_mechanism_rounds_match_reference(name, ref_update, seed, n, K, horizon, eta):
    rng = np.random.default_rng(seed)
    mech = mechanisms.make(name, eta=eta, horizon=horizon)
    step = math.sqrt(math.log(n) / horizon) if eta is None else eta
    step = min(step, 1.0)
    w = [1.0 / n] * n
    for _ in range(20):
        x = rng.dirichlet(np.ones(K), n)
        y = np.eye(K)[rng.integers(K)] if rng.random() < 0.5 else rng.dirichlet(np.ones(K))
        out = mech.outcome(x)
        np.testing.assert_allclose(out.weights, w, rtol=1e-12)
        np.testing.assert_allclose(out.policy, [sum(w[i] * x[i, k] for i in range(n)) for k in range(K)], atol=1e-14)
        losses = mech.update(x, y)
        ref_losses = [brier_reference(x[i], y) for i in range(n)]
        np.testing.assert_allclose(losses, ref_losses, atol=1e-14)
        w = ref_update(w, ref_losses, step)
        np.testing.assert_allclose(mech.weights, w, rtol=1e-10, atol=1e-15)


def test_k2_loss_is_squared_difference():
    p = np.array([0.1, 0.6, 0.95])
    x = np.stack([p, 1 - p], -1)
    for q in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(mechanisms.quadratic_loss(x, np.array([q, 1 - q])), (p - q) ** 2, atol=1e-15)


@pytest.mark.parametrize("name,T", [("online_weighted", 100_000), ("hedge", 20_000)])
def test_weights_stay_on_simplex_over_many_rounds(name, T):
    rng = np.random.default_rng(0)
    B, n = 4, 5
    mech = mechanisms.make(name, eta=1.0 if name == "online_weighted" else 0.5)
    mech.reset(n, (B,))
    chunk = 10_000
    min_w = 1.0
    for c in range(T // chunk):
        # mostly extreme reports (the largest possible losses), some uniform ones
        p = np.where(rng.random((chunk, B, n)) < 0.7, rng.choice([0.0, 1.0, 0.5], (chunk, B, n)),
                     rng.random((chunk, B, n)))
        y = (rng.random((chunk, B)) < 0.5).astype(float)
        X = np.stack([p, 1 - p], -1)
        Y = np.stack([y, 1 - y], -1)
        for t in range(chunk):
            mech.update(X[t], Y[t])
        wts = mech.weights
        assert wts.shape == (B, n)
        assert np.all(np.isfinite(wts)) and np.all(wts >= 0)
        assert np.abs(wts.sum(-1) - 1).max() <= 1e-9
        min_w = min(min_w, wts.min())


def play(name, T, games, sigmas, seed):
    """Truthful labelers with noise sigma_i; y_t = q_t; returns mean regret over games."""
    rng = np.random.default_rng(seed)
    n = len(sigmas)
    mech = mechanisms.make(name, horizon=T) if name in ("online_weighted", "hedge") else mechanisms.make(name)
    mech.reset(n, (games,))
    agg_loss = np.zeros(games)
    lab_loss = np.zeros((games, n))
    for _ in range(T):
        q = rng.random(games)
        s = np.clip(q[:, None] + np.asarray(sigmas) * rng.normal(size=(games, n)), 0, 1)
        X = np.stack([s, 1 - s], -1)
        Y = np.stack([q, 1 - q], -1)
        xbar = mech.outcome(X).policy[:, 0]
        agg_loss += (xbar - q) ** 2
        lab_loss += (s - q[:, None]) ** 2
        mech.update(X, Y)
    return float(np.mean(agg_loss - lab_loss.min(-1)))


def test_regret_slopes():
    """log-log slope of mean regret over T in (500, 2000, 8000), 16 games each."""
    sigmas = [0.05, 0.3, 0.5]
    horizons = [500, 2000, 8000]
    slopes = {}
    for name in ("average", "online_weighted"):
        regrets = [play(name, T, games=16, sigmas=sigmas, seed=T) for T in horizons]
        assert all(x > 0 for x in regrets), (name, regrets)
        slopes[name] = np.polyfit(np.log(horizons), np.log(regrets), 1)[0]
    assert 0.85 <= slopes["average"] <= 1.15, slopes
    assert 0.3 <= slopes["online_weighted"] <= 0.7, slopes


@settings(deadline=None, derandomize=True, max_examples=50)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 7), batch=st.sampled_from([(), (4,)]))
def test_median_k2_equals_numpy_median(seed, n, batch):
    rng = np.random.default_rng(seed)
    p = rng.random((*batch, n))
    if rng.random() < 0.3:
        p = np.round(p, 1)  # ties
    out = mechanisms.make("median").outcome(np.stack([p, 1 - p], -1))
    med = np.array([sorted(row)[n // 2] if n % 2 else 0.5 * (sorted(row)[n // 2 - 1] + sorted(row)[n // 2])
                    for row in p.reshape(-1, n)]).reshape(batch)
    np.testing.assert_allclose(out.policy[..., 0], med, atol=1e-14)
    np.testing.assert_allclose(out.policy[..., 0], np.median(p, -1), atol=1e-14)
    np.testing.assert_allclose(out.policy.sum(-1), 1, atol=1e-14)


def test_average_is_mean_and_weights_uniform():
    rng = np.random.default_rng(2)
    x = rng.dirichlet(np.ones(3), (5, 4))
    mech = mechanisms.make("average")
    mech.update(x, np.eye(3)[rng.integers(0, 3, 5)])
    out = mech.outcome(x)
    np.testing.assert_allclose(out.policy, x.mean(-2), atol=1e-15)
    np.testing.assert_allclose(out.weights, 0.25)


def test_outcome_does_not_change_weights_and_default_eta():
    mech = mechanisms.make("online_weighted", horizon=400)
    x = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    mech.update(x, np.array([1.0, 0.0]))
    w = mech.weights.copy()
    for _ in range(3):
        mech.outcome(np.random.default_rng(0).dirichlet(np.ones(2), 3))
    np.testing.assert_array_equal(mech.weights, w)
    eta = math.sqrt(math.log(3) / 400)
    np.testing.assert_allclose(w, wsu_reference([1 / 3] * 3, [0.01, 0.64, 0.25], eta), rtol=1e-12)
