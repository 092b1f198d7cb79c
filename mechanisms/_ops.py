"""The few array operations the mechanism formulas need, for numpy and for torch.

The formulas in :mod:`strategic_feedback_env.mechanisms.regularizers` and :mod:`strategic_feedback_env.mechanisms.sw_max` are written once
against this interface, so the numpy mechanisms and their differentiable torch twin
(:mod:`strategic_feedback_env.mechanisms.differentiable`) cannot drift apart. numpy and torch already agree on
``exp``, ``log``, ``sum``, ``amax``, ``cumsum``, ``maximum``, ``where`` and ``clip`` (torch
accepts ``axis=``/``keepdims=``); only the calls below differ.

Every public mechanism takes numpy arrays or torch tensors: :func:`ops_for` picks the namespace
from the reports (a tensor: :class:`TorchOps` on its device and dtype; anything else:
:class:`NumpyOps`), and the module-level reductions (``sum_last``, ``max_last``, ``sum_rows``)
accept tensors too. torch is imported only when a tensor is seen.
"""

from __future__ import annotations

import sys

import numpy as np


def is_tensor(x) -> bool:
    """True if ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def ops_for(x):
    """The ops namespace of ``x``: the :class:`TorchOps` singleton for a torch tensor, else
    :class:`NumpyOps`."""
    return torch_ops() if is_tensor(x) else NumpyOps


_TORCH_OPS = None


def torch_ops() -> "TorchOps":
    """The shared :class:`TorchOps` (imports torch on first use)."""
    global _TORCH_OPS
    if _TORCH_OPS is None:
        _TORCH_OPS = TorchOps()
    return _TORCH_OPS


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
        if is_tensor(x):
            return x.sum(-1, keepdim=keepdims)
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
        if is_tensor(x):
            return x.amax(-1, keepdim=keepdims)
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
    if is_tensor(x):
        return x.sum(-2)
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
    large temporaries in the batched envs); torch's do the same where no gradient is needed."""

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
    def rsub(a, b):
        """``b - a``, reusing ``a``."""
        if _reusable(a, b):
            return np.subtract(b, a, out=a)
        return b - a

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
    def ifill(a, mask, value):
        """``where(mask, value, a)`` (``mask`` broadcast against ``a``), reusing ``a``."""
        if _reusable(a, mask):
            np.copyto(a, value, where=mask)
            return a
        return np.where(mask, value, a)

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

    # Array creation and the calls whose names differ between numpy and torch. ``like`` is an
    # array of the wanted kind (device and float dtype for torch); numpy always uses float64.
    @staticmethod
    def asarray(x, like=None):
        """``x`` as a float64 array (no copy if it already is one)."""
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def full(shape, value, like=None):
        return np.full(shape, value, dtype=np.float64)

    @staticmethod
    def zeros(shape, like=None):
        return np.zeros(shape)

    @staticmethod
    def empty(shape, like=None):
        return np.empty(shape)

    @staticmethod
    def bool_full(shape, value, like=None):
        return np.full(shape, value, dtype=bool)

    @staticmethod
    def eye_bool(n, like=None):
        return np.eye(n, dtype=bool)

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def diagonal(x):
        """A copy of the diagonal of the last two axes."""
        return np.diagonal(x, axis1=-2, axis2=-1).copy()

    @staticmethod
    def amin_last(x):
        """``x.min(-1, keepdims=True)``."""
        return x.min(-1, keepdims=True)

    @staticmethod
    def median_rows(x):
        """The median over axis ``-2`` (the mean of the two middle values for an even count)."""
        return np.median(x, axis=-2)

    @staticmethod
    def known_all(mask) -> bool:
        """``mask.all()``, where knowing it costs no device synchronisation (numpy: always)."""
        return bool(mask.all())


class TorchOps:
    """torch ops (autograd-safe: the ``i*`` helpers write in place only where no gradient is
    needed); array creation follows ``like``'s device and dtype if that is float32 or float64
    (else float64)."""

    def __init__(self):
        import torch

        self.xp = torch

    def _dtype(self, like):
        if like is not None and like.dtype in (self.xp.float32, self.xp.float64):
            return like.dtype
        return self.xp.float64

    def _device(self, like):
        return None if like is None else like.device

    def asarray(self, x, like=None):
        """``x`` as a tensor of ``like``'s device and float dtype (no copy if it already is one);
        Python numbers are filled on the device (no host-to-device copy)."""
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return self.xp.full((), x, dtype=self._dtype(like), device=self._device(like))
        return self.xp.as_tensor(x, dtype=self._dtype(like), device=self._device(like))

    def full(self, shape, value, like=None):
        return self.xp.full(tuple(shape), value, dtype=self._dtype(like), device=self._device(like))

    def zeros(self, shape, like=None):
        return self.xp.zeros(tuple(shape), dtype=self._dtype(like), device=self._device(like))

    def empty(self, shape, like=None):
        return self.xp.empty(tuple(shape), dtype=self._dtype(like), device=self._device(like))

    def bool_full(self, shape, value, like=None):
        return self.xp.full(tuple(shape), value, dtype=self.xp.bool, device=self._device(like))

    def eye_bool(self, n, like=None):
        return self.xp.eye(n, dtype=self.xp.bool, device=self._device(like))

    @staticmethod
    def copy(x):
        return x.clone()

    @staticmethod
    def diagonal(x):
        return x.diagonal(dim1=-2, dim2=-1).clone()

    @staticmethod
    def amin_last(x):
        return x.amin(-1, keepdim=True)

    def median_rows(self, x):
        """numpy's median (``torch.median`` takes the lower middle value for an even count)."""
        s = self.xp.sort(x, dim=-2).values
        n = x.shape[-2]
        return (s[..., (n - 1) // 2, :] + s[..., n // 2, :]) / 2.0

    @staticmethod
    def known_all(mask) -> bool:
        """False: reading a device tensor would synchronise; callers take their general path."""
        return False

    @staticmethod
    def sum_last(x):
        return x.sum(dim=-1)

    @staticmethod
    def sum_rows(x):
        return x.sum(dim=-2)

    # As in NumpyOps, ``a`` is a fresh temporary the caller owns: it is written over where
    # nothing needs autograd (no gradient mode, or neither input requires a gradient) and the
    # result has ``a``'s shape and dtype; otherwise the out-of-place op (autograd-safe).
    def _reusable(self, a, b=None):
        if a.numel() < _REUSE_MIN_SIZE:
            return False
        if self.xp.is_grad_enabled() and (a.requires_grad or (isinstance(b, self.xp.Tensor) and b.requires_grad)):
            return False
        if isinstance(b, self.xp.Tensor):
            return b.dtype == a.dtype and self.xp.broadcast_shapes(a.shape, b.shape) == a.shape
        return True

    def iadd(self, a, b):
        return a.add_(b) if self._reusable(a, b) else a + b

    def isub(self, a, b):
        return a.sub_(b) if self._reusable(a, b) else a - b

    def rsub(self, a, b):
        return self.xp.sub(b, a, out=a) if self._reusable(a, b) else b - a

    def imul(self, a, b):
        return a.mul_(b) if self._reusable(a, b) else a * b

    def idiv(self, a, b):
        return a.div_(b) if self._reusable(a, b) else a / b

    def ifill(self, a, mask, value):
        return a.masked_fill_(mask, value) if self._reusable(a) else self.xp.where(mask, value, a)

    def iexp(self, a):
        return a.exp_() if self._reusable(a) else self.xp.exp(a)

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
