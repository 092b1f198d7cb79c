"""The few array operations the mechanism formulas need, for numpy and for torch.

The formulas in :mod:`mechanisms.regularizers` and :mod:`mechanisms.sw_max` are written once
against this interface, so the numpy mechanisms and their differentiable torch twin
(:mod:`mechanisms.differentiable`) cannot drift apart. numpy and torch already agree on
``exp``, ``log``, ``sum``, ``amax``, ``cumsum``, ``maximum``, ``where`` and ``clip`` (torch
accepts ``axis=``/``keepdims=``); only the calls below differ.
"""

from __future__ import annotations

import numpy as np


class NumpyOps:
    xp = np

    @staticmethod
    def logsumexp(x, axis=-1):
        m = np.max(x, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))

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

    def logsumexp(self, x, axis=-1):
        return self.xp.logsumexp(x, dim=axis)

    def argsort_descending(self, x, axis=-1):
        return self.xp.argsort(x, dim=axis, descending=True, stable=True)

    def take_along(self, x, idx, axis=-1):
        return self.xp.take_along_dim(x, idx, dim=axis)

    def one_hot_argmax(self, x):
        idx = self.xp.argmax(x, dim=-1)
        return (self.xp.arange(x.shape[-1], device=x.device) == idx[..., None]).to(x.dtype)
