"""A model-free token n-gram model that prices a dataset in bits (Witten-Bell interpolation).

The scaling probe (Morris et al. 2025, arXiv:2505.24832) compares a text dataset's information
content with a model's capacity. The true entropy of text is unknown; the NLL of the dataset
under an n-gram model fitted on a disjoint part of the same corpus is an upper-bound-style
estimate of it that no neural model shaped. Witten-Bell interpolation (Witten & Bell 1991)
needs no tuned discount: a context's weight on its lower order grows with the number of
distinct tokens seen after it. Orders bottom out in a uniform distribution over the
vocabulary, so every token has a finite price.

Rows follow :mod:`invert.memorization.token_scoring`: column 0 is a BOS context and is never
scored, and the context of the first tokens is padded with that BOS.
"""

from __future__ import annotations

import math

import torch

from invert.errors import InvertError


def _lookup(keys: torch.Tensor, values: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """``values`` at ``query`` in the sorted ``keys``, 0 where a query key is absent."""
    if keys.numel() == 0:
        return torch.zeros_like(query)
    index = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
    return torch.where(keys[index] == query, values[index], torch.zeros_like(query))


class TokenNgramModel:
    """Interpolated Witten-Bell n-gram over integer token rows, counted and scored in torch.

    An n-gram is packed into one int64 key (base ``vocab_size``), so counting is one
    ``torch.unique`` per order and scoring one ``searchsorted``: a million tokens take seconds.

    Args:
        order: n (4: three tokens of context).
        vocab_size: Token ids lie in ``[0, vocab_size)``; the uniform floor is over all of them.
    """

    def __init__(self, order: int, vocab_size: int) -> None:
        if order < 1 or vocab_size < 2:
            raise InvertError(f"need order >= 1 and vocab_size >= 2, got {order}, {vocab_size}")
        if order * math.log2(vocab_size) >= 63:
            raise InvertError(
                f"order {order} over {vocab_size} ids overflows an int64 key; lower the order"
            )
        self.order, self.vocab_size = order, vocab_size
        # Per context length k: sorted (context, token) keys with counts, and sorted context
        # keys with their total count and number of distinct following tokens.
        self.tables: list[tuple[torch.Tensor, ...]] = []

    def _windows(self, rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Context keys (length k) and (context, token) keys of every scored token of ``rows``."""
        if rows.dim() != 2 or rows.shape[1] < 2:
            raise InvertError(
                f"rows must be [n, length >= 2] with a BOS first, got {tuple(rows.shape)}"
            )
        pad = self.order - 1
        padded = torch.cat([rows[:, :1].expand(-1, pad), rows], dim=1).long()
        targets = padded[:, pad + 1 :]
        context = torch.zeros_like(targets)
        for j in range(k, 0, -1):  # the token j places back is the next digit of the key
            context = context * self.vocab_size + padded[:, pad + 1 - j : padded.shape[1] - j]
        return context, context * self.vocab_size + targets

    @classmethod
    def fit(cls, rows: torch.Tensor, order: int, vocab_size: int) -> TokenNgramModel:
        """Counts the n-grams of ``rows`` (``[n, L]``, BOS in column 0)."""
        model = cls(order, vocab_size)
        if rows.numel() and int(rows.max()) >= vocab_size:
            raise InvertError(f"token id {int(rows.max())} >= vocab_size {vocab_size}")
        for k in range(order):
            _, grams = model._windows(rows, k)
            grams, counts = torch.unique(grams.flatten(), return_counts=True)
            contexts, types = torch.unique_consecutive(grams // vocab_size, return_counts=True)
            totals = torch.zeros_like(contexts).index_add_(
                0, torch.repeat_interleave(torch.arange(contexts.numel()), types), counts
            )
            model.tables.append((grams, counts, contexts, totals, types))
        return model

    def token_probabilities(self, rows: torch.Tensor) -> torch.Tensor:
        """``[n, L-1]`` float64 probabilities of each token after the first given its context."""
        if not self.tables:
            raise InvertError("the n-gram model has no counts; build it with TokenNgramModel.fit")
        p = torch.full(rows[:, 1:].shape, 1.0 / self.vocab_size, dtype=torch.float64)
        for k, (grams, counts, contexts, totals, types) in enumerate(self.tables):
            context, gram = self._windows(rows, k)
            seen = _lookup(grams, counts, gram).double()
            total = _lookup(contexts, totals, context).double()
            kinds = _lookup(contexts, types, context).double()
            # An unseen context keeps the lower order's estimate unchanged.
            p = torch.where(total > 0, (seen + kinds * p) / (total + kinds).clamp(min=1), p)
        return p

    def sequence_bits(self, rows: torch.Tensor) -> torch.Tensor:
        """``[n]`` float64 NLL in bits of each row's scored tokens."""
        return -torch.log2(self.token_probabilities(rows)).sum(dim=1)
