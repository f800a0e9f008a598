"""A capacity grid: every (model size, N) cell of a probe config, summarized, plotted, logged.

The cells themselves are :func:`invert.memorization.capacity.run_capacity_cell`; this module
runs a grid of them under a CPU-time budget (or collects a Hydra multirun's cells), fits bits
per parameter across model sizes and writes ``capacity.json`` with the plots.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from invert.configs.probes import CapacityProbeConfig
from invert.configs.schema import from_mapping
from invert.errors import InvertError
from invert.memorization.capacity import (
    budget_seconds,
    capacity_by_model,
    fit_bits_per_parameter,
    model_name,
    run_capacity_cell,
)

CELL_COLUMNS = ("model", "params", "n_sequences", "dataset_entropy_bits", "memorized_bits",
                "memorized_fraction", "bits_per_parameter", "converged", "stop_reason", "steps",
                "steps_to_converge", "seconds", "cpu_seconds")  # fmt: skip
MODEL_COLUMNS = ("model", "params", "capacity_bits", "bits_per_parameter", "capacity_n",
                 "converged_cells", "cells", "capacity_limited_cells", "plateau_spread")  # fmt: skip


def summarize_cells(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-model capacities, the bits-per-parameter fit and the headline number of a grid.

    The headline is the fitted slope when two or more models have a capacity, else the mean
    of the per-model ratios (None when no cell converged).
    """
    models = capacity_by_model(cells)
    known = [m for m in models if m["capacity_bits"] is not None]
    fit = None
    if len({m["params"] for m in known}) >= 2:
        slope, intercept, r2 = fit_bits_per_parameter(
            [m["capacity_bits"] for m in known], [m["params"] for m in known]
        )
        fit = {"slope": slope, "intercept": intercept, "r2": r2}
    ratios = [m["bits_per_parameter"] for m in known]
    mean_ratio = sum(ratios) / len(ratios) if ratios else None
    return {
        "bits_per_parameter": fit["slope"] if fit else mean_ratio,
        "bits_per_parameter_mean_ratio": mean_ratio,
        "fit": fit,
        "models": models,
        "converged_cells": sum(bool(c["converged"]) for c in cells),
        "cells_run": len(cells),
    }


def _collect_cells(root: str | Path) -> list[dict[str, Any]]:
    """Cells of every ``capacity.json`` under ``root`` (the jobs of a ``-m`` sweep)."""
    import json

    files = sorted(Path(root).rglob("capacity.json"))
    if not files:
        raise InvertError(f"no capacity.json under {root}; point collect_from at a multirun folder")
    cells = [cell for f in files for cell in json.loads(f.read_text())["cells"]]
    setups = {(c["vocab_size"], c["seq_len"], c["mixed_precision"]) for c in cells}
    if len(setups) > 1:
        raise InvertError(f"{root} mixes (V, S, precision) setups {setups}; collect one sweep")
    return cells


def run_capacity_experiment(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Runs a capacity grid (every model size × every N), logs it, and writes its results.

    Args:
        cfg: Plain dict (``OmegaConf.to_container(cfg, resolve=True)``) with ``probe``
            (``conf/capacity_probe/*.yaml``), ``logger`` and ``paths.output_dir``. With
            ``probe.collect_from`` set, no cell trains: the cells of every ``capacity.json``
            below that folder (a multirun sweep) are summarized instead.

    Returns:
        The summary written to ``<output_dir>/capacity.json``: :func:`summarize_cells`'s fields
        plus ``cells`` (with curves), ``skipped`` cells, conventions, plots and wall time.
    """
    from invert.memorization.capacity_plots import plot_capacity_vs_params, plot_memorized_vs_n
    from invert.reporting.run_context import open_run
    from invert.reporting.tracking import save_json

    probe = from_mapping(CapacityProbeConfig, cfg["probe"], "probe")
    run = open_run(cfg)
    run_dir, tracker = run.run_dir, run.tracker
    if probe.num_threads:
        # One thread: on a shared CPU a second spinning thread can slow small matmuls 10x.
        torch.set_num_threads(probe.num_threads)
    start, cpu_start, cells, skipped = time.perf_counter(), time.process_time(), [], []
    budget_start = budget_seconds()
    budget = probe.max_total_minutes
    base = {"probe": probe.name, "vocab_size": probe.vocab_size, "seq_len": probe.seq_len,
            "mixed_precision": probe.mixed_precision, "train": probe.train,
            "convergence": probe.convergence,
            "entropy_convention": "fixed BOS prepended; all S tokens scored; S*log2(V) bits/sequence",
            "param_counting": "all parameters incl. token and position embeddings; tied head once"}  # fmt: skip
    with tracker:
        if probe.collect_from:
            cells = _collect_cells(probe.collect_from)
        jobs = [] if probe.collect_from else [
            # A size may carry its own N list: capacity grows with size, so should the sweep.
            ({k: v for k, v in entry.items() if k != "n_sequences"}, int(n))
            for entry in probe.model_sizes
            for n in entry.get("n_sequences") or probe.n_sequences
        ]

        def cell_kwargs(size: dict[str, Any], n: int) -> dict[str, Any]:
            return dict(
                model_size=size, n_sequences=n, vocab_size=probe.vocab_size,
                seq_len=probe.seq_len,
                output_dir=run_dir / "cells" / f"{model_name(size)}_N{n}", train=probe.train,
                convergence=probe.convergence, seed=probe.seed,
                mixed_precision=probe.mixed_precision, score_batch_size=probe.score_batch_size,
            )  # fmt: skip

        def finished(cell: dict[str, Any]) -> None:
            cells.append(cell)
            tracker.log({f"cells/{k}": cell[k] for k in CELL_COLUMNS[1:] if k != "stop_reason"})
            # Written after every cell: a killed grid keeps what it finished.
            save_json(run_dir / "capacity.json", {**base, "cells": cells, "skipped": skipped})

        workers = probe.workers
        parallel = workers > 1 and len(jobs) > 1
        if parallel:
            _run_parallel(jobs, cell_kwargs, finished, skipped, workers, budget, tracker,
                          probe.num_threads or 1)  # fmt: skip
        for size, n in [] if parallel else jobs:
            # CPU time, like a cell's max_minutes: a paused process keeps its budget.
            if budget is not None and budget_seconds() - budget_start > 60 * float(budget):
                skipped.append({"model": model_name(size), "n_sequences": n})
                continue
            finished(run_capacity_cell(**cell_kwargs(size, n), tracker=tracker))
        if not cells:
            raise InvertError(f"no cell ran within max_total_minutes={budget}; raise it")
        cells.sort(key=lambda c: (c["params"], c["n_sequences"]))  # workers finish out of order
        summary = {**base, **summarize_cells(cells), "skipped": skipped}
        plots = {"memorized_vs_n": run_dir / "memorized_vs_n.png"}
        plot_memorized_vs_n(cells, plots["memorized_vs_n"], summary["models"])
        if any(m["capacity_bits"] is not None for m in summary["models"]):
            plots["capacity_vs_params"] = run_dir / "capacity_vs_params.png"
            plot_capacity_vs_params(summary["models"], plots["capacity_vs_params"], summary["fit"])
        summary.update(wall_seconds=time.perf_counter() - start, plots=plots, cells=cells,
                       cpu_seconds=time.process_time() - cpu_start)  # fmt: skip
        save_json(run_dir / "capacity.json", summary)
        tracker.log_table("capacity/cells", CELL_COLUMNS, cells)
        tracker.log_table("capacity/models", MODEL_COLUMNS, summary["models"])
        for key, path in plots.items():
            tracker.log_image(f"capacity/{key}", path)
        tracker.summary({f"capacity/{k}": summary[k] for k in ("bits_per_parameter", "converged_cells", "wall_seconds", "cpu_seconds")}
                        | {"capacity/fit_r2": (summary["fit"] or {}).get("r2")})  # fmt: skip
    return summary


def _init_worker(num_threads: int) -> None:
    torch.set_num_threads(num_threads)


def _run_parallel(
    jobs: list[tuple[dict[str, Any], int]],
    cell_kwargs: Any,
    finished: Any,
    skipped: list[dict[str, Any]],
    workers: int,
    budget_minutes: float | None,
    tracker: Any,
    num_threads: int,
) -> None:
    """Runs cells in ``workers`` processes at once (cells are independent runs).

    The budget is wall time here: a cell not started within it is skipped. Curves reach the
    tracker when a cell ends (a worker process cannot hold the parent's W&B run).
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from invert.memorization.capacity import CellTracker

    # Longest first (cost ~ N x width x depth), so the last cell to finish is a short one.
    queue = sorted(jobs, key=lambda j: -j[1] * j[0]["d_model"] * j[0]["n_layer"])
    start, running = time.perf_counter(), {}
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(num_threads,)) as pool:  # fmt: skip
        while queue or running:
            while queue and len(running) < workers:
                size, n = queue.pop(0)
                if budget_minutes is not None and time.perf_counter() - start > 60 * budget_minutes:
                    skipped.append({"model": model_name(size), "n_sequences": n})
                    continue
                running[pool.submit(run_capacity_cell, **cell_kwargs(size, n))] = (size, n)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.pop(future)
                cell = future.result()
                cell_log = CellTracker(tracker, f"cell/{cell['model']}/N{cell['n_sequences']}")
                for step, bits in cell["curve"]:
                    cell_log.log({"memorized_bits": bits}, step=step)
                finished(cell)
