"""Labeler policies: one interface for heuristic, white-box and learned labelers.

A policy maps observations ``(..., obs_dim)`` of one game to actions ``(..., act_dim)`` and
works on a single observation or a batch. It is built for a game by :func:`spec_of` (the
game's observation layout and action encoding), so it can read its private type from the
observation. ``predict`` follows SB3's signature, so a policy plugs in wherever an SB3
model does (``SingleLabelerEnv(other_policies=...)``, the audit).

Misreport families (docs/model.md §1 for [SUN], §2 for [HD]):

* :class:`Truthful`: reports the type exactly.
* :class:`Exaggerate` (Thm 4.2): ``r(x_max) + eps`` and ``r(x_min) - min(eps, r(x_min))``
  (sum normalisation) or ``r(x_min) - eps`` (max normalisation).
* :class:`SizeScaling` (S1): reports size ``alpha * w`` (clipped to ``[1, max_size]``).
* :class:`Mix` (S2): reports ``(1 - beta) r_i + beta * pi_last``, mixing in the last public
  policy (the labeler's view of the others' preferences; it never sees their types).
* :class:`Shade` (online game): reports ``s + factor (b - s)``, pulled toward its target.
* :class:`Extreme` (online game): reports 0 or 1 on the side of its target.
* :class:`Random`: uniform in the action box (seeded); random 0/1 labels in the label game.
* :class:`PreferTop` (preference game, docs/model.md §6): every comparison with its own top
  response says that response wins.
* :class:`InvertOthersTop` (preference game): inverts the comparisons that favour the others'
  top response (the top of the last public policy; it never sees their types).
* :class:`Sharpen` (preference game): shades probabilities toward 0/1, ``t + factor (round(t) - t)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strategic_feedback_env.preference_report.rules import observation_layout as preference_layout
from strategic_feedback_env.reward_report import rules


@dataclass(frozen=True)
class GameSpec:
    """What a policy needs to know about the game it plays.

    game: ``"reward_report_v0"`` or ``"online_feedback_v0"``; K: outcomes (1 for the
    online game's single probability); obs_dim, act_dim; report_size, max_size and
    normalization of the reward-report game; report of the preference game (``"probability"``
    or ``"label"``; its ``act_dim`` is the number of pairs asked).
    """

    game: str
    K: int
    obs_dim: int
    act_dim: int
    report_size: bool = False
    max_size: int = 1
    normalization: str = "sum"
    report: str | None = None


def spec_of(env) -> GameSpec:
    """The :class:`GameSpec` of a game env (ParallelEnv, AEC env or single-labeler view)."""
    game = getattr(env, "unwrapped", env)
    game = getattr(game, "game", game)
    while not hasattr(game, "possible_agents") or not hasattr(game, "max_cycles"):
        inner = getattr(game, "env", None) or getattr(game, "aec_env", None)
        if inner is None:
            raise ValueError(f"cannot find a strategic_feedback_env game inside {env!r}")
        game = inner
    agent = game.possible_agents[0]
    obs_dim = game.observation_space(agent).shape[0]
    act_dim = game.action_space(agent).shape[0]
    name = game.metadata["name"]
    if name == "reward_report_v0":
        return GameSpec(name, game.K, obs_dim, act_dim, game.report_size, game.max_size, game.normalization)
    if name == "preference_report_v0":
        return GameSpec(name, game.K, obs_dim, act_dim, False, game.max_size, game.normalization, game.report)
    return GameSpec(name, 1, obs_dim, act_dim)


class LabelerPolicy:
    """Base class: ``policy(obs) -> action`` on ``(..., obs_dim)``; subclasses implement :meth:`act`."""

    games: tuple[str, ...] = ("reward_report_v0", "online_feedback_v0", "preference_report_v0")

    def __init__(self, spec: GameSpec):
        if not isinstance(spec, GameSpec):
            raise ValueError(f"a policy is built for a game: pass agents.spec_of(env), got {spec!r}")
        if spec.game not in self.games:
            raise ValueError(f"{type(self).__name__} plays {', '.join(self.games)}, not {spec.game}")
        self.spec = spec

    def __call__(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (self.spec.obs_dim,):
            raise ValueError(f"observations must have shape (..., {self.spec.obs_dim}), got {obs.shape}")
        return np.clip(self.act(obs), 0.0, 1.0)

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """SB3-compatible: ``(actions, state)``."""
        return self(observation), state

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "spec" and not k.startswith("_"))
        return f"{type(self).__name__}({params})"

    # -- reading the observation (layouts of strategic_feedback_env's rules modules) ----------
    def reward(self, obs):
        return obs[..., : self.spec.K]

    def size(self, obs):
        return obs[..., self.spec.K] * self.spec.max_size

    def last_policy(self, obs):
        return obs[..., self.spec.K + 2 : 2 * self.spec.K + 2]

    def truthful_report(self, obs):
        """Preference game: the truthful action (BT probability or drawn label) per pair."""
        return obs[..., preference_layout(self.spec.K, self.spec.act_dim)["truthful"]]

    def asked_pairs(self, obs):
        """Preference game: the asked pairs ``(..., m, 2)`` as response indices."""
        encoded = obs[..., preference_layout(self.spec.K, self.spec.act_dim)["pairs"]]
        return np.rint(encoded * (self.spec.K - 1)).astype(np.intp).reshape(*obs.shape[:-1], self.spec.act_dim, 2)

    def with_size(self, reward_action, size, obs):
        """Append the size entry of the action when the game lets labelers report a size."""
        if not self.spec.report_size:
            return reward_action
        encoded = rules.encode_size(np.clip(size, 1.0, self.spec.max_size), self.spec.max_size)
        return np.concatenate([reward_action, encoded[..., None]], axis=-1)


class Truthful(LabelerPolicy):
    """Reports the private type exactly (signal ``s_i`` in the online game)."""

    def act(self, obs):
        if self.spec.game == "online_feedback_v0":
            return obs[..., 0:1].copy()
        if self.spec.game == "preference_report_v0":
            return self.truthful_report(obs).copy()
        return self.with_size(self.reward(obs).copy(), self.size(obs), obs)


class Exaggerate(LabelerPolicy):
    """Thm 4.2 exaggeration with step ``eps`` >= 0 (see the module docstring)."""

    games = ("reward_report_v0",)

    def __init__(self, spec, eps=0.05):
        super().__init__(spec)
        if not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        self.eps = float(eps)

    def act(self, obs):
        r = self.reward(obs).copy()
        rows = np.indices(r.shape[:-1])
        hi, lo = r.argmax(-1), r.argmin(-1)
        low = r[(*rows, lo)]
        if self.spec.normalization == "sum":
            step = np.minimum(self.eps, low)
            r[(*rows, hi)] += step
            r[(*rows, lo)] -= step
        else:
            r[(*rows, lo)] = np.maximum(low - self.eps, 0.0)
        return self.with_size(r, self.size(obs), obs)


class SizeScaling(LabelerPolicy):
    """S1: reports its reward truthfully and its size scaled by ``alpha`` > 0.

    Needs ``report_size=True`` in the game (otherwise the size is not an action).
    """

    games = ("reward_report_v0",)

    def __init__(self, spec, alpha=2.0):
        super().__init__(spec)
        if not spec.report_size:
            raise ValueError("SizeScaling needs a game with report_size=True")
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def act(self, obs):
        return self.with_size(self.reward(obs).copy(), self.alpha * self.size(obs), obs)


class Mix(LabelerPolicy):
    """S2: reports ``(1 - beta) r_i + beta pi_last`` with ``beta`` in [0, 1]."""

    games = ("reward_report_v0",)

    def __init__(self, spec, beta=0.5):
        super().__init__(spec)
        if not (np.isfinite(beta) and 0 <= beta <= 1):
            raise ValueError(f"beta must lie in [0, 1], got {beta!r}")
        self.beta = float(beta)

    def act(self, obs):
        mixed = (1 - self.beta) * self.reward(obs) + self.beta * self.last_policy(obs)
        return self.with_size(mixed, self.size(obs), obs)


class Shade(LabelerPolicy):
    """Online game: reports ``s + factor (b - s)`` (``factor`` 0 = truthful, 1 = its target)."""

    games = ("online_feedback_v0",)

    def __init__(self, spec, factor=0.5):
        super().__init__(spec)
        if not np.isfinite(factor):
            raise ValueError(f"factor must be finite, got {factor!r}")
        self.factor = float(factor)

    def act(self, obs):
        s, b = obs[..., 0:1], obs[..., 1:2]
        return s + self.factor * (b - s)


class Extreme(LabelerPolicy):
    """Online game: reports 1 if its target is above 1/2, else 0."""

    games = ("online_feedback_v0",)

    def act(self, obs):
        return (obs[..., 1:2] > 0.5).astype(np.float64)


class Random(LabelerPolicy):
    """Uniform actions in ``[0, 1]^act_dim``, from its own seeded generator."""

    def __init__(self, spec, seed=None):
        super().__init__(spec)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def act(self, obs):
        u = self._rng.random((*obs.shape[:-1], self.spec.act_dim))
        return (u < 0.5).astype(np.float64) if self.spec.report == "label" else u


class PreferTop(LabelerPolicy):
    """Preference game: comparisons with its own top response report that it wins (1 or 0); the rest truthful."""

    games = ("preference_report_v0",)

    def act(self, obs):
        pairs = self.asked_pairs(obs)
        top = self.reward(obs).argmax(-1)[..., None]
        report = self.truthful_report(obs).copy()
        report = np.where(pairs[..., 0] == top, 1.0, report)
        return np.where(pairs[..., 1] == top, 0.0, report)


class InvertOthersTop(LabelerPolicy):
    """Preference game: inverts (``1 - t``) the comparisons whose truthful report favours the
    others' top response ``argmax`` of the last policy, unless that is its own top too."""

    games = ("preference_report_v0",)

    def act(self, obs):
        pairs = self.asked_pairs(obs)
        theirs = self.last_policy(obs).argmax(-1)[..., None]
        mine = self.reward(obs).argmax(-1)[..., None]
        t = self.truthful_report(obs)
        favours = ((pairs[..., 0] == theirs) & (t > 0.5)) | ((pairs[..., 1] == theirs) & (t < 0.5))
        return np.where(favours & (theirs != mine), 1.0 - t, t)


class Sharpen(LabelerPolicy):
    """Preference game: reports ``t + factor (round(t) - t)`` (``factor`` 0 = truthful, 1 = hard 0/1)."""

    games = ("preference_report_v0",)

    def __init__(self, spec, factor=0.5):
        super().__init__(spec)
        if not (np.isfinite(factor) and 0 <= factor <= 1):
            raise ValueError(f"factor must lie in [0, 1], got {factor!r}")
        self.factor = float(factor)

    def act(self, obs):
        t = self.truthful_report(obs)
        return t + self.factor * ((t > 0.5).astype(np.float64) - t)


POLICIES = {
    "truthful": Truthful,
    "exaggerate": Exaggerate,
    "size_scaling": SizeScaling,
    "mix": Mix,
    "shade": Shade,
    "extreme": Extreme,
    "random": Random,
    "prefer_top": PreferTop,
    "invert_others_top": InvertOthersTop,
    "sharpen": Sharpen,
}


def make_policy(name: str, spec: GameSpec, **params) -> LabelerPolicy:
    """Build a heuristic policy by name (``POLICIES``) for a game spec."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; available: {', '.join(POLICIES)}")
    return POLICIES[name](spec, **params)
