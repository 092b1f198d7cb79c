"""The few array operations the mechanism formulas need, for numpy and for torch.

The formulas in :mod:`strategic_feedback_env.mechanisms.regularizers` and :mod:`strategic_feedback_env.mechanisms.sw_max` are written once
against this interface, so the numpy mechanisms and their differentiable torch twin
(:mod:`strategic_feedback_env.mechanisms.differentiable`) cannot drift apart. numpy and torch already agree on
``exp``, ``log``, ``sum``, ``amax``, ``cumsum``, ``maximum``, ``where`` and ``clip`` (torch
accepts ``axis=``/``keepdims=``); only the calls below differ.
"""

from __future__ import annotations

import numpy as np


# numpy reduces a short last axis (K = 2 .. 64) row by row, at ~20 ns per row; for many rows
# (the batched envs: rows = B * n) it is 5-10x faster to reduce across K column slices of one
# transposed copy. ``sum_last`` reproduces numpy's pairwise summation order for float64
# (``x.sum(-1)``: a plain loop from +0.0 below 8 terms, else 8 running partial sums combined
# as ((0+1)+(2+3))+((4+5)+(6+7)) plus the tail), so the result is bit-identical
# (tests/test_batched_env.py checks it); ``max_last`` is exact in any order. Small inputs
# (e.g. the scalar env) and other dtypes take numpy's own reduction.
_COLUMN_MAX_K = 64
_COLUMN_MIN_ROWS = 512
_add_reduce, _max_reduce = np.add.reduce, np.maximum.reduce


def _rows(x):
    """``x`` as ``(rows, K)`` if the column path pays off, else None."""
    if x.ndim < 2 or x.size < 2 * _COLUMN_MIN_ROWS:  # cheap early exit for small inputs (K >= 2)
        return None
    K = x.shape[-1]
    if x.dtype != np.float64 or not 1 < K <= _COLUMN_MAX_K or x.size < _COLUMN_MIN_ROWS * K:
        return None
    return x.reshape(-1, K)


def sum_last(x, keepdims=False):
    """``x.sum(-1)`` (same bits for float64), fast for many short rows."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    y = _rows(x)
    if y is None:
        # exactly what ``x.sum(...)`` calls (numpy's _methods._sum), minus two Python layers
        return _add_reduce(x, -1, None, None, keepdims)
    K = y.shape[1]
    if K < 8:
        res = y[:, 0] + 0.0
        for k in range(1, K):
            res += y[:, k]
    else:
        if K < 16:  # no accumulation loop: the 8 partial sums are the first 8 columns
            r, i = [y[:, j] for j in range(8)], 8
        else:
            r = y[:, :8].T.copy()
            i = 8
            while i < K - K % 8:
                r += y[:, i:i + 8].T
                i += 8
        # Same association as before, with two buffers instead of four temporaries.
        res = r[0] + r[1]
        tail = r[2] + r[3]
        res += tail
        np.add(r[4], r[5], out=tail)
        tail2 = r[6] + r[7]
        tail += tail2
        res += tail
        for k in range(i, K):
            res += y[:, k]
    res = res.reshape(x.shape[:-1])
    return res[..., None] if keepdims else res


def max_last(x, keepdims=False):
    """``x.max(-1)`` (exact; NaN propagates), fast for many short rows."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    cols = _rows(x)
    if cols is None:
        return _max_reduce(x, -1, None, None, keepdims)  # what ``x.max(...)`` calls
    K = cols.shape[1]
    res = np.maximum(cols[:, 0], cols[:, 1])
    for k in range(2, K):
        np.maximum(res, cols[:, k], out=res)
    res = res.reshape(x.shape[:-1])
    return res[..., None] if keepdims else res


def sum_rows(x):
    """``x.sum(-2)`` (same bits for float64: numpy adds the rows in order either way), fast for
    ``(B, n, K)`` with many games: one transposing copy puts the summed axis outermost, where the
    reduction runs over long contiguous rows."""
    x = np.asarray(x)
    if x.dtype != np.float64 or x.ndim < 3 or x.size < 4096:
        return x.sum(axis=-2)
    return np.ascontiguousarray(np.moveaxis(x, -2, 0)).sum(axis=0)


_REUSE_MIN_SIZE = 4096  # below this a fresh result costs nothing worth the checks


def _reusable(a, b):
    """True if ``a op b`` can be written into ``a`` (same result shape and dtype) and ``a`` is large
    enough for it to matter (small arrays, e.g. the scalar env's, take the plain operator)."""
    return (isinstance(a, np.ndarray) and a.size >= _REUSE_MIN_SIZE and a.flags.writeable
            and np.broadcast_shapes(a.shape, np.shape(b)) == a.shape and np.result_type(a, b) == a.dtype)


class NumpyOps:
    """numpy ops. The ``i*`` helpers compute the same values as the plain operators but write
    into their first argument, which the caller guarantees is a fresh temporary it owns (fewer
    large temporaries in the batched envs); torch's versions are the plain out-of-place ops."""

    xp = np
    sum_last = staticmethod(sum_last)
    sum_rows = staticmethod(sum_rows)

    @staticmethod
    def iadd(a, b):
        """``a + b`` (== ``b + a`` bit for bit), reusing ``a``."""
        if _reusable(a, b):
            return np.add(a, b, out=a)
        return a + b

    @staticmethod
    def isub(a, b):
        """``a - b``, reusing ``a``."""
        if _reusable(a, b):
            return np.subtract(a, b, out=a)
        return a - b

    @staticmethod
    def imul(a, b):
        """``a * b`` (== ``b * a`` bit for bit), reusing ``a``."""
        if _reusable(a, b):
            return np.multiply(a, b, out=a)
        return a * b

    @staticmethod
    def idiv(a, b):
        """``a / b``, reusing ``a``."""
        if _reusable(a, b):
            return np.divide(a, b, out=a)
        return a / b

    @staticmethod
    def iexp(a):
        """``exp(a)``, reusing ``a``."""
        if isinstance(a, np.ndarray) and a.size >= _REUSE_MIN_SIZE and a.flags.writeable and a.dtype.kind == "f":
            return np.exp(a, out=a)
        return np.exp(a)

    @staticmethod
    def logsumexp(x, overwrite=False):
        """Over the last axis. ``overwrite=True``: ``x`` is a fresh float64 temporary the caller
        gives up (it is reused)."""
        x = np.asarray(x)
        m = max_last(x, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        e = np.subtract(x, m, out=x) if overwrite and _reusable(x, m) else x - m
        np.exp(e, out=e)  # in place: one large temporary instead of two
        return m[..., 0] + np.log(sum_last(e))

    @staticmethod
    def amax_last(x):
        """``amax(x, axis=-1, keepdims=True)`` (exact; fast for many short rows)."""
        return max_last(x, keepdims=True)

    @staticmethod
    def argsort_descending(x, axis=-1):
        return np.flip(np.argsort(x, axis=axis, kind="stable"), axis=axis)

    @staticmethod
    def take_along(x, idx, axis=-1):
        return np.take_along_axis(x, idx, axis=axis)

    @staticmethod
    def one_hot_argmax(x):
        idx = np.argmax(x, axis=-1)
        return (np.arange(x.shape[-1]) == idx[..., None]).astype(x.dtype)


class TorchOps:
    def __init__(self):
        import torch

        self.xp = torch

    @staticmethod
    def sum_last(x):
        return x.sum(dim=-1)

    @staticmethod
    def sum_rows(x):
        return x.sum(dim=-2)

    # Out of place (autograd-safe); the numpy versions reuse their first argument.
    @staticmethod
    def iadd(a, b):
        return a + b

    @staticmethod
    def isub(a, b):
        return a - b

    @staticmethod
    def imul(a, b):
        return a * b

    @staticmethod
    def idiv(a, b):
        return a / b

    def iexp(self, a):
        return self.xp.exp(a)

    def logsumexp(self, x, overwrite=False):
        return self.xp.logsumexp(x, dim=-1)

    def amax_last(self, x):
        return self.xp.amax(x, dim=-1, keepdim=True)

    def argsort_descending(self, x, axis=-1):
        return self.xp.argsort(x, dim=axis, descending=True, stable=True)

    def take_along(self, x, idx, axis=-1):
        return self.xp.take_along_dim(x, idx, dim=axis)

    def one_hot_argmax(self, x):
        idx = self.xp.argmax(x, dim=-1)
        return (self.xp.arange(x.shape[-1], device=x.device) == idx[..., None]).to(x.dtype)
