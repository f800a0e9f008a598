"""Any Hugging Face encoder with mean or CLS pooling, as an :class:`Embedder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from invert.embedders.base import Embedder
from invert.embedders.differentiable import DifferentiableEncoder, mean_pool
from invert.embedders.identity import source_identity
from invert.env import default_device, require_hub
from invert.errors import InvertError

POOLINGS = ("mean", "cls")


class HFPoolingEmbedder(Embedder):
    """Encodes with ``AutoModel`` and pools the last hidden state.

    Args:
        model: Local folder or hub id of an encoder (BERT, RoBERTa, T5-encoder, ...).
        pooling: ``mean`` over non-padding tokens (as sentence-transformers) or ``cls``.
        max_length: Truncate inputs to this many tokens.
        normalize: L2-normalize the pooled vectors.
        device: Torch device; ``None`` picks CUDA when available.
    """

    def __init__(
        self,
        model: str,
        pooling: str = "mean",
        max_length: int = 128,
        normalize: bool = False,
        device: str | None = None,
    ) -> None:
        if pooling not in POOLINGS:
            raise InvertError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        local = Path(model).expanduser()
        if not local.exists():
            require_hub(model, "HF encoder", "minilm")
        path = str(local) if local.exists() else model
        self.name = local.name if local.exists() else model
        self._source = path
        self.device = default_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.pooling, self.max_length, self.normalize = pooling, max_length, normalize
        self.dim = int(self.model.config.hidden_size)

    def identity(self) -> dict[str, Any]:
        """Weights by content hash (or hub id), pooling, input length and normalization."""
        return super().identity() | source_identity(self._source) | {
            "pooling": self.pooling, "max_length": int(self.max_length),
            "normalize": bool(self.normalize),
        }  # fmt: skip

    @torch.no_grad()
    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        chunks = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=f"embedding ({self.name})", disable=not show_progress):
            batch = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            chunks.append(self._pool(hidden, batch["attention_mask"]).float().cpu())
        return torch.cat(chunks)

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, attention_mask)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def differentiable_encoder(self) -> DifferentiableEncoder:
        """The encoder run from token vectors, then pooled as :meth:`encode` pools."""

        def forward(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            attention_mask = attention_mask.to(inputs_embeds.device)  # a tokenizer's CPU mask
            hidden = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
            return self._pool(hidden, attention_mask)

        table = self.model.get_input_embeddings().weight
        return DifferentiableEncoder(self.tokenizer, table, forward, self.max_length)
