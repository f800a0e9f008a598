"""Evaluate an inverter (and the nearest-neighbour baseline) on held-out pairs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PreTrainedModel

from invert.api import invert_embeddings
from invert.edit_search import edit_search
from invert.embedders.base import Embedder
from invert.metrics import reconstruction_metrics
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.nearest_neighbour import NearestNeighbourInverter


def evaluate_methods(
    inverter: PreTrainedModel | None,
    embedder: Embedder,
    texts: list[str],
    embeddings: torch.Tensor,
    baseline: NearestNeighbourInverter | None = None,
    num_candidates: int = 1,
    num_beams: int = 1,
    batch_size: int = 32,
    show_progress: bool = True,
    bag_of_words: BagOfWordsInverter | None = None,
    search: Mapping[str, Any] | None = None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Reconstructs ``texts`` from ``embeddings`` with each method and scores every one.

    Methods: ``nearest_neighbour`` (retrieval baseline), ``bag_of_words`` (its predicted word
    set; only token F1 means anything) when given, ``inverter`` (greedy or beam),
    ``inverter_rerank`` (``num_candidates`` beams re-ranked by embedder cosine) when
    ``num_candidates > 1``, and ``guided_search`` when ``search`` is given: the inverter's
    output and the ``nn_seeds`` nearest training texts, improved by
    :func:`invert.edit_search.edit_search` with the bag-of-words model's
    ``proposal_words`` guesses as the words to try. Each gets ``seconds_per_100`` beside the
    quality metrics (the search's includes the inverter run that seeds it).

    Args:
        search: ``num_rounds``, ``edits_per_round``, ``beam_width``, ``nn_seeds`` and
            ``proposal_words`` (ignored without ``bag_of_words``: the seeds' own words are
            tried instead).

    Returns:
        ``({method: metrics}, rows)`` where each row holds the target and every method's
        reconstruction, token F1 and cosine.
    """
    runs: dict[str, Any] = {}
    outputs: dict[str, list[str]] = {}
    if baseline is not None:
        runs["nearest_neighbour"] = lambda: baseline.invert(embeddings)
    if bag_of_words is not None:
        threshold = float((search or {}).get("bow_threshold", 0.5))
        runs["bag_of_words"] = lambda: bag_of_words.generate_texts(embeddings, threshold)
    if inverter is not None:
        runs["inverter"] = lambda: invert_embeddings(
            embeddings, inverter, num_beams=num_beams, batch_size=batch_size,
            show_progress=show_progress,
        )
        if num_candidates > 1:
            runs["inverter_rerank"] = lambda: invert_embeddings(
                embeddings, inverter, embedder=embedder, num_beams=num_beams,
                num_candidates=num_candidates, batch_size=batch_size, show_progress=show_progress,
            )
    if search is not None and (inverter is not None or baseline is not None):
        runs["guided_search"] = lambda: _guided_search(
            embeddings, embedder, outputs, baseline, bag_of_words, search, show_progress
        )
    results: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = [{"target": t} for t in texts]
    seconds_by_method: dict[str, float] = {}
    for method, run in runs.items():
        start = time.perf_counter()
        predictions = outputs[method] = run()
        seconds = seconds_by_method[method] = time.perf_counter() - start
        if method == "guided_search":
            seconds += seconds_by_method.get("inverter", 0.0)
        metrics, per_example = reconstruction_metrics(
            predictions, texts, target_embeddings=embeddings, embedder=embedder
        )
        metrics["seconds_per_100"] = 100 * seconds / len(texts)
        results[method] = metrics
        for row, example in zip(rows, per_example, strict=True):
            row[method] = example["prediction"]
            row[f"{method}_token_f1"] = example["token_f1"]
            row[f"{method}_cosine"] = example["cosine"]
            row[f"{method}_bleu"] = example["bleu"]
    return results, rows


def _guided_search(
    embeddings: torch.Tensor,
    embedder: Embedder,
    outputs: Mapping[str, list[str]],
    baseline: NearestNeighbourInverter | None,
    bag_of_words: BagOfWordsInverter | None,
    search: Mapping[str, Any],
    show_progress: bool,
) -> list[str]:
    """Seeds: the inverter's texts and the nearest training texts; words: bag-of-words guesses."""
    n = len(embeddings)
    seeds: list[list[str]] = [[] for _ in range(n)]
    for method in ("inverter_rerank", "inverter"):
        if method in outputs:
            for row, text in zip(seeds, outputs[method], strict=True):
                row.append(text)
            break
    k = int(search.get("nn_seeds", 4))
    if baseline is not None and k > 0:
        neighbours = baseline.invert(embeddings, k=k)
        for row, near in zip(seeds, neighbours, strict=True):
            row.extend([near] if isinstance(near, str) else near)
    if bag_of_words is not None:
        words = bag_of_words.predict_words(embeddings, top_k=int(search.get("proposal_words", 24)))
    else:
        words = [[w for t in row for w in t.split()] for row in seeds]
    # A blank hypothesis from an untrained inverter must not leave an example with no seed.
    seeds = [row if any(t.strip() for t in row) else [" ".join(w[:8]) or "the"]
             for row, w in zip(seeds, words, strict=True)]  # fmt: skip
    result = edit_search(
        embeddings, embedder, seeds, words,
        num_rounds=int(search.get("num_rounds", 6)),
        edits_per_round=int(search.get("edits_per_round", 16)),
        beam_width=int(search.get("beam_width", 1)),
        seed=int(search.get("seed", 0)), show_progress=show_progress,
    )  # fmt: skip
    return result.texts
