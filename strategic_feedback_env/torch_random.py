"""A ``torch.Generator`` on the device behind the subset of ``numpy.random.Generator``'s methods
the games draw their types with, so the games' hooks run unchanged on torch (no host round trip).

Same distributions as numpy, different streams: a torch game is not the numpy game with the same
seed (tests/test_batched_torch.py checks the distributions). Every draw is a tensor of the
generator's ``dtype`` on its ``device``.
"""

from __future__ import annotations

import math

import torch


class TorchRandom:
    """``random``, ``uniform``, ``integers``, ``standard_normal`` and ``dirichlet`` with numpy's
    signatures (``size`` a shape), drawn from one ``torch.Generator`` seeded with ``seed``
    (``None``: fresh entropy); ``bit_generator.state`` as numpy's."""

    def __init__(self, seed=None, device="cpu", dtype=torch.float64):
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = torch.Generator(device=self.device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    @property
    def bit_generator(self):
        """``self``: numpy's ``rng.bit_generator.state`` reads and sets the torch generator's state here."""
        return self

    @property
    def state(self):
        """The torch generator's state (a CPU byte tensor); setting it replays the draws made since."""
        return self.generator.get_state()

    @state.setter
    def state(self, value):
        self.generator.set_state(value)

    def _shape(self, size):
        return (size,) if isinstance(size, int) else tuple(size)

    def random(self, size=()):
        """``U[0, 1)``."""
        return torch.rand(self._shape(size), generator=self.generator, device=self.device, dtype=self.dtype)

    def uniform(self, low=0.0, high=1.0, size=()):
        """``low + (high - low) U``, computed in the draw's own tensor."""
        return self.random(size).mul_(high - low).add_(low)

    def standard_normal(self, size=()):
        return torch.randn(self._shape(size), generator=self.generator, device=self.device, dtype=self.dtype)

    def integers(self, low, high, size=()):
        """Integers in ``[low, high)`` (as numbers of the generator's dtype)."""
        draws = torch.randint(int(low), int(high), self._shape(size), generator=self.generator, device=self.device)
        return draws.to(self.dtype)

    def log_gamma(self, shape, size=()):
        """``log G`` for ``G ~ Gamma(shape, 1)``, a number ``shape > 0``: Marsaglia and Tsang
        (2000) on ``shape + 1`` (acceptance >= 0.95 per candidate) times ``U^(1/shape)``, in logs
        so small shapes do not underflow. Six candidates per entry are drawn at once (none
        accepted: probability < 1e-7 per entry, then the round is repeated for those); seeing
        whether all were accepted is one device synchronisation per call."""
        shape_ = float(shape)
        size = self._shape(size)
        d = shape_ + 1.0 - 1.0 / 3.0
        c = 1.0 / (9.0 * d) ** 0.5
        log_g = torch.full(size, float("nan"), device=self.device, dtype=self.dtype)
        while True:
            x = self.standard_normal((6, *size))
            v = (1.0 + c * x) ** 3
            log_v = torch.log(v.clamp_min(torch.finfo(self.dtype).tiny))
            ok = (v > 0) & (torch.log(self.random((6, *size))) < 0.5 * x * x + d - d * v + d * log_v)
            first = torch.argmax(ok.to(torch.int8), dim=0, keepdim=True)  # the first accepted candidate
            candidate = torch.take_along_dim(log_v, first, dim=0)[0] + math.log(d)  # log(d v)
            log_g = torch.where(torch.isnan(log_g) & ok.any(dim=0), candidate, log_g)
            if not bool(torch.isnan(log_g).any()):
                break
        return log_g + torch.log(self.random(size)) / shape_

    def dirichlet(self, alpha, size=()):
        """``Dir(alpha)`` over the last axis, ``size + (K,)``, for equal concentrations
        ``alpha`` (a length-``K`` array of one value, as the games use): normalised gammas."""
        alpha = torch.as_tensor(alpha).reshape(-1)
        if not bool((alpha == alpha[0]).all()):
            raise ValueError("TorchRandom.dirichlet needs equal concentrations")
        return torch.softmax(self.log_gamma(float(alpha[0]), (*self._shape(size), alpha.shape[0])), dim=-1)
