"""Build an embedder from a name or a config dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from invert.embedders.base import Embedder
from invert.embedders.hf_pooling import HFPoolingEmbedder
from invert.embedders.precomputed import PrecomputedEmbedder
from invert.embedders.sentence_transformer import SentenceTransformerEmbedder
from invert.errors import InvertError, unknown_name

EMBEDDER_TYPES: dict[str, Callable[..., Embedder]] = {
    "sentence_transformer": SentenceTransformerEmbedder,
    "hf_pooling": HFPoolingEmbedder,
    "precomputed": PrecomputedEmbedder,
}


def build_embedder(spec: str | dict[str, Any] | Embedder = "minilm") -> Embedder:
    """Builds an embedder.

    Args:
        spec: An :class:`Embedder` (returned as is); a Hydra ``conf/embedder/`` block (with
            ``_target_``); a dict with ``type`` (one of ``EMBEDDER_TYPES``) and that class's
            arguments; or a string — ``minilm``, a local folder or a hub id — read as a
            sentence-transformers model.

    Raises:
        UnknownNameError: ``type`` is not known (the message lists the known ones).
    """
    if isinstance(spec, Embedder):
        return spec
    if isinstance(spec, str):
        return SentenceTransformerEmbedder(spec)
    if "_target_" in spec:
        from hydra.utils import instantiate

        # A resolved config leaves a required key unset as "???" (e.g. embedder=hf_pooling
        # without embedder.model): name the key instead of failing inside Hydra.
        if missing := sorted(k for k, v in spec.items() if v == "???"):
            raise InvertError(f"set {', '.join(f'embedder.{k}=...' for k in missing)} "
                              f"({spec['_target_'].rsplit('.', 1)[-1]} needs it)")  # fmt: skip
        return instantiate(spec, _convert_="all")
    kwargs = dict(spec)
    kind = kwargs.pop("type", "sentence_transformer")
    if kind not in EMBEDDER_TYPES:
        raise unknown_name("embedder type", kind, list(EMBEDDER_TYPES))
    return EMBEDDER_TYPES[kind](**kwargs)
