"""(text, embedding) pairs as a torch dataset, and the collate function inverters train on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from invert.models.base import tokenize_targets


class PairDataset(Dataset):
    """Index ``i`` → ``(text_i, embedding_i)``, plus ``{name: row_i}`` of the word inputs given
    (``hint_ids``, ``draft_ids``); computed up front.

    Args:
        texts: Target texts.
        embeddings: Their embeddings.
        hints: Optional ``[n, hint_tokens]`` word-hint token ids (:mod:`invert.training.hints`).
        drafts: Optional ``[n, draft_tokens]`` leave-one-out draft token ids
            (:mod:`invert.models.retrieved_draft`).
    """

    def __init__(
        self,
        texts: list[str],
        embeddings: torch.Tensor,
        hints: torch.Tensor | None = None,
        drafts: torch.Tensor | None = None,
    ) -> None:
        self.extras = {k: v for k, v in (("hint_ids", hints), ("draft_ids", drafts)) if v is not None}
        wrong = {k: len(v) for k, v in self.extras.items() if len(v) != len(texts)}
        if len(texts) != len(embeddings) or wrong:
            given = "".join(f" and {n} {k} rows" for k, n in wrong.items())
            raise ValueError(f"{len(texts)} texts but {len(embeddings)} embeddings{given}")
        self.texts, self.embeddings = list(texts), embeddings

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        if not self.extras:
            return self.texts[i], self.embeddings[i]
        return self.texts[i], self.embeddings[i], {k: v[i] for k, v in self.extras.items()}


def pair_collator(
    tokenizer: PreTrainedTokenizerBase, max_text_tokens: int
) -> Callable[[list[tuple[Any, ...]]], dict[str, torch.Tensor]]:
    """Batches pairs into ``embeddings`` + tokenized targets (``input_ids``, mask, labels), plus
    ``hint_ids`` / ``draft_ids`` when the dataset carries them."""

    def collate(items: list[tuple[Any, ...]]) -> dict[str, torch.Tensor]:
        texts = [item[0] for item in items]
        batch = tokenize_targets(tokenizer, texts, max_text_tokens)
        batch["embeddings"] = torch.stack([item[1] for item in items])
        if len(items[0]) > 2:
            for name in items[0][2]:
                batch[name] = torch.stack([item[2][name] for item in items])
        return batch

    return collate
