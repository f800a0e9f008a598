"""Canary exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019, arXiv:1802.08232).

A canary ``s[r]`` holds a secret ``r`` drawn uniformly from a space ``R``. Its rank is its place
among all ``s[r']``, ``r' in R``, ordered by log-perplexity (bits, lowest first), and

    exposure = log2 |R| - log2 rank.

Small spaces are enumerated exactly. For large ones the paper fits a skew-normal distribution
to the log-perplexities of sampled candidates and reads exposure off its CDF:
``exposure ≈ -log2 F(Px(s[r]))``.
"""

from __future__ import annotations

import copy
import heapq
import inspect
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
from invert.reporting.plots import save_figure

METHODS = ("auto", "exact", "skewnorm")
LN2 = math.log(2.0)


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


def skewnorm_exposure(
    canary_bits: float, sample_bits: np.ndarray, space_size: int | None = None
) -> float:
    """Exposure extrapolated from a skew-normal fit to sampled candidates' log-perplexities.

    ``-log2 F(x)`` with ``F`` the fitted CDF, computed from ``logcdf`` so that canaries far in
    the lower tail (very high exposure) do not underflow to infinity.

    Args:
        canary_bits: The canary's log-perplexity in bits.
        sample_bits: Log-perplexities of candidates drawn uniformly from R (>= 20).
        space_size: |R|; caps the result at log2 |R| (rank >= 1), which a fitted tail far
            beyond the sample can overshoot. None leaves it uncapped.
    """
    sample_bits = np.asarray(sample_bits, dtype=np.float64)
    if sample_bits.size < 20 or not np.all(np.isfinite(sample_bits)):
        raise InvertError(
            f"a skew-normal fit needs >= 20 finite candidate scores, got {sample_bits.size}; "
            f"raise exposure.n_samples"
        )
    a, loc, scale = stats.skewnorm.fit(sample_bits)
    log_cdf = float(stats.skewnorm.logcdf(canary_bits, a, loc=loc, scale=scale))
    exposure = max(0.0, -log_cdf / math.log(2.0))
    return min(exposure, math.log2(space_size)) if space_size else exposure


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


def _common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token after them."""
    shortest = min(len(r) for r in rows)
    first = rows[0]
    n = 0
    while n < shortest - 1 and all(r[n] == first[n] for r in rows):
        n += 1
    return n


@torch.no_grad()
def shared_prefix_bits(
    model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """:func:`sequence_bits` of texts that share a long start (a canary's candidates behind a
    retrieved context), reading that start once: its key-value cache is copied to each batch,
    so only the tails pass through the LM. The same bits up to float rounding.

    Falls back to :func:`sequence_bits` for models that take no cache (peft prefix tuning
    brings its own) or a shared start under 8 tokens.
    """
    if not texts:
        raise EmptyInputError("no texts to score")
    from transformers import PreTrainedModel

    rows = tokenize(tokenizer, texts)
    common = _common_prefix_length(rows)
    if common < 8 or not isinstance(model, PreTrainedModel):
        return sequence_bits(model, tokenizer, texts, batch_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        head = torch.tensor([rows[0][:common]], device=device)
        first = model(input_ids=head, use_cache=True)
        # transformers renamed past_key_values to cache (5.2x); either name, whichever it takes.
        head_cache = getattr(first, "cache", None) or first.past_key_values
        takes_cache = "cache" in inspect.signature(model.forward).parameters
        cache_arg = "cache" if takes_cache else "past_key_values"
        head_logp = torch.log_softmax(first.logits[0].float(), dim=-1)
        head_bits = -head_logp[:-1].gather(-1, head[0, 1:, None]).sum().item() / LN2
        next_logp = head_logp[-1]  # scores each tail's first token
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.empty(len(rows), dtype=np.float64)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = pad_batch([rows[i][common:] for i in chunk])
            ids, mask = ids.to(device), mask.to(device)
            cache = copy.deepcopy(head_cache)
            cache.batch_repeat_interleave(len(chunk))
            full_mask = torch.cat([mask.new_ones(len(chunk), common), mask], dim=1)
            logits = model(
                input_ids=ids, attention_mask=full_mask, use_cache=True, **{cache_arg: cache}
            ).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            tail = -(logp.gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]).sum(1)
            tail = tail - next_logp[ids[:, 0]]
            out[chunk] = head_bits + tail.double().cpu().numpy() / LN2
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def search_rank(
    model: torch.nn.Module,
    tokenizer: Any,
    canary: Canary,
    n_digits: int,
    max_batches: int = 20,
    batch_size: int = 32,
) -> tuple[int | None, int]:
    """Exact rank of a digit canary by best-first search over secrets (Carlini et al. 2019, §8).

    Secrets are popped in increasing log-perplexity (Dijkstra on the digit tree: every token
    adds >= 0 bits), so when the canary pops it has its exact rank among all 10**n_digits
    secrets, at a cost of about ``rank x n_digits`` expansions instead of |R| scores. This is
    where skew-normal extrapolation is least reliable: canaries far below every sample.

    Args:
        model: Causal LM.
        tokenizer: Must encode each digit as one token (checked; else returns ``(None, 0)``).
        canary: A canary with an ``n_digits`` numeric secret.
        n_digits: Digits of the secret.
        max_batches: Forward passes allowed (each expands up to ``batch_size`` nodes).
        batch_size: Nodes expanded per forward pass.

    Returns:
        ``(rank, popped)``: the rank (None when the budget ran out first) and how many secrets
        were popped ahead of it (so rank > popped when None).
    """
    head = tokenize(tokenizer, [canary.prefix])[0]
    digits = [tokenize(tokenizer, [str(d)], add_bos=False)[0] for d in range(10)]
    tail = tokenize(tokenizer, [canary.suffix], add_bos=False)[0] if canary.suffix else []
    if any(len(d) != 1 for d in digits):
        return None, 0
    digit_ids = [d[0] for d in digits]
    if (
        tokenize(tokenizer, [canary.text])[0]
        != head + [digit_ids[int(c)] for c in canary.secret] + tail
    ):
        return None, 0  # the tokenizer merges across the boundary: the tree would not match
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    heap: list[tuple[float, str, bool]] = [(0.0, "", False)]  # (bits so far, digits, final)
    popped = 0

    def pop_finals() -> bool:
        """Pops finals while one is on top (each is the next in rank order); True at the canary."""
        nonlocal popped
        while heap and heap[0][2]:
            popped += 1
            if heapq.heappop(heap)[1] == canary.secret:
                return True
        return False

    try:
        for _ in range(max_batches):
            if pop_finals():
                return popped, popped - 1
            if not heap:
                break
            nodes = [
                heapq.heappop(heap) for _ in range(min(batch_size, len(heap))) if not heap[0][2]
            ]
            rows = [
                head + [digit_ids[int(c)] for c in d] + (tail if len(d) == n_digits else [])
                for _, d, _ in nodes
            ]
            ids, mask = pad_batch(rows)
            logp = torch.log_softmax(
                model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1
            )
            for row, (bits, d, _), r in zip(range(len(nodes)), nodes, rows, strict=True):
                if len(d) < n_digits:  # children: one more digit
                    step = -logp[row, len(r) - 1, digit_ids].cpu().double().numpy() / LN2
                    for c in range(10):
                        heapq.heappush(heap, (bits + float(step[c]), d + str(c), False))
                else:  # complete: add the suffix tokens' bits and mark final
                    pos = torch.arange(len(head) + n_digits - 1, len(r) - 1)
                    extra = (
                        -logp[row, pos, torch.tensor(r[len(head) + n_digits :])].sum().item() / LN2
                    )
                    heapq.heappush(heap, (bits + extra, d, True))
        if pop_finals():  # finals pushed by the last pass
            return popped, popped - 1
    finally:
        model.train(was_training)
    return None, popped


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
    search_batches: int = 20,
    shared_prefix: bool = False,
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
        search_batches: Forward passes of :func:`search_rank` for a digit canary that beats
            every sampled candidate (0 disables): its exact rank replaces the extrapolation.
        shared_prefix: Score candidates with :func:`shared_prefix_bits` (a long prefix, such
            as retrieved context, read once per canary).

    Returns:
        One dict per canary: ``repetitions``, ``exposure``, ``method``, ``canary_bits``,
        ``rank`` (exact only), ``max_exposure`` (log2 |R| when known); skew-normal rows add
        ``exposure_uncapped`` (the raw fit) and ``rank_in_sample``; a canary ranked by search
        gets ``method="search"`` and its exact ``rank``. No secret text.
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
        score = shared_prefix_bits if shared_prefix else sequence_bits
        bits = score(model, tokenizer, texts, batch_size)
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
            raw = skewnorm_exposure(bits[0], bits[1:])  # uncapped: how far the fit overshoots
            cap = math.log2(space.size) if space.size else math.inf
            row["exposure"], row["exposure_uncapped"] = min(raw, cap), raw
            row["rank_in_sample"] = canary_rank(bits[0], bits[1:])  # 1: beats every sample
            if search_batches and row["rank_in_sample"] == 1 and isinstance(space, DigitSpace):
                rank, popped = search_rank(
                    model, tokenizer, canary, space.n_digits, search_batches, batch_size
                )
                if rank is not None:
                    row.update(
                        method="search", rank=rank, exposure=exposure_from_rank(rank, space.size)
                    )
                else:  # more than `popped` secrets beat it: that bounds its exposure
                    bound = exposure_from_rank(popped + 1, space.size)
                    row["exposure"] = min(row["exposure"], bound)
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
    return save_figure(fig, path)
