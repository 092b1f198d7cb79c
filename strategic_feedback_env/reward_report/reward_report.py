"""# Reward Report (``reward_report_v0``)

The reward-model game of [SUN] (docs/model.md §1), repeated for ``max_cycles`` rounds.

| | |
|---|---|
| Import | ``from strategic_feedback_env import reward_report_v0`` |
| Agents | ``labeler_0 .. labeler_{n-1}`` (``n = n_labelers``) |
| Action space | ``Box(0, 1, (K,))``, or ``(K + 1,)`` with ``report_size=True`` |
| Observation space | ``Box(0, 1, (2K + 2,))`` |
| Reward | the labeler's true quasi-linear utility ``w_i <theta, r_i> - p_i`` |

Each round every labeler ``i`` has a private reward vector ``r_i in [0,1]^K`` (sum- or
max-normalised) and size ``w_i in {1..max_size}``. It reports ``(r~_i, w~_i)``; the mechanism
trains a policy ``theta`` on ``K`` outcomes and charges payments ``p``.

**Action.** ``a[:K]`` is the reported reward vector *before normalisation*: the env divides
it by its sum (``normalization="sum"``) or its max (``"max"``), exactly as types are
normalised, so any action in the box is a valid report (an all-zero action reports the
uniform / all-ones vector). With ``report_size=True``, ``a[K]`` reports the size
``w~ = 1 + a[K] (max_size - 1)``; otherwise the true size is used. Actions outside
``[0, 1]``, NaN/inf, or of the wrong shape raise ``ValueError`` and leave the env unchanged.

**Observation** (``float64``): ``[r_i (K) | w_i / max_size | round / max_cycles |
last policy (K)]``; the last policy is the reference policy before the first round. A
labeler never sees the others' private types. ``observation_layout(K)`` names the slices.

**Info** per agent each step: ``valuation`` ``<theta, r_i>``, ``payment``, ``utility``,
``truthful_utility`` (had it reported its type, others' reports fixed), ``gain`` =
utility - truthful_utility (the empirical DSIC violation), ``report``, ``reported_size``;
shared: ``social_welfare`` ``sum_i w_i <theta, r_i>``, ``policy``, ``total_payment``.

**Arguments** (all keyword, defaults in brackets):

* ``n_labelers`` [5], ``n_outcomes`` (K) [10]
* ``mechanism`` ["affine_maximizer"]: a name in ``mechanisms.available()`` or a
  ``mechanisms.Mechanism`` object; ``mechanism_params`` [None]: dict for ``mechanisms.make``
  (e.g. ``{"lam": 0.1, "regularizer": "chi2"}``). Online rules (``average`` ...) plug in as
  one-round aggregators and need ``normalization="sum"`` and ``input_noise=0``.
* ``normalization`` ["sum"]: ``"sum"`` or ``"max"``
* ``reward_distribution`` ["uniform"]: ``"uniform"`` (``U[0,1]^K`` then normalised) or
  ``"dirichlet"`` (``Dir(dirichlet_alpha)``, then normalised); ``dirichlet_alpha`` [1.0]
* ``max_size`` [10]: sizes ``w ~ U{1..max_size}``; ``sizes`` [None]: fixed sizes (length n)
* ``report_size`` [False]: let labelers report a size too
* ``redraw_types`` ["round"]: ``"round"`` (new types each round) or ``"episode"``
* ``reference`` [None]: reference policy ``pi_ref`` (length K, full support); None = uniform
* ``input_noise`` [0.0]: the mechanism sees every report perturbed by ``U[-eps, eps]`` per
  entry, clipped to [0, 1] (the biased input of Thm 4.12); the truthful counterfactual sees
  the same noise
* ``max_cycles`` [10]: rounds per episode (PettingZoo's name for episode length)
* ``render_mode`` [None]: ``"human"`` (print), ``"ansi"`` (text) or ``"rgb_array"`` (image)
* ``sybils`` [None]: ``k >= 1`` identities of labeler ``sybil_of`` ["labeler_0"] (false names,
  docs/model.md §5): agents ``labeler_0 .. labeler_{n-1}`` then ``labeler_s_sybil_1 ..
  labeler_s_sybil_{k-1}``; each identity has the sybil's reward and size ``w_s / k``
  (:mod:`strategic_feedback_env.sybils`). With ``report_size=True`` an identity reports a size
  in ``[1, max_size]``, so a truthful split needs ``w_s >= k`` (the truthful action clips to 1).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from strategic_feedback_env.mechanisms._ops import ops_for
from strategic_feedback_env.mechanisms.validation import check_number, check_positive_int, check_reference

from ..labeler_game import LabelerGame, build_mechanism, pettingzoo_constructors, require_reset
from . import rules
from .rules import observation_layout

NORMALIZATIONS = ("sum", "max")
DISTRIBUTIONS = ("uniform", "dirichlet")
REDRAW = ("round", "episode")


class RewardReportRounds:
    """The game's state hooks for any leading batch shape: ``()`` in the ParallelEnv,
    ``(B,)`` in :class:`strategic_feedback_env.batched.BatchedRewardReport`, so both draw the
    same numbers in the same order (docs/model.md §1). Needs the parsed config attributes,
    ``n``, ``np_random``, ``round``, ``max_cycles`` and ``batch_shape``."""

    def _configure_types(self, normalization, reward_distribution, dirichlet_alpha, sizes, redraw_types, reference):
        """Check and set the private-type options (after ``K``, ``max_size`` and ``n``): every game
        drawing these types (``reward_report_v0``, ``preference_report_v0``) takes the same ones."""
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if reward_distribution not in DISTRIBUTIONS:
            raise ValueError(f"reward_distribution must be one of {DISTRIBUTIONS}, got {reward_distribution!r}")
        if redraw_types not in REDRAW:
            raise ValueError(f"redraw_types must be one of {REDRAW}, got {redraw_types!r}")
        if not check_number(dirichlet_alpha, "dirichlet_alpha") > 0:
            raise ValueError(f"dirichlet_alpha must be > 0, got {dirichlet_alpha!r}")
        self.normalization = normalization
        self.reward_distribution = reward_distribution
        self.dirichlet_alpha = float(dirichlet_alpha)
        self.redraw_types = redraw_types
        self.reference = check_reference(reference, self.K)
        self.fixed_sizes = None if sizes is None else self._check_sizes(sizes)

    def _check_sizes(self, sizes):
        message = f"sizes must be {self.n_labelers} numbers in [1, max_size={self.max_size}], got {sizes!r}"
        try:
            w = np.asarray(sizes, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(message) from None
        if w.shape != (self.n_labelers,) or not np.all(np.isfinite(w)) or np.any(w < 1) or np.any(w > self.max_size):
            raise ValueError(message)
        return w

    def _draw_types(self, out=None):
        """New types (``out``: the array to draw the rewards into, see ``rules.draw_types``)."""
        rewards, sizes = rules.draw_types(
            self.np_random, (*self.batch_shape, self.n_labelers), self.K, self.reward_distribution,
            self.dirichlet_alpha, self.normalization, self.max_size, self.fixed_sizes, out,
        )
        if self.sybils is not None:  # identities copy their owner's reward and split its size
            rewards, sizes = self.sybils.expand(rewards, -2), self.sybils.expand(sizes) * self.sybils.share
        self.rewards, self.sizes = rewards, sizes

    def _start_episode(self):
        if self.mechanism.online:
            self.mechanism.reset(self.n, self.batch_shape, like=self.reference)
        # a read-only broadcast view: the observations copy it and every round replaces it
        self.last_policy = ops_for(self.reference).xp.broadcast_to(self.reference, (*self.batch_shape, self.K))
        if self.redraw_types == "episode":
            self._draw_types()

    def _draw_round(self):
        if self.redraw_types == "round":
            self._draw_types()
        noise = rules.draw_noise(self.np_random, (*self.batch_shape, self.n_labelers, self.K), self.input_noise)
        self.noise = noise if noise is None or self.sybils is None else self.sybils.expand(noise, -2)

    def _observations(self):
        return rules.observe(self.rewards, self.sizes, self.max_size, self.round / self.max_cycles, self.last_policy)


class RewardReportEnv(RewardReportRounds, LabelerGame, EzPickle):
    """ParallelEnv of the [SUN] reward-report game; see the module docstring."""

    metadata = {**LabelerGame.metadata, "name": "reward_report_v0"}

    def __init__(
        self,
        n_labelers=5,
        n_outcomes=10,
        mechanism="affine_maximizer",
        mechanism_params=None,
        normalization="sum",
        reward_distribution="uniform",
        dirichlet_alpha=1.0,
        max_size=10,
        sizes=None,
        report_size=False,
        redraw_types="round",
        reference=None,
        input_noise=0.0,
        max_cycles=10,
        render_mode=None,
        sybils=None,
        sybil_of="labeler_0",
    ):
        EzPickle.__init__(
            self, n_labelers, n_outcomes, mechanism, mechanism_params, normalization, reward_distribution,
            dirichlet_alpha, max_size, sizes, report_size, redraw_types, reference, input_noise, max_cycles,
            render_mode, sybils, sybil_of,
        )
        self.K = check_positive_int(n_outcomes, "n_outcomes")
        self.max_size = check_positive_int(max_size, "max_size")
        self.report_size = bool(report_size)
        super().__init__(n_labelers, max_cycles, render_mode, sybils, sybil_of)
        self._configure_types(normalization, reward_distribution, dirichlet_alpha, sizes, redraw_types, reference)
        if not 0 <= check_number(input_noise, "input_noise") <= 1:
            raise ValueError(f"input_noise must lie in [0, 1], got {input_noise!r}")
        self.input_noise = float(input_noise)
        self.mechanism = build_mechanism(mechanism, mechanism_params)
        if self.mechanism.online and (normalization != "sum" or self.input_noise > 0):
            raise ValueError(
                f"mechanism {self.mechanism.name!r} aggregates distributions: use normalization='sum' and input_noise=0"
            )
        self.layout = observation_layout(self.K)

    def _make_observation_space(self):
        return spaces.Box(0.0, 1.0, shape=(2 * self.K + 2,), dtype=np.float64)

    def _make_action_space(self):
        return spaces.Box(0.0, 1.0, shape=(self.K + int(self.report_size),), dtype=np.float64)

    def truthful_actions(self):
        require_reset(self._started, "truthful_actions()")
        actions = rules.truthful_actions(self.rewards, self.sizes, self.max_size, self.report_size)
        return {a: actions[i] for i, a in enumerate(self.agents)}

    def _play_round(self, action_matrix):
        reports, reported_sizes, res = rules.play_round(self, action_matrix)
        self.last_policy = res["policy"]
        agent_infos, shared = rules.round_infos(res)
        agent_infos.update(report=reports, reported_size=reported_sizes, true_reward=self.rewards, true_size=self.sizes)
        return res["utility"], agent_infos, shared


parallel_env, raw_env, env = pettingzoo_constructors(RewardReportEnv)
