"""A native TorchRL env of the batched games: ``B`` games stepped as tensors on one device.

``LabelerTorchRLEnv(game, num_envs=B, device=..., seed=..., dtype=torch.float32, **config)``
(float32 by default, what TorchRL's networks take; ``torch.float64`` for the games' exact
arithmetic) is a TorchRL ``EnvBase`` with ``batch_size=[B]`` over the torch backend of
:func:`strategic_feedback_env.batched.make_batched` (same rules, same mechanisms as the
PettingZoo ParallelEnvs). One agent group, ``"labelers"`` by default, holds the ``n`` labelers
(TorchRL's multi-agent layout, as ``PettingZooWrapper`` and VMAS build it):

* ``("labelers", "observation")`` ``(B, n, obs_dim)`` and ``("labelers", "action")``
  ``(B, n, act_dim)``, both bounded to ``[0, 1]`` (actions outside raise ``ValueError``: use a
  bounded policy such as ``TanhNormal`` with the spec's ``low``/``high``);
* ``("labelers", "reward")`` ``(B, n, 1)``: each labeler's true utility;
* ``done``/``terminated``/``truncated`` ``(B, 1)`` at the root and ``(B, n, 1)`` in the group;
* infos: per labeler ``("labelers", "info", key)`` ``(B, n)`` for the game's per-labeler info
  keys (``gain``, ``payment``, ``utility``, ``truthful_utility``, ...), per game
  ``("info", key)`` ``(B,)`` (``social_welfare``, ``round``, ...); zeros after a reset.

All games share one clock (``max_cycles`` rounds), so they end together; the collector's
reset after the last round returns the new episode the batched game has already drawn, and an
explicit ``reset()`` starts a fresh one. Resetting only some games is refused. The specs are
declared in ``__init__`` and the env passes ``torchrl.envs.utils.check_env_specs``. Needs
``torchrl`` (the ``torchrl`` extra); the core package works without it.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from .batched import make_batched, require_same_step

__all__ = ["LabelerTorchRLEnv"]


class LabelerTorchRLEnv(EnvBase):
    """``B`` games of ``game`` (``"reward_report_v0"`` or ``"online_feedback_v0"``) as one TorchRL
    env; ``config`` is the game's keyword arguments. See the module docstring for the keys."""

    batch_locked = True

    def __init__(self, game="reward_report_v0", num_envs=1, device="cpu", seed=None, dtype=torch.float32,
                 group="labelers", **config):
        self.game = make_batched(game, num_envs, seed, backend="torch", device=device, dtype=dtype, **config)
        require_same_step(self.game, "LabelerTorchRLEnv")
        super().__init__(device=self.game.device, batch_size=torch.Size([self.game.num_games]))
        self.group = group
        self.group_map = {group: list(self.game.possible_agents)}
        self._pending = None  # the first observation of the episode the game started on its own
        self._seed = seed
        self._make_specs()

    # -- specs ---------------------------------------------------------------------------
    def _make_specs(self):
        g, dev, dt = self.game, self.device, self.game.dtype
        B, n = g.num_games, g.n
        labeler_info = Composite({k: Unbounded((B, n), dtype=dt, device=dev) for k in g.labeler_info_keys},
                                 shape=(B, n), device=dev)
        game_info = Composite({k: Unbounded((B,), dtype=torch.int64 if k == "round" else dt, device=dev)
                               for k in g.game_info_keys}, shape=(B,), device=dev)
        self.full_observation_spec = Composite(
            {self.group: Composite(observation=Bounded(0.0, 1.0, (B, n, g.obs_dim), dtype=dt, device=dev),
                                   info=labeler_info, shape=(B, n), device=dev),
             "info": game_info}, shape=(B,), device=dev)
        self.full_action_spec = Composite(
            {self.group: Composite(action=Bounded(0.0, 1.0, (B, n, g.act_dim), dtype=dt, device=dev),
                                   shape=(B, n), device=dev)}, shape=(B,), device=dev)
        self.full_reward_spec = Composite(
            {self.group: Composite(reward=Unbounded((B, n, 1), dtype=dt, device=dev), shape=(B, n), device=dev)},
            shape=(B,), device=dev)

        def flags(shape):
            return {k: Categorical(2, (*shape, 1), dtype=torch.bool, device=dev)
                    for k in ("done", "terminated", "truncated")}

        self.full_done_spec = Composite(
            {**flags((B,)), self.group: Composite(flags((B, n)), shape=(B, n), device=dev)}, shape=(B,), device=dev)

    # -- EnvBase hooks ---------------------------------------------------------------------
    def _set_seed(self, seed):
        self._seed = seed
        self._pending = None

    def _reset(self, tensordict=None, **kwargs):
        if tensordict is not None and "_reset" in tensordict.keys():
            mask = tensordict["_reset"]
            if not bool(mask.all()) and bool(mask.any()):
                raise ValueError("LabelerTorchRLEnv games share one clock: reset all of them or none")
        if self._pending is not None:
            obs, self._pending = self._pending, None
        else:
            obs = self.game.reset(seed=self._seed)
            self._seed = None
        zeros = {k: torch.zeros(spec.shape, dtype=spec.dtype, device=self.device)
                 for k, spec in self.full_observation_spec[self.group, "info"].items()}
        game_zeros = {k: torch.zeros(spec.shape, dtype=spec.dtype, device=self.device)
                      for k, spec in self.full_observation_spec["info"].items()}
        return self._tensordict(obs, zeros, game_zeros, done=False)

    def _step(self, tensordict):
        actions = tensordict[self.group, "action"]
        obs, rewards, terminated, _, infos = self.game.step(actions)
        done = bool(self.game.round == 0)  # the game started a new episode: this round was the last
        if done:
            self._pending, obs = obs, infos["final_observation"]
        labeler = {k: infos[k] for k in self.game.labeler_info_keys}
        shared = {k: infos[k] for k in self.game.game_info_keys}
        out = self._tensordict(obs, labeler, shared, done=done)
        out[self.group, "reward"] = rewards[..., None]
        return out

    def _tensordict(self, obs, labeler_info, game_info, done):
        B, n = self.batch_size[0], self.game.n
        flag = torch.full((B, 1), done, dtype=torch.bool, device=self.device)
        group_flag = torch.full((B, n, 1), done, dtype=torch.bool, device=self.device)
        no = torch.zeros_like(flag)
        group = TensorDict({"observation": obs, "info": TensorDict(labeler_info, batch_size=(B, n)),
                            "done": group_flag, "terminated": group_flag.clone(),
                            "truncated": torch.zeros_like(group_flag)}, batch_size=(B, n), device=self.device)
        return TensorDict({self.group: group, "info": TensorDict(game_info, batch_size=(B,)),
                           "done": flag, "terminated": flag.clone(), "truncated": no},
                          batch_size=(B,), device=self.device)
