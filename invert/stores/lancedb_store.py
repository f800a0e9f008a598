"""A LanceDB table as a :class:`VectorStore`, read by row offsets (never all at once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from invert.stores.base import StoreBatch, StoreError, VectorStore, require_package


class LanceDBStore(VectorStore):
    """Reads a LanceDB table.

    Args:
        path: The database folder passed to ``lancedb.connect``.
        table: Table name.
        vector_column: Column of fixed-size float lists.
        text_column: Column with the documents (absent: vectors only).
        id_column: Column with row ids (absent: the row offsets).
    """

    def __init__(
        self,
        path: str | Path,
        table: str = "documents",
        vector_column: str = "vector",
        text_column: str = "text",
        id_column: str = "id",
    ) -> None:
        lancedb = require_package("lancedb", "lancedb")
        path = Path(path).expanduser()
        if not path.is_dir():
            raise StoreError(f"no LanceDB folder at {path}; pass the lancedb.connect path")
        self.name = f"lancedb:{path.name}/{table}"
        db = lancedb.connect(str(path))
        try:
            self._table = db.open_table(table)
        except (ValueError, FileNotFoundError) as err:
            raise StoreError(
                f"{path} has no LanceDB table {table!r}; its tables: {list(db.list_tables())}"
            ) from err
        schema = self._table.schema
        if vector_column not in schema.names:
            raise StoreError(
                f"{self.name} has no column {vector_column!r}; columns: {schema.names} "
                "(set vector_column=...)"
            )
        self._vector_column = vector_column
        self._text_column = text_column if text_column in schema.names else None
        self._id_column = id_column if id_column in schema.names else None
        self._dim = int(schema.field(vector_column).type.list_size)

    @property
    def count(self) -> int:
        return int(self._table.count_rows())

    @property
    def dim(self) -> int:
        if self._dim <= 0:  # variable-size list column: read the first row
            self.require_rows()
            first = next(self._batches(1))
            self._dim = int(first.vectors.shape[1])
        return self._dim

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        columns = [c for c in (self._id_column, self._vector_column, self._text_column) if c]
        total = self.count
        for start in range(0, total, batch_size):
            offsets = list(range(start, min(start + batch_size, total)))
            page = self._table.take_offsets(offsets).select(columns).to_arrow()
            ids = page.column(self._id_column).to_pylist() if self._id_column else offsets
            vectors = np.asarray(page.column(self._vector_column).to_pylist(), dtype=np.float32)
            docs = page.column(self._text_column).to_pylist() if self._text_column else None
            yield StoreBatch(ids, vectors, docs)
