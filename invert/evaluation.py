"""Evaluate an inverter (and the nearest-neighbour baseline) on held-out pairs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PreTrainedModel

from invert.api import invert_embeddings
from invert.edit_search import guided_search
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
    # The search is seeded by the best inverter run above and is charged for its time.
    seeding = next((m for m in ("inverter_rerank", "inverter") if m in runs), None)
    if search is not None and (seeding is not None or baseline is not None):
        runs["guided_search"] = lambda: guided_search(
            embeddings, embedder, outputs.get(seeding), baseline, bag_of_words, search,
            show_progress,
        ).texts
    results: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = [{"target": t} for t in texts]
    seconds_by_method: dict[str, float] = {}
    for method, run in runs.items():
        start = time.perf_counter()
        predictions = outputs[method] = run()
        seconds = seconds_by_method[method] = time.perf_counter() - start
        if method == "guided_search" and seeding is not None:
            seconds += seconds_by_method[seeding]
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
