"""Online aggregation of labelers' probabilistic reports (MODEL.md section 2).

Reports ``x_i`` are distributions over ``K`` outcomes, shape ``(..., n, K)`` (for a pair of
responses ``K = 2`` and ``x_i = (p_i, 1 - p_i)``). The aggregate is ``x_bar = sum_i pi_i x_i``.
After the round the platform sees ``y`` (a one-hot outcome or a distribution, ``(..., K)``)
and scores each labeler with the quadratic (Brier) loss

    l_i = 1/2 sum_k (x_i(k) - y(k))^2   in [0, 1],

which for ``K = 2`` is MODEL.md's ``(x_i - y)^2`` and is strictly proper for any ``K``.

Pure functions do the maths; the classes only hold the weights ``(..., n)`` between rounds.
"""

from __future__ import annotations

import math

import numpy as np

from ._ops import ops_for, sum_last, sum_rows
from .base import Mechanism, Outcome
from .validation import as_float_array, check_number, check_positive_int, check_reports


def quadratic_loss(reports, y):
    """``l_i = 1/2 ||x_i - y||^2``: reports ``(..., n, K)``, y ``(..., K)`` -> ``(..., n)``."""
    return 0.5 * sum_last((reports - y[..., None, :]) ** 2)


def weighted_aggregate(reports, weights):
    """``x_bar = sum_i pi_i x_i``: reports ``(..., n, K)``, weights ``(..., n)`` -> ``(..., K)``.

    Clipped to ``[0, 1]``: a convex combination of numbers in ``[0, 1]`` lies there, but
    weights that sum to ``1 + ulp`` could give ``1 + 2**-52`` and leave the observation box.
    """
    return ops_for(reports).xp.clip(sum_rows(weights[..., None] * reports), 0.0, 1.0)


def weighted_score_update(weights, losses, eta):
    """Weighted-Score Update: ``pi_i <- pi_i (1 - eta l_i + eta sum_j pi_j l_j)``, renormalised.

    The factor is ``>= 1 - eta >= 0`` for losses in ``[0, 1]``, so weights stay on the simplex.
    """
    mean_loss = sum_last(weights * losses, keepdims=True)
    new = weights * (1.0 - eta * losses + eta * mean_loss)
    return new / sum_last(new, keepdims=True)


def hedge_update(weights, losses, eta):
    """Normalised multiplicative weights: ``pi_i <- pi_i exp(-eta l_i) / normaliser``."""
    ops = ops_for(losses)
    new = weights * ops.xp.exp(-eta * (losses - ops.amin_last(losses)))
    return new / sum_last(new, keepdims=True)


def default_eta(n: int, horizon: int) -> float:
    """``eta = sqrt(ln n / T)`` (MODEL.md section 2), capped at 1 so weights stay positive."""
    return min(1.0, math.sqrt(math.log(n) / horizon))


class OnlineMechanism(Mechanism):
    """Base of the online rules: per-labeler weights ``(..., n)`` that :meth:`update` changes.

    ``reset(n, batch_shape=())`` sets uniform weights; the first :meth:`outcome` resets
    automatically for the reports' ``n`` and batch shape. ``outcome`` never changes the
    weights, so counterfactual reports can be evaluated freely; ``sizes`` and ``reference``
    are accepted for interface compatibility and ignored.
    """

    online = True
    has_payments = False

    def __init__(self):
        self.weights = None

    def reset(self, n: int, batch_shape=(), like=None) -> None:
        """Uniform weights ``(*batch_shape, n)``, of ``like``'s kind (numpy if None)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.weights = ops_for(like).full((*tuple(batch_shape), n), 1.0 / n, like=like)

    def _weights_for(self, r):
        if self.weights is None:
            self.reset(r.shape[-2], r.shape[:-2], like=r)
        self.weights = ops_for(r).asarray(self.weights, like=r)  # no copy when already of r's kind
        if self.weights.shape[-1] != r.shape[-2]:
            raise ValueError(
                f"reports have n={r.shape[-2]} labelers but the mechanism holds weights for "
                f"n={self.weights.shape[-1]}; call reset({r.shape[-2]})"
            )
        return self.weights

    def aggregate(self, reports, weights):
        return weighted_aggregate(reports, weights)

    def outcome(self, reports, sizes=None, reference=None) -> Outcome:
        r = check_reports(reports, "sum")
        return self._outcome(r, self._weights_for(r))

    def unilateral_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None) -> Outcome:
        """``O(n K)``: labeler ``i`` alone deviating moves the aggregate by ``pi_i (x'_i - x_i)``."""
        r = check_reports(reports, "sum")
        alt = check_reports(alt_reports, "sum", like=r)
        w = self._weights_for(r)
        return self._unilateral(r, alt, w, self.aggregate(r, w))

    def _round_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None):
        """Both at once, checking the reports and aggregating them once."""
        r = check_reports(reports, "sum")
        alt = check_reports(alt_reports, "sum", like=r)
        w = self._weights_for(r)
        out = self._outcome(r, w)
        return out, self._unilateral(r, alt, w, out.policy)

    def _outcome(self, r, w) -> Outcome:
        return Outcome(policy=self.aggregate(r, w), payments=ops_for(r).zeros(r.shape[:-1], like=r), weights=w)

    def _unilateral(self, r, alt, w, aggregate) -> Outcome:
        """Deviation outcomes of checked reports ``r``, ``alt`` with weights ``w`` and aggregate."""
        ops = ops_for(r)
        policy = ops.xp.clip(aggregate[..., None, :] + w[..., None] * (alt - r), 0.0, 1.0)
        return Outcome(policy=policy, payments=ops.zeros(r.shape[:-1], like=r), weights=w)

    def update(self, reports, y) -> np.ndarray:
        """Score the reports against the revealed ``y`` and update the weights; returns losses."""
        r = check_reports(reports, "sum")
        w = self._weights_for(r)
        y = as_float_array(y, "y", like=r)
        if y.shape[-1:] != r.shape[-1:]:
            raise ValueError(f"y must have shape (..., K) with K={r.shape[-1]}, got {tuple(y.shape)}")
        if not bool((y >= 0).all() & (abs(y.sum(-1) - 1.0) <= 1e-6).all()):  # one flag read
            raise ValueError("y must be a distribution over the K outcomes (non-negative, sums to 1)")
        losses = quadratic_loss(r, y)
        self.weights = self._next_weights(w, losses)
        return losses

    def _next_weights(self, weights, losses):
        return weights


class Average(OnlineMechanism):
    """``"average"``: ``x_bar = (1/n) sum_i x_i``; weights stay uniform (baseline of [HD])."""

    name = "average"


class Median(OnlineMechanism):
    """``"median"``: coordinate-wise median of the reports, renormalised onto the simplex.

    For ``K = 2`` this is exactly the median of the ``p_i`` (baseline of [HD]). Weights are
    uniform and unused.
    """

    name = "median"

    def aggregate(self, reports, weights):
        med = ops_for(reports).median_rows(reports)
        return med / med.sum(-1, keepdims=True)

    def _unilateral(self, r, alt, w, aggregate) -> Outcome:
        """The median is not linear in one report: run the ``n`` deviation profiles as a batch."""
        return Mechanism.unilateral_outcomes(self, r, None, alt)


class _LearningOnlineMechanism(OnlineMechanism):
    def __init__(self, eta=None, horizon=1000):
        super().__init__()
        if eta is not None:
            eta = check_number(eta, "eta")
            if not (0.0 <= eta <= 1.0):
                raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
        self.eta, self.horizon = eta, check_positive_int(horizon, "horizon")

    def params(self) -> dict:
        return {"eta": self.eta, "horizon": self.horizon}

    def step_size(self, n: int) -> float:
        return default_eta(n, self.horizon) if self.eta is None else self.eta


class OnlineWeighted(_LearningOnlineMechanism):
    """``"online_weighted"``: the Weighted-Score Update of [HD] / Freeman et al. (ICML 2020).

    Parameters
    ----------
    eta : float in [0, 1] or None, default None
        Learning rate; ``None`` means ``sqrt(ln n / horizon)``.
    horizon : int, default 1000
        ``T`` used for the default ``eta``.
    """

    name = "online_weighted"

    def _next_weights(self, weights, losses):
        return weighted_score_update(weights, losses, self.step_size(weights.shape[-1]))


class Hedge(_LearningOnlineMechanism):
    """``"hedge"``: normalised multiplicative weights, the non-truthful contrast.

    Same parameters as :class:`OnlineWeighted`.
    """

    name = "hedge"

    def _next_weights(self, weights, losses):
        return hedge_update(weights, losses, self.step_size(weights.shape[-1]))
