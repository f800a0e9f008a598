"""Unintended memorization of text, in bits, against a reference model.

Morris et al., "How much do language models memorize?" (arXiv:2505.24832): with a reference
model standing in for the data distribution (what can be known about a sample without having
trained on it), the bits a target model memorized about sample ``x`` are approximated by

    mem(x) = max(0, NLL_ref(x) - NLL_target(x))      (NLLs in bits, summed over the sample)

Summed over the training set this estimates the memorized information. A reference that does
not know the corpus's format also credits the target for learning the format; the same
quantity on held-out samples of the distribution measures that part, so
``members - n_members * mean(non-members)`` is reported as the generalisation-corrected total.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.errors import EmptyInputError, InvertError
from invert.memorization.exposure import sequence_bits
from invert.reporting.plots import save_figure


def unintended_bits(target_bits: np.ndarray, reference_bits: np.ndarray) -> np.ndarray:
    """Per-sample ``max(0, reference - target)`` bits."""
    target_bits = np.asarray(target_bits, dtype=np.float64)
    reference_bits = np.asarray(reference_bits, dtype=np.float64)
    if target_bits.shape != reference_bits.shape:
        raise InvertError(
            f"{target_bits.shape[0]} target scores vs {reference_bits.shape[0]} reference scores; "
            f"score the same texts with both models"
        )
    return np.maximum(0.0, reference_bits - target_bits)


def describe_bits(bits: np.ndarray) -> dict[str, float]:
    """Total, mean, quantiles and the share of samples with any memorized bits."""
    bits = np.asarray(bits, dtype=np.float64)
    if bits.size == 0:
        raise EmptyInputError("no per-sample bits to summarise")
    return {
        "total": float(bits.sum()),
        "mean": float(bits.mean()),
        "median": float(np.median(bits)),
        "p90": float(np.percentile(bits, 90)),
        "max": float(bits.max()),
        "frac_positive": float((bits > 0).mean()),
        "n": int(bits.size),
    }


def summarize_unintended(
    member_bits: np.ndarray,
    non_member_bits: np.ndarray,
    trainable_parameters: int | None = None,
) -> dict[str, Any]:
    """Totals and distributions on members and non-members, and bits per trainable parameter.

    Args:
        member_bits: ``unintended_bits`` of training samples.
        non_member_bits: The same for held-out samples of the same distribution.
        trainable_parameters: Divides the corrected total into bits per parameter.
    """
    members, non_members = describe_bits(member_bits), describe_bits(non_member_bits)
    corrected = members["total"] - members["n"] * non_members["mean"]
    out: dict[str, Any] = {
        "members": members,
        "non_members": non_members,
        "total_bits": members["total"],
        "corrected_total_bits": corrected,
    }
    if trainable_parameters:
        out["bits_per_parameter"] = corrected / trainable_parameters
        out["raw_bits_per_parameter"] = members["total"] / trainable_parameters
    return out


def unintended_memorization(
    model: torch.nn.Module,
    reference: torch.nn.Module,
    tokenizer: Any,
    members: Sequence[str],
    non_members: Sequence[str],
    trainable_parameters: int | None = None,
    batch_size: int = 32,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Scores both models on both splits and summarises (see :func:`summarize_unintended`).

    Both models must share ``tokenizer``: per-sample bits are compared token sequence for
    token sequence.

    Returns:
        ``(summary, member_bits, non_member_bits)``.
    """
    texts = list(members) + list(non_members)
    target = sequence_bits(model, tokenizer, texts, batch_size)
    ref = sequence_bits(reference, tokenizer, texts, batch_size)
    bits = unintended_bits(target, ref)
    m, n = bits[: len(members)], bits[len(members) :]
    return summarize_unintended(m, n, trainable_parameters), m, n


def plot_unintended_bits(
    per_model: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path
) -> Path:
    """Histograms of per-sample memorized bits, members vs non-members, one panel per model."""
    from matplotlib.figure import Figure

    if not per_model:
        raise EmptyInputError("nothing to plot")
    fig = Figure(figsize=(3.6 * len(per_model), 3.2), layout="constrained")
    axes = fig.subplots(1, len(per_model), squeeze=False)[0]
    for ax, (name, (m, n)) in zip(axes, per_model.items(), strict=True):
        top = max(float(np.max(m)), float(np.max(n)), 1.0)
        bins = np.linspace(0, top, 30)
        # Densities: the splits differ in size (e.g. 128 members vs 256 non-members).
        ax.hist(m, bins=bins, alpha=0.6, density=True, label=f"members (n={len(m)})")
        ax.hist(n, bins=bins, alpha=0.6, density=True, label=f"non-members (n={len(n)})")
        ax.set_title(name)
        ax.set_ylabel("density")
        ax.set_xlabel("max(0, NLL_ref - NLL_target) bits")
        ax.legend(fontsize=7)
    fig.suptitle("Unintended memorization per sample (Morris et al. 2025)")
    return save_figure(fig, path)
