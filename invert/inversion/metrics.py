"""Reconstruction metrics for embedding inversion, per example and aggregated.

The metric set follows vec2text (Morris et al., "Text Embeddings Reveal (Almost) As Much As
Text", EMNLP 2023, arXiv:2310.06816): corpus BLEU, mean sentence BLEU, token F1, exact match
and the cosine between the target embedding and the embedding of the reconstruction. BLEU is
Papineni et al., "BLEU: a Method for Automatic Evaluation of Machine Translation", ACL 2002,
computed with sacrebleu (Post, WMT 2018) so scores are comparable across papers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sacrebleu
import torch

from invert.data.text import word_tokens
from invert.embedders.base import Embedder, check_embeddings
from invert.errors import EmptyInputError, InvalidEmbeddingError, InvertError

# vec2text scores each sentence with `evaluate`'s sacrebleu wrapper, i.e. corpus BLEU on one
# sentence with exp smoothing and no effective order. Reusing one BLEU object with the same
# settings reproduces its numbers without sentence_bleu's per-call effective-order warning.
_SENTENCE_BLEU = sacrebleu.BLEU(smooth_method="exp", effective_order=False)


class LengthMismatchError(InvertError, ValueError):
    """Predictions, references or embeddings differ in count."""


def _check_pair(predictions: Sequence[str], references: Sequence[str]) -> tuple[list, list]:
    """Returns both sequences as lists after checking they are non-empty and aligned."""
    if isinstance(predictions, str) or isinstance(references, str):
        raise TypeError("pass lists of strings, not a single string")
    predictions, references = list(predictions), list(references)
    if not predictions and not references:
        raise EmptyInputError("got no predictions and no references; pass at least one pair")
    if len(predictions) != len(references):
        raise LengthMismatchError(
            f"got {len(predictions)} predictions but {len(references)} references; "
            f"pass one prediction per reference"
        )
    return predictions, references


def _normalize(text: str) -> str:
    return " ".join(text.split())


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level BLEU (Papineni et al., 2002) via ``sacrebleu.corpus_bleu``.

    Args:
        predictions: Reconstructed texts.
        references: The original texts, one per prediction.

    Returns:
        BLEU on a 0–100 scale.

    Raises:
        EmptyInputError: Both lists are empty.
        LengthMismatchError: The lists differ in length.
    """
    predictions, references = _check_pair(predictions, references)
    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def sentence_bleus(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Sentence-level BLEU per pair, as averaged into vec2text's "bleu_score" (arXiv:2310.06816).

    Each pair is scored as a one-sentence corpus with exponential smoothing and without
    effective order, which is what vec2text's ``evaluate.load("sacrebleu")`` computes. One
    consequence: a prediction shorter than 4 words scores 0 even when it is exact.

    Args:
        predictions: Reconstructed texts.
        references: The original texts, one per prediction.

    Returns:
        One BLEU score (0–100) per pair.
    """
    predictions, references = _check_pair(predictions, references)
    return [
        float(_SENTENCE_BLEU.corpus_score([p], [[r]]).score)
        for p, r in zip(predictions, references, strict=True)
    ]


def token_f1(prediction: str, reference: str) -> float:
    """F1 between the multisets of lowercase ``\\w+`` tokens of two texts.

    vec2text (arXiv:2310.06816) reports a token F1 over the sets of NLTK word tokens; this
    variant counts repeated words (multiset overlap) and needs no tokenizer download.

    Args:
        prediction: Reconstructed text.
        reference: Original text.

    Returns:
        F1 in [0, 1]; 1.0 when both have no tokens, 0.0 when only one has none.
    """
    pred, ref = Counter(word_tokens(prediction)), Counter(word_tokens(reference))
    if not pred and not ref:
        return 1.0
    if not pred or not ref:
        return 0.0
    overlap = sum((pred & ref).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(pred.values())
    recall = overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> bool:
    """True when the texts are equal after stripping and collapsing whitespace (case kept)."""
    return _normalize(prediction) == _normalize(reference)


def cosine_similarity_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two ``[n, dim]`` (or ``[dim]``) tensors.

    Returns:
        Float32 tensor ``[n]``; a zero row gives 0 rather than NaN.

    Raises:
        LengthMismatchError: The shapes differ.
    """
    a = torch.as_tensor(a).detach().to("cpu", torch.float32)
    b = torch.as_tensor(b).detach().to("cpu", torch.float32)
    a = a.unsqueeze(0) if a.dim() == 1 else a
    b = b.unsqueeze(0) if b.dim() == 1 else b
    if a.shape != b.shape:
        raise LengthMismatchError(
            f"cannot compare embeddings of shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-8)


def _prediction_cosines(
    predictions: list[str],
    target_embeddings: torch.Tensor,
    embedder: Embedder | None,
    prediction_embeddings: torch.Tensor | None,
) -> list[float]:
    """Cosine(target, embed(prediction)) per row; empty predictions count as 0."""
    expected_dim = embedder.dim if embedder is not None else None
    source = f"the embedder {embedder.name!r}" if embedder is not None else "the targets"
    targets = check_embeddings(target_embeddings, expected_dim, source)
    if targets.shape[0] != len(predictions):
        raise LengthMismatchError(
            f"got {targets.shape[0]} target embeddings for {len(predictions)} predictions"
        )
    cosines = [0.0] * len(predictions)
    # Embedder.encode refuses blank strings, and an empty reconstruction recovers nothing.
    keep = [i for i, p in enumerate(predictions) if p.strip()]
    if not keep:
        return cosines
    if prediction_embeddings is not None:
        preds = check_embeddings(prediction_embeddings, targets.shape[1], "the target embeddings")
        if preds.shape[0] != len(predictions):
            raise LengthMismatchError(
                f"got {preds.shape[0]} prediction embeddings for {len(predictions)} predictions"
            )
        preds = preds[keep]
    elif embedder is not None:
        preds = embedder.encode([predictions[i] for i in keep])
    else:
        raise InvalidEmbeddingError(
            "target_embeddings were given but nothing to compare them with; pass embedder= "
            "(to re-embed the predictions) or prediction_embeddings="
        )
    sims = cosine_similarity_rows(targets[keep], preds)
    for i, sim in zip(keep, sims.tolist(), strict=True):
        cosines[i] = float(sim)
    return cosines


def reconstruction_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    target_embeddings: torch.Tensor | None = None,
    embedder: Embedder | None = None,
    prediction_embeddings: torch.Tensor | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Scores reconstructions against the original texts, as in vec2text (arXiv:2310.06816).

    Args:
        predictions: Reconstructed texts.
        references: The original texts, one per prediction.
        target_embeddings: ``[n, dim]`` embeddings that were inverted. With them the cosine
            between each target and the embedding of its reconstruction is reported.
        embedder: Re-embeds the predictions for the cosine (unless ``prediction_embeddings``).
        prediction_embeddings: Precomputed ``[n, dim]`` embeddings of the predictions.

    Returns:
        ``(aggregate, rows)``. ``aggregate`` holds ``bleu`` (corpus BLEU, Papineni et al. 2002),
        ``sentence_bleu`` (mean), ``token_f1`` (mean), ``exact`` (fraction 0–1), ``cosine``
        (mean; only when ``target_embeddings`` is given), ``pred_len`` and ``ref_len`` (mean
        whitespace words) and ``n``. ``rows`` holds one dict per pair with ``target``,
        ``prediction``, ``bleu``, ``token_f1``, ``exact`` and ``cosine`` (None without
        embeddings). Empty predictions get cosine 0 and are never sent to the embedder.

    Raises:
        EmptyInputError: No pairs.
        LengthMismatchError: Counts of predictions, references or embeddings differ.
        InvalidEmbeddingError: Embeddings are malformed, or targets come without a way to embed
            the predictions.
        DimensionMismatchError: Embedding dimensions disagree.
    """
    predictions, references = _check_pair(predictions, references)
    n = len(predictions)
    bleus = sentence_bleus(predictions, references)
    f1s = [token_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    exacts = [exact_match(p, r) for p, r in zip(predictions, references, strict=True)]
    cosines: list[float] | None = None
    if target_embeddings is not None:
        cosines = _prediction_cosines(
            predictions, target_embeddings, embedder, prediction_embeddings
        )

    aggregate: dict[str, float] = {
        "bleu": corpus_bleu(predictions, references),
        "sentence_bleu": sum(bleus) / n,
        "token_f1": sum(f1s) / n,
        "exact": sum(exacts) / n,
    }
    if cosines is not None:
        aggregate["cosine"] = sum(cosines) / n
    aggregate["pred_len"] = sum(len(p.split()) for p in predictions) / n
    aggregate["ref_len"] = sum(len(r.split()) for r in references) / n
    aggregate["n"] = n

    rows = [
        {
            "target": references[i],
            "prediction": predictions[i],
            "bleu": bleus[i],
            "token_f1": f1s[i],
            "exact": exacts[i],
            "cosine": cosines[i] if cosines is not None else None,
        }
        for i in range(n)
    ]
    return aggregate, rows
