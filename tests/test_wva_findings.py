"""The weights-vs-activations findings' intervals: bootstrap means, paired gaps, Wilson rates."""

from __future__ import annotations

import numpy as np
import pytest

from invert.errors import EmptyInputError
from invert.privacy.wva_findings import (
    bootstrap_mean,
    compute_findings,
    difference_of_means,
    paired_difference,
    wilson,
)


def test_a_bootstrap_interval_holds_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(rng.random(20) < 0.3, n_bootstrap=500)
    large = bootstrap_mean(rng.random(2000) < 0.3, n_bootstrap=500)
    for stat in (small, large):
        assert stat["ci_low"] <= stat["value"] <= stat["ci_high"]
    assert large["ci_high"] - large["ci_low"] < (small["ci_high"] - small["ci_low"]) / 4
    assert abs(large["value"] - 0.3) < 0.05 and large["n"] == 2000
    with pytest.raises(EmptyInputError):
        bootstrap_mean([])


def test_a_paired_gap_is_tighter_than_the_gap_of_independent_groups():
    """The same questions asked of two systems: pairing removes the questions' own spread."""
    rng = np.random.default_rng(1)
    hard = rng.random(300)
    a = (hard < 0.6).astype(float)
    b = (hard < 0.5).astype(float)  # b answers a subset of what a answers
    paired = paired_difference(a, b, n_bootstrap=500)
    apart = difference_of_means(a, b, n_bootstrap=500)
    assert paired["value"] == pytest.approx(apart["value"]) == pytest.approx(a.mean() - b.mean())
    assert paired["ci_low"] > 0  # always a >= b: the gap is surely positive
    assert paired["ci_high"] - paired["ci_low"] < apart["ci_high"] - apart["ci_low"]
    with pytest.raises(ValueError, match="shape"):
        paired_difference([1.0, 0.0], [1.0])


def test_wilson_intervals_stay_in_zero_one_and_are_not_degenerate_at_the_ends():
    zero, one = wilson(0.0, 100), wilson(1.0, 100)
    assert zero["ci_low"] == 0.0 and 0.0 < zero["ci_high"] < 0.05
    assert one["ci_high"] == 1.0 and 0.95 < one["ci_low"] < 1.0
    mid = wilson(0.2, 100)
    assert 0.12 < mid["ci_low"] < 0.2 < mid["ci_high"] < 0.3
    with pytest.raises(EmptyInputError):
        wilson(0.5, 0)


def test_findings_compare_each_method_with_the_base_lm_and_by_repetitions():
    forms = {"members": np.array(["verbatim", "paraphrase"] * 40)}
    reps = {"members": np.repeat([1, 8], 40)}
    flags = {
        "none": {"members": np.zeros(80), "deleted": np.zeros(10), "deleted_after": np.zeros(10)},
        "full": {"members": np.r_[np.zeros(40), np.ones(40)], "deleted": np.ones(10),
                 "deleted_after": np.ones(10)},
    }  # fmt: skip
    results = {
        "none": {"cost": {"trainable_parameters": 0}},
        "full": {"cost": {"trainable_parameters": 100}},
    }
    rows = compute_findings(results, flags, forms, reps, n_bootstrap=200)
    by = {(r["finding"], r["method"]): r for r in rows}
    assert by[("recall above the base LM, verbatim", "full")]["value"] == pytest.approx(0.5)
    assert by[("recall, verbatim, fact repeated 8x", "full")]["value"] == 1.0
    assert by[("recall, verbatim, fact repeated 1x", "full")]["value"] == 0.0
    assert by[("recall gain, verbatim, 8x over 1x", "full")]["ci_low"] == pytest.approx(1.0)
    assert ("recall, verbatim, fact repeated 8x", "none") not in by  # nothing was tuned
