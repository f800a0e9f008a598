"""The inverter's beam search with the embedder choosing the beams (guided_decoding)."""

from __future__ import annotations

import pytest
from correction_helpers import HashWordEmbedder
from helpers import TEXTS, TINY_LLAMA, fake_embeddings, make_trainer, tiny_inverter

from invert.errors import DimensionMismatchError, InvertError
from invert.inversion.search.guided_decoding import (
    embedder_guided_decode,
    fitted_beam,
    supports_guided_decoding,
)

READS = dict(hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=16, draft_tokens=4,
             lm_config={**TINY_LLAMA, "num_hidden_layers": 2})  # fmt: skip


@pytest.fixture(scope="module")
def embedder():
    return HashWordEmbedder()


@pytest.fixture(scope="module")
def reader():
    """A tiny untrained prefix LM reading prefix vectors, hints and a draft, pulled to its hints."""
    inverter = tiny_inverter(hint_bias=1.0, **READS).eval()
    inverter.set_draft_corpus(TEXTS, fake_embeddings(seed=1))
    return inverter


def test_one_beam_and_one_proposal_is_the_inverters_greedy_decoding(reader, embedder):
    # Same conditioning, same pull, one token at a time through the reordered cache.
    targets = embedder.encode(TEXTS)
    greedy = reader.generate_texts(targets, max_new_tokens=8)
    guided = embedder_guided_decode(reader, embedder, targets, beam_width=1, top_k=1, max_tokens=8,
                                    fluency_weight=0.0, patience=0, batch_size=3)  # fmt: skip
    assert guided.texts == [t.strip() for t in greedy]


def test_the_embedder_steers_the_beams_toward_the_target(reader, embedder):
    targets = embedder.encode(TEXTS)
    greedy = embedder_guided_decode(reader, embedder, targets, beam_width=1, top_k=1, max_tokens=8,
                                    fluency_weight=0.0)  # fmt: skip
    guided = embedder_guided_decode(reader, embedder, targets, beam_width=4, top_k=8, max_tokens=8,
                                    fluency_weight=0.0, patience=0)  # fmt: skip
    assert len(guided.texts) == len(TEXTS) and all(t.strip() for t in guided.texts)
    # Deterministic (no sampling): the embedder's choice lifts every example's cosine on average
    # and most of them one by one.
    assert sum(guided.cosines) / len(TEXTS) > sum(greedy.cosines) / len(TEXTS) + 0.1
    assert sum(g > b for g, b in zip(guided.cosines, greedy.cosines, strict=True)) >= len(TEXTS) // 2
    assert guided.embedded_texts > greedy.embedded_texts


def test_a_memorizing_inverter_decodes_its_training_set_exactly(embedder, tmp_path):
    targets = embedder.encode(TEXTS)
    inverter = tiny_inverter(tuning="full")
    make_trainer(inverter, tmp_path, embeddings=targets, max_steps=120, lr=3e-3, warmup_steps=10, log_every=1000).train()
    result = embedder_guided_decode(inverter.eval(), embedder, targets, beam_width=2, top_k=3, patience=0)
    assert [t.lower() for t in result.texts] == TEXTS
    assert min(result.cosines) > 0.99


def test_past_its_time_cap_the_rest_decode_greedily(reader, embedder):
    targets = embedder.encode(TEXTS)
    capped = embedder_guided_decode(reader, embedder, targets, max_tokens=8, fluency_weight=0.0,
                                    batch_size=4, max_minutes=0.0)  # fmt: skip
    greedy = embedder_guided_decode(reader, embedder, targets, beam_width=1, top_k=1, max_tokens=8,
                                    fluency_weight=0.0, batch_size=4)  # fmt: skip
    assert capped.texts == greedy.texts


def test_a_batch_takes_the_widest_beam_its_measured_cost_fits_in_the_time_left():
    assert fitted_beam(4, 8, 25, None, 0.1) == (4, 8)  # no cap
    assert fitted_beam(4, 8, 25, 100.0, None) == (4, 8)  # nothing measured yet
    assert fitted_beam(4, 8, 25, 100.0, 0.1) == (4, 8)  # 25 x 32 slots x 0.1 s = 80 s
    assert fitted_beam(4, 8, 25, 50.0, 0.1) == (4, 4)  # proposals halve first
    assert fitted_beam(4, 8, 25, 12.0, 0.1) == (2, 2)  # then the beams
    assert fitted_beam(4, 8, 25, 1.0, 0.1) == (1, 1)  # greedy
    assert fitted_beam(4, 8, 25, 0.0, None) == (1, 1)  # time is up


def test_bad_input_is_refused_with_what_was_expected(reader, embedder):
    targets = embedder.encode(TEXTS)
    with pytest.raises(DimensionMismatchError, match=str(embedder.dim)):
        embedder_guided_decode(reader, embedder, targets[:, :5])
    bad = targets.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(InvertError, match="NaN"):
        embedder_guided_decode(reader, embedder, bad)
    with pytest.raises(InvertError, match="beam_width"):
        embedder_guided_decode(reader, embedder, targets, beam_width=0)
    with pytest.raises(InvertError, match="patience"):
        embedder_guided_decode(reader, embedder, targets, patience=-1)
    with pytest.raises(InvertError, match="mixed_precision"):
        embedder_guided_decode(reader, embedder, targets, mixed_precision="fp8")
    t5 = tiny_inverter("hypothesis")
    assert not supports_guided_decoding(t5) and not supports_guided_decoding(None)
    with pytest.raises(InvertError, match="decoder-only prefix LM"):
        embedder_guided_decode(t5, embedder, targets)
