"""Finite menus of candidate policies ([SUN] §5, docs/model.md §4).

The platform picks, among ``M`` candidates ``theta_1 .. theta_M`` ``(..., M, K)``, the one with
the best regularised welfare ``ASW(theta_m) = <theta_m, S> - lam D(theta_m || ref)`` (first
index on ties). A *fixed* menu is independent of the reports (VCG over a finite set: DSIC);
*Rewarded Soups* build it from the reports: each labeler's single-reward optimum (the training
rule on ``r~_i`` alone) and the optima of the interpolated rewards ``a r~_i + (1 - a) r~_j`` of
pairs ``i < j`` at dyadic ``a`` = 1/2; 1/4, 3/4; 1/8, ... For KL the latter is exactly the
geometric mixture (the soup) ``theta ∝ theta_i^a theta_j^(1-a)`` of the two single optima.
"""

from __future__ import annotations

import itertools

import numpy as np

from .regularizers import regularised_welfare
from .validation import NORMALIZATION_TOL, as_float_array, check_positive_int


def check_menu(menu) -> np.ndarray:
    """A fixed menu: ``(M, K)`` rows on the simplex (zeros allowed), ``M, K >= 1``."""
    m = as_float_array(menu, "menu")
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"menu must be an (M, K) array of candidate policies or 'soups', got shape {m.shape}")
    err = np.abs(m.sum(axis=-1) - 1.0).max()
    if np.any(m < 0) or err > NORMALIZATION_TOL:
        raise ValueError(f"menu rows must lie on the simplex (entries >= 0, rows sum to 1), "
                         f"min entry {m.min():.6g}, max row-sum deviation {err:.3g}")
    return m


def soup_weights(n: int, menu_size: int | None) -> np.ndarray:
    """Mixing weights ``(M, n)`` of the soup rewards: the ``n`` unit vectors, then
    ``a e_i + (1 - a) e_j`` for every pair at dyadic ``a`` (module docstring), the first
    ``menu_size`` of them (default ``n`` + 3 per pair: ``a`` in 1/4, 1/2, 3/4)."""
    pairs = list(itertools.combinations(range(n), 2))
    size = n + 3 * len(pairs) if menu_size is None else check_positive_int(menu_size, "menu_size")
    rows = list(np.eye(n))
    level = 1
    while pairs and len(rows) < size:
        for a in np.arange(1, 2 ** level, 2) / 2 ** level:
            rows += [a * np.eye(n)[i] + (1 - a) * np.eye(n)[j] for i, j in pairs]
        level += 1
    return np.array(rows[:size])


def choose(menu, scores, lam, ref, regularizer):
    """``(policy (..., K), welfare (..., M))``: the menu row (``menu`` ``(M, K)`` or
    ``(..., M, K)``) of best ``ASW`` under ``scores`` ``(..., K)``, first index on ties. numpy
    only: the choice is piecewise constant in the reports (no torch twin)."""
    welfare = regularised_welfare(menu, scores[..., None, :], lam, ref[..., None, :], regularizer)
    index = np.argmax(welfare, axis=-1)
    rows = np.broadcast_to(menu, (*welfare.shape, menu.shape[-1]))
    return np.take_along_axis(rows, index[..., None, None], axis=-2)[..., 0, :], welfare
