"""What every mechanism returns and the per-labeler valuation and utility (MODEL.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._ops import ops_for, sum_last


@dataclass(frozen=True)
class Outcome:
    """Result of one mechanism run, batched over any leading dimensions.

    policy:   ``(..., K)`` trained policy (SW-Max) or aggregate (online rules), on the simplex.
    payments: ``(..., n)`` what each labeler pays; zeros for rules without payments.
    value:    ``(...)`` optimal regularised welfare ``max_theta <theta, S> - lam D``, or
              ``None`` for rules that do not optimise one.
    weights:  ``(..., n)`` the labelers' aggregation weights, or ``None`` where there are none.
    """

    policy: np.ndarray
    payments: np.ndarray
    value: np.ndarray | None = None
    weights: np.ndarray | None = None


def valuation(policy, rewards):
    """``v_i = <policy, r_i>``: policy ``(..., K)``, rewards ``(..., n, K)`` -> ``(..., n)``."""
    return sum_last(policy[..., None, :] * rewards)


def utility(policy, payments, rewards, sizes=None):
    """Quasi-linear utility ``u_i = w_i <policy, r_i> - p_i`` with the *true* ``r_i, w_i``."""
    v = valuation(policy, rewards)
    return v - payments if sizes is None else sizes * v - payments


class Mechanism:
    """A training/aggregation rule plus a payment rule.

    Subclasses implement :meth:`outcome`. ``online`` is True for rules whose weights
    carry over between rounds (:class:`strategic_feedback_env.mechanisms.online.OnlineMechanism`).
    """

    name: str = "mechanism"
    online: bool = False
    has_payments: bool = False

    def outcome(self, reports, sizes=None, reference=None) -> Outcome:
        raise NotImplementedError

    def unilateral_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None) -> Outcome:
        """What happens when labeler ``i`` alone reports ``(alt_reports_i, alt_sizes_i)``, for every ``i``.

        Returns an :class:`Outcome` whose ``policy`` is ``(..., n, K)`` (row ``i``: the policy
        had ``i`` deviated) and ``payments`` is ``(..., n)`` (``i``'s own payment then). This is
        the counterfactual behind the environments' per-step DSIC gain. The generic version
        runs the ``n`` deviation profiles as one batch (cost ``n`` outcomes); rules with
        structure override it with an ``O(n K)`` form.
        """
        ops = ops_for(reports)
        r = ops.asarray(reports, like=reports)
        n = r.shape[-2]
        eye = ops.eye_bool(n, like=r)
        profiles = ops.xp.where(eye[..., None], ops.asarray(alt_reports, like=r)[..., None, :, :], r[..., None, :, :])
        profile_sizes = None
        if sizes is not None or alt_sizes is not None:
            w = ops.full(r.shape[:-1], 1.0, like=r) if sizes is None else ops.asarray(sizes, like=r)
            alt_w = w if alt_sizes is None else ops.asarray(alt_sizes, like=r)
            profile_sizes = ops.xp.where(eye, alt_w[..., None, :], w[..., None, :])
        out = self.outcome(profiles, profile_sizes, reference)
        return Outcome(policy=out.policy, payments=ops.diagonal(out.payments))

    def _round_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None):
        """``(outcome(reports, sizes, reference), unilateral_outcomes(reports, sizes, alt_reports,
        alt_sizes, reference))`` in one call. The environments call this with inputs they have
        already validated; mechanisms may override it with a faster path that returns the same
        values (the default simply calls the two public methods)."""
        return (self.outcome(reports, sizes, reference),
                self.unilateral_outcomes(reports, sizes, alt_reports, alt_sizes, reference))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({params})"

    def params(self) -> dict:
        """The constructor parameters, so ``make(m.name, **m.params())`` rebuilds ``m``."""
        return {}
