"""Target models for memorization probes: GPT-style LMs from a config, or pretrained LMs to tune.

Capacity experiments (Morris et al. 2025, "How much do language models memorize?",
arXiv:2505.24832) train small GPT-2 models from scratch on random tokens, so their size is set
by ``(n_layer, d_model, n_head, vocab_size, context_length)``. Fine-tuning comparisons start from a
pretrained causal LM and tune all of it, a LoRA adapter, or a prefix (peft).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel

from invert.errors import InvertError, unknown_name
from invert.models.pretrained_lm import load_causal_lm

TUNINGS = ("full", "lora", "prefix")


def build_gpt(
    n_layer: int,
    d_model: int,
    n_head: int,
    vocab_size: int,
    context_length: int,
    d_mlp: int | None = None,
    dropout: float = 0.0,
    tie_embeddings: bool = True,
    seed: int = 0,
) -> GPT2LMHeadModel:
    """Builds a randomly initialised GPT-2 causal LM from its shape.

    Args:
        n_layer: Transformer blocks.
        d_model: Residual width (``n_embd``).
        n_head: Attention heads; must divide ``d_model``.
        vocab_size: Token ids the model reads and predicts (include any BOS id you prepend).
        context_length: Longest input (``n_positions``), BOS included.
        d_mlp: MLP hidden width (GPT-2's default ``4 * d_model`` when None).
        dropout: Residual, embedding and attention dropout. 0 by default: dropout fights
            memorization and the capacity probe wants the model's full capacity.
        tie_embeddings: Share input embedding and output head (GPT-2's default).
        seed: Seeds the initial weights, without touching the global RNG.

    Returns:
        The model in fp32, in training mode.

    Raises:
        InvertError: ``n_head`` does not divide ``d_model`` or a size is not positive.
    """
    sizes = {"n_layer": n_layer, "d_model": d_model, "n_head": n_head, "vocab_size": vocab_size}
    sizes["context_length"] = context_length
    bad = {k: v for k, v in sizes.items() if int(v) < 1}
    if bad:
        raise InvertError(f"model sizes must be positive, got {bad}")
    if d_model % n_head:
        raise InvertError(f"n_head={n_head} must divide d_model={d_model}; pick another n_head")
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=context_length,
        n_embd=d_model,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=d_mlp,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        tie_word_embeddings=tie_embeddings,
        # No token is special here: ids are random symbols (BOS, if any, is the caller's).
        bos_token_id=None,
        eos_token_id=None,
    )
    # fork_rng: seeding the init must not reseed the caller's global RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.train()
    return model


def count_parameters(
    model: torch.nn.Module, trainable_only: bool = False, include_embeddings: bool = True
) -> int:
    """Counts parameters, each shared (tied) tensor once.

    Morris et al. (arXiv:2505.24832) count all parameters, embeddings included (their smallest
    model, 1 layer of width 32 with V=2048, has ~80K parameters, most of them embeddings); that
    is the default here.

    Args:
        model: Any module (a peft model too).
        trainable_only: Count only parameters with ``requires_grad``.
        include_embeddings: False leaves out token and position embeddings (``nn.Embedding``
            weights; a head tied to the token embedding goes with it).
    """
    skip: set[int] = set()
    if not include_embeddings:
        skip = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    seen: set[int] = set()
    total = 0
    for param in model.parameters():  # parameters() already yields a tied tensor once
        if id(param) in seen or id(param) in skip:
            continue
        seen.add(id(param))
        if trainable_only and not param.requires_grad:
            continue
        total += param.numel()
    return total


class TargetModel(NamedTuple):
    """A model to fine-tune and how many of its parameters train (unpacks as a 2-tuple)."""

    model: torch.nn.Module
    trainable_parameters: int


def load_pretrained_target(
    name_or_path: str,
    tuning: str = "full",
    dtype: str = "float32",
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    lora_target_modules: list[str] | str | None = None,
    num_virtual_tokens: int = 16,
    **peft_kwargs: Any,
) -> TargetModel:
    """Loads a pretrained causal LM and readies it for full, LoRA or prefix fine-tuning.

    Example::

        model, n_trainable = load_pretrained_target("smollm2", tuning="lora", lora_r=16)
        # model(input_ids=..., labels=...).loss trains with invert's Trainer as usual.

    Args:
        name_or_path: ``smollm2`` (packaged, offline), a local folder, or a hub id (online only).
        tuning: ``full`` (every weight trains), ``lora`` (peft ``LoraConfig``; the base is
            frozen) or ``prefix`` (peft ``PrefixTuningConfig``; only the prefix trains).
        dtype: Weights' dtype (``float32`` or ``bfloat16``).
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: Dropout on the LoRA input.
        lora_target_modules: Modules to adapt; None lets peft pick its default for the
            architecture (``q_proj``/``v_proj`` for Llama, ``c_attn`` for GPT-2).
        num_virtual_tokens: Prefix length for ``prefix`` tuning.
        **peft_kwargs: More fields for the peft config.

    Returns:
        ``TargetModel(model, trainable_parameters)``; ``model`` is a peft ``PeftModel`` for
        ``lora``/``prefix``, else the plain ``PreTrainedModel``.

    Raises:
        UnknownNameError: ``tuning`` is not one of ``full``, ``lora``, ``prefix``.
        HubUnavailableError: ``name_or_path`` is a hub id and the hub is off.
    """
    if tuning not in TUNINGS:
        raise unknown_name("tuning", tuning, TUNINGS)
    model: torch.nn.Module = load_causal_lm(name_or_path, dtype=dtype)
    if tuning == "full":
        model.requires_grad_(True)
    else:
        from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

        if tuning == "lora":
            peft_config = LoraConfig(
                task_type=TaskType.CAUSAL_LM,
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules=lora_target_modules,
                **peft_kwargs,
            )
        else:
            peft_config = PrefixTuningConfig(
                task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens, **peft_kwargs
            )
        model = get_peft_model(_as_pretrained(model), peft_config)
    return TargetModel(model, count_parameters(model, trainable_only=True))


def _as_pretrained(model: torch.nn.Module) -> PreTrainedModel:
    if not isinstance(model, PreTrainedModel):
        raise InvertError(f"peft tuning needs a transformers PreTrainedModel, got {type(model)}")
    return model
