"""Torch twin of the SW-Max mechanisms, differentiable w.r.t. the reports and sizes.

It runs the *same* formulas as the numpy mechanisms (:func:`strategic_feedback_env.mechanisms.sw_max.sw_max_core`
with :class:`strategic_feedback_env.mechanisms._ops.TorchOps`), so the two cannot drift; the white-box gradient
adversary of :mod:`agents` differentiates a labeler's utility through it.
"""

from __future__ import annotations

import numpy as np

from ._ops import torch_ops
from .base import Outcome
from .sw_max import SocialWelfareMaximizer, sw_max_core


def torch_outcome(mechanism: SocialWelfareMaximizer, reports, sizes=None, reference=None) -> Outcome:
    """Outcome of ``mechanism`` (``sw_max`` or ``affine_maximizer``) computed in torch.

    ``reports`` ``(..., n, K)`` and ``sizes`` ``(..., n)`` are torch tensors (gradients flow
    through both); ``reference`` defaults to the mechanism's. Inputs are not validated here:
    the adversary keeps them in the type space by projection.
    """
    import torch

    if not isinstance(mechanism, SocialWelfareMaximizer):
        raise ValueError(f"torch_outcome needs an sw_max or affine_maximizer mechanism, got {mechanism!r}")
    K = reports.shape[-1]
    if sizes is None:
        sizes = torch.ones(reports.shape[:-1], dtype=reports.dtype, device=reports.device)
    ref = mechanism.reference if reference is None else reference
    ref = torch.as_tensor(np.full(K, 1.0 / K) if ref is None else ref, dtype=reports.dtype, device=reports.device)
    policy, value, payments = sw_max_core(
        reports, sizes, mechanism.lam, ref, mechanism.regularizer, mechanism.has_payments, torch_ops()
    )
    if payments is None:
        payments = torch.zeros(torch.broadcast_shapes(reports.shape[:-1], sizes.shape), dtype=reports.dtype,
                               device=reports.device)
    return Outcome(policy=policy, payments=payments, value=value)
