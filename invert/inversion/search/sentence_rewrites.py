"""The hinted inverter as a rewriter: the search's best words, written back as a sentence.

The edit search climbs the embedder's cosine one word at a time and ends on a bag of the right
words in a wrong order; the hinted prefix LM (:mod:`invert.models.prefix_lm`) was trained to
turn a noisy bag of words into the sentence. A rewrite decodes again from the target's
embedding with the words of the example's best kept text as the hints (and as the decoding
pull, :mod:`invert.models.hint_bias`), so the sentence it writes enters the search's pool and
the embedder (with the fluency term) decides whether it stays. It is the search's counterpart
of vec2text's correction step (arXiv 2310.06816): a model re-reads the target beside the
current hypothesis; here the hypothesis reaches it as the word hints it already reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from invert.configs import SearchConfig
from invert.embedders.base import Embedder
from invert.errors import InvertError
from invert.inversion.search.scorer import CosineScorer
from invert.models.retrieved_draft import draft_token_ids


class SentenceRewriter:
    """Search proposer: every ``every``-th round, one rewrite of each example's best kept text.

    Call it with example indices and their kept texts (best first, as
    :func:`invert.inversion.search.edit_search.edit_search` passes them); it returns, per
    text, the rewrite of the first kept text of each example and nothing for the others.

    Args:
        inverter: A prefix LM that reads word hints (``hint_tokens > 0``), tokenizer attached.
        embeddings: ``[n, dim]`` target embeddings (row i belongs to example i).
        every: Rewrite on rounds ``every``, ``2 x every``, ... (1: every round).
        word_probability: The hint probability given to the tokens of the text rewritten
            (the head's own, if higher): they lead the hints and get the pull of a token the
            head is that sure of.
        batch_size: Texts per generate call.

    An inverter that reads retrieved drafts (``draft_tokens > 0``) reads the text rewritten as
    its draft too, in place of the nearest training sentence: it was trained to edit a near
    miss toward the hints, and the search's text is a nearer miss than retrieval's (vec2text's
    correction step, arXiv 2310.06816, with the search's text as the hypothesis).
    """

    def __init__(
        self,
        inverter: PreTrainedModel,
        embeddings: torch.Tensor,
        every: int = 4,
        word_probability: float = SearchConfig.rewrite_word_probability,
        batch_size: int = 32,
    ) -> None:
        if getattr(inverter, "hint_head", None) is None or inverter.tokenizer is None:
            raise InvertError(
                f"{type(inverter).__name__} cannot rewrite: it needs word hints (a prefix LM "
                "trained with model.hint_tokens > 0) and an attached tokenizer"
            )
        if every < 1 or not 0 < word_probability <= 1 or batch_size < 1:
            raise InvertError(
                f"need every >= 1, 0 < word_probability <= 1 and batch_size >= 1, got {every}, "
                f"{word_probability}, {batch_size}"
            )
        self.inverter, self.tokenizer = inverter, inverter.tokenizer
        self.embeddings = inverter.check_embeddings(embeddings)
        self.every, self.word_probability, self.batch_size = every, word_probability, batch_size
        token_ids = inverter.hint_head.token_ids.cpu()
        # LM token id -> its column in the hint head (-1: outside the hint vocabulary).
        self.column = torch.full((int(token_ids.max()) + 1,), -1, dtype=torch.long)
        self.column[token_ids] = torch.arange(len(token_ids))
        self.calls = self.rewrites = 0

    def hints(self, examples: Sequence[int], texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hint_ids [m, hint_tokens], probabilities [m, hint_vocabulary])`` for each text.

        The head's probabilities for the target, with each token the text holds raised to at
        least ``word_probability``; the hints are the likeliest tokens under them.
        """
        head = self.inverter.hint_head
        probabilities = self.inverter.hint_probabilities(self.embeddings[list(examples)]).cpu().clone()
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        for row, ids in enumerate(encoded):
            ids = torch.tensor([t for t in ids if t < len(self.column)], dtype=torch.long)
            columns = self.column[ids]
            columns = columns[columns >= 0]
            probabilities[row, columns] = probabilities[row, columns].clamp_min(self.word_probability)
        k = min(int(self.inverter.config.hint_tokens), probabilities.shape[1])
        hint_ids = head.token_ids.cpu()[probabilities.topk(k, dim=-1).indices]
        return hint_ids, probabilities

    def drafts(self, texts: Sequence[str]) -> torch.Tensor | None:
        """``[m, draft_tokens]``: the texts themselves as drafts (None: the inverter reads none)."""
        if getattr(self.inverter, "draft_index", None) is None:
            return None
        config = self.inverter.config
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return draft_token_ids(encoded, config.draft_tokens, config.hint_separator_id)

    def rewrite(self, examples: Sequence[int], texts: Sequence[str], **generate_kwargs: Any) -> list[Any]:
        """One sentence per (example, text): decoded from the example's target embedding with
        the text's words as the hints (``generate_kwargs`` go to ``generate_texts``: with
        ``num_return_sequences`` > 1, a list of sentences per text)."""
        if len(examples) != len(texts):
            raise InvertError(f"got {len(examples)} examples for {len(texts)} texts")
        device = next(self.inverter.parameters()).device
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(examples[start : start + self.batch_size])
            chunk = texts[start : start + self.batch_size]
            hint_ids, probabilities = self.hints(batch, chunk)
            if (drafts := self.drafts(chunk)) is not None:
                generate_kwargs["draft_ids"] = drafts.to(device)
            out.extend(self.inverter.generate_texts(
                self.embeddings[batch], batch_size=len(batch), hint_ids=hint_ids.to(device),
                hint_probabilities=probabilities.to(device), **generate_kwargs,
            ))  # fmt: skip
        self.rewrites += len(out)
        return out

    def __call__(self, examples: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        """The search's proposer call: rewrites on every ``every``-th call, else nothing."""
        self.calls += 1
        proposals: list[list[str]] = [[] for _ in texts]
        if self.calls % self.every:
            return proposals
        firsts = {}
        for place, example in enumerate(examples):
            firsts.setdefault(example, place)
        places = list(firsts.values())
        for place, text in zip(places, self.rewrite(list(firsts), [texts[p] for p in places]), strict=True):
            if text.strip():
                proposals[place].append(text)
        return proposals


def closest_rewrites(
    rewriter: SentenceRewriter,
    embedder: Embedder,
    texts: Sequence[str],
    samples: int = SearchConfig.sentence_samples,
    seed: int = SearchConfig.seed,
    top_p: float = 0.9,
    temperature: float = 0.8,
) -> list[str]:
    """Each example's text rewritten as sentences, and the one the embedder puts closest.

    The search's best texts score high in cosine and read as word lists; the hinted inverter
    writes sentences from their words. Per example the candidates are the greedy rewrite and
    ``samples`` sampled ones (nucleus sampling, seeded: the same seed gives the same texts);
    the real embedder keeps the closest to the target, so every kept text is the LM's own
    sentence.

    Args:
        rewriter: Holds the inverter and the target embeddings (row i: example i).
        embedder: The real embedder, which scores every candidate.
        texts: One text per target whose words the rewrites read.
        samples: Sampled rewrites per example beside the greedy one (0: greedy only).
        seed: Seeds the sampling (the global RNG is left as it was).
        top_p, temperature: The sampling's nucleus and temperature.

    Raises:
        InvertError: ``texts`` does not hold one text per target, or ``samples`` < 0.
    """
    n = len(rewriter.embeddings)
    if len(texts) != n or samples < 0:
        raise InvertError(f"need one text per target ({n}) and samples >= 0; got {len(texts)}, {samples}")
    examples = list(range(n))
    candidates = [[t] for t in rewriter.rewrite(examples, texts)]
    if samples:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for row, sampled in zip(candidates, rewriter.rewrite(
                examples, texts, do_sample=True, num_return_sequences=samples, top_p=top_p,
                temperature=temperature,
            ), strict=True):  # fmt: skip
                row.extend(sampled)
    candidates = [[c for c in dict.fromkeys(row) if c.strip()] or [texts[i]] for i, row in enumerate(candidates)]
    scorer = CosineScorer(rewriter.embeddings, embedder)
    scorer.embed_new({c for row in candidates for c in row})
    return [max(row, key=lambda c, i=i: scorer.cosine(i, c)) for i, row in enumerate(candidates)]
