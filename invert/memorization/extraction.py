"""Discoverable (k-extractable) memorization by greedy decoding.

Carlini et al., "Extracting Training Data from Large Language Models" (arXiv:2012.07805) and
"Quantifying Memorization Across Neural Language Models" (arXiv:2202.07646): a training string
``prefix + suffix`` is extractable with a k-token prefix when greedy decoding from the prefix
reproduces the suffix exactly. The fraction extractable grows with the prefix length and with
how often the string was repeated in training; held-out strings of the same distribution give
the baseline that generalisation alone reaches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.errors import EmptyInputError, InvertError
from invert.memorization.private_corpus import Canary, tokenize
from invert.reporting.plots import save_figure


@torch.no_grad()
def greedy_continuations(
    model: torch.nn.Module, prefix_ids: torch.Tensor, n_new: int, pad_id: int = 0
) -> torch.Tensor:
    """Greedy (argmax) continuation of equal-length prefixes, exactly ``n_new`` tokens each.

    Uses ``model.generate`` (KV cache) with end-of-sequence stopping switched off, so every row
    gets ``n_new`` tokens; modules without ``generate`` fall back to a loop without cache.

    Args:
        model: Causal LM (transformers, peft, or any module returning ``.logits``).
        prefix_ids: ``[n, k]`` prompts, all of one length (no padding needed).
        n_new: Tokens to generate.
        pad_id: Padding id ``generate`` asks for (never used: rows have equal length).

    Returns:
        ``[n, n_new]`` generated ids on the CPU.
    """
    if prefix_ids.dim() != 2 or prefix_ids.shape[1] < 1:
        raise InvertError(f"prefix_ids must be [n, k>=1], got {tuple(prefix_ids.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = prefix_ids.to(device)
    try:
        if hasattr(model, "generate"):
            from transformers import GenerationConfig

            config = GenerationConfig(
                max_new_tokens=n_new,
                do_sample=False,
                num_beams=1,
                eos_token_id=None,  # greedy for exactly n_new tokens, never stopped early
                pad_token_id=pad_id,
            )
            out = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
            return out[:, ids.shape[1] :].cpu()
        for _ in range(n_new):
            logits = model(input_ids=ids).logits[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
        return ids[:, prefix_ids.shape[1] :].cpu()
    finally:
        model.train(was_training)


def _match_rows(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact-match flag and fraction of matching tokens per (prompt, target) pair."""
    exact = np.zeros(len(prompts), dtype=bool)
    token_frac = np.zeros(len(prompts), dtype=np.float64)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (p, t) in enumerate(zip(prompts, targets, strict=True)):
        groups[(len(p), len(t))].append(i)  # equal lengths batch without padding
    for (_, n_new), idx in groups.items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            prompt = torch.tensor([list(prompts[i]) for i in chunk], dtype=torch.long)
            target = torch.tensor([list(targets[i]) for i in chunk], dtype=torch.long)
            same = greedy_continuations(model, prompt, n_new, pad_id) == target
            exact[chunk] = same.all(dim=1).numpy()
            token_frac[chunk] = same.double().mean(dim=1).numpy()
    return exact, token_frac


def extraction_rates(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    prefix_lengths: Sequence[int] = (8, 16, 32),
    suffix_length: int = 16,
    batch_size: int = 32,
) -> dict[int, dict[str, float]]:
    """Fraction of ``texts`` whose ``suffix_length``-token suffix greedy decoding reproduces.

    For prefix length k the prompt is BOS + the first k tokens and the target the next
    ``suffix_length`` tokens; texts shorter than ``k + suffix_length`` tokens are skipped (their
    count is reported as ``n``).

    Returns:
        ``{k: {"extractable": fraction exact, "token_match": mean token accuracy, "n": count}}``.
    """
    if suffix_length < 1:
        raise InvertError(f"suffix_length must be >= 1, got {suffix_length}")
    rows = tokenize(tokenizer, texts)  # BOS first: position 0 is context, as in training
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    out: dict[int, dict[str, float]] = {}
    for k in prefix_lengths:
        keep = [r for r in rows if len(r) >= 1 + k + suffix_length]
        if not keep:
            out[int(k)] = {"extractable": float("nan"), "token_match": float("nan"), "n": 0}
            continue
        prompts = [r[: 1 + k] for r in keep]
        targets = [r[1 + k : 1 + k + suffix_length] for r in keep]
        exact, frac = _match_rows(model, prompts, targets, batch_size, pad_id)
        out[int(k)] = {
            "extractable": float(exact.mean()),
            "token_match": float(frac.mean()),
            "n": len(keep),
        }
    return out


def canary_extraction(
    model: torch.nn.Module, tokenizer: Any, canaries: Sequence[Canary], batch_size: int = 32
) -> list[dict[str, Any]]:
    """Whether greedy decoding from each canary's prefix reproduces its secret and suffix.

    Returns:
        One dict per canary: ``repetitions``, ``extracted`` (exact), ``token_match``.
    """
    if not canaries:
        raise EmptyInputError("no canaries to extract")
    full = tokenize(tokenizer, [c.text for c in canaries])
    heads = tokenize(tokenizer, [c.prefix for c in canaries])
    prompts, targets = [], []
    for f, h in zip(full, heads, strict=True):
        # BPE may merge across the prefix/secret boundary; cut where the two tokenizations
        # stop agreeing so the prompt is exactly what training saw.
        cut = next((i for i, (a, b) in enumerate(zip(f, h, strict=False)) if a != b), len(h))
        prompts.append(f[:cut])
        targets.append(f[cut:])
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    exact, frac = _match_rows(model, prompts, targets, batch_size, pad_id)
    return [
        {"canary": i, "repetitions": c.repetitions, "extracted": bool(e), "token_match": float(t)}
        for i, (c, e, t) in enumerate(zip(canaries, exact, frac, strict=True))
    ]


def extraction_by_repetition(results: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Fraction of canaries extracted per repetition count, ascending."""
    groups: dict[int, list[bool]] = defaultdict(list)
    for row in results:
        groups[int(row["repetitions"])].append(bool(row["extracted"]))
    return {r: float(np.mean(v)) for r, v in sorted(groups.items())}


def plot_extraction_vs_prefix(
    curves: dict[str, dict[int, dict[str, float]]], path: str | Path
) -> Path:
    """Extractable fraction against prefix length, one line per model/regime and split.

    Args:
        curves: ``{label: extraction_rates(...)}``, e.g. ``{"full/members": ..., ...}``; labels
            ending in ``non_members`` are drawn dashed.
        path: Where to write the PNG.
    """
    from matplotlib.figure import Figure

    if not curves:
        raise EmptyInputError("no extraction curves to plot")
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for label, rates in curves.items():
        ks = sorted(rates)
        style = "--" if label.endswith("non_members") else "-"
        ax.plot(ks, [100 * rates[k]["extractable"] for k in ks], style, marker="o", label=label)
    ax.set_xlabel("prefix length (tokens)")
    ax.set_ylabel("extractable (%)")
    ax.set_title("Discoverable memorization (Carlini et al. 2022)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
