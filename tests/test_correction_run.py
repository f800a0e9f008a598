"""The correction experiment end to end on a tiny saved inverter and a few wikipedia pairs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from helpers import TINY_LLAMA, tokenizer_path
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from invert.embedders import build_embedder
from invert.inversion.runs.correct import run_correction_experiment
from invert.inversion.runs.preamble import training_record
from invert.models.loading import build_inverter, load_corrector

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_tiny_correction_run(tmp_path: Path) -> None:
    embedder = build_embedder("minilm")
    torch.manual_seed(0)
    inverter = build_inverter(
        "prefix_lm",
        embedder.name,
        embedder.dim,
        lm_config=TINY_LLAMA,
        tokenizer=tokenizer_path(),
        tuning="full",
        num_prefix_tokens=2,
        projection_hidden_dim=32,
        max_text_tokens=12,
    )
    # Only the folder says which corpus and split the inverter was trained on.
    data = {"name": "wikipedia", "seed": 0, "max_examples": 40, "val_fraction": 0.05,
            "test_fraction": 0.2}
    inverter.config.training_data = training_record(data, train_seed=0, examples_seen=0)
    inverter.save_pretrained(tmp_path / "inverter")
    overrides = [
        f"inverter_path={tmp_path / 'inverter'}",
        "logger=none",
        "corrector.tuning=full",
        "corrector.num_prefix_tokens=2",
        "corrector.projection_hidden_dim=32",
        "train.max_steps=2",
        "train.batch_size=8",
        "train.warmup_steps=0",
        "correct.train_examples=8",
        "correct.second_round_steps=1",
        "correct.steps=[0,1,2]",
        "correct.sequence_beam_width=2",
        "correct.num_candidates=2",
        "eval.num_examples=4",
        "bow.hidden_dim=16",
        "bow.epochs=2",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("correct", overrides=overrides)
    cfg.paths.output_dir = str(tmp_path / "run")
    summary = run_correction_experiment(OmegaConf.to_container(cfg, resolve=True))
    methods = set(summary["metrics"])
    assert {
        "nearest_neighbour",
        "bag_of_words",
        "corrector_0_steps",
        "corrector_2_steps",
    } <= methods
    assert "corrector_beam2_2_steps" in methods
    assert len(summary["mean_cosine_by_step"]) == 3
    assert summary["train"]["second_round_pairs"] == 16
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["metrics"]["corrector_1_steps"]["n"] == 4
    assert load_corrector(summary["corrector_path"]).config.embedder_name == embedder.name
