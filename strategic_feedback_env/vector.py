"""Vectorised training views over the batched games (:mod:`strategic_feedback_env.batched`).

* :class:`SingleLabelerVecEnv` (SB3 ``VecEnv``): ``num_envs = B`` games; in each, labeler
  ``focal_agent`` is the learner and the others follow one batched policy (default: truthful,
  exactly the type action). The DSIC test as a fast vectorised env.
* :class:`ParameterSharingVecEnv` (SB3 ``VecEnv``): every labeler of every game is one SB3
  env slot (``VecEnv.num_envs = B * n``, slot ``b * n + i`` is labeler ``i`` of game ``b``), so
  one shared policy controls all labelers; a one-hot agent id is appended to the observation
  (``agent_id_in_obs=True``).
* :class:`SingleLabelerVectorEnv` (``gymnasium.vector.VectorEnv``): the single-labeler view for
  ``gymnasium.make_vec("StrategicFeedback/RewardReport-v0", num_envs,
  vectorization_mode="vector_entry_point", autoreset_mode=...)``; auto-reset mode
  ``NEXT_STEP`` (Gymnasium's default, which its vector observation wrappers require),
  ``SAME_STEP`` or ``DISABLED``.

SB3 semantics: ``reset()`` returns observations only; ``step`` auto-resets (all games share the
episode clock, so every slot is ``done`` together on the last round) and puts the last
observation in ``infos[k]["terminal_observation"]``; ``seed(s)`` makes the next ``reset()``
use ``s`` (one generator drives the whole batch; reruns with the same seed are identical).
Rewards are ``float32``; observations ``float64`` in ``[0, 1]`` as in the games. ``infos[k]``
holds the slot's per-labeler info (``gain``, ``utility``, ``payment`` ...) as Python floats.

Because the games live in one batched object, ``get_attr``/``set_attr``/``env_method`` act on
it (or on this wrapper if it has the attribute): ``get_attr`` returns the value once per
requested index, ``set_attr`` must address all slots, ``env_method`` calls the method once and
returns its result once per requested index.
"""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from .batched import make_batched, require_same_step
from .labeler_game import agent_index
from .single_agent import policy_callable

__all__ = ["ParameterSharingVecEnv", "SingleLabelerVecEnv", "SingleLabelerVectorEnv"]


def _per_slot_infos(columns):
    """List of dicts of Python scalars, one per slot, from ``{key: (n_slots,) array}``."""
    keys = list(columns)
    return [dict(zip(keys, vals)) for vals in zip(*(columns[k].tolist() for k in keys))]


class _FocalCore:
    """Batched game + focal labeler + batched policy for the others (shared by two views)."""

    def __init__(self, game, num_envs, focal_agent, other_policies, seed, config):
        self.batched = make_batched(game, num_games=num_envs, seed=seed, **config)
        require_same_step(self.batched, "SingleLabelerVecEnv (and SingleLabelerVectorEnv)")
        self.n = self.batched.n
        self.focal = agent_index(focal_agent, self.n, "focal_agent")
        self.others = self._other_policies(other_policies)
        self.obs = None

    def _other_policies(self, other_policies):
        """``[(labeler indices, batched policy)]``: one policy for all other labelers, or one per
        labeler named in a dict ``{agent: policy}``; labelers without one report truthfully."""
        if other_policies is None:
            return []
        agents = self.batched.possible_agents
        if not isinstance(other_policies, dict):
            others = np.array([i for i in range(self.n) if i != self.focal], dtype=np.intp)
            return [(others, policy_callable(other_policies, "other_policies"))] if len(others) else []
        unknown = sorted(set(other_policies) - set(agents))
        if unknown:
            raise ValueError(f"other_policies names unknown agent(s) {unknown}; agents are {agents}")
        return [(np.array([agents.index(a)], dtype=np.intp), policy_callable(p, f"other_policies[{a!r}]"))
                for a, p in other_policies.items() if agents.index(a) != self.focal]

    def reset(self, seed=None):
        self.obs = self.batched.reset(seed=seed)
        return self.obs[:, self.focal]

    def joint_actions(self, focal_actions):
        b = self.batched
        if self.obs is None:
            raise RuntimeError("call reset() before step()")
        actions = b.truthful_actions()
        for idx, policy in self.others:
            a = np.asarray(policy(self.obs[:, idx].reshape(-1, b.obs_dim)), dtype=np.float64)
            expected = (b.num_games * len(idx), b.act_dim)
            if a.size != expected[0] * expected[1]:
                raise ValueError(f"other_policies returned actions of shape {a.shape}; expected {expected}")
            actions[:, idx] = a.reshape(b.num_games, len(idx), b.act_dim)
        fa = np.asarray(focal_actions)
        if fa.shape != (b.num_games, b.act_dim):
            raise ValueError(f"actions must have shape (num_envs, act_dim) = {(b.num_games, b.act_dim)}, got {fa.shape}")
        if fa.dtype.kind not in "fiu":
            raise ValueError(f"actions must be numeric, got dtype {fa.dtype}")
        actions[:, self.focal] = fa
        return actions

    def step(self, focal_actions):
        obs, rewards, term, trunc, infos = self.batched.step(self.joint_actions(focal_actions))
        self.obs = obs
        return obs[:, self.focal], rewards[:, self.focal], term, trunc, infos

    def focal_infos(self, infos):
        """``{key: (B,) array}``: the focal labeler's number of every per-labeler info."""
        return {k: v[:, self.focal] for k, v in self.batched.scalar_infos(infos).items()}


class _BatchedVecEnvBase(VecEnv):
    """Attribute plumbing shared by both SB3 adapters."""

    render_mode = None

    def _target(self, name):
        return self if hasattr(type(self), name) or name in self.__dict__ else self.batched

    def _indices(self, indices):
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, (int, np.integer)):
            return [int(indices)]
        return list(indices)

    def get_attr(self, attr_name, indices=None):
        value = getattr(self._target(attr_name), attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name, value, indices=None):
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise ValueError("the games share one batched object: set_attr must address all env slots")
        setattr(self.batched, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        result = getattr(self._target(method_name), method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._indices(indices)]

    def seed(self, seed=None):
        """The next ``reset()`` reseeds the batch's generator with ``seed``; returns per-slot seeds."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._pending_seed = int(seed)
        return [self._pending_seed + i for i in range(self.num_envs)]

    def _take_seed(self):
        seed, self._pending_seed = self._pending_seed, None
        return seed

    def step_async(self, actions):
        self._actions = actions

    def close(self):
        self.batched.close()

    def get_images(self):
        return []


class SingleLabelerVecEnv(_BatchedVecEnvBase):
    """SB3 ``VecEnv``: one learning labeler per game, ``num_envs`` games stepped as a batch.

    Parameters
    ----------
    game : "reward_report_v0" or "online_feedback_v0"
    num_envs : int
        Number of games ``B`` (= SB3 env slots).
    focal_agent : int or "labeler_i", default 0
    other_policies : None, callable or object with ``predict``, or dict ``{agent: policy}``
        Batched policy of the other labelers, ``obs (m, obs_dim) -> actions (m, act_dim)``
        (``m = B (n - 1)``), or one per labeler named in a dict (``m = B``); a labeler without
        one reports truthfully (the type action, exactly). ``None``: all truthful.
    seed : int or None
        Seed of the first ``reset()`` (``seed()`` overrides it).
    **config
        Game configuration (see the game's module docstring).
    """

    def __init__(self, game="reward_report_v0", num_envs=1, focal_agent=0, other_policies=None, seed=None, **config):
        self.core = _FocalCore(game, num_envs, focal_agent, other_policies, seed, config)
        self.batched = self.core.batched
        self._pending_seed = seed
        self._actions = None
        super().__init__(self.batched.num_games, self.batched.single_observation_space,
                         self.batched.single_action_space)

    def reset(self):
        obs = self.core.reset(self._take_seed())
        self._reset_seeds()
        self._reset_options()
        return obs.copy()

    def step_wait(self):
        obs, rewards, term, trunc, infos = self.core.step(self._actions)
        dones = term | trunc
        slot_infos = _per_slot_infos(self.core.focal_infos(infos))
        if dones.any():
            final = infos["final_observation"][:, self.core.focal]
            for k in np.flatnonzero(dones):
                slot_infos[k]["terminal_observation"] = final[k].copy()
                slot_infos[k]["TimeLimit.truncated"] = bool(trunc[k] and not term[k])
        return obs.copy(), rewards.astype(np.float32), dones, slot_infos


class ParameterSharingVecEnv(_BatchedVecEnvBase):
    """SB3 ``VecEnv`` with one slot per labeler per game (``VecEnv.num_envs = num_envs * n``).

    Slot ``b * n + i`` is labeler ``i`` of game ``b``; its observation is the game observation
    followed (``agent_id_in_obs=True``) by the one-hot id of ``i``, so one shared policy can
    tell the labelers apart. Rewards are each labeler's own utility.

    Parameters
    ----------
    game : "reward_report_v0" or "online_feedback_v0"
    num_envs : int
        Number of games ``B``.
    seed : int or None
    agent_id_in_obs : bool, default True
    **config
        Game configuration.
    """

    def __init__(self, game="reward_report_v0", num_envs=1, seed=None, agent_id_in_obs=True, **config):
        self.batched = make_batched(game, num_games=num_envs, seed=seed, **config)
        require_same_step(self.batched, "ParameterSharingVecEnv")
        self.n_games, self.n = self.batched.num_games, self.batched.n
        self.agent_id_in_obs = bool(agent_id_in_obs)
        slots = self.n_games * self.n
        dim = self.batched.obs_dim + (self.n if self.agent_id_in_obs else 0)
        self._ids = np.tile(np.eye(self.n), (self.n_games, 1)) if self.agent_id_in_obs else None
        self._pending_seed = seed
        self._actions = None
        obs_space = spaces.Box(0.0, 1.0, shape=(dim,), dtype=np.float64)
        super().__init__(slots, obs_space, self.batched.single_action_space)

    def _flat_obs(self, obs):
        flat = obs.reshape(self.num_envs, self.batched.obs_dim)
        return np.concatenate([flat, self._ids], axis=1) if self.agent_id_in_obs else flat.copy()

    def reset(self):
        obs = self.batched.reset(seed=self._take_seed())
        self._reset_seeds()
        self._reset_options()
        return self._flat_obs(obs)

    def step_wait(self):
        b = self.batched
        a = np.asarray(self._actions)
        if a.shape != (self.num_envs, b.act_dim):
            raise ValueError(f"actions must have shape (num_envs, act_dim) = {(self.num_envs, b.act_dim)}, got {a.shape}")
        obs, rewards, term, trunc, infos = b.step(a.reshape(b.num_games, self.n, b.act_dim))
        dones = np.repeat(term | trunc, self.n)
        slot_infos = _per_slot_infos({k: v.reshape(-1) for k, v in b.scalar_infos(infos).items()})
        if dones.any():
            final = self._flat_obs(infos["final_observation"])
            tl = np.repeat(trunc & ~term, self.n)
            for k in np.flatnonzero(dones):
                slot_infos[k]["terminal_observation"] = final[k]
                slot_infos[k]["TimeLimit.truncated"] = bool(tl[k])
        return self._flat_obs(obs), rewards.reshape(-1).astype(np.float32), dones, slot_infos


def _autoreset_mode(mode) -> gymnasium.vector.AutoresetMode:
    """An ``AutoresetMode``, or its value (``"NextStep"``) or lower-case name (``"next_step"``)."""
    modes = gymnasium.vector.AutoresetMode
    by_text = {**{m.value: m for m in modes}, **{m.name.lower(): m for m in modes}}
    if isinstance(mode, modes):
        return mode
    if isinstance(mode, str) and mode in by_text:
        return by_text[mode]
    raise ValueError(f"autoreset_mode must be a gymnasium.vector.AutoresetMode or one of {sorted(by_text)}, got {mode!r}")


class SingleLabelerVectorEnv(gymnasium.vector.VectorEnv):
    """Gymnasium ``VectorEnv`` of the single-labeler view (what ``make_vec`` returns).

    Same parameters as :class:`SingleLabelerVecEnv`, plus ``autoreset_mode`` (an
    ``AutoresetMode`` or ``"next_step"``, ``"same_step"``, ``"disabled"``; default
    ``NEXT_STEP``). ``reset(seed=...)`` returns ``(obs (B, obs_dim), infos)``; ``step`` returns
    ``obs, rewards (B,), terminated (B,), truncated (B,), infos`` (dict of ``(B,)`` arrays, the
    focal labeler's column; ``reset()`` gives the same keys, zeros). All games share the
    episode clock, so every game ends on the same step; with ``B = 1`` each mode reproduces
    the scalar env (``gymnasium.make(id)``) driven the way Gymnasium's ``SyncVectorEnv``
    drives it in that mode, bit for bit:

    * ``NEXT_STEP``: the last round's step returns the final observations; the next ``step``
      ignores its actions and returns the first observations of the new episode with reward
      0, ``terminated = truncated = False`` and the zero infos of ``reset()``.
    * ``SAME_STEP``: the last round's step returns the first observations of the next episode
      and the zero infos of ``reset()``; ``infos["final_obs"]`` and ``infos["final_info"]``
      hold the final observations and the last round's infos.
    * ``DISABLED``: the last round's step returns the final observations; ``step`` then
      raises until ``reset()``, which (without a seed) continues the generator exactly as the
      scalar env's ``reset()`` does.
    """

    metadata = {"autoreset_mode": gymnasium.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, game="reward_report_v0", num_envs=1, focal_agent=0, other_policies=None, seed=None,
                 autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP, **config):
        mode = _autoreset_mode(autoreset_mode)
        self.core = _FocalCore(game, num_envs, focal_agent, other_policies, seed, config)
        b = self.core.batched
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.num_envs = b.num_games
        self.single_observation_space = b.single_observation_space
        self.single_action_space = b.single_action_space
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._episode_over = False  # the last step ended the episode (NEXT_STEP / DISABLED)
        self._blank_infos = None

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            if not isinstance(seed, (int, np.integer)):
                raise ValueError("seed must be one int: all games share one generator")
            self._np_random_seed = int(seed)
        mask = (options or {}).get("reset_mask")
        if mask is not None and not np.all(mask):
            raise ValueError("options['reset_mask'] must select every game: the games share one episode clock")
        if self._episode_over and seed is None:
            obs = self.core.obs[:, self.core.focal]  # the batched game already drew the next episode
        else:
            obs = self.core.reset(seed)
        self._episode_over = False
        return obs.copy(), self._reset_infos()

    def _reset_infos(self):
        """Zeros under every key of ``step()``'s infos, learnt once from a round played on a copy of
        the batched game (the env's own state and generator are untouched)."""
        if self._blank_infos is None:
            probe = copy.deepcopy(self.core.batched)
            infos = probe.scalar_infos(probe.step(probe.truthful_actions())[4])
            self._blank_infos = {k: np.zeros_like(v[:, self.core.focal]) for k, v in infos.items()}
        return {k: v.copy() for k, v in self._blank_infos.items()}

    def step(self, actions):
        modes = gymnasium.vector.AutoresetMode
        if self._episode_over:
            if self.autoreset_mode == modes.DISABLED:
                raise RuntimeError("the episode has ended and autoreset_mode is DISABLED: call reset() before step()")
            obs, infos = self.reset()
            zeros = np.zeros(self.num_envs, dtype=bool)
            return obs, np.zeros(self.num_envs), zeros, zeros.copy(), infos
        obs, rewards, term, trunc, infos = self.core.step(actions)
        out = {k: v.copy() for k, v in self.core.focal_infos(infos).items()}
        if "final_observation" in infos:
            final = infos["final_observation"][:, self.core.focal].copy()
            if self.autoreset_mode == modes.SAME_STEP:
                every = np.ones(self.num_envs, dtype=bool)
                out = {**self._reset_infos(), "final_obs": final, "_final_obs": every,
                       "final_info": out, "_final_info": every.copy()}
            else:
                obs = final
                self._episode_over = True
        return obs.copy(), rewards.copy(), term, trunc, out
