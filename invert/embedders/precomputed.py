"""Precomputed vectors (``.npy`` or ``.parquet``) as an :class:`Embedder`.

A user who only has stored vectors (a vector store export, an API's output) inverts them
through this class: ``encode`` looks texts up, and ``vectors`` / ``texts`` give the raw data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.embedders.base import Embedder, check_embeddings
from invert.embedders.identity import file_fingerprint
from invert.errors import EmptyInputError, InvalidEmbeddingError, InvertError


class PrecomputedEmbedder(Embedder):
    """Vectors read from disk.

    It can return only the vectors it holds (``embeds_new_text`` is False): an inverter trains
    on them, while cosines of reconstructions and embedder-in-the-loop searches need the
    model that made them, and are reported as unavailable.

    Args:
        path: ``.npy`` (``[n, dim]``, never pickled) or ``.parquet`` (a text column and a
            list-valued vector column).
        name: Name of the embedder that produced the vectors (recorded in checkpoints).
        text_column: Parquet column with the texts.
        vector_column: Parquet column with the vectors.
        texts_path: For ``.npy``: optional ``.txt`` (one text a line) or ``.json`` list.
    """

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        text_column: str = "text",
        vector_column: str = "embedding",
        texts_path: str | Path | None = None,
    ) -> None:
        path = Path(path).expanduser()
        if not path.exists():
            raise InvertError(f"no precomputed vectors at {path}")
        self.texts: list[str] | None = None
        if path.suffix == ".npy":
            # allow_pickle=False: an .npy file from elsewhere must never run code on load.
            try:
                vectors = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise InvalidEmbeddingError(
                    f"{path} holds pickled objects, which invert never loads (they can run "
                    f"code); save plain float arrays with np.save(..., allow_pickle=False)"
                ) from err
            if texts_path is not None:
                self.texts = _read_texts(Path(texts_path))
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            missing = {text_column, vector_column} - set(table.column_names)
            if vector_column in missing:
                raise InvertError(
                    f"{path} has no column {vector_column!r}; its columns are "
                    f"{table.column_names} (set vector_column=...)"
                )
            vectors = np.asarray(table.column(vector_column).to_pylist(), dtype=np.float32)
            if text_column in table.column_names:
                self.texts = [str(t) for t in table.column(text_column).to_pylist()]
        else:
            raise InvertError(f"precomputed vectors must be .npy or .parquet, got {path.name}")
        if vectors.size == 0:
            raise EmptyInputError(f"{path} holds no vectors")
        self.vectors = check_embeddings(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))
        if self.texts is not None and len(self.texts) != len(self.vectors):
            raise InvertError(
                f"{path}: {len(self.texts)} texts but {len(self.vectors)} vectors; they must pair up"
            )
        self.dim = int(self.vectors.shape[1])
        self.embeds_new_text = False
        self.name = name or path.stem
        self._sha256 = file_fingerprint(path)
        # Which vectors and texts of the file are used changes the pairs as much as the file.
        self._columns = {"text_column": text_column, "vector_column": vector_column,
                         "texts_sha256": file_fingerprint(texts_path) if texts_path else None}  # fmt: skip
        self._index = {t: i for i, t in enumerate(self.texts or [])}

    def identity(self) -> dict[str, Any]:
        """The vectors file by content hash (its name says which model made them)."""
        return super().identity() | {"sha256": self._sha256} | self._columns

    def _encode(self, texts: list[str], batch_size: int, show_progress: bool) -> torch.Tensor:
        if not self._index:
            raise InvertError(
                f"{self.name}: these precomputed vectors came without texts, so they can't be "
                "looked up by text; use .vectors directly"
            )
        missing = [t for t in texts if t not in self._index]
        if missing:
            raise InvertError(
                f"{len(missing)} text(s) have no precomputed vector in {self.name} (first: "
                f"{missing[0][:60]!r}); a precomputed embedder returns only the vectors it was "
                "given: train on its own texts (data=file data.path=<the same .parquet>) with "
                "data.max_tokens long enough that no text is cut"
            )
        return self.vectors[[self._index[t] for t in texts]]


def _read_texts(path: Path) -> list[str]:
    if path.suffix == ".json":
        return [str(t) for t in json.loads(path.read_text())]
    return path.read_text().splitlines()
