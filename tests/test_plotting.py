"""Figures fit for a draft (issue "Runs a researcher can trust", item 12): one style per
adversary and mechanism in every figure, labelled axes, legends outside the data, the CI level
and sample size on the figure, visible near-zero bars, shared y axes and dropped-point notes in
the regret figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer

from strategic_feedback_env.experiments import plotting


def _audit_rows():
    rows = []
    for game, mechs, advs in (("reward_report_v0", ["sw_max", "affine_maximizer"], ["exaggerate", "gradient", "ppo"]),
                              ("online_feedback_v0", ["average"], ["shade", "ppo"])):
        for m in mechs:
            for k, a in enumerate(advs):
                rows.append({"game": game, "mechanism": m, "adversary": a, "gain": 1e-15 if a == "gradient" else k - 1.0,
                             "gain_ci": 0.1 if k else float("nan")})
    return rows


def _regret_inputs():
    rng = np.random.default_rng(0)
    horizons = [100, 1000]
    results = {(s, m, T): rng.random(4) * T for s in ("truthful", "shade") for m in ("average", "hedge") for T in horizons}
    results["shade", "hedge", 100] = -np.ones(4)  # mean <= 0: cannot be drawn on a log axis
    fits = {s: {m: {"slope": 1.0, "lo": 0.9, "hi": 1.1} for m in ("average", "hedge")} for s in ("truthful", "shade")}
    return results, fits, ["truthful", "shade"], ["average", "hedge"], horizons, 4


def _drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig


def _legends(fig):
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


@pytest.fixture(scope="module")
def figures():
    scaling = {key: [{key: x, "env_step_s": 1e-5 * x, "mechanism_s": 5e-6 * x} for x in (10, 100, 1000)]
               for key in ("n", "K")}
    scaling["slopes"] = {key: {col: {"last_pair": 1.0} for col in ("env_step_s", "mechanism_s")} for key in ("n", "K")}
    table = [{"eps": e, "paper_dvaluation_e2": e, "ours_dvaluation_e2": e, "ci_dvaluation_e2": 0.1,
              "paper_dutility_e4": -e, "ours_dutility_e4": -e, "ci_dutility_e4": 0.1} for e in (0.001, 0.01, 0.1)]
    curve = [{"labeler": a, "timesteps": t, "gain": 0.1 * t, "reward": 1.0} for a in ("labeler_0", "labeler_1")
             for t in (100, 200)]
    figs = {"audit": plotting.audit_figure(_audit_rows(), episodes=8),
            "regret": plotting.regret_figure(*_regret_inputs()),
            "table1": plotting.table1_figure(table, samples=500),
            "scaling": plotting.scaling_figure(scaling),
            "learning": plotting.learning_curve_figure(curve, rounds=10)}
    return {name: _drawn(fig) for name, fig in figs.items()}


@pytest.mark.parametrize("name", ["audit", "regret", "table1", "scaling", "learning"])
def test_every_figure_labels_both_axes_and_keeps_legends_off_the_data(name, figures):
    fig = figures[name]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
    legends = _legends(fig)
    assert legends, name
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), (name, ax.get_title())


def test_each_adversary_and_mechanism_has_one_distinct_style():
    for names in (plotting.ADVERSARIES, plotting.MECHANISMS):
        styles = [plotting.style_for(n) for n in names]
        assert len({to_rgba(s["color"]) for s in styles}) == len(names)
    assert plotting.style_for("a_new_adversary") == plotting.style_for("a_new_adversary")


def test_the_audit_figure_colours_by_adversary_marks_every_mean_and_states_ci_and_episodes(figures):
    fig = figures["audit"]
    assert "95% CI" in fig.get_suptitle() and "8 paired episodes" in fig.get_suptitle()
    seen, means = {}, []
    for ax in fig.axes:
        for bars in ax.containers:
            if isinstance(bars, ErrorbarContainer):
                line = bars.lines[0]  # the means, drawn as markers
                assert line.get_marker() not in (None, "None", "")
                seen.setdefault(bars.get_label(), set()).add(to_rgba(line.get_color()))
                means.extend(line.get_ydata())
    for adv, colors in seen.items():
        assert colors == {to_rgba(plotting.style_for(adv)["color"])}, adv
    assert sorted(seen) == ["exaggerate", "gradient", "ppo", "shade"]  # ppo in both panels, one colour
    assert any(abs(m) < 1e-12 for m in means)  # the near-zero gradient gain has its marker


def test_the_regret_figure_shares_y_styles_mechanisms_and_notes_dropped_points(figures):
    fig = figures["regret"]
    left, right = fig.axes
    assert left.get_shared_y_axes().joined(left, right)
    assert "1 point(s) with mean regret <= 0 not shown" in right.get_xlabel()
    assert "not shown" not in left.get_xlabel()
    assert "4 games" in fig.get_suptitle() and "95% CI" in fig.get_suptitle()
    styles = {(line.get_label().split(":")[0], line.get_linestyle(), line.get_marker()) for line in left.lines}
    assert len(styles) == 2 and len({s[1:] for s in styles}) == 2
    assert left.collections  # the CI bands
