"""A Chroma persistent collection that an experiment writes, queries and deletes from.

The audits only read stores (:class:`invert.stores.chroma.ChromaStore`); the weights-vs-
activations experiment builds one: the knowledge base goes in, questions retrieve from it, and
"forget these people" deletes their vectors. Cosine distance, as sentence embedders are used.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from invert.errors import DimensionMismatchError, EmptyInputError, InvertError
from invert.stores.base import require_package

CHROMA_MAX_BATCH = 5000  # Chroma refuses larger add() calls


class ChromaCollectionWriter:
    """A fresh Chroma collection in ``path`` (an existing one of that name is replaced).

    Args:
        path: The persistent client's folder (created).
        collection: Collection name.
        dim: Vector dimension; every add is checked against it.
    """

    def __init__(self, path: str | Path, collection: str, dim: int) -> None:
        chromadb = require_package("chromadb", "chromadb")
        self.path, self.dim = Path(path), int(dim)
        self.path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(path=str(self.path))
        if collection in [c.name for c in self._client.list_collections()]:
            self._client.delete_collection(collection)
        self._col = self._client.create_collection(collection, metadata={"hnsw:space": "cosine"})
        self.name = f"chroma:{self.path.name}/{collection}"

    @property
    def count(self) -> int:
        return int(self._col.count())

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"{self.name} holds {self.dim}-dim vectors, got shape {tuple(vectors.shape)}; "
                "embed with the embedder the store was built for"
            )
        if not np.all(np.isfinite(vectors)):
            raise InvertError("vectors hold NaN/inf; check the embedder's outputs")
        return vectors

    def add(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Adds rows (ids must be new), in batches Chroma accepts."""
        vectors = self._check(vectors)
        if not (len(ids) == len(vectors) == len(documents)):
            raise InvertError(f"{len(ids)} ids, {len(vectors)} vectors, {len(documents)} documents")
        if not ids:
            raise EmptyInputError("nothing to add to the store")
        for i in range(0, len(ids), CHROMA_MAX_BATCH):
            j = i + CHROMA_MAX_BATCH
            self._col.add(
                ids=list(ids[i:j]), embeddings=vectors[i:j], documents=list(documents[i:j]),
                metadatas=list(metadatas[i:j]) if metadatas else None,
            )  # fmt: skip

    def query(self, vectors: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        """The ``k`` nearest rows of each query: ``[{id, document, metadata, distance}, ...]``."""
        vectors = self._check(vectors)
        if self.count == 0:
            return [[] for _ in range(len(vectors))]
        res = self._col.query(
            query_embeddings=vectors, n_results=min(k, self.count),
            include=["documents", "metadatas", "distances"],
        )  # fmt: skip
        return [
            [
                {"id": i, "document": d, "metadata": m or {}, "distance": float(s)}
                for i, d, m, s in zip(ids, docs, metas, dists, strict=True)
            ]
            for ids, docs, metas, dists in zip(
                res["ids"], res["documents"], res["metadatas"], res["distances"], strict=True
            )
        ]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``ids``, in that order (what an attacker with read access has)."""
        page = self._col.get(ids=list(ids), include=["embeddings"])
        by_id = dict(
            zip(page["ids"], np.asarray(page["embeddings"], dtype=np.float32), strict=True)
        )
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise InvertError(f"{self.name} holds no rows {missing[:5]}")
        return np.stack([by_id[i] for i in ids])

    def delete_where(self, key: str, values: Sequence[str]) -> int:
        """Deletes every row whose metadata ``key`` is in ``values``; returns rows removed."""
        before = self.count
        if values:
            self._col.delete(where={key: {"$in": list(values)}})
        return before - self.count

    def bytes_on_disk(self) -> int:
        """Size of the store's folder: what keeping the knowledge base in it costs."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def destroy(self) -> None:
        """Removes the folder (the experiment's store is a run artifact)."""
        shutil.rmtree(self.path, ignore_errors=True)
