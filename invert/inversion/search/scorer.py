"""Cosine of candidate texts to target embeddings, with the real embedder in the loop.

Shared by every search (edit search, zero-shot LM search) and by vec2text-style correction
(arXiv 2310.06816): each distinct text is embedded once across all steps.
"""

from __future__ import annotations

import torch

from invert.embedders.base import Embedder


class CosineScorer:
    """Cosine of texts to each target, embedding every distinct text once across all steps."""

    def __init__(self, targets: torch.Tensor, embedder: Embedder) -> None:
        self.targets = torch.nn.functional.normalize(targets.float(), dim=-1)
        self.embedder, self.vectors = embedder, {}
        self.calls = 0

    def embed_new(self, texts: set[str]) -> None:
        """One batched call for the non-blank texts not seen before."""
        new = sorted(t for t in texts if t.strip() and t not in self.vectors)
        if new:
            self.calls += 1
            for text, vec in zip(new, self.embedder.encode(new), strict=True):
                self.vectors[text] = vec

    def vector(self, text: str) -> torch.Tensor:
        return self.vectors.get(text, torch.zeros(self.targets.shape[1]))

    def cosine(self, example: int, text: str) -> float:
        if text not in self.vectors:
            return -1.0  # blank text: worse than any real candidate
        return float(
            torch.nn.functional.normalize(self.vectors[text], dim=-1) @ self.targets[example]
        )
