"""RLlib integration: register both games with Ray Tune and train PPO labelers.

Needs the optional extra: ``pip install strategic-feedback-env[ray]`` (pins ``ray[rllib]``).

* :func:`register_rllib_envs` registers ``"reward_report_v0"`` and ``"online_feedback_v0"`` with
  ``ray.tune.registry.register_env``, wrapping our PettingZoo ``ParallelEnv`` in RLlib's
  ``ParallelPettingZooEnv`` (a ``MultiAgentEnv`` whose agent ids are ``labeler_0 ..``).
  ``env_config`` is passed as keyword arguments to the game (``n_labelers``, ``mechanism`` ...).
* :func:`train_rllib` trains PPO on RLlib's new API stack (``RLModule``/``Learner``/``EnvRunner``):
  one policy per labeler (``policy_labeler_i``) or one shared policy (``shared``), CPU only,
  small batches, and returns per-iteration mean episode returns per policy.

PPO acts in ``[-1, 1]`` and RLlib maps actions onto the ``Box(0, 1)`` action space and clips them
(``normalize_actions=True``), so every report is valid for the env.
"""

from __future__ import annotations

import math

from . import GAMES

ENV_NAMES = tuple(GAMES)
SHARED_POLICY = "shared"
INSTALL_HINT = "install the extra: pip install strategic-feedback-env[ray]"


def _import_ray():
    try:
        import ray  # noqa: F401
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv  # noqa: F401
        from ray.tune.registry import register_env  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"RLlib is not installed ({exc}); {INSTALL_HINT}") from exc
    return ray


def make_rllib_env(game: str, env_config=None):
    """RLlib ``ParallelPettingZooEnv`` around ``strategic_feedback_env.make(game, **env_config)``."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from . import make

    return ParallelPettingZooEnv(make(game, parallel=True, **dict(env_config or {})))


def _creator(game: str):
    def create(env_config):
        # RLlib passes an EnvContext (a dict subclass with worker_index etc. as attributes).
        return make_rllib_env(game, dict(env_config or {}))

    return create


def register_rllib_envs() -> tuple[str, ...]:
    """Register both games with Ray Tune (idempotent); return the registered names."""
    _import_ray()
    from ray.tune.registry import register_env

    for name in ENV_NAMES:
        register_env(name, _creator(name))
    return ENV_NAMES


def policy_id(agent_id: str) -> str:
    """The per-labeler policy of ``agent_id`` (``labeler_3`` -> ``policy_labeler_3``)."""
    return f"policy_{agent_id}"


def _per_agent_mapping(agent_id, episode=None, **kwargs):
    return policy_id(agent_id)


def _shared_mapping(agent_id, episode=None, **kwargs):
    return SHARED_POLICY


def _agents_and_length(game: str, env_config) -> tuple[list[str], int]:
    from . import make

    env = make(game, parallel=True, **dict(env_config or {}))
    try:
        return list(env.possible_agents), int(getattr(env, "max_cycles", 1))
    finally:
        env.close()


def build_ppo_config(game: str = "reward_report_v0", env_config=None, shared_policy: bool = False, seed: int = 0,
                     train_batch_size: int = 400, minibatch_size: int = 100, num_epochs: int = 5, lr: float = 3e-4,
                     hidden: tuple[int, ...] = (64, 64)):
    """A ``PPOConfig`` (new API stack) for ``game``: local env runner and learner, CPU only."""
    _import_ray()
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    if game not in ENV_NAMES:
        raise ValueError(f"unknown game {game!r}; available: {', '.join(ENV_NAMES)}")
    env_config = dict(env_config or {})
    agents, episode_len = _agents_and_length(game, env_config)
    # Report the mean over (about) the episodes of one iteration, not a 100-episode window.
    episodes_per_iteration = max(1, train_batch_size // max(1, episode_len))
    if shared_policy:
        policies, mapping = {SHARED_POLICY}, _shared_mapping
    else:
        policies, mapping = {policy_id(a) for a in agents}, _per_agent_mapping
    register_rllib_envs()
    return (
        PPOConfig()
        .api_stack(enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True)
        .environment(game, env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
        .learners(num_learners=0, num_gpus_per_learner=0)
        .resources(num_gpus=0)
        .multi_agent(policies=policies, policy_mapping_fn=mapping)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={
            p: RLModuleSpec(model_config={"fcnet_hiddens": list(hidden)}) for p in sorted(policies)
        }))
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=minibatch_size,
                  num_epochs=num_epochs, lr=lr)
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=episodes_per_iteration)
    )


def _returns_per_policy(result: dict, policies) -> dict:
    runners = result.get("env_runners", {})
    by_module = runners.get("module_episode_returns_mean", {}) or {}
    return {p: float(by_module.get(p, math.nan)) for p in sorted(policies)}


def train_rllib(game: str = "reward_report_v0", env_config=None, shared_policy: bool = False, iterations: int = 5,
                seed: int = 0, num_cpus: int = 2, **ppo_options) -> list[dict]:
    """Train PPO labelers on ``game`` for ``iterations`` RLlib iterations.

    One policy per labeler (``policy_labeler_i``) or, with ``shared_policy=True``, one policy
    ``shared`` for all. Starts a local Ray with ``num_cpus`` CPUs unless Ray is already up (and
    shuts down only a Ray it started). Returns one dict per iteration: ``iteration``,
    ``returns`` (policy -> mean episode return of the episodes finished in that iteration, summed
    over the agents the policy controls), ``episode_return_mean`` (all agents), ``env_steps``
    and ``time_s``. ``ppo_options`` go to :func:`build_ppo_config` (``train_batch_size``,
    ``minibatch_size``, ``num_epochs``, ``lr``, ``hidden``).
    """
    ray = _import_ray()
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    config = build_ppo_config(game, env_config, shared_policy=shared_policy, seed=seed, **ppo_options)
    policies = set(config.policies)
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        started = True
    algo = config.build_algo() if hasattr(config, "build_algo") else config.build()
    history = []
    try:
        for i in range(int(iterations)):
            result = algo.train()
            runners = result.get("env_runners", {})
            history.append({
                "iteration": i + 1,
                "returns": _returns_per_policy(result, policies),
                "episode_return_mean": float(runners.get("episode_return_mean", math.nan)),
                "env_steps": int(runners.get("num_env_steps_sampled_lifetime", 0) or 0),
                "time_s": float(result.get("time_this_iter_s", math.nan)),
            })
    finally:
        algo.stop()
        if started:
            ray.shutdown()
    return history


__all__ = ["ENV_NAMES", "SHARED_POLICY", "build_ppo_config", "make_rllib_env", "policy_id", "register_rllib_envs",
           "train_rllib"]
