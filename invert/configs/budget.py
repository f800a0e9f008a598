"""The typed config of a run's wall-clock budget (:mod:`invert.training.budget`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BudgetConfig:
    """The whole command's wall-clock budget.

    Attributes:
        total_minutes: Minutes from the process's start to its end (None: no budget; the
            training then runs ``train.max_minutes``).
        reserve_minutes: Minutes kept for what follows training (evaluation and searches).
    """

    total_minutes: float | None = None
    reserve_minutes: float = 0.0
