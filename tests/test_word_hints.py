"""The prefix LM that reads word hints: out-of-fold hint heads, offsets, save/load."""

from __future__ import annotations

import pytest
import torch
from helpers import MAX_TOKENS, TEXTS, fake_embeddings, make_trainer, states_equal, tiny_inverter

from invert.errors import InvertError
from invert.models.loading import load_inverter
from invert.training.hints import fit_hint_heads

HINTS = 3
HEAD = dict(hint_tokens=HINTS, hint_vocabulary=64, hint_hidden_dim=32)


def token_sets(inverter, texts):
    ids = inverter.tokenizer(
        texts, add_special_tokens=False, max_length=MAX_TOKENS, truncation=True
    )
    return [set(row) for row in ids["input_ids"]]


def precision(hints, truth):
    return (
        sum(len(set(row.tolist()) & t) for row, t in zip(hints, truth, strict=True)) / hints.numel()
    )


@pytest.fixture(scope="module")
def hinted(tmp_path_factory):
    """A tiny hinted inverter trained to memorize the 8 texts behind its own head's hints (the
    hints generation reads; a run trains on out-of-fold ones, which here would differ)."""
    inverter = tiny_inverter(**HEAD)
    embeddings = fake_embeddings()
    fit_hint_heads(inverter, TEXTS, embeddings, folds=2, epochs=300, lr=1e-2, seed=0)
    hints = inverter.hints(embeddings)
    trainer = make_trainer(inverter, tmp_path_factory.mktemp("hinted"), embeddings=embeddings,
                           hints=hints, max_steps=120, lr=3e-3, warmup_steps=10)  # fmt: skip
    trainer.train()
    inverter.eval()
    return inverter, embeddings, hints


def test_out_of_fold_hints_come_from_heads_that_never_saw_the_pair():
    # Random embeddings say nothing about an unseen text: the full head, fit on every pair,
    # names only tokens of each pair's own text, and the out-of-fold heads cannot.
    inverter = tiny_inverter(**HEAD)
    embeddings = fake_embeddings()
    oof = fit_hint_heads(inverter, TEXTS, embeddings, folds=2, epochs=300, lr=1e-2, seed=0)
    truth = token_sets(inverter, TEXTS)
    assert oof.shape == (len(TEXTS), HINTS)
    assert precision(inverter.hints(embeddings), truth) == 1.0
    assert precision(oof, truth) < 0.7


def test_hinted_inverter_reconstructs_its_training_texts(hinted):
    inverter, embeddings, _ = hinted
    assert inverter.generate_texts(embeddings) == TEXTS


def test_token_logits_line_up_with_generation_after_the_hints(hinted):
    # Greedy decoding picks, at every position, the argmax of token_logits over the text so far:
    # the offset past [prefix; hints; separator] must be right for the edit proposer to work.
    inverter, embeddings, _ = hinted
    batch = inverter.tokenizer(TEXTS, add_special_tokens=False, padding=True, return_tensors="pt")
    logits = inverter.token_logits(embeddings, batch["input_ids"], batch["attention_mask"])
    lengths = batch["attention_mask"].sum(1)
    for row, length in enumerate(lengths.tolist()):
        predicted = logits[row, :length].argmax(-1)
        assert torch.equal(predicted, batch["input_ids"][row, :length])


def test_hint_head_saves_and_reloads_with_the_inverter(hinted, tmp_path):
    inverter, embeddings, _ = hinted
    inverter.save_pretrained(tmp_path / "inverter")
    loaded = load_inverter(tmp_path / "inverter")
    assert states_equal(inverter, loaded)
    assert torch.equal(loaded.hints(embeddings), inverter.hints(embeddings))
    assert loaded.generate_texts(embeddings) == TEXTS


def test_hint_heads_stay_frozen_while_the_lm_trains(hinted):
    inverter, _, _ = hinted
    assert not any(p.requires_grad for p in inverter.hint_head.parameters())


def test_fit_hint_heads_refuses_an_inverter_without_hints_and_too_few_pairs():
    with pytest.raises(InvertError, match="hint_tokens"):
        fit_hint_heads(tiny_inverter(), TEXTS, fake_embeddings())
    with pytest.raises(InvertError, match="folds"):
        fit_hint_heads(tiny_inverter(**HEAD), TEXTS[:1], fake_embeddings(1), folds=2)
