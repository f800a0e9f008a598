"""Sizing the weights-vs-activations tuned methods' matched steps to the wall-time budget."""

from __future__ import annotations

import logging

import pytest
import torch

from invert.errors import InvertError
from invert.memorization.private_corpus import CharTokenizer
from invert.memorization.target_models import build_gpt
from invert.privacy.knowledge_base import build_knowledge_base
from invert.privacy.wva_budget import MIN_BUDGETED_STEPS, budgeted_steps, size_training


def test_steps_are_what_the_minutes_pay_for_never_more_than_configured():
    # 1.5 s + 0.5 s a matched step: 10 minutes pay for 300 steps.
    assert budgeted_steps(512, {"full": 1.5, "lora": 0.5}, 10.0) == 300
    assert budgeted_steps(200, {"full": 1.5, "lora": 0.5}, 10.0) == 200


def test_a_budget_too_small_trains_the_minimum_and_says_it_will_overrun(caplog):
    with caplog.at_level(logging.WARNING):
        assert budgeted_steps(512, {"full": 1.0}, -3.0) == MIN_BUDGETED_STEPS
    assert "overrun" in caplog.text
    assert budgeted_steps(20, {"full": 1.0}, 0.0) == 20


def test_a_missing_or_zero_step_time_is_refused():
    with pytest.raises(InvertError, match="positive step time"):
        budgeted_steps(512, {}, 10.0)
    with pytest.raises(InvertError, match="positive step time"):
        budgeted_steps(512, {"lora": 0.0}, 10.0)


def _wva(tmp_path, total_minutes):
    lm = tmp_path / "char_lm"
    build_gpt(2, 32, 2, len(CharTokenizer()), 256, seed=0).save_pretrained(lm)
    return {
        "lm": str(lm), "tuning": {"lora_r": 2, "lora_alpha": 4, "num_virtual_tokens": 2},
        "train": {"max_steps": 400, "batch_size": 4, "lr": {"full": 1e-3, "lora": 1e-3},
                  "mixed_precision": "no", "max_length": 64},
        "budget": {"total_minutes": total_minutes, "reserve_minutes_per_tuned": 1.0,
                   "reserve_per_none_minute": 2.0, "timing_steps": 2},
    }  # fmt: skip


def test_each_tuned_regime_is_timed_once_and_the_random_state_is_kept(tmp_path):
    wva = _wva(tmp_path, 1000)
    texts = build_knowledge_base(n_people=4, seed=0).training_texts(0)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    train, budget = size_training(
        wva, ["none", "rag", "full", "rag+lora"], CharTokenizer(), texts, tmp_path / "b", 0.0
    )
    assert torch.equal(torch.rand(3), expected)
    assert set(budget["seconds_per_step"]) == {"full", "lora"}
    assert min(budget["seconds_per_step"].values()) > 0
    # Two tuned methods (full, rag+lora) get a reserve each; a long budget pays for every step.
    assert budget["reserve_minutes"] == pytest.approx(2.0)
    assert train["max_steps"] == budget["steps"] == 400
    assert wva["train"]["max_steps"] == 400  # the config itself is left as it was


def test_a_slow_none_stage_grows_the_reserve_and_a_short_budget_cuts_the_steps(tmp_path):
    wva = _wva(tmp_path, 5.0)
    wva["train"]["max_steps"] = 10**9  # more than any CPU trains in two minutes
    texts = build_knowledge_base(n_people=4, seed=0).training_texts(0)
    train, budget = size_training(
        wva, ["lora"], CharTokenizer(), texts, tmp_path / "b", 1.0, none_seconds=60.0
    )
    assert budget["reserve_minutes"] == pytest.approx(2.0)  # 2.0 x the none stage's 1 minute
    left = 5.0 - budget["elapsed_minutes"] - 2.0
    assert train["max_steps"] == int(60 * left / budget["seconds_per_step"]["lora"]) < 10**9


def test_without_a_budget_nothing_is_timed(tmp_path):
    wva = _wva(tmp_path, None)
    train, budget = size_training(wva, ["full"], CharTokenizer(), ["a b"], tmp_path / "b", 0.0)
    assert budget == {} and train["max_steps"] == 400
