"""SB3 ``VecEnv`` in which one learner controls a *group* of agents jointly (docs/model.md §5).

A group is a coalition of labelers or a sybil's identities (:mod:`strategic_feedback_env.sybils`).
In each of ``num_envs`` batched games the group's members act on one joint action, the other
labelers report truthfully (their type action, exactly):

* observation ``(B, m * obs_dim)``: the members' observations, concatenated in member order;
* action ``(B, m * act_dim)`` in ``[0, 1]``: the members' actions, concatenated;
* reward ``(B,)``: the sum of the members' rewards (the group's summed true utility).

Auto-reset, seeding and ``terminal_observation`` follow :mod:`strategic_feedback_env.vector`.
``infos[k]["utility"]`` is the group's reward of slot ``k``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .batched import make_batched, require_same_step
from .vector import _BatchedVecEnvBase

__all__ = ["GroupVecEnv", "group_indices"]


def group_indices(members, agents) -> np.ndarray:
    """Slot indices of ``members`` (agent names) among ``agents``; ValueError on unknown,
    repeated or no members."""
    members = list(members)
    unknown = [a for a in members if a not in agents]
    if unknown:
        raise ValueError(f"group names unknown agent(s) {unknown}; agents are {agents}")
    if len(set(members)) != len(members) or not members:
        raise ValueError(f"group must name distinct agents (at least one), got {members}")
    return np.array([agents.index(a) for a in members], dtype=np.intp)


class GroupVecEnv(_BatchedVecEnvBase):
    """One learner plays ``members`` (agent names) jointly in ``num_envs`` games.

    Parameters
    ----------
    game : "reward_report_v0" or "online_feedback_v0"
    num_envs : int
        Number of games ``B`` (= SB3 env slots).
    members : list of str
        The group's agents, e.g. ``["labeler_0", "labeler_1"]`` or a sybil's identities.
    seed : int or None
    **config
        Game configuration (``sybils`` included).
    """

    def __init__(self, game="reward_report_v0", num_envs=1, members=("labeler_0",), seed=None, **config):
        self.batched = make_batched(game, num_games=num_envs, seed=seed, **config)
        require_same_step(self.batched, "GroupVecEnv")
        self.members = group_indices(members, self.batched.possible_agents)
        b, m = self.batched, len(self.members)
        self._pending_seed = seed
        self._actions = None
        obs_space = spaces.Box(0.0, 1.0, shape=(m * b.obs_dim,), dtype=np.float64)
        act_space = spaces.Box(0.0, 1.0, shape=(m * b.act_dim,), dtype=np.float64)
        super().__init__(b.num_games, obs_space, act_space)

    def _group_obs(self, obs):
        return obs[:, self.members].reshape(self.num_envs, -1)

    def reset(self):
        obs = self.batched.reset(seed=self._take_seed())
        self._reset_seeds()
        self._reset_options()
        return self._group_obs(obs)

    def step_wait(self):
        b, m = self.batched, len(self.members)
        a = np.asarray(self._actions, dtype=np.float64)
        if a.shape != (self.num_envs, m * b.act_dim):
            raise ValueError(f"actions must have shape (num_envs, m * act_dim) = {(self.num_envs, m * b.act_dim)}, "
                             f"got {a.shape}")
        actions = b.truthful_actions()
        actions[:, self.members] = a.reshape(self.num_envs, m, b.act_dim)
        obs, rewards, term, trunc, infos = b.step(actions)
        reward = rewards[:, self.members].sum(1)
        dones = term | trunc
        slot_infos = [{"utility": float(u)} for u in reward]
        if dones.any():
            final = self._group_obs(infos["final_observation"])
            for k in np.flatnonzero(dones):
                slot_infos[k]["terminal_observation"] = final[k]
                slot_infos[k]["TimeLimit.truncated"] = bool(trunc[k] and not term[k])
        return self._group_obs(obs), reward.astype(np.float32), dones, slot_infos
