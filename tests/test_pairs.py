"""The (text, embedding) disk cache."""

from __future__ import annotations

import hashlib
import logging

import pytest
import torch

from invert.data import EmbeddedSplit, embed_split, embed_texts_cached
from invert.data.pairs import slug
from invert.embedders.base import Embedder
from invert.errors import EmptyInputError

TEXTS = ["The cat sat on the mat.", "A dog barked twice.", "Rain fell all night."]


class HashEmbedder(Embedder):
    """Deterministic vectors from sha256 of the text; counts calls."""

    def __init__(self, name: str = "test/hash-embedder", dim: int = 8):
        self.name, self.dim, self.calls = name, dim, 0

    def _encode(self, texts, batch_size, show_progress):
        self.calls += 1
        rows = [list(hashlib.sha256(t.encode()).digest()[: self.dim]) for t in texts]
        return torch.tensor(rows, dtype=torch.float32) / 255


@pytest.fixture(autouse=True)
def _tmp_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INVERT_CACHE_DIR", str(tmp_path))


def test_second_call_hits_cache(tmp_path, caplog):
    embedder = HashEmbedder()
    first = embed_split(TEXTS, embedder, "toy", "train", 16)
    assert isinstance(first, EmbeddedSplit) and not first.from_cache
    assert first.embeddings.shape == (3, 8) and embedder.calls == 1
    with caplog.at_level(logging.INFO, logger="invert.data.pairs"):
        second = embed_split(TEXTS, embedder, "toy", "train", 16)
    assert second.from_cache and embedder.calls == 1
    assert torch.equal(first.embeddings, second.embeddings)
    assert second.texts == TEXTS and len(second) == 3
    assert "embedding cache hit" in caplog.text


def test_cache_layout(tmp_path):
    result = embed_split(TEXTS, HashEmbedder(), "file:/data/my texts.txt", "test", 32)
    rel = result.path.relative_to(tmp_path)
    assert rel.parts[:3] == ("pairs", slug("test/hash-embedder"), slug("file:/data/my texts.txt"))
    assert rel.name.startswith("test-t32-") and rel.suffix == ".safetensors"
    assert result.path.with_suffix(".json").exists()
    assert not [p for p in result.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_dataset_input():
    import datasets

    ds = datasets.Dataset.from_dict({"text": TEXTS})
    embedder = HashEmbedder()
    assert not embed_split(ds, embedder, "toy", "train", 16).from_cache
    assert embed_split(TEXTS, embedder, "toy", "train", 16).from_cache


@pytest.mark.parametrize(
    "change",
    [
        {"texts": [*TEXTS[:2], "Rain fell all day."]},
        {"texts": TEXTS[:2]},
        {"split": "validation"},
        {"max_tokens": 32},
        {"corpus": "other"},
        {"embedder": HashEmbedder(dim=4)},
        {"embedder": HashEmbedder(name="test/another")},
    ],
)
def test_any_key_change_misses(change):
    embedder = HashEmbedder()
    embed_split(TEXTS, embedder, "toy", "train", 16)
    args = {
        "texts": TEXTS,
        "embedder": embedder,
        "corpus": "toy",
        "split": "train",
        "max_tokens": 16,
    }
    args.update(change)
    result = embed_split(
        args["texts"], args["embedder"], args["corpus"], args["split"], args["max_tokens"]
    )
    assert not result.from_cache
    assert result.embeddings.shape == (len(args["texts"]), args["embedder"].dim)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_cache_is_recomputed(damage, caplog):
    embedder = HashEmbedder()
    first = embed_split(TEXTS, embedder, "toy", "train", 16)
    data = first.path.read_bytes()
    first.path.write_bytes(
        {
            "garbage": b"not a safetensors file" * 10,
            "truncate": data[: len(data) // 2],
            "empty": b"",
        }[damage]
    )
    with caplog.at_level(logging.WARNING, logger="invert.data.pairs"):
        second = embed_split(TEXTS, embedder, "toy", "train", 16)
    assert not second.from_cache and embedder.calls == 2
    assert torch.equal(first.embeddings, second.embeddings)
    assert "recomputing" in caplog.text
    assert embed_split(TEXTS, embedder, "toy", "train", 16).from_cache  # repaired on disk


def test_embed_texts_cached_uses_env_cache_dir(tmp_path):
    embedder = HashEmbedder()
    key = {"corpus": "toy", "split": "train", "max_tokens": 16}
    a = embed_texts_cached(TEXTS, embedder, key)
    b = embed_texts_cached(TEXTS, embedder, key, batch_size=2)
    assert torch.equal(a, b) and embedder.calls == 1
    assert list((tmp_path / "pairs").rglob("*.safetensors"))
    c = embed_texts_cached(TEXTS, embedder, {"purpose": "audit"}, cache_root=tmp_path / "elsewhere")
    assert torch.equal(a, c) and embedder.calls == 2


def test_empty_texts_rejected():
    with pytest.raises(EmptyInputError):
        embed_split([], HashEmbedder(), "toy", "train", 16)
