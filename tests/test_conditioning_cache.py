"""The conditioning's keys and values, kept per example: the edit proposer's repeated passes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import CORRUPTED_TEXTS, TEXTS, TINY_LLAMA, fake_embeddings, tiny_inverter

from invert.errors import InvertError
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.models.base import tokenize_targets
from invert.models.conditioning_cache import ConditioningCache

# Two layers, so that a cache that mixed up its layers' keys and values would show.
READS = dict(hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=16, draft_tokens=4,
             lm_config={**TINY_LLAMA, "num_hidden_layers": 2})  # fmt: skip


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
    assert torch.allclose(logits[0], logits[2], atol=1e-6)
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
    proposals = cached(examples, CORRUPTED_TEXTS)
    assert all(proposals) and proposals == plain(examples, CORRUPTED_TEXTS)
    assert len(cached.conditioning) == len(TEXTS)


def test_cached_logits_follow_the_full_pass_under_bf16_autocast(reader):
    # The quick start's search runs the proposer under bf16 autocast: the cache is filled and
    # read there, and its logits round differently from the full pass's, but only by bf16's
    # precision.
    embeddings = fake_embeddings()
    batch = tokenize_targets(reader.tokenizer, CORRUPTED_TEXTS, 16)
    mask = batch["attention_mask"].bool()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        full = reader.token_logits(embeddings, batch["input_ids"], batch["attention_mask"]).float()
        cache = ConditioningCache(reader, embeddings)
        cached = cache.token_logits(
            range(len(TEXTS)), batch["input_ids"], batch["attention_mask"]
        ).float()
    assert cached.shape == full.shape
    assert torch.allclose(cached[mask], full[mask], atol=0.1)
    assert (cached[mask].argmax(-1) == full[mask].argmax(-1)).float().mean() > 0.9


def test_only_a_decoder_only_prefix_lm_is_cached(reader):
    hypothesis = tiny_inverter("hypothesis")
    assert not ConditioningCache.supports(hypothesis)
    encoder_decoder = SimpleNamespace(
        conditioning=reader.conditioning,
        lm=SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=True)),
    )
    assert ConditioningCache.supports(reader) and not ConditioningCache.supports(encoder_decoder)
    with pytest.raises(InvertError, match="no decoder-only conditioning"):
        ConditioningCache(hypothesis, fake_embeddings())
    assert InverterEditProposer(hypothesis, fake_embeddings()).conditioning is None
    with pytest.raises(InvertError, match="batch_size"):
        ConditioningCache(tiny_inverter(), fake_embeddings(), batch_size=0)
    ids = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(InvertError, match="example indices"):
        ConditioningCache(reader, fake_embeddings()).token_logits([0, 1], ids, ids)
    with pytest.raises(InvertError, match="no texts"):
        ConditioningCache(reader, fake_embeddings()).token_logits([], ids[:0], ids[:0])
    training = tiny_inverter()  # built in training mode: dropout must not be cached
    with pytest.raises(InvertError, match="eval mode"):
        ConditioningCache(training, fake_embeddings()).token_logits([0], ids, ids)
