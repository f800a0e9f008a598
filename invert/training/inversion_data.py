"""(text, embedding) pairs as a torch dataset, and the collate function inverters train on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from invert.models.base import tokenize_targets


class PairDataset(Dataset):
    """Index ``i`` → ``(text_i, embedding_i)`` (and ``hints_i`` when given); computed up front.

    Args:
        texts: Target texts.
        embeddings: Their embeddings.
        hints: Optional ``[n, hint_tokens]`` word-hint token ids (:mod:`invert.training.hints`).
    """

    def __init__(self, texts: list[str], embeddings: torch.Tensor, hints: torch.Tensor | None = None) -> None:
        if len(texts) != len(embeddings) or (hints is not None and len(hints) != len(texts)):
            given = "" if hints is None else f" and {len(hints)} hint rows"
            raise ValueError(f"{len(texts)} texts but {len(embeddings)} embeddings{given}")
        self.texts, self.embeddings, self.hints = list(texts), embeddings, hints

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        if self.hints is None:
            return self.texts[i], self.embeddings[i]
        return self.texts[i], self.embeddings[i], self.hints[i]


def pair_collator(
    tokenizer: PreTrainedTokenizerBase, max_text_tokens: int
) -> Callable[[list[tuple[Any, ...]]], dict[str, torch.Tensor]]:
    """Batches pairs into ``embeddings`` + tokenized targets (``input_ids``, mask, labels), plus
    ``hint_ids`` when the dataset carries hints."""

    def collate(items: list[tuple[Any, ...]]) -> dict[str, torch.Tensor]:
        texts = [item[0] for item in items]
        batch = tokenize_targets(tokenizer, texts, max_text_tokens)
        batch["embeddings"] = torch.stack([item[1] for item in items])
        if len(items[0]) > 2:
            batch["hint_ids"] = torch.stack([item[2] for item in items])
        return batch

    return collate
