"""Single-agent Gymnasium view of a game: one focal labeler acts, the others follow policies.

This is the natural DSIC test (does a learner find a profitable unilateral misreport?) and
what ``gymnasium.make("StrategicFeedback/RewardReport-v0")`` returns. The other labelers'
policies are callables ``obs -> action`` (or SB3-style models with ``predict``); by default
they report truthfully (the game's ``truthful_actions()``, exact to the bit).
"""

from __future__ import annotations

import gymnasium
import numpy as np

from .labeler_game import LabelerGame


def policy_callable(policy, what: str = "other labelers' policies"):
    """``obs -> action`` for a callable, or an SB3-style object with ``predict`` (deterministic).

    The one adapter every caller uses (this view, the vector envs, the learners, the audit).
    """
    if hasattr(policy, "predict"):
        return lambda obs: policy.predict(obs, deterministic=True)[0]
    if callable(policy):
        return policy
    raise ValueError(f"{what} must be callables obs -> action or have .predict, got {policy!r}")


class SingleLabelerEnv(gymnasium.Env):
    """Gymnasium env in which ``focal_agent`` plays ``game`` against fixed other policies.

    ``info`` is the focal labeler's info of the game (including ``gain``).

    Parameters
    ----------
    game : str, default "reward_report_v0"
        ``"reward_report_v0"``, ``"online_feedback_v0"`` or ``"preference_report_v0"``.
    focal_agent : str, default "labeler_0"
        The learning labeler.
    other_policies : None, callable, or dict {agent: callable}, default None
        Policies of the other labelers; None (or a missing agent) means truthful.
    render_mode : None, "ansi" or "rgb_array"
    **config
        Passed to the game (see its module docstring).
    """

    metadata = {"render_modes": ["human", "ansi", "rgb_array"], "render_fps": 2}

    def __init__(self, game="reward_report_v0", focal_agent="labeler_0", other_policies=None, render_mode=None, **config):
        from . import make

        self.game: LabelerGame = make(game, render_mode=render_mode, **config)
        self.render_mode = render_mode
        self.focal_agent = self.game._check_agent(focal_agent)
        if other_policies is None or isinstance(other_policies, dict):
            unknown = set(other_policies or {}) - set(self.game.possible_agents)
            if unknown:
                raise ValueError(f"other_policies names unknown agent(s) {sorted(unknown)}")
            self.others = {a: policy_callable(p) for a, p in (other_policies or {}).items() if a != focal_agent}
        else:
            policy = policy_callable(other_policies)
            self.others = {a: policy for a in self.game.possible_agents if a != focal_agent}
        self.observation_space = self.game.observation_space(focal_agent)
        self.action_space = self.game.action_space(focal_agent)
        self._obs = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._obs, infos = self.game.reset(seed=seed, options=options)
        return self._obs[self.focal_agent], infos[self.focal_agent]

    def step(self, action):
        if self._obs is None or not self.game.agents:
            raise RuntimeError("the episode has ended (or reset() was never called): call reset() before step()")
        actions = self.game.truthful_actions()
        for agent, policy in self.others.items():
            actions[agent] = np.asarray(policy(self._obs[agent]), dtype=np.float64)
        actions[self.focal_agent] = action
        self._obs, rewards, terms, truncs, infos = self.game.step(actions)
        a = self.focal_agent
        return self._obs[a], rewards[a], terms[a], truncs[a], infos[a]

    def render(self):
        return self.game.render()

    def close(self):
        self.game.close()
