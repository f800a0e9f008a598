"""Open a vector store from a config dict: ``{"type": "chroma", "path": ..., ...}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invert.errors import unknown_name
from invert.stores.base import VectorStore


def _chroma(**kw: Any) -> VectorStore:
    from invert.stores.chroma import ChromaStore

    return ChromaStore(**kw)


def _lancedb(**kw: Any) -> VectorStore:
    from invert.stores.lancedb_store import LanceDBStore

    return LanceDBStore(**kw)


def _faiss(**kw: Any) -> VectorStore:
    from invert.stores.faiss_store import FaissStore

    return FaissStore(**kw)


def _qdrant(**kw: Any) -> VectorStore:
    from invert.stores.qdrant import QdrantStore

    return QdrantStore(**kw)


def _npy(**kw: Any) -> VectorStore:
    from invert.stores.files import NpyStore

    return NpyStore(**kw)


def _parquet(**kw: Any) -> VectorStore:
    from invert.stores.files import ParquetStore

    return ParquetStore(**kw)


# Lazy constructors: a store's client library is imported only when that store is opened.
STORE_TYPES: dict[str, Callable[..., VectorStore]] = {
    "chroma": _chroma,
    "lancedb": _lancedb,
    "faiss": _faiss,
    "qdrant": _qdrant,
    "npy": _npy,
    "parquet": _parquet,
}


def open_store(spec: dict[str, Any] | VectorStore) -> VectorStore:
    """Opens the store described by ``spec`` (``type`` plus that store's arguments).

    Raises:
        UnknownNameError: ``type`` is not one of ``STORE_TYPES``.
        StoreError: The store is missing or its client library is not installed.
    """
    if isinstance(spec, VectorStore):
        return spec
    kwargs = {k: v for k, v in dict(spec).items() if v is not None}
    kind = kwargs.pop("type", None)
    if kind not in STORE_TYPES:
        raise unknown_name("store type", str(kind), list(STORE_TYPES))
    return STORE_TYPES[kind](**kwargs)
