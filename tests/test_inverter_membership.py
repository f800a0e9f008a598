"""Membership inference against inverters: NLL alignment, overfit vs untrained, seen texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from correction_helpers import HashWordEmbedder
from helpers import TEXTS, make_trainer, tiny_inverter

from invert.errors import EmptyInputError
from invert.inversion.runs.preamble import training_record
from invert.models.base import tokenize_targets
from invert.privacy.inverter_membership import (
    conditional_nll,
    inverter_membership,
    run_inverter_membership,
)
from invert.training import Trainer, TrainerConfig
from invert.training.sampling import seen_example_indices

NON_MEMBERS = [
    "green apples grow on trees",
    "the train left at noon",
    "cold wind blew from the north",
    "he painted the fence white",
    "birds sing in the morning",
    "the clock struck twelve",
    "snow covered the old road",
    "we walked along the beach",
]
EMBEDDER = HashWordEmbedder()


@pytest.mark.parametrize("kind", ["prefix_lm", "hypothesis"])
def test_conditional_nll_matches_the_models_own_loss(kind):
    model = tiny_inverter(kind).eval()
    emb = EMBEDDER.encode(TEXTS)
    nll, counts = conditional_nll(model, emb, TEXTS, batch_size=3)
    batch = tokenize_targets(model.tokenizer, TEXTS, model.config.max_text_tokens)
    with torch.no_grad():
        loss = model(emb, **batch).loss
    # HF's loss is the mean over every target token of the batch: same sum, same count.
    assert counts.sum() == int((batch["labels"] != -100).sum())
    assert nll.sum() / counts.sum() == pytest.approx(float(loss), rel=1e-4)


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """A tiny prefix-LM inverter trained to memorize TEXTS from their HashWordEmbedder vectors."""
    model = tiny_inverter("prefix_lm")
    make_trainer(
        model, tmp_path_factory.mktemp("mia"), embeddings=EMBEDDER.encode(TEXTS), max_steps=150,
        lr=3e-3, warmup_steps=10, log_every=50,
    ).train()  # fmt: skip
    return model.eval()


def test_overfit_inverter_separates_its_training_texts(overfit):
    metrics, scores = inverter_membership(overfit, EMBEDDER, TEXTS, NON_MEMBERS, n_bootstrap=50)
    assert set(metrics) == {"loss", "zlib", "reconstruction_f1", "reconstruction_cosine", "blind"}
    for attack in ("loss", "zlib", "reconstruction_f1", "reconstruction_cosine"):
        assert metrics[attack]["auc"] > 0.9, (attack, metrics[attack])
    members_f1, _ = scores["reconstruction_f1"]
    assert np.all(members_f1 == 1.0)  # memorized: every training text comes back exactly


def test_untrained_inverter_is_near_chance():
    model = tiny_inverter("prefix_lm", seed=3).eval()
    words = "red blue cold warm river stone light dark song book tree road".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 5)) for _ in range(64)]
    metrics, _ = inverter_membership(
        model, EMBEDDER, texts[:32], texts[32:], attacks=["loss", "zlib"], n_bootstrap=50
    )
    for attack, m in metrics.items():
        assert 0.25 < m["auc"] < 0.75, (attack, m)


def test_membership_refuses_empty_sides(overfit):
    with pytest.raises(EmptyInputError, match="members and non-members"):
        inverter_membership(overfit, EMBEDDER, TEXTS, [])
    with pytest.raises(ValueError, match="known"):
        inverter_membership(overfit, EMBEDDER, TEXTS, NON_MEMBERS, attacks=["bogus"])


class _IndexModel(torch.nn.Module):
    """Records the dataset indices of every batch it trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def forward(self, index: torch.Tensor):
        self.seen.extend(index.tolist())
        return type("Out", (), {"loss": (self.w**2).sum() + 1.0})()


@pytest.mark.parametrize("steps", [3, 7])  # inside the first epoch; into the second
def test_seen_example_indices_replays_the_trainers_draws(tmp_path, steps):
    model = _IndexModel()
    cfg = TrainerConfig(output_dir=str(tmp_path), max_steps=steps, batch_size=2, seed=5,
                        log_every=100, eval_every=0, save_every=0)  # fmt: skip
    rows = [{"index": torch.tensor(i)} for i in range(10)]
    collate = lambda items: {"index": torch.stack([r["index"] for r in items])}  # noqa: E731
    Trainer(model, rows, collate, cfg).train()
    assert seen_example_indices(10, 5, steps * 2) == sorted(set(model.seen))


def test_run_inverter_membership_uses_the_texts_the_run_drew(tmp_path, overfit):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS + NON_MEMBERS * 1) + "\n")
    inverter_dir = tmp_path / "run" / "inverter"
    data = {"name": f"file:{corpus}", "seed": 0, "val_fraction": 0.2, "test_fraction": 0.3,
            "min_words": 2}
    # The folder records its corpus, split and how many examples the run drew: the audit
    # needs nothing else.
    overfit.config.training_data = training_record(data, train_seed=0, examples_seen=4)
    overfit.save_pretrained(inverter_dir)
    cfg = {
        "inverter_path": str(inverter_dir),
        "embedder": {"_target_": "correction_helpers.HashWordEmbedder"},
        "n": 100, "batch_size": 8, "seed": 0, "examples_seen": None, "train_seed": None,
        "attacks": ["loss", "reconstruction_f1"],
        "logger": {"kind": "none"}, "paths": {"output_dir": str(tmp_path / "out")},
    }  # fmt: skip
    summary = run_inverter_membership(cfg)
    assert summary["examples_seen"] == 4
    assert summary["n_members"] == summary["n_non_members"] <= 4
    assert (tmp_path / "out" / "roc.png").stat().st_size > 0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(saved["metrics"]) == {"loss", "reconstruction_f1", "blind"}
    assert "text" not in json.dumps(saved["metrics"])  # aggregates only
