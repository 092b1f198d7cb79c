"""SW-Max training rule against an independent numerical optimiser (docs/model.md §1).

For each regulariser the policy returned by ``sw_max`` must solve

    max_{theta in simplex} <theta, S> - lam * D(theta || ref),   S = sum_i w_i r_i,

where (independently of ``mechanisms.regularizers``)

* kl:   D = sum_x theta(x) log(theta(x) / ref(x))
* chi2: D = sum_x (theta(x) - ref(x))^2 / ref(x)   (= sum_x ref (theta/ref - 1)^2)
* tv:   D = 1/2 sum_x |theta(x) - ref(x)|

The reference solutions come from ``scipy.optimize.minimize`` (SLSQP over the simplex) for
kl and chi2 and from ``scipy.optimize.linprog`` (HiGHS, split variables) for tv.

Tolerances:
* kl / chi2: policy within 1e-4 (sup norm) of SLSQP's; value within 1e-7 (relative to
  1 + |value|) of the objective at SLSQP's point and never below it by more than that.
* tv: the LP optimum may be non-unique, so we compare objective VALUES within 1e-8
  (relative to 1 + |value|), and check the returned policy is feasible and attains it.
* always: ``outcome.value`` equals the objective evaluated (here) at ``outcome.policy``
  within 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, minimize
from scipy.special import xlogy

from strategic_feedback_env import mechanisms

SETTINGS = settings(deadline=None, derandomize=True, max_examples=100)


def divergence(reg, theta, ref):
    theta = np.asarray(theta, float)
    if reg == "kl":
        return float(np.sum(xlogy(theta, theta) - xlogy(theta, ref)))
    if reg == "chi2":
        return float(np.sum((theta - ref) ** 2 / ref))
    if reg == "tv":
        return float(0.5 * np.sum(np.abs(theta - ref)))
    raise AssertionError(reg)


def objective(reg, theta, S, lam, ref):
    return float(np.dot(theta, S) - lam * divergence(reg, theta, ref))


def scipy_slsqp(reg, S, lam, ref):
    """Maximise the (smooth) objective over the simplex with SLSQP from several starts."""
    K = S.size
    lo = 1e-300 if reg == "kl" else 0.0

    def f(t):
        t = np.maximum(t, 0.0)
        return -objective(reg, t, S, lam, ref)

    def grad(t):
        t = np.maximum(t, lo)
        if reg == "kl":
            return -(S - lam * (np.log(t) - np.log(ref) + 1.0))
        return -(S - lam * 2.0 * (t - ref) / ref)

    best = None
    starts = [ref, np.full(K, 1.0 / K), np.eye(K)[np.argmax(S)] * 0.9 + 0.1 / K]
    for x0 in starts:
        res = minimize(
            f, x0, jac=grad, method="SLSQP", bounds=[(lo, 1.0)] * K,
            constraints=[{"type": "eq", "fun": lambda t: np.sum(t) - 1.0, "jac": lambda t: np.ones(K)}],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        t = np.clip(res.x, 0.0, None)
        t = t / t.sum()
        if best is None or f(t) < f(best):
            best = t
    return best


def scipy_tv_lp(S, lam, ref):
    """max <theta,S> - lam/2 sum u  s.t. u >= theta - ref, u >= ref - theta, theta in simplex."""
    K = S.size
    c = np.concatenate([-S, np.full(K, 0.5 * lam)])
    eye = np.eye(K)
    A_ub = np.block([[eye, -eye], [-eye, -eye]])
    b_ub = np.concatenate([ref, -ref])
    A_eq = np.concatenate([np.ones(K), np.zeros(K)])[None]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=[(0, None)] * (2 * K),
                  method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                           "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0, res.message
    return res.x[:K], -res.fun


@st.composite
def instances(draw):
    K = draw(st.integers(2, 6))
    n = draw(st.integers(1, 4))
    lam = draw(st.sampled_from([0.2, 0.5, 1.0, 3.0, 10.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    ref_kind = draw(st.sampled_from(["uniform", "random", "skewed"]))
    rng = np.random.default_rng(seed)
    r = rng.uniform(0, 1, (n, K))
    w = rng.integers(1, 6, n).astype(float)
    if draw(st.integers(0, 3)) == 0:
        # exact ties in S (duplicated outcome), which sorting/thresholding must handle
        r[:, 1] = r[:, 0]
    if ref_kind == "uniform":
        ref = np.full(K, 1.0 / K)
    elif ref_kind == "random":
        ref = rng.dirichlet(np.ones(K))
        ref = np.maximum(ref, 1e-3)
        ref /= ref.sum()
    else:
        ref = rng.dirichlet(np.full(K, 0.3)) + 0.02
        ref /= ref.sum()
    return r, w, lam, ref


def _solve(reg, r, w, lam, ref, pass_reference_to="constructor"):
    if pass_reference_to == "constructor":
        mech = mechanisms.make("sw_max", lam=lam, regularizer=reg, reference=ref)
        return mech.outcome(r, w)
    mech = mechanisms.make("sw_max", lam=lam, regularizer=reg)
    return mech.outcome(r, w, reference=ref)


@pytest.mark.parametrize("reg", ["kl", "chi2"])
@SETTINGS
@given(inst=instances(), where=st.sampled_from(["constructor", "call"]))
def test_smooth_regularisers_match_slsqp(reg, inst, where):
    r, w, lam, ref = inst
    S = (w[:, None] * r).sum(0)
    out = _solve(reg, r, w, lam, ref, where)
    policy = np.asarray(out.policy)
    assert policy.shape == (r.shape[1],)
    assert np.all(policy >= 0) and abs(policy.sum() - 1) < 1e-12
    theta = scipy_slsqp(reg, S, lam, ref)
    v_ref = objective(reg, theta, S, lam, ref)
    v_code = objective(reg, policy, S, lam, ref)
    tol = 1e-7 * (1 + abs(v_ref))
    # the code's policy is never worse than the optimiser's, and they coincide
    assert v_code >= v_ref - tol
    np.testing.assert_allclose(policy, theta, atol=1e-4, rtol=0)
    # outcome.value is the objective at the returned policy (and so the optimum)
    assert abs(float(out.value) - v_code) <= 1e-10 * (1 + abs(v_code))
    assert abs(float(out.value) - v_ref) <= tol


@SETTINGS
@given(inst=instances(), where=st.sampled_from(["constructor", "call"]))
def test_tv_matches_linear_programme(inst, where):
    r, w, lam, ref = inst
    S = (w[:, None] * r).sum(0)
    out = _solve("tv", r, w, lam, ref, where)
    policy = np.asarray(out.policy)
    assert np.all(policy >= 0) and abs(policy.sum() - 1) < 1e-12
    _, v_lp = scipy_tv_lp(S, lam, ref)
    v_code = objective("tv", policy, S, lam, ref)
    assert abs(v_code - v_lp) <= 1e-8 * (1 + abs(v_lp))
    assert abs(float(out.value) - v_lp) <= 1e-8 * (1 + abs(v_lp))
    assert abs(float(out.value) - v_code) <= 1e-10 * (1 + abs(v_code))


@pytest.mark.parametrize("reg", ["kl", "chi2", "tv"])
@settings(deadline=None, derandomize=True, max_examples=15)
@given(inst=instances())
def test_affine_maximizer_uses_the_same_training_rule(reg, inst):
    """The payment rule must not change the policy, and its value is the same optimum."""
    r, w, lam, ref = inst
    a = mechanisms.make("sw_max", lam=lam, regularizer=reg, reference=ref).outcome(r, w)
    b = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg, reference=ref).outcome(r, w)
    np.testing.assert_allclose(a.policy, b.policy, atol=1e-13)
    np.testing.assert_allclose(a.value, b.value, rtol=1e-13)
    assert np.all(np.asarray(a.payments) == 0)


@pytest.mark.parametrize("reg", ["kl", "chi2", "tv"])
def test_batched_outcome_equals_per_instance(reg):
    rng = np.random.default_rng(7)
    r = rng.uniform(0, 1, (3, 4, 2, 5))
    w = rng.integers(1, 9, (3, 4, 2)).astype(float)
    mech = mechanisms.make("affine_maximizer", lam=0.7, regularizer=reg)
    out = mech.outcome(r, w)
    assert out.policy.shape == (3, 4, 5) and out.payments.shape == (3, 4, 2) and out.value.shape == (3, 4)
    for a in range(3):
        for b in range(4):
            one = mech.outcome(r[a, b], w[a, b])
            np.testing.assert_allclose(out.policy[a, b], one.policy, atol=1e-14)
            np.testing.assert_allclose(out.payments[a, b], one.payments, atol=1e-12)


def test_kl_closed_form_on_hand_instance():
    """K=2, uniform ref: theta_1 = sigmoid((S_1 - S_2) / lam); value = lam log((e^{S1/lam}+e^{S2/lam})/2)."""
    r = np.array([[1.0, 0.0], [0.25, 0.75]])
    w = np.array([2.0, 1.0])
    lam = 0.5
    S1, S2 = 2.25, 0.75
    out = mechanisms.make("sw_max", lam=lam).outcome(r, w)
    expected = 1.0 / (1.0 + np.exp(-(S1 - S2) / lam))
    np.testing.assert_allclose(out.policy, [expected, 1 - expected], atol=1e-14)
    np.testing.assert_allclose(out.value, lam * np.log((np.exp(S1 / lam) + np.exp(S2 / lam)) / 2), rtol=1e-14)
