"""Capacity probe: how many bits a GPT can memorize (Morris et al. 2025, arXiv:2505.24832).

A dataset of N uniform random sequences (vocabulary V, length S) carries exactly S·log2 V bits
per sequence and nothing a model can generalize from, so whatever likelihood a model puts on it
beyond uniform is memorization. A sample's memorized bits are ``max(0, S·log2 V - NLL_bits)``;
their sum over the dataset grows with N until the model is full, then plateaus. The plateau is
the model's capacity, and capacity over parameter count is bits per parameter (~3.6 in the paper).

Conventions (kept identical everywhere in this module):

* A fixed BOS token (id ``V``; the model's vocabulary is ``V + 1``) is prepended, so all S
  tokens are scored and the entropy of a sample is exactly ``S·log2 V``.
* Parameters are counted as in the paper: all of them, embeddings included, tied ones once.
* Each cell trains with the shared :class:`~invert.training.trainer.Trainer` in chunks of
  ``eval_every`` steps (a constant LR after warm-up, so chunks equal one long run); after each
  chunk the total memorized bits are scored and :class:`ConvergenceCriterion` decides whether to
  go on. A cell that stops for any other reason is recorded as unconverged and gives no capacity.
* A converged cell then cools down: the LR decays linearly to 0 over ``cooldown_fraction`` of
  the steps trained (warmup-stable-decay). At a constant LR the bits plateau where the LR's noise
  balances progress; the decay collects what that noise hid (5-10% on CPU-sized runs). The
  paper instead trains ~1M steps, which a CPU cannot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from invert.env import resolve_mixed_precision
from invert.errors import InvertError
from invert.memorization.target_models import build_gpt, count_parameters
from invert.memorization.token_scoring import sequence_nll_bits
from invert.reporting.tracking import Tracker
from invert.training.trainer import Trainer, TrainerConfig


def budget_seconds() -> float:
    """The clock that ``max_minutes`` budgets read.

    On a GPU, wall time. On a CPU, this process's CPU time over its torch threads: a process
    starved on a shared machine is not cut short, and 16 busy threads do not spend a minute's
    budget in 4 seconds (raw process CPU time sums over threads).
    """
    if torch.cuda.is_available():
        return time.perf_counter()
    return time.process_time() / max(1, torch.get_num_threads())


def random_sequences(n: int, seq_len: int, vocab_size: int, seed: int) -> torch.Tensor:
    """``[n, seq_len]`` int64 tokens drawn uniformly from ``[0, vocab_size)``, seeded."""
    if min(n, seq_len) < 1 or vocab_size < 2:
        raise InvertError(
            f"need n, seq_len >= 1 and vocab_size >= 2, got {n}, {seq_len}, {vocab_size}"
        )
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (n, seq_len), generator=generator)


def with_bos(sequences: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Prepends the BOS id, so a causal LM scores every token of each sequence."""
    bos = torch.full((sequences.shape[0], 1), bos_id, dtype=sequences.dtype)
    return torch.cat([bos, sequences], dim=1)


def sequence_entropy_bits(seq_len: int, vocab_size: int) -> float:
    """Entropy of one uniform random sequence: ``S·log2 V`` bits."""
    return seq_len * math.log2(vocab_size)


def memorized_bits(nll_bits: torch.Tensor, entropy_bits: float) -> torch.Tensor:
    """Per-sample memorized bits, ``max(0, entropy - NLL)``, within ``[0, entropy]``.

    The upper clamp only guards against rounding: a real model's NLL is never negative.
    """
    return (entropy_bits - nll_bits).clamp(min=0.0, max=entropy_bits)


class TokenRows(Dataset):
    """Rows of a token tensor as a map-style dataset (one row is one training example)."""

    def __init__(self, rows: torch.Tensor) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.rows[index]


def lm_collate(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stacks equal-length rows into a causal-LM batch (labels are the inputs; HF shifts them)."""
    ids = torch.stack(rows)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


@dataclass
class ConvergenceCriterion:
    """A cell has converged once its memorized bits stop moving.

    Scores taken in the last ``window_steps`` are split into an older and a newer half;
    converged when at least ``min_steps`` were trained and the two halves' means differ by at
    most ``rel_tol`` of the newer one. Comparing means, not single scores, keeps the
    step-to-step noise of a constant LR from hiding a plateau; requiring no drop either keeps a
    loss spike (Adam at a high LR on a nearly memorized set) from passing for one.

    Attributes:
        eval_every: Steps between scores (the training chunk length).
        window_steps: The stretch compared; holds ``window_steps / eval_every`` scores (>= 2).
        rel_tol: Largest relative change between the halves that still counts as flat.
        min_steps: No verdict before this many steps.
    """

    eval_every: int = 100
    window_steps: int = 400
    rel_tol: float = 0.01
    min_steps: int = 0

    def __post_init__(self) -> None:
        if self.eval_every < 1 or self.window_steps < 2 * self.eval_every:
            raise InvertError("convergence needs eval_every >= 1 and window_steps >= 2*eval_every")

    def converged(self, curve: Sequence[tuple[int, float]]) -> bool:
        """Whether ``curve`` (``(step, total memorized bits)`` in step order) has converged."""
        if not curve or curve[-1][0] < max(self.min_steps, self.window_steps):
            return False
        window = [bits for step, bits in curve if step > curve[-1][0] - self.window_steps]
        half = len(window) // 2
        if half < 1:
            return False
        older, newer = sum(window[:half]) / half, sum(window[-half:]) / half
        return abs(newer - older) <= self.rel_tol * max(abs(newer), 1e-9)


class CellTracker(Tracker):
    """Forwards a cell's Trainer metrics under a prefix; steps restart per cell, so the step
    goes in as a metric (W&B drops logs whose step goes backwards)."""

    def __init__(self, parent: Tracker, prefix: str) -> None:
        super().__init__(parent.run_dir)
        self.parent, self.prefix = parent, prefix

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        record = {f"{self.prefix}/{k}": v for k, v in metrics.items()}
        if step is not None:
            record[f"{self.prefix}/step"] = step
        self.parent.log(record)


def model_name(size: Mapping[str, int]) -> str:
    """Short name of a model size, e.g. ``L1-d32-h2``."""
    return f"L{size['n_layer']}-d{size['d_model']}-h{size['n_head']}"


def run_capacity_cell(
    model_size: Mapping[str, int],
    n_sequences: int,
    vocab_size: int,
    seq_len: int,
    output_dir: str | Path,
    train: Mapping[str, Any] | None = None,
    convergence: ConvergenceCriterion | Mapping[str, Any] | None = None,
    mixed_precision: str = "no",
    seed: int = 0,
    tracker: Tracker | None = None,
    score_batch_size: int = 1024,
) -> dict[str, Any]:
    """Trains one (model size, N) cell until its memorized bits converge, and measures them.

    Args:
        model_size: ``n_layer``, ``d_model``, ``n_head`` (and optionally ``d_mlp``).
        n_sequences: N, the number of random sequences.
        vocab_size: V of the random tokens (the model gets V + 1 ids: BOS is ``V``).
        seq_len: S, tokens per sequence (the model's context is S + 1).
        output_dir: The cell's folder (the Trainer writes ``history.json`` there).
        train: ``lr`` (1e-2), ``batch_size`` (0: full batch), ``warmup_steps`` (50),
            ``max_grad_norm`` (1.0), ``weight_decay`` (0), ``log_every`` (100), ``max_steps``
            (20000) and ``max_minutes`` (None; minutes of :func:`budget_seconds`: CPU time per
            torch thread on a CPU, so a starved process is not cut short; wall time on a GPU) of the
            constant-LR phase, and
            ``cooldown_fraction`` (0: none) for the linear decay after convergence.
        convergence: A :class:`ConvergenceCriterion` or its fields.
        mixed_precision: ``no`` (fp32) or ``bf16`` (autocast; scored as trained, under bf16).
        seed: Seeds the data, the initial weights and the data order.
        tracker: Receives the cell's curves under ``cell/<model>/N<n>/``.
        score_batch_size: Sequences per scoring forward pass.

    Returns:
        The cell's record: sizes, ``params``, ``dataset_entropy_bits``, ``memorized_bits``
        (total at the end), ``memorized_fraction``, ``bits_per_parameter``, ``converged``,
        ``stop_reason``, ``steps``, ``steps_to_converge``, ``memorized_bits_at_convergence``
        (before the cooldown), ``seconds`` and the ``curve`` of ``[step, bits]``.
    """
    train = {"lr": 1e-2, "batch_size": 0, "warmup_steps": 50, "max_grad_norm": 1.0,
             "weight_decay": 0.0, "log_every": 100, "max_steps": 20000, "max_minutes": None,
             "cooldown_fraction": 0.0, **dict(train or {})}  # fmt: skip
    # YAML 1.1 reads a bare `no` as False; accept that and "fp32" for full precision.
    mixed_precision = "no" if mixed_precision in (False, None, "fp32") else str(mixed_precision)
    # Recorded as run: bf16 falls back to fp32 where the hardware would only emulate it.
    mixed_precision = resolve_mixed_precision(mixed_precision)
    if not isinstance(convergence, ConvergenceCriterion):
        convergence = ConvergenceCriterion(**dict(convergence or {}))
    size = {k: int(v) for k, v in model_size.items()}
    name = model_name(size)
    model = build_gpt(vocab_size=vocab_size + 1, context_length=seq_len + 1, seed=seed, **size)
    rows = with_bos(random_sequences(n_sequences, seq_len, vocab_size, seed), bos_id=vocab_size)
    entropy = sequence_entropy_bits(seq_len, vocab_size)
    curve: list[tuple[int, float]] = []

    def score(scored_model: torch.nn.Module, step: int) -> dict[str, float]:
        nll = sequence_nll_bits(scored_model, rows, batch_size=score_batch_size)
        total = float(memorized_bits(nll, entropy).sum())
        curve.append((step, total))
        return {"memorized_bits": total, "memorized_fraction": total / (entropy * n_sequences)}

    config = TrainerConfig(
        output_dir=str(output_dir),
        max_steps=min(convergence.eval_every, int(train["max_steps"])),
        batch_size=int(train["batch_size"]) or n_sequences,
        lr=float(train["lr"]),
        weight_decay=float(train["weight_decay"]),
        warmup_steps=int(train["warmup_steps"]),
        schedule="constant",  # a schedule tied to max_steps would make chunks differ from one run
        max_grad_norm=float(train["max_grad_norm"]),
        mixed_precision=mixed_precision,
        seed=seed,
        log_every=int(train["log_every"]),
        eval_every=0,  # the Trainer scores once at the end of every chunk
    )
    prefix = f"cell/{name}/N{n_sequences}"
    cell_tracker = CellTracker(tracker, prefix) if tracker is not None else None
    trainer = Trainer(model, TokenRows(rows), lm_collate, config, cell_tracker, eval_fn=score)
    max_steps, max_minutes = int(train["max_steps"]), train["max_minutes"]
    start, cpu_start, stop_reason = time.perf_counter(), time.process_time(), "max_steps"
    budget_start = budget_seconds()
    while True:
        result = trainer.train()
        if convergence.converged(curve):
            stop_reason = "converged"
            break
        if trainer.step >= max_steps:
            break
        if max_minutes is not None and budget_seconds() - budget_start > 60 * float(max_minutes):
            stop_reason = "max_minutes"
            break
        # Same Trainer, same optimizer state: extending max_steps continues the run.
        trainer.config.max_steps = min(trainer.step + convergence.eval_every, max_steps)
    converged_at, plateau_bits = trainer.step, curve[-1][1]
    cooldown = round(float(train["cooldown_fraction"]) * trainer.step)
    if stop_reason == "converged" and cooldown > 0:
        # The Trainer's own linear schedule, restarted here: "warm-up" ends now (factor 1) and
        # the factor reaches 0 at the new max_steps. Optimizer state carries on untouched.
        trainer.config.schedule, trainer.config.warmup_steps = "linear", trainer.step
        trainer.config.max_steps = trainer.step + cooldown
        result = trainer.train()
    params = count_parameters(model)
    total = curve[-1][1]
    losses = [h["train/loss"] for h in result.history if "train/loss" in h]
    return {
        "model": name,
        **size,
        "params": params,
        "params_non_embedding": count_parameters(model, include_embeddings=False),
        "n_sequences": n_sequences,
        "vocab_size": vocab_size,
        "seq_len": seq_len,
        "mixed_precision": mixed_precision,
        "entropy_bits_per_sequence": entropy,
        "dataset_entropy_bits": entropy * n_sequences,
        "memorized_bits": total,
        "memorized_fraction": total / (entropy * n_sequences),
        "bits_per_parameter": total / params,
        "converged": stop_reason == "converged",
        "stop_reason": stop_reason,
        "steps": trainer.step,
        "steps_to_converge": converged_at if stop_reason == "converged" else None,
        "memorized_bits_at_convergence": plateau_bits if stop_reason == "converged" else None,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "final_train_loss": losses[-1] if losses else None,
        "curve": [[s, b] for s, b in curve],
    }


def fit_bits_per_parameter(
    capacities: Sequence[float], params: Sequence[float]
) -> tuple[float, float, float]:
    """Least-squares line ``capacity = slope · params + intercept`` across model sizes.

    Returns:
        ``(slope, intercept, r2)``; ``slope`` is bits per parameter (~3.6 in arXiv:2505.24832).

    Raises:
        InvertError: Fewer than two model sizes, lengths differ, or all sizes are equal.
    """
    x = torch.tensor(list(params), dtype=torch.float64)
    y = torch.tensor(list(capacities), dtype=torch.float64)
    if x.numel() != y.numel() or x.numel() < 2:
        raise InvertError(
            f"need >= 2 (capacity, params) pairs of equal length, got {len(y)}, {len(x)}"
        )
    dx = x - x.mean()
    if float((dx * dx).sum()) == 0.0:
        raise InvertError(
            "all models have the same parameter count; sweep model sizes to fit a slope"
        )
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    intercept = float(y.mean() - slope * x.mean())
    residual = float(((y - (slope * x + intercept)) ** 2).sum())
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - residual / spread if spread > 0 else 1.0
    return slope, intercept, r2


def capacity_by_model(
    cells: Sequence[Mapping[str, Any]], limited_below: float = 0.9
) -> list[dict[str, Any]]:
    """Capacity per model: the plateau (max over N) of converged cells' total memorized bits.

    Args:
        cells: Records from :func:`run_capacity_cell`.
        limited_below: A cell whose memorized fraction is below this is capacity-limited
            (its data outgrew the model); two or more such cells within a few percent of each
            other are the visible plateau (``plateau_spread`` is their relative spread).

    Returns:
        One dict per model (in order of parameter count): ``model``, ``params``,
        ``capacity_bits`` (None without a converged cell), ``bits_per_parameter``,
        ``capacity_n`` (the N that reached it), ``converged_cells``, ``cells``,
        ``capacity_limited_cells`` and ``plateau_spread``.
    """
    out = []
    for name in dict.fromkeys(c["model"] for c in cells):
        mine = [c for c in cells if c["model"] == name]
        done = [c for c in mine if c["converged"]]
        best = max(done, key=lambda c: c["memorized_bits"], default=None)
        limited = [c["memorized_bits"] for c in done if c["memorized_fraction"] < limited_below]
        spread = (max(limited) - min(limited)) / max(limited) if len(limited) > 1 else None
        out.append({
            "model": name,
            "params": mine[0]["params"],
            "capacity_bits": best["memorized_bits"] if best else None,
            "bits_per_parameter": best["memorized_bits"] / best["params"] if best else None,
            "capacity_n": best["n_sequences"] if best else None,
            "converged_cells": len(done),
            "cells": len(mine),
            "capacity_limited_cells": len(limited),
            "plateau_spread": spread,
        })  # fmt: skip
    return sorted(out, key=lambda m: m["params"])
