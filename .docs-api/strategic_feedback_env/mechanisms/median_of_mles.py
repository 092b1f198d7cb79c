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

from ._ops import NumpyOps
from .base import Mechanism, Outcome
from .regularizers import SOLVERS
from .sw_max import SocialWelfareMaximizer
from .validation import check_reference, check_reports, check_sizes


def median_core(reports, sizes, lam, reference, regularizer, ops=NumpyOps):
    """``(policy, value)`` of the median rule on reports ``(..., n, K)`` and sizes ``(..., n)``."""
    xp = ops.xp
    median = xp.quantile(reports, 0.5, axis=-2)  # the mean of the middle two for even n
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
        w = np.broadcast_to(check_sizes(sizes, r), r.shape[:-1])
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1])
        policy, value = median_core(r, w, self.lam, ref, self.regularizer)
        return Outcome(policy=policy, payments=np.zeros(w.shape), value=value)


def torch_median_outcome(mechanism: MedianOfMLEs, reports, sizes=None, reference=None) -> Outcome:
    """:meth:`MedianOfMLEs.outcome` in torch (gradients flow through the median to the reports
    that are the median, and through the sizes); inputs are not validated, as in
    :func:`strategic_feedback_env.mechanisms.differentiable.torch_outcome`."""
    import torch

    from .differentiable import _ops

    K = reports.shape[-1]
    if sizes is None:
        sizes = torch.ones(reports.shape[:-1], dtype=reports.dtype, device=reports.device)
    ref = mechanism.reference if reference is None else reference
    ref = torch.as_tensor(np.full(K, 1.0 / K) if ref is None else ref, dtype=reports.dtype, device=reports.device)
    sizes = sizes.expand(reports.shape[:-1])
    policy, value = median_core(reports, sizes, mechanism.lam, ref, mechanism.regularizer, _ops())
    return Outcome(policy=policy, payments=torch.zeros(sizes.shape, dtype=reports.dtype), value=value)
