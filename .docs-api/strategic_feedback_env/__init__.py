"""strategic_feedback_env: labelers as agents choosing reports under a pluggable mechanism.

Games (PettingZoo, one versioned module each):

* :mod:`strategic_feedback_env.reward_report_v0`: the reward-model game of [SUN];
* :mod:`strategic_feedback_env.online_feedback_v0`: the online-feedback game of [HD];
* :mod:`strategic_feedback_env.preference_report_v0`: labelers report pairwise preferences (docs/model.md §6).

Each module has ``env()`` (AEC, wrapped), ``parallel_env()`` and ``raw_env()``.
Importing this package registers the games with Gymnasium (single focal labeler:
``gymnasium.make("StrategicFeedback/RewardReport-v0")``) and with PettingZoo's registry
(``pettingzoo.make("parallel", "StrategicFeedback/reward_report-v0")``).
"""

from __future__ import annotations

import gymnasium
import pettingzoo

from . import online_feedback_v0, preference_report_v0, reward_report_v0
from .single_agent import SingleLabelerEnv

GAMES = {"reward_report_v0": reward_report_v0, "online_feedback_v0": online_feedback_v0,
         "preference_report_v0": preference_report_v0}


def make(name: str, parallel: bool = True, **config):
    """PettingZoo-style lookup: ``make("reward_report_v0", n_labelers=3)`` -> ParallelEnv
    (``parallel=False``: the wrapped AEC env)."""
    if name not in GAMES:
        raise ValueError(f"unknown game {name!r}; available: {', '.join(GAMES)}")
    module = GAMES[name]
    return module.parallel_env(**config) if parallel else module.env(**config)


def _register() -> None:
    for gym_id, game in (("StrategicFeedback/RewardReport-v0", "reward_report_v0"),
                         ("StrategicFeedback/OnlineFeedback-v0", "online_feedback_v0"),
                         ("StrategicFeedback/PreferenceReport-v0", "preference_report_v0")):
        if gym_id not in gymnasium.registry:
            gymnasium.register(id=gym_id, entry_point="strategic_feedback_env.single_agent:SingleLabelerEnv",
                               vector_entry_point="strategic_feedback_env.vector:SingleLabelerVectorEnv",
                               kwargs={"game": game})
    for pz_id, game in (("StrategicFeedback/reward_report-v0", "reward_report_v0"),
                        ("StrategicFeedback/online_feedback-v0", "online_feedback_v0"),
                        ("StrategicFeedback/preference_report-v0", "preference_report_v0")):
        for kind, fn in (("parallel", GAMES[game].parallel_env), ("aec", GAMES[game].env)):
            if pz_id not in pettingzoo.env_registry.registration._get_registry(kind):
                pettingzoo.register(kind, pz_id, entry_point=fn)


_register()

__all__ = ["GAMES", "SingleLabelerEnv", "make", "online_feedback_v0", "preference_report_v0", "reward_report_v0"]
