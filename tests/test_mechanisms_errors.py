"""Input validation: every bad input is a ``ValueError`` whose message names the problem,
and a rejected call never changes an online mechanism's weights."""

from __future__ import annotations

import numpy as np
import pytest

from strategic_feedback_env import mechanisms

SW = ["sw_max", "affine_maximizer"]
ONLINE = ["average", "median", "online_weighted", "hedge"]
ALL = SW + ONLINE
GOOD = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 0)), np.zeros((0, 3)), 0.5])
def test_wrong_report_shapes(name, bad):
    with pytest.raises(ValueError, match=r"reports"):
        mechanisms.make(name).outcome(bad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("value,pattern", [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (-np.inf, "NaN or inf"),
                                           (-0.1, r"\[0(\.0)?, 1(\.0)?\]"), (1.5, r"\[0(\.0)?, 1(\.0)?\]")])
def test_nan_inf_and_out_of_range_reports(name, value, pattern):
    bad = GOOD.copy()
    bad[0, 1] = value
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name).outcome(bad)


@pytest.mark.parametrize("name", SW)
def test_non_numeric_reports(name):
    with pytest.raises(ValueError, match="numeric"):
        mechanisms.make(name).outcome([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("name", SW)
def test_sum_normalisation_enforced(name):
    mech = mechanisms.make(name, normalization="sum")
    with pytest.raises(ValueError, match="sum-normalised"):
        mech.outcome(np.array([[0.2, 0.3, 0.4], [0.6, 0.4, 0.0]]))
    mech.outcome(GOOD)  # accepted


@pytest.mark.parametrize("name", SW)
def test_max_normalisation_enforced(name):
    mech = mechanisms.make(name, normalization="max")
    with pytest.raises(ValueError, match="max-normalised"):
        mech.outcome(GOOD)
    mech.outcome(np.array([[0.2, 1.0, 0.5], [1.0, 0.4, 0.0]]))


@pytest.mark.parametrize("name", ONLINE)
def test_online_reports_must_be_distributions(name):
    with pytest.raises(ValueError, match="sum-normalised"):
        mechanisms.make(name).outcome(np.array([[0.2, 0.3], [0.6, 0.6]]))


@pytest.mark.parametrize("name", SW)
@pytest.mark.parametrize("lam", [0, -1.0, np.nan, np.inf, -np.inf])
def test_bad_lam(name, lam):
    with pytest.raises(ValueError, match="lam"):
        mechanisms.make(name, lam=lam)


@pytest.mark.parametrize("name", SW)
def test_bad_regulariser_and_normalization(name):
    with pytest.raises(ValueError, match="regularizer.*kl"):
        mechanisms.make(name, regularizer="l2")
    with pytest.raises(ValueError, match="normalization"):
        mechanisms.make(name, normalization="l1")


@pytest.mark.parametrize("name", SW)
@pytest.mark.parametrize("sizes,pattern", [
    ([0.5, 2.0], ">= 1"), ([0.0, 1.0], ">= 1"), ([-3.0, 1.0], ">= 1"),
    ([1.0, np.nan], "NaN or inf"), ([1.0, np.inf], "NaN or inf"),
    ([1.0, 2.0, 3.0], "sizes"), (2.0, "sizes"), ([[1.0], [2.0]], "sizes"),
])
def test_bad_sizes(name, sizes, pattern):
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name).outcome(GOOD, sizes)


@pytest.mark.parametrize("name", SW)
@pytest.mark.parametrize("ref,pattern", [
    ([0.5, 0.5], "reference"), ([0.0, 0.5, 0.5], "full support"), ([0.2, 0.2, 0.2], "sum to 1"),
    ([np.nan, 0.5, 0.5], "NaN or inf"),
])
def test_bad_reference(name, ref, pattern):
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name, reference=ref).outcome(GOOD)
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name).outcome(GOOD, reference=ref)


def test_unknown_mechanism_lists_available_names():
    with pytest.raises(ValueError, match="unknown mechanism 'nope'") as info:
        mechanisms.make("nope")
    for name in ALL:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="available"):
        mechanisms.parameters("nope")


def test_unknown_parameter_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown parameter.*'gamma'.*accepted.*lam"):
        mechanisms.make("sw_max", gamma=1.0)


@pytest.mark.parametrize("name", ["online_weighted", "hedge"])
@pytest.mark.parametrize("eta,horizon,pattern", [(-0.1, 10, "eta"), (1.5, 10, "eta"), (None, 0, "horizon")])
def test_bad_learning_parameters(name, eta, horizon, pattern):
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name, eta=eta, horizon=horizon)


@pytest.mark.parametrize("name, params, pattern", [
    ("affine_maximizer", {"lam": None}, "lam"),
    ("affine_maximizer", {"lam": "0.1"}, "lam"),
    ("sw_max", {"lam": [1.0]}, "lam"),
    ("hedge", {"horizon": None}, "horizon"),
    ("hedge", {"horizon": 2.5}, "horizon"),
    ("online_weighted", {"eta": "x"}, "eta"),
    ("sw_max", {"reference": 5}, "reference"),
    ("sw_max", {"reference": "ab"}, "reference"),
])
def test_parameters_of_the_wrong_type_give_value_errors(name, params, pattern):
    with pytest.raises(ValueError, match=pattern):
        mechanisms.make(name, **params)


@pytest.mark.parametrize("name", ONLINE)
def test_rejected_calls_do_not_change_online_weights(name):
    rng = np.random.default_rng(0)
    mech = mechanisms.make(name)
    x = rng.dirichlet(np.ones(2), (4, 3))
    mech.update(x, np.eye(2)[rng.integers(0, 2, 4)])
    mech.update(x, np.eye(2)[rng.integers(0, 2, 4)])
    before = mech.weights.copy()
    bad_calls = [
        lambda: mech.update(np.full((4, 3, 2), np.nan), np.eye(2)[[0, 1, 0, 1]]),
        lambda: mech.update(x + 0.5, np.eye(2)[[0, 1, 0, 1]]),
        lambda: mech.update(x, np.full((4, 2), 0.7)),             # y not a distribution
        lambda: mech.update(x, np.array([[1.5, -0.5]] * 4)),      # y negative
        lambda: mech.update(x, np.ones((4, 3)) / 3),              # y wrong K
        lambda: mech.update(x, np.array([[np.nan, 1.0]] * 4)),    # y NaN
        lambda: mech.update(x[:, :2], np.eye(2)[[0, 1, 0, 1]]),   # wrong n
        lambda: mech.outcome(x[:, :2]),                           # wrong n
        lambda: mech.unilateral_outcomes(x, None, x + 1.0),       # bad alternative reports
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
        np.testing.assert_array_equal(mech.weights, before)


def test_wrong_n_message_mentions_reset():
    mech = mechanisms.make("online_weighted")
    mech.reset(3)
    with pytest.raises(ValueError, match=r"n=2.*n=3.*reset"):
        mech.outcome(np.array([[0.5, 0.5], [0.1, 0.9]]))
    with pytest.raises(ValueError, match="n must be >= 1"):
        mech.reset(0)


@pytest.mark.parametrize("name", SW)
def test_unilateral_outcomes_validate_alternatives(name):
    mech = mechanisms.make(name, normalization="sum")
    with pytest.raises(ValueError, match="sum-normalised"):
        mech.unilateral_outcomes(GOOD, None, np.array([[0.5, 0.5, 0.5], [0.2, 0.2, 0.6]]))
    with pytest.raises(ValueError, match=">= 1"):
        mech.unilateral_outcomes(GOOD, None, GOOD, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        mech.unilateral_outcomes(GOOD, None, np.full_like(GOOD, np.nan))


def test_torch_twin_rejects_online_mechanisms():
    torch = pytest.importorskip("torch")
    from strategic_feedback_env.mechanisms.differentiable import torch_outcome

    with pytest.raises(ValueError, match="sw_max or affine_maximizer"):
        torch_outcome(mechanisms.make("average"), torch.tensor(GOOD))
