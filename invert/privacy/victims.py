"""Which stored rows an audit attacks: a seeded sample, with invalid vectors left out."""

from __future__ import annotations

import numpy as np

from invert.configs import PrivacyAuditConfig
from invert.errors import InvalidEmbeddingError
from invert.stores import StoreBatch, VectorStore


def draw_victims(store: VectorStore, audit: PrivacyAuditConfig, seed: int) -> tuple[StoreBatch, StoreBatch | None]:
    """Disjoint victim rows and leaked rows (for ALGEN) from one seeded sample of the store."""
    n = audit.sample_size
    wants_leak = "orthogonal" in audit.defenses and audit.alignment_k
    extra = max(audit.alignment_k) if wants_leak else 0
    rows = store.sample(n + extra, seed=seed, batch_size=audit.batch_size)
    order = np.random.default_rng(seed + 1).permutation(len(rows))

    def take(idx: np.ndarray) -> StoreBatch:
        docs = [rows.documents[i] for i in idx] if rows.documents is not None else None
        return StoreBatch([rows.ids[i] for i in idx], rows.vectors[idx], docs)

    victims = take(order[:n])
    leak = take(order[n:]) if len(order) > n else None
    return victims, leak


def drop_invalid_rows(batch: StoreBatch, notes: list[str]) -> StoreBatch:
    """Leaves out stored vectors with NaN or inf, and says which (by store id) in ``notes``.

    One bad row must not stop an audit of thousands; the report names what it skipped.

    Raises:
        InvalidEmbeddingError: Every row is invalid.
    """
    finite = np.isfinite(batch.vectors).all(axis=1)
    if finite.all():
        return batch
    skipped = [batch.ids[i] for i in np.flatnonzero(~finite)]
    if not finite.any():
        raise InvalidEmbeddingError(f"every sampled vector holds NaN or inf (ids {skipped[:10]})")
    notes.append(f"skipped {len(skipped)} stored vector(s) holding NaN or inf: ids {skipped[:20]}")
    keep = np.flatnonzero(finite)
    docs = [batch.documents[i] for i in keep] if batch.documents is not None else None
    return StoreBatch([batch.ids[i] for i in keep], batch.vectors[keep], docs)
