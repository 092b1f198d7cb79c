"""[SUN] Thm 4.12 (docs/model.md §1, claim 3): approximate DSIC under noisy input.

The mechanism sees ``clip(report + noise, 0, 1)`` with ``||noise||_inf <= eps`` for every
labeler (the same noise draw whether ``i`` is truthful or not). Under the affine maximizer
no misreport of labeler ``i`` gains more than ``2 w_i eps`` over truthful reporting
(utility always with the true type). Tolerance: ``+ 1e-9 (1 + |u|)``.

A complementary check that can fail in the other direction: the "noise-cancelling"
misreport (the one the mechanism then sees as exactly ``r_i``) never loses against truthful
reporting, since seeing ``r_i`` is optimal by DSIC at the true type.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms


def seen(x, noise):
    return np.clip(x + noise, 0.0, 1.0)


@pytest.mark.parametrize("reg", ["kl", "chi2", "tv"])
@settings(deadline=None, derandomize=True, max_examples=100)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(2, 6), n=st.integers(1, 5),
       lam=st.sampled_from([0.05, 0.3, 1.0, 3.0]), eps=st.sampled_from([1e-3, 0.01, 0.05, 0.2]),
       noise_kind=st.sampled_from(["uniform", "corner", "signed"]))
def test_noisy_misreport_gain_at_most_2_w_eps(reg, seed, K, n, lam, eps, noise_kind):
    rng = np.random.default_rng(seed)
    r = rng.uniform(0, 1, (n, K))
    w = rng.integers(1, 11, n).astype(float)
    mech = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg)

    def draw_noise(shape):
        if noise_kind == "uniform":
            return rng.uniform(-eps, eps, shape)
        if noise_kind == "corner":
            return eps * rng.choice([-1.0, 1.0], shape)
        return eps * np.sign(rng.normal(size=shape)) * rng.uniform(0.5, 1, shape)

    for i in range(n):
        M = 40
        noise = draw_noise((n, K))  # the noise on everybody's report in this round
        assert np.abs(noise).max() <= eps
        mis = np.concatenate([
            rng.uniform(0, 1, (M - 8, K)),
            np.eye(K)[rng.integers(0, K, 4)],
            np.clip(r[i] + rng.uniform(-3 * eps, 3 * eps, (3, K)), 0, 1),
            np.clip(r[i] - noise[i], 0, 1)[None],          # noise-cancelling misreport
        ])
        mis_w = np.concatenate([rng.uniform(1, 20, M - 1), [w[i]]])
        mis_w[: M // 2] = w[i]
        truthful_seen = seen(r, noise)
        out = mech.outcome(truthful_seen, w)
        u_truth = w[i] * np.dot(out.policy, r[i]) - out.payments[i]
        prof = np.repeat(truthful_seen[None], M, 0)
        prof[:, i] = seen(mis, noise[i])
        prof_w = np.repeat(w[None], M, 0)
        prof_w[:, i] = mis_w
        dev = mech.outcome(prof, prof_w)
        u_dev = w[i] * (dev.policy * r[i]).sum(-1) - dev.payments[:, i]
        gain = u_dev - u_truth
        tol = 1e-9 * (1 + abs(u_truth))
        assert gain.max() <= 2 * w[i] * eps + tol, (gain.max(), 2 * w[i] * eps)
        cancelling = gain[-1]
        if np.all(np.abs(prof[-1, i] - r[i]) < 1e-15):  # the cancellation was exact (no clipping)
            assert cancelling >= -tol


def test_bound_is_not_vacuous():
    """Noise can make misreporting profitable (so the 2 w eps slack is needed), but within it."""
    rng = np.random.default_rng(0)
    mech = mechanisms.make("affine_maximizer", lam=0.2, regularizer="kl")
    best_ratio = 0.0
    for _ in range(200):
        n, K, eps = 3, 4, 0.05
        r = rng.uniform(eps, 1 - eps, (n, K))
        w = rng.integers(1, 6, n).astype(float)
        noise = rng.uniform(-eps, eps, (n, K))
        out = mech.outcome(seen(r, noise), w)
        u_truth = w[0] * np.dot(out.policy, r[0]) - out.payments[0]
        prof = seen(r, noise)
        prof[0] = r[0]  # misreport r - noise, seen as exactly r
        dev = mech.outcome(prof, w)
        u_dev = w[0] * np.dot(dev.policy, r[0]) - dev.payments[0]
        gain = u_dev - u_truth
        assert -1e-12 <= gain <= 2 * w[0] * eps + 1e-12
        best_ratio = max(best_ratio, gain / (2 * w[0] * eps))
    assert best_ratio > 1e-3
