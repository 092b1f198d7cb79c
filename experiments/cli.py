"""``sfe``: the command line of strategic_feedback_env.

Subcommands: ``audit`` (empirical DSIC audit), ``regret`` ([HD] regret slopes),
``reproduce`` ([SUN] App. F tables), ``train`` (RL labelers), ``bench`` (speed),
``horizon`` ([HD] long-horizon phase diagram).
Each run writes to a fresh folder (``--out``, default ``runs/<command>-<time>-seed<seed>``),
prints a table and a summary line saying where the results went. Options can come from a
TOML/YAML file (``--config``); flags override it. Errors are one line, exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .config_files import load_config
from .ray_backend import add_backend_arguments
from .results import RunFolder, RunFolderError, default_run_path


class CliError(ValueError):
    """A user error reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(f"{message} (see {self.prog} --help)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, help="run folder (default runs/<command>-<time>-seed<seed>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out, keeping finished parts")
    p.add_argument("--config", default=None, help="TOML or YAML file of option values (flags override it)")
    p.add_argument("--quick", action="store_true", help="small, fast configuration")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(float(v)) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _game_options(p):
    """The games' options shared by ``audit`` and ``train`` (read by :func:`strategic_feedback_env.experiments.audit.env_config`)."""
    p.add_argument("--n-labelers", type=int, default=5)
    p.add_argument("--n-outcomes", type=int, default=10, help="K of the reward-report game (default 10)")
    p.add_argument("--lam", type=float, default=0.1, help="lam of sw_max / affine_maximizer (default 0.1)")
    p.add_argument("--max-cycles", type=int, default=10, help="rounds per reward-report episode (default 10)")
    p.add_argument("--online-cycles", type=int, default=100, help="rounds per online-game episode (default 100)")
    p.add_argument("--bias", type=float, default=0.1, help="online labelers' bias beta_i (default 0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sfe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("audit", help="empirical DSIC audit: every mechanism against every adversary")
    p.add_argument("--mechanisms", type=_names, default=None,
                   help="mechanisms to audit (default: all registered: sw_max, affine_maximizer in the reward-report "
                        "game; average, median, online_weighted, hedge in the online game)")
    p.add_argument("--adversaries", type=_names, default=None,
                   help="adversaries (default: all that play each game: exaggerate, mix, size_scaling, random, "
                        "gradient | shade, extreme, random, myopic; and ppo, sac, shared)")
    p.add_argument("--episodes", type=int, default=20, help="paired evaluation episodes per cell (default 20)")
    p.add_argument("--focal", type=_names, default=None, help="labelers that deviate, e.g. labeler_0 (default all)")
    _game_options(p)
    p.add_argument("--ppo-timesteps", type=int, default=20_000, help="PPO (and shared/independent) steps")
    p.add_argument("--sac-timesteps", type=int, default=10_000, help="SAC training steps")
    p.add_argument("--gradient-steps", type=int, default=150, help="ascent steps of the gradient adversary")
    p.add_argument("--coalition", type=_names, action="append", default=None,
                   help="a coalition, e.g. labeler_0,labeler_1 (repeatable): adds the coalition_* adversaries")
    p.add_argument("--coalition-size", type=int, default=None, help="audit every coalition of this many labelers")
    p.add_argument("--max-coalitions", type=int, default=10, help="cap on --coalition-size coalitions (default 10)")
    p.add_argument("--sybils", type=int, default=None,
                   help="identities each focal labeler enters as (false names): adds the sybil_* adversaries")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("train", help="train RL labelers on a game and mechanism, save them, report their gain")
    p.add_argument("--game", default="reward_report_v0", choices=["reward_report_v0", "online_feedback_v0"],
                   help="the game; it must be the mechanism's (online rules play online_feedback_v0)")
    p.add_argument("--mechanism", default="sw_max", help="mechanism name (default sw_max)")
    p.add_argument("--algo", default="ppo", choices=["ppo", "sac"])
    p.add_argument("--mode", default="best-response", choices=["best-response", "independent", "shared"],
                   help="one labeler learns against truthful others, all learn independently, or one shared policy")
    p.add_argument("--timesteps", type=int, default=20_000)
    _game_options(p)
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes (default 20)")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to <run folder>/tensorboard")
    p.add_argument("--backend", dest="trainer", default="sb3", choices=["sb3", "rllib"],
                   help="stable-baselines3 in this process (default) or RLlib multi-agent PPO (needs the [ray] extra; "
                        "--mode independent = one policy per labeler, shared = one shared policy)")
    p.add_argument("--iterations", type=int, default=20, help="RLlib training iterations (--backend rllib)")
    _common(p)

    p = sub.add_parser("bench", help="steps per second of our envs against PettingZoo's, and scaling in n and K")
    _common(p)

    p = sub.add_parser("reproduce", help="reproduce [SUN] App. F tables")
    p.add_argument("table", choices=["sun-table1", "sun-table2", "sun-three-groups"], help="which table")
    p.add_argument("--samples", type=int, default=100_000, help="random instances for Table 1 (default 100000)")
    p.add_argument("--lam", type=float, default=0.01, help="lam of the KL SW-Max rule (default 0.01)")
    p.add_argument("--regularizer", default="kl", choices=["kl", "chi2", "tv"])
    p.add_argument("--noise-levels", type=_floats, default=[0.001, 0.01, 0.05, 0.1],
                   help="eps of the Thm 4.12 sweep (default 0.001,0.01,0.05,0.1)")
    p.add_argument("--noise-samples", type=int, default=5000, help="instances per eps in the Thm 4.12 sweep")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("regret", help="[HD] cumulative regret vs horizon, with log-log slopes")
    p.add_argument("--mechanisms", type=_names, default=["average", "median", "online_weighted", "hedge"])
    p.add_argument("--horizons", type=_ints, default=[1000, 3162, 10000, 31623, 100000])
    p.add_argument("--games", type=int, default=8, help="independent games (seeds) per cell (default 8)")
    p.add_argument("--strategies", type=_names, default=["truthful", "shade", "extreme", "learned"],
                   help="labeler strategies (default all: truthful, shade, extreme, learned = PPO best response)")
    p.add_argument("--outcome-model", default="probability", choices=["probability", "bernoulli"])
    p.add_argument("--n-labelers", type=int, default=5)
    p.add_argument("--bias", type=float, default=0.1, help="every labeler's bias beta_i (default 0.1)")
    p.add_argument("--learn-timesteps", type=int, default=20_000, help="PPO steps of the 'learned' strategy")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("horizon", help="[HD] long-horizon phase diagram: does misreporting pay over (T, beta, n)?")
    p.add_argument("--mechanisms", type=_names, default=["online_weighted", "average", "median"])
    p.add_argument("--adversaries", type=_names, default=["myopic", "ppo"], help="myopic and/or ppo (default both)")
    p.add_argument("--horizons", type=_ints, default=[50, 200, 1000, 3000, 10000], help="horizons T")
    p.add_argument("--biases", type=_floats, default=[0.0, 0.05, 0.1, 0.2, 0.4], help="every labeler's bias beta")
    p.add_argument("--ns", type=_ints, default=[3, 5, 10], help="numbers of labelers n")
    p.add_argument("--games", type=int, default=16, help="paired games per cell (default 16)")
    p.add_argument("--ppo-timesteps", type=int, default=20_000, help="PPO training steps per cell")
    p.add_argument("--grid", type=int, default=201, help="grid points of the myopic adversary (default 201)")
    p.add_argument("--gamma", type=float, default=1.0, help="myopic value of next-round weight (default 1)")
    p.add_argument("--outcome-model", default="bernoulli", choices=["bernoulli", "probability"])
    add_backend_arguments(p)
    _common(p)
    return parser


QUICK = {
    "audit": {"n_labelers": 3, "n_outcomes": 4, "episodes": 8, "max_cycles": 5, "online_cycles": 50,
              "focal": ["labeler_0"], "ppo_timesteps": 3000, "sac_timesteps": 3000, "gradient_steps": 60},
    "train": {"timesteps": 3000, "n_labelers": 3, "n_outcomes": 4, "episodes": 8, "max_cycles": 5},
    "reproduce": {"samples": 20_000, "noise_samples": 1000},
    "regret": {"horizons": [1000, 3000, 10000], "games": 6, "learn_timesteps": 3000},
    "horizon": {"horizons": [50, 200, 1000], "biases": [0.0, 0.2], "ns": [3, 5], "games": 12, "ppo_timesteps": 2000},
}


def parse(argv) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]
    defaults = {}
    if args.quick:
        defaults.update(QUICK.get(args.command, {}))
    if args.config:
        config = load_config(args.config)
        known = {a.dest for a in sub._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            raise CliError(f"sfe {args.command}: unknown option(s) {unknown} in {args.config}")
        defaults.update(config)
    if defaults:
        sub.set_defaults(**defaults)
        args = parser.parse_args(argv)
    return args


# Where cells run does not change results (tests check local == ray), so it is not part of the
# run's identity and a run may be resumed on another backend.
RUN_SETTINGS = ("out", "force", "resume", "config", "progress", "backend", "address", "num_cpus")


def open_run(args, exclude=RUN_SETTINGS) -> RunFolder:
    config = {k: v for k, v in vars(args).items() if k not in exclude}
    path = args.out or default_run_path(args.command if args.command != "reproduce" else args.table, args.seed)
    if args.resume and not args.out:
        raise CliError(f"sfe {args.command}: --resume needs --out naming the run folder to continue")
    return RunFolder(path, config, command=args.command, force=args.force, resume=args.resume)


# Optional dependencies and the extra that installs them (README "Scaling out", "Performance").
EXTRA_OF_MODULE = {"ray": "ray", "pygame": "bench", "supersuit": "bench"}


def missing_dependency_message(exc: ImportError) -> str:
    """One line for a missing optional package, naming the extra that installs it."""
    name = exc.name or getattr(exc.__cause__, "name", None) or ""
    extra = EXTRA_OF_MODULE.get(name.split(".")[0])
    if extra is None or f"[{extra}]" in str(exc):
        return str(exc)
    return f"{exc}; install the extra: pip install -e \".[{extra}]\""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
        from . import commands

        return getattr(commands, args.command)(args) or 0
    except (CliError, RunFolderError, ValueError, OSError) as exc:
        print(f"sfe: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"sfe: error: {missing_dependency_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfe: interrupted; finished parts are kept (continue with --resume --out <folder>)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
