"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019, arXiv:1802.08232).

A canary ``s[r]`` holds a secret ``r`` drawn uniformly from a space ``R``. Its rank is its place
among all ``s[r']``, ``r' in R``, ordered by log-perplexity (bits, lowest first), and

    exposure = log2 |R| - log2 rank.

Small spaces are enumerated exactly. For large ones the paper fits a skew-normal distribution
to the log-perplexities of sampled candidates and reads exposure off its CDF:
``exposure ≈ -log2 F(Px(s[r]))``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from invert.errors import EmptyInputError, InvertError, unknown_name
from invert.memorization.private_corpus import (
    Canary,
    DigitSpace,
    IdentitySpace,
    pad_batch,
    tokenize,
)
from invert.memorization.token_scoring import sequence_nll_bits

METHODS = ("auto", "exact", "skewnorm")


def exposure_from_rank(rank: int, space_size: int) -> float:
    """``log2 |R| - log2 rank``; rank 1 (most likely of all) gives the maximum, log2 |R|."""
    if not 1 <= rank <= space_size:
        raise InvertError(f"rank must lie in [1, {space_size}], got {rank}")
    return math.log2(space_size) - math.log2(rank)


def canary_rank(canary_bits: float, other_bits: np.ndarray) -> int:
    """1 + the number of other candidates with strictly lower log-perplexity.

    Ties count in the canary's favour, as in the paper's "rank" of a strictly ordered list.
    """
    return 1 + int(np.sum(np.asarray(other_bits) < canary_bits))


def exact_exposure(canary_bits: float, other_bits: np.ndarray) -> float:
    """Exposure by enumeration: ``other_bits`` holds every other secret of R (|R| - 1 values)."""
    other_bits = np.asarray(other_bits, dtype=np.float64)
    return exposure_from_rank(canary_rank(canary_bits, other_bits), len(other_bits) + 1)


def skewnorm_exposure(canary_bits: float, sample_bits: np.ndarray) -> float:
    """Exposure extrapolated from a skew-normal fit to sampled candidates' log-perplexities.

    ``-log2 F(x)`` with ``F`` the fitted CDF, computed from ``logcdf`` so that canaries far in
    the lower tail (very high exposure) do not underflow to infinity.

    Args:
        canary_bits: The canary's log-perplexity in bits.
        sample_bits: Log-perplexities of candidates drawn uniformly from R (>= 20).
    """
    sample_bits = np.asarray(sample_bits, dtype=np.float64)
    if sample_bits.size < 20 or not np.all(np.isfinite(sample_bits)):
        raise InvertError(
            f"a skew-normal fit needs >= 20 finite candidate scores, got {sample_bits.size}; "
            f"raise exposure.n_samples"
        )
    a, loc, scale = stats.skewnorm.fit(sample_bits)
    log_cdf = float(stats.skewnorm.logcdf(canary_bits, a, loc=loc, scale=scale))
    return max(0.0, -log_cdf / math.log(2.0))


def sequence_bits(
    model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Log-perplexity (total NLL in bits) of each text, BOS prepended so every token counts."""
    if not texts:
        raise EmptyInputError("no texts to score")
    rows = tokenize(tokenizer, texts)
    # Sort by length so a batch pads little; scores go back to the input order.
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, mask = pad_batch([rows[i] for i in chunk])
        out[chunk] = sequence_nll_bits(model, ids, mask, batch_size=batch_size).numpy()
    return out


def measure_exposure(
    model: torch.nn.Module,
    tokenizer: Any,
    canaries: Sequence[Canary],
    space: DigitSpace | IdentitySpace,
    method: str = "auto",
    n_samples: int = 1000,
    max_enumerate: int = 20_000,
    batch_size: int = 64,
    seed: int = 0,
    keep_scores: bool = False,
) -> list[dict[str, Any]]:
    """Exposure of each canary under ``model``.

    Args:
        model: Causal LM (any transformers or peft model, or a tiny GPT).
        tokenizer: Its tokenizer (``tokenize`` handles HF tokenizers and ``CharTokenizer``).
        canaries: The inserted canaries.
        space: Their secret space R.
        method: ``exact`` (enumerate R), ``skewnorm`` (fit to ``n_samples`` uniform draws) or
            ``auto`` (exact when |R| <= ``max_enumerate``).
        n_samples: Candidates per canary for the skew-normal fit.
        max_enumerate: Largest |R| that ``auto`` enumerates.
        batch_size: Sequences per forward pass.
        seed: Seeds the sampled candidates (different per canary).
        keep_scores: Also return every candidate's bits (``candidate_bits``), e.g. to plot
            the distribution or to refit it.

    Returns:
        One dict per canary: ``repetitions``, ``exposure``, ``method``, ``canary_bits``,
        ``rank`` (exact only), ``max_exposure`` (log2 |R| when known). No secret text.
    """
    if method not in METHODS:
        raise unknown_name("exposure method", method, METHODS)
    if method == "auto":
        small = space.size is not None and space.size <= max_enumerate
        method = "exact" if small else "skewnorm"
    if method == "exact" and space.size is None:
        raise InvertError("this secret space cannot be enumerated; use method='skewnorm'")
    all_secrets = space.enumerate() if method == "exact" else None
    results = []
    for i, canary in enumerate(canaries):
        if all_secrets is not None:
            others = [s for s in all_secrets if s != canary.secret]
        else:
            others = space.sample(n_samples, seed=seed * 7919 + i)
        texts = [canary.text] + [canary.with_secret(s) for s in others]
        bits = sequence_bits(model, tokenizer, texts, batch_size)
        row: dict[str, Any] = {
            "canary": i,
            "repetitions": canary.repetitions,
            "method": method,
            "canary_bits": float(bits[0]),
            "candidate_bits_median": float(np.median(bits[1:])),
            "max_exposure": math.log2(space.size) if space.size else None,
        }
        if method == "exact":
            row["rank"] = canary_rank(bits[0], bits[1:])
            row["exposure"] = exact_exposure(bits[0], bits[1:])
        else:
            row["exposure"] = skewnorm_exposure(bits[0], bits[1:])
        if keep_scores:
            row["candidate_bits"] = bits[1:]
        results.append(row)
    return results


def exposure_by_repetition(results: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Mean exposure per repetition count, ascending."""
    groups: dict[int, list[float]] = defaultdict(list)
    for row in results:
        groups[int(row["repetitions"])].append(float(row["exposure"]))
    return {r: float(np.mean(v)) for r, v in sorted(groups.items())}


def plot_exposure_vs_repetitions(
    curves: dict[str, dict[int, float]], path: str | Path, max_exposure: float | None = None
) -> Path:
    """Exposure against repetition count (log2 x axis), one line per model or regime."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise EmptyInputError("no exposure curves to plot")
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for name, curve in curves.items():
        reps = sorted(curve)
        ax.plot(reps, [curve[r] for r in reps], marker="o", label=name)
    if max_exposure is not None:
        ax.axhline(max_exposure, color="grey", ls="--", lw=1, label="log2 |R|")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("canary repetitions")
    ax.set_ylabel("exposure (bits)")
    ax.set_title("Canary exposure (Carlini et al. 2019)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120)
    return path
