"""Median of MLEs (Buening et al. 2025, "Strategyproof RLHF"; docs/model.md §6).

The training rule takes the coordinate-wise median of the labelers' reward vectors (in the
preference game: their per-labeler Bradley-Terry fits) and trains on it with the total
reported size as weight:

    r_med(x) = median_i r~_i(x),    theta = argmax_theta W <theta, r_med> - lam D(theta || ref),
    W = sum_i w~_i,

so when every report agrees it returns exactly the SW-Max policy. No payments. One labeler
moves each coordinate of ``r_med`` only within the range of the others' values there, which is
what makes the rule approximately strategyproof; the price is welfare (the median ignores
the sizes and the intensity of the others' preferences). It is a rule on reward vectors, so it
plays ``reward_report_v0`` too. ``median_core`` is shared by numpy and torch (``ops``).
"""

from __future__ import annotations

import numpy as np

from ._ops import NumpyOps, ops_for
from .base import Mechanism, Outcome
from .regularizers import SOLVERS
from .sw_max import SocialWelfareMaximizer
from .validation import check_reference, check_reports, check_sizes


def median_core(reports, sizes, lam, reference, regularizer, ops=NumpyOps):
    """``(policy, value)`` of the median rule on reports ``(..., n, K)`` and sizes ``(..., n)``."""
    median = ops.median_rows(reports)  # the mean of the middle two for even n
    total = ops.sum_last(sizes)
    return SOLVERS[regularizer](total[..., None] * median, lam, reference, ops)


class MedianOfMLEs(Mechanism):
    """``"median_of_mles"``: train on the coordinate-wise median report (see the module docstring).

    Parameters as :class:`strategic_feedback_env.mechanisms.sw_max.SocialWelfareMaximizer`:
    ``lam`` [1.0], ``regularizer`` ["kl"], ``reference`` [None = uniform] and ``normalization`` [None].
    """

    name = "median_of_mles"
    has_payments = False

    # the same parameters, checks and record as SW-Max
    __init__ = SocialWelfareMaximizer._init_regularised
    params = SocialWelfareMaximizer._regularised_params

    def outcome(self, reports, sizes=None, reference=None) -> Outcome:
        r = check_reports(reports, self.normalization)
        ops = ops_for(r)
        w = ops.xp.broadcast_to(check_sizes(sizes, r), r.shape[:-1])
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1], like=r)
        policy, value = median_core(r, w, self.lam, ref, self.regularizer, ops)
        return Outcome(policy=policy, payments=ops.zeros(w.shape, like=r), value=value)


def torch_median_outcome(mechanism: MedianOfMLEs, reports, sizes=None, reference=None) -> Outcome:
    """:meth:`MedianOfMLEs.outcome` on tensors, the twin the gradient adversaries call (the same
    code: gradients flow through the median to the reports that are the median, and through the
    sizes)."""
    if not isinstance(mechanism, MedianOfMLEs):
        raise ValueError(f"torch_median_outcome needs a median_of_mles mechanism, got {mechanism!r}")
    return mechanism.outcome(reports, sizes, reference)
