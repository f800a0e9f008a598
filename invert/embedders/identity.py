"""What determines an embedder's vectors, as a JSON-able key (the embedding cache keys on it).

A name alone is not enough: two folders called ``model`` hold different weights, and one
model gives other vectors under another pooling, normalization or input length.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

# Files that hold weights or change how a folder embeds (pooling, normalization, tokenizer).
_CONTENT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".txt", ".model", ".onnx")


def folder_fingerprint(folder: str | Path) -> str:
    """SHA-256 over the relative names and contents of a model folder's files.

    Hashes the files that determine the vectors (weights, configs, pooling, tokenizer); each
    file's digest is cached per (path, size, mtime), so a second embedder of the same folder in
    one process costs nothing.
    """
    folder = Path(folder).expanduser().resolve()
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _CONTENT_SUFFIXES):
        stat = path.stat()
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(_file_sha256(str(path), stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of one file's contents (cached per path, size and mtime)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def source_identity(model: str | Path, revision: str | None = None) -> dict[str, Any]:
    """A local folder by content hash, a hub id by id and revision."""
    local = Path(model).expanduser()
    if local.is_dir():
        return {"sha256": folder_fingerprint(local)}
    if local.is_file():
        return {"sha256": file_fingerprint(local)}
    return {"hub_id": str(model), "revision": revision or "main"}


@lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
