"""Iterative training rules: what a real fine-tuning run returns instead of ``theta*`` (docs/model.md §4).

Both start from ``theta_0 = ref`` and ascend ``ASW(theta) = <theta, S> - lam D(theta || ref)``
for ``steps`` steps of size ``eta`` on scores ``S`` ``(..., K)``; both return the iterates
``theta_0 .. theta_T`` stacked on a new first axis ``(T + 1, ..., K)`` (the checkpoints of
[SUN] Heuristic 1; the trained policy is the last one).

* :func:`mirror_ascent` (exponentiated gradient, deterministic):
  ``log theta_{t+1} = log theta_t + eta (S - lam grad D(theta_t)) + const``. For KL this is
  ``(1 - eta lam) log theta_t + eta lam log ref + eta S``, whose closed form is
  ``theta_T = Gibbs(S, lam / (1 - (1 - eta lam)^T))``: truncation acts as a larger ``lam``.
  It diverges for ``eta lam >= 2`` (:func:`check_step_size`).
* :func:`policy_gradient` (REINFORCE with a leave-one-out baseline on softmax logits ``z``,
  ``theta = softmax(z)``): each step samples ``m`` responses ``x_j ~ theta_t``, scores them
  with the per-sample regularised reward ``A(x) = S(x) - lam grad D(theta_t)(x)`` (for KL the
  RLHF reward ``S(x) - lam log(theta_t(x) / ref(x))``) and steps
  ``z += eta / m sum_j (A(x_j) - mean_{k != j} A(x_k)) (e_{x_j} - theta_t)``, an unbiased
  estimate of the logit gradient ``theta_t * (A - <theta_t, A>)``. The samples come from
  ``uniforms`` ``(T, m)`` (inverse CDF), shared by every instance of a batch: the same seed is
  the same run (common random numbers), so batched == scalar and counterfactuals are paired.

Written against :mod:`strategic_feedback_env.mechanisms._ops`, so the torch twin unrolls the
same steps (mirror ascent only: sampling is not differentiable).
"""

from __future__ import annotations

from ._ops import NumpyOps
from .regularizers import penalty_gradient
from .validation import check_number

SOLVERS = ("exact", "mirror_ascent", "policy_gradient")


def check_step_size(step_size, lam, regularizer) -> float:
    """``step_size > 0`` and, for KL, ``step_size * lam < 2`` (else ``|1 - eta lam| >= 1`` and
    mirror ascent does not converge)."""
    eta = check_number(step_size, "step_size")
    if eta <= 0:
        raise ValueError(f"step_size must be a finite number > 0, got {step_size!r}")
    if regularizer == "kl" and eta * lam >= 2:
        raise ValueError(f"step_size * lam must be < 2 for KL mirror ascent (it diverges otherwise), "
                         f"got step_size={eta!r}, lam={lam!r}")
    return eta


def _softmax(logits, ops):
    return ops.xp.exp(logits - ops.logsumexp(logits)[..., None])


def mirror_ascent(S, lam, ref, regularizer, steps, step_size, ops=NumpyOps):
    """Iterates ``(T + 1, ..., K)`` of exponentiated-gradient ascent from ``ref`` (module docstring)."""
    log_ref = ops.xp.log(ref + 0.0 * S)
    theta, log_theta = ref + 0.0 * S, log_ref
    iterates = [theta]
    for _ in range(steps):
        if regularizer == "kl":  # the gradient log(theta / ref) in log space: no log(exp(.)) round trip
            step = log_theta + step_size * (S - lam * (log_theta - log_ref))
        else:
            step = log_theta + step_size * (S - lam * penalty_gradient(theta, ref, regularizer, ops))
        log_theta = step - ops.logsumexp(step)[..., None]
        theta = ops.xp.exp(log_theta)
        iterates.append(theta)
    return ops.xp.stack(iterates)


def policy_gradient(S, lam, ref, regularizer, steps, step_size, uniforms, ops=NumpyOps):
    """Iterates ``(T + 1, ..., K)`` of REINFORCE on softmax logits from ``ref``, sampling with
    ``uniforms`` ``(T, m)`` (module docstring)."""
    xp = ops.xp
    K = S.shape[-1]
    m = uniforms.shape[1]
    log_ref = xp.log(ref + 0.0 * S)
    logits = log_ref
    theta = _softmax(logits, ops)
    iterates = [theta]
    for t in range(steps):
        cdf = xp.cumsum(theta, axis=-1)
        # x_j = #{k : cdf_k < u_j} (inverse CDF), clipped against rounding of the last cdf entry
        picks = xp.minimum(ops.sum_last(cdf[..., None, :] < uniforms[t][:, None]), K - 1)  # (..., m)
        onehot = 1.0 * (picks[..., None] == xp.arange(K))  # (..., m, K)
        if regularizer == "kl":  # log(theta / ref) from the logits: finite where theta underflows to 0
            advantage = S - lam * (logits - ops.logsumexp(logits)[..., None] - log_ref)
        else:
            advantage = S - lam * penalty_gradient(theta, ref, regularizer, ops)
        sampled = ops.sum_last(onehot * advantage[..., None, :])  # A(x_j), (..., m)
        baseline = (ops.sum_last(sampled)[..., None] - sampled) / (m - 1)
        weight = (sampled - baseline)[..., None]
        grad = ops.sum_rows(weight * (onehot - theta[..., None, :])) / m
        logits = logits + step_size * grad
        theta = _softmax(logits, ops)
        iterates.append(theta)
    return xp.stack(iterates)
