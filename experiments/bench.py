"""Throughput benchmark (project issue "Performance"): ``run_bench(...)`` and ``format_bench(...)``.

Everything is measured in one process, so the ratios against PettingZoo's ``rps_v2`` (the
reference point of the issue) do not depend on the machine's speed or load:

* steps/s of our ``reward_report_v0`` ParallelEnv (n=5, K=10, affine_maximizer, defaults), its
  AEC form (``reward_report_v0.env()``), the batched env (``BatchedRewardReport``, B=4096,
  counted in labeler-steps/s), ``rps_v2.parallel_env()`` and, if importable,
  ``mpe2.simple_spread_v3``;
* SB3 PPO training throughput (agent-steps/s) on our :class:`ParameterSharingVecEnv` and on the
  ParallelEnv through SuperSuit (``pettingzoo_env_to_vec_env_v1`` +
  ``concat_vec_envs_v1(..., base_class="stable_baselines3")``; no PPO seed there, since
  ``ConcatVecEnv`` has no ``seed``), with 8 and with 64 games of 5 labelers, under the PPO
  settings of :data:`PPO_SETTINGS`. Both paths get the same settings and agent-steps, and each
  ratio is against SuperSuit's row with the same games and settings. The ratio depends on the
  settings because PPO's own gradient passes cost the same on both paths: the more gradient
  steps per sample, the less the env matters;
* scaling: time of one batched step (B=1, the mechanism plus the game rules) and of the
  mechanism alone (``affine_maximizer`` outcome + all unilateral counterfactuals) as ``n`` goes
  10 -> 10000 (K=10) and ``K`` goes 2 -> 10000 (n=5), with least-squares log-log slopes
  (all points, and the upper half where fixed per-call overhead no longer dominates);
* the torch backend, the native TorchRL env, peak memory and the torch scaling table
  (:mod:`strategic_feedback_env.experiments.bench_torch`).

Actions are drawn once before timing, so only the env is measured. ``steps`` for a
ParallelEnv is one joint step (a round); for the AEC env one agent's turn (``rounds/s`` is
also given); for the batched env one labeler in one game.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from .plotting import scaling_figure
from .stats import loglog_slope

__all__ = ["PPO_SETTINGS", "format_bench", "run_bench"]


def _log(progress, msg):
    if progress:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _timed(step, min_time, min_iters=3, sync=None):
    """Calls ``step()`` repeatedly for at least ``min_time`` seconds; returns (calls, seconds).
    ``sync()`` (e.g. ``torch.cuda.synchronize``) runs before each clock reading."""
    step()  # warm-up
    sync = sync or (lambda: None)
    sync()
    calls, t0 = 0, time.perf_counter()
    while True:
        for _ in range(min_iters):
            step()
        calls += min_iters
        sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return calls, elapsed


def _sampled_actions(env, seed) -> dict:
    """Reset ``env`` and draw one fixed random action per agent (seeded)."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = {}
    for a in env.possible_agents:
        space = env.action_space(a)
        space.seed(int(rng.integers(2**31)))
        actions[a] = space.sample()
    return actions


def _parallel_rate(env, min_time, seed):
    actions = _sampled_actions(env, seed)

    def step():
        if not env.agents:
            env.reset()
        env.step({a: actions[a] for a in env.agents})

    calls, elapsed = _timed(step, min_time)
    return calls / elapsed


def _aec_rate(env, min_time, seed):
    actions = _sampled_actions(env, seed)

    def step():
        if not env.agents:
            env.reset()
        agent = env.agent_selection
        env.last()
        done = env.terminations[agent] or env.truncations[agent]
        env.step(None if done else actions[agent])

    calls, elapsed = _timed(step, min_time)
    return calls / elapsed


def _batched_rate(num_games, min_time, seed, **config):
    from strategic_feedback_env.batched import make_batched

    env = make_batched("reward_report_v0", num_games, seed, **config)
    env.reset()
    actions = np.random.default_rng(seed).random(env.action_space.shape)
    sync = None
    if env.backend == "torch":
        import torch

        actions = torch.as_tensor(actions, dtype=env.dtype, device=env.device)
        if env.device.type == "cuda":
            sync = torch.cuda.synchronize
    calls, elapsed = _timed(lambda: env.step(actions), min_time, min_iters=1, sync=sync)
    return calls / elapsed, env.n


# PPO settings of the training benchmark: name -> (minibatch size, or None for a quarter of
# the rollout, epochs). All use ``n_steps`` steps per env per rollout and SB3's default MlpPolicy.
PPO_SETTINGS = {
    "4 minibatches, 2 epochs": (None, 2),  # CleanRL's minibatch count: few, large gradient steps
    "minibatch 256, 2 epochs": (256, 2),
    "SB3 default minibatch 64, 10 epochs": (64, 10),
}


def _ppo_rate(make_vec, total_steps, n_steps, setting, seed=None):
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    vec = make_vec()
    kwargs = {} if seed is None else {"seed": seed}
    minibatch, epochs = PPO_SETTINGS[setting]
    rollout = n_steps * vec.num_envs
    batch_size = rollout // 4 if minibatch is None else min(minibatch, rollout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PPO("MlpPolicy", vec, n_steps=n_steps, batch_size=batch_size, n_epochs=epochs,
                    device="cpu", verbose=0, **kwargs)
        t0 = time.perf_counter()
        model.learn(total_steps)
        elapsed = time.perf_counter() - t0
    steps = model.num_timesteps
    vec.close()
    return steps / elapsed, steps


def _fit_slope(xs, ts):
    return loglog_slope(xs, ts)[0] if len(xs) >= 2 else float("nan")


def _scaling(values, fixed, vary, min_time, seed):
    """Rows ``{vary: v, "env_step_s": ..., "mechanism_s": ...}`` for a batched step (B=1)."""
    from strategic_feedback_env import mechanisms
    from strategic_feedback_env.batched import BatchedRewardReport

    rows = []
    rng = np.random.default_rng(seed)
    for v in values:
        n, K = (v, fixed) if vary == "n" else (fixed, v)
        env = BatchedRewardReport(num_games=1, seed=seed, n_labelers=n, n_outcomes=K)
        env.reset()
        actions = rng.random(env.action_space.shape)
        calls, elapsed = _timed(lambda: env.step(actions), min_time, min_iters=1)
        mech = mechanisms.make("affine_maximizer")
        reports = rng.random((n, K))
        reports /= reports.sum(-1, keepdims=True)
        truth = rng.random((n, K))
        truth /= truth.sum(-1, keepdims=True)
        sizes = rng.integers(1, 11, n).astype(float)

        def mech_step():
            mech.outcome(reports, sizes)
            mech.unilateral_outcomes(reports, sizes, truth, sizes)

        mcalls, melapsed = _timed(mech_step, min_time, min_iters=1)
        rows.append({vary: int(v), "n": int(n), "K": int(K), "env_step_s": elapsed / calls,
                     "mechanism_s": melapsed / mcalls})
    return rows


def _slopes(rows, key):
    xs = [r[key] for r in rows]
    half = len(rows) // 2
    out = {}
    for col in ("env_step_s", "mechanism_s"):
        ts = [r[col] for r in rows]
        # overhead_removed: slope of (t - 0.9 * min t), i.e. with the fixed per-call cost taken out.
        base = 0.9 * min(ts)
        out[col] = {"all": _fit_slope(xs, ts), "upper_half": _fit_slope(xs[half:], ts[half:]),
                    "last_pair": _fit_slope(xs[-2:], ts[-2:]),
                    "overhead_removed": _fit_slope(xs[half:], [t - base for t in ts[half:]])}
    return out


def run_bench(quick: bool = False, seed: int = 0, progress: bool = True) -> dict:
    """Measure throughput and scaling in this process; returns plain dicts and a matplotlib Figure.

    Returns ``{"throughput": [rows], "training": [rows], "scaling": {"n": [rows], "K": [rows],
    "slopes": {...}}, "figure": Figure, "notes": [str], "config": {...}}``. Throughput rows have
    ``name``, ``unit``, ``steps_per_s``, ``ratio_vs_rps``; training rows ``name``,
    ``ppo`` (a key of :data:`PPO_SETTINGS`), ``agent_steps_per_s``, ``timesteps``, ``games``,
    ``ratio_vs_supersuit`` (against the SuperSuit row with the same games and settings; 8 and 64
    games, 4 and 16 with ``quick``). ``quick=True`` finishes in well under a minute.
    """
    from pettingzoo.classic import rps_v2

    from strategic_feedback_env import reward_report_v0

    t_start = time.perf_counter()
    min_time = 0.4 if quick else 2.0
    B = 1024 if quick else 4096
    notes = []
    rows = []

    def add(name, unit, rate, **extra):
        rows.append({"name": name, "unit": unit, "steps_per_s": float(rate), **extra})
        _log(progress, f"{name}: {rate:,.0f} {unit}")

    add("pettingzoo rps_v2 parallel_env", "steps/s", _parallel_rate(rps_v2.parallel_env(), min_time, seed))
    add("reward_report_v0 parallel_env (n=5, K=10)", "steps/s",
        _parallel_rate(reward_report_v0.parallel_env(), min_time, seed))
    aec_rate = _aec_rate(reward_report_v0.env(), min_time, seed)
    add("reward_report_v0 env() AEC (n=5, K=10)", "agent-steps/s", aec_rate, rounds_per_s=aec_rate / 5)
    rate, n = _batched_rate(B, min_time, seed)
    add(f"BatchedRewardReport (B={B}, n=5, K=10)", "labeler-steps/s", rate * B * n, rounds_per_s=rate * B,
        batched_steps_per_s=rate)
    try:
        from mpe2 import simple_spread_v3

        add("mpe2 simple_spread_v3 parallel_env", "steps/s", _parallel_rate(simple_spread_v3.parallel_env(), min_time, seed))
    except ImportError as exc:
        notes.append(f"mpe2 not importable ({exc}); simple_spread_v3 skipped")
        _log(progress, notes[-1])
    rps = rows[0]["steps_per_s"]
    for r in rows:
        r["ratio_vs_rps"] = r["steps_per_s"] / rps

    training = []
    n_steps = 64 if quick else 128
    # (games, agent-steps, settings): the 8 games and a larger batch, each at least one
    # full rollout; SB3's default minibatch is slow (many gradient steps), so only at 8 games.
    settings = list(PPO_SETTINGS)
    if quick:
        configs = [(4, 2048, settings[:2]), (16, 5120, settings[:1])]
    else:
        configs = [(8, 20480, settings), (64, 81920, settings[:2])]
    try:
        import supersuit as ss

        from strategic_feedback_env.vector import ParameterSharingVecEnv

        for games, total, names in configs:
            def ours_vec(games=games):
                return ParameterSharingVecEnv("reward_report_v0", num_envs=games, seed=seed)

            def supersuit_vec(games=games):
                vec = ss.pettingzoo_env_to_vec_env_v1(reward_report_v0.parallel_env())
                return ss.concat_vec_envs_v1(vec, games, num_cpus=0, base_class="stable_baselines3")

            for setting in names:
                pair = []
                for label, make, run_seed in (("ParameterSharingVecEnv", ours_vec, seed),
                                              ("SuperSuit ConcatVecEnv (unseeded)", supersuit_vec, None)):
                    rate, steps = _ppo_rate(make, total, n_steps, setting, seed=run_seed)
                    pair.append({"name": f"PPO on {label}, {games} games x 5 labelers", "ppo": setting,
                                 "agent_steps_per_s": rate, "timesteps": steps, "games": games})
                    _log(progress, f"{pair[-1]['name']} [{setting}]: {rate:,.0f} agent-steps/s")
                for r in pair:
                    r["ratio_vs_supersuit"] = r["agent_steps_per_s"] / pair[1]["agent_steps_per_s"]
                training += pair
    except ImportError as exc:
        notes.append(f"training benchmark skipped: {exc}")

    if quick:
        n_values, K_values, s_time = [10, 100, 1000, 10000], [2, 100, 1000, 10000], 0.1
    else:
        n_values, K_values, s_time = [10, 30, 100, 300, 1000, 3000, 10000], [2, 10, 100, 300, 1000, 3000, 10000], 0.4
    _log(progress, "scaling in n ...")
    scaling = {"n": _scaling(n_values, 10, "n", s_time, seed)}
    _log(progress, "scaling in K ...")
    scaling["K"] = _scaling(K_values, 5, "K", s_time, seed)
    scaling["slopes"] = {"n": _slopes(scaling["n"], "n"), "K": _slopes(scaling["K"], "K")}
    figure = scaling_figure(scaling)
    from .bench_torch import run_torch_bench

    torch_result = run_torch_bench(quick=quick, seed=seed, progress=progress)
    elapsed = time.perf_counter() - t_start
    _log(progress, f"done in {elapsed:.1f} s")
    return {"throughput": rows, "training": training, "scaling": scaling, "torch": torch_result, "figure": figure,
            "notes": notes, "config": {"quick": quick, "seed": seed, "batch": B, "seconds": elapsed}}


def format_bench(result: dict) -> str:
    """Plain-text tables of a :func:`run_bench` result."""
    lines = ["Throughput (one process; ratio = steps/s divided by rps_v2 parallel steps/s)"]
    w = max(len(r["name"]) for r in result["throughput"])
    for r in result["throughput"]:
        extra = f"  ({r['rounds_per_s']:,.0f} rounds/s)" if "rounds_per_s" in r else ""
        lines.append(f"  {r['name']:<{w}}  {r['steps_per_s']:>14,.0f} {r['unit']:<16} x{r['ratio_vs_rps']:7.2f}{extra}")
    if result["training"]:
        lines.append("SB3 PPO training throughput (agent-steps/s, learn() wall time; ratio against SuperSuit "
                     "with the same games and PPO settings)")
        w = max(len(r["name"]) for r in result["training"])
        ws = max(len(r["ppo"]) for r in result["training"])
        for r in result["training"]:
            lines.append(f"  {r['name']:<{w}}  {r['ppo']:<{ws}}  {r['agent_steps_per_s']:>10,.0f}  "
                         f"x{r['ratio_vs_supersuit']:.2f} vs SuperSuit ({r['timesteps']:,} agent-steps)")
    for key, fixed in (("n", "K=10"), ("K", "n=5")):
        lines.append(f"Scaling in {key} ({fixed}): seconds per step")
        lines.append(f"  {key:>6}  {'batched env step (B=1)':>24}  {'mechanism':>12}")
        for r in result["scaling"][key]:
            lines.append(f"  {r[key]:>6}  {r['env_step_s']:>24.3e}  {r['mechanism_s']:>12.3e}")
        s = result["scaling"]["slopes"][key]
        for col, label in (("env_step_s", "env"), ("mechanism_s", "mechanism")):
            lines.append(f"  log-log slope, {label}: {s[col]['all']:.2f} (all points), {s[col]['upper_half']:.2f} "
                         f"(upper half), {s[col]['last_pair']:.2f} (last two), "
                         f"{s[col]['overhead_removed']:.2f} (upper half, fixed cost removed)")
    for note in result["notes"]:
        lines.append(f"note: {note}")
    from .bench_torch import format_torch_bench

    lines += format_torch_bench(result.get("torch", {}))
    lines.append(f"({result['config']['seconds']:.1f} s, quick={result['config']['quick']})")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    quick = "--quick" in sys.argv
    res = run_bench(quick=quick)
    print(format_bench(res))
    if "--plot" in sys.argv:
        res["figure"].savefig("bench_scaling.png", dpi=120)
