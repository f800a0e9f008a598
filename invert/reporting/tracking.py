"""Experiment tracking behind one small interface: W&B (offline by default) or nothing.

``Tracker`` is the no-op used for ``logger=none`` and on non-main processes; ``WandbTracker``
writes to Weights & Biases. Both keep every W&B file under the run folder, never ``$HOME``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invert.env import configure_wandb_dirs
from invert.errors import unknown_name

TRACKERS = ("wandb", "none")

logger = logging.getLogger(__name__)


class Tracker:
    """Tracker interface and the no-op implementation: every method accepts and drops its input.

    Args:
        run_dir: Folder of the run, if any; exposed as ``run_dir``.
    """

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self._run_dir = Path(run_dir) if run_dir is not None else None

    @property
    def run_dir(self) -> Path | None:
        """Folder the run writes into."""
        return self._run_dir

    @property
    def active(self) -> bool:
        """True while the tracker sends data somewhere (never for the no-op tracker)."""
        return False

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Logs scalar metrics, at ``step`` when given (steps must not decrease)."""

    def log_table(
        self,
        key: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any] | Mapping[str, Any]],
        step: int | None = None,
    ) -> None:
        """Logs a table; ``rows`` are sequences in column order or dicts keyed by column."""

    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None:
        """Logs the image file at ``path``."""

    def log_artifact(self, path: str | Path, name: str, type: str) -> None:
        """Logs a file or folder as a versioned artifact of kind ``type``."""

    def summary(self, metrics: Mapping[str, Any]) -> None:
        """Sets final (summary) values of the run."""

    def finish(self, exit_code: int = 0) -> None:
        """Closes the run; safe to call more than once."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


class WandbTracker(Tracker):
    """Logs to Weights & Biases; offline by default, every file under ``run_dir``.

    Args:
        project: W&B project name.
        run_dir: Folder for the run; W&B writes ``run_dir/wandb/offline-run-*`` (or ``run-*``)
            and keeps its cache, data and config folders in ``run_dir`` too.
        config: Hyperparameters to record (a dict, or an OmegaConf config).
        mode: ``"offline"`` (default; sync later with ``wandb sync``), ``"online"`` or
            ``"disabled"``.
        name: Display name of the run.
        tags: Tags for the run.
        log_model: Upload artifacts of type ``"model"`` (off by default: checkpoints are big).
        enabled: False makes this a no-op without importing wandb.
        is_main_process: Only the main process logs; others are no-ops.
    """

    def __init__(
        self,
        project: str,
        run_dir: str | Path,
        config: Mapping[str, Any] | None = None,
        mode: str = "offline",
        name: str | None = None,
        tags: Sequence[str] | None = None,
        log_model: bool = False,
        enabled: bool = True,
        is_main_process: bool = True,
    ) -> None:
        super().__init__(run_dir)
        self.log_model = log_model
        self._run: Any = None
        self._wandb: Any = None
        if not (enabled and is_main_process):
            return
        # Must precede the import: wandb reads its folders from the environment.
        configure_wandb_dirs(run_dir)
        import wandb

        self._wandb = wandb
        self._run = wandb.init(
            project=project,
            dir=str(run_dir),
            config=_plain_config(config),
            mode=mode,
            name=name,
            tags=list(tags) if tags else None,
        )

    @property
    def active(self) -> bool:
        return self._run is not None

    @property
    def wandb_run(self) -> Any:
        """The underlying ``wandb.Run`` (None when disabled or finished)."""
        return self._run

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self._run is not None:
            self._run.log(dict(metrics), step=step)

    def log_table(
        self,
        key: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any] | Mapping[str, Any]],
        step: int | None = None,
    ) -> None:
        if self._run is None:
            return
        columns = list(columns)
        data = [
            [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row) for row in rows
        ]
        table = self._wandb.Table(columns=columns, data=data)
        self._run.log({key: table}, step=step)

    def log_image(self, key: str, path: str | Path, step: int | None = None) -> None:
        if self._run is None:
            return
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no image at {path}; write the plot before logging it")
        self._run.log({key: self._wandb.Image(str(path))}, step=step)

    def log_artifact(self, path: str | Path, name: str, type: str) -> None:
        if self._run is None or (type == "model" and not self.log_model):
            return
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no file or folder at {path} to log as artifact {name!r}")
        # W&B artifact names allow only letters, digits, '-', '_' and '.'.
        artifact = self._wandb.Artifact(name=re.sub(r"[^\w.-]", "-", name), type=type)
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
        self._run.log_artifact(artifact)

    def summary(self, metrics: Mapping[str, Any]) -> None:
        if self._run is not None:
            self._run.summary.update(dict(metrics))

    def finish(self, exit_code: int = 0) -> None:
        if self._run is None:
            return
        run, self._run = self._run, None
        run.finish(exit_code=exit_code)
        # run.finish() only informs wandb-core that the run ended; the core closes (flushes)
        # the run-*.wandb log later, so a reader right after finish() can find it empty
        # (seen with wandb 0.31). Shutting the service down waits for that. Another live run
        # would be finished by the teardown, so it is skipped then.
        if self._wandb.run is None:
            try:
                self._wandb.teardown()
            except SystemExit as err:  # teardown exits when the service process failed
                logger.warning("wandb service exited with code %s at teardown", err.code)


def build_tracker(
    kind: str | None,
    run_dir: str | Path,
    config: Mapping[str, Any] | None = None,
    is_main_process: bool = True,
    **kw: Any,
) -> Tracker:
    """Builds the tracker named by ``kind`` (the ``logger`` setting).

    Args:
        kind: ``"wandb"`` or ``"none"`` (None means ``"none"``).
        run_dir: Folder of the run.
        config: Hyperparameters to record.
        is_main_process: False returns the no-op tracker, so only rank 0 logs.
        **kw: Passed to ``WandbTracker`` (``project`` defaults to ``"invert"``).

    Raises:
        UnknownNameError: ``kind`` is not a known tracker.
    """
    kind = (kind or "none").lower()
    if kind not in TRACKERS:
        raise unknown_name("logger", kind, TRACKERS)
    if kind == "none" or not is_main_process:
        return Tracker(run_dir)
    kw.setdefault("project", "invert")
    return WandbTracker(run_dir=run_dir, config=config, **kw)


def save_json(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON (keys in insertion order), creating parent folders.

    Tensors, NumPy values and paths are converted; NaN/inf become null so the file stays
    valid JSON.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _jsonable(obj: Any) -> Any:
    """Converts ``obj`` recursively into plain JSON types."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # torch tensors, NumPy arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    return str(obj)


def _plain_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turns an OmegaConf config (Hydra) into a plain dict; wandb cannot serialise it."""
    if config is None:
        return {}
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]
    return dict(config)
