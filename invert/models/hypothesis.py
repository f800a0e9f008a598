"""Hypothesis inverter (vec2text's zero-step model, arXiv 2310.06816).

embedding → MLP → k pseudo-token vectors → T5-architecture encoder-decoder → text. Offline it
is built from a config (random init: no pretrained T5 ships on any package registry); online
any seq2seq checkpoint name (e.g. ``t5-base``) supplies pretrained weights.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, PretrainedConfig, PreTrainedModel

from invert.models.base import InverterMixin
from invert.models.projection import EmbeddingProjection


class HypothesisInverterConfig(PretrainedConfig):
    """Config of a :class:`HypothesisInverter`; records the embedder it inverts.

    Args:
        embedder_name: Name of the embedder whose vectors this model inverts.
        embedder_dim: Their dimension.
        seq2seq_config: The encoder-decoder's config as a dict (``model_type`` included).
        seq2seq_name_or_path: Where pretrained weights came from, if any (provenance only).
        num_prefix_tokens: k, the number of pseudo-tokens fed to the encoder (vec2text: 16).
        projection_hidden_dim: Hidden width of the embedding → pseudo-token MLP.
        projection_dropout: Dropout inside that MLP.
        max_text_tokens: Target length in tokens used in training (generation default).
    """

    model_type = "invert_hypothesis"

    def __init__(
        self,
        embedder_name: str = "",
        embedder_dim: int = 384,
        seq2seq_config: dict[str, Any] | None = None,
        seq2seq_name_or_path: str = "",
        num_prefix_tokens: int = 16,
        projection_hidden_dim: int = 1024,
        projection_dropout: float = 0.1,
        max_text_tokens: int = 32,
        **kwargs: Any,
    ) -> None:
        self.embedder_name, self.embedder_dim = embedder_name, embedder_dim
        self.seq2seq_config = seq2seq_config or {}
        self.seq2seq_name_or_path = seq2seq_name_or_path
        self.num_prefix_tokens, self.projection_hidden_dim = num_prefix_tokens, projection_hidden_dim
        self.projection_dropout, self.max_text_tokens = projection_dropout, max_text_tokens
        super().__init__(**kwargs)


class HypothesisInverter(InverterMixin, PreTrainedModel):
    """Embedding → pseudo-tokens → encoder-decoder → text."""

    config_class = HypothesisInverterConfig
    base_model_prefix = "inverter"
    _no_split_modules: list[str] = []

    def __init__(
        self, config: HypothesisInverterConfig, seq2seq: PreTrainedModel | None = None
    ) -> None:
        """Builds the model from ``config``; ``seq2seq``, when given, supplies pretrained weights."""
        super().__init__(config)
        pretrained_state = (
            {k: v.detach().clone() for k, v in seq2seq.state_dict().items()} if seq2seq else None
        )
        # T5's own head: tied to the input embeddings, decoder outputs scaled by d_model**-0.5.
        # (transformers 5 ties T5's head whatever the config says, and tie_word_embeddings=False
        # only turns the scaling off: a fresh model then starts at ~10x the ln(V) loss.)
        self.seq2seq = AutoModelForSeq2SeqLM.from_config(AutoConfig.for_model(**config.seq2seq_config))
        d_model = self.seq2seq.get_input_embeddings().embedding_dim
        self.projection = EmbeddingProjection(
            config.embedder_dim,
            d_model,
            config.num_prefix_tokens,
            config.projection_hidden_dim,
            config.projection_dropout,
        )
        self.post_init()
        if pretrained_state is not None:
            self.seq2seq.load_state_dict(pretrained_state, strict=False)

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, torch.nn.Linear) and module.weight.device.type != "meta":
            torch.nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def encoder_inputs(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pseudo-token vectors and their attention mask."""
        dtype = self.seq2seq.get_input_embeddings().weight.dtype
        inputs = self.projection(embeddings).to(dtype)
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        return inputs, mask

    def forward(
        self,
        embeddings: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> Any:
        """Teacher-forced pass; ``input_ids``/``attention_mask`` are the target text's."""
        inputs, mask = self.encoder_inputs(embeddings)
        if labels is None:
            labels = input_ids.masked_fill(attention_mask == 0, -100)
        return self.seq2seq(
            inputs_embeds=inputs,
            attention_mask=mask,
            labels=labels,
            decoder_attention_mask=attention_mask,
        )

    def token_logits(
        self, embeddings: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """``[n, L, vocab]``: row j is the logits for token j given the embedding and tokens < j."""
        return self(embeddings, input_ids, attention_mask).logits

    def _generate_ids(self, embeddings: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        inputs, mask = self.encoder_inputs(embeddings)
        return self.seq2seq.generate(inputs_embeds=inputs, attention_mask=mask, **kwargs)
