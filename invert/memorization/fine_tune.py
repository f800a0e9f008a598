"""Fine-tuning a causal LM on texts with the shared Trainer: what every weights experiment does.

The memorization audit, its shadow models and the weights-vs-activations experiment all train
the same way, so they call this one function: a regime's learning rate (``lr`` may be a
``{regime: lr}`` map), the TrainerConfig fields of the ``train`` block, texts cut at
``max_length`` tokens, and a LoRA adapter merged afterwards (same function, probes as fast as
on the base model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from invert.memorization.private_corpus import LMDataset, lm_collate
from invert.reporting.tracking import Tracker
from invert.training import Trainer, TrainerConfig


def lm_trainer(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    train: Mapping[str, Any],
    regime: str,
    out_dir: str | Path,
    tracker: Tracker | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Trainer:
    """The shared Trainer for ``model`` on ``texts``: ``train``'s TrainerConfig fields,
    ``regime``'s learning rate, and ``overrides`` (TrainerConfig fields) above both.

    Args:
        model: A causal LM (a peft model for ``lora`` / ``prefix``).
        tokenizer: Its tokenizer (BOS prepended to each text).
        texts: Training texts (repeat a text to weigh it).
        train: TrainerConfig fields plus ``max_length``; ``lr`` a float or ``{regime: lr}``.
        regime: ``scratch``, ``full``, ``lora`` or ``prefix`` (picks the lr).
        out_dir: The Trainer's folder.
        tracker: Gets the training curve (None: nothing logged).
        seed: Seeds data order.
        **overrides: TrainerConfig fields that replace the ``train`` block's.
    """
    lr = train["lr"][regime] if isinstance(train["lr"], Mapping) else train["lr"]
    fields = {k: v for k, v in train.items() if k in TrainerConfig.__dataclass_fields__}
    config = TrainerConfig(
        **{**fields, "lr": float(lr), "seed": seed, "output_dir": str(out_dir), **overrides}
    )
    dataset = LMDataset(tokenizer, list(texts), train.get("max_length"))
    return Trainer(model, dataset, lm_collate, config, tracker=tracker)


def train_on_texts(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    train: Mapping[str, Any],
    regime: str,
    out_dir: str | Path,
    tracker: Tracker | None = None,
    seed: int = 0,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Trains ``model`` on ``texts`` and returns it in eval mode with what training took.

    Args:
        model: A causal LM (a peft model for ``lora`` / ``prefix``).
        tokenizer: Its tokenizer (BOS prepended to each text).
        texts: Training texts (repeat a text to weigh it).
        train: TrainerConfig fields plus ``max_length``; ``lr`` a float or ``{regime: lr}``.
        regime: ``scratch``, ``full``, ``lora`` or ``prefix`` (picks the lr; LoRA is merged).
        out_dir: The Trainer's folder.
        tracker: Gets the training curve (None: nothing logged).
        seed: Seeds data order.

    Returns:
        ``(model, {"steps", "lr", "train_seconds", "final_train_loss"})``.
    """
    trainer = lm_trainer(model, tokenizer, texts, train, regime, out_dir, tracker, seed)
    result = trainer.train()
    losses = [h["train/loss"] for h in result.history if "train/loss" in h]
    info = {"steps": result.steps, "lr": trainer.config.lr, "train_seconds": result.seconds}
    info["final_train_loss"] = losses[-1] if losses else float("nan")
    if regime == "lora":
        model = model.merge_and_unload()
    return model.eval(), info
