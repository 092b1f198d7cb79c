"""Input checks shared by every mechanism: each failure is a ``ValueError`` naming the problem.

Arrays are returned as float64 numpy arrays, or, where the input (or ``like``) is a torch
tensor, as tensors on its device (float32 and float64 tensors keep their dtype; others become
float64), so a mechanism answers in the kind it was asked in (see ``_ops.ops_for``).
"""

from __future__ import annotations

import numpy as np

from ._ops import is_tensor, max_last, ops_for, sum_last

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


def _converted(x, name: str, like=None):
    """``x`` as a float array of ``like``'s kind if given (a tensor: its device and float dtype),
    else of ``x``'s own kind (see the module docstring); values not checked."""
    if is_tensor(x) and like is not None and not is_tensor(like):
        x = x.detach().cpu().numpy()  # numpy asked for: the reports decide the kind
    if is_tensor(like) or is_tensor(x):
        like = like if is_tensor(like) else x
        try:
            return ops_for(like).asarray(x, like=like)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from None
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from None


def as_float_array(x, name: str, like=None):
    """``x`` as a finite float array (of ``like``'s kind if given, see :func:`_converted`)."""
    arr = _converted(x, name, like)
    if not bool(ops_for(arr).xp.isfinite(arr).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def exact(x) -> str:
    """``x`` in the fewest digits that give back exactly ``x`` (``0``, ``1e-06``, ``1.0000000000000002``)."""
    x = float(x)
    short = format(x, "g")
    return short if float(short) == x else repr(x)


def clip_to_box(x, low: float, high: float, name: str, extremes=None):
    """``x`` (finite; a numpy array or a tensor) with entries within ``BOX_TOL`` of ``[low, high]``
    clipped into it; any entry farther out is a ``ValueError`` showing the extremes to full
    precision. ``extremes``: ``(x.min(), x.max())`` when the caller has them."""
    lo, hi = (x.min(), x.max()) if extremes is None else extremes
    if bool(low <= lo) and bool(hi <= high):
        return x
    if bool(lo < low - BOX_TOL) or bool(hi > high + BOX_TOL):
        raise ValueError(f"{name} must lie in [{exact(low)}, {exact(high)}], got min {exact(lo)}, max {exact(hi)}")
    return ops_for(x).xp.clip(x, low, high)


def _valid_tensor_reports(r, normalization, low, high) -> bool:
    """All the checks of :func:`check_reports` on a tensor as one flag, so a device is read once
    (the range test is False for NaN and catches inf)."""
    if r.ndim < 2 or r.shape[-1] < 1 or r.shape[-2] < 1:
        return False
    plain = r.detach()
    ok = ((plain >= low) & (plain <= high)).all()
    if normalization is not None:
        norm = sum_last(plain) if normalization == "sum" else max_last(plain)
        ok = ok & (abs(norm - 1.0) <= NORMALIZATION_TOL).all()
    return bool(ok)


def check_reports(reports, normalization=None, low=0.0, high=1.0, like=None):
    """Reports of shape ``(..., n, K)`` with entries in ``[low, high]`` (within ``BOX_TOL``,
    clipped), normalised if asked (converted like ``like`` if given, see :func:`as_float_array`)."""
    r = _converted(reports, "reports", like)
    if is_tensor(r) and _valid_tensor_reports(r, normalization, low, high):
        return r
    if not bool(ops_for(r).xp.isfinite(r).all()):
        raise ValueError("reports contains NaN or inf")
    if r.ndim < 2:
        raise ValueError(f"reports must have shape (..., n, K), got shape {tuple(r.shape)}")
    if r.shape[-1] < 1 or r.shape[-2] < 1:
        raise ValueError(f"reports need at least one labeler and one outcome, got shape {tuple(r.shape)}")
    r = clip_to_box(r, float(low), float(high), "reports")
    plain = r.detach() if is_tensor(r) else r  # the checks need no autograd graph
    if normalization == "sum":
        err = float(abs(sum_last(plain) - 1.0).max())
        if err > NORMALIZATION_TOL:
            raise ValueError(f"reports must be sum-normalised (each row sums to 1), max deviation {err:.3g}")
    elif normalization == "max":
        err = float(abs(max_last(plain) - 1.0).max())
        if err > NORMALIZATION_TOL:
            raise ValueError(f"reports must be max-normalised (each row has max 1), max deviation {err:.3g}")
    return r


def check_sizes(sizes, reports):
    """Sizes of shape ``(..., n)`` matching the reports (and of their kind), each >= 1; ``None``
    means all ones."""
    if sizes is None:
        return ops_for(reports).full(reports.shape[:-1], 1.0, like=reports)
    w = as_float_array(sizes, "sizes", reports)
    try:
        np.broadcast_shapes(w.shape, reports.shape[:-1])
    except ValueError:
        raise ValueError(f"sizes of shape {w.shape} do not match reports of shape {reports.shape} (expected (..., n))") from None
    if w.ndim == 0 or w.shape[-1] != reports.shape[-2]:
        raise ValueError(f"sizes must have shape (..., n) with n={reports.shape[-2]}, got {tuple(w.shape)}")
    if bool((w < 1).any()):
        raise ValueError(f"sizes must be >= 1, got min {exact(w.min())}")
    return w


def check_reference(reference, K: int | None, like=None):
    """A full-support reference policy of shape ``(..., K)`` (any ``K`` if ``K`` is None);
    ``None`` means uniform (then ``K`` is needed). Converted like ``like`` if given."""
    if reference is None:
        return ops_for(like).full((K,), 1.0 / K, like=like)
    ref = as_float_array(reference, "reference", like)
    if ref.ndim == 0 or (K is not None and ref.shape[-1] != K):
        raise ValueError(f"reference must have shape (..., K) with K={K}, got {tuple(ref.shape)}")
    if bool((ref <= 0).any()):
        raise ValueError("reference policy must have full support (all entries > 0)")
    err = float(abs((ref.detach() if is_tensor(ref) else ref).sum(axis=-1) - 1.0).max())
    if err > NORMALIZATION_TOL:
        raise ValueError(f"reference policy must sum to 1, max deviation {err:.3g}")
    return ref
