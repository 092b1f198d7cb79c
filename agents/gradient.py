"""White-box adversaries: best responses computed from the mechanism itself.

* :class:`GradientAdversary` ([SUN] game, docs/model.md §1): maximises the labeler's true
  utility ``w_i <theta*(r~, w~), r_i> - p_i(r~, w~)`` over its own report ``(r~_i, w~_i)``,
  the others' reports fixed, by projected gradient ascent through the torch twin of the
  mechanism (:func:`strategic_feedback_env.mechanisms.differentiable.torch_outcome`), from several starts (the
  truthful report, the Thm 4.2 exaggeration, random points); for the iterative rules of
  docs/model.md §4 it differentiates through the unrolled training run. Menus and policy gradient
  have no gradient: :meth:`GradientAdversary.applies_to` says so (the audit shows ``n/a``). The report is parameterised
  as the env's action ``a in [0, 1]^K`` normalised by sum or max, so "projection" is a clip
  to the box and every iterate is a valid report. Candidates are re-scored in numpy, so the
  reported gain is the mechanism's exact number.
* :class:`MyopicOnlineAdversary` ([HD] game, docs/model.md §2): maximises this round's
  influence ``-(x_bar - b_i)^2`` plus ``gamma`` times its expected next weight (belief
  ``P(y = 1) = s_i``) over the report ``x in [0, 1]``, by exhaustive search on a grid (the
  action is one number, so a grid is exact up to its spacing).

Both also act inside an env as audit adversaries: :meth:`act_in` reads what a white-box
labeler knows (the mechanism, the others' reports, its own type) from the env.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strategic_feedback_env import mechanisms
from strategic_feedback_env.mechanisms.differentiable import torch_outcome
from strategic_feedback_env.mechanisms.median_of_mles import MedianOfMLEs, torch_median_outcome
from strategic_feedback_env.mechanisms.sw_max import SocialWelfareMaximizer
from strategic_feedback_env.mechanisms.validation import check_positive_int
from strategic_feedback_env.reward_report import rules


@dataclass(frozen=True)
class BestResponse:
    """The best report found and what it earns: arrays with the instance's batch shape."""

    report: np.ndarray
    size: np.ndarray
    utility: np.ndarray
    truthful_utility: np.ndarray

    @property
    def gain(self) -> np.ndarray:
        return self.utility - self.truthful_utility


def candidate_profiles(best, reports, sizes, labeler, r_true, w_true, K, normalization, report_size, max_size,
                       noise):
    """The best actions per start ``best`` ``(S, ..., [m,] K[+1])`` decoded, the truthful report
    appended as a last candidate, and placed at ``labeler`` (an index, or ``m`` indices) in the
    others' profile: ``(candidates, candidate sizes, profiles, profile sizes)``, start axis first."""
    report, size = rules.decode_actions(best, K, normalization, report_size, max_size,
                                        np.broadcast_to(w_true, best.shape[:-1]))
    candidates = np.concatenate([report, np.broadcast_to(r_true, report.shape[1:])[None]], axis=0)
    cand_sizes = np.concatenate([size, np.broadcast_to(w_true, size.shape[1:])[None]], axis=0)
    profile = np.broadcast_to(reports, (candidates.shape[0], *reports.shape)).copy()
    profile[..., labeler, :] = candidates
    profile_sizes = np.broadcast_to(sizes, (candidates.shape[0], *sizes.shape)).copy()
    profile_sizes[..., labeler] = cand_sizes
    if noise is not None:
        profile = np.clip(profile + noise, 0.0, 1.0)
    return candidates, cand_sizes, profile, profile_sizes


def _normalise(x, normalization):
    norm = x.sum(-1, keepdim=True) if normalization == "sum" else x.amax(-1, keepdim=True)
    return x / norm


class GradientAdversary:
    """Projected gradient ascent on a labeler's utility in the reward-report game.

    Parameters
    ----------
    steps : int, default 150
        Adam steps per start.
    restarts : int, default 6
        Starts: truthful, Thm 4.2 exaggeration, all mass on the labeler's top outcome, and
        ``restarts - 3`` uniform random points.
    lr : float, default 0.02
        Adam step size on the action coordinates (which live in ``[0, 1]``).
    seed : int, default 0
        Seed of the random starts.
    """

    def __init__(self, steps=150, restarts=6, lr=0.02, seed=0):
        if int(steps) < 0 or int(restarts) < 3 or not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"need steps >= 0, restarts >= 3 and lr > 0, got {steps}, {restarts}, {lr}")
        self.steps, self.restarts, self.lr, self.seed = int(steps), int(restarts), float(lr), seed
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"GradientAdversary(steps={self.steps}, restarts={self.restarts}, lr={self.lr}, seed={self.seed})"

    @staticmethod
    def applies_to(mechanism) -> bool:
        """Whether a gradient exists: an SW-Max rule whose torch twin is differentiable (not a
        menu choice nor sampled policy gradient, docs/model.md §4)."""
        if isinstance(mechanism, MedianOfMLEs):
            return True
        return isinstance(mechanism, SocialWelfareMaximizer) and mechanism.differentiable

    @staticmethod
    def why_not(mechanism) -> str:
        """Why :meth:`applies_to` is False (empty if it is True)."""
        if isinstance(mechanism, MedianOfMLEs):
            return ""
        if not isinstance(mechanism, SocialWelfareMaximizer):
            return "not an SW-Max rule"
        if not mechanism.differentiable:
            return ("a menu choice is piecewise constant in the reports" if mechanism.training.menu is not None
                    else "policy gradient samples responses: no gradient through the training run")
        return ""

    def best_response(self, mechanism, reports, sizes, labeler, true_reward=None, true_size=None,
                      normalization="sum", report_size=False, max_size=None, reference=None, noise=None,
                      expected=False):
        """Best report of ``labeler`` against the others' ``reports`` ``(..., n, K)``, ``sizes`` ``(..., n)``.

        ``true_reward`` ``(..., K)`` / ``true_size`` ``(...)`` default to the labeler's entry
        of ``reports``/``sizes`` (it is reporting truthfully now). With ``report_size`` the
        size is searched in ``[1, max_size]`` too. ``noise`` ``(..., n, K)`` is the input
        noise the mechanism adds (Thm 4.12), clipped to ``[0, 1]``.

        With ``expected=True`` the leading axis of ``reports``/``sizes``/``noise`` holds ``M``
        draws of the others' profile and one report maximises the *mean* utility over them
        (the interim best response, :class:`InterimGradientAdversary`); the true type is then
        one ``(K,)`` reward and size, and the result has batch shape ``(1,)``.
        """
        import torch

        if not self.applies_to(mechanism):
            raise ValueError(f"GradientAdversary needs a differentiable sw_max or affine_maximizer (or median_of_mles), "
                             f"got {mechanism!r}: {self.why_not(mechanism)}")
        if normalization not in ("sum", "max"):
            raise ValueError(f"normalization must be 'sum' or 'max', got {normalization!r}")
        reports = np.asarray(reports, dtype=np.float64)
        n, K = reports.shape[-2:]
        if not 0 <= labeler < n:
            raise ValueError(f"labeler must be in 0..{n - 1}, got {labeler}")
        sizes = np.ones(reports.shape[:-1]) if sizes is None else np.broadcast_to(sizes, reports.shape[:-1]).astype(float)
        r_true = reports[..., labeler, :] if true_reward is None else np.asarray(true_reward, dtype=np.float64)
        w_true = sizes[..., labeler] if true_size is None else np.asarray(true_size, dtype=np.float64)
        if report_size and (max_size is None or max_size < 1):
            raise ValueError("report_size=True needs max_size >= 1")
        if expected:
            if reports.ndim != 3 or true_reward is None or true_size is None:
                raise ValueError("expected=True needs reports (M, n, K) of M draws and the true reward and size")
            r_true, w_true = r_true.reshape(1, K), np.asarray(w_true, dtype=np.float64).reshape(1)

        batch = reports.shape[:-2] if not expected else (1,)
        starts = self._starts(r_true, w_true, batch, K, normalization, max_size if report_size else None)
        t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        others, other_sizes = t(reports), t(sizes)
        eye = torch.zeros(n, dtype=torch.float64)
        eye[labeler] = 1.0
        noise_t = None if noise is None else t(noise)
        r_i, w_i = t(r_true), t(w_true)

        def utility(action):
            report = _normalise(action[..., :K], normalization)
            size = w_i.expand(action.shape[:-1]) if not report_size else rules.decode_size(action[..., K], max_size)
            profile = others * (1 - eye[:, None]) + report[..., None, :] * eye[:, None]
            if noise_t is not None:
                profile = torch.clamp(profile + noise_t, 0.0, 1.0)
            profile_sizes = other_sizes * (1 - eye) + size[..., None] * eye
            twin = torch_median_outcome if isinstance(mechanism, MedianOfMLEs) else torch_outcome
            out = twin(mechanism, profile, profile_sizes, reference)
            u = w_i * (out.policy * r_i).sum(-1) - out.payments[..., labeler]
            return u.mean(-1, keepdim=True) if expected else u

        best = self._ascend(utility, t(starts))
        return self._rescore(mechanism, best.numpy(), reports, sizes, labeler, r_true, w_true, K,
                             normalization, report_size, max_size, reference, noise, expected)

    def _ascend(self, utility, starts):
        """Adam ascent of ``utility(action)`` (one number per start and instance) from ``starts``
        (start axis first), clipped to ``[1e-9, 1]``; returns the best action seen per start."""
        import torch

        action = starts.clone().requires_grad_(True)
        opt = torch.optim.Adam([action], lr=self.lr)
        best_u = utility(action).detach()
        best = action.detach().clone()
        for _ in range(self.steps):
            opt.zero_grad()
            u = utility(action)
            if not u.requires_grad:
                break  # piecewise-constant utility (tv): the starts are the search
            (-u.sum()).backward()
            opt.step()
            with torch.no_grad():
                action.clamp_(1e-9, 1.0)
                u = utility(action)
                better = u > best_u
                best = torch.where(better.reshape(*better.shape, *[1] * (action.ndim - better.ndim)), action, best)
                best_u = torch.where(better, u, best_u)
        return best

    def _starts(self, r_true, w_true, batch, K, normalization, max_size):
        truthful = np.broadcast_to(r_true, (*batch, K))
        exaggerated = truthful.copy()
        rows = np.indices(batch)
        hi, lo = truthful.argmax(-1), truthful.argmin(-1)
        step = np.minimum(0.05, truthful[(*rows, lo)])
        exaggerated[(*rows, hi)] = np.minimum(exaggerated[(*rows, hi)] + step, 1.0)
        exaggerated[(*rows, lo)] -= step
        top = np.where(np.arange(K) == hi[..., None], 1.0, 1e-9)
        random = self._rng.random((self.restarts - 3, *batch, K))
        starts = np.concatenate([truthful[None], exaggerated[None], top[None], random], axis=0)
        starts = np.clip(starts, 1e-9, 1.0)
        if max_size is None:
            return starts
        size = np.broadcast_to(rules.encode_size(w_true, max_size), batch)
        size_starts = np.concatenate([np.broadcast_to(size, (3, *batch)),
                                      self._rng.random((self.restarts - 3, *batch))], axis=0)
        return np.concatenate([starts, size_starts[..., None]], axis=-1)

    @staticmethod
    def _rescore(mechanism, best, reports, sizes, labeler, r_true, w_true, K, normalization, report_size,
                 max_size, reference, noise, expected=False):
        """Exact numpy utilities of the best candidate per start and of truthful reporting
        (with ``expected``, their means over the draws of the others' profile)."""
        candidates, cand_sizes, profile, profile_sizes = candidate_profiles(
            best, reports, sizes, labeler, r_true, w_true, K, normalization, report_size, max_size, noise)
        out = mechanism.outcome(profile, profile_sizes, reference)
        u = w_true * mechanisms.valuation(out.policy, np.broadcast_to(r_true, profile.shape[:-2] + (K,))[..., None, :]
                                          )[..., 0] - out.payments[..., labeler]
        if expected:
            u = u.mean(-1, keepdims=True)
        truthful_u = u[-1]
        k = np.argmax(u, axis=0)
        pick = lambda a: np.take_along_axis(a, k[None, ..., None], axis=0)[0]  # noqa: E731
        return BestResponse(report=pick(candidates), size=np.take_along_axis(cand_sizes, k[None], axis=0)[0],
                            utility=np.take_along_axis(u, k[None], axis=0)[0], truthful_utility=truthful_u)

    def act_in(self, game, agent: str) -> np.ndarray:
        """The action of ``agent`` in a reward-report env, the others reporting truthfully."""

        i = game.possible_agents.index(agent)
        truth = game.truthful_actions()
        matrix = np.stack([truth[a] for a in game.agents])
        reports, sizes = rules.decode_actions(matrix, game.K, game.normalization, game.report_size,
                                              game.max_size, game.sizes)
        br = self.best_response(game.mechanism, reports, sizes, i, game.rewards[i], game.sizes[i],
                                game.normalization, game.report_size, game.max_size, game.reference, game.noise)
        return rules.encode_actions(br.report, br.size, game.normalization, game.report_size, game.max_size)


class InterimGradientAdversary(GradientAdversary):
    """The white box with a learner's information: the interim best response (docs/model.md §4).

    :class:`GradientAdversary` answers the others' actual reports, which a labeler in a
    simultaneous game never sees. This adversary knows what a learning labeler can know, its own
    type, the mechanism and the prior the game draws types from, and maximises its *expected*
    utility ``E_{t_-i} [u_i(r~_i, w~_i; t_-i)]`` over ``samples`` draws of the others' types
    (reporting truthfully, with the game's input noise), by the same projected gradient ascent.
    It is the calibration target of the learned adversaries: no policy of the own type does
    better in expectation (up to the sampling and the local search), so a learner's share of its
    gain measures the learner, not the information gap. With ``redraw_types="episode"`` later
    rounds reveal something about the others through the last policy; this adversary ignores it.

    Parameters
    ----------
    samples : int, default 128
        Draws of the others' types per decision.
    steps, restarts, lr, seed
        As :class:`GradientAdversary` (``seed`` also seeds the draws).
    """

    def __init__(self, samples=128, steps=150, restarts=6, lr=0.02, seed=0):
        super().__init__(steps=steps, restarts=restarts, lr=lr, seed=seed)
        self.samples = check_positive_int(samples, "samples")

    def __repr__(self) -> str:
        return (f"InterimGradientAdversary(samples={self.samples}, steps={self.steps}, restarts={self.restarts}, "
                f"lr={self.lr}, seed={self.seed})")

    def act_in(self, game, agent: str) -> np.ndarray:
        """The action of ``agent`` in a reward-report env, from its own type only."""
        if getattr(game, "sybils", None) is not None:
            raise ValueError("InterimGradientAdversary plays one identity per labeler (a game without sybils)")
        i = game.possible_agents.index(agent)
        M = self.samples
        rewards, sizes = rules.draw_types(self._rng, (M, game.n_labelers), game.K, game.reward_distribution,
                                          game.dirichlet_alpha, game.normalization, game.max_size, game.fixed_sizes)
        noise = rules.draw_noise(self._rng, (M, game.n_labelers, game.K), game.input_noise)
        br = self.best_response(game.mechanism, rewards, sizes, i, game.rewards[i], game.sizes[i], game.normalization,
                                game.report_size, game.max_size, game.reference, noise, expected=True)
        return rules.encode_actions(br.report[0], br.size[0], game.normalization, game.report_size, game.max_size)


class MyopicOnlineAdversary:
    """Grid best response in the online game: ``max_x -(x_bar(x) - b_i)^2 + gamma E[pi_i,next(x)]``.

    Parameters
    ----------
    gamma : float, default 1.0
        Value of one unit of next-round weight, in units of this round's influence.
    grid : int, default 1001
        Number of evenly spaced candidate reports in ``[0, 1]``.
    """

    def __init__(self, gamma=1.0, grid=1001):
        if not (np.isfinite(gamma) and gamma >= 0) or int(grid) < 2:
            raise ValueError(f"need gamma >= 0 and grid >= 2, got {gamma}, {grid}")
        self.gamma, self.grid = float(gamma), int(grid)

    def __repr__(self) -> str:
        return f"MyopicOnlineAdversary(gamma={self.gamma}, grid={self.grid})"

    def best_report(self, mechanism, reports, labeler, target, belief) -> float:
        """Best ``x_i`` given the others' ``reports`` ``(n,)``, the mechanism's current weights,
        the labeler's ``target`` ``b_i`` and ``belief`` ``P(y = 1)``."""
        x = np.linspace(0.0, 1.0, self.grid)
        profiles = np.broadcast_to(np.asarray(reports, dtype=np.float64), (self.grid, len(reports))).copy()
        profiles[:, labeler] = x
        pairs = np.stack([profiles, 1.0 - profiles], axis=-1)
        weights = mechanism.weights if mechanism.weights is not None else np.full(len(reports), 1.0 / len(reports))
        aggregate = mechanism.aggregate(pairs, np.broadcast_to(weights, profiles.shape))[..., 0]
        objective = -((aggregate - target) ** 2)
        if self.gamma > 0:
            expected = np.zeros(self.grid)
            for y, prob in ((1.0, belief), (0.0, 1.0 - belief)):
                losses = mechanisms.quadratic_loss(pairs, np.array([y, 1.0 - y]))
                expected += prob * mechanism._next_weights(np.broadcast_to(weights, losses.shape), losses)[:, labeler]
            objective = objective + self.gamma * expected
        return float(x[np.argmax(objective)])

    def act_in(self, game, agent: str) -> np.ndarray:
        """The action of ``agent`` in an online-feedback env, the others reporting truthfully."""
        i = game.possible_agents.index(agent)
        return np.array([self.best_report(game.mechanism, game.signals, i, game.targets[i], game.signals[i])])
