"""Zero-shot guided inversion: no trained inverter, just a pretrained LM and the embedder.

In the spirit of ZSInvert (Zhang, Morris & Shmatikov 2025): a causal LM proposes continuations
block by block (its top-k next tokens, each extended greedily to ``block_size`` tokens), the
target's embedder scores every partial text by cosine to the target, and a beam keeps the best.
It needs only query access to the embedder, so it works against any embedder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from invert.embedders.base import Embedder, check_embeddings
from invert.errors import InvertError
from invert.inversion.search.scorer import CosineScorer


@dataclass
class ZeroShotResult:
    """What :func:`zero_shot_invert` found.

    Attributes:
        texts: Best text per example.
        cosines: Its cosine to the target.
        best_cosine_by_step: ``[step][example]`` best cosine after each block.
        embedded_texts: Distinct texts embedded (each at most once).
        embedder_calls: Calls to ``embedder.encode`` (one per step at most).
    """

    texts: list[str]
    cosines: list[float]
    best_cosine_by_step: list[list[float]] = field(default_factory=list)
    embedded_texts: int = 0
    embedder_calls: int = 0


@torch.no_grad()
def zero_shot_invert(
    embeddings: torch.Tensor,
    embedder: Embedder,
    lm: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    beam_width: int = 4,
    top_k: int = 8,
    block_size: int = 1,
    max_tokens: int = 16,
    prompt: str = "",
    early_stop_cosine: float | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
) -> ZeroShotResult:
    """Searches for texts whose embeddings are close to ``embeddings`` (deterministic).

    Args:
        embeddings: ``[n, dim]`` targets from ``embedder``.
        embedder: Scores candidates (the only access to the target embedding space).
        lm: A pretrained causal LM that proposes continuations.
        tokenizer: Its tokenizer.
        beam_width: Texts kept per example between blocks; current beams stay candidates,
            so the best cosine never decreases from one block to the next.
        top_k: Next tokens tried per beam at the start of each block.
        block_size: Tokens per block (the first from top-k, the rest greedy).
        max_tokens: Length limit of a text, in tokens.
        prompt: Text the LM is conditioned on (not part of the result), e.g. a domain hint.
        early_stop_cosine: Stop an example once its best cosine reaches this.
        batch_size: Sequences per LM forward pass.
        show_progress: Progress bar over blocks.
    """
    targets = check_embeddings(embeddings, embedder.dim, f"the embedder {embedder.name}")
    if beam_width < 1 or top_k < 1 or block_size < 1 or max_tokens < 1:
        raise InvertError("beam_width, top_k, block_size and max_tokens must all be >= 1")
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    bos = next(
        (
            t
            for t in (tokenizer.bos_token_id, tokenizer.cls_token_id, tokenizer.eos_token_id)
            if t is not None
        ),
        None,
    )
    start = ([bos] if bos is not None else []) + list(start)
    if not start:
        raise InvertError(
            "the LM needs a first token: give the tokenizer a bos token or pass prompt=..."
        )
    banned = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    scorer = CosineScorer(targets, embedder)
    n, stop = len(targets), early_stop_cosine if early_stop_cosine is not None else math.inf
    beams: list[list[tuple[int, ...]]] = [[()] for _ in range(n)]
    texts: dict[tuple[int, ...], str] = {(): ""}
    result = ZeroShotResult(texts=[], cosines=[])
    lm.eval()
    for _ in tqdm(
        range(math.ceil(max_tokens / block_size)), desc="searching", disable=not show_progress
    ):
        # The empty start is always active: it is no text yet.
        active = [
            i for i in range(n) if not beams[i][0] or scorer.cosine(i, texts[beams[i][0]]) < stop
        ]
        parents = sorted({b for i in active for b in beams[i]})
        if not parents:
            break
        children = _expand(lm, start, parents, top_k, block_size, banned, batch_size)
        for seqs in children.values():
            for s in seqs:
                texts.setdefault(s, tokenizer.decode(list(s), skip_special_tokens=True).strip())
        scorer.embed_new({texts[s] for seqs in children.values() for s in seqs})
        for i in active:
            pool = list(beams[i]) + [s for b in beams[i] for s in children[b]]
            # One sequence per distinct text (first wins), ranked by cosine; stable on ties.
            seen: set[str] = set()
            unique = [s for s in pool if not (texts[s] in seen or seen.add(texts[s]))]
            beams[i] = sorted(unique, key=lambda s: -scorer.cosine(i, texts[s]))[:beam_width]
        result.best_cosine_by_step.append(
            [scorer.cosine(i, texts[b[0]]) for i, b in enumerate(beams)]
        )
    result.texts = [texts[b[0]] for b in beams]
    result.cosines = [scorer.cosine(i, t) for i, t in enumerate(result.texts)]
    result.embedded_texts, result.embedder_calls = len(scorer.vectors), scorer.calls
    return result


def _expand(
    lm: PreTrainedModel,
    start: list[int],
    parents: list[tuple[int, ...]],
    top_k: int,
    block_size: int,
    banned: torch.Tensor,
    batch_size: int,
) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    """Each parent's top-k next tokens, each extended greedily to ``block_size`` tokens."""
    first = _next_logits(lm, [tuple(start) + p for p in parents], banned, batch_size)
    k = min(top_k, first.shape[1] - len(banned))
    children = {
        p: [p + (t,) for t in first[j].topk(k).indices.tolist()] for j, p in enumerate(parents)
    }
    for _ in range(block_size - 1):
        flat = [c for p in parents for c in children[p]]
        nxt = (
            _next_logits(lm, [tuple(start) + c for c in flat], banned, batch_size)
            .argmax(-1)
            .tolist()
        )
        extended = dict(zip(flat, (c + (t,) for c, t in zip(flat, nxt, strict=True)), strict=True))
        children = {p: [extended[c] for c in children[p]] for p in parents}
    return children


def _next_logits(
    lm: PreTrainedModel, seqs: list[tuple[int, ...]], banned: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Next-token logits ``[len(seqs), vocab]`` (left-padded batches, special tokens banned)."""
    device = next(lm.parameters()).device
    out = []
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s : s + batch_size]
        width = max(len(c) for c in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for j, c in enumerate(chunk):
            ids[j, width - len(c) :], mask[j, width - len(c) :] = torch.tensor(c), 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = (
            lm(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
            )
            .logits[:, -1]
            .float()
            .cpu()
        )
        logits[:, banned[banned < logits.shape[1]]] = -math.inf
        out.append(logits)
    return torch.cat(out)
