"""Every figure ``sfe`` writes, in one style.

One colour, marker and line style per adversary, mechanism and series name, the same in
every panel and every command (:func:`style_for`; names this module does not list get a
stable style from their hash, so new adversaries and mechanisms inherit the scheme);
constrained layout with legends outside the axes, so they never cover data; both axes
labelled; the confidence level and the number of episodes, games or instances on the figure.
A new figure should be built from :func:`new_figure`, :func:`style_for` and :func:`legend_below`.
"""

from __future__ import annotations

import re
import zlib

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .stats import mean_ci

CI_LEVEL = 95
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# Known names, in a fixed order per kind: each gets its own colour and marker in every figure.
ADVERSARIES = ("truthful", "exaggerate", "mix", "size_scaling", "random", "gradient", "shade", "extreme", "myopic",
               "ppo", "sac", "shared", "independent", "prefer_top", "invert_others_top", "sharpen",
               "coalition_gradient", "coalition_myopic", "coalition_ppo", "sybil_gradient", "sybil_myopic", "sybil_ppo",
               "interim")
MECHANISMS = ("sw_max", "affine_maximizer", "average", "median", "online_weighted", "hedge", "median_of_mles",
              "sw_max@per_labeler", "sw_max@pooled", "affine_maximizer@per_labeler", "affine_maximizer@pooled",
              "median_of_mles@per_labeler")
SERIES = ("paper", "ours", "env step", "mechanism alone")
_TAB10 = [matplotlib.colormaps["tab10"](i) for i in range(10)]
_DARK2 = [matplotlib.colormaps["Dark2"](i) for i in range(8)]
_SET1 = [matplotlib.colormaps["Set1"](i) for i in (0, 1, 2, 3, 4, 6, 7, 8)]  # no yellow
_PALETTES = ((ADVERSARIES, _TAB10 + _DARK2 + _SET1), (MECHANISMS, _SET1 + _DARK2), (SERIES, ["0.3", _TAB10[0], _TAB10[0], _TAB10[1]]))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "H", "8", "1", "2", "3", "4", "+", "x",
            "|", "_")
_LINES = ("-", "--", "-.", ":")


def style_for(name: str) -> dict:
    """``color``, ``marker`` and ``linestyle`` of a series named ``name`` (an adversary, a
    mechanism, ``labeler_i``, ...): fixed per kind for the names above (distinct within a kind),
    by index for ``labeler_i``, hashed otherwise."""
    labeler = re.fullmatch(r"labeler_(\d+)", name)
    for names, colors in _PALETTES:
        if name in names:
            k = names.index(name)
            return {"color": colors[k % len(colors)], "marker": _MARKERS[k % len(_MARKERS)],
                    "linestyle": _LINES[k % len(_LINES)]}
    k = int(labeler.group(1)) if labeler else zlib.crc32(name.encode())
    colors = _TAB10 if labeler else _DARK2
    return {"color": colors[k % len(colors)], "marker": _MARKERS[k % len(_MARKERS)], "linestyle": _LINES[k % len(_LINES)]}


def new_figure(ncols: int, width: float = 4.6, height: float = 3.6, sharey: bool = False):
    """``(figure, axes)`` with ``ncols`` panels side by side, in :data:`STYLE`."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width * max(ncols, 1), height), layout="constrained")
        axes = fig.subplots(1, max(ncols, 1), sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def legend_below(fig, handles, labels, ncols: int = 4) -> None:
    """One legend for the whole figure, under the panels."""
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)), frameon=False,
                   fontsize=STYLE["legend.fontsize"])


def _legend_under(ax, ncols: int = 1) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=ncols, frameon=False,
                  fontsize=STYLE["legend.fontsize"])


def audit_figure(rows: list[dict], episodes: int):
    """Gain over truthful per mechanism (groups) and adversary (colour), one panel per game;
    error bars are the CI, a marker sits at each mean so near-zero bars stay visible."""
    games = list(dict.fromkeys(r["game"] for r in rows)) or ["no cells"]
    fig, axes = new_figure(len(games), width=5.5)
    legend = {}
    with matplotlib.rc_context(STYLE):
        for ax, game in zip(axes, games):
            sub = [r for r in rows if r["game"] == game]
            mechs = list(dict.fromkeys(r["mechanism"] for r in sub))
            advs = list(dict.fromkeys(r["adversary"] for r in sub))
            width = 0.8 / max(len(advs), 1)
            for j, adv in enumerate(advs):
                st = style_for(adv)
                cells = [(m, r) for m, mech in enumerate(mechs) for r in sub
                         if r["mechanism"] == mech and r["adversary"] == adv]
                xs = [m - 0.4 + (j + 0.5) * width for m, _ in cells]
                ys = [r["gain"] for _, r in cells]
                es = [r["gain_ci"] if np.isfinite(r["gain_ci"]) else 0.0 for _, r in cells]
                ax.bar(xs, ys, width, color=st["color"], alpha=0.55)
                legend[adv] = ax.errorbar(xs, ys, yerr=es, fmt=st["marker"], color=st["color"], ms=4, capsize=2,
                                          lw=1, label=adv)
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_xticks(range(len(mechs)), mechs)
            if any(len(m) > 12 for m in mechs):  # the preference game's <mechanism>@<reward model> names
                ax.tick_params(axis="x", labelrotation=20, labelsize=7)
            ax.set_xlabel("mechanism")
            ax.set_ylabel("gain over truthful\n(return per episode)")
            ax.set_title(game)
        fig.suptitle(f"Empirical DSIC audit: mean gain with {CI_LEVEL}% CI, {episodes} paired episodes per cell")
        legend_below(fig, list(legend.values()), list(legend), ncols=6)
    return fig


def regret_figure(results: dict, fits: dict, strategies, mechanisms, horizons, games: int):
    """Mean cumulative regret vs horizon (log-log), one panel per labeler strategy on a shared
    y axis; a line style, marker and colour per mechanism, CI bands, and a note on the points
    a log axis cannot show (mean regret <= 0)."""
    fig, axes = new_figure(len(strategies), sharey=True, height=4.2)
    horizons = np.asarray(horizons, float)
    with matplotlib.rc_context(STYLE):
        for ax, strategy in zip(axes, strategies):
            dropped, clipped = 0, False
            for mech in mechanisms:
                stats = np.array([mean_ci(np.asarray(results[strategy, mech, T], float)) for T in horizons.astype(int)])
                means, half = stats[:, 0], np.nan_to_num(stats[:, 1])
                ok = means > 0
                dropped += int((~ok).sum())
                f = fits[strategy][mech]
                st = style_for(mech)
                label = f"{mech}: slope {f['slope']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]"
                if not ok.any():
                    ax.plot([], [], label=f"{mech}: not shown (mean <= 0)", **st)
                    continue
                lo = means - half
                clipped |= bool(np.any(lo[ok] <= means[ok] / 10))
                ax.fill_between(horizons[ok], np.maximum(lo[ok], means[ok] / 10), means[ok] + half[ok],
                                color=st["color"], alpha=0.15, lw=0)
                ax.plot(horizons[ok], means[ok], label=label, ms=4, **st)
            ax.set_xscale("log")
            ax.set_yscale("log")
            notes = [f"{dropped} point(s) with mean regret <= 0 not shown"] if dropped else []
            if clipped:
                notes.append("CI bands cut at mean/10")
            ax.set_xlabel("\n".join(["horizon T", *notes]))
            ax.set_ylabel("mean cumulative regret R_T")
            ax.set_title(f"{strategy} labelers")
            _legend_under(ax)
        fig.suptitle(f"[HD] regret against the best labeler: mean over {games} games, {CI_LEVEL}% CI bands")
    return fig


def table1_figure(rows: list[dict], samples: int):
    """Ours (mean with CI) beside the paper's [SUN] Table 1, valuation and utility change vs eps."""
    fig, axes = new_figure(2, height=3.8)
    eps = [r["eps"] for r in rows]
    with matplotlib.rc_context(STYLE):
        for ax, (what, scale, name) in zip(axes, (("dvaluation_e2", "x1e2", "valuation"),
                                                  ("dutility_e4", "x1e4", "utility"))):
            ax.plot(eps, [r[f"paper_{what}"] for r in rows], label="paper", ms=4, **style_for("paper"))
            st = style_for("ours")
            ax.errorbar(eps, [r[f"ours_{what}"] for r in rows], yerr=[r[f"ci_{what}"] for r in rows],
                        fmt=st["marker"], color=st["color"], linestyle=st["linestyle"], ms=4, capsize=2,
                        label=f"ours ({CI_LEVEL}% CI)")
            ax.set_xscale("log")
            ax.set_xlabel("eps (exaggeration step)")
            ax.set_ylabel(f"change of group 1's {name} ({scale})")
            ax.set_title(f"group 1 {name} change")
            _legend_under(ax, ncols=2)
        fig.suptitle(f"[SUN] App. F Table 1: {samples} random instances (n=5, K=10)")
    return fig


def scaling_figure(scaling: dict):
    """``sfe bench``: seconds per step against ``n`` and ``K`` (log-log), with a slope-1 guide."""
    fig, axes = new_figure(2, height=3.8)
    with matplotlib.rc_context(STYLE):
        for ax, key, fixed in ((axes[0], "n", "K=10"), (axes[1], "K", "n=5")):
            rows = scaling[key]
            xs = [r[key] for r in rows]
            for col, name, label in (("env_step_s", "env step", "batched env step (B=1)"),
                                     ("mechanism_s", "mechanism alone", "mechanism (outcome + unilateral)")):
                slope = scaling["slopes"][key][col]["last_pair"]
                ax.plot(xs, [r[col] for r in rows], label=f"{label}, slope {slope:.2f} (last two)", ms=4,
                        **style_for(name))
            t1 = rows[-1]["env_step_s"]
            ax.plot([xs[0], xs[-1]], [t1 * xs[0] / xs[-1], t1], color="black", linestyle=":", label="slope 1")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(key)
            ax.set_ylabel("seconds per step")
            ax.set_title(f"scaling in {key} ({fixed})")
            _legend_under(ax)
        fig.suptitle("sfe bench: time per step against the game size")
    return fig


def learning_curve_figure(rows: list[dict], rounds: int):
    """``sfe train``: mean gain per round and mean episode return (reward per round x ``rounds``)
    against training steps, one line per trained model, from the rollouts' means."""
    fig, axes = new_figure(2, height=3.6)
    names = list(dict.fromkeys(r["labeler"] for r in rows))
    with matplotlib.rc_context(STYLE):
        for ax, (col, factor, ylabel) in zip(axes, (("gain", 1, "gain over truthful per round"),
                                                    ("reward", rounds, f"return per episode ({rounds} rounds)"))):
            for name in names:
                pts = [r for r in rows if r["labeler"] == name]
                ax.plot([r["timesteps"] for r in pts], [factor * r[col] for r in pts], label=name, ms=3,
                        **style_for(name))
            if col == "gain":
                ax.axhline(0.0, color="black", lw=0.8)
            ax.set_xlabel("training steps")
            ax.set_ylabel(ylabel)
        axes[0].set_title("gain (info['gain'], mean per rollout)")
        axes[1].set_title("return (mean per rollout)")
        handles, labels = axes[0].get_legend_handles_labels()
        legend_below(fig, handles, labels)
        fig.suptitle(f"sfe train learning curve: {len(names)} model(s)")
    return fig


def horizon_figure(rows: list[dict], adversary: str, games: int):
    """``sfe horizon``: heatmaps of the gain per round over (T, beta), one per mechanism (columns)
    and ``n`` (rows), on one colour scale centred at 0; ``*`` marks cells whose CI excludes 0."""
    sub = [r for r in rows if r["adversary"] == adversary]
    mechs = list(dict.fromkeys(r["mechanism"] for r in sub))
    ns, Ts, betas = (sorted({r[k] for r in sub}) for k in ("n", "T", "bias"))
    scale = max([abs(r["gain_per_round"]) for r in sub] + [1e-12])
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(3.8 * len(mechs) + 1, 2.6 * len(ns) + 0.8), layout="constrained")
        axes = fig.subplots(len(ns), len(mechs), squeeze=False)
        for i, n in enumerate(ns):
            for j, mech in enumerate(mechs):
                ax = axes[i][j]
                grid = np.full((len(betas), len(Ts)), np.nan)
                marks = {}
                for r in sub:
                    if r["mechanism"] == mech and r["n"] == n:
                        b, t = betas.index(r["bias"]), Ts.index(r["T"])
                        grid[b, t], marks[b, t] = r["gain_per_round"], r["significant"]
                image = ax.imshow(grid, cmap="RdBu_r", vmin=-scale, vmax=scale, origin="lower", aspect="auto")
                for (b, t), significant in marks.items():
                    ax.text(t, b, f"{grid[b, t]:.1e}{'*' if significant else ''}", ha="center", va="center",
                            fontsize=6)
                ax.grid(False)
                ax.set_xticks(range(len(Ts)), [str(T) for T in Ts])
                ax.set_yticks(range(len(betas)), [f"{b:g}" for b in betas])
                ax.set_xlabel("horizon T")
                ax.set_ylabel("bias beta")
                ax.set_title(f"{mech}, n={n}")
        fig.colorbar(image, ax=axes, shrink=0.8, label=f"gain per round (* = {CI_LEVEL}% CI excludes 0)")
        fig.suptitle(f"{adversary} adversary (labeler_0) vs truthful: {games} paired games per cell")
    return fig
