"""A word n-gram language model as the search's fluency term: cheap enough to score every
candidate of every round.

Cosine alone lets the edit search end on word salad that embeds close ("she her had the follow
brandy at with dinner to"). Scoring each candidate with a neural LM costs a forward pass per
text, thousands per round on a CPU; an n-gram model fit on the training texts costs a few dict
lookups and still tells "she followed dinner with a brandy" from its shuffles. The score it
adds is the mean log-probability per word (end of sentence included), so long and short texts
compare fairly.

Interpolated absolute discounting (Ney, Essen & Kneser 1994) with a uniform floor over the
vocabulary plus one unknown word: every text gets a finite score.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from invert.data.text import word_tokens
from invert.errors import InvertError

BOS, EOS = "<s>", "</s>"


class WordNgramLM:
    """Interpolated absolute-discounting n-gram model over lowercase ``\\w+`` words.

    Args:
        order: n (2 = bigram, 3 = trigram).
        discount: Absolute discount subtracted from every seen count (0 < d < 1).
    """

    def __init__(self, order: int = 3, discount: float = 0.75) -> None:
        if order < 1 or not 0 < discount < 1:
            raise InvertError(f"need order >= 1 and 0 < discount < 1, got {order}, {discount}")
        self.order, self.discount = order, discount
        # counts[context][word] for every context length 0..order-1 (context as a tuple).
        self.counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        self.vocabulary: set[str] = set()
        self.totals: dict[tuple[str, ...], int] = {}
        self._cache: dict[str, float] = {}

    @classmethod
    def fit(cls, texts: Iterable[str], order: int = 3, discount: float = 0.75) -> WordNgramLM:
        """Counts the n-grams of ``texts``.

        Raises:
            InvertError: The texts hold no words.
        """
        model = cls(order, discount)
        for text in texts:
            words = [BOS] * (order - 1) + word_tokens(text) + [EOS]
            model.vocabulary.update(words[order - 1 :])
            for i in range(order - 1, len(words)):
                for n in range(order):
                    model.counts[tuple(words[i - n : i])][words[i]] += 1
        if not model.vocabulary - {EOS}:
            raise InvertError("the word LM needs training texts with words; got none")
        model.totals = {context: sum(seen.values()) for context, seen in model.counts.items()}
        return model

    def _probability(self, context: tuple[str, ...], word: str) -> float:
        p = 1.0 / (len(self.vocabulary) + 1)  # uniform floor, one slot for unknown words
        for n in range(len(context) + 1):
            suffix = context[len(context) - n :]
            seen = self.counts.get(suffix)
            if not seen:
                continue
            total = self.totals[suffix]
            kept = max(seen.get(word, 0) - self.discount, 0.0) / total
            p = kept + self.discount * len(seen) / total * p
        return p

    def mean_log_prob(self, text: str) -> float:
        """Mean natural-log probability per word of ``text`` (end of sentence included)."""
        if (cached := self._cache.get(text)) is not None:
            return cached
        words = [BOS] * (self.order - 1) + word_tokens(text) + [EOS]
        logs = [
            math.log(self._probability(tuple(words[i - self.order + 1 : i]), words[i]))
            for i in range(self.order - 1, len(words))
        ]
        self._cache[text] = score = sum(logs) / len(logs)
        return score
