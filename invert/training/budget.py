"""A run sized to a wall-clock budget on whatever machine it lands on.

A fixed step count that fits 20 minutes on one CPU overruns on a slower one (the quick start
once took 24 minutes on a CPU without bf16 hardware). So a budgeted run measures instead of
assuming: what came before training (loading, embedding the corpus from zero) has already
taken what it took, what comes after it (evaluation, searches capped by their own
``max_minutes``) is reserved, and training gets the rest; its steps then follow from the
machine's speed, and a time-clocked schedule (``train.schedule_clock=time``) still decays fully.
The evaluation then works to the budget's deadline (:func:`budget_deadline`): where the reserve
proves short, its searches run fewer rounds.

Both count from the process's start, so the jobs of a sequential Hydra multirun after the first
start with their budget spent: budget sweeps belong on a launcher that starts a process per job.
"""

from __future__ import annotations

import logging
import time

from invert.configs import BudgetConfig
from invert.errors import InvertError

logger = logging.getLogger(__name__)

# Below this, a budgeted run still trains (and warns): an inverter that never trained reports
# nothing worth its set-up.
MIN_TRAINING_MINUTES = 1.0
# Kept after the evaluation's deadline for what follows it: plots, the report, W&B's finish.
REPORT_MINUTES = 0.25


def process_minutes() -> float:
    """Minutes since this process started (imports and Hydra's composition included)."""
    import psutil

    return (time.time() - psutil.Process().create_time()) / 60


def budget_deadline(budget: BudgetConfig, report_minutes: float = REPORT_MINUTES) -> float | None:
    """The wall-clock time (``time.time()``) by which a budgeted run's evaluation should end:
    the process's start plus ``budget.total_minutes``, less ``report_minutes`` (None: no budget).

    The reserve is a fixed number of minutes, while decoding and rewriting take longer on a
    slower machine; with the deadline the evaluation's capped rows (the searches) shrink to fit
    instead of the run overrunning (:func:`invert.inversion.evaluation.fitted_search_minutes`).
    """
    if budget.total_minutes is None:
        return None
    import psutil

    return psutil.Process().create_time() + 60 * (budget.total_minutes - report_minutes)


def training_minutes(
    budget: BudgetConfig, max_minutes: float | None, elapsed_minutes: float | None = None
) -> float | None:
    """Training's wall-time cap: what the budget leaves after ``elapsed_minutes`` and the
    reserve, never more than ``max_minutes`` (None, None: no cap).

    Raises:
        InvertError: A negative budget or reserve.
    """
    if budget.total_minutes is None:
        return max_minutes
    if budget.total_minutes <= 0 or budget.reserve_minutes < 0:
        raise InvertError(
            f"budget.total_minutes must be > 0 and reserve_minutes >= 0; got "
            f"{budget.total_minutes} and {budget.reserve_minutes}"
        )
    elapsed = process_minutes() if elapsed_minutes is None else elapsed_minutes
    left = budget.total_minutes - elapsed - budget.reserve_minutes
    if left < MIN_TRAINING_MINUTES:
        logger.warning(
            "the %.1f-minute budget leaves %.1f training minutes after %.1f so far and %.1f "
            "reserved: training %.0f minute anyway, so the run will overrun",
            budget.total_minutes, left, elapsed, budget.reserve_minutes, MIN_TRAINING_MINUTES,
        )  # fmt: skip
        left = MIN_TRAINING_MINUTES
    minutes = left if max_minutes is None else min(left, max_minutes)
    logger.info("budget: %.1f training minutes (%.1f spent before training, %.1f reserved after)",
                minutes, elapsed, budget.reserve_minutes)  # fmt: skip
    return minutes
