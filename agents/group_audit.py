"""The audit's group rows: coalitions and sybils against the truthful baseline (docs/model.md §5).

Called by :func:`strategic_feedback_env.agents.audit` for the adversaries of
:data:`~strategic_feedback_env.agents.coalition.GROUP_ADVERSARIES`, on the audit's seeds
(common random numbers: the same types every episode):

* **coalition** ``C`` (``coalition_*``): the members play the joint adversary, the others stay
  truthful. ``gain`` = the members' summed return minus their summed truthful return (the
  baseline on exactly the members), per episode, paired. ``unilateral_gain_sum`` = the sum of
  the members' gains when each plays the same adversary *alone* (a coalition of one), so
  ``coordination_gain = gain - unilateral_gain_sum`` is what coordinating adds.
* **sybil** (``sybil_*``): the focal labeler enters as ``k`` identities (env option ``sybils``)
  and plays them jointly. ``gain`` = the identities' summed return (its true utility, one true
  type) minus its return entering once, truthfully. ``split_gain`` = the same for identities
  that all report the type truthfully (what the false names alone earn).

Each row has the audit's columns (CI = 95% over episodes) plus ``group_size``,
``unilateral_gain_sum``/``_ci``, ``coordination_gain``/``_ci`` (coalitions) and
``split_gain``/``_ci`` (sybils); the ones that do not apply are None.
"""

from __future__ import annotations

import numpy as np

import strategic_feedback_env

from .coalition import COALITION_ADVERSARIES, CoalitionGradientAdversary, CoalitionMyopicAdversary, check_coalition
from .dsic_audit import ALL_TRUTHFUL, _play, _row
from .stats import mean_ci

ENTERING_ONCE = "entering once, truthfully, same seeds"
GROUP_COLUMNS = ("group_size", "unilateral_gain_sum", "unilateral_gain_sum_ci", "coordination_gain",
                 "coordination_gain_ci", "split_gain", "split_gain_ci")


def group_actor(name, game, env_config, members, seed, learn):
    """``(env, obs) -> {member: action}`` for group adversary ``name`` playing ``members``.

    ``learn`` options are looked up under ``name`` first, then under the kind of search
    (``"gradient"``, ``"myopic"``, ``"ppo"``), as for the unilateral adversaries.
    """
    kind = name.split("_", 1)[1]
    options = dict(learn.get(name, learn.get(kind, {})))
    if kind == "gradient":
        adversary = CoalitionGradientAdversary(seed=seed, **options)
        return lambda env, obs: adversary.act_in(env, members)
    if kind == "myopic":
        adversary = CoalitionMyopicAdversary(**options)
        return lambda env, obs: adversary.act_in(env, members)
    from .coalition_learning import train_coalition

    policy = train_coalition(game=game, env_config=env_config, members=members, seed=seed, **options)
    return lambda env, obs: policy.act_in(env, members, obs)


def _episodes(env, seeds, group, actor, tick):
    """The audit's episodes with ``group`` (agent names) played by ``actor`` (None: all truthful)."""
    actors = {} if actor is None else {tuple(group): lambda game, agents, obs: actor(game, obs)}
    runs = []
    for s in seeds:
        runs.append(_play(env, s, actors))
        tick(1)
    return runs


def _utilities(runs, idx):
    return np.array([r[0]["utility"][idx].sum() for r in runs])


def _group_row(label, name, truthful, runs, idx, others, has_ir, scale, tolerance, baseline, **extra):
    utility = _utilities(runs, idx)
    payment = np.array([r[0]["payment"][idx].sum() for r in runs])
    welfare = np.array([r[1] for r in runs])
    ir = int(sum(r[2][others].sum() for r in runs)) if has_ir else None
    row = _row(name, label, truthful, utility, utility - truthful, payment, welfare, ir, scale, tolerance, baseline)
    row.update(dict.fromkeys(GROUP_COLUMNS))
    row["group_size"] = len(idx)
    for key, samples in extra.items():
        row[key], row[f"{key}_ci"] = (float(v) for v in mean_ci(samples))
    return row


def coalition_rows(name, game, env_config, game_env, coalitions, seeds, baseline, seed, learn, scale, tolerance,
                   tick) -> list[dict]:
    """One row per coalition (see the module docstring)."""
    agents = list(game_env.possible_agents)
    truthful_u = np.stack([b[0]["utility"] for b in baseline])
    has_ir = game == "reward_report_v0"
    solo_gain = {}
    rows = []
    for coalition in coalitions:
        members = check_coalition(coalition, agents)
        idx = np.array([agents.index(a) for a in members])
        for i, agent in zip(idx, members):
            if agent not in solo_gain:
                runs = _episodes(game_env, seeds, [agent], group_actor(name, game, env_config, [agent], seed, learn),
                                 tick)
                solo_gain[agent] = _utilities(runs, [i]) - truthful_u[:, i]
        runs = _episodes(game_env, seeds, members, group_actor(name, game, env_config, members, seed, learn), tick)
        truthful = truthful_u[:, idx].sum(1)
        unilateral = sum(solo_gain[a] for a in members)
        gain = _utilities(runs, idx) - truthful
        others = [j for j in range(len(agents)) if j not in idx]
        rows.append(_group_row("+".join(members), name, truthful, runs, idx, others, has_ir, scale, tolerance,
                               ALL_TRUTHFUL, unilateral_gain_sum=unilateral, coordination_gain=gain - unilateral))
    return rows


def sybil_rows(name, game, env_config, focal, identities, seeds, baseline, seed, learn, scale, tolerance,
               tick) -> list[dict]:
    """One row per focal labeler entering as ``identities`` identities (see the module docstring)."""
    truthful_u = np.stack([b[0]["utility"] for b in baseline])
    has_ir = game == "reward_report_v0"
    rows = []
    for agent in focal:
        config = {**env_config, "sybils": identities, "sybil_of": agent}
        env = strategic_feedback_env.make(game, **config)
        idx = env.sybils.members
        members = [env.possible_agents[j] for j in idx]
        truthful = truthful_u[:, env.sybils.labeler]
        split = _utilities(_episodes(env, seeds, members, None, tick), idx) - truthful
        runs = _episodes(env, seeds, members, group_actor(name, game, config, members, seed, learn), tick)
        others = [j for j in range(env.n) if j not in idx]
        rows.append(_group_row(agent, name, truthful, runs, idx, others, has_ir, scale, tolerance, ENTERING_ONCE,
                               split_gain=split))
    return rows


def group_rows(name, game, env_config, game_env, focal, coalitions, sybils, seeds, baseline, seed, learn, scale,
               tolerance, tick) -> list[dict]:
    """The rows of group adversary ``name``: per coalition, or per focal labeler as a sybil."""
    if name in COALITION_ADVERSARIES:
        return coalition_rows(name, game, env_config, game_env, coalitions, seeds, baseline, seed, learn, scale,
                              tolerance, tick)
    return sybil_rows(name, game, env_config, focal, sybils, seeds, baseline, seed, learn, scale, tolerance, tick)
