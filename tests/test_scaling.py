"""Capacity scaling (Morris et al. 2025, arXiv:2505.24832) on tiny models, CPU, seconds each."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from invert.errors import InvertError, UnknownNameError
from invert.memorization.ngram import TokenNgramModel
from invert.memorization.scaling import build_source, held_out_threshold_f1, run_scaling_cell
from invert.memorization.target_models import build_gpt, count_parameters

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
TRAIN = {"lr": 3e-2, "batch_size": 64, "warmup_steps": 5, "schedule": "linear", "epochs": 20,
         "min_steps": 40, "max_steps": 60, "max_minutes": None, "weight_decay": 0.0,
         "max_grad_norm": 1.0, "log_every": 20}  # fmt: skip


def _compose(out: Path, *extra: str) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = ["scaling_probe=tiny", "logger=none", f"paths.output_dir={out}", *extra]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="memorization_scaling", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    from invert.memorization.runs.scaling import run_scaling_experiment

    out = tmp_path_factory.mktemp("scaling")
    cfg = _compose(out)
    return out, cfg, run_scaling_experiment(cfg)


def test_scaling_runner_f1_falls_as_n_grows_on_a_toy_grid(tiny_grid):
    _, cfg, summary = tiny_grid
    cells = sorted(summary["cells"], key=lambda c: c["n_sequences"])
    assert [c["n_sequences"] for c in cells] == cfg["probe"]["n_sequences"]
    assert cells[0]["dataset_to_capacity"] < 0.2 and cells[-1]["dataset_to_capacity"] > 5
    f1s, aucs = [c["f1"] for c in cells], [c["auc"] for c in cells]
    # Well below capacity the members are memorized and the attack near perfect; far past it
    # each member holds only a sliver of the model, and the attack drifts toward chance.
    assert f1s[0] > 0.9 and aucs[0] > 0.95
    assert all(later <= earlier + 0.02 for earlier, later in zip(f1s, f1s[1:], strict=False))
    assert f1s[-1] < f1s[0] - 0.2 and aucs[-1] < aucs[0] - 0.2
    assert all(c["auc_ci_low"] <= c["auc"] <= c["auc_ci_high"] for c in cells)
    # Memorizing random tokens can only push held-out loss above uniform (log2 V = 4 bits).
    assert all(c["test_loss"] > c["reference_loss"] == 4.0 for c in cells)
    assert summary["f1_at_largest_ratio"] == pytest.approx(f1s[-1])


def test_random_dataset_bits_are_n_s_log2_v(tiny_grid):
    _, cfg, summary = tiny_grid
    probe = cfg["probe"]
    params = count_parameters(build_gpt(1, 8, 1, probe["vocab_size"] + 1, probe["seq_len"] + 1))
    for cell in summary["cells"]:
        bits = cell["n_sequences"] * probe["seq_len"] * math.log2(probe["vocab_size"])
        assert cell["dataset_bits"] == bits
        assert cell["params"] == params
        assert cell["capacity_bits"] == pytest.approx(probe["bits_per_parameter"] * params)
        assert cell["dataset_to_capacity"] == pytest.approx(bits / cell["capacity_bits"])
        assert 0 <= cell["memorized_bits"] <= bits


def test_runner_writes_its_json_table_and_plots(tiny_grid):
    out, cfg, summary = tiny_grid
    saved = json.loads((out / "scaling.json").read_text())
    assert len(saved["cells"]) == len(cfg["probe"]["n_sequences"]) and saved["models"]
    with (out / "table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["n_sequences"]) for r in rows] == cfg["probe"]["n_sequences"]
    assert {"dataset_to_capacity", "train_loss", "test_loss", "f1", "auc"} <= set(rows[0])
    assert (out / "table.md").read_text().count("\n") == 2 + len(rows)
    for name in ("membership_vs_ratio", "loss_vs_ratio"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert Path(summary["plots"][name]) == out / f"{name}.png"


def test_unknown_data_source_is_refused_with_the_known_names(tmp_path):
    from invert.memorization.runs.scaling import run_scaling_experiment

    with pytest.raises(UnknownNameError, match=r"'bogus'.*random, text"):
        build_source("bogus", seq_len=8, seed=0)
    out = tmp_path / "run"
    with pytest.raises(UnknownNameError, match="random, text"):
        run_scaling_experiment(_compose(out, "probe.data=bogus"))
    assert not out.exists()  # refused before the run folder was made
    with pytest.raises(InvertError, match="vocab_size"):
        build_source("random", seq_len=8, seed=0)


def test_held_out_f1_is_chance_without_signal_and_one_across_a_gap():
    rng = np.random.default_rng(0)
    noise = [
        held_out_threshold_f1(rng.normal(size=500), rng.normal(size=500), seed=s) for s in range(20)
    ]
    assert np.mean([r["f1"] for r in noise]) == pytest.approx(0.5, abs=0.03)
    assert np.mean([r["accuracy"] for r in noise]) == pytest.approx(0.5, abs=0.03)
    gap = held_out_threshold_f1(rng.normal(size=50) + 10, rng.normal(size=50))
    assert gap == {"f1": 1.0, "accuracy": 1.0}
    with pytest.raises(InvertError, match="raise N"):
        held_out_threshold_f1(np.ones(1), np.ones(5))


def test_ngram_is_normalized_and_prices_text_below_uniform():
    source = build_source("text", seq_len=32, seed=0, corpus="fortunes", ngram_order=4,
                          ngram_fit_sequences=3000)  # fmt: skip
    ngram, vocab = source.ngram, source.model_vocab_size
    rows = source.members(1).repeat(vocab, 1)
    rows[:, 10] = torch.arange(vocab)  # every possible token after one context
    assert float(ngram.token_probabilities(rows[:, :11])[:, 9].sum()) == pytest.approx(1.0)
    bits = source.dataset_bits(source.members(200)) / (200 * 32)
    assert 1.0 < bits < 0.75 * math.log2(vocab)  # text is far more predictable than uniform
    assert source.reference_loss(source.members(200)) == pytest.approx(bits)
    with pytest.raises(InvertError, match="lower the order"):
        TokenNgramModel(order=20, vocab_size=103)


def test_text_members_and_non_members_are_disjoint_parts_of_one_pool():
    source = build_source("text", seq_len=64, seed=1, corpus="fortunes", ngram_order=3,
                          ngram_fit_sequences=1000)  # fmt: skip
    pool = source.pool
    members, non_members = source.members(300), source.non_members(200, n_members=300)
    assert torch.equal(members, pool[:300]) and torch.equal(non_members, pool[-200:])
    assert pool.shape[0] > 500 and bool((members[:, 0] == source.bos_id).all())
    assert torch.equal(source.members(100), members[:100])  # a smaller N is a prefix
    with pytest.raises(InvertError, match="lower N"):
        source.non_members(pool.shape[0], n_members=1)


def test_a_cell_is_deterministic_for_its_seed(tmp_path):
    source = build_source("random", seq_len=8, seed=3, vocab_size=16)
    size = {"n_layer": 1, "d_model": 8, "n_head": 1}
    runs = [run_scaling_cell(source, size, 40, tmp_path / str(i), TRAIN, 3.32, n_non_members=30,
                             seed=3, n_bootstrap=50) for i in range(2)]  # fmt: skip
    for run in runs:
        run.pop("seconds")
    assert runs[0] == runs[1]
    assert runs[0]["steps"] == 40 and runs[0]["n_non_members"] == 30
    assert (tmp_path / "0" / "history.json").is_file()  # trained by the shared Trainer
