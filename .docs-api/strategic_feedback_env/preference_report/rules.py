"""Rules of the preference-report game (docs/model.md §6), vectorised over leading batch dimensions.

Pure functions shared by the ParallelEnv (no batch dimension) and the batched env
(``(B, n, ...)``). Labeler ``i`` is asked about ``m`` pairs ``(a, b)``; its truthful report is
the Bradley-Terry probability ``sigma((r_i(a) - r_i(b)) / tau)`` (or a label drawn from it).
The platform fits rewards by BT maximum likelihood (:mod:`strategic_feedback_env.mechanisms.bradley_terry`),
per labeler or pooled over everyone weighted by size, and hands them to a reward-report
mechanism as the labelers' reports.
"""

from __future__ import annotations

import numpy as np

from strategic_feedback_env.mechanisms.base import Outcome
from strategic_feedback_env.mechanisms.bradley_terry import fit_rewards

from ..reward_report import rules as rr_rules

REWARD_MODELS = ("per_labeler", "pooled")
REPORTS = ("probability", "label")


def all_pairs(K: int) -> np.ndarray:
    """The ``K (K - 1) / 2`` pairs ``(a, b)`` with ``a < b``, in lexicographic order: ``(P, 2)``."""
    a, b = np.triu_indices(K, k=1)
    return np.stack([a, b], axis=-1)


def observation_layout(K: int, m: int) -> dict:
    """Slices of the observation vector, by name (the first four as in ``reward_report_v0``)."""
    base = rr_rules.observation_layout(K)
    start = 2 * K + 2
    return {
        **base,
        "pairs": slice(start, start + 2 * m),  # a_1, b_1, a_2, b_2 ... divided by K - 1
        "preference": slice(start + 2 * m, start + 3 * m),  # the labeler's BT probability per pair
        "truthful": slice(start + 3 * m, start + 4 * m),  # its truthful action (the probability or its label)
    }


def draw_pairs(rng, shape, K: int, m: int) -> np.ndarray:
    """``(*shape, m, 2)`` pairs asked about: all pairs (``m = P``, no draw) or ``m`` of them sampled
    without replacement, independently for each labeler of ``shape``."""
    pairs = all_pairs(K)
    if m == len(pairs):
        return np.broadcast_to(pairs, (*shape, m, 2))
    chosen = np.argsort(rng.random((*shape, len(pairs))), axis=-1, kind="stable")[..., :m]
    return pairs[chosen]


def bt_probabilities(rewards, pairs, temperature):
    """``sigma((r(a) - r(b)) / tau)`` ``(..., m)`` for rewards ``(..., K)`` and pairs ``(..., m, 2)``."""
    gap = np.take_along_axis(rewards, pairs[..., 0], axis=-1) - np.take_along_axis(rewards, pairs[..., 1], axis=-1)
    return 0.5 * (1.0 + np.tanh(0.5 * gap / temperature))


def observe(rewards, sizes, max_size, round_fraction, last_policy, pairs, preferences, truthful):
    """``[r_i | w_i / max_size | round / max_cycles | last policy | pairs / (K - 1) | BT
    probabilities | truthful action]`` for every labeler."""
    K = rewards.shape[-1]
    base = rr_rules.observe(rewards, sizes, max_size, round_fraction, last_policy)
    encoded = pairs.reshape(*pairs.shape[:-2], -1) / (K - 1)
    return np.concatenate([base, encoded, preferences, truthful], axis=-1)


def fitted_reports(reports, pairs, sizes, K, reward_model, temperature, ridge, clip):
    """The BT fits the mechanism sees as reports, ``(..., n, K)`` in ``[0, 1]``, from the reports
    ``(..., n, m)`` on ``pairs`` ``(..., n, m, 2)``: one fit per labeler, or the pooled fit
    (comparisons weighted by the sizes ``(..., n)``) repeated for every labeler. Fits above 1
    are cut at 1, the top of the reward-report game's report space."""
    if reward_model == "per_labeler":
        fitted = fit_rewards(pairs, reports, K, temperature, None, ridge, clip)
    else:
        n, m = reports.shape[-2:]
        flat_pairs = pairs.reshape(*pairs.shape[:-3], n * m, 2)
        counts = np.repeat(sizes, m, axis=-1)
        pooled = fit_rewards(flat_pairs, reports.reshape(*reports.shape[:-2], n * m), K, temperature, counts, ridge,
                             clip)
        fitted = np.broadcast_to(pooled[..., None, :], (*reports.shape[:-1], K))
    return np.minimum(fitted, 1.0)


def play_round(game, reports):
    """Fit the reports ``(..., n, m)``, run ``game``'s mechanism and score every labeler against
    the counterfactual of reporting truthfully alone (``game.truthful``, the others' reports
    fixed). Returns ``(fitted rewards (..., n, K), results of reward_report's score_outcomes)``."""
    mechanism, sizes, pairs = game.mechanism, game.sizes, game.pairs

    def fit(r, p, w):
        return fitted_reports(r, p, w, game.K, game.reward_model, game.temperature, game.ridge, game.clip)

    fitted = fit(reports, pairs, sizes)
    if game.reward_model == "per_labeler":
        out, dev = mechanism._round_outcomes(fitted, sizes, fit(game.truthful, pairs, sizes), sizes, game.reference)
    else:  # labeler i's truthful report moves everyone's fit: one pooled fit per deviation profile
        n = reports.shape[-2]
        own = np.eye(n, dtype=bool)[..., None]
        profiles = np.where(own, game.truthful[..., None, :, :], reports[..., None, :, :])  # (..., n, n, m)
        profile_sizes = np.broadcast_to(sizes[..., None, :], (*sizes.shape, n))
        profile_pairs = np.broadcast_to(pairs[..., None, :, :, :], (*pairs.shape[:-3], n, *pairs.shape[-3:]))
        dev_all = mechanism.outcome(fit(profiles, profile_pairs, profile_sizes), profile_sizes, game.reference)
        dev = Outcome(policy=dev_all.policy, payments=np.diagonal(dev_all.payments, axis1=-2, axis2=-1))
        out = mechanism.outcome(fitted, sizes, game.reference)
    return fitted, rr_rules.score_outcomes(out, dev, game.rewards, sizes)
