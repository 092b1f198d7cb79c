"""Mechanisms by name: ``make(name, **params)``, ``available()``, ``register(name, cls)``."""

from __future__ import annotations

import inspect

from .base import Mechanism
from .median_of_mles import MedianOfMLEs
from .online import Average, Hedge, Median, OnlineWeighted
from .sw_max import AffineMaximizer, SocialWelfareMaximizer

_REGISTRY: dict[str, type] = {}


def register(name: str, factory) -> None:
    """Make ``factory(**params)`` (a :class:`Mechanism` class or callable) available by ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"a mechanism named {name!r} is already registered")
    _REGISTRY[name] = factory


def available() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(_REGISTRY)


def parameters(name: str) -> list[str]:
    """The parameter names the mechanism registered as ``name`` accepts."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown mechanism {name!r}; available: {', '.join(available())}")
    return sorted(inspect.signature(_REGISTRY[name]).parameters)


def make(name: str, **params) -> Mechanism:
    """Build the mechanism registered as ``name`` with ``params``; unknown names or
    parameters raise ``ValueError`` listing what is accepted."""
    accepted = set(parameters(name))
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for mechanism {name!r}; accepted: {sorted(accepted)}")
    return _REGISTRY[name](**params)


for _cls in (SocialWelfareMaximizer, AffineMaximizer, Average, Median, OnlineWeighted, Hedge, MedianOfMLEs):
    register(_cls.name, _cls)
