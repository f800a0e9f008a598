"""Token-level attacks that compare a fine-tuned target with its pretrained base, token by token.

Sequence averages (LOSS, the reference ratio) dilute memorization, which fine-tuning writes into
a few tokens of each text. These attacks read the per-token log-probabilities of the target and
of a reference model (the pretrained base, or any model of the same tokenizer) from one pass of
each (:func:`invert.memorization.membership.token_statistics`):

- ``ez_mia``: Error Zone score (Ilić et al. 2026, arXiv:2601.12104). At the tokens the target
  mispredicts (its top-1 is not the token), the ratio of the summed upward shifts
  ``log p_target - log p_reference`` to the summed downward ones. A member's hard tokens are
  still pushed up by training; a non-member's move both ways.
- ``wbc``: Window-Based Comparison (Chen et al. 2026, arXiv:2601.02751). Windows of
  geometrically spaced sizes slide over the token losses; each window votes 1 when the target's
  summed loss is below the reference's. The score is the mean vote over windows, then sizes:
  a sign is robust to the heavy tails of token-level loss differences.
- ``informia``: token-level InfoRMIA (Tao & Shokri 2025, arXiv:2510.05582). Each token's
  information gain in bits, ``log2 p_target - log2 p_reference``, less the population's mean
  gain per token (the distribution-shift term ``KL(p(z) || p(z | θ))``, which a fine-tune on
  any text of the domain earns on non-members too). The score sums the positive gains: the bits
  of the text the target holds beyond what the domain explains (:func:`informia_token_bits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from invert.errors import InvertError
from invert.memorization.membership import TokenStats, register_attack

LN2 = math.log(2.0)
WBC_WINDOWS = (1, 2, 4, 8, 16, 32)
# Below this many error tokens a ratio of sums is noise; the reference code scores such texts
# 0, which would rank a text the target predicts perfectly (the most memorized) last.
EZ_MIN_ERROR_TOKENS = 2


def _need_reference(ref: TokenStats | None, attack: str) -> TokenStats:
    if ref is None:
        raise InvertError(
            f"the '{attack}' attack compares the target with a reference model (the pretrained "
            "base for a fine-tune); configure reference.kind or drop the attack"
        )
    return ref


def _deltas(target: TokenStats, ref: TokenStats) -> list[np.ndarray]:
    out = []
    for i, (t, r) in enumerate(zip(target.logp, ref.logp, strict=True)):
        if t.shape != r.shape:
            raise InvertError(
                f"text {i}: the target scored {t.size} tokens and the reference {r.size}; "
                "the reference must share the target's tokenizer"
            )
        out.append(t - r)
    return out


def ez_scores(target: TokenStats, ref: TokenStats, eps: float = 1e-6) -> np.ndarray:
    """EZ-MIA scores: ``log`` of (upward shift + eps) / (downward shift + eps) at error tokens.

    The log of the paper's ratio ranks texts identically and stays finite when a text has no
    downward shift. Texts with fewer than ``EZ_MIN_ERROR_TOKENS`` error tokens use all tokens.
    """
    if target.top1_hit is None:
        raise InvertError("ez_mia needs the target's top-1 hits; score it with token_statistics")
    scores = []
    for delta, hit in zip(_deltas(target, ref), target.top1_hit, strict=True):
        errors = delta[~hit.astype(bool)]
        zone = errors if errors.size >= EZ_MIN_ERROR_TOKENS else delta
        up, down = zone[zone > 0].sum(), -zone[zone < 0].sum()
        scores.append(math.log((up + eps) / (down + eps)))
    return np.array(scores)


def wbc_scores(
    target: TokenStats, ref: TokenStats, windows: Sequence[int] = WBC_WINDOWS
) -> np.ndarray:
    """WBC scores in [0, 1]: the share of windows where the target's loss is below the reference's.

    Window sizes longer than a text are skipped for it (its whole length is one window then).
    """
    if not windows or min(windows) < 1:
        raise InvertError(f"WBC window sizes must be >= 1, got {list(windows)}")
    scores = []
    for delta in _deltas(target, ref):
        cumulative = np.concatenate([[0.0], np.cumsum(delta)])
        sizes = sorted({min(w, delta.size) for w in windows})
        votes = []
        for w in sizes:
            window_gain = cumulative[w:] - cumulative[:-w]  # target log p minus reference's
            votes.append(np.mean(window_gain > 0))
        scores.append(float(np.mean(votes)))
    return np.array(scores)


def population_gain_bits(target: TokenStats, ref: TokenStats) -> float:
    """Mean information gain per token, in bits, over the given texts (InfoRMIA's KL term)."""
    deltas = _deltas(target, ref)
    return float(np.concatenate(deltas).mean() / LN2)


def informia_token_bits(
    target: TokenStats, ref: TokenStats, population_bits: float | None = None
) -> list[np.ndarray]:
    """Per-token memorized bits: ``max(0, log2 p_target - log2 p_reference - population gain)``.

    Args:
        target: The target's token statistics.
        ref: The reference's, on the same texts.
        population_bits: Mean gain per token on population texts (the distribution shift a
            fine-tune earns on any text of the domain); None estimates it from these texts,
            unlabelled, as an offline auditor can.

    Returns:
        One non-negative float array per text, aligned with ``target.logp``.
    """
    shift = population_gain_bits(target, ref) if population_bits is None else population_bits
    return [np.maximum(0.0, d / LN2 - shift) for d in _deltas(target, ref)]


@register_attack("ez_mia", needs_reference=True)
def ez_mia_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    return ez_scores(target, _need_reference(ref, "ez_mia"))


@register_attack("wbc", needs_reference=True)
def wbc_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    return wbc_scores(target, _need_reference(ref, "wbc"))


@register_attack("informia", needs_reference=True)
def informia_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    bits = informia_token_bits(target, _need_reference(ref, "informia"))
    return np.array([b.sum() for b in bits])
