"""White-box best response in the preference game: gradient ascent through fit -> mechanism.

Labeler ``i``'s utility ``w_i <theta, r_i> - p_i`` depends on its reports ``x in [0, 1]^m`` only
through the Bradley-Terry fit (its own, or the pooled one) that the mechanism sees (docs/model.md
section 6). :class:`PreferenceGradientAdversary` differentiates that composition in torch
(:func:`strategic_feedback_env.mechanisms.bradley_terry.torch_bt_fit`, exact implicit gradient,
then the torch twin of the mechanism) and runs projected Adam on ``x`` from several starts
(truthful, "prefer my top", inverted, random), the others' reports fixed at their truthful
ones. The candidates are re-scored exactly with the game's own rules, so the gain it reports is
the game's number. In the label game the best probabilities are rounded to labels.
"""

from __future__ import annotations

import numpy as np

from strategic_feedback_env.mechanisms.bradley_terry import torch_bt_fit
from strategic_feedback_env.mechanisms.differentiable import torch_outcome
from strategic_feedback_env.mechanisms.median_of_mles import MedianOfMLEs, torch_median_outcome
from strategic_feedback_env.mechanisms.sw_max import SocialWelfareMaximizer
from strategic_feedback_env.preference_report import rules


class PreferenceGradientAdversary:
    """Projected gradient ascent on one labeler's utility over its pairwise reports.

    Parameters
    ----------
    steps : int, default 80
        Adam steps per start.
    restarts : int, default 5
        Starts: truthful, "prefer my top", inverted (``1 - t``) and ``restarts - 3`` random points.
    lr : float, default 0.05
    seed : int, default 0
    """

    def __init__(self, steps=80, restarts=5, lr=0.05, seed=0):
        if int(steps) < 0 or int(restarts) < 3 or not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"need steps >= 0, restarts >= 3 and lr > 0, got {steps}, {restarts}, {lr}")
        self.steps, self.restarts, self.lr, self.seed = int(steps), int(restarts), float(lr), seed
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"PreferenceGradientAdversary(steps={self.steps}, restarts={self.restarts}, lr={self.lr}, seed={self.seed})"

    def _starts(self, game, i):
        t = game.truthful[i]
        top = game.rewards[i].argmax()
        prefer_top = np.where(game.pairs[i][:, 0] == top, 1.0, np.where(game.pairs[i][:, 1] == top, 0.0, t))
        random = self._rng.random((self.restarts - 3, game.m))
        return np.concatenate([t[None], prefer_top[None], 1.0 - t[None], random])

    def best_response(self, game, labeler: int):
        """``(action (m,), gain)``: the best report found for ``labeler`` in the env's current
        round (the others truthful) and its exact gain over the truthful report."""
        import torch

        mech = game.mechanism
        if not isinstance(mech, (SocialWelfareMaximizer, MedianOfMLEs)):
            raise ValueError(f"PreferenceGradientAdversary needs sw_max, affine_maximizer or median_of_mles, got {mech!r}")
        twin = torch_median_outcome if isinstance(mech, MedianOfMLEs) else torch_outcome
        n, m, K, i = game.n, game.m, game.K, labeler
        t = lambda a: torch.as_tensor(np.array(a, dtype=np.float64))  # noqa: E731
        others, sizes, r_i, ref = t(game.truthful), t(game.sizes), t(game.rewards[i]), t(game.reference)
        own = torch.zeros(n, 1, dtype=torch.float64)
        own[i] = 1.0
        pooled = game.reward_model == "pooled"
        pairs = game.pairs.reshape(n * m, 2) if pooled else game.pairs
        counts = np.repeat(game.sizes, m) if pooled else None

        others_fit = t(rules.fitted_reports(game.truthful, game.pairs, game.sizes, K, game.reward_model,
                                            game.temperature, game.ridge, game.clip))

        def utility(x):
            if pooled:
                profile = others * (1 - own) + x[:, None, :] * own  # (R, n, m)
                fit = torch_bt_fit(pairs, profile.reshape(len(x), n * m), K, game.temperature, counts, game.ridge,
                                   game.clip)[:, None, :].expand(len(x), n, K)
            else:  # only labeler i's own fit moves
                own_fit = torch_bt_fit(pairs[i], x, K, game.temperature, None, game.ridge, game.clip)
                fit = others_fit * (1 - own) + own_fit[:, None, :] * own
            out = twin(mech, torch.clamp(fit, max=1.0), sizes, ref)
            return sizes[i] * (out.policy * r_i).sum(-1) - out.payments[..., i]

        x = t(self._starts(game, i)).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=self.lr)
        best, best_u = x.detach().clone(), utility(x).detach()
        for _ in range(self.steps):
            opt.zero_grad()
            (-utility(x).sum()).backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
                u = utility(x)
                better = u > best_u
                best = torch.where(better[:, None], x, best)
                best_u = torch.where(better, u, best_u)
        return self._rescore(game, i, best.numpy())

    @staticmethod
    def _rescore(game, i, candidates):
        """Exact utilities of the candidates (rounded in the label game) and of the truthful report."""
        if game.report == "label":
            candidates = (candidates > 0.5).astype(np.float64)
        candidates = np.concatenate([candidates, game.truthful[i][None]])
        profiles = np.broadcast_to(game.truthful, (len(candidates), game.n, game.m)).copy()
        profiles[:, i] = candidates
        _, res = rules.play_round(game, profiles)
        k = int(np.argmax(res["utility"][:, i]))
        return candidates[k], float(res["utility"][k, i] - res["utility"][-1, i])

    def act_in(self, game, agent: str) -> np.ndarray:
        """The action of ``agent`` in a preference-report env, the others reporting truthfully."""
        return self.best_response(game, game.possible_agents.index(agent))[0]
