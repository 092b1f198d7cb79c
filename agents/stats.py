"""Means with normal-approximation confidence intervals (used by the audit and the experiments)."""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054


def mean_ci(samples, axis=0, z: float = Z95):
    """Mean and half-width of its ``z`` confidence interval along ``axis`` (inf for one sample)."""
    x = np.asarray(samples, dtype=np.float64)
    m = x.mean(axis=axis)
    count = x.shape[axis]
    half = z * x.std(axis=axis, ddof=1) / np.sqrt(count) if count > 1 else np.full_like(m, np.inf)
    return m, half


def ratio_ci(numerator, denominator, z: float = Z95):
    """Ratio of the means of paired samples, ``r = mean(x) / mean(y)``, and the half-width of its
    ``z`` confidence interval by the delta method: with ``d_e = x_e - r y_e`` per pair,
    ``se(r) = sd(d) / (sqrt(N) |mean(y)|)``. NaN where ``mean(y) = 0``; inf for one pair."""
    x = np.asarray(numerator, dtype=np.float64)
    y = np.asarray(denominator, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"ratio_ci needs two 1-d samples of the same length, got shapes {x.shape} and {y.shape}")
    my = y.mean()
    if my == 0 or not np.isfinite(my):
        return float("nan"), float("nan")
    r = float(x.mean() / my)
    if len(x) < 2:
        return r, float("inf")
    return r, float(z * np.std(x - r * y, ddof=1) / (np.sqrt(len(x)) * abs(my)))
