"""The learned joint adversary: one stable-baselines3 policy for a group's joint report.

:func:`train_coalition` trains it on the batched game through
:class:`strategic_feedback_env.group_vector.GroupVecEnv` (observation = the members'
observations, reward = their summed utility, the other labelers truthful), with the action
parameterisation of :mod:`strategic_feedback_env.agents.learning` applied to every member (residual:
zero is every member reporting its type). It is ``coalition_ppo`` for a coalition and
``sybil_ppo`` for a sybil's identities (docs/model.md §5).
"""

from __future__ import annotations

import numpy as np

import strategic_feedback_env
from strategic_feedback_env.group_vector import GroupVecEnv
from strategic_feedback_env.mechanisms.validation import check_positive_int

from . import learning
from .learning import _ActionTransform, to_env_action, torch_threads
from .policies import spec_of


class JointActionTransform(_ActionTransform):
    """:class:`learning._ActionTransform` applied member by member to a joint action of ``m`` members."""

    def __init__(self, venv, spec, action_mode, action_scale, m):
        self.m = int(m)
        super().__init__(venv, spec, action_mode, action_scale)

    def step_async(self, actions):
        B = len(actions)
        raw = np.asarray(actions).reshape(B, self.m, -1)
        obs = self._obs.reshape(B, self.m, -1)
        env_actions = to_env_action(raw, obs, self.spec, self.action_mode, self.action_scale)
        self.venv.step_async(env_actions.reshape(B, -1))


class CoalitionPolicy:
    """A trained SB3 model acting for a group: joint observations ``(..., m * obs_dim)`` ->
    the members' env actions ``(..., m, act_dim)`` (residual or direct, as in ``learning``)."""

    def __init__(self, spec, model, members, action_mode="residual", action_scale=5.0, info=None):
        self.spec, self.model, self.members = spec, model, list(members)
        self.action_mode, self.action_scale = action_mode, float(action_scale)
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return f"CoalitionPolicy(game={self.spec.game!r}, members={self.members}, action_mode={self.action_mode!r})"

    def __call__(self, joint_obs) -> np.ndarray:
        obs = np.asarray(joint_obs, dtype=np.float64)
        m = len(self.members)
        lead = obs.shape[:-1]
        with torch_threads():
            raw, _ = self.model.predict(obs.reshape(-1, obs.shape[-1]), deterministic=True)
        raw = np.asarray(raw, dtype=np.float64).reshape(*lead, m, self.spec.act_dim)
        return to_env_action(raw, obs.reshape(*lead, m, self.spec.obs_dim), self.spec, self.action_mode,
                             self.action_scale)

    def act_in(self, game, agents, obs) -> dict:
        """The members' actions from their observations ``obs`` (dict agent -> observation)."""
        actions = self(np.concatenate([obs[a] for a in agents]))
        return {a: actions[j] for j, a in enumerate(agents)}


def train_coalition(game="reward_report_v0", env_config=None, members=("labeler_0", "labeler_1"), algo="ppo",
                    timesteps=None, seed=0, n_envs=None, algo_kwargs=None, action_mode="residual",
                    action_scale=5.0, verbose=0) -> CoalitionPolicy:
    """Train one SB3 policy (``algo`` "ppo" or "sac") on the group's joint report, the other
    labelers truthful, on the batched game; defaults as in :func:`learning.train_best_response`."""
    config = learning._check_common(game, env_config, algo, action_mode)
    spec = spec_of(strategic_feedback_env.make(game, **config))
    timesteps = check_positive_int(learning.DEFAULT_TIMESTEPS[algo] if timesteps is None else timesteps, "timesteps")
    n_envs = check_positive_int(learning.DEFAULT_N_ENVS[algo] if n_envs is None else n_envs, "n_envs")
    venv = GroupVecEnv(game=game, num_envs=n_envs, members=members, seed=seed, **config)
    venv = JointActionTransform(venv, spec, action_mode, action_scale, len(venv.members))
    model, kwargs = learning._build_model(algo, venv, seed, algo_kwargs, game, None, verbose)
    _, elapsed = learning._learn(model, timesteps, False, None, f"{algo}_group")
    info = dict(algo=algo, game=game, env_config=config, members=list(members), seed=seed, timesteps=timesteps,
                n_envs=n_envs, algo_kwargs=kwargs, time_s=elapsed)
    return CoalitionPolicy(spec, model, members, action_mode, action_scale, info)
