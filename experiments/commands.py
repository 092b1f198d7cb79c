"""What each ``sfe`` subcommand does with its parsed arguments (see :mod:`strategic_feedback_env.experiments.cli`).

Each command checks everything its options imply (the games they build, the memory they need,
the optional packages they use) before :func:`~strategic_feedback_env.experiments.cli.open_run`
makes the run folder, so a rejected run leaves nothing behind.
"""

from __future__ import annotations

import functools

import numpy as np

from strategic_feedback_env.agents.calibration import calibrate

from . import audit as audit_exp
from . import horizon as horizon_exp
from . import memory, plotting
from . import regret as regret_exp
from . import sun_tables
from .cli import CliError, open_run
from .progress import progress_bar
from .ray_backend import run_cells
from .tables import format_table

LEARNERS = ("ppo", "sac", "shared", "independent")


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
    memory.require(memory.reproduce_bytes(args.samples, args.noise_samples),
                   f"sfe reproduce: --samples {args.samples} and --noise-samples {args.noise_samples}")
    folder = open_run(args)
    rows, noisy = _parts(folder, args, [(part, part) for part in ("table1", "noisy_input")],
                         functools.partial(_reproduce_part, args))
    folder.write_csv("table1.csv", rows)
    folder.write_csv("noisy_input.csv", noisy)
    folder.save_figure("table1.png", plotting.table1_figure(rows, args.samples))
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
    memory.require(memory.regret_bytes(args.n_labelers, args.games),
                   f"sfe regret: --n-labelers {args.n_labelers} and --games {args.games}")
    cells = [(s, m, T) for s in args.strategies for m in args.mechanisms for T in args.horizons]
    folder = open_run(args, resolved={"cells": cells})
    if "learned" in args.strategies:  # trained (or loaded) once here, before the cells load it
        folder.claim_dir("models")
        regret_exp.strategy_policy("learned", args, folder)
    accuracies = np.linspace(0.05, 0.5, args.n_labelers)
    regrets = _parts(folder, args, [(_regret_key(*cell), cell) for cell in cells],
                     functools.partial(_regret_cell, args, folder, accuracies))
    results = {cell: np.asarray(r) for cell, r in zip(cells, regrets)}
    rows, fits = regret_exp.summarise(results, args)
    folder.write_csv("regret.csv", rows)
    folder.write_json("fits.json", fits)
    folder.save_figure("regret.png", plotting.regret_figure(results, fits, args.strategies, args.mechanisms,
                                                            args.horizons, args.games))
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


def _game_memory(args, game: str, learners, timesteps: int) -> float:
    """Memory of one game of the run's size and of the SB3 learners trained on it."""
    K = args.n_outcomes if game == "reward_report_v0" else 0
    learned = [memory.learner_bytes("sac" if name == "sac" else "ppo", game, args.n_labelers, K, timesteps,
                                    shared=name in ("shared", "independent")) for name in learners]
    return memory.game_bytes(game, args.n_labelers, K) + max(learned, default=0.0)


def _require_game_memory(args, game: str, learners, timesteps: int) -> None:
    memory.require(_game_memory(args, game, learners, timesteps),
                   f"--n-labelers {args.n_labelers} and --n-outcomes {args.n_outcomes}")


def _scalar_columns(rows: list[dict]) -> list[dict]:
    """The rows without their per-episode gains, which the parts keep (the share's interval)."""
    return [{k: v for k, v in r.items() if k != "episode_gains"} for r in rows]


def audit(args) -> int:
    try:
        todo = audit_exp.cells(args)
        for mech in dict.fromkeys(m for m, _ in todo):
            timesteps = max(args.ppo_timesteps, args.sac_timesteps)
            _require_game_memory(args, audit_exp.game_of(mech),
                                 [a for m, a in todo if m == mech and a in LEARNERS], timesteps)
        audit_exp.check_options(args, todo)
    except ValueError as exc:
        raise CliError(f"sfe audit: {exc}") from None
    focal = args.focal or [f"labeler_{i}" for i in range(args.n_labelers)]
    folder = open_run(args, resolved={"cells": todo, "focal": focal})
    done = _parts(folder, args, [(f"{mech}-{adv}", (mech, adv)) for mech, adv in todo],
                  functools.partial(audit_exp.run_cell_pair, args))
    # learned vs white box across cells
    overall = calibrate([r for cell in done for r in (cell["overall"], *cell.get("group_rows", ()))])
    labelers = calibrate([row for cell in done for row in cell["labelers"]])
    rows, baselines = [], set()
    for cell in done:  # each mechanism's truthful baseline, on the labelers its rows deviate, before them
        key = (cell["truthful"]["mechanism"], cell["truthful"]["labeler"])
        if key not in baselines:
            baselines.add(key)
            rows.append(cell["truthful"])
        rows.append(cell["overall"])
        rows.extend(cell.get("group_rows", ()))  # one row per further coalition / sybil labeler
    folder.write_csv("audit.csv", _scalar_columns(rows))
    folder.write_csv("audit_labelers.csv", _scalar_columns(labelers))
    folder.save_figure("audit.png", plotting.audit_figure(overall, episodes=args.episodes))
    cols = ["game", "mechanism", "adversary", "labeler", "gain", "gain_ci", "truthful_utility", "adversary_utility",
            "payment", "social_welfare", "ir_violations", "white_box_share", "white_box_share_ci", "verdict"]
    if args.suite == "practical":
        folder.save_figure("gain_vs_gap.png", audit_exp.plot_gain_vs_gap(overall))
        cols = audit_exp.PRACTICAL_COLUMNS
    group = [c for c in ("unilateral_gain_sum", "coordination_gain", "split_gain") if any(r.get(c) is not None
                                                                                          for r in rows)]
    cols += group  # coalition and sybil rows
    return _finish(folder, [
        "Empirical DSIC audit: gain = adversary's return - truthful return per episode (paired, same seeds), "
        "95% CI; utilities and payments per labeler and episode; labeler = the labelers that deviate "
        "(joint rows: gain against each one's own truthful report, the others as played)",
        "", format_table(rows, cols),
    ])


def train(args) -> int:
    import strategic_feedback_env
    from strategic_feedback_env.agents import audit as run_audit

    try:
        game = audit_exp.game_of(args.mechanism)
        if args.game != game:
            raise ValueError(f"mechanism {args.mechanism!r} belongs to {game}, not {args.game}")
        _require_game_memory(args, game, [args.algo if args.mode != "shared" else "shared"], args.timesteps)
        config = audit_exp.env_config(args, args.mechanism)
        agents = strategic_feedback_env.make(game, **config).possible_agents  # bad game options fail here
    except ValueError as exc:
        raise CliError(f"sfe train: {exc}") from None
    if args.trainer == "rllib":
        if args.mode == "best-response":
            raise CliError("sfe train --backend rllib trains all labelers: use --mode independent or --mode shared")
        if args.resume:
            raise CliError("sfe train --backend rllib cannot resume: RLlib training is not checkpointed")
        from strategic_feedback_env.rllib import _import_ray

        _import_ray()  # the [ray] extra, checked before the run folder is made
        return _train_rllib(args, open_run(args), game, config)
    folder = open_run(args, resolved={"labelers": list(agents)})
    tb = str(folder.claim_dir("tensorboard")) if args.tensorboard else None
    trained, curves = _trained_policies(args, folder, game, config, agents, tb)
    rows = []
    for agent, policy in trained.items():
        result = run_audit(config, adversaries=[(f"{args.algo}-{args.mode}", policy)], episodes=args.episodes,
                           seed=args.seed + 10_000, game=game, focal_agents=[agent])
        rows += result.labelers
    folder.write_csv("evaluation.csv", rows)
    folder.write_csv("learning_curve.csv", curves)
    folder.save_figure("learning_curve.png", plotting.learning_curve_figure(curves, rounds=config["max_cycles"]))
    cols = ["adversary", "labeler", "gain", "gain_ci", "truthful_utility", "adversary_utility", "payment", "verdict"]
    return _finish(folder, [
        f"Trained {args.mode} {args.algo.upper()} labeler(s) on {game} under {args.mechanism} "
        f"({args.timesteps} steps); saved in {folder.path / 'models'}. Evaluated on {args.episodes} fresh episodes "
        "against the truthful baseline (same seeds):",
        "", format_table(rows, cols),
    ])


def _trained_policies(args, folder, game, config, agents, tb):
    """``({agent: policy}, learning-curve rows)``: trained and saved, or, on ``--resume`` of a run
    whose models were all saved, loaded (never retrained over saved models)."""
    from strategic_feedback_env.agents import learning

    names = {"best-response": ["labeler_0"], "independent": list(agents), "shared": ["shared"]}[args.mode]
    models = folder.path / "models"
    saved = [name for name in names if (models / f"{name}.zip").exists()]
    if saved and (len(saved) < len(names) or not folder.has_part("learning_curve")):
        raise CliError(f"sfe train: cannot resume {folder.path}: its training stopped while saving "
                       f"(saved: {', '.join(saved)}); replace the run with --force")
    if saved:
        policies = {name: learning.LearnedPolicy.load(models / name) for name in names}
        curves = folder.load_part("learning_curve")
    else:
        common = {"game": game, "env_config": config, "algo": args.algo, "timesteps": args.timesteps, "seed": args.seed,
                  "tensorboard_log": tb, "progress_bar": args.progress}
        if args.mode == "best-response":
            policy, info = learning.train_best_response(**common)
            policies, infos = {"labeler_0": policy}, [info]
        elif args.mode == "independent":
            policies, infos = learning.train_independent(**common, return_info=True)
        else:
            policy, info = learning.train_shared(**common)
            policies, infos = {"shared": policy}, [info]
        curves = [{"labeler": info.get("focal_agent") or "shared", "timesteps": t, "gain": g, "reward": u}
                  for info in infos for t, g, u in info["gain_history"]]
        folder.claim_dir("models")
        for name, policy in policies.items():
            policy.save(models / name)
        folder.save_part("learning_curve", curves)
    if args.mode == "shared":
        return {agent: policies["shared"].for_agent(agent) for agent in agents}, curves
    return policies, curves


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
    import importlib

    from . import bench as bench_exp

    if args.resume:
        raise CliError("sfe bench cannot resume: every run measures afresh (replace a run with --force)")
    importlib.import_module("pettingzoo.classic.rps_v2")  # the [bench] extra (pygame), before the run folder
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
        folder.save_figure(f"horizon_{adv}.png", plotting.horizon_figure(rows, adv, args.games))
    significant = [r for r in rows if r["significant"] and r["gain_per_round"] > 0]
    return _finish(folder, [
        "[HD] long horizon: labeler_0's gain per round over truthful play (paired games, 95% CI)", "",
        format_table(rows), "",
        f"{len(significant)} of {len(rows)} cells: misreporting pays (CI above 0)",
    ])
