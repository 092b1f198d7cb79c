"""The per-step DSIC ``gain`` of reward_report_v0 against independent recomputations.

Expectations are recomputed here from the infos (policy, reports, true types) with numpy,
the KL optimum in closed form (docs/model.md §1), and the truthful counterfactual by
re-running ``mechanisms.make(...)`` on the deviated profile."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import mechanisms
from strategic_feedback_env import reward_report_v0

LAM = 0.3


def _env(mechanism="affine_maximizer", regularizer="kl", lam=LAM, **cfg):
    base = {"n_labelers": 4, "n_outcomes": 6, "max_cycles": 6}
    base.update(cfg)
    return reward_report_v0.parallel_env(mechanism=mechanism,
                                         mechanism_params={"lam": lam, "regularizer": regularizer}, **base)


# For the exaggeration tests lam is large enough that no outcome's probability underflows
# (with max normalisation S/lam reaches ~n*max_size/lam); otherwise lowering r(x_min) can
# change the policy by less than a float ulp and the gain is exactly 0.
LAM_EXAGGERATE = 5.0


def exaggerate(r: np.ndarray, normalization: str, eps: float) -> np.ndarray:
    """Thm 4.2 misreport of a (normalised) reward vector: raise the top outcome by eps and
    lower the bottom one by eps (sum), or only lower the bottom one (max)."""
    r = np.asarray(r, dtype=np.float64)
    out = r.copy()
    hi, lo = int(np.argmax(r)), int(np.argmin(r))
    assert r[hi] > r[lo] and r[lo] > eps
    out[lo] -= eps
    if normalization == "sum":
        out[hi] += eps
        assert abs(out.sum() - 1.0) < 1e-12
    else:
        assert out.max() == 1.0
    assert np.all((out >= 0) & (out <= 1))
    return out


def _gibbs(S, lam, ref):
    """theta* and log Z for KL: theta ∝ ref exp(S / lam), by log-sum-exp."""
    a = np.log(ref) + S / lam
    m = a.max()
    logz = m + np.log(np.exp(a - m).sum())
    return np.exp(a - logz), logz


def _kl(p, q):
    return float(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p / q, 1.0)), 0.0)))


def _stack(infos, key):
    return np.array([infos[a][key] for a in infos])


# -- truthful reports: zero gain -------------------------------------------------------------

@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("normalization", ["sum", "max"])
@pytest.mark.parametrize("report_size", [False, True])
def test_truthful_reports_have_zero_gain(regularizer, normalization, report_size):
    env = _env(regularizer=regularizer, normalization=normalization, report_size=report_size)
    env.reset(seed=7)
    steps = 0
    while env.agents:
        _, rew, _, _, infos = env.step(env.truthful_actions())
        steps += 1
        for a, info in infos.items():
            assert abs(info["gain"]) < 1e-12, (a, info["gain"])
            np.testing.assert_allclose(info["report"], info["true_reward"], rtol=0, atol=1e-15)
            assert abs(info["reported_size"] - info["true_size"]) < 1e-12
            # IR of the affine maximizer (Prop 4.4) and non-negative payments
            assert info["utility"] >= -1e-9 and info["payment"] >= -1e-9
    assert steps == 6


# -- the Thm 4.2 exaggeration ------------------------------------------------------------------

def _play_exaggeration(env, seed, eps_cap=0.02):
    """Every round labeler_0 exaggerates (from its observation), the others are truthful."""
    obs, _ = env.reset(seed=seed)
    K = env.K
    gains, utilities, truthful = [], [], []
    while env.agents:
        r0 = obs["labeler_0"][:K]
        eps = min(eps_cap, 0.5 * r0.min())
        actions = env.truthful_actions()
        actions["labeler_0"] = exaggerate(r0, env.normalization, eps)
        obs, _, _, _, infos = env.step(actions)
        gains.append(infos["labeler_0"]["gain"])
        utilities.append(infos["labeler_0"]["utility"])
        truthful.append(infos["labeler_0"]["truthful_utility"])
    return np.array(gains), np.array(utilities), np.array(truthful)


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_exaggeration_pays_under_sw_max(normalization):
    """Thm 4.2: without payments the exaggeration strictly raises utility."""
    for seed in range(3):
        env = _env(mechanism="sw_max", normalization=normalization, lam=LAM_EXAGGERATE)
        gains, u, ut = _play_exaggeration(env, seed)
        assert np.all(gains > 0), gains
        # and the env's gain is utility minus truthful utility
        np.testing.assert_allclose(gains, u - ut, rtol=0, atol=1e-12)


@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_exaggeration_does_not_pay_under_affine_maximizer(regularizer, normalization):
    for seed in range(3):
        env = _env(regularizer=regularizer, normalization=normalization, lam=LAM_EXAGGERATE)
        gains, _, _ = _play_exaggeration(env, seed)
        assert np.all(gains <= 1e-10), gains
        if regularizer == "kl":  # strictly concave objective: the loss is strict
            assert np.all(gains < 0), gains


def test_exaggeration_helper_matches_the_theorem():
    r = np.array([0.1, 0.5, 0.3, 0.1 + 1e-3])
    r_sum = r / r.sum()
    out = exaggerate(r_sum, "sum", 0.01)
    np.testing.assert_allclose(out - r_sum, [-0.01, 0.01, 0, 0], atol=1e-15)
    r_max = r / r.max()
    out = exaggerate(r_max, "max", 0.01)
    np.testing.assert_allclose(out - r_max, [-0.01, 0, 0, 0], atol=1e-15)


# -- info consistency ------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["affine_maximizer", "sw_max"])
@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("report_size", [False, True])
def test_infos_are_consistent_and_recomputable(mechanism, regularizer, report_size):
    env = _env(mechanism=mechanism, regularizer=regularizer, report_size=report_size, n_outcomes=5)
    rng = np.random.default_rng(3)
    env.reset(seed=4)
    ref = np.full(env.K, 1.0 / env.K)
    mech = mechanisms.make(mechanism, lam=LAM, regularizer=regularizer)
    while env.agents:
        actions = {a: rng.random(env.action_space(a).shape) for a in env.agents}
        _, rew, _, _, infos = env.step(actions)
        agents = list(infos)
        policy = infos[agents[0]]["policy"]
        for a in agents:  # shared entries are the same object content for everyone
            np.testing.assert_array_equal(infos[a]["policy"], policy)
        R, W = _stack(infos, "true_reward"), _stack(infos, "true_size")
        reports, rsizes = _stack(infos, "report"), _stack(infos, "reported_size")
        pay, util = _stack(infos, "payment"), _stack(infos, "utility")
        # the env's report decoding: normalise the action by its sum, size = 1 + a[K](max-1)
        acts = np.array([actions[a] for a in agents])
        np.testing.assert_allclose(reports, acts[:, :env.K] / acts[:, :env.K].sum(1, keepdims=True), atol=1e-15)
        if report_size:
            np.testing.assert_allclose(rsizes, 1 + acts[:, env.K] * (env.max_size - 1), atol=1e-12)
        else:
            np.testing.assert_array_equal(rsizes, W)
        assert abs(policy.sum() - 1) < 1e-9 and np.all(policy >= -1e-12)
        valuation = R @ policy
        np.testing.assert_allclose(_stack(infos, "valuation"), valuation, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(util, W * valuation - pay, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.array([rew[a] for a in agents]), util)
        np.testing.assert_allclose(sum(infos[agents[0]]["social_welfare"] for _ in [0]), (W * valuation).sum(),
                                   rtol=1e-12)
        np.testing.assert_allclose(infos[agents[0]]["total_payment"], pay.sum(), rtol=1e-12, atol=1e-12)
        if mechanism == "sw_max":
            np.testing.assert_array_equal(pay, 0.0)
        # the mechanism re-run on the reports reproduces the outcome
        out = mech.outcome(reports, rsizes)
        np.testing.assert_allclose(out.policy, policy, atol=1e-10)
        np.testing.assert_allclose(out.payments, pay, atol=1e-9)
        # truthful counterfactual: labeler i alone reports its type, the others' reports fixed
        for i, a in enumerate(agents):
            prof, prof_w = reports.copy(), rsizes.copy()
            prof[i], prof_w[i] = R[i], W[i]
            dev = mech.outcome(prof, prof_w)
            expected = W[i] * dev.policy @ R[i] - dev.payments[i]
            np.testing.assert_allclose(infos[a]["truthful_utility"], expected, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(infos[a]["gain"], util[i] - expected, rtol=1e-9, atol=1e-9)
            if mechanism == "affine_maximizer":
                assert infos[a]["gain"] <= 1e-9  # DSIC
        # closed forms for KL (independent of the mechanisms package)
        if regularizer == "kl":
            S = (rsizes[:, None] * reports).sum(0)
            theta, logz = _gibbs(S, LAM, ref)
            np.testing.assert_allclose(policy, theta, rtol=1e-9, atol=1e-12)
            if mechanism == "affine_maximizer":
                for i, a in enumerate(agents):
                    S_minus = S - rsizes[i] * reports[i]
                    _, logz_minus = _gibbs(S_minus, LAM, ref)
                    asw_minus_at_theta = S_minus @ theta - LAM * _kl(theta, ref)
                    np.testing.assert_allclose(pay[i], LAM * logz_minus - asw_minus_at_theta,
                                               rtol=1e-8, atol=1e-10)
                    # truthful utility = lam log(Z_truth / Z_-i)
                    _, logz_truth = _gibbs(S_minus + W[i] * R[i], LAM, ref)
                    np.testing.assert_allclose(infos[a]["truthful_utility"], LAM * (logz_truth - logz_minus),
                                               rtol=1e-8, atol=1e-10)


# -- noisy input: approximate DSIC (Thm 4.12) ------------------------------------------------------

@pytest.mark.parametrize("eps", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_gain_under_input_noise_is_bounded(eps, regularizer, normalization):
    env = _env(regularizer=regularizer, normalization=normalization, input_noise=eps, max_cycles=15,
               report_size=True)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=1)
    K = env.K
    worst_ratio = -np.inf
    positive = 0
    while env.agents:
        actions = env.truthful_actions()
        # labelers 0, 1 misreport at random, labeler 2 exaggerates, labeler 3 is truthful
        for a in ("labeler_0", "labeler_1"):
            actions[a] = rng.random(K + 1)
        r2 = obs["labeler_2"][:K]
        actions["labeler_2"] = np.append(exaggerate(r2, normalization, min(0.05, 0.5 * r2.min())),
                                         actions["labeler_2"][K])
        obs, _, _, _, infos = env.step(actions)
        for a in ("labeler_0", "labeler_1", "labeler_2"):
            bound = 2 * infos[a]["true_size"] * eps
            assert infos[a]["gain"] <= bound + 1e-9, (a, infos[a]["gain"], bound)
            worst_ratio = max(worst_ratio, infos[a]["gain"] / bound)
            positive += infos[a]["gain"] > 1e-12
        assert abs(infos["labeler_3"]["gain"]) < 1e-12
        np.testing.assert_allclose(
            _stack(infos, "utility"),
            _stack(infos, "true_size") * (_stack(infos, "true_reward") @ infos["labeler_0"]["policy"])
            - _stack(infos, "payment"), rtol=1e-12, atol=1e-12)
    assert np.isfinite(worst_ratio)


def test_input_noise_changes_the_outcome_but_not_truthful_gain():
    """The noise really reaches the mechanism (policy differs from the noiseless one) while
    truthful reports still have exactly zero gain (same noise in the counterfactual)."""
    clean, noisy = _env(max_cycles=3), _env(max_cycles=3, input_noise=0.1)
    clean.reset(seed=2)
    noisy.reset(seed=2)
    _, _, _, _, ic = clean.step(clean.truthful_actions())
    _, _, _, _, inn = noisy.step(noisy.truthful_actions())
    np.testing.assert_array_equal(ic["labeler_0"]["true_reward"], inn["labeler_0"]["true_reward"])
    assert not np.allclose(ic["labeler_0"]["policy"], inn["labeler_0"]["policy"])
    assert all(abs(i["gain"]) < 1e-12 for i in inn.values())


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1])
@pytest.mark.parametrize("regularizer", ["kl", "tv"])
def test_searched_misreports_respect_the_noise_bound(eps, regularizer):
    """A small random-search adversary for labeler_0 (many candidate reports, incl. sizes,
    each evaluated on a fresh env replaying the same seeded round): the best gain is
    <= 2 w eps (exact DSIC at eps = 0). (``copy.deepcopy`` cannot be used: EzPickle
    rebuilds an un-reset env from the constructor arguments.)"""
    rng = np.random.default_rng(5)
    for seed in range(3):
        env = _env(regularizer=regularizer, input_noise=eps, report_size=True, max_cycles=1, lam=1.0)
        obs, _ = env.reset(seed=seed)
        K = env.K
        truthful = env.truthful_actions()
        r0 = obs["labeler_0"][:K]
        candidates = [rng.random(K + 1) for _ in range(60)]
        candidates += [np.append(exaggerate(r0, "sum", e * r0.min()), truthful["labeler_0"][K])
                       for e in (0.1, 0.5, 0.9)]
        candidates += [np.append(r0, s) for s in (0.0, 1.0)]  # size misreports only
        best = -np.inf
        for cand in candidates:
            env.reset(seed=seed)
            _, _, _, _, infos = env.step({**truthful, "labeler_0": cand})
            best = max(best, infos["labeler_0"]["gain"])
            w = infos["labeler_0"]["true_size"]
            np.testing.assert_array_equal(infos["labeler_0"]["true_reward"], r0)  # same round replayed
        assert best <= 2 * w * eps + 1e-9, (best, 2 * w * eps)
