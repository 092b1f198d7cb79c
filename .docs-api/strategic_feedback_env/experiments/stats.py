"""Means with normal-approximation confidence intervals, and log-log slope fits."""

from __future__ import annotations

import numpy as np

from strategic_feedback_env.agents.stats import Z95, mean_ci

__all__ = ["Z95", "bootstrap_slope_ci", "loglog_slope", "mean_ci"]


def loglog_slope(horizons, values):
    """Least-squares slope and intercept of ``log values`` on ``log horizons``."""
    lx, ly = np.log(np.asarray(horizons, float)), np.log(np.asarray(values, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def bootstrap_slope_ci(horizons, per_seed_values, rng, n_boot: int = 2000, level: float = 0.95):
    """Slope of the seed-mean curve and a bootstrap CI over seeds.

    ``per_seed_values`` is ``(seeds, horizons)``; curves with a non-positive mean are skipped.
    """
    vals = np.asarray(per_seed_values, float)
    slope, _ = loglog_slope(horizons, vals.mean(0))
    idx = rng.integers(0, vals.shape[0], size=(n_boot, vals.shape[0]))
    means = vals[idx].mean(1)
    ok = np.all(means > 0, axis=1)
    lx = np.log(np.asarray(horizons, float))
    lx_c = lx - lx.mean()
    ly = np.log(means[ok])
    slopes = (ly - ly.mean(1, keepdims=True)) @ lx_c / (lx_c @ lx_c)
    lo, hi = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2]) if slopes.size else (np.nan, np.nan)
    return slope, float(lo), float(hi)
