"""``sfe audit``: the empirical DSIC audit of every mechanism against every adversary.

Each registered mechanism is audited in the game it belongs to: online rules (``average``,
``median``, ``online_weighted``, ``hedge``) in the online-feedback game of [HD], the others
(``sw_max``, ``affine_maximizer``) in the reward-report game of [SUN]. One cell = (game, mechanism, adversary): a call of
:func:`strategic_feedback_env.agents.audit` whose overall and per-labeler rows are saved as a part, so an
interrupted audit resumes where it stopped (MODEL.md section 3).
"""

from __future__ import annotations

from strategic_feedback_env import mechanisms
import strategic_feedback_env
from strategic_feedback_env.agents import adversary_names
from strategic_feedback_env.agents import audit as run_audit
from strategic_feedback_env.agents.coalition import (COALITION_ADVERSARIES, SYBIL_ADVERSARIES, check_coalition,
                                                     coalitions_of_size)
from strategic_feedback_env.agents.dsic_audit import DEFAULT_ADVERSARIES
from strategic_feedback_env.labeler_game import agent_index


def game_of(mechanism: str) -> str:
    """The game a mechanism is audited in: online rules (weights carried over rounds) in the
    online-feedback game, the others (SW-Max family) in the reward-report game."""
    if mechanism not in mechanisms.available():
        raise ValueError(f"unknown mechanism {mechanism!r}; available: {', '.join(mechanisms.available())}")
    return "online_feedback_v0" if mechanisms.make(mechanism).online else "reward_report_v0"


def env_config(args, mechanism: str) -> dict:
    """The game config of one mechanism's cells, from the command's options."""
    if game_of(mechanism) == "reward_report_v0":
        params = {"lam": args.lam} if "lam" in mechanisms.parameters(mechanism) else {}
        return {"n_labelers": args.n_labelers, "n_outcomes": args.n_outcomes, "mechanism": mechanism,
                "mechanism_params": params, "report_size": True, "max_cycles": args.max_cycles}
    return {"n_labelers": args.n_labelers, "mechanism": mechanism, "biases": args.bias,
            "max_cycles": args.online_cycles}


def cells(args) -> list[tuple[str, str]]:
    """(mechanism, adversary) pairs to run, in order; unknown names raise ``ValueError``."""
    games = ("reward_report_v0", "online_feedback_v0")
    names = args.mechanisms or sorted(mechanisms.available(), key=lambda m: games.index(game_of(m)))
    known = sorted(set(adversary_names("reward_report_v0")) | set(adversary_names("online_feedback_v0")))
    unknown = sorted(set(args.adversaries or []) - set(known))
    if unknown:
        raise ValueError(f"unknown adversary(ies) {unknown}; available: {', '.join(known)}")
    out = []
    for mech in names:
        game = game_of(mech)
        playable = adversary_names(game)
        out += [(mech, adv) for adv in (args.adversaries or _defaults(args, game)) if adv in playable]
    if not out:
        raise ValueError(f"none of the adversaries {args.adversaries} plays the game of {', '.join(names)}")
    return out


def _defaults(args, game) -> list[str]:
    """The default adversaries of ``game``, with the group ones that ``--coalition``/``--coalition-size``
    and ``--sybils`` ask for."""
    names = list(DEFAULT_ADVERSARIES[game])
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
