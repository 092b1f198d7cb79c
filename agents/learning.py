"""Learning labelers: stable-baselines3 (PPO, SAC) agents for both games.

* :class:`LearnedPolicy`: an SB3 model as a :class:`~strategic_feedback_env.agents.policies.LabelerPolicy`
  (``obs (..., obs_dim) -> action (..., act_dim)``, deterministic), saved as the SB3 zip plus a
  JSON sidecar (algo, game, :class:`GameSpec`, env config, seed, timesteps, versions, agent-id
  handling, action parameterisation) and loaded with checks.
* :func:`train_best_response`: one labeler learns, the others follow fixed policies (default
  truthful). The DSIC test with a learner that knows nothing of the mechanism.
* :func:`train_independent`: every labeler has its own model; iterated best response for a
  number of rounds (each labeler in turn trains against the others' current policies).
* :func:`train_shared`: parameter sharing, one model for all labelers, one-hot agent id in the
  observation (:class:`strategic_feedback_env.vector.ParameterSharingVecEnv`).

**Action parameterisation.** With ``action_mode="residual"`` (the default) the SB3 model acts in
``Box(-1, 1, act_dim)`` and its action ``u`` is a deviation from the truthful report:

* reward-report game: report ``r_i * exp(action_scale * u)`` (then rescaled by its max, which
  the env's normalisation undoes), so ``u = 0`` is truth-telling and ``u = c (r_i - mean)``
  sharpens the report toward the top outcome (the Thm 4.2 direction); with
  ``report_size=True`` the size entry is ``clip(truthful encoding + u_K, 0, 1)``;
* online game: report ``clip(s_i + u, 0, 1)``;
* preference game: report ``clip(t + u, 0, 1)`` around the truthful probabilities ``t``; with
  ``report="label"`` the model acts in ``MultiBinary(m)`` and bit ``u_k = 1`` flips the truthful
  label of pair ``k`` (PPO only: SAC needs a Box).

SB3 initialises the action head near zero, so training starts at truth-telling and only a
profitable deviation moves it. ``action_mode="sharpen"`` adds one entry ``u_s`` to the model's
action (reward-report game): report ``r_i^s * exp(action_scale * u)`` with
``s = exp(4 u_s)``, so the [SUN] Thm 4.2 direction (sharpen toward the top outcome, up to a
near one-hot report) is one coordinate instead of an argmax the network must compute; every
report the residual mode can make is still reachable (``u_s = 0``). ``action_mode="direct"`` uses the env's own ``Box(0, 1)``
action; it starts near the all-zero action (the uniform report, far from truthful: mean gain
about -0.6 in the first rollouts of the test game) and ends lower than residual with
``K = 10`` (measured under ``sw_max``, lam 0.1, n = 5, 10k PPO steps: gain 0.085 vs 0.110 per
round; with ``K = 3`` both reach about 0.30).

**What the model sees.** ``observation="full"`` (the default): the game's observation.
``observation="type"`` (reward-report game): the labeler's own type only, its reward and size
columns; the round and the last policy are zeroed before the model reads them (the
observation keeps its shape). With types redrawn every round neither carries information about
this round's others, and a network that must learn to ignore 11 of 22 inputs from 20 000 noisy
rewards learns the rest worse (measured under mirror ascent ``T = 3``: experiments/README.md §8).

**Why these defaults.** In the reward-report game types are redrawn every round and the
reward is the round's utility, so the best response is a one-step (bandit) problem: PPO uses
``gamma = 0`` and short rollouts; SAC uses ``gamma = 0``. The online game carries weights over
rounds, so ``gamma`` there defaults to 0.9.

Vectorised envs: :class:`strategic_feedback_env.vector.SingleLabelerVecEnv` (best response,
independent learners, evaluation) and :class:`~strategic_feedback_env.vector.ParameterSharingVecEnv`
(parameter sharing), both on the batched games (seeded).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import math
import os
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnvWrapper

import strategic_feedback_env
from strategic_feedback_env.experiments.results import atomic_write_bytes, package_versions, to_json
from strategic_feedback_env.mechanisms.validation import check_number, check_positive_int
from strategic_feedback_env.labeler_game import agent_index as labeler_index
from strategic_feedback_env.preference_report.rules import observation_layout as preference_layout
from strategic_feedback_env.reward_report import rules
from strategic_feedback_env.reward_report.reward_report import RewardReportEnv
from strategic_feedback_env.single_agent import policy_callable
from strategic_feedback_env.vector import ParameterSharingVecEnv, SingleLabelerVecEnv

from .policies import GameSpec, LabelerPolicy, spec_of

ALGOS = {"ppo": PPO, "sac": SAC}
ACTION_MODES = ("residual", "direct", "sharpen")
REWARDS = ("utility", "gain")
OBSERVATIONS = ("full", "type")
FORMAT_VERSION = 1

__all__ = [
    "ACTION_MODES",
    "OBSERVATIONS",
    "ALGOS",
    "GainLogger",
    "LearnedPolicy",
    "default_algo_kwargs",
    "evaluate_gain",
    "train_best_response",
    "train_independent",
    "train_shared",
]


# ----------------------------------------------------------------------------------------------
# action parameterisation
# ----------------------------------------------------------------------------------------------
def to_env_action(raw, obs, spec: GameSpec, action_mode: str = "residual", action_scale: float = 5.0):
    """Map the model's action ``raw (..., act_dim)`` at game observation ``obs (..., >= obs_dim)``
    to the env's action in ``[0, 1]^act_dim`` (see the module docstring)."""
    raw = np.asarray(raw, dtype=np.float64)
    if action_mode == "direct":
        return np.clip(raw, 0.0, 1.0)
    obs = np.asarray(obs, dtype=np.float64)[..., : spec.obs_dim]
    if spec.game == "preference_report_v0":
        truthful = obs[..., preference_layout(spec.K, spec.act_dim)["truthful"]]
        if spec.report == "label":
            return np.abs(truthful - (raw > 0.5))
        return np.clip(truthful + np.clip(raw, -1.0, 1.0), 0.0, 1.0)
    u = np.clip(raw, -1.0, 1.0)
    if spec.game == "online_feedback_v0":
        return np.clip(obs[..., 0:1] + u[..., 0:1], 0.0, 1.0)
    K = spec.K
    r = obs[..., :K]
    if action_mode == "sharpen":  # r^s exp(scale u), s = exp(SHARPEN_RANGE u_last), in log space
        with np.errstate(divide="ignore"):
            log_v = np.exp(SHARPEN_RANGE * u[..., -1:]) * np.log(r) + action_scale * u[..., :K]
        top = log_v.max(-1, keepdims=True)
        v = np.exp(log_v - np.where(np.isfinite(top), top, 0.0))
    else:
        v = r * np.exp(action_scale * u[..., :K])
    m = v.max(-1, keepdims=True)
    report = np.where(m > 0, v / np.where(m > 0, m, 1.0), 1.0)
    report = np.clip(report, 0.0, 1.0)
    if not spec.report_size:
        return report
    w = obs[..., K] * spec.max_size
    encoded = rules.encode_size(np.clip(w, 1.0, spec.max_size), spec.max_size)
    size = np.clip(encoded + u[..., K], 0.0, 1.0)
    return np.concatenate([report, size[..., None]], axis=-1)


SHARPEN_RANGE = 4.0  # the sharpening exponent s ranges over [e^-4, e^4]


def hidden_columns(spec: GameSpec, observation: str):
    """The observation columns zeroed before the model reads them (module docstring, "What the
    model sees"): ``None`` for ``"full"``; for ``"type"`` the reward-report game's round and last
    policy. Refuses (``ValueError``) an unknown ``observation`` or ``"type"`` in another game."""
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    if observation == "full":
        return None
    if spec.game != "reward_report_v0":
        raise ValueError(f"observation='type' applies to the reward-report game (the labeler's reward and size "
                         f"columns), not to {spec.game}")
    layout = rules.observation_layout(spec.K)
    return np.r_[layout["round"], layout["last_policy"]]


def hide_columns(obs, columns) -> np.ndarray:
    """A copy of ``obs (..., d)`` with ``columns`` (from :func:`hidden_columns`) zeroed."""
    obs = np.array(obs, dtype=np.float64)
    obs[..., columns] = 0.0
    return obs


def model_action_shape(env_shape, spec: GameSpec, action_mode: str) -> tuple:
    """The SB3 model's action shape: the env's, plus the sharpening entry in ``"sharpen"`` mode
    (reward-report game)."""
    extra = action_mode == "sharpen" and spec.game == "reward_report_v0"
    return (env_shape[0] + 1,) if extra else tuple(env_shape)


class _GainReward(VecEnvWrapper):
    """VecEnv wrapper: the learner's reward is its step ``info["gain"]`` (utility minus the
    utility of reporting its type with the others' reports fixed) instead of its utility. The
    subtracted term does not depend on its own action, so the best response is the same; it is
    a control variate that removes the variance of the types (one extra mechanism query per
    step, a black-box counterfactual, no knowledge of the rule)."""

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, np.array([info["gain"] for info in infos], dtype=np.float32), dones, infos


class _HideColumns(VecEnvWrapper):
    """VecEnv wrapper: the observation with ``columns`` zeroed (:func:`hidden_columns`)."""

    def __init__(self, venv, columns):
        super().__init__(venv)
        self.columns = columns

    def reset(self):
        return hide_columns(self.venv.reset(), self.columns)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        return hide_columns(obs, self.columns), rewards, dones, infos


class _ActionTransform(VecEnvWrapper):
    """VecEnv wrapper: the model acts in ``Box(-1, 1)`` (residual) and actions are mapped to the
    env's box with :func:`to_env_action` at the slot's current observation."""

    def __init__(self, venv, spec, action_mode, action_scale):
        self.spec, self.action_mode, self.action_scale = spec, action_mode, float(action_scale)
        shape = model_action_shape(venv.action_space.shape, spec, action_mode)
        box = action_mode != "direct" and isinstance(venv.action_space, spaces.Box)  # labels stay binary
        action_space = spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32) if box else None
        super().__init__(venv, action_space=action_space)
        self._obs = None

    def reset(self):
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions):
        self.venv.step_async(to_env_action(actions, self._obs, self.spec, self.action_mode, self.action_scale))

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs = obs
        return obs, rewards, dones, infos


# ----------------------------------------------------------------------------------------------
# the policy
# ----------------------------------------------------------------------------------------------
class LearnedPolicy(LabelerPolicy):
    """An SB3 model (PPO or SAC) playing one game as a labeler policy (deterministic actions).

    Parameters
    ----------
    spec : GameSpec
        The game the model was trained on (``spec_of(env)``).
    model : PPO or SAC
    algo : "ppo" or "sac"
    action_mode, action_scale : see the module docstring (how model actions become env actions)
    observation : "full" or "type": what the model sees (module docstring)
    n_agents : int or None
        Set for a parameter-sharing model: a one-hot agent id of length ``n_agents`` is appended
        to the observation. ``agent_index`` (int or ``"labeler_i"``) is the default id used by
        ``__call__``; :meth:`for_agent` returns a copy bound to one labeler.
    metadata : dict
        Training record written to the sidecar (env config, seed, timesteps, ...).
    """

    def __init__(self, spec, model, algo="ppo", action_mode="residual", action_scale=5.0, n_agents=None,
                 agent_index=None, metadata=None, observation="full"):
        super().__init__(spec)
        if algo not in ALGOS:
            raise ValueError(f"algo must be one of {tuple(ALGOS)}, got {algo!r}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        self.model = model
        self.algo = algo
        self.action_mode = action_mode
        self.action_scale = float(action_scale)
        self._hidden = hidden_columns(spec, observation)
        self.observation = observation
        self.n_agents = None if n_agents is None else int(n_agents)
        self.agent_index = None if agent_index is None else labeler_index(agent_index, self.n_agents)
        self.metadata = dict(metadata or {})
        expected = spec.obs_dim + (self.n_agents or 0)
        got = model.observation_space.shape
        if got != (expected,):
            raise ValueError(f"model observations have shape {got}, but the spec (+ agent id) needs ({expected},)")
        expected = model_action_shape((spec.act_dim,), spec, action_mode)
        if model.action_space.shape != expected:
            raise ValueError(f"model actions have shape {model.action_space.shape}, the spec needs {expected}")

    def __repr__(self) -> str:
        return (f"LearnedPolicy(algo={self.algo!r}, game={self.spec.game!r}, K={self.spec.K}, "
                f"action_mode={self.action_mode!r}, observation={self.observation!r}, n_agents={self.n_agents}, "
                f"agent_index={self.agent_index})")

    # -- acting ------------------------------------------------------------------------------
    def model_input(self, obs, agent_index=None) -> np.ndarray:
        """Observations ``(..., obs_dim)`` -> model input (one-hot id appended if shared; the
        columns ``observation`` hides zeroed)."""
        x = self._with_agent_id(np.asarray(obs, dtype=np.float64), agent_index)
        return x if self._hidden is None else hide_columns(x, self._hidden)

    def _with_agent_id(self, obs, agent_index):
        d = self.spec.obs_dim
        if self.n_agents is None:
            if obs.shape[-1:] != (d,):
                raise ValueError(f"observations must have shape (..., {d}), got {obs.shape}")
            return obs
        if obs.shape[-1:] == (d + self.n_agents,):  # already carries the id (ParameterSharingVecEnv)
            return obs
        if obs.shape[-1:] != (d,):
            raise ValueError(f"observations must have shape (..., {d}) or (..., {d + self.n_agents}), got {obs.shape}")
        idx = self.agent_index if agent_index is None else agent_index
        if idx is None:
            raise ValueError("a parameter-sharing policy needs agent_index (or use for_agent(agent))")
        idx = np.asarray(idx)
        if idx.dtype.kind in "OUS":
            idx = np.vectorize(lambda a: labeler_index(a, self.n_agents))(idx)
        idx = np.broadcast_to(idx.astype(int), obs.shape[:-1])
        if np.any(idx < 0) or np.any(idx >= self.n_agents):
            raise ValueError(f"agent_index must be in 0..{self.n_agents - 1}, got {agent_index!r}")
        onehot = np.eye(self.n_agents)[idx]
        return np.concatenate([obs, onehot], axis=-1)

    def __call__(self, obs, agent_index=None) -> np.ndarray:
        x = self.model_input(obs, agent_index)
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        with torch_threads():
            raw, _ = self.model.predict(flat, deterministic=True)
        raw = np.asarray(raw, dtype=np.float64).reshape(*lead, -1)
        return to_env_action(raw, x, self.spec, self.action_mode, self.action_scale)

    def act(self, obs):
        return self(obs)

    def for_agent(self, agent) -> "LearnedPolicy":
        """A shallow copy bound to ``agent`` (int or ``"labeler_i"``): same model, its id appended."""
        if self.n_agents is None:
            return self
        bound = copy.copy(self)
        bound.agent_index = labeler_index(agent, self.n_agents)
        return bound

    # -- persistence -------------------------------------------------------------------------
    @staticmethod
    def _paths(path):
        p = Path(os.fspath(path))
        zip_path = p if p.suffix == ".zip" else p.with_name(p.name + ".zip")
        return zip_path, zip_path.with_suffix(".json")

    def sidecar(self) -> dict:
        return {
            "format": "strategic_feedback_env.LearnedPolicy",
            "format_version": FORMAT_VERSION,
            "algo": self.algo,
            "game": self.spec.game,
            "spec": asdict(self.spec),
            "action_mode": self.action_mode,
            "action_scale": self.action_scale,
            "observation": self.observation,
            "agent_id": {"one_hot": self.n_agents is not None, "n_agents": self.n_agents,
                         "agent_index": self.agent_index},
            "env_config": self.metadata.get("env_config"),
            "seed": self.metadata.get("seed"),
            "timesteps": self.metadata.get("timesteps", int(getattr(self.model, "num_timesteps", 0))),
            "focal_agent": self.metadata.get("focal_agent"),
            "algo_kwargs": self.metadata.get("algo_kwargs"),
            "versions": package_versions(),
        }

    def save(self, path) -> Path:
        """Write ``<path>.zip`` (the SB3 model) and ``<path>.json`` (the sidecar); returns the zip path."""
        zip_path, json_path = self._paths(path)
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        # Both files are written to temporary names and renamed into place (never half-written).
        buffer = io.BytesIO()
        self.model.save(buffer)
        atomic_write_bytes(zip_path, buffer.getvalue())
        atomic_write_bytes(json_path, to_json(self.sidecar(), sort_keys=False).encode())
        return zip_path

    @classmethod
    def load(cls, path, expected_spec: GameSpec | None = None, device="cpu") -> "LearnedPolicy":
        """Load a policy saved by :meth:`save`.

        Raises ``ValueError`` if the zip or the sidecar is missing or corrupt, if they do not
        match each other, or if ``expected_spec`` (e.g. ``spec_of(env)`` of the env it is
        meant for) differs from the saved spec.
        """
        zip_path, json_path = cls._paths(path)
        if not zip_path.is_file():
            raise ValueError(f"no saved model at {zip_path}")
        if not json_path.is_file():
            raise ValueError(f"missing sidecar {json_path} for {zip_path}")
        try:
            meta = json.loads(json_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"corrupt sidecar {json_path}: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != "strategic_feedback_env.LearnedPolicy":
            raise ValueError(f"{json_path} is not a LearnedPolicy sidecar")
        try:
            spec = GameSpec(**meta["spec"])
            algo = meta["algo"]
            agent_id = meta["agent_id"]
            action_mode, action_scale = meta["action_mode"], float(meta["action_scale"])
            observation = meta.get("observation", "full")  # sidecars before the option: the full observation
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"corrupt sidecar {json_path}: missing or bad field ({e!r})") from None
        if algo not in ALGOS:
            raise ValueError(f"sidecar {json_path} names unknown algo {algo!r}")
        if expected_spec is not None and spec != expected_spec:
            raise ValueError(f"saved policy was trained for {spec}, not for {expected_spec}")
        if not zipfile.is_zipfile(zip_path):
            raise ValueError(f"{zip_path} is not a zip file (corrupt or not an SB3 model)")
        try:
            model = ALGOS[algo].load(str(zip_path), device=device)
        except Exception as e:  # SB3 raises many types on corrupt archives
            raise ValueError(f"cannot load {algo} model from {zip_path}: {type(e).__name__}: {e}") from None
        n_agents = agent_id.get("n_agents") if agent_id.get("one_hot") else None
        metadata = {k: meta.get(k) for k in ("env_config", "seed", "timesteps", "focal_agent", "algo_kwargs")}
        metadata["versions"] = meta.get("versions")
        try:
            return cls(spec, model, algo=algo, action_mode=action_mode, action_scale=action_scale,
                       n_agents=n_agents, agent_index=agent_id.get("agent_index"), metadata=metadata,
                       observation=observation)
        except ValueError as e:
            raise ValueError(f"{zip_path} does not match its sidecar: {e}") from None


# ----------------------------------------------------------------------------------------------
# callbacks
# ----------------------------------------------------------------------------------------------
class GainLogger(BaseCallback):
    """Records the env's ``info["gain"]`` (and utility) per rollout; logs ``rollout/gain_mean``
    and ``rollout/utility_mean`` to SB3's logger (TensorBoard when a folder is given).

    ``history`` is a list of ``(num_timesteps, gain_mean, utility_mean)``.
    """

    def __init__(self, every: int = 1):
        super().__init__()
        self.every = max(1, int(every))
        self.history = []
        self._gain, self._util = [], []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if "gain" in info:
                self._gain.append(info["gain"])
                self._util.append(info.get("utility", np.nan))
        if len(self._gain) >= 256 * self.every and self.model.__class__ is SAC:
            self._flush()
        return True

    def _on_rollout_end(self) -> None:
        if self.model.__class__ is not SAC:
            self._flush()

    def _on_training_end(self) -> None:
        self._flush()

    def _flush(self):
        if not self._gain:
            return
        g, u = float(np.mean(self._gain)), float(np.nanmean(self._util))
        self.history.append((int(self.num_timesteps), g, u))
        self.logger.record("rollout/gain_mean", g)
        self.logger.record("rollout/utility_mean", u)
        self._gain, self._util = [], []


# ----------------------------------------------------------------------------------------------
# defaults and env construction
# ----------------------------------------------------------------------------------------------
def default_algo_kwargs(algo: str, game: str = "reward_report_v0") -> dict:
    """Hyperparameters tuned to learn a misreport fast (one-step problem in the reward-report game)."""
    gamma = 0.0 if game in ("reward_report_v0", "preference_report_v0") else 0.9
    if algo == "ppo":
        return dict(learning_rate=1e-3, n_steps=32, batch_size=256, n_epochs=10, gamma=gamma, gae_lambda=0.95,
                    ent_coef=0.0, clip_range=0.2, policy_kwargs=dict(net_arch=[64, 64], log_std_init=-1.0))
    if algo == "sac":
        return dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=512, batch_size=256, tau=0.02,
                    gamma=gamma, train_freq=1, gradient_steps=1, ent_coef="auto",
                    policy_kwargs=dict(net_arch=[64, 64]))
    raise ValueError(f"algo must be one of {tuple(ALGOS)}, got {algo!r}")


def audit_defaults(game: str, algo: str = "ppo", timesteps=None, n_envs=None, env_config=None) -> dict:
    """How the DSIC audit's unilateral learners act (overridable per adversary).

    Reward-report game: ``action_mode="sharpen"`` (lifted PPO from 0.39 to 0.99 of the white-box
    gain under exact ``sw_max``). For PPO also ``action_scale=1``, ``reward="gain"``, a quiet
    report (initial log std -3.5 on the ``K`` report coordinates, -1.5 on the size entry, -2 on
    the sharpening entry), rollouts of ``timesteps / (20 n_envs)`` steps rounded to a power of
    two, at least 32 (about 20 updates whatever the budget: 128 for 20k steps and 8 envs), and,
    where ``env_config`` redraws the types every round (the default), ``observation="type"``:
    the best response under truncated training is a small, precise deviation (mostly the
    size), which exploration noise on the report and inputs that carry nothing (the round, the
    last policy) hide. Measured against the interim white box (n=5, K=10, 20k steps, five
    independent 20-episode audits pooled, 95% intervals; experiments/README.md §8): 0.923 ±
    0.013 of its gain under exact ``sw_max``, 0.99 ± 0.08 under mirror ascent ``T = 1`` and
    1.21 ± 0.23 at ``T = 3`` (with the full observation 0.73-0.87 at ``T = 3`` on three seeds;
    the old defaults reached -4.9 there)."""
    if game != "reward_report_v0":
        return {}
    if algo != "ppo":
        return {"action_mode": "sharpen"}
    steps = check_positive_int(DEFAULT_TIMESTEPS["ppo"] if timesteps is None else timesteps, "timesteps")
    envs = check_positive_int(DEFAULT_N_ENVS["ppo"] if n_envs is None else n_envs, "n_envs")
    default = inspect.signature(RewardReportEnv).parameters["redraw_types"].default
    redrawn = (env_config or {}).get("redraw_types", default) == "round"
    return {"action_mode": "sharpen", "action_scale": 1.0, "reward": "gain",
            "exploration": {"report": -3.5, "size": -1.5, "sharpen": -2.0},
            "algo_kwargs": {"n_steps": max(32, 2 ** round(math.log2(steps / (AUDIT_PPO_UPDATES * envs))))},
            **({"observation": "type"} if redrawn else {})}


AUDIT_PPO_UPDATES = 20


def with_audit_defaults(game: str, algo: str, options=None, env_config=None) -> dict:
    """The keyword arguments an audit learner trains with: :func:`audit_defaults` for its budget
    and game configuration overlaid with ``options``; dict-valued entries (``algo_kwargs``, ``exploration``) are merged
    key by key, so ``{"algo_kwargs": {"learning_rate": 3e-4}}`` keeps the default rollout length."""
    options = dict(options or {})
    defaults = audit_defaults(game, algo, options.get("timesteps"), options.get("n_envs"), env_config)
    merged = {**defaults, **options}
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(options.get(key), dict):
            merged[key] = {**value, **options[key]}
    return merged


DEFAULT_TIMESTEPS = {"ppo": 10_000, "sac": 5_000}
DEFAULT_N_ENVS = {"ppo": 8, "sac": 4}


@contextlib.contextmanager
def torch_threads(n=None):
    """Run torch with ``n`` intra-op threads (default ``TORCH_THREADS``), restoring the old number.

    The networks here are tiny: one thread is fastest, and on a loaded machine more threads make
    each backward pass tens of times slower (measured: 0.5 ms vs 38 ms per minibatch).
    """
    import torch

    n = TORCH_THREADS if n is None else int(n)
    old = torch.get_num_threads()
    if n > 0 and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0 and n != old:
            torch.set_num_threads(old)


TORCH_THREADS = 1


def _spec_for(game, env_config):
    return spec_of(strategic_feedback_env.make(game, **env_config))


def _build_model(algo, venv, seed, algo_kwargs, game, tensorboard_log, verbose):
    """The SB3 model (``algo`` already checked by ``_check_common``)."""
    kwargs = default_algo_kwargs(algo, game)
    kwargs.update(algo_kwargs or {})
    if algo == "ppo":  # a minibatch size that divides the rollout (no truncated minibatches)
        total = kwargs["n_steps"] * venv.num_envs
        size = min(kwargs["batch_size"], total)
        while total % size:
            size -= 1
        kwargs["batch_size"] = size
    model = ALGOS[algo]("MlpPolicy", venv, seed=seed, verbose=verbose, device="cpu",
                        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log), **kwargs)
    return model, kwargs


def set_exploration(model, spec: GameSpec, action_mode: str, exploration) -> None:
    """Set a PPO model's per-coordinate initial action log std (``exploration`` as in
    :func:`train_best_response`) in place."""
    import torch

    log_std = getattr(model.policy, "log_std", None)
    if log_std is None:
        raise ValueError("exploration needs a PPO model with Gaussian actions (a Box action space)")
    slots = {"report": slice(0, spec.K if spec.game == "reward_report_v0" else log_std.shape[0])}
    if spec.game == "reward_report_v0":
        if spec.report_size:
            slots["size"] = slice(spec.K, spec.K + 1)
        if action_mode == "sharpen":
            slots["sharpen"] = slice(log_std.shape[0] - 1, log_std.shape[0])
    values = exploration if isinstance(exploration, dict) else dict.fromkeys(slots, exploration)
    unknown = sorted(set(values) - set(slots))
    if unknown:
        raise ValueError(f"exploration: unknown coordinate group(s) {unknown}; this game and action mode have "
                         f"{sorted(slots)}")
    values = {key: check_number(value, f"exploration[{key!r}]") for key, value in values.items()}  # all, first
    with torch.no_grad():
        for key, value in values.items():
            log_std[slots[key]] = value


def _learn(model, timesteps, progress_bar, callback, tb_log_name, reset_num_timesteps=True):
    gains = GainLogger()
    cbs = [gains] + ([callback] if callback is not None else [])
    t0 = time.perf_counter()
    with torch_threads():
        model.learn(total_timesteps=int(timesteps), callback=CallbackList(cbs), progress_bar=progress_bar,
                    tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps)
    return gains.history, time.perf_counter() - t0


def _check_common(game, env_config, algo, action_mode):
    if game not in strategic_feedback_env.GAMES:
        raise ValueError(f"unknown game {game!r}; available: {', '.join(strategic_feedback_env.GAMES)}")
    if algo not in ALGOS:
        raise ValueError(f"algo must be one of {tuple(ALGOS)}, got {algo!r}")
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    config = dict(env_config or {})
    config.pop("render_mode", None)
    return config


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def train_best_response(game="reward_report_v0", env_config=None, algo="ppo", focal_agent="labeler_0",
                        other_policies=None, timesteps=None, seed=0, n_envs=None, tensorboard_log=None,
                        progress_bar=False, algo_kwargs=None, action_mode="residual", action_scale=5.0,
                        callback=None, verbose=0, model=None, reward="utility", exploration=None,
                        observation="full"):
    """Train ``focal_agent``'s best response against fixed ``other_policies`` (default truthful).

    Parameters
    ----------
    game, env_config : the game and its configuration (keyword arguments of the game)
    algo : "ppo" or "sac"
    focal_agent : "labeler_i" (or an index)
    other_policies : None (truthful), one policy for all others, or dict {agent: policy};
        policies are callables ``obs -> action`` or objects with ``predict`` (batched obs)
    timesteps : total env steps of the learner (default 10k PPO, 5k SAC)
    seed : seeds the model and the env: same seed, same learned actions
    n_envs : parallel games (default 8 PPO, 4 SAC)
    tensorboard_log : folder for TensorBoard logs (also logs ``rollout/gain_mean``)
    progress_bar : SB3's progress bar (tqdm + rich)
    algo_kwargs : overrides of :func:`default_algo_kwargs`
    action_mode, action_scale : action parameterisation (module docstring)
    callback : extra SB3 callback
    model : continue training this SB3 model (used by :func:`train_independent`)
    reward : "utility" (the env's reward) or "gain" (the step's gain over truth-telling: same
        best response, less variance; see :class:`_GainReward`)
    exploration : PPO's initial log standard deviation of the model's actions: a number for
        every coordinate, or a dict with any of ``"report"`` (the report coordinates),
        ``"size"`` and ``"sharpen"`` (those entries of the reward-report game's action; the
        others keep ``policy_kwargs["log_std_init"]``); see :func:`set_exploration`
    observation : "full" (default) or "type": the model sees only the labeler's own reward and
        size (reward-report game; module docstring, "What the model sees")

    Returns
    -------
    (LearnedPolicy, info)
        ``info`` has ``algo``, ``game``, ``env_config``, ``focal_agent``, ``seed``,
        ``timesteps``, ``n_envs``, ``algo_kwargs``, ``vec_env``, ``time_s`` and
        ``gain_history`` (``(timesteps, mean gain, mean utility)`` per rollout).
    """
    config = _check_common(game, env_config, algo, action_mode)
    spec = _spec_for(game, config)
    agents = strategic_feedback_env.make(game, **config).possible_agents
    focal = f"labeler_{labeler_index(focal_agent, len(agents), 'focal_agent')}"
    timesteps = check_positive_int(DEFAULT_TIMESTEPS[algo] if timesteps is None else timesteps, "timesteps")
    n_envs = check_positive_int(DEFAULT_N_ENVS[algo] if n_envs is None else n_envs, "n_envs")
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
    hidden = hidden_columns(spec, observation)
    venv = SingleLabelerVecEnv(game=game, num_envs=n_envs, focal_agent=focal, other_policies=other_policies,
                               seed=seed, **config)
    if reward == "gain":
        venv = _GainReward(venv)
    if hidden is not None:
        venv = _HideColumns(venv, hidden)
    venv = _ActionTransform(venv, spec, action_mode, action_scale)
    if exploration is not None and algo != "ppo":
        raise ValueError(f"exploration sets PPO's action log std; {algo} learns its own (got exploration={exploration!r})")
    if model is None:
        model, kwargs = _build_model(algo, venv, seed, algo_kwargs, game, tensorboard_log, verbose)
        if exploration is not None:
            set_exploration(model, spec, action_mode, exploration)
        reset = True
    else:
        model.set_env(venv)
        kwargs = dict(algo_kwargs or {})
        reset = False
    history, elapsed = _learn(model, timesteps, progress_bar, callback, f"{algo}_br_{focal}", reset)
    meta = dict(env_config=config, seed=seed, timesteps=int(model.num_timesteps), focal_agent=focal,
                algo_kwargs=kwargs, reward=reward, exploration=exploration, observation=observation)
    policy = LearnedPolicy(spec, model, algo, action_mode, action_scale, metadata=meta, observation=observation)
    info = dict(algo=algo, game=game, env_config=config, focal_agent=focal, seed=seed, timesteps=timesteps,
                n_envs=n_envs, algo_kwargs=kwargs, vec_env="SingleLabelerVecEnv", time_s=elapsed, gain_history=history)
    return policy, info


def train_independent(game="reward_report_v0", env_config=None, algo="ppo", rounds=2, timesteps=None, seed=0,
                      n_envs=None, tensorboard_log=None, progress_bar=False, algo_kwargs=None,
                      action_mode="residual", action_scale=5.0, verbose=0, return_info=False):
    """Independent learners by iterated best response.

    Each labeler has its own model. In each of ``rounds`` rounds, labelers in turn train for
    ``timesteps`` steps (default as in :func:`train_best_response`) against the others'
    *current* policies (truthful before their first turn); a labeler's model keeps learning
    across rounds. Seed of labeler ``i``: ``seed + i``.

    Returns dict ``agent -> LearnedPolicy`` (and a list of per-turn infos with ``return_info``).
    """
    config = _check_common(game, env_config, algo, action_mode)
    agents = list(strategic_feedback_env.make(game, **config).possible_agents)
    rounds = check_positive_int(rounds, "rounds")
    policies, infos = {}, []
    for r in range(rounds):
        for i, agent in enumerate(agents):
            others = {a: p for a, p in policies.items() if a != agent}
            current = policies.get(agent)
            tb = None if tensorboard_log is None else str(tensorboard_log)
            policy, info = train_best_response(
                game, config, algo, agent, others or None, timesteps, seed + i, n_envs, tb, progress_bar,
                algo_kwargs, action_mode, action_scale, verbose=verbose,
                model=None if current is None else current.model)
            info["round"] = r
            policies[agent] = policy
            infos.append(info)
    return (policies, infos) if return_info else policies


def train_shared(game="reward_report_v0", env_config=None, algo="ppo", timesteps=None, seed=0, n_envs=None,
                 tensorboard_log=None, progress_bar=False, algo_kwargs=None, action_mode="residual",
                 action_scale=5.0, callback=None, verbose=0):
    """Parameter sharing: one model plays every labeler (one-hot agent id in the observation).

    ``n_envs`` is the number of games (SB3 sees ``n_envs * n_labelers`` slots); ``timesteps``
    counts agent-steps. Returns ``(LearnedPolicy with n_agents set, info)``; use
    ``policy.for_agent("labeler_i")`` (or ``policy(obs, agent_index=i)``) to act as one labeler.
    """
    config = _check_common(game, env_config, algo, action_mode)
    spec = _spec_for(game, config)
    timesteps = check_positive_int(DEFAULT_TIMESTEPS[algo] if timesteps is None else timesteps, "timesteps")
    n_envs = check_positive_int((DEFAULT_N_ENVS[algo] // 2) if n_envs is None else n_envs, "n_envs")
    venv = ParameterSharingVecEnv(game=game, num_envs=n_envs, seed=seed, agent_id_in_obs=True, **config)
    n = venv.n
    venv = _ActionTransform(venv, spec, action_mode, action_scale)
    model, kwargs = _build_model(algo, venv, seed, algo_kwargs, game, tensorboard_log, verbose)
    history, elapsed = _learn(model, timesteps, progress_bar, callback, f"{algo}_shared")
    meta = dict(env_config=config, seed=seed, timesteps=int(model.num_timesteps), focal_agent=None,
                algo_kwargs=kwargs)
    policy = LearnedPolicy(spec, model, algo, action_mode, action_scale, n_agents=n, metadata=meta)
    info = dict(algo=algo, game=game, env_config=config, seed=seed, timesteps=timesteps, n_envs=n_envs,
                n_agents=n, algo_kwargs=kwargs, vec_env="ParameterSharingVecEnv", time_s=elapsed,
                gain_history=history)
    return policy, info


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------
def evaluate_gain(policy, game="reward_report_v0", env_config=None, focal_agent="labeler_0", other_policies=None,
                  episodes=200, seed=12345):
    """Mean and standard error of the focal labeler's per-episode gain (sum of ``info["gain"]``)
    when it plays ``policy`` and the others ``other_policies`` (default truthful), over
    ``episodes`` fresh episodes from ``seed`` (independent of training seeds).

    Returns dict ``mean``, ``stderr``, ``episodes``, ``utility`` (mean episode utility) and
    ``samples`` (per-episode gains).
    """
    config = _check_common(game, env_config, "ppo", "residual")
    env = strategic_feedback_env.make(game, **config)
    focal = f"labeler_{labeler_index(focal_agent, env.n, 'focal_agent')}"
    episodes = check_positive_int(episodes, "episodes")
    actor = policy_callable(policy, "policy")
    gains, utils = np.zeros(episodes), np.zeros(episodes)
    venv = SingleLabelerVecEnv(game=game, num_envs=episodes, focal_agent=focal,
                               other_policies=other_policies,
                               seed=seed, **config)
    obs = venv.reset()
    done = np.zeros(episodes, dtype=bool)
    while not done.all():
        obs, rewards, dones, infos = venv.step(np.asarray(actor(obs), dtype=np.float64))
        gains += [i["gain"] for i in infos]
        utils += rewards
        done |= dones
    venv.close()
    return dict(mean=float(gains.mean()), stderr=float(gains.std(ddof=1) / np.sqrt(episodes)) if episodes > 1 else
                float("inf"), episodes=episodes, utility=float(utils.mean()), samples=gains)
