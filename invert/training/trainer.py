"""One trainer for both halves of invert, on HF Accelerate.

The same code runs on one CPU, one GPU, or many processes (``accelerate launch`` / ``torchrun``);
only the main process logs, evaluates and saves. A model is anything whose ``forward(**batch)``
returns an object with ``.loss``. Runs are deterministic for a seed, and a run killed after a
checkpoint and resumed with ``resume_from`` ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from invert.env import resolve_mixed_precision
from invert.errors import CheckpointError, InvertError
from invert.reporting.tracking import Tracker
from invert.training.checkpoints import (
    COMPLETE_MARKER,
    TRAINER_STATE,
    find_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    refuse_foreign_checkpoints,
    scheduler_state,
)
from invert.training.config import SCHEDULES, TrainerConfig, TrainResult
from invert.training.sampling import EpochPermutationSampler

logger = logging.getLogger(__name__)



def _adamw(groups: list[dict[str, Any]], lr: float) -> torch.optim.AdamW:
    """AdamW, fused where torch has a fused kernel for every parameter (CPU and CUDA floats).

    The same update as the per-tensor loop, in one pass over the parameters: on a CPU the loop
    costs a full fine-tune of a 135M-parameter LM about as much as its forward pass.
    """
    params = [p for g in groups for p in g["params"]]
    fusable = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=lr, fused=True if fusable else None)


class Trainer:
    """Trains ``model`` on ``dataset`` batched by ``collate_fn``.

    Args:
        model: Module whose ``forward(**batch)`` returns an output with ``.loss``.
        dataset: Map-style dataset of examples.
        collate_fn: Turns a list of examples into a batch dict of tensors.
        config: :class:`TrainerConfig`.
        tracker: Where metrics go (main process only).
        eval_fn: ``eval_fn(model, step) -> dict`` run on the main process every
            ``eval_every`` steps and at the end.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Dataset,
        collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]],
        config: TrainerConfig,
        tracker: Tracker | None = None,
        eval_fn: Callable[[torch.nn.Module, int], dict[str, float]] | None = None,
    ) -> None:
        if config.schedule not in SCHEDULES:
            raise InvertError(f"schedule must be one of {SCHEDULES}, got {config.schedule!r}")
        if config.schedule_clock not in ("steps", "time"):
            raise InvertError(
                f"schedule_clock must be 'steps' or 'time', got {config.schedule_clock!r}"
            )
        if config.schedule_clock == "time" and not config.max_minutes:
            raise InvertError("schedule_clock='time' needs max_minutes (the schedule's length)")
        if len(dataset) == 0:
            raise InvertError("the training set is empty; check the corpus and its filters")
        # bf16 autocast is slower than fp32 on many CPUs (emulated, or AVX512-BF16 that only
        # converts): fall back where this one measures so (invert.env.native_bf16).
        config = replace(config, mixed_precision=resolve_mixed_precision(config.mixed_precision))
        self.config, self.tracker, self.eval_fn = config, tracker or Tracker(), eval_fn
        _reset_precision_if_changed(config.mixed_precision)
        # cpu=True on CPU-only machines: without it, torchrun/accelerate launch workers each
        # train alone (world size 1) and all of them log and save as the "main" process.
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.grad_accum_steps,
            cpu=not torch.cuda.is_available(),
        )
        set_seed(config.seed)
        self.output_dir = Path(config.output_dir)
        self.sampler = EpochPermutationSampler(len(dataset), config.seed)
        # Its own generator: each iter() of a DataLoader draws a seed from the global RNG
        # otherwise, which would shift dropout masks between a resumed and an unbroken run.
        loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            sampler=self.sampler,
            collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(config.seed),
        )
        optimizer = _adamw(self._param_groups(model), config.lr)
        self.model, self.optimizer, self.loader = self.accelerator.prepare(model, optimizer, loader)
        # Not prepared: Accelerate would step it once per process, shortening the schedule
        # by the world size. Stepped by hand once per optimizer step, checkpointed all the same.
        self._time_progress = 0.0  # share of max_minutes used (schedule_clock="time")
        # Not registered with Accelerate either: it would pickle the scheduler, and loading a
        # pickle from a checkpoint folder can run code. Its state is JSON in trainer_state.json.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer.optimizer, self._lr_lambda)
        self.step = 0
        self.history: list[dict[str, float]] = []

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def _param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            lr = next(
                (v for k, v in self.config.lr_by_prefix.items() if name.startswith(k)),
                self.config.lr,
            )
            decay = 0.0 if param.dim() < 2 else self.config.weight_decay
            groups.setdefault((lr, decay), []).append(param)
        if not groups:
            raise InvertError("the model has no trainable parameters")
        return [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]

    def _elapsed_on_all(self, start: float) -> float:
        """Seconds since ``start``, the same on every process when a time limit is set.

        Each process's own clock differs by milliseconds; with ``max_minutes`` that would stop
        one process a step before the others (a hang at the next all-reduce) and, with
        ``schedule_clock="time"``, give replicas different learning rates.
        """
        elapsed = time.perf_counter() - start
        if self.config.max_minutes and self.accelerator.num_processes > 1:
            mine = torch.tensor([elapsed], device=self.accelerator.device)
            elapsed = float(self.accelerator.reduce(mine, reduction="max").item())
        return elapsed

    def _lr_lambda(self, step: int) -> float:
        cfg = self.config
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        if cfg.schedule_clock == "time":
            progress = max(progress, self._time_progress)
        progress = min(progress, 1.0)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.schedule == "linear":
            return 1 - progress
        return 1.0

    def train(self, stop_after: int | None = None) -> TrainResult:
        """Runs until ``max_steps`` (or ``stop_after`` steps, or ``max_minutes``).

        Args:
            stop_after: Stop at this step as if the process were killed (for resume tests).
        """
        cfg = self.config
        if cfg.resume_from:
            self.load_checkpoint(cfg.resume_from)
        else:
            self._claim_output_dir()
        micro_per_epoch = len(self.loader)
        micro_done = self.step * cfg.grad_accum_steps
        epoch, skip = divmod(micro_done, micro_per_epoch)
        progress = tqdm(
            total=cfg.max_steps, initial=self.step, desc="training", disable=not self.is_main_process
        )
        start, examples, tokens, stopped_early = time.perf_counter(), 0, 0, False
        # A resumed run has already spent part of max_minutes: the budget and a time-clocked
        # schedule go on from there rather than starting over.
        spent = 60 * cfg.max_minutes * self._time_progress if cfg.max_minutes else 0.0
        window: list[float] = []
        self.model.train()
        while self.step < cfg.max_steps and not stopped_early:
            loader = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            # Through the loader: Accelerate re-sets the sampler's epoch from its own counter.
            loader.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            skip = 0
            for batch in loader:
                with self.accelerator.accumulate(self.model):
                    loss = self.model(**batch).loss
                    self.accelerator.backward(loss)
                    if self.accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                    self.optimizer.step()
                    if self.accelerator.sync_gradients:
                        self.scheduler.step()
                    self.optimizer.zero_grad()
                window.append(loss.detach().float().item())
                examples += len(next(iter(batch.values())))
                if "attention_mask" in batch:
                    tokens += int(batch["attention_mask"].sum())
                if not self.accelerator.sync_gradients:
                    continue
                self.step += 1
                progress.update(1)
                elapsed = self._elapsed_on_all(start)
                if cfg.max_minutes:
                    self._time_progress = (spent + elapsed) / (60 * cfg.max_minutes)
                self._after_step(window, examples, tokens, elapsed)
                if window and self.step % cfg.log_every == 0:
                    progress.set_postfix(loss=f"{sum(window) / len(window):.3f}")
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    window = []
                if cfg.max_minutes is not None and spent + elapsed > 60 * cfg.max_minutes:
                    logger.warning("stopping at step %d: max_minutes=%s reached", self.step, cfg.max_minutes)
                    stopped_early = True
                if self.step >= cfg.max_steps or stopped_early or self.step == stop_after:
                    break
            if stop_after is not None and self.step == stop_after:
                break
            epoch += 1
        progress.close()
        seconds = time.perf_counter() - start
        if self.eval_fn is not None and (stop_after is None or self.step != stop_after):
            self._evaluate()
        self._write_history()
        world = self.accelerator.num_processes
        return TrainResult(
            steps=self.step,
            history=self.history,
            seconds=seconds,
            examples_per_second=world * examples / max(seconds, 1e-9),
            tokens_per_second=world * tokens / max(seconds, 1e-9),
            stopped_early=stopped_early,
        )

    def _after_step(self, window: list[float], examples: int, tokens: int, elapsed: float) -> None:
        cfg = self.config
        if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
            record = {
                "step": self.step,
                "train/loss": sum(window) / max(len(window), 1),
                "train/lr": self.scheduler.get_last_lr()[0],
                "train/examples_per_s": examples * self.accelerator.num_processes / max(elapsed, 1e-9),
                "train/tokens_per_s": tokens * self.accelerator.num_processes / max(elapsed, 1e-9),
                "train/elapsed_s": elapsed,
            }
            self.history.append(record)
            if self.is_main_process:
                self.tracker.log({k: v for k, v in record.items() if k != "step"}, step=self.step)
        if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.max_steps:
            self._evaluate()
        if cfg.save_every and self.step % cfg.save_every == 0:
            self.save_checkpoint()

    def _evaluate(self) -> None:
        self.accelerator.wait_for_everyone()
        if self.is_main_process:
            metrics = self.eval_fn(self.accelerator.unwrap_model(self.model), self.step)
            record = {"step": self.step, **{f"eval/{k}": v for k, v in metrics.items()}}
            logger.info(
                "step %d eval: %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            )
            self.history.append(record)
            self.tracker.log({k: v for k, v in record.items() if k != "step"}, step=self.step)
            self.model.train()
        self.accelerator.wait_for_everyone()

    def _write_history(self) -> None:
        if self.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "history.json").write_text(json.dumps(self.history, indent=1))

    def save_checkpoint(self) -> Path:
        """Saves a resumable checkpoint (weights, optimizer, scheduler, RNG, step).

        Written into ``step-N.tmp`` and renamed when complete, with ``complete.json`` last: a
        kill mid-write leaves a folder ``latest`` skips, never a torn ``step-N``.
        """
        path = self.output_dir / "checkpoints" / f"step-{self.step:07d}"
        tmp = path.with_name(path.name + ".tmp")
        self.accelerator.wait_for_everyone()
        if self.is_main_process:
            _remove_tree(tmp)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        self.accelerator.wait_for_everyone()
        if self.is_main_process:
            state = {"step": self.step, "history": self.history, "config": asdict(self.config),
                     "scheduler": scheduler_state(self.scheduler),
                     "time_progress": self._time_progress}  # fmt: skip
            (tmp / TRAINER_STATE).write_text(json.dumps(state))
            (tmp / COMPLETE_MARKER).write_text(json.dumps({"step": self.step}))
            _remove_tree(path)
            tmp.rename(path)
            prune_checkpoints(path.parent, path, self.config.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return path

    def load_checkpoint(self, where: str) -> None:
        """Restores a checkpoint folder, or the newest complete one under ``output_dir``.

        Raises:
            CheckpointError: No complete checkpoint; a damaged one (names the file); one
                written by a run with other settings (names them); or one holding a pickle
                invert never writes.
        """
        path = find_checkpoint(self.output_dir / "checkpoints", where)
        state = read_checkpoint(path, asdict(self.config), self.accelerator.process_index)
        try:
            self.accelerator.load_state(str(path))
        except Exception as err:  # a torn weights or optimizer file: name the checkpoint
            raise CheckpointError(f"{path} is damaged ({type(err).__name__}: {err}); resume "
                                  "from another checkpoint or start the run again") from err  # fmt: skip
        self.step, self.history = int(state["step"]), list(state["history"])
        self._time_progress = float(state.get("time_progress", 0.0))
        if "scheduler" in state:
            self.scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None] * len(
                self.scheduler.lr_lambdas)})  # fmt: skip
        logger.info("resumed from %s at step %d", path, self.step)

    def _claim_output_dir(self) -> None:
        """A fresh run refuses a folder holding another run's checkpoints, unless ``overwrite``."""
        root = self.output_dir / "checkpoints"
        refuse_foreign_checkpoints(root, self.config.overwrite)
        self.accelerator.wait_for_everyone()
        if self.is_main_process and self.config.overwrite:
            _remove_tree(root)
        self.accelerator.wait_for_everyone()

    def save_model(self, path: str | Path) -> None:
        """Saves the unwrapped model with ``save_pretrained`` (main process only)."""
        self.accelerator.wait_for_everyone()
        if self.is_main_process:
            self.accelerator.unwrap_model(self.model).save_pretrained(path)
        self.accelerator.wait_for_everyone()


def _reset_precision_if_changed(mixed_precision: str) -> None:
    """Lets one process build Trainers of different precisions (notebooks, sweeps).

    Accelerate keeps one process-wide state and refuses a second precision; its per-process
    part (rank, world size) is kept, only the precision settings are reset.
    """
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and str(state.get("_mixed_precision", mixed_precision)) != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
