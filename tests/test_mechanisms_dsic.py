"""Affine maximizer payment: DSIC and IR (docs/model.md §1, [SUN] Prop 4.4), and the
``unilateral_outcomes`` counterfactuals.

Utilities are always evaluated here, with the *true* type: ``u_i = w_i <theta, r_i> - p_i``.
Every misreport profile is run through ``outcome`` directly (not through
``unilateral_outcomes``, which is checked separately against a brute-force loop).

Tolerances: a misreport may not beat truthful utility by more than ``1e-9 * (1 + |u|)``;
truthful utility and payments must be ``>= -1e-12`` (scaled by ``1 + |S|`` for large sizes).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from strategic_feedback_env import mechanisms

REGS = ["kl", "chi2", "tv"]


def true_utility(policy, payments, r_i, w_i):
    """Independent utility: w_i <theta, r_i> - p_i (policy (..., K), payments (...))."""
    return w_i * (policy * r_i).sum(-1) - payments


def thm42_misreport(r_i, eps, normalization):
    """[SUN] Thm 4.2: raise r(x_max) by eps, lower r(x_min) by eps (sum); lower r(x_min) (max)."""
    out = r_i.copy()
    hi, lo = int(np.argmax(r_i)), int(np.argmin(r_i))
    if normalization == "sum":
        out[hi] += eps
        out[lo] -= eps
    else:
        out[lo] -= eps
    return out


def misreports(rng, r, w, i, normalization, wbar):
    """A rich family of (report_i, size_i) misreports for labeler i -> (M, K), (M,)."""
    n, K = r.shape
    r_i, w_i = r[i], w[i]
    reps, sizes = [], []

    def add(rep, size):
        reps.append(np.asarray(rep, float))
        sizes.append(float(size))

    def normalise(v):
        v = np.clip(v, 0, 1)
        if normalization == "sum":
            v = v / v.sum()
        elif normalization == "max":
            v = v / v.max()
        return v

    # random reports, with the true size and with random sizes
    for _ in range(12):
        v = normalise(rng.uniform(0.01, 1, K))
        add(v, w_i)
        add(v, rng.uniform(1, 2 * wbar))
    # Thm 4.2 exaggeration, several eps (capped so the report stays in the type space)
    norm = normalization or "sum"
    cap = min(r_i.min(), 1 - r_i.max()) if norm == "sum" else r_i.min()
    for frac in (0.01, 0.1, 0.5, 1.0):
        eps = frac * cap
        if eps > 0:
            add(thm42_misreport(r_i, eps, norm), w_i)
            add(thm42_misreport(r_i, eps, norm), w_i * 2)
    # scaling of the size only
    for c in (0.5, 0.9, 1.1, 2.0, 5.0, 20.0):
        add(r_i, max(1.0, c * w_i))
    add(r_i, 1.0)
    add(r_i, float(wbar))
    # mixing with the others' reports (each other labeler and their mean), beta in [0,1]
    others = [r[j] for j in range(n) if j != i]
    if others:
        others.append(np.mean(others, axis=0))
    for o in others:
        for beta in (0.0, 0.25, 0.5, 0.75, 0.95):
            add(normalise(beta * r_i + (1 - beta) * o), w_i)
            add(normalise(beta * r_i + (1 - beta) * o), max(1.0, 3 * w_i))
    # extreme reports: one-hot on each outcome (sum- and max-normalised alike) and the reverse
    for k in range(K):
        add(np.eye(K)[k], w_i)
    add(normalise(1.0 - r_i + 1e-3), w_i)
    return np.array(reps), np.array(sizes)


@st.composite
def games(draw, normalization=None):
    K = draw(st.integers(2, 6))
    n = draw(st.integers(1, 5))
    lam = draw(st.sampled_from([0.05, 0.3, 1.0, 4.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.01, 1, (n, K))
    if normalization == "sum":
        r = r / r.sum(-1, keepdims=True)
    elif normalization == "max":
        r = r / r.max(-1, keepdims=True)
    wbar = 10
    w = rng.integers(1, wbar + 1, n).astype(float)
    ref = None if draw(st.booleans()) else rng.dirichlet(np.full(K, 2.0))
    return r, w, lam, ref, rng, wbar


def _check_dsic(reg, normalization, game):
    r, w, lam, ref, rng, wbar = game
    n, K = r.shape
    mech = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg, reference=ref,
                           normalization=normalization)
    truth = mech.outcome(r, w)
    u_truth = true_utility(truth.policy, truth.payments, r, w)
    scale = 1.0 + (w[:, None] * r).sum()
    assert np.all(truth.payments >= -1e-12 * scale), truth.payments
    assert np.all(u_truth >= -1e-12 * scale), u_truth
    for i in range(n):
        reps, sizes = misreports(rng, r, w, i, normalization, wbar)
        M = len(reps)
        prof = np.repeat(r[None], M, 0)
        prof[:, i] = reps
        prof_w = np.repeat(w[None], M, 0)
        prof_w[:, i] = sizes
        dev = mech.outcome(prof, prof_w)
        u_dev = true_utility(dev.policy, dev.payments[:, i], r[i], w[i])
        gain = u_dev - u_truth[i]
        worst = int(np.argmax(gain))
        assert gain[worst] <= 1e-9 * (1 + abs(u_truth[i])), (
            f"labeler {i} gains {gain[worst]:.3e} by reporting {reps[worst]} size {sizes[worst]} "
            f"instead of {r[i]} size {w[i]}")


@pytest.mark.parametrize("reg", REGS)
@settings(deadline=None, derandomize=True, max_examples=150)
@given(game=games())
def test_affine_maximizer_dsic_and_ir_unnormalised(reg, game):
    _check_dsic(reg, None, game)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("normalization", ["sum", "max"])
@settings(deadline=None, derandomize=True, max_examples=50)
@given(data=st.data())
def test_affine_maximizer_dsic_and_ir_normalised(reg, normalization, data):
    _check_dsic(reg, normalization, data.draw(games(normalization)))


@settings(deadline=None, derandomize=True, max_examples=60)
@given(game=games())
def test_kl_truthful_utility_is_lam_log_z_ratio(game):
    r, w, lam, ref, _, _ = game
    n, K = r.shape
    ref_arr = np.full(K, 1.0 / K) if ref is None else ref
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer="kl", reference=ref).outcome(r, w)
    u = true_utility(out.policy, out.payments, r, w)
    S = (w[:, None] * r).sum(0)
    log_z = logsumexp(S / lam, b=ref_arr)
    for i in range(n):
        log_z_i = logsumexp((S - w[i] * r[i]) / lam, b=ref_arr)
        expected = lam * (log_z - log_z_i)
        assert abs(u[i] - expected) <= 1e-10 * (1 + abs(expected))
        # and p_i = lam KL(theta* || theta_{-i}) >= 0
        theta_i = ref_arr * np.exp((S - w[i] * r[i]) / lam - log_z_i)
        kl = np.sum(out.policy * (np.log(out.policy) - np.log(theta_i)))
        assert abs(out.payments[i] - lam * kl) <= 1e-9 * (1 + lam * kl)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_brute_force_grid_truthful_is_global_maximiser(reg, lam):
    """K=2: grid over reported r_i in [0,1]^2 (and on the simplex) and sizes 1..12."""
    rng = np.random.default_rng(123)
    mech = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg)
    g = np.linspace(0, 1, 41)
    a, b = np.meshgrid(g, g, indexing="ij")
    box = np.stack([a.ravel(), b.ravel()], -1)
    simplex = np.stack([g, 1 - g], -1)
    grid_reports = np.concatenate([box, simplex])
    grid_sizes = np.arange(1.0, 13.0)
    for _ in range(6):
        n = int(rng.integers(1, 4))
        r = rng.uniform(0, 1, (n, 2))
        w = rng.integers(1, 9, n).astype(float)
        truth = mech.outcome(r, w)
        u_truth = true_utility(truth.policy, truth.payments, r, w)
        for i in range(n):
            R = np.repeat(grid_reports, len(grid_sizes), 0)
            W = np.tile(grid_sizes, len(grid_reports))
            prof = np.repeat(r[None], len(R), 0)
            prof[:, i] = R
            prof_w = np.repeat(w[None], len(R), 0)
            prof_w[:, i] = W
            dev = mech.outcome(prof, prof_w)
            u = true_utility(dev.policy, dev.payments[:, i], r[i], w[i])
            assert u.max() <= u_truth[i] + 1e-9 * (1 + abs(u_truth[i]))
            # the grid contains near-truthful points: the maximum over it is close to truthful,
            # so the comparison is not vacuous
            assert u.max() >= u_truth[i] - 0.05 * w[i]


ALL_MECHS = [("sw_max", {"regularizer": reg}) for reg in REGS] + \
            [("affine_maximizer", {"regularizer": reg}) for reg in REGS] + \
            [("average", {}), ("median", {}), ("online_weighted", {"eta": 0.3}), ("hedge", {"eta": 0.3})]


@pytest.mark.parametrize("name,params", ALL_MECHS, ids=[f"{m}-{p.get('regularizer', '')}" for m, p in ALL_MECHS])
@settings(deadline=None, derandomize=True, max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), K=st.integers(2, 5),
       batch=st.sampled_from([(), (3,), (2, 2)]), alt_sizes=st.booleans())
def test_unilateral_outcomes_equal_brute_force(name, params, seed, n, K, batch, alt_sizes):
    rng = np.random.default_rng(seed)
    mech = mechanisms.make(name, **params)
    online = mech.online
    r = rng.dirichlet(np.ones(K), (*batch, n))
    alt = rng.dirichlet(np.ones(K), (*batch, n))
    w = rng.integers(1, 7, (*batch, n)).astype(float)
    aw = rng.integers(1, 7, (*batch, n)).astype(float) if alt_sizes else None
    if online:
        # give the online rules non-uniform weights first
        mech.reset(n, batch)
        for _ in range(3):
            mech.update(rng.dirichlet(np.ones(K), (*batch, n)), np.eye(K)[rng.integers(0, K, batch)])
        weights_before = mech.weights.copy()
    uni = mech.unilateral_outcomes(r, w, alt, aw)
    assert uni.policy.shape == (*batch, n, K) and uni.payments.shape == (*batch, n)
    for i in range(n):
        prof = r.copy()
        prof[..., i, :] = alt[..., i, :]
        pw = w.copy()
        if aw is not None:
            pw[..., i] = aw[..., i]
        out = mech.outcome(prof, pw)
        np.testing.assert_allclose(uni.policy[..., i, :], out.policy, atol=1e-10, rtol=1e-10)
        np.testing.assert_allclose(uni.payments[..., i], out.payments[..., i], atol=1e-9, rtol=1e-9)
    if online:
        np.testing.assert_array_equal(mech.weights, weights_before)
