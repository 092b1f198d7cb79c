"""What each ``sfe`` subcommand does with its parsed arguments (see :mod:`experiments.cli`)."""

from __future__ import annotations

import numpy as np

from . import regret as regret_exp
from . import sun_tables
from .cli import CliError, open_run
from .progress import progress_bar
from .tables import format_table


def _finish(folder, lines) -> int:
    for line in lines:
        print(line)
    print(f"\nresults written to {folder.path}")
    return 0


def reproduce(args) -> int:
    if args.table in sun_tables.UNAVAILABLE_TABLES:
        raise CliError(f"sfe reproduce {args.table}: cannot be rebuilt: {sun_tables.UNAVAILABLE_TABLES[args.table]}")
    folder = open_run(args)
    if folder.has_part("table1"):
        rows = folder.load_part("table1")
    else:
        with progress_bar(args.samples, "Table 1 instances", args.progress) as bar:
            rows = sun_tables.table1(samples=args.samples, lam=args.lam, regularizer=args.regularizer,
                                     seed=args.seed, progress=bar.update)
        folder.save_part("table1", rows)
    if folder.has_part("noisy_input"):
        noisy = folder.load_part("noisy_input")
    else:
        noisy = sun_tables.noisy_input_sweep(args.noise_levels, samples=args.noise_samples, seed=args.seed)
        folder.save_part("noisy_input", noisy)
    folder.write_csv("table1.csv", rows)
    folder.write_csv("noisy_input.csv", noisy)
    folder.save_figure("table1.png", sun_tables.plot_table1(rows))
    setting = (f"setting: n=5, K=10, r~U[0,1]^K sum-normalised, w~U{{1..10}}, {args.samples} instances, "
               f"affine maximizer with {args.regularizer} (lam={args.lam}), uniform reference; the paper "
               "states neither lam, reference nor regulariser. dValuation is group 1's w_1<theta, r_1>.")
    cols = ["eps", "paper_dvaluation_e2", "ours_dvaluation_e2", "ci_dvaluation_e2", "rel_diff_valuation",
            "paper_dutility_e4", "ours_dutility_e4", "ci_dutility_e4", "rel_diff_utility"]
    return _finish(folder, [
        "[SUN] App. F Table 1 (ours beside the paper's; ci = 95% half-width)", setting, "",
        format_table(rows, cols), "",
        "Thm 4.12: largest gain of a misreport under noisy input vs the bound 2 w_i eps",
        format_table(noisy),
    ])


def regret(args) -> int:
    unknown = sorted(set(args.mechanisms) - set(regret_exp.MECHANISMS))
    if unknown:
        raise CliError(f"sfe regret: unknown mechanism(s) {unknown}; choose from {', '.join(regret_exp.MECHANISMS)}")
    unknown = sorted(set(args.strategies) - set(regret_exp.STRATEGIES))
    if unknown:
        raise CliError(f"sfe regret: unknown strategy(ies) {unknown}; choose from {', '.join(regret_exp.STRATEGIES)}")
    if args.games < 2 or any(T < 1 for T in args.horizons) or len(args.horizons) < 2:
        raise CliError("sfe regret: need --games >= 2 and at least two horizons >= 1")
    folder = open_run(args)
    accuracies = np.linspace(0.05, 0.5, args.n_labelers)
    cells = [(s, m, T) for s in args.strategies for m in args.mechanisms for T in args.horizons]
    results = {}
    with progress_bar(sum(T for *_, T in cells), "rounds", args.progress) as bar:
        for strategy, mech, T in cells:
            key = f"{strategy}-{mech}-T{T}"
            if folder.has_part(key):
                results[strategy, mech, T] = np.asarray(folder.load_part(key))
            else:
                policy = regret_exp.strategy_policy(strategy, args, folder)
                seed = regret_exp.cell_seed(args.seed, strategy, T)
                results[strategy, mech, T] = regret_exp.run_games(
                    mech, T, args.games, policy, accuracies, args.bias, args.outcome_model, seed)
                folder.save_part(key, results[strategy, mech, T])
            bar.update(T)
    rows, fits = regret_exp.summarise(results, args)
    folder.write_csv("regret.csv", rows)
    folder.write_json("fits.json", fits)
    folder.save_figure("regret.png", regret_exp.plot(results, fits, args))
    fit_rows = [{"strategy": s, "mechanism": m, **f} for s, per in fits.items() for m, f in per.items()]
    return _finish(folder, [
        "[HD] cumulative regret against the best labeler (mean over games, 95% CI)", "",
        format_table(rows), "",
        "log-log slopes (bootstrap 95% CI); claim: average/median ~1, online_weighted ~0.5", "",
        format_table(fit_rows),
    ])
