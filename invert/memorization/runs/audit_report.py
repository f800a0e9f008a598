"""The memorization audit's report: plots, the regime comparison table, JSON and W&B."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from invert.configs.probes import MemorizationProbeConfig
from invert.memorization import exposure as exp_
from invert.memorization import extraction as ext
from invert.memorization import membership as mia
from invert.memorization.blind_baseline import BLIND
from invert.memorization.private_corpus import PrivateCorpus
from invert.memorization.unintended import plot_unintended_bits
from invert.reporting.tables import write_table
from invert.reporting.tracking import Tracker, save_json


def report_audit(
    cfg: dict[str, Any],
    probe: MemorizationProbeConfig,
    corpus: PrivateCorpus,
    results: dict[str, Any],
    artifacts: dict[str, Any],
    run_dir: Path,
    tracker: Tracker,
    started: float,
) -> dict[str, Any]:
    """Plots, the comparison table, ``memorization_audit.json`` and the W&B summary.

    Returns:
        What the audit returns: config, corpus summary, per-regime metrics, the comparison
        table, the headline and the files written.
    """
    plots = run_dir / "plots"
    paths = {
        "exposure": exp_.plot_exposure_vs_repetitions(
            {r: m["exposure"]["by_repetition"] for r, m in results.items()},
            plots / "exposure_vs_repetitions.png",
            next(iter(results.values()))["exposure"]["max_exposure"],
        ),
        "extraction": ext.plot_extraction_vs_prefix(
            {
                f"{r}/{s}": m["extraction"][s]
                for r, m in results.items()
                for s in ("members", "non_members")
            },
            plots / "extractable_vs_prefix_length.png",
        ),
    }
    for regime, art in artifacts.items():
        paths[f"roc_{regime}"] = mia.plot_roc(
            art["roc"], plots / f"roc_{regime}.png", f"MIA ROC: {regime}"
        )
    with_bits = {r: a["unintended"] for r, a in artifacts.items() if "unintended" in a}
    if with_bits:
        paths["unintended"] = plot_unintended_bits(with_bits, plots / "unintended_bits.png")
    for key, path in paths.items():
        tracker.log_image(f"plots/{key}", path)
    rows = comparison_rows(results, probe)
    table_paths = write_comparison(rows, run_dir)
    tracker.log_table("comparison", list(rows[0]), rows)
    attack_table = attack_rows(results)
    files = write_table(attack_table, run_dir, stem="attacks", digits=3)
    table_paths.update(attacks_csv=files["csv"], attacks_md=files["markdown"])
    tracker.log_table("attacks", list(attack_table[0]), attack_table)
    if probe.log_examples:
        _log_examples(tracker, corpus, results, artifacts)
    first = next(iter(results))
    headline = {"metric": f"{first}/mia/loss/auc", "value": results[first]["mia"]["loss"]["auc"]}
    out = {
        "config": cfg,
        "corpus": corpus.summary(),
        "regimes": results,
        "table": rows,
        "attack_table": attack_table,
        "headline": headline,
        "total_seconds": time.perf_counter() - started,
        "files": {k: str(v) for k, v in {**paths, **table_paths}.items()},
    }
    save_json(run_dir / "memorization_audit.json", out)
    tracker.summary(
        {
            **{f"table/{r['regime']}/{k}": v for r in rows for k, v in r.items() if k != "regime"},
            "headline": headline["value"],
        }
    )
    return out


def _log_examples(tracker: Tracker, corpus: PrivateCorpus, results: dict, artifacts: dict) -> None:
    """Canary texts with their exposure and extraction (opt-in: this is training text)."""
    rows = []
    for regime, art in artifacts.items():
        per_canary = results[regime]["exposure"]["per_canary"]
        for canary, exp_row, ext_row in zip(
            corpus.canaries, per_canary, art["canary_extraction"], strict=True
        ):
            rows.append(
                [regime, canary.text, canary.repetitions, exp_row["exposure"], ext_row["extracted"]]
            )
    tracker.log_table(
        "canary_examples", ["regime", "canary", "repetitions", "exposure", "extracted"], rows
    )


def comparison_rows(results: dict[str, Any], probe: MemorizationProbeConfig) -> list[dict[str, Any]]:
    """One row per regime: the fine-tuning comparison table."""
    k = probe.extraction.headline_prefix or max(probe.extraction.prefix_lengths)
    rows = []
    for regime, m in results.items():
        loss, best, reps = m["mia"]["loss"], m["mia_best"], m["exposure"]["by_repetition"]
        top = max(reps)
        un = m.get("unintended", {})
        rows.append({
            "regime": regime,
            "trainable_params": m["trainable_parameters"],
            "steps": m["train"]["steps"],
            "train_loss": m["train"].get("final_train_loss"),
            "task_loss": m["task_loss"],
            "exposure_mean": m["exposure"]["mean"],
            f"exposure_rep{top}": reps[top],
            "canary_extracted_pct": 100 * m["extraction"]["canary_extracted"],
            f"extractable_pct_k{k}": 100 * m["extraction"]["members"][k]["extractable"],
            f"extractable_nonmember_pct_k{k}": 100 * m["extraction"]["non_members"][k]["extractable"],
            "mia_loss_auc": loss["auc"],
            "mia_loss_auc_ci_low": loss["auc_ci_low"],
            "mia_loss_auc_ci_high": loss["auc_ci_high"],
            "mia_best_attack": best["best_attack"],
            "mia_best_auc": best["auc"],
            "mia_best_tpr@1%fpr": best.get("tpr@1%fpr"),
            "mia_loss_tpr@1%fpr": loss.get("tpr@1%fpr"),
            "mia_blind_auc": m["mia_blind"]["auc"],
            "control_blind_auc": m.get("mia_negative_control", {}).get(BLIND, {}).get("auc"),
            "memorized_bits": un.get("corrected_total_bits"),
            "bits_per_param": un.get("bits_per_parameter"),
            "informia_bits": m.get("informia_bits", {}).get("corrected_total_bits"),
            "train_s": m["train"].get("train_seconds", 0.0),
            "wall_s": m["wall_seconds"],
        })  # fmt: skip
    return rows


def attack_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (regime, attack), the model-free blind baseline last in each regime.

    Columns: AUC and TPR at each FPR with their bootstrap intervals, and the same attack's AUC on
    the negative control (a distribution-shifted split) when the audit ran one.
    """
    rows = []
    for regime, m in results.items():
        control = m.get("mia_negative_control", {})
        for attack, r in {**m["mia"], BLIND: m["mia_blind"]}.items():
            row = {"regime": regime, "attack": attack}
            for key in (k for k in r if not k.endswith(("_ci_low", "_ci_high"))):
                row[key] = r[key]
                if f"{key}_ci_low" in r:
                    row[f"{key}_ci"] = f"[{r[f'{key}_ci_low']:.3f}, {r[f'{key}_ci_high']:.3f}]"
            if control:  # shadows never scored the control texts: no LiRA / RMIA there
                row["control_auc"] = control.get(attack, {}).get("auc")
            rows.append(row)
    return rows


def write_comparison(rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Path]:
    """Writes the table as ``comparison.csv`` and ``comparison.md`` in ``run_dir``."""
    files = write_table(rows, run_dir, stem="comparison", digits=4)
    return {"comparison_csv": files["csv"], "comparison_md": files["markdown"]}
