"""Embedders: one interface over sentence-transformers, HF encoders and stored vectors."""

from invert.embedders.base import Embedder, check_embeddings, check_texts
from invert.embedders.hf_pooling import HFPoolingEmbedder
from invert.embedders.precomputed import PrecomputedEmbedder
from invert.embedders.registry import EMBEDDER_TYPES, build_embedder
from invert.embedders.sentence_transformer import MINILM, SentenceTransformerEmbedder

__all__ = [
    "EMBEDDER_TYPES",
    "MINILM",
    "Embedder",
    "HFPoolingEmbedder",
    "PrecomputedEmbedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "check_embeddings",
    "check_texts",
]
