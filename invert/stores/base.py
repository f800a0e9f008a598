"""The vector-store reader interface: streamed batches of (ids, vectors, documents).

An audit never needs a whole store in memory: ``iter_batches`` streams it, ``sample`` keeps
only the drawn rows while streaming, and ``dim`` / ``count`` come from store metadata.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from invert.errors import DimensionMismatchError, EmptyInputError, InvertError


class StoreError(InvertError, OSError):
    """A store that is missing, unreadable, or lacks the collection / table asked for."""


@dataclass
class StoreBatch:
    """Rows of a vector store.

    Attributes:
        ids: Row ids as strings.
        vectors: Float32 array ``[len(ids), dim]``.
        documents: The stored texts, or None when the store holds vectors only.
    """

    ids: list[str]
    vectors: np.ndarray
    documents: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


class VectorStore(ABC):
    """Read-only view of a vector store. Subclasses set ``name`` and implement three methods."""

    name: str = "store"

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @property
    @abstractmethod
    def count(self) -> int:
        """Number of rows."""

    @abstractmethod
    def _batches(self, batch_size: int) -> Iterator[StoreBatch]:
        """Yields the rows in store order, ``batch_size`` at a time (last batch may be short)."""

    def iter_batches(self, batch_size: int = 1024) -> Iterator[StoreBatch]:
        """Streams the store in batches of float32 vectors.

        Raises:
            EmptyInputError: The store holds no rows.
        """
        self.require_rows()
        for batch in self._batches(batch_size):
            if len(batch):
                yield _as_float32(batch)

    def require_rows(self) -> None:
        """Raises EmptyInputError when the store is empty."""
        if self.count == 0:
            raise EmptyInputError(
                f"{self!r} holds no vectors; point the audit at a store with data "
                "(check the path and collection/table name)"
            )

    def check_dim(self, expected_dim: int, source: str = "the inverter") -> None:
        """Checks the store's dimension against a consumer's.

        Raises:
            DimensionMismatchError: The dimensions differ (the message names both).
        """
        if self.dim != expected_dim:
            raise DimensionMismatchError(
                f"{self!r} holds {self.dim}-dim vectors but {source} expects {expected_dim}-dim; "
                "use an inverter trained on the embedder that filled this store"
            )

    def sample(self, n: int, seed: int = 0, batch_size: int = 1024) -> StoreBatch:
        """Draws ``min(n, count)`` rows uniformly without replacement, in store order.

        Streams the store once and keeps only the drawn rows, so memory is ``O(n)``.
        """
        self.require_rows()
        total = self.count
        n = min(int(n), total)
        wanted = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        docs: list[str] | None = []
        start = 0
        batches = tqdm(
            self.iter_batches(batch_size),
            total=-(-total // batch_size),
            desc=f"reading {self.name}",
            leave=False,
        )
        for batch in batches:
            end = start + len(batch)
            lo, hi = np.searchsorted(wanted, [start, end])
            local = (wanted[lo:hi] - start).tolist()
            if local:
                ids.extend(batch.ids[i] for i in local)
                vectors.append(batch.vectors[local])
                if batch.documents is None:
                    docs = None
                elif docs is not None:
                    docs.extend(batch.documents[i] for i in local)
            start = end
            if hi >= n:
                break
        return StoreBatch(ids, np.concatenate(vectors), docs)

    def close(self) -> None:
        """Releases file handles and locks (Qdrant's local mode locks its folder)."""
        return None  # most stores hold nothing to release

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _as_float32(batch: StoreBatch) -> StoreBatch:
    vectors = np.asarray(batch.vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(len(batch.ids), -1)
    docs = batch.documents
    if docs is not None and any(d is None for d in docs):
        docs = None if all(d is None for d in docs) else [d or "" for d in docs]
    return StoreBatch([str(i) for i in batch.ids], vectors, docs)


def require_package(module: str, pip_name: str):  # noqa: ANN201 (returns a module)
    """Imports an optional store client, or says how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise StoreError(
            f"reading this store needs the pip package {pip_name!r}; run "
            f"`pip install {pip_name}` or `pip install -e '.[stores]'`"
        ) from err
