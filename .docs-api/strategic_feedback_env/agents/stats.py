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
