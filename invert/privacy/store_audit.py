"""The privacy audit: what an attacker recovers from a vector store, and which defenses help.

``run_privacy_audit`` samples a real store (:mod:`invert.stores`), inverts the vectors with a
trained inverter (vec2text-style, arXiv:2310.06816) or, for stores of structured records, the
schema-aware record attack (:mod:`invert.privacy.record_attack`), measures text leakage and PII
recovery,
then repeats under each defense (:mod:`invert.privacy.defenses`): a Gaussian noise sweep, int8 and
binary quantization, and a secret orthogonal transform, the latter also attacked with ALGEN's
few-shot alignment (arXiv:2502.11308). Retrieval utility is measured for every defense. The
result goes to ``report.json`` and a self-contained ``report.html``; W&B gets aggregates only,
texts only with ``audit.log_examples: true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from invert.api import invert_embeddings
from invert.configs import PrivacyAuditConfig, RecordAttackConfig, from_mapping, to_dict
from invert.configs.privacy import ATTACKERS
from invert.embedders import Embedder, build_embedder, check_embeddings
from invert.errors import InvertError, unknown_name
from invert.inversion.metrics import cosine_similarity_rows, reconstruction_metrics
from invert.inversion.search.edit_search import guided_search
from invert.privacy.alignment_attack import AlignmentAttack
from invert.privacy.defenses import DefendedEmbedder, build_defense
from invert.privacy.pii import pii_recovery
from invert.privacy.record_attack import RecordAttack, load_records
from invert.privacy.report import plot_noise_tradeoff, plot_pii_bars, write_html_report
from invert.privacy.retrieval import defended_retrieval
from invert.privacy.victims import draw_victims, drop_invalid_rows
from invert.reporting.run_context import open_run
from invert.reporting.tracking import save_json
from invert.stores import StoreBatch, open_store


def run_privacy_audit(
    cfg: dict[str, Any],
    inverter: torch.nn.Module | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Audits one vector store and writes ``report.json`` and ``report.html``.

    Args:
        cfg: ``store`` (an :func:`invert.stores.open_store` spec), ``inverter_path``,
            ``embedder`` (spec of the embedder that filled the store; default ``minilm``),
            ``audit`` (:class:`~invert.configs.PrivacyAuditConfig`), ``logger``, ``paths.output_dir``, ``seed``.
        inverter: A loaded inverter (overrides ``inverter_path``; used by tests/notebooks).
        embedder: The store's embedder (overrides ``cfg["embedder"]``).

    Returns:
        The report dict: ``store``, ``inverter``, ``rows`` (one per condition), ``summary``
        (plain-language lines), ``notes`` and ``files``.

    Raises:
        DimensionMismatchError: Store, inverter and embedder dimensions disagree.
        EmptyInputError: The store is empty.
    """
    audit = from_mapping(PrivacyAuditConfig, cfg.get("audit"), "audit")
    if audit.attacker not in ATTACKERS:
        raise unknown_name("attacker", audit.attacker, list(ATTACKERS))
    run = open_run(cfg)
    seed, run_dir = run.seed, run.run_dir
    embedder = embedder or build_embedder(cfg.get("embedder") or "minilm")
    if audit.attacker == "records":
        inverter = _record_attack(embedder, audit.record_attack)
        dim, source = embedder.dim, f"the record attack (on {embedder.name})"
    else:
        if inverter is None:
            from invert.models import load_inverter

            if not cfg.get("inverter_path"):
                raise InvertError(
                    "set inverter_path=<folder of a trained inverter> (see train_inverter.py), "
                    "or audit.attacker=records for the schema-aware record attack"
                )
            inverter = load_inverter(cfg["inverter_path"])
        dim = int(inverter.config.embedder_dim)
        source = f"the inverter (trained on {inverter.config.embedder_name})"
        check_embeddings(torch.zeros(1, embedder.dim), dim, source)
    tracker = run.tracker
    with tracker, open_store(cfg["store"]) as store:
        store.check_dim(dim, source)
        victims, leak = draw_victims(store, audit, seed)
        skipped: list[str] = []
        victims = drop_invalid_rows(victims, skipped)
        leak = drop_invalid_rows(leak, skipped) if leak is not None else None
        stages = _stages(audit)
        bar = tqdm(total=len(stages) + 2, desc="privacy audit")
        records = _pii_truth(audit.pii_records, victims.documents)
        if isinstance(inverter, RecordAttack):
            inverter.fit(load_records(audit.record_attack.aux))
        clean = torch.from_numpy(victims.vectors)
        ctx = _Context(inverter, embedder, audit, victims, clean, records)
        ctx.notes.extend(skipped)
        rows, examples = [ctx.attack("none", "none", clean)], {}
        examples["none"] = ctx.last
        bar.update()
        defenses: dict[str, DefendedEmbedder] = {}
        for name, spec in stages:
            bar.set_postfix_str(name)
            defense = build_defense(embedder, spec, seed=seed)
            defenses[name] = defense
            level = float(spec["noise"]) if isinstance(spec, dict) else None
            kind = "noise" if level is not None else str(spec)
            rows.append(ctx.attack(name, kind, defense.transform(clean), level=level))
            examples[name] = ctx.last
            if kind == "orthogonal":
                rows += _alignment(ctx, defense, leak, audit.alignment_k, examples)
            bar.update()
        bar.set_postfix_str("retrieval utility")
        utility = defended_retrieval(
            embedder,
            {n: d.transform for n, d in defenses.items()},
            n=audit.retrieval.n,
            k=audit.retrieval.k,
            seed=seed,
        )
        bar.update()
        bar.close()
        for row in rows:
            row.update(utility.get(row["defense_name"], {}))
        result = _finish(cfg, audit, store, victims, inverter, rows, ctx.notes, run_dir)
        shown = _examples(victims, examples, audit.num_examples) if audit.show_examples else None
        files = result["files"]
        figs = {
            "noise": plot_noise_tradeoff(rows, run_dir / "noise_tradeoff.png"),
            "pii": plot_pii_bars(rows, run_dir / "pii_recovery.png"),
        }
        files["noise_plot"] = str(figs["noise"]) if figs["noise"] else None
        files["pii_plot"] = str(figs["pii"]) if figs["pii"] else None
        write_html_report(Path(files["html"]), result, figs, shown)
        if shown:
            result["examples"] = shown
        save_json(files["json"], result)
        _log(tracker, rows, figs, audit, victims, examples)
    return result


class _Context:
    """What every attack in one audit shares (the inverter, targets and ground truth)."""

    def __init__(self, inverter, embedder, audit, victims: StoreBatch, clean, records) -> None:
        self.inverter, self.embedder, self.audit = inverter, embedder, audit
        self.victims, self.clean, self.records = victims, clean, records
        self.notes: list[str] = []
        self.last: list[str] = []

    def attack(self, name: str, kind: str, vectors: torch.Tensor, **extra: Any) -> dict:
        """Inverts ``vectors`` and scores the reconstructions against the clean store rows."""
        if isinstance(self.inverter, RecordAttack):
            recon, _ = self.inverter.invert(vectors)  # has the embedder in its loop already
        else:
            recon = invert_embeddings(
                vectors,
                self.inverter,
                embedder=self.embedder,
                num_candidates=self.audit.num_candidates,
                max_new_tokens=self.audit.max_new_tokens,
                show_progress=True,
            )
            if self.audit.search is not None:
                # The attacker with the embedder in the loop: the inverter's text, edited toward
                # the vector the store holds (noised, quantized, ...), as vec2text's corrector.
                recon = guided_search(
                    vectors, self.embedder, recon, None, None, self.audit.search,
                    inverter=self.inverter,
                ).texts
        self.last = recon
        row: dict[str, Any] = {
            "condition": name,
            "defense": kind,
            "defense_name": name,
            "level": extra.get("level"),
            "k": extra.get("k"),
        }
        docs = self.victims.documents
        if docs is not None:
            agg, _ = reconstruction_metrics(recon, docs, self.clean, embedder=self.embedder)
            row.update({k: agg[k] for k in ("bleu", "token_f1", "exact", "cosine")})
        else:
            row["cosine"] = _cosine_only(recon, self.clean, self.embedder)
        if self.records is not None:
            row["pii"] = pii_recovery(recon, self.records)
            row["pii_any"] = row["pii"]["any"]["rate"]
        return row


def _stages(audit: PrivacyAuditConfig) -> list[tuple[str, Any]]:
    stages: list[tuple[str, Any]] = []
    for name in audit.defenses:
        if name == "noise":
            stages += [(f"noise λ={lv:g}", {"noise": lv}) for lv in audit.noise_levels]
        else:
            stages.append((str(name), name))
    return stages


def _alignment(ctx: _Context, defense, leak: StoreBatch | None, ks, examples) -> list[dict]:
    """ALGEN on the orthogonal defense for each k (capped by the leaked rows available)."""
    if leak is None or leak.documents is None:
        ctx.notes.append("ALGEN alignment skipped: the store has no documents or no rows to leak.")
        return []
    out = []
    leaked_vectors = defense.transform(torch.from_numpy(leak.vectors))
    for k in sorted({min(int(k), len(leak)) for k in ks}):
        attack = AlignmentAttack(ctx.embedder).fit(leak.documents[:k], leaked_vectors[:k])
        mapped = attack.map(defense.transform(ctx.clean))
        name = f"orthogonal+ALGEN k={k}"
        row = ctx.attack(name, "orthogonal+algen", mapped, k=k)
        row["defense_name"] = "orthogonal"  # same stored vectors, so the same utility
        out.append(row)
        examples[name] = ctx.last
    if max(int(k) for k in ks) > len(leak):
        ctx.notes.append(f"ALGEN k capped at {len(leak)}: the store has no more rows to leak.")
    return out


def _pii_truth(spec: Any, documents: list[str] | None) -> list[dict] | None:
    """Ground-truth PII records aligned with the sampled documents (None when not configured).

    Raises:
        InvertError: None of the sampled documents has a record: every PII rate would read 0%.
    """
    if spec is None or documents is None:
        return None
    by_text = {r["text"]: r for r in load_records(spec)}
    if not any(doc in by_text for doc in documents):
        raise InvertError(
            f"none of the {len(documents)} sampled documents is among the pii_records "
            f"{spec!r}; give the records the store was built from (same n and seed)"
        )
    # A document without a record gets an empty one: it counts in "any" but in no field.
    return [by_text.get(doc, {}) for doc in documents]


def _record_attack(embedder: Embedder, spec: RecordAttackConfig) -> RecordAttack:
    """The schema-aware attack, unfitted (it is fitted once the store has been checked)."""
    return RecordAttack(
        embedder, spec.fields, top_k=spec.top_k, rounds=spec.rounds
    )


def _cosine_only(recon: list[str], targets: torch.Tensor, embedder: Embedder) -> float:
    keep = [i for i, r in enumerate(recon) if r.strip()]
    if not keep:
        return 0.0
    sims = cosine_similarity_rows(embedder.encode([recon[i] for i in keep]), targets[keep])
    return float(sims.sum()) / len(recon)


def _finish(cfg, audit, store, victims, inverter, rows, notes, run_dir: Path) -> dict:
    base = rows[0]
    summary = []
    if base.get("token_f1") is not None:
        summary.append(
            f"Undefended, the attacker's reconstructions share {base['token_f1']:.0%} of their "
            f"words with the stored documents (BLEU {base['bleu']:.1f}, cosine {base['cosine']:.2f})."
        )
    if base.get("pii"):
        pii = base["pii"]
        fields = ", ".join(
            f"{f.replace('_', ' ')} {v['rate']:.0%}" for f, v in pii.items() if f != "any"
        )
        summary.append(f"PII recovered verbatim without defense: {fields}.")
    key = "token_f1" if base.get("token_f1") is not None else "cosine"
    for row in rows[1:]:
        line = f"{row['condition']}: {key.replace('_', ' ')} {row[key]:.3f} (undefended {base[key]:.3f})"
        if row.get("recall@10") is not None:
            line += f", Recall@10 {row['recall@10']:.2f} (undefended {base['recall@10']:.2f})"
        summary.append(line + ".")
    if (line := _noise_sweet_spot(rows)) is not None:
        summary.append(line)
    return {
        "store": {
            "name": store.name,
            "count": store.count,
            "dim": store.dim,
            "sampled": len(victims),
            "has_documents": victims.documents is not None,
        },
        "inverter": _describe_attacker(cfg, audit, inverter, store.dim),
        "audit": {k: v for k, v in to_dict(audit).items() if k != "pii_records"},
        "rows": rows,
        "summary": summary,
        "notes": notes,
        "files": {"json": str(run_dir / "report.json"), "html": str(run_dir / "report.html")},
    }


def _noise_sweet_spot(rows: list[dict], keep: float = 0.95) -> str | None:
    """vec2text's question of the noise sweep: at the largest λ where retrieval keeps ``keep``
    of its undefended Recall@10, how much of the leakage is left?"""
    base = rows[0]
    if base.get("recall@10") is None or base.get("bleu") is None:
        return None
    ok = [
        r
        for r in rows
        if r["defense"] == "noise" and r["level"] and r["recall@10"] >= keep * base["recall@10"]
    ]
    if not ok:
        return None
    row = max(ok, key=lambda r: r["level"])
    line = f"Largest noise that keeps {keep:.0%} of Recall@10: λ={row['level']:g}"
    if base["bleu"] > 0:
        line += (
            f" (Recall@10 {row['recall@10']:.2f} vs {base['recall@10']:.2f}); there BLEU falls "
            f"{1 - row['bleu'] / base['bleu']:.0%} ({base['bleu']:.1f} → {row['bleu']:.1f})"
        )
    if base.get("pii") and row.get("pii"):
        first, now = base["pii"]["full_name"]["rate"], row["pii"]["full_name"]["rate"]
        line += f", and full names recovered go from {first:.0%} to {now:.0%}"
    return line + "."


def _describe_attacker(cfg, audit, inverter, dim: int) -> dict[str, Any]:
    if isinstance(inverter, RecordAttack):
        spec = audit.record_attack
        return {
            "attacker": "records",
            "embedder": inverter.embedder.name,
            "dim": dim,
            "aux": spec.aux,
            "templates": len(inverter.templates),
            "fields": inverter.fields,
        }
    return {
        "attacker": "inverter",
        "embedder": str(inverter.config.embedder_name),
        "dim": dim,
        "path": cfg.get("inverter_path"),
    }


def _examples(victims: StoreBatch, examples: dict, num_examples: int) -> list[dict[str, str]]:
    n = min(num_examples, len(victims))
    out = []
    for i in range(n):
        row = {"stored": victims.documents[i] if victims.documents else "(vector only)"}
        row.update({name: recon[i] for name, recon in examples.items()})
        out.append(row)
    return out


def _log(tracker, rows, figs, audit, victims, examples) -> None:
    """Aggregates (numbers only) to the tracker; texts only with ``log_examples``."""
    flat = {}
    for row in rows:
        for key, value in row.items():
            if (
                isinstance(value, float | int)
                and not isinstance(value, bool)
                and key not in ("k", "level")
            ):
                flat[f"{row['condition']}/{key}"] = value
        for field, v in (row.get("pii") or {}).items():
            flat[f"{row['condition']}/pii/{field}"] = v["rate"]
    tracker.summary(flat)
    for key, path in figs.items():
        if path is not None:
            tracker.log_image(f"plots/{key}", path)
    if audit.log_examples:
        shown = _examples(victims, examples, audit.num_examples)
        tracker.log_table("examples", list(shown[0]), shown)
