"""Resumable checkpoints that cannot be torn, mixed with another run's, or run code.

A checkpoint is ``step-N/``: Accelerate's tensors (safetensors weights, optimizer and RNG
states loaded weights-only) plus ``trainer_state.json`` (step, history, config, scheduler) and
``complete.json``, written last. Nothing in it is unpickled with code allowed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from invert.errors import CheckpointError, RunFolderInUseError

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
COMPLETE_MARKER = "complete.json"  # written last: a checkpoint without it is torn
# Settings that make two runs different runs: resuming across them would mix the two.
RUN_DEFINING = ("seed", "batch_size", "grad_accum_steps", "lr", "lr_by_prefix", "weight_decay",
                "warmup_steps", "schedule", "schedule_clock", "max_steps")  # fmt: skip


def complete_checkpoints(root: Path) -> list[Path]:
    """The complete checkpoints under ``root``, oldest step first."""
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if not p.name.endswith(".tmp")
             and (p / COMPLETE_MARKER).is_file() and (p / TRAINER_STATE).is_file()]  # fmt: skip
    return sorted(found, key=lambda p: p.name)


def prune_checkpoints(root: Path, newest: Path, keep: int) -> None:
    """Keeps ``newest`` and the ``keep - 1`` complete checkpoints before it.

    Checkpoints of later steps are an abandoned continuation (the run was resumed from an
    earlier one): they go, so ``latest`` can never resume them instead of this run.
    """
    import shutil

    step = _step(newest)
    for old in complete_checkpoints(root):
        if old != newest and _step(old) > step:
            shutil.rmtree(old, ignore_errors=True)
    earlier = [p for p in complete_checkpoints(root) if p != newest]
    for old in earlier[: max(0, len(earlier) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def _step(path: Path) -> int:
    return int(path.name.removeprefix("step-"))


def find_checkpoint(root: Path, where: str) -> Path:
    """``where`` as a folder, or for ``latest`` the newest complete checkpoint under ``root``.

    Raises:
        CheckpointError: ``latest`` finds no complete checkpoint.
    """
    if where != "latest":
        return Path(where)
    found = complete_checkpoints(root)
    if not found:
        raise CheckpointError(f"resume_from=latest but {root} holds no complete checkpoint")
    torn = sorted(p.name for p in root.glob("step-*") if p not in found)
    if torn:
        logger.warning("skipping incomplete checkpoints %s in %s", torn, root)
    return found[-1]


def read_checkpoint(path: Path, config: dict[str, Any], process_index: int) -> dict[str, Any]:
    """The trainer state of ``path``, after checking it is whole, safe and this run's.

    Args:
        path: The checkpoint folder.
        config: The resuming run's ``TrainerConfig`` as a dict.
        process_index: This process's rank (its RNG file is checked).

    Raises:
        CheckpointError: Not a checkpoint; damaged state or RNG file; a pickled object invert
            never writes; or written by a run with other settings.
    """
    state_file = path / TRAINER_STATE
    if not state_file.is_file():
        raise CheckpointError(f"{path} is not a resumable checkpoint (no {TRAINER_STATE})")
    if not (path / COMPLETE_MARKER).is_file():
        raise CheckpointError(f"{path} is incomplete (no {COMPLETE_MARKER}: its write was cut "
                              "off, or an older invert wrote it); resume from another one")  # fmt: skip
    if foreign := sorted(p.name for p in path.glob("custom_checkpoint_*")):
        raise CheckpointError(f"{path} holds {foreign}, pickled objects invert never writes "
                              "(loading them could run code); refusing it")  # fmt: skip
    try:
        state = json.loads(state_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{state_file} is damaged ({err}); resume from another "
                              "checkpoint or start the run again") from err  # fmt: skip
    rng = path / f"random_states_{process_index}.pkl"
    if rng.is_file():
        # Accelerate would swallow a bad RNG file and resume with other random numbers.
        from accelerate.utils.other import load as load_weights_only  # + NumPy's RNG types

        try:
            states = load_weights_only(rng, map_location="cpu")
        except Exception as err:
            raise CheckpointError(f"{path} is damaged: {rng.name} is not a plain RNG state "
                                  f"({type(err).__name__}); refusing it") from None  # fmt: skip
        if not isinstance(states, dict) or "torch_manual_seed" not in states:
            raise CheckpointError(f"{path} is damaged: {rng.name} holds no RNG state")
    check_same_run(state.get("config", {}), config, path)
    return state


def check_same_run(saved: dict[str, Any], mine: dict[str, Any], path: Path) -> None:
    """Refuses a checkpoint written under other settings: resuming it would mix two runs."""
    differ = {k: (saved.get(k), mine[k]) for k in RUN_DEFINING if saved.get(k, mine[k]) != mine[k]}
    if differ:
        shown = ", ".join(f"{k}: checkpoint {a!r}, this run {b!r}" for k, (a, b) in differ.items())
        raise CheckpointError(f"{path} was written by a run with other settings ({shown}); "
                              "resume with the same settings, or train into a new folder")  # fmt: skip


def refuse_foreign_checkpoints(root: Path, overwrite: bool) -> None:
    """A fresh run into a folder holding checkpoints would prune or resume another run's.

    Raises:
        RunFolderInUseError: ``root`` holds checkpoints and ``overwrite`` is off.
    """
    existing = sorted(p.name for p in root.glob("step-*")) if root.is_dir() else []
    if existing and not overwrite:
        raise RunFolderInUseError(
            f"{root.parent} holds another run's checkpoints ({', '.join(existing)}); resume it "
            "with train.resume_from=latest, train into a new folder, or set "
            "train.overwrite=true to delete them"
        )


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The scheduler's state without its lambdas (functions, which JSON cannot hold)."""
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
