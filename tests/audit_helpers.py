"""A fast deterministic embedder and tiny stores/inverters for the privacy-audit tests."""

from __future__ import annotations

import re
import zlib

import torch

from invert.embedders.base import Embedder

_WORD = re.compile(r"\w+")


class HashEmbedder(Embedder):
    """Bag of words through a fixed random projection: each word's vector is seeded by its
    CRC32, so the same text always maps to the same unit vector, with no model to load."""

    def __init__(self, dim: int = 64, name: str = "hash-bow-test") -> None:
        self.dim, self.name = dim, name
        self._cache: dict[str, torch.Tensor] = {}

    def _word(self, word: str) -> torch.Tensor:
        if word not in self._cache:
            gen = torch.Generator().manual_seed(zlib.crc32(word.encode()))
            self._cache[word] = torch.randn(self.dim, generator=gen)
        return self._cache[word]

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        rows = []
        for text in texts:
            words = _WORD.findall(text.lower()) or ["<empty>"]
            rows.append(torch.stack([self._word(w) for w in words]).sum(0))
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def tiny_trained_inverter(embedder: Embedder, texts: list[str], out_dir, steps: int = 5):
    """A tiny prefix-LM inverter for ``embedder``, trained a few steps on ``texts``."""
    from helpers import TINY_LLAMA, make_trainer, tokenizer_path

    from invert.models import build_inverter

    torch.manual_seed(0)
    model = build_inverter(
        "prefix_lm",
        embedder.name,
        embedder.dim,
        lm_config=TINY_LLAMA,
        tokenizer=tokenizer_path(),
        tuning="full",
        num_prefix_tokens=2,
        projection_hidden_dim=32,
        max_text_tokens=12,
    )
    make_trainer(
        model,
        out_dir,
        texts=texts,
        embeddings=embedder.encode(texts),
        max_steps=steps,
        lr=3e-3,
        batch_size=8,
    ).train()
    return model.eval()


def build_chroma_store(path, records: list[dict], embedder: Embedder, collection="records"):
    """A real Chroma persistent collection of the records' texts and embeddings."""
    import chromadb

    texts = [r["text"] for r in records]
    col = chromadb.PersistentClient(path=str(path)).get_or_create_collection(collection)
    col.add(
        ids=[f"rec-{i}" for i in range(len(texts))],
        embeddings=embedder.encode(texts).numpy(),
        documents=texts,
    )
    return {"type": "chroma", "path": str(path), "collection": collection}
