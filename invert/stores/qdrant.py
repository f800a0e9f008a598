"""A Qdrant collection in local (embedded) mode, ``QdrantClient(path=...)``, as a store.

Qdrant normalizes vectors of cosine-distance collections on insert, so such a store returns
unit vectors; that matches embedders that normalize (MiniLM) and is harmless for inversion.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from invert.stores.base import StoreBatch, StoreError, VectorStore, require_package
from invert.stores.safe_pickle import UnsafePickleError, check_pickles

# The classes a stored point may hold: qdrant-client's data models.
POINT_MODULES = ("qdrant_client.http.models", "qdrant_client.models")


class QdrantStore(VectorStore):
    """Scrolls a local Qdrant collection.

    Args:
        path: The folder passed to ``QdrantClient(path=...)``.
        collection: Collection name.
        text_key: Payload key holding the document (absent: vectors only).
        vector_name: Name of the vector for collections with named vectors.
    """

    def __init__(
        self,
        path: str | Path,
        collection: str = "documents",
        text_key: str = "document",
        vector_name: str | None = None,
    ) -> None:
        qdrant_client = require_package("qdrant_client", "qdrant-client")
        path = Path(path).expanduser()
        if not path.is_dir():
            raise StoreError(f"no Qdrant folder at {path}; pass the QdrantClient(path=...) path")
        self.name = f"qdrant:{path.name}/{collection}"
        # qdrant-client's local mode unpickles every stored point on open: check them first,
        # so a folder from elsewhere cannot run code.
        check_local_points(path)
        self._client = qdrant_client.QdrantClient(path=str(path))
        if not self._client.collection_exists(collection):
            names = [c.name for c in self._client.get_collections().collections]
            self._client.close()
            raise StoreError(
                f"{path} has no Qdrant collection {collection!r}; its collections: {names}"
            )
        self._collection, self._text_key, self._vector_name = collection, text_key, vector_name
        params = self._client.get_collection(collection).config.params.vectors
        if isinstance(params, dict):  # named vectors
            if vector_name not in params:
                self._client.close()
                raise StoreError(
                    f"{self.name} has named vectors {sorted(params)}; set vector_name=..."
                )
            params = params[vector_name]
        self._dim = int(params.size)

    @property
    def count(self) -> int:
        return int(self._client.count(self._collection, exact=True).count)

    @property
    def dim(self) -> int:
        return self._dim

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        offset = None
        while True:
            points, offset = self._client.scroll(
                self._collection,
                limit=batch_size,
                offset=offset,
                with_vectors=True,
                with_payload=True,
            )
            if not points:
                return
            vectors = [
                p.vector[self._vector_name] if self._vector_name else p.vector for p in points
            ]
            docs = [(p.payload or {}).get(self._text_key) for p in points]
            yield StoreBatch([p.id for p in points], np.asarray(vectors), docs)
            if offset is None:
                return

    def close(self) -> None:
        self._client.close()


def check_local_points(path: Path) -> int:
    """Checks every pickled point of a local Qdrant folder without running any of them.

    Returns:
        How many points were checked.

    Raises:
        StoreError: A point names a callable that is not one of qdrant-client's data models
            (a crafted payload); nothing it names was called.
    """
    import sqlite3

    checked = 0
    # Every points table below the folder: qdrant-client opens collections at any depth.
    for db in sorted(path.rglob("storage.sqlite")):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            try:
                rows = conn.execute("SELECT point FROM points").fetchall()
            except sqlite3.DatabaseError as err:
                raise StoreError(f"{db} is not a Qdrant points table ({err})") from err
        try:
            checked += check_pickles((r[0] for r in rows), POINT_MODULES)
        except UnsafePickleError as err:
            raise StoreError(
                f"{db}: {err}; refusing to open it (qdrant-client would run it). Open only "
                "stores you trust, or export the vectors to .parquet/.npy"
            ) from None
    return checked
