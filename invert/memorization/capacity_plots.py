"""Plots of the capacity probe (Morris et al. 2025, arXiv:2505.24832), as PNGs.

* memorized bits vs dataset size N, one line per model, with the dataset-entropy line
  (everything below it is memorizable; a flat stretch under it is the model's capacity);
* capacity vs parameter count with the fitted bits-per-parameter line.

Drawn on matplotlib's Agg canvas (no pyplot) and written by :func:`invert.reporting.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from invert.errors import EmptyInputError
from invert.reporting.plots import save_figure

PAPER_BITS_PER_PARAMETER = 3.6  # arXiv:2505.24832, GPT-2 models trained in fp32


def plot_memorized_vs_n(
    cells: Sequence[Mapping[str, Any]],
    path: str | Path,
    models: Sequence[Mapping[str, Any]] = (),
    title: str | None = None,
) -> Path:
    """Total memorized bits against N for each model, with the dataset-entropy line.

    Args:
        cells: Records of :func:`invert.memorization.capacity.run_capacity_cell`. Converged
            cells are filled markers, unconverged ones hollow (they give no capacity).
        path: Where to write the PNG.
        models: Records of :func:`~invert.memorization.capacity.capacity_by_model`; their
            capacities are drawn as dotted horizontal lines.
        title: Figure title.

    Raises:
        EmptyInputError: No cells.
    """
    if not cells:
        raise EmptyInputError("no capacity cells to plot; run at least one cell")
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.subplots()
    names = list(dict.fromkeys(c["model"] for c in cells))
    capacity = {m["model"]: m.get("capacity_bits") for m in models}
    for i, name in enumerate(names):
        mine = sorted((c for c in cells if c["model"] == name), key=lambda c: c["n_sequences"])
        color = f"C{i % 10}"
        xs = [c["n_sequences"] for c in mine]
        ax.plot(
            xs,
            [c["memorized_bits"] for c in mine],
            color=color,
            label=f"{name} ({mine[0]['params']:,} params)",
        )
        for c in mine:
            face = color if c["converged"] else "none"
            ax.plot(c["n_sequences"], c["memorized_bits"], "o", color=color, markerfacecolor=face)
        if capacity.get(name):
            ax.axhline(capacity[name], color=color, linestyle=":", linewidth=1)
    all_n = sorted({c["n_sequences"] for c in cells})
    per_seq = cells[0]["entropy_bits_per_sequence"]
    ax.plot(
        all_n, [n * per_seq for n in all_n], "k--", linewidth=1, label="dataset entropy N·S·log2 V"
    )
    top = max(c["memorized_bits"] for c in cells)
    ax.set_ylim(
        0, 1.35 * top if top > 0 else 1.0
    )  # keep the plateaus readable under the entropy line
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (random sequences in the training set)")
    ax.set_ylabel("total memorized bits")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "Memorized bits vs dataset size (filled: converged cells)", fontsize=10)
    return save_figure(fig, path)


def plot_capacity_vs_params(
    models: Sequence[Mapping[str, Any]],
    path: str | Path,
    fit: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Capacity (bits) against parameters, with the fitted line and the paper's 3.6 bits/param.

    Args:
        models: Records of :func:`~invert.memorization.capacity.capacity_by_model`; models
            without a capacity (no converged cell) are left out.
        path: Where to write the PNG.
        fit: ``slope``, ``intercept``, ``r2`` from
            :func:`~invert.memorization.capacity.fit_bits_per_parameter`, if any.
        title: Figure title.

    Raises:
        EmptyInputError: No model has a capacity.
    """
    known = [m for m in models if m.get("capacity_bits") is not None]
    if not known:
        raise EmptyInputError("no model has a capacity (no converged cell); train longer")
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.subplots()
    xs = [m["params"] for m in known]
    ax.plot(xs, [m["capacity_bits"] for m in known], "o", color="C0", label="capacity (plateau)")
    for m in known:
        ax.annotate(
            f"{m['model']}: {m['bits_per_parameter']:.2f} bits/param",
            (m["params"], m["capacity_bits"]),
            fontsize=7,
            xytext=(6, -4),
            ha="left",
            va="top",
            textcoords="offset points",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    grid = [0.0, 1.35 * max(xs)]  # room for the labels right of the points
    if fit is not None:
        label = f"fit: {fit['slope']:.2f} bits/param, R²={fit['r2']:.4f}"
        ax.plot(grid, [fit["slope"] * x + fit["intercept"] for x in grid], "C0-", label=label)
    paper = PAPER_BITS_PER_PARAMETER
    ax.plot(grid, [paper * x for x in grid], "k:", label=f"{paper} bits/param (arXiv:2505.24832)")
    ax.set_xlim(0, grid[1])
    ax.set_ylim(0, None)
    ax.set_xlabel("parameters (all, embeddings included)")
    ax.set_ylabel("capacity (bits)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "Capacity vs model size", fontsize=10)
    return save_figure(fig, path)
