"""Plain ``.npy`` and ``.parquet`` vector files as stores, streamed.

``.npy`` is memory-mapped (``allow_pickle=False``: a file from elsewhere never runs code); a
``.parquet`` file is read record batch by record batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from invert.stores.base import StoreBatch, StoreError, VectorStore


class NpyStore(VectorStore):
    """An ``[n, dim]`` ``.npy`` file, optionally with texts (``.txt`` one a line, or ``.json``).

    Args:
        path: The ``.npy`` file.
        texts_path: Optional texts in row order.
    """

    def __init__(self, path: str | Path, texts_path: str | Path | None = None) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise StoreError(f"no .npy file at {path}")
        self.name = f"npy:{path.name}"
        with path.open("rb") as fh:
            if fh.read(6) != b"\x93NUMPY":
                raise StoreError(f"{path} is not an .npy file (no NumPy header); save vectors "
                                 "with np.save(path, array)")  # fmt: skip
        try:
            self._vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise StoreError(f"{path} holds Python objects, not numbers ({err}); invert never "
                             "loads pickled data: save a float array") from None  # fmt: skip
        if not np.issubdtype(self._vectors.dtype, np.number):
            raise StoreError(f"{path} holds {self._vectors.dtype} values; expected numbers")
        if self._vectors.ndim != 2:
            raise StoreError(f"{path} has shape {self._vectors.shape}; expected [n, dim]")
        self._texts: list[str] | None = None
        if texts_path is not None:
            texts_path = Path(texts_path).expanduser()
            if texts_path.suffix == ".json":
                self._texts = [str(t) for t in json.loads(texts_path.read_text(encoding="utf-8"))]
            else:
                self._texts = texts_path.read_text(encoding="utf-8").splitlines()
            if len(self._texts) != self.count:
                raise StoreError(
                    f"{texts_path} has {len(self._texts)} texts for {self.count} vectors"
                )

    @property
    def count(self) -> int:
        return int(self._vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        for start in range(0, self.count, batch_size):
            end = min(start + batch_size, self.count)
            docs = self._texts[start:end] if self._texts is not None else None
            yield StoreBatch(list(range(start, end)), np.array(self._vectors[start:end]), docs)


class ParquetStore(VectorStore):
    """A parquet file with a list-valued vector column and optional text / id columns.

    Args:
        path: The ``.parquet`` file.
        vector_column: Column of float lists.
        text_column: Column of documents (absent: vectors only).
        id_column: Column of ids (absent: row numbers).
    """

    def __init__(
        self,
        path: str | Path,
        vector_column: str = "embedding",
        text_column: str = "text",
        id_column: str = "id",
    ) -> None:
        import pyarrow.parquet as pq

        path = Path(path).expanduser()
        if not path.is_file():
            raise StoreError(f"no parquet file at {path}")
        self.name = f"parquet:{path.name}"
        self._file = pq.ParquetFile(path)
        names = self._file.schema_arrow.names
        if vector_column not in names:
            raise StoreError(
                f"{path} has no column {vector_column!r}; its columns: {names} "
                "(set vector_column=...)"
            )
        self._vector_column = vector_column
        self._text_column = text_column if text_column in names else None
        self._id_column = id_column if id_column in names else None
        self._dim: int | None = None

    @property
    def count(self) -> int:
        return int(self._file.metadata.num_rows)

    @property
    def dim(self) -> int:
        if self._dim is None:
            field = self._file.schema_arrow.field(self._vector_column).type
            size = getattr(field, "list_size", -1)
            if size > 0:
                self._dim = int(size)
            else:
                self.require_rows()
                self._dim = int(next(self._batches(1)).vectors.shape[1])
        return self._dim

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        columns = [c for c in (self._id_column, self._vector_column, self._text_column) if c]
        start = 0
        for table in self._file.iter_batches(batch_size=batch_size, columns=columns):
            n = table.num_rows
            ids = (
                table.column(self._id_column).to_pylist()
                if self._id_column
                else list(range(start, start + n))
            )
            vectors = _vector_rows(table.column(self._vector_column).to_pylist(), start, self.name)
            docs = table.column(self._text_column).to_pylist() if self._text_column else None
            start += n
            yield StoreBatch(ids, vectors, docs)


def _vector_rows(rows: list, start: int, name: str) -> np.ndarray:
    """The batch as ``[n, dim]`` floats, naming the rows when vectors are missing or ragged."""
    lengths = [None if r is None else len(r) for r in rows]
    common = max(set(lengths) - {None}, key=lengths.count, default=None)
    bad = [start + i for i, n in enumerate(lengths) if n != common]
    if bad:
        raise StoreError(
            f"{name}: rows {bad[:10]} hold vectors of another length or none (lengths there: "
            f"{[lengths[i - start] for i in bad[:10]]}, elsewhere {common}); every row needs one "
            "vector of the same dimension"
        )
    return np.asarray(rows, dtype=np.float32)
