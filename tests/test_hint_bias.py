"""The decoding pull toward the hinted tokens (invert.models.hint_bias)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TEXTS, fake_embeddings, tiny_inverter

from invert.errors import InvertError
from invert.models.hint_bias import DraftCopyBias, HintCoverageBias, set_draft_bias, set_hint_bias
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


def assert_pull_writes_them(inverter, embeddings, expected, set_pull, strength, folder):
    """An unaided LM misses some of ``expected`` (a token set per text); pulled, it writes all,
    and after a reload too; with the pull off it writes what it wrote unaided."""

    def coverage(model):
        written = written_tokens(model, embeddings)
        return sum(len(e & w) for e, w in zip(expected, written, strict=True)) / sum(map(len, expected))

    unaided = coverage(inverter)
    set_pull(inverter, strength)
    assert coverage(inverter) == 1.0 > unaided
    inverter.save_pretrained(folder)
    assert coverage(load_inverter(folder)) == 1.0
    set_pull(inverter, 0.0)
    assert coverage(inverter) == unaided


def test_an_untrained_lm_writes_the_hinted_tokens_when_pulled(tmp_path):
    # The head, fit on the 8 texts, is sure of each text's tokens; an LM that never trained
    # writes them only when the bias pulls it there, and keeps the pull after a reload.
    inverter = tiny_inverter(**HEAD)
    embeddings = fake_embeddings()
    fit_hint_heads(inverter, TEXTS, embeddings, folds=2, epochs=300, lr=1e-2, seed=0)
    probabilities = torch.sigmoid(inverter.hint_head(embeddings))
    sure = [set(inverter.hint_head.token_ids[row > 0.5].tolist()) for row in probabilities]
    assert all(sure)
    assert_pull_writes_them(inverter, embeddings, sure, set_hint_bias, 20.0, tmp_path / "inverter")


def test_the_draft_pull_goes_to_unwritten_draft_tokens_except_padding():
    drafts = torch.tensor([[4, 6, 0, 0], [6, 6, 2, 0]])  # 0 pads, 2 ends the text
    bias = DraftCopyBias(drafts, vocab_size=8, strength=3.0, ignore_ids=(0, 2))
    out = bias(torch.tensor([[6], [1]]), torch.zeros(2, 8))
    assert out[0].tolist() == [0, 0, 0, 0, 3.0, 0, 0, 0]  # 6 is written already
    assert out[1].tolist() == [0, 0, 0, 0, 0, 0, 3.0, 0]
    with pytest.raises(InvertError, match="strength"):
        DraftCopyBias(drafts, 8, strength=-1.0)


def test_a_token_both_hinted_and_drafted_gets_the_larger_bonus():
    hints = HintCoverageBias(torch.tensor([1, 2]), torch.tensor([[0.5, 0.9]]), 4, strength=1.0)
    drafted = DraftCopyBias(torch.tensor([[2, 3]]), 4, strength=2.5)
    out = hints.merged(drafted)(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 4))[0]
    assert out[1] == pytest.approx(math.log(0.5 / 0.05))
    assert out[2] == pytest.approx(max(math.log(0.9 / 0.05), 2.5))
    assert out[3] == 2.5 and out[0] == 0
    with pytest.raises(InvertError, match="shapes"):
        hints.merged(DraftCopyBias(torch.tensor([[1], [2]]), 4, strength=1.0))


def test_the_draft_pull_needs_an_inverter_that_reads_drafts():
    with pytest.raises(InvertError, match="draft_tokens"):
        set_draft_bias(tiny_inverter(), 1.0)
    with pytest.raises(InvertError, match=">= 0"):
        set_draft_bias(tiny_inverter(draft_tokens=4), -1.0)
    with pytest.raises(InvertError, match="draft_bias"):
        tiny_inverter(draft_tokens=4, draft_bias=-2.0)
    with pytest.raises(InvertError, match="draft_tokens > 0"):
        tiny_inverter(draft_bias=2.0)


def test_an_untrained_lm_writes_its_drafts_tokens_when_pulled(tmp_path):
    # An LM that never trained ignores the draft it reads; the pull makes it write the draft's
    # tokens (each text's nearest training text is itself), and the pull survives a reload.
    inverter = tiny_inverter(draft_tokens=6)
    embeddings = fake_embeddings()
    inverter.set_draft_corpus(TEXTS, embeddings)
    ignore = {inverter.config.hint_separator_id, inverter.tokenizer.eos_token_id}
    drafted = [set(row.tolist()) - ignore for row in inverter.drafts(embeddings)]
    assert_pull_writes_them(inverter, embeddings, drafted, set_draft_bias, 30.0, tmp_path / "inverter")
