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
from invert.inversion.search.proposers import combine_proposers, every_nth_round

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


def test_a_proposer_asked_every_nth_round_proposes_on_those_rounds_only():
    asked = []

    def proposer(examples, texts):
        asked.append(list(texts))
        return [[t + " fix"] for t in texts]

    every_third = every_nth_round(proposer, 3)
    answers = [every_third([0, 1], [f"a{r}", f"b{r}"]) for r in range(1, 8)]
    assert asked == [["a3", "b3"], ["a6", "b6"]]  # rounds 3 and 6 of 7
    assert answers[2] == [["a3 fix"], ["b3 fix"]]
    assert all(a == [[], []] for r, a in enumerate(answers, start=1) if r % 3)
    assert every_nth_round(proposer, 1) is proposer
    with pytest.raises(InvertError, match="every"):
        every_nth_round(proposer, 0)


class _Clock:
    """A stand-in for the time module whose clock moves only when a proposer says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize("round_period, rounds", [(1, 3), (3, 5)])
def test_a_capped_search_judges_each_round_by_the_same_round_a_period_before(round_period, rounds, monkeypatch):
    """Rounds cost 1, 1, 11, 1, 1, 11, ... seconds (an expensive proposer every third round)
    under a 20-second cap. Judged by the last round, the cheap round 4 looks like 11 seconds
    and the search stops after 3; judged by round 1, rounds 4 and 5 run and the expensive
    round 6, which would end at 26 seconds, does not."""
    # The package exports a function of the module's name: fetch the module itself.
    module = importlib.import_module("invert.inversion.search.edit_search")
    clock = _Clock()
    monkeypatch.setattr(module, "time", clock)

    def cheap(examples, texts):
        clock.now += 1
        return [[] for _ in texts]

    def expensive(examples, texts):
        clock.now += 10
        return [[] for _ in texts]

    embedder = HashWordEmbedder()
    targets = embedder.encode(["alpha beta gamma"])
    result = edit_search(
        targets, embedder, [["alpha"]], [["beta", "gamma"]], num_rounds=10, early_stop_cosine=None,
        proposer=combine_proposers(cheap, every_nth_round(expensive, 3)), max_minutes=20 / 60,
        round_period=round_period,
    )  # fmt: skip
    assert result.rounds == rounds
    assert clock.now <= 20
    with pytest.raises(InvertError, match="round_period"):
        edit_search(targets, embedder, [["alpha"]], [["beta"]], round_period=0)


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
