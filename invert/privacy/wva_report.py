"""The weights-vs-activations report: table, two plots, an HTML page in the privacy audit's style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invert.privacy.report import REPORT_CSS, html_image, html_table
from invert.reporting.plots import save_figure
from invert.reporting.tables import write_table
from invert.reporting.tracking import Tracker


def plot_recall_vs_leakage(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One point per method: recall of members' facts against what it reveals when asked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        x, y = r["reveal_share"], r["recall_paraphrase_contains"]
        ax.scatter([x], [y], s=40)
        ax.annotate(r["method"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("share of a person's facts stated when asked about them")
    ax.set_ylabel("recall: paraphrased questions (contains)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_exposure_by_method(results: Mapping[str, Any], path: Path) -> Path | None:
    """Canary exposure against repetitions, one line per method that tunes the weights."""
    from matplotlib.figure import Figure

    curves = {
        m: r["weights_leakage"]["exposure"]["by_repetition"]
        for m, r in results.items()
        if "weights_leakage" in r
    }
    if not curves:
        return None
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for method, curve in curves.items():
        reps = sorted(curve, key=float)
        ax.plot([float(k) for k in reps], [curve[k] for k in reps], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("canary repetitions")
    ax.set_ylabel("exposure (bits)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def write_report(
    rows: list[dict[str, Any]], results: Mapping[str, Any], run_dir: Path, tracker: Tracker
) -> dict[str, str]:
    """``table.md`` / ``table.csv``, the two plots and ``report.html``; all logged to W&B."""
    files = {k: str(v) for k, v in write_table(rows, run_dir, stem="table").items()}
    plots = {
        "recall_vs_leakage": plot_recall_vs_leakage(
            rows, run_dir / "plots" / "recall_vs_leakage.png"
        ),
        "exposure_vs_repetitions": plot_exposure_by_method(
            results, run_dir / "plots" / "exposure_vs_repetitions.png"
        ),
    }
    for key, path in plots.items():
        if path is not None:
            tracker.log_image(f"plots/{key}", path)
            files[key] = str(path)
    tracker.log_table("weights_vs_activations", list(rows[0]), rows)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Weights vs activations</title><style>{REPORT_CSS}</style></head><body>",
        "<h1>Weights vs activations: one private knowledge base, two places to keep it</h1>",
        "<p>Invented people's facts were put into a RAG vector store and into the LM's weights. "
        "Recall: share of questions whose answer contains the fact (verbatim cloze and "
        "paraphrased question). Leakage from the weights: canary exposure and membership "
        "inference against the base LM (the blind baseline never looks at a model). Leakage "
        "from the store: what the schema-aware record attack recovers from the stored vectors. "
        "Deletion: recall of deleted people's facts before and after they are forgotten.</p>",
        html_table(rows, list(rows[0])),
        html_image(plots["recall_vs_leakage"], "recall vs leakage"),
        html_image(plots["exposure_vs_repetitions"], "exposure vs repetitions"),
        "</body></html>",
    ]
    report = run_dir / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    files["report_html"] = str(report)
    return files
