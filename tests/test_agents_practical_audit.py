"""The practical suite (docs/model.md §4) in the audit: gap columns, n/a rows, learner calibration, CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from strategic_feedback_env import mechanisms
from strategic_feedback_env.agents import audit
from strategic_feedback_env.agents.calibration import calibrate, gain_over_gap
from strategic_feedback_env.agents.stats import ratio_ci
from strategic_feedback_env.experiments import audit as audit_exp
from strategic_feedback_env.experiments import cli

SMALL = {"n_labelers": 3, "n_outcomes": 4, "report_size": True, "max_cycles": 3, "mechanism": "affine_maximizer"}


def _overall(result, adversary):
    return next(r for r in result.overall if r["adversary"] == adversary)


def test_truncated_training_is_exploited_up_to_the_gap_and_no_further():
    config = {**SMALL, "mechanism_params": {"lam": 0.1, "solver": "mirror_ascent", "steps": 2}}
    result = audit(config, ["size_scaling", "gradient"], episodes=4, focal_agents=["labeler_0"],
                   learn={"gradient": {"steps": 40}})
    grad = _overall(result, "gradient")
    gap = grad["optimisation_gap"]
    assert gap > 0 and grad["verdict"].startswith("profitable")
    assert 0 < grad["gain"] <= gap + 1e-9 and 0 < grad["gain_over_gap"] <= 1 + 1e-9
    # the gap is the truthful run's, per episode: recompute it round by round
    from strategic_feedback_env import reward_report_v0

    env = reward_report_v0.parallel_env(**config)
    exact = mechanisms.make("affine_maximizer", lam=0.1)
    totals = []
    for seed in range(4):
        env.reset(seed=seed)
        totals.append(0.0)
        while env.agents:
            trained = env.mechanism.outcome(env.rewards, env.sizes)
            totals[-1] += float(exact.outcome(env.rewards, env.sizes).value - trained.value)
            env.step(env.truthful_actions())
    assert np.isclose(gap, np.mean(totals), rtol=1e-9)
    assert all(r["negative_payment_share"] == 0 for r in result.overall)


def test_menus_have_no_gradient_row_and_heuristic_2_charges_negative_payments():
    soups = audit({**SMALL, "mechanism_params": {"lam": 0.1, "menu": "soups"}}, ["gradient", "size_scaling"],
                  episodes=2, focal_agents=["labeler_0"])
    row = _overall(soups, "gradient")
    assert row["verdict"].startswith("n/a") and "menu" in row["verdict"] and math.isnan(row["gain"])
    assert all(r["verdict"].startswith("n/a") for r in soups.labelers if r["adversary"] == "gradient")
    early = audit({**SMALL, "mechanism_params": {"lam": 0.1, "payment": "early_stopped", "payment_steps": 1}},
                  ["gradient"], episodes=3, focal_agents=["labeler_0"], learn={"gradient": {"steps": 30}})
    assert early.overall[0]["negative_payment_share"] > 0
    assert _overall(early, "gradient")["verdict"] == "no profitable misreport found"


def _rows(**gains):
    out = []
    for adv, (gain, profitable) in gains.items():
        verdict = "n/a: menu" if gain is None else (f"profitable misreport: +{gain}" if profitable
                                                    else "no profitable misreport found")
        out.append({"adversary": adv, "labeler": "all", "gain": float("nan") if gain is None else gain,
                    "verdict": verdict, "mechanism": "m"})
    return out


def test_calibration_states_the_share_and_calls_weak_learners_inconclusive():
    rows = calibrate(_rows(gradient=(1.0, True), ppo=(0.5, False), sac=(0.95, True), exaggerate=(0.1, False)))
    by = {r["adversary"]: r for r in rows}
    assert by["ppo"]["white_box_share"] == 0.5
    assert by["ppo"]["verdict"] == "inconclusive: learner reached 0.50 of the gradient white-box gain"
    assert by["sac"]["verdict"] == "profitable misreport: +0.95 (0.95 of the gradient white box)"
    assert by["ppo"]["white_box"] == "gradient" and by["exaggerate"]["white_box"] == ""
    assert math.isnan(by["exaggerate"]["white_box_share"]) and by["exaggerate"]["verdict"].startswith("no profitable")
    again = calibrate([dict(r) for r in rows])
    assert [r["verdict"] for r in again] == [r["verdict"] for r in rows]
    rows = calibrate(_rows(gradient=(None, False), ppo=(0.0, False)))
    assert rows[1]["verdict"].startswith("inconclusive: no white-box")
    rows = calibrate(_rows(gradient=(0.0, False), ppo=(-0.1, False)))
    assert rows[1]["verdict"] == "no profitable misreport found" and math.isnan(rows[1]["white_box_share"])
    rows = calibrate(_rows(ppo=(0.0, False)))  # no white box in the rows: nothing to say
    assert math.isnan(rows[0]["white_box_share"]) and rows[0]["verdict"] == "no profitable misreport found"
    assert math.isnan(gain_over_gap(1.0, 0.0)) and gain_over_gap(1.0, 2.0) == 0.5


def test_ratio_ci_covers_the_true_ratio_95_percent_of_the_time():
    """Coverage by simulation: paired, correlated gains with a known ratio of means (2/3)."""
    rng = np.random.default_rng(0)
    trials, n = 4000, 40
    white = 1.5 + rng.standard_normal((trials, n))
    learned = 0.6 * white + 0.1 + 0.4 * rng.standard_normal((trials, n))  # mean 1.0 against 1.5
    hits = 0
    for x, y in zip(learned, white):
        r, half = ratio_ci(x, y)
        hits += abs(r - 1.0 / 1.5) <= half
    assert 0.93 <= hits / trials <= 0.97


def test_ratio_ci_matches_a_bootstrap_and_the_exact_cases():
    rng = np.random.default_rng(1)
    y = 1.0 + rng.standard_normal(200)
    x = 0.9 * y + 0.3 * rng.standard_normal(200)
    r, half = ratio_ci(x, y)
    picks = rng.integers(0, 200, (4000, 200))
    boot = x[picks].mean(1) / y[picks].mean(1)
    assert r == pytest.approx(x.mean() / y.mean())
    assert half == pytest.approx(1.959964 * boot.std(), rel=0.1)
    assert ratio_ci(2.5 * y, y) == pytest.approx((2.5, 0.0), abs=1e-12)  # proportional: no spread
    assert all(math.isnan(v) for v in ratio_ci([1.0, 2.0], [1.0, -1.0]))  # mean(y) = 0
    with pytest.raises(ValueError, match="same length"):
        ratio_ci([1.0, 2.0], [1.0, 2.0, 3.0])


def test_calibration_gives_the_share_a_confidence_interval_from_paired_episodes():
    white = [1.0, 2.0, 0.5, 1.5]
    learned = [0.9, 1.6, 0.6, 1.3]
    rows = _rows(interim=(1.25, True), ppo=(1.1, True), sac=(0.5, False))
    for row, gains in zip(rows, (white, learned, [0.5, 0.4, 0.6, 0.5])):
        row["episode_gains"] = gains
    by = {r["adversary"]: r for r in calibrate(rows)}
    d = np.array(learned) - 0.88 * np.array(white)  # 0.88 = 4.4 / 5.0, the ratio of the sums
    expected = 1.959964 * d.std(ddof=1) / (2.0 * 1.25)
    assert by["ppo"]["white_box_share"] == pytest.approx(0.88)
    assert by["ppo"]["white_box_share_ci"] == pytest.approx(expected, rel=1e-5)
    assert by["ppo"]["verdict"] == f"profitable misreport: +1.1 (0.88 ± {expected:.2f} of the interim white box)"
    assert by["sac"]["verdict"].startswith("inconclusive: learner reached 0.40 ± ")
    rows = _rows(interim=(1.25, True), ppo=(1.1, True))  # no per-episode gains: no interval
    assert math.isnan(calibrate(rows)[1]["white_box_share_ci"]) and rows[1]["verdict"].endswith("(0.88 of the interim white box)")


def test_learners_are_calibrated_against_the_interim_white_box_where_it_ran():
    rows = calibrate(_rows(gradient=(1.0, True), interim=(0.2, True), ppo=(0.19, True), sac=(0.1, False)))
    by = {r["adversary"]: r for r in rows}
    assert by["ppo"]["white_box"] == "interim" and by["ppo"]["white_box_share"] == pytest.approx(0.95)
    assert by["ppo"]["verdict"] == "profitable misreport: +0.19 (0.95 of the interim white box)"
    assert by["sac"]["verdict"] == "inconclusive: learner reached 0.50 of the interim white-box gain"
    # the interim white box found nothing: the learner's "nothing" stands, whatever the ex-post one found
    rows = calibrate(_rows(gradient=(1.0, True), interim=(0.01, False), ppo=(0.0, False)))
    assert rows[2]["verdict"] == "no profitable misreport found" and rows[2]["white_box"] == "interim"


def test_the_practical_grid_builds_every_mechanism():
    for quick in (True, False):
        labels = audit_exp.practical_labels(quick)
        assert len(set(labels)) == len(labels)
        for label in labels:
            name, params = audit_exp.parse_label(label, 5)
            mechanisms.make(name, lam=0.1, **params)
    assert "affine_maximizer:solver=mirror_ascent;steps=100;payment=same_solver" in audit_exp.practical_labels(False)
    with pytest.raises(ValueError, match="key=value"):
        audit_exp.parse_label("affine_maximizer:steps", 4)
    menu = audit_exp.fixed_menu(4)
    np.testing.assert_allclose(menu.sum(-1), 1.0)


def test_sfe_audit_practical_suite_end_to_end(tmp_path, capsys):
    out = tmp_path / "practical"
    labels = "affine_maximizer:solver=mirror_ascent;steps=1,affine_maximizer:menu=fixed"
    code = cli.main(["audit", "--suite", "practical", "--quick", "--episodes", "2", "--no-progress",
                     "--mechanisms", labels, "--adversaries", "size_scaling,gradient,ppo", "--gradient-steps", "20",
                     "--ppo-timesteps", "128", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    with open(out / "audit.csv") as fh:
        rows = {(r["mechanism"], r["adversary"]): r for r in csv.DictReader(fh)}
    truncated = rows["affine_maximizer:solver=mirror_ascent;steps=1", "gradient"]
    assert float(truncated["optimisation_gap"]) > 0 and float(truncated["gain"]) > 0
    assert float(rows["affine_maximizer:menu=fixed", "gradient"]["gain"]) != float(
        rows["affine_maximizer:menu=fixed", "gradient"]["gain"])  # NaN: n/a
    assert rows["affine_maximizer:menu=fixed", "gradient"]["verdict"].startswith("n/a")
    assert (out / "gain_vs_gap.png").stat().st_size > 1000
    assert "optimisation_gap" in text and "negative_payment_share" in text
    # the share's interval comes from the two cells' per-episode gains, kept in the parts only
    ppo = rows["affine_maximizer:solver=mirror_ascent;steps=1", "ppo"]
    assert "episode_gains" not in ppo and "white_box_share_ci" in ppo
    part = json.loads(next((out / "parts").glob("*steps=1*-ppo.json")).read_text())
    gains = part["overall"]["episode_gains"]
    assert len(gains) == 2 and np.mean(gains) == pytest.approx(float(ppo["gain"]))
    assert ppo["white_box"] == "gradient" and math.isfinite(float(ppo["white_box_share_ci"]))
    assert f"{float(ppo['white_box_share']):.2f} ± {float(ppo['white_box_share_ci']):.2f} of the gradient" in ppo["verdict"]


def test_sharpen_action_mode_starts_at_truth_and_reaches_a_near_one_hot_report():
    from strategic_feedback_env import reward_report_v0
    from strategic_feedback_env.agents import spec_of
    from strategic_feedback_env.agents.learning import model_action_shape, to_env_action

    env = reward_report_v0.parallel_env(n_labelers=3, n_outcomes=4, report_size=True)
    spec = spec_of(env)
    obs, _ = env.reset(seed=2)
    o = obs["labeler_0"]
    r = env.rewards[0]
    assert model_action_shape((5,), spec, "sharpen") == (6,)
    truthful = to_env_action(np.zeros(6), o, spec, "sharpen")
    np.testing.assert_allclose(truthful[:4], r / r.max(), rtol=1e-12)
    np.testing.assert_allclose(truthful[4], (env.sizes[0] - 1) / 9, rtol=1e-12)
    sharp = to_env_action(np.array([0, 0, 0, 0, 1.0, 1.0]), o, spec, "sharpen")
    expected = r ** np.exp(4.0) / (r ** np.exp(4.0)).max()
    np.testing.assert_allclose(sharp[:4], expected, rtol=1e-9, atol=1e-300)
    assert sharp[4] == 1.0 and sharp[np.argmax(r)] == 1.0


def test_a_sharpen_mode_learner_trains_saves_and_loads(tmp_path):
    from strategic_feedback_env.agents import LearnedPolicy, train_best_response

    config = {**SMALL, "mechanism": "sw_max", "mechanism_params": {"lam": 0.1}}
    policy, _ = train_best_response(env_config=config, timesteps=256, seed=1, action_mode="sharpen", reward="gain")
    path = policy.save(tmp_path / "sharp")
    again = LearnedPolicy.load(path)
    obs = np.random.default_rng(0).random((5, 10))
    np.testing.assert_array_equal(policy(obs), again(obs))
    assert policy(obs).shape == (5, 5)
    with pytest.raises(ValueError, match="reward must be one of"):
        train_best_response(env_config=config, timesteps=16, reward="utility2")


@pytest.mark.slow
def test_ppo_reaches_nine_tenths_of_the_white_box_gain_under_exact_sw_max():
    """The calibration of the audit's learner (sharpen mode, quick setting, 3000 steps):
    measured 0.98-0.99 of the gradient adversary's gain on the same episodes."""
    config = {**SMALL, "max_cycles": 5, "mechanism": "sw_max", "mechanism_params": {"lam": 0.1}}
    result = audit(config, ["gradient", "ppo"], episodes=20, focal_agents=["labeler_0"],
                   learn={"ppo": {"timesteps": 3000}, "gradient": {"steps": 60}})
    row = _overall(result, "ppo")
    assert row["white_box_share"] >= 0.9, row
    assert row["verdict"].startswith("profitable") and "of the gradient white box" in row["verdict"]


@pytest.mark.slow
def test_ppo_reaches_most_of_the_interim_white_box_gain_under_truncated_training():
    """The audit's learner against the best response with its own information, in the audit's
    default setting (n=5, K=10, 10 rounds, PPO 20k steps, 20 episodes) under mirror ascent T=3:
    measured 0.90 of the interim white box's gain (0.86 before the learner saw only its type;
    over seeds 0-4 with 150-step white boxes 0.90, 0.85, 0.99, 1.68, 1.13, experiments/README.md
    §8: the lowest of five is 0.85); this guards 0.75."""
    config = {"n_labelers": 5, "n_outcomes": 10, "report_size": True, "max_cycles": 10, "mechanism": "affine_maximizer",
              "mechanism_params": {"lam": 0.1, "solver": "mirror_ascent", "steps": 3}}
    result = audit(config, ["interim", "ppo"], episodes=20, focal_agents=["labeler_0"],
                   learn={"ppo": {"timesteps": 20_000}, "interim": {"steps": 60}})
    assert _overall(result, "interim")["verdict"].startswith("profitable")
    row = _overall(result, "ppo")
    assert row["white_box"] == "interim" and row["white_box_share"] >= 0.75, row
