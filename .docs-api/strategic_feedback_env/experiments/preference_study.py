"""The preference game's findings (docs/model.md §6; numbers in experiments/README.md).

Three questions, each answered on fresh seeded instances (one round of ``preference_report_v0``,
the focal labeler 0 best-responding with the gradient adversary, the others truthful):

1. ``dsic_vs_pairs``: is the per-labeler fit + affine maximizer approximately DSIC, and how does
   the best gain found shrink as the number ``m`` of asked pairs grows, against the Thm 4.12-style
   bound ``2 w_0 eps`` with ``eps = min_c max_x |r^_0(x) - r_0(x) - c|`` the error of the
   labeler's truthful fit (a misreport gains at most what it takes to undo that error)?
2. ``exploitability``: the best gain against each mechanism / reward model, per labeler count ``n``.
3. ``median_welfare``: the welfare of truthful play under ``median_of_mles`` against SW-Max on the
   same instances (batched games).

Run: ``python -m strategic_feedback_env.experiments.preference_study --out runs/preference``
(``--quick`` for a small version). Results go to a run folder (CSV files, written atomically).
"""

from __future__ import annotations

import argparse

import numpy as np

from strategic_feedback_env import preference_report_v0
from strategic_feedback_env.agents.preference_gradient import PreferenceGradientAdversary
from strategic_feedback_env.agents.stats import mean_ci
from strategic_feedback_env.batched import make_batched
from strategic_feedback_env.mechanisms.bradley_terry import null_projection, pair_incidence
from strategic_feedback_env.preference_report import rules

from .results import RunFolder, default_run_path
from .tables import format_table

ROUNDING = 1e-9  # gains and bounds below this are floating-point zeros
MECHANISMS = (("sw_max", "per_labeler"), ("sw_max", "pooled"), ("affine_maximizer", "per_labeler"),
              ("affine_maximizer", "pooled"), ("median_of_mles", "per_labeler"))


def _fit_error(env, i=0):
    """``min_c max_x |r^_i(x) - r_i(x) - c|`` of labeler ``i``'s truthful fit, and whether its pairs
    connect all ``K`` responses."""
    fitted = rules.fitted_reports(env.truthful, env.pairs, env.sizes, env.K, env.reward_model, env.temperature,
                                  env.ridge, env.clip)[i]
    d = fitted - env.rewards[i]
    gauge = null_projection(pair_incidence(env.pairs[i], env.K), np.ones(env.m))
    return 0.5 * (d.max() - d.min()), bool(np.allclose(gauge, 1.0 / env.K))


def _summary(values):
    m, half = mean_ci(values)
    return float(m), float(half)


def dsic_vs_pairs(pair_counts, report, samples, seed, n=5, K=10, lam=0.1, steps=60):
    """Rows per ``m``: best gain found (mean, 95% CI, max), the bound ``2 w eps`` (mean), the
    largest gain / bound ratio (bounds above rounding), the rounds whose gain exceeds the bound
    and the fraction of rounds whose pairs connect all responses."""
    rows = []
    for m in pair_counts:
        gains, bounds, connected = [], [], []
        adversary = PreferenceGradientAdversary(steps=steps, seed=seed)
        for s in range(samples):
            env = preference_report_v0.parallel_env(n_labelers=n, n_outcomes=K, mechanism="affine_maximizer",
                                                    mechanism_params={"lam": lam}, pairs=m, report=report)
            env.reset(seed=seed + s)
            eps, linked = _fit_error(env)
            gains.append(adversary.best_response(env, 0)[1])
            bounds.append(2.0 * env.sizes[0] * eps)
            connected.append(linked)
        gains, bounds = np.array(gains), np.array(bounds)
        g, g_ci = _summary(gains)
        positive = bounds > ROUNDING
        ratio = np.where(positive, gains / np.where(positive, bounds, 1.0), 0.0)
        rows.append({"report": report, "pairs": m, "connected": float(np.mean(connected)), "gain": g, "gain_ci": g_ci,
                     "gain_max": float(gains.max()), "bound_2w_eps": float(bounds.mean()),
                     "max_gain_over_bound": float(ratio.max()),
                     "bound_violations": int(np.sum(gains > bounds + ROUNDING)), "samples": samples})
    return rows


def exploitability(label_counts, samples, seed, K=6, lam=0.1, steps=60):
    """Rows per (n, mechanism, reward model): best gain found, truthful utility and their ratio."""
    rows = []
    for n in label_counts:
        for mech, model in MECHANISMS:
            gains, utils = [], []
            adversary = PreferenceGradientAdversary(steps=steps, seed=seed)
            for s in range(samples):
                env = preference_report_v0.parallel_env(n_labelers=n, n_outcomes=K, mechanism=mech,
                                                        mechanism_params={"lam": lam}, reward_model=model)
                env.reset(seed=seed + s)
                _, res = rules.play_round(env, env.truthful)
                utils.append(res["utility"][0])
                gains.append(adversary.best_response(env, 0)[1])
            g, g_ci = _summary(gains)
            u = float(np.mean(utils))
            rows.append({"n": n, "mechanism": f"{mech}@{model}", "gain": g, "gain_ci": g_ci,
                         "truthful_utility": u, "gain_over_utility": g / u, "samples": samples})
    return rows


def median_welfare(label_counts, lams, games, seed, K=10):
    """Rows per (n, lam): mean truthful welfare of SW-Max and of the median rule (per-labeler fits,
    all pairs, exact probabilities: SW-Max's is the optimum of ``sum_i w_i <theta, r_i>`` given lam)."""
    rows = []
    for n in label_counts:
        for lam in lams:
            welfare = {}
            for mech in ("sw_max", "median_of_mles"):
                env = make_batched("preference_report_v0", num_games=games, seed=seed, n_labelers=n, n_outcomes=K,
                                   mechanism=mech, mechanism_params={"lam": lam}, max_cycles=1)
                env.reset()
                welfare[mech] = env.step(env.truthful_actions())[4]["social_welfare"]
            loss = 1.0 - welfare["median_of_mles"] / welfare["sw_max"]
            m, half = mean_ci(loss)
            rows.append({"n": n, "lam": lam, "welfare_sw_max": float(welfare["sw_max"].mean()),
                         "welfare_median": float(welfare["median_of_mles"].mean()), "relative_loss": float(m),
                         "relative_loss_ci": float(half), "games": games})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="preference_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=40, help="instances per cell of the gradient studies")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    samples = 4 if args.quick else args.samples
    folder = RunFolder(args.out or default_run_path("preference", args.seed), vars(args), command="preference_study",
                       force=args.force)
    pair_counts = (5, 9, 15) if args.quick else (5, 9, 15, 25, 45)
    parts = {
        "median_welfare.csv": lambda: median_welfare((3, 5, 10), (0.1, 1.0), 200 if args.quick else 2000, args.seed),
        "dsic_vs_pairs.csv": lambda: [row for report in ("probability", "label")
                                      for row in dsic_vs_pairs(pair_counts, report, samples, args.seed)],
        "exploitability.csv": lambda: exploitability((3,) if args.quick else (3, 5, 10), samples, args.seed),
    }
    for name, part in parts.items():
        rows = part()
        folder.write_csv(name, rows)
        print(format_table(rows), "\n", flush=True)
    print(f"results written to {folder.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
