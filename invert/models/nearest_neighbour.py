"""The retrieval baseline: answer with the closest training text by embedder cosine.

Every headline inversion number is reported next to this one: an inverter that does not beat
retrieval from its own training set has learned nothing about the embedding space.
"""

from __future__ import annotations

import torch

from invert.embedders.base import check_embeddings


class NearestNeighbourInverter:
    """Returns, for each embedding, the training text whose embedding is closest in cosine.

    Args:
        texts: Training texts.
        embeddings: Their embeddings ``[n, dim]``.
        embedder_name: Which embedder made them (for error messages).
    """

    def __init__(self, texts: list[str], embeddings: torch.Tensor, embedder_name: str = "") -> None:
        self.texts = list(texts)
        self.embedder_name = embedder_name
        emb = check_embeddings(embeddings)
        self.index = torch.nn.functional.normalize(emb, dim=-1)

    @property
    def dim(self) -> int:
        return int(self.index.shape[1])

    def search(self, embeddings: torch.Tensor, k: int = 1, batch_size: int = 1024) -> torch.Tensor:
        """Indices ``[n, k]`` of the k most similar training texts."""
        queries = check_embeddings(
            embeddings, self.dim, f"the nearest-neighbour index (built on {self.embedder_name})"
        )
        queries = torch.nn.functional.normalize(queries, dim=-1)
        k = min(k, len(self.texts))
        out = [
            (queries[s : s + batch_size] @ self.index.T).topk(k, dim=1).indices
            for s in range(0, len(queries), batch_size)
        ]
        return torch.cat(out)

    def invert(self, embeddings: torch.Tensor, k: int = 1) -> list[str] | list[list[str]]:
        """The closest training text per embedding (or the k closest when ``k > 1``)."""
        idx = self.search(embeddings, k)
        if k == 1:
            return [self.texts[i] for i in idx[:, 0].tolist()]
        return [[self.texts[i] for i in row] for row in idx.tolist()]
