"""Input checks shared by every mechanism: each failure is a ``ValueError`` naming the problem."""

from __future__ import annotations

import numpy as np

from ._ops import max_last, sum_last

NORMALIZATIONS = (None, "sum", "max")
NORMALIZATION_TOL = 1e-6
# Entries this close outside a box (a few ulps of rounding, e.g. 1 + 2**-52) are clipped into it.
BOX_TOL = 1e-12


def check_number(value, name: str) -> float:
    """``value`` as a finite float; anything else (strings and ``None`` included) is a
    ``ValueError`` naming ``name``."""
    message = f"{name} must be a finite number, got {value!r}"
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(message)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not np.isfinite(x):
        raise ValueError(message)
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum`` (bools and non-integral numbers are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_lam(lam) -> float:
    lam = check_number(lam, "lam")
    if lam <= 0:
        raise ValueError(f"lam must be a finite number > 0, got {lam!r}")
    return lam


def check_normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    return normalization


def as_float_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def exact(x) -> str:
    """``x`` in the fewest digits that give back exactly ``x`` (``0``, ``1e-06``, ``1.0000000000000002``)."""
    x = float(x)
    short = format(x, "g")
    return short if float(short) == x else repr(x)


def clip_to_box(x: np.ndarray, low: float, high: float, name: str, extremes=None) -> np.ndarray:
    """``x`` (finite) with entries within ``BOX_TOL`` of ``[low, high]`` clipped into it; any entry
    farther out is a ``ValueError`` showing the extremes to full precision. ``extremes``: ``(x.min(),
    x.max())`` when the caller has them."""
    lo, hi = (x.min(), x.max()) if extremes is None else extremes
    if low <= lo and hi <= high:
        return x
    if lo < low - BOX_TOL or hi > high + BOX_TOL:
        raise ValueError(f"{name} must lie in [{exact(low)}, {exact(high)}], got min {exact(lo)}, max {exact(hi)}")
    return np.clip(x, low, high)


def check_reports(reports, normalization=None, low=0.0, high=1.0) -> np.ndarray:
    """Reports of shape ``(..., n, K)`` with entries in ``[low, high]``, normalised if asked."""
    r = as_float_array(reports, "reports")
    if r.ndim < 2:
        raise ValueError(f"reports must have shape (..., n, K), got shape {r.shape}")
    if r.shape[-1] < 1 or r.shape[-2] < 1:
        raise ValueError(f"reports need at least one labeler and one outcome, got shape {r.shape}")
    r = clip_to_box(r, float(low), float(high), "reports")
    if normalization == "sum":
        err = np.abs(sum_last(r) - 1.0).max()
        if err > NORMALIZATION_TOL:
            raise ValueError(f"reports must be sum-normalised (each row sums to 1), max deviation {err:.3g}")
    elif normalization == "max":
        err = np.abs(max_last(r) - 1.0).max()
        if err > NORMALIZATION_TOL:
            raise ValueError(f"reports must be max-normalised (each row has max 1), max deviation {err:.3g}")
    return r


def check_sizes(sizes, reports: np.ndarray) -> np.ndarray:
    """Sizes of shape ``(..., n)`` matching the reports, each >= 1; ``None`` means all ones."""
    if sizes is None:
        return np.ones(reports.shape[:-1])
    w = as_float_array(sizes, "sizes")
    try:
        np.broadcast_shapes(w.shape, reports.shape[:-1])
    except ValueError:
        raise ValueError(f"sizes of shape {w.shape} do not match reports of shape {reports.shape} (expected (..., n))") from None
    if w.ndim == 0 or w.shape[-1] != reports.shape[-2]:
        raise ValueError(f"sizes must have shape (..., n) with n={reports.shape[-2]}, got {w.shape}")
    if np.any(w < 1):
        raise ValueError(f"sizes must be >= 1, got min {exact(w.min())}")
    return w


def check_reference(reference, K: int | None) -> np.ndarray:
    """A full-support reference policy of shape ``(..., K)`` (any ``K`` if ``K`` is None);
    ``None`` means uniform (then ``K`` is needed)."""
    if reference is None:
        return np.full(K, 1.0 / K)
    ref = as_float_array(reference, "reference")
    if ref.ndim == 0 or (K is not None and ref.shape[-1] != K):
        raise ValueError(f"reference must have shape (..., K) with K={K}, got {ref.shape}")
    if np.any(ref <= 0):
        raise ValueError("reference policy must have full support (all entries > 0)")
    err = np.abs(ref.sum(axis=-1) - 1.0).max()
    if err > NORMALIZATION_TOL:
        raise ValueError(f"reference policy must sum to 1, max deviation {err:.3g}")
    return ref
