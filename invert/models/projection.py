"""Embedding → k vectors in a language model's input space (prefix or pseudo-tokens)."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingProjection(nn.Module):
    """MLP from a sentence embedding to ``num_tokens`` vectors of width ``d_model``.

    As in vec2text (arXiv 2310.06816) and GEIA (arXiv 2305.03010): Linear → GELU → Linear,
    reshaped to tokens. A LayerNorm per output vector, with its gain set to the LM's token
    embedding RMS, keeps the prefix on the scale the pretrained LM expects from step 0.

    Args:
        embedding_dim: Dimension of the input sentence embeddings.
        d_model: Width of the LM's input embeddings.
        num_tokens: How many vectors to emit.
        hidden_dim: Width of the hidden layer.
        dropout: Dropout after the activation.
        output_scale: Initial LayerNorm gain (the RMS of the LM's token embeddings).
    """

    def __init__(
        self,
        embedding_dim: int,
        d_model: int,
        num_tokens: int,
        hidden_dim: int,
        dropout: float = 0.0,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_tokens, self.d_model = num_tokens, d_model
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_tokens * d_model),
        )
        self.norm = nn.LayerNorm(d_model)
        with torch.no_grad():
            self.norm.weight.fill_(output_scale)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[b, embedding_dim]`` → ``[b, num_tokens, d_model]``."""
        # Unit-norm inputs: embedders differ in scale, and the inverter should not care.
        embeddings = nn.functional.normalize(embeddings.float(), dim=-1) * embeddings.shape[-1] ** 0.5
        out = self.mlp(embeddings.to(self.mlp[0].weight.dtype))
        return self.norm(out.view(-1, self.num_tokens, self.d_model))
