"""Rules of the reward-report game [SUN], vectorised over leading batch dimensions.

Pure functions, shared by the ParallelEnv (no batch dimension) and the batched env
(``(B, n, K)``, numpy or torch) so the game is written once (docs/model.md §1). Arrays come
back in the kind they came in (``mechanisms._ops.ops_for``).
"""

from __future__ import annotations

import math

import numpy as np

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms._ops import max_last, ops_for, sum_last


def observation_layout(K: int) -> dict:
    """Slices of the observation vector, by name."""
    return {
        "reward": slice(0, K),
        "size": slice(K, K + 1),
        "round": slice(K + 1, K + 2),
        "last_policy": slice(K + 2, 2 * K + 2),
    }


def normalise(vectors: np.ndarray, normalization: str, overwrite: bool = False) -> np.ndarray:
    """Rows divided by their sum or max; an all-zero row becomes uniform / all ones.
    ``overwrite=True``: ``vectors`` is a fresh float64 array the caller gives up (same values)."""
    norm = sum_last(vectors, keepdims=True) if normalization == "sum" else max_last(vectors, keepdims=True)
    fallback = 1.0 / vectors.shape[-1] if normalization == "sum" else 1.0
    positive = norm > 0
    ops = ops_for(vectors)
    if ops.known_all(positive):  # the common case; same values as the general expression below
        return ops.xp.divide(vectors, norm, out=vectors) if overwrite else vectors / norm
    safe = ops.xp.where(positive, norm, 1.0)
    if overwrite:
        return ops.ifill(ops.idiv(vectors, safe), ~positive, fallback)
    return ops.xp.where(positive, vectors / safe, fallback)


DRAW_BLOCKS = 32  # how many blocks rewards drawn into a given array are drawn in, at most


def _draw_raw(rng, shape, K, distribution, dirichlet_alpha):
    """Unnormalised rewards ``shape + (K,)``: uniform numbers or ``Dir(alpha)`` rows."""
    if distribution == "uniform":
        return rng.random((*shape, K))
    return rng.dirichlet(np.full(K, dirichlet_alpha), size=shape)


def draw_types(rng, shape, K, distribution, dirichlet_alpha, normalization, max_size, fixed_sizes=None, out=None):
    """Private types for labelers of ``shape`` (e.g. ``(n,)`` or ``(B, n)``):
    rewards ``shape + (K,)`` and sizes ``shape``.

    ``out``: an array of the rewards' shape (a view of an observation's reward columns, say) the
    rewards are drawn and normalised into, in (at most) :data:`DRAW_BLOCKS` blocks along the first
    axis, so no temporary larger than a block is made.
    Numpy's generators draw the same numbers in blocks as in one call; a torch generator draws a
    reproducible stream of its own."""
    if out is None:
        raw = _draw_raw(rng, shape, K, distribution, dirichlet_alpha)
    else:
        rows = math.ceil(shape[0] / DRAW_BLOCKS)
        for start in range(0, shape[0], rows):
            block = out[start:start + rows]
            block[...] = _draw_raw(rng, block.shape[:-1], K, distribution, dirichlet_alpha)
        raw = out
    rewards = normalise(raw, normalization, overwrite=True)
    if out is not None and rewards is not out:  # an all-zero row's fallback is a new array
        out[...] = rewards
        rewards = out
    ops = ops_for(raw)
    if fixed_sizes is None:
        sizes = ops.asarray(rng.integers(1, max_size + 1, size=shape), like=raw)
    else:
        sizes = ops.copy(ops.xp.broadcast_to(fixed_sizes, shape))
    return rewards, sizes


def draw_noise(rng, shape, eps):
    """The mechanism's input noise (Thm 4.12): ``U[-eps, eps]`` per entry of ``shape``, or
    ``None`` for ``eps = 0``."""
    return rng.uniform(-eps, eps, shape) if eps > 0 else None


def decode_size(entry, max_size):
    """The reported size ``w~ = 1 + a (max_size - 1)`` of an action's size entry ``a`` in ``[0, 1]``
    (numpy arrays or torch tensors)."""
    return 1.0 + entry * (max_size - 1)


def encode_size(sizes, max_size):
    """The action's size entry that reports size ``w``: the inverse of :func:`decode_size`."""
    return (sizes - 1.0) / max(max_size - 1, 1)


def decode_actions(actions, K, normalization, report_size, max_size, true_sizes):
    """Actions ``(..., n, K[+1])`` in ``[0, 1]`` -> normalised reports and reported sizes."""
    reports = normalise(actions[..., :K], normalization)
    sizes = decode_size(actions[..., K], max_size) if report_size else true_sizes
    return reports, sizes


def encode_actions(reports, sizes, normalization, report_size, max_size):
    """Reports ``(..., K)`` and sizes ``(...)`` -> the actions in ``[0, 1]`` that report them: the
    inverse of :func:`decode_actions` (sum-normalised reports are sent scaled to maximum 1, which
    the env normalises back)."""
    action = reports / reports.max(-1, keepdims=True) if normalization == "sum" else reports
    if report_size:
        action = np.concatenate([action, np.asarray(encode_size(sizes, max_size))[..., None]], axis=-1)
    return np.clip(action, 0.0, 1.0)


def truthful_actions(rewards, sizes, max_size, report_size):
    """The action that reports the type exactly."""
    ops = ops_for(rewards)
    if not report_size:
        return ops.copy(rewards)
    # clipped: a sybil identity's split size w / k may lie below the smallest report, 1
    return ops.xp.concatenate([rewards, ops.xp.clip(encode_size(sizes, max_size), 0.0, 1.0)[..., None]], axis=-1)


def observe(rewards, sizes, max_size, round_fraction, last_policy):
    """``[r_i | w_i / max_size | round / max_cycles | last policy]`` for every labeler."""
    K = rewards.shape[-1]
    obs = ops_for(rewards).empty((*rewards.shape[:-1], 2 * K + 2), like=rewards)
    obs[..., :K] = rewards
    return fill_observation(obs, sizes, max_size, round_fraction, last_policy)


def fill_observation(obs, sizes, max_size, round_fraction, last_policy):
    """Write every column of the observations ``obs`` but the rewards (see :func:`observe`); returns ``obs``."""
    K = last_policy.shape[-1]
    ops = ops_for(obs)
    ops.xp.divide(sizes, max_size, out=obs[..., K])  # sizes / max_size, without a temporary
    obs[..., K + 1] = ops.asarray(round_fraction, like=obs)[..., None]
    obs[..., K + 2:] = last_policy[..., None, :]
    return obs


def play_round(game, actions):
    """Decode ``game``'s actions and resolve the round with its mechanism, types, reference
    and noise (``game``: the ParallelEnv or the batched env). Returns
    ``(reports, reported_sizes, results of resolve_round)``."""
    reports, reported_sizes = decode_actions(actions, game.K, game.normalization, game.report_size, game.max_size,
                                             game.sizes)
    results = resolve_round(game.mechanism, reports, reported_sizes, game.rewards, game.sizes, game.reference,
                            game.noise)
    return reports, reported_sizes, results


def resolve_round(mechanism, reports, reported_sizes, rewards, sizes, reference, noise=None):
    """Run the mechanism on the (possibly noisy) reports and score every labeler.

    Returns per-labeler arrays ``(..., n)``: valuation, payment, utility, truthful_utility
    (had it alone reported its type, with the same input noise) and gain; and ``policy``
    ``(..., K)``, ``social_welfare`` and ``total_payment`` ``(...)``.
    """
    seen, truthful_seen = reports, rewards
    if noise is not None:
        clip = ops_for(reports).xp.clip
        seen = clip(reports + noise, 0.0, 1.0)
        truthful_seen = clip(rewards + noise, 0.0, 1.0)
    # One call for the outcome and the truthful counterfactuals (mechanisms share work there).
    out, dev = mechanism._round_outcomes(seen, reported_sizes, truthful_seen, sizes, reference)
    return score_outcomes(out, dev, rewards, sizes)


def score_outcomes(out, dev, rewards, sizes):
    """The per-labeler scores of :func:`resolve_round` from the mechanism's outcome ``out`` and the
    truthful deviations ``dev`` (row ``i``: labeler ``i`` alone reported truthfully), with the
    true types ``rewards`` ``(..., n, K)`` and ``sizes`` ``(..., n)``."""
    valuations = mechanisms.valuation(out.policy, rewards)
    utilities = sizes * valuations - out.payments
    truthful_utilities = sizes * sum_last(dev.policy * rewards) - dev.payments
    return {
        "valuation": valuations,
        "payment": out.payments,
        "utility": utilities,
        "truthful_utility": truthful_utilities,
        "gain": utilities - truthful_utilities,
        "policy": out.policy,
        "social_welfare": sum_last(sizes * valuations),
        "total_payment": sum_last(out.payments),
    }


def round_infos(res):
    """``(per-labeler infos, shared infos)`` of one round of a scalar env, from the results of
    :func:`score_outcomes` (the games add their own report entries to the first)."""
    agent_infos = {k: res[k] for k in ("valuation", "payment", "utility", "truthful_utility", "gain")}
    shared = {
        "social_welfare": float(res["social_welfare"]),
        "total_payment": float(res["total_payment"]),
        "policy": res["policy"],
    }
    return agent_infos, shared
