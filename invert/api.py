"""The public inversion API: embeddings (or strings) in, reconstructed text out."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from invert.embedders.base import Embedder, check_texts
from invert.errors import InvertError, check_counts
from invert.inversion.metrics import cosine_similarity_rows


def invert_embeddings(
    embeddings: torch.Tensor,
    inverter: PreTrainedModel,
    embedder: Embedder | None = None,
    num_beams: int = 1,
    num_candidates: int = 1,
    max_new_tokens: int | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
    *,
    corrector: PreTrainedModel | None = None,
    num_steps: int = 0,
    sequence_beam_width: int = 1,
) -> list[str]:
    """Reconstructs text from embeddings.

    With ``num_candidates > 1`` the inverter proposes that many beam-search candidates per
    embedding and the ``embedder`` re-embeds them all (one batched call) to keep the one
    closest in cosine to the target — the test-time use of the embedder that vec2text
    (arXiv 2310.06816) showed matters most.

    Args:
        embeddings: ``[n, dim]`` vectors from the embedder the inverter was trained on.
        inverter: A trained inverter (see :func:`invert.load_inverter`).
        embedder: Needed when ``num_candidates > 1``.
        num_beams: Beam width (raised to ``num_candidates`` if smaller).
        num_candidates: Candidates scored by the embedder per embedding.
        max_new_tokens: Generation limit (default: the training length + 1).
        batch_size: Embeddings per generate call.
        show_progress: Progress bar over batches (over correction steps with a corrector).
        corrector: A trained corrector (:func:`invert.models.loading.load_corrector`): the
            inverter's hypotheses are then corrected for ``num_steps`` steps, re-embedding
            every candidate (see :func:`invert.inversion.correction.correct`); needs ``embedder``.
        num_steps: Correction steps (with ``corrector``).
        sequence_beam_width: Texts kept per example between correction steps.

    Returns:
        One reconstruction per embedding.

    Raises:
        InvertError: ``inverter`` is not a loaded inverter (a path, an embedder), or a count
            argument is below 1.
        InvalidEmbeddingError: No embeddings, NaN/inf, or the wrong shape.
        DimensionMismatchError: The embeddings come from another embedder.
    """
    check_inverter(inverter)
    check_counts(num_beams=num_beams, num_candidates=num_candidates, batch_size=batch_size,
                 max_new_tokens=max_new_tokens)  # fmt: skip
    embeddings = inverter.check_embeddings(embeddings)
    if corrector is not None:
        if embedder is None:
            raise InvertError("correction re-embeds every candidate: pass embedder=...")
        from invert.inversion.correction import correct

        return correct(
            embeddings, inverter, corrector, embedder, num_steps=num_steps,
            sequence_beam_width=sequence_beam_width, num_candidates=num_candidates,
            batch_size=batch_size, show_progress=show_progress,
        ).texts
    if num_candidates <= 1:
        return inverter.generate_texts(
            embeddings, num_beams=num_beams, max_new_tokens=max_new_tokens,
            batch_size=batch_size, show_progress=show_progress,
        )
    if embedder is None:
        raise InvertError("num_candidates > 1 re-ranks with the embedder: pass embedder=...")
    candidates = inverter.generate_texts(
        embeddings,
        num_beams=max(num_beams, num_candidates),
        num_return_sequences=num_candidates,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    return rerank_by_cosine(embeddings, candidates, embedder)


def check_inverter(inverter: object) -> None:
    """Refuses what is not a loaded inverter, saying what to pass instead.

    Raises:
        InvertError: A folder path (load it first), an embedder (arguments swapped), or any
            other object without an inverter's interface.
    """
    from pathlib import Path

    if isinstance(inverter, str | Path):
        raise InvertError(f"inverter is a path ({str(inverter)!r}); load it first: "
                          "inverter = invert.load_inverter(path)")  # fmt: skip
    if isinstance(inverter, Embedder):
        raise InvertError(f"inverter is an embedder ({inverter.name}); the order is "
                          "invert_embeddings(embeddings, inverter, embedder)")  # fmt: skip
    if not (hasattr(inverter, "check_embeddings") and hasattr(inverter, "generate_texts")):
        raise InvertError(f"inverter must be a trained inverter (invert.load_inverter), got "
                          f"{type(inverter).__name__}")  # fmt: skip


def rerank_by_cosine(
    targets: torch.Tensor, candidates: Sequence[Sequence[str]], embedder: Embedder
) -> list[str]:
    """Picks, per target, the candidate whose embedding is closest in cosine.

    Every distinct non-empty candidate is embedded exactly once, in one batched call.
    """
    unique = sorted({c for cands in candidates for c in cands if c.strip()})
    if not unique:
        return ["" for _ in candidates]
    vectors = embedder.encode(unique)
    row = {text: i for i, text in enumerate(unique)}
    best = []
    for target, cands in zip(targets, candidates, strict=True):
        kept = [c for c in cands if c in row]
        if not kept:
            best.append("")
            continue
        sims = cosine_similarity_rows(vectors[[row[c] for c in kept]], target.expand(len(kept), -1))
        best.append(kept[int(sims.argmax())])
    return best


def invert_strings(
    texts: Sequence[str],
    inverter: PreTrainedModel,
    embedder: Embedder,
    **kwargs,
) -> list[str]:
    """Embeds ``texts`` with ``embedder`` and inverts the embeddings (a round-trip attack demo).

    Raises:
        DimensionMismatchError: The embedder is not the one the inverter was trained on.
    """
    texts = check_texts(texts)
    check_inverter(inverter)
    if not isinstance(embedder, Embedder):
        raise InvertError(f"embedder must be an invert Embedder (invert.build_embedder), got "
                          f"{type(embedder).__name__}")  # fmt: skip
    if embedder.dim != inverter.config.embedder_dim:
        inverter.check_embeddings(torch.zeros(1, embedder.dim))
    return invert_embeddings(embedder.encode(texts), inverter, embedder=embedder, **kwargs)
