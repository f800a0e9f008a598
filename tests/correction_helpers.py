"""A deterministic tiny embedder, and a wrapper that records every text it embeds."""

from __future__ import annotations

import zlib

import torch
from helpers import EMBED_DIM, EMBEDDER_NAME

from invert.data.text import word_tokens
from invert.embedders.base import Embedder


class HashWordEmbedder(Embedder):
    """Sum of fixed random vectors, one per lowercase word (seeded by the word's crc32).

    Cosine then rewards word overlap, so a better reconstruction scores higher — the property
    correction and guided search rely on — at no model cost.
    """

    def __init__(self, name: str = EMBEDDER_NAME, dim: int = EMBED_DIM) -> None:
        self.name, self.dim = name, dim

    def _word(self, word: str) -> torch.Tensor:
        return torch.randn(
            self.dim, generator=torch.Generator().manual_seed(zlib.crc32(word.encode()))
        )

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        rows = []
        for text in texts:
            words = word_tokens(text)
            vec = sum((self._word(w) for w in words), torch.zeros(self.dim))
            rows.append(vec if words else torch.full((self.dim,), 1e-3))
        return torch.stack(rows)


class CountingEmbedder(Embedder):
    """Wraps an embedder and keeps the list of texts passed to each ``encode`` call."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.calls: list[list[str]] = []

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, show_progress=False)
