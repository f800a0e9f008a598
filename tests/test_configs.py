"""Every Hydra config composes, every typed block validates, every experiment builds its parts."""

from pathlib import Path

import pytest
import torch
from helpers import TINY_LLAMA, tokenizer_path
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from invert.configs import (
    BagOfWordsConfig,
    CorrectionConfig,
    GuidedDecodingConfig,
    PrivacyAuditConfig,
    SearchConfig,
    UnknownConfigKeyError,
    ZeroShotConfig,
    from_mapping,
)
from invert.configs.probes import CapacityProbeConfig, MemorizationProbeConfig, ScalingProbeConfig
from invert.data.splits import prepare_corpus
from invert.errors import InvertError

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
PRIMARY = sorted(p.stem for p in CONF.glob("*.yaml"))
# What each primary config needs from the command line, beyond its defaults.
REQUIRED = {
    "evaluate": ["inverter_path=/nonexistent"],
    "correct": ["inverter_path=/nonexistent"],
    "inverter_membership": ["inverter_path=/nonexistent"],
    "inversion_table": ["inverters.lora=/nonexistent"],
}
# The typed blocks of each primary config, and the schema each must satisfy.
TYPED = {
    "train_inverter": {"eval.search": SearchConfig},
    "evaluate": {"eval.search": SearchConfig},
    "correct": {"correct": CorrectionConfig, "bow": BagOfWordsConfig},
    "inversion_table": {"correct": CorrectionConfig, "bow": BagOfWordsConfig,
                        "search": SearchConfig, "zero_shot": ZeroShotConfig},
    "privacy_audit": {"audit": PrivacyAuditConfig},
    "memorization_audit": {"probe": MemorizationProbeConfig},
    "memorization_capacity": {"probe": CapacityProbeConfig},
    "memorization_scaling": {"probe": ScalingProbeConfig},
}  # fmt: skip
# Stand-ins for the packaged SmolLM2 so every experiment's model builds in seconds.
TINY_MODEL = ["model.lm=null", f"model.tokenizer={tokenizer_path()}",
              "model.lm_config={" + ", ".join(f"{k}: {v}" for k, v in TINY_LLAMA.items()) + "}",
              "model.projection_hidden_dim=32"]  # fmt: skip


def _compose(name: str, overrides: list[str], tmp_path: Path) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    # ${hydra:runtime.output_dir} only resolves inside a Hydra run.
    cfg.paths.output_dir = str(tmp_path)
    return OmegaConf.to_container(cfg, resolve=True)


def _block(cfg: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        cfg = cfg[key]
    return cfg


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_builds_its_model_and_data(experiment: str, tmp_path: Path) -> None:
    """Every experiment's own model settings (tuning, prefix, LoRA) and data split, on a tiny LM."""
    cfg = _compose("train_inverter", [f"experiment={experiment}", "logger=none", *TINY_MODEL],
                   tmp_path)  # fmt: skip
    assert cfg["train"]["max_steps"] > 0
    embedder = instantiate(cfg["embedder"], _convert_="all")
    assert embedder.dim == 384
    inverter = instantiate(
        cfg["model"], _convert_="all", embedder_name=embedder.name, embedder_dim=embedder.dim,
        max_text_tokens=cfg["data"]["max_tokens"],
    )
    assert inverter.config.embedder_dim == 384
    assert inverter.config.num_prefix_tokens == cfg["model"]["num_prefix_tokens"]
    trainable = sum(p.numel() for p in inverter.parameters() if p.requires_grad)
    assert 0 < trainable <= sum(p.numel() for p in inverter.parameters())
    if cfg["model"]["tuning"] == "lora":  # the LM is frozen but for its adapters
        assert trainable < sum(p.numel() for p in inverter.parameters())
    data = {**cfg["data"], "max_examples": 60}
    splits = prepare_corpus(tokenizer=inverter.tokenizer, **data)
    assert len(splits["train"]) > 0 and len(splits["test"]) > 0
    from_mapping(SearchConfig, cfg["eval"]["search"], "eval.search")


@pytest.mark.parametrize("primary", PRIMARY)
def test_every_primary_config_composes_and_its_typed_blocks_validate(primary: str, tmp_path) -> None:
    cfg = _compose(primary, ["logger=none", *REQUIRED.get(primary, [])], tmp_path)
    assert cfg["paths"]["output_dir"] == str(tmp_path)
    for dotted, schema in TYPED.get(primary, {}).items():
        assert isinstance(from_mapping(schema, _block(cfg, dotted), dotted), schema)


@pytest.mark.parametrize(("group", "primary", "key"), [
    ("embedder", "train_inverter", "embedder"), ("data", "train_inverter", "data"),
    ("model", "train_inverter", "model"), ("train", "train_inverter", "train"),
    ("eval", "train_inverter", "eval"), ("logger", "train_inverter", "logger"),
    ("debug", "train_inverter", "debug"), ("search", "train_inverter", "search@eval.search"),
    ("bow", "correct", "bow"), ("correct", "correct", "correct"), ("store", "privacy_audit", "store"),
])  # fmt: skip
def test_every_option_of_a_group_composes(group: str, primary: str, key: str, tmp_path) -> None:
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml") if p.stem != "base")
    assert options, group
    for option in options:
        extra = ["data.path=corpus.txt"] if option == "file" else []
        extra += ["embedder.path=v.parquet"] if option == "precomputed" else []
        cfg = _compose(primary, [f"{key}={option}", "logger=none", *REQUIRED.get(primary, []),
                                 *extra], tmp_path)  # fmt: skip
        block = _block(cfg, key.split("@")[-1]) if group not in ("debug", "logger") else cfg
        assert block is not None


@pytest.mark.parametrize(("group", "primary"), [("capacity_probe", "memorization_capacity"),
                                                ("memorization_probe", "memorization_audit"),
                                                ("scaling_probe", "memorization_scaling")])
def test_every_probe_preset_satisfies_its_schema(group: str, primary: str, tmp_path) -> None:
    schema = TYPED[primary]["probe"]
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        cfg = _compose(primary, ["logger=none", f"{group}={option}"], tmp_path)
        assert from_mapping(schema, cfg["probe"], "probe").name


def test_a_misspelt_key_fails_at_composition(tmp_path) -> None:
    with pytest.raises(ConfigCompositionException):
        _compose("train_inverter", ["logger=none", "eval.search.num_round=3"], tmp_path)


def test_a_misspelt_key_from_python_lists_the_known_ones() -> None:
    with pytest.raises(UnknownConfigKeyError, match=r"\['num_round'\] in eval.search.*num_rounds"):
        from_mapping(SearchConfig, {"num_round": 3}, "eval.search")
    with pytest.raises(UnknownConfigKeyError, match=r"audit.retrieval.*\['k', 'n'\]"):
        from_mapping(PrivacyAuditConfig, {"retrieval": {"top": 5}}, "audit")


def test_defaults_are_stated_once_in_the_schema(tmp_path) -> None:
    """The composed search block is the dataclass's defaults plus the experiment's changes."""
    cfg = _compose("train_inverter", ["logger=none"], tmp_path)
    assert from_mapping(SearchConfig, cfg["eval"]["search"]) == SearchConfig()
    quick = _compose("train_inverter", ["logger=none", "experiment=quickstart"], tmp_path)
    changed = {k for k, v in quick["eval"]["search"].items() if getattr(SearchConfig(), k) != v
               and k != "bow"}  # fmt: skip
    assert changed == {"rows", "num_rounds", "edits_per_round", "max_minutes", "deletions_per_round",
                       "inverter_edits", "inverter_edit_every", "fluency_weight", "sentence_samples",
                       "mixed_precision", "guided"}  # fmt: skip
    guided = {k for k, v in quick["eval"]["search"]["guided"].items() if getattr(GuidedDecodingConfig(), k) != v}
    assert guided == {"top_k", "patience", "max_tokens", "batch_size"}


def test_one_hour_puts_the_inverter_on_every_search_round(tmp_path) -> None:
    """one_hour inherits the quick start but not its every-4th-round schedule: over its 16 rounds the
    random-edit rounds between the inverter's would raise the perplexity round after round."""
    quick = _compose("train_inverter", ["logger=none", "experiment=quickstart"], tmp_path)
    hour = _compose("train_inverter", ["logger=none", "experiment=one_hour"], tmp_path)
    assert quick["eval"]["search"]["inverter_edit_every"] == 4
    assert hour["eval"]["search"]["inverter_edit_every"] == 1
    assert hour["eval"]["search"]["num_rounds"] == 16


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["quickstart", "one_hour"])
def test_experiment_builds_the_real_packaged_lm(experiment: str, tmp_path: Path) -> None:
    """The model a user's quick start trains: SmolLM2 with LoRA behind the prefix."""
    cfg = _compose("train_inverter", [f"experiment={experiment}", "logger=none"], tmp_path)
    inverter = instantiate(cfg["model"], _convert_="all", embedder_name="all-MiniLM-L6-v2",
                           embedder_dim=384, max_text_tokens=cfg["data"]["max_tokens"])  # fmt: skip
    total = sum(p.numel() for p in inverter.parameters())
    trainable = sum(p.numel() for p in inverter.parameters() if p.requires_grad)
    assert total > 100e6 and trainable < 0.1 * total  # 135M parameters, LoRA + projection
    if inverter.draft_index is not None:  # drafts come from the training texts, indexed first
        with pytest.raises(InvertError, match="set_draft_corpus"):
            inverter.generate_texts(torch.randn(1, 384), max_new_tokens=4)
        inverter.set_draft_corpus(["The cat sat on the mat.", "A dog barked at night."], torch.randn(2, 384))
    with torch.no_grad():
        text = inverter.generate_texts(torch.randn(1, 384), max_new_tokens=4)
    assert isinstance(text[0], str)
