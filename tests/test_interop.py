"""Both games under TorchRL and Tianshou (the ``[interop]`` extra; skipped without it).

TorchRL's ``PettingZooWrapper`` builds its specs from ``reset()``, so the infos (``gain`` ...)
reach the tensordict only because ``reset()`` returns every key ``step()`` does. Rollouts are
replayed on a plain ParallelEnv with the same seed and actions, an independent reference.
"""

import numpy as np
import pytest

from strategic_feedback_env import online_feedback_v0, reward_report_v0

GAMES = {"reward_report_v0": reward_report_v0, "online_feedback_v0": online_feedback_v0}
CONFIG = {"n_labelers": 3, "max_cycles": 4}


@pytest.mark.parametrize("game", list(GAMES))
def test_torchrl_pettingzoo_wrapper_specs_and_rollout_carry_gain(game):
    pytest.importorskip("torchrl", reason="TorchRL is in the [interop] extra: pip install -e '.[interop]'")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    module = GAMES[game]
    env = PettingZooWrapper(module.parallel_env(**CONFIG), group_map=None, categorical_actions=False,
                            use_mask=False, return_state=False)
    check_env_specs(env)
    info_keys = set(env.observation_spec["labeler", "info"].keys())
    assert {"gain", "payment", "utility", "truthful_utility", "valuation"} <= info_keys
    env.set_seed(5)  # TorchRL: reset(seed=5); the rollout then calls reset()
    td = env.rollout(10)
    assert td.batch_size[0] == CONFIG["max_cycles"] and bool(td["next", "done"][-1].all())

    reference = module.parallel_env(**CONFIG)
    reference.reset(seed=5)
    obs, _ = reference.reset()
    agents = reference.possible_agents
    assert np.array_equal(np.stack([obs[a] for a in agents]), td["labeler", "observation"][0].numpy())
    gains = []
    for action in td["labeler", "action"].numpy().astype(np.float64):
        infos = reference.step({a: action[i] for i, a in enumerate(agents)})[4]
        gains.append([infos[a]["gain"] for a in agents])
    got = td["next", "labeler", "info", "gain"].numpy()
    np.testing.assert_allclose(got, np.asarray(gains, dtype=np.float32), rtol=1e-6, atol=1e-7)
    assert np.any(got != 0)


@pytest.mark.parametrize("game", list(GAMES))
def test_tianshou_collector_with_one_shared_random_policy(game):
    pytest.importorskip("tianshou", reason="Tianshou is in the [interop] extra: pip install -e '.[interop]'")
    from tianshou.algorithm.algorithm_base import RandomActionPolicy
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv, PettingZooEnv

    n, cycles = CONFIG["n_labelers"], CONFIG["max_cycles"]

    def make():
        return PettingZooEnv(GAMES[game].env(**CONFIG))

    envs = DummyVectorEnv([make, make])
    policy = RandomActionPolicy(make().action_space)  # one policy acts for every labeler
    buffer = VectorReplayBuffer(100, len(envs))
    stats = Collector(policy, envs, buffer).collect(n_episode=2, reset_before_collect=True)
    assert stats.n_collected_episodes == 2 and list(stats.lens) == [n * cycles] * 2

    batch = buffer.sample(0)[0]
    assert set(batch.obs.agent_id) == {f"labeler_{i}" for i in range(n)}
    assert np.all((batch.act >= 0) & (batch.act <= 1))
    # After the last labeler of a round acts, the round resolves: every labeler's reward is its
    # utility, and the info returned (the next labeler_0's, from env.last()) holds that utility.
    last = batch.obs.agent_id == f"labeler_{n - 1}"
    assert last.sum() == 2 * cycles
    np.testing.assert_array_equal(batch.rew[last][:, 0], batch.info["utility"][last])
    assert np.all(np.isfinite(batch.info["gain"]))


def _subproc_recipe(start_method):
    """The README's SubprocVecEnv recipe: the module-qualified id imports the package in each worker."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("strategic_feedback_env:StrategicFeedback/RewardReport-v0", n_envs=2, seed=1,
                        vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": start_method},
                        env_kwargs={"mechanism": "sw_max", "n_labelers": 3, "n_outcomes": 4})
    try:
        venv.reset()
        obs, rewards, dones, infos = venv.step(np.full((2, 4), 0.5))
    finally:
        venv.close()
    return obs, rewards, infos


@pytest.mark.slow  # starts two Python processes that import torch (~10 s); CI runs it (.ci/run)
def test_subproc_vec_env_recipe_in_fresh_worker_processes():
    """Workers started by forkserver import nothing from the parent: only the ``module:id`` form
    registers the games there. The result equals the same env run in this process."""
    import gymnasium

    obs, rewards, infos = _subproc_recipe("forkserver")
    local = gymnasium.make("StrategicFeedback/RewardReport-v0", mechanism="sw_max", n_labelers=3, n_outcomes=4)
    local.reset(seed=1)
    local_obs, local_reward, _, _, local_info = local.step(np.full(4, 0.5))
    assert np.array_equal(obs[0], local_obs) and rewards[0] == local_reward
    assert infos[0]["gain"] == local_info["gain"] != 0
