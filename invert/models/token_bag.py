"""Which of the LM's tokens an embedded text holds: the word hints a prefix LM reads.

The bag-of-words idea (Song & Raghunathan 2020, arXiv 2004.00053) over the inverter's own
token vocabulary instead of words: an MLP maps an embedding to one independent probability
per token of the ``vocabulary_size`` commonest training tokens. Its likeliest tokens, as LM
token ids, go into the prefix LM's input beside the embedding prefix, so the LM starts from
words it can read at once (a continuous prefix learned from a few thousand examples carries
little; the words the embedding gives away carry a lot).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn

from invert.errors import InvertError
from invert.models.multilabel import fit_multilabel


class TokenBagHead(nn.Module):
    """Embedding -> multi-label distribution over a fixed set of LM token ids.

    Args:
        embedding_dim: Dimension of the embeddings.
        vocabulary_size: How many token ids it scores (its ``token_ids`` buffer is set by
            :meth:`set_vocabulary`; the size is fixed so a saved model reloads).
        hidden_dim: Hidden width of the MLP.
    """

    def __init__(self, embedding_dim: int, vocabulary_size: int, hidden_dim: int = 512) -> None:
        super().__init__()
        if vocabulary_size < 1:
            raise InvertError(f"the token bag needs vocabulary_size >= 1, got {vocabulary_size}")
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, vocabulary_size)
        )
        self.register_buffer("token_ids", torch.arange(vocabulary_size, dtype=torch.long))

    def set_vocabulary(self, token_lists: Sequence[Sequence[int]]) -> None:
        """Scores the commonest token ids of ``token_lists`` (document frequency); if they hold
        fewer distinct ids than the head's size, the rest are ids absent from them (they are
        never a target, so the head learns to rank them last)."""
        size = len(self.token_ids)
        counts = Counter(t for row in token_lists for t in set(row))
        common = [t for t, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:size]]
        present = set(common)
        filler = (t for t in range(size + len(present) + 1) if t not in present)
        ids = common + [next(filler) for _ in range(size - len(common))]
        self.token_ids.copy_(torch.tensor(ids, dtype=torch.long))

    def targets(self, token_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """Multi-hot ``[n, vocabulary_size]`` token sets (ids outside the vocabulary dropped)."""
        column = {int(t): c for c, t in enumerate(self.token_ids.tolist())}
        out = torch.zeros(len(token_lists), len(column))
        for row, ids in enumerate(token_lists):
            out[row, [column[t] for t in set(ids) if t in column]] = 1.0
        return out

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits from unit-normalized embeddings (embedders differ in scale)."""
        dtype = self.mlp[0].weight.dtype
        x = nn.functional.normalize(embeddings.float(), dim=-1) * embeddings.shape[-1] ** 0.5
        return self.mlp(x.to(dtype))

    def fit(
        self,
        token_lists: Sequence[Sequence[int]],
        embeddings: torch.Tensor,
        epochs: int = 10,
        lr: float = 2e-3,
        seed: int = 0,
        mixed_precision: str = "no",
    ) -> list[float]:
        """Sets the vocabulary from ``token_lists`` and trains on them (BCE); per-epoch losses.
        ``mixed_precision``: as :func:`~invert.models.multilabel.fit_multilabel`'s."""
        if len(token_lists) != len(embeddings):
            raise InvertError(f"{len(token_lists)} token lists for {len(embeddings)} embeddings")
        self.set_vocabulary(token_lists)
        self.requires_grad_(True)
        losses = fit_multilabel(
            self, embeddings.float(), self.targets(token_lists), epochs, lr=lr, seed=seed,
            mixed_precision=mixed_precision,
        )
        self.requires_grad_(False)
        return losses

    @torch.no_grad()
    def top_tokens(self, embeddings: torch.Tensor, k: int) -> torch.Tensor:
        """``[n, k]`` LM token ids, likeliest first."""
        logits = self(embeddings.to(self.token_ids.device))
        return self.token_ids[logits.topk(min(k, logits.shape[-1]), dim=-1).indices]
