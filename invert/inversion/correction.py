"""Iterative correction with sequence-level beam search (vec2text, arXiv 2310.06816, §3).

Step 0 takes the inverter's hypotheses (plus optional extra candidates, e.g. nearest-neighbour
texts). Each later step the corrector proposes ``num_candidates`` texts for every beam, the
real embedder scores them all against the target in one batched call (each distinct text once,
and never a text it already scored), and each example keeps the ``sequence_beam_width`` texts
closest in cosine. An example stops once its best cosine passes ``early_stop_cosine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from invert.embedders.base import Embedder
from invert.errors import DimensionMismatchError, InvertError
from invert.inversion.search.scorer import CosineScorer
from invert.models.corrector import check_pair


@dataclass
class CorrectionResult:
    """What :func:`correct` found.

    Attributes:
        texts: Best text per example.
        cosines: Its cosine to the target, per example.
        best_cosine_by_step: ``[step][example]`` best cosine after step 0, 1, 2, ...
        mean_cosine_by_step: Their means, per step.
        texts_by_step: ``[step][example]`` best text after each step (a run of N steps holds
            the results of every shorter run too: stopping decisions only look back).
        corrector_inputs: Hypotheses fed to the corrector, in all (early stopping lowers it).
        embedded_texts: Texts embedded, in all (each distinct text at most once).
        embedder_calls: Calls to ``embedder.encode`` (at most one per step).
        steps_run: Steps after step 0 with at least one active example.
    """

    texts: list[str]
    cosines: list[float]
    best_cosine_by_step: list[list[float]] = field(default_factory=list)
    mean_cosine_by_step: list[float] = field(default_factory=list)
    texts_by_step: list[list[str]] = field(default_factory=list)
    corrector_inputs: int = 0
    embedded_texts: int = 0
    embedder_calls: int = 0
    steps_run: int = 0


def correct(
    embeddings: torch.Tensor,
    inverter: PreTrainedModel,
    corrector: PreTrainedModel,
    embedder: Embedder,
    num_steps: int = 1,
    sequence_beam_width: int = 1,
    num_candidates: int = 1,
    early_stop_cosine: float | None = 0.99,
    candidate_texts: Sequence[Sequence[str]] | None = None,
    keep_previous: bool = True,
    do_sample: bool = False,
    seed: int = 0,
    batch_size: int = 32,
    show_progress: bool = False,
) -> CorrectionResult:
    """Inverts embeddings with the inverter, then corrects them for ``num_steps`` steps.

    Args:
        embeddings: ``[n, dim]`` targets from ``embedder``.
        inverter: Trained inverter (its beam-search hypotheses start each beam).
        corrector: Trained :class:`~invert.models.corrector.Corrector`.
        embedder: The real embedder, re-run on every candidate.
        num_steps: Correction steps after the inverter's step 0.
        sequence_beam_width: B, texts kept per example between steps.
        num_candidates: Corrector proposals per beam per step (token beam search, or samples).
        early_stop_cosine: Stop correcting an example once its best cosine reaches this
            (None: never). Without sampling, an example whose beam a step left unchanged
            also stops: the corrector would propose the same texts again.
        candidate_texts: Extra step-0 candidates per example (e.g. nearest-neighbour texts).
        keep_previous: Keep the current beams as candidates (best cosine never decreases);
            False replaces them, as vec2text does (B = 1 is then plain greedy correction).
        do_sample: Sample the corrector's proposals instead of beam search.
        seed: Seeds sampling.
        batch_size: Rows per generate call.
        show_progress: Progress bar over steps.

    Raises:
        CorrectorMismatchError: The corrector was built for another embedder than the inverter.
        DimensionMismatchError: ``embedder`` does not produce the inverter's dimension.
    """
    check_pair(inverter, corrector)
    targets = inverter.check_embeddings(embeddings)
    if embedder.dim != targets.shape[1]:
        raise DimensionMismatchError(
            f"the embedder gives dim {embedder.dim} but the targets have {targets.shape[1]}; "
            f"pass the embedder the inverter was trained on ({inverter.config.embedder_name})"
        )
    if sequence_beam_width < 1 or num_candidates < 1 or num_steps < 0:
        raise InvertError("need sequence_beam_width >= 1, num_candidates >= 1 and num_steps >= 0")
    if candidate_texts is not None and len(candidate_texts) != len(targets):
        raise InvertError(
            f"candidate_texts has {len(candidate_texts)} rows for {len(targets)} embeddings"
        )
    torch.manual_seed(seed)
    n, width = len(targets), sequence_beam_width
    first = inverter.generate_texts(
        targets, num_beams=width, num_return_sequences=width, batch_size=batch_size
    )
    first = [[t] for t in first] if width == 1 else first
    pools = [
        list(dict.fromkeys(list(f) + list(candidate_texts[i] if candidate_texts else [])))
        for i, f in enumerate(first)
    ]
    scorer = CosineScorer(targets, embedder)
    result = CorrectionResult(texts=[], cosines=[])
    beams = _select(pools, scorer, width, result)
    stop = early_stop_cosine if early_stop_cosine is not None else float("inf")
    # A beam that a deterministic step left unchanged would get the same proposals again: it
    # has converged, and sending it to the corrector once more only costs time.
    settled = [False] * n
    for step in tqdm(range(1, num_steps + 1), desc="correcting", disable=not show_progress):
        active = [i for i in range(n) if scorer.cosine(i, beams[i][0]) < stop and not settled[i]]
        if not active:
            _record(beams, scorer, result)
            continue
        result.steps_run = step
        rows = [(i, text) for i in active for text in beams[i]]
        result.corrector_inputs += len(rows)
        proposals = corrector.generate_corrections(
            targets[[i for i, _ in rows]],
            torch.stack([scorer.vector(t) for _, t in rows]),
            [t for _, t in rows],
            num_beams=num_candidates,
            num_return_sequences=num_candidates,
            do_sample=do_sample,
            batch_size=batch_size,
        )
        new: dict[int, list[str]] = {i: list(beams[i]) if keep_previous else [] for i in active}
        for (i, _), cands in zip(rows, proposals, strict=True):
            new[i].extend(cands)
        pools = [list(dict.fromkeys(new[i])) if i in new else beams[i] for i in range(n)]
        previous, beams = beams, _select(pools, scorer, width, result)
        if not do_sample:
            for i in active:
                settled[i] = beams[i] == previous[i]
    result.texts = [b[0] for b in beams]
    result.cosines = [scorer.cosine(i, b[0]) for i, b in enumerate(beams)]
    result.embedder_calls = scorer.calls
    result.embedded_texts = len(scorer.vectors)
    return result


def _select(
    pools: list[list[str]], scorer: CosineScorer, width: int, result: CorrectionResult
) -> list[list[str]]:
    """Embeds the step's new texts in one call, keeps the ``width`` best per example."""
    scorer.embed_new({t for pool in pools for t in pool})
    beams = []
    for i, pool in enumerate(pools):
        # Stable sort: ties keep proposal order, so runs are deterministic.
        ranked = sorted(pool, key=lambda t: -scorer.cosine(i, t))
        beams.append(ranked[:width])
    _record(beams, scorer, result)
    return beams


def _record(beams: list[list[str]], scorer: CosineScorer, result: CorrectionResult) -> None:
    best = [scorer.cosine(i, b[0]) for i, b in enumerate(beams)]
    result.texts_by_step.append([b[0] for b in beams])
    result.best_cosine_by_step.append(best)
    result.mean_cosine_by_step.append(sum(best) / len(best))
