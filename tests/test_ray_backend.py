"""Scale-out on Ray: run_cells on both backends, the missing-ray error, and RLlib PPO labelers.

The Ray parts need the optional extra (``pip install strategic-feedback-env[ray]``) and are
skipped without it; the missing-ray error is tested either way.
"""

from __future__ import annotations

import argparse
import builtins
import math
import sys

import numpy as np
import pytest

from strategic_feedback_env.experiments import ray_backend
from strategic_feedback_env.experiments.ray_backend import RayNotInstalledError, add_backend_arguments, run_cells

ACCURACIES = np.linspace(0.05, 0.5, 3)


def truthful_policy(obs):
    """Report the private signal (column 0 of the online-feedback observation)."""
    return obs[:, :1]


def regret_cell(cell):
    """One regret cell; all randomness comes from the cell's seed."""
    from strategic_feedback_env.experiments.regret import run_games

    return run_games(cell["mechanism"], cell["horizon"], cell["games"], truthful_policy, ACCURACIES, 0.1,
                     seed=cell["seed"])


CELLS = [
    {"mechanism": "average", "horizon": 40, "games": 3, "seed": 11},
    {"mechanism": "online_weighted", "horizon": 60, "games": 3, "seed": 12},
]


def square(x):
    return x * x


# -- without ray ---------------------------------------------------------------------------------

def test_local_backend_keeps_order_and_needs_no_ray():
    assert run_cells(square, range(6), progress=False) == [0, 1, 4, 9, 16, 25]
    assert run_cells(square, [], progress=False) == []


def test_each_finished_cell_is_reported_at_once_locally():
    seen = []

    def failing_square(x):
        if x == 3:
            raise KeyboardInterrupt
        return x * x

    with pytest.raises(KeyboardInterrupt):
        run_cells(failing_square, range(6), progress=False, on_result=lambda i, r: seen.append((i, r)))
    assert seen == [(0, 0), (1, 1), (2, 4)]  # what finished before the interruption was handed over


def test_bad_backend_and_num_cpus():
    with pytest.raises(ValueError, match="backend must be one of"):
        run_cells(square, [1], backend="dask", progress=False)
    with pytest.raises(ValueError, match="num_cpus"):
        run_cells(square, [1], backend="ray", num_cpus=0, progress=False)


def test_missing_ray_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setitem(sys.modules, "ray", None)  # a cached ray must not leak through
    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(RayNotInstalledError, match=r"pip install strategic-feedback-env\[ray\]") as info:
        run_cells(square, [1, 2], backend="ray", progress=False)
    # an ImportError, and a ValueError so that sfe prints it as a one-line error (exit 2)
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)
    assert run_cells(square, [1, 2], backend="local", progress=False) == [1, 4]


def test_backend_arguments():
    parser = add_backend_arguments(argparse.ArgumentParser())
    args = parser.parse_args([])
    assert (args.backend, args.address, args.num_cpus) == ("local", None, None)
    args = parser.parse_args(["--backend", "ray", "--address", "auto", "--num-cpus", "2"])
    assert (args.backend, args.address, args.num_cpus) == ("ray", "auto", 2)
    with pytest.raises(SystemExit):
        parser.parse_args(["--backend", "spark"])


# -- with ray ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="install the [ray] extra")
    from ray import cloudpickle

    # pytest imports this file under a name Ray's workers cannot import: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    if started:
        ray.shutdown()


def test_ray_sweep_equals_local(ray_session):
    local = run_cells(regret_cell, CELLS, backend="local", progress=False)
    remote = run_cells(regret_cell, CELLS, backend="ray", progress=False)
    assert len(remote) == len(CELLS)
    for a, b in zip(local, remote):
        np.testing.assert_array_equal(a, b)
    # the cells differ, so order matters
    assert not np.array_equal(local[0], local[1])


def test_ray_backend_reuses_running_ray_and_keeps_order(ray_session):
    seen = {}
    results = run_cells(square, list(range(10)), backend="ray", progress=False, on_result=seen.__setitem__)
    assert results == [x * x for x in range(10)]
    assert seen == dict(enumerate(results))  # every cell handed over as it finished
    assert ray_session.is_initialized()


SW_MAX_GAME = {"mechanism": "sw_max", "n_labelers": 2, "n_outcomes": 3, "max_cycles": 10, "sizes": [5, 5]}


def _first_last(history, policy, k=3):
    values = [h["returns"][policy] for h in history]
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


def test_rllib_envs_register_and_step(ray_session):
    from strategic_feedback_env.rllib import ENV_NAMES, make_rllib_env, register_rllib_envs

    assert register_rllib_envs() == ENV_NAMES
    for name in ENV_NAMES:
        env = make_rllib_env(name, {"n_labelers": 2})
        obs, _ = env.reset(seed=0)
        assert set(obs) == {"labeler_0", "labeler_1"}
        obs, rew, term, trunc, _ = env.step({a: env.action_space[a].sample() for a in obs})
        assert "__all__" in term and "__all__" in trunc and set(rew) == {"labeler_0", "labeler_1"}
        env.close()


def test_rllib_ppo_labelers_learn_to_exaggerate_under_sw_max(ray_session):
    """Under SW-Max (no payments) exaggerating pays: PPO labelers' returns go up.

    Measured here (2 cores): about 1 s per iteration; the returns rise from ~16.8 to ~19.5 by
    iteration 20 (iteration noise ~0.4), so the check below has a wide margin.
    """
    from strategic_feedback_env.rllib import train_rllib

    history = train_rllib("reward_report_v0", SW_MAX_GAME, iterations=20, seed=0, lr=2e-3)
    assert [h["iteration"] for h in history] == list(range(1, 21))
    assert set(history[0]["returns"]) == {"policy_labeler_0", "policy_labeler_1"}
    assert all(math.isfinite(v) for h in history for v in h["returns"].values())
    gains = [np.subtract(*_first_last(history, p)[::-1]) for p in history[0]["returns"]]
    assert max(gains) > 0.5, history
    assert np.mean(gains) > 0.0, history


def test_rllib_shared_policy_runs(ray_session):
    from strategic_feedback_env.rllib import SHARED_POLICY, train_rllib

    history = train_rllib("online_feedback_v0", {"n_labelers": 2}, shared_policy=True, iterations=2, seed=0,
                          train_batch_size=200, minibatch_size=50, num_epochs=2)
    assert len(history) == 2
    assert set(history[-1]["returns"]) == {SHARED_POLICY}
    assert math.isfinite(history[-1]["returns"][SHARED_POLICY])


@pytest.mark.slow
def test_rllib_ppo_long_run_improves_every_labeler(ray_session):
    from strategic_feedback_env.rllib import train_rllib

    history = train_rllib("reward_report_v0", SW_MAX_GAME, iterations=40, seed=1, lr=2e-3)
    for policy in history[0]["returns"]:
        first, last = _first_last(history, policy, k=5)
        assert last > first + 0.5, (policy, first, last)


def test_module_exports():
    assert set(ray_backend.__all__) >= {"run_cells", "add_backend_arguments"}
