"""The search's fluency term (a word n-gram LM), its time cap and its deletion sample."""

from __future__ import annotations

import math
import random

import pytest
from correction_helpers import HashWordEmbedder

from invert.errors import InvertError
from invert.inversion.search.edit_search import _deletions, edit_search
from invert.inversion.search.word_lm import WordNgramLM

CORPUS = [
    "she followed dinner with a brandy",
    "the cat sat on the mat",
    "he followed the river to the sea",
    "a brandy after dinner is a habit",
]
TARGET = "she followed dinner with a brandy"
SHUFFLED = "brandy a with dinner followed she"


def test_word_lm_prefers_the_sentence_to_its_shuffle_and_scores_unknown_words():
    lm = WordNgramLM.fit(CORPUS)
    assert lm.mean_log_prob(TARGET) > lm.mean_log_prob(SHUFFLED) + 1.0
    unknown = lm.mean_log_prob("zebra quantum xylophone")
    assert math.isfinite(unknown) and unknown < lm.mean_log_prob(SHUFFLED)


def test_word_lm_probabilities_sum_to_one_over_the_vocabulary():
    lm = WordNgramLM.fit(CORPUS)
    for context in [(), ("she",), ("<s>", "she"), ("followed", "dinner"), ("never", "seen")]:
        total = sum(lm._probability(context[-(lm.order - 1):] if context else (), w) for w in lm.vocabulary)
        # The remainder is the unknown word's share of the uniform floor.
        assert 0.95 < total <= 1.0 + 1e-9, (context, total)


def test_word_lm_refuses_a_corpus_without_words_and_bad_settings():
    with pytest.raises(InvertError, match="words"):
        WordNgramLM.fit(["", "  ... "])
    with pytest.raises(InvertError, match="discount"):
        WordNgramLM(order=3, discount=1.5)


def test_fluency_term_keeps_the_sentence_where_cosine_cannot_tell():
    # A bag-of-words embedder scores every word order alike: only the fluency term separates
    # the sentence from its shuffle (listed first, so a tie on cosine keeps the shuffle).
    embedder = HashWordEmbedder(dim=256)
    targets = embedder.encode([TARGET])
    seeds, words = [[SHUFFLED, TARGET]], [[]]
    plain = edit_search(targets, embedder, seeds, words, num_rounds=0)
    fluent = edit_search(targets, embedder, seeds, words, num_rounds=0,
                         word_lm=WordNgramLM.fit(CORPUS), fluency_weight=0.1)  # fmt: skip
    assert plain.texts == [SHUFFLED]
    assert fluent.texts == [TARGET]


def test_time_cap_stops_after_the_first_round_and_records_rounds():
    embedder = HashWordEmbedder(dim=64)
    targets = embedder.encode([TARGET])
    args = ([["the cat sat on the mat"]], [TARGET.split()])
    capped = edit_search(targets, embedder, *args, num_rounds=6, max_minutes=1e-9, early_stop_cosine=None)
    full = edit_search(targets, embedder, *args, num_rounds=6, early_stop_cosine=None)
    assert capped.rounds == 1 and len(capped.mean_cosine_by_round) == 2
    assert full.rounds == 6 and len(full.mean_cosine_by_round) == 7


def test_deletions_sample_at_most_the_limit():
    text = "one two three four five six"
    assert len(_deletions(text, None, random.Random(0))) == 6
    sample = _deletions(text, 2, random.Random(0))
    assert len(set(sample)) == 2 and all(len(s.split()) == 5 for s in sample)


def test_guided_search_fits_the_word_lm_on_retrieval_texts_or_says_what_it_needs():
    from invert.configs import SearchConfig
    from invert.inversion.search.edit_search import guided_search
    from invert.models.nearest_neighbour import NearestNeighbourInverter

    embedder = HashWordEmbedder(dim=256)
    targets = embedder.encode([TARGET])
    # Seeds: the shuffle (as the inverter's text) and the retrieved sentence, alike in cosine.
    search = SearchConfig(num_rounds=0, nn_seeds=1, gradient_edits=0, fluency_weight=0.1)
    with pytest.raises(InvertError, match="word LM"):
        guided_search(targets, embedder, [SHUFFLED], None, None, search)
    retrieval = NearestNeighbourInverter(CORPUS, embedder.encode(CORPUS), embedder.name)
    plain = guided_search(targets, embedder, [SHUFFLED], retrieval, None, {**vars(search), "fluency_weight": 0.0})
    fluent = guided_search(targets, embedder, [SHUFFLED], retrieval, None, search)
    assert plain.texts == [SHUFFLED] and fluent.texts == [TARGET]
