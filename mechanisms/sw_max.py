"""SW-Max training rule, with and without the affine maximizer payment (MODEL.md section 1).

Training rule: ``theta* = argmax_theta sum_i w_i <theta, r_i> - lam D(theta || ref)``.

Affine maximizer payment [SUN, Prop 4.4]:
``p_i = ASW_{-i}(theta_{-i}) - ASW_{-i}(theta*)``. Because the optimal value is
``V(S) = <theta*, S> - lam D(theta*)``, ``ASW_{-i}(theta*) = V(S) - w_i <theta*, r_i>`` and so

    p_i = V(S - w_i r_i) - V(S) + w_i <theta*, r_i>,

which needs only the ``n`` leave-one-out *values*: one batched solve of shape ``(..., n, K)``,
linear in ``n K`` for KL. With KL, truthful utility is ``lam log(Z / Z_{-i})`` and
``p_i = lam KL(theta* || theta_{-i}) >= 0``.
"""

from __future__ import annotations

import numpy as np

from ._ops import NumpyOps, sum_last, sum_rows
from .base import Mechanism, Outcome
from .regularizers import REGULARIZERS, SOLVERS, VALUE_SOLVERS
from .validation import check_lam, check_normalization, check_reference, check_reports, check_sizes


def sw_max_core(reports, sizes, lam, reference, regularizer, with_payments, ops=NumpyOps):
    """The formulas, shared by numpy and torch: returns ``(policy, value, payments or None)``."""
    xp = ops.xp
    solve = SOLVERS[regularizer]
    weighted = sizes[..., None] * reports
    scores = xp.sum(weighted, axis=-2)
    policy, value = solve(scores, lam, reference, ops)
    if not with_payments:
        return policy, value, None
    own = xp.sum(policy[..., None, :] * weighted, axis=-1)
    _, value_without = solve(scores[..., None, :] - weighted, lam, reference[..., None, :], ops)
    return policy, value, value_without - value[..., None] + own


class SocialWelfareMaximizer(Mechanism):
    """``"sw_max"``: the SW-Max training rule with no payment.

    Parameters
    ----------
    lam : float, default 1.0
        Regularisation strength ``lam > 0``.
    regularizer : {"kl", "chi2", "tv"}, default "kl"
        ``D`` in the objective (see :mod:`mechanisms.regularizers`).
    reference : array (K,) or None, default None
        Reference policy ``pi_ref`` (full support); ``None`` means uniform.
        ``outcome(..., reference=...)`` overrides it for one call.
    normalization : {None, "sum", "max"}, default None
        If set, reports must be normalised that way (else ``ValueError``). Reports must
        always lie in ``[0, 1]``.
    """

    name = "sw_max"
    has_payments = False

    def __init__(self, lam=1.0, regularizer="kl", reference=None, normalization=None):
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
        self.lam = check_lam(lam)
        self.regularizer = regularizer
        self.normalization = check_normalization(normalization)
        self.reference = None if reference is None else check_reference(reference, np.shape(reference)[-1])

    def params(self) -> dict:
        return {
            "lam": self.lam,
            "regularizer": self.regularizer,
            "reference": None if self.reference is None else self.reference.tolist(),
            "normalization": self.normalization,
        }

    def outcome(self, reports, sizes=None, reference=None) -> Outcome:
        r = check_reports(reports, self.normalization)
        w = check_sizes(sizes, r)
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1])
        policy, value, payments = sw_max_core(r, w, self.lam, ref, self.regularizer, self.has_payments)
        if payments is None:
            payments = np.zeros(np.broadcast_shapes(r.shape[:-1], w.shape))
        return Outcome(policy=policy, payments=payments, value=value)

    def unilateral_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None) -> Outcome:
        """``O(n K)`` deviation outcomes: ``S^(i) = S - w_i r_i + w'_i r'_i`` and
        ``p_i^(i) = V(S - w_i r_i) - V(S^(i)) + w'_i <theta^(i), r'_i>``."""
        r = check_reports(reports, self.normalization)
        alt = check_reports(alt_reports, self.normalization)
        w = check_sizes(sizes, r)
        alt_w = w if alt_sizes is None else check_sizes(alt_sizes, alt)
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1])[..., None, :]
        solve = SOLVERS[self.regularizer]
        weighted = w[..., None] * r
        alt_weighted = alt_w[..., None] * alt
        without = weighted.sum(-2, keepdims=True) - weighted
        policy, value = solve(without + alt_weighted, self.lam, ref)
        if not self.has_payments:
            return Outcome(policy=policy, payments=np.zeros(policy.shape[:-1]), value=value)
        _, value_without = solve(without, self.lam, ref)
        payments = value_without - value + (policy * alt_weighted).sum(-1)
        return Outcome(policy=policy, payments=payments, value=value)


    def _round_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None):
        """Fast path of ``(outcome, unilateral_outcomes)`` for the environments' hot loop.

        Same operations in the same order as the public methods (so the same bits), but the
        leave-one-out values ``V(S - w_i r_i)`` are computed once and shared, only values (no
        policies) are computed for them, and the range/finiteness checks are skipped: the caller
        guarantees float64 reports in ``[0, 1]``, sizes ``>= 1`` of shape ``(..., n)`` and a valid
        reference. Normalisation (if this mechanism demands one) is still checked. Subclasses that
        override ``outcome`` or ``unilateral_outcomes`` get the generic path.
        """
        cls = type(self)
        if (cls.outcome is not SocialWelfareMaximizer.outcome
                or cls.unilateral_outcomes is not SocialWelfareMaximizer.unilateral_outcomes
                or sizes is None or reference is None):
            return Mechanism._round_outcomes(self, reports, sizes, alt_reports, alt_sizes, reference)
        if self.normalization is not None:
            check_reports(reports, self.normalization)
            check_reports(alt_reports, self.normalization)
        r, alt, w = reports, alt_reports, sizes
        alt_w = w if alt_sizes is None else alt_sizes
        ref = np.array(reference, dtype=np.float64)
        ref_rows = ref[..., None, :]
        solve = SOLVERS[self.regularizer]
        weighted = w[..., None] * r
        scores = sum_rows(weighted)
        policy, value = solve(scores, self.lam, ref)
        alt_weighted = alt_w[..., None] * alt
        without = scores[..., None, :] - weighted
        # Order chosen to hold few large temporaries at once (the values do not depend on it):
        # ``weighted`` is done with once ``own`` is taken (multiplied in place: x * y == y * x);
        # the leave-one-out values come before the deviation solve so that ``without`` (fresh, not
        # needed after) can hold the deviation scores ``without + alt_weighted``.
        own = sum_last(NumpyOps.imul(weighted, policy[..., None, :])) if self.has_payments else None
        del weighted
        value_without = VALUE_SOLVERS[self.regularizer](without, self.lam, ref_rows) if self.has_payments else None
        dev_scores = NumpyOps.iadd(without, alt_weighted)
        del without, alt_weighted  # recomputed below (same bits) rather than held through the solve
        dev_policy, dev_value = solve(dev_scores, self.lam, ref_rows)
        del dev_scores
        if not self.has_payments:
            out = Outcome(policy=policy, payments=np.zeros(np.broadcast_shapes(r.shape[:-1], w.shape)), value=value)
            return out, Outcome(policy=dev_policy, payments=np.zeros(dev_policy.shape[:-1]), value=dev_value)
        out = Outcome(policy=policy, payments=value_without - value[..., None] + own, value=value)
        alt_weighted = alt_w[..., None] * alt
        dev_payments = value_without - dev_value + sum_last(NumpyOps.imul(alt_weighted, dev_policy))
        return out, Outcome(policy=dev_policy, payments=dev_payments, value=dev_value)


class AffineMaximizer(SocialWelfareMaximizer):
    """``"affine_maximizer"``: SW-Max with the affine maximizer payment [SUN, Prop 4.4].

    DSIC and IR: truthful ``(r_i, w_i)`` maximises ``w_i <theta*, r_i> - p_i`` whatever the
    others report, truthful utility is ``>= 0`` and ``p_i >= 0``. Same parameters as
    :class:`SocialWelfareMaximizer`.
    """

    name = "affine_maximizer"
    has_payments = True
