"""A run's wall-clock budget: training gets what loading and the reserve leave."""

from __future__ import annotations

import logging
import time

import pytest

from invert.configs import BudgetConfig
from invert.errors import InvertError
from invert.training.budget import (
    MIN_TRAINING_MINUTES,
    budget_deadline,
    process_minutes,
    training_minutes,
)


def test_no_budget_keeps_max_minutes():
    assert training_minutes(BudgetConfig(), 7.0, elapsed_minutes=3.0) == 7.0
    assert training_minutes(BudgetConfig(), None) is None


def test_training_gets_what_the_budget_leaves_capped_by_max_minutes():
    budget = BudgetConfig(total_minutes=17.5, reserve_minutes=9.0)
    assert training_minutes(budget, None, elapsed_minutes=3.5) == pytest.approx(5.0)
    assert training_minutes(budget, 2.0, elapsed_minutes=3.5) == 2.0
    # A slower machine spent longer embedding: training shrinks, the total does not grow.
    assert training_minutes(budget, None, elapsed_minutes=5.5) == pytest.approx(3.0)


def test_an_exhausted_budget_still_trains_the_minimum_and_warns(caplog):
    budget = BudgetConfig(total_minutes=10.0, reserve_minutes=9.0)
    with caplog.at_level(logging.WARNING):
        assert training_minutes(budget, None, elapsed_minutes=4.0) == MIN_TRAINING_MINUTES
    assert "overrun" in caplog.text


def test_bad_budgets_are_refused():
    with pytest.raises(InvertError, match="total_minutes"):
        training_minutes(BudgetConfig(total_minutes=0.0), None, elapsed_minutes=0.0)
    with pytest.raises(InvertError, match="reserve_minutes"):
        training_minutes(BudgetConfig(total_minutes=5.0, reserve_minutes=-1.0), None, elapsed_minutes=0.0)


def test_process_minutes_counts_from_the_process_start_in_minutes():
    import time

    before = process_minutes()
    time.sleep(0.6)
    # 0.6 s is 0.01 minutes: a clock in seconds (0.6) or hours would miss this window.
    assert 0.005 < process_minutes() - before < 0.05


def test_the_evaluation_deadline_is_the_budget_from_the_process_start_less_the_report():
    assert budget_deadline(BudgetConfig(total_minutes=None)) is None
    deadline = budget_deadline(BudgetConfig(total_minutes=10.0), report_minutes=0.5)
    started = time.time() - 60 * process_minutes()
    assert deadline == pytest.approx(started + 60 * 9.5, abs=2.0)
