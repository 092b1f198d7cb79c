"""The script that regenerates the README's quick-start excerpt and figure (issue "Runs a
researcher can trust", item 11), on a stand-in audit run: it picks each mechanism's baseline and
best adversary, rewrites only the text between the markers, states machine and date, and copies
the run's figure."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from strategic_feedback_env.experiments import cli, readme_excerpts

ROWS = [
    {"game": "g", "mechanism": "m1", "adversary": "truthful", "labeler": "labeler_0", "gain": "0", "gain_ci": "0",
     "payment": "0.5", "ir_violations": "0", "verdict": "no profitable misreport found"},
    {"game": "g", "mechanism": "m1", "adversary": "a", "labeler": "labeler_0", "gain": "-1.5", "gain_ci": "0.1",
     "payment": "0.5", "ir_violations": "0", "verdict": "no profitable misreport found"},
    {"game": "g", "mechanism": "m1", "adversary": "b", "labeler": "labeler_0", "gain": "2.25", "gain_ci": "0.1",
     "payment": "0.5", "ir_violations": "", "verdict": "profitable misreport: +2.25"},
    {"game": "g", "mechanism": "m2", "adversary": "truthful", "labeler": "labeler_0", "gain": "0", "gain_ci": "0",
     "payment": "0", "ir_violations": "", "verdict": "no profitable misreport found"},
    {"game": "g", "mechanism": "m2", "adversary": "a", "labeler": "all", "gain": "0.125", "gain_ci": "0.5",
     "payment": "0", "ir_violations": "", "verdict": "no profitable misreport found"},
]


def test_highlights_are_each_mechanisms_baseline_and_best_adversary():
    picked = readme_excerpts.highlights(ROWS)
    assert [(r["mechanism"], r["adversary"]) for r in picked] == [("m1", "truthful"), ("m1", "b"), ("m2", "truthful"),
                                                                 ("m2", "a")]


def test_only_the_text_between_the_markers_changes():
    text = f"intro\n{readme_excerpts.START}\nold\n{readme_excerpts.END}\noutro\n"
    assert readme_excerpts.replace_between(text, "new") == f"intro\n{readme_excerpts.START}\nnew\n{readme_excerpts.END}\noutro\n"
    with pytest.raises(ValueError, match="audit-quick:start"):
        readme_excerpts.replace_between("no markers here", "new")


def test_main_rewrites_the_excerpt_and_copies_the_figure_of_its_own_run(tmp_path, monkeypatch):
    (tmp_path / "experiments" / "figures").mkdir(parents=True)
    (tmp_path / "README.md").write_text(f"a\n{readme_excerpts.START}\nstale\n{readme_excerpts.END}\nb\n")
    calls = []

    def fake_audit(argv):
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True)
        with open(out / "audit.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
            writer.writeheader()
            writer.writerows(ROWS)
        (out / "audit.png").write_bytes(b"png of this run")
        return 0

    monkeypatch.setattr(cli, "main", fake_audit)
    assert readme_excerpts.main(tmp_path) == 0
    assert calls and calls[0][:2] == ["audit", "--quick"]
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("a\n") and text.endswith("\nb\n") and "stale" not in text
    assert f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}" in text and "cores" in text
    assert "profitable misreport: +2.25" in text and "-1.5" not in text
    assert (tmp_path / readme_excerpts.FIGURE).read_bytes() == b"png of this run"
    with open(tmp_path / readme_excerpts.TABLE, newline="") as fh:
        assert list(csv.DictReader(fh)) == [{k: str(v) for k, v in row.items()} for row in ROWS]
