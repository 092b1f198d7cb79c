"""``autoreset="next_step"`` of the batched games against the default ``"same_step"``.

* Same seed, same actions: up to the terminal step both modes return the same arrays; there
  ``next_step``'s ``obs`` is ``same_step``'s ``infos["final_observation"]``; the step after it
  (whose actions are ignored) returns ``same_step``'s post-reset ``obs`` with reward 0, both
  flags ``False`` and no infos; the next episode is the same step by step. Numpy for all three
  games, torch on the CPU for the two it runs.
* Memory: on the reward-report game (K = 10 and 100) every step of both modes (the terminal
  step with its reset, the reset step) holds, with what it allocates at its peak, at most 8
  ``(B, n, K)`` float64 arrays (numpy by tracemalloc, torch on the CPU by the profiler's
  allocation events, as ``sfe bench`` counts them); at K = 4 a round does not (its per-labeler
  infos), which shows the measurement can fail.
* A bad ``autoreset`` is a ``ValueError`` naming it; the adapters that read
  ``final_observation`` refuse ``next_step``.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch

from strategic_feedback_env import batched_memory
from strategic_feedback_env.batched import make_batched
from strategic_feedback_env.experiments.bench_torch import _held_bytes, _numpy_peak, _torch_cpu_peak

CASES = [("reward_report_v0", "numpy", {"n_labelers": 3, "n_outcomes": 4, "input_noise": 0.05}),
         ("reward_report_v0", "numpy", {"redraw_types": "episode", "report_size": True}),
         ("online_feedback_v0", "numpy", {"n_labelers": 4, "mechanism": "hedge"}),
         ("preference_report_v0", "numpy", {"n_labelers": 3, "n_outcomes": 4}),
         ("preference_report_v0", "numpy", {"n_labelers": 3, "n_outcomes": 4, "report": "label"}),
         ("reward_report_v0", "torch", {"n_labelers": 3, "n_outcomes": 4, "input_noise": 0.05}),
         ("online_feedback_v0", "torch", {"n_labelers": 4})]


def _array(x):
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _equal(a, b, what):
    np.testing.assert_array_equal(_array(a), _array(b), err_msg=what)


def _same_step_result(got, want, what):
    for i, name in enumerate(("obs", "rewards", "terminated", "truncated")):
        _equal(got[i], want[i], f"{what}: {name}")
    assert set(got[4]) == set(want[4]) - {"final_observation"}, what
    for key, value in want[4].items():
        if key != "final_observation":
            _equal(got[4][key], value, f"{what}: infos[{key!r}]")


@pytest.mark.parametrize("game,backend,config", CASES, ids=[f"{g}-{b}-{i}" for i, (g, b, _) in enumerate(CASES)])
def test_next_step_replays_same_step(game, backend, config):
    B, T = 6, 3
    same = make_batched(game, B, seed=4, backend=backend, max_cycles=T, **config)
    nxt = make_batched(game, B, seed=4, backend=backend, max_cycles=T, autoreset="next_step", **config)
    _equal(nxt.reset(), same.reset(), "reset")
    rng = np.random.default_rng(1)

    def actions():
        a = rng.random(same.action_space.shape)
        a = np.round(a) if config.get("report") == "label" else a
        return torch.as_tensor(a) if backend == "torch" else a

    for episode in range(2):
        for t in range(1, T + 1):
            a = actions()
            want, got = same.step(a), nxt.step(a)
            if t < T:
                _same_step_result(got, want, f"episode {episode}, round {t}")
                continue
            _equal(got[0], want[4]["final_observation"], "terminal obs vs final_observation")
            _same_step_result((want[0], *got[1:]), want, "terminal step")
            assert _array(got[2]).all() and not _array(got[3]).any()
            assert nxt.round == T  # the clock stays on the last round until the reset step
            reset = nxt.step(actions())  # ignored: same_step never sees these actions
            _equal(reset[0], want[0], "reset step obs vs same_step's post-reset obs")
            _equal(reset[1], np.zeros((B, same.n)), "reset step rewards")
            assert not _array(reset[2]).any() and not _array(reset[3]).any()
            assert reset[4] == {}
            assert type(reset[0]) is type(want[0]) and reset[1].dtype == want[1].dtype
            assert nxt.round == 0


def test_next_step_terminal_observation_is_not_state():
    """The terminal step's arrays are the caller's: writing into them changes nothing that follows."""
    same = make_batched("reward_report_v0", 4, seed=2, max_cycles=1)
    nxt = make_batched("reward_report_v0", 4, seed=2, max_cycles=1, autoreset="next_step")
    same.reset(), nxt.reset()
    a = np.full(same.action_space.shape, 0.5)
    want = same.step(a)
    got = nxt.step(a)
    for arr in (got[0], got[1], got[4]["true_reward"], got[4]["report"]):
        arr[...] = -7.0
    _equal(nxt.step(a)[0], want[0], "reset step after the caller overwrote the terminal arrays")
    _equal(nxt.step(a)[0], same.step(a)[4]["final_observation"], "next terminal step")


def test_reset_clears_a_pending_reset():
    env = make_batched("online_feedback_v0", 3, seed=0, max_cycles=1, autoreset="next_step")
    env.reset()
    a = np.full(env.action_space.shape, 0.5)
    assert env.step(a)[2].all()
    env.reset(seed=0)
    out = env.step(a)  # a round of the new episode, not a reset step
    assert out[2].all() and "gain" in out[4]


@pytest.mark.parametrize("bad", ["NEXT_STEP", "disabled", None, 1, ("next_step",)])
def test_bad_autoreset_is_a_value_error(bad):
    for game in ("reward_report_v0", "online_feedback_v0", "preference_report_v0"):
        with pytest.raises(ValueError, match=r"autoreset must be one of \('same_step', 'next_step'\)"):
            make_batched(game, 2, autoreset=bad)


def test_next_step_actions_are_still_checked_on_the_reset_step():
    env = make_batched("reward_report_v0", 2, seed=0, max_cycles=1, autoreset="next_step")
    env.reset()
    a = np.full(env.action_space.shape, 0.5)
    env.step(a)
    with pytest.raises(ValueError, match="shape"):
        env.step(a[:1])
    assert env.step(a)[4] == {}  # the bad call left the pending reset in place


def test_adapters_refuse_next_step():
    from strategic_feedback_env.group_vector import GroupVecEnv
    from strategic_feedback_env.vector import ParameterSharingVecEnv, SingleLabelerVecEnv, SingleLabelerVectorEnv

    for adapter in (ParameterSharingVecEnv, SingleLabelerVecEnv, SingleLabelerVectorEnv, GroupVecEnv):
        with pytest.raises(ValueError, match="autoreset: .*same_step"):
            adapter("reward_report_v0", num_envs=2, autoreset="next_step")


def test_the_torchrl_env_refuses_next_step():
    pytest.importorskip("tensordict", reason="the TorchRL env needs the [interop] extra (torchrl, tensordict)")
    pytest.importorskip("torchrl", reason="the TorchRL env needs the [interop] extra (torchrl, tensordict)")
    from strategic_feedback_env.torchrl import LabelerTorchRLEnv

    with pytest.raises(ValueError, match="autoreset: .*same_step"):
        LabelerTorchRLEnv("reward_report_v0", num_envs=2, autoreset="next_step")


# the existing bound's cases (tests/test_batched_torch.py); in (B, n, K) units for the first two
MEMORY_CASES = [("reward_report_v0", {"n_outcomes": 10}), ("reward_report_v0", {"n_outcomes": 100}),
                ("reward_report_v0", {"n_outcomes": 10, "input_noise": 0.1}),
                ("reward_report_v0", {"n_outcomes": 5, "report_size": True, "mechanism_params": {"regularizer": "chi2"}}),
                ("reward_report_v0", {"n_outcomes": 1}), ("reward_report_v0", {"n_outcomes": 4, "mechanism": "median"}),
                ("online_feedback_v0", {}), ("preference_report_v0", {"n_outcomes": 5}),
                ("preference_report_v0", {"n_outcomes": 4, "reward_model": "pooled"})]


def _numpy_totals(autoreset, game, config, B, n):
    """``held + peak`` in bytes of the steps of two rounds and the one after (``max_cycles=2``)."""
    tracemalloc.start()
    try:
        env = make_batched(game, B, seed=0, n_labelers=n, max_cycles=2, autoreset=autoreset, **config)
        actions = np.random.default_rng(0).random(env.action_space.shape)
        env.reset()
        totals = []
        for _ in range(3):
            gc.collect()
            totals.append(sum(_numpy_peak(lambda: env.step(actions))))
    finally:
        tracemalloc.stop()
    return env, totals


@pytest.mark.parametrize("autoreset", ["same_step", "next_step"])
@pytest.mark.parametrize("game,config", MEMORY_CASES, ids=[f"{g}-{i}" for i, (g, _) in enumerate(MEMORY_CASES)])
def test_numpy_steps_within_the_bound_in_both_modes(game, config, autoreset):
    """Every step (a round, the terminal one, the one after) within 8 ``(B, n, K)`` arrays on the
    reward-report game with K = 10 and 100; in the other cases (whose every round exceeds that:
    the ``(B, n)`` infos, the noise, the size reports or the fits dominate) within the env's bound
    of ``batched_memory``."""
    B, n = 2000, 5
    env, totals = _numpy_totals(autoreset, game, config, B, n)
    if (game, config) in MEMORY_CASES[:2]:
        unit = batched_memory.unit_bytes(B, n, env.K)  # the (B, n, K) float64 array
        bound = 8 * unit
    else:
        unit = batched_memory.unit_bytes(B, n, env.report_width)
        bound = batched_memory.bound_bytes(B, n, env.report_width, batched_memory.deviation_profiles(env.mechanism, n))
    assert max(totals) <= bound, ([t / unit for t in totals], bound / unit)
    assert totals[1] >= B * n * env.obs_dim * 8  # the count sees the terminal step's arrays: an observation at least


def test_small_k_round_exceeds_8_units():
    """The measurement can fail: at K = 4 a round's dozen ``(B, n)`` infos and its observation
    (``2K + 2`` columns) take more than 8 ``(B, n, K)`` arrays (within the bound's ``(B, n, K + 2)``)."""
    B, n, K = 2000, 5, 4
    env, totals = _numpy_totals("same_step", "reward_report_v0", {"n_outcomes": K}, B, n)
    assert totals[0] > 8 * batched_memory.unit_bytes(B, n, K), totals[0] / batched_memory.unit_bytes(B, n, K)
    assert max(totals) <= batched_memory.bound_bytes(B, n, env.report_width)


@pytest.mark.parametrize("autoreset", ["next_step", "same_step"])
def test_torch_cpu_steps_within_8_units_in_both_modes(autoreset):
    B, n, K = 2000, 5, 10
    env = make_batched("reward_report_v0", B, seed=0, backend="torch", n_labelers=n, n_outcomes=K, max_cycles=2,
                       autoreset=autoreset)
    actions = torch.rand(env.action_space.shape, dtype=torch.float64)
    env.reset()
    totals = [_held_bytes(env, actions) + _torch_cpu_peak(lambda: env.step(actions)) for _ in range(3)]
    unit = batched_memory.unit_bytes(B, n, K)
    assert max(totals) <= 8 * unit, [t / unit for t in totals]
    assert min(totals) >= 2 * unit  # the count sees each step's observation (~2.2 units)
