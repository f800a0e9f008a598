"""Fluency of reconstructions: their perplexity under a fixed reference LM.

A search that climbs the embedder's cosine can end on word salad that scores well on token F1
and cosine; the perplexity of the texts under a language model none of the methods was tuned
on tells sentences from word lists. Reported beside the targets' own perplexity, so a method
is fluent when its ratio to the targets' is near 1 (vec2text reports BLEU for the same
reason; arXiv 2310.06816).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from invert.env import default_device
from invert.errors import EmptyInputError


class ReferenceLM:
    """Scores texts with a causal LM: corpus perplexity ``exp(total NLL / total tokens)``.

    Every token of a text is scored (the LM's BOS token, or EOS where it has none, is put in
    front as context), so one-word texts count too; blank texts are left out.

    Args:
        name_or_path: ``smollm2`` (the packaged LM), a local folder or a hub id.
        batch_size: Texts per forward pass.
        max_tokens: Texts are cut to this many tokens.
    """

    def __init__(self, name_or_path: str = "smollm2", batch_size: int = 32, max_tokens: int = 64) -> None:
        from invert.models.pretrained_lm import load_causal_lm, load_tokenizer

        self.name = name_or_path
        self.model = load_causal_lm(name_or_path).to(default_device()).eval()
        self.tokenizer = load_tokenizer(name_or_path)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        start = self.tokenizer.bos_token_id
        self.start_id = start if start is not None else self.tokenizer.eos_token_id
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.start_id if self.start_id is not None else 0

    @torch.no_grad()
    def token_nll(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Per text: (total negative log-likelihood in nats, tokens scored); blanks give (0, 0)."""
        out: list[tuple[float, int]] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.max_tokens]
                   if t.strip() else [] for t in chunk]  # fmt: skip
            rows = [[self.start_id, *row] if self.start_id is not None else row for row in ids]
            width = max(2, max(len(r) for r in rows))
            batch = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(batch)
            for i, row in enumerate(rows):
                batch[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, : len(row)] = 1
            logits = self.model(input_ids=batch.to(device), attention_mask=mask.to(device)).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            target = batch[:, 1:].to(device)
            scored = mask[:, 1:].to(device).bool()
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * scored
            for i, row in enumerate(ids):
                out.append((float(nll[i].sum()), len(row)))
        return out

    def perplexity(self, texts: Sequence[str]) -> float:
        """Corpus perplexity of the non-blank ``texts``.

        Raises:
            EmptyInputError: Every text is blank.
        """
        scores = self.token_nll(texts)
        tokens = sum(n for _, n in scores)
        if tokens == 0:
            raise EmptyInputError("no non-blank texts to score")
        return math.exp(sum(nll for nll, _ in scores) / tokens)
