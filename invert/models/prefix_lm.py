"""Prefix-LM inverter (GEIA-style, arXiv 2305.03010): embedding → k prefix vectors → causal LM.

The LM is pretrained (offline: the packaged SmolLM2-135M) and tuned in one of three regimes:
``lora`` (default: LoRA adapters through peft plus the projection), ``full`` (everything), or
``prefix`` (LM frozen; only the projection that makes the prefix learns).

With ``hint_tokens > 0`` the LM also reads words: a :class:`~invert.models.token_bag.TokenBagHead`
fit on the training pairs (before the LM, see :mod:`invert.training.hints`) names the
``hint_tokens`` LM tokens it thinks the text holds, and their token embeddings follow the prefix,
then a separator token, then the text: ``[prefix; hint tokens; separator; text]``. The LM trains
on hints predicted out of fold, so it learns to repair a wrong bag rather than copy a right one.

With ``draft_tokens > 0`` it also reads a draft: the nearest training sentence to the embedding
(:mod:`invert.models.retrieved_draft`), ``[prefix; hint tokens; draft tokens; separator; text]``,
trained on leave-one-out drafts, so it learns to edit a retrieved near miss toward the hints.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from invert.errors import InvertError
from invert.models.base import InverterMixin
from invert.models.hint_bias import CoverageBias, DraftCopyBias, HintCoverageBias
from invert.models.projection import EmbeddingProjection
from invert.models.retrieved_draft import RetrievedDraftIndex
from invert.models.token_bag import TokenBagHead

TUNINGS = ("lora", "full", "prefix")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class PrefixLMInverterConfig(PretrainedConfig):
    """Config of a :class:`PrefixLMInverter`; records the embedder it inverts.

    Args:
        embedder_name: Name of the embedder whose vectors this model inverts.
        embedder_dim: Their dimension.
        lm_config: The causal LM's config as a dict (``model_type`` included).
        lm_name_or_path: Where the LM's pretrained weights came from (provenance only).
        num_prefix_tokens: k, the number of prefix vectors.
        projection_hidden_dim: Hidden width of the embedding → prefix MLP.
        projection_dropout: Dropout inside that MLP.
        prefix_scale: Initial gain of the prefix LayerNorm (the LM's token-embedding RMS).
        tuning: ``lora``, ``full`` or ``prefix``.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA settings.
        max_text_tokens: Target length in tokens used in training (generation default).
        hint_tokens: Word-hint tokens the LM reads after the prefix (0: none).
        hint_vocabulary: LM tokens the hint head scores (the commonest in training).
        hint_hidden_dim: Hidden width of the hint head.
        hint_separator_id: Token id between the hints and the text (set by the builder).
        hint_folds, hint_epochs: How the hint heads are fit (:mod:`invert.training.hints`).
        hint_bias: At decoding, nats of bonus per nat of ``log(p / hint_bias_floor)`` for each
            likely hint token not yet written (:mod:`invert.models.hint_bias`; 0: none).
        hint_bias_floor: Hint-head probabilities at or below it get no bonus.
        draft_tokens: Tokens of the retrieved draft the LM reads after the hints (0: none).
        draft_corpus_size: Texts in the draft index (set when it is filled, so a saved model
            reloads with buffers of the right size).
        draft_bias: At decoding, nats of bonus for each draft token not yet written
            (:class:`invert.models.hint_bias.DraftCopyBias`; 0: none).
    """

    model_type = "invert_prefix_lm"

    def __init__(
        self,
        embedder_name: str = "",
        embedder_dim: int = 384,
        lm_config: dict[str, Any] | None = None,
        lm_name_or_path: str = "",
        num_prefix_tokens: int = 8,
        projection_hidden_dim: int = 1536,
        projection_dropout: float = 0.0,
        prefix_scale: float = 1.0,
        tuning: str = "lora",
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | tuple[str, ...] = DEFAULT_LORA_TARGETS,
        max_text_tokens: int = 32,
        hint_tokens: int = 0,
        hint_vocabulary: int = 8000,
        hint_hidden_dim: int = 512,
        hint_separator_id: int = 0,
        hint_folds: int = 2,
        hint_epochs: int = 10,
        hint_bias: float = 0.0,
        hint_bias_floor: float = 0.05,
        draft_tokens: int = 0,
        draft_corpus_size: int = 0,
        draft_bias: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if tuning not in TUNINGS:
            raise InvertError(f"tuning must be one of {TUNINGS}, got {tuning!r}")
        self.embedder_name, self.embedder_dim = embedder_name, embedder_dim
        self.lm_config, self.lm_name_or_path = lm_config or {}, lm_name_or_path
        self.num_prefix_tokens, self.projection_hidden_dim = num_prefix_tokens, projection_hidden_dim
        self.projection_dropout, self.prefix_scale = projection_dropout, prefix_scale
        self.tuning, self.lora_r, self.lora_alpha = tuning, lora_r, lora_alpha
        self.lora_dropout, self.lora_target_modules = lora_dropout, list(lora_target_modules)
        self.max_text_tokens = max_text_tokens
        if hint_tokens < 0 or hint_vocabulary < 1:
            raise InvertError(f"need hint_tokens >= 0 and hint_vocabulary >= 1, got {hint_tokens}, {hint_vocabulary}")
        self.hint_tokens, self.hint_vocabulary = hint_tokens, hint_vocabulary
        self.hint_hidden_dim, self.hint_separator_id = hint_hidden_dim, hint_separator_id
        self.hint_folds, self.hint_epochs = hint_folds, hint_epochs
        if hint_bias < 0 or not 0 < hint_bias_floor < 1:
            raise InvertError(f"need hint_bias >= 0 and 0 < hint_bias_floor < 1, got {hint_bias}, {hint_bias_floor}")
        self.hint_bias, self.hint_bias_floor = hint_bias, hint_bias_floor
        if draft_tokens < 0 or draft_corpus_size < 0 or draft_bias < 0:
            raise InvertError(
                f"need draft_tokens >= 0, draft_corpus_size >= 0 and draft_bias >= 0, got "
                f"{draft_tokens}, {draft_corpus_size}, {draft_bias}"
            )
        if draft_bias > 0 and draft_tokens == 0:
            raise InvertError(f"draft_bias={draft_bias} needs retrieved drafts: set draft_tokens > 0")
        self.draft_tokens, self.draft_corpus_size, self.draft_bias = draft_tokens, draft_corpus_size, draft_bias
        super().__init__(**kwargs)


class PrefixLMInverter(InverterMixin, PreTrainedModel):
    """Embedding → prefix vectors → causal LM → text."""

    config_class = PrefixLMInverterConfig
    base_model_prefix = "inverter"
    _no_split_modules: list[str] = []

    def __init__(self, config: PrefixLMInverterConfig, lm: PreTrainedModel | None = None) -> None:
        """Builds the model from ``config``; ``lm``, when given, supplies pretrained weights."""
        super().__init__(config)
        # post_init() below re-initializes every submodule, so keep a copy of given weights.
        pretrained_state = {k: v.detach().clone() for k, v in lm.state_dict().items()} if lm else None
        # Untied output embeddings: LoRA/prefix regimes freeze the LM head anyway, and a tied
        # head would make saving depend on transformers' tying rules for nested models.
        config.lm_config = {**config.lm_config, "tie_word_embeddings": False}
        self.lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config.lm_config))
        d_model = self.lm.get_input_embeddings().embedding_dim
        self.projection = EmbeddingProjection(
            config.embedder_dim,
            d_model,
            config.num_prefix_tokens,
            config.projection_hidden_dim,
            config.projection_dropout,
            config.prefix_scale,
        )
        self.hint_head = (
            TokenBagHead(config.embedder_dim, config.hint_vocabulary, config.hint_hidden_dim)
            if config.hint_tokens > 0
            else None
        )
        self.draft_index = (
            RetrievedDraftIndex(
                config.embedder_dim, config.draft_tokens, config.draft_corpus_size, config.hint_separator_id
            )
            if config.draft_tokens > 0
            else None
        )
        self.post_init()
        if pretrained_state is not None:
            self.lm.load_state_dict(pretrained_state)
        if config.tuning == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=list(config.lora_target_modules),
            )
            self.lm = inject_adapter_in_model(lora, self.lm)
        self.set_trainable_parameters()

    @classmethod
    def from_pretrained_lm(
        cls, lm: PreTrainedModel, lm_name_or_path: str, **config_kwargs: Any
    ) -> PrefixLMInverter:
        """Wraps a pretrained causal LM, keeping its weights (the start of training)."""
        token_rms = lm.get_input_embeddings().weight.detach().float().pow(2).mean().sqrt().item()
        config_kwargs.setdefault("prefix_scale", token_rms)
        config = PrefixLMInverterConfig(
            lm_config=lm.config.to_dict(), lm_name_or_path=lm_name_or_path, **config_kwargs
        )
        return cls(config, lm=lm)

    def _init_weights(self, module: torch.nn.Module) -> None:
        # The LM initializes itself; only freshly created projection layers land here.
        if isinstance(module, torch.nn.Linear) and module.weight.device.type != "meta":
            torch.nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def set_trainable_parameters(self) -> None:
        """Freezes what the tuning regime keeps fixed."""
        tuning = self.config.tuning
        for name, param in self.lm.named_parameters():
            param.requires_grad = tuning == "full" or (tuning == "lora" and "lora_" in name)
        for param in self.projection.parameters():
            param.requires_grad = True
        if self.hint_head is not None:  # fit before the LM trains (invert.training.hints)
            self.hint_head.requires_grad_(False)

    @property
    def num_input_vectors(self) -> int:
        """Vectors before the text: the prefix, then the hints, the draft and a separator if any."""
        words = self.config.hint_tokens + self.config.draft_tokens
        return self.config.num_prefix_tokens + (words + 1 if words else 0)

    def hints(self, embeddings: torch.Tensor) -> torch.Tensor | None:
        """``[n, hint_tokens]`` LM token ids the hint head reads off ``embeddings`` (None: no head)."""
        if self.hint_head is None:
            return None
        # Chosen in fp32 under any autocast, as in training: bf16 scores tie near neighbours.
        with torch.autocast(embeddings.device.type, enabled=False):
            return self.hint_head.top_tokens(embeddings.float(), self.config.hint_tokens)

    def drafts(self, embeddings: torch.Tensor) -> torch.Tensor | None:
        """``[n, draft_tokens]`` token ids of each embedding's nearest training text (None: no index)."""
        if self.draft_index is None:
            return None
        with torch.autocast(embeddings.device.type, enabled=False):  # fp32, as in hints()
            return self.draft_index.drafts(embeddings.float())

    def set_draft_corpus(self, texts: list[str], embeddings: torch.Tensor) -> torch.Tensor:
        """Indexes the training pairs as drafts; returns each pair's leave-one-out draft ids.

        Raises:
            InvertError: The inverter reads no drafts (``draft_tokens`` 0), or bad input (see
                :meth:`RetrievedDraftIndex.set_corpus`).
        """
        if self.draft_index is None or self.tokenizer is None:
            raise InvertError("this inverter reads no retrieved drafts (model.draft_tokens is 0)")
        token_lists = self.tokenizer(
            list(texts), add_special_tokens=False, truncation=True, max_length=self.config.draft_tokens
        )["input_ids"]
        self.draft_index.set_corpus(token_lists, embeddings)
        self.config.draft_corpus_size = len(self.draft_index)
        return self.draft_index.drafts(embeddings, exclude_self=True).cpu()

    def conditioning(
        self,
        embeddings: torch.Tensor,
        hint_ids: torch.Tensor | None = None,
        draft_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What the LM reads before the text: ``[n, num_input_vectors, d_model]``.

        Args:
            embeddings: ``[n, embedder_dim]``.
            hint_ids: ``[n, hint_tokens]`` hint token ids (training passes out-of-fold ones;
                None: the hint head's own).
            draft_ids: ``[n, draft_tokens]`` draft token ids (training passes leave-one-out
                ones; None: the index's nearest text).
        """
        prefix = self.prefix(embeddings)
        words = []
        if self.hint_head is not None:
            words.append(self.hints(embeddings) if hint_ids is None else hint_ids)
        if self.draft_index is not None:
            words.append(self.drafts(embeddings) if draft_ids is None else draft_ids)
        if not words:
            return prefix
        ids = torch.cat([w.to(prefix.device) for w in words], dim=1)
        separator = ids.new_full((len(ids), 1), self.config.hint_separator_id)
        table = self.lm.get_input_embeddings()
        return torch.cat([prefix, table(torch.cat([ids, separator], dim=1))], dim=1)

    def prefix(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The k prefix vectors for each embedding, in the LM's dtype."""
        table = self.lm.get_input_embeddings().weight
        return self.projection(embeddings.to(table.device)).to(table.dtype)

    def forward(
        self,
        embeddings: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        hint_ids: torch.Tensor | None = None,
        draft_ids: torch.Tensor | None = None,
    ) -> Any:
        """Teacher-forced pass; returns the LM output (``.loss`` when labels are given).

        ``hint_ids`` / ``draft_ids`` are used only when the model reads hints / drafts (None:
        its hint head's / its index's)."""
        prefix = self.conditioning(embeddings, hint_ids, draft_ids)
        # Inputs may arrive from the CPU (a tokenizer's ids): move them to the weights.
        input_ids, attention_mask = input_ids.to(prefix.device), attention_mask.to(prefix.device)
        labels = labels.to(prefix.device) if labels is not None else None
        tokens = self.lm.get_input_embeddings()(input_ids)
        inputs = torch.cat([prefix, tokens], dim=1)
        ones = attention_mask.new_ones(prefix.shape[:2])
        mask = torch.cat([ones, attention_mask], dim=1)
        if labels is not None:
            labels = torch.cat([torch.full_like(ones, -100), labels], dim=1)
        return self.lm(inputs_embeds=inputs, attention_mask=mask, labels=labels)

    def token_logits(
        self, embeddings: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """``[n, L, vocab]``: row j is the logits for token j given the prefix and tokens < j."""
        logits = self(embeddings, input_ids, attention_mask).logits
        k = self.num_input_vectors
        return logits[:, k - 1 : k - 1 + input_ids.shape[1]]

    def hint_probabilities(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[n, hint_vocabulary]``: the hint head's probability of each of its tokens in each text."""
        if self.hint_head is None:
            raise InvertError("this inverter reads no word hints (trained with hint_tokens=0)")
        with torch.no_grad():
            return torch.sigmoid(self.hint_head(embeddings.to(self.hint_head.token_ids.device)))

    def hint_bias_processor(
        self, embeddings: torch.Tensor, probabilities: torch.Tensor | None = None
    ) -> HintCoverageBias | None:
        """The decoding pull toward the hinted tokens (None: no hint head or ``hint_bias`` 0).

        ``probabilities``: ``[n, hint_vocabulary]`` to pull by instead of the head's own."""
        if self.hint_head is None or self.config.hint_bias <= 0:
            return None
        if probabilities is None:
            probabilities = self.hint_probabilities(embeddings)
        return HintCoverageBias(
            self.hint_head.token_ids, probabilities, self.lm.get_output_embeddings().weight.shape[0],
            self.config.hint_bias, self.config.hint_bias_floor,
        )

    def draft_bias_processor(self, draft_ids: torch.Tensor | None) -> DraftCopyBias | None:
        """The decoding pull toward the draft's tokens (None: no draft or ``draft_bias`` 0)."""
        if draft_ids is None or self.config.draft_bias <= 0:
            return None
        ignore = (self.config.hint_separator_id, self.tokenizer.eos_token_id if self.tokenizer else None)
        return DraftCopyBias(
            draft_ids, self.lm.get_output_embeddings().weight.shape[0], self.config.draft_bias,
            tuple(i for i in ignore if i is not None),
        )

    def decoding_bias(
        self,
        embeddings: torch.Tensor,
        hint_probabilities: torch.Tensor | None = None,
        draft_ids: torch.Tensor | None = None,
    ) -> CoverageBias | None:
        """The pulls its decoding applies, merged: toward the hinted tokens and the draft's
        (None: neither). ``draft_ids`` is the draft decoded from (None: no draft pull)."""
        biases = [self.hint_bias_processor(embeddings, hint_probabilities), self.draft_bias_processor(draft_ids)]
        biases = [b for b in biases if b is not None]
        if not biases:
            return None
        return biases[0] if len(biases) == 1 else biases[0].merged(biases[1])

    def _generate_ids(
        self,
        embeddings: torch.Tensor,
        hint_ids: torch.Tensor | None = None,
        hint_probabilities: torch.Tensor | None = None,
        draft_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        # hint_ids / hint_probabilities: hints and pull other than the head's (a rewrite,
        # invert.inversion.search.sentence_rewrites); None: the head's own. draft_ids: a draft
        # other than the index's nearest text.
        if draft_ids is None and self.draft_index is not None:
            draft_ids = self.drafts(embeddings)
        prefix = self.conditioning(embeddings, hint_ids, draft_ids)
        mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
        if (bias := self.decoding_bias(embeddings, hint_probabilities, draft_ids)) is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([*kwargs.get("logits_processor", []), bias])
        # With only inputs_embeds, decoder-only generate returns just the new tokens.
        return self.lm.generate(inputs_embeds=prefix, attention_mask=mask, **kwargs)
