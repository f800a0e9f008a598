"""One run context for every experiment: output folder, seed, rank-aware tracker, results.

Every run function starts with :func:`open_run` and ends with :meth:`RunContext.finish`, so
the seed is set before anything random is built, only rank 0 logs, and every run writes
``results.json`` and its W&B summary the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invert.errors import InvertError, RunFolderInUseError
from invert.reporting.tracking import Tracker, build_tracker, save_json


@dataclass
class RunContext:
    """What a run shares.

    Attributes:
        cfg: The resolved config (plain dicts).
        run_dir: The one folder the run writes into (``paths.output_dir``).
        seed: The run's seed (already applied to Python, NumPy and torch).
        tracker: W&B (rank 0 only) or a no-op tracker.
        is_main_process: False on the other ranks of a multi-process run.
    """

    cfg: dict[str, Any]
    run_dir: Path
    seed: int
    tracker: Tracker
    is_main_process: bool = True

    def finish(self, summary: dict[str, Any], print_json: bool = False) -> dict[str, Any]:
        """Writes ``results.json``, sends the flattened metrics to the tracker, closes it.

        Args:
            summary: The run's results; its ``metrics`` block (``{method: {name: value}}``
                or flat) goes to the tracker's summary.
            print_json: Also print the summary as JSON (the entry points' output).

        Returns:
            ``summary``.
        """
        if self.is_main_process:
            if "metrics" in summary:
                self.tracker.summary(flatten_metrics(summary["metrics"]))
            save_json(self.run_dir / "results.json", summary)
            if print_json:
                print(json.dumps(summary, indent=1, default=str))
        self.tracker.finish()
        return summary


def open_run(cfg: Mapping[str, Any]) -> RunContext:
    """Creates the run folder, seeds everything and opens the tracker.

    Args:
        cfg: Resolved config with ``paths.output_dir``, ``seed`` and ``logger`` (``kind`` and
            the tracker's options; absent: no tracker).

    Returns:
        The run's context.
    """
    import torch
    from accelerate import PartialState
    from transformers import set_seed

    cfg = dict(cfg)
    if cfg.get("seed") is None:
        raise InvertError("the run's config has no seed; every run is seeded (seed=0, say)")
    seed = int(cfg["seed"])
    # Before any model, split or sampler is built: same seed, same weights and numbers.
    set_seed(seed)
    if torch.cuda.is_available():
        # CPU runs are bit-identical as they are; CUDA needs deterministic kernels for that
        # (warn_only: an op without a deterministic kernel still runs, and says so).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    run_dir = Path(cfg["paths"]["output_dir"])
    _refuse_a_finished_run(run_dir, cfg.get("train"))
    run_dir.mkdir(parents=True, exist_ok=True)
    # cpu=True as the Trainer asks for it: the first PartialState fixes the process group for
    # the whole run, and without it torchrun workers on a CPU machine would each run alone.
    is_main = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    options = dict(cfg.get("logger") or {})
    kind = options.pop("kind", "none")
    # Under accelerate launch / torchrun only rank 0 opens a W&B run.
    built = build_tracker(kind, run_dir, config=cfg, is_main_process=is_main, **options)
    return RunContext(cfg=cfg, run_dir=run_dir, seed=seed, tracker=built, is_main_process=is_main)


def _refuse_a_finished_run(run_dir: Path, train: Mapping[str, Any] | None) -> None:
    """A training run into the folder of a finished one would overwrite its results."""
    if train is None or not (run_dir / "results.json").is_file():
        return
    if train.get("resume_from") or train.get("overwrite"):
        return
    raise RunFolderInUseError(
        f"{run_dir} holds a finished run (results.json); train into a new folder, resume it "
        "with train.resume_from=latest, or set train.overwrite=true to replace it"
    )


def flatten_metrics(
    metrics: Mapping[str, Any], prefix: str = "", scalars_only: bool = False
) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``, at any depth.

    Args:
        metrics: Nested metrics.
        prefix: Put before every key.
        scalars_only: Keep only numbers (as floats; booleans, lists and strings dropped),
            e.g. for a per-step W&B log.
    """
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, f"{name}/", scalars_only))
        elif not scalars_only:
            flat[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
