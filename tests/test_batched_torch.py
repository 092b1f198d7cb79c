"""The torch backend of the batched games against the numpy backend, and the memory bound.

* fed the numpy env's types each round (and the same actions), the torch env returns the same
  observations, rewards, flags and infos: to 1e-10 in float64, 1e-4 in float32; all of them
  tensors of the env's dtype on its device;
* its own draws (a torch generator) have the numpy game's distributions (two-sample
  Kolmogorov-Smirnov tests against numpy draws, fixed seeds);
* validation: bad backends, devices, dtypes and actions are ValueErrors that leave the state;
* a size whose step cannot fit in memory is refused before anything is allocated, with the
  memory it would need; the state, the actions and a step's measured peak stay within that
  bound (numpy by tracemalloc, torch on the CPU by the profiler's allocation events).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from scipy import stats

from strategic_feedback_env import batched_memory
from strategic_feedback_env.batched import make_batched

ROUND_STATE = {"reward_report_v0": ("rewards", "sizes", "noise"), "online_feedback_v0": ("q", "signals", "targets", "y")}
CONFIGS = [
    ("reward_report_v0", {"max_cycles": 3}),
    ("reward_report_v0", {"n_labelers": 3, "n_outcomes": 4, "mechanism_params": {"regularizer": "chi2", "lam": 0.2},
                          "report_size": True, "normalization": "max", "max_cycles": 2}),
    ("reward_report_v0", {"mechanism": "sw_max", "mechanism_params": {"regularizer": "tv"}, "input_noise": 0.05,
                          "reward_distribution": "dirichlet", "dirichlet_alpha": 0.5, "max_cycles": 2}),
    ("reward_report_v0", {"mechanism": "average", "redraw_types": "episode", "sizes": [1, 2, 3, 4, 5], "max_cycles": 2}),
    ("online_feedback_v0", {"max_cycles": 4}),
    ("online_feedback_v0", {"mechanism": "hedge", "outcome_model": "probability", "max_cycles": 3}),
    ("online_feedback_v0", {"n_labelers": 4, "mechanism": "median", "max_cycles": 3}),
]


def _feed(numpy_env, torch_env, dtype):
    for key in ROUND_STATE[numpy_env.spec_env.metadata["name"]]:
        value = getattr(numpy_env, key)
        setattr(torch_env, key, None if value is None else torch.as_tensor(value, dtype=dtype))


def _close(t, a, tol, dtype, key):
    assert isinstance(t, torch.Tensor), key
    assert t.dtype == (dtype if t.is_floating_point() else t.dtype), key
    np.testing.assert_allclose(t.double().numpy(), np.asarray(a, dtype=np.float64), atol=tol, rtol=0, err_msg=key)


@pytest.mark.parametrize("game,config", CONFIGS, ids=[f"{g}-{i}" for i, (g, _) in enumerate(CONFIGS)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_torch_backend_equals_numpy_on_fed_types(game, config, dtype, tol):
    B = 6
    ne = make_batched(game, B, seed=1, **config)
    te = make_batched(game, B, seed=1, backend="torch", dtype=dtype, **config)
    n_obs, _ = ne.reset(), te.reset()
    rng = np.random.default_rng(2)
    for t in range(2 * ne.max_cycles + 1):
        _feed(ne, te, dtype)
        _close(te._observations(), n_obs, tol, dtype, "obs")
        _close(te.truthful_actions(), ne.truthful_actions(), tol, dtype, "truthful")
        actions = ne.truthful_actions() if t % 3 == 0 else rng.random(ne.action_space.shape)
        n_out = ne.step(actions)
        t_out = te.step(torch.as_tensor(actions, dtype=dtype))
        for key, a, b in zip(("reward", "terminated", "truncated"), n_out[1:4], t_out[1:4]):
            _close(b, a, tol, dtype, key)
        assert set(t_out[4]) == set(n_out[4])
        for key, value in n_out[4].items():
            if key != "final_observation":  # the next round's draws differ; compared as obs above
                _close(t_out[4][key], value, tol, dtype, key)
        n_obs = n_out[0]


@pytest.mark.parametrize("config", [{}, {"reward_distribution": "dirichlet", "dirichlet_alpha": 0.3},
                                    {"reward_distribution": "dirichlet", "dirichlet_alpha": 3.0, "normalization": "max"},
                                    {"input_noise": 0.2}])
def test_reward_report_type_draws_have_numpy_distributions(config):
    B = 4000
    ne = make_batched("reward_report_v0", B, seed=0, n_labelers=2, n_outcomes=3, **config)
    te = make_batched("reward_report_v0", B, seed=0, n_labelers=2, n_outcomes=3, backend="torch", **config)
    ne.reset(), te.reset()
    for k in range(3):  # each outcome's reward marginal
        assert stats.ks_2samp(ne.rewards[..., k].ravel(), te.rewards[..., k].numpy().ravel()).pvalue > 1e-3
    # sizes U{1..10}: the same frequencies (chi-square on the counts)
    counts = [np.bincount(np.asarray(s, dtype=int).ravel(), minlength=11)[1:] for s in (ne.sizes, te.sizes.numpy())]
    assert stats.chi2_contingency(np.array(counts)).pvalue > 1e-3
    if ne.noise is not None:
        assert stats.ks_2samp(ne.noise.ravel(), te.noise.numpy().ravel()).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.05, 0.3, 1.0, 4.0])
def test_torch_gamma_sampler_matches_the_gamma_law(shape):
    from strategic_feedback_env.torch_random import TorchRandom

    draws = TorchRandom(0).log_gamma(shape, (20000,)).exp().numpy()
    assert stats.kstest(draws, stats.gamma(shape).cdf).pvalue > 1e-3


def test_online_feedback_draws_have_numpy_distributions():
    B = 4000
    ne = make_batched("online_feedback_v0", B, seed=0)
    te = make_batched("online_feedback_v0", B, seed=0, backend="torch")
    ne.reset(), te.reset()
    for key in ("q", "y"):
        assert stats.ks_2samp(getattr(ne, key), getattr(te, key).numpy()).pvalue > 1e-3, key
    for i in range(ne.n):
        assert stats.ks_2samp(ne.signals[:, i], te.signals[:, i].numpy()).pvalue > 1e-3


def test_seeded_torch_runs_repeat_and_outputs_are_tensors():
    def run():
        env = make_batched("reward_report_v0", 5, seed=3, backend="torch", max_cycles=2)
        obs = [env.reset()]
        for _ in range(3):
            obs.append(env.step(env.truthful_actions())[0])
        return obs

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert all(o.dtype == torch.float64 and o.device.type == "cpu" for o in first)


@pytest.mark.parametrize("kwargs,match", [
    ({"backend": "jax"}, "backend must be one of"),
    ({"device": "cpu"}, "device and dtype apply to backend='torch'"),
    ({"backend": "torch", "dtype": torch.int32}, "dtype must be torch.float64 or torch.float32"),
    ({"backend": "torch", "device": "tpu:7"}, "device must be a torch device"),
])
def test_bad_backend_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_batched("reward_report_v0", 2, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        make_batched("reward_report_v0", 2, backend="torch", device="cuda")


@pytest.mark.parametrize("bad,match", [
    (torch.full((2, 5, 10), float("nan")), "NaN or inf"),
    (torch.full((2, 5, 10), 1.5), r"lie in \[0, 1\]"),
    (torch.zeros((2, 5, 9)), "must have shape"),
    (torch.zeros((2, 5, 10), dtype=torch.bool), "numeric"),
])
def test_bad_tensor_actions_leave_the_state(bad, match):
    env = make_batched("reward_report_v0", 2, seed=0, backend="torch")
    env.reset()
    before = env.rewards.clone()
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    assert env.round == 0 and torch.equal(env.rewards, before)


def test_a_size_that_cannot_fit_is_refused_before_allocation():
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"num_games=1000000 .* needs about .* GiB .* available"):
            make_batched("reward_report_v0", 10**6, n_labelers=1000, n_outcomes=1000)
        assert tracemalloc.get_traced_memory()[1] < 2**26  # nothing near the 8e12-byte arrays was allocated
    finally:
        tracemalloc.stop()
    with pytest.raises(ValueError, match="needs about"):
        make_batched("online_feedback_v0", 10**9, n_labelers=1000, backend="torch")


@pytest.mark.parametrize("game,config", [("reward_report_v0", {"n_outcomes": 10}), ("reward_report_v0", {"n_outcomes": 100}),
                                         ("reward_report_v0", {"n_outcomes": 5, "report_size": True,
                                                               "mechanism_params": {"regularizer": "chi2"}}),
                                         ("reward_report_v0", {"n_outcomes": 1}),
                                         ("reward_report_v0", {"n_outcomes": 10, "input_noise": 0.1}),
                                         ("reward_report_v0", {"n_outcomes": 4, "mechanism": "median"}),
                                         ("online_feedback_v0", {}), ("preference_report_v0", {"n_outcomes": 5}),
                                         ("preference_report_v0", {"n_outcomes": 4, "reward_model": "pooled"})])
def test_numpy_step_peak_stays_within_the_bound(game, config):
    """What the env and the actions hold before a step, and that plus what the step allocates at
    its peak over it (a round, then the terminal round with its reset): at most 3 and 8 units
    (``HELD_FACTOR + n PEAK_FACTOR`` for the median's ``n`` deviation profiles)."""
    B, n = 2000, 5
    tracemalloc.start()
    try:
        env = make_batched(game, B, seed=0, n_labelers=n, max_cycles=2, **config)
        actions = np.random.default_rng(0).random(env.action_space.shape)
        env.reset()
        held, peaks = [], []
        for _ in range(2):
            held.append(tracemalloc.get_traced_memory()[0])
            tracemalloc.reset_peak()
            out = env.step(actions)
            peaks.append(tracemalloc.get_traced_memory()[1] - held[-1])
            del out
    finally:
        tracemalloc.stop()
    unit = batched_memory.unit_bytes(B, n, env.report_width)
    profiles = batched_memory.deviation_profiles(env.mechanism, n)
    totals = [h + p for h, p in zip(held, peaks)]
    assert max(held) <= batched_memory.HELD_FACTOR * unit, [h / unit for h in held]
    assert max(totals) <= batched_memory.bound_bytes(B, n, env.report_width, profiles), [t / unit for t in totals]
    assert batched_memory.bound_bytes(B, n, env.report_width) == 8 * unit  # the bound


@pytest.mark.parametrize("config", [{"n_outcomes": 10}, {"n_outcomes": 3, "input_noise": 0.1}])
def test_torch_cpu_step_peak_stays_within_the_bound(config):
    """The same bound on the torch backend, counted from the allocation events of torch's profiler
    (as ``sfe bench`` does)."""
    from strategic_feedback_env.experiments.bench_torch import _held_bytes, _torch_cpu_peak

    B, n = 2000, 5
    env = make_batched("reward_report_v0", B, seed=0, backend="torch", n_labelers=n, max_cycles=2, **config)
    actions = torch.rand(env.action_space.shape, dtype=torch.float64)
    env.reset()
    totals = [_held_bytes(env, actions) + _torch_cpu_peak(lambda: env.step(actions)) for _ in range(2)]
    unit = batched_memory.unit_bytes(B, n, env.report_width)
    assert max(totals) <= batched_memory.bound_bytes(B, n, env.report_width), [t / unit for t in totals]
    assert min(totals) >= 4 * unit  # the count sees the step's arrays: the observations alone are ~2 units


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not exercised here")
def test_cuda_backend_matches_cpu_backend_on_fed_types():
    cpu = make_batched("reward_report_v0", 64, seed=0, backend="torch")
    gpu = make_batched("reward_report_v0", 64, seed=0, backend="torch", device="cuda")
    cpu.reset(), gpu.reset()
    for _ in range(3):
        for key in ROUND_STATE["reward_report_v0"][:2]:
            setattr(gpu, key, getattr(cpu, key).cuda())
        actions = torch.rand(cpu.action_space.shape, dtype=torch.float64)
        c, g = cpu.step(actions), gpu.step(actions.cuda())
        assert g[1].device.type == "cuda"
        torch.testing.assert_close(g[1].cpu(), c[1], atol=1e-10, rtol=0)
