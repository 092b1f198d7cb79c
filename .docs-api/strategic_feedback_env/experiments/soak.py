"""Long-run soak of the games and the online mechanism (project issue "Reliability").

``python -m strategic_feedback_env.experiments.soak [--steps 1000000] [--quick]`` runs, for ``N = --steps``:

* ``parallel``: the scalar PettingZoo game ``online_feedback_v0.parallel_env(mechanism=
  "online_weighted")`` for ``N`` rounds (reset every episode; each labeler plays truthful or
  uniform-random reports, sometimes 0/1);
* ``batched_online`` / ``batched_reward_report``: :class:`BatchedOnlineFeedback` and
  :class:`BatchedRewardReport` (``num_games`` games per call) for ``N`` game-rounds;
* ``mechanism``: ``mechanisms.make("online_weighted", horizon=N)`` with ``reset(n, (B,))``
  updated for ``N`` rounds straight (no env, no episode reset).

Every step is checked (vectorised): the mechanism's weights (and the weights in the infos /
observations) lie on the simplex (``>= 0``, sum 1 within ``1e-9``); the reward-report policy
too; no NaN/inf in observations, rewards or infos; observations in ``[0, 1]``. Memory
(``tracemalloc`` current/peak, current RSS from ``/proc/self/statm`` and
``resource.getrusage`` max RSS) is sampled at 10 %, 50 % and 100 % (and at every tenth) to
show that it does not grow. A table of figures is printed; ``--json FILE`` writes them.
Exit code 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from strategic_feedback_env.experiments.results import atomic_write_bytes, to_json
from strategic_feedback_env.experiments.tables import format_table

SUM_TOL = 1e-9
PARTS = ("parallel", "batched_online", "batched_reward_report", "mechanism")


# -- memory --------------------------------------------------------------------------------
def current_rss_mb() -> float:
    """Resident set size now (Linux ``/proc/self/statm``; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return max_rss_mb()


def max_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class MemoryMonitor:
    """Samples memory at fractions of a run; ``tracemalloc`` is started if asked and not running."""

    def __init__(self, use_tracemalloc: bool = True):
        self.use_tracemalloc = use_tracemalloc
        self._started_here = False
        self.samples: list[dict] = []

    def __enter__(self):
        if self.use_tracemalloc and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_here = True
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
        return self

    def __exit__(self, *exc):
        if self._started_here:
            tracemalloc.stop()
        return False

    def sample(self, fraction: float) -> None:
        cur, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (float("nan"), float("nan"))
        self.samples.append({"fraction": round(float(fraction), 4), "rss_mb": current_rss_mb(),
                             "max_rss_mb": max_rss_mb(), "traced_mb": cur / 2**20, "traced_peak_mb": peak / 2**20})

    def at(self, fraction: float) -> dict:
        """The sample nearest to ``fraction``."""
        return min(self.samples, key=lambda s: abs(s["fraction"] - fraction))

    def summary(self) -> dict:
        if not self.samples:
            return {}
        s10, s50, s100 = self.at(0.1), self.at(0.5), self.at(1.0)
        return {
            "rss_mb_10": s10["rss_mb"], "rss_mb_50": s50["rss_mb"], "rss_mb_100": s100["rss_mb"],
            "rss_growth_mb": s100["rss_mb"] - s10["rss_mb"],
            "max_rss_mb": s100["max_rss_mb"],
            "traced_mb_10": s10["traced_mb"], "traced_mb_100": s100["traced_mb"],
            "traced_growth_mb": s100["traced_mb"] - s10["traced_mb"],
            "traced_peak_mb": max(s["traced_peak_mb"] for s in self.samples),
        }


class Checker:
    """Accumulates the per-step checks: simplex deviations, min weight, non-finite and out-of-box counts."""

    def __init__(self, box_tol: float = 0.0):
        self.box_tol = box_tol
        self.max_box_excess = 0.0
        self.max_sum_dev = 0.0
        self.min_weight = float("inf")
        self.nonfinite = 0
        self.out_of_bounds = 0
        self.simplex_violations = 0
        self.first_failure: str | None = None

    def _fail(self, what: str, step: int):
        if self.first_failure is None:
            self.first_failure = f"step {step}: {what}"

    def simplex(self, w, step: int, what: str = "weights") -> None:
        w = np.asarray(w, dtype=np.float64)
        bad = ~np.isfinite(w)
        if bad.any():
            self.nonfinite += int(bad.sum())
            self._fail(f"{what} not finite", step)
            return
        dev = float(np.max(np.abs(w.sum(-1) - 1.0)))
        lo = float(w.min())
        self.max_sum_dev = max(self.max_sum_dev, dev)
        self.min_weight = min(self.min_weight, lo)
        if dev > SUM_TOL or lo < 0:
            self.simplex_violations += 1
            self._fail(f"{what} off the simplex (sum dev {dev:.3g}, min {lo:.3g})", step)

    def finite(self, arr, step: int, what: str) -> None:
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fc":
            return
        k = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if k:
            self.nonfinite += k
            self._fail(f"{k} non-finite value(s) in {what}", step)

    def unit_box(self, obs, step: int, what: str = "observation") -> None:
        obs = np.asarray(obs)
        if obs.size and (obs.min() < 0.0 or obs.max() > 1.0):
            excess = float(max(-obs.min(), obs.max() - 1.0))
            self.out_of_bounds += 1
            self.max_box_excess = max(self.max_box_excess, excess)
            if excess > self.box_tol:
                self._fail(f"{what} outside [0, 1] by {excess:.3g} (min {float(obs.min())!r}, max {float(obs.max())!r})", step)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    def figures(self) -> dict:
        return {"max_sum_dev": self.max_sum_dev, "min_weight": self.min_weight, "nonfinite": self.nonfinite,
                "out_of_bounds": self.out_of_bounds, "max_box_excess": self.max_box_excess, "simplex_violations": self.simplex_violations,
                "ok": self.ok, "first_failure": self.first_failure}


def _milestones(total_calls: int) -> dict:
    """Call index (1-based, after the call) -> fraction, at every tenth of the run."""
    return {max(1, int(round(total_calls * k / 10))): k / 10 for k in range(1, 11)}


def _result(name, steps, calls, seconds, checker, monitor, **extra) -> dict:
    return {"part": name, "steps": int(steps), "calls": int(calls), "seconds": seconds,
            "steps_per_s": steps / seconds if seconds > 0 else float("inf"),
            **checker.figures(), **monitor.summary(), "memory_samples": monitor.samples, **extra}


def _mixed_actions(rng, truthful: np.ndarray) -> np.ndarray:
    """Per entry: truthful (1/2), uniform in [0, 1] (3/8) or an extreme 0/1 (1/8)."""
    u = rng.random(truthful.shape)
    rand = rng.random(truthful.shape)
    out = np.where(u < 0.5, truthful, rand)
    return np.where(u > 0.875, np.round(rand), out)


# -- (a) the scalar ParallelEnv -------------------------------------------------------------
def soak_parallel(steps: int, seed: int = 0, max_cycles: int = 100, n_labelers: int = 5,
                  use_tracemalloc: bool = True, progress=None, box_tol: float = 0.0) -> dict:
    """``steps`` rounds of ``online_feedback_v0.parallel_env(mechanism="online_weighted")``."""
    from strategic_feedback_env import online_feedback_v0

    env = online_feedback_v0.parallel_env(mechanism="online_weighted", max_cycles=max_cycles, n_labelers=n_labelers)
    rng = np.random.default_rng(seed + 1)
    checker = Checker(box_tol)
    marks = _milestones(steps)
    agents = env.possible_agents
    with MemoryMonitor(use_tracemalloc) as monitor:
        env.reset(seed=seed)
        episodes = 1
        start = time.perf_counter()
        for t in range(1, steps + 1):
            if not env.agents:
                env.reset()
                episodes += 1
            truthful = np.stack([a for a in env.truthful_actions().values()])
            acts = _mixed_actions(rng, truthful)
            obs, rewards, term, trunc, infos = env.step({a: acts[i] for i, a in enumerate(agents)})
            o = np.stack(list(obs.values()))
            checker.finite(o, t, "observations")
            checker.unit_box(o, t)
            checker.finite(np.fromiter(rewards.values(), float, len(rewards)), t, "rewards")
            # infos: per-agent scalars as one (n, k) matrix, shared arrays from the first agent
            first = infos[agents[0]]
            keys = [k for k, v in first.items() if np.ndim(v) == 0]
            checker.finite(np.array([[info[k] for k in keys] for info in infos.values()], float), t, "infos")
            checker.finite(first["weights"], t, "infos['weights']")
            checker.simplex(env.mechanism.weights, t, "mechanism weights")
            checker.simplex(first["weights"], t, "infos['weights']")
            if t in marks:
                monitor.sample(marks[t])
                if progress:
                    progress(marks[t])
        seconds = time.perf_counter() - start
    env.close()
    return _result("parallel", steps, steps, seconds, checker, monitor, episodes=episodes, num_games=1,
                   config=f"online_feedback_v0 online_weighted n={n_labelers} max_cycles={max_cycles}")


# -- (b) the batched games ----------------------------------------------------------------
def soak_batched(game: str, steps: int, num_games: int = 4096, seed: int = 0, max_cycles: int | None = None,
                 use_tracemalloc: bool = True, progress=None, box_tol: float = 0.0, **config) -> dict:
    """At least ``steps`` game-rounds of ``make_batched(game, num_games)`` (``ceil(steps / B)`` calls)."""
    from strategic_feedback_env.batched import make_batched

    if max_cycles is None:
        max_cycles = 100 if game == "online_feedback_v0" else 10
    if game == "online_feedback_v0":
        config.setdefault("mechanism", "online_weighted")
    env = make_batched(game, num_games=num_games, seed=seed, max_cycles=max_cycles, **config)
    online = env.mechanism.online
    rng = np.random.default_rng(seed + 1)
    calls = -(-steps // num_games)
    checker = Checker(box_tol)
    marks = _milestones(calls)
    with MemoryMonitor(use_tracemalloc) as monitor:
        obs = env.reset()
        checker.finite(obs, 0, "observations")
        checker.unit_box(obs, 0)
        episodes = 1
        start = time.perf_counter()
        for t in range(1, calls + 1):
            acts = _mixed_actions(rng, env.truthful_actions())
            obs, rewards, term, trunc, infos = env.step(acts)
            checker.finite(obs, t, "observations")
            checker.unit_box(obs, t)
            checker.finite(rewards, t, "rewards")
            for key, value in infos.items():
                checker.finite(value, t, f"infos[{key!r}]")
            if online:
                checker.simplex(env.mechanism.weights, t, "mechanism weights")
            if "weights" in infos:
                checker.simplex(infos["weights"], t, "infos['weights']")
            if "policy" in infos:
                checker.simplex(infos["policy"], t, "infos['policy']")
            if term.all():
                episodes += 1
            if t in marks:
                monitor.sample(marks[t])
                if progress:
                    progress(marks[t])
        seconds = time.perf_counter() - start
    name = "batched_online" if game == "online_feedback_v0" else "batched_reward_report"
    return _result(name, calls * num_games, calls, seconds, checker, monitor, episodes=episodes,
                   num_games=num_games, config=f"{type(env).__name__} {env.mechanism!r} max_cycles={max_cycles}")


# -- (c) the online mechanism alone --------------------------------------------------------
def soak_mechanism(rounds: int, batch: int = 64, n: int = 5, seed: int = 0, name: str = "online_weighted",
                   horizon: int | None = None, chunk: int = 1000, use_tracemalloc: bool = True,
                   progress=None, box_tol: float = 0.0) -> dict:
    """``rounds`` updates of ``mechanisms.make(name, horizon=...)`` after ``reset(n, (batch,))``.

    Reports are the game's: truthful signals of labelers of accuracies ``0.05 .. 0.5``, with a
    random quarter replaced by uniform/extreme reports; ``y ~ Bernoulli(q)``. Random numbers are
    drawn ``chunk`` rounds at a time so the loop measures the mechanism, not the generator.
    """
    from strategic_feedback_env import mechanisms

    mech = mechanisms.make(name, horizon=horizon or rounds)
    mech.reset(n, (batch,))
    rng = np.random.default_rng(seed)
    sigma = np.linspace(0.05, 0.5, n)
    checker = Checker(box_tol)
    marks = _milestones(rounds)
    with MemoryMonitor(use_tracemalloc) as monitor:
        start = time.perf_counter()
        t = 0
        while t < rounds:
            m = min(chunk, rounds - t)
            q = rng.random((m, batch))
            x = np.clip(q[..., None] + sigma * rng.standard_normal((m, batch, n)), 0.0, 1.0)
            x = _mixed_actions(rng, x)
            y = (rng.random((m, batch)) < q).astype(np.float64)
            reports = np.stack([x, 1.0 - x], axis=-1)
            outcomes = np.stack([y, 1.0 - y], axis=-1)
            for j in range(m):
                t += 1
                out = mech.outcome(reports[j])
                losses = mech.update(reports[j], outcomes[j])
                checker.finite(out.policy, t, "aggregate")
                checker.unit_box(out.policy, t, "aggregate")
                checker.finite(losses, t, "losses")
                checker.simplex(mech.weights, t, "mechanism weights")
                if t in marks:
                    monitor.sample(marks[t])
                    if progress:
                        progress(marks[t])
        seconds = time.perf_counter() - start
    return _result("mechanism", rounds, rounds, seconds, checker, monitor, num_games=batch,
                   config=f"{mech!r} reset({n}, ({batch},))", eta=mech.step_size(n))


# -- driver --------------------------------------------------------------------------------
def run_soak(steps: int, parts=PARTS, parallel_steps: int | None = None, mechanism_rounds: int | None = None,
             num_games: int = 4096, mechanism_batch: int = 64, seed: int = 0, use_tracemalloc: bool = True,
             log=None) -> list[dict]:
    results = []
    for part in parts:
        t0 = time.perf_counter()
        if log:
            log(f"soak: {part} ...")
        if part == "parallel":
            r = soak_parallel(parallel_steps or steps, seed=seed, use_tracemalloc=use_tracemalloc)
        elif part == "batched_online":
            r = soak_batched("online_feedback_v0", steps, num_games=num_games, seed=seed,
                             use_tracemalloc=use_tracemalloc)
        elif part == "batched_reward_report":
            r = soak_batched("reward_report_v0", steps, num_games=num_games, seed=seed,
                             use_tracemalloc=use_tracemalloc)
        elif part == "mechanism":
            r = soak_mechanism(mechanism_rounds or steps, batch=mechanism_batch, seed=seed,
                               use_tracemalloc=use_tracemalloc)
        else:
            raise ValueError(f"unknown soak part {part!r}; choose from {', '.join(PARTS)}")
        results.append(r)
        if log:
            log(f"soak: {part} done in {time.perf_counter() - t0:.1f} s ({'ok' if r['ok'] else r['first_failure']})")
    return results


COLUMNS = [("part", "part", "{}"), ("steps", "steps", "{:,}"), ("num_games", "B", "{}"),
           ("seconds", "s", "{:.1f}"), ("steps_per_s", "steps/s", "{:,.0f}"),
           ("max_sum_dev", "max|sum-1|", "{:.2e}"), ("min_weight", "min w", "{:.3g}"),
           ("nonfinite", "NaN/inf", "{}"), ("out_of_bounds", "obs!in[0,1]", "{}"), ("max_box_excess", "box excess", "{:.1e}"),
           ("rss_mb_10", "RSS@10%", "{:.1f}"), ("rss_mb_50", "RSS@50%", "{:.1f}"), ("rss_mb_100", "RSS@100%", "{:.1f}"),
           ("rss_growth_mb", "dRSS MB", "{:+.2f}"), ("traced_growth_mb", "dtraced MB", "{:+.3f}"),
           ("traced_peak_mb", "traced peak", "{:.1f}"), ("ok", "ok", "{}")]


def format_results(results: list[dict]) -> str:
    """The figures as an aligned table (:func:`strategic_feedback_env.experiments.tables.format_table`), then each part's config."""
    rows = [{head: fmt.format(r[k]) if r.get(k) is not None else "-" for k, head, fmt in COLUMNS} for r in results]
    lines = [format_table(rows, [head for _, head, _ in COLUMNS])]
    for r in results:
        lines.append(f"  {r['part']}: {r['config']}"
                     + ("" if r["ok"] else f"  FAILED: {r['first_failure']}"))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m strategic_feedback_env.experiments.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=lambda s: int(float(s)), default=1_000_000,
                   help="steps per part (game-rounds for the batched games; default 1e6)")
    p.add_argument("--quick", action="store_true", help="10,000 steps per part (overrides --steps)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--parallel-steps", type=lambda s: int(float(s)), default=None,
                   help="steps of the scalar ParallelEnv part (default --steps)")
    p.add_argument("--mechanism-rounds", type=lambda s: int(float(s)), default=None,
                   help="rounds of the mechanism part (default --steps)")
    p.add_argument("--num-games", type=int, default=4096, help="games per batched call (default 4096)")
    p.add_argument("--mechanism-batch", type=int, default=64, help="B of the mechanism part (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false",
                   help="do not trace Python allocations (faster; RSS is still sampled)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    steps = 10_000 if args.quick else args.steps
    parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown part(s) {unknown}")
    counts = {"--steps": steps, "--parallel-steps": args.parallel_steps, "--mechanism-rounds": args.mechanism_rounds,
              "--num-games": args.num_games, "--mechanism-batch": args.mechanism_batch}
    for flag, value in counts.items():
        if value is not None and value < 1:
            p.error(f"{flag} must be >= 1, got {value}")
    if args.json and not Path(args.json).resolve().parent.is_dir():  # found out now, not after an hour of soak
        p.error(f"--json: folder {Path(args.json).resolve().parent} does not exist")
    results = run_soak(steps, parts, parallel_steps=None if args.quick else args.parallel_steps,
                       mechanism_rounds=None if args.quick else args.mechanism_rounds, num_games=args.num_games,
                       mechanism_batch=args.mechanism_batch, seed=args.seed, use_tracemalloc=args.tracemalloc,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_results(results))
    if args.json:
        atomic_write_bytes(Path(args.json), to_json(results, sort_keys=False).encode())
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
