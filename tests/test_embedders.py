"""Embedders: the packaged MiniLM, HF pooling, stored vectors, and the input checks."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from invert.embedders import (
    EMBEDDER_TYPES,
    MINILM,
    HFPoolingEmbedder,
    PrecomputedEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
    check_embeddings,
    check_texts,
)
from invert.embedders.sentence_transformer import packaged_minilm_path
from invert.errors import (
    DimensionMismatchError,
    EmptyInputError,
    HubUnavailableError,
    InvalidEmbeddingError,
    InvertError,
    UnknownNameError,
)

TEXTS = [
    "the cat sat on the mat",
    "a much longer sentence about rivers, the sea and many other things",
    "hi",
    "the cat sat on the mat",
]
cosine = torch.nn.functional.cosine_similarity


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return build_embedder("minilm")


@pytest.fixture(scope="module")
def minilm_vectors(minilm) -> torch.Tensor:
    return minilm.encode(TEXTS)


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("INVERT_ALLOW_HUB", raising=False)


# --- sentence-transformers / MiniLM ---------------------------------------------------------


def test_minilm_returns_float32_rows_of_dim_384(minilm, minilm_vectors):
    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert minilm.name == MINILM and minilm.dim == 384
    assert minilm_vectors.shape == (len(TEXTS), 384)
    assert minilm_vectors.dtype == torch.float32 and minilm_vectors.device.type == "cpu"
    assert torch.isfinite(minilm_vectors).all()
    # MiniLM's own pipeline normalizes; distinct texts give distinct vectors.
    torch.testing.assert_close(minilm_vectors.norm(dim=1), torch.ones(len(TEXTS)))
    assert cosine(minilm_vectors[0], minilm_vectors[1], dim=0) < 0.9


def test_minilm_identical_texts_identical_vectors(minilm, minilm_vectors):
    assert torch.equal(minilm_vectors[0], minilm_vectors[3])  # same batch: bit-identical
    again = minilm.encode([TEXTS[0]])
    torch.testing.assert_close(again[0], minilm_vectors[0], atol=1e-6, rtol=0)


def test_minilm_result_can_enter_autograd(minilm):
    vec = minilm.encode(["grad me"])
    weight = torch.ones(384, requires_grad=True)
    (vec @ weight).sum().backward()  # an inference-mode tensor would raise here
    torch.testing.assert_close(weight.grad, vec[0])


# --- HF pooling ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_mean() -> HFPoolingEmbedder:
    return build_embedder(
        {"type": "hf_pooling", "model": str(packaged_minilm_path()), "pooling": "mean"}
    )


def test_hf_mean_pooling_matches_sentence_transformers(hf_mean, minilm_vectors):
    assert isinstance(hf_mean, HFPoolingEmbedder) and hf_mean.dim == 384
    pooled = hf_mean.encode(TEXTS)
    assert pooled.shape == (len(TEXTS), 384) and pooled.dtype == torch.float32
    # Not normalized (normalize=False) ...
    assert (pooled.norm(dim=1) > 1.5).all()
    # ... but the same direction as MiniLM's (mean pooling, then normalize).
    assert (cosine(pooled, minilm_vectors) > 0.99).all()
    torch.testing.assert_close(
        torch.nn.functional.normalize(pooled, dim=-1), minilm_vectors, atol=1e-4, rtol=0
    )


def test_hf_cls_pooling_differs_from_mean(hf_mean):
    cls = HFPoolingEmbedder(str(packaged_minilm_path()), pooling="cls", normalize=True)
    cls_vectors, mean_vectors = cls.encode(TEXTS), hf_mean.encode(TEXTS)
    torch.testing.assert_close(cls_vectors.norm(dim=1), torch.ones(len(TEXTS)))
    assert (cosine(cls_vectors, mean_vectors) < 0.9).all()


def test_hf_unknown_pooling_refused():
    with pytest.raises(InvertError, match="mean"):
        HFPoolingEmbedder(str(packaged_minilm_path()), pooling="max")


# --- precomputed ---------------------------------------------------------------------------


def _vectors(n: int = 3, dim: int = 5) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def test_precomputed_npy_with_texts_round_trip(tmp_path):
    vectors, texts = _vectors(), ["alpha one", "beta two", "gamma three"]
    np.save(tmp_path / "store.npy", vectors)
    (tmp_path / "store.txt").write_text("\n".join(texts) + "\n")
    emb = build_embedder(
        {
            "type": "precomputed",
            "path": str(tmp_path / "store.npy"),
            "texts_path": str(tmp_path / "store.txt"),
        }
    )
    assert isinstance(emb, PrecomputedEmbedder)
    assert emb.name == "store" and emb.dim == 5 and emb.texts == texts
    assert torch.equal(emb.vectors, torch.from_numpy(vectors))
    assert torch.equal(emb.encode(["gamma three", "alpha one"]), torch.from_numpy(vectors[[2, 0]]))
    with pytest.raises(InvertError, match="no precomputed vector"):
        emb.encode(["delta four"])


def test_precomputed_npy_texts_json_sidecar_and_count_mismatch(tmp_path):
    np.save(tmp_path / "v.npy", _vectors())
    (tmp_path / "t.json").write_text(json.dumps(["a", "b", "c"]))
    emb = PrecomputedEmbedder(
        tmp_path / "v.npy", name="api-embedder", texts_path=tmp_path / "t.json"
    )
    assert emb.name == "api-embedder" and emb.texts == ["a", "b", "c"]
    (tmp_path / "short.txt").write_text("a\nb\n")
    with pytest.raises(InvertError, match="2 texts but 3 vectors"):
        PrecomputedEmbedder(tmp_path / "v.npy", texts_path=tmp_path / "short.txt")


def test_precomputed_npy_without_texts_has_vectors_but_no_lookup(tmp_path):
    np.save(tmp_path / "bare.npy", _vectors())
    emb = PrecomputedEmbedder(tmp_path / "bare.npy")
    assert emb.texts is None and emb.vectors.shape == (3, 5)
    with pytest.raises(InvertError, match="without texts"):
        emb.encode(["anything"])


def test_precomputed_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    vectors, texts = _vectors(4, 6), ["one", "two", "three", "four"]
    table = pa.table({"sentence": texts, "vec": [row.tolist() for row in vectors]})
    pq.write_table(table, tmp_path / "export.parquet")
    emb = build_embedder(
        {
            "type": "precomputed",
            "path": str(tmp_path / "export.parquet"),
            "text_column": "sentence",
            "vector_column": "vec",
        }
    )
    assert emb.dim == 6 and emb.texts == texts and emb.name == "export"
    assert torch.equal(emb.vectors, torch.from_numpy(vectors))
    assert torch.equal(emb.encode(["four"]), torch.from_numpy(vectors[[3]]))
    with pytest.raises(InvertError, match="no column 'embedding'.*vec"):
        PrecomputedEmbedder(tmp_path / "export.parquet")


class _TouchOnUnpickle:
    """Unpickling this object creates a file: proof that a load ran pickled code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_precomputed_refuses_pickled_npy_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = _TouchOnUnpickle(marker), _TouchOnUnpickle(marker)
    np.save(tmp_path / "evil.npy", payload, allow_pickle=True)
    assert not marker.exists()
    with pytest.raises(ValueError, match="allow_pickle"):
        PrecomputedEmbedder(tmp_path / "evil.npy")
    assert not marker.exists()
    np.load(tmp_path / "evil.npy", allow_pickle=True)  # the payload is live: loading runs it
    assert marker.exists()


def test_precomputed_pickled_npy_error_is_an_invert_error(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvertError):
        PrecomputedEmbedder(tmp_path / "obj.npy")


def test_precomputed_bad_files_refused(tmp_path):
    with pytest.raises(InvertError, match="no precomputed vectors"):
        PrecomputedEmbedder(tmp_path / "missing.npy")
    (tmp_path / "v.csv").write_text("1,2\n")
    with pytest.raises(InvertError, match=r"\.npy or \.parquet"):
        PrecomputedEmbedder(tmp_path / "v.csv")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(EmptyInputError):
        PrecomputedEmbedder(tmp_path / "empty.npy")
    bad = _vectors()
    bad[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InvalidEmbeddingError, match=r"rows \[1\]"):
        PrecomputedEmbedder(tmp_path / "nan.npy")


# --- registry and hub ----------------------------------------------------------------------


def test_unknown_embedder_type_lists_known_types():
    with pytest.raises(UnknownNameError) as err:
        build_embedder({"type": "openai", "model": "text-embedding-3-small"})
    message = str(err.value)
    assert "'openai'" in message
    for known in EMBEDDER_TYPES:
        assert known in message


def test_build_embedder_returns_an_embedder_unchanged(minilm):
    assert build_embedder(minilm) is minilm


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_embedder("someone/some-embedding-model"),
        lambda: build_embedder({"type": "hf_pooling", "model": "someone/some-encoder"}),
    ],
    ids=["sentence_transformer", "hf_pooling"],
)
def test_hub_id_offline_fails_fast_naming_minilm(offline, no_network, build):
    with pytest.raises(HubUnavailableError) as err:
        build()
    assert "minilm" in str(err.value) and "INVERT_ALLOW_HUB=1" in str(err.value)


# --- input checks --------------------------------------------------------------------------


@pytest.mark.parametrize("texts", [[], ["fine", "   "], [""], "", ["ok", None]])
def test_empty_or_blank_texts_raise_empty_input(minilm, texts):
    with pytest.raises(EmptyInputError):
        minilm.encode(texts)


def test_check_texts_names_the_bad_index():
    assert check_texts("one text") == ["one text"]
    with pytest.raises(EmptyInputError, match="text 2 is empty"):
        check_texts(["a", "b", "\n\t"])


def test_check_embeddings_wrong_dim_names_both_dims():
    with pytest.raises(DimensionMismatchError) as err:
        check_embeddings(torch.zeros(2, 5), expected_dim=7, source="the store (built on e5)")
    message = str(err.value)
    assert "dim 5" in message and "expects 7" in message and "the store (built on e5)" in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_check_embeddings_non_finite_rows_raise(bad):
    emb = torch.ones(5, 4)
    emb[1, 0] = bad
    emb[3, 2] = bad
    with pytest.raises(InvalidEmbeddingError, match=r"2 embedding\(s\).*rows \[1, 3\]"):
        check_embeddings(emb, expected_dim=4)


def test_check_embeddings_shapes_and_dtypes():
    one = check_embeddings(np.arange(4, dtype=np.float64))
    assert one.shape == (1, 4) and one.dtype == torch.float32
    with pytest.raises(InvalidEmbeddingError, match="shape"):
        check_embeddings(torch.zeros(2, 3, 4))
    with pytest.raises(InvalidEmbeddingError, match="got no embeddings"):
        check_embeddings(torch.zeros(0, 4))
    with pytest.raises(InvalidEmbeddingError, match="bool"):
        check_embeddings(torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(InvalidEmbeddingError, match="not a numeric array"):
        check_embeddings([[1.0, 2.0], [3.0]])
