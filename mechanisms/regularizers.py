"""Closed-form solutions of the regularised welfare problem (docs/model.md §1).

Each solver takes scores ``S`` of shape ``(..., K)`` (``S = sum_i w_i r_i``), ``lam > 0``
and a full-support reference policy ``ref`` broadcastable to ``S``, and returns
``(policy, value)`` where

    policy = argmax_{theta in simplex} <theta, S> - lam * D(theta || ref)
    value  = max   _{theta in simplex} <theta, S> - lam * D(theta || ref)

The formulas are written against :mod:`strategic_feedback_env.mechanisms._ops` so numpy and torch share them.
``overwrite=True`` says ``S`` is a fresh temporary the caller gives up: KL builds its logits in
``S``'s memory (chi2 and tv read ``S`` to the end and leave it as it is).

* KL: ``theta ∝ ref * exp(S / lam)`` and ``value = lam * log Z`` (log-sum-exp, no overflow).
* chi2: ``D = sum_x ref(x) (theta(x)/ref(x) - 1)^2``. KKT gives
  ``theta(x) = ref(x) * max(0, (S(x) - nu) / (2 lam))`` with ``nu`` fixed by normalisation,
  found by sorting (a reference-weighted sparsemax).
* tv: ``D = 1/2 sum_x |theta(x) - ref(x)|`` (total variation distance). Moving mass ``d``
  from ``x`` to ``y`` gains ``d (S(y) - S(x))`` and costs ``lam d``, so the optimum keeps
  ``ref`` on ``{x : S(x) >= max S - lam}`` and moves the rest onto the first argmax.
"""

from __future__ import annotations

from ._ops import NumpyOps

REGULARIZERS = ("kl", "chi2", "tv")


def solve_kl(S, lam, ref, ops=NumpyOps, overwrite=False):
    # Shift by max S before dividing by lam: otherwise log(ref) is added to S / lam (up to
    # ~1e12) and rounded away, so tied outcomes are split wrongly and the policy's sum drifts.
    top = ops.amax_last(S)  # = xp.amax(S, axis=-1, keepdims=True), exact
    logits = _kl_logits(S, top, lam, ref, ops, overwrite)
    log_z = ops.logsumexp(logits)
    policy = ops.iexp(ops.isub(logits, log_z[..., None]))  # exp(logits - log_z), in logits' memory
    return policy, top[..., 0] + (log_z if lam == 1.0 else lam * log_z)  # 1.0 * x == x: skip a pass


def _kl_logits(S, top, lam, ref, ops, overwrite=False):
    """``log(ref) + (S - top) / lam`` in one fresh array, or in ``S``'s memory with ``overwrite``
    (``x / 1.0 == x``: that pass is skipped; ``a + b == b + a`` bit for bit, so adding
    ``log(ref)`` last into the same buffer is exact)."""
    shifted = ops.isub(S, top) if overwrite else S - top
    if lam != 1.0:
        shifted = ops.idiv(shifted, lam)
    return ops.iadd(shifted, ops.xp.log(ref))


def solve_chi2(S, lam, ref, ops=NumpyOps, overwrite=False):
    # Temporaries are released (or written over, ops.i*) as soon as they are used: the batched
    # envs call this on (B, n, K) scores; the values are those of the plain expressions.
    xp = ops.xp
    order = ops.argsort_descending(S)
    s_sorted = ops.take_along(S, order)
    r_sorted = ops.take_along(xp.broadcast_to(ref, S.shape), order)
    del order
    mass = xp.cumsum(r_sorted, axis=-1)
    nu_k = xp.cumsum(ops.imul(r_sorted, s_sorted), axis=-1)
    del r_sorted
    nu_k = ops.idiv(ops.isub(nu_k, 2.0 * lam), mass)  # (cumsum(r s) - 2 lam) / mass
    del mass
    in_support = s_sorted > nu_k
    del s_sorted
    # The support is a prefix of the sorted scores; nu is the threshold of its last entry.
    k = xp.sum(in_support, axis=-1, keepdims=True)
    nu = ops.take_along(nu_k, k - 1)
    del nu_k, in_support
    policy = ops.imul(xp.clip(ops.idiv(S - nu, 2.0 * lam), 0.0, None), ref)  # ref * max(0, (S - nu) / 2 lam)
    # Exact arithmetic gives sum 1; renormalising removes the cancellation error of S - nu
    # when S / lam is huge (e.g. lam = 1e-6 with sizes 1e6).
    policy = ops.idiv(policy, xp.sum(policy, axis=-1, keepdims=True))
    penalty = xp.sum(ops.idiv(policy * policy, ref), axis=-1) - 1.0
    return policy, xp.sum(policy * S, axis=-1) - lam * penalty


def solve_tv(S, lam, ref, ops=NumpyOps, overwrite=False):
    xp = ops.xp
    ref = ref + xp.zeros_like(S)
    top = ops.amax_last(S)  # = xp.amax(S, axis=-1, keepdims=True), exact
    kept = S >= top - lam
    moved = xp.sum(xp.where(kept, 0.0, ref), axis=-1)
    policy = ops.iadd(xp.where(kept, ref, 0.0), ops.imul(ops.one_hot_argmax(S), moved[..., None]))
    return policy, xp.sum(policy * S, axis=-1) - lam * moved


SOLVERS = {"kl": solve_kl, "chi2": solve_chi2, "tv": solve_tv}


def value_kl(S, lam, ref, ops=NumpyOps):
    """Only the optimal value of :func:`solve_kl`: the same operations (so the same bits; the
    test suite checks it), minus the policy. Keep in step with :func:`solve_kl`."""
    top = ops.amax_last(S)  # = xp.amax(S, axis=-1, keepdims=True), exact
    log_z = ops.logsumexp(_kl_logits(S, top, lam, ref, ops), overwrite=True)
    return top[..., 0] + (log_z if lam == 1.0 else lam * log_z)


# Value-only solvers, for the leave-one-out values of the payments (no policy needed).
VALUE_SOLVERS = {
    "kl": value_kl,
    "chi2": lambda S, lam, ref, ops=NumpyOps: solve_chi2(S, lam, ref, ops)[1],
    "tv": lambda S, lam, ref, ops=NumpyOps: solve_tv(S, lam, ref, ops)[1],
}


def penalty(theta, ref, regularizer, ops=NumpyOps):
    """``D(theta || ref)`` over the last axis for any ``theta`` on the simplex (zeros allowed):
    KL ``sum theta log(theta / ref)`` (``0 log 0 = 0``), chi2 ``sum ref (theta / ref - 1)^2``,
    tv ``1/2 sum |theta - ref|`` (docs/model.md §1)."""
    xp = ops.xp
    if regularizer == "kl":
        safe = xp.where(theta > 0, theta, 1.0 + 0.0 * theta)  # log(1) = 0 where theta = 0
        return ops.sum_last(theta * xp.log(safe / ref))
    if regularizer == "chi2":
        return ops.sum_last(theta * theta / ref) - 1.0
    return 0.5 * ops.sum_last(xp.abs(theta - ref))


def penalty_gradient(theta, ref, regularizer, ops=NumpyOps):
    """A (sub)gradient of ``D(theta || ref)`` in ``theta``, up to a constant vector (which the
    simplex ignores): KL ``log(theta / ref)``, chi2 ``2 (theta / ref - 1)``, tv
    ``1/2 sign(theta - ref)``."""
    xp = ops.xp
    if regularizer == "kl":
        return xp.log(theta / ref)
    if regularizer == "chi2":
        return 2.0 * (theta / ref - 1.0)
    return 0.5 * xp.sign(theta - ref)


def regularised_welfare(theta, scores, lam, ref, regularizer, ops=NumpyOps):
    """``ASW(theta) = <theta, S> - lam D(theta || ref)`` over the last axis (docs/model.md §1)."""
    return ops.sum_last(theta * scores) - lam * penalty(theta, ref, regularizer, ops)
