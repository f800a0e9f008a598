"""The weights-vs-activations report: table, two plots, an HTML page in the privacy audit's style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invert.privacy.report import REPORT_CSS, html_image, html_table
from invert.reporting.plots import save_figure
from invert.reporting.tables import write_table
from invert.reporting.tracking import Tracker


def _extraction_rate(weights: dict[str, Any]) -> float | None:
    """Share of member documents greedy decoding completes from the shortest prefix probed
    (the documents are one short sentence: longer prefixes leave few long enough)."""
    rates = weights.get("extraction", {}).get("members", {})
    return rates[min(rates, key=int)]["extractable"] if rates else None


def method_row(method: str, m: dict[str, Any]) -> dict[str, Any]:
    """One row of the table: recall, cost, leakage and deletion of one method."""
    rec, held = m["recall"]["members"], m["recall"]["held_out"]
    weights, store = m.get("weights_leakage", {}), m.get("store_leakage", {})
    form = rec["form"]
    exposure = m.get("exposure", {})
    row = {
        "method": method,
        "recall_verbatim_contains": form["verbatim"]["contains"],
        "recall_paraphrase_contains": form["paraphrase"]["contains"],
        "recall_verbatim_em": form["verbatim"]["exact_match"],
        "recall_paraphrase_em": form["paraphrase"]["exact_match"],
        "recall_verbatim_f1": form["verbatim"]["token_f1"],
        "recall_paraphrase_f1": form["paraphrase"]["token_f1"],
        "held_out_contains": held["all"]["contains"],
        "retrieval_hit_rate": rec["retrieval_hit_rate"],
        "trainable_params": m["cost"]["trainable_parameters"],
        "train_steps": m["cost"]["steps"],
        "train_s": m["cost"]["train_seconds"],
        "bytes_stored": m["cost"].get("bytes_store", 0) + m["cost"].get("bytes_weights", 0),
        "prompt_tokens": rec["prompt_tokens"],
        "s_per_question": rec["seconds_per_question"],
        "exposure_mean": exposure.get("members", {}).get("mean"),
        "extraction_rate": _extraction_rate(weights),
        "mia_best_auc": weights.get("mia_best", {}).get("auc"),
        "mia_best_tpr@1%fpr": weights.get("mia_best", {}).get("tpr@1%fpr"),
        "mia_blind_auc": weights.get("mia_blind", {}).get("auc"),
        "memorized_bits": weights.get("unintended", {}).get("corrected_total_bits"),
        "bits_per_param": weights.get("unintended", {}).get("bits_per_parameter"),
        "store_full_name_pct": 100 * store["pii"]["full_name"] if store else None,
        "store_bleu": store.get("bleu") if store else None,
        "reveal_share": m["reveal_share"],
        "deleted_recall_before": m["deletion"]["recall_before"],
        "deleted_recall_after": m["deletion"]["recall_after"],
        "deleted_exposure_before": exposure.get("deleted_before", {}).get("mean"),
        "deleted_exposure_after": exposure.get("deleted_after", {}).get("mean"),
        "forget_cost_s": m["deletion"]["forget_cost_s"],
    }
    return row


def plot_recall_vs_leakage(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One point per method and question form: recall of members' facts against two leakages,
    members' canary exposure (what the system's answers give away of a planted secret; for a
    store, through the retrieved context) and the share of a record's facts the system states
    when asked about the person. Methods are told apart by colour in the legend, since several
    sit on top of each other near the origin."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    leakages = (
        ("exposure_mean", "members' canary exposure (bits)"),
        ("reveal_share", "share of a person's facts stated when asked about them"),
    )
    for ax, (column, label) in zip(axes, leakages, strict=True):
        for i, r in enumerate(rows):
            x, colour = r.get(column), f"C{i}"
            if x is None:
                continue
            verbatim, paraphrase = r["recall_verbatim_contains"], r["recall_paraphrase_contains"]
            ax.plot([x, x], [paraphrase, verbatim], color=colour, alpha=0.4)
            ax.scatter([x], [verbatim], s=40, color=colour, label=r["method"])
            ax.scatter([x], [paraphrase], s=40, facecolors="none", edgecolors=colour)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_xlim(-0.05, 1.05)
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("recall (contains): ● verbatim, ○ paraphrase")
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)


def plot_exposure_by_method(results: Mapping[str, Any], path: Path) -> Path | None:
    """Members' canary exposure against repetitions through each system (a store's canaries
    reach the LM as retrieved context), one line per method."""
    from matplotlib.figure import Figure

    curves = {
        m: r["exposure"]["members"]["by_repetition"]
        for m, r in results.items()
        if r.get("exposure", {}).get("members")
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


def plot_recall_by_repetitions(results: Mapping[str, Any], path: Path) -> Path | None:
    """Members' verbatim recall against how often their facts were injected, per method."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for method, r in results.items():
        curve = r["recall"]["members"].get("repetitions", {})
        reps = sorted(curve, key=float)
        if reps:
            ax.plot([float(k) for k in reps], [curve[k]["contains"] for k in reps], marker="o",
                    label=method)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("fact repetitions in training")
    ax.set_ylabel("recall (contains), members, both forms")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def recall_by_repetition_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Method × form × repetition count: exact match, contains and token F1 of members."""
    rows = []
    for method, r in results.items():
        for key, scores in r["recall"]["members"].get("form_repetitions", {}).items():
            form, reps = key.split("/")
            rows.append({"method": method, "form": form, "repetitions": int(reps),
                         **{k: scores[k] for k in ("n", "exact_match", "contains", "token_f1")}})  # fmt: skip
    return rows


def write_report(
    rows: list[dict[str, Any]],
    results: Mapping[str, Any],
    findings: list[dict[str, Any]],
    run_dir: Path,
    tracker: Tracker,
) -> dict[str, str]:
    """``table``, ``recall_by_repetition`` and ``findings`` (``.md`` / ``.csv``), three plots
    and ``report.html``; all logged to W&B (aggregates: no names, facts or secrets)."""
    files = {k: str(v) for k, v in write_table(rows, run_dir, stem="table").items()}
    by_rep = recall_by_repetition_rows(results)
    if by_rep:
        for k, v in write_table(by_rep, run_dir, stem="recall_by_repetition").items():
            files[f"recall_by_repetition_{k}"] = str(v)
    for k, v in write_table(findings, run_dir, stem="findings").items():
        files[f"findings_{k}"] = str(v)
    plots = {
        "recall_vs_leakage": plot_recall_vs_leakage(
            rows, run_dir / "plots" / "recall_vs_leakage.png"
        ),
        "exposure_vs_repetitions": plot_exposure_by_method(
            results, run_dir / "plots" / "exposure_vs_repetitions.png"
        ),
        "recall_vs_repetitions": plot_recall_by_repetitions(
            results, run_dir / "plots" / "recall_vs_repetitions.png"
        ),
    }
    for key, path in plots.items():
        if path is not None:
            tracker.log_image(f"plots/{key}", path)
            files[key] = str(path)
    tracker.log_table("weights_vs_activations", list(rows[0]), rows)
    if findings:
        tracker.log_table("findings", list(findings[0]), findings)
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
        "<h2>Findings, with 95% bootstrap intervals</h2>",
        html_table(findings, list(findings[0])) if findings else "<p>No findings.</p>",
        "<h2>Recall by repetitions</h2>",
        html_table(by_rep, list(by_rep[0])) if by_rep else "",
        html_image(plots["recall_vs_leakage"], "recall vs leakage"),
        html_image(plots["exposure_vs_repetitions"], "exposure vs repetitions"),
        html_image(plots["recall_vs_repetitions"], "recall vs repetitions"),
        "</body></html>",
    ]
    report = run_dir / "report.html"
    report.write_text("\n".join(parts), encoding="utf-8")
    files["report_html"] = str(report)
    return files
