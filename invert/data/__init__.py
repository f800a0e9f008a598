"""Offline corpora, deterministic splits, and cached (text, embedding) pairs."""

from invert.data.corpora import (
    DEFAULT_CORPUS,
    CorpusPackageMissingError,
    list_corpora,
    load_raw_corpus,
    register_corpus,
)
from invert.data.pairs import EmbeddedSplit, embed_split, embed_texts_cached
from invert.data.splits import assign_split, clean_texts, prepare_corpus, truncate_texts
from invert.data.synthetic_pii import synthetic_pii_records

__all__ = [
    "DEFAULT_CORPUS",
    "CorpusPackageMissingError",
    "EmbeddedSplit",
    "assign_split",
    "clean_texts",
    "embed_split",
    "embed_texts_cached",
    "list_corpora",
    "load_raw_corpus",
    "prepare_corpus",
    "register_corpus",
    "synthetic_pii_records",
    "truncate_texts",
]
