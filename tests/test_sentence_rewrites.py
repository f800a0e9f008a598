"""The hinted inverter rewriting the search's best text (invert.inversion.search.sentence_rewrites)."""

from __future__ import annotations

import pytest
import torch
from correction_helpers import HashWordEmbedder
from helpers import TEXTS, fake_embeddings, tiny_inverter

from invert.errors import InvertError
from invert.inversion.search.edit_search import guided_search
from invert.inversion.search.scorer import CosineScorer
from invert.inversion.search.sentence_rewrites import SentenceRewriter, closest_rewrites
from invert.models.hint_bias import set_hint_bias
from invert.training.hints import fit_hint_heads

HEAD = dict(hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=32)


@pytest.fixture(scope="module")
def pulled():
    """An untrained hinted LM whose decoding is pulled hard toward its hints: it writes what
    it is told to, so what a rewrite writes shows which words it was told."""
    inverter = tiny_inverter(**HEAD)
    embeddings = fake_embeddings()
    fit_hint_heads(inverter, TEXTS, embeddings, folds=2, epochs=300, lr=1e-2, seed=0)
    set_hint_bias(inverter, 20.0)
    inverter.eval()
    return inverter, embeddings


def vocabulary_tokens(inverter, text):
    known = set(inverter.hint_head.token_ids.tolist())
    return {t for t in inverter.tokenizer(text, add_special_tokens=False)["input_ids"] if t in known}


def test_the_rewritten_texts_words_lead_the_hints(pulled):
    inverter, embeddings = pulled
    rewriter = SentenceRewriter(inverter, embeddings, word_probability=1.0)
    # Example 0's embedding, example 1's words: the hints are example 1's tokens, not the
    # tokens the head reads off example 0.
    other = TEXTS[1]
    hint_ids, probabilities = rewriter.hints([0], [other])
    assert set(hint_ids[0].tolist()) <= vocabulary_tokens(inverter, other)
    assert len(vocabulary_tokens(inverter, other)) >= HEAD["hint_tokens"]
    head_own = inverter.hints(embeddings[:1])[0].tolist()
    assert set(hint_ids[0].tolist()) != set(head_own)
    # The head's probabilities stay where they were above the raised ones.
    raw = inverter.hint_probabilities(embeddings[:1])
    assert (probabilities >= raw.cpu()).all()


def test_a_rewrite_writes_the_words_it_was_given(pulled):
    inverter, embeddings = pulled
    rewriter = SentenceRewriter(inverter, embeddings, word_probability=0.99)
    plain = inverter.generate_texts(embeddings[:1])[0]
    rewritten = rewriter.rewrite([0], [TEXTS[1]])[0]
    written = set(inverter.tokenizer(rewritten, add_special_tokens=False)["input_ids"])
    assert vocabulary_tokens(inverter, TEXTS[1]) <= written
    assert rewritten != plain


def test_as_a_proposer_it_rewrites_each_examples_best_text_on_its_rounds(pulled):
    inverter, embeddings = pulled
    rewriter = SentenceRewriter(inverter, embeddings, every=2)
    examples, texts = [0, 0, 3, 3], [TEXTS[0], "sat mat", TEXTS[3], "shells sea"]
    assert rewriter(examples, texts) == [[], [], [], []]  # round 1: not a rewrite round
    proposals = rewriter(examples, texts)  # round 2
    assert [len(p) for p in proposals] == [1, 0, 1, 0]  # the first kept text of each example
    assert rewriter.rewrites == 2
    assert proposals[0] == rewriter.rewrite([0], [TEXTS[0]])


def test_the_closest_of_the_sampled_sentences_is_kept_the_same_for_the_same_seed(pulled):
    inverter, _ = pulled
    embedder = HashWordEmbedder()
    targets = embedder.encode(TEXTS)
    rewriter = SentenceRewriter(inverter, targets, word_probability=0.6)
    words = [" ".join(reversed(t.split())) for t in TEXTS]  # the right words, in a wrong order
    greedy = rewriter.rewrite(list(range(len(TEXTS))), words)
    assert closest_rewrites(rewriter, embedder, words, samples=0) == greedy
    rng = torch.get_rng_state()
    kept = closest_rewrites(rewriter, embedder, words, samples=4, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    assert closest_rewrites(rewriter, embedder, words, samples=4, seed=3) == kept
    scorer = CosineScorer(targets, embedder)
    scorer.embed_new(set(kept) | set(greedy))
    cosines = [(scorer.cosine(i, k), scorer.cosine(i, g)) for i, (k, g) in enumerate(zip(kept, greedy, strict=True))]
    assert all(k >= g for k, g in cosines)  # the greedy rewrite is one of the candidates
    assert any(k > g for k, g in cosines)  # and sampling found closer ones
    with pytest.raises(InvertError, match="one text per target"):
        closest_rewrites(rewriter, embedder, words[:3])


def test_an_inverter_without_hints_or_bad_settings_say_why():
    with pytest.raises(InvertError, match="word hints"):
        SentenceRewriter(tiny_inverter(), fake_embeddings())
    inverter = tiny_inverter(**HEAD)
    with pytest.raises(InvertError, match="every"):
        SentenceRewriter(inverter, fake_embeddings(), every=0)
    with pytest.raises(InvertError, match="word_probability"):
        SentenceRewriter(inverter, fake_embeddings(), word_probability=0.0)
    with pytest.raises(InvertError, match="examples"):
        SentenceRewriter(inverter, fake_embeddings()).rewrite([0, 1], ["a"])
    with pytest.raises(Exception, match="dimension|384|16"):
        SentenceRewriter(inverter, torch.zeros(2, 5))


def test_a_search_asking_an_unhinted_inverter_for_rewrites_says_so():
    embedder = HashWordEmbedder()
    targets = embedder.encode(TEXTS[:2])
    with pytest.raises(InvertError, match="rewrite_every"):
        guided_search(targets, embedder, TEXTS[:2], None, None, {"rewrite_every": 2}, inverter=tiny_inverter())


@pytest.mark.parametrize("every, last, forward_rounds", [(1, True, 4), (2, False, 2), (3, False, 1), (3, True, 2)])
def test_the_search_asks_the_inverter_for_edits_on_every_nth_round(every, last, forward_rounds, monkeypatch):
    """``search.inverter_edit_every``: the inverter's edit proposer runs on rounds k, 2k, ...
    and, with ``search.inverter_edit_last``, on the last (round 4 of 4)."""
    from invert.inversion.search.inverter_edits import InverterEditProposer

    rounds_asked = []
    original = InverterEditProposer.__call__

    def counting(self, examples, texts):
        rounds_asked.append(len(texts))
        return original(self, examples, texts)

    monkeypatch.setattr(InverterEditProposer, "__call__", counting)
    embedder = HashWordEmbedder()
    targets = embedder.encode(TEXTS[:2])
    search = {"num_rounds": 4, "inverter_edits": 2, "inverter_edit_every": every, "gradient_edits": 0,
              "inverter_edit_last": last,
              "early_stop_cosine": None}  # fmt: skip
    result = guided_search(targets, embedder, TEXTS[2:4], None, None, search, inverter=tiny_inverter())
    assert result.rounds == 4
    assert len(rounds_asked) == forward_rounds
