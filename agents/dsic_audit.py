"""The empirical DSIC audit: do adversaries that search for misreports gain over truth-telling?

For a game config (mechanism included) and a list of adversaries, :func:`audit` plays
``episodes`` episodes per focal labeler with seeds ``seed + e``:

* the **truthful baseline**: everyone reports its type;
* **unilateral** adversaries (heuristics, the white-box adversaries, learned best
  responses): the focal labeler plays the adversary, the others stay truthful, on the *same*
  seeds (common random numbers: identical types and noise), so the per-episode difference
  of the focal labeler's return is a paired sample of its gain;
* **joint** adversaries (labelers learning together): everyone plays the learned policy; the
  gain is the env's per-step ``info["gain"]`` (utility minus the utility of reporting
  truthfully with the others' reports fixed), summed per episode.

Each row reports mean utilities, the gain with a 95% CI, payments, social welfare and IR
violations (rounds in which a labeler that reports truthfully gets negative utility: all
labelers in the baseline, the non-deviating ones against a unilateral adversary; not
defined for joint adversaries nor for the online game, whose utilities are negative
influence by construction), and a verdict:
"profitable misreport: +x" when the CI's lower end is above ``tolerance`` times the utility
scale, else "no profitable misreport found" (docs/model.md §3).

One baseline per row: the truthful row pools exactly the focal labelers (those that deviate in
the unilateral rows); every row's ``labeler`` names the labelers it pools (``"all"`` when every
labeler deviates) and ``baseline`` says what ``truthful_utility`` is (everyone truthful on the
same seeds, or, for joint rows, the labeler's own truthful report with the others as played),
so ``gain = adversary_utility - truthful_utility`` in every row.

For the practical rules of docs/model.md §4 every row also carries the truthful run's optimisation
gap ``optimisation_gap`` (per episode, the units of the gain), ``gain_over_gap`` (``<= 1`` with
exact payments) and the ``negative_payment_share`` of (labeler, round) pairs.
A gradient adversary against a rule without gradient (menus, policy gradient) gives an
``n/a`` row; learned adversaries are calibrated against the white box of the same call
(:mod:`strategic_feedback_env.agents.calibration`): ``interim`` where it ran (the best response
with the learner's information: its own type and the prior over the others'), else ``gradient``
(the best response to the others' actual reports, an upper bound no own-type policy reaches).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import strategic_feedback_env
from strategic_feedback_env.single_agent import policy_callable

from .calibration import calibrate, gain_over_gap, not_applicable_row
from .coalition import COALITION_ADVERSARIES, GROUP_ADVERSARIES, SYBIL_ADVERSARIES, check_coalition
from .gradient import GradientAdversary, InterimGradientAdversary, MyopicOnlineAdversary
from .preference_gradient import PreferenceGradientAdversary
from .policies import POLICIES, make_policy, spec_of
from .stats import mean_ci

HEURISTIC_PARAMS = {
    "exaggerate": {"eps": 0.05},
    "mix": {"beta": 0.3},
    "size_scaling": {"alpha": 2.0},
    "shade": {"factor": 0.5},
    "sharpen": {"factor": 0.5},
}
WHITE_BOX = {"gradient": ("reward_report_v0", "preference_report_v0"), "interim": ("reward_report_v0",),
             "myopic": ("online_feedback_v0",)}
LEARNED = ("ppo", "sac")
JOINT = ("shared", "independent")
DEFAULT_ADVERSARIES = {
    "reward_report_v0": ("exaggerate", "mix", "size_scaling", "random", "gradient", "ppo", "sac", "shared"),
    "online_feedback_v0": ("shade", "extreme", "random", "myopic", "ppo", "sac", "shared"),
    "preference_report_v0": ("prefer_top", "invert_others_top", "sharpen", "random", "gradient", "ppo", "sac",
                             "shared"),
}


def adversary_names(game: str) -> tuple[str, ...]:
    """Names :func:`audit` accepts for ``game``."""
    heuristics = tuple(k for k in POLICIES if k != "truthful" and _plays(k, game))
    white = tuple(k for k, games in WHITE_BOX.items() if game in games)
    groups = tuple(k for k, games in GROUP_ADVERSARIES.items() if game in games)
    return heuristics + white + LEARNED + JOINT + groups


def _plays(policy_name: str, game: str) -> bool:
    return game in POLICIES[policy_name].games


@dataclass
class AuditResult:
    """``labelers``: one row per (adversary, focal labeler); ``overall``: one row per adversary."""

    game: str
    env_config: dict
    labelers: list = field(default_factory=list)
    overall: list = field(default_factory=list)


ALL_TRUTHFUL = "all truthful, same seeds"
OWN_TRUTHFUL = "own truthful report, others as played"


def labelers_label(deviating, agents) -> str:
    """The ``labeler`` entry of a pooled row: ``"all"`` or the deviating labelers' ids."""
    return "all" if list(deviating) == list(agents) else ",".join(deviating)


def _policy_actor(policy):
    return lambda game, agent, obs: np.asarray(policy(obs), dtype=np.float64)


def _white_box_actor(adversary):
    return lambda game, agent, obs: adversary.act_in(game, agent)


def _build(name, game, env_config, agent, seed, spec, learn):
    """An actor ``(game, agent, obs) -> action`` for adversary ``name`` playing ``agent``."""
    if name in POLICIES:
        params = dict(HEURISTIC_PARAMS.get(name, {}))
        if name == "random":
            params["seed"] = seed
        return _policy_actor(make_policy(name, spec, **params))
    if name == "gradient":
        white_box = PreferenceGradientAdversary if game == "preference_report_v0" else GradientAdversary
        return _white_box_actor(white_box(seed=seed, **learn.get("gradient", {})))
    if name == "interim":
        return _white_box_actor(InterimGradientAdversary(seed=seed, **learn.get("interim", {})))
    if name == "myopic":
        return _white_box_actor(MyopicOnlineAdversary(**learn.get("myopic", {})))
    from . import learning

    # the names are checked in audit(): what is left is a learned adversary (LEARNED)
    policy, _ = learning.train_best_response(game=game, env_config=env_config, algo=name, focal_agent=agent,
                                             seed=seed, **learning.with_audit_defaults(game, name, learn.get(name),
                                                                                       env_config))
    return _policy_actor(policy)


def _build_joint(name, game, env_config, seed, learn):
    from . import learning

    if name == "shared":
        policy, _ = learning.train_shared(game=game, env_config=env_config, seed=seed,
                                          **learning.with_audit_defaults(game, name, learn.get(name)))
        return policy.for_agent
    policies = learning.train_independent(game=game, env_config=env_config, seed=seed,
                                          **learning.with_audit_defaults(game, name, learn.get(name)))
    return lambda agent: policies[agent]


def _play(game_env, seed, actors):
    """One episode; ``actors`` maps agent -> actor (others truthful). Returns per-agent arrays,
    welfare, IR violations and (reward-report game, all truthful) the summed optimisation gap
    of the truthful run (docs/model.md §4; 0 for exact rules)."""
    obs, _ = game_env.reset(seed=seed)
    agents = list(game_env.possible_agents)
    totals = {k: np.zeros(len(agents)) for k in ("utility", "gain", "payment", "negative_payments")}
    welfare, ir_violations, gap = 0.0, np.zeros(len(agents), dtype=int), 0.0
    while game_env.agents:
        actions = game_env.truthful_actions()
        for agent, actor in actors.items():
            if isinstance(agent, tuple):  # a group playing jointly (agents.group_audit)
                actions.update(actor(game_env, agent, obs))
            else:
                actions[agent] = actor(game_env, agent, obs[agent])
        if not actors and _is_practical(game_env.mechanism):
            gap += _truthful_gap(game_env)
        obs, rewards, _, _, infos = game_env.step(actions)
        for i, a in enumerate(agents):
            totals["utility"][i] += rewards[a]
            totals["gain"][i] += infos[a]["gain"]
            totals["payment"][i] += infos[a]["payment"]
            totals["negative_payments"][i] += infos[a]["payment"] < -1e-12
            ir_violations[i] += infos[a]["utility"] < -1e-9
        welfare += infos[agents[0]]["social_welfare"]
    return totals, welfare, ir_violations, gap


def _is_practical(mechanism) -> bool:
    """An SW-Max rule run as in practice (docs/model.md §4), whose outcome has an optimisation gap."""
    training = getattr(mechanism, "training", None)
    return training is not None and not training.is_exact


def _truthful_gap(game_env) -> float:
    """``max ASW - ASW(theta^)`` of this round had everyone reported its type (same input noise)."""
    seen = game_env.rewards if game_env.noise is None else np.clip(game_env.rewards + game_env.noise, 0.0, 1.0)
    gap = game_env.mechanism.outcome(seen, game_env.sizes, game_env.reference).gap
    return 0.0 if gap is None else float(gap)


def _row(adversary, agent, truthful, adv_utility, gains, payments, welfare, ir, scale, tolerance, baseline=ALL_TRUTHFUL):
    g, g_half = mean_ci(gains)
    u, u_half = mean_ci(adv_utility)
    lo = g - g_half
    profitable = lo > tolerance * scale
    return {
        "adversary": adversary,
        "labeler": agent,
        "baseline": baseline,
        "truthful_utility": float(np.mean(truthful)),
        "adversary_utility": float(u),
        "adversary_utility_ci": float(u_half),
        "gain": float(g),
        "gain_ci": float(g_half),
        "payment": float(np.mean(payments)),
        "social_welfare": float(np.mean(welfare)),
        "ir_violations": ir,
        "verdict": f"profitable misreport: +{g:.4g}" if profitable else "no profitable misreport found",
        "episode_gains": np.asarray(gains, dtype=np.float64).tolist(),
    }


def audit(env_config=None, adversaries=None, episodes=10, seed=0, game="reward_report_v0", focal_agents=None,
          learn=None, tolerance=1e-6, progress=None, coalitions=None, sybils=None) -> AuditResult:
    """Run each adversary against the game's mechanism and compare with truthful play.

    Parameters
    ----------
    env_config : dict
        Game config (``mechanism``, ``mechanism_params``, ``n_labelers`` ...).
    adversaries : list of str, default all of ``DEFAULT_ADVERSARIES[game]``
        Names from :func:`adversary_names`, or ``(label, policy)`` pairs with any policy
        (callable ``obs -> action`` or object with ``predict``) played unilaterally.
    episodes : int
        Paired episodes per (adversary, focal labeler); seeds ``seed .. seed + episodes - 1``.
    focal_agents : list of str, default all labelers
        Which labelers deviate (one at a time) for unilateral adversaries.
    learn : dict, default None
        Per-adversary keyword arguments, e.g. ``{"ppo": {"timesteps": 5000}, "gradient": {"steps": 50}}``.
    tolerance : float
        A gain counts as profitable when its CI lower end exceeds ``tolerance * scale``
        (``scale`` = mean absolute truthful return, at least 1e-12).
    progress : callable(int) or None
        Called with 1 after every episode played.
    coalitions : list of lists of labeler names, default ``[["labeler_0", "labeler_1"]]``
        The coalitions the ``coalition_*`` adversaries play (one row each, labeler
        ``"labeler_0+labeler_1"``; :mod:`strategic_feedback_env.agents.group_audit`).
    sybils : int >= 1, default 2
        Identities each focal labeler enters as under the ``sybil_*`` adversaries.
    """
    env_config = dict(env_config or {})
    if int(episodes) < 2:
        raise ValueError(f"episodes must be >= 2 to give a confidence interval, got {episodes}")
    learn = dict(learn or {})
    game_env = strategic_feedback_env.make(game, **env_config)
    spec = spec_of(game_env)
    agents = list(game_env.possible_agents)
    focal = agents if focal_agents is None else [game_env._check_agent(a) for a in focal_agents]
    names = list(DEFAULT_ADVERSARIES[game] if adversaries is None else adversaries)
    valid = adversary_names(game)
    for adv in names:
        if isinstance(adv, str) and adv not in valid:
            raise ValueError(f"unknown adversary {adv!r} for {game}; available: {', '.join(valid)}")
    if "size_scaling" in names and not spec.report_size:
        names.remove("size_scaling")
    if any(adv in COALITION_ADVERSARIES for adv in names if isinstance(adv, str)):
        coalitions = [check_coalition(c, agents) for c in (coalitions or [agents[:2]])]
    if any(adv in SYBIL_ADVERSARIES for adv in names if isinstance(adv, str)):
        sybils = 2 if sybils is None else sybils
        strategic_feedback_env.make(game, **env_config, sybils=sybils)  # a bad count fails before any episode
    tick = progress or (lambda k: None)
    seeds = [seed + e for e in range(int(episodes))]

    def play_all(actors):
        runs = []
        for s in seeds:
            runs.append(_play(game_env, s, actors))
            tick(1)
        return runs

    baseline = play_all({})
    truthful_u = np.stack([b[0]["utility"] for b in baseline])
    gap = float(np.mean([b[3] for b in baseline]))
    has_ir = game in ("reward_report_v0", "preference_report_v0")
    scale = max(float(np.mean(np.abs(truthful_u))), 1e-12)
    result = AuditResult(game=game, env_config=env_config)
    # The baseline row pools exactly the labelers that deviate in the unilateral rows.
    cols = [agents.index(a) for a in focal]
    result.overall.append(_overall("truthful", labelers_label(focal, agents), np.zeros((len(seeds), len(cols))),
                                   truthful_u[:, cols], truthful_u[:, cols],
                                   np.stack([b[0]["payment"][cols] for b in baseline]),
                                   [b[1] for b in baseline],
                                   sum(int(b[2].sum()) for b in baseline) if has_ir else None, scale, tolerance))
    for adv in names:
        if adv in ("gradient", "interim") and not GradientAdversary.applies_to(game_env.mechanism):
            why = GradientAdversary.why_not(game_env.mechanism)
            result.labelers += [{**not_applicable_row(adv, agent, why), "baseline": ALL_TRUTHFUL} for agent in focal]
            result.overall.append({**not_applicable_row(adv, labelers_label(focal, agents), why),
                                   "baseline": ALL_TRUTHFUL})
            continue
        if isinstance(adv, str) and adv in GROUP_ADVERSARIES:
            from .group_audit import group_rows

            rows = group_rows(adv, game, env_config, game_env, focal, coalitions, sybils, seeds, baseline, seed,
                              learn, scale, tolerance, tick)
            result.overall += rows
            result.labelers += rows
            continue
        label, actor_for = _resolve(adv, game, env_config, spec, seed, learn)
        joint = isinstance(adv, str) and adv in JOINT
        gains, utilities, truths, payments, welfare, ir_total, negatives = [], [], [], [], [], 0, []
        agent_list = agents if joint else focal
        # Joint adversaries: every labeler deviates in the same episodes, played once.
        joint_runs = play_all({a: actor_for(a) for a in agents}) if joint else None
        for agent in agent_list:
            i = agents.index(agent)
            runs = joint_runs if joint else play_all({agent: actor_for(agent)})
            adv_u = np.array([r[0]["utility"][i] for r in runs])
            gain = (np.array([r[0]["gain"][i] for r in runs]) if joint else adv_u - truthful_u[:, i])
            pay = np.array([r[0]["payment"][i] for r in runs])
            sw = np.array([r[1] for r in runs])
            others = [j for j in range(len(agents)) if j != i]
            ir = None if joint or not has_ir else int(sum(r[2][others].sum() for r in runs))
            # A joint row's gain is against its own truthful report with the others as played.
            truth = adv_u - gain if joint else truthful_u[:, i]
            result.labelers.append(_row(label, agent, truth, adv_u, gain, pay, sw, ir, scale, tolerance,
                                        OWN_TRUTHFUL if joint else ALL_TRUTHFUL))
            truths.append(truth)
            negatives.append(np.array([r[0]["negative_payments"][i] for r in runs]) / game_env.max_cycles)
            result.labelers[-1]["negative_payment_share"] = float(np.mean(negatives[-1]))
            gains.append(gain)
            utilities.append(adv_u)
            payments.append(pay)
            welfare.append(sw)
            ir_total = None if ir is None else ir_total + ir
        result.overall.append(_overall(label, labelers_label(agent_list, agents), np.stack(gains, 1),
                                       np.stack(utilities, 1), np.stack(truths, 1), np.stack(payments, 1),
                                       np.concatenate(welfare), ir_total, scale, tolerance,
                                       OWN_TRUTHFUL if joint else ALL_TRUTHFUL))
        result.overall[-1]["negative_payment_share"] = float(np.mean(negatives))
    truthful_negatives = np.mean([b[0]["negative_payments"][cols] for b in baseline]) / game_env.max_cycles
    result.overall[0]["negative_payment_share"] = float(truthful_negatives)
    for row in result.overall + result.labelers:
        row["optimisation_gap"] = gap
        row["gain_over_gap"] = gain_over_gap(row["gain"], gap)
    calibrate(result.overall)
    calibrate(result.labelers)
    return result


def _resolve(adv, game, env_config, spec, seed, learn):
    """``(label, agent -> actor)`` for an adversary name or a ``(label, policy)`` pair."""
    if isinstance(adv, str):
        if adv in JOINT:
            policy_for = _build_joint(adv, game, env_config, seed, learn)

            def build(agent):
                return _policy_actor(policy_for(agent))
        else:
            def build(agent):
                return _build(adv, game, env_config, agent, seed, spec, learn)
        cache = {}

        def actor_for(agent):
            if agent not in cache:
                cache[agent] = build(agent)
            return cache[agent]

        return adv, actor_for
    label, policy = adv
    call = policy_callable(policy, f"adversary {label!r}")
    return str(label), lambda agent: _policy_actor(call)


def _overall(label, labelers, gains, utilities, truthful, payments, welfare, ir, scale, tolerance, baseline=ALL_TRUTHFUL):
    """Pool labelers: per-episode mean over the deviating labelers (``labelers`` names them),
    CI over episodes; ``truthful`` is each one's baseline utility on the same episodes."""
    return _row(label, labelers, truthful.mean(1), utilities.mean(1), gains.mean(1), payments.mean(1),
                welfare, ir, scale, tolerance, baseline)
