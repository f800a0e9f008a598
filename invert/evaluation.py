"""Evaluate an inverter (and the nearest-neighbour baseline) on held-out pairs."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import PreTrainedModel

from invert.api import invert_embeddings
from invert.embedders.base import Embedder
from invert.metrics import reconstruction_metrics
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
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Reconstructs ``texts`` from ``embeddings`` with each method and scores every one.

    Methods: ``nearest_neighbour`` (retrieval baseline), ``inverter`` (greedy or beam), and
    ``inverter_rerank`` (``num_candidates`` beams re-ranked by embedder cosine) when
    ``num_candidates > 1``. Each gets ``seconds_per_100`` beside the quality metrics.

    Returns:
        ``({method: metrics}, rows)`` where each row holds the target and every method's
        reconstruction, token F1 and cosine.
    """
    runs: dict[str, Any] = {}
    if baseline is not None:
        runs["nearest_neighbour"] = lambda: baseline.invert(embeddings)
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
    results: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = [{"target": t} for t in texts]
    for method, run in runs.items():
        start = time.perf_counter()
        predictions = run()
        seconds = time.perf_counter() - start
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
