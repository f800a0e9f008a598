"""PNG plots for runs: learning curves and per-method metric bars.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so importing this module
neither needs a display nor changes the process-wide matplotlib backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from invert.errors import EmptyInputError


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Renders ``fig`` with the Agg canvas (no pyplot, no global backend) into a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=dpi)
    return path


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is missing or not a number."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def plot_learning_curve(
    history: Sequence[Mapping[str, object]],
    path: str | Path,
    keys: Sequence[str] = ("loss",),
    title: str | None = None,
) -> Path:
    """Plots metrics over training, one panel per key, and saves a PNG.

    Args:
        history: One dict per logged point, e.g. ``{"step": 100, "loss": 2.3}``. The x value is
            ``step`` when present, else the entry's index. Entries lacking a key are skipped
            for that key.
        path: Where to write the PNG.
        keys: Metrics to plot.
        title: Figure title.

    Returns:
        ``path``.

    Raises:
        EmptyInputError: No entry holds a numeric value for any of ``keys``.
    """
    keys = list(keys)
    series: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        xs, ys = [], []
        for i, entry in enumerate(history):
            y = _number(entry.get(key))
            if y is None:
                continue
            x = _number(entry.get("step"))
            xs.append(x if x is not None else float(i))
            ys.append(y)
        if ys:
            series[key] = (xs, ys)
    if not series:
        raise EmptyInputError(
            f"history ({len(history)} entries) holds no numeric values for {keys}; "
            f"log them before plotting"
        )
    fig = Figure(figsize=(6.4, 2.4 * len(series) + 0.6), layout="constrained")
    axes = fig.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, (xs, ys)) in zip(axes, series.items(), strict=True):
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_metric_bars(
    metrics_by_method: Mapping[str, Mapping[str, float]],
    keys: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Grouped bars comparing methods (e.g. inverter vs nearest neighbour) on each metric.

    Args:
        metrics_by_method: ``{method: {metric: value}}``; missing metrics leave a gap.
        keys: Metrics to show, one group of bars each.
        path: Where to write the PNG.
        title: Figure title.

    Returns:
        ``path``.

    Raises:
        EmptyInputError: No methods or no keys.
    """
    methods = list(metrics_by_method)
    keys = list(keys)
    if not methods or not keys:
        raise EmptyInputError("need at least one method and one metric key to plot")
    # One panel per metric: BLEU (0-100) and cosine (0-1) do not share a y scale.
    fig = Figure(
        figsize=(max(3.0, 1.2 + 0.9 * len(methods)) * len(keys), 3.6), layout="constrained"
    )
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(methods))]
    for ax, key in zip(axes, keys, strict=True):
        values = [_number(metrics_by_method[m].get(key)) for m in methods]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(range(len(methods)), heights, color=colors)
        for bar, value in zip(bars, values, strict=True):
            label = "n/a" if value is None else f"{value:.3g}"
            ax.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right")
        ax.set_title(key)
        ax.margins(y=0.15)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_runs(
    curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    path: str | Path,
    xlabel: str,
    title: str | None = None,
) -> Path:
    """Several runs' curves on shared panels, one panel per metric, one line per run.

    Args:
        curves: ``{run label: {metric: (xs, ys)}}``; a run lacking a metric has no line there.
        path: Where to write the PNG.
        xlabel: What the x values are (e.g. "training examples seen").
        title: Figure title.

    Returns:
        ``path``.

    Raises:
        EmptyInputError: No run has any points.
    """
    metrics = list(dict.fromkeys(m for run in curves.values() for m, (xs, _) in run.items() if len(xs)))
    if not metrics:
        raise EmptyInputError(f"no points to plot for runs {list(curves)}")
    fig = Figure(figsize=(6.4, 2.4 * len(metrics) + 0.6), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=True):
        for label, run in curves.items():
            if metric in run and len(run[metric][0]):
                xs, ys = run[metric]
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
