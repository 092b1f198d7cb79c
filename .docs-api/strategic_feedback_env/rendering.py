"""Rendering of a game's last round, kept apart from the game rules.

``ansi`` returns a text table; ``rgb_array`` draws, with matplotlib, the trained policy (or
aggregate) against each labeler's preferences and returns an ``(H, W, 3)`` uint8 image.
"""

from __future__ import annotations

import numpy as np


def ansi(game) -> str:
    lines = [f"{game.metadata['name']}  round {game.round}/{game.max_cycles}  mechanism {game.mechanism.name}"]
    last = game.last_round
    if last is None:
        lines.append("(no round played yet)")
        return "\n".join(lines) + "\n"
    infos = last["agent_infos"]
    if "policy" in last:
        lines.append("policy: " + " ".join(f"{p:.3f}" for p in last["policy"]))
    else:
        lines.append(f"aggregate {last['aggregate']:.3f}  y {last['y']:.3f}  regret {last['regret']:.3f}")
    lines.append(f"{'labeler':<12}{'utility':>10}{'payment':>10}{'truthful':>10}{'gain':>11}")
    for i, agent in enumerate(game.possible_agents):
        lines.append(
            f"{agent:<12}{infos['utility'][i]:>10.4f}{infos['payment'][i]:>10.4f}"
            f"{infos['truthful_utility'][i]:>10.4f}{infos['gain'][i]:>+11.2e}"
        )
    lines.append(f"social welfare {last['social_welfare']:.4f}")
    return "\n".join(lines) + "\n"


def _figure(game):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = getattr(game, "_render_figure", None)
    if fig is None:
        fig = Figure(figsize=(6, 3.5), dpi=80)
        game._render_figure = fig
    fig.clf()
    return fig


def rgb_array(game) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(game)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    last = game.last_round
    if last is None:
        ax.text(0.5, 0.5, "no round played yet", ha="center", va="center")
    elif "policy" in last:
        infos = last["agent_infos"]
        K = len(last["policy"])
        x = np.arange(K)
        ax.bar(x, last["policy"], color="0.75", label="trained policy")
        for i in range(game.n):
            ax.plot(x, infos["true_reward"][i], marker="o", lw=1, label=f"labeler {i} reward")
        ax.set_xlabel("outcome")
        ax.set_title(f"round {last['round']}: policy vs labelers' rewards")
        ax.legend(fontsize=6, loc="upper right")
    else:
        infos = last["agent_infos"]
        idx = np.arange(game.n)
        ax.scatter(idx, infos["signal"], label="signal s_i")
        ax.scatter(idx, infos["target"], marker="x", label="target b_i")
        ax.scatter(idx, infos["report"], marker="s", facecolors="none", edgecolors="k", label="report x_i")
        ax.axhline(last["aggregate"], color="C3", label="aggregate")
        ax.axhline(last["q"], color="C2", ls="--", label="ground truth q")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("labeler")
        ax.set_title(f"round {last['round']}: regret {last['regret']:.3f}")
        ax.legend(fontsize=6, loc="upper right")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def close(game) -> None:
    game._render_figure = None
