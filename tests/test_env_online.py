"""online_feedback_v0: regret behaviour, weights and observation privacy (docs/model.md §2).

Weights, aggregates and regret are recomputed here from the infos with the formulas of
docs/model.md §2 (Weighted-Score Update, ``eta = sqrt(ln n / T)``, quadratic loss)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategic_feedback_env import online_feedback_v0
from strategic_feedback_env.online_feedback import rules


def _truthful_regret_per_round(mechanism, T, seed):
    env = online_feedback_v0.parallel_env(mechanism=mechanism, outcome_model="probability", max_cycles=T)
    env.reset(seed=seed)
    while env.agents:
        _, _, _, _, infos = env.step(env.truthful_actions())
    return infos["labeler_0"]["regret"] / T


@pytest.mark.parametrize("seed", [0, 1])
def test_average_regret_is_linear_while_online_weighted_is_sublinear(seed):
    short, long = 200, 2500
    avg = [_truthful_regret_per_round("average", T, seed) for T in (short, long)]
    ow = [_truthful_regret_per_round("online_weighted", T, seed) for T in (short, long)]
    # average: regret per round does not vanish (Theta(T) regret) ...
    assert avg[0] > 0.005 and avg[1] > 0.005
    assert avg[1] > 0.7 * avg[0]
    # ... online weighted: regret per round shrinks (O(sqrt T) would give a factor ~0.28)
    assert ow[1] < 0.5 * ow[0]
    assert ow[1] < 0.4 * avg[1]


def _play(mechanism, T=40, n=4, seed=0, outcome_model="bernoulli", policy="random"):
    env = online_feedback_v0.parallel_env(n_labelers=n, mechanism=mechanism, outcome_model=outcome_model,
                                          max_cycles=T)
    rng = np.random.default_rng(seed + 100)
    obs, _ = env.reset(seed=seed)
    history = []
    while env.agents:
        if policy == "random":
            actions = {a: rng.random(1) for a in env.agents}
        else:
            actions = env.truthful_actions()
        prev_obs = obs
        obs, rew, term, trunc, infos = env.step(actions)
        history.append((prev_obs, actions, rew, infos))
    return env, history


@pytest.mark.parametrize("mechanism", ["online_weighted", "hedge", "average", "median"])
@pytest.mark.parametrize("outcome_model", ["bernoulli", "probability"])
def test_weights_stay_on_the_simplex_and_match_the_update_rule(mechanism, outcome_model):
    n, T = 4, 60
    env, history = _play(mechanism, T=T, n=n, outcome_model=outcome_model)
    eta = math.sqrt(math.log(n) / T)
    w = np.full(n, 1.0 / n)
    agg_loss, lab_loss = 0.0, np.zeros(n)
    for t, (prev_obs, actions, rew, infos) in enumerate(history):
        agents = list(infos)
        shared = infos[agents[0]]
        used = np.array([infos[a]["weight"] for a in agents])
        after = shared["weights"]
        for vec in (used, after):
            assert np.all(vec >= 0) and abs(vec.sum() - 1.0) < 1e-12
        # the weight an agent observed before acting is the weight used this round
        np.testing.assert_allclose(used, [prev_obs[a][rules.OBSERVATION_LAYOUT["weight"]][0] for a in agents],
                                   rtol=0, atol=0)
        np.testing.assert_allclose(used, w, rtol=1e-10, atol=1e-14)
        x = np.array([actions[a][0] for a in agents])
        y = shared["y"]
        if outcome_model == "bernoulli":
            assert y in (0.0, 1.0)
        else:
            assert y == shared["q"]
        losses = (x - y) ** 2
        if mechanism == "median":
            expected_agg = np.median(x)
        else:
            expected_agg = float(w @ x)
        np.testing.assert_allclose(shared["aggregate"], expected_agg, rtol=1e-12, atol=1e-14)
        # independent weight update
        if mechanism == "online_weighted":
            w = w * (1 - eta * losses + eta * (w @ losses))
            w = w / w.sum()
        elif mechanism == "hedge":
            w = w * np.exp(-eta * losses)
            w = w / w.sum()
        np.testing.assert_allclose(after, w, rtol=1e-10, atol=1e-14)
        # influence reward and regret
        targets = np.array([infos[a]["target"] for a in agents])
        signals = np.array([infos[a]["signal"] for a in agents])
        np.testing.assert_allclose([rew[a] for a in agents], -(shared["aggregate"] - targets) ** 2,
                                   rtol=1e-12, atol=1e-15)
        agg_loss += (shared["aggregate"] - y) ** 2
        lab_loss += (signals - y) ** 2
        np.testing.assert_allclose(shared["regret"], agg_loss - lab_loss.min(), rtol=1e-10, atol=1e-12)
    if mechanism in ("average", "median"):
        np.testing.assert_array_equal(w, np.full(n, 1.0 / n))
    else:  # the weights actually moved
        assert np.abs(w - 1.0 / n).max() > 1e-3


def test_truthful_gain_is_zero_and_counterfactual_recomputed():
    env, history = _play("online_weighted", T=20, n=3, policy="random")
    for _, actions, _, infos in history:
        agents = list(infos)
        w = np.array([infos[a]["weight"] for a in agents])
        x = np.array([actions[a][0] for a in agents])
        for i, a in enumerate(agents):
            x_dev = x.copy()
            x_dev[i] = infos[a]["signal"]
            expected = -(w @ x_dev - infos[a]["target"]) ** 2
            np.testing.assert_allclose(infos[a]["truthful_utility"], expected, rtol=1e-12, atol=1e-15)
    env, history = _play("online_weighted", T=20, n=3, policy="truthful")
    for _, _, _, infos in history:
        assert all(abs(i["gain"]) < 1e-15 for i in infos.values())


def test_signals_targets_and_accuracies():
    """Signals are clip(q + sigma_i xi): the accurate labeler is closer to q on average."""
    acc = np.array([0.0, 0.05, 0.4])
    env = online_feedback_v0.parallel_env(n_labelers=3, accuracies=acc, biases=[0.0, 0.2, -0.3], max_cycles=300)
    env.reset(seed=0)
    err = np.zeros(3)
    while env.agents:
        _, _, _, _, infos = env.step(env.truthful_actions())
        q = infos["labeler_0"]["q"]
        s = np.array([i["signal"] for i in infos.values()])
        b = np.array([i["target"] for i in infos.values()])
        assert s[0] == q  # sigma = 0: the signal is the truth
        np.testing.assert_allclose(b, np.clip(s + [0.0, 0.2, -0.3], 0, 1), atol=1e-15)
        err += (s - q) ** 2
    assert err[0] == 0 and err[1] < err[2]


# -- observation privacy ---------------------------------------------------------------------

def test_rules_observe_is_private():
    rng = np.random.default_rng(0)
    n = 5
    s, b = rng.random(n), rng.random(n)
    w = rng.dirichlet(np.ones(n))
    base = rules.observe(s, b, w, 0.3, 0.4, 1.0)
    L = rules.OBSERVATION_LAYOUT
    for i in range(n):
        assert base[i, L["signal"]][0] == s[i] and base[i, L["target"]][0] == b[i]
        assert base[i, L["weight"]][0] == w[i]
    for j in range(n):
        s2, b2, w2 = s.copy(), b.copy(), w.copy()
        s2[j], b2[j] = 1 - s2[j], 1 - b2[j]
        w2[j] *= 3
        changed = rules.observe(s2, b2, w2, 0.3, 0.4, 1.0)
        for i in range(n):
            if i != j:
                np.testing.assert_array_equal(changed[i], base[i])
            else:
                assert not np.array_equal(changed[i], base[i])


def test_env_observation_depends_only_on_own_private_signal():
    """Perturb another labeler's private state inside the env: my observation is unchanged."""
    env = online_feedback_v0.parallel_env(n_labelers=4, max_cycles=5)
    obs, _ = env.reset(seed=3)
    env.step(env.truthful_actions())  # weights are no longer uniform
    mine = env._observations()[0].copy()
    assert mine[rules.OBSERVATION_LAYOUT["weight"]][0] == env.weights[0]
    env.signals = env.signals.copy()
    env.targets = env.targets.copy()
    env.signals[1:] = 1.0 - env.signals[1:]
    env.targets[1:] = 1.0 - env.targets[1:]
    env.weights = env.weights.copy()
    env.weights[1:] = env.weights[1:][::-1]
    np.testing.assert_array_equal(env._observations()[0], mine)
    # no other labeler's signal or target appears anywhere in my observation vector
    obs = env._observations()
    for j in range(1, 4):
        for private in (env.signals[j], env.targets[j]):
            if private not in (0.0, 1.0, 0.5):
                assert private not in obs[0]


def test_observation_layout_and_bounds():
    env, history = _play("online_weighted", T=10, n=3)
    L = rules.OBSERVATION_LAYOUT
    prev_infos = None
    for t, (prev_obs, _, _, infos) in enumerate(history):
        for a in infos:
            o = prev_obs[a]
            assert o.shape == (6,) and o.dtype == np.float64 and np.all((o >= 0) & (o <= 1))
            assert o[L["signal"]][0] == infos[a]["signal"]
            assert o[L["target"]][0] == infos[a]["target"]
            assert o[L["round"]][0] == t / 10
            if prev_infos is None:
                assert o[L["last_aggregate"]][0] == 0.5 and o[L["last_y"]][0] == 0.5
            else:
                assert o[L["last_aggregate"]][0] == prev_infos[a]["aggregate"]
                assert o[L["last_y"]][0] == prev_infos[a]["y"]
        prev_infos = infos
