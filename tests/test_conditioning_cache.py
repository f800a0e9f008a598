"""The conditioning's keys and values, kept per example: the edit proposer's repeated passes."""

from __future__ import annotations

import pytest
import torch
from helpers import CORRUPTED_TEXTS, TEXTS, fake_embeddings, tiny_inverter

from invert.errors import InvertError
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.models.base import tokenize_targets
from invert.models.conditioning_cache import ConditioningCache

READS = dict(hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=16, draft_tokens=4)


@pytest.fixture(scope="module")
def reader():
    """A tiny untrained prefix LM that reads prefix vectors, hints and a draft."""
    inverter = tiny_inverter(**READS).eval()
    inverter.set_draft_corpus(TEXTS, fake_embeddings(seed=1))
    return inverter


def test_cached_logits_equal_the_full_pass(reader):
    embeddings = fake_embeddings()
    batch = tokenize_targets(reader.tokenizer, CORRUPTED_TEXTS, 16)
    with torch.no_grad():
        full = reader.token_logits(embeddings, batch["input_ids"], batch["attention_mask"])
    cache = ConditioningCache(reader, embeddings, batch_size=3)
    cached = cache.token_logits(range(len(TEXTS)), batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    assert cached.shape == full.shape
    assert torch.allclose(cached[mask], full[mask], atol=1e-5)


def test_each_example_is_conditioned_once_and_rows_follow_their_example(reader):
    embeddings = fake_embeddings()
    cache = ConditioningCache(reader, embeddings)
    batch = tokenize_targets(reader.tokenizer, [TEXTS[0]] * 3, 16)
    # One text read after three examples' conditionings, the first example twice.
    logits = cache.token_logits([2, 5, 2], batch["input_ids"], batch["attention_mask"])
    assert len(cache) == 2
    assert torch.equal(logits[0], logits[2])
    assert not torch.allclose(logits[0], logits[1])
    cache.token_logits([5], batch["input_ids"][:1], batch["attention_mask"][:1])
    assert len(cache) == 2


def test_the_edit_proposer_proposes_the_same_with_and_without_the_cache(reader):
    embeddings = fake_embeddings()
    cached = InverterEditProposer(reader, embeddings, num_edits=3)
    plain = InverterEditProposer(reader, embeddings, num_edits=3)
    plain.conditioning = None  # the full pass every call
    examples = list(range(len(TEXTS)))
    assert cached.conditioning is not None
    assert cached(examples, CORRUPTED_TEXTS) == plain(examples, CORRUPTED_TEXTS)
    assert len(cached.conditioning) == len(TEXTS)


def test_only_a_decoder_only_prefix_lm_is_cached():
    hypothesis = tiny_inverter("hypothesis")
    assert not ConditioningCache.supports(hypothesis)
    with pytest.raises(InvertError, match="no decoder-only conditioning"):
        ConditioningCache(hypothesis, fake_embeddings())
    assert InverterEditProposer(hypothesis, fake_embeddings()).conditioning is None
    with pytest.raises(InvertError, match="batch_size"):
        ConditioningCache(tiny_inverter(), fake_embeddings(), batch_size=0)
    with pytest.raises(InvertError, match="example indices"):
        ConditioningCache(tiny_inverter(), fake_embeddings()).token_logits(
            [0, 1], torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long)
        )
