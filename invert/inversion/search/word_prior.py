"""The search's word prior: per example, each word's probability of being in the target.

Cosine alone rewards any text that embeds close, including word salad that shares few words
with the target. The prior (from a bag-of-words model, arXiv 2004.00053) adds the text's
expected token F1 to the score, so of two texts the embedder rates alike the one made of
likelier words is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from invert.data.text import word_tokens
from invert.models.bag_of_words import BagOfWordsInverter


@dataclass
class WordPrior:
    """Per example, each word's probability of being in the target, as a search score term.

    Attributes:
        probabilities: One ``{word: P(word in target)}`` per example (lowercase ``\\w+``
            words, as :func:`invert.inversion.metrics.token_f1` counts them); a word not listed has
            probability 0.
        lengths: Expected word count of each target (e.g. the mean of its seed texts').
        weight: Weight of the expected F1 beside the cosine.
        repeats: Per word, P(the target holds it >= k times | it holds it) for k = 2, 3, ...
            (token F1 counts repeats); a word not listed is counted once (None: every word).
    """

    probabilities: list[dict[str, float]]
    lengths: list[float]
    weight: float = 0.3
    repeats: dict[str, list[float]] | None = None

    def expected_f1(self, example: int, text: str) -> float:
        """Token F1 of ``text`` in expectation over the prior: twice the expected matches
        over the text's length plus the target's expected length (a ratio of expectations).
        The c-th copy of a word matches with P(word) x P(>= c copies | present)."""
        words = word_tokens(text)
        probs, repeats = self.probabilities[example], self.repeats or {}
        matches = 0.0
        for word, count in Counter(words).items():
            if (p := probs.get(word, 0.0)) > 0:
                matches += p * (1.0 + sum(repeats.get(word, [])[: count - 1]))
        return 2.0 * matches / (len(words) + self.lengths[example]) if words else 0.0

    @classmethod
    def from_bag_of_words(
        cls,
        model: BagOfWordsInverter,
        embeddings: torch.Tensor,
        seeds: Sequence[Sequence[str]],
        weight: float,
        top_k: int = 256,
    ) -> WordPrior:
        """The bag-of-words model's word probabilities (its ``top_k`` likeliest per target),
        its training texts' repeat rates and, as expected lengths, the mean word count of
        each example's seed texts."""
        words, probs = model.top_words(embeddings, top_k)
        tables = [dict(zip(w, p, strict=True)) for w, p in zip(words, probs, strict=True)]
        lengths = [sum(len(word_tokens(t)) for t in row) / max(1, len(row)) for row in seeds]
        listed = {w for table in tables for w in table}
        rates = model.repeat_rates.tolist()
        repeats = {w: rates[model.index[w]] for w in listed if rates[model.index[w]][0] > 0}
        return cls(tables, lengths, weight, repeats)
