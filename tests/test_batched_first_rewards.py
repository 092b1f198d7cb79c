"""An episode's first rewards, drawn straight into its first observation (batched reward-report game).

* ``rules.draw_types(..., out=)`` draws in blocks into a strided view and gives, on numpy, the
  same rewards, sizes and generator state as one draw (property-based, both distributions and
  normalisations), so the numpy game's numbers do not depend on the blocks.
* The env's ``rewards`` after a reset (and after the ``same_step`` terminal step) equal the
  observation's reward columns; reading them or not changes nothing that follows; writing into a
  returned observation changes nothing in the env (numpy and torch).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from strategic_feedback_env.batched import make_batched
from strategic_feedback_env.mechanisms._ops import NumpyOps, torch_ops
from strategic_feedback_env.reward_report import rules


@settings(max_examples=60, deadline=None)
@given(B=st.integers(1, 90), n=st.integers(1, 6), K=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       distribution=st.sampled_from(["uniform", "dirichlet"]), alpha=st.sampled_from([0.2, 1.0, 4.0]),
       normalization=st.sampled_from(["sum", "max"]))
def test_blocked_draw_into_a_view_equals_one_draw(B, n, K, seed, distribution, alpha, normalization):
    one, blocked = np.random.default_rng(seed), np.random.default_rng(seed)
    want_rewards, want_sizes = rules.draw_types(one, (B, n), K, distribution, alpha, normalization, 10)
    obs = np.full((B, n, 2 * K + 2), -1.0)
    rewards, sizes = rules.draw_types(blocked, (B, n), K, distribution, alpha, normalization, 10, out=obs[..., :K])
    assert np.shares_memory(rewards, obs)
    np.testing.assert_array_equal(obs[..., :K], want_rewards)
    np.testing.assert_array_equal(sizes, want_sizes)
    assert (obs[..., K:] == -1.0).all()  # nothing written outside the view
    assert one.bit_generator.state == blocked.bit_generator.state


def test_an_all_zero_row_falls_back_inside_the_view():
    class Zeros:  # a generator whose uniform draws are all 0 (every row takes the fallback)
        def random(self, shape):
            return np.zeros(shape)

        def integers(self, low, high, size):
            return np.ones(size, dtype=np.int64)

    obs = np.full((3, 2, 6), -1.0)
    rewards, _ = rules.draw_types(Zeros(), (3, 2), 2, "uniform", 1.0, "sum", 10, out=obs[..., :2])
    assert np.shares_memory(rewards, obs)
    np.testing.assert_array_equal(obs[..., :2], 0.5)


@pytest.mark.parametrize("ops", [NumpyOps, torch_ops()], ids=["numpy", "torch"])
def test_ifill_is_where_and_reuses_its_array(ops):
    xp = ops.xp
    a = xp.asarray(np.random.default_rng(0).random((2000, 3, 4)))
    mask = xp.asarray(np.random.default_rng(1).random((2000, 3, 1)) < 0.3)
    want = xp.where(mask, 0.25, a)
    got = ops.ifill(a, mask, 0.25)
    assert got is a
    assert bool((got == want).all())
    small = xp.asarray([[1.0, 2.0]])
    assert bool((ops.ifill(small, xp.asarray([[True, False]]), 0.0) == xp.asarray([[0.0, 2.0]])).all())


CONFIGS = [{}, {"reward_distribution": "dirichlet", "dirichlet_alpha": 0.5, "normalization": "max"},
           {"redraw_types": "episode", "report_size": True}, {"input_noise": 0.05}]


def _host(x):
    return x.numpy().copy() if isinstance(x, torch.Tensor) else np.array(x)


def _run(backend, config, autoreset, read_rewards=False, scribble=False, episodes=2, B=70):
    """Outputs of ``episodes`` episodes of 3 rounds under fixed actions; optionally read
    ``env.rewards`` before every step, or write over every returned observation in place."""
    env = make_batched("reward_report_v0", B, seed=3, backend=backend, n_labelers=4, n_outcomes=5, max_cycles=3,
                       autoreset=autoreset, **config)
    rng = np.random.default_rng(0)
    as_array = (lambda x: x) if backend == "numpy" else (lambda x: torch.as_tensor(x, dtype=torch.float64))
    obs = env.reset()
    record = [_host(obs)]
    seen = []
    for _ in range(episodes * (3 if autoreset == "same_step" else 4)):
        if read_rewards:
            seen.append((_host(env.rewards), _host(obs[..., :env.K])))
        if scribble:
            obs[...] = 0.5
        obs, rewards, terminated, _, infos = env.step(as_array(rng.random(env.action_space.shape)))
        record += [_host(obs), _host(rewards), _host(terminated)]
        record += [_host(infos[k]) for k in sorted(infos)]
    return record, seen


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_first_rewards_are_the_observation_s_and_reading_them_changes_nothing(backend, autoreset, config):
    plain, _ = _run(backend, config, autoreset)
    read, seen = _run(backend, config, autoreset, read_rewards=True)
    assert len(plain) == len(read)
    for a, b in zip(plain, read):
        np.testing.assert_array_equal(a, b)
    for rewards, observed in seen:  # the rewards the round is played with are the ones observed
        np.testing.assert_array_equal(rewards, observed)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
def test_writing_into_a_returned_observation_changes_nothing_in_the_env(backend, autoreset):
    plain, _ = _run(backend, {}, autoreset)
    scribbled, _ = _run(backend, {}, autoreset, scribble=True)
    # the observations themselves were overwritten after being recorded; everything else must agree
    for a, b in zip(plain, scribbled):
        np.testing.assert_array_equal(a, b)


def test_truthful_actions_after_reset_report_the_observed_rewards():
    env = make_batched("reward_report_v0", 50, seed=1, n_labelers=3, n_outcomes=6)
    obs = env.reset()
    np.testing.assert_array_equal(env.truthful_actions(), obs[..., :6])


@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
def test_the_types_are_one_draw_per_round_from_the_seeded_generator(autoreset):
    """An independent replay of the stream: every round's ``true_reward`` and ``true_size`` are the
    next ``draw_types`` of ``default_rng(seed)``, each followed by the round's input noise (the
    reset's draws first, then one pair per round)."""
    B, n, K, T, seed = 40, 3, 4, 3, 11
    env = make_batched("reward_report_v0", B, seed=seed, n_labelers=n, n_outcomes=K, max_cycles=T,
                       autoreset=autoreset, input_noise=0.05)
    replay = np.random.default_rng(seed)
    env.reset()
    actions = np.random.default_rng(0).random(env.action_space.shape)
    for episode in range(2):
        for _ in range(T):
            want_rewards, want_sizes = rules.draw_types(replay, (B, n), K, "uniform", 1.0, "sum", env.max_size)
            rules.draw_noise(replay, (B, n, K), 0.05)
            infos = env.step(actions)[4]
            np.testing.assert_array_equal(infos["true_reward"], want_rewards)
            np.testing.assert_array_equal(infos["true_size"], want_sizes)
        if autoreset == "next_step":
            env.step(actions)  # the reset step: draws the next episode's first types
