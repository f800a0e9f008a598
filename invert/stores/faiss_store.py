"""A FAISS index plus an id/text sidecar (JSON or parquet, never pickle) as a store.

The sidecar maps FAISS row ``i`` to its id and document: a JSON list of ``{"id", "text"}``
objects (or of plain strings), or a parquet file with ``id`` / ``text`` columns in row order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from invert.stores.base import StoreBatch, StoreError, VectorStore, require_package


class FaissStore(VectorStore):
    """Reads vectors back out of a FAISS index with ``reconstruct_n``.

    Args:
        path: File written by ``faiss.write_index``.
        sidecar: Optional ``.json`` or ``.parquet`` with the ids and texts, in row order.
        mmap: Memory-map the index (flat indexes) so a large one is not read into RAM.
    """

    def __init__(
        self, path: str | Path, sidecar: str | Path | None = None, mmap: bool = True
    ) -> None:
        faiss = require_package("faiss", "faiss-cpu")
        path = Path(path).expanduser()
        if not path.is_file():
            raise StoreError(f"no FAISS index at {path}")
        self.name = f"faiss:{path.name}"
        try:
            self._index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
        except RuntimeError:  # not every index type can be memory-mapped
            try:
                self._index = faiss.read_index(str(path))
            except RuntimeError as err:
                reason = str(err).strip().splitlines()[-1][:200]
                raise StoreError(f"{path} is not a FAISS index faiss can read ({reason})") from None
        self._ids: list[str] | None = None
        # IndexIDMap keeps custom ids beside an inner index and cannot give vectors back (its
        # reconstruct aborts the process): read the inner index, and take the ids from the map.
        if "IndexIDMap" in type(self._index).__name__:
            self._ids = [str(i) for i in faiss.vector_to_array(self._index.id_map).tolist()]
            self._outer = self._index  # owns the inner index: keep it alive
            self._index = faiss.downcast_index(self._index.index)
        if self.count:
            try:
                self._index.reconstruct(0)
            except RuntimeError as err:
                raise StoreError(
                    f"{path}: a {type(self._index).__name__} cannot give its vectors back "
                    f"({str(err).strip().splitlines()[-1][:160]}); call make_direct_map() on an "
                    "IVF index before saving it, or store the vectors in a flat index"
                ) from None
        self._texts: list[str] | None = None
        self._parquet: Path | None = None
        if sidecar is not None:
            self._read_sidecar(Path(sidecar).expanduser())

    def _read_sidecar(self, sidecar: Path) -> None:
        if not sidecar.is_file():
            raise StoreError(f"no FAISS sidecar at {sidecar}")
        if sidecar.suffix == ".json":
            rows = json.loads(sidecar.read_text(encoding="utf-8"))
            if rows and isinstance(rows[0], str):
                self._texts = [str(r) for r in rows]
            else:
                self._ids = self._ids or [str(r.get("id", i)) for i, r in enumerate(rows)]
                self._texts = (
                    [r.get("text") for r in rows] if any("text" in r for r in rows) else None
                )
            n = len(rows)
        elif sidecar.suffix == ".parquet":
            import pyarrow.parquet as pq

            n = pq.ParquetFile(sidecar).metadata.num_rows
            self._parquet = sidecar  # streamed alongside the vectors
        else:
            raise StoreError(
                f"FAISS sidecar must be .json or .parquet (never pickle), got {sidecar.name}"
            )
        if n != self.count:
            raise StoreError(f"{sidecar} has {n} rows but the index holds {self.count} vectors")

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        side = self._parquet_batches(batch_size) if self._parquet else None
        for start in range(0, self.count, batch_size):
            n = min(batch_size, self.count - start)
            vectors = self._index.reconstruct_n(start, n)
            ids: list = list(range(start, start + n))
            docs = None
            if side is not None:
                ids, docs = next(side)
            else:
                if self._ids is not None:
                    ids = self._ids[start : start + n]
                if self._texts is not None:
                    docs = self._texts[start : start + n]
            yield StoreBatch(ids, np.asarray(vectors), docs)

    def _parquet_batches(self, batch_size: int) -> Iterator[tuple[list, list | None]]:
        import pyarrow.parquet as pq

        file = pq.ParquetFile(self._parquet)
        names = file.schema_arrow.names
        columns = [c for c in ("id", "text") if c in names]
        start = 0
        for table in file.iter_batches(batch_size=batch_size, columns=columns or None):
            n = table.num_rows
            ids = table.column("id").to_pylist() if "id" in names else list(range(start, start + n))
            docs = table.column("text").to_pylist() if "text" in names else None
            start += n
            yield ids, docs
