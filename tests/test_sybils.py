"""Sybil identities (docs/model.md §5): the env option, its PettingZoo conformance, the split of the
[SUN] type and the [HD] weights, and the audit's sybil rows."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from strategic_feedback_env import mechanisms, online_feedback_v0, reward_report_v0
from strategic_feedback_env.agents import audit
from strategic_feedback_env.batched import make_batched

RR = {"n_labelers": 3, "n_outcomes": 4, "mechanism": "affine_maximizer", "mechanism_params": {"lam": 0.1}}
SYBIL_CONFIGS = [
    (reward_report_v0, {**RR, "sybils": 3, "sybil_of": "labeler_1"}),
    (reward_report_v0, {**RR, "sybils": 2, "report_size": True, "input_noise": 0.05, "mechanism": "sw_max"}),
    (online_feedback_v0, {"n_labelers": 3, "sybils": 3, "sybil_of": "labeler_2"}),
    (online_feedback_v0, {"n_labelers": 2, "sybils": 2, "mechanism": "median"}),
]


@pytest.mark.parametrize("module, cfg", SYBIL_CONFIGS)
def test_sybil_envs_pass_the_pettingzoo_tests(module, cfg):
    env = module.parallel_env(max_cycles=4, **cfg)
    s = env.sybils.labeler
    extra = [f"labeler_{s}_sybil_{j}" for j in range(1, cfg["sybils"])]
    assert env.possible_agents == [f"labeler_{i}" for i in range(cfg["n_labelers"])] + extra
    parallel_api_test(env, num_cycles=10)
    api_test(module.env(max_cycles=4, **cfg), num_cycles=10)
    seed_test(functools.partial(module.env, max_cycles=4, **cfg), num_cycles=8)
    parallel_seed_test(functools.partial(module.parallel_env, max_cycles=4, **cfg), num_cycles=8)


@pytest.mark.parametrize("module, cfg", SYBIL_CONFIGS)
def test_batched_sybil_game_matches_the_scalar_env(module, cfg):
    game = module.__name__.rsplit(".", 1)[-1]
    env = module.parallel_env(max_cycles=3, **cfg)
    batched = make_batched(game, num_games=1, seed=5, max_cycles=3, **cfg)
    obs, _ = env.reset(seed=5)
    b_obs = batched.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert np.array_equal(b_obs[0], np.stack([obs[a] for a in env.possible_agents]))
        a = rng.random((1, env.n, batched.act_dim))
        obs, rewards, *_ = env.step({agent: a[0, i] for i, agent in enumerate(env.possible_agents)})
        b_obs, b_rewards, *_ = batched.step(a)
        assert np.array_equal(b_rewards[0], [rewards[agent] for agent in env.possible_agents])


def test_identities_copy_the_type_drawn_without_sybils():
    """Same seed: the true labelers' types are the game's without sybils (common random numbers);
    the identities copy the sybil's reward and share its size."""
    plain = reward_report_v0.parallel_env(**RR)
    sybil = reward_report_v0.parallel_env(**RR, sybils=3, sybil_of="labeler_1")
    plain.reset(seed=2)
    sybil.reset(seed=2)
    assert np.array_equal(sybil.rewards[:3], plain.rewards)
    assert np.array_equal(sybil.rewards[3:], plain.rewards[[1, 1]])
    assert np.allclose(sybil.sizes, [plain.sizes[0], plain.sizes[1] / 3, plain.sizes[2], *[plain.sizes[1] / 3] * 2])


@pytest.mark.parametrize("regularizer", ["kl", "chi2"])
def test_a_truthful_split_leaves_the_policy_unchanged_and_moves_only_payments(regularizer):
    """SW-Max trains on S = sum_i w_i r_i: k identities reporting the type with sizes w_s / k leave
    S and the trained policy unchanged; the affine maximizer payments change (checked against the
    payments computed from the mechanism on the identities' reports)."""
    config = {**RR, "mechanism_params": {"lam": 0.1, "regularizer": regularizer}, "sizes": [2, 6, 3], "max_cycles": 3}
    plain = reward_report_v0.parallel_env(**config)
    sybil = reward_report_v0.parallel_env(**config, sybils=3, sybil_of="labeler_1")
    plain.reset(seed=4)
    sybil.reset(seed=4)
    mech = mechanisms.make("affine_maximizer", lam=0.3, regularizer=regularizer)
    for _ in range(3):
        rewards, sizes = sybil.rewards.copy(), sybil.sizes.copy()
        _, r_plain, _, _, i_plain = plain.step(plain.truthful_actions())
        _, r_sybil, _, _, i_sybil = sybil.step(sybil.truthful_actions())
        assert np.allclose(i_sybil["labeler_0"]["policy"], i_plain["labeler_0"]["policy"], atol=1e-12)
        for agent in ("labeler_0", "labeler_2"):  # the others' valuations do not move
            assert np.isclose(i_sybil[agent]["valuation"], i_plain[agent]["valuation"], atol=1e-12)
        identities = ["labeler_1", "labeler_1_sybil_1", "labeler_1_sybil_2"]
        paid = sum(i_sybil[a]["payment"] for a in identities)
        # sizes w_s / 3 < 1 are no labeler's size: scale sizes and lam by 3 (same policy, payments x 3)
        expected = mech.outcome(rewards, sizes * 3).payments / 3
        assert np.isclose(paid, expected[[1, 3, 4]].sum(), atol=1e-9)
        assert not np.isclose(paid, i_plain["labeler_1"]["payment"], rtol=1e-3)
        # the identities' rewards sum to the sybil's true utility w_s <theta, r_s> - sum_j p_j
        true_u = 6 * i_plain["labeler_1"]["valuation"] - paid
        assert np.isclose(sum(r_sybil[a] for a in identities), true_u, atol=1e-9)


def test_online_identities_start_with_the_ordinary_weight_and_share_one_influence():
    env = online_feedback_v0.parallel_env(n_labelers=3, sybils=2, max_cycles=5)
    obs, _ = env.reset(seed=1)
    assert np.allclose(env.weights, 0.25)
    assert obs["labeler_0_sybil_1"][0] == obs["labeler_0"][0]  # same signal
    _, rewards, _, _, infos = env.step(env.truthful_actions())
    influence = -(infos["labeler_0"]["aggregate"] - env.last_round["agent_infos"]["target"][0]) ** 2
    assert np.isclose(rewards["labeler_0"] + rewards["labeler_0_sybil_1"], influence)
    assert np.isclose(rewards["labeler_1"], -(infos["labeler_1"]["aggregate"] - infos["labeler_1"]["target"]) ** 2)


@pytest.mark.parametrize("bad, pattern", [(0, "sybils must be"), (-1, "sybils must be"), (1.5, "sybils must be"),
                                          (True, "sybils must be")])
def test_bad_sybil_counts(bad, pattern):
    for module in (reward_report_v0, online_feedback_v0):
        with pytest.raises(ValueError, match=pattern):
            module.parallel_env(sybils=bad)
    with pytest.raises(ValueError, match="sybil_of"):
        reward_report_v0.parallel_env(n_labelers=3, sybils=2, sybil_of="labeler_5")
    with pytest.raises(ValueError, match="sybils must be"):
        audit({**RR, "max_cycles": 2}, ["sybil_gradient"], episodes=2, sybils=0)


@pytest.mark.parametrize("game, config, adversary", [
    ("reward_report_v0", {**RR, "max_cycles": 2, "report_size": True}, "sybil_gradient"),
    ("online_feedback_v0", {"n_labelers": 3, "max_cycles": 10}, "sybil_myopic"),
    ("online_feedback_v0", {"n_labelers": 3, "max_cycles": 5}, "sybil_ppo"),
])
def test_sybil_audit_rows(game, config, adversary):
    result = audit(config, [adversary], episodes=3, game=game, focal_agents=["labeler_2"], sybils=3,
                   learn={"gradient": {"steps": 10}, "ppo": {"timesteps": 256}})
    truthful, row = result.overall
    assert row["labeler"] == "labeler_2" and row["group_size"] == 3
    assert np.isfinite(row["gain"]) and np.isfinite(row["gain_ci"]) and np.isfinite(row["split_gain"])
    per_labeler = audit(config, ["random"], episodes=3, game=game, focal_agents=["labeler_2"]).labelers[0]
    assert np.isclose(row["truthful_utility"], per_labeler["truthful_utility"])  # baseline: entering once
    if adversary != "sybil_ppo":  # the white-box searches never do worse than truthful identities here
        assert row["gain"] >= row["split_gain"] - 1e-9
