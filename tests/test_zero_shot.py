"""Zero-shot guided search: a wider beam never finds worse texts; the embedder is called sparingly."""

from __future__ import annotations

import pytest
import torch
from correction_helpers import CountingEmbedder, HashWordEmbedder
from helpers import TEXTS, TINY_LLAMA, tokenizer_path
from transformers import AutoConfig, AutoModelForCausalLM

from invert.errors import DimensionMismatchError
from invert.inversion.search.zero_shot import zero_shot_invert
from invert.models.pretrained_lm import load_tokenizer


@pytest.fixture(scope="module")
def lm_and_tokenizer():
    tokenizer = load_tokenizer(tokenizer_path())
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(
        AutoConfig.for_model(**{**TINY_LLAMA, "vocab_size": len(tokenizer)})
    )
    return lm.eval(), tokenizer


def test_cosine_rises_with_beam_width(lm_and_tokenizer):
    # Two one-token blocks: beam k keeps every first-block text, so its second-block candidates
    # contain beam 1's, and beam k*k's equal beam k's (an exhaustive search) — nested by design.
    lm, tok = lm_and_tokenizer
    embedder = HashWordEmbedder()
    targets = embedder.encode(TEXTS)
    k = 4
    best = []
    for width in (1, k, k * k):
        res = zero_shot_invert(targets, embedder, lm, tok, beam_width=width, top_k=k, max_tokens=2)
        best.append(torch.tensor(res.cosines))
        steps = torch.tensor(res.best_cosine_by_step)
        assert (steps[1:] >= steps[:-1] - 1e-6).all()
    assert (best[1] >= best[0] - 1e-6).all() and (best[2] >= best[1] - 1e-6).all()
    assert torch.allclose(best[1], best[2])
    assert best[1].mean() > best[0].mean() + 0.01  # and the wider beam does find better texts


def test_each_text_embedded_once_per_search(lm_and_tokenizer):
    lm, tok = lm_and_tokenizer
    counting = CountingEmbedder(HashWordEmbedder())
    targets = counting.inner.encode(TEXTS[:2])
    res = zero_shot_invert(
        targets, counting, lm, tok, beam_width=3, top_k=3, block_size=2, max_tokens=6
    )
    assert len(counting.calls) == res.embedder_calls <= 3
    seen = [t for call in counting.calls for t in call]
    assert len(seen) == len(set(seen)) == res.embedded_texts
    assert all(text.strip() for text in res.texts)


def test_early_stop_and_dimension_check(lm_and_tokenizer):
    lm, tok = lm_and_tokenizer
    embedder = HashWordEmbedder()
    targets = embedder.encode(TEXTS[:2])
    res = zero_shot_invert(
        targets, embedder, lm, tok, beam_width=2, top_k=2, max_tokens=4, early_stop_cosine=-2
    )
    assert len(res.best_cosine_by_step) == 1  # every example stops after the first block
    with pytest.raises(DimensionMismatchError):
        zero_shot_invert(torch.zeros(1, 3), embedder, lm, tok)
