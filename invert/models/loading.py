"""Build a fresh inverter from settings, or load a saved one by folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from invert.errors import CheckpointError, unknown_name
from invert.models.hypothesis import HypothesisInverter, HypothesisInverterConfig
from invert.models.prefix_lm import PrefixLMInverter
from invert.models.pretrained_lm import (
    SMOLLM2,
    load_causal_lm,
    load_tokenizer,
    resolve_pretrained,
)

INVERTER_CLASSES: dict[str, type[PreTrainedModel]] = {
    "invert_prefix_lm": PrefixLMInverter,
    "invert_hypothesis": HypothesisInverter,
}
INVERTER_KINDS = ("prefix_lm", "hypothesis")


def build_inverter(
    kind: str,
    embedder_name: str,
    embedder_dim: int,
    lm: str = SMOLLM2,
    lm_config: dict[str, Any] | None = None,
    tokenizer: str | None = None,
    **kwargs: Any,
) -> PreTrainedModel:
    """Builds an untrained inverter for an embedder.

    Args:
        kind: ``prefix_lm`` (pretrained causal LM behind a learned prefix) or ``hypothesis``
            (vec2text's encoder-decoder).
        embedder_name: The embedder it will invert (recorded in the checkpoint).
        embedder_dim: That embedder's dimension (computed from the embedder, never typed).
        lm: Pretrained weights: a packaged name (``smollm2``), folder or hub id. For
            ``hypothesis`` pass ``lm=None`` to build from ``lm_config`` with random init.
        lm_config: Architecture to build from scratch (dict with ``model_type``); overrides
            ``lm``'s weights — used offline for T5 and by the tiny test models.
        tokenizer: Tokenizer name or path; defaults to ``lm``'s.
        **kwargs: The inverter config's own fields (num_prefix_tokens, tuning, ...).

    Raises:
        UnknownNameError: ``kind`` is not known.
    """
    if kind not in INVERTER_KINDS:
        raise unknown_name("inverter kind", kind, INVERTER_KINDS)
    tok = load_tokenizer(tokenizer or lm)
    common = {"embedder_name": embedder_name, "embedder_dim": embedder_dim, **kwargs}
    if kind == "prefix_lm":
        if lm_config is not None:
            from transformers import AutoConfig, AutoModelForCausalLM

            cfg = AutoConfig.for_model(**{**lm_config, "vocab_size": len(tok)})
            model = PrefixLMInverter.from_pretrained_lm(
                AutoModelForCausalLM.from_config(cfg), "random-init", **common
            )
        else:
            model = PrefixLMInverter.from_pretrained_lm(load_causal_lm(lm), lm, **common)
    else:
        model = _build_hypothesis(lm, lm_config, tok, common)
    model.tokenizer = tok
    return model


def _build_hypothesis(
    lm: str | None,
    lm_config: dict[str, Any] | None,
    tok: PreTrainedTokenizerBase,
    common: dict[str, Any],
) -> HypothesisInverter:
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    special = {
        "vocab_size": len(tok),
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "decoder_start_token_id": tok.pad_token_id,
    }
    if lm_config is not None:
        config = HypothesisInverterConfig(
            seq2seq_config={**lm_config, **special}, seq2seq_name_or_path="random-init", **common
        )
        return HypothesisInverter(config)
    path = resolve_pretrained(lm)
    seq2seq = AutoModelForSeq2SeqLM.from_pretrained(path)
    config = HypothesisInverterConfig(
        seq2seq_config=AutoConfig.from_pretrained(path).to_dict(), seq2seq_name_or_path=lm, **common
    )
    return HypothesisInverter(config, seq2seq=seq2seq)


def load_inverter(path: str | Path) -> PreTrainedModel:
    """Loads a saved inverter (weights, config and tokenizer) from its folder.

    Raises:
        CheckpointError: Not a folder, not an invert checkpoint, or corrupt.
    """
    path = Path(path).expanduser()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} is not an inverter checkpoint folder (no config.json)")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_file} is not valid JSON: {err}") from err
    if model_type not in INVERTER_CLASSES:
        raise CheckpointError(
            f"{path} holds a {model_type!r} model, not an invert inverter "
            f"(expected one of {sorted(INVERTER_CLASSES)})"
        )
    model = INVERTER_CLASSES[model_type].from_pretrained(path)
    try:
        model.tokenizer = load_tokenizer(str(path))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: tokenizer files missing or unreadable ({err})") from err
    return model


def _register_auto_classes() -> None:
    """Lets ``AutoConfig`` (and so ``AutoTokenizer`` on a checkpoint folder) know our configs."""
    from transformers import AutoConfig

    for model_type, model_class in INVERTER_CLASSES.items():
        try:
            AutoConfig.register(model_type, model_class.config_class)
        except ValueError:  # already registered (module reloaded)
            pass


_register_auto_classes()
