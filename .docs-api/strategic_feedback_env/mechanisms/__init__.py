"""Mechanisms for strategic feedback: training/aggregation rules plus payment rules.

Vectorised over leading batch dimensions (reports ``(..., n, K)``, sizes ``(..., n)``), on numpy
arrays or torch tensors on any device (the answer comes in the kind of the reports; one
implementation, :mod:`strategic_feedback_env.mechanisms._ops`); the maths is in docs/model.md
§1 and §2.

>>> from strategic_feedback_env import mechanisms
>>> m = mechanisms.make("affine_maximizer", lam=0.1)
>>> out = m.outcome(reports, sizes)          # out.policy (..., K), out.payments (..., n)
>>> mechanisms.utility(out.policy, out.payments, true_rewards, true_sizes)

Registered names: ``sw_max``, ``affine_maximizer`` (reward-model game of [SUN]) and
``average``, ``median``, ``online_weighted``, ``hedge`` (online game of [HD]); ``median_of_mles``
(docs/model.md §6, a rule on reward vectors). :func:`bt_fit`: Bradley-Terry reward fits. The
[SUN] rules also run as in practice (docs/model.md §4): ``solver=``, ``payment=``, ``menu=``
(:mod:`.practical`, :mod:`.solvers`, :mod:`.menus`).
"""

from .base import Mechanism, Outcome, utility, valuation
from .bradley_terry import bt_fit
from .median_of_mles import MedianOfMLEs
from .online import (
    Average,
    Hedge,
    Median,
    OnlineMechanism,
    OnlineWeighted,
    hedge_update,
    quadratic_loss,
    weighted_aggregate,
    weighted_score_update,
)
from .registry import available, make, parameters, register
from .sw_max import AffineMaximizer, SocialWelfareMaximizer

__all__ = [
    "AffineMaximizer",
    "Average",
    "Hedge",
    "Mechanism",
    "Median",
    "MedianOfMLEs",
    "OnlineMechanism",
    "OnlineWeighted",
    "Outcome",
    "SocialWelfareMaximizer",
    "available",
    "bt_fit",
    "hedge_update",
    "make",
    "parameters",
    "quadratic_loss",
    "register",
    "utility",
    "valuation",
    "weighted_aggregate",
    "weighted_score_update",
]
