"""Every Hydra config composes, and every experiment instantiates its parts."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
PRIMARY = sorted(p.stem for p in CONF.glob("*.yaml"))


def _compose(name: str, overrides: list[str], tmp_path: Path) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=overrides)
    # ${hydra:runtime.output_dir} only resolves inside a Hydra run.
    cfg.paths.output_dir = str(tmp_path)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_config_composes_and_instantiates(experiment: str, tmp_path: Path) -> None:
    cfg = _compose("train_inverter", [f"experiment={experiment}", "logger=none"], tmp_path)
    assert cfg["train"]["max_steps"] > 0
    assert cfg["data"]["max_tokens"] > 0
    embedder = instantiate(cfg["embedder"], _convert_="all")
    assert embedder.dim == 384
    if cfg["model"]["lm"] is None or experiment == "tiny":
        # Building SmolLM2 for every experiment would take minutes; tiny configs build fully.
        inverter = instantiate(
            cfg["model"], _convert_="all", embedder_name=embedder.name, embedder_dim=embedder.dim,
            max_text_tokens=cfg["data"]["max_tokens"],
        )
        assert inverter.config.embedder_dim == embedder.dim


@pytest.mark.parametrize("primary", PRIMARY)
def test_every_primary_config_composes(primary: str, tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(primary, overrides=["logger=none"] if primary != "evaluate" else
                      ["logger=none", "inverter_path=/nonexistent"])
    assert cfg is not None


@pytest.mark.parametrize("group", ["embedder", "data", "model", "train", "eval", "logger"])
def test_every_option_of_a_group_composes(group: str) -> None:
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert options, group
    for option in options:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train_inverter", overrides=[f"{group}={option}"])
        assert cfg[group] is not None
