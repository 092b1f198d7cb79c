"""Coalitions (docs/model.md §5): joint adversaries against brute force, coalitions of one against the
unilateral adversaries, the paired audit rows, and the errors of bad coalitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from strategic_feedback_env import mechanisms
from strategic_feedback_env.agents import audit, group_audit
from strategic_feedback_env.agents.coalition import (
    CoalitionGradientAdversary,
    CoalitionMyopicAdversary,
    check_coalition,
    coalitions_of_size,
)
from strategic_feedback_env.agents.gradient import GradientAdversary, MyopicOnlineAdversary
from strategic_feedback_env.batched import make_batched
from strategic_feedback_env.experiments import cli
from strategic_feedback_env.group_vector import GroupVecEnv

SMALL = {"n_labelers": 3, "n_outcomes": 3, "mechanism_params": {"lam": 0.1}, "report_size": True, "max_cycles": 2}


def _instances(seed, batch=4, n=3, K=2):
    rng = np.random.default_rng(seed)
    r = rng.random((batch, n, K)) + 0.05
    return r / r.sum(-1, keepdims=True), rng.integers(1, 5, (batch, n)).astype(float)


def _summed_utility(mech, reports, sizes, r_true, w_true, members):
    """Coalition utility sum_i w_i <theta, r_i> - p_i by the mechanism's public numpy outcome."""
    out = mech.outcome(reports, sizes)
    return sum(w_true[..., j] * (out.policy * r_true[..., j, :]).sum(-1) - out.payments[..., i]
               for j, i in enumerate(members))


@pytest.mark.parametrize("name", ["sw_max", "affine_maximizer"])
@pytest.mark.parametrize("report_size", [False, True])
def test_coalition_gradient_beats_a_brute_force_grid(name, report_size):
    """K = 2, sum normalisation: a member's report is one number p (and a size); the grid of joint
    reports is exhaustive up to its spacing, scored in one batch by the numpy mechanism. The
    ascent may stop a hair short on the flat ridges of the utility (relative 1e-6)."""
    mech = mechanisms.make(name, lam=0.1)
    r, w = _instances(3)
    members, max_size = [0, 1], 4
    br = CoalitionGradientAdversary(steps=200, seed=0).best_response(mech, r, w, members, report_size=report_size,
                                                                      max_size=max_size)
    ps = np.linspace(0.0, 1.0, 41 if report_size else 201)
    ws = np.linspace(1.0, max_size, 7) if report_size else w[0, :2]  # without size reports: unused
    grid = np.array(list(itertools.product(ps, ps, ws, ws)))  # (G, 4): p0, p1, w0, w1
    prof = np.broadcast_to(r, (len(grid), *r.shape)).copy()
    sizes = np.broadcast_to(w, (len(grid), *w.shape)).copy()
    for j in members:
        prof[:, :, j] = np.stack([grid[:, j], 1 - grid[:, j]], -1)[:, None]
        if report_size:
            sizes[:, :, j] = grid[:, 2 + j, None]
    best = _summed_utility(mech, prof, sizes, r[:, members], w[:, members], members).max(0)
    truthful = _summed_utility(mech, r, w, r[:, members], w[:, members], members)
    assert np.allclose(br.truthful_utility, truthful, atol=1e-12)
    assert np.all(br.utility >= best - 1e-6 * np.abs(best)), (br.utility, best)
    # the reported number is what the returned reports earn (re-scored exactly)
    prof, sz = r.copy(), w.copy()
    prof[:, members], sz[:, members] = br.report, br.size
    assert np.allclose(_summed_utility(mech, prof, sz, r[:, members], w[:, members], members), br.utility, atol=1e-12)


@pytest.mark.parametrize("name", ["sw_max", "affine_maximizer"])
def test_a_coalition_of_one_is_the_unilateral_gradient_adversary(name):
    mech = mechanisms.make(name, lam=0.2)
    r, w = _instances(5, batch=3, n=4, K=4)
    for labeler in (0, 2):
        one = GradientAdversary(steps=30, seed=7).best_response(mech, r, w, labeler, report_size=True, max_size=5)
        joint = CoalitionGradientAdversary(steps=30, seed=7).best_response(mech, r, w, [labeler], report_size=True,
                                                                           max_size=5)
        assert np.allclose(joint.gain, one.gain, rtol=1e-9, atol=1e-12)
        assert np.allclose(joint.report[:, 0], one.report, atol=1e-9)
        assert np.allclose(joint.size[:, 0], one.size, atol=1e-9)


@pytest.mark.parametrize("name", ["online_weighted", "average", "median", "hedge"])
def test_a_coalition_of_one_is_the_myopic_adversary(name):
    rng = np.random.default_rng(1)
    mech = mechanisms.make(name)
    mech.reset(4)
    if mech.weights is not None:
        mech.weights = rng.dirichlet(np.ones(4))
    for _ in range(5):
        x, target = rng.random(4), rng.random()
        single = MyopicOnlineAdversary(gamma=0.7).best_report(mech, x, 2, target, x[2])
        joint = CoalitionMyopicAdversary(gamma=0.7).best_reports(mech, x, [2], np.array([target]), x[[2]])
        assert joint.shape == (1,) and joint[0] == single


def test_coalition_myopic_beats_a_joint_grid():
    """Two members: the coarse grid plus coordinate sweeps is at least the best of a 51 x 51 grid."""
    mech = mechanisms.make("online_weighted", horizon=50)
    mech.reset(3)
    rng = np.random.default_rng(2)
    adversary = CoalitionMyopicAdversary(gamma=1.0)
    for _ in range(4):
        x, targets = rng.random(3), rng.random(2)
        beliefs, shares = x[:2], np.ones(2)
        best = adversary.best_reports(mech, x, [0, 1], targets, beliefs)
        grid = np.linspace(0, 1, 51)
        joint = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
        brute = adversary.objective(mech, x, np.array([0, 1]), joint, targets, beliefs, shares, mech.weights).max()
        found = adversary.objective(mech, x, np.array([0, 1]), best[None], targets, beliefs, shares, mech.weights)[0]
        assert found >= brute - 1e-12


def _truthful_group(name, game, env_config, members, seed, learn):
    return lambda env, obs: {a: env.truthful_actions()[a] for a in members}


def test_a_truthful_coalition_gains_exactly_zero(monkeypatch):
    monkeypatch.setattr(group_audit, "group_actor", _truthful_group)
    result = audit({**SMALL, "mechanism": "affine_maximizer"}, ["coalition_gradient", "sybil_gradient"], episodes=3,
                   coalitions=[["labeler_0", "labeler_1"], ["labeler_2"]], focal_agents=["labeler_1"])
    rows = [r for r in result.overall if r["adversary"] == "coalition_gradient"]
    assert [r["labeler"] for r in rows] == ["labeler_0+labeler_1", "labeler_2"]
    for row in rows:
        assert row["gain"] == 0.0 and row["gain_ci"] == 0.0 and row["unilateral_gain_sum"] == 0.0
        assert row["truthful_utility"] == row["adversary_utility"]
    sybil = next(r for r in result.overall if r["adversary"] == "sybil_gradient")
    assert sybil["gain"] == sybil["split_gain"]  # truthful identities: exactly the split's gain


def test_coalition_rows_sum_their_members():
    """The coalition row's truthful return is the members' summed baseline; gains are paired."""
    config = {**SMALL, "mechanism": "sw_max"}
    result = audit(config, ["exaggerate", "coalition_gradient"], episodes=3, learn={"gradient": {"steps": 20}},
                   coalitions=[["labeler_0", "labeler_2"]])
    truthful = result.overall[0]["truthful_utility"]  # mean over the 3 labelers
    row = next(r for r in result.overall if r["labeler"] == "labeler_0+labeler_2")
    per_labeler = {r["labeler"]: r["truthful_utility"] for r in result.labelers if r["adversary"] == "exaggerate"}
    assert np.isclose(row["truthful_utility"], per_labeler["labeler_0"] + per_labeler["labeler_2"])
    assert np.isclose(sum(per_labeler.values()) / 3, truthful)
    assert row["group_size"] == 2 and row["gain"] > 0  # sw_max: the coalition exaggerates profitably
    assert np.isclose(row["coordination_gain"], row["gain"] - row["unilateral_gain_sum"])


def test_group_vec_env_rewards_are_the_members_sum():
    config = {**SMALL, "mechanism": "affine_maximizer"}
    venv = GroupVecEnv("reward_report_v0", num_envs=3, members=["labeler_2", "labeler_0"], seed=4, **config)
    ref = make_batched("reward_report_v0", num_games=3, seed=4, **config)
    obs, ref_obs = venv.reset(), ref.reset()
    assert np.array_equal(obs, ref_obs[:, [2, 0]].reshape(3, -1))
    rng = np.random.default_rng(0)
    for _ in range(3):
        a = rng.random((3, 2, ref.act_dim))
        joint = ref.truthful_actions()
        joint[:, [2, 0]] = a
        _, ref_r, _, _, _ = ref.step(joint)
        _, r, _, _ = venv.step(a.reshape(3, -1))
        assert np.allclose(r, ref_r[:, [2, 0]].sum(1), atol=1e-6)


@pytest.mark.parametrize("game, config", [
    ("reward_report_v0", {**SMALL, "mechanism": "sw_max"}),
    ("online_feedback_v0", {"n_labelers": 3, "max_cycles": 5}),
])
def test_coalition_ppo_smoke(game, config):
    result = audit(config, ["coalition_ppo"], episodes=2, game=game, learn={"ppo": {"timesteps": 256}})
    row = result.overall[1]
    assert row["labeler"] == "labeler_0+labeler_1" and np.isfinite(row["gain"]) and np.isfinite(row["gain_ci"])
    assert np.isfinite(row["unilateral_gain_sum"])


@pytest.mark.parametrize("coalition, pattern", [
    (["labeler_0", "labeler_7"], "unknown labeler"),
    (["labeler_1", "labeler_1"], "more than once"),
    (["labeler_0", "labeler_1", "labeler_2"], "coalition of everyone"),
    ([], "coalition needs"),
])
def test_bad_coalitions(coalition, pattern):
    agents = ["labeler_0", "labeler_1", "labeler_2"]
    with pytest.raises(ValueError, match=pattern):
        check_coalition(coalition, agents)
    with pytest.raises(ValueError, match=pattern):
        audit({**SMALL, "mechanism": "sw_max"}, ["coalition_gradient"], episodes=2, coalitions=[coalition])


@pytest.mark.parametrize("argv, pattern", [
    (["--coalition", "labeler_0,labeler_9"], "unknown labeler"),
    (["--coalition", "labeler_1,labeler_1"], "distinct labeler ids"),
    (["--coalition", "labeler_0,labeler_1,labeler_2"], "coalition of everyone"),
    (["--coalition-size", "3"], "coalition size"),
    (["--sybils", "0"], "--sybils: must be an integer >= 1"),
])
def test_cli_rejects_bad_groups(argv, pattern, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["audit", "--quick", "--mechanisms", "sw_max", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2 and pattern in err and err.count("\n") == 1
    assert not out.exists()


def test_coalitions_of_size_enumerates_and_caps():
    agents = [f"labeler_{i}" for i in range(5)]
    assert len(coalitions_of_size(agents, 2, 100)) == 10
    assert coalitions_of_size(agents, 3, 2) == [agents[:3], agents[:2] + agents[3:4]]
    with pytest.raises(ValueError, match="cap"):
        coalitions_of_size(agents, 2, 0)


def test_cli_audit_writes_coalition_rows(tmp_path):
    out = tmp_path / "run"
    code = cli.main(["audit", "--quick", "--mechanisms", "affine_maximizer", "--adversaries", "coalition_gradient",
                     "--coalition", "labeler_0,labeler_1", "--coalition-size", "1", "--episodes", "2",
                     "--gradient-steps", "5", "--out", str(out), "--no-progress"])
    assert code == 0
    import csv

    rows = list(csv.DictReader((out / "audit.csv").open()))
    labelers = [r["labeler"] for r in rows if r["adversary"] == "coalition_gradient"]
    assert labelers == ["labeler_0+labeler_1", "labeler_0", "labeler_1", "labeler_2"]
    assert all(r["unilateral_gain_sum"] != "" for r in rows if r["adversary"] == "coalition_gradient")


def test_a_coalition_run_reruns_from_its_record(tmp_path):
    """Repeated --coalition options are recorded as a list of lists and read back by sfe rerun."""
    import csv

    first, again = tmp_path / "first", tmp_path / "again"
    argv = ["audit", "--quick", "--mechanisms", "sw_max", "--adversaries", "coalition_gradient", "--episodes", "2",
            "--gradient-steps", "3", "--coalition", "labeler_0,labeler_1", "--coalition", "labeler_2", "--no-progress"]
    assert cli.main([*argv, "--out", str(first)]) == 0
    assert cli.main(["rerun", str(first), "--out", str(again), "--no-progress"]) == 0
    rows = [list(csv.DictReader((folder / "audit.csv").open())) for folder in (first, again)]
    assert rows[0] == rows[1]
    assert [r["labeler"] for r in rows[0] if r["adversary"] == "coalition_gradient"] == ["labeler_0+labeler_1",
                                                                                           "labeler_2"]
