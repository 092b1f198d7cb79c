"""Bradley-Terry maximum-likelihood reward fits from pairwise preferences (docs/model.md §6).

Comparison ``k`` asks whether response ``a_k`` beats ``b_k``; its report ``p_k`` in ``[0, 1]``
(a probability or a 0/1 label) is a soft target of the BT model
``P(a > b) = sigma((r(a) - r(b)) / tau)``. On scores ``s = r / tau`` the weighted log-likelihood

    L(s) = sum_k c_k [p_k log sigma(d_k) + (1 - p_k) log sigma(-d_k)] - ridge/2 ||s||^2,
    d_k = s(a_k) - s(b_k),

is concave. With the incidence matrix ``B`` (row ``k``: ``+1`` at ``a_k``, ``-1`` at ``b_k``),
``grad = B^T (c (p - sigma(d))) - ridge s`` and
``-hess = B^T diag(c sigma(d)(1 - sigma(d))) B + ridge I``. Scores are identified only up to an
additive constant on each connected component of the comparison graph: Newton's method runs
on ``-hess + N``, ``N`` the projection onto the null space of the graph Laplacian ``B^T B``, and
starts at 0, so every component keeps mean score 0 (a response never compared scores 0). The
fitted reward is ``tau (s - min s)``. Targets are clipped to ``[clip, 1 - clip]`` so the
maximiser is finite.

The Newton step is written once against :mod:`strategic_feedback_env.mechanisms._ops` (numpy
and torch); :func:`torch_bt_fit` is differentiable w.r.t. the reports through the implicit
function theorem (a Newton step with gradients from the converged, detached optimum).
"""

from __future__ import annotations

import numpy as np

from ._ops import NumpyOps, is_tensor, torch_ops
from .validation import as_float_array, check_number

MAX_STEP = 5.0  # largest Newton step (max-norm, logit units): a trust region far from the optimum


def pair_incidence(pairs, K: int) -> np.ndarray:
    """Incidence ``(..., m, K)``: row ``k`` is ``+1`` at ``a_k`` and ``-1`` at ``b_k``."""
    outcomes = np.arange(K)
    return (pairs[..., 0:1] == outcomes).astype(np.float64) - (pairs[..., 1:2] == outcomes).astype(np.float64)


def null_projection(incidence, counts) -> np.ndarray:
    """``(..., K, K)`` projection onto the null space of the Laplacian ``B^T diag(c > 0) B``: the
    span of the comparison graph's component indicators, ``N[k, l] = [k ~ l] / |component of k|``
    (connectivity by repeated squaring of the adjacency)."""
    K = incidence.shape[-1]
    used = np.abs(incidence) * (counts > 0)[..., None]
    linked = (np.matmul(np.swapaxes(used, -1, -2), used) + np.eye(K)) > 0
    for _ in range(max(1, int(np.ceil(np.log2(K))))):
        linked = np.matmul(linked.astype(np.float64), linked.astype(np.float64)) > 0
    same = linked.astype(np.float64)
    return same / same.sum(-1, keepdims=True)


def newton_step(scores, incidence, targets, counts, ridge, gauge, ops=NumpyOps):
    """One Newton step ``(-hess + N)^{-1} grad`` of the BT log-likelihood at ``scores`` ``(..., K)``,
    capped at ``MAX_STEP`` in max-norm (numpy arrays or torch tensors via ``ops``)."""
    xp = ops.xp
    transposed = incidence.swapaxes(-1, -2)
    d = (incidence @ scores[..., None])[..., 0]
    # sigma(-|d|) without overflow; p - sigma(d) as sigma(-d) - (1 - p) for d > 0, so residuals
    # near 1 keep their relative accuracy (with near-separable labels the Hessian's smallest
    # eigenvalue is ~clip^2 and an absolute 1e-16 in the gradient would move the fit by ~1e-5)
    small = xp.exp(-xp.abs(d))
    small = small / (1.0 + small)
    residual = xp.where(d > 0, small - (1.0 - targets), targets - small)
    grad = (transposed @ (counts * residual)[..., None])[..., 0] - ridge * scores
    curvature = counts * small * (1.0 - small)
    precision = (transposed * curvature[..., None, :]) @ incidence + gauge
    if ridge:
        precision = precision + ridge * xp.eye(scores.shape[-1], dtype=scores.dtype)
    step = xp.linalg.solve(precision, grad[..., None])[..., 0]
    size = ops.amax_last(xp.abs(step))
    return step * (MAX_STEP / xp.clip(size, MAX_STEP, None))


def _iterate(scores, incidence, targets, counts, ridge, gauge, ops, tol, max_iter):
    for _ in range(max_iter):
        step = newton_step(scores, incidence, targets, counts, ridge, gauge, ops)
        scores = scores + step
        if float(ops.xp.abs(step).max()) <= tol:
            break
    return scores


def check_pairs(pairs, K: int) -> np.ndarray:
    """Integer pairs ``(..., m, 2)`` of distinct responses in ``0..K-1``."""
    p = np.asarray(pairs)
    if p.dtype.kind not in "iu" and not (p.dtype.kind == "f" and np.all(np.isfinite(p)) and np.all(p == np.round(p))):
        raise ValueError(f"pairs must be integer response indices, got dtype {p.dtype}")
    p = p.astype(np.intp)
    if p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"pairs must have shape (..., m, 2), got {p.shape}")
    if p.size and (p.min() < 0 or p.max() >= K):
        raise ValueError(f"pairs must index responses 0..{K - 1}, got min {p.min()}, max {p.max()}")
    if np.any(p[..., 0] == p[..., 1]):
        raise ValueError("pairs must compare two different responses (a != b)")
    return p


def check_fit_options(temperature, ridge, clip):
    """``(temperature > 0, ridge >= 0, clip in (0, 1/2))`` as floats, else ``ValueError``."""
    temperature, ridge, clip = (check_number(temperature, "temperature"), check_number(ridge, "ridge"),
                                check_number(clip, "clip"))
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    if not 0 < clip < 0.5:
        raise ValueError(f"clip must lie in (0, 0.5), got {clip!r}")
    return temperature, ridge, clip


def _prepared(pairs, probabilities, K, counts, clip, ops=NumpyOps):
    """``(incidence, clipped targets, counts, gauge)`` of the probabilities' kind (``ops``); the
    comparison structure (incidence, gauge) is built in numpy and not differentiated, the counts
    are used as given when they are a tensor."""
    shape = tuple(probabilities.shape)
    if counts is None:
        c = ops.full(shape, 1.0, like=probabilities)
    else:
        c = counts if is_tensor(counts) else ops.xp.broadcast_to(ops.asarray(counts, like=probabilities), shape)
    incidence = pair_incidence(np.asarray(pairs), K)
    gauge = null_projection(incidence, np.broadcast_to(c.detach().cpu().numpy() if is_tensor(c) else c, shape))
    targets = ops.xp.clip(probabilities, clip, 1.0 - clip)
    return ops.asarray(incidence, like=probabilities), targets, c, ops.asarray(gauge, like=probabilities)


def bt_fit(pairs, probabilities, K, temperature=1.0, counts=None, ridge=0.0, clip=1e-6, tol=1e-10, max_iter=100):
    """BT maximum-likelihood rewards ``(..., K)`` (minimum 0, in reward units ``tau s``).

    ``pairs`` ``(..., m, 2)`` integer responses ``(a, b)`` (broadcast to the probabilities);
    ``probabilities`` ``(..., m)`` the reported ``P(a > b)`` in ``[0, 1]``; ``counts`` ``(..., m)`` comparison weights (default 1;
    e.g. group sizes for a pooled fit). Batched over leading dimensions; see the module docstring.
    """
    temperature, ridge, clip = check_fit_options(temperature, ridge, clip)
    p = as_float_array(probabilities, "probabilities")
    pairs = check_pairs(pairs, K)
    try:
        if p.ndim == 0 or pairs.shape[-2] != p.shape[-1]:
            raise ValueError
        pairs = np.broadcast_to(pairs, (*p.shape, 2))
    except ValueError:
        raise ValueError(f"probabilities must have one entry per pair (pairs of shape {pairs.shape}), "
                         f"got shape {p.shape}") from None
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1], got min {p.min():.6g}, max {p.max():.6g}")
    if counts is not None:
        counts = as_float_array(counts, "counts")
        if np.any(counts < 0):
            raise ValueError("counts must be >= 0")
    return fit_rewards(pairs, p, K, temperature, counts, ridge, clip, tol, max_iter)


def fit_rewards(pairs, probabilities, K, temperature, counts=None, ridge=0.0, clip=1e-6, tol=1e-10, max_iter=100):
    """:func:`bt_fit` without the input checks (the game calls it with validated arrays)."""
    incidence, targets, c, gauge = _prepared(pairs, probabilities, K, counts, clip)
    scores = _iterate(np.zeros((*targets.shape[:-1], K)), incidence, targets, c, ridge, gauge, NumpyOps, tol, max_iter)
    return temperature * (scores - scores.min(-1, keepdims=True))


def torch_bt_fit(pairs, probabilities, K, temperature, counts=None, ridge=0.0, clip=1e-6, tol=1e-10, max_iter=100):
    """:func:`fit_rewards` in torch, differentiable w.r.t. ``probabilities`` (and ``counts``).

    The optimum is found without gradients; one more Newton step from it, with gradients, has
    the fit's exact Jacobian ``ds*/dp = -H^{-1} dgrad/dp`` (implicit function theorem).
    ``pairs`` is a numpy array (the comparison structure is not differentiated).
    """
    import torch

    ops = torch_ops()
    incidence, targets, c, gauge = _prepared(pairs, probabilities, K, counts, clip, ops)
    with torch.no_grad():
        start = ops.zeros((*targets.shape[:-1], K), like=probabilities)
        scores = _iterate(start, incidence, targets, c, ridge, gauge, ops, tol, max_iter)
    scores = scores + newton_step(scores, incidence, targets, c, ridge, gauge, ops)
    return temperature * (scores - ops.amin_last(scores))
