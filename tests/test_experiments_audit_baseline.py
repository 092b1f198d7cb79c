"""One baseline per audit row (issue "Runs a researcher can trust", item 8): every gain in
``audit.csv`` recomputes from the CSV's own columns, each truthful row pools exactly the
labelers its adversary rows deviate, and the ``labeler`` column names them."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest

from strategic_feedback_env.experiments import cli


@pytest.fixture(scope="module")
def audit_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "run"
    argv = ["audit", "--quick", "--mechanisms", "affine_maximizer", "--adversaries", "exaggerate,mix,shared",
            "--focal", "labeler_0,labeler_2", "--episodes", "3", "--ppo-timesteps", "64", "--no-progress",
            "--out", str(out)]
    assert cli.main(argv) == 0
    with open(out / "audit.csv") as fh:
        rows = list(csv.DictReader(fh))
    with open(out / "audit_labelers.csv") as fh:
        per_labeler = list(csv.DictReader(fh))
    return rows, per_labeler


def test_every_gain_recomputes_from_the_csv_columns(audit_rows):
    rows, per_labeler = audit_rows
    for row in rows + per_labeler:
        gain, own, truth = (float(row[k]) for k in ("gain", "adversary_utility", "truthful_utility"))
        assert np.isclose(gain, own - truth, rtol=1e-9, atol=1e-12), row


def test_each_truthful_row_is_the_baseline_of_the_rows_that_deviate_the_same_labelers(audit_rows):
    rows, per_labeler = audit_rows
    baselines = {(r["mechanism"], r["labeler"]): float(r["truthful_utility"]) for r in rows if r["adversary"] == "truthful"}
    assert set(baselines) == {("affine_maximizer", "labeler_0,labeler_2")}
    unilateral = [r for r in rows if r["adversary"] in ("exaggerate", "mix")]
    assert len(unilateral) == 2
    for row in unilateral:
        assert row["labeler"] == "labeler_0,labeler_2" and row["baseline"].startswith("all truthful")
        assert float(row["truthful_utility"]) == baselines[row["mechanism"], row["labeler"]]
    # the pooled baseline is the mean over exactly those labelers' own baselines
    per = defaultdict(list)
    for r in per_labeler:
        if r["adversary"] == "exaggerate":
            per[r["mechanism"]].append(float(r["truthful_utility"]))
    for mech, values in per.items():
        assert np.isclose(np.mean(values), baselines[mech, "labeler_0,labeler_2"], rtol=1e-12)


def test_joint_rows_name_all_labelers_and_their_own_baseline(audit_rows):
    rows, _ = audit_rows
    joint = [r for r in rows if r["adversary"] == "shared"]
    assert len(joint) == 1
    assert all(r["labeler"] == "all" and r["baseline"].startswith("own truthful report") for r in joint)
