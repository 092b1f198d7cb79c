"""``sfe audit``: the empirical DSIC audit of every mechanism against every adversary.

Each registered mechanism is audited in the game it belongs to: online rules (``average``,
``median``, ``online_weighted``, ``hedge``) in the online-feedback game of [HD], the others
(``sw_max``, ``affine_maximizer``, ``median_of_mles``) in the reward-report game of [SUN], and the
preference game (docs/model.md §6) under the names ``<mechanism>@<reward model>`` of
``PREFERENCE_MECHANISMS`` (e.g. ``sw_max@pooled``: SW-Max on the pooled BT fit). One cell = (game,
mechanism, adversary): a call of
:func:`strategic_feedback_env.agents.audit` whose overall and per-labeler rows are saved as a part, so an
interrupted audit resumes where it stopped (docs/model.md §3).

``--suite practical`` audits the [SUN] mechanism as it is run (docs/model.md §4): a grid of
training rules (solver x steps) and payment heuristics, fixed and soup menus, each a cell
label ``name:key=value;key=value`` (e.g. ``affine_maximizer:solver=mirror_ascent;steps=3;
payment=checkpoints``; ``menu=fixed`` is a report-independent menu built for ``K``). Its
figure plots the best adversary's gain against the truthful optimisation gap.
"""

from __future__ import annotations

import numpy as np

from strategic_feedback_env import mechanisms
import strategic_feedback_env
from strategic_feedback_env.agents import adversary_names
from strategic_feedback_env.agents import audit as run_audit
from strategic_feedback_env.agents.calibration import NOT_APPLICABLE
from strategic_feedback_env.agents.coalition import (COALITION_ADVERSARIES, SYBIL_ADVERSARIES, check_coalition,
                                                     coalitions_of_size)
from strategic_feedback_env.agents.dsic_audit import DEFAULT_ADVERSARIES
from strategic_feedback_env.labeler_game import agent_index
from strategic_feedback_env.preference_report.rules import REWARD_MODELS

# The preference game's audited mechanisms: a reward-report mechanism on a BT reward model.
PREFERENCE_MECHANISMS = ("sw_max@per_labeler", "sw_max@pooled", "affine_maximizer@per_labeler",
                         "affine_maximizer@pooled", "median_of_mles@per_labeler")
GAMES = ("reward_report_v0", "online_feedback_v0", "preference_report_v0")


SUITES = ("default", "practical")
PRACTICAL_ADVERSARIES = ("exaggerate", "size_scaling", "random", "gradient", "interim", "ppo", "sac", "shared")
PRACTICAL_QUICK_ADVERSARIES = ("exaggerate", "size_scaling", "gradient", "interim", "ppo")
PRACTICAL_COLUMNS = ["mechanism", "adversary", "gain", "gain_ci", "optimisation_gap", "gain_over_gap", "payment",
                     "negative_payment_share", "ir_violations", "social_welfare", "white_box_share", "white_box_share_ci",
                     "white_box", "verdict"]


def practical_labels(quick: bool) -> list[str]:
    """The practical suite's cells: exact rules, mirror ascent / policy gradient x steps x payment
    heuristic, Heuristic 2 (early-stopped payments), a fixed menu and Rewarded Soups."""
    steps = (1, 3, 10, 30) if quick else (1, 3, 10, 30, 100)
    labels = ["sw_max", "affine_maximizer"]
    for solver, budget in (("mirror_ascent", steps), ("policy_gradient", (10,) if quick else steps)):
        for payment in ("exact", "checkpoints") if quick else ("exact", "same_solver", "checkpoints"):
            labels += [f"affine_maximizer:solver={solver};steps={T};payment={payment}" for T in budget]
    labels.append("affine_maximizer:payment=early_stopped;payment_steps=1")
    if not quick:
        labels.append("affine_maximizer:solver=mirror_ascent;steps=30;payment=early_stopped;payment_steps=3")
    return labels + ["affine_maximizer:menu=fixed", "affine_maximizer:menu=soups"]


def parse_label(label: str, n_outcomes: int) -> tuple[str, dict]:
    """``(mechanism name, params)`` of a cell label ``name[:key=value;...]``; ``menu=fixed`` is
    the report-independent menu of :func:`fixed_menu`."""
    name, _, spec = label.partition(":")
    params = {}
    for item in filter(None, spec.split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"mechanism label {label!r}: expected key=value, got {item!r}")
        params[key] = value
        for cast in (int, float):
            try:
                params[key] = cast(value)
                break
            except ValueError:
                continue
    if params.get("menu") == "fixed":
        params["menu"] = fixed_menu(n_outcomes).tolist()
    return name, params


def fixed_menu(K: int) -> np.ndarray:
    """A menu fixed before any report: the uniform policy and, per outcome, ``0.6`` on it and
    the rest spread evenly (``K + 1`` rows)."""
    return np.vstack([np.full(K, 1.0 / K), 0.6 * np.eye(K) + 0.4 / K])


def game_of(mechanism: str) -> str:
    """The game a mechanism (or a practical cell label, :func:`parse_label`) is audited in:
    online rules (weights carried over rounds) in the online-feedback game, the others (SW-Max
    family) in the reward-report game, and ``<mechanism>@<reward model>`` in the preference game."""
    if "@" in mechanism:
        base, model = mechanism.split("@", 1)
        if model not in REWARD_MODELS or game_of(base) != "reward_report_v0":
            raise ValueError(f"unknown preference-game mechanism {mechanism!r}: use <mechanism>@<reward model> with a "
                             f"reward-report mechanism and one of {REWARD_MODELS}, e.g. {PREFERENCE_MECHANISMS[0]}")
        return "preference_report_v0"
    mechanism = mechanism.partition(":")[0]
    if mechanism not in mechanisms.available():
        raise ValueError(f"unknown mechanism {mechanism!r}; available: {', '.join(mechanisms.available())}")
    return "online_feedback_v0" if mechanisms.make(mechanism).online else "reward_report_v0"


def env_config(args, mechanism: str) -> dict:
    """The game config of one mechanism's cells, from the command's options."""
    if game_of(mechanism) == "preference_report_v0":
        base, model = mechanism.split("@", 1)
        config = {k: v for k, v in env_config(args, base).items() if k != "report_size"}  # sizes are not reported
        return {**config, "reward_model": model, "pairs": args.pairs}
    if game_of(mechanism) == "reward_report_v0":
        mechanism, practical = parse_label(mechanism, args.n_outcomes)
        params = {"lam": args.lam, **practical} if "lam" in mechanisms.parameters(mechanism) else practical
        return {"n_labelers": args.n_labelers, "n_outcomes": args.n_outcomes, "mechanism": mechanism,
                "mechanism_params": params, "report_size": True, "max_cycles": args.max_cycles}
    return {"n_labelers": args.n_labelers, "mechanism": mechanism, "biases": args.bias,
            "max_cycles": args.online_cycles}


def cells(args) -> list[tuple[str, str]]:
    """(mechanism, adversary) pairs to run, in order; unknown names raise ``ValueError``."""
    practical = getattr(args, "suite", "default") == "practical"
    if practical:
        defaults = PRACTICAL_QUICK_ADVERSARIES if args.quick else PRACTICAL_ADVERSARIES
        default_adversaries = {"reward_report_v0": defaults}
    else:
        default_adversaries = DEFAULT_ADVERSARIES
    names = args.mechanisms or (practical_labels(args.quick) if practical else
                                [*sorted(mechanisms.available(), key=lambda m: GAMES.index(game_of(m))),
                                 *PREFERENCE_MECHANISMS])
    known = sorted(set().union(*(adversary_names(game) for game in GAMES)))
    unknown = sorted(set(args.adversaries or []) - set(known))
    if unknown:
        raise ValueError(f"unknown adversary(ies) {unknown}; available: {', '.join(known)}")
    out = []
    for mech in names:
        game = game_of(mech)
        playable = adversary_names(game)
        chosen = args.adversaries or _defaults(args, game, default_adversaries)
        out += [(mech, adv) for adv in chosen if adv in playable]
    if not out:
        raise ValueError(f"none of the adversaries {args.adversaries} plays the game of {', '.join(names)}")
    return out


def _defaults(args, game, defaults) -> list[str]:
    """The default adversaries of ``game`` (``defaults[game]``: the suite's), with the group ones that
    ``--coalition``/``--coalition-size`` and ``--sybils`` ask for."""
    names = list(defaults[game])
    if args.coalition or args.coalition_size is not None:
        names += list(COALITION_ADVERSARIES)
    if args.sybils is not None:
        names += list(SYBIL_ADVERSARIES)
    return names


def coalitions(args, agents) -> list[list[str]] | None:
    """The coalitions of ``--coalition`` and ``--coalition-size`` (capped by ``--max-coalitions``),
    each checked; None when neither is given (the audit's default coalition)."""
    if not args.coalition and args.coalition_size is None:
        return None
    chosen = [check_coalition(c, agents) for c in args.coalition or []]
    if args.coalition_size is not None:
        chosen += [c for c in coalitions_of_size(agents, args.coalition_size, args.max_coalitions) if c not in chosen]
    return chosen


def check_options(args, todo) -> None:
    """Build each audited mechanism's game and check the focal labelers and training budgets, so
    bad options fail (``ValueError``) before a run folder is made."""
    for name in ("episodes", "ppo_timesteps", "sac_timesteps", "gradient_steps"):
        minimum = 2 if name == "episodes" else 1
        if getattr(args, name) < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(args, name)}")
    for mech in dict.fromkeys(m for m, _ in todo):
        game = strategic_feedback_env.make(game_of(mech), **env_config(args, mech))
        for agent in args.focal or []:
            agent_index(agent, game.n, "--focal")
        coalitions(args, game.possible_agents)
        if args.sybils is not None:
            try:
                strategic_feedback_env.make(game_of(mech), **env_config(args, mech), sybils=args.sybils)
            except ValueError as exc:
                raise ValueError(f"--sybils: {exc}") from None


def run_cell(args, mechanism: str, adversary: str) -> dict:
    """One audit cell: overall row (with the mechanism's name) and per-labeler rows."""
    game = game_of(mechanism)
    learn = {
        "ppo": {"timesteps": args.ppo_timesteps},
        "sac": {"timesteps": args.sac_timesteps},
        "shared": {"timesteps": args.ppo_timesteps},
        "independent": {"timesteps": args.ppo_timesteps},
        "gradient": {"steps": args.gradient_steps},
        "interim": {"steps": args.gradient_steps},
    }
    focal = None if args.focal is None else list(args.focal)
    agents = strategic_feedback_env.make(game, **env_config(args, mechanism)).possible_agents
    result = run_audit(env_config(args, mechanism), adversaries=[adversary], episodes=args.episodes,
                       seed=args.seed, game=game, focal_agents=focal, learn=learn,
                       coalitions=coalitions(args, agents), sybils=args.sybils)
    truthful, row, *group_rows = result.overall  # one row per coalition / sybil labeler after the first
    tag = {"game": game, "mechanism": mechanism}
    return {
        "overall": {**tag, **row},
        "labelers": [{**tag, **r} for r in result.labelers],
        "truthful": {**tag, **truthful},
        "group_rows": [{**tag, **r} for r in group_rows],
    }


def run_cell_pair(args, pair) -> dict:
    """:func:`run_cell` on a ``(mechanism, adversary)`` pair (the form the Ray backend maps over)."""
    return run_cell(args, *pair)


def plot_gain_vs_gap(rows: list[dict]):
    """The practical suite's figure: per mechanism cell, the best adversary's gain against the
    truthful optimisation gap (both per episode), with the bound ``gain <= gap`` of exact
    payments (docs/model.md §4); colour = payment rule."""
    from matplotlib.figure import Figure

    best = {}
    for r in rows:
        if r["adversary"] == "truthful" or str(r["verdict"]).startswith(NOT_APPLICABLE):
            continue
        if r["mechanism"] not in best or r["gain"] > best[r["mechanism"]]["gain"]:
            best[r["mechanism"]] = r
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    kinds = {}
    for label, r in best.items():
        name, params = parse_label(label, 1)
        kind = ("no payment" if name == "sw_max" else "menu (exact over menu)" if "menu" in params
                else f"payment={params.get('payment', 'exact')}")
        kinds.setdefault(kind, []).append((r["optimisation_gap"], r["gain"]))
    for kind, points in sorted(kinds.items()):
        xs, ys = zip(*points)
        ax.scatter(xs, ys, label=kind, s=25)
    top = max([max(x, y) for pts in kinds.values() for x, y in pts] + [1e-3])
    line = np.linspace(0.0, top, 400)
    ax.plot(line, line, color="black", lw=0.8, ls="--", label="gain = gap (the bound with exact payments)")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_xlim(0.0, 1.3 * top)
    ax.set_xlabel("optimisation gap of the truthful run (per episode; symlog)")
    ax.set_ylabel("best adversary's gain (per episode)")
    ax.set_title("practical [SUN] rules: gain vs optimisation gap")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
