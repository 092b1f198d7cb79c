"""Numerical stability of SW-Max / affine maximizer for tiny lam and huge sizes.

lam down to 1e-6 and sizes up to 1e6 (so S / lam up to ~1e13): policies must be finite and on
the simplex and agree with independent computations:

* kl:   scipy.special.softmax(log ref + S / lam) and the lam -> 0 limit (one-hot on argmax S,
        split in proportion to ref on exact ties); value lam * logsumexp(S / lam, b=ref);
        payment = lam * KL(theta* || theta_{-i}) (a form that is >= 0 by construction).
* chi2: the KKT threshold nu found by scipy.optimize.brentq on the rescaled problem
        (S - max S) / lam (the argmax is shift- and scale-equivariant).
* tv:   scipy.optimize.linprog on the rescaled problem (objective values compared).

Payments are mathematically >= 0 but are computed as V(S - w_i r_i) - V(S) + w_i <theta, r_i>,
a difference of numbers of size |S|; we allow rounding of a few ulps of max |S|
(``8 * 2.2e-16 * max|S|``), and report that as the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, linprog
from scipy.special import logsumexp, softmax

from strategic_feedback_env import mechanisms

LAMS = [1e-2, 1e-4, 1e-6]
SIZES = [1.0, 1e2, 1e4, 1e6]
ULP = np.finfo(float).eps


def make_instance(seed, n, K, wmax, ties=False):
    rng = np.random.default_rng(seed)
    r = rng.uniform(0, 1, (n, K))
    w = rng.uniform(1, wmax, n)
    if ties:
        r[:, 1] = r[:, 0]  # outcomes 0 and 1 have exactly the same score
        r[:, 0] = np.maximum(r[:, 0], r.max(-1))
        r[:, 1] = r[:, 0]
    ref = rng.dirichlet(np.full(K, 2.0))
    return r, w, ref


def chi2_reference(S, lam, ref):
    z = (S - S.max()) / lam  # rescaled scores; the optimum is theta = ref * max(0, z - nu) / 2

    def mass(nu):
        return float(np.sum(ref * np.maximum(0.0, z - nu)) / 2.0 - 1.0)

    nu = brentq(mass, z.min() - 2.0 / ref.min() - 2.0, z.max(), xtol=1e-14, rtol=1e-15)
    th = ref * np.maximum(0.0, z - nu) / 2.0
    return th / th.sum()


def tv_lp_value(z, ref):
    K = z.size
    eye = np.eye(K)
    res = linprog(np.concatenate([-z, np.full(K, 0.5)]),
                  A_ub=np.block([[eye, -eye], [-eye, -eye]]), b_ub=np.concatenate([ref, -ref]),
                  A_eq=np.concatenate([np.ones(K), np.zeros(K)])[None], b_eq=[1.0],
                  bounds=[(0, None)] * (2 * K), method="highs")
    assert res.status == 0
    return -res.fun


def _common_checks(out, r, w):
    S = (w[:, None] * r).sum(0)
    p = np.asarray(out.policy)
    assert np.all(np.isfinite(p)) and np.all(p >= 0) and abs(p.sum() - 1) <= 1e-12
    assert np.all(np.isfinite(out.payments)) and np.isfinite(out.value)
    assert np.all(out.payments >= -8 * ULP * np.abs(S).max()), (out.payments, np.abs(S).max())
    u = w * (r @ p) - out.payments
    assert np.all(u >= -8 * ULP * np.abs(S).max())
    return S, p


def extreme_instances(test):
    """Hypothesis over small instances with extreme ``lam`` and sizes, with or without ties."""
    return settings(deadline=None, derandomize=True, max_examples=60)(given(
        seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4), K=st.integers(2, 6),
        lam=st.sampled_from(LAMS), wmax=st.sampled_from(SIZES), ties=st.booleans())(test))


@extreme_instances
def test_kl_extreme(seed, n, K, lam, wmax, ties):
    r, w, ref = make_instance(seed, n, K, wmax, ties)
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer="kl", reference=ref).outcome(r, w)
    S, p = _common_checks(out, r, w)
    expected = softmax(np.log(ref) + (S - S.max()) / lam)
    np.testing.assert_allclose(p, expected, atol=1e-12)
    np.testing.assert_allclose(out.value, S.max() + lam * logsumexp((S - S.max()) / lam, b=ref),
                               rtol=1e-14, atol=4 * ULP * np.abs(S).max())
    gap = np.sort(S)[-1] - np.sort(S)[-2]
    if ties:
        # limit: the tied top outcomes share the mass in proportion to ref
        top = S >= S.max() - 0.0
        if np.sort(S[~top])[-1:].size == 0 or S.max() - S[~top].max() > 50 * lam:
            np.testing.assert_allclose(p, np.where(top, ref, 0) / ref[top].sum(), atol=1e-12)
    elif gap > 50 * lam:
        np.testing.assert_allclose(p, np.eye(K)[np.argmax(S)], atol=1e-15 + np.exp(-gap / lam) / ref.min())
    # payments: p_i = lam KL(theta* || theta_{-i}) computed in a non-negative form
    for i in range(n):
        S_i = S - w[i] * r[i]
        log_th_i = np.log(ref) + (S_i - S_i.max()) / lam
        log_th_i = log_th_i - logsumexp(log_th_i)
        log_th = np.log(ref) + (S - S.max()) / lam
        log_th = log_th - logsumexp(log_th)
        kl = float(np.sum(np.where(p > 0, p * (log_th - log_th_i), 0.0)))
        assert abs(out.payments[i] - lam * kl) <= 1e-9 * lam * kl + 16 * ULP * np.abs(S).max()


@extreme_instances
def test_chi2_extreme(seed, n, K, lam, wmax, ties):
    r, w, ref = make_instance(seed, n, K, wmax, ties)
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer="chi2", reference=ref).outcome(r, w)
    S, p = _common_checks(out, r, w)
    np.testing.assert_allclose(p, chi2_reference(S, lam, ref), atol=1e-8)


@extreme_instances
def test_tv_extreme(seed, n, K, lam, wmax, ties):
    r, w, ref = make_instance(seed, n, K, wmax, ties)
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer="tv", reference=ref).outcome(r, w)
    S, p = _common_checks(out, r, w)
    z = (S - S.max()) / lam
    code_value = float(np.dot(p, z) - 0.5 * np.abs(p - ref).sum())
    assert abs(code_value - tv_lp_value(z, ref)) <= 1e-7 * (1 + abs(code_value))


@pytest.mark.parametrize("reg", ["kl", "chi2", "tv"])
def test_batched_extremes_no_warnings(reg):
    rng = np.random.default_rng(1)
    r = rng.uniform(0, 1, (50, 3, 5))
    w = rng.uniform(1, 1e6, (50, 3))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        out = mechanisms.make("affine_maximizer", lam=1e-6, regularizer=reg).outcome(r, w)
    assert np.all(np.isfinite(out.policy)) and np.all(np.isfinite(out.payments))
    np.testing.assert_allclose(out.policy.sum(-1), 1, atol=1e-12)
    S = (w[..., None] * r).sum(-2)
    # lam -> 0 limit: all mass on the argmax of S (gaps are >> lam here)
    np.testing.assert_allclose(out.policy, np.eye(5)[S.argmax(-1)], atol=1e-9)
