"""Training data for the corrector (vec2text, arXiv 2310.06816): (target, hypothesis) pairs.

Hypotheses are what the trained inverter generates for the training texts, generated once and
cached on disk (a json keyed by the inverter's fingerprint, the generation settings and a hash
of the texts), then embedded through :func:`invert.data.pairs.embed_texts_cached`. A second
round adds the corrector's own outputs as hypotheses, so it also learns to fix its own errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from invert.data.atomic import atomic_write_text
from invert.data.pairs import embed_texts_cached, slug, texts_sha256
from invert.embedders.base import Embedder
from invert.env import cache_dir
from invert.models.base import tokenize_targets
from invert.models.corrector import inverter_fingerprint, tokenize_hypotheses

logger = logging.getLogger(__name__)


@dataclass
class CorrectionExamples:
    """Row ``i``: target text and embedding, one hypothesis text and its embedding."""

    texts: list[str]
    embeddings: torch.Tensor
    hypotheses: list[str]
    hypothesis_embeddings: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def __add__(self, other: CorrectionExamples) -> CorrectionExamples:
        return CorrectionExamples(
            self.texts + other.texts,
            torch.cat([self.embeddings, other.embeddings]),
            self.hypotheses + other.hypotheses,
            torch.cat([self.hypothesis_embeddings, other.hypothesis_embeddings]),
        )


def embed_or_zero(
    texts: Sequence[str],
    embedder: Embedder,
    key: dict[str, Any] | None = None,
    cache_root: str | Path | None = None,
) -> torch.Tensor:
    """Embeds texts; blank ones (which embedders refuse) get a zero vector.

    With ``key`` the non-blank texts go through the on-disk embedding cache.
    """
    out = torch.zeros(len(texts), embedder.dim)
    rows = [i for i, t in enumerate(texts) if t.strip()]
    if rows:
        kept = [texts[i] for i in rows]
        vectors = (
            embed_texts_cached(kept, embedder, key, cache_root)
            if key is not None
            else embedder.encode(kept)
        )
        out[rows] = vectors
    return out


def inverter_hypotheses(
    inverter: PreTrainedModel,
    embedder: Embedder,
    texts: Sequence[str],
    embeddings: torch.Tensor,
    num_beams: int = 1,
    batch_size: int = 32,
    cache_root: str | Path | None = None,
    show_progress: bool = False,
) -> CorrectionExamples:
    """The inverter's hypotheses for ``texts`` with their embeddings, cached on disk.

    Args:
        inverter: The trained inverter.
        embedder: The embedder the inverter inverts.
        texts: Training texts.
        embeddings: Their embeddings ``[n, dim]``.
        num_beams: Beam width used to generate hypotheses.
        batch_size: Embeddings per generate call.
        cache_root: Cache folder; defaults to ``invert.env.cache_dir()``.
        show_progress: Progress bar while generating.
    """
    texts = list(texts)
    key = {
        "inverter": inverter_fingerprint(inverter),
        "weights": _weights_digest(inverter),
        "num_beams": num_beams,
        "texts_sha256": texts_sha256(texts),
    }
    root = Path(cache_root) if cache_root is not None else cache_dir()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = root / "hypotheses" / slug(inverter.config.embedder_name) / f"{digest}.json"
    hypotheses = _read_hypotheses(path, key, len(texts))
    if hypotheses is None:
        hypotheses = inverter.generate_texts(
            embeddings, num_beams=num_beams, batch_size=batch_size, show_progress=show_progress
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"key": key, "hypotheses": hypotheses}, ensure_ascii=False)
        atomic_write_text(path, blob)
    hyp_emb = embed_or_zero(
        hypotheses, embedder, {"corpus": "hypotheses", "split": digest}, cache_root
    )
    return CorrectionExamples(texts, embeddings.float(), list(hypotheses), hyp_emb)


def corrector_round(
    examples: CorrectionExamples,
    corrector: PreTrainedModel,
    embedder: Embedder,
    batch_size: int = 32,
) -> CorrectionExamples:
    """One greedy correction of every hypothesis: new (target, hypothesis) rows to add.

    Train on ``examples + corrector_round(examples, corrector, embedder)`` for a second round.
    """
    proposals = corrector.generate_corrections(
        examples.embeddings,
        examples.hypothesis_embeddings,
        examples.hypotheses,
        batch_size=batch_size,
    )
    hypotheses = [p[0] for p in proposals]
    return CorrectionExamples(
        list(examples.texts), examples.embeddings, hypotheses, embed_or_zero(hypotheses, embedder)
    )


class CorrectionDataset(Dataset):
    """Index ``i`` → ``(text, embedding, hypothesis, hypothesis_embedding)``."""

    def __init__(self, examples: CorrectionExamples) -> None:
        n = len(examples)
        if not (
            len(examples.embeddings)
            == len(examples.hypotheses)
            == len(examples.hypothesis_embeddings)
            == n
        ):
            raise ValueError("texts, embeddings, hypotheses and their embeddings differ in count")
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor, str, torch.Tensor]:
        ex = self.examples
        return ex.texts[i], ex.embeddings[i], ex.hypotheses[i], ex.hypothesis_embeddings[i]


def correction_collator(
    tokenizer: PreTrainedTokenizerBase, max_text_tokens: int
) -> Callable[[list[tuple[str, torch.Tensor, str, torch.Tensor]]], dict[str, torch.Tensor]]:
    """Batches rows into the keyword arguments of ``Corrector.forward``."""

    def collate(
        items: list[tuple[str, torch.Tensor, str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        batch = tokenize_targets(tokenizer, [it[0] for it in items], max_text_tokens)
        ids, mask = tokenize_hypotheses(tokenizer, [it[2] for it in items], max_text_tokens)
        batch["hypothesis_ids"], batch["hypothesis_mask"] = ids, mask
        batch["target_embeddings"] = torch.stack([it[1] for it in items]).float()
        batch["hypothesis_embeddings"] = torch.stack([it[3] for it in items]).float()
        return batch

    return collate


def _weights_digest(model: torch.nn.Module) -> str:
    """A cheap fingerprint of the weights (sums of a few tensors): retraining changes it."""
    h = hashlib.sha256()
    for i, (name, p) in enumerate(model.state_dict().items()):
        if i % 7 == 0:
            h.update(f"{name}:{float(p.float().sum()):.6e}".encode())
    return h.hexdigest()[:16]


def _read_hypotheses(path: Path, key: dict[str, Any], n: int) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        logger.warning("hypothesis cache %s unreadable (%s); regenerating", path, err)
        return None
    hyps = data.get("hypotheses")
    if data.get("key") != key or not isinstance(hyps, list) or len(hyps) != n:
        logger.warning("hypothesis cache %s does not match its key; regenerating", path)
        return None
    logger.info("hypothesis cache hit: %s", path)
    return [str(h) for h in hyps]
