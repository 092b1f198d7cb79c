"""# Preference Report (``preference_report_v0``)

Labelers report pairwise preferences instead of reward models: the DPO setting [SUN] leaves
open (docs/model.md §6), repeated for ``max_cycles`` rounds.

| | |
|---|---|
| Import | ``from strategic_feedback_env import preference_report_v0`` |
| Agents | ``labeler_0 .. labeler_{n-1}`` (``n = n_labelers``) |
| Action space | ``Box(0, 1, (m,))`` (``report="probability"``) or ``MultiBinary(m)`` (``report="label"``) |
| Observation space | ``Box(0, 1, (2K + 2 + 4m,))`` |
| Reward | the labeler's true quasi-linear utility ``w_i <theta, r_i> - p_i`` |

Private types are those of ``reward_report_v0`` (reward vector ``r_i``, size ``w_i``, the same
draws and options). Each round the platform asks every labeler about ``m`` pairs ``(a, b)`` of
the ``K`` responses (all ``K (K - 1) / 2`` pairs, or ``m`` drawn without replacement per
labeler). Per pair the labeler reports the probability that ``a`` is better, or a 0/1 label.
Its truthful report is the Bradley-Terry probability ``sigma((r_i(a) - r_i(b)) / tau)`` with
the public ``temperature`` ``tau`` (or a label drawn from it with the game's generator).

The platform fits rewards by BT maximum likelihood
(:func:`strategic_feedback_env.mechanisms.bt_fit`): one per labeler (``reward_model=
"per_labeler"``) or one pooled over everyone's comparisons weighted by size (``"pooled"``, as
standard RLHF/DPO does; every labeler's report is then that fit). Fits are shifted to minimum 0
and scaled back by ``tau``, cut at 1, and go to the mechanism as the labelers' reward reports
with their true sizes. BT identifies rewards up to a constant and KL SW-Max and its affine
maximizer payments ignore constants, so with exact truthful probabilities on all pairs the
per-labeler game is ``reward_report_v0`` on the same types.

**Action.** One number per asked pair, in the order of the observation's pairs. Actions
outside ``[0, 1]``, NaN/inf, labels other than 0/1, or of the wrong shape raise ``ValueError``
and leave the env unchanged.

**Observation** (``float64``): ``[r_i (K) | w_i / max_size | round / max_cycles | last policy
(K) | pairs (2m: a_1, b_1, ..., divided by K - 1) | BT probabilities (m) | truthful action
(m)]``. ``observation_layout(K, m)`` names the slices.

**Info** per agent each step: ``valuation``, ``payment``, ``utility``, ``truthful_utility`` (had
it alone reported truthfully, the others' reports fixed), ``gain``, ``report``, ``fitted_reward``
(what the mechanism saw), ``true_reward``, ``true_size``; shared: ``social_welfare``,
``policy``, ``total_payment``.

**Arguments** (all keyword, defaults in brackets):

* ``n_labelers`` [5], ``n_outcomes`` (K >= 2) [10]
* ``mechanism`` ["affine_maximizer"], ``mechanism_params`` [None]: a reward-report mechanism
  (``sw_max``, ``affine_maximizer``, ``median_of_mles``, ...) with ``normalization=None``;
  online rules are refused
* ``normalization``, ``reward_distribution``, ``dirichlet_alpha``, ``max_size``, ``sizes``,
  ``redraw_types``, ``reference``: the types, as in ``reward_report_v0``
* ``pairs`` ["all"]: ``"all"`` or the number ``m`` of pairs asked per labeler and round
* ``report`` ["probability"]: ``"probability"`` or ``"label"``
* ``temperature`` [0.1]: the public BT temperature ``tau > 0``
* ``reward_model`` ["per_labeler"]: ``"per_labeler"`` or ``"pooled"``
* ``ridge`` [0.0]: ridge penalty ``ridge/2 ||r / tau||^2`` of the fit (0: none)
* ``clip`` [1e-6]: reports are clipped to ``[clip, 1 - clip]`` inside the fit (exact truthful
  probabilities stay unclipped while reward gaps are below ``tau log((1 - clip) / clip)``, 1.38 for
  ``tau = 0.1``)
* ``max_cycles`` [10], ``render_mode`` [None]: as in ``reward_report_v0``
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from strategic_feedback_env.mechanisms.bradley_terry import check_fit_options
from strategic_feedback_env.mechanisms.validation import check_positive_int

from ..labeler_game import LabelerGame, build_mechanism, pettingzoo_constructors
from ..reward_report import rules as rr_rules
from ..reward_report.reward_report import RewardReportRounds
from . import rules
from .rules import REPORTS, REWARD_MODELS, observation_layout


class BinaryLabels(spaces.MultiBinary):
    """``MultiBinary(m)`` that also carries the Box bounds 0 and 1 the shared action checks read."""

    def __init__(self, n):
        super().__init__(n)
        self.low, self.high = np.zeros(self.shape), np.ones(self.shape)


def check_labels(actions) -> None:
    """Labels must be exactly 0 or 1 (the range is checked already)."""
    if not np.all((actions == 0.0) | (actions == 1.0)):
        raise ValueError("labels must be 0 or 1 (report='label')")


class PreferenceReportRounds(RewardReportRounds):
    """The game's state hooks for any leading batch shape (``()`` here, ``(B,)`` in
    :class:`strategic_feedback_env.batched.BatchedPreferenceReport`): the reward-report types,
    then this round's pairs, BT probabilities and (labels) truthful labels, drawn in that order."""

    def _draw_round(self):
        if self.redraw_types == "round":
            self._draw_types()
        shape = (*self.batch_shape, self.n)
        self.pairs = rules.draw_pairs(self.np_random, shape, self.K, self.m)
        self.preferences = rules.bt_probabilities(self.rewards, self.pairs, self.temperature)
        if self.report == "label":
            self.truthful = (self.np_random.random(self.preferences.shape) < self.preferences).astype(np.float64)
        else:
            self.truthful = self.preferences

    def _observations(self):
        return rules.observe(self.rewards, self.sizes, self.max_size, self.round / self.max_cycles, self.last_policy,
                             self.pairs, self.preferences, self.truthful)


class PreferenceReportEnv(PreferenceReportRounds, LabelerGame, EzPickle):
    """ParallelEnv of the preference-report game; see the module docstring."""

    metadata = {**LabelerGame.metadata, "name": "preference_report_v0"}

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
        redraw_types="round",
        reference=None,
        pairs="all",
        report="probability",
        temperature=0.1,
        reward_model="per_labeler",
        ridge=0.0,
        clip=1e-6,
        max_cycles=10,
        render_mode=None,
    ):
        EzPickle.__init__(
            self, n_labelers, n_outcomes, mechanism, mechanism_params, normalization, reward_distribution,
            dirichlet_alpha, max_size, sizes, redraw_types, reference, pairs, report, temperature, reward_model, ridge,
            clip, max_cycles, render_mode,
        )
        self.K = check_positive_int(n_outcomes, "n_outcomes", minimum=2)
        self.max_size = check_positive_int(max_size, "max_size")
        total = self.K * (self.K - 1) // 2
        if isinstance(pairs, str) and pairs == "all":
            self.m = total
        else:
            self.m = check_positive_int(pairs, "pairs")
            if self.m > total:
                raise ValueError(f"pairs must be 'all' or at most K (K - 1) / 2 = {total}, got {pairs!r}")
        if report not in REPORTS:
            raise ValueError(f"report must be one of {REPORTS}, got {report!r}")
        self.report = report
        super().__init__(n_labelers, max_cycles, render_mode)
        self._configure_types(normalization, reward_distribution, dirichlet_alpha, sizes, redraw_types, reference)
        self.temperature, self.ridge, self.clip = check_fit_options(temperature, ridge, clip)
        if reward_model not in REWARD_MODELS:
            raise ValueError(f"reward_model must be one of {REWARD_MODELS}, got {reward_model!r}")
        self.reward_model = reward_model
        self.mechanism = build_mechanism(mechanism, mechanism_params)
        if self.mechanism.online:
            raise ValueError(f"mechanism {self.mechanism.name!r} is an online rule; preference_report_v0 takes "
                             "reward-report mechanisms (sw_max, affine_maximizer, median_of_mles, ...)")
        if getattr(self.mechanism, "normalization", None) is not None:
            raise ValueError("the mechanism sees BT fits (minimum 0, not normalised): use normalization=None")
        self.layout = observation_layout(self.K, self.m)

    def _make_observation_space(self):
        return spaces.Box(0.0, 1.0, shape=(2 * self.K + 2 + 4 * self.m,), dtype=np.float64)

    def _make_action_space(self):
        if self.report == "label":
            return BinaryLabels(self.m)
        return spaces.Box(0.0, 1.0, shape=(self.m,), dtype=np.float64)

    def check_action(self, agent, action):
        a = super().check_action(agent, action)
        if self.report == "label":
            check_labels(a)
        return a

    def _action_matrix(self, actions):
        matrix = super()._action_matrix(actions)
        if self.report == "label":
            check_labels(matrix)
        return matrix

    def truthful_actions(self):
        return {a: self.truthful[i].copy() for i, a in enumerate(self.agents)}

    def _play_round(self, action_matrix):
        fitted, res = rules.play_round(self, action_matrix)
        self.last_policy = res["policy"]
        agent_infos, shared = rr_rules.round_infos(res)
        agent_infos.update(report=action_matrix, fitted_reward=fitted, true_reward=self.rewards, true_size=self.sizes)
        return res["utility"], agent_infos, shared


parallel_env, raw_env, env = pettingzoo_constructors(PreferenceReportEnv)
