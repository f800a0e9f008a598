"""The privacy audit's outputs a person reads: two PNG figures and a self-contained HTML page.

The HTML embeds its figures as base64 PNG (one file to email to a privacy officer), escapes
every string it prints, and shows reconstructed text only when the user asked for examples.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from invert.privacy.pii import PII_FIELDS
from invert.reporting.plots import save_figure

LEAK_KEYS = ("bleu", "token_f1", "exact", "cosine")
UTILITY_KEYS = ("recall@10", "ndcg@10")


def _save(fig: Figure, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def plot_noise_tradeoff(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Leakage (token F1, cosine, PII any-field rate) and utility (Recall@10) against λ."""
    noise = [r for r in rows if r["defense"] == "noise"]
    if not any(r["level"] == 0 for r in noise):  # the undefended store is λ = 0
        noise += [{**r, "level": 0.0} for r in rows if r["defense"] == "none"]
    noise.sort(key=lambda r: r["level"])
    if len(noise) < 2:
        return None
    levels = [r["level"] for r in noise]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for key, label, style in (
        ("bleu_01", "BLEU / 100 (leakage)", "x-"),
        ("token_f1", "token F1 (leakage)", "o-"),
        ("cosine", "cosine to target (leakage)", "s-"),
        ("pii_any", "records with any PII field recovered", "^-"),
        ("recall@10", "Recall@10 (utility)", "D--"),
        ("ndcg@10", "nDCG@10 (utility)", "v--"),
    ):
        if key == "bleu_01":  # BLEU is 0-100; the axis is a 0-1 score
            values = [None if r.get("bleu") is None else r["bleu"] / 100 for r in noise]
        else:
            values = [r.get(key) for r in noise]
        if all(v is not None for v in values):
            ax.plot(levels, values, style, label=label)
    ax.set_xscale("symlog", linthresh=min(x for x in levels if x > 0) if any(levels) else 1e-3)
    ax.set_xlabel("noise level λ  (vector + λ·N(0, I))")
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Gaussian noise: leakage vs utility")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_pii_bars(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Per-field PII recovery rate, one bar group per field and one bar per condition."""
    rows = [r for r in rows if r.get("pii")]
    if not rows:
        return None
    fields = [f for f in PII_FIELDS if f in rows[0]["pii"]]
    fig = Figure(figsize=(min(11.0, 4.0 + 0.12 * len(fields) * len(rows)), 4.2))
    ax = fig.add_subplot()
    width = 0.8 / len(rows)
    for j, row in enumerate(rows):
        xs = [i + (j - (len(rows) - 1) / 2) * width for i in range(len(fields))]
        color = colormaps["tab20"](j % 20)  # default cycle repeats after 10 conditions
        ax.bar(
            xs, [row["pii"][f]["rate"] for f in fields], width, label=row["condition"], color=color
        )
    ax.set_xticks(range(len(fields)), [f.replace("_", " ") for f in fields])
    ax.set_ylabel("share of records recovered verbatim")
    ax.set_ylim(0, 1.02)
    ax.set_title("PII fields an attacker recovers, per defense")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_image(path: Path | None, alt: str) -> str:
    if path is None:
        return f"<p><em>{html.escape(alt)}: not enough data for this figure.</em></p>"
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _attacker_phrase(attacker: Mapping[str, Any]) -> str:
    embedder = html.escape(str(attacker["embedder"]))
    if attacker.get("attacker") == "records":
        return (
            "the schema-aware record attack: attribute inference from the vector, then the "
            f"record's template and fields chosen by querying {embedder} "
            f"({attacker.get('templates')} templates learned from the attacker's own records)"
        )
    return f"an inverter trained on {embedder}"


REPORT_CSS = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
    "td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
    "th{background:#eee}td:first-child{text-align:left}img{max-width:100%}"
    ".ex{font-family:monospace;font-size:12px}"
)


def write_html_report(
    path: Path,
    result: Mapping[str, Any],
    figures: Mapping[str, Path | None],
    examples: Sequence[Mapping[str, str]] | None = None,
) -> Path:
    """Writes the self-contained report (figures inlined as base64 PNG)."""
    rows = result["rows"]
    store, summary = result["store"], result["summary"]
    columns = ["condition", *LEAK_KEYS, "pii_any", *UTILITY_KEYS]
    columns = [c for c in columns if any(r.get(c) is not None for r in rows) or c == "condition"]
    pii_rows = [
        {"condition": r["condition"], **{f: v["rate"] for f, v in r["pii"].items()}}
        for r in rows
        if r.get("pii")
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Privacy audit: {html.escape(store['name'])}</title><style>{REPORT_CSS}</style></head><body>",
        f"<h1>Embedding privacy audit: {html.escape(store['name'])}</h1>",
        "<h2>Summary</h2><ul>",
        *(f"<li>{html.escape(line)}</li>" for line in summary),
        "</ul><h2>What was tested</h2>",
        f"<p>{store['sampled']} of {store['count']} stored vectors ({store['dim']} dimensions) "
        f"were inverted with {_attacker_phrase(result['inverter'])}. "
        "Each defense was applied to the same vectors, as if it had been in place when the "
        "store was filled. Leakage: BLEU (0–100) and token F1 against the stored document, "
        "exact-match share, and cosine between the stored vector and the embedding of the "
        "reconstruction (vec2text, arXiv:2310.06816). PII: share of records whose exact field "
        "value appears in the reconstruction. Utility: BBC headline → article retrieval, "
        "Recall@10 and nDCG@10, with queries and documents both defended. "
        "“+ALGEN k” rows: the attacker leaked k (text, vector) pairs and fitted a linear map "
        "back to its own space (arXiv:2502.11308).</p>",
        "<h2>Leakage and utility per condition</h2>",
        html_table(rows, columns),
        "<h2>Figures</h2>",
        html_image(figures.get("noise"), "noise vs leakage vs utility"),
        html_image(figures.get("pii"), "PII recovery per field"),
    ]
    if pii_rows:
        parts += ["<h2>PII recovery per field</h2>", html_table(pii_rows, list(pii_rows[0]))]
    if examples:
        parts.append("<h2>Examples (shown because audit.show_examples=true)</h2>")
        parts.append(html_table(examples, list(examples[0])).replace("<table>", "<table class='ex'>"))
    for note in result.get("notes", []):
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
