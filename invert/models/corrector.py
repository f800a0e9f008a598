"""The corrector of vec2text (Morris et al. 2023, arXiv 2310.06816), prefix-LM or enc-dec.

Given a target embedding e, the embedding ê of a hypothesis text and that text, the corrector
writes a text whose embedding should be closer to e. The three vectors e, ê and e − ê each go
through their own :class:`EmbeddingProjection` to k vectors; then come the hypothesis tokens and
a learned separator vector. ``prefix_lm`` (the main variant): that context is the prefix of a
pretrained causal LM, followed by the target (the only part with a loss); contexts are
left-padded so that training and ``generate`` see the same positions. ``encoder_decoder`` (as in
the paper's T5): the context is the encoder input and the decoder writes the target.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    PretrainedConfig,
    PreTrainedModel,
)

from invert.embedders.base import check_embeddings
from invert.errors import InvertError
from invert.models.base import InverterMixin
from invert.models.prefix_lm import DEFAULT_LORA_TARGETS
from invert.models.projection import EmbeddingProjection

logger = logging.getLogger(__name__)

CORRECTOR_TUNINGS = ("full", "lora")
ARCHITECTURES = ("prefix_lm", "encoder_decoder")
PROJECTIONS = ("target", "hypothesis", "difference")
# Fields that change between a model's save and reload without changing the model.
_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "transformers_version",
    "architectures",
    "dtype",
    "torch_dtype",
}


class CorrectorMismatchError(InvertError, ValueError):
    """An inverter and a corrector were built for different embedders."""


def inverter_fingerprint(inverter: PreTrainedModel) -> str:
    """A short sha256 of an inverter's config: identifies it without any file path."""
    config = {k: v for k, v in inverter.config.to_dict().items() if k not in _VOLATILE_CONFIG_KEYS}
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class CorrectorConfig(PretrainedConfig):
    """Config of a :class:`PrefixLMCorrector`.

    Args:
        embedder_name: Embedder whose vectors it corrects toward.
        embedder_dim: Their dimension.
        architecture: ``prefix_lm`` (causal LM) or ``encoder_decoder`` (e.g. T5).
        lm_config: The backbone's config as a dict (``model_type`` included).
        lm_name_or_path: Where the LM weights came from (provenance only).
        inverter_name: Name of the inverter it was trained with (its ``name_or_path`` or kind).
        inverter_fingerprint: :func:`inverter_fingerprint` of that inverter.
        num_prefix_tokens: Prefix vectors per projection (3 projections in all).
        projection_hidden_dim: Hidden width of each projection MLP.
        projection_dropout: Dropout inside those MLPs.
        prefix_scale: Initial prefix LayerNorm gain (the LM's token-embedding RMS).
        tuning: ``full`` or ``lora``.
        lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA settings.
        max_text_tokens: Max tokens of hypothesis and target text.
    """

    model_type = "invert_corrector"

    def __init__(
        self,
        embedder_name: str = "",
        embedder_dim: int = 384,
        lm_config: dict[str, Any] | None = None,
        lm_name_or_path: str = "",
        architecture: str = "prefix_lm",
        inverter_name: str = "",
        inverter_fingerprint: str = "",
        num_prefix_tokens: int = 4,
        projection_hidden_dim: int = 1536,
        projection_dropout: float = 0.0,
        prefix_scale: float = 1.0,
        tuning: str = "full",
        lora_r: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | tuple[str, ...] = DEFAULT_LORA_TARGETS,
        max_text_tokens: int = 32,
        **kwargs: Any,
    ) -> None:
        if tuning not in CORRECTOR_TUNINGS:
            raise InvertError(
                f"corrector tuning must be one of {CORRECTOR_TUNINGS}, got {tuning!r}"
            )
        if architecture not in ARCHITECTURES:
            raise InvertError(
                f"corrector architecture must be one of {ARCHITECTURES}, got {architecture!r}"
            )
        self.embedder_name, self.embedder_dim = embedder_name, embedder_dim
        self.lm_config, self.lm_name_or_path = lm_config or {}, lm_name_or_path
        self.architecture = architecture
        self.inverter_name, self.inverter_fingerprint = inverter_name, inverter_fingerprint
        self.num_prefix_tokens = num_prefix_tokens
        self.projection_hidden_dim = projection_hidden_dim
        self.projection_dropout, self.prefix_scale = projection_dropout, prefix_scale
        self.tuning, self.lora_r, self.lora_alpha = tuning, lora_r, lora_alpha
        self.lora_dropout, self.lora_target_modules = lora_dropout, list(lora_target_modules)
        self.max_text_tokens = max_text_tokens
        super().__init__(**kwargs)


class Corrector(InverterMixin, PreTrainedModel):
    """(e, ê, e − ê, hypothesis) → projected vectors + tokens → LM → corrected text."""

    config_class = CorrectorConfig
    base_model_prefix = "corrector"
    _no_split_modules: list[str] = []

    def __init__(self, config: CorrectorConfig, lm: PreTrainedModel | None = None) -> None:
        """Builds the model from ``config``; ``lm``, when given, supplies pretrained weights."""
        super().__init__(config)
        pretrained_state = (
            {k: v.detach().clone() for k, v in lm.state_dict().items()} if lm else None
        )
        # Untied head, as in PrefixLMInverter: saving must not depend on nested tying rules.
        config.lm_config = {**config.lm_config, "tie_word_embeddings": False}
        auto = AutoModelForCausalLM if config.architecture == "prefix_lm" else AutoModelForSeq2SeqLM
        self.lm = auto.from_config(AutoConfig.for_model(**config.lm_config))
        d_model = self.lm.get_input_embeddings().embedding_dim
        self.projections = torch.nn.ModuleDict(
            {
                name: EmbeddingProjection(
                    config.embedder_dim,
                    d_model,
                    config.num_prefix_tokens,
                    config.projection_hidden_dim,
                    config.projection_dropout,
                    config.prefix_scale,
                )
                for name in PROJECTIONS
            }
        )
        self.separator = torch.nn.Parameter(torch.zeros(d_model))
        self.post_init()
        with torch.no_grad():
            self.separator.normal_(std=config.prefix_scale)
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
        for name, param in self.lm.named_parameters():
            param.requires_grad = config.tuning == "full" or "lora_" in name

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, torch.nn.Linear) and module.weight.device.type != "meta":
            torch.nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)

    def check_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Validates embeddings against the embedder this corrector was trained on."""
        return check_embeddings(
            embeddings,
            expected_dim=self.config.embedder_dim,
            source=f"the corrector (trained on {self.config.embedder_name})",
        )

    def context(
        self,
        target_embeddings: torch.Tensor,
        hypothesis_embeddings: torch.Tensor,
        hypothesis_ids: torch.Tensor,
        hypothesis_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The left-padded ``[prefix, hypothesis tokens, separator]`` inputs and their mask."""
        table = self.lm.get_input_embeddings().weight
        dtype, device = table.dtype, table.device
        # Inputs may arrive from the CPU (an embedder's vectors, a tokenizer's ids).
        e, h = target_embeddings.to(device).float(), hypothesis_embeddings.to(device).float()
        hypothesis_ids, hypothesis_mask = hypothesis_ids.to(device), hypothesis_mask.to(device)
        prefix = torch.cat(
            [
                self.projections["target"](e),
                self.projections["hypothesis"](h),
                self.projections["difference"](e - h),
            ],
            dim=1,
        ).to(dtype)
        tokens = self.lm.get_input_embeddings()(hypothesis_ids)
        sep = self.separator.to(dtype).expand(len(e), 1, -1)
        inputs = torch.cat([prefix, tokens, sep], dim=1)
        ones = hypothesis_mask.new_ones(len(e), prefix.shape[1])
        mask = torch.cat([ones, hypothesis_mask, hypothesis_mask.new_ones(len(e), 1)], dim=1)
        # Move padding to the front of each row (stable sort keeps token order), the layout
        # decoder-only generate() expects.
        order = torch.argsort(mask, dim=1, stable=True)
        inputs = inputs.gather(1, order.unsqueeze(-1).expand_as(inputs))
        return inputs, mask.gather(1, order)

    def forward(
        self,
        target_embeddings: torch.Tensor,
        hypothesis_embeddings: torch.Tensor,
        hypothesis_ids: torch.Tensor,
        hypothesis_mask: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> Any:
        """Teacher-forced pass over the target text; ``.loss`` only on target tokens."""
        ctx, ctx_mask = self.context(
            target_embeddings, hypothesis_embeddings, hypothesis_ids, hypothesis_mask
        )
        device = ctx.device
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        labels = labels.to(device) if labels is not None else None
        if self.config.architecture == "encoder_decoder":
            if labels is None:
                labels = input_ids.masked_fill(attention_mask == 0, -100)
            return self.lm(
                inputs_embeds=ctx,
                attention_mask=ctx_mask,
                labels=labels,
                decoder_attention_mask=attention_mask,
            )
        inputs = torch.cat([ctx, self.lm.get_input_embeddings()(input_ids)], dim=1)
        mask = torch.cat([ctx_mask, attention_mask], dim=1)
        # Same positions as generate() computes from a left-padded mask.
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        if labels is not None:
            labels = torch.cat([torch.full_like(ctx_mask, -100), labels], dim=1)
        return self.lm(
            inputs_embeds=inputs, attention_mask=mask, position_ids=positions, labels=labels
        )

    def tokenize_hypotheses(self, hypotheses: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded hypothesis ids and mask (``context`` moves the padding)."""
        return tokenize_hypotheses(self.tokenizer, hypotheses, self.config.max_text_tokens)

    @torch.no_grad()
    def generate_corrections(
        self,
        target_embeddings: torch.Tensor,
        hypothesis_embeddings: torch.Tensor,
        hypotheses: list[str],
        num_beams: int = 1,
        num_return_sequences: int = 1,
        do_sample: bool = False,
        max_new_tokens: int | None = None,
        batch_size: int = 32,
    ) -> list[list[str]]:
        """Proposes ``num_return_sequences`` corrected texts per (target, hypothesis) row.

        Args:
            target_embeddings: ``[n, dim]`` targets e.
            hypothesis_embeddings: ``[n, dim]`` embeddings ê of ``hypotheses`` (zeros if blank).
            hypotheses: n current texts.
            num_beams: Token-level beam width (1 = greedy unless sampling).
            num_return_sequences: Candidates per row.
            do_sample: Sample instead of searching.
            max_new_tokens: Defaults to ``max_text_tokens + 1``.
            batch_size: Rows per generate call.

        Returns:
            ``n`` lists of ``num_return_sequences`` stripped strings.
        """
        if self.tokenizer is None:
            raise InvertError(
                "this corrector has no tokenizer attached; load it with load_corrector"
            )
        e, h = (
            self.check_embeddings(target_embeddings),
            self.check_embeddings(hypothesis_embeddings),
        )
        if not (len(e) == len(h) == len(hypotheses)):
            raise InvertError(
                f"got {len(e)} targets, {len(h)} hypothesis embeddings, {len(hypotheses)} texts"
            )
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        k = num_return_sequences
        out: list[list[str]] = []
        for s in range(0, len(e), batch_size):
            ids, mask = self.tokenize_hypotheses(list(hypotheses[s : s + batch_size]))
            inputs, ctx_mask = self.context(
                e[s : s + batch_size].to(device),
                h[s : s + batch_size].to(device),
                ids.to(device),
                mask.to(device),
            )
            generated = self.lm.generate(
                inputs_embeds=inputs,
                attention_mask=ctx_mask,
                num_beams=max(num_beams, 1 if do_sample else k),
                num_return_sequences=k,
                do_sample=do_sample,
                max_new_tokens=max_new_tokens or self.config.max_text_tokens + 1,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
            texts = [
                t.strip() for t in self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            ]
            out.extend(texts[i : i + k] for i in range(0, len(texts), k))
        self.train(was_training)
        return out

    def _generate_ids(self, embeddings: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        raise InvertError(
            "a corrector needs a hypothesis: use generate_corrections, not generate_texts"
        )


def tokenize_hypotheses(
    tokenizer: Any, texts: list[str], max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask of hypothesis texts (no special tokens; blank → no tokens)."""
    rows = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)[
        "input_ids"
    ]
    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def check_pair(inverter: PreTrainedModel, corrector: Corrector) -> None:
    """Refuses an inverter/corrector pair built for different embedders.

    Raises:
        CorrectorMismatchError: Embedder name or dimension differ.
    """
    inv, cor = inverter.config, corrector.config
    if (inv.embedder_name, inv.embedder_dim) != (cor.embedder_name, cor.embedder_dim):
        raise CorrectorMismatchError(
            f"the inverter was trained on {inv.embedder_name!r} (dim {inv.embedder_dim}) but the "
            f"corrector on {cor.embedder_name!r} (dim {cor.embedder_dim}); train a corrector "
            f"with build_corrector(inverter) on this inverter's hypotheses"
        )
    if cor.inverter_fingerprint and cor.inverter_fingerprint != inverter_fingerprint(inverter):
        # Same embedder, so correction works, but its hypotheses differ from the training ones.
        logger.warning(
            "the corrector was trained on hypotheses of another inverter (%s, %s); expect "
            "smaller gains than with that one",
            cor.inverter_name,
            cor.inverter_fingerprint,
        )
