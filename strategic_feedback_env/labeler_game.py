"""What both games share: labelers as PettingZoo agents choosing reports under a mechanism.

A game subclass declares its spaces and implements four hooks: ``_start_episode``,
``_draw_round``, ``_observations`` and ``_play_round``. This class owns the agent list,
seeding, the episode clock, the validation of actions (so a rejected step never changes
state) and rendering dispatch.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import BaseWrapper

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms import Mechanism
from strategic_feedback_env.mechanisms.validation import BOX_TOL, check_positive_int, clip_to_box

from . import rendering
from .sybils import sybil_layout


def build_mechanism(mechanism, mechanism_params, defaults=None) -> Mechanism:
    """A mechanism object as given, or ``mechanisms.make(name, **defaults, **params)``."""
    if isinstance(mechanism, Mechanism):
        if mechanism_params:
            raise ValueError("mechanism_params only apply when mechanism is given by name")
        return mechanism
    if not isinstance(mechanism, str):
        raise ValueError(f"mechanism must be a registered name or a Mechanism object, got {mechanism!r}")
    if mechanism_params is not None and not isinstance(mechanism_params, Mapping):
        raise ValueError(f"mechanism_params must be a dict of parameters or None, got {mechanism_params!r}")
    params = dict(mechanism_params or {})
    accepted = mechanisms.parameters(mechanism)
    for key, value in (defaults or {}).items():
        if key in accepted:
            params.setdefault(key, value)
    return mechanisms.make(mechanism, **params)


def agent_index(agent, n: int, name: str = "agent") -> int:
    """The index ``i`` of ``"labeler_i"`` (or of an integer ``i``), checked against ``n`` labelers."""
    text = agent[len("labeler_"):] if isinstance(agent, str) and agent.startswith("labeler_") else agent
    if isinstance(text, str) and text.isdigit():
        i = int(text)
    elif isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        i = int(text)
    else:
        raise ValueError(f"{name} must be an index or 'labeler_i', got {agent!r}")
    if not 0 <= i < n:
        raise ValueError(f"{name} must be in 0..{n - 1}, got {agent!r}")
    return i


def require_reset(started: bool, call: str) -> None:
    """``RuntimeError`` for ``call`` on a game whose ``reset()`` has not run yet."""
    if not started:
        raise RuntimeError(f"call reset() before {call}: the labelers' types are drawn there")


class CheckedActions(BaseWrapper):
    """AEC wrapper: each action is checked when its agent gives it, with the ParallelEnv's own
    check (the same ``ValueError``, and entries within ``BOX_TOL`` of the box clipped); ``None``
    stays allowed for a terminated or truncated agent."""

    def step(self, action) -> None:
        agent = self.agent_selection
        if not (action is None and (self.terminations[agent] or self.truncations[agent])):
            action = self.unwrapped.check_action(agent, action)
        super().step(action)
def pettingzoo_constructors(game_class):
    """PettingZoo's three constructors of a game class: ``parallel_env(**config)`` (the
    ParallelEnv), ``raw_env(**config)`` (unwrapped AEC: labelers act in turn, the round resolves
    after the last) and ``env(**config)`` (that AEC env with PettingZoo's order check and each
    action checked as the ParallelEnv checks it, :class:`CheckedActions`)."""

    def parallel_env(**config):
        """The game as a PettingZoo ParallelEnv."""
        return game_class(**config)

    def raw_env(**config):
        """The game as an unwrapped AEC env (labelers act in turn; the round resolves after the last)."""
        return parallel_to_aec_wrapper(game_class(**config))

    def env(**config):
        """The AEC env with PettingZoo's order check and each action checked as the ParallelEnv checks it."""
        return wrappers.OrderEnforcingWrapper(CheckedActions(raw_env(**config)))

    return parallel_env, raw_env, env


def _blank(value):
    """Zero in the type and shape of an info value."""
    return np.zeros_like(value) if isinstance(value, np.ndarray) else type(value)(0)


class LabelerGame(ParallelEnv):
    """Base ParallelEnv: agents ``labeler_0 .. labeler_{n-1}``, Box actions in ``[0, 1]``.

    Render modes: ``"human"`` prints the round summary, ``"ansi"`` returns it,
    ``"rgb_array"`` returns a matplotlib drawing (:mod:`strategic_feedback_env.rendering`).
    """

    metadata = {"render_modes": ["human", "ansi", "rgb_array"], "is_parallelizable": True, "render_fps": 2}
    batch_shape = ()  # one game; the batched envs run the same hooks with batch_shape (B,)

    def __init__(self, n_labelers: int, max_cycles: int, render_mode: str | None, sybils=None, sybil_of=0):
        self.n_labelers = check_positive_int(n_labelers, "n_labelers")
        # false-name identities (strategic_feedback_env.sybils): n counts the game's agents
        self.sybils = sybil_layout(sybils, sybil_of, self.n_labelers)
        self.n = self.n_labelers if self.sybils is None else self.sybils.slots
        self.max_cycles = check_positive_int(max_cycles, "max_cycles")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = [f"labeler_{i}" for i in range(self.n)] if self.sybils is None else self.sybils.agents
        self.agents: list[str] = []
        self.round = 0
        self.last_round: dict | None = None
        self._started = False
        self._blank_infos: dict | None = None
        self.np_random, _ = seeding.np_random(None)
        self._observation_spaces = {a: self._make_observation_space() for a in self.possible_agents}
        self._action_spaces = {a: self._make_action_space() for a in self.possible_agents}
        space = self._action_spaces[self.possible_agents[0]]
        self._action_low, self._action_high = float(np.min(space.low)), float(np.max(space.high))

    # -- spaces ------------------------------------------------------------------
    def observation_space(self, agent):
        return self._observation_spaces[self._check_agent(agent)]

    def action_space(self, agent):
        return self._action_spaces[self._check_agent(agent)]

    def _check_agent(self, agent):
        if agent not in self._observation_spaces:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents[0]} .. {self.possible_agents[-1]}")
        return agent

    # -- episode -----------------------------------------------------------------
    def reset(self, seed=None, options=None):
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        self.agents = list(self.possible_agents)
        self.round = 0
        self.last_round = None
        self._started = True
        self._start_episode()
        self._draw_round()
        obs = self._observations()
        return {a: obs[i] for i, a in enumerate(self.agents)}, self._reset_infos()

    def _reset_infos(self) -> dict:
        """``reset()``'s infos: the keys, shapes and types of ``step()``'s infos, zeros before the
        first round (NaN would fail seeded-equality checks such as PettingZoo's ``seed_test``),
        so wrappers that build their specs from ``reset()`` (TorchRL's ``PettingZooWrapper``)
        carry every info. The layout is learnt once from a round played on a copy of the env
        (this env's state and generator are untouched)."""
        if self._blank_infos is None:
            probe = copy.deepcopy(self)
            self._blank_infos = {a: {k: _blank(v) for k, v in info.items()}
                                 for a, info in probe.step(probe.truthful_actions())[4].items()}
        return {a: {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in info.items()}
                for a, info in self._blank_infos.items()}

    def __getstate__(self):
        """The whole state, the episode in progress included: ``copy.deepcopy`` and ``pickle``
        continue the episode (a cached render figure is dropped and redrawn on demand)."""
        return {**self.__dict__, "_render_figure": None}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("the episode has ended (or reset() was never called): call reset() before step()")
        action_matrix = self._action_matrix(actions)
        rewards, agent_infos, shared = self._play_round(action_matrix)
        self.round += 1
        done = self.round >= self.max_cycles
        if not done:
            self._draw_round()
        obs = self._observations()
        agents = self.agents
        # Infos get their own arrays: an agent mutating its info must not change the env's private
        # types (``true_reward`` is a view of them) or another agent's info. Per-labeler columns
        # are copied once (rows of one fresh copy do not alias each other); shared arrays once per agent.
        columns = {k: v.copy() if v.ndim >= 2 else v for k, v in agent_infos.items()}
        infos = {a: {**{k: col[i] for k, col in columns.items()},
                     **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in shared.items()}}
                 for i, a in enumerate(agents)}
        self.last_round = {"round": self.round, "agent_infos": agent_infos, **shared}
        out = (
            {a: obs[i] for i, a in enumerate(agents)},
            {a: float(rewards[i]) for i, a in enumerate(agents)},
            dict.fromkeys(agents, done),
            dict.fromkeys(agents, False),
            infos,
        )
        if done:
            self.agents = []
        return out

    def _action_matrix(self, actions) -> np.ndarray:
        """Validate the joint action and stack it as ``(n, action_dim)``; never mutates state."""
        if not isinstance(actions, Mapping):
            raise ValueError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        unknown = [a for a in actions if a not in self._observation_spaces]
        if unknown:
            raise ValueError(f"unknown agent id(s) {unknown}; agents are {self.possible_agents}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"missing action(s) for {missing}: every live labeler reports each round")
        space = self._action_spaces[self.agents[0]]
        # Fast path: stack once and check the whole matrix with two reductions (min/max propagate
        # NaN, and show inf); any problem falls through to the per-agent loop for its message.
        try:
            matrix = np.array([actions[agent] for agent in self.agents])
        except (TypeError, ValueError):
            matrix = None
        if matrix is not None and matrix.dtype.kind in "fiu" and matrix.shape == (len(self.agents), *space.shape):
            lo, hi = matrix.min(), matrix.max()
            if self._action_low - BOX_TOL <= lo and hi <= self._action_high + BOX_TOL:  # False for NaN
                return clip_to_box(matrix.astype(np.float64, copy=False), self._action_low, self._action_high,
                                   "actions", (lo, hi))
        return np.asarray([self.check_action(agent, actions[agent]) for agent in self.agents], dtype=np.float64)

    def check_action(self, agent, action) -> np.ndarray:
        """One live labeler's action as float64, entries within ``BOX_TOL`` of the box clipped into
        it; a ``ValueError`` naming the agent otherwise. Never mutates state."""
        space = self._action_spaces[agent]
        a = np.asarray(action)
        if a.dtype.kind not in "fiu":
            raise ValueError(f"action of {agent} must be numeric, got dtype {a.dtype}")
        if a.shape != space.shape:
            raise ValueError(f"action of {agent} must have shape {space.shape}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action of {agent} contains NaN or inf: {a}")
        return clip_to_box(a.astype(np.float64), self._action_low, self._action_high, f"action of {agent}")

    # -- rendering ---------------------------------------------------------------
    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "human":
            print(rendering.ansi(self), end="")
            return None
        if self.render_mode == "ansi":
            return rendering.ansi(self)
        return rendering.rgb_array(self)

    def close(self):
        rendering.close(self)

    # -- hooks for the games -------------------------------------------------------
    def _make_observation_space(self):
        raise NotImplementedError

    def _make_action_space(self):
        raise NotImplementedError

    def _start_episode(self) -> None:
        """Episode-level draws and mechanism reset."""
        raise NotImplementedError

    def _draw_round(self) -> None:
        """Draw this round's private types."""
        raise NotImplementedError

    def _observations(self) -> np.ndarray:
        """``(n, obs_dim)`` observations of the current round."""
        raise NotImplementedError

    def _play_round(self, action_matrix: np.ndarray):
        """Run the mechanism; return ``(rewards (n,), per-agent info arrays, shared info)``."""
        raise NotImplementedError

    def truthful_actions(self) -> dict:
        """Each live labeler's truthful action this round (from its true private type)."""
        raise NotImplementedError
