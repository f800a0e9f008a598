"""A capacity scaling grid (Morris et al. 2025, arXiv:2505.24832): every (model size, N) cell
of a probe config, tabulated, plotted and logged.

The cells are :func:`invert.memorization.scaling.run_scaling_cell`; this module builds their
data once, runs them one after another and writes ``scaling.json``, ``table.md`` /
``table.csv`` and two plots into the run folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch

from invert.configs.probes import ScalingProbeConfig
from invert.configs.schema import from_mapping, to_dict
from invert.memorization.capacity import model_name
from invert.memorization.scaling import build_source, run_scaling_cell, scaling_by_model

logger = logging.getLogger(__name__)

CELL_COLUMNS = ("model", "params", "n_sequences", "dataset_bits", "capacity_bits",
                "dataset_to_capacity", "train_loss", "test_loss", "reference_loss", "f1",
                "accuracy", "auc", "auc_ci_low", "auc_ci_high", "memorized_of_capacity", "steps",
                "epochs", "stopped_early", "seconds")  # fmt: skip


def run_scaling_experiment(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Runs a scaling grid (every model size × every N), logs it, and writes its results.

    Args:
        cfg: Plain dict (``OmegaConf.to_container(cfg, resolve=True)``) with ``probe``
            (``conf/scaling_probe/*.yaml``), ``logger``, ``seed`` and ``paths.output_dir``.

    Returns:
        The summary written to ``<output_dir>/scaling.json``: ``cells`` (records of
        :func:`~invert.memorization.scaling.run_scaling_cell`), ``models``
        (:func:`~invert.memorization.scaling.scaling_by_model`), the headline
        ``f1_at_largest_ratio`` / ``f1_at_smallest_ratio`` (means over models), ``plots``,
        ``files`` and wall time.
    """
    from invert.memorization.scaling_plots import plot_loss_vs_ratio, plot_membership_vs_ratio
    from invert.reporting.run_context import open_run
    from invert.reporting.tables import write_table
    from invert.reporting.tracking import save_json

    probe = from_mapping(ScalingProbeConfig, cfg["probe"], "probe")
    # Before the run folder exists: a bad data source fails without leaving an empty run.
    source = build_source(probe.data, probe.seq_len, probe.seed, probe.vocab_size, probe.corpus,
                          probe.ngram_order, probe.ngram_fit_sequences)  # fmt: skip
    run = open_run(cfg)
    run_dir, tracker = run.run_dir, run.tracker
    if probe.num_threads:
        # One thread: on a shared CPU a second spinning thread can slow small matmuls 10x.
        torch.set_num_threads(probe.num_threads)
    start = time.perf_counter()
    base = {"probe": probe.name, "data": probe.data, "seq_len": probe.seq_len,
            "bits_per_parameter": probe.bits_per_parameter, "train": to_dict(probe.train),
            "capacity": "bits_per_parameter x all parameters (embeddings incl., tied head once)",
            "losses": "mean NLL in bits per token; attack score = minus the loss"}  # fmt: skip
    jobs = [
        # A size may carry its own N list: capacity grows with size, so should the sweep.
        ({k: v for k, v in entry.items() if k != "n_sequences"}, int(n))
        for entry in probe.model_sizes
        for n in entry.get("n_sequences") or probe.n_sequences
    ]
    cells: list[dict[str, Any]] = []
    with tracker:
        for i, (size, n) in enumerate(jobs, 1):
            cell = run_scaling_cell(
                source, size, n, run_dir / "cells" / f"{model_name(size)}_N{n}", probe.train,
                probe.bits_per_parameter, probe.n_non_members, probe.seed, tracker,
                probe.score_batch_size, probe.n_bootstrap,
            )  # fmt: skip
            cells.append(cell)
            logger.info(
                "cell %d/%d %s N=%d: bits/capacity %.3g, loss train %.3f test %.3f bits/token, "
                "F1 %.3f, AUC %.3f, %d steps, %.0f s", i, len(jobs), cell["model"], n,
                cell["dataset_to_capacity"], cell["train_loss"], cell["test_loss"], cell["f1"],
                cell["auc"], cell["steps"], cell["seconds"],
            )  # fmt: skip
            tracker.log({f"cells/{k}": cell[k] for k in CELL_COLUMNS[1:] if cell[k] is not None})
            # Written after every cell: a killed grid keeps what it finished.
            save_json(run_dir / "scaling.json", {**base, "cells": cells})
        models = scaling_by_model(cells)
        plots = {"membership_vs_ratio": run_dir / "membership_vs_ratio.png",
                 "loss_vs_ratio": run_dir / "loss_vs_ratio.png"}  # fmt: skip
        plot_membership_vs_ratio(cells, plots["membership_vs_ratio"])
        plot_loss_vs_ratio(cells, plots["loss_vs_ratio"])
        files = write_table(cells, run_dir, "table", CELL_COLUMNS)
        summary = {
            **base, "models": models,
            "f1_at_smallest_ratio": sum(m["f1_first"] for m in models) / len(models),
            "f1_at_largest_ratio": sum(m["f1_last"] for m in models) / len(models),
            "cells": cells, "plots": plots, "files": files,
            "wall_seconds": time.perf_counter() - start,
        }  # fmt: skip
        save_json(run_dir / "scaling.json", summary)
        tracker.log_table("scaling/cells", CELL_COLUMNS, cells)
        for key, path in plots.items():
            tracker.log_image(f"scaling/{key}", path)
        tracker.summary({f"scaling/{k}": summary[k] for k in
                         ("f1_at_smallest_ratio", "f1_at_largest_ratio", "wall_seconds")})  # fmt: skip
    return summary
