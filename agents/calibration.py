"""How far to trust a learned adversary's verdict: its gain as a share of the white-box gain.

A learner that found nothing is only evidence of DSIC if it would have found what is there.
Wherever a white-box best response ran on the same episodes, :func:`calibrate` sets each learned
adversary's ``white_box_share = gain / white-box gain`` and states it in the verdict. The
reference is the white box with the learner's information where it ran: ``interim`` (the
reward-report game's best response to the prior over the others' types,
:class:`~strategic_feedback_env.agents.gradient.InterimGradientAdversary`), else the ex-post
one (``gradient``, which answers the others' actual reports, or ``myopic`` in the online game);
the row's ``white_box`` column names it. Where both rows carry their per-episode gains
(``episode_gains``, the same paired episodes) the share gets a 95% confidence interval,
``white_box_share_ci`` (the ratio of paired means by the delta method,
:func:`~strategic_feedback_env.agents.stats.ratio_ci`), stated in the verdict as ``0.93 ± 0.08``. A
learner below ``threshold`` (default 0.9) that did not itself find a profitable misreport gets
the verdict "inconclusive", not "no profitable misreport found". Where the white box cannot
run (``n/a``: menus, policy gradient) the verdict says it is uncalibrated (docs/model.md §3, §4).
"""

from __future__ import annotations

import math

from .stats import ratio_ci

WHITE_BOX_NAMES = ("interim", "gradient", "myopic")  # the first one present is the reference
LEARNED_NAMES = ("ppo", "sac", "shared", "independent")
NOT_APPLICABLE = "n/a"


def not_applicable_row(adversary, agent, why) -> dict:
    """The row of an adversary that cannot play this mechanism: no number, the reason."""
    nan = float("nan")
    return {"adversary": adversary, "labeler": agent, "truthful_utility": nan, "adversary_utility": nan,
            "adversary_utility_ci": nan, "gain": nan, "gain_ci": nan, "payment": nan, "social_welfare": nan,
            "ir_violations": None, "negative_payment_share": nan, "verdict": f"{NOT_APPLICABLE}: {why}"}


def calibrate(rows, threshold=0.9):
    """Add ``white_box_share`` to the learned rows of ``rows`` (dicts with ``adversary``,
    ``labeler``, ``gain``, ``verdict`` and optionally ``mechanism``) that share a mechanism and
    labeler with a white-box row, and qualify their verdicts (module docstring); other rows get
    ``white_box_share = NaN``. Rows are changed in place (calibrating twice changes nothing);
    the list is returned."""
    white = {}
    for name in reversed(WHITE_BOX_NAMES):  # the first name present wins
        white.update({(r.get("mechanism"), r["labeler"]): r for r in rows if r["adversary"] == name})
    for row in rows:
        ref = white.get((row.get("mechanism"), row["labeler"]))
        done = "white_box_share" in row and not math.isnan(row["white_box_share"])
        row.setdefault("white_box_share", float("nan"))  # every row has the column (CSV)
        row.setdefault("white_box_share_ci", float("nan"))
        row.setdefault("white_box", "")
        if row["adversary"] not in LEARNED_NAMES or ref is None or done or row["verdict"].startswith("inconclusive"):
            continue
        row["white_box"] = ref["adversary"]
        profitable = row["verdict"].startswith("profitable")
        if ref["verdict"].startswith(NOT_APPLICABLE):
            row["white_box_share"] = float("nan")
            if not profitable:
                row["verdict"] = "inconclusive: no white-box best response to calibrate against"
            continue
        if not ref["verdict"].startswith("profitable"):
            row["white_box_share"] = float("nan")  # nothing to find: the learner's verdict stands
            continue
        share = row["gain"] / ref["gain"] if ref["gain"] > 0 else float("nan")
        row["white_box_share"] = share
        stated = f"{share:.2f}"
        paired = row.get("episode_gains"), ref.get("episode_gains")
        if all(paired) and len(paired[0]) == len(paired[1]):
            row["white_box_share_ci"] = ratio_ci(*paired)[1]
            stated += f" ± {row['white_box_share_ci']:.2f}"
        if not profitable and not (share >= threshold):
            row["verdict"] = f"inconclusive: learner reached {stated} of the {ref['adversary']} white-box gain"
        else:
            row["verdict"] += f" ({stated} of the {ref['adversary']} white box)"
    return rows


def gain_over_gap(gain, gap) -> float:
    """``gain / gap`` (the bound of docs/model.md §4 is ``<= 1`` with exact payments); NaN without a gap."""
    return gain / gap if gap is not None and math.isfinite(gap) and gap > 1e-12 else float("nan")
