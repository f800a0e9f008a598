"""The one embedder interface, and the checks every embedding passes through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from invert.embedders.differentiable import DifferentiableEncoder
from invert.errors import DimensionMismatchError, EmptyInputError, InvalidEmbeddingError


class Embedder(ABC):
    """Maps texts to fixed-size vectors. Implementations set ``name`` and ``dim``.

    ``encode`` always returns a float32 CPU tensor of shape ``[len(texts), dim]``.
    """

    name: str
    dim: int
    # False for embedders that can only return vectors they were given (stored vectors):
    # metrics that re-embed a reconstruction, and searches, need one that is True.
    embeds_new_text: bool = True

    @abstractmethod
    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        """Encodes a non-empty list of non-empty texts."""

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Embeds ``texts`` in batches.

        Args:
            texts: Non-empty strings.
            batch_size: Texts per forward pass.
            show_progress: Progress bar; by default shown for more than 1,000 texts.

        Returns:
            Float32 tensor ``[len(texts), dim]`` on the CPU.

        Raises:
            EmptyInputError: ``texts`` is empty or holds an empty string.
        """
        texts = check_texts(texts)
        if show_progress is None:
            show_progress = len(texts) > 1000
        vectors = self._encode(texts, batch_size, show_progress)
        return vectors.detach().to("cpu", torch.float32).clone()

    def identity(self) -> dict[str, Any]:
        """What determines this embedder's vectors (the embedding cache's key).

        Subclasses add what their vectors depend on: the weights' content hash or hub
        revision, pooling, normalization, input length. Two embedders with equal identities
        must give the same vectors.
        """
        return {"class": type(self).__name__, "name": self.name, "dim": int(self.dim),
                "dtype": "float32"}  # fmt: skip

    def differentiable_encoder(self) -> DifferentiableEncoder | None:
        """The embedder's forward pass from token vectors, or None where there is none.

        Gradient-guided edits (:class:`invert.inversion.search.embedder_edits.EmbedderGradientProposer`) need
        it; precomputed vectors and hashed test embedders have none.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def check_texts(texts: Sequence[str]) -> list[str]:
    """Returns ``texts`` as a list, refusing an empty list, non-strings and blank strings."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise EmptyInputError("got an empty list of texts; pass at least one non-empty string")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise EmptyInputError(f"text {i} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise EmptyInputError(f"text {i} is empty or blank; drop it or fill it in")
    return texts


def check_embeddings(
    embeddings: torch.Tensor,
    expected_dim: int | None = None,
    source: str = "the inverter",
) -> torch.Tensor:
    """Validates a batch of embeddings and returns it as a 2-D float32 tensor.

    Args:
        embeddings: ``[n, dim]`` or ``[dim]`` tensor or array.
        expected_dim: The dimension the consumer was built for, if any.
        source: Who expects ``expected_dim`` (e.g. "the inverter (trained on all-MiniLM-L6-v2)").

    Raises:
        InvalidEmbeddingError: Not numeric, wrong rank, empty, or holds NaN/inf.
        DimensionMismatchError: Dimension differs from ``expected_dim``.
    """
    try:
        emb = torch.as_tensor(embeddings)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InvalidEmbeddingError(f"embeddings are not a numeric array: {err}") from err
    if not (emb.is_floating_point() or emb.dtype in (torch.int8, torch.uint8, torch.int32, torch.int64)):
        raise InvalidEmbeddingError(f"embeddings have dtype {emb.dtype}; expected floats")
    emb = emb.detach().to("cpu", torch.float32)
    if emb.numel() == 0:
        raise InvalidEmbeddingError(
            f"got no embeddings (shape {tuple(emb.shape)}); pass at least one [dim] vector"
        )
    if emb.dim() == 1:
        emb = emb.unsqueeze(0)
    if emb.dim() != 2:
        raise InvalidEmbeddingError(
            f"embeddings must be [n, dim] (or one [dim] vector); got shape {tuple(emb.shape)}"
        )
    if emb.shape[0] == 0:
        raise InvalidEmbeddingError("got zero embeddings; pass at least one vector")
    if expected_dim is not None and emb.shape[1] != expected_dim:
        raise DimensionMismatchError(
            f"embedding has dim {emb.shape[1]} but {source} expects {expected_dim}; pass "
            f"embeddings from the same embedder or train a new inverter for this one"
        )
    bad = ~torch.isfinite(emb).all(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise InvalidEmbeddingError(
            f"{len(rows)} embedding(s) hold NaN or inf (rows {rows[:10]}"
            f"{'...' if len(rows) > 10 else ''}); drop or recompute them"
        )
    return emb
