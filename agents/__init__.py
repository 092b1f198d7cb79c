"""Labeler agents: heuristic misreporters, white-box adversaries, RL labelers, and the DSIC audit.

* :mod:`strategic_feedback_env.agents.policies`: the policy interface (``obs -> action``, SB3-style ``predict``)
  and the misreport families of [SUN] and [HD];
* :mod:`strategic_feedback_env.agents.gradient`: white-box best responses through the mechanism (torch twin);
* :mod:`strategic_feedback_env.agents.preference_gradient`: the same through BT fit -> mechanism (preference game);
* :mod:`strategic_feedback_env.agents.learning`: stable-baselines3 labelers (best response, independent learners,
  parameter sharing), saved with a JSON sidecar;
* :mod:`strategic_feedback_env.agents.dsic_audit`: the empirical DSIC audit (docs/model.md §3);
* :mod:`strategic_feedback_env.agents.coalition`, :mod:`~strategic_feedback_env.agents.coalition_learning`,
  :mod:`~strategic_feedback_env.agents.group_audit`: coalitions and sybils searching jointly, and
  their rows in the audit (docs/model.md §5).

The learning names are imported on first use (they load stable-baselines3 and torch).
"""

from .coalition import CoalitionGradientAdversary, CoalitionMyopicAdversary
from .dsic_audit import AuditResult, adversary_names, audit
from .gradient import BestResponse, GradientAdversary, InterimGradientAdversary, MyopicOnlineAdversary
from .preference_gradient import PreferenceGradientAdversary
from .policies import (
    POLICIES,
    Exaggerate,
    Extreme,
    GameSpec,
    InvertOthersTop,
    LabelerPolicy,
    Mix,
    PreferTop,
    Random,
    Shade,
    Sharpen,
    SizeScaling,
    Truthful,
    make_policy,
    spec_of,
)

_LEARNING = ("LearnedPolicy", "train_best_response", "train_independent", "train_shared")


def __getattr__(name):
    if name in _LEARNING:
        from . import learning

        return getattr(learning, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


__all__ = [
    "POLICIES",
    "AuditResult",
    "BestResponse",
    "CoalitionGradientAdversary",
    "CoalitionMyopicAdversary",
    "Exaggerate",
    "Extreme",
    "GameSpec",
    "GradientAdversary",
    "InterimGradientAdversary",
    "InvertOthersTop",
    "LabelerPolicy",
    "Mix",
    "MyopicOnlineAdversary",
    "PreferTop",
    "PreferenceGradientAdversary",
    "Random",
    "Shade",
    "Sharpen",
    "SizeScaling",
    "Truthful",
    "adversary_names",
    "audit",
    "make_policy",
    "spec_of",
    *_LEARNING,
]
