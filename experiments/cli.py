"""``sfe``: the command line of strategic_feedback_env.

Subcommands: ``audit`` (empirical DSIC audit), ``regret`` ([HD] regret slopes),
``reproduce`` ([SUN] App. F tables), ``train`` (RL labelers), ``bench`` (speed),
``horizon`` ([HD] long-horizon phase diagram) and ``rerun`` (run again from a run folder's
record). Each run writes to a fresh folder (``--out``, default
``runs/<command>-<time>-seed<seed>``), prints a table and a summary line saying where the
results went. Options can come from a TOML/YAML/JSON file (``--config``); flags override it.
Errors are one line, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .config_files import load_config
from .options import (
    MAX_SEED,
    audit_adversaries,
    audit_mechanism,
    finite_float,
    float_in,
    horizon_adversaries,
    horizon_mechanisms,
    int_at_least,
    labeler_id,
    listed,
    one_of,
    positive_float,
    regret_mechanisms,
    regret_strategies,
    pairs_asked,
)
from .ray_backend import add_backend_arguments, import_ray
from .results import RunFolder, RunFolderError, default_run_path


class CliError(ValueError):
    """A user error reported as one line."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise CliError(f"{message} (see {self.prog} --help)")


TWO_LABELERS = "a game of one labeler has no one to misreport against"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int_at_least(0, maximum=MAX_SEED), default=0, help="random seed")
    _run_settings(p)
    p.add_argument("--config", default=None, help="TOML, YAML or JSON file of option values (flags override it); "
                                                  "a run's config.json reruns it")
    p.add_argument("--quick", action="store_true", help="small, fast configuration")


def _run_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=None, help="run folder (default runs/<command>-<time>-seed<seed>)")
    p.add_argument("--force", action="store_true", help="replace an existing run folder of sfe (only the files it wrote)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out, keeping finished parts")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def _game_options(p):
    """The games' options shared by ``audit`` and ``train`` (read by :func:`strategic_feedback_env.experiments.audit.env_config`)."""
    p.add_argument("--n-labelers", type=int_at_least(2, TWO_LABELERS), default=5, help="labelers per game")
    p.add_argument("--n-outcomes", type=int_at_least(2, "one outcome leaves nothing to choose"), default=10,
                   help="K of the reward-report game")
    p.add_argument("--lam", type=positive_float, default=0.1, help="lam of sw_max / affine_maximizer")
    p.add_argument("--max-cycles", type=int_at_least(1), default=10, help="rounds per reward-report episode")
    p.add_argument("--online-cycles", type=int_at_least(1), default=100, help="rounds per online-game episode")
    p.add_argument("--bias", type=finite_float, default=0.1, help="online labelers' bias beta_i")
    p.add_argument("--pairs", type=pairs_asked, default="all",
                   help="pairs asked per labeler and round in the preference game: all or a number")


def build_parser() -> argparse.ArgumentParser:
    """The parser; ``parser.commands`` maps each subcommand to its subparser."""
    parser = _Parser(prog="sfe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("audit", help="empirical DSIC audit: every mechanism against every adversary")
    p.add_argument("--mechanisms", type=listed(audit_mechanism, what="mechanisms"), default=None,
                   help="mechanisms to audit (default: all registered: sw_max, affine_maximizer, median_of_mles in the "
                        "reward-report game; average, median, online_weighted, hedge in the online game; and "
                        "<mechanism>@<per_labeler|pooled> in the preference game: sw_max and affine_maximizer on both "
                        "fits, median_of_mles@per_labeler); a practical cell is <mechanism>:<key>=<value>,..., "
                        "as --suite practical names them")
    p.add_argument("--adversaries", type=listed(one_of(audit_adversaries, "adversary"), what="adversaries"),
                   default=None,
                   help="adversaries (default: all that play each game: exaggerate, mix, size_scaling, random, "
                        "gradient | shade, extreme, random, myopic | prefer_top, invert_others_top, sharpen, random, "
                        "gradient; and ppo, sac, shared)")
    p.add_argument("--episodes", type=int_at_least(2, "a confidence interval needs two"), default=20,
                   help="paired evaluation episodes per cell")
    p.add_argument("--focal", type=listed(labeler_id, what="labeler ids"), default=None,
                   help="labelers that deviate, e.g. labeler_0,labeler_2 (default all)")
    _game_options(p)
    p.add_argument("--ppo-timesteps", type=int_at_least(1), default=20_000, help="PPO (and shared/independent) steps")
    p.add_argument("--sac-timesteps", type=int_at_least(1), default=10_000, help="SAC training steps")
    p.add_argument("--gradient-steps", type=int_at_least(1), default=150, help="ascent steps of the gradient and interim adversaries")
    p.add_argument("--suite", type=one_of(lambda: ("default", "practical"), "suite"), default="default",
                   help="default: every registered mechanism; practical: the [SUN] rules as run (docs/model.md §4)")
    p.add_argument("--coalition", type=listed(labeler_id, what="labeler ids"), action="append", default=None,
                   help="a coalition, e.g. labeler_0,labeler_1 (repeatable): adds the coalition_* adversaries")
    p.add_argument("--coalition-size", type=int_at_least(1), default=None,
                   help="audit every coalition of this many labelers")
    p.add_argument("--max-coalitions", type=int_at_least(1), default=10, help="cap on --coalition-size coalitions")
    p.add_argument("--sybils", type=int_at_least(1, "identities of one labeler"), default=None,
                   help="identities each focal labeler enters as (false names): adds the sybil_* adversaries")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("train", help="train RL labelers on a game and mechanism, save them, report their gain")
    p.add_argument("--game", default="reward_report_v0",
                   choices=["reward_report_v0", "online_feedback_v0", "preference_report_v0"],
                   help="the game; it must be the mechanism's (online rules play online_feedback_v0)")
    p.add_argument("--mechanism", type=audit_mechanism, default="sw_max", help="mechanism name")
    p.add_argument("--algo", default="ppo", choices=["ppo", "sac"], help="learning algorithm")
    p.add_argument("--mode", default="best-response", choices=["best-response", "independent", "shared"],
                   help="one labeler learns against truthful others, all learn independently, or one shared policy")
    p.add_argument("--timesteps", type=int_at_least(1), default=20_000, help="training steps")
    _game_options(p)
    p.add_argument("--episodes", type=int_at_least(2, "a confidence interval needs two"), default=20,
                   help="evaluation episodes")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to <run folder>/tensorboard")
    p.add_argument("--backend", dest="trainer", default="sb3", choices=["sb3", "rllib"],
                   help="stable-baselines3 in this process or RLlib multi-agent PPO (needs the [ray] extra; "
                        "--mode independent = one policy per labeler, shared = one shared policy)")
    p.add_argument("--iterations", type=int_at_least(1), default=20, help="RLlib training iterations (--backend rllib)")
    _common(p)

    p = sub.add_parser("bench", help="steps per second of our envs against PettingZoo's, and scaling in n and K")
    _common(p)

    p = sub.add_parser("reproduce", help="reproduce [SUN] App. F tables")
    p.add_argument("table", nargs="?", default=None, choices=["sun-table1", "sun-table2", "sun-three-groups"],
                   help="which table (required; may come from --config)")
    p.add_argument("--samples", type=int_at_least(2, "a confidence interval needs two"), default=100_000,
                   help="random instances for Table 1")
    p.add_argument("--lam", type=positive_float, default=0.01, help="lam of the KL SW-Max rule")
    p.add_argument("--regularizer", default="kl", choices=["kl", "chi2", "tv"], help="regulariser of the rule")
    p.add_argument("--noise-levels", type=listed(float_in(0.0, 1.0), what="noise levels"),
                   default=[0.001, 0.01, 0.05, 0.1], help="eps of the Thm 4.12 sweep, each in (0, 1]")
    p.add_argument("--noise-samples", type=int_at_least(1), default=5000, help="instances per eps in the Thm 4.12 sweep")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("regret", help="[HD] cumulative regret vs horizon, with log-log slopes")
    p.add_argument("--mechanisms", type=listed(one_of(regret_mechanisms, "mechanism"), what="mechanisms"),
                   default=["average", "median", "online_weighted", "hedge"], help="online mechanisms to compare")
    p.add_argument("--horizons", type=listed(int_at_least(1), min_len=2, what="horizons"),
                   default=[1000, 3162, 10000, 31623, 100000], help="horizons T (at least two, for a slope)")
    p.add_argument("--games", type=int_at_least(2, "a confidence interval needs two"), default=8,
                   help="independent games (seeds) per cell")
    p.add_argument("--strategies", type=listed(one_of(regret_strategies, "strategy"), what="strategies"),
                   default=["truthful", "shade", "extreme", "learned"],
                   help="labeler strategies: truthful, shade, extreme, learned = PPO best response")
    p.add_argument("--outcome-model", default="probability", choices=["probability", "bernoulli"],
                   help="y = q or y ~ Bernoulli(q)")
    p.add_argument("--n-labelers", type=int_at_least(2, "regret is measured against the best of the labelers"),
                   default=5, help="labelers per game")
    p.add_argument("--bias", type=finite_float, default=0.1, help="every labeler's bias beta_i")
    p.add_argument("--learn-timesteps", type=int_at_least(1), default=20_000, help="PPO steps of the 'learned' strategy")
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("horizon", help="[HD] long-horizon phase diagram: does misreporting pay over (T, beta, n)?")
    p.add_argument("--mechanisms", type=listed(one_of(horizon_mechanisms, "mechanism"), what="mechanisms"),
                   default=["online_weighted", "average", "median"])
    p.add_argument("--adversaries", type=listed(one_of(horizon_adversaries, "adversary"), what="adversaries"),
                   default=["myopic", "ppo"], help="myopic and/or ppo")
    p.add_argument("--horizons", type=listed(int_at_least(1), what="horizons"), default=[50, 200, 1000, 3000, 10000],
                   help="horizons T")
    p.add_argument("--biases", type=listed(finite_float, what="biases"), default=[0.0, 0.05, 0.1, 0.2, 0.4],
                   help="every labeler's bias beta")
    p.add_argument("--ns", type=listed(int_at_least(2, TWO_LABELERS), what="numbers of labelers"), default=[3, 5, 10],
                   help="numbers of labelers n")
    p.add_argument("--games", type=int_at_least(2, "a confidence interval needs two"), default=16,
                   help="paired games per cell")
    p.add_argument("--ppo-timesteps", type=int_at_least(1), default=20_000, help="PPO training steps per cell")
    p.add_argument("--grid", type=int_at_least(2), default=201, help="grid points of the myopic adversary")
    p.add_argument("--gamma", type=float_in(0.0, math.inf, low_open=False), default=1.0,
                   help="myopic value of next-round weight")
    p.add_argument("--outcome-model", default="bernoulli", choices=["bernoulli", "probability"])
    add_backend_arguments(p)
    _common(p)

    p = sub.add_parser("rerun", help="run a recorded run again from its config.json (same options, same results)")
    p.add_argument("run", help="a run folder of sfe (holding config.json)")
    _run_settings(p)
    parser.commands = dict(sub.choices)
    return parser


QUICK = {
    "audit": {"n_labelers": 3, "n_outcomes": 4, "episodes": 8, "max_cycles": 5, "online_cycles": 50,
              "focal": ["labeler_0"], "ppo_timesteps": 3000, "sac_timesteps": 3000, "gradient_steps": 60},
    "train": {"timesteps": 3000, "n_labelers": 3, "n_outcomes": 4, "episodes": 8, "max_cycles": 5},
    "reproduce": {"samples": 20_000, "noise_samples": 1000},
    "regret": {"horizons": [1000, 3000, 10000], "games": 6, "learn_timesteps": 3000},
    "horizon": {"horizons": [50, 200, 1000], "biases": [0.0, 0.2], "ns": [3, 5], "games": 12, "ppo_timesteps": 2000},
}

# Where and how a run is executed, not what it computes: not part of the run's identity (a run
# may be resumed on another backend; tests check local == ray), so not compared on --resume.
RUN_SETTINGS = ("out", "force", "resume", "config", "progress", "backend", "address", "num_cpus")


def _options(sub: argparse.ArgumentParser) -> dict:
    """``key -> action`` for the options a config file may set: each dest, and each flag's name
    (``no_progress`` as well as ``progress``)."""
    keys = {}
    for action in sub._actions:
        if action.dest in ("help", "config"):
            continue
        keys[action.dest] = action
        for flag in action.option_strings:
            keys.setdefault(flag.lstrip("-").replace("-", "_"), action)
    return keys


def _text(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _file_tokens(key, value, action, path) -> list[str]:
    """The command-line tokens that mean ``key = value`` of a config file."""
    if isinstance(action, argparse._AppendAction) and isinstance(value, list) and value and all(
            isinstance(v, list) for v in value):  # a repeatable option (--coalition): one flag per entry
        return [token for v in value for token in _file_tokens(key, v, action, path)]
    if action.nargs == 0:  # a flag: true/false in the file
        if not isinstance(value, bool):
            raise CliError(f"in {path}: {key} must be true or false, got {value!r}")
        wanted = action.const if key == action.dest else True
        return [action.option_strings[-1]] if value == wanted else []
    if value is None:
        if action.default is None:
            return []
        raise CliError(f"in {path}: {key} = null is not a value; give one or leave {key} out "
                       f"(default {action.default!r})")
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, (str, int, float)) for v in items):
        raise CliError(f"in {path}: {key} must be a number, a string or a list of them, got {value!r}")
    text = ",".join(_text(v) for v in items)
    return [text] if not action.option_strings else [f"{action.option_strings[-1]}={text}"]


def file_options(sub: argparse.ArgumentParser, command: str, path) -> dict:
    """The options set by config file ``path``, each parsed by ``sub`` exactly as its flag is."""
    config = load_config(path, command)
    keys = _options(sub)
    unknown = sorted(k for k in config if k not in keys)
    if unknown:
        raise CliError(f"in {path}: unknown option(s) {', '.join(unknown)} for sfe {command}; "
                       f"see sfe {command} --help")
    positional, tokens = [], []
    for key, value in config.items():
        action = keys[key]
        (tokens if action.option_strings else positional).extend(_file_tokens(key, value, action, path))
    try:
        parsed = sub.parse_args(positional + tokens)
    except CliError as exc:
        raise CliError(f"in {path}: {exc}") from None
    return {keys[k].dest: getattr(parsed, keys[k].dest) for k in config}


def _rerun_argv(args: argparse.Namespace) -> list[str]:
    """The argv that runs the recorded run in ``args.run`` again."""
    record_path = Path(args.run) / "config.json"
    try:
        command = json.loads(record_path.read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CliError(f"sfe rerun: {args.run} is not a run folder of sfe (no readable config.json with a command)") from None
    argv = [command, "--config", str(record_path)]
    out = args.run if args.resume and args.out is None else args.out  # --resume continues the run itself
    if out is not None:
        argv.append(f"--out={out}")
    argv += [flag for flag, on in (("--force", args.force), ("--resume", args.resume),
                                   ("--no-progress", not args.progress)) if on]
    return argv


def parse(argv) -> argparse.Namespace:
    """Parsed options: flags over config-file values over ``--quick`` settings over defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rerun":
        argv = _rerun_argv(args)
        args = parser.parse_args(argv)
    sub = parser.commands[args.command]
    values = file_options(sub, args.command, args.config) if args.config else {}
    quick = args.quick or values.get("quick", False)
    defaults = {**(QUICK.get(args.command, {}) if quick else {}), **values}
    if defaults:
        sub.set_defaults(**defaults)
        args = parser.parse_args(argv)
    if args.command == "reproduce" and args.table is None:
        sub.error("the following arguments are required: table")
    args.recorded_options = [d for d in dict.fromkeys(a.dest for a in sub._actions)
                             if d not in ("help", "command", *RUN_SETTINGS)]
    return args


def run_config(args) -> dict:
    """Every option of the run that decides its results (defaults included)."""
    return {k: getattr(args, k) for k in args.recorded_options}


def open_run(args, resolved: dict | None = None) -> RunFolder:
    """The run folder, once every option is checked (the first side effect of a command).
    ``resolved``: what the options resolved to (cells, labelers), recorded in ``config.json``."""
    if args.resume and args.force:
        raise CliError(f"sfe {args.command}: --resume continues a run and --force replaces it; pass one")
    if args.resume and not args.out:
        raise CliError(f"sfe {args.command}: --resume needs --out naming the run folder to continue")
    if getattr(args, "backend", "local") == "ray":
        import_ray()
    path = args.out or default_run_path(args.command if args.command != "reproduce" else args.table, args.seed)
    run = {k: getattr(args, k) for k in RUN_SETTINGS if hasattr(args, k) and k != "out"}
    folder = RunFolder(path, run_config(args), command=args.command, force=args.force, resume=args.resume,
                       extra={"resolved": resolved or {}, "run": run})
    args.run_folder = folder.path
    return folder


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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
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
    except MemoryError:  # the estimate checked before the run fell short
        print("sfe: error: out of memory; finished parts are kept: rerun with smaller sizes or on a larger machine",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        folder = getattr(args, "run_folder", None)
        where = f"finished parts are kept in {folder} (continue with: sfe rerun {folder} --resume)" if folder \
            else "no run folder was made yet"
        print(f"sfe: interrupted; {where}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
