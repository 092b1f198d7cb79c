"""``sfe audit``: the empirical DSIC audit of every mechanism against every adversary.

Each registered mechanism is audited in the game it belongs to: online rules (``average``,
``median``, ``online_weighted``, ``hedge``) in the online-feedback game of [HD], the others
(``sw_max``, ``affine_maximizer``, ``median_of_mles``) in the reward-report game of [SUN], and the
preference game (docs/model.md §6) under the names ``<mechanism>@<reward model>`` of
``PREFERENCE_MECHANISMS`` (e.g. ``sw_max@pooled``: SW-Max on the pooled BT fit). One cell = (game,
mechanism, adversary): a call of
:func:`strategic_feedback_env.agents.audit` whose overall and per-labeler rows are saved as a part, so an
interrupted audit resumes where it stopped (docs/model.md §3).
"""

from __future__ import annotations

from strategic_feedback_env import mechanisms
import strategic_feedback_env
from strategic_feedback_env.agents import adversary_names
from strategic_feedback_env.agents import audit as run_audit
from strategic_feedback_env.agents.dsic_audit import DEFAULT_ADVERSARIES
from strategic_feedback_env.labeler_game import agent_index
from strategic_feedback_env.preference_report.rules import REWARD_MODELS

# The preference game's audited mechanisms: a reward-report mechanism on a BT reward model.
PREFERENCE_MECHANISMS = ("sw_max@per_labeler", "sw_max@pooled", "affine_maximizer@per_labeler",
                         "affine_maximizer@pooled", "median_of_mles@per_labeler")
GAMES = ("reward_report_v0", "online_feedback_v0", "preference_report_v0")


def game_of(mechanism: str) -> str:
    """The game a mechanism is audited in: online rules (weights carried over rounds) in the
    online-feedback game, the others (SW-Max family) in the reward-report game, and
    ``<mechanism>@<reward model>`` in the preference game."""
    if "@" in mechanism:
        base, model = mechanism.split("@", 1)
        if model not in REWARD_MODELS or game_of(base) != "reward_report_v0":
            raise ValueError(f"unknown preference-game mechanism {mechanism!r}: use <mechanism>@<reward model> with a "
                             f"reward-report mechanism and one of {REWARD_MODELS}, e.g. {PREFERENCE_MECHANISMS[0]}")
        return "preference_report_v0"
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
        params = {"lam": args.lam} if "lam" in mechanisms.parameters(mechanism) else {}
        return {"n_labelers": args.n_labelers, "n_outcomes": args.n_outcomes, "mechanism": mechanism,
                "mechanism_params": params, "report_size": True, "max_cycles": args.max_cycles}
    return {"n_labelers": args.n_labelers, "mechanism": mechanism, "biases": args.bias,
            "max_cycles": args.online_cycles}


def cells(args) -> list[tuple[str, str]]:
    """(mechanism, adversary) pairs to run, in order; unknown names raise ``ValueError``."""
    names = args.mechanisms or [*sorted(mechanisms.available(), key=lambda m: GAMES.index(game_of(m))),
                                *PREFERENCE_MECHANISMS]
    known = sorted(set().union(*(adversary_names(game) for game in GAMES)))
    unknown = sorted(set(args.adversaries or []) - set(known))
    if unknown:
        raise ValueError(f"unknown adversary(ies) {unknown}; available: {', '.join(known)}")
    out = []
    for mech in names:
        game = game_of(mech)
        playable = adversary_names(game)
        out += [(mech, adv) for adv in (args.adversaries or DEFAULT_ADVERSARIES[game]) if adv in playable]
    if not out:
        raise ValueError(f"none of the adversaries {args.adversaries} plays the game of {', '.join(names)}")
    return out


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
    result = run_audit(env_config(args, mechanism), adversaries=[adversary], episodes=args.episodes,
                       seed=args.seed, game=game, focal_agents=focal, learn=learn)
    truthful, row = result.overall
    tag = {"game": game, "mechanism": mechanism}
    return {
        "overall": {**tag, **row},
        "labelers": [{**tag, **r} for r in result.labelers],
        "truthful": {**tag, **truthful},
    }


def run_cell_pair(args, pair) -> dict:
    """:func:`run_cell` on a ``(mechanism, adversary)`` pair (the form the Ray backend maps over)."""
    return run_cell(args, *pair)
