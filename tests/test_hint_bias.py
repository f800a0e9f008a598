"""The decoding pull toward the hinted tokens (invert.models.hint_bias)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TEXTS, fake_embeddings, tiny_inverter

from invert.errors import InvertError
from invert.models.hint_bias import HintCoverageBias, set_hint_bias
from invert.models.loading import load_inverter
from invert.training.hints import fit_hint_heads

HEAD = dict(hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=32)


def test_bonus_goes_to_likely_unwritten_tokens_only():
    token_ids = torch.tensor([5, 7, 9])
    probabilities = torch.tensor([[0.8, 0.05, 0.2], [0.01, 0.5, 0.9]])
    bias = HintCoverageBias(token_ids, probabilities, vocab_size=12, strength=2.0, floor=0.05)
    scores = torch.zeros(2, 12)
    written = torch.tensor([[5], [3]])  # row 0 has written token 5 already
    out = bias(written, scores)
    assert out[0, 5] == 0  # written: no more bonus
    assert out[0, 7] == 0  # at the floor: none
    assert out[0, 9] == pytest.approx(2 * math.log(0.2 / 0.05))
    assert out[1, 7] == pytest.approx(2 * math.log(0.5 / 0.05))
    assert out[1, 9] == pytest.approx(2 * math.log(0.9 / 0.05))
    assert out[1, 5] == 0 and out[:, [0, 1, 2, 3, 4, 6, 8, 10, 11]].abs().sum() == 0


def test_bonus_follows_each_text_into_its_beams():
    bias = HintCoverageBias(torch.tensor([1]), torch.tensor([[0.9], [0.01]]), 4, strength=1.0)
    out = bias(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, 4))  # 2 texts x 2 beams
    assert out[0, 1] == out[1, 1] > 0 and out[2, 1] == out[3, 1] == 0


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(InvertError, match="strength"):
        HintCoverageBias(torch.tensor([1]), torch.tensor([[0.5]]), 4, strength=-1.0)
    with pytest.raises(InvertError, match="hint tokens|word hints"):
        set_hint_bias(tiny_inverter(), 1.0)
    with pytest.raises(InvertError, match="hint_bias"):
        tiny_inverter(**HEAD, hint_bias_floor=1.5)


def written_tokens(inverter, embeddings):
    tok = inverter.tokenizer
    ids = inverter._generate_ids(embeddings, num_beams=1, do_sample=False, max_new_tokens=12,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    return [set(row.tolist()) for row in ids]


def test_an_untrained_lm_writes_the_hinted_tokens_when_pulled(tmp_path):
    # The head, fit on the 8 texts, is sure of each text's tokens; an LM that never trained
    # writes them only when the bias pulls it there, and keeps the pull after a reload.
    inverter = tiny_inverter(**HEAD)
    embeddings = fake_embeddings()
    fit_hint_heads(inverter, TEXTS, embeddings, folds=2, epochs=300, lr=1e-2, seed=0)
    probabilities = torch.sigmoid(inverter.hint_head(embeddings))
    sure = [set(inverter.hint_head.token_ids[row > 0.5].tolist()) for row in probabilities]
    assert all(sure)

    def coverage(model):
        written = written_tokens(model, embeddings)
        return sum(len(s & w) for s, w in zip(sure, written, strict=True)) / sum(map(len, sure))

    unaided = coverage(inverter)
    set_hint_bias(inverter, 20.0)
    assert coverage(inverter) == 1.0 > unaided
    inverter.save_pretrained(tmp_path / "inverter")
    assert coverage(load_inverter(tmp_path / "inverter")) == 1.0
    set_hint_bias(inverter, 0.0)
    assert coverage(inverter) == unaided
