"""Batched (vectorised) forms of both games: ``B`` independent games stepped as one array.

:class:`BatchedRewardReport` and :class:`BatchedOnlineFeedback` run ``num_games = B`` copies of
``reward_report_v0`` / ``online_feedback_v0`` with the *same* rules (``rules.py`` of each game)
and the *same* mechanism objects as the PettingZoo ParallelEnvs, on arrays with a leading
batch dimension; there is no Python loop over games or labelers in :meth:`step`.

API (arrays, not dicts)::

    env = BatchedRewardReport(num_games=4096, seed=0, n_labelers=5, n_outcomes=10)
    obs = env.reset()                       # (B, n, obs_dim) float64
    obs, rewards, terminated, truncated, infos = env.step(actions)   # actions (B, n, act_dim)
    # rewards (B, n); terminated, truncated (B,) bool; infos: dict of arrays, e.g.
    # infos["gain"] (B, n), infos["utility"] (B, n), infos["social_welfare"] (B,)

Contracts
---------
* **Configuration**: every keyword argument of the scalar env (``RewardReportEnv`` /
  ``OnlineFeedbackEnv``) is accepted with the same meaning and validation, except
  ``render_mode`` (no rendering).
* **Shared clock, auto-reset**: all games start together and share the round counter. The
  step that plays round ``max_cycles`` returns ``terminated = True`` for every game (all
  games end on the same step). ``truncated`` is always ``False``. ``infos["round"]`` is the
  number of the round just played (``1 .. max_cycles``). When the next episode starts is the
  ``autoreset`` argument (Gymnasium's vector auto-reset modes):

  - ``"same_step"`` (default): that step also returns ``infos["final_observation"]`` (the
    observation the scalar env returns on its last step); the env then starts a new episode
    at once (drawing from the same generator, exactly as the scalar env's ``reset()`` without
    a seed would) and the returned ``obs`` is the first observation of that new episode.
  - ``"next_step"``: that step returns the final observation as ``obs`` and draws nothing
    (no ``final_observation`` info). The next ``step()`` checks its actions as any step does,
    then ignores them: every game starts its new episode (the same draws as ``same_step``'s
    reset, so the runs agree number for number), and it returns that episode's first
    observation, rewards 0, ``terminated = truncated = False`` and empty infos (the batched
    ``reset()`` has none). ``reset()`` in between starts the episode instead.
* **Equivalence with the scalar env**: with ``num_games = 1``, the same seed and the same
  actions, every observation, reward, termination and info value equals (bit for bit) what
  ``parallel_env(**config)`` returns after ``reset(seed=seed)`` (and ``reset()`` after each
  episode), because both draw from one ``numpy.random.Generator`` in the same order with the
  same shapes up to the leading ``1``. With ``B > 1`` the games are independent draws from
  one generator (game ``b`` is *not* the scalar env seeded with anything in particular);
  the run is a deterministic function of ``(seed, B, actions)``.
* **Validation**: actions must be numeric arrays of shape ``(B, n, act_dim)``, finite and in
  ``[0, 1]``; otherwise ``ValueError`` is raised and no state changes.
* Mechanism objects: a mechanism passed by name is built fresh; an online mechanism's
  weights have shape ``(B, n)``.

Backends
--------
``backend="numpy"`` (default) is the float64 CPU game above. ``backend="torch"`` with
``device="cpu"``/``"cuda"``/... and ``dtype=torch.float64`` (default) or ``torch.float32`` runs
the same rules and mechanisms (``rules.py`` and the mechanisms are written once against
:mod:`strategic_feedback_env.mechanisms._ops`) on tensors that stay on the device: actions
(a tensor or array of shape ``(B, n, act_dim)``), observations, rewards, flags and infos are
tensors there. Types are drawn from a ``torch.Generator`` on the device
(:class:`strategic_feedback_env.torch_random.TorchRandom`): the same distributions as numpy,
other numbers, so a torch run is reproducible from ``(seed, B, actions)`` but is not the numpy
run. Fed the same types and actions, the two backends agree to 1e-10 in float64
(tests/test_batched_torch.py). No array crosses to the host during a step; the device is read
for single flags only: the action check (one per step), the input checks an online mechanism (or
one given its own ``normalization``) runs itself (one per checked array, up to five per step),
and with ``reward_distribution="dirichlet"`` the gamma sampler's acceptance (one per draw: one
per round, and up to 32 for an episode's first rewards, drawn in blocks into its first
observation, and 32 again when they are first read; see "Memory").
The preference game (``preference_report_v0``) runs on ``backend="numpy"`` only (its pair
draws and Bradley-Terry fits are numpy code); other backends are refused.

Memory
------
The env's state and the caller's actions hold at most 3 ``(B, n, W)`` float64 arrays before a
step, and with what the step allocates at its peak (the terminal step's reset included) at most
8 (``W = K + 2`` for the reward-report game, 6 for the online game, ``K (K + c) + m + 2`` for
the preference game with ``c`` comparisons per fit; ``3 + 5 n`` for ``median``, which runs ``n``
deviation profiles); sizes whose state and step cannot fit in the memory available on the
device are refused at construction with the memory they would need
(:mod:`strategic_feedback_env.batched_memory`). On the ``same_step`` terminal step of the
reward-report game ``infos["true_reward"]`` is the view ``infos["final_observation"][..., :K]``
(the same numbers: the old rewards are let go before the new episode draws its own), and the
new episode's rewards are drawn straight into the reward columns of its first observation
(:attr:`BatchedRewardReport.rewards` draws them again, the same numbers, when the next round
reads them, so nothing the caller writes into an observation reaches the env's state). So at
``n = 5, K = 10`` every step of both modes holds at most 8 ``(B, n, K)`` arrays in all, the
issue's target (``same_step``: a round 7.5, the terminal step 7.7 on numpy, 7.8 and 7.6 on
torch; ``next_step``: the terminal step 6.3 and 7.1, its reset step 4.6 and 4.5; ``sfe bench``).
``next_step`` spreads the final and the new observation over two steps, at the price of one
step per episode that plays no round.

Performance: ``B = 4096, n = 5, K = 10`` (affine maximizer, KL) runs at about 2.4-2.75 million
labeler-steps/s on one core (``sfe bench``). The short-axis reductions use the bit-identical
column forms of :mod:`strategic_feedback_env.mechanisms._ops`, and the mechanism and the rules write into fresh
temporaries they own (``NumpyOps.iadd``/``imul``/``iexp``, ``normalise(..., overwrite=True)``), so
few large arrays are allocated per step. With ``redraw_types="round"`` the info arrays
``true_reward``/``true_size`` are the round's type arrays themselves (the env draws new ones
before ``step`` returns), not copies.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from strategic_feedback_env.mechanisms._ops import NumpyOps, sum_last, torch_ops
from strategic_feedback_env.mechanisms.validation import check_positive_int, clip_to_box

from .batched_memory import check_backend, check_memory, deviation_profiles
from .labeler_game import require_reset
from .online_feedback.online_feedback import OnlineFeedbackEnv, OnlineFeedbackRounds
from .preference_report import rules as pr_rules
from .preference_report.preference_report import PreferenceReportEnv, PreferenceReportRounds, check_labels
from .reward_report import rules as rr_rules
from .reward_report.reward_report import RewardReportEnv, RewardReportRounds

__all__ = ["BatchedLabelerGame", "BatchedOnlineFeedback", "BatchedPreferenceReport", "BatchedRewardReport", "make_batched"]


AUTORESET_MODES = ("same_step", "next_step")


def check_autoreset(autoreset) -> str:
    """``autoreset`` checked: one of :data:`AUTORESET_MODES` (see :func:`make_batched`)."""
    if not isinstance(autoreset, str) or autoreset not in AUTORESET_MODES:
        raise ValueError(f"autoreset must be one of {AUTORESET_MODES}, got {autoreset!r}")
    return autoreset


def _batched_box(single, batch_shape) -> spaces.Box:
    """``Box`` of shape ``batch_shape + single.shape`` whose bounds are read-only broadcast views
    of ``single``'s (a plain ``Box`` would hold four full-size bound arrays)."""
    box = spaces.Box(single.low, single.high, dtype=single.dtype)
    box._shape = shape = (*batch_shape, *single.shape)
    for name in ("low", "high", "bounded_below", "bounded_above"):
        setattr(box, name, np.broadcast_to(getattr(box, name), shape))
    return box


class BatchedLabelerGame:
    """Shared machinery: clock, seeding, validation and auto-reset. Subclasses set ``scalar_class``
    and ``parsed_config`` (attributes copied from the scalar env that parsed the configuration),
    take ``_start_episode``, ``_draw_round`` and ``_observations`` from the game's ``*Rounds``
    mixin (the scalar env's own hooks, run with ``batch_shape = (B,)``) and implement
    ``_play_round`` and ``truthful_actions`` on ``(B, n, ...)`` arrays."""

    scalar_class = None
    parsed_config = ()  # the scalar env's parsed configuration attributes the game's hooks read
    labeler_info_keys = ()  # infos holding one number per labeler, (B, n)
    game_info_keys = ("round",)  # infos holding one number per game, (B,)

    def __init__(self, num_games=1, seed=None, backend="numpy", device=None, dtype=None, autoreset="same_step",
                 **config):
        self.autoreset = check_autoreset(autoreset)
        if "render_mode" in config and config["render_mode"] is not None:
            raise ValueError("batched games do not render; use the scalar env for rendering")
        config.pop("render_mode", None)
        self.num_games = check_positive_int(num_games, "num_games")
        self.config = dict(config)
        # The scalar env validates and parses the configuration (single source of truth).
        self.spec_env = self.scalar_class(**config)
        self.n = self.spec_env.n
        self.max_cycles = self.spec_env.max_cycles
        self.mechanism = self.spec_env.mechanism
        self.n_labelers, self.sybils = self.spec_env.n_labelers, self.spec_env.sybils
        for name in self.parsed_config:
            setattr(self, name, getattr(self.spec_env, name))
        self.possible_agents = list(self.spec_env.possible_agents)
        self.single_observation_space = self.spec_env.observation_space(self.possible_agents[0])
        self.single_action_space = self.spec_env.action_space(self.possible_agents[0])
        self.obs_dim = self.single_observation_space.shape[0]
        self.act_dim = self.single_action_space.shape[0]
        B, n = self.num_games, self.n
        self.observation_space = _batched_box(self.single_observation_space, (B, n))
        self.action_space = _batched_box(self.single_action_space, (B, n))
        self._action_shape = (B, n, self.act_dim)
        self._low = float(np.min(self.single_action_space.low))
        self._high = float(np.max(self.single_action_space.high))
        self.backend, self.device, self.dtype = check_backend(backend, device, dtype)
        if self.backend == "torch" and self.sybils is not None:
            raise ValueError("sybils (false-name identities) run on the numpy backend only; use backend='numpy'")
        check_memory(self.num_games, self.n, self.report_width, deviation_profiles(self.mechanism, self.n),
                     self.device)
        if self.backend == "torch":
            self.ops = torch_ops()
            for name in self.parsed_config:  # config arrays (reference, sizes, accuracies, ...) on the device
                value = getattr(self, name)
                if isinstance(value, np.ndarray):
                    setattr(self, name, self.ops.xp.as_tensor(value, dtype=self.dtype, device=self.device))
        self.np_random = self._generator(seed)
        self.round = 0
        self._started = False
        self._episode_over = False  # next_step mode: the last step ended the episode, the next one resets

    ops = NumpyOps  # the array namespace of the game's state; TorchOps with backend="torch"

    @property
    def batch_shape(self):
        return (self.num_games,)

    def _generator(self, seed):
        """numpy's ``Generator`` (as the scalar env seeds it) or a :class:`TorchRandom` on the device."""
        if self.backend == "torch":
            from .torch_random import TorchRandom

            return TorchRandom(seed, self.device, self.dtype)
        return seeding.np_random(seed)[0]

    # -- episode -----------------------------------------------------------------
    def reset(self, seed=None, options=None):
        """Start a new episode in every game; returns ``obs (B, n, obs_dim)``."""
        if seed is not None:
            self.np_random = self._generator(seed)
        obs = self._first_observation()
        self._started = True
        self._episode_over = False
        return obs

    def _new_episode(self):
        self.round = 0
        self._start_episode()
        self._draw_round()

    def _first_observation(self):
        """Start a new episode in every game and return its first observation."""
        self._new_episode()
        return self._observations()

    def check_actions(self, actions):
        """Validate ``actions`` ``(B, n, act_dim)``; return them as float64 (the torch backend: a
        tensor of the env's dtype on its device). Never mutates state."""
        if self.backend == "torch":
            return self._check_tensor_actions(actions)
        try:
            a = np.asarray(actions)
        except ValueError:  # ragged nested lists
            raise ValueError(f"actions must be an array of shape (B, n, act_dim) = {self._action_shape}") from None
        if a.dtype.kind not in "fiu":
            raise ValueError(f"actions must be numeric, got dtype {a.dtype}")
        if a.shape != self._action_shape:
            raise ValueError(f"actions must have shape (B, n, act_dim) = {self._action_shape}, got {a.shape}")
        a = a.astype(np.float64, copy=False)
        lo, hi = a.min(), a.max()  # NaN propagates; inf shows in min or max
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("actions contain NaN or inf")
        return clip_to_box(a, self._low, self._high, "actions", (lo, hi))

    def _check_tensor_actions(self, actions):
        """The torch backend's check: one device synchronisation (a single flag) per step."""
        xp = self.ops.xp
        try:
            a = xp.as_tensor(actions, device=self.device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"actions must be an array of shape (B, n, act_dim) = {self._action_shape}") from None
        if a.dtype == xp.bool or a.is_complex():
            raise ValueError(f"actions must be numeric, got dtype {a.dtype}")
        if tuple(a.shape) != self._action_shape:
            raise ValueError(f"actions must have shape (B, n, act_dim) = {self._action_shape}, got {tuple(a.shape)}")
        a = a.to(self.dtype)
        if not bool(((a >= self._low) & (a <= self._high)).all()):  # False for NaN
            if not bool(xp.isfinite(a).all()):
                raise ValueError("actions contain NaN or inf")
            return clip_to_box(a, self._low, self._high, "actions")
        return a

    def step(self, actions):
        """Play one round in every game; see the module docstring for the return values."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = self.check_actions(actions)
        if self._episode_over:
            return self._reset_step()
        rewards, infos = self._play_round(a)
        self.round += 1
        done = self.round >= self.max_cycles
        if not done:
            self._draw_round()
        obs = self._observations()
        infos["round"] = self._round_numbers()
        if done and self.autoreset == "same_step":
            infos["final_observation"] = obs
            self._end_episode(infos, obs)
            obs = self._first_observation()
        self._episode_over = done and self.autoreset == "next_step"
        B = self.num_games
        return obs, rewards, self.ops.bool_full((B,), done, like=obs), self.ops.bool_full((B,), False, like=obs), infos

    def _reset_step(self):
        """``autoreset="next_step"``, the step after an episode's last: every game starts its next
        episode (the same draws as ``same_step``'s reset); reward 0, both flags ``False``, the
        infos of ``reset()`` (none)."""
        self._episode_over = False
        obs = self._first_observation()
        B = self.num_games
        no = self.ops.bool_full((B,), False, like=obs)
        return obs, self.ops.zeros((B, self.n), like=obs), no, self.ops.copy(no), {}

    def _round_numbers(self):
        """``(B,)`` integers: the round just played."""
        if self.backend == "torch":
            return self.ops.xp.full((self.num_games,), self.round, device=self.device)
        return np.full(self.num_games, self.round)

    def scalar_infos(self, infos) -> dict:
        """The infos that are one number per labeler, each as a ``(B, n)`` array (a game's number
        repeated for its labelers); chosen by key, as the vector adapters need them."""
        out = {k: infos[k] for k in self.labeler_info_keys}
        shape = (self.num_games, self.n)
        out.update((k, self.ops.xp.broadcast_to(infos[k][:, None], shape)) for k in self.game_info_keys)
        return out

    def close(self):
        pass

    # -- hooks ---------------------------------------------------------------------
    def _end_episode(self, infos, final_observation):
        """Before the terminal step's reset: let go of the episode's state that ``infos`` or
        ``final_observation`` already hold, so the new episode's draws do not add to it."""

    def _start_episode(self):
        raise NotImplementedError

    def _draw_round(self):
        raise NotImplementedError

    def _observations(self):
        raise NotImplementedError

    def _play_round(self, actions):
        raise NotImplementedError

    def truthful_actions(self) -> np.ndarray:
        """``(B, n, act_dim)``: every labeler's truthful action this round."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(num_games={self.num_games}, n={self.n}, {self.config})"


class BatchedRewardReport(RewardReportRounds, BatchedLabelerGame):
    """``B`` games of ``reward_report_v0`` (same keyword arguments as ``RewardReportEnv``).

    Infos (arrays): per labeler ``(B, n)``: ``valuation``, ``payment``, ``utility``,
    ``truthful_utility``, ``gain``, ``reported_size``, ``true_size``; ``report`` and
    ``true_reward`` ``(B, n, K)`` (on the last round a view of ``final_observation``); shared
    ``social_welfare``, ``total_payment`` ``(B,)`` and ``policy`` ``(B, K)``; ``round`` ``(B,)``;
    ``final_observation`` on the last round.
    """

    scalar_class = RewardReportEnv

    parsed_config = ("K", "max_size", "report_size", "normalization", "reward_distribution", "dirichlet_alpha",
                     "redraw_types", "input_noise", "reference", "fixed_sizes", "layout")
    labeler_info_keys = ("valuation", "payment", "utility", "truthful_utility", "gain", "reported_size", "true_size")
    game_info_keys = ("social_welfare", "total_payment", "round")

    @property
    def report_width(self):
        """``K + 2``: the ``(B, n, K)`` reports and two columns' worth for the dozen per-labeler
        ``(B, n)`` infos, which dominate at small ``K`` (the memory unit of ``batched_memory``)."""
        return self.K + 2

    _rewards = None
    _rewards_start = None  # the generator's state an episode's first rewards were drawn from, until read
    _rewards_into = None  # where the next draw of types puts the rewards (once)

    @property
    def rewards(self):
        """The labelers' true rewards ``(B, n, K)``. An episode's first are drawn straight into its
        first observation's reward columns and held nowhere else; the first read draws them again
        (the same numbers) from the generator state they were drawn from, which is put back after."""
        if self._rewards_start is not None:
            rng = self.np_random.bit_generator
            now, rng.state = rng.state, self._rewards_start
            self._draw_types(out=self.ops.empty((self.num_games, self.n, self.K), like=self.reference))
            rng.state = now
        return self._rewards

    @rewards.setter
    def rewards(self, value):
        self._rewards, self._rewards_start = value, None

    def _draw_types(self, out=None):
        """The game's draw; the one ``_first_observation`` aims at its observation leaves the rewards
        there and records the generator's state they were drawn from."""
        into, self._rewards_into = self._rewards_into, None
        if into is None:
            return super()._draw_types(out)
        start = self.np_random.bit_generator.state
        super()._draw_types(out=into)
        self.rewards = None
        self._rewards_start = start

    def _first_observation(self):
        """The new episode's first observation, its rewards drawn into it (see ``rewards``): the
        terminal step of ``autoreset="same_step"`` holds one ``(B, n, K)`` array less. Sybil
        identities, whose rewards are their owners' expanded, take the general path."""
        if self.sybils is not None:
            return super()._first_observation()
        obs = self.ops.empty((self.num_games, self.n, self.obs_dim), like=self.reference)
        self._rewards_into = obs[..., self.layout["reward"]]
        self._new_episode()
        return rr_rules.fill_observation(obs, self.sizes, self.max_size, self.round / self.max_cycles,
                                         self.last_policy)

    def truthful_actions(self):
        require_reset(self._started, "truthful_actions()")
        return rr_rules.truthful_actions(self.rewards, self.sizes, self.max_size, self.report_size)

    def _play_round(self, actions):
        reports, reported_sizes, res = rr_rules.play_round(self, actions)
        self.last_policy = res["policy"]
        infos = {k: res[k] for k in ("valuation", "payment", "utility", "truthful_utility", "gain",
                                     "social_welfare", "total_payment")}
        # Copies where the array is (or may be) env state, so callers cannot alias it. With
        # redraw_types="round", and on an episode's last round, the types are replaced by fresh
        # arrays before the env plays again (the next round or episode draws new ones: before
        # step() returns, or in autoreset="next_step" mode at the reset step, until which only
        # truthful_actions() reads them), so this round's arrays are handed over as they are.
        last = self.round + 1 >= self.max_cycles  # the policy is only observed before the new episode replaces it
        handover = self.redraw_types == "round" or last
        ops = self.ops
        infos.update(policy=res["policy"] if last else ops.copy(res["policy"]), report=reports,
                     reported_size=ops.copy(ops.xp.broadcast_to(reported_sizes, (self.num_games, self.n))),
                     true_reward=self.rewards if handover else ops.copy(self.rewards),
                     true_size=self.sizes if handover else ops.copy(self.sizes))
        return res["utility"], infos

    def _end_episode(self, infos, final_observation):
        """``true_reward`` becomes the view ``final_observation[..., :K]`` of the same numbers, so the
        old rewards are freed before the new episode draws its own (one ``(B, n, K)`` array less)."""
        infos["true_reward"] = final_observation[..., self.layout["reward"]]
        self.rewards = None


class BatchedOnlineFeedback(OnlineFeedbackRounds, BatchedLabelerGame):
    """``B`` games of ``online_feedback_v0`` (same keyword arguments as ``OnlineFeedbackEnv``).

    Infos (arrays): per labeler ``(B, n)``: ``valuation``, ``payment``, ``utility``,
    ``truthful_utility``, ``gain``, ``weight``, ``report``, ``signal``, ``target``; shared
    ``(B,)``: ``aggregate``, ``y``, ``q``, ``aggregate_loss``, ``regret``, ``social_welfare``;
    ``weights`` ``(B, n)``; ``round`` ``(B,)``; ``final_observation`` on the last round.
    """

    scalar_class = OnlineFeedbackEnv

    parsed_config = ("accuracies", "biases", "outcome_model", "layout")
    labeler_info_keys = ("valuation", "payment", "utility", "truthful_utility", "gain", "weight", "report", "signal",
                         "target")
    game_info_keys = ("aggregate", "y", "q", "aggregate_loss", "regret", "social_welfare", "round")

    report_width = 6  # the observations (B, n, 6) are the game's widest arrays (batched_memory)

    def truthful_actions(self):
        require_reset(self._started, "truthful_actions()")
        return self.ops.copy(self.signals[..., None])

    def _play_round(self, actions):
        x = actions[..., 0]
        res = self._resolve(x)
        infos = {k: res[k] for k in ("valuation", "payment", "utility", "truthful_utility", "gain", "weight",
                                     "aggregate", "aggregate_loss")}
        copy = self.ops.copy
        infos.update(
            report=x, signal=copy(self.signals), target=copy(self.targets), weights=copy(self.weights),
            y=copy(self.y), q=copy(self.q),
            regret=self.aggregate_loss_sum - self.ops.amin_last(self.labeler_loss_sums)[..., 0],
            social_welfare=sum_last(res["utility"]),
        )
        return res["utility"], infos


class BatchedPreferenceReport(PreferenceReportRounds, BatchedLabelerGame):
    """``B`` games of ``preference_report_v0`` (same keyword arguments as ``PreferenceReportEnv``).

    Infos (arrays): per labeler ``(B, n)``: ``valuation``, ``payment``, ``utility``,
    ``truthful_utility``, ``gain``, ``true_size``; ``report`` ``(B, n, m)``; ``fitted_reward`` and
    ``true_reward`` ``(B, n, K)``; shared ``social_welfare``, ``total_payment`` ``(B,)`` and
    ``policy`` ``(B, K)``; ``round`` ``(B,)``; ``final_observation`` on the last round.
    """

    scalar_class = PreferenceReportEnv

    parsed_config = ("K", "m", "max_size", "normalization", "reward_distribution", "dirichlet_alpha", "redraw_types",
                     "reference", "fixed_sizes", "report", "temperature", "reward_model", "ridge", "clip", "layout")
    labeler_info_keys = ("valuation", "payment", "utility", "truthful_utility", "gain", "true_size")
    game_info_keys = ("social_welfare", "total_payment", "round")

    def __init__(self, num_games=1, seed=None, backend="numpy", device=None, dtype=None, autoreset="same_step",
                 **config):
        if backend != "numpy":  # the pair draws and the Bradley-Terry fits are numpy code
            raise ValueError(f"preference_report_v0 runs on backend='numpy' only, got backend={backend!r}")
        super().__init__(num_games, seed, backend, device, dtype, autoreset, **config)

    @property
    def report_width(self):
        """``K (K + c) + m + 2``, ``c`` the comparisons in one fit (``m``; ``n m`` pooled, one fit
        per deviation profile): a labeler's fit holds the ``(c, K)`` incidence and the ``(K, K)``
        Newton system, which dominate, plus the ``(B, n, m)`` reports and two columns for the
        per-labeler infos (the memory unit of ``batched_memory``)."""
        comparisons = self.m if self.reward_model == "per_labeler" else self.n * self.m
        return self.K * (self.K + comparisons) + self.m + 2

    def check_actions(self, actions) -> np.ndarray:
        a = super().check_actions(actions)
        if self.report == "label":
            check_labels(a)
        return a

    def truthful_actions(self):
        require_reset(self._started, "truthful_actions()")
        return self.truthful.copy()

    def _play_round(self, actions):
        fitted, res = pr_rules.play_round(self, actions)
        self.last_policy = res["policy"]
        infos = {k: res[k] for k in ("valuation", "payment", "utility", "truthful_utility", "gain",
                                     "social_welfare", "total_payment")}
        infos.update(policy=res["policy"].copy(), report=actions.copy(), fitted_reward=np.array(fitted),
                     true_reward=self.rewards.copy(), true_size=self.sizes.copy())
        return res["utility"], infos


BATCHED_GAMES = {"reward_report_v0": BatchedRewardReport, "online_feedback_v0": BatchedOnlineFeedback,
                 "preference_report_v0": BatchedPreferenceReport}


def make_batched(game: str, num_games: int = 1, seed=None, backend="numpy", device=None, dtype=None,
                 autoreset="same_step", **config) -> BatchedLabelerGame:
    """``make_batched("reward_report_v0", num_games=B, seed=0, **config)``; ``backend="torch"``
    (with ``device="cpu"``/``"cuda"``/..., ``dtype=torch.float64`` or ``torch.float32``) runs the
    same rules on torch tensors (see the module docstring).

    ``autoreset="same_step"`` (default): the step that plays an episode's last round starts the
    next episode at once, returns its first observation and the final one in
    ``infos["final_observation"]``. ``autoreset="next_step"`` (Gymnasium's vector default): that
    step returns the final observation as ``obs`` (``terminated`` set) and the next ``step()``
    ignores its actions (still checked) and returns the new episode's first observation, reward
    0, ``terminated = truncated = False`` and empty infos; it holds one observation less on the
    terminal step (see the module docstring, "Memory")."""
    if not isinstance(game, str) or game not in BATCHED_GAMES:
        raise ValueError(f"unknown game {game!r}; available: {', '.join(BATCHED_GAMES)}")
    return BATCHED_GAMES[game](num_games=num_games, seed=seed, backend=backend, device=device, dtype=dtype,
                               autoreset=autoreset, **config)


def require_same_step(game: BatchedLabelerGame, owner: str) -> None:
    """Adapters that read ``infos["final_observation"]`` drive their batched game in
    ``autoreset="same_step"`` mode; any other is refused (``ValueError``)."""
    if game.autoreset != "same_step":
        raise ValueError(f"autoreset: {owner} drives its batched game with autoreset='same_step', "
                         f"got autoreset={game.autoreset!r}")
