"""The trained inverter as an edit proposer: which tokens of a text does it think are wrong?

One teacher-forced pass of the inverter over ``[target embedding; current text]`` gives, at
every position, its distribution over the token that belongs there. Where it puts far more
probability on another token than on the one the text has, replacing that token (or inserting
the other before it) is a likely fix. These position-aware, fluent edits complement
:mod:`invert.inversion.search.edit_search`'s position-free bag-of-words edits; the real embedder still decides
which edit stays. One forward pass per text, no decoding — far cheaper than re-generating.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from invert.env import resolve_mixed_precision
from invert.errors import InvertError
from invert.models.base import tokenize_targets
from invert.models.conditioning_cache import ConditioningCache


class InverterEditProposer:
    """Proposes token replacements and insertions ranked by the inverter's log-probabilities.

    Call it with example indices and their current texts; it returns edited texts per text.
    An edit's score is ``log p(new token) - log p(current token)`` at that position, given the
    target embedding and the text to its left; the ``num_edits`` best (position, token) pairs
    each yield a replacement and an insertion (replacing the end-of-text token appends; the
    end-of-text token as a replacement truncates there).

    Args:
        inverter: A trained inverter with ``token_logits`` and an attached tokenizer.
        embeddings: ``[n, dim]`` target embeddings (row i belongs to example i).
        num_edits: (position, token) pairs tried per text.
        top_tokens: Alternatives considered at each position.
        batch_size: Texts per forward pass.
        words: Optional candidate words per example (e.g. a bag-of-words model's guesses):
            the inverter then also places them, replacing or inserting before the words
            where it finds each likeliest (the ``num_edits`` best (word, place) pairs).
        token_edits: Propose the free-vocabulary token fixes (False: only place ``words``).
        mixed_precision: ``bf16`` runs the forward passes under bf16 autocast where that is
            faster than fp32 (:func:`invert.env.resolve_mixed_precision`; ranking edits
            tolerates the precision), ``no`` in full precision.
    """

    def __init__(
        self,
        inverter: PreTrainedModel,
        embeddings: torch.Tensor,
        num_edits: int = 8,
        top_tokens: int = 2,
        batch_size: int = 32,
        words: Sequence[Sequence[str]] | None = None,
        token_edits: bool = True,
        mixed_precision: str = "no",
    ) -> None:
        if not hasattr(inverter, "token_logits") or inverter.tokenizer is None:
            raise InvertError(
                f"{type(inverter).__name__} cannot propose edits: it needs token_logits() and "
                "a tokenizer (load it with invert.load_inverter)"
            )
        if num_edits < 1 or top_tokens < 1:
            raise InvertError("need num_edits >= 1 and top_tokens >= 1")
        self.inverter, self.tokenizer = inverter, inverter.tokenizer
        self.embeddings = inverter.check_embeddings(embeddings)
        self.num_edits, self.top_tokens, self.batch_size = num_edits, top_tokens, batch_size
        # Search texts can outgrow the training length; do not truncate them away.
        self.max_tokens = 2 * int(inverter.config.max_text_tokens)
        if mixed_precision not in ("no", "bf16"):
            raise InvertError(f"mixed_precision must be 'no' or 'bf16', got {mixed_precision!r}")
        device = next(inverter.parameters()).device.type
        self.bf16 = resolve_mixed_precision(mixed_precision, device) == "bf16"
        self.calls, self.token_edits = 0, token_edits
        if not token_edits and words is None:
            raise InvertError("with token_edits=False the proposer needs words to place")
        if words is not None and len(words) != len(self.embeddings):
            raise InvertError(f"got {len(words)} rows of words for {len(self.embeddings)} targets")
        self.words = None if words is None else [list(dict.fromkeys(w for w in row if w.strip())) for row in words]
        self._first_token: dict[tuple[str, bool], int] = {}
        # A prefix LM's conditioning is the same every round: its keys and values are kept.
        self.conditioning = ConditioningCache(inverter, self.embeddings, batch_size) \
            if ConditioningCache.supports(inverter) else None  # fmt: skip
        self._cache: dict[tuple[int, str], list[str]] = {}

    @torch.no_grad()
    def __call__(self, examples: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        """Edited versions of ``texts[j]`` (the text of example ``examples[j]``).

        A (example, text) pair seen before gets its earlier answer without a forward pass:
        a search whose best text did not change since the last round asks again.
        """
        if len(examples) != len(texts):
            raise InvertError(f"got {len(examples)} example indices for {len(texts)} texts")
        keys = [(int(i), t) for i, t in zip(examples, texts, strict=True)]
        new = list(dict.fromkeys(k for k in keys if k not in self._cache))
        was_training = self.inverter.training
        self.inverter.eval()
        device = next(self.inverter.parameters()).device
        for start in range(0, len(new), self.batch_size):
            chunk = new[start : start + self.batch_size]
            rows = [t for _, t in chunk]
            batch = tokenize_targets(self.tokenizer, rows, self.max_tokens)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            index = torch.as_tensor([i for i, _ in chunk])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                if self.conditioning is not None:
                    logits = self.conditioning.token_logits(index.tolist(), ids, mask)
                else:
                    logits = self.inverter.token_logits(self.embeddings[index].to(device), ids, mask)
            self.calls += 1
            log_probs = logits.float().log_softmax(-1)
            edits = self._edits(log_probs, ids, mask) if self.token_edits else [[] for _ in rows]
            if self.words is not None:
                placed = self._placements(log_probs, rows, index.tolist())
                edits = [list(dict.fromkeys(a + b)) for a, b in zip(edits, placed, strict=True)]
            self._cache.update(zip(chunk, edits, strict=True))
        self.inverter.train(was_training)
        return [list(self._cache[k]) for k in keys]

    def _edits(
        self, log_probs: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
    ) -> list[list[str]]:
        current = log_probs.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # [b, L]
        top_lp, top_ids = log_probs.topk(self.top_tokens + 1, dim=-1)  # one may be the current
        gain = top_lp - current.unsqueeze(-1)
        gain[top_ids == ids.unsqueeze(-1)] = float("-inf")
        gain[mask == 0] = float("-inf")
        eos = self.tokenizer.eos_token_id
        out = []
        for row in range(len(ids)):
            length = int(mask[row].sum())  # text tokens + the end-of-text token
            tokens = ids[row, : length - 1].tolist()
            flat = gain[row].flatten()
            best = flat.topk(min(self.num_edits, int(torch.isfinite(flat).sum()))).indices
            candidates = []
            for flat_index in best.tolist():
                pos, alt = divmod(flat_index, top_ids.shape[-1])
                token = int(top_ids[row, pos, alt])
                if token == eos:
                    candidates.append(tokens[:pos])
                    continue
                candidates.append(tokens[:pos] + [token] + tokens[pos + 1 :])
                candidates.append(tokens[:pos] + [token] + tokens[pos:])
            texts = self.tokenizer.batch_decode(candidates, skip_special_tokens=True)
            out.append(list(dict.fromkeys(t.strip() for t in texts if t.strip())))
        return out

    def _first(self, word: str, at_start: bool) -> int:
        """The first token of ``word`` as it would appear at the start or after a space."""
        key = (word, at_start)
        if key not in self._first_token:
            ids = self.tokenizer(word if at_start else " " + word, add_special_tokens=False)["input_ids"]
            self._first_token[key] = ids[0] if ids else self.tokenizer.eos_token_id
        return self._first_token[key]

    def _placements(
        self, log_probs: torch.Tensor, texts: list[str], examples: list[int]
    ) -> list[list[str]]:
        """Word-level replace/insert edits with the example's candidate words, best first."""
        assert self.words is not None
        encoded = self.tokenizer(
            texts, add_special_tokens=False, truncation=True, max_length=self.max_tokens,
            return_offsets_mapping=True,
        )  # fmt: skip
        out = []
        for row, (text, example) in enumerate(zip(texts, examples, strict=True)):
            candidate_words = self.words[example]
            if not candidate_words:
                out.append([])
                continue
            offsets, ids = encoded["offset_mapping"][row], encoded["input_ids"][row]
            # Token offsets of byte-level BPEs include the leading space; skip it.
            starts: dict[int, int] = {}
            for t, (a, _) in enumerate(offsets):
                starts.setdefault(a + 1 if text[a : a + 1].isspace() else a, t)
            spans = [m.span() for m in re.finditer(r"\S+", text)]
            # (token position, word index) of each word start; the end-of-text slot appends.
            places = [(starts[a], k) for k, (a, _) in enumerate(spans) if a in starts]
            places.append((len(ids), len(spans)))
            eos = self.tokenizer.eos_token_id
            dev = log_probs.device
            current = torch.tensor([[ids[p] if p < len(ids) else eos] for p, _ in places], device=dev)
            row_lp = log_probs[row, [p for p, _ in places]]  # [places, vocab]
            first = torch.tensor(
                [[self._first(w, at_start=k == 0) for w in candidate_words] for _, k in places],
                device=dev,
            )
            gain = (row_lp.gather(1, first) - row_lp.gather(1, current)).flatten()  # [places * words]
            best = gain.topk(min(self.num_edits, len(gain))).indices.tolist()
            scored = [(places[b // len(candidate_words)][1], candidate_words[b % len(candidate_words)]) for b in best]
            words = text.split()
            candidates = []
            for k, word in scored:
                candidates.append(" ".join(words[:k] + [word] + words[k:]))
                if k < len(words):
                    candidates.append(" ".join(words[:k] + [word] + words[k + 1 :]))
            out.append([c for c in dict.fromkeys(candidates) if c != text])
        return out
