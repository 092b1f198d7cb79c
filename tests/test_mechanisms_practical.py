"""The practical [SUN] rules of docs/model.md §4 against independent computations.

* truncated KL mirror ascent = ``Gibbs(S, lam / (1 - (1 - eta lam)^T))`` (closed form written
  here) = a plain loop of the update written here; convergence to the exact optimum (the closed
  forms, tested elsewhere against scipy) for kl, chi2 and tv;
* exact payments: no misreport gains more than the truthful optimisation gap, the gain vanishes
  with many steps and size over-reporting gains strictly with few;
* Heuristic 1 payments are never negative; Heuristic 2 keeps DSIC with exact training and can
  charge negative payments; a fixed menu is DSIC and returns one of its rows;
* policy gradient: reproducible under a seed, its mean over seeds approaches the optimum;
* batched == scalar for every combination, and bad input gives ValueErrors naming the parameter.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from strategic_feedback_env import mechanisms, reward_report_v0
from strategic_feedback_env.agents import GradientAdversary
from strategic_feedback_env.mechanisms.differentiable import torch_outcome

REGS = ["kl", "chi2", "tv"]


def _instance(rng, n=4, K=5, batch=()):
    r = rng.random((*batch, n, K)) + 0.02
    r /= r.sum(-1, keepdims=True)
    return r, rng.integers(1, 11, (*batch, n)).astype(float)


def _gibbs(S, lam, ref):
    z = np.log(ref) + (S - S.max()) / lam
    p = np.exp(z)
    return p / p.sum()


def _utility(mech, reports, sizes, i, report, size):
    """Labeler i's true utility (type = its row of reports/sizes) when it reports (report, size)."""
    profile, profile_sizes = reports.copy(), sizes.copy()
    profile[i], profile_sizes[i] = report, size
    out = mech.outcome(profile, profile_sizes)
    return sizes[i] * float(out.policy @ reports[i]) - float(out.payments[i])


def _asw(theta, S, lam, ref, reg):
    """Regularised welfare, written out here."""
    if reg == "kl":
        d = np.sum(np.where(theta > 0, theta * np.log(np.where(theta > 0, theta, 1) / ref), 0.0))
    elif reg == "chi2":
        d = np.sum(ref * (theta / ref - 1) ** 2)
    else:
        d = 0.5 * np.abs(theta - ref).sum()
    return theta @ S - lam * d


@pytest.mark.parametrize("steps", [1, 2, 5, 17, 60])
@pytest.mark.parametrize("eta", [0.3, 1.0, 4.0, 15.0])
def test_kl_mirror_ascent_is_gibbs_with_a_larger_lambda(steps, eta):
    rng = np.random.default_rng(steps)
    lam = 0.1  # eta * lam in 0.03 .. 1.5 (above 1 the iteration oscillates but converges)
    r, w = _instance(rng)
    ref = rng.dirichlet(np.ones(5) * 3)
    S = w @ r
    mech = mechanisms.make("sw_max", lam=lam, reference=ref, solver="mirror_ascent", steps=steps, step_size=eta)
    policy = mech.outcome(r, w).policy
    lam_T = lam / (1 - (1 - eta * lam) ** steps)
    np.testing.assert_allclose(policy, _gibbs(S, lam_T, ref), rtol=1e-9, atol=1e-13)
    theta = ref.copy()  # the update of docs/model.md §4, as a plain loop
    for _ in range(steps):
        theta = theta ** (1 - eta * lam) * ref ** (eta * lam) * np.exp(eta * (S - S.max()))
        theta /= theta.sum()
    np.testing.assert_allclose(policy, theta, rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("reg", REGS)
def test_mirror_ascent_converges_to_the_exact_optimum(reg):
    rng = np.random.default_rng(3)
    r, w = _instance(rng)
    lam, ref = 0.5, rng.dirichlet(np.ones(5) * 3)
    S = w @ r
    exact = mechanisms.make("sw_max", lam=lam, regularizer=reg, reference=ref).outcome(r, w)
    gaps = []
    for steps in (3, 30, 3000):
        out = mechanisms.make("sw_max", lam=lam, regularizer=reg, reference=ref, solver="mirror_ascent",
                              steps=steps, step_size=0.02).outcome(r, w)
        gaps.append(_asw(exact.policy, S, lam, ref, reg) - _asw(out.policy, S, lam, ref, reg))
        np.testing.assert_allclose(out.gap, gaps[-1], atol=1e-10)
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-12
    assert gaps[2] < 1e-3 * gaps[0] and gaps[2] < 2e-3
    if reg != "tv":  # tv's optimum is a vertex-like point: values converge, the policy within O(eta)
        np.testing.assert_allclose(out.policy, exact.policy, atol=1e-3)


def _misreports(rng, r_i, w_i, count=20, max_size=10):
    for _ in range(count):
        rep = rng.random(r_i.shape) + 1e-3
        yield rep / rep.sum(), float(rng.integers(1, max_size + 1))
    for alpha in (0.5, 2.0, 5.0):  # size scaling
        yield r_i, float(np.clip(alpha * w_i, 1, max_size))


@pytest.mark.parametrize("config", [
    dict(solver="mirror_ascent", steps=3, step_size=1.0),
    dict(solver="mirror_ascent", steps=2, step_size=2.0, regularizer="chi2"),
    dict(solver="mirror_ascent", steps=4, step_size=1.0, regularizer="tv"),
    dict(solver="policy_gradient", steps=15, step_size=2.0, samples_per_step=4, seed=3),
    dict(menu="soups"),
])
def test_exact_payments_bound_any_gain_by_the_optimisation_gap(config):
    rng = np.random.default_rng(5)
    mech = mechanisms.make("affine_maximizer", lam=0.1, **config)
    adversary = GradientAdversary(steps=40, restarts=4, seed=0)
    for _ in range(4):
        r, w = _instance(rng)
        truthful = mech.outcome(r, w)
        gap = float(truthful.gap)
        assert gap >= -1e-12
        u0 = _utility(mech, r, w, 0, r[0], w[0])
        gains = [_utility(mech, r, w, 0, rep, size) - u0 for rep, size in _misreports(rng, r[0], w[0])]
        if adversary.applies_to(mech):
            br = adversary.best_response(mech, r, w, 0, report_size=True, max_size=10)
            gains.append(float(br.gain))
        assert max(gains) <= gap + 1e-9


def test_the_gain_vanishes_with_steps_and_size_over_reporting_pays_with_few():
    rng = np.random.default_rng(8)
    r, w = _instance(rng)
    w[0] = 2.0
    same = np.broadcast_to(r[0], r.shape).copy()  # a homogeneous population: S = (sum w) r
    adversary = GradientAdversary(steps=60, restarts=4, seed=0)
    gains = {}
    for steps in (1, 3, 10, 100):
        mech = mechanisms.make("affine_maximizer", lam=0.1, solver="mirror_ascent", steps=steps, step_size=1.0)
        u0 = _utility(mech, r, w, 0, r[0], w[0])
        over = max(_utility(mech, r, w, 0, r[0], size) - u0 for size in range(3, 11))
        if steps <= 3:  # truncation acts as a larger lam: claiming more size undoes it
            assert over > 1e-4
            u_same = _utility(mech, same, w, 0, same[0], w[0])
            assert _utility(mech, same, w, 0, same[0], w[0] + 1.0) > u_same + 1e-4
        gains[steps] = float(adversary.best_response(mech, r, w, 0, report_size=True, max_size=10).gain)
        assert gains[steps] >= over - 1e-12
    assert gains[1] > gains[3] > gains[10] > gains[100]
    assert gains[100] < 1e-6 * gains[1]


@settings(deadline=None, derandomize=True, max_examples=30)
@given(seed=st.integers(0, 2**31), reg=st.sampled_from(REGS), steps=st.integers(1, 12),
       solver=st.sampled_from(["mirror_ascent", "policy_gradient"]))
def test_checkpoint_payments_are_never_negative(seed, reg, steps, solver):
    rng = np.random.default_rng(seed)
    r, w = _instance(rng, batch=(3,))
    r[:, 1] = rng.random((3, 5))  # arbitrary (unnormalised) reports too
    mech = mechanisms.make("affine_maximizer", lam=float(rng.uniform(0.05, 1)), regularizer=reg, solver=solver,
                           steps=steps, step_size=0.5, payment="checkpoints")
    assert np.all(mech.outcome(r, w).payments >= 0)


@pytest.mark.parametrize("reg", REGS)
def test_early_stopped_payments_keep_dsic_and_can_be_negative(reg):
    rng = np.random.default_rng(11)
    mech = mechanisms.make("affine_maximizer", lam=0.1, regularizer=reg, payment="early_stopped", payment_steps=2,
                           step_size=1.0)
    adversary = GradientAdversary(steps=40, restarts=4, seed=0)
    negative = 0
    for _ in range(4):
        r, w = _instance(rng)
        out = mech.outcome(r, w)
        negative += int(np.sum(out.payments < 0))
        u0 = _utility(mech, r, w, 1, r[1], w[1])
        for rep, size in _misreports(rng, r[1], w[1]):
            assert _utility(mech, r, w, 1, rep, size) <= u0 + 1e-10
        assert adversary.best_response(mech, r, w, 1, report_size=True, max_size=10).gain <= 1e-9
    assert negative > 0


def test_a_fixed_menu_is_dsic_and_returns_a_menu_row():
    rng = np.random.default_rng(2)
    menu = rng.dirichlet(np.ones(5), size=7)
    menu[0] = np.eye(5)[2]  # a vertex, zeros included
    mech = mechanisms.make("affine_maximizer", lam=0.1, menu=menu)
    for _ in range(5):
        r, w = _instance(rng)
        out = mech.outcome(r, w)
        assert any(np.array_equal(out.policy, row) for row in menu)
        S = w @ r
        best = max(range(7), key=lambda m: _asw(menu[m], S, 0.1, np.full(5, 0.2), "kl"))
        np.testing.assert_array_equal(out.policy, menu[best])
        u0 = _utility(mech, r, w, 2, r[2], w[2])
        for rep, size in _misreports(rng, r[2], w[2], count=60):
            assert _utility(mech, r, w, 2, rep, size) <= u0 + 1e-10
        assert np.all(out.payments >= -1e-12)


def test_soup_menu_holds_the_single_reward_optima_and_their_mixtures():
    rng = np.random.default_rng(4)
    r, w = _instance(rng, n=3)
    ref = np.full(5, 0.2)
    lam = 0.3
    mech = mechanisms.make("sw_max", lam=lam, menu="soups", menu_size=4)
    candidates = [_gibbs(r[i], lam, ref) for i in range(3)] + [_gibbs(0.5 * r[0] + 0.5 * r[1], lam, ref)]
    S = w @ r
    best = max(candidates, key=lambda c: _asw(c, S, lam, ref, "kl"))
    np.testing.assert_allclose(mech.outcome(r, w).policy, best, rtol=1e-9)
    geometric = np.sqrt(candidates[0] * candidates[1])  # the soup of two KL optima is their geometric mixture
    np.testing.assert_allclose(candidates[3], geometric / geometric.sum(), rtol=1e-9)


def test_policy_gradient_is_reproducible_and_its_mean_approaches_the_optimum():
    rng = np.random.default_rng(6)
    r, w = _instance(rng, n=3, K=4)
    lam = 0.5
    exact = mechanisms.make("sw_max", lam=lam).outcome(r, w).policy

    def run(steps, seed):
        return mechanisms.make("sw_max", lam=lam, solver="policy_gradient", steps=steps, step_size=0.5,
                               samples_per_step=8, seed=seed).outcome(r, w).policy

    np.testing.assert_array_equal(run(50, 1), run(50, 1))
    assert not np.array_equal(run(50, 1), run(50, 2))
    errors = [np.abs(np.mean([run(steps, s) for s in range(30)], axis=0) - exact).max() for steps in (5, 50, 600)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02


COMBINATIONS = [
    ("sw_max", dict(solver="mirror_ascent", steps=4)),
    ("sw_max", dict(solver="mirror_ascent", steps=3, regularizer="tv", step_size=0.5)),
    ("sw_max", dict(solver="policy_gradient", steps=6, seed=2)),
    ("sw_max", dict(menu="soups", menu_size=5)),
    ("affine_maximizer", dict(solver="mirror_ascent", steps=3, regularizer="chi2", payment="same_solver")),
    ("affine_maximizer", dict(solver="mirror_ascent", steps=5, payment="checkpoints")),
    ("affine_maximizer", dict(solver="policy_gradient", steps=4, payment="checkpoints", samples_per_step=3)),
    ("affine_maximizer", dict(solver="policy_gradient", steps=4, payment="same_solver")),
    ("affine_maximizer", dict(payment="early_stopped", payment_steps=2)),
    ("affine_maximizer", dict(solver="mirror_ascent", steps=6, payment="early_stopped", payment_steps=2)),
    ("affine_maximizer", dict(menu=np.eye(4)[[0, 1, 3]] * 0.7 + 0.075)),
    ("affine_maximizer", dict(menu="soups", solver="mirror_ascent", steps=2)),
]


@pytest.mark.parametrize("name,params", COMBINATIONS)
def test_batched_outcomes_equal_scalar_ones(name, params):
    rng = np.random.default_rng(9)
    mech = mechanisms.make(name, lam=0.2, **params)
    r, w = _instance(rng, n=3, K=4, batch=(2, 3))
    alt, alt_w = _instance(rng, n=3, K=4, batch=(2, 3))
    out, dev = mech.outcome(r, w), mech.unilateral_outcomes(r, w, alt, alt_w)
    for b in np.ndindex(2, 3):
        one = mech.outcome(r[b], w[b])
        for key in ("policy", "payments", "value", "gap"):
            np.testing.assert_array_equal(getattr(out, key)[b], getattr(one, key))
        for i in range(3):  # labeler i alone deviates: the counterfactual is that profile's outcome
            profile, sizes = r[b].copy(), w[b].copy()
            profile[i], sizes[i] = alt[b][i], alt_w[b][i]
            cf = mech.outcome(profile, sizes)
            np.testing.assert_array_equal(dev.policy[b][i], cf.policy)
            np.testing.assert_array_equal(dev.payments[b][i], cf.payments[i])


@pytest.mark.parametrize("name,params", COMBINATIONS)
def test_batched_env_matches_scalar_env(name, params):
    from test_batched_env import _compare

    from strategic_feedback_env.batched import BatchedRewardReport

    config = {"n_labelers": 3, "n_outcomes": 4, "mechanism": name, "report_size": True, "max_cycles": 3,
              "mechanism_params": {"lam": 0.2, **{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                  for k, v in params.items()}}}
    _compare(reward_report_v0, BatchedRewardReport, config, seed=1)


def test_env_gain_info_is_the_gain_over_reporting_the_type_alone():
    env = reward_report_v0.parallel_env(n_labelers=3, n_outcomes=4, mechanism="affine_maximizer", report_size=True,
                                        mechanism_params={"solver": "mirror_ascent", "steps": 2, "lam": 0.1,
                                                          "payment": "checkpoints"})
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    actions = {a: rng.random(5) for a in env.agents}
    rewards, sizes = env.rewards.copy(), env.sizes.copy()
    _, utility, _, _, infos = env.step(actions)
    reports = np.stack([infos[a]["report"] for a in env.possible_agents])
    reported = np.stack([infos[a]["reported_size"] for a in env.possible_agents])
    for i, a in enumerate(env.possible_agents):
        profile, profile_sizes = reports.copy(), reported.copy()
        profile[i], profile_sizes[i] = rewards[i], sizes[i]
        out = env.mechanism.outcome(profile, profile_sizes)
        truthful = sizes[i] * out.policy @ rewards[i] - out.payments[i]
        assert np.isclose(infos[a]["truthful_utility"], truthful, rtol=1e-12, atol=1e-14)
        assert np.isclose(infos[a]["gain"], utility[a] - truthful, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name,params", [c for c in COMBINATIONS if "menu" not in c[1]
                                         and c[1].get("solver") != "policy_gradient"])
def test_torch_twin_unrolls_the_same_run(name, params):
    rng = np.random.default_rng(1)
    mech = mechanisms.make(name, lam=0.2, **params)
    r, w = _instance(rng, n=3, K=4, batch=(2,))
    out = mech.outcome(r, w)
    x = torch.tensor(r, requires_grad=True)
    t = torch_outcome(mech, x, torch.tensor(w))
    for key in ("policy", "payments", "value", "gap"):
        np.testing.assert_allclose(getattr(t, key).detach().numpy(), getattr(out, key), atol=1e-12, rtol=1e-10)
    (t.policy[..., 0].sum() + t.payments.sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("params", [dict(menu="soups"), dict(menu=np.eye(3)), dict(solver="policy_gradient")])
def test_non_differentiable_rules_are_refused_by_the_torch_twin_and_the_gradient_adversary(params):
    mech = mechanisms.make("affine_maximizer", **params)
    assert not mech.differentiable and not GradientAdversary.applies_to(mech)
    assert GradientAdversary.why_not(mech)
    with pytest.raises(ValueError, match="not differentiable"):
        torch_outcome(mech, torch.ones(2, 3) / 3)
    with pytest.raises(ValueError, match="differentiable"):
        GradientAdversary().best_response(mech, np.ones((2, 3)) / 3, None, 0)


@pytest.mark.parametrize("name,params,pattern", [
    ("sw_max", dict(solver="adam"), "solver must be one of"),
    ("affine_maximizer", dict(payment="vcg"), "payment must be one of"),
    ("sw_max", dict(payment="exact"), "unknown parameter.*payment"),
    ("sw_max", dict(solver="mirror_ascent", steps=0), "steps must be an integer >= 1"),
    ("sw_max", dict(solver="mirror_ascent", steps=2.5), "steps must be an integer"),
    ("sw_max", dict(solver="mirror_ascent", step_size=0.0), "step_size must be a finite number > 0"),
    ("sw_max", dict(solver="mirror_ascent", step_size=-1), "step_size"),
    ("sw_max", dict(solver="mirror_ascent", step_size="big"), "step_size must be a finite number"),
    ("sw_max", dict(solver="mirror_ascent", lam=0.5, step_size=4.0), r"step_size \* lam must be < 2"),
    ("affine_maximizer", dict(payment="early_stopped", payment_steps=1, lam=1.0, step_size=2.5),
     r"step_size \* lam must be < 2"),
    ("sw_max", dict(solver="policy_gradient", samples_per_step=1), "samples_per_step must be an integer >= 2"),
    ("sw_max", dict(solver="policy_gradient", seed=-1), "seed must be an integer"),
    ("affine_maximizer", dict(payment="checkpoints"), "checkpoints.*iterative solver"),
    ("affine_maximizer", dict(payment="early_stopped"), "needs payment_steps"),
    ("affine_maximizer", dict(payment="early_stopped", payment_steps=0), "payment_steps must be an integer >= 1"),
    ("affine_maximizer", dict(payment_steps=3), "payment_steps only applies"),
    ("sw_max", dict(menu=np.ones((2, 3))), "menu rows must lie on the simplex"),
    ("sw_max", dict(menu=np.full((2, 3), -0.5) + np.eye(3)[:2] * 2), "menu rows must lie on the simplex"),
    ("sw_max", dict(menu=np.ones(3) / 3), r"menu must be an \(M, K\) array"),
    ("sw_max", dict(menu="buffet"), r"menu must be an \(M, K\) array.*'soups'"),
    ("sw_max", dict(menu=[[np.nan, 1.0]]), "menu contains NaN"),
    ("sw_max", dict(menu_size=3), "menu_size only applies"),
    ("sw_max", dict(menu="soups", menu_size=0), "menu_size must be an integer >= 1"),
    ("sw_max", dict(menu=np.eye(3), solver="mirror_ascent"), "fixed menu is not trained"),
    ("affine_maximizer", dict(menu="soups", payment="same_solver"), "payment must be 'exact'"),
])
def test_bad_practical_parameters(name, params, pattern):
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name, **params)


def test_menu_of_the_wrong_width_is_rejected_at_call_time():
    mech = mechanisms.make("affine_maximizer", menu=np.eye(3))
    with pytest.raises(ValueError, match="menu has K=3 outcomes but the reports have K=4"):
        mech.outcome(np.ones((2, 4)) / 4)


def test_params_rebuild_the_mechanism():
    mech = mechanisms.make("affine_maximizer", lam=0.3, menu=np.eye(3), payment="exact")
    again = mechanisms.make(mech.name, **mech.params())
    r = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    np.testing.assert_array_equal(mech.outcome(r).payments, again.outcome(r).payments)
    mech = mechanisms.make("affine_maximizer", solver="policy_gradient", steps=3, seed=4, payment="early_stopped",
                           payment_steps=2, step_size=0.5)
    assert mechanisms.make(mech.name, **mech.params()).params() == mech.params()


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("params", [dict(solver="mirror_ascent", steps=40, step_size=100.0),
                                    dict(solver="policy_gradient", steps=40, step_size=50.0),
                                    dict(solver="mirror_ascent", steps=5, payment="checkpoints")])
def test_huge_scores_stay_finite(reg, params):
    rng = np.random.default_rng(0)
    r, _ = _instance(rng, batch=(2,))
    w = np.full((2, 4), 1e4)
    lam = 1e-3  # S / lam ~ 1e7
    out = mechanisms.make("affine_maximizer", lam=lam, regularizer=reg, **params).outcome(r, w)
    for value in (out.policy, out.payments, out.value, out.gap):
        assert np.all(np.isfinite(value))
    np.testing.assert_allclose(out.policy.sum(-1), 1.0, rtol=1e-12)
    assert np.all(out.gap >= -1e-6 * np.abs(out.value))


def test_tensor_reports_run_the_same_practical_rules():
    rng = np.random.default_rng(12)
    r, w = _instance(rng, n=3, K=4, batch=(2,))
    mech = mechanisms.make("affine_maximizer", lam=0.2, solver="mirror_ascent", steps=4, payment="checkpoints")
    out, t = mech.outcome(r, w), mech.outcome(torch.tensor(r), torch.tensor(w))
    assert isinstance(t.policy, torch.Tensor)
    np.testing.assert_allclose(t.payments.numpy(), out.payments, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(t.gap.numpy(), out.gap, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="numpy arrays only"):
        mechanisms.make("sw_max", menu="soups").outcome(torch.tensor(r), torch.tensor(w))


def test_rewarded_soups_can_be_manipulated_while_a_fixed_menu_cannot():
    """The soup menu depends on the reports (docs/model.md §4), so some misreport pays; found here by
    random search on random instances (a fixed menu admits none: see the DSIC test above)."""
    rng = np.random.default_rng(21)
    mech = mechanisms.make("affine_maximizer", lam=0.1, menu="soups")
    best = 0.0
    for _ in range(6):
        r, w = _instance(rng)
        u0 = _utility(mech, r, w, 0, r[0], w[0])
        best = max(best, max(_utility(mech, r, w, 0, rep, size) - u0
                             for rep, size in _misreports(rng, r[0], w[0], count=40)))
    assert best > 1e-3
