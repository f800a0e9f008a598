"""(text, embedding) pairs as a torch dataset, and the collate function inverters train on."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from invert.models.base import tokenize_targets


class PairDataset(Dataset):
    """Index ``i`` → ``(text_i, embedding_i)``; embeddings are computed once, up front."""

    def __init__(self, texts: list[str], embeddings: torch.Tensor) -> None:
        if len(texts) != len(embeddings):
            raise ValueError(f"{len(texts)} texts but {len(embeddings)} embeddings")
        self.texts, self.embeddings = list(texts), embeddings

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor]:
        return self.texts[i], self.embeddings[i]


def pair_collator(
    tokenizer: PreTrainedTokenizerBase, max_text_tokens: int
) -> Callable[[list[tuple[str, torch.Tensor]]], dict[str, torch.Tensor]]:
    """Batches pairs into ``embeddings`` + tokenized targets (``input_ids``, mask, labels)."""

    def collate(items: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        texts = [t for t, _ in items]
        batch = tokenize_targets(tokenizer, texts, max_text_tokens)
        batch["embeddings"] = torch.stack([e for _, e in items])
        return batch

    return collate
