"""An embedder's forward pass from input-token vectors, for gradient-guided text edits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


@dataclass
class DifferentiableEncoder:
    """The parts of an embedder that let autograd see which token swaps move its output.

    Attributes:
        tokenizer: The embedder's own (fast) tokenizer.
        input_embeddings: Its token-vector table ``[vocab, hidden]`` (not a copy; do not edit).
        forward: ``(inputs_embeds [B, L, hidden], attention_mask [B, L]) -> [B, dim]``, the
            same vectors ``encode`` returns for those tokens, with autograd enabled.
        max_length: The embedder truncates inputs to this many tokens.
    """

    tokenizer: PreTrainedTokenizerBase
    input_embeddings: torch.Tensor
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    max_length: int

    @property
    def device(self) -> torch.device:
        """Where the embedder's weights live."""
        return self.input_embeddings.device


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the non-padding token states, as sentence-transformers pools."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
