"""Multi-step determinism of both games.

PettingZoo's ``parallel_seed_test`` (1.27.0) stops after one step (ECOSYSTEM.md), so here
whole episodes, several in a row, are compared bit for bit: observations, rewards and every
info entry. Actions come from a separate generator so that the env's own RNG is the only
source of randomness under test."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import online_feedback_v0, reward_report_v0

CONFIGS = [
    (reward_report_v0, {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 7}),
    (reward_report_v0, {"n_labelers": 4, "n_outcomes": 5, "max_cycles": 5, "input_noise": 0.05,
                        "report_size": True, "normalization": "max", "redraw_types": "episode"}),
    (reward_report_v0, {"n_labelers": 3, "n_outcomes": 3, "max_cycles": 5, "mechanism": "median"}),
    (online_feedback_v0, {"n_labelers": 4, "max_cycles": 25}),
    (online_feedback_v0, {"n_labelers": 3, "max_cycles": 20, "mechanism": "hedge", "outcome_model": "probability"}),
]
IDS = [f"{m.__name__.rsplit('.', 1)[-1]}-{i}" for i, (m, _) in enumerate(CONFIGS)]


def _actions(env, rng):
    return {a: rng.random(env.action_space(a).shape) for a in env.agents}


def _run(env, seed, n_episodes, action_seed=123):
    """Transcript of ``n_episodes`` episodes: reset(seed) once, later resets unseeded."""
    rng = np.random.default_rng(action_seed)
    transcript = []
    for ep in range(n_episodes):
        obs, infos = env.reset(seed=seed if ep == 0 else None)
        transcript.append(("reset", obs, infos))
        while env.agents:
            obs, rew, term, trunc, infos = env.step(_actions(env, rng))
            transcript.append(("step", obs, rew, term, trunc, infos))
    return transcript


def _assert_identical(x, y, path="root"):
    """Bit-identical comparison through dicts, tuples, lists, arrays and floats."""
    assert type(x) is type(y) or (np.isscalar(x) and np.isscalar(y)), f"{path}: {type(x)} vs {type(y)}"
    if isinstance(x, dict):
        assert list(x) == list(y), f"{path}: keys {list(x)} vs {list(y)}"
        for k in x:
            _assert_identical(x[k], y[k], f"{path}.{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), path
        for i, (a, b) in enumerate(zip(x, y)):
            _assert_identical(a, b, f"{path}[{i}]")
    elif isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and x.shape == y.shape, path
        # tobytes: bit-identical, and NaN == NaN
        assert x.tobytes() == y.tobytes(), f"{path}: {x} vs {y}"
    elif isinstance(x, float):
        assert np.float64(x).tobytes() == np.float64(y).tobytes(), f"{path}: {x!r} vs {y!r}"
    else:
        assert x == y, f"{path}: {x!r} vs {y!r}"


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_same_seed_gives_bit_identical_episodes(module, cfg):
    a = _run(module.parallel_env(**cfg), seed=11, n_episodes=3)
    b = _run(module.parallel_env(**cfg), seed=11, n_episodes=3)
    assert len(a) == 3 * (cfg["max_cycles"] + 1)
    _assert_identical(a, b)


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_reseeding_the_same_instance_replays_the_episode(module, cfg):
    """Mechanism state (online weights) and the env RNG are fully reset by reset(seed)."""
    env = module.parallel_env(**cfg)
    first = _run(env, seed=5, n_episodes=1)
    _run(env, seed=6, n_episodes=2)  # play other episodes in between
    again = _run(env, seed=5, n_episodes=1)
    _assert_identical(first, again)


def _types(transcript, key):
    return np.array([[info[key] for info in entry[5].values()] for entry in transcript if entry[0] == "step"])


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_different_seeds_give_different_types(module, cfg):
    key = "true_reward" if module is reward_report_v0 else "signal"
    a = _types(_run(module.parallel_env(**cfg), seed=1, n_episodes=2), key)
    b = _types(_run(module.parallel_env(**cfg), seed=2, n_episodes=2), key)
    assert a.shape == b.shape
    # continuous draws: with different seeds no type vector should coincide in any round
    per_round = np.all(a == b, axis=tuple(range(1, a.ndim)))
    assert not per_round.any()


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_successive_episodes_differ(module, cfg):
    """An unseeded reset continues the RNG stream instead of replaying the last episode."""
    key = "true_reward" if module is reward_report_v0 else "signal"
    t = _run(module.parallel_env(**cfg), seed=3, n_episodes=2)
    steps = _types(t, key)
    T = cfg["max_cycles"]
    assert not np.array_equal(steps[:T], steps[T:])


def test_episode_redraw_keeps_types_within_an_episode_only():
    cfg = {"n_labelers": 3, "n_outcomes": 4, "max_cycles": 4, "redraw_types": "episode"}
    steps = _types(_run(reward_report_v0.parallel_env(**cfg), seed=0, n_episodes=2), "true_reward")
    for k in range(1, 4):
        np.testing.assert_array_equal(steps[k], steps[0])
        np.testing.assert_array_equal(steps[4 + k], steps[4])
    assert not np.array_equal(steps[0], steps[4])
    per_round = _types(_run(reward_report_v0.parallel_env(**{**cfg, "redraw_types": "round"}), seed=0,
                            n_episodes=1), "true_reward")
    assert not np.array_equal(per_round[0], per_round[1])


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_aec_and_parallel_agree(module, cfg):
    """The AEC form (labelers act in turn) resolves each round exactly like the parallel env."""
    seed, n_episodes = 21, 2
    par = module.parallel_env(**cfg)
    aec = module.env(**cfg)
    rng_p, rng_a = np.random.default_rng(9), np.random.default_rng(9)
    for ep in range(n_episodes):
        par_obs, _ = par.reset(seed=seed if ep == 0 else None)
        aec.reset(seed=seed if ep == 0 else None)
        n = len(aec.possible_agents)
        while par.agents:
            actions = _actions(par, rng_p)
            aec_actions = _actions(par, rng_a)
            for agent in aec.possible_agents:  # same draws, same order
                np.testing.assert_array_equal(actions[agent], aec_actions[agent])
            # the AEC agent sees the same observation as the parallel agent
            for agent in aec.possible_agents:
                np.testing.assert_array_equal(aec.observe(agent), par_obs[agent])
            par_obs, par_rew, par_term, _, par_infos = par.step(actions)
            for i in range(n):
                agent = aec.agent_selection
                assert agent == aec.possible_agents[i]
                aec.step(aec_actions[agent])
            aec_rew = {a: aec.rewards[a] for a in aec.possible_agents}
            assert aec_rew == par_rew  # exact equality of floats
            for a in aec.possible_agents:
                assert aec.terminations[a] == par_term[a]
                _assert_identical(aec.infos[a], par_infos[a])
        # the AEC env then lets every terminated agent step with None
        for agent in aec.agent_iter():
            assert aec.terminations[agent]
            aec.step(None)


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_mutating_returned_values_does_not_change_the_game(module, cfg):
    """Observations and infos handed to agents are theirs: scribbling over them in place
    (e.g. normalising ``true_reward``) must not alter the env's types or later rounds."""
    clean = _run(module.parallel_env(**cfg), seed=4, n_episodes=1)
    env = module.parallel_env(**{**cfg, "redraw_types": "episode"} if module is reward_report_v0 else cfg)
    ref = _run(module.parallel_env(**{**cfg, "redraw_types": "episode"} if module is reward_report_v0 else cfg),
               seed=4, n_episodes=1)
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=4)
    got = [("reset", {a: o.copy() for a, o in obs.items()}, {})]
    while env.agents:
        for o in obs.values():
            o[:] = 0.0
        obs, rew, term, trunc, infos = env.step(_actions(env, rng))
        snapshot = ({a: o.copy() for a, o in obs.items()},
                    {a: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in i.items()}
                     for a, i in infos.items()})
        got.append(("step", snapshot[0], rew, term, trunc, snapshot[1]))
        for info in infos.values():
            for v in info.values():
                if isinstance(v, np.ndarray):
                    v[...] = 0.0
    _assert_identical(got[1:], ref[1:])
    assert len(clean) == len(ref)


@pytest.mark.parametrize("module, cfg", CONFIGS, ids=IDS)
def test_pickled_env_replays_the_same_episode(module, cfg):
    import pickle

    env = pickle.loads(pickle.dumps(module.parallel_env(**cfg)))
    _assert_identical(_run(env, seed=8, n_episodes=2), _run(module.parallel_env(**cfg), seed=8, n_episodes=2))
