"""Sizing the tuned methods' matched step count to the experiment's wall-time budget.

Every tuned method trains the same number of steps (so their recall and leakage compare at
matched training), but a step's cost differs by CPU far more than by method: on a CPU with
bf16 matrix hardware the default's training fits its budget at the configured steps, on an
fp32-only one it does not. So before the first tuned method trains, each tuned regime times a
few steps on this machine, and the step count becomes what the minutes left can pay for after a
reserve for everything that follows training (answering, the leakage probes, deletion), never
more than ``train.max_steps``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.errors import InvertError
from invert.memorization.fine_tune import lm_trainer
from invert.memorization.target_models import load_pretrained_target
from invert.privacy.knowledge_injection import TUNINGS

logger = logging.getLogger(__name__)

# Fewer steps than this and the tuned models recall next to nothing: warn, train them anyway.
MIN_BUDGETED_STEPS = 64


def seconds_per_step(
    lm_name: str,
    regime: str,
    tokenizer: Any,
    texts: Sequence[str],
    train: Mapping[str, Any],
    tuning: Mapping[str, Any] | None,
    out_dir: str | Path,
    steps: int = 4,
    seed: int = 0,
) -> float:
    """Median wall seconds of one training step of ``regime`` here, after a first step that
    pays for allocation. The random state is restored, so timing changes no later result.

    Args:
        lm_name: The base LM.
        regime: ``full``, ``lora`` or ``prefix``.
        tokenizer: Its tokenizer.
        texts: The training texts (batches drawn as training draws them).
        train: The experiment's ``train`` block (batch size, precision, lengths).
        tuning: ``load_pretrained_target`` arguments.
        out_dir: A scratch folder for the trainer.
        steps: Steps timed after the first.
        seed: Seeds the batches.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        model, _ = load_pretrained_target(lm_name, regime, **(tuning or {}))
        trainer = lm_trainer(
            model, tokenizer, texts, train, regime, out_dir, seed=seed,
            max_steps=steps + 1, save_every=0, max_minutes=None, overwrite=True,
        )  # fmt: skip
        trainer.train(stop_after=1)
        times = []
        for step in range(2, steps + 2):
            t0 = time.perf_counter()
            trainer.train(stop_after=step)
            times.append(time.perf_counter() - t0)
        del trainer, model
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    return float(np.median(times))


def budgeted_steps(max_steps: int, step_seconds: Mapping[str, float], minutes_left: float) -> int:
    """The matched step count that ``minutes_left`` pays for, every regime training it once.

    Args:
        max_steps: The configured steps: never more.
        step_seconds: Seconds per step, by regime.
        minutes_left: Wall minutes training may use.

    Raises:
        InvertError: No regime, or a step time that is not positive.
    """
    if not step_seconds or min(step_seconds.values()) <= 0:
        raise InvertError(
            f"need a positive step time for each tuned regime; got {dict(step_seconds)}"
        )
    per_step = sum(step_seconds.values())
    fits = int(60 * max(minutes_left, 0.0) / per_step)
    if fits < min(MIN_BUDGETED_STEPS, max_steps):
        logger.warning(
            "the budget leaves %.1f training minutes, %d matched steps at %.2f s a step: "
            "training %d anyway, so the run will overrun",
            minutes_left, fits, per_step, min(MIN_BUDGETED_STEPS, max_steps),
        )  # fmt: skip
        return min(MIN_BUDGETED_STEPS, max_steps)
    return min(max_steps, fits)


def size_training(
    wva: Mapping[str, Any],
    methods: Sequence[str],
    tokenizer: Any,
    texts: Sequence[str],
    out_dir: str | Path,
    elapsed_minutes: float,
    none_seconds: float | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``train`` block with ``max_steps`` fitted to ``wva["budget"]``, and what decided it.

    Args:
        wva: The experiment config (``budget``: ``total_minutes``, null for no sizing;
            ``reserve_minutes_per_tuned``, ``reserve_per_none_minute``, ``timing_steps``).
        methods: The methods still to run: their tuned regimes are timed, and each tuned
            method (``rag+lora`` too, which reuses ``lora``'s training) gets a reserve.
        tokenizer: The LM's tokenizer.
        texts: The training texts.
        out_dir: A scratch folder for the timing runs.
        elapsed_minutes: Minutes the run has used so far.
        none_seconds: Seconds the ``none`` method took here, if it ran: answering and canary
            exposure on the base LM, a measure of what a tuned method's answering and probes
            cost on this machine, so the reserve grows on a slow one.
        seed: Seeds the timed batches.

    Returns:
        ``(train, budget)``: the train block to use, and ``budget`` with the step times, the
        minutes reserved and the steps chosen (empty when there is no budget).
    """
    train = dict(wva["train"])
    budget = wva.get("budget") or {}
    regimes = list(dict.fromkeys(TUNINGS[m] for m in methods if m in TUNINGS))
    if not regimes or budget.get("total_minutes") is None:
        return train, {}
    started = time.perf_counter()
    step_seconds = {
        r: seconds_per_step(wva["lm"], r, tokenizer, texts, train, wva.get("tuning"),
                            Path(out_dir) / r, int(budget.get("timing_steps", 4)), seed)
        for r in regimes
    }  # fmt: skip
    elapsed = elapsed_minutes + (time.perf_counter() - started) / 60
    per_stage = float(budget.get("reserve_minutes_per_tuned", 0.0))
    if none_seconds is not None:
        per_stage = max(
            per_stage, float(budget.get("reserve_per_none_minute", 0.0)) * none_seconds / 60
        )
    reserve = sum(m in TUNINGS for m in methods) * per_stage
    left = float(budget["total_minutes"]) - elapsed - reserve
    steps = budgeted_steps(int(train["max_steps"]), step_seconds, left)
    logger.info(
        "budget: %.2f s a matched step (%s), %.1f min used, %.1f reserved after training: "
        "%d steps (configured %d)",
        sum(step_seconds.values()), ", ".join(f"{r} {s:.2f}" for r, s in step_seconds.items()),
        elapsed, reserve, steps, train["max_steps"],
    )  # fmt: skip
    train["max_steps"] = steps
    return train, {
        "seconds_per_step": step_seconds, "elapsed_minutes": elapsed, "reserve_minutes": reserve,
        "steps": steps, "configured_steps": int(wva["train"]["max_steps"]),
    }  # fmt: skip
