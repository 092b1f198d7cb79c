"""What each ``sfe`` subcommand does with its parsed arguments (see :mod:`strategic_feedback_env.experiments.cli`)."""

from __future__ import annotations

import functools

import numpy as np

from . import audit as audit_exp
from . import horizon as horizon_exp
from . import regret as regret_exp
from . import sun_tables
from .cli import CliError, open_run
from .progress import progress_bar
from .ray_backend import run_cells
from .tables import format_table


def _parts(folder, args, keyed_cells, fn) -> list:
    """``fn(cell)`` for every ``(key, cell)``, in order: finished parts are loaded, the rest run
    (in this process, or as Ray tasks with ``--backend ray``) and each is saved as a part the
    moment it finishes, so an interrupted run keeps it and ``--resume`` skips it."""
    pending = [(key, cell) for key, cell in keyed_cells if not folder.has_part(key)]
    run_cells(fn, [cell for _, cell in pending], backend=args.backend, address=args.address, num_cpus=args.num_cpus,
              progress=args.progress, on_result=lambda i, result: folder.save_part(pending[i][0], result))
    return [folder.load_part(key) for key, _ in keyed_cells]


def _finish(folder, lines) -> int:
    for line in lines:
        print(line)
    print(f"\nresults written to {folder.path}")
    return 0


def reproduce(args) -> int:
    if args.table in sun_tables.UNAVAILABLE_TABLES:
        raise CliError(f"sfe reproduce {args.table}: cannot be rebuilt: {sun_tables.UNAVAILABLE_TABLES[args.table]}")
    folder = open_run(args)
    rows, noisy = _parts(folder, args, [(part, part) for part in ("table1", "noisy_input")],
                         functools.partial(_reproduce_part, args))
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
    if "learned" in args.strategies:  # trained (or loaded) once here, before the cells load it
        regret_exp.strategy_policy("learned", args, folder)
    accuracies = np.linspace(0.05, 0.5, args.n_labelers)
    cells = [(s, m, T) for s in args.strategies for m in args.mechanisms for T in args.horizons]
    regrets = _parts(folder, args, [(_regret_key(*cell), cell) for cell in cells],
                     functools.partial(_regret_cell, args, folder, accuracies))
    results = {cell: np.asarray(r) for cell, r in zip(cells, regrets)}
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


def _reproduce_part(args, part):
    """One part of ``sfe reproduce sun-table1``: the Table 1 rows or the Thm 4.12 sweep."""
    if part == "table1":
        with progress_bar(args.samples, "Table 1 instances", args.progress) as bar:
            return sun_tables.table1(samples=args.samples, lam=args.lam, regularizer=args.regularizer,
                                     seed=args.seed, progress=bar.update)
    return sun_tables.noisy_input_sweep(args.noise_levels, samples=args.noise_samples, seed=args.seed)


def _regret_key(strategy, mech, T) -> str:
    return f"{strategy}-{mech}-T{T}"


def _regret_cell(args, folder, accuracies, cell):
    """``R_T`` per game of one (strategy, mechanism, horizon) cell; all randomness from its seed."""
    strategy, mech, T = cell
    policy = regret_exp.strategy_policy(strategy, args, folder, train=False)
    seed = regret_exp.cell_seed(args.seed, strategy, T)
    return regret_exp.run_games(mech, T, args.games, policy, accuracies, args.bias, args.outcome_model, seed)


def audit(args) -> int:
    try:
        todo = audit_exp.cells(args)
        audit_exp.check_options(args, todo)
    except ValueError as exc:
        raise CliError(f"sfe audit: {exc}") from None
    folder = open_run(args)
    done = _parts(folder, args, [(f"{mech}-{adv}", (mech, adv)) for mech, adv in todo],
                  functools.partial(audit_exp.run_cell_pair, args))
    overall = [r for cell in done for r in (cell["overall"], *cell.get("group_rows", ()))]
    labelers = [row for cell in done for row in cell["labelers"]]
    baselines = {}
    for cell in done:
        baselines.setdefault(cell["overall"]["mechanism"], cell["truthful"])
    rows = [row for mech in dict.fromkeys(r["mechanism"] for r in overall)
            for row in [baselines[mech]] + [r for r in overall if r["mechanism"] == mech]]
    folder.write_csv("audit.csv", rows)
    folder.write_csv("audit_labelers.csv", labelers)
    folder.save_figure("audit.png", audit_exp.plot(overall))
    cols = ["game", "mechanism", "adversary", "gain", "gain_ci", "truthful_utility", "adversary_utility",
            "payment", "social_welfare", "ir_violations", "verdict"]
    group = [c for c in ("unilateral_gain_sum", "coordination_gain", "split_gain") if any(r.get(c) is not None
                                                                                          for r in rows)]
    cols = cols[:3] + ["labeler"] * bool(group) + cols[3:] + group  # coalition and sybil rows name their labelers
    return _finish(folder, [
        "Empirical DSIC audit: gain = adversary's return - truthful return per episode (paired, same seeds), "
        "95% CI; utilities and payments per labeler and episode",
        "", format_table(rows, cols),
    ])


def train(args) -> int:
    import strategic_feedback_env
    from strategic_feedback_env.agents import audit as run_audit
    from strategic_feedback_env.agents import learning

    try:
        game = audit_exp.game_of(args.mechanism)
        config = audit_exp.env_config(args, args.mechanism)
        strategic_feedback_env.make(game, **config)  # bad game options fail before the run folder is made
    except ValueError as exc:
        raise CliError(f"sfe train: {exc}") from None
    if args.game != game:
        raise CliError(f"sfe train: mechanism {args.mechanism!r} belongs to {game}, not {args.game}")
    if args.trainer == "rllib" and args.mode == "best-response":
        raise CliError("sfe train --backend rllib trains all labelers: use --mode independent or --mode shared")
    for name, minimum in (("episodes", 2), ("timesteps", 1), ("iterations", 1)):
        if getattr(args, name) < minimum:
            raise CliError(f"sfe train: --{name} must be >= {minimum}, got {getattr(args, name)}")
    folder = open_run(args)
    if args.trainer == "rllib":
        return _train_rllib(args, folder, game, config)
    tb = str(folder.path / "tensorboard") if args.tensorboard else None
    common = {"game": game, "env_config": config, "algo": args.algo, "timesteps": args.timesteps, "seed": args.seed,
              "tensorboard_log": tb, "progress_bar": args.progress}
    models = folder.path / "models"
    models.mkdir(exist_ok=True)
    if args.mode == "best-response":
        policy, _ = learning.train_best_response(**common)
        policy.save(models / "labeler_0")
        trained = {"labeler_0": policy}
    elif args.mode == "independent":
        trained = learning.train_independent(**common)
        for agent, policy in trained.items():
            policy.save(models / agent)
    else:
        policy, _ = learning.train_shared(**common)
        policy.save(models / "shared")
        agents = strategic_feedback_env.make(game, **config).possible_agents
        trained = {agent: policy.for_agent(agent) for agent in agents}
    rows = []
    for agent, policy in trained.items():
        result = run_audit(config, adversaries=[(f"{args.algo}-{args.mode}", policy)], episodes=args.episodes,
                           seed=args.seed + 10_000, game=game, focal_agents=[agent])
        rows += result.labelers
    folder.write_csv("evaluation.csv", rows)
    cols = ["adversary", "labeler", "gain", "gain_ci", "truthful_utility", "adversary_utility", "payment", "verdict"]
    return _finish(folder, [
        f"Trained {args.mode} {args.algo.upper()} labeler(s) on {game} under {args.mechanism} "
        f"({args.timesteps} steps); saved in {models}. Evaluated on {args.episodes} fresh episodes "
        "against the truthful baseline (same seeds):",
        "", format_table(rows, cols),
    ])


def _train_rllib(args, folder, game, config) -> int:
    """Multi-agent PPO on RLlib: one policy per labeler (independent) or one shared policy."""
    from strategic_feedback_env.rllib import train_rllib

    history = train_rllib(game, env_config=config, shared_policy=args.mode == "shared", iterations=args.iterations,
                          seed=args.seed)
    rows = [{"iteration": h["iteration"], "episode_return_mean": h["episode_return_mean"],
             **{f"return_{k}": v for k, v in h["returns"].items()}, "env_steps": h["env_steps"]} for h in history]
    folder.write_csv("rllib.csv", rows)
    return _finish(folder, [
        f"RLlib multi-agent PPO ({args.mode}) on {game} under {args.mechanism}, {args.iterations} iterations: "
        "mean episode return per policy", "", format_table(rows),
    ])


def bench(args) -> int:
    from . import bench as bench_exp

    folder = open_run(args)
    result = bench_exp.run_bench(quick=args.quick, seed=args.seed, progress=args.progress)
    figure = result.pop("figure", None)
    folder.write_json("bench.json", result)
    if figure is not None:
        folder.save_figure("scaling.png", figure)
    return _finish(folder, [bench_exp.format_bench(result)])


def horizon(args) -> int:
    try:
        todo = horizon_exp.cells(args)
    except ValueError as exc:
        raise CliError(f"sfe horizon: {exc}") from None
    folder = open_run(args)
    rows = _parts(folder, args, [(horizon_exp.cell_key(cell), cell) for cell in todo],
                  functools.partial(horizon_exp.run_cell, args))
    folder.write_csv("horizon.csv", rows)
    for adv in args.adversaries:
        folder.save_figure(f"horizon_{adv}.png", horizon_exp.plot(rows, adv))
    significant = [r for r in rows if r["significant"] and r["gain_per_round"] > 0]
    return _finish(folder, [
        "[HD] long horizon: labeler_0's gain per round over truthful play (paired games, 95% CI)", "",
        format_table(rows), "",
        f"{len(significant)} of {len(rows)} cells: misreporting pays (CI above 0)",
    ])
