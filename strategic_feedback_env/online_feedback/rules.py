"""Rules of the online-feedback game [HD], vectorised over leading batch dimensions.

Pure functions shared by the ParallelEnv and the batched env (MODEL.md section 2). Reports
``x_i`` are probabilities that response A is better; mechanisms see ``(x_i, 1 - x_i)``.
"""

from __future__ import annotations

import numpy as np

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
    return np.stack([x, 1.0 - x], axis=-1)


def draw_round(rng, batch_shape, accuracies, biases, outcome_model):
    """Ground truth ``q``, signals ``s_i = clip(q + sigma_i xi)``, targets
    ``b_i = clip(s_i + beta_i)`` and the outcome ``y`` (``Bernoulli(q)`` or ``q``)."""
    n = accuracies.shape[-1]
    q = rng.random(batch_shape)
    signals = np.clip(q[..., None] + accuracies * rng.standard_normal((*batch_shape, n)), 0.0, 1.0)
    targets = np.clip(signals + biases, 0.0, 1.0)
    y = (rng.random(batch_shape) < q).astype(np.float64) if outcome_model == "bernoulli" else q.copy()
    return q, signals, targets, y


def observe(signals, targets, weights, round_fraction, last_aggregate, last_y):
    """``[s_i | b_i | pi_i | round / max_cycles | last aggregate | last y]`` per labeler."""
    lead = signals.shape
    public = [np.broadcast_to(np.asarray(v, dtype=np.float64)[..., None], lead) for v in
              (round_fraction, last_aggregate, last_y)]
    return np.stack([signals, targets, np.broadcast_to(weights, lead), *public], axis=-1)


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
    weights_used = np.full(x.shape, 1.0 / n) if out.weights is None else np.broadcast_to(out.weights, x.shape).copy()
    weights_after = weights_used
    if mechanism.online:
        mechanism.update(reports, as_pair(y))
        weights_after = np.broadcast_to(mechanism.weights, x.shape).copy()
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
