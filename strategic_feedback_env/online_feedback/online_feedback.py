"""# Online Feedback (``online_feedback_v0``)

The repeated online-feedback game of [HD] (docs/model.md §2): each round ``t`` labelers
report the probability that response A beats response B, the mechanism aggregates the
reports with its current weights, the ground truth is revealed and the weights are updated
(they carry over between rounds within an episode).

| | |
|---|---|
| Import | ``from strategic_feedback_env import online_feedback_v0`` |
| Agents | ``labeler_0 .. labeler_{n-1}`` |
| Action space | ``Box(0, 1, (1,))``: the reported probability ``x_i`` that A is better |
| Observation space | ``Box(0, 1, (6,))`` |
| Reward | influence ``-(x_bar - b_i)^2`` minus any payment |

Each round a hidden ``q_t ~ U[0, 1]`` is drawn; labeler ``i`` sees the signal
``s_i = clip(q_t + sigma_i xi)`` (``xi ~ N(0, 1)``; ``sigma_i`` its accuracy) and wants the
aggregate near its target ``b_i = clip(s_i + beta_i)`` (``beta_i`` its bias). The
mechanism sees reports as distributions ``(x_i, 1 - x_i)`` and returns the aggregate
``x_bar``; then ``y_t`` is revealed (``Bernoulli(q_t)`` or ``q_t``) and online rules update
their weights with the quadratic loss ``(x_i - y_t)^2``. A labeler's weight buys influence in
later rounds, so the trade-off between pulling the aggregate now and keeping weight lives in
the return.

**Observation** (``float64``): ``[s_i | b_i | own weight pi_i | round / max_cycles |
last aggregate | last y]`` (0.5 for the last two before the first round). Never the
others' signals, targets or weights. ``OBSERVATION_LAYOUT`` names the slices.

**Info** per agent: ``valuation`` (the influence term), ``payment``, ``utility``,
``truthful_utility`` (had it reported ``s_i``, others fixed, this round), ``gain``,
``report``, ``weight``, ``signal``, ``target``; shared: ``aggregate``, ``weights`` (all
labelers', public), ``y``, ``q``, ``aggregate_loss``, ``regret`` (cumulative, against the
best labeler's truthful signals in hindsight: ``sum_t (x_bar_t - y_t)^2 -
min_i sum_t (s_i,t - y_t)^2``), ``social_welfare`` (sum of utilities).

**Arguments** (defaults in brackets):

* ``n_labelers`` [5]
* ``mechanism`` ["online_weighted"] and ``mechanism_params`` [None], as in
  ``reward_report_v0``; for ``online_weighted``/``hedge`` the default horizon is ``max_cycles``
* ``accuracies`` [None]: the ``sigma_i`` (length n); None = evenly spaced 0.05 .. 0.5
* ``biases`` [0.1]: the ``beta_i``, one number for all or length n
* ``outcome_model`` ["bernoulli"]: ``"bernoulli"`` (``y ~ Bernoulli(q)``) or ``"probability"``
  (``y = q``)
* ``max_cycles`` [100]: rounds per episode (the horizon ``T``)
* ``render_mode`` [None]: ``"human"`` (print), ``"ansi"`` (text) or ``"rgb_array"`` (image)
* ``sybils`` [None]: ``k >= 1`` identities of labeler ``sybil_of`` ["labeler_0"] (false names,
  docs/model.md §5): agents ``labeler_0 .. labeler_{n-1}`` then ``labeler_s_sybil_1 ..
  labeler_s_sybil_{k-1}``; every identity is a new labeler with the ordinary initial weight
  ``1 / (n + k - 1)``, sees the sybil's signal, wants its target, and is rewarded with ``1/k``
  of the influence (:mod:`strategic_feedback_env.sybils`); ``accuracies``/``biases`` stay per
  true labeler (length n)
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from strategic_feedback_env.mechanisms._ops import ops_for
from strategic_feedback_env.mechanisms.validation import as_float_array

from ..labeler_game import LabelerGame, build_mechanism, pettingzoo_constructors, require_reset
from . import rules
from .rules import OBSERVATION_LAYOUT

OUTCOME_MODELS = ("bernoulli", "probability")


def _per_labeler(value, n: int, name: str) -> np.ndarray:
    arr = as_float_array(value, name)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be one finite number or {n} of them, got {value!r}")
    return arr


class OnlineFeedbackRounds:
    """The game's state hooks for any leading batch shape: ``()`` in the ParallelEnv,
    ``(B,)`` in :class:`strategic_feedback_env.batched.BatchedOnlineFeedback`, so both draw the
    same numbers in the same order (docs/model.md §2). Needs the parsed config attributes,
    ``n``, ``np_random``, ``round``, ``max_cycles`` and ``batch_shape``."""

    def _start_episode(self):
        shape = (*self.batch_shape, self.n)
        like = self.accuracies
        ops = ops_for(like)
        if self.mechanism.online:
            self.mechanism.reset(self.n, self.batch_shape, like=like)
        self.weights = ops.full(shape, 1.0 / self.n, like=like)
        self.last_aggregate = ops.full(self.batch_shape, 0.5, like=like)
        self.last_y = ops.full(self.batch_shape, 0.5, like=like)
        self.aggregate_loss_sum = ops.zeros(self.batch_shape, like=like)
        self.labeler_loss_sums = ops.zeros(shape, like=like)

    def _draw_round(self):
        self.q, self.signals, self.targets, self.y = rules.draw_round(
            self.np_random, self.batch_shape, self.accuracies, self.biases, self.outcome_model
        )
        if self.sybils is not None:  # identities see their owner's signal and want its target
            self.signals, self.targets = self.sybils.expand(self.signals), self.sybils.expand(self.targets)

    def _observations(self):
        return rules.observe(
            self.signals, self.targets, self.weights, self.round / self.max_cycles, self.last_aggregate, self.last_y
        )

    def _resolve(self, x):
        """Play the round on the reports ``x`` ``(..., n)``: the mechanism aggregates and updates
        its weights; the running losses and the last public outcome advance. Returns the results."""
        shares = None if self.sybils is None else self.sybils.share
        res = rules.resolve_round(self.mechanism, x, self.signals, self.targets, self.y, shares)
        self.weights = res["weights"]
        self.aggregate_loss_sum = self.aggregate_loss_sum + res["aggregate_loss"]
        self.labeler_loss_sums = self.labeler_loss_sums + res["labeler_loss"]
        self.last_aggregate, self.last_y = res["aggregate"], self.y
        return res


class OnlineFeedbackEnv(OnlineFeedbackRounds, LabelerGame, EzPickle):
    """ParallelEnv of the [HD] online-feedback game; see the module docstring."""

    metadata = {**LabelerGame.metadata, "name": "online_feedback_v0"}

    def __init__(
        self,
        n_labelers=5,
        mechanism="online_weighted",
        mechanism_params=None,
        accuracies=None,
        biases=0.1,
        outcome_model="bernoulli",
        max_cycles=100,
        render_mode=None,
        sybils=None,
        sybil_of="labeler_0",
    ):
        EzPickle.__init__(
            self, n_labelers, mechanism, mechanism_params, accuracies, biases, outcome_model, max_cycles, render_mode,
            sybils, sybil_of,
        )
        super().__init__(n_labelers, max_cycles, render_mode, sybils, sybil_of)
        if outcome_model not in OUTCOME_MODELS:
            raise ValueError(f"outcome_model must be one of {OUTCOME_MODELS}, got {outcome_model!r}")
        self.outcome_model = outcome_model
        self.layout = OBSERVATION_LAYOUT
        if accuracies is None:
            accuracies = np.linspace(0.05, 0.5, self.n_labelers)
        self.accuracies = _per_labeler(accuracies, self.n_labelers, "accuracies")
        if np.any(self.accuracies < 0):
            raise ValueError(f"accuracies (noise standard deviations) must be >= 0, got {accuracies!r}")
        self.biases = _per_labeler(biases, self.n_labelers, "biases")
        self.mechanism = build_mechanism(mechanism, mechanism_params, defaults={"horizon": self.max_cycles})

    def _make_observation_space(self):
        return spaces.Box(0.0, 1.0, shape=(6,), dtype=np.float64)

    def _make_action_space(self):
        return spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float64)

    def truthful_actions(self):
        require_reset(self._started, "truthful_actions()")
        return {a: self.signals[i : i + 1].copy() for i, a in enumerate(self.agents)}

    def _play_round(self, action_matrix):
        x = action_matrix[:, 0]
        res = self._resolve(x)
        agent_infos = {k: res[k] for k in ("valuation", "payment", "utility", "truthful_utility", "gain", "weight")}
        agent_infos.update(report=x, signal=self.signals, target=self.targets)
        shared = {
            "aggregate": float(self.last_aggregate),
            "weights": self.weights.copy(),
            "y": float(self.last_y),
            "q": float(self.q),
            "aggregate_loss": float(res["aggregate_loss"]),
            "regret": float(self.aggregate_loss_sum - self.labeler_loss_sums.min()),
            "social_welfare": float(res["utility"].sum()),
        }
        return res["utility"], agent_infos, shared


parallel_env, raw_env, env = pettingzoo_constructors(OnlineFeedbackEnv)
