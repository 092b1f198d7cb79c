"""Rules of the online-feedback game [HD], vectorised over leading batch dimensions.

Pure functions shared by the ParallelEnv and the batched env (numpy or torch; docs/model.md
section 2). Reports ``x_i`` are probabilities that response A is better; mechanisms see
``(x_i, 1 - x_i)``.
"""

from __future__ import annotations

from strategic_feedback_env.mechanisms._ops import ops_for

OBSERVATION_LAYOUT = {
    "signal": slice(0, 1),
    "target": slice(1, 2),
    "weight": slice(2, 3),
    "round": slice(3, 4),
    "last_aggregate": slice(4, 5),
    "last_y": slice(5, 6),
}


def as_pair(x):
    """Probabilities ``(..., n)`` -> distributions over (A, B), ``(..., n, 2)``."""
    return ops_for(x).xp.stack([x, 1.0 - x], axis=-1)


def draw_round(rng, batch_shape, accuracies, biases, outcome_model):
    """Ground truth ``q``, signals ``s_i = clip(q + sigma_i xi)``, targets
    ``b_i = clip(s_i + beta_i)`` and the outcome ``y`` (``Bernoulli(q)`` or ``q``)."""
    n = accuracies.shape[-1]
    ops = ops_for(accuracies)
    q = rng.random(batch_shape)
    signals = ops.xp.clip(q[..., None] + accuracies * rng.standard_normal((*batch_shape, n)), 0.0, 1.0)
    targets = ops.xp.clip(signals + biases, 0.0, 1.0)
    y = ops.asarray(rng.random(batch_shape) < q, like=q) if outcome_model == "bernoulli" else ops.copy(q)
    return q, signals, targets, y


def observe(signals, targets, weights, round_fraction, last_aggregate, last_y):
    """``[s_i | b_i | pi_i | round / max_cycles | last aggregate | last y]`` per labeler."""
    lead = signals.shape
    ops = ops_for(signals)
    public = [ops.xp.broadcast_to(ops.asarray(v, like=signals)[..., None], lead) for v in
              (round_fraction, last_aggregate, last_y)]
    return ops.xp.stack([signals, targets, ops.xp.broadcast_to(weights, lead), *public], axis=-1)


def resolve_round(mechanism, x, signals, targets, y, shares=None):
    """Aggregate, score and update the mechanism's weights (if it learns).

    ``shares`` ``(n,)`` (sybil identities, :mod:`strategic_feedback_env.sybils`) scales each
    labeler's influence; None means 1 for everyone.

    Returns per-labeler arrays ``(..., n)`` (valuation = influence ``-(x_bar - b_i)^2``,
    payment, utility, truthful_utility, gain, weight used, labeler loss ``(s_i - y)^2``) and
    ``aggregate``, ``aggregate_loss`` ``(...)``, ``weights`` after the update ``(..., n)``.
    """
    reports = as_pair(x)
    out, dev = mechanism._round_outcomes(reports, None, as_pair(signals))
    aggregate = out.policy[..., 0]
    influence = -((aggregate[..., None] - targets) ** 2)
    truthful_influence = -((dev.policy[..., 0] - targets) ** 2)
    if shares is not None:
        influence, truthful_influence = shares * influence, shares * truthful_influence
    utilities = influence - out.payments
    truthful_utilities = truthful_influence - dev.payments
    n = x.shape[-1]
    ops = ops_for(x)
    weights_used = (ops.full(x.shape, 1.0 / n, like=x) if out.weights is None
                    else ops.copy(ops.xp.broadcast_to(out.weights, x.shape)))
    weights_after = weights_used
    if mechanism.online:
        mechanism.update(reports, as_pair(y))
        weights_after = ops.copy(ops.xp.broadcast_to(mechanism.weights, x.shape))
    return {
        "valuation": influence,
        "payment": out.payments,
        "utility": utilities,
        "truthful_utility": truthful_utilities,
        "gain": utilities - truthful_utilities,
        "weight": weights_used,
        "labeler_loss": (signals - y[..., None]) ** 2,
        "aggregate": aggregate,
        # d * d, not d ** 2: numpy's scalar ``**`` (used when there is no batch dimension) can
        # differ from the array square in the last bit, and the batched env must match exactly.
        "aggregate_loss": (aggregate - y) * (aggregate - y),
        "weights": weights_after,
    }
