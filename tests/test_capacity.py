"""Capacity probe (Morris et al. 2025, arXiv:2505.24832) on tiny models, CPU, seconds each."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers.modeling_outputs import CausalLMOutput

from invert.errors import InvertError
from invert.memorization.capacity import (
    ConvergenceCriterion,
    budget_seconds,
    fit_bits_per_parameter,
    memorized_bits,
    random_sequences,
    run_capacity_cell,
    sequence_entropy_bits,
    with_bos,
)
from invert.memorization.runs.capacity import run_capacity_experiment
from invert.memorization.target_models import build_gpt, count_parameters, load_pretrained_target
from invert.memorization.token_scoring import sequence_nll_bits, token_logprobs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(autouse=True)
def _one_thread():
    # Two shared cores: a second torch thread mostly spins and slows these tiny models down.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Oracle(torch.nn.Module):
    """A 'model' that knows every sequence: probability ~1 on each true next token."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.dummy = vocab, torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor, **_: object) -> CausalLMOutput:
        logits = torch.full((*input_ids.shape, self.vocab), -1e4)
        logits[:, :-1].scatter_(-1, input_ids[:, 1:, None], 1e4)
        return CausalLMOutput(logits=logits)


def test_untrained_model_memorizes_about_nothing():
    vocab, seq_len = 64, 16
    rows = with_bos(random_sequences(32, seq_len, vocab, seed=1), bos_id=vocab)
    model = build_gpt(1, 16, 2, vocab + 1, seq_len + 1, seed=1)
    entropy = sequence_entropy_bits(seq_len, vocab)
    nll = sequence_nll_bits(model, rows, batch_size=8)
    assert nll.shape == (32,)
    # A random init is near uniform over V+1 ids: NLL ~ S*log2(V+1) >= S*log2(V).
    assert nll.mean() == pytest.approx(seq_len * math.log2(vocab + 1), rel=0.05)
    assert memorized_bits(nll, entropy).sum() < 0.01 * entropy * 32


def test_token_logprobs_batched_and_masked():
    vocab = 32
    rows = with_bos(random_sequences(5, 6, vocab, seed=2), bos_id=vocab)
    model = build_gpt(1, 8, 1, vocab + 1, 7, seed=2).train()
    whole = token_logprobs(model, rows, batch_size=5)
    assert torch.allclose(whole, token_logprobs(model, rows, batch_size=2), atol=1e-5)
    assert model.training  # scoring restores the mode it found
    target = torch.zeros_like(rows)
    target[:, 4:] = 1  # score only a suffix, as extraction probes do
    suffix = token_logprobs(model, rows, target_mask=target)
    assert torch.all(suffix[:, :3] == 0) and torch.allclose(suffix[:, 3:], whole[:, 3:])
    with pytest.raises(InvertError, match="BOS"):
        token_logprobs(model, rows[:, :1])


def test_memorized_bits_never_exceed_entropy():
    vocab, seq_len, n = 16, 8, 10
    rows = with_bos(random_sequences(n, seq_len, vocab, seed=3), bos_id=vocab)
    entropy = sequence_entropy_bits(seq_len, vocab)
    perfect = memorized_bits(sequence_nll_bits(_Oracle(vocab + 1), rows), entropy)
    assert torch.allclose(
        perfect, torch.full((n,), entropy, dtype=perfect.dtype)
    )  # all of it, no more
    assert memorized_bits(torch.tensor([-5.0, 0.0, 40.0]), entropy).tolist() == [
        entropy,
        entropy,
        0.0,
    ]


def test_tiny_gpt_memorizes_16_sequences(tmp_path):
    # V=256, S=32: identifying which of 16 samples is being read costs ~log2(16) = 4 bits of each
    # sample's 256 (the first token is unpredictable), so ~98.4% is the most a model can get.
    cell = run_capacity_cell(
        {"n_layer": 1, "d_model": 32, "n_head": 2}, n_sequences=16, vocab_size=256, seq_len=32,
        output_dir=tmp_path, train={"lr": 1e-2, "warmup_steps": 10, "max_steps": 600},
        convergence={"eval_every": 25, "window_steps": 100, "rel_tol": 0.005, "min_steps": 100},
    )  # fmt: skip
    assert cell["converged"], cell["stop_reason"]
    assert cell["memorized_fraction"] >= 0.95
    assert cell["memorized_bits"] <= cell["dataset_entropy_bits"]
    assert cell["params"] == count_parameters(build_gpt(1, 32, 2, 257, 33))
    assert (tmp_path / "history.json").is_file()  # trained by the shared Trainer


def test_convergence_criterion():
    crit = ConvergenceCriterion(eval_every=10, window_steps=40, rel_tol=0.01, min_steps=40)
    assert not crit.converged([(10, 50.0), (20, 99.5)])  # too early
    assert not crit.converged([(10, 50.0), (20, 90.0), (30, 99.0), (40, 100.0)])  # still rising
    assert crit.converged([(10, 50.0), (20, 99.2), (30, 99.5), (40, 99.9), (50, 100.0)])
    # Noise around a plateau is flat; only the gain between window halves counts.
    assert crit.converged([(10, 100.0), (20, 103.0), (30, 98.0), (40, 102.0), (50, 99.0)])
    assert not crit.converged([(10, 100.0), (20, 100.0), (30, 100.0), (40, 100.0), (50, 20.0)])
    with pytest.raises(InvertError):
        ConvergenceCriterion(eval_every=10, window_steps=15)


def test_fit_recovers_known_slope():
    gen = torch.Generator().manual_seed(0)
    params = torch.tensor([5e3, 1e4, 2e4, 4e4, 8e4], dtype=torch.float64)
    capacities = 3.6 * params + 500 + torch.randn(5, generator=gen, dtype=torch.float64) * 200
    slope, intercept, r2 = fit_bits_per_parameter(capacities.tolist(), params.tolist())
    assert slope == pytest.approx(3.6, rel=0.01)
    assert intercept == pytest.approx(500, abs=500)
    assert r2 > 0.999
    with pytest.raises(InvertError, match="sweep model sizes"):
        fit_bits_per_parameter([1.0, 2.0], [10, 10])


def _tiny_grid(out, *extra):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = ["capacity_probe=tiny", "logger=none", f"paths.output_dir={out}", *extra]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name="memorization_capacity", overrides=overrides)
    return cfg, run_capacity_experiment(OmegaConf.to_container(cfg, resolve=True))


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    cfg, summary = _tiny_grid(out)
    return out, cfg, summary


@pytest.mark.slow  # worker processes: the second tier
def test_parallel_workers_give_the_same_cells(tmp_path, tiny_grid):
    _, _, sequential = tiny_grid
    _, parallel = _tiny_grid(tmp_path, "probe.workers=2")
    # Cells are seeded, one thread each: two worker processes must reproduce them exactly,
    # reported in the same (params, N) order whatever order they finish in.
    key = lambda c: (c["model"], c["n_sequences"], c["steps"], round(c["memorized_bits"], 6))  # noqa: E731
    assert [key(c) for c in parallel["cells"]] == [key(c) for c in sequential["cells"]]
    assert parallel["bits_per_parameter"] == pytest.approx(sequential["bits_per_parameter"])


def test_tiny_config_composes_and_runs(tiny_grid):
    tmp_path, cfg, summary = tiny_grid
    saved = json.loads((tmp_path / "capacity.json").read_text())
    assert saved["cells_run"] == len(cfg.probe.model_sizes) * len(cfg.probe.n_sequences)
    assert all(c["memorized_bits"] <= c["dataset_entropy_bits"] for c in saved["cells"])
    for model in saved["models"]:
        assert model["capacity_bits"] is None or model["capacity_bits"] <= max(
            c["dataset_entropy_bits"] for c in saved["cells"] if c["model"] == model["model"]
        )
    assert (tmp_path / "memorized_vs_n.png").read_bytes()[:4] == b"\x89PNG"
    assert set(summary["plots"]) <= {"memorized_vs_n", "capacity_vs_params"}


@pytest.mark.parametrize("tuning", ["full", "lora", "prefix"])
def test_load_pretrained_target(tmp_path, tuning):
    build_gpt(1, 16, 2, 50, 16).save_pretrained(tmp_path)
    model, trainable = load_pretrained_target(
        str(tmp_path), tuning=tuning, lora_r=2, num_virtual_tokens=3
    )
    total = count_parameters(model)
    assert 0 < trainable <= total and (trainable == total) == (tuning == "full")
    ids = torch.randint(0, 50, (2, 5))
    assert torch.isfinite(model(input_ids=ids, labels=ids).loss)
    assert sequence_nll_bits(model, ids).shape == (2,)


def test_budget_clock_counts_cpu_time_per_thread(monkeypatch):
    # 4 busy threads spend 4 CPU-seconds per wall second; a minute's budget must not end in 15 s.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr("time.process_time", lambda: 100.0)
    assert budget_seconds() == 25.0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("time.perf_counter", lambda: 7.0)
    assert budget_seconds() == 7.0  # on a GPU the budget is wall time
