"""Bag-of-words baseline: memorizes a tiny set's word sets; untrained is at chance."""

from __future__ import annotations

import pytest
import torch
from correction_helpers import HashWordEmbedder
from helpers import EMBED_DIM, TEXTS

from invert.errors import CheckpointError, DimensionMismatchError
from invert.inversion.metrics import token_f1
from invert.models.bag_of_words import BagOfWordsInverter


def _mean_f1(model: BagOfWordsInverter, embeddings: torch.Tensor, **kwargs) -> float:
    preds = model.generate_texts(embeddings, **kwargs)
    return sum(token_f1(p, t) for p, t in zip(preds, TEXTS, strict=True)) / len(TEXTS)


@pytest.fixture(scope="module")
def embeddings():
    return HashWordEmbedder().encode(TEXTS)


def test_memorizes_tiny_set(embeddings, tmp_path):
    model = BagOfWordsInverter.build(TEXTS, EMBED_DIM, hidden_dim=64, seed=0)
    losses = model.fit(TEXTS, embeddings, epochs=300, batch_size=8, lr=1e-2, seed=0)
    assert losses[-1] < losses[0] / 10
    assert _mean_f1(model, embeddings) > 0.9
    model.save(tmp_path / "bow.safetensors")
    loaded = BagOfWordsInverter.load(tmp_path / "bow.safetensors")
    assert loaded.generate_texts(embeddings) == model.generate_texts(embeddings)


def test_untrained_is_near_chance(embeddings):
    model = BagOfWordsInverter.build(TEXTS, EMBED_DIM, hidden_dim=64, seed=0)
    # Chance: a random set of the same size as a target's, drawn from the vocabulary.
    size = sum(len(set(t.split())) for t in TEXTS) // len(TEXTS)
    chance = size / len(model.vocabulary)  # expected precision = recall of a random set
    untrained = _mean_f1(model, embeddings, top_k=size)
    assert untrained < chance + 0.2


def test_wrong_dimension_is_refused(embeddings):
    model = BagOfWordsInverter.build(TEXTS, EMBED_DIM, hidden_dim=8)
    with pytest.raises(DimensionMismatchError, match="bag-of-words"):
        model.generate_texts(torch.zeros(2, EMBED_DIM + 1))


def test_repeat_rates_are_counted_saved_and_old_files_still_load(tmp_path):
    from safetensors.torch import save_file

    texts = ["the cat saw the dog", "the the the end", "a cat ran"]
    emb = HashWordEmbedder().encode(texts)
    model = BagOfWordsInverter.build(texts, EMBED_DIM, hidden_dim=8)
    model.fit(texts, emb, epochs=1)
    rates = model.repeat_rates[model.index["the"]].tolist()
    # "the" is in 2 texts: twice in one, 3 times in the other -> P(>=2)=1, P(>=3)=0.5, P(>=4)=0.
    assert rates == pytest.approx([1.0, 0.5, 0.0])
    assert model.repeat_rates[model.index["cat"]].tolist() == [0.0, 0.0, 0.0]
    model.save(tmp_path / "bow.safetensors")
    loaded = BagOfWordsInverter.load(tmp_path / "bow.safetensors")
    assert torch.equal(loaded.repeat_rates, model.repeat_rates)
    # A file from before repeat rates were counted loads with rates of 0; a foreign one fails.
    from safetensors import safe_open

    with safe_open(str(tmp_path / "bow.safetensors"), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys() if k != "repeat_rates"}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    old = BagOfWordsInverter.load(tmp_path / "old.safetensors")
    assert old.repeat_rates.abs().sum() == 0
    assert old.generate_texts(emb) == model.generate_texts(emb)
    del tensors["mlp.0.weight"]
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="mlp.0.weight"):
        BagOfWordsInverter.load(tmp_path / "broken.safetensors")
