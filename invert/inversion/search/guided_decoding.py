"""The trained inverter decodes, and the real embedder picks its beams at every token.

A prefix-LM inverter decoding alone writes fluent text that drifts off its target; an edit
search over words reaches the target's embedding but ends on word lists. This beam search
does both at once, as adversarial decoding does with an untrained LM (ZSInvert: Zhang, Morris
& Shmatikov 2025, arXiv 2504.00147): at each step the
inverter (reading the target's embedding, hints and draft, with its pull toward the hinted
words) proposes its ``top_k`` next tokens for every beam, the embedder embeds each extended
text, and each example keeps the ``beam_width`` texts of highest

    cosine(embed(text), target) + fluency_weight * mean log p_inverter(token | left context)

Proposals come from the LM, so every kept text is one it would write; the cosine keeps only
those that head toward the target. The conditioning's keys and values are computed once per
example and each step feeds one token per beam (beams reorder the cache), so the LM costs a
token's pass per beam per step; the embedder, ``beam_width * top_k`` texts per example per step,
is the bulk of the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invert.configs import GuidedDecodingConfig
from invert.embedders.base import Embedder, check_embeddings
from invert.env import resolve_mixed_precision
from invert.errors import InvertError
from invert.inversion.search.scorer import CosineScorer
from invert.models.conditioning_cache import ConditioningCache, cache_argument


@dataclass
class GuidedDecodingResult:
    """What :func:`embedder_guided_decode` wrote.

    Attributes:
        texts: The best text per example (by the score above).
        cosines: Its cosine to the target.
        embedded_texts: Texts embedded (each distinct text once per batch).
        steps: Decoding steps run (tokens of the longest text, at most ``max_tokens``).
    """

    texts: list[str]
    cosines: list[float]
    embedded_texts: int = 0
    steps: int = 0


@dataclass
class _Beam:
    tokens: list[int]
    log_prob: float  # sum of the LM's (unbiased) log-probabilities of ``tokens``


def supports_guided_decoding(inverter: torch.nn.Module | None) -> bool:
    """Whether ``inverter`` is a decoder-only prefix LM with a tokenizer (what this decodes)."""
    return inverter is not None and ConditioningCache.supports(inverter) and \
        getattr(inverter, "tokenizer", None) is not None  # fmt: skip


# The defaults are GuidedDecodingConfig's, stated there once.
_DEFAULTS = GuidedDecodingConfig()


@torch.no_grad()
def embedder_guided_decode(
    inverter: torch.nn.Module,
    embedder: Embedder,
    embeddings: torch.Tensor,
    beam_width: int = _DEFAULTS.beam_width,
    top_k: int = _DEFAULTS.top_k,
    max_tokens: int | None = _DEFAULTS.max_tokens,
    fluency_weight: float = _DEFAULTS.fluency_weight,
    patience: int = _DEFAULTS.patience,
    batch_size: int = _DEFAULTS.batch_size,
    mixed_precision: str = "no",
    max_minutes: float | None = _DEFAULTS.max_minutes,
    show_progress: bool = False,
) -> GuidedDecodingResult:
    """Beam-decodes each embedding with the inverter, the embedder scoring every extension.

    Args:
        inverter: A decoder-only prefix-LM inverter with a tokenizer
            (:class:`~invert.models.prefix_lm.PrefixLMInverter`).
        embedder: The target's embedder (the only access to the embedding space).
        embeddings: ``[n, dim]`` targets from ``embedder``.
        beam_width: Texts kept per example after each token.
        top_k: Next tokens the inverter proposes per beam per step (its hint pull included).
        max_tokens: Longest text in LM tokens (None: the inverter's ``max_text_tokens``).
        fluency_weight: Weight of the mean token log-probability beside the cosine.
        patience: End an example once its best finished text has outscored every live beam
            for this many steps in a row (0: never; each step costs ``beam_width * top_k``
            embeddings, and a short text can outscore the start of a longer, closer one).
        batch_size: Examples decoded together (``batch_size * beam_width`` LM rows).
        mixed_precision: ``bf16`` runs the LM under bf16 autocast where that is faster than
            fp32 (:func:`invert.env.resolve_mixed_precision`), ``no`` in full precision.
        max_minutes: Wall-time cap: each batch takes the widest beam of :func:`fitted_beam`
            that its measured cost fits in the time left (greedily, at worst).
        show_progress: Progress bar over batches.

    Raises:
        InvertError: An inverter without a decoder-only conditioning or a tokenizer, bad
            sizes, or embeddings of the wrong width or with NaN/inf.
    """
    if not supports_guided_decoding(inverter):
        raise InvertError(
            f"{type(inverter).__name__} cannot be beam-decoded with the embedder: it needs a "
            "decoder-only prefix LM (model=prefix_lm) with its tokenizer (invert.load_inverter)"
        )
    if beam_width < 1 or top_k < 1 or batch_size < 1 or patience < 0:
        raise InvertError(f"need beam_width, top_k, batch_size >= 1 and patience >= 0, got {beam_width}, "
                          f"{top_k}, {batch_size}, {patience}")  # fmt: skip
    if mixed_precision not in ("no", "bf16"):
        raise InvertError(f"mixed_precision must be 'no' or 'bf16', got {mixed_precision!r}")
    targets = check_embeddings(embeddings, embedder.dim, f"the embedder {embedder.name}")
    max_tokens = int(max_tokens or inverter.config.max_text_tokens)
    if max_tokens < 1:
        raise InvertError(f"max_tokens must be >= 1, got {max_tokens}")
    device = next(inverter.parameters()).device
    bf16 = resolve_mixed_precision(mixed_precision, device.type) == "bf16"
    scorer = CosineScorer(targets, embedder)
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
    was_training = inverter.training
    inverter.eval()
    texts: list[str] = []
    steps = 0
    starts = range(0, len(targets), batch_size)
    seconds_per_slot: float | None = None  # measured: seconds per example per (beam x proposal)
    embedded = kept = 0
    for start in tqdm(starts, desc="guided decoding", disable=not show_progress):
        rows = list(range(start, min(start + batch_size, len(targets))))
        left = None if deadline is None else deadline - time.monotonic()
        width, k = fitted_beam(beam_width, top_k, len(rows), left, seconds_per_slot)
        started = time.monotonic()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            batch_texts, batch_steps = _decode_batch(
                inverter, scorer, rows, width, k, max_tokens, fluency_weight, patience
            )
        if width * k > 1:
            seconds_per_slot = (time.monotonic() - started) / (len(rows) * width * k)
        texts += batch_texts
        steps = max(steps, batch_steps)
        # Later batches never ask about these texts: keep only the chosen ones' vectors, so
        # memory stays one batch's worth (hundreds of texts per example).
        embedded += len(scorer.vectors) - kept
        scorer.vectors = {t: scorer.vectors[t] for t in batch_texts if t in scorer.vectors}
        kept = len(scorer.vectors)
    inverter.train(was_training)
    cosines = [scorer.cosine(i, t) for i, t in enumerate(texts)]
    return GuidedDecodingResult(texts, cosines, embedded, steps)


def fitted_beam(
    beam_width: int, top_k: int, examples: int, seconds_left: float | None, seconds_per_slot: float | None
) -> tuple[int, int]:
    """The (beam width, proposals) a batch of ``examples`` can afford in ``seconds_left``.

    Halves the proposals, then the beams, until ``examples * width * k * seconds_per_slot`` (the
    cost measured on earlier batches) fits; greedy (1, 1) when nothing does or the time is up.
    Without a time limit or a measurement yet, the full beam.
    """
    if seconds_left is None:
        return beam_width, top_k
    if seconds_left <= 0:
        return 1, 1
    if seconds_per_slot is None:
        return beam_width, top_k
    width, k = beam_width, top_k
    while width * k > 1 and examples * width * k * seconds_per_slot > seconds_left:
        if k > width or k > 2:
            k = max(1, k // 2)
        else:
            width = max(1, width // 2)
    if width * k > 1 and examples * width * k * seconds_per_slot > seconds_left:
        return 1, 1
    return width, k


def _decode_batch(
    inverter: torch.nn.Module,
    scorer: CosineScorer,
    examples: list[int],
    beam_width: int,
    top_k: int,
    max_tokens: int,
    fluency_weight: float,
    patience: int,
) -> tuple[list[str], int]:
    """Beam search for ``examples``; returns the best text of each and the steps run."""
    tokenizer, lm = inverter.tokenizer, inverter.lm
    eos = tokenizer.eos_token_id
    device = lm.get_input_embeddings().weight.device
    embeddings = scorer.targets[examples].to(device)
    # The retrieved drafts feed both the conditioning and the copy pull: looked up once.
    drafts = inverter.drafts(embeddings) if getattr(inverter, "draft_index", None) is not None else None
    conditioning = inverter.conditioning(embeddings, draft_ids=drafts)
    m, k = conditioning.shape[:2]
    out = lm(
        inputs_embeds=conditioning,
        attention_mask=torch.ones(m, k, dtype=torch.long, device=device),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    cache.batch_repeat_interleave(beam_width)
    logits = out.logits[:, -1].float().repeat_interleave(beam_width, dim=0)  # [m * B, V]
    bias = inverter.decoding_bias(embeddings, draft_ids=drafts) if hasattr(inverter, "decoding_bias") else None
    # Row r * B + b is beam b of example r; at the start only beam 0 of each example is live.
    beams: list[list[_Beam | None]] = [[_Beam([], 0.0)] + [None] * (beam_width - 1) for _ in examples]
    finished: list[tuple[float, str]] = [(float("-inf"), "") for _ in examples]
    trailing = [0] * len(examples)  # steps in a row each example's live beams trailed its best finished text
    step = 0
    while step < max_tokens:
        step += 1
        log_probs = logits.log_softmax(-1)
        proposal = log_probs
        if bias is not None:
            written = _written(beams, eos, device)
            proposal = bias(written, log_probs.clone())
        top = proposal.topk(top_k, dim=-1).indices.tolist()
        candidates: list[list[tuple[int, int, list[int], float, str]]] = []  # per example
        for r, example_beams in enumerate(beams):
            rows = []
            for b, beam in enumerate(example_beams):
                if beam is None:
                    continue
                row = r * beam_width + b
                for token in top[row]:
                    lp = beam.log_prob + float(log_probs[row, token])
                    if token == eos:
                        text = tokenizer.decode(beam.tokens, skip_special_tokens=True).strip()
                        rows.append((b, token, beam.tokens, lp, text))
                    else:
                        tokens = beam.tokens + [token]
                        rows.append((b, token, tokens, lp, tokenizer.decode(tokens, skip_special_tokens=True).strip()))
            candidates.append(rows)
        scorer.embed_new({c[4] for rows in candidates for c in rows})
        parents, next_tokens = [], []
        for r, rows in enumerate(candidates):
            scored = []
            for b, token, tokens, lp, text in rows:
                length = len(tokens) + (token == eos)
                score = scorer.cosine(examples[r], text) + fluency_weight * lp / max(length, 1)
                if token == eos or len(tokens) >= max_tokens:
                    finished[r] = max(finished[r], (score, text))
                else:
                    scored.append((score, b, token, tokens, lp, text))
            scored.sort(key=lambda s: s[0], reverse=True)
            kept, seen = [], set()
            for s in scored:
                if s[5] not in seen and len(kept) < beam_width:
                    seen.add(s[5])
                    kept.append(s)
            # A text's extensions can score above it (cosine is not monotone in the prefix), so
            # this stop trades quality for time.
            trailing[r] = trailing[r] + 1 if kept and kept[0][0] <= finished[r][0] else 0
            if patience and trailing[r] >= patience:
                kept = []
            new_beams: list[_Beam | None] = [_Beam(s[3], s[4]) for s in kept]
            new_beams += [None] * (beam_width - len(new_beams))
            beams[r] = new_beams
            for b in range(beam_width):
                parent = kept[b][1] if b < len(kept) else 0
                parents.append(r * beam_width + parent)
                next_tokens.append(kept[b][2] if b < len(kept) else eos)
        if all(beam is None for example_beams in beams for beam in example_beams):
            break
        cache.reorder_cache(torch.tensor(parents, device=device))
        ids = torch.tensor(next_tokens, device=device).unsqueeze(1)
        mask = torch.ones(len(ids), cache.get_seq_length() + 1, dtype=torch.long, device=device)
        logits = lm(input_ids=ids, attention_mask=mask, use_cache=True, **{cache_argument(lm): cache}).logits[:, -1].float()
    texts = []
    for r, example_beams in enumerate(beams):
        best = finished[r]
        for beam in example_beams:  # beams cut by max_tokens or the loop's end
            if beam is not None:
                text = tokenizer.decode(beam.tokens, skip_special_tokens=True).strip()
                scorer.embed_new({text})
                score = scorer.cosine(examples[r], text) + fluency_weight * beam.log_prob / max(len(beam.tokens), 1)
                best = max(best, (score, text))
        texts.append(best[1])
    return texts, step


def _written(beams: list[list[_Beam | None]], pad: int, device: torch.device) -> torch.Tensor:
    """``[m * B, longest]`` tokens each beam row has written (padded with ``pad``)."""
    rows = [beam.tokens if beam is not None else [] for example_beams in beams for beam in example_beams]
    longest = max(1, max(len(r) for r in rows))
    return torch.tensor([r + [pad] * (longest - len(r)) for r in rows], device=device)
