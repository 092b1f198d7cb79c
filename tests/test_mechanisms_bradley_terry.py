"""The Bradley-Terry fit against scipy's optimiser, its torch twin's gradient against finite
differences, and the median_of_mles rule (docs/model.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms.bradley_terry import bt_fit, torch_bt_fit
from strategic_feedback_env.mechanisms.median_of_mles import median_core
from strategic_feedback_env.mechanisms._ops import TorchOps


def _all_pairs(K):
    return np.array([(a, b) for a in range(K) for b in range(a + 1, K)])


def _scipy_mle(pairs, p, K, temperature, counts, ridge, clip):
    """Minimise the negative BT log-likelihood with BFGS (written out independently), then solve
    its first-order condition with MINPACK's hybrid Powell method from there: where the likelihood
    is flat (near-separable labels: logit gaps near log(1/clip), curvature ~ clip) BFGS's line
    search stops at "precision loss" up to ~1e-3 away in scores, as the likelihood no longer
    changes in float64; the root finder needs only the gradient. It solves ``grad + mean(s) = 0``:
    the likelihood's gradient sums to 0, so a root has ``(ridge + 1) sum(s) = 0``, i.e. it is the
    mean-0 optimum, and the Jacobian ``hess + 1/K`` is invertible on a connected comparison graph.
    A conflicting cycle of such labels leaves the Hessian an eigenvalue ~clip^2, so the gradient
    is formed without cancellation near 1 (else its 1e-16 rounding moves the optimum by ~1e-5)."""
    q = np.clip(p, clip, 1 - clip)

    def nll(s):
        d = s[pairs[:, 0]] - s[pairs[:, 1]]
        return np.sum(counts * (q * np.logaddexp(0, -d) + (1 - q) * np.logaddexp(0, d))) + 0.5 * ridge * s @ s

    def grad(s):
        d = s[pairs[:, 0]] - s[pairs[:, 1]]
        # sigma(d) - q, as (1 - q) - sigma(-d) for d > 0: no cancellation near 1
        resid = counts * np.where(d > 0, (1 - q) - scipy.special.expit(-d), scipy.special.expit(d) - q)
        g = np.zeros(K)
        np.add.at(g, pairs[:, 0], resid)
        np.add.at(g, pairs[:, 1], -resid)
        return g + ridge * s

    def hess(s):
        d = s[pairs[:, 0]] - s[pairs[:, 1]]
        h = np.zeros((K, K))
        for (a, b), c in zip(pairs, counts / (2 + 2 * np.cosh(d))):  # c sigma(d) sigma(-d)
            h[[a, b], [a, b]] += c
            h[[a, b], [b, a]] -= c
        return h + ridge * np.eye(K)

    res = scipy.optimize.minimize(nll, np.zeros(K), jac=grad, method="BFGS", options={"gtol": 1e-11, "maxiter": 5000})
    root = scipy.optimize.root(lambda s: grad(s) + s.mean(), res.x - res.x.mean(), jac=lambda s: hess(s) + 1 / K,
                               method="hybr", options={"xtol": 1e-15})
    return temperature * (root.x - root.x.min())


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(2, 7), labels=st.booleans(), ridge=st.sampled_from([0.0, 0.3]),
       temperature=st.sampled_from([0.05, 1.0]))
@example(seed=1221, K=7, labels=True, ridge=0.0, temperature=0.05)  # BFGS alone stops 1e-3 short
@example(seed=9035, K=7, labels=True, ridge=0.0, temperature=1.0)  # a conflicting cycle: Hessian eigenvalue 5e-12
def test_fit_equals_scipy_mle_on_random_data(seed, K, labels, ridge, temperature):
    rng = np.random.default_rng(seed)
    base = _all_pairs(K)
    # a random multiset of comparisons that connects all K responses (a spanning path plus extras),
    # in random orientation
    order = rng.permutation(K)
    path = np.stack([order[:-1], order[1:]], axis=-1)
    extra = base[rng.integers(0, len(base), size=rng.integers(0, 2 * K))]
    pairs = np.concatenate([path, extra])
    flip = rng.random(len(pairs)) < 0.5
    pairs[flip] = pairs[flip][:, ::-1]
    p = rng.random(len(pairs))
    if labels:
        p = (p < 0.5).astype(float)
    counts = rng.integers(1, 5, len(pairs)).astype(float)
    fit = bt_fit(pairs, p, K, temperature=temperature, counts=counts, ridge=ridge)
    want = _scipy_mle(pairs, p, K, temperature, counts, ridge, 1e-6)
    np.testing.assert_allclose(fit, want, atol=1e-5 * temperature)
    assert fit.min() == 0.0


def test_exact_probabilities_recover_rewards_up_to_a_shift_batched():
    rng = np.random.default_rng(0)
    K, tau = 6, 0.1
    r = rng.random((3, 4, K))
    pairs = _all_pairs(K)
    p = 1 / (1 + np.exp(-(r[..., pairs[:, 0]] - r[..., pairs[:, 1]]) / tau))
    fit = bt_fit(pairs, p, K, temperature=tau)
    np.testing.assert_allclose(fit, r - r.min(-1, keepdims=True), atol=1e-12)
    # the same with a spanning tree only (K - 1 comparisons)
    tree = np.stack([np.zeros(K - 1, int), np.arange(1, K)], axis=-1)
    p_tree = 1 / (1 + np.exp(-(r[..., tree[:, 0]] - r[..., tree[:, 1]]) / tau))
    np.testing.assert_allclose(bt_fit(tree, p_tree, K, temperature=tau), r - r.min(-1, keepdims=True), atol=1e-12)


def test_disconnected_comparisons_keep_each_component_at_mean_zero():
    fit = bt_fit(np.array([[0, 1], [2, 3]]), np.array([0.8, 0.3]), 5, temperature=1.0)
    s = np.log(4.0) / 2, np.log(0.3 / 0.7) / 2  # half the logit on each side of the component's mean
    want = np.array([s[0], -s[0], s[1], -s[1], 0.0])
    np.testing.assert_allclose(fit, want - want.min(), atol=1e-12)


def test_clipping_keeps_extreme_reports_finite():
    K = 4
    fit = bt_fit(_all_pairs(K), np.ones(6), K, temperature=1.0, clip=1e-3)
    assert np.all(np.isfinite(fit))
    # response 0 beats everyone with probability 1 - clip: its logit gaps are bounded
    assert fit.max() < 3 * np.log((1 - 1e-3) / 1e-3)


def test_torch_twin_matches_and_its_gradient_is_the_finite_difference():
    rng = np.random.default_rng(1)
    K, tau = 5, 0.3
    pairs = _all_pairs(K)[rng.permutation(10)[:7]]
    p = rng.uniform(0.05, 0.95, (2, 7))
    weights = rng.random(K)
    pt = torch.tensor(p, requires_grad=True)
    fit = torch_bt_fit(pairs, pt, K, tau)
    np.testing.assert_allclose(fit.detach().numpy(), bt_fit(pairs, p, K, temperature=tau), atol=1e-12)
    (grad,) = torch.autograd.grad((fit * torch.tensor(weights)).sum(), pt)
    eps = 1e-6
    fd = np.zeros_like(p)
    for j in range(p.shape[1]):
        up, down = p.copy(), p.copy()
        up[:, j] += eps
        down[:, j] -= eps
        fd[:, j] = ((bt_fit(pairs, up, K, temperature=tau) - bt_fit(pairs, down, K, temperature=tau)) @ weights) / (2 * eps)
    np.testing.assert_allclose(grad.numpy(), fd, atol=1e-6)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"pairs": np.array([[0, 4]])}, "pairs must index responses 0..3"),
    ({"pairs": np.array([[1, 1]])}, "two different responses"),
    ({"pairs": np.array([0, 1])}, r"pairs must have shape \(..., m, 2\)"),
    ({"pairs": np.array([[0.5, 1]])}, "integer"),
    ({"probabilities": np.array([1.2])}, r"probabilities must lie in \[0, 1\]"),
    ({"probabilities": np.array([np.nan])}, "NaN"),
    ({"probabilities": np.array([0.2, 0.3])}, "one entry per pair"),
    ({"temperature": 0}, "temperature must be > 0"),
    ({"ridge": -1}, "ridge must be >= 0"),
])
def test_fit_bad_input(kwargs, pattern):
    args = {"pairs": np.array([[0, 1]]), "probabilities": np.array([0.7]), "K": 4, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        bt_fit(**args)


# -- median_of_mles ---------------------------------------------------------------------------------
def test_median_of_mles_trains_on_the_coordinatewise_median():
    rng = np.random.default_rng(2)
    r = rng.random((4, 5, 3))  # batch 4, n = 5, K = 3
    w = rng.integers(1, 4, (4, 5)).astype(float)
    m = mechanisms.make("median_of_mles", lam=0.2)
    out = m.outcome(r, w)
    med = np.sort(r, axis=-2)[..., 2, :]  # the middle of five
    logits = w.sum(-1, keepdims=True) * med / 0.2
    want = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(out.policy, want / want.sum(-1, keepdims=True), rtol=1e-10)
    assert np.all(out.payments == 0) and out.payments.shape == (4, 5)


def test_median_of_mles_equals_sw_max_when_reports_agree_and_resists_one_extreme_report():
    rng = np.random.default_rng(3)
    r = np.broadcast_to(rng.random(4), (3, 4)).copy()
    w = np.array([1.0, 2.0, 3.0])
    med, sw = mechanisms.make("median_of_mles", lam=0.1), mechanisms.make("sw_max", lam=0.1)
    np.testing.assert_allclose(med.outcome(r, w).policy, sw.outcome(r, w).policy, rtol=1e-12)
    extreme = r.copy()
    extreme[0] = np.eye(4)[np.argmin(r[0])]  # labeler 0 shouts for the others' worst outcome
    np.testing.assert_array_equal(med.outcome(extreme, w).policy, med.outcome(r, w).policy)
    assert not np.allclose(sw.outcome(extreme, w).policy, sw.outcome(r, w).policy)


def test_median_core_torch_matches_numpy_for_even_n():
    rng = np.random.default_rng(4)
    r, w, ref = rng.random((2, 4, 3)), np.ones((2, 4)), np.full(3, 1 / 3)
    policy, value = median_core(r, w, 0.5, ref, "kl")
    tp, tv = median_core(torch.tensor(r), torch.tensor(w), 0.5, torch.tensor(ref), "kl", TorchOps())
    np.testing.assert_allclose(tp.numpy(), policy, rtol=1e-12)
    np.testing.assert_allclose(tv.numpy(), value, rtol=1e-12)
    mid = np.sort(r, axis=-2)[..., 1:3, :].mean(-2)  # even n: the mean of the middle two
    logits = 4 * mid / 0.5
    np.testing.assert_allclose(policy, np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), rtol=1e-10)


def test_median_of_mles_plays_reward_report():
    from strategic_feedback_env import reward_report_v0

    env = reward_report_v0.parallel_env(n_labelers=3, n_outcomes=4, mechanism="median_of_mles", max_cycles=2)
    env.reset(seed=0)
    _, rew, _, _, info = env.step(env.truthful_actions())
    assert all(np.isfinite(v) for v in rew.values()) and info["labeler_0"]["payment"] == 0.0


def test_torch_median_outcome_matches_and_the_reward_report_gradient_adversary_attacks_it():
    from strategic_feedback_env.agents import GradientAdversary
    from strategic_feedback_env.mechanisms.median_of_mles import torch_median_outcome

    rng = np.random.default_rng(5)
    r = rng.dirichlet(np.ones(4), size=3)
    w = np.array([1.0, 3.0, 2.0])
    m = mechanisms.make("median_of_mles", lam=0.5)
    out = torch_median_outcome(m, torch.tensor(r), torch.tensor(w))
    np.testing.assert_allclose(out.policy.numpy(), m.outcome(r, w).policy, rtol=1e-12)
    br = GradientAdversary(steps=30).best_response(m, r, w, 0)
    profile = r.copy()
    profile[0] = br.report
    exact = w[0] * m.outcome(profile, w).policy @ r[0] - w[0] * m.outcome(r, w).policy @ r[0]
    assert br.gain == pytest.approx(exact, abs=1e-12) and br.gain > 1e-4
