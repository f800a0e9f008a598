"""A Chroma persistent collection (``chromadb.PersistentClient``) as a :class:`VectorStore`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from invert.stores.base import StoreBatch, StoreError, VectorStore, require_package


class ChromaStore(VectorStore):
    """Reads a collection of a Chroma persistent client folder, page by page.

    Args:
        path: The folder passed to ``chromadb.PersistentClient(path=...)``.
        collection: Collection name.
    """

    def __init__(self, path: str | Path, collection: str = "documents") -> None:
        chromadb = require_package("chromadb", "chroma")
        path = Path(path).expanduser()
        if not path.is_dir():
            raise StoreError(f"no Chroma folder at {path}; pass the PersistentClient path")
        self.name = f"chroma:{path.name}/{collection}"
        self._client = chromadb.PersistentClient(path=str(path))
        try:
            self._col = self._client.get_collection(collection)
        except Exception as err:  # chromadb raises NotFoundError / ValueError by version
            names = [c.name for c in self._client.list_collections()]
            raise StoreError(
                f"{path} has no Chroma collection {collection!r}; its collections: {names}"
            ) from err
        self._dim: int | None = None

    @property
    def count(self) -> int:
        return int(self._col.count())

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.require_rows()
            first = self._col.get(limit=1, include=["embeddings"])["embeddings"]
            self._dim = int(np.asarray(first).shape[1])
        return self._dim

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        for offset in range(0, self.count, batch_size):
            page = self._col.get(
                limit=batch_size, offset=offset, include=["embeddings", "documents"]
            )
            docs = page.get("documents")
            yield StoreBatch(page["ids"], np.asarray(page["embeddings"]), docs)
