"""Plots of the capacity scaling grid (Morris et al. 2025, arXiv:2505.24832), as PNGs.

* membership F1 and AUC against dataset bits / capacity, one line per model, with chance (0.5)
  and the capacity point (ratio 1) drawn in;
* train and test loss against the same ratio, with the loss of a model that memorized nothing.

Drawn on matplotlib's Agg canvas (no pyplot) and written by :func:`invert.reporting.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from invert.errors import EmptyInputError
from invert.reporting.plots import save_figure


def _by_model(cells: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    if not cells:
        raise EmptyInputError("no scaling cells to plot; run at least one cell")
    names = dict.fromkeys(c["model"] for c in cells)
    return {
        name: sorted(
            (c for c in cells if c["model"] == name), key=lambda c: c["dataset_to_capacity"]
        )
        for name in names
    }


def _ratio_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("dataset bits / capacity")
    ax.grid(alpha=0.3)


def plot_membership_vs_ratio(
    cells: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Held-out F1 and AUC (with its bootstrap interval) of the loss attack against the ratio.

    Raises:
        EmptyInputError: No cells.
    """
    models = _by_model(cells)
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    f1_ax, auc_ax = fig.subplots(1, 2, sharex=True)
    for i, (name, mine) in enumerate(models.items()):
        xs = [c["dataset_to_capacity"] for c in mine]
        label = f"{name} ({mine[0]['params']:,} params)"
        f1_ax.plot(xs, [c["f1"] for c in mine], "o-", color=f"C{i % 10}", label=label)
        errors = [
            [c["auc"] - c["auc_ci_low"] for c in mine],
            [c["auc_ci_high"] - c["auc"] for c in mine],
        ]
        auc_ax.errorbar(xs, [c["auc"] for c in mine], yerr=errors, fmt="o-", color=f"C{i % 10}",
                        capsize=3, label=label)  # fmt: skip
    for ax, metric in ((f1_ax, "membership F1 (threshold fitted on the other half)"),
                       (auc_ax, "membership AUC (95% bootstrap CI)")):  # fmt: skip
        _ratio_axis(ax)
        ax.axhline(0.5, color="black", linestyle=":", linewidth=1)
        ax.set_ylim(0.0, 1.05)
        ax.set_ylabel(metric)
    f1_ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(title or "Loss-threshold membership inference vs dataset size (chance 0.5)")
    return save_figure(fig, path)


def plot_loss_vs_ratio(
    cells: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Path:
    """Test (solid) and train (dashed) loss per model against the ratio, and the reference loss.

    The reference (dotted) is ``log2 V`` on random tokens (what a model that memorized nothing
    scores) and the character n-gram's loss on text. The capacity point is the dashed ratio-1
    line.

    Raises:
        EmptyInputError: No cells.
    """
    models = _by_model(cells)
    fig = Figure(figsize=(7.0, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, (name, mine) in enumerate(models.items()):
        xs, color = [c["dataset_to_capacity"] for c in mine], f"C{i % 10}"
        ax.plot(xs, [c["test_loss"] for c in mine], "o-", color=color, label=f"{name} test")
        ax.plot(xs, [c["train_loss"] for c in mine], "s--", color=color, alpha=0.6,
                label=f"{name} train")  # fmt: skip
        ax.plot(xs, [c["reference_loss"] for c in mine], ":", color="black", linewidth=1)
    ax.plot([], [], ":", color="black", linewidth=1, label="reference: log2 V / char n-gram")
    _ratio_axis(ax)
    ax.text(1.0, 0.98, " capacity", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.set_yscale("log")  # memorized train loss ~0.1 and test loss ~30 bits share the axis
    ax.set_ylabel("loss (bits per token)")
    ax.legend(fontsize=8)
    ax.set_title(title or "Train and test loss vs dataset size", fontsize=10)
    return save_figure(fig, path)
