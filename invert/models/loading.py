"""Build a fresh inverter from settings, or load a saved one by folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from invert.env import default_device
from invert.errors import CheckpointError, unknown_name
from invert.models.corrector import Corrector
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
    "invert_corrector": Corrector,
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
        if kwargs.get("hint_tokens") or kwargs.get("draft_tokens"):
            common.setdefault("hint_separator_id", _hint_separator(tok))
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


def _hint_separator(tok: PreTrainedTokenizerBase) -> int:
    """A newline between the word hints and the text, as a prompt would put it (else eos)."""
    ids = tok("\n", add_special_tokens=False)["input_ids"]
    return int(ids[-1]) if ids else int(tok.eos_token_id)


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


def load_inverter(path: str | Path, device: str | None = None) -> PreTrainedModel:
    """Loads a saved inverter (weights, config and tokenizer) from its folder.

    Args:
        path: The folder ``save_pretrained`` wrote.
        device: Where to put it (None: CUDA when available, else CPU).

    Raises:
        CheckpointError: Not a folder, not an invert checkpoint, or corrupt.
    """
    if not isinstance(path, str | Path) or str(path) in ("", "???"):
        raise CheckpointError(f"inverter_path is not set (got {path!r}); pass "
                              "inverter_path=<run folder>/inverter")  # fmt: skip
    path = Path(path).expanduser()
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} is not an inverter checkpoint folder (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_file} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} holds a {type(config).__name__}, not a model "
                              "config (a JSON object); the folder is damaged")  # fmt: skip
    model_type = config.get("model_type")
    if model_type not in INVERTER_CLASSES:
        raise CheckpointError(
            f"{path} holds a {model_type!r} model, not an invert inverter "
            f"(expected one of {sorted(INVERTER_CLASSES)})"
        )
    for key in ("max_text_tokens", "embedder_dim"):
        if not isinstance(config.get(key), int) or isinstance(config.get(key), bool) or config[key] < 1:
            raise CheckpointError(f"{config_file}: {key} must be a whole number >= 1, got "
                                  f"{config.get(key)!r}; the folder is damaged")  # fmt: skip
    try:
        model = INVERTER_CLASSES[model_type].from_pretrained(path)
    except Exception as err:  # torn or missing weights: safetensors and torch raise their own types
        raise CheckpointError(f"{path}: weights missing or damaged ({type(err).__name__}: "
                              f"{err})") from err  # fmt: skip
    try:
        model.tokenizer = load_tokenizer(str(path))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: tokenizer files missing or unreadable ({err})") from err
    return model.to(default_device(device))


def _register_auto_classes() -> None:
    """Lets ``AutoConfig`` (and so ``AutoTokenizer`` on a checkpoint folder) know our configs."""
    from transformers import AutoConfig

    for model_type, model_class in INVERTER_CLASSES.items():
        try:
            AutoConfig.register(model_type, model_class.config_class)
        except ValueError:  # already registered (module reloaded)
            pass


_register_auto_classes()


def build_corrector(
    inverter: PreTrainedModel,
    lm: str | None = None,
    lm_config: dict[str, Any] | None = None,
    tokenizer: str | None = None,
    init_from_inverter: bool = True,
    architecture: str = "prefix_lm",
    **kwargs: Any,
) -> PreTrainedModel:
    """Builds an untrained corrector (arXiv 2310.06816) for ``inverter``'s embedder.

    Args:
        inverter: The trained inverter whose hypotheses it will correct (recorded by name and
            config fingerprint, never by path).
        lm: Pretrained backbone (name, folder or hub id). Default: the inverter's own LM when
            ``init_from_inverter`` and the inverter has the same architecture (a prefix-LM
            inverter for ``prefix_lm``, a hypothesis inverter for ``encoder_decoder``), else
            ``smollm2`` (``prefix_lm`` only).
        lm_config: Architecture to build with random init instead (tiny test models).
        tokenizer: Tokenizer name or path; default: the inverter's tokenizer when the LM is
            the inverter's, else ``lm``'s.
        init_from_inverter: Start from the inverter's LM weights (LoRA merged) and its
            projection (for the target projection, when shapes match).
        architecture: ``prefix_lm`` (causal LM, the main variant) or ``encoder_decoder``.
        **kwargs: :class:`~invert.models.corrector.CorrectorConfig` fields; the prefix length
            and projection width default to the inverter's. With ``encoder_decoder`` and
            ``tuning="lora"`` pass the backbone's ``lora_target_modules`` (T5: q, k, v, o).
    """
    from invert.models.corrector import ARCHITECTURES, CorrectorConfig, inverter_fingerprint

    if architecture not in ARCHITECTURES:
        raise unknown_name("corrector architecture", architecture, ARCHITECTURES)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # null in a config: default
    common = {
        "embedder_name": inverter.config.embedder_name,
        "embedder_dim": inverter.config.embedder_dim,
        "inverter_name": inverter.config.name_or_path or inverter.config.model_type,
        "inverter_fingerprint": inverter_fingerprint(inverter),
        "max_text_tokens": inverter.config.max_text_tokens,
        "architecture": architecture,
        **kwargs,
    }
    # The inverter's projection shape by default, so its weights can seed the target projection.
    for field in ("num_prefix_tokens", "projection_hidden_dim"):
        if hasattr(inverter.config, field):
            common.setdefault(field, getattr(inverter.config, field))
    same_kind = PrefixLMInverter if architecture == "prefix_lm" else HypothesisInverter
    from_inverter = (
        init_from_inverter and lm is None and lm_config is None and isinstance(inverter, same_kind)
    )
    if from_inverter:
        source = inverter.lm if architecture == "prefix_lm" else inverter.seq2seq
        base = _merged_lm_copy(source)
        tok = inverter.tokenizer if tokenizer is None else load_tokenizer(tokenizer)
        lm_name = f"inverter:{common['inverter_fingerprint']}"
    else:
        base, tok, lm_name = _corrector_backbone(architecture, lm, lm_config, tokenizer)
    token_rms = base.get_input_embeddings().weight.detach().float().pow(2).mean().sqrt().item()
    common.setdefault("prefix_scale", token_rms)
    config = CorrectorConfig(lm_config=base.config.to_dict(), lm_name_or_path=lm_name, **common)
    model = Corrector(config, lm=base)
    if from_inverter:
        source, target = inverter.projection.state_dict(), model.projections["target"].state_dict()
        if all(source[k].shape == v.shape for k, v in target.items()):
            model.projections["target"].load_state_dict(source)
    model.tokenizer = tok
    return model


def _corrector_backbone(
    architecture: str, lm: str | None, lm_config: dict[str, Any] | None, tokenizer: str | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """A fresh (``lm_config``) or pretrained (``lm``) backbone, its tokenizer and its name."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    if architecture == "encoder_decoder" and lm is None and lm_config is None:
        raise CheckpointError(
            "an encoder-decoder corrector needs lm=<seq2seq model> or lm_config=..., or a "
            "hypothesis inverter to start from (init_from_inverter=True)"
        )
    auto = AutoModelForCausalLM if architecture == "prefix_lm" else AutoModelForSeq2SeqLM
    tok = load_tokenizer(tokenizer or lm or SMOLLM2)
    if lm_config is None:
        name = lm or SMOLLM2
        return auto.from_pretrained(resolve_pretrained(name)), tok, name
    special = {"vocab_size": len(tok)}
    if architecture == "encoder_decoder":
        special.update(
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            decoder_start_token_id=tok.pad_token_id,
        )
    return auto.from_config(AutoConfig.for_model(**{**lm_config, **special})), tok, "random-init"


def _merged_lm_copy(lm: PreTrainedModel) -> PreTrainedModel:
    """A deep copy of ``lm`` with any injected LoRA adapters merged into plain layers."""
    import copy

    lm = copy.deepcopy(lm)
    for name, module in list(lm.named_modules()):
        if hasattr(module, "base_layer") and hasattr(module, "merge"):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(lm.get_submodule(parent_name) if parent_name else lm, child, module.base_layer)
    return lm


def load_corrector(path: str | Path, device: str | None = None) -> PreTrainedModel:
    """Loads a saved corrector (weights, config and tokenizer) from its folder.

    Args:
        path: The folder ``save_pretrained`` wrote.
        device: Where to put it (None: CUDA when available, else CPU).

    Raises:
        CheckpointError: Not a corrector checkpoint, or corrupt.
    """
    model = load_inverter(path, device)
    if model.config.model_type != "invert_corrector":
        raise CheckpointError(f"{path} holds a {model.config.model_type!r}, not a corrector")
    return model
