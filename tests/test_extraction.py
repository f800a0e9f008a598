"""Discoverable extraction (Carlini et al., arXiv:2012.07805, arXiv:2202.07646).

Exact rates come from a stub LM that always predicts "next character in string.printable", so
which texts are extractable is known by construction; a tiny GPT then shows that overfit
members are extractable while held-out texts and an untrained model's outputs are not.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from invert.errors import InvertError
from invert.memorization.extraction import (
    canary_extraction,
    extraction_by_repetition,
    extraction_rates,
    greedy_continuations,
    plot_extraction_vs_prefix,
)
from invert.memorization.private_corpus import (
    Canary,
    CharTokenizer,
    LMDataset,
    build_private_corpus,
    lm_collate,
)
from invert.memorization.target_models import build_gpt
from invert.training import Trainer, TrainerConfig


class NextCharLM(torch.nn.Module):
    """Predicts id + 1 after every id (no ``generate``: exercises the plain greedy loop)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(
            logits=torch.nn.functional.one_hot((input_ids + 1) % self.vocab, self.vocab).float()
        )


TOK = CharTokenizer()
RUN = "0123456789abcdefghijklmnopqrstuvwxyz"  # consecutive ids in CharTokenizer


def test_rates_are_exact_with_a_known_model():
    texts = [RUN, RUN[:12] + "zzzzzzzzzzzzzzzzzzzzzzzz", RUN[:10]]
    rates = extraction_rates(
        NextCharLM(len(TOK)), TOK, texts, prefix_lengths=[4, 12], suffix_length=8
    )
    # k=4: both long texts continue "456789ab" (text 2 breaks only after 12 chars); the
    # 10-char text is too short for 4 + 8 tokens and is skipped.
    assert rates[4] == {"extractable": 1.0, "token_match": 1.0, "n": 2}
    # k=12: text 1 continues "cdefghij"; text 2's "zzzzzzzz" shares no token with it.
    assert rates[12] == {"extractable": 0.5, "token_match": 0.5, "n": 2}
    with pytest.raises(InvertError, match="suffix_length"):
        extraction_rates(NextCharLM(len(TOK)), TOK, texts, suffix_length=0)


def test_canary_extraction_with_a_known_model():
    canaries = [Canary("0123", "4567", "89", 1), Canary("0123", "9999", "!", 16)]
    rows = canary_extraction(NextCharLM(len(TOK)), TOK, canaries)
    assert [r["extracted"] for r in rows] == [True, False]
    assert extraction_by_repetition(rows) == {1: 1.0, 16: 0.0}
    assert all("secret" not in r for r in rows)


def test_generate_path_matches_plain_greedy_loop():
    model = build_gpt(
        n_layer=1, d_model=32, n_head=2, vocab_size=len(TOK), context_length=32, seed=3
    )
    prompt = torch.tensor([TOK.encode("abc12"), TOK.encode("zz9yx")])
    fast = greedy_continuations(model, prompt, 10)
    ids = prompt
    with torch.no_grad():
        for _ in range(10):
            ids = torch.cat([ids, model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert fast.shape == (2, 10) and torch.equal(fast, ids[:, 5:])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    corpus = build_private_corpus(8, 8, 0, canary_repetitions=[1, 16], max_chars=48, seed=0)
    model = build_gpt(n_layer=2, d_model=64, n_head=4, vocab_size=len(TOK), context_length=64)
    untrained = build_gpt(n_layer=2, d_model=64, n_head=4, vocab_size=len(TOK), context_length=64)
    config = TrainerConfig(
        output_dir=str(tmp_path_factory.mktemp("extraction")), max_steps=120, batch_size=16,
        lr=3e-3, warmup_steps=5, log_every=1000,
    )  # fmt: skip
    Trainer(model, LMDataset(TOK, corpus.train_texts), lm_collate, config).train()
    return corpus, model.eval(), untrained.eval()


def test_overfit_members_are_extractable_held_out_texts_are_not(models, tmp_path):
    corpus, model, untrained = models
    args = dict(prefix_lengths=[8, 24], suffix_length=16)
    members = extraction_rates(model, TOK, corpus.members, **args)
    held_out = extraction_rates(model, TOK, corpus.non_members, **args)
    before = extraction_rates(untrained, TOK, corpus.members, **args)
    assert members[24]["extractable"] >= 0.75, members
    assert held_out[24]["extractable"] == 0.0 and before[24]["extractable"] == 0.0
    assert members[24]["token_match"] > held_out[24]["token_match"] + 0.3
    canaries = canary_extraction(model, TOK, corpus.canaries)
    assert extraction_by_repetition(canaries)[16] == 1.0
    assert not any(r["extracted"] for r in canary_extraction(untrained, TOK, corpus.canaries))
    curves = {"trained/members": members, "trained/non_members": held_out}
    assert plot_extraction_vs_prefix(curves, tmp_path / "x.png").stat().st_size > 0
