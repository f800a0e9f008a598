"""Weights vs activations: one private knowledge base in a RAG store and in the weights.

For each injection method (:mod:`invert.privacy.knowledge_injection`) the experiment measures,
on the same invented people:

- *recall*: exact match, contains-match and token F1 on verbatim and paraphrased questions, by
  fact repetition count, for members and held-out people; RAG's retrieval hit rate;
- *cost*: trainable parameters, training seconds, bytes stored, prompt tokens, s per answer;
- *leakage from the weights* (tuned methods): the memorization audit's probes on the tuned LM
  against the base LM (canary exposure, extraction, membership with the blind baseline beside
  it, memorized bits per trainable parameter);
- *leakage from the activations* (store methods): the schema-aware record attack
  (:mod:`invert.privacy.record_attack`) on the stored vectors, with its own invented people as
  auxiliary data (PII per field), and the share of a person's facts the RAG system states when
  simply asked about them;
- *deletion*: 10% of the people forgotten: their vectors deleted from the store and their
  questions asked again; for the weights, forgetting means retraining (its cost is the training
  cost) and the trained model's recall of the deleted people is what it still leaks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from invert.configs.probes import MemorizationProbeConfig
from invert.configs.schema import from_mapping
from invert.embedders import build_embedder
from invert.errors import unknown_name
from invert.inversion.metrics import reconstruction_metrics
from invert.memorization import membership as mia
from invert.memorization.exposure import exposure_by_repetition, measure_exposure
from invert.memorization.private_corpus import Canary, PrivateCorpus, load_probe_tokenizer
from invert.memorization.runs.finetune_audit import evaluate_model, scored_texts
from invert.models.pretrained_lm import load_causal_lm
from invert.privacy.answer_scoring import (
    answer_scores,
    answer_scores_by,
    contains_answer,
    pii_share,
)
from invert.privacy.knowledge_base import KnowledgeBase, Question, build_knowledge_base
from invert.privacy.knowledge_injection import (
    METHODS,
    TUNINGS,
    InjectedKnowledge,
    generate_answers,
    inject,
    question_context,
    store_id,
)
from invert.privacy.pii import pii_recovery
from invert.privacy.record_attack import RecordAttack
from invert.privacy.wva_budget import size_training
from invert.privacy.wva_findings import compute_findings
from invert.privacy.wva_report import method_row, write_report
from invert.reporting.run_context import flatten_metrics, open_run
from invert.reporting.tracking import save_json

logger = logging.getLogger(__name__)

REVEAL_PROMPT = "Question: What do you know about {name}?\nAnswer:"


def _questions(kb: KnowledgeBase, split: str, limit: int | None, seed: int) -> list[Question]:
    questions = kb.split_questions(split)
    if limit and len(questions) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(len(questions), limit, replace=False))
        questions = [questions[i] for i in idx]
    return questions


def audit_corpus(kb: KnowledgeBase, seed: int) -> PrivateCorpus:
    """The knowledge base as the memorization audit's corpus: injected documents are members,
    held-out people's documents non-members, the canaries as they are, each document grouped
    with its person's."""
    members = list(dict.fromkeys(d.text for d in kb.injected_documents()))
    non_members = list(dict.fromkeys(d.text for d in kb.split_documents("held_out")))
    # Documents of one person are split together: the blind baseline folds by person.
    groups = {d.text: d.person_id for d in kb.documents}
    return PrivateCorpus(
        members, non_members, [], kb.canaries, kb.space, seed, kb.training_texts(seed), groups
    )


def _probe(cfg: dict[str, Any], regime: str) -> MemorizationProbeConfig:
    """A memorization-audit config for the leakage probes (no training, no shadows)."""
    leak = cfg["leakage"]
    return from_mapping(
        MemorizationProbeConfig,
        {
            "name": cfg["name"], "tokenizer": cfg["tokenizer"], "regimes": [regime],
            "log_examples": False, "num_threads": cfg.get("num_threads"), "data": {},
            "target": {"kind": "pretrained", "name": cfg["lm"]},
            "reference": {"kind": "pretrained", "name": cfg["lm"]}, "train": cfg["train"],
            "eval": leak["eval"], "exposure": leak["exposure"], "extraction": leak["extraction"],
            "mia": {**leak["mia"], "negative_control": None},
            "shadows": {"n_models": 0, "rmia_a": None, "rmia_gamma": 1.0},
        },
        "leakage",
    )  # fmt: skip


def recall(
    knows: InjectedKnowledge, questions: Sequence[Question], max_new_tokens: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Answer scores overall, by form and by repetition, plus the retrieval figures; and each
    question's contains-match flag (for the findings' intervals)."""
    answers, info = knows.answer(questions, max_new_tokens)
    scores = answer_scores_by(answers, questions, by=("form", "repetitions"))
    cells: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        cells.setdefault(f"{q.form}/{q.repetitions}", []).append(i)
    scores["form_repetitions"] = {
        key: answer_scores([answers[i] for i in idx], [questions[i].answer for i in idx])
        for key, idx in sorted(cells.items())
    }
    flags = np.array(
        [contains_answer(a, q.answer) for a, q in zip(answers, questions, strict=True)]
    )
    return {**scores, **info}, flags


def system_exposure(
    knows: InjectedKnowledge,
    kb: KnowledgeBase,
    indices: Sequence[int],
    exposure: dict[str, Any],
    batch_size: int,
    seed: int,
) -> dict[str, Any]:
    """Exposure of the canaries at ``indices`` through the whole system, as an attacker who
    asks for the secret sees it: with a store, the canary's prefix retrieves its top-k rows,
    which go before the prefix as they would before a question; without one, the LM alone.

    Returns ``{"mean", "by_repetition", "per_canary", "retrieved"}`` (``retrieved``: share of
    canaries whose own row came back); no secret text.
    """
    canaries = [kb.canaries[i] for i in indices]
    if not canaries:
        return {}
    retrieved = None
    if knows.store is not None and knows.embedder is not None:
        queries = knows.embedder.encode([c.prefix.strip() for c in canaries]).numpy()
        hits = knows.store.query(queries, knows.top_k)
        canaries = [
            Canary(question_context([h["document"] for h in rows]) + c.prefix, c.secret,
                   c.suffix, c.repetitions)
            for c, rows in zip(canaries, hits, strict=True)
        ]  # fmt: skip
        retrieved = float(np.mean([
            any(h["id"] == f"canary-{i}" for h in rows) for i, rows in zip(indices, hits, strict=True)
        ]))  # fmt: skip
    # The exact-rank search re-reads the retrieved context at every node, which costs minutes
    # per canary; with a store, a canary beyond every sample keeps the skew-normal estimate,
    # capped at log2 |R| (its own row in the context usually puts it there).
    search = exposure["search_batches"] if retrieved is None else 0
    rows = measure_exposure(
        knows.model, knows.tokenizer, canaries, kb.space, exposure["method"],
        exposure["n_samples"], exposure["max_enumerate"], batch_size, seed,
        search_batches=search, shared_prefix=True,
    )  # fmt: skip
    return _exposure_summary(rows, retrieved)


def _weights_exposure(weights: dict[str, Any], indices: Sequence[int]) -> dict[str, Any]:
    """The leakage probes' exposure rows of the canaries at ``indices`` (the LM alone)."""
    rows = [weights["exposure"]["per_canary"][i] for i in indices]
    return _exposure_summary(rows, None) if rows else {}


def _exposure_summary(rows: Sequence[dict[str, Any]], retrieved: float | None) -> dict[str, Any]:
    """Mean, by-repetition and per-canary exposure of ``measure_exposure`` rows."""
    values = [r["exposure"] for r in rows]
    return {"mean": float(np.mean(values)), "by_repetition": exposure_by_repetition(rows),
            "per_canary": values, "retrieved": retrieved}  # fmt: skip


def store_leakage(
    knows: InjectedKnowledge, kb: KnowledgeBase, attack_cfg: dict[str, Any], seed: int
) -> dict[str, Any]:
    """What an attacker who knows the schema recovers from the stored vectors alone."""
    aux_kb = build_knowledge_base(
        n_people=attack_cfg["aux_people"], seed=seed + 7, canary_repetitions=(1,)
    )
    fields = ["first_name", "last_name", *kb.facts]

    def record(doc: Any, base: KnowledgeBase) -> dict[str, str]:
        person = base.person(doc.person_id)
        return {"text": doc.text, "first_name": person.first_name, "last_name": person.last_name,
                doc.fact: doc.answer}  # fmt: skip

    attack = RecordAttack(
        knows.embedder, fields, top_k=attack_cfg["top_k"], rounds=attack_cfg["rounds"]
    )
    attack.fit([record(d, aux_kb) for d in aux_kb.injected_documents()], show_progress=False)
    docs = kb.injected_documents()
    idx = np.random.default_rng(seed).permutation(len(docs))[: attack_cfg["n_vectors"]]
    victims = [docs[i] for i in sorted(idx)]
    vectors = torch.from_numpy(knows.store.vectors([store_id(d) for d in victims]))
    recon, _ = attack.invert(vectors, show_progress=False)
    truth = [record(d, kb) for d in victims]
    pii = pii_recovery(recon, truth, fields=["first_name", "last_name", "full_name", *kb.facts])
    text, _ = reconstruction_metrics(recon, [d.text for d in victims])
    return {"n_vectors": len(victims), "pii": {f: v["rate"] for f, v in pii.items()},
            "bleu": text.get("bleu"), "token_f1": text.get("token_f1")}  # fmt: skip


def reveal(
    knows: InjectedKnowledge, kb: KnowledgeBase, people: Sequence[str], max_new_tokens: int
) -> float:
    """Mean share of a person's facts the system states when simply asked about them."""
    persons = [kb.person(p) for p in people]
    prompts = [REVEAL_PROMPT.format(name=p.name) for p in persons]
    if knows.store is not None:
        hits = knows.store.query(
            knows.embedder.encode([p.name for p in persons]).numpy(), knows.top_k
        )
        prompts = [
            question_context([h["document"] for h in rows]) + prompt
            for rows, prompt in zip(hits, prompts, strict=True)
        ]
    answers = generate_answers(knows.model, knows.tokenizer, prompts, max_new_tokens)
    return float(np.mean([pii_share(a, p) for a, p in zip(answers, persons, strict=True)]))


def run_weights_vs_activations(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs every method of ``cfg["wva"]`` on one knowledge base; writes table, plots, JSON.

    Args:
        cfg: ``wva`` (see ``conf/wva/tiny.yaml``), ``logger``, ``paths.output_dir``, ``seed``.

    Returns:
        ``{"knowledge_base", "methods": {method: metrics}, "table", "files"}``.
    """
    w = cfg["wva"]
    methods = list(w["methods"])
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise unknown_name("knowledge injection method", bad[0], METHODS)
    run = open_run(cfg)
    seed, run_dir, tracker = run.seed, run.run_dir, run.tracker
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tracker:
        if w.get("num_threads"):
            torch.set_num_threads(int(w["num_threads"]))
        kb = build_knowledge_base(**w["knowledge_base"], seed=seed)
        tracker.summary({f"knowledge_base/{k}": v for k, v in kb.summary().items()})
        tokenizer = load_probe_tokenizer(w["tokenizer"])
        embedder = None
        if any(m.startswith("rag") for m in methods):
            embedder = build_embedder(cfg["embedder"])
        corpus = audit_corpus(kb, seed)
        base = load_causal_lm(w["lm"]).eval()
        ref_stats = mia.token_statistics(
            base, tokenizer, scored_texts(corpus, []), w["leakage"]["eval"]["batch_size"]
        )
        del base
        limit = w.get("max_questions")
        asked = {s: _questions(kb, s, limit, seed) for s in ("members", "held_out", "deleted")}
        leaked: dict[str, Any] | None = None
        # rag+lora reuses lora's trained weights and their leakage: the same seeded model.
        tuned: dict[str, tuple[torch.nn.Module, dict[str, Any]]] = {}
        weights_leaked: dict[str, dict[str, Any]] = {}
        bits_by_regime: dict[str, np.ndarray] = {}
        # Per-question flags and memorized bits feed the findings' intervals; kept out of JSON.
        flags: dict[str, dict[str, np.ndarray]] = {}
        member_bits: dict[str, np.ndarray] = {}
        forms = {s: np.array([q.form for q in qs]) for s, qs in asked.items()}
        reps = {s: np.array([q.repetitions for q in qs]) for s, qs in asked.items()}
        leak = w["leakage"]

        def exposure_of(knows: InjectedKnowledge, m: dict[str, Any], idx: list[int]) -> Any:
            if knows.store is None and "weights_leakage" in m:
                return _weights_exposure(m["weights_leakage"], idx)
            return system_exposure(
                knows, kb, idx, leak["exposure"], leak["eval"]["batch_size"], seed
            )

        train, budget = w["train"], None
        for i, method in enumerate(methods):
            t0 = time.perf_counter()
            if method in TUNINGS and budget is None:  # matched steps, sized before the first
                train, budget = size_training(
                    w, methods[i:], tokenizer, kb.training_texts(seed), run_dir / "budget",
                    (t0 - started) / 60, results.get("none", {}).get("wall_seconds"), seed,
                )  # fmt: skip
            logger.info("method %d/%d %s: injecting the documents", i + 1, len(methods), method)
            knows = inject(
                method, kb, w["lm"], tokenizer, embedder, run_dir / "methods",
                train, w.get("tuning"), w["top_k"], seed, tuned,
            )  # fmt: skip
            for regime in [r for r in tuned if r not in {TUNINGS.get(x) for x in methods[i + 1 :]}]:
                del tuned[regime]
            logger.info("%s: injected in %.0f s; answering", method, time.perf_counter() - t0)
            m: dict[str, Any] = {"cost": knows.cost, "recall": {}}
            flags[method] = {}
            for split, questions in asked.items():
                m["recall"][split], flags[method][split] = recall(
                    knows, questions, w["max_new_tokens"]
                )
            regime = TUNINGS.get(method)
            if regime is not None and regime not in weights_leaked:
                weights_leaked[regime], artifacts = evaluate_model(
                    knows.model, tokenizer, corpus, _probe(w, regime), ref_stats,
                    knows.cost["trainable_parameters"], seed,
                )  # fmt: skip
                bits, held_out = artifacts["unintended"]  # above held-out, as the table
                bits_by_regime[regime] = bits - held_out.mean()
            if regime is not None:
                m["weights_leakage"] = weights_leaked[regime]
                member_bits[method] = bits_by_regime[regime]
            if knows.store is not None:  # every store holds the same vectors: attack it once
                leaked = leaked or store_leakage(knows, kb, w["store_attack"], seed)
                m["store_leakage"] = leaked
            m["reveal_share"] = reveal(
                knows, kb, kb.splits["members"][: w["reveal_people"]], w["max_new_tokens"]
            )
            logger.info("%s: canary exposure, then deleting people", method)
            m["exposure"] = {
                "members": exposure_of(knows, m, kb.canary_indices("members")),
                "deleted_before": exposure_of(knows, m, kb.canary_indices("deleted")),
            }
            before = m["recall"]["deleted"]["all"]["contains"]
            m["deletion"] = {**knows.delete_people(kb.splits["deleted"]), "recall_before": before}
            f, deleted_canaries = flags[method], kb.canary_indices("deleted")
            if knows.store is None:  # nothing was deleted: greedy answers, leakage as before
                after, f["deleted_after"] = m["recall"]["deleted"], f["deleted"]
                m["exposure"]["deleted_after"] = m["exposure"]["deleted_before"]
            else:
                after, f["deleted_after"] = recall(knows, asked["deleted"], w["max_new_tokens"])
                m["exposure"]["deleted_after"] = exposure_of(knows, m, deleted_canaries)
            m["deletion"]["recall_after"] = after["all"]["contains"]
            # A store forgets by deleting rows; weights forget only by retraining without them.
            m["deletion"]["forget_cost_s"] = knows.cost["train_seconds"]
            m["wall_seconds"] = time.perf_counter() - t0
            results[method] = m
            logger.info("%s: done in %.1f min", method, m["wall_seconds"] / 60)
            tracker.log(flatten_metrics(m, f"{method}/", scalars_only=True))
            if knows.store is not None:
                knows.store.destroy()
            del knows
        findings = compute_findings(
            results, flags, forms, reps, member_bits, w.get("n_bootstrap", 1000), seed
        )
        rows = [method_row(k, v) for k, v in results.items()]
        files = write_report(rows, results, findings, run_dir, tracker)
    out = {"knowledge_base": kb.summary(), "methods": results, "table": rows, "budget": budget,
           "findings": findings, "files": files,
           "total_seconds": time.perf_counter() - started}  # fmt: skip
    save_json(run_dir / "weights_vs_activations.json", out)
    return out
