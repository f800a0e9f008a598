"""Reconstruction metrics on hand-made cases with values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from invert.embedders.base import Embedder
from invert.errors import EmptyInputError, InvalidEmbeddingError, InvertError
from invert.inversion.metrics import (
    LengthMismatchError,
    corpus_bleu,
    cosine_similarity_rows,
    exact_match,
    reconstruction_metrics,
    sentence_bleus,
    token_f1,
)

SENTENCE = "the cat sat on the mat"


class FakeEmbedder(Embedder):
    """Looks texts up in a fixed 2-D table and records what it was asked to embed."""

    name = "fake"
    dim = 2
    table = {"right": [1.0, 0.0], "up": [0.0, 1.0], "diag": [1.0, 1.0]}

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        self.calls.append(list(texts))
        return torch.tensor([self.table[t] for t in texts])


def test_identical_strings_score_perfectly() -> None:
    assert token_f1(SENTENCE, SENTENCE) == 1.0
    assert exact_match(SENTENCE, SENTENCE) is True
    assert corpus_bleu([SENTENCE], [SENTENCE]) == pytest.approx(100.0)
    assert sentence_bleus([SENTENCE], [SENTENCE]) == [pytest.approx(100.0)]


def test_disjoint_strings_score_zero() -> None:
    pred, ref = "alpha beta gamma delta", "one two three four"
    assert token_f1(pred, ref) == 0.0
    assert exact_match(pred, ref) is False
    assert corpus_bleu([pred], [ref]) == 0.0
    assert sentence_bleus([pred], [ref]) == [0.0]


def test_token_f1_partial_overlap() -> None:
    # 2 shared tokens; P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7.
    assert token_f1("the cat sat", "the cat ran away") == pytest.approx(4 / 7)
    assert token_f1("the cat sat", "the cat ran away") == pytest.approx(0.5714285714)


def test_token_f1_counts_repeats_and_ignores_case_and_punctuation() -> None:
    # Multiset overlap is 1 "the": P = 1/3, R = 1/2, F1 = 0.4.
    assert token_f1("the the the", "the cat") == pytest.approx(0.4)
    assert token_f1("The CAT!", "the cat") == 1.0


def test_token_f1_empty_cases() -> None:
    assert token_f1("", "") == 1.0
    assert token_f1("  ", "...") == 1.0  # no \w+ tokens on either side
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "") == 0.0


def test_exact_match_normalizes_whitespace_only() -> None:
    assert exact_match("  a   b\n", "a b")
    assert not exact_match("A b", "a b")


def test_sentence_bleu_hand_computed() -> None:
    # n-gram precisions 4/5, 3/4, 2/3, 1/2, no brevity penalty: BLEU = (1/5) ** (1/4).
    (score,) = sentence_bleus(["a b c d e"], ["a b c d f"])
    assert score == pytest.approx(100 * 0.2**0.25)


def test_sentence_bleu_matches_vec2text_on_short_sentences() -> None:
    # Like vec2text (no effective order), an exact one-word sentence has no 2-4-grams: BLEU 0.
    assert sentence_bleus(["hello"], ["hello"]) == [0.0]


def test_cosine_similarity_rows() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    sims = cosine_similarity_rows(a, b)
    assert sims.tolist() == pytest.approx([1.0, 1 / math.sqrt(2), 0.0])
    with pytest.raises(LengthMismatchError):
        cosine_similarity_rows(a, b[:2])


def test_reconstruction_metrics_with_embedder_and_empty_prediction() -> None:
    embedder = FakeEmbedder()
    refs = ["right", "up", "up"]
    preds = ["right", "", "diag"]
    targets = embedder.encode(refs)
    embedder.calls.clear()

    agg, rows = reconstruction_metrics(preds, refs, target_embeddings=targets, embedder=embedder)

    assert embedder.calls == [["right", "diag"]]  # the empty prediction is never embedded
    assert [r["cosine"] for r in rows] == pytest.approx([1.0, 0.0, 1 / math.sqrt(2)])
    assert agg["cosine"] == pytest.approx((1.0 + 0.0 + 1 / math.sqrt(2)) / 3)
    assert agg["exact"] == pytest.approx(1 / 3)
    assert agg["token_f1"] == pytest.approx(1 / 3)
    assert agg["pred_len"] == pytest.approx(2 / 3)
    assert agg["ref_len"] == 1.0
    assert agg["n"] == 3
    assert set(agg) == {
        "bleu",
        "sentence_bleu",
        "token_f1",
        "exact",
        "cosine",
        "pred_len",
        "ref_len",
        "n",
    }
    assert rows[0] == {
        "target": "right",
        "prediction": "right",
        "bleu": 0.0,  # one word: no 2-4-grams, see vec2text note
        "token_f1": 1.0,
        "exact": True,
        "cosine": pytest.approx(1.0),
    }


def test_reconstruction_metrics_with_precomputed_prediction_embeddings() -> None:
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pred_emb = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    agg, rows = reconstruction_metrics(
        ["a", "b"], ["a", "c"], target_embeddings=targets, prediction_embeddings=pred_emb
    )
    assert [r["cosine"] for r in rows] == pytest.approx([1 / math.sqrt(2), 1.0])
    assert agg["exact"] == 0.5


def test_reconstruction_metrics_without_embeddings_has_no_cosine() -> None:
    agg, rows = reconstruction_metrics([SENTENCE], [SENTENCE])
    assert "cosine" not in agg
    assert rows[0]["cosine"] is None
    assert agg["bleu"] == pytest.approx(100.0)
    assert agg["sentence_bleu"] == pytest.approx(100.0)
    assert agg["exact"] == 1.0


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(LengthMismatchError) as info:
        reconstruction_metrics(["a", "b"], ["a"])
    assert isinstance(info.value, InvertError) and isinstance(info.value, ValueError)
    with pytest.raises(LengthMismatchError):
        corpus_bleu(["a"], [])
    with pytest.raises(LengthMismatchError):
        reconstruction_metrics(
            ["right", "up"], ["right", "up"], torch.ones(3, 2), embedder=FakeEmbedder()
        )


def test_empty_input_raises() -> None:
    with pytest.raises(EmptyInputError):
        reconstruction_metrics([], [])
    with pytest.raises(EmptyInputError):
        sentence_bleus([], [])


def test_targets_without_a_way_to_embed_predictions_raise() -> None:
    with pytest.raises(InvalidEmbeddingError):
        reconstruction_metrics(["a"], ["a"], target_embeddings=torch.ones(1, 2))
