"""[HD] regret experiment (MODEL.md section 2): cumulative regret against the best labeler.

For each mechanism, horizon ``T`` and labeler strategy, ``seeds`` independent games are
played for ``T`` rounds at once (batched over games with the shared game rules), and
``R_T = sum_t (x_bar_t - y_t)^2 - min_i sum_t (s_i,t - y_t)^2`` (scored on truthful signals)
is recorded per game. The claim: average and median have ``R_T = Theta(T)`` (log-log slope
near 1) and the online weighted mechanism ``O(sqrt T)`` (slope near 0.5).
"""

from __future__ import annotations

import numpy as np

from strategic_feedback_env import mechanisms
from strategic_feedback_env.online_feedback import rules

from .stats import bootstrap_slope_ci

MECHANISMS = ("average", "median", "online_weighted", "hedge")


def run_games(mechanism: str, horizon: int, games: int, policy, accuracies, biases,
              outcome_model: str = "probability", seed: int = 0) -> np.ndarray:
    """Play ``games`` online-feedback games of ``horizon`` rounds; return ``R_T`` per game.

    ``policy`` maps observations ``(m, 6)`` (the env's layout) to reports ``(m, 1)``.
    """
    accuracies = np.asarray(accuracies, float)
    biases = np.broadcast_to(np.asarray(biases, float), accuracies.shape)
    n = accuracies.size
    params = {"horizon": horizon} if "horizon" in mechanisms.parameters(mechanism) else {}
    mech = mechanisms.make(mechanism, **params)
    mech.reset(n, (games,))
    rng = np.random.default_rng(seed)
    agg_loss = np.zeros(games)
    lab_loss = np.zeros((games, n))
    weights = np.full((games, n), 1.0 / n)
    last_agg = np.full(games, 0.5)
    last_y = np.full(games, 0.5)
    for t in range(horizon):
        q, signals, targets, y = rules.draw_round(rng, (games,), accuracies, biases, outcome_model)
        obs = rules.observe(signals, targets, weights, t / horizon, last_agg, last_y)
        x = np.asarray(policy(obs.reshape(games * n, -1)), float).reshape(games, n)
        res = rules.resolve_round(mech, x, signals, targets, y)
        agg_loss += res["aggregate_loss"]
        lab_loss += res["labeler_loss"]
        weights, last_agg, last_y = res["weights"], res["aggregate"], y
    return agg_loss - lab_loss.min(-1)


def fit_slopes(horizons, regrets_by_mechanism: dict, seed: int = 0) -> dict:
    """Per mechanism: log-log slope of mean regret vs ``T`` with a bootstrap 95% CI over games."""
    rng = np.random.default_rng(seed)
    fits = {}
    for name, per_horizon in regrets_by_mechanism.items():
        vals = np.stack([np.asarray(per_horizon[T]) for T in horizons], axis=1)
        if np.any(vals.mean(0) <= 0):
            fits[name] = {"slope": float("nan"), "lo": float("nan"), "hi": float("nan"),
                          "note": "mean regret <= 0 at some horizon: no log-log fit"}
            continue
        slope, lo, hi = bootstrap_slope_ci(horizons, vals, rng)
        fits[name] = {"slope": slope, "lo": lo, "hi": hi}
    return fits


STRATEGIES = ("truthful", "shade", "extreme", "learned")


def strategy_policy(strategy: str, args, folder, train: bool = True):
    """The labelers' policy for a strategy (all labelers play it): truthful, shade (halfway to
    the target), extreme (0/1 on the target's side), or learned (a PPO best response trained
    under ``online_weighted`` for ``args.learn_timesteps`` steps, saved in the run folder and
    reused on resume). ``train=False``: load the saved learned policy, never train it (the
    cells of a run, which may run in parallel, only load what the driver trained)."""
    from strategic_feedback_env.agents import Extreme, Shade, Truthful, spec_of
    from strategic_feedback_env import online_feedback_v0

    spec = spec_of(online_feedback_v0.parallel_env(n_labelers=args.n_labelers))
    if strategy == "truthful":
        return Truthful(spec)
    if strategy == "shade":
        return Shade(spec, factor=0.5)
    if strategy == "extreme":
        return Extreme(spec)
    from strategic_feedback_env.agents import learning

    path = folder.path / "models" / "learned"
    if path.with_suffix(".zip").exists():
        return learning.LearnedPolicy.load(path)
    if not train:
        raise ValueError(f"no learned policy at {path}.zip: it is trained before the cells run (on a Ray "
                         "cluster the workers need to see the run folder)")
    config = {"n_labelers": args.n_labelers, "mechanism": "online_weighted", "biases": args.bias,
              "outcome_model": args.outcome_model, "max_cycles": 100}
    policy, _ = learning.train_best_response(game="online_feedback_v0", env_config=config, algo="ppo",
                                             timesteps=args.learn_timesteps, seed=args.seed)
    path.parent.mkdir(exist_ok=True)
    policy.save(path)
    return policy


def cell_seed(seed: int, strategy: str, horizon: int) -> int:
    """One seed per (strategy, horizon), shared by all mechanisms (common random numbers)."""
    return int(np.random.SeedSequence([seed, STRATEGIES.index(strategy), horizon]).generate_state(1)[0])


def summarise(results: dict, args):
    """Table rows (mean regret with CI per cell) and slope fits per strategy."""
    from .stats import mean_ci

    rows = []
    for (strategy, mech, T), regrets in results.items():
        m, h = mean_ci(regrets)
        rows.append({"strategy": strategy, "mechanism": mech, "T": T, "mean_regret": float(m), "ci": float(h),
                     "regret_per_round": float(m) / T})
    fits = {}
    for strategy in args.strategies:
        per = {m: {T: results[strategy, m, T] for T in args.horizons} for m in args.mechanisms}
        fits[strategy] = fit_slopes(args.horizons, per, seed=args.seed)
    return rows, fits
