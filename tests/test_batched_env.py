"""The batched games against the scalar ParallelEnvs (bit-identical for B=1), plus validation."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import online_feedback_v0, reward_report_v0
from strategic_feedback_env.batched import BatchedOnlineFeedback, BatchedRewardReport, make_batched

RR_CONFIGS = [
    {},
    {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 3},
    {"n_labelers": 2, "n_outcomes": 5, "normalization": "max", "report_size": True, "max_cycles": 4},
    {"reward_distribution": "dirichlet", "dirichlet_alpha": 0.5, "redraw_types": "episode", "max_cycles": 3},
    {"input_noise": 0.05, "mechanism": "sw_max", "mechanism_params": {"lam": 0.3}, "max_cycles": 3},
    {"n_labelers": 4, "n_outcomes": 3, "mechanism_params": {"regularizer": "chi2", "lam": 0.2},
     "sizes": [1, 2, 3, 4], "report_size": True, "max_cycles": 3},
    {"mechanism_params": {"regularizer": "tv", "lam": 0.5}, "max_cycles": 2},
    {"n_labelers": 3, "n_outcomes": 4, "mechanism": "average", "max_cycles": 2},
]
OF_CONFIGS = [
    {"max_cycles": 7},
    {"n_labelers": 3, "mechanism": "hedge", "outcome_model": "probability", "max_cycles": 5},
    {"n_labelers": 4, "mechanism": "median", "biases": [0.0, 0.1, -0.2, 0.3], "max_cycles": 4},
    {"n_labelers": 2, "mechanism": "average", "accuracies": [0.1, 0.3], "max_cycles": 3},
]


def _assert_same(scalar_value, batched_value, key):
    a = np.asarray(scalar_value, dtype=np.float64)
    b = np.asarray(batched_value, dtype=np.float64)
    assert a.shape == b.shape, (key, a.shape, b.shape)
    assert np.array_equal(a, b), (key, a, b)


def _compare(scalar_module, batched_cls, config, seed, episodes=2):
    env = scalar_module.parallel_env(**config)
    benv = batched_cls(num_games=1, seed=seed, **config)
    rng = np.random.default_rng(seed + 100)
    obs, _ = env.reset(seed=seed)
    bobs = benv.reset()
    agents = env.possible_agents
    steps = episodes * env.max_cycles
    for t in range(steps):
        _assert_same(np.stack([obs[a] for a in agents]), bobs[0], "obs")
        if t % 3 == 0:  # mix truthful and random actions
            acts = benv.truthful_actions()
            scalar_truth = env.truthful_actions()
            _assert_same(np.stack([scalar_truth[a] for a in agents]), acts[0], "truthful")
        else:
            acts = rng.random(benv.action_space.shape)
        obs, rew, term, trunc, info = env.step({a: acts[0, i] for i, a in enumerate(agents)})
        bobs, brew, bterm, btrunc, binfo = benv.step(acts)
        _assert_same([rew[a] for a in agents], brew[0], "reward")
        assert bool(bterm[0]) == all(term.values()) and bool(btrunc[0]) == any(trunc.values())
        for key, value in info[agents[0]].items():
            if key in binfo and np.ndim(binfo[key]) >= 2 and binfo[key].shape[1] == env.n and key not in (
                "policy", "weights"
            ):
                _assert_same([info[a][key] for a in agents], binfo[key][0], key)
            else:
                _assert_same(value, binfo[key][0], key)
        if all(term.values()):
            _assert_same(np.stack([obs[a] for a in agents]), binfo["final_observation"][0], "final_obs")
            obs, _ = env.reset()


@pytest.mark.parametrize("config", RR_CONFIGS)
def test_reward_report_b1_matches_scalar(config):
    for seed in (0, 7):
        _compare(reward_report_v0, BatchedRewardReport, config, seed)


@pytest.mark.parametrize("config", OF_CONFIGS)
def test_online_feedback_b1_matches_scalar(config):
    for seed in (0, 3):
        _compare(online_feedback_v0, BatchedOnlineFeedback, config, seed)


@pytest.mark.parametrize("game", ["reward_report_v0", "online_feedback_v0"])
def test_batched_shapes_autoreset_and_determinism(game):
    B = 6
    e1 = make_batched(game, num_games=B, seed=5, n_labelers=3, max_cycles=3)
    e2 = make_batched(game, num_games=B, seed=5, n_labelers=3, max_cycles=3)
    o1, o2 = e1.reset(), e2.reset()
    assert o1.shape == (B, 3, e1.obs_dim) and o1.dtype == np.float64
    assert np.array_equal(o1, o2)
    assert e1.observation_space.contains(o1)
    rng = np.random.default_rng(0)
    for t in range(7):
        a = rng.random((B, 3, e1.act_dim))
        r1 = e1.step(a)
        r2 = e2.step(a)
        obs, rew, term, trunc, info = r1
        assert rew.shape == (B, 3) and term.shape == (B,) and trunc.shape == (B,)
        assert info["gain"].shape == (B, 3) and info["social_welfare"].shape == (B,)
        assert term.all() == ((t + 1) % 3 == 0) and not trunc.any()
        assert ("final_observation" in info) == bool(term.all())
        assert np.array_equal(obs, r2[0]) and np.array_equal(rew, r2[1])
        if term.all():
            assert np.allclose(info["final_observation"][..., e1.layout["round"]], 1.0)
            assert np.allclose(obs[..., e1.layout["round"]], 0.0)
    # different games of the batch get different draws
    assert not np.array_equal(o1[0], o1[1])


def test_truthful_reports_have_zero_gain_under_affine_maximizer():
    env = BatchedRewardReport(num_games=64, seed=1)
    env.reset()
    _, _, _, _, info = env.step(env.truthful_actions())
    assert np.allclose(info["gain"], 0.0, atol=1e-9)
    assert (info["payment"] >= -1e-12).all()


@pytest.mark.parametrize("cls", [BatchedRewardReport, BatchedOnlineFeedback])
def test_validation_errors_leave_state_unchanged(cls):
    env = cls(num_games=3, seed=0, n_labelers=2, max_cycles=4)
    env2 = cls(num_games=3, seed=0, n_labelers=2, max_cycles=4)
    with pytest.raises(RuntimeError):
        env.step(np.zeros(env.action_space.shape))
    env.reset()
    env2.reset()
    good = np.full(env.action_space.shape, 0.5)
    bad = []
    bad.append(np.zeros((3, 2, env.act_dim + 1)))
    bad.append(np.zeros((2, 2, env.act_dim)))
    nan = good.copy(); nan[1, 0, 0] = np.nan; bad.append(nan)
    inf = good.copy(); inf[2, 1, 0] = np.inf; bad.append(inf)
    high = good.copy(); high[0, 1, 0] = 1.5; bad.append(high)
    low = good.copy(); low[0, 0, 0] = -0.1; bad.append(low)
    bad.append(np.full(env.action_space.shape, "a"))
    bad.append(good.tolist()[:2])
    state = (env.round, env.np_random.bit_generator.state)
    for b in bad:
        with pytest.raises(ValueError):
            env.step(b)
        assert (env.round, env.np_random.bit_generator.state) == state
    o1 = env.step(good)
    o2 = env2.step(good)
    assert np.array_equal(o1[0], o2[0]) and np.array_equal(o1[1], o2[1])
    # integer and float32 actions are accepted
    env.step(np.zeros(env.action_space.shape, dtype=np.int64))
    env.step(np.full(env.action_space.shape, 0.25, dtype=np.float32))


def test_bad_config_rejected():
    with pytest.raises(ValueError):
        BatchedRewardReport(num_games=0)
    with pytest.raises(ValueError):
        BatchedRewardReport(num_games=2, normalization="nope")
    with pytest.raises(ValueError):
        BatchedOnlineFeedback(num_games=2, render_mode="ansi")
    with pytest.raises(ValueError):
        make_batched("nope")
    with pytest.raises(ValueError, match="unknown game"):
        make_batched(["reward_report_v0"])
    env = BatchedRewardReport(num_games=2, n_labelers=2, n_outcomes=2)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step([[[0.1, 0.2], [0.1]], [[0.1, 0.2], [0.1, 0.3]]])


def test_fast_reductions_are_bit_identical_to_numpy():
    from strategic_feedback_env.mechanisms._ops import max_last, sum_last

    rng = np.random.default_rng(0)
    for K in list(range(1, 20)) + [31, 32, 33, 64, 65]:
        x = rng.random((300, 4, K)) * 10.0 ** rng.integers(-3, 4, (300, 4, 1))
        assert np.array_equal(sum_last(x), x.sum(-1)), K
        assert np.array_equal(max_last(x), x.max(-1)), K
        assert np.array_equal(sum_last(x, keepdims=True), x.sum(-1, keepdims=True)), K
    x = rng.random((600, 10))
    x[3, 4] = np.nan
    assert np.isnan(max_last(x)[3]) and np.isnan(sum_last(x)[3])


def test_large_batch_matches_scalar_reductions_path():
    """B large takes the column-reduction path; each game must still equal a B=1 rerun of its
    own reports through the same rules (the mechanism is row-independent)."""
    from strategic_feedback_env import mechanisms
    from strategic_feedback_env.reward_report import rules

    rng = np.random.default_rng(2)
    mech = mechanisms.make("affine_maximizer", lam=0.5)
    reports = rules.normalise(rng.random((400, 5, 10)), "sum")
    truth = rules.normalise(rng.random((400, 5, 10)), "sum")
    sizes = rng.integers(1, 11, (400, 5)).astype(float)
    ref = np.full(10, 0.1)
    big = rules.resolve_round(mech, reports, sizes, truth, sizes, ref)
    for b in (0, 17, 399):
        one = rules.resolve_round(mech, reports[b], sizes[b], truth[b], sizes[b], ref)
        for key in ("utility", "truthful_utility", "payment", "policy", "social_welfare"):
            assert np.array_equal(big[key][b], one[key]), key


@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
def test_value_only_solvers_match_full_solvers(regularizer):
    from strategic_feedback_env.mechanisms.regularizers import SOLVERS, VALUE_SOLVERS

    rng = np.random.default_rng(1)
    for shape in ((7,), (3, 5, 7), (600, 5, 10)):
        S = rng.random(shape) * 10.0 ** rng.integers(-2, 6)
        ref = rng.random(shape[-1]) + 0.1
        ref /= ref.sum()
        for lam in (1.0, 0.01, 3.0):
            assert np.array_equal(VALUE_SOLVERS[regularizer](S, lam, ref), SOLVERS[regularizer](S, lam, ref)[1])


@pytest.mark.parametrize("name", ["affine_maximizer", "sw_max"])
@pytest.mark.parametrize("regularizer", ["kl", "chi2", "tv"])
def test_round_outcomes_fast_path_matches_public_methods(name, regularizer):
    from strategic_feedback_env import mechanisms

    rng = np.random.default_rng(3)
    mech = mechanisms.make(name, lam=0.3, regularizer=regularizer)
    for shape in ((4, 6), (600, 5, 10)):
        r = rng.random(shape)
        r /= r.sum(-1, keepdims=True)
        alt = rng.random(shape)
        alt /= alt.sum(-1, keepdims=True)
        w = rng.integers(1, 11, shape[:-1]).astype(float)
        alt_w = rng.integers(1, 11, shape[:-1]).astype(float)
        ref = np.full(shape[-1], 1.0 / shape[-1])
        out, dev = mech._round_outcomes(r, w, alt, alt_w, ref)
        out2 = mech.outcome(r, w, ref)
        dev2 = mech.unilateral_outcomes(r, w, alt, alt_w, ref)
        for a, b in ((out, out2), (dev, dev2)):
            assert np.array_equal(a.policy, b.policy) and np.array_equal(a.payments, b.payments)


@pytest.mark.parametrize("name", ["average", "median", "online_weighted", "hedge"])
def test_online_round_outcomes_match_public_methods(name):
    from strategic_feedback_env import mechanisms

    rng = np.random.default_rng(4)
    for shape in ((5, 2), (600, 5, 3)):
        r = rng.random(shape)
        r /= r.sum(-1, keepdims=True)
        alt = rng.random(shape)
        alt /= alt.sum(-1, keepdims=True)
        mech = mechanisms.make(name)
        y = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-2])]
        mech.update(r, y)  # non-uniform weights for the learning rules
        out, dev = mech._round_outcomes(r, None, alt)
        out2, dev2 = mech.outcome(r), mech.unilateral_outcomes(r, None, alt)
        for a, b in ((out, out2), (dev, dev2)):
            assert np.array_equal(a.policy, b.policy) and np.array_equal(a.payments, b.payments)


def test_sum_rows_is_bit_identical_to_numpy():
    from strategic_feedback_env.mechanisms._ops import sum_rows

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5, 8, 9, 16, 17, 40, 300):
        for B in (1, 7, 200):
            x = rng.random((B, n, 10)) * 10.0 ** rng.integers(-3, 4, (B, n, 1))
            assert np.array_equal(sum_rows(x), x.sum(-2)), (B, n)
    x = rng.random((2, 3, 100, 7))
    assert np.array_equal(sum_rows(x), x.sum(-2))


def test_info_arrays_do_not_alias_state_when_types_are_handed_over():
    from strategic_feedback_env.batched import BatchedRewardReport

    for redraw in ("round", "episode"):
        env = BatchedRewardReport(num_games=3, seed=0, redraw_types=redraw, max_cycles=3)
        env.reset()
        actions = np.full(env.action_space.shape, 0.5)
        _, _, _, _, infos = env.step(actions)
        truthful = env.truthful_actions()
        infos["true_reward"][...] = -1.0
        infos["true_size"][...] = -1.0
        assert np.array_equal(env.truthful_actions(), truthful)
        assert env.rewards.min() >= 0 and env.sizes.min() >= 1
        assert not np.shares_memory(infos["true_size"], infos["reported_size"])


def test_terminal_step_infos_do_not_alias_the_new_episode():
    """On the last round the old types are handed over (``true_reward`` is the view
    ``final_observation[..., :K]`` of the same numbers); writing into any returned array leaves
    the new episode's state as it was."""
    from strategic_feedback_env.batched import BatchedRewardReport

    for redraw in ("round", "episode"):
        env = BatchedRewardReport(num_games=3, seed=0, redraw_types=redraw, max_cycles=1, n_outcomes=4)
        env.reset()
        old = env.rewards.copy()
        obs, rewards, _, _, infos = env.step(np.full(env.action_space.shape, 0.5))
        assert np.array_equal(infos["true_reward"], old)
        assert np.array_equal(infos["final_observation"][..., :4], old)
        state = env.rewards.copy(), env.sizes.copy(), env.last_policy.copy()
        for value in (obs, rewards, *(v for v in infos.values() if isinstance(v, np.ndarray))):
            if value.flags.writeable:
                value[...] = -1
        assert np.array_equal(env.rewards, state[0]) and np.array_equal(env.sizes, state[1])
        assert np.array_equal(env.last_policy, state[2])
        assert np.array_equal(env._observations()[..., :4], state[0])
