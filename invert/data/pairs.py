"""(text, embedding) pairs, cached on disk as safetensors.

The cache key holds the embedder's name and dimension, the corpus, split and token limit, and
a sha256 of the exact text list, so a changed corpus or tokenizer can never hit a stale file.
The key is also stored inside the safetensors metadata and checked on every load; safetensors
cannot run code, so a tampered or corrupt file is at worst recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from invert.data.atomic import atomic_write, atomic_write_text
from invert.embedders.base import Embedder, check_texts
from invert.env import cache_dir

logger = logging.getLogger(__name__)
_FORMAT = "invert-pairs-v2"  # v2: keyed by the embedder identity, sidecar without texts


@dataclass
class EmbeddedSplit:
    """Texts and their embeddings (row ``i`` embeds ``texts[i]``).

    Attributes:
        texts: The texts.
        embeddings: Float32 tensor ``[len(texts), dim]``.
        from_cache: True when the embeddings were read from the disk cache.
        path: The cache file.
    """

    texts: list[str]
    embeddings: torch.Tensor
    from_cache: bool = False
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.texts)


def slug(value: str, max_len: int = 80) -> str:
    """A file-name-safe form of ``value`` (long values get a short hash to stay unique)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", value).strip("-.") or "x"
    if len(text) > max_len:
        text = f"{text[: max_len - 9]}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"
    return text


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 of the exact text list; lengths are hashed too, so ["ab"] != ["a", "b"]."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def cache_path(full_key: dict[str, Any], cache_root: str | Path | None = None) -> Path:
    """Where the pairs for ``full_key`` (see ``embed_texts_cached``) are cached."""
    root = Path(cache_root) if cache_root is not None else cache_dir()
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:12]
    stem = (
        f"{slug(str(full_key.get('split', 'texts')))}-t{full_key.get('max_tokens', 'na')}-{digest}"
    )
    folder = (
        root / "pairs" / slug(full_key["embedder"]) / slug(str(full_key.get("corpus", "texts")))
    )
    return folder / f"{stem}.safetensors"


def embed_texts_cached(
    texts: Sequence[str],
    embedder: Embedder,
    key: dict[str, Any],
    cache_root: str | Path | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Embeds ``texts`` with ``embedder``, reusing a cached result when the key matches.

    Args:
        texts: Non-empty strings.
        embedder: The embedder.
        key: JSON-serializable fields that identify the texts' origin (e.g. ``corpus``,
            ``split``, ``max_tokens``); the embedder and a hash of ``texts`` are added.
        cache_root: Cache folder; defaults to ``invert.env.cache_dir()``.
        batch_size: Texts per forward pass on a miss.

    Returns:
        Float32 tensor ``[len(texts), embedder.dim]``.
    """
    embeddings, _, _ = _load_or_embed(check_texts(texts), embedder, key, cache_root, batch_size)
    return embeddings


def embed_split(
    dataset_or_texts: Any,
    embedder: Embedder,
    corpus: str,
    split: str,
    max_tokens: int,
    cache_root: str | Path | None = None,
    batch_size: int = 64,
) -> EmbeddedSplit:
    """Embeds one split of a prepared corpus, through the disk cache.

    Args:
        dataset_or_texts: A ``datasets.Dataset`` with a ``text`` column, or a list of texts.
        embedder: The embedder.
        corpus: Corpus name (part of the cache key and path).
        split: Split name (part of the cache key and path).
        max_tokens: Token limit the texts were truncated to (part of the cache key and path).
        cache_root: Cache folder; defaults to ``invert.env.cache_dir()``.
        batch_size: Texts per forward pass on a miss.

    Returns:
        The texts with their embeddings; ``from_cache`` says whether the cache was hit.
    """
    if hasattr(dataset_or_texts, "column_names"):
        texts = list(dataset_or_texts["text"])
    else:
        texts = list(dataset_or_texts)
    key = {"corpus": corpus, "split": split, "max_tokens": int(max_tokens)}
    embeddings, hit, path = _load_or_embed(
        check_texts(texts), embedder, key, cache_root, batch_size
    )
    return EmbeddedSplit(texts=texts, embeddings=embeddings, from_cache=hit, path=path)


def _load_or_embed(
    texts: list[str],
    embedder: Embedder,
    key: dict[str, Any],
    cache_root: str | Path | None,
    batch_size: int,
) -> tuple[torch.Tensor, bool, Path]:
    full_key = {
        **key,
        "embedder": embedder.name,
        # Everything the vectors depend on: weights' hash, pooling, normalization, lengths.
        "embedder_identity": embedder.identity(),
        "dim": int(embedder.dim),
        "n": len(texts),
        "texts_sha256": texts_sha256(texts),
        "format": _FORMAT,
    }
    full_key = json.loads(
        json.dumps(full_key, sort_keys=True)
    )  # normalize, fail early if unserializable
    path = cache_path(full_key, cache_root)
    if path.exists():
        cached = _read(path, full_key)
        if cached is not None:
            logger.info("embedding cache hit: %s", path)
            return cached, True, path
    embeddings = embedder.encode(texts, batch_size=batch_size)
    expected = (len(texts), int(embedder.dim))
    if tuple(embeddings.shape) != expected:
        raise ValueError(
            f"embedder {embedder.name!r} returned shape {tuple(embeddings.shape)}, expected "
            f"{expected}; its encode() or dim is wrong"
        )
    _write(path, embeddings, full_key, texts)
    return embeddings, False, path


def _read(path: Path, full_key: dict[str, Any]) -> torch.Tensor | None:
    """The cached embeddings, or None (with a warning) when the file is corrupt or stale."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            stored_key = json.loads((fh.metadata() or {}).get("key", "null"))
            embeddings = fh.get_tensor("embeddings")
    except Exception as err:  # any unreadable file (truncated, garbage) is simply recomputed
        logger.warning("embedding cache file %s is unreadable (%s); recomputing", path, err)
        return None
    if stored_key != full_key or tuple(embeddings.shape) != (full_key["n"], full_key["dim"]):
        logger.warning("embedding cache file %s does not match its key; recomputing", path)
        return None
    if embeddings.dtype != torch.float32 or not torch.isfinite(embeddings).all():
        logger.warning("embedding cache file %s holds invalid values; recomputing", path)
        return None
    return embeddings


def _write(
    path: Path, embeddings: torch.Tensor, full_key: dict[str, Any], texts: list[str]
) -> None:
    """Writes the tensor and its json sidecar atomically (tmp file + ``os.replace``)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"embeddings": embeddings.detach().to("cpu", torch.float32).contiguous()}
    metadata = {"key": json.dumps(full_key, sort_keys=True)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    # Hashes only: the cache outlives the run folder, and a private corpus stays in the run.
    sidecar = json.dumps({"key": full_key}, ensure_ascii=False)
    atomic_write_text(path.with_suffix(".json"), sidecar)
