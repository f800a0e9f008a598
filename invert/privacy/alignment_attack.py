"""ALGEN's few-shot alignment attack on transformed embeddings (Chen et al. 2025, arXiv:2502.11308).

A secret orthogonal transform (:class:`invert.privacy.defenses.OrthogonalEmbedder`) keeps
retrieval intact but hides the space from a naive inverter; a linear map fitted on a few
leaked (text, vector) pairs undoes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from invert.embedders.base import Embedder, check_embeddings, check_texts
from invert.errors import DimensionMismatchError, InvertError


class AlignmentAttack:
    """ALGEN's few-shot alignment (arXiv:2502.11308): a least-squares linear map ``W``.

    From ``k`` leaked pairs (text, defended vector) the attacker embeds the texts with its own
    embedder and solves ``min_W ‖X W − Y‖²`` (X: defended vectors, Y: the attacker's vectors;
    minimum-norm solution when ``k < dim``). Any defended vector is then mapped into the
    attacker's space, where the attacker's own inverter reads it.

    Args:
        attacker: The attacker's embedder (the one its inverter was trained on).
    """

    def __init__(self, attacker: Embedder) -> None:
        self.attacker = attacker
        self.weight: torch.Tensor | None = None

    def fit(self, leaked_texts: Sequence[str], defended_vectors: torch.Tensor) -> AlignmentAttack:
        """Fits ``W`` on the leaked pairs; returns ``self``."""
        texts = check_texts(leaked_texts)
        x = check_embeddings(defended_vectors).double()
        if len(texts) != len(x):
            raise DimensionMismatchError(f"{len(texts)} leaked texts for {len(x)} vectors")
        y = self.attacker.encode(texts).double()
        self.weight = torch.linalg.lstsq(x, y, driver="gelsd").solution.float()
        return self

    def map(self, defended_vectors: torch.Tensor) -> torch.Tensor:
        """Maps defended vectors into the attacker's embedding space."""
        if self.weight is None:
            raise InvertError("call fit(leaked_texts, defended_vectors) before map()")
        x = check_embeddings(defended_vectors, self.weight.shape[0], "the fitted alignment")
        return x @ self.weight
