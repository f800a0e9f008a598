"""Read real vector stores (Chroma, LanceDB, FAISS, Qdrant, .npy, .parquet) in batches."""

from invert.stores.base import StoreBatch, StoreError, VectorStore
from invert.stores.registry import STORE_TYPES, open_store

__all__ = ["STORE_TYPES", "StoreBatch", "StoreError", "VectorStore", "open_store"]
