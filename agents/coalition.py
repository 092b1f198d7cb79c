"""Joint adversaries: a group of agents maximising the sum of its members' true utilities.

A group is a coalition ``C`` of labelers or one labeler's sybil identities (docs/model.md §5;
the identities of :mod:`strategic_feedback_env.sybils` carry shares of their owner's type, so
the sum of their rewards is the sybil's true utility and the same adversaries serve both).

* :class:`CoalitionGradientAdversary` ([SUN] game): projected gradient ascent on
  ``sum_{i in C} (w_i <theta*, r_i> - p_i)`` over all members' reports (and sizes) through the
  torch twin, from the starts of :class:`~strategic_feedback_env.agents.gradient.GradientAdversary`
  for every member, re-scored exactly in numpy. A coalition of one is that adversary.
* :class:`CoalitionMyopicAdversary` ([HD] game): maximises this round's summed influence
  ``sum_{i in C} share_i * -(x_bar - b_i)^2`` plus ``gamma`` times the members' summed expected
  next weights (member ``i``'s belief ``P(y = 1) = s_i``), by a joint grid over the members'
  reports followed by coordinate sweeps on the fine grid. A coalition of one is
  :class:`~strategic_feedback_env.agents.gradient.MyopicOnlineAdversary`.

The learned joint adversary (``coalition_ppo``, ``sybil_ppo``) is
:func:`strategic_feedback_env.agents.coalition_learning.train_coalition`.
"""

from __future__ import annotations

import itertools

import numpy as np

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms.differentiable import torch_outcome
from strategic_feedback_env.mechanisms.sw_max import SocialWelfareMaximizer, sw_max_core
from strategic_feedback_env.mechanisms.validation import check_reference
from strategic_feedback_env.reward_report import rules

from .gradient import BestResponse, GradientAdversary, _normalise, candidate_profiles

GAMES = ("reward_report_v0", "online_feedback_v0")
# group adversaries and the games they play (names fixed: the audit and the CLI use them)
COALITION_ADVERSARIES = {"coalition_gradient": GAMES[:1], "coalition_myopic": GAMES[1:], "coalition_ppo": GAMES}
SYBIL_ADVERSARIES = {"sybil_gradient": GAMES[:1], "sybil_myopic": GAMES[1:], "sybil_ppo": GAMES}
GROUP_ADVERSARIES = {**COALITION_ADVERSARIES, **SYBIL_ADVERSARIES}


def check_coalition(coalition, agents) -> list[str]:
    """A coalition as a list of distinct labeler names, neither empty nor everyone."""
    members = [coalition] if isinstance(coalition, str) else list(coalition)
    unknown = [a for a in members if a not in agents]
    if unknown:
        raise ValueError(f"coalition {members} names unknown labeler(s) {unknown}; labelers are {agents}")
    repeated = sorted({a for a in members if members.count(a) > 1})
    if repeated:
        raise ValueError(f"coalition {members} names labeler(s) {repeated} more than once")
    if not members or len(members) == len(agents):
        raise ValueError(f"a coalition needs 1 .. {len(agents) - 1} of the {len(agents)} labelers "
                         f"(a coalition of everyone has no one to gain from), got {members}")
    return members


def coalitions_of_size(agents, size: int, cap: int) -> list[list[str]]:
    """The first ``cap`` coalitions of ``size`` labelers (lexicographic order)."""
    if not 1 <= int(size) < len(agents):
        raise ValueError(f"coalition size must be in 1..{len(agents) - 1} for {len(agents)} labelers, got {size}")
    if int(cap) < 1:
        raise ValueError(f"the cap on coalitions must be >= 1, got {cap}")
    return [list(c) for c in itertools.islice(itertools.combinations(agents, int(size)), int(cap))]


def _members(game, agents) -> np.ndarray:
    return np.array([game.possible_agents.index(a) for a in agents], dtype=np.intp)


class CoalitionGradientAdversary(GradientAdversary):
    """Joint projected gradient ascent on a group's summed utility (reward-report game).

    Same parameters as :class:`~strategic_feedback_env.agents.gradient.GradientAdversary`; every
    member starts from that adversary's starts (drawn member by member from one generator), and a
    coalition of two or more also from two joint starts (:meth:`_joint_starts`).
    """

    def __repr__(self) -> str:
        return super().__repr__().replace("GradientAdversary", "CoalitionGradientAdversary", 1)

    def best_response(self, mechanism, reports, sizes, members, true_rewards=None, true_sizes=None,
                      normalization="sum", report_size=False, max_size=None, reference=None, noise=None):
        """Best joint report of labelers ``members`` against the others' ``reports`` ``(..., n, K)``.

        ``true_rewards`` ``(..., m, K)`` / ``true_sizes`` ``(..., m)`` default to the members'
        entries of ``reports``/``sizes``. Returns a :class:`BestResponse` with ``report``
        ``(..., m, K)``, ``size`` ``(..., m)`` and the summed utilities.
        """
        import torch

        if not isinstance(mechanism, SocialWelfareMaximizer):
            raise ValueError(f"CoalitionGradientAdversary needs sw_max or affine_maximizer, got {mechanism!r}")
        if normalization not in ("sum", "max"):
            raise ValueError(f"normalization must be 'sum' or 'max', got {normalization!r}")
        reports = np.asarray(reports, dtype=np.float64)
        n, K = reports.shape[-2:]
        members = np.asarray(members, dtype=np.intp).reshape(-1)
        if members.size == 0 or len(set(members.tolist())) != members.size or members.min() < 0 or members.max() >= n:
            raise ValueError(f"members must be distinct indices in 0..{n - 1}, got {members.tolist()}")
        if report_size and (max_size is None or max_size < 1):
            raise ValueError("report_size=True needs max_size >= 1")
        sizes = np.ones(reports.shape[:-1]) if sizes is None else np.broadcast_to(sizes, reports.shape[:-1]).astype(float)
        r_true = reports[..., members, :] if true_rewards is None else np.asarray(true_rewards, dtype=np.float64)
        w_true = sizes[..., members] if true_sizes is None else np.asarray(true_sizes, dtype=np.float64)
        batch = reports.shape[:-2]
        starts = np.stack([self._starts(r_true[..., j, :], w_true[..., j], batch, K, normalization,
                                        max_size if report_size else None) for j in range(members.size)], axis=-2)
        if members.size > 1:
            starts = np.concatenate([starts, self._joint_starts(starts[0], r_true, w_true, K)], axis=0)
        t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        others, other_sizes = t(reports), t(sizes)
        place = torch.zeros(members.size, n, dtype=torch.float64)
        place[torch.arange(members.size), torch.as_tensor(members)] = 1.0
        keep = 1.0 - place.sum(0)
        noise_t = None if noise is None else t(noise)
        r_i, w_i = t(r_true), t(w_true)

        def utility(action):
            report = _normalise(action[..., :K], normalization)
            size = w_i.expand(action.shape[:-1]) if not report_size else rules.decode_size(action[..., K], max_size)
            profile = others * keep[:, None] + torch.einsum("...mk,mn->...nk", report, place)
            if noise_t is not None:
                profile = torch.clamp(profile + noise_t, 0.0, 1.0)
            profile_sizes = other_sizes * keep + torch.einsum("...m,mn->...n", size, place)
            out = torch_outcome(mechanism, profile, profile_sizes, reference)
            value = (w_i * (out.policy[..., None, :] * r_i).sum(-1)).sum(-1)
            return value - out.payments[..., members].sum(-1)

        best = self._ascend(utility, t(starts))
        return self._rescore_group(mechanism, best.numpy(), reports, sizes, members, r_true, w_true, K,
                                   normalization, report_size, max_size, reference, noise)

    @staticmethod
    def _joint_starts(truthful, r_true, w_true, K):
        """Two starts for a coalition of two or more: every member reports the coalition's summed
        reward ``sum_j w_j r_j``, or puts all its mass on that sum's top outcome (sizes truthful)."""
        joint = (w_true[..., None] * r_true).sum(-2)
        top = np.where(np.arange(K) == joint.argmax(-1)[..., None], 1.0, 1e-9)
        starts = np.broadcast_to(truthful, (2, *truthful.shape)).copy()
        starts[0, ..., :K] = (joint / joint.max(-1, keepdims=True))[..., None, :]
        starts[1, ..., :K] = top[..., None, :]
        return np.clip(starts, 1e-9, 1.0)

    @staticmethod
    def _rescore_group(mechanism, best, reports, sizes, members, r_true, w_true, K, normalization, report_size,
                       max_size, reference, noise):
        """Exact numpy summed utilities of the best candidate per start and of truthful reporting."""
        candidates, cand_sizes, profile, profile_sizes = candidate_profiles(
            best, reports, sizes, members, r_true, w_true, K, normalization, report_size, max_size, noise)
        # The mechanism's core, as the envs run it: a sybil identity's size w / k may lie below 1,
        # which the public ``outcome`` (a labeler's size is at least 1) rejects.
        ref = check_reference(mechanism.reference if reference is None else reference, K)
        policy, _, payments = sw_max_core(profile, profile_sizes, mechanism.lam, ref, mechanism.regularizer,
                                          mechanism.has_payments)
        values = mechanisms.valuation(policy, np.broadcast_to(r_true, candidates.shape))
        u = (w_true * values).sum(-1) - (0.0 if payments is None else payments[..., members].sum(-1))
        k = np.argmax(u, axis=0)
        pick = lambda a: np.take_along_axis(a, k[None, ..., None, None], axis=0)[0]  # noqa: E731
        return BestResponse(report=pick(candidates),
                            size=np.take_along_axis(cand_sizes, k[None, ..., None], axis=0)[0],
                            utility=np.take_along_axis(u, k[None], axis=0)[0], truthful_utility=u[-1])

    def act_in(self, game, agents) -> dict:
        """The members' actions in a reward-report env, the others reporting truthfully."""
        idx = _members(game, agents)
        truth = game.truthful_actions()
        matrix = np.stack([truth[a] for a in game.agents])
        reports, sizes = rules.decode_actions(matrix, game.K, game.normalization, game.report_size,
                                              game.max_size, game.sizes)
        br = self.best_response(game.mechanism, reports, sizes, idx, game.rewards[idx], game.sizes[idx],
                                game.normalization, game.report_size, game.max_size, game.reference, game.noise)
        action = rules.encode_actions(br.report, br.size, game.normalization, game.report_size, game.max_size)
        return {a: action[j] for j, a in enumerate(agents)}


class CoalitionMyopicAdversary:
    """Joint myopic best response of a group in the online game (see the module docstring).

    Parameters
    ----------
    gamma : float, default 1.0
        Value of one unit of next-round weight, in units of this round's influence.
    grid : int, default 1001
        Points of the fine grid on ``[0, 1]`` (the coordinate sweeps).
    budget : int, default 20000
        Points of the joint coarse grid (``budget ** (1/m)`` per member, at most ``grid``).
    sweeps : int, default 2
        Coordinate sweeps over the members on the fine grid after the coarse search.
    """

    def __init__(self, gamma=1.0, grid=1001, budget=20_000, sweeps=2):
        if not (np.isfinite(gamma) and gamma >= 0) or int(grid) < 2 or int(budget) < 2 or int(sweeps) < 0:
            raise ValueError(f"need gamma >= 0, grid >= 2, budget >= 2 and sweeps >= 0, got "
                             f"{gamma}, {grid}, {budget}, {sweeps}")
        self.gamma, self.grid, self.budget, self.sweeps = float(gamma), int(grid), int(budget), int(sweeps)

    def __repr__(self) -> str:
        return (f"CoalitionMyopicAdversary(gamma={self.gamma}, grid={self.grid}, budget={self.budget}, "
                f"sweeps={self.sweeps})")

    def objective(self, mechanism, reports, members, x, targets, beliefs, shares, weights):
        """Objective of candidate joint reports ``x`` ``(..., G, m)``; others' ``reports`` ``(..., n)``,
        members' ``targets``/``beliefs`` ``(..., m)``, ``shares`` ``(m,)``, ``weights`` ``(..., n)``."""
        profiles = np.broadcast_to(reports[..., None, :], (*x.shape[:-1], reports.shape[-1])).copy()
        profiles[..., members] = x
        pairs = np.stack([profiles, 1.0 - profiles], axis=-1)
        w = np.broadcast_to(weights[..., None, :], profiles.shape)
        aggregate = mechanism.aggregate(pairs, w)[..., 0]
        influence = -(shares * (aggregate[..., None] - targets[..., None, :]) ** 2)
        objective = influence.sum(-1)
        if self.gamma > 0:
            expected = np.zeros(x.shape)
            for y in (1.0, 0.0):
                prob = beliefs if y == 1.0 else 1.0 - beliefs
                losses = mechanisms.quadratic_loss(pairs, np.array([y, 1.0 - y]))
                expected += prob[..., None, :] * mechanism._next_weights(w, losses)[..., members]
            objective = objective + self.gamma * expected.sum(-1)
        return objective

    def best_reports(self, mechanism, reports, members, targets, beliefs, shares=None, weights=None):
        """Best joint reports ``(..., m)`` of labelers ``members`` (others' ``reports`` ``(..., n)`` fixed)."""
        reports = np.asarray(reports, dtype=np.float64)
        members = np.asarray(members, dtype=np.intp).reshape(-1)
        m = members.size
        targets = np.asarray(targets, dtype=np.float64)
        beliefs = np.asarray(beliefs, dtype=np.float64)
        shares = np.ones(m) if shares is None else np.asarray(shares, dtype=np.float64)
        if weights is None:
            weights = mechanism.weights if mechanism.weights is not None else np.full(reports.shape[-1],
                                                                                       1.0 / reports.shape[-1])
        weights = np.broadcast_to(weights, reports.shape)
        batch = reports.shape[:-1]
        coarse = min(self.grid, max(2, int(round(self.budget ** (1.0 / m)))))
        axis = np.linspace(0.0, 1.0, coarse)
        joint = np.stack(np.meshgrid(*[axis] * m, indexing="ij"), axis=-1).reshape(-1, m)
        x = self._pick(mechanism, reports, members, np.broadcast_to(joint, (*batch, *joint.shape)), targets,
                       beliefs, shares, weights)
        fine = np.linspace(0.0, 1.0, self.grid)
        for _ in range(self.sweeps if coarse < self.grid else 0):  # an exhaustive fine grid needs no sweep
            for j in range(m):
                cand = np.broadcast_to(x[..., None, :], (*batch, self.grid, m)).copy()
                cand[..., j] = fine
                x = self._pick(mechanism, reports, members, cand, targets, beliefs, shares, weights)
        return x

    def _pick(self, mechanism, reports, members, cand, targets, beliefs, shares, weights):
        best = np.argmax(self.objective(mechanism, reports, members, cand, targets, beliefs, shares, weights), -1)
        return np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]

    def act_in(self, game, agents) -> dict:
        """The members' actions in an online-feedback env, the others reporting truthfully."""
        idx = _members(game, agents)
        shares = None if game.sybils is None else game.sybils.share[idx]
        x = self.best_reports(game.mechanism, game.signals, idx, game.targets[idx], game.signals[idx], shares)
        return {a: x[j : j + 1] for j, a in enumerate(agents)}
