"""Embedder-guided word-edit search: it climbs cosine, recovers words, and refuses bad input."""

from __future__ import annotations

import time

import pytest
import torch
from correction_helpers import CountingEmbedder, HashWordEmbedder

from invert.errors import DimensionMismatchError, InvertError
from invert.inversion.evaluation import evaluate_methods, fitted_search_minutes, later_rows_seconds
from invert.inversion.metrics import token_f1
from invert.inversion.search.edit_search import WordPrior, edit_search, guided_search
from invert.models.bag_of_words import BagOfWordsInverter

TARGETS = [
    "the committee approved the harbour expansion in march",
    "a quiet village sits beside the northern lake",
]
SEEDS = [["the council rejected a plan in june"], ["a loud city sits near the river"]]
# The words a bag-of-words model might guess: the target's content words among distractors.
PROPOSALS = [
    ["committee", "approved", "harbour", "expansion", "march", "council", "river", "budget"],
    ["quiet", "village", "beside", "northern", "lake", "mountain", "city", "harbour"],
]


def _embedder() -> HashWordEmbedder:
    # 256 dims: random word vectors are then nearly orthogonal, so cosine tracks word overlap.
    return HashWordEmbedder(dim=256)


def _run(embedder, **kwargs):
    targets = embedder.encode(TARGETS)
    defaults = dict(num_rounds=15, edits_per_round=16, beam_width=2, seed=0)
    return edit_search(targets, embedder, SEEDS, PROPOSALS, **{**defaults, **kwargs})


def test_search_moves_seeds_toward_the_target_words():
    embedder = _embedder()
    result = _run(embedder)
    start = [token_f1(s[0], t) for s, t in zip(SEEDS, TARGETS, strict=True)]
    end = [token_f1(p, t) for p, t in zip(result.texts, TARGETS, strict=True)]
    # Word-overlap cosine: the search must swap in the target's words and drop the seed's.
    assert all(e >= 0.8 for e in end), (result.texts, end)
    assert all(e > s + 0.4 for s, e in zip(start, end, strict=True))
    assert result.cosines[0] > 0.9 and result.cosines[1] > 0.9


def test_best_cosine_never_falls_and_round_zero_is_the_best_seed():
    embedder = _embedder()
    targets = embedder.encode(TARGETS)
    seeds = [SEEDS[0] + [TARGETS[0]], SEEDS[1]]
    result = edit_search(targets, embedder, seeds, PROPOSALS, num_rounds=5, edits_per_round=8)
    curve = result.mean_cosine_by_round
    assert len(curve) == 6
    assert all(b >= a - 1e-6 for a, b in zip(curve, curve[1:], strict=False))
    assert result.texts_by_round[0][0] == TARGETS[0]  # an exact seed wins at round 0
    assert result.texts[0] == TARGETS[0]


def test_zero_rounds_returns_the_closest_seed_and_early_stop_freezes_solved_examples():
    embedder = CountingEmbedder(_embedder())
    targets = embedder.encode(TARGETS)
    embedder.calls.clear()
    seeds = [[SEEDS[0][0], TARGETS[0]], SEEDS[1]]
    result = edit_search(targets, embedder, seeds, PROPOSALS, num_rounds=3, edits_per_round=8,
                         early_stop_cosine=0.99)  # fmt: skip
    assert result.texts[0] == TARGETS[0]
    later = [t for call in embedder.calls[1:] for t in call]
    # Example 0 was solved at round 0, so none of the later candidates are its edits.
    assert not any("committee" in t for t in later)
    assert len(later) == len(set(later))  # nothing embedded twice across rounds
    assert result.embedder_calls == len(embedder.calls) == 4


def test_bad_input_is_refused_clearly():
    embedder = _embedder()
    targets = embedder.encode(TARGETS)
    with pytest.raises(InvertError, match="one row of seeds"):
        edit_search(targets, embedder, SEEDS[:1], PROPOSALS)
    with pytest.raises(InvertError, match="no non-blank seed"):
        edit_search(targets, embedder, [["  "], SEEDS[1]], PROPOSALS)
    with pytest.raises(DimensionMismatchError, match=str(embedder.dim)):
        edit_search(torch.randn(2, embedder.dim + 1), embedder, SEEDS, PROPOSALS)
    with pytest.raises(InvertError, match="nan|NaN|finite"):
        edit_search(torch.full((2, embedder.dim), float("nan")), embedder, SEEDS, PROPOSALS)


class _WordGuesser:
    """Stands in for a fitted bag-of-words model: fixed word guesses, likeliest first."""

    def predict_words(self, embeddings: torch.Tensor, top_k: int) -> list[list[str]]:
        return [row[:top_k] for row in PROPOSALS]

    def generate_texts(self, embeddings: torch.Tensor, threshold: float, top_k: int) -> list[str]:
        return [" ".join(row[:top_k]) for row in PROPOSALS]


def test_guided_search_seeds_with_the_word_guess_and_climbs_from_it():
    embedder = _embedder()
    targets = embedder.encode(TARGETS)
    start = guided_search(targets, embedder, None, None, _WordGuesser(),
                          {"num_rounds": 0, "bow_seed_words": 3, "gradient_edits": 0})  # fmt: skip
    assert start.texts == ["committee approved harbour", "quiet village beside"]
    result = guided_search(targets, embedder, None, None, _WordGuesser(),
                           {"num_rounds": 15, "edits_per_round": 16, "beam_width": 2, "gradient_edits": 0})  # fmt: skip
    # Only content words are proposed, so the best reachable text is the five of them
    # (F1 10/13 = 0.77): every distractor dropped, every target word among the guesses kept.
    for text, target, guesses in zip(result.texts, TARGETS, PROPOSALS, strict=True):
        assert set(text.split()) == set(guesses) & set(target.split()), text
    assert all(end > begin + 0.08 for begin, end in zip(start.cosines, result.cosines, strict=True))


def test_unknown_search_row_is_refused_with_the_known_ones():
    embedder = _embedder()
    with pytest.raises(InvertError, match="known: .*inverter_search"):
        evaluate_methods(None, embedder, TARGETS, embedder.encode(TARGETS), search={"rows": ["nope"]})


def test_expected_f1_of_the_word_prior_is_the_ratio_of_expectations():
    prior = WordPrior([{"harbour": 0.9, "the": 1.0, "port": 0.1}], lengths=[4.0], weight=1.0)
    # Matches expected: the 1.0 + harbour 0.9 (a repeat counts once); 3 words + 4 expected.
    assert prior.expected_f1(0, "The harbour, the") == pytest.approx(2 * 1.9 / 7)
    assert prior.expected_f1(0, "unknown words only") == 0.0
    assert prior.expected_f1(0, "   ") == 0.0
    # With repeat rates a second "the" matches with P(the) x P(>= 2 copies | present) = 0.6.
    counted = WordPrior(prior.probabilities, [4.0], 1.0, repeats={"the": [0.6, 0.2, 0.0]})
    assert counted.expected_f1(0, "The harbour, the") == pytest.approx(2 * 2.5 / 7)
    assert counted.expected_f1(0, "the the the the the") == pytest.approx(2 * 1.8 / 9)


class _SynonymEmbedder(HashWordEmbedder):
    """Embeds "port" exactly as "harbour": the embedder cannot tell the two apart."""

    def _word(self, word: str) -> torch.Tensor:
        return super()._word("harbour" if word == "port" else word)


def test_word_prior_breaks_the_embedders_ties_toward_likelier_words():
    embedder = _SynonymEmbedder(dim=256)
    target = "the committee approved the harbour expansion"
    targets = embedder.encode([target])
    seed = [[target.replace("harbour", "port")]]  # cosine 1.0 already
    words = [["harbour", "port"]]
    kwargs = dict(num_rounds=6, edits_per_round=16, early_stop_cosine=None, seed=0)
    plain = edit_search(targets, embedder, seed, words, **kwargs)
    assert plain.texts == seed[0]  # no edit beats a tie on cosine alone
    prior = WordPrior([{"harbour": 0.9, "port": 0.05, "the": 0.9}], lengths=[6.0], weight=0.3)
    guided = edit_search(targets, embedder, seed, words, word_prior=prior, **kwargs)
    assert guided.texts == [target]
    assert guided.cosines[0] == pytest.approx(1.0, abs=1e-5)  # reported cosines stay cosine
    with pytest.raises(InvertError, match="word prior has 1 rows for 2 targets"):
        edit_search(torch.cat([targets, targets]), embedder, seed * 2, words * 2, word_prior=prior)


def test_guided_search_takes_its_word_prior_from_the_bag_of_words_model():
    embedder = _SynonymEmbedder(dim=256)
    # Trained where "harbour" is common and "port" absent, the model favours "harbour".
    texts = ["the harbour opened", "the harbour expansion", "the committee approved", "a port"]
    model = BagOfWordsInverter.build(texts[:3], embedder.dim, hidden_dim=32)
    model.fit(texts[:3], embedder.encode(texts[:3]), epochs=200, batch_size=4)
    target = "the committee approved the harbour expansion"
    targets = embedder.encode([target])
    prior = WordPrior.from_bag_of_words(model, targets, [[target, "a b"]], weight=0.5, top_k=3)
    assert prior.weight == 0.5 and prior.lengths == [4.0]  # the seeds' mean word count
    assert len(prior.probabilities[0]) == 3 and "port" not in prior.probabilities[0]
    search = {"num_rounds": 20, "edits_per_round": 32, "nn_seeds": 0, "bow_seed_words": 0,
              "early_stop_cosine": None, "gradient_edits": 0}  # the hypothesis is already at cosine 1.0
    hypothesis = [target.replace("harbour", "port")]
    plain = guided_search(targets, embedder, hypothesis, None, model, search)
    assert plain.texts == hypothesis
    guided = guided_search(targets, embedder, hypothesis, None, model,
                           {**search, "word_prior_weight": 0.5})  # fmt: skip
    assert "port" not in guided.texts[0] and guided.cosines[0] == pytest.approx(1.0, abs=1e-5)


def test_weighted_proposals_draw_only_words_with_weight():
    embedder = _embedder()
    # Weight on the distractors only: no random edit can bring in a target word.
    weights = [[0.0] * 5 + [1.0] * 3, [0.0] * 5 + [1.0] * 3]
    result = _run(embedder, num_rounds=4, proposal_weights=weights)
    texts = {t for round_texts in result.texts_by_round for t in round_texts}
    seen = {w for t in texts for w in t.split()}
    seed_words = {w for row in SEEDS for t in row for w in t.split()}
    allowed = seed_words | {w for row, ws in zip(PROPOSALS, weights, strict=True)
                           for w, x in zip(row, ws, strict=True) if x > 0}  # fmt: skip
    assert seen <= allowed, seen - allowed
    # Weight on the target's words: the same search recovers more of them than uniform draws.
    uniform = _run(embedder, num_rounds=4)
    focused = _run(embedder, num_rounds=4, proposal_weights=[[1.0] * 5 + [0.0] * 3] * 2)
    f1 = [sum(token_f1(p, t) for p, t in zip(r.texts, TARGETS, strict=True)) for r in (uniform, focused)]
    assert f1[1] > f1[0], f1
    with pytest.raises(InvertError, match="one weight per proposal word"):
        _run(embedder, proposal_weights=[[1.0], [1.0]])


def test_a_search_row_gets_its_share_of_what_the_deadline_leaves():
    assert fitted_search_minutes(600, 2, 120, 4.0) == 4.0  # (600 - 120) / 2 s: all it asked for
    assert fitted_search_minutes(600, 2, 240, 4.0) == pytest.approx(3.0)
    assert fitted_search_minutes(600, 1, 0, None) == pytest.approx(10.0)
    assert fitted_search_minutes(60, 1, 120, 4.0) == 0.0  # past it: the first round only
    # guided_decoding's two shares beside one search row: two thirds of the 9 minutes left.
    assert fitted_search_minutes(600, 3, 60, None, share=2.0) == pytest.approx(6.0)
    assert fitted_search_minutes(600, 3, 60, None) == pytest.approx(3.0)


def test_a_passed_deadline_leaves_each_search_row_its_first_round_and_says_so():
    embedder = _embedder()
    targets = embedder.encode(TARGETS)
    search = {"rows": ["bag_of_words_search"], "num_rounds": 6, "edits_per_round": 4,
              "gradient_edits": 0, "fluency_weight": 0.0, "max_minutes": 5.0}  # fmt: skip
    late, _ = evaluate_methods(None, embedder, TARGETS, targets, bag_of_words=_WordGuesser(),
                               search=search, deadline=time.time() - 1)  # fmt: skip
    on_time, _ = evaluate_methods(None, embedder, TARGETS, targets, bag_of_words=_WordGuesser(), search=search)
    late, on_time = late["bag_of_words_search"], on_time["bag_of_words_search"]
    assert (late["search_max_minutes"], late["search_rounds"]) == (0.0, 1)
    assert (on_time["search_max_minutes"], on_time["search_rounds"]) == (5.0, 6)
    assert on_time["cosine"] > late["cosine"]


def test_the_rows_after_a_search_are_estimated_from_the_times_measured():
    scoring = [2.0, 4.0]  # seconds to score each row so far
    assert later_rows_seconds(["bag_of_words_search", "inverter_search"], scoring, 50.0, 2) == 2 * 3.0
    # A pending rewrite: its greedy decoding and 2 sampled ones, each about the inverter's.
    pending = ["inverter_search", "sentence_rewrite"]
    assert later_rows_seconds(pending, scoring, 50.0, 2) == 2 * 3.0 + 3 * 50.0
    assert later_rows_seconds(pending, [], 50.0, 0) == 50.0
