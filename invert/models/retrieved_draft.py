"""The nearest training sentence as a draft the prefix LM reads beside its word hints.

Retrieval alone already returns a sentence near the target (the nearest-neighbour baseline);
an LM briefly trained to read that sentence can copy what it shares with the target and change
what the embedding's word hints say differs, instead of writing a sentence from nothing.
Retrieval-then-edit is the shape of vec2text's correction loop (Morris et al. 2023, arXiv
2310.06816) and of retrieve-and-edit generation (Hashimoto et al. 2018, arXiv 1812.01194); here
the "hypothesis" is a retrieved training sentence and the editor is the hinted LM.

The LM trains on leave-one-out drafts: each training pair reads its nearest *other* training
sentence, as far from it as a held-out sentence's nearest training sentence is from that one,
so it learns to edit a near miss rather than copy an exact answer (the "learn to copy" failure
of correctors trained on in-fold hypotheses).

The index (normalized embeddings and the drafts' token ids of every training pair) is saved in
the inverter's safetensors, so the folder alone reloads; it holds the training texts as token
ids, as the nearest-neighbour baseline holds them as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from invert.errors import InvertError


def draft_token_ids(token_lists: Sequence[Sequence[int]], width: int, pad_id: int) -> torch.Tensor:
    """``[n, width]``: each text's first ``width`` token ids, right-padded with ``pad_id``."""
    return torch.tensor([list(row[:width]) + [pad_id] * (width - len(row[:width])) for row in token_lists],
                        dtype=torch.long)  # fmt: skip


class RetrievedDraftIndex(nn.Module):
    """Embedding -> the token ids of the nearest indexed text, padded to ``draft_tokens``.

    Args:
        embedding_dim: Dimension of the embeddings.
        draft_tokens: Tokens of each draft (longer texts are cut, shorter ones padded).
        corpus_size: Indexed texts (0 until :meth:`set_corpus`; a saved model records it so
            the buffers have their size before the weights load).
        pad_id: Token id that pads a short draft (the hint separator: a newline).
    """

    def __init__(self, embedding_dim: int, draft_tokens: int, corpus_size: int = 0, pad_id: int = 0) -> None:
        super().__init__()
        if draft_tokens < 1 or corpus_size < 0:
            raise InvertError(f"need draft_tokens >= 1 and corpus_size >= 0, got {draft_tokens}, {corpus_size}")
        self.embedding_dim, self.draft_tokens, self.pad_id = embedding_dim, draft_tokens, pad_id
        self.register_buffer("keys", torch.zeros(corpus_size, embedding_dim))
        self.register_buffer("token_ids", torch.full((corpus_size, draft_tokens), pad_id, dtype=torch.long))

    def __len__(self) -> int:
        return len(self.keys)

    def set_corpus(self, token_lists: Sequence[Sequence[int]], embeddings: torch.Tensor) -> None:
        """Indexes ``token_lists`` (each text's LM token ids) under their ``embeddings``.

        Raises:
            InvertError: An empty corpus, counts that differ, a wrong dimension or non-finite
                embeddings.
        """
        if len(token_lists) == 0:
            raise InvertError("the draft index needs at least one text; got an empty corpus")
        if embeddings.ndim != 2 or embeddings.shape != (len(token_lists), self.embedding_dim):
            raise InvertError(
                f"the draft index needs [{len(token_lists)}, {self.embedding_dim}] embeddings "
                f"(one per text), got {list(embeddings.shape)}"
            )
        if not torch.isfinite(embeddings).all():
            raise InvertError("the draft index's embeddings hold NaN or inf")
        device = self.keys.device
        self.keys = nn.functional.normalize(embeddings.detach().float(), dim=-1).to(device)
        self.token_ids = draft_token_ids(token_lists, self.draft_tokens, self.pad_id).to(device)

    def nearest(self, embeddings: torch.Tensor, exclude_self: bool = False, chunk: int = 1024) -> torch.Tensor:
        """``[n]`` index of each embedding's nearest indexed text by cosine.

        Args:
            embeddings: ``[n, embedding_dim]``.
            exclude_self: Row i of ``embeddings`` is indexed text i (the training pairs): skip
                it, so each pair gets its nearest *other* text (leave-one-out).
            chunk: Queries per similarity block (bounds memory to ``chunk x corpus``).

        Raises:
            InvertError: An empty index, a wrong dimension, or ``exclude_self`` with a corpus
                of one text or a query count that is not the corpus size.
        """
        if len(self) == 0:
            raise InvertError(
                "the draft index is empty: index the training texts first (PrefixLMInverter.set_draft_corpus; "
                "a training run does it before it trains)"
            )
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise InvertError(
                f"the draft index expects [n, {self.embedding_dim}] embeddings, got {list(embeddings.shape)}"
            )
        if exclude_self and (len(embeddings) != len(self) or len(self) < 2):
            raise InvertError(
                f"leave-one-out drafts need the {len(self)} indexed texts themselves (>= 2), "
                f"got {len(embeddings)} queries"
            )
        queries = nn.functional.normalize(embeddings.detach().float().to(self.keys.device), dim=-1)
        best = []
        for start in range(0, len(queries), chunk):
            sims = queries[start : start + chunk] @ self.keys.T
            if exclude_self:
                rows = torch.arange(len(sims), device=sims.device)
                sims[rows, rows + start] = float("-inf")
            best.append(sims.argmax(dim=1))
        return torch.cat(best)

    def drafts(self, embeddings: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
        """``[n, draft_tokens]`` token ids of each embedding's nearest indexed text."""
        return self.token_ids[self.nearest(embeddings, exclude_self)]
