"""False-name (sybil) identities: one labeler entering a game as ``k`` identities (docs/model.md §5).

With ``sybils=k`` and ``sybil_of="labeler_s"`` a game has ``n + k - 1`` agents: the ``n``
labelers ``labeler_0 .. labeler_{n-1}`` (``labeler_s`` is the sybil's first identity) followed
by its extra identities ``labeler_s_sybil_1 .. labeler_s_sybil_{k-1}``. Private types are drawn
for the ``n`` true labelers exactly as without sybils (same generator calls), then every
identity gets its owner's type and a *share* ``1/k`` of it:

* reward-report game [SUN]: reward ``r_s`` and size ``w_s / k`` (the true size split evenly), so
  an identity's reward is ``(w_s / k) <theta, r_s> - p_j`` and the identities' rewards sum to the
  sybil's true utility ``w_s <theta, r_s> - sum_j p_j``;
* online game [HD]: signal ``s_s`` and target ``b_s``; every identity is a new labeler with the
  ordinary initial weight ``1 / (n + k - 1)``, and its reward is ``(1/k)`` times the influence,
  so the identities' rewards sum to the sybil's one influence ``-(x_bar - b_s)^2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SybilLayout:
    """Agents of a game in which labeler ``labeler`` of ``n_labelers`` enters as ``identities``."""

    n_labelers: int
    labeler: int
    identities: int

    @property
    def slots(self) -> int:
        """Agents in the game: ``n + k - 1``."""
        return self.n_labelers + self.identities - 1

    @property
    def agents(self) -> list[str]:
        extra = [f"labeler_{self.labeler}_sybil_{j}" for j in range(1, self.identities)]
        return [f"labeler_{i}" for i in range(self.n_labelers)] + extra

    @property
    def members(self) -> np.ndarray:
        """Slot indices of the sybil's identities (its own slot first)."""
        return np.array([self.labeler, *range(self.n_labelers, self.slots)], dtype=np.intp)

    @property
    def owner(self) -> np.ndarray:
        """The true labeler behind each slot, ``(slots,)``."""
        return np.array([*range(self.n_labelers), *[self.labeler] * (self.identities - 1)], dtype=np.intp)

    @property
    def share(self) -> np.ndarray:
        """Each slot's share of its owner's type: ``1/k`` for the identities, 1 otherwise."""
        share = np.ones(self.slots)
        share[self.members] = 1.0 / self.identities
        return share

    def expand(self, values, axis: int = -1):
        """Per-labeler values ``(..., n, ...)`` -> per-slot values (each identity copies its owner)."""
        return np.take(values, self.owner, axis=axis)


def sybil_layout(sybils, sybil_of, n_labelers: int) -> SybilLayout | None:
    """The layout for the env options ``sybils`` (None, or identities ``k >= 1``) and ``sybil_of``."""
    from .labeler_game import agent_index

    if sybils is None:
        return None
    if isinstance(sybils, bool) or not isinstance(sybils, (int, np.integer)) or sybils < 1:
        raise ValueError(f"sybils must be None or an integer >= 1 (identities of labeler sybil_of), got {sybils!r}")
    return SybilLayout(int(n_labelers), agent_index(sybil_of, n_labelers, "sybil_of"), int(sybils))
