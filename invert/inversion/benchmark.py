"""Throughput of each stage of inversion, measured in one process so ratios compare."""

from __future__ import annotations

import glob
import json
import os
import time
from typing import Any

import torch

from invert.data.splits import prepare_corpus
from invert.embedders.sentence_transformer import SentenceTransformerEmbedder
from invert.env import resolve_mixed_precision
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.models.loading import build_inverter
from invert.training.inversion_data import pair_collator


def run_inverter_benchmark(
    corpus: str = "wikipedia",
    num_texts: int = 2000,
    train_steps: int = 5,
    batch_size: int = 16,
    generate_n: int = 32,
    tuning: str = "lora",
    mixed_precision: str = "bf16",
    results_glob: str = "outputs/train_inverter/*/results.json",
    search_n: int = 32,
) -> dict[str, Any]:
    """Measures embedding, training and generation throughput of the quick-start setup.

    Args:
        corpus: Corpus whose training split supplies the texts.
        num_texts: Texts embedded for the embedding rate.
        train_steps: Timed optimizer steps (one untimed warm-up step first).
        batch_size: Training batch size.
        generate_n: Embeddings inverted (greedy) for the generation rate.
        tuning: Prefix-LM tuning regime (``lora``, ``full``, ``prefix``).
        mixed_precision: ``bf16`` or ``no`` for the training steps (``bf16`` runs in fp32
            where it would be emulated: :func:`invert.env.resolve_mixed_precision`).
        results_glob: Where quick-start ``results.json`` files are; the newest is reported.
        search_n: Held-out embeddings inverted by the guided edit search, timed against the
            encoder-bound rate (every text it embedded, at ``embedding_texts_per_s``).

    Returns:
        A JSON-ready dict of rates and the newest quick-start metrics (if any).
    """
    mixed_precision = resolve_mixed_precision(mixed_precision)
    embedder = SentenceTransformerEmbedder("minilm")
    inverter = build_inverter("prefix_lm", embedder.name, embedder.dim, tuning=tuning, max_text_tokens=32)
    splits = prepare_corpus(corpus, max_tokens=32, tokenizer=inverter.tokenizer)
    texts = splits["train"]["text"][:num_texts]

    embedder.encode(texts[:128], batch_size=128)  # warm-up: the first call pays one-off costs
    start = time.perf_counter()
    embeddings = embedder.encode(texts, batch_size=128)
    embed_rate = len(texts) / (time.perf_counter() - start)

    collate = pair_collator(inverter.tokenizer, 32)
    optimizer = torch.optim.AdamW([p for p in inverter.parameters() if p.requires_grad], lr=1e-4)
    inverter.train()
    examples = tokens = 0
    elapsed = 0.0
    for step in range(train_steps + 1):
        rows = range(step * batch_size, (step + 1) * batch_size)
        batch = collate([(texts[i % len(texts)], embeddings[i % len(texts)]) for i in rows])
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_precision == "bf16"):
            loss = inverter(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step > 0:  # the first step pays one-off allocation costs
            elapsed += time.perf_counter() - start
            examples += batch_size
            tokens += int(batch["attention_mask"].sum())

    start = time.perf_counter()
    outputs = inverter.generate_texts(embeddings[:generate_n], batch_size=generate_n)
    gen_seconds = time.perf_counter() - start
    new_tokens = sum(len(inverter.tokenizer(o, add_special_tokens=False)["input_ids"]) + 1 for o in outputs)
    # The inverter as the search's edit proposer: one teacher-forced pass per text.
    proposer = InverterEditProposer(inverter, embeddings[:generate_n], batch_size=generate_n)
    start = time.perf_counter()
    proposer(range(generate_n), texts[:generate_n])
    propose_rate = generate_n / (time.perf_counter() - start)
    # A later round: new texts of the same examples, whose conditioning a prefix LM has cached.
    start = time.perf_counter()
    proposer(range(generate_n), [texts[(i + 1) % generate_n] for i in range(generate_n)])
    later_rate = generate_n / (time.perf_counter() - start)
    report: dict[str, Any] = {
        "device": "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads",
        "embedder": embedder.name,
        "embedding_texts_per_s": round(embed_rate, 1),
        "train": {
            "tuning": tuning,
            "mixed_precision": mixed_precision,
            "trainable_parameters": sum(p.numel() for p in inverter.parameters() if p.requires_grad),
            "examples_per_s": round(examples / elapsed, 2),
            "tokens_per_s": round(tokens / elapsed, 1),
        },
        "generation": {
            "inversions_per_s": round(generate_n / gen_seconds, 2),
            "new_tokens_per_s": round(new_tokens / gen_seconds, 1),
        },
        "inverter_edit_proposals": {"texts_per_s": round(propose_rate, 2),
                                    "later_rounds_texts_per_s": round(later_rate, 2)},
    }
    held = splits["test"]["text"][:search_n]
    report["guided_search"] = _guided_search_rate(held, embedder, texts, embeddings, embed_rate)
    # With the embedder's gradient proposing edits: its backward passes are encoder work that
    # embeds no candidate, so they count against the fraction.
    report["guided_search_gradient_edits"] = _guided_search_rate(
        held, embedder, texts, embeddings, embed_rate, {"gradient_edits": 16, "edits_per_round": 8}
    )
    found = sorted(glob.glob(results_glob), key=os.path.getmtime)
    if found:
        report["quickstart"] = {"results": found[-1], **json.loads(open(found[-1]).read())}
    else:
        report["quickstart"] = "no results.json yet: run `make quickstart` first"
    return report


def _guided_search_rate(held: list[str], embedder: Any, train_texts: list[str],
                        train_embeddings: torch.Tensor, embed_rate: float,
                        search: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Times :func:`guided_search` (retrieval seeds, 6 rounds) against the encoder alone."""
    from invert.inversion.search.edit_search import guided_search
    from invert.models.nearest_neighbour import NearestNeighbourInverter

    n = len(held)
    targets = embedder.encode(held)
    baseline = NearestNeighbourInverter(train_texts, train_embeddings, embedder.name)
    start = time.perf_counter()
    result = guided_search(targets, embedder, None, baseline, None, {"num_rounds": 6, **(search or {})})
    seconds = time.perf_counter() - start
    return {
        "inversions": n,
        "mean_cosine": round(sum(result.cosines) / n, 3),
        "seconds_per_100": round(100 * seconds / n, 1),
        "texts_embedded": result.embedded_texts,
        # 1.0 would mean the search costs nothing beyond its encoder calls.
        "encoder_bound_fraction": round(result.embedded_texts / embed_rate / seconds, 3),
    }
