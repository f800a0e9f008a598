"""Each store adapter against a real small store built with its own client library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from invert.errors import DimensionMismatchError, EmptyInputError, UnknownNameError
from invert.stores import StoreError, open_store

N, DIM = 23, 8


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # Qdrant cosine normalizes
    ids = [f"r{i}" for i in range(N)]
    texts = [f"document number {i} about topic {i % 5}" for i in range(N)]
    return ids, vectors, texts


def build_chroma(tmp_path, empty=False):
    import chromadb

    ids, vectors, texts = _data()
    col = chromadb.PersistentClient(path=str(tmp_path / "chroma")).create_collection("docs")
    if not empty:
        col.add(ids=ids, embeddings=vectors.tolist(), documents=texts)
    return {"type": "chroma", "path": str(tmp_path / "chroma"), "collection": "docs"}


def build_lancedb(tmp_path, empty=False):
    import lancedb
    import pyarrow as pa

    ids, vectors, texts = _data()
    db = lancedb.connect(str(tmp_path / "lance"))
    schema = pa.schema(
        [("id", pa.string()), ("vector", pa.list_(pa.float32(), DIM)), ("text", pa.string())]
    )
    rows = (
        []
        if empty
        else [
            {"id": i, "vector": v.tolist(), "text": t}
            for i, v, t in zip(ids, vectors, texts, strict=True)
        ]
    )
    db.create_table("docs", data=rows or None, schema=schema)
    return {"type": "lancedb", "path": str(tmp_path / "lance"), "table": "docs"}


def build_faiss(tmp_path, empty=False, sidecar="json"):
    import faiss

    ids, vectors, texts = _data()
    index = faiss.IndexFlatIP(DIM)
    if not empty:
        index.add(vectors)
    faiss.write_index(index, str(tmp_path / "index.faiss"))
    if sidecar == "json":
        side = tmp_path / "sidecar.json"
        rows = [] if empty else [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
        side.write_text(json.dumps(rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        side = tmp_path / "sidecar.parquet"
        pq.write_table(pa.table({"id": ids, "text": texts}), side, row_group_size=7)
    return {"type": "faiss", "path": str(tmp_path / "index.faiss"), "sidecar": str(side)}


def build_qdrant(tmp_path, empty=False):
    from qdrant_client import QdrantClient, models

    ids, vectors, texts = _data()
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    client.create_collection(
        "docs", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    if not empty:
        client.upsert(
            "docs",
            points=[
                models.PointStruct(id=i, vector=v.tolist(), payload={"document": t, "key": k})
                for i, (k, v, t) in enumerate(zip(ids, vectors, texts, strict=True))
            ],
        )
    client.close()
    return {"type": "qdrant", "path": str(tmp_path / "qdrant"), "collection": "docs"}


def build_npy(tmp_path, empty=False):
    ids, vectors, texts = _data()
    np.save(tmp_path / "v.npy", vectors[:0] if empty else vectors)
    (tmp_path / "t.json").write_text(json.dumps([] if empty else texts))
    return {"type": "npy", "path": str(tmp_path / "v.npy"), "texts_path": str(tmp_path / "t.json")}


def build_parquet(tmp_path, empty=False):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, vectors, texts = _data()
    k = 0 if empty else N
    table = pa.table(
        {
            "id": ids[:k],
            "embedding": pa.array([v.tolist() for v in vectors[:k]], pa.list_(pa.float32())),
            "text": texts[:k],
        }
    )
    pq.write_table(table, tmp_path / "v.parquet", row_group_size=5)
    return {"type": "parquet", "path": str(tmp_path / "v.parquet")}


BUILDERS = {
    "chroma": build_chroma,
    "lancedb": build_lancedb,
    "faiss": build_faiss,
    "qdrant": build_qdrant,
    "npy": build_npy,
    "parquet": build_parquet,
}


def _by_text(batches):
    return {d: v for b in batches for d, v in zip(b.documents, b.vectors, strict=True)}


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_store_reads_every_row_in_batches(kind, tmp_path):
    _, vectors, texts = _data()
    with open_store(BUILDERS[kind](tmp_path)) as store:
        assert store.count == N and store.dim == DIM
        batches = list(store.iter_batches(batch_size=5))
        assert max(len(b) for b in batches) <= 5 and sum(len(b) for b in batches) == N
        assert all(b.vectors.dtype == np.float32 and b.vectors.shape[1] == DIM for b in batches)
        got = _by_text(batches)
        assert set(got) == set(texts)
        for vec, text in zip(vectors, texts, strict=True):
            np.testing.assert_allclose(got[text], vec, atol=1e-5)
        sample = store.sample(7, seed=3, batch_size=4)
        assert len(sample) == 7 == len(set(sample.ids)) and sample.vectors.shape == (7, DIM)
        assert sample.ids == store.sample(7, seed=3).ids  # same seed, same rows
        assert len(store.sample(100, seed=0)) == N


def test_faiss_parquet_sidecar(tmp_path):
    _, vectors, texts = _data()
    store = open_store(build_faiss(tmp_path, sidecar="parquet"))
    batches = list(store.iter_batches(batch_size=4))
    assert [i for b in batches for i in b.ids] == [f"r{i}" for i in range(N)]
    np.testing.assert_allclose(_by_text(batches)[texts[5]], vectors[5], atol=1e-6)


def test_faiss_refuses_pickle_sidecar(tmp_path):
    spec = build_faiss(tmp_path)
    (tmp_path / "side.pkl").write_bytes(b"x")
    with pytest.raises(StoreError, match="never pickle"):
        open_store({**spec, "sidecar": str(tmp_path / "side.pkl")})


def test_vectors_only_store_has_no_documents(tmp_path):
    _, vectors, _ = _data()
    np.save(tmp_path / "v.npy", vectors)
    batch = open_store({"type": "npy", "path": str(tmp_path / "v.npy")}).sample(4)
    assert batch.documents is None and batch.vectors.shape == (4, DIM)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_dimension_mismatch_names_both_dims(kind, tmp_path):
    with open_store(BUILDERS[kind](tmp_path)) as store:
        with pytest.raises(DimensionMismatchError, match=r"8-dim.*expects 384-dim"):
            store.check_dim(384, "the inverter (trained on minilm)")


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_empty_store_is_a_clear_error(kind, tmp_path):
    with open_store(BUILDERS[kind](tmp_path, empty=True)) as store:
        assert store.count == 0
        with pytest.raises(EmptyInputError, match="holds no vectors"):
            store.sample(5)
        with pytest.raises(EmptyInputError):
            list(store.iter_batches())


def test_missing_collection_and_unknown_type(tmp_path):
    spec = build_chroma(tmp_path)
    with pytest.raises(StoreError, match="no Chroma collection 'nope'.*docs"):
        open_store({**spec, "collection": "nope"})
    with pytest.raises(UnknownNameError, match="store type"):
        open_store({"type": "pinecone"})
    with pytest.raises(StoreError, match="no LanceDB folder"):
        open_store({"type": "lancedb", "path": str(tmp_path / "missing")})
