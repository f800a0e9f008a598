"""Gradient-proposed edits: exact differentiable forward, the right word found, bad input refused."""

from __future__ import annotations

import importlib

import pytest
import torch
from correction_helpers import HashWordEmbedder

from invert.embedders import HFPoolingEmbedder, SentenceTransformerEmbedder
from invert.embedders.sentence_transformer import packaged_minilm_path
from invert.errors import DimensionMismatchError, InvertError
from invert.inversion.search.edit_search import edit_search
from invert.inversion.search.embedder_edits import EmbedderGradientProposer, _whole_word_tokens
from invert.inversion.search.proposers import RoundSchedule, combine_proposers

TARGETS = [
    "the committee approved the harbour expansion in march",
    "a quiet village sits beside the northern lake",
]
# Each seed is one word away from its target: a swap ("airport") and a gap ("village" missing).
SEEDS = [
    "the committee approved the airport expansion in march",
    "a quiet sits beside the northern lake",
]
# Proposal words that do not hold the missing words: only the gradient can supply them.
DISTRACTORS = [["council", "budget", "river"], ["city", "mountain", "loud"]]


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("minilm")


@pytest.mark.parametrize("kind", ["sentence_transformers", "hf_pooling"])
def test_differentiable_forward_reproduces_encode_and_has_gradients(kind, minilm):
    embedder = minilm if kind == "sentence_transformers" else HFPoolingEmbedder(
        str(packaged_minilm_path()), normalize=True
    )
    encoder = embedder.differentiable_encoder()
    batch = encoder.tokenizer(TARGETS + ["short"], padding=True, return_tensors="pt")
    table = encoder.input_embeddings.detach()
    inputs = table[batch["input_ids"].to(table.device)].clone().requires_grad_(True)
    vectors = encoder.forward(inputs, batch["attention_mask"])  # the CPU mask is moved
    assert torch.allclose(vectors.cpu(), embedder.encode(TARGETS + ["short"]).cpu(), atol=1e-5)
    vectors.sum().backward()
    assert inputs.grad is not None and inputs.grad.abs().sum() > 0


def test_proposals_hold_the_missing_swap_and_the_missing_insertion(minilm):
    proposer = EmbedderGradientProposer(minilm, minilm.encode(TARGETS), num_edits=16, insertions=10)
    swaps, inserts = proposer([0, 1], SEEDS)
    assert TARGETS[0] in swaps
    assert TARGETS[1] in inserts
    assert proposer.calls == 1  # both texts and all their variants in one pass
    for edits, seed in zip((swaps, inserts), SEEDS, strict=True):
        assert seed not in edits and len(edits) == len(set(edits)) <= 32  # 16 swaps + 16 insertions
        # A swap changes one word (an insertion adds one): whole words, never word pieces.
        assert all(abs(len(e.split()) - len(seed.split())) <= 1 for e in edits)
        assert not any("##" in e or "[MASK]" in e for e in edits)


def test_search_reaches_the_target_only_with_gradient_edits(minilm):
    targets = minilm.encode(TARGETS)
    kwargs = dict(num_rounds=3, edits_per_round=4, beam_width=1, seed=0)
    plain = edit_search(targets, minilm, [[s] for s in SEEDS], DISTRACTORS, **kwargs)
    proposer = EmbedderGradientProposer(minilm, targets, num_edits=16, insertions=10)
    guided = edit_search(targets, minilm, [[s] for s in SEEDS], DISTRACTORS, proposer=proposer, **kwargs)
    assert guided.texts == TARGETS
    assert min(guided.cosines) > 0.999
    assert all(p != t for p, t in zip(plain.texts, TARGETS, strict=True))


def test_search_under_bf16_autocast_still_reaches_the_target(minilm, monkeypatch):
    # search.mixed_precision=bf16: candidates embedded and gradients taken under autocast; the
    # scores it chooses by are kept in fp32, and it ends on the same texts.
    from invert.env import precision_context

    monkeypatch.setenv("INVERT_CPU_BF16", "1")  # bf16 whatever this CPU measures
    targets = minilm.encode(TARGETS)
    proposer = EmbedderGradientProposer(minilm, targets, num_edits=16, insertions=10)
    with precision_context("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu")
        guided = edit_search(targets, minilm, [[s] for s in SEEDS], DISTRACTORS, proposer=proposer,
                             num_rounds=3, edits_per_round=4, beam_width=1, seed=0)  # fmt: skip
    assert guided.texts == TARGETS
    assert min(guided.cosines) > 0.99
    monkeypatch.setenv("INVERT_CPU_BF16", "0")
    with precision_context("bf16", "cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_combined_proposers_pool_their_edits():
    def first(examples, texts):
        return [[t + " one"] for t in texts]

    def second(examples, texts):
        return [[t + " two"] for t in texts]

    assert combine_proposers(None, None) is None
    assert combine_proposers(first, None) is first
    assert combine_proposers(first, second)([0, 1], ["a", "b"]) == [["a one", "a two"], ["b one", "b two"]]


@pytest.mark.parametrize("last, asked", [(False, [3, 6]), (True, [3, 6, 7])])
def test_a_round_schedule_asks_the_periodic_proposer_every_nth_round_and_the_last(last, asked):
    schedule = RoundSchedule(num_rounds=7, every=3, last=last)
    kinds = [schedule.next_round(number, elapsed=0.0) for number in range(1, 9)]
    assert [n for n, periodic in enumerate(kinds, start=1) if periodic] == asked
    assert kinds[-1] is None  # no round 8 of 7
    assert all(RoundSchedule(num_rounds=4).next_round(number, 0.0) for number in range(1, 5))
    with pytest.raises(InvertError, match="every"):
        RoundSchedule(num_rounds=4, every=0)


def test_a_capped_round_schedule_cannot_reserve_for_a_proposer_round_it_has_not_timed():
    """Rounds of 20 s under a 100 s cap, the proposer due on round 7: rounds 1-5 fit and the
    search ends on them; the schedule ends on a proposer round only once one has been timed."""
    schedule, elapsed, kinds = RoundSchedule(num_rounds=10, every=7, last=True, max_seconds=100), 0.0, []
    for number in range(1, 11):
        if (periodic := schedule.next_round(number, elapsed)) is None:
            break
        kinds.append(periodic)
        schedule.round_took(periodic, 20.0)
        elapsed += 20.0
    assert kinds == [False] * 5


class _Clock:
    """A stand-in for the time module whose clock moves only when a proposer says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "last, cap, asked, rounds",
    [
        (False, 20, [3], 5),  # rounds 4 and 5 are judged by round 1, round 6 by round 3
        (True, 20, [3], 3),  # no proposer round would fit after round 4: end on round 3
        (False, 25.5, [3], 5),  # ends on the random edits of rounds 4 and 5
        (True, 25.5, [3, 5], 5),  # round 5 would leave no room for round 6: it asks instead
    ],
)
def test_a_capped_search_judges_rounds_by_their_kind_and_ends_on_the_periodic_proposer(
    last, cap, asked, rounds, monkeypatch
):
    """Rounds cost 1 second, and 11 with an expensive proposer every third round. A cheap
    round is judged by the last cheap one (not as 11 seconds after round 3), an expensive
    one by the last expensive one; with ``periodic_last`` the search ends on an expensive
    round, the last the cap affords."""
    # The package exports a function of the module's name: fetch the module itself.
    module = importlib.import_module("invert.inversion.search.edit_search")
    clock = _Clock()
    monkeypatch.setattr(module, "time", clock)
    cheap_calls, expensive_rounds = [], []

    def cheap(examples, texts):  # asked every round
        clock.now += 1
        cheap_calls.append(1)
        return [[] for _ in texts]

    def expensive(examples, texts):
        clock.now += 10
        expensive_rounds.append(len(cheap_calls) + 1)  # asked before this round's cheap one
        return [[] for _ in texts]

    embedder = HashWordEmbedder()
    targets = embedder.encode(["alpha beta gamma"])
    result = edit_search(
        targets, embedder, [["alpha"]], [["beta", "gamma"]], num_rounds=10, early_stop_cosine=None,
        proposer=cheap, periodic_proposer=expensive, periodic_every=3, periodic_last=last, max_minutes=cap / 60,
    )  # fmt: skip
    assert result.rounds == rounds
    assert clock.now <= cap
    assert expensive_rounds == asked


def test_whole_word_vocabulary_leaves_out_pieces_and_special_tokens(minilm):
    words, allowed = _whole_word_tokens(minilm.differentiable_encoder().tokenizer)
    by_word = dict(zip(words, allowed.tolist(), strict=True))
    assert by_word["harbour"] and by_word["march"]
    assert not by_word["##s"] and not by_word["[MASK]"] and not by_word["[CLS]"] and not by_word["."]


def test_bad_input_is_refused_clearly(minilm):
    hashed = HashWordEmbedder(dim=32)
    with pytest.raises(InvertError, match="gives no gradients.*gradient_edits=0"):
        EmbedderGradientProposer(hashed, hashed.encode(TARGETS))
    with pytest.raises(DimensionMismatchError, match="dim 32.*expects 384"):
        EmbedderGradientProposer(minilm, torch.randn(2, 32))
    with pytest.raises(InvertError, match="num_edits"):
        EmbedderGradientProposer(minilm, minilm.encode(TARGETS), num_edits=0)
    proposer = EmbedderGradientProposer(minilm, minilm.encode(TARGETS))
    with pytest.raises(InvertError, match="2 example indices for 1 texts"):
        proposer([0, 1], ["one text"])
