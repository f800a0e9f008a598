"""Fluency: reference-LM perplexity of reconstructions, beside the targets' own."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TINY_LLAMA, tokenizer_path
from transformers import AutoConfig, AutoModelForCausalLM

from invert.errors import EmptyInputError
from invert.inversion.fluency import ReferenceLM
from invert.models.pretrained_lm import load_tokenizer


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("lm")
    tok = load_tokenizer(tokenizer_path())
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**{**TINY_LLAMA, "vocab_size": len(tok)}))
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_perplexity_is_exp_of_the_mean_token_nll(tiny_lm):
    """Checked against the LM's own loss on the same tokens (start token as context)."""
    ref = ReferenceLM(tiny_lm)
    text = "the harbour committee approved the plan"
    ids = [ref.start_id, *ref.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        loss = ref.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    assert ref.perplexity([text]) == pytest.approx(math.exp(loss), rel=1e-4)


def test_corpus_perplexity_weights_texts_by_their_tokens_and_skips_blanks(tiny_lm):
    ref = ReferenceLM(tiny_lm, batch_size=2)
    texts = ["a short one", "a much longer sentence about the quiet village by the sea", "  "]
    (n1, t1), (n2, t2), blank = ref.token_nll(texts)
    assert blank == (0.0, 0)
    assert ref.perplexity(texts) == pytest.approx(math.exp((n1 + n2) / (t1 + t2)), rel=1e-5)
    with pytest.raises(EmptyInputError):
        ref.perplexity(["", " "])


def test_evaluation_reports_each_methods_perplexity_beside_the_targets(tiny_lm):
    from correction_helpers import HashWordEmbedder

    from invert.inversion.evaluation import evaluate_methods
    from invert.models import NearestNeighbourInverter

    embedder = HashWordEmbedder()
    train = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"]
    test = ["the cat ran in the park", "a dog sat on the mat"]
    nn = NearestNeighbourInverter(train, embedder.encode(train), embedder.name)
    metrics, _ = evaluate_methods(None, embedder, test, embedder.encode(test), nn,
                                  fluency=ReferenceLM(tiny_lm), show_progress=False)  # fmt: skip
    row = metrics["nearest_neighbour"]
    assert row["perplexity"] == pytest.approx(ReferenceLM(tiny_lm).perplexity(nn.invert(embedder.encode(test))))
    assert row["target_perplexity"] == pytest.approx(ReferenceLM(tiny_lm).perplexity(test))


@pytest.mark.slow
def test_the_packaged_lm_finds_a_sentence_likelier_than_its_words_shuffled():
    """The point of the metric: word salad scores far worse than the sentence it came from."""
    ref = ReferenceLM("smollm2")
    sentence = "She followed dinner with a glass of brandy by the fire."
    salad = "brandy she the with fire dinner glass followed of by a"
    assert ref.perplexity([salad]) > 3 * ref.perplexity([sentence])
