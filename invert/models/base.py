"""What every inverter shares: embedding checks, text generation, tokenizer-aware saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from invert.embedders.base import check_embeddings
from invert.errors import CheckpointError, InvertError, check_counts

WEIGHTS_NAME = "model.safetensors"


class InverterMixin:
    """Mixed into inverter ``PreTrainedModel``s; expects ``config.embedder_name/_dim``.

    Subclasses implement ``_generate_ids(embeddings, **generate_kwargs) -> LongTensor``.
    ``tokenizer`` is attached by the builder or :func:`invert.load_inverter`.
    """

    tokenizer: PreTrainedTokenizerBase | None = None
    # ``bf16``: decode under bf16 autocast (:meth:`set_decoding_precision`); ``no``: fp32.
    decoding_precision: str = "no"

    def set_decoding_precision(self, requested: str) -> str:
        """Decodes under bf16 autocast from now on if ``requested`` is ``bf16`` and bf16 is
        faster than fp32 on this inverter's device (:func:`invert.env.resolve_mixed_precision`);
        ``no``: fp32. Returns what it will use."""
        from invert.env import resolve_mixed_precision

        if requested not in ("no", "bf16"):
            raise InvertError(f"decoding precision must be 'no' or 'bf16', got {requested!r}")
        device = next(self.parameters()).device
        self.decoding_precision = resolve_mixed_precision(requested, str(device))
        return self.decoding_precision

    def check_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Validates embeddings against the embedder this inverter was trained on."""
        return check_embeddings(
            embeddings,
            expected_dim=self.config.embedder_dim,
            source=f"the inverter (trained on {self.config.embedder_name})",
        )

    @torch.no_grad()
    def generate_texts(
        self,
        embeddings: torch.Tensor,
        num_beams: int = 1,
        num_return_sequences: int = 1,
        do_sample: bool = False,
        max_new_tokens: int | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
        **generate_kwargs: Any,
    ) -> list[str] | list[list[str]]:
        """Decodes text from embeddings (greedy, beam search or sampling).

        Args:
            embeddings: ``[n, embedder_dim]``.
            num_beams: Beam width (1 = greedy).
            num_return_sequences: Candidates per embedding (≤ num_beams unless sampling).
            do_sample: Sample instead of searching.
            max_new_tokens: Defaults to the training ``max_length`` + 1 (for the eos token).
            batch_size: Embeddings per generate call.
            show_progress: Progress bar over batches.

        Returns:
            One string per embedding, or a list of ``num_return_sequences`` strings each.
        """
        if self.tokenizer is None:
            raise InvertError("this inverter has no tokenizer attached; load it with invert.load_inverter")
        check_counts(num_beams=num_beams, num_return_sequences=num_return_sequences,
                     batch_size=batch_size, max_new_tokens=max_new_tokens)  # fmt: skip
        emb = self.check_embeddings(embeddings)
        was_training = self.training
        self.eval()
        if max_new_tokens is None:
            max_new_tokens = self.config.max_text_tokens + 1
        device = next(self.parameters()).device
        texts: list[str] = []
        starts = range(0, len(emb), batch_size)
        bf16 = self.decoding_precision == "bf16"
        for start in tqdm(starts, desc="generating", disable=not show_progress):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                ids = self._generate_ids(
                    emb[start : start + batch_size].to(device),
                    num_beams=num_beams,
                    num_return_sequences=num_return_sequences,
                    do_sample=do_sample,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.tokenizer.eos_token_id,
                    **generate_kwargs,
                )
            texts.extend(t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True))
        self.train(was_training)
        if num_return_sequences == 1:
            return texts
        k = num_return_sequences
        return [texts[i : i + k] for i in range(0, len(texts), k)]

    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """Saves weights (safetensors), config and tokenizer: the folder alone reloads.

        Written directly rather than through ``PreTrainedModel.save_pretrained`` because
        peft-injected LoRA layers inside a nested LM confuse transformers' key renaming.
        """
        from safetensors.torch import save_model

        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(path)
        # save_model stores tensors shared between modules (T5's embeddings) once.
        save_model(self, str(path / WEIGHTS_NAME), metadata={"format": "pt"})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(path)

    @classmethod
    def from_pretrained(cls, path: str | Path, *args: Any, **kwargs: Any) -> InverterMixin:
        """Loads a folder written by :meth:`save_pretrained` (strict: every weight must match).

        Raises:
            CheckpointError: Missing, corrupt or foreign checkpoint.
        """
        from safetensors.torch import load_model

        path = Path(path)
        try:
            config = cls.config_class.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path}: no readable inverter config.json ({err})") from err
        weights = path / WEIGHTS_NAME
        if not weights.exists():
            raise CheckpointError(f"{path}: no {WEIGHTS_NAME}; is this an invert checkpoint?")
        model = cls(config)
        try:
            missing, unexpected = load_model(model, str(weights), strict=False)
        except Exception as err:  # safetensors raises its own error types on corrupt files
            raise CheckpointError(f"{weights} is corrupt or truncated: {err}") from err
        missing, unexpected = sorted(missing), sorted(unexpected)
        if missing or unexpected:
            raise CheckpointError(
                f"{weights} does not match a {cls.__name__} with this config: "
                f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:2]}) weights"
            )
        model.eval()
        return model


def tokenize_targets(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int
) -> dict[str, torch.Tensor]:
    """Tokenizes target texts as ``text + eos``, right-padded; labels are -100 on padding.

    The mask comes from lengths, not token ids, because many tokenizers pad with eos.
    """
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length)
    rows = [ids + [tokenizer.eos_token_id] for ids in encoded["input_ids"]]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
