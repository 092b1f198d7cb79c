"""``sfe horizon``: the long-horizon [HD] phase diagram (docs/model.md §5, "Long horizons").

With ``eta = sqrt(ln n / T)`` one misreport costs ``online_weighted`` less weight the longer
the game, while the influence it buys does not shrink; whether misreporting pays is an
empirical question over the horizon ``T``, the bias ``beta`` and the number of labelers ``n``.

One cell = (adversary, mechanism, n, beta, T): ``games`` batched online-feedback games
(:class:`strategic_feedback_env.batched.BatchedOnlineFeedback`, ``max_cycles = T``, the
mechanism's default horizon ``T``) played twice on the same seed (common random numbers: the
same signals and outcomes), once all truthful and once with ``labeler_0`` (the most accurate
labeler) playing the adversary against truthful others:

* ``myopic``: :class:`~strategic_feedback_env.agents.coalition.CoalitionMyopicAdversary` for one
  labeler (this round's influence plus ``gamma`` times its expected next weight), batched;
* ``ppo``: a PPO best response trained on the batched game with episodes of ``T`` rounds
  (:func:`strategic_feedback_env.agents.learning.train_best_response`).

The gain is ``(sum_t u_0(adversary) - sum_t u_0(truthful)) / T`` per game (return per round),
with a 95% CI over games; a cell is *significant* when its CI excludes 0. Seeds depend on
``(seed, n, beta, T)`` only, so all mechanisms and adversaries see the same games.
"""

from __future__ import annotations

import numpy as np

from strategic_feedback_env.batched import make_batched

from .stats import mean_ci

MECHANISMS = ("online_weighted", "average", "median")
ADVERSARIES = ("myopic", "ppo")


def cells(args) -> list[tuple]:
    """``(adversary, mechanism, n, beta, T)`` of the grid, in order; bad options raise ``ValueError``."""
    for name, values, allowed in (("--mechanisms", args.mechanisms, MECHANISMS),
                                  ("--adversaries", args.adversaries, ADVERSARIES)):
        unknown = sorted(set(values) - set(allowed))
        if unknown or not values:
            raise ValueError(f"{name}: unknown or no value(s) {unknown}; choose from {', '.join(allowed)}")
    if not args.horizons or min(args.horizons) < 1:
        raise ValueError(f"--horizons must be integers >= 1, got {args.horizons}")
    if not args.ns or min(args.ns) < 2:
        raise ValueError(f"--ns must be integers >= 2 (a deviator and someone else), got {args.ns}")
    if not args.biases or not all(np.isfinite(args.biases)):
        raise ValueError(f"--biases must be finite numbers, got {args.biases}")
    for name, minimum in (("games", 2), ("ppo_timesteps", 1), ("grid", 2)):
        if getattr(args, name) < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {getattr(args, name)}")
    if not args.gamma >= 0:
        raise ValueError(f"--gamma must be >= 0, got {args.gamma}")
    return [(adv, mech, n, beta, T) for adv in args.adversaries for mech in args.mechanisms for n in args.ns
            for beta in args.biases for T in args.horizons]


def cell_key(cell) -> str:
    adv, mech, n, beta, T = cell
    return f"{adv}-{mech}-n{n}-b{beta:g}-T{T}"


def cell_seed(seed: int, n: int, beta: float, T: int) -> int:
    """One seed per (n, beta, T), shared by the mechanisms and adversaries (common random numbers)."""
    return int(np.random.SeedSequence([seed, n, int(round(beta * 1e6)) % 2**32, T]).generate_state(1)[0])


def _config(mech, n, beta, T, outcome_model):
    return {"n_labelers": n, "mechanism": mech, "biases": beta, "max_cycles": T, "outcome_model": outcome_model}


def returns(config, games, seed, act=None) -> np.ndarray:
    """``labeler_0``'s return per game over one episode; ``act(env, obs) -> (B, 1)`` is its action
    (None: truthful), the others truthful."""
    env = make_batched("online_feedback_v0", num_games=games, seed=seed, **config)
    obs = env.reset()
    total = np.zeros(games)
    for _ in range(env.max_cycles):
        actions = env.truthful_actions()
        if act is not None:
            actions[:, 0] = act(env, obs)
        obs, rewards, _, _, _ = env.step(actions)
        total += rewards[:, 0]
    return total


def _adversary(args, adv, config, seed):
    if adv == "myopic":
        from strategic_feedback_env.agents.coalition import CoalitionMyopicAdversary

        myopic = CoalitionMyopicAdversary(gamma=args.gamma, grid=args.grid)
        return lambda env, obs: myopic.best_reports(env.mechanism, env.signals, [0], env.targets[:, :1],
                                                    env.signals[:, :1], weights=env.mechanism.weights)
    from strategic_feedback_env.agents import learning

    policy, _ = learning.train_best_response(game="online_feedback_v0", env_config=config, algo="ppo",
                                             timesteps=args.ppo_timesteps, seed=seed)
    return lambda env, obs: policy(obs[:, 0])


def run_cell(args, cell) -> dict:
    """One cell's row: gain per round (95% CI) of ``labeler_0`` playing the adversary."""
    adv, mech, n, beta, T = cell
    config = _config(mech, n, beta, T, args.outcome_model)
    seed = cell_seed(args.seed, n, beta, T)
    truthful = returns(config, args.games, seed)
    deviating = returns(config, args.games, seed, _adversary(args, adv, config, seed))
    gain, half = mean_ci((deviating - truthful) / T)
    return {"adversary": adv, "mechanism": mech, "n": n, "bias": beta, "T": T,
            "gain_per_round": float(gain), "ci": float(half), "significant": bool(abs(gain) > half),
            "truthful_per_round": float(np.mean(truthful) / T), "games": args.games}
