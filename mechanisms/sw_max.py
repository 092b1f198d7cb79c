"""SW-Max training rule, with and without the affine maximizer payment (docs/model.md §1).

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

from ._ops import NumpyOps, ops_for, sum_last, sum_rows
from .base import Mechanism, Outcome
from .practical import Training, practical_core
from .regularizers import REGULARIZERS, SOLVERS, VALUE_SOLVERS
from .validation import check_lam, check_normalization, check_reference, check_reports, check_sizes


def sw_max_core(reports, sizes, lam, reference, regularizer, with_payments, ops=NumpyOps):
    """The formulas, shared by numpy and torch: returns ``(policy, value, payments or None)``."""
    policy, value, payments, _, _ = welfare_and_leave_one_out(
        sizes[..., None] * reports, lam, reference, regularizer, with_payments, ops)
    return policy, value, payments


def welfare_and_leave_one_out(weighted, lam, reference, regularizer, with_payments, ops=NumpyOps):
    """From the weighted reports ``w_i r_i`` ``(..., n, K)`` (a fresh array, consumed):
    ``(policy, value, payments or None, without, value_without or None)`` where ``without`` are
    the leave-one-out scores ``S - w_i r_i`` ``(..., n, K)`` and ``value_without = V(without)``."""
    scores = ops.sum_rows(weighted)
    policy, value = SOLVERS[regularizer](scores, lam, reference, ops)
    if not with_payments:
        return policy, value, None, ops.rsub(weighted, scores[..., None, :]), None
    own = ops.sum_last(weighted * policy[..., None, :])  # w_i <theta*, r_i>
    without = ops.rsub(weighted, scores[..., None, :])  # S - w_i r_i, in weighted's memory
    value_without = VALUE_SOLVERS[regularizer](without, lam, reference[..., None, :], ops)
    return policy, value, value_without - value[..., None] + own, without, value_without


class SocialWelfareMaximizer(Mechanism):
    """``"sw_max"``: the SW-Max training rule with no payment.

    Parameters
    ----------
    lam : float, default 1.0
        Regularisation strength ``lam > 0``.
    regularizer : {"kl", "chi2", "tv"}, default "kl"
        ``D`` in the objective (see :mod:`strategic_feedback_env.mechanisms.regularizers`).
    reference : array (K,) or None, default None
        Reference policy ``pi_ref`` (full support); ``None`` means uniform.
        ``outcome(..., reference=...)`` overrides it for one call.
    normalization : {None, "sum", "max"}, default None
        If set, reports must be normalised that way (else ``ValueError``). Reports must
        always lie in ``[0, 1]``.
    solver : {"exact", "mirror_ascent", "policy_gradient"}, default "exact"
        How ``theta`` is trained (docs/model.md §4, :mod:`strategic_feedback_env.mechanisms.solvers`):
        the closed-form optimum, ``steps`` exponentiated-gradient steps of size ``step_size``
        from ``pi_ref`` (KL needs ``step_size * lam < 2``), or ``steps`` REINFORCE steps with
        ``samples_per_step`` sampled responses each, drawn from the stream of ``seed`` (the
        same draws for every call and every instance: a seed is one training run).
    steps, step_size, samples_per_step, seed : default 10, 1.0, 8, 0
    menu : array (M, K), "soups" or None, default None
        Pick the best of a finite menu instead of training
        (:mod:`strategic_feedback_env.mechanisms.menus`): a fixed menu (``solver`` must be
        "exact"), or Rewarded Soups built from the reports by ``solver`` (``menu_size``
        candidates, default ``n`` + 3 per pair of labelers).
    menu_size : int or None, default None

    The outcome's ``value`` is the regularised welfare ``ASW(theta)`` of the returned policy;
    unless everything is exact, ``gap`` is the optimisation gap ``max ASW - ASW(theta)``.
    """

    name = "sw_max"
    has_payments = False

    def __init__(self, lam=1.0, regularizer="kl", reference=None, normalization=None, solver="exact", steps=10,
                 step_size=1.0, samples_per_step=8, seed=0, menu=None, menu_size=None):
        self._init_regularised(lam, regularizer, reference, normalization)
        self.training = Training.build(self.lam, regularizer, self.has_payments, solver=solver, steps=steps,
                                       step_size=step_size, samples_per_step=samples_per_step, seed=seed, menu=menu,
                                       menu_size=menu_size)

    def _init_regularised(self, lam=1.0, regularizer="kl", reference=None, normalization=None):
        """The parameters every regularised rule shares (a rule with only these four, e.g. a
        median rule, can take this as its ``__init__`` and :meth:`_regularised_params` as ``params``)."""
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
        self.lam = check_lam(lam)
        self.regularizer = regularizer
        self.normalization = check_normalization(normalization)
        self.reference = None if reference is None else check_reference(reference, None)

    @property
    def differentiable(self) -> bool:
        """Whether the torch twin (and so the gradient adversary) applies: not for menus nor
        policy gradient."""
        return self.training.differentiable

    def _regularised_params(self) -> dict:
        """The parameters of :meth:`_init_regularised`."""
        return {
            "lam": self.lam,
            "regularizer": self.regularizer,
            "reference": None if self.reference is None else self.reference.tolist(),
            "normalization": self.normalization,
        }

    def params(self) -> dict:
        return {**self._regularised_params(), **self.training.params()}

    def core(self, reports, sizes, reference, ops=NumpyOps):
        """``(policy, value, payments or None, gap or None)`` from checked inputs, in numpy or
        (``ops=TorchOps``) torch; ``gap`` is None for the exact rule (it is 0)."""
        if self.training.is_exact:
            return (*sw_max_core(reports, sizes, self.lam, reference, self.regularizer, self.has_payments, ops), None)
        if ops is not NumpyOps and not self.training.differentiable:
            raise ValueError(f"{self!r} runs on numpy arrays only (menus and policy gradient have no torch form)")
        return practical_core(self.training, reports, sizes[..., None] * reports, self.lam, reference,
                              self.regularizer, self.has_payments, ops)

    def outcome(self, reports, sizes=None, reference=None) -> Outcome:
        r = check_reports(reports, self.normalization)
        w = check_sizes(sizes, r)
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1], like=r)
        ops = ops_for(r)
        policy, value, payments, gap = self.core(r, w, ref, ops)
        if payments is None:
            payments = ops.zeros(np.broadcast_shapes(r.shape[:-1], w.shape), like=r)
        return Outcome(policy=policy, payments=payments, value=value, gap=gap)

    def unilateral_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None) -> Outcome:
        """``O(n K)`` deviation outcomes: ``S^(i) = S - w_i r_i + w'_i r'_i`` and
        ``p_i^(i) = V(S - w_i r_i) - V(S^(i)) + w'_i <theta^(i), r'_i>`` (exact rule; the
        practical rules run the ``n`` deviation profiles as one batch)."""
        if not self.training.is_exact:
            return Mechanism.unilateral_outcomes(self, reports, sizes, alt_reports, alt_sizes, reference)
        r = check_reports(reports, self.normalization)
        alt = check_reports(alt_reports, self.normalization, like=r)
        w = check_sizes(sizes, r)
        alt_w = w if alt_sizes is None else check_sizes(alt_sizes, alt)
        ref = check_reference(self.reference if reference is None else reference, r.shape[-1], like=r)
        ops = ops_for(r)
        weighted = w[..., None] * r
        without = sum_rows(weighted)[..., None, :] - weighted
        value_without = (VALUE_SOLVERS[self.regularizer](without, self.lam, ref[..., None, :], ops)
                         if self.has_payments else None)
        return self._deviation_outcomes(without, value_without, alt, alt_w, ref, ops)

    def _deviation_outcomes(self, without, value_without, alt, alt_w, ref, ops=NumpyOps) -> Outcome:
        """Labeler ``i`` alone reports ``(alt_i, alt_w_i)`` on top of the leave-one-out scores
        ``without`` (a fresh array, consumed) whose values are ``value_without``. The deviation
        scores are solved in ``without``'s memory and ``w'_i r'_i`` is formed again for the
        payments (the same numbers), so at most two ``(..., n, K)`` temporaries live at once."""
        scores = ops.iadd(without, alt_w[..., None] * alt)
        policy, value = SOLVERS[self.regularizer](scores, self.lam, ref[..., None, :], ops, overwrite=True)
        if not self.has_payments:
            return Outcome(policy=policy, payments=ops.zeros(policy.shape[:-1], like=policy), value=value)
        payments = value_without - value + sum_last(ops.imul(alt_w[..., None] * alt, policy))
        return Outcome(policy=policy, payments=payments, value=value)

    def _round_outcomes(self, reports, sizes, alt_reports, alt_sizes=None, reference=None):
        """``(outcome, unilateral_outcomes)`` for the environments' hot loop, sharing the scores
        and the leave-one-out values between the two and skipping the range/finiteness checks:
        the caller guarantees float64 reports in ``[0, 1]``, sizes ``>= 1`` of shape ``(..., n)``
        and a valid reference (a demanded normalisation is still checked). Subclasses that
        override ``outcome`` or ``unilateral_outcomes`` get the generic path."""
        cls = type(self)
        if (cls.outcome is not SocialWelfareMaximizer.outcome
                or cls.unilateral_outcomes is not SocialWelfareMaximizer.unilateral_outcomes
                or sizes is None or reference is None or not self.training.is_exact):
            return Mechanism._round_outcomes(self, reports, sizes, alt_reports, alt_sizes, reference)
        if self.normalization is not None:
            check_reports(reports, self.normalization)
            check_reports(alt_reports, self.normalization)
        ops = ops_for(reports)
        ref = ops.asarray(reference, like=reports)
        policy, value, payments, without, value_without = welfare_and_leave_one_out(
            sizes[..., None] * reports, self.lam, ref, self.regularizer, self.has_payments, ops)
        if payments is None:
            payments = ops.zeros(np.broadcast_shapes(reports.shape[:-1], sizes.shape), like=reports)
        out = Outcome(policy=policy, payments=payments, value=value)
        alt_w = sizes if alt_sizes is None else alt_sizes
        return out, self._deviation_outcomes(without, value_without, alt_reports, alt_w, ref, ops)


class AffineMaximizer(SocialWelfareMaximizer):
    """``"affine_maximizer"``: SW-Max with the affine maximizer payment [SUN, Prop 4.4].

    DSIC and IR: truthful ``(r_i, w_i)`` maximises ``w_i <theta*, r_i> - p_i`` whatever the
    others report, truthful utility is ``>= 0`` and ``p_i >= 0`` (for the exact rule). Same
    parameters as :class:`SocialWelfareMaximizer`, plus (docs/model.md §4,
    :mod:`strategic_feedback_env.mechanisms.practical`):

    payment : {"exact", "same_solver", "checkpoints", "early_stopped"}, default "exact"
        The leave-one-out term of ``p_i``: the exact optimum, the same solver and budget run
        without ``i``, the best main-run iterate ([SUN] Heuristic 1, iterative solvers only),
        or ``payment_steps`` mirror-ascent steps of size ``step_size`` ([SUN] Heuristic 2).
        With a menu the payments are the affine maximizer over the menu ("exact").
    payment_steps : int or None, default None
        Needed by (and only by) ``payment="early_stopped"``.
    """

    name = "affine_maximizer"
    has_payments = True

    def __init__(self, lam=1.0, regularizer="kl", reference=None, normalization=None, solver="exact", steps=10,
                 step_size=1.0, samples_per_step=8, seed=0, menu=None, menu_size=None, payment="exact",
                 payment_steps=None):
        self._init_regularised(lam, regularizer, reference, normalization)
        self.training = Training.build(self.lam, regularizer, self.has_payments, solver=solver, steps=steps,
                                       step_size=step_size, samples_per_step=samples_per_step, seed=seed, menu=menu,
                                       menu_size=menu_size, payment=payment, payment_steps=payment_steps)

    def params(self) -> dict:
        return {**super().params(), "payment": self.training.payment, "payment_steps": self.training.payment_steps}
