"""Word edits proposed by the embedder's own gradient (HotFlip, arXiv 1712.06751).

The edit search asks the embedder only "how close is this text?". One backward pass also says,
to first order, how close every *neighbouring* text would be: the gradient of the cosine to the
target with respect to the input-token vectors, dotted with each vocabulary vector, ranks every
possible one-word swap at every position (Ebrahimi et al. 2018; the same linearisation drives
the word proposals of GCG-style attacks). Insertions are swaps of a placeholder token put in a
word gap. The proposer hands the best few over the whole vocabulary to the search, whose real
embedder then keeps the ones that truly score closer; so a word no model predicted, and that no
retrieved text contains, can still enter the reconstruction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import torch

from invert.embedders.base import Embedder, check_embeddings
from invert.embedders.differentiable import DifferentiableEncoder
from invert.errors import InvertError

_WORD = re.compile(r"[^\W_]+")


class EmbedderGradientProposer:
    """Proposes the one-word swaps and insertions the embedder's gradient ranks highest.

    Callable as an :data:`invert.inversion.search.edit_search.Proposer`: ``(examples, texts)`` -> edited texts
    per text. Each text is scored once as it is (every word can be swapped for any whole-word
    vocabulary token) and ``insertions`` times with a placeholder in a random word gap (the
    placeholder can become any such token), in batched forward/backward passes. A swap replaces
    a whole word (all its word pieces), so proposals stay made of real words.

    Args:
        embedder: The real embedder; it must expose :meth:`Embedder.differentiable_encoder`.
        embeddings: ``[n, dim]`` targets, one per example index the search passes.
        num_edits: Swaps proposed per text per call, and as many insertions.
        per_position: At most this many of them at one word position, so they spread out.
        insertions: Placeholder variants per text, each in a different random word gap
            (0: swaps only).
        batch_size: Texts per forward/backward pass.
        seed: Seeds which gaps get the placeholder.

    Raises:
        InvertError: The embedder has no differentiable forward pass (e.g. precomputed
            vectors), or a count is out of range.
        DimensionMismatchError: The targets' dimension differs from the embedder's.
    """

    def __init__(
        self,
        embedder: Embedder,
        embeddings: torch.Tensor,
        num_edits: int = 16,
        per_position: int = 2,
        insertions: int = 1,
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        encoder = embedder.differentiable_encoder()
        if encoder is None:
            raise InvertError(
                f"the embedder {embedder.name!r} ({type(embedder).__name__}) gives no gradients, "
                "so it cannot propose edits; set search.gradient_edits=0"
            )
        if num_edits < 1 or per_position < 1 or insertions < 0 or batch_size < 1:
            raise InvertError("need num_edits, per_position, batch_size >= 1 and insertions >= 0")
        self.encoder: DifferentiableEncoder = encoder
        targets = check_embeddings(embeddings, embedder.dim, f"the embedder {embedder.name!r}")
        self.targets = torch.nn.functional.normalize(targets, dim=-1).to(encoder.device)
        self.num_edits, self.per_position, self.insertions = num_edits, per_position, insertions
        self.batch_size = batch_size
        self.vocabulary, self.allowed = _whole_word_tokens(encoder.tokenizer)
        # [MASK] beat a common word ("the") as the placeholder on held-out Wikipedia (30
        # sentences, 16 rounds: cosine 0.892 vs 0.883), though it sits far from every word.
        # It is never a proposal's word: a special token is not an allowed swap.
        tokenizer = encoder.tokenizer
        self.placeholder = tokenizer.mask_token or tokenizer.unk_token or "the"
        self.rng = random.Random(seed)
        self.calls = 0

    def __call__(self, examples: Sequence[int], texts: Sequence[str]) -> list[list[str]]:
        """Edits per text of ``texts``; ``examples[j]`` is the target index of ``texts[j]``."""
        if len(examples) != len(texts):
            raise InvertError(f"got {len(examples)} example indices for {len(texts)} texts")
        proposals: list[list[str]] = []
        for start in range(0, len(texts), self.batch_size):
            stop = start + self.batch_size
            proposals += self._propose(list(examples[start:stop]), list(texts[start:stop]))
        return proposals

    def _propose(self, examples: list[int], texts: list[str]) -> list[list[str]]:
        rows, owners, gaps = [], [], []  # a row per variant; gap: placeholder's offset, or None
        for j, text in enumerate(texts):
            words = text.split()
            variants = [(text, None)]
            # Distinct gaps: with insertions >= words + 1 every gap is tried.
            for gap in self.rng.sample(range(len(words) + 1), min(self.insertions, len(words) + 1)):
                head = " ".join(words[:gap])
                start = len(head) + (1 if head else 0)  # where the placeholder starts
                variants.append((" ".join(words[:gap] + [self.placeholder] + words[gap:]), start))
            for row, gap in variants:
                rows.append(row)
                owners.append(j)
                gaps.append(gap)
        scored = self._swap_gains(rows, [examples[j] for j in owners])
        # Swaps and insertions ranked apart: a placeholder is far from every word, so its
        # gains dwarf a swap's and would crowd the swaps out.
        ranked: list[tuple[list, list]] = [([], []) for _ in texts]
        for row, owner, gap, (spans, gains, tokens) in zip(rows, owners, gaps, scored, strict=True):
            for (start, end), row_gains, row_tokens in zip(spans, gains, tokens, strict=True):
                if gap is not None and start != gap:
                    continue  # in an insertion variant only the placeholder moves
                for gain, token in zip(row_gains, row_tokens, strict=True):
                    if gain != float("-inf"):
                        edit = " ".join((row[:start] + token + row[end:]).split())
                        ranked[owner][gap is not None].append((gain, edit))
        proposals = []
        for text, kinds in zip(texts, ranked, strict=True):
            edits: list[str] = []
            for cands in kinds:
                best = dict.fromkeys(c for _, c in sorted(cands, key=lambda c: -c[0]) if c != text)
                edits += list(best)[: self.num_edits]
            proposals.append(list(dict.fromkeys(edits)))
        return proposals

    def _swap_gains(
        self, rows: list[str], targets: list[int]
    ) -> list[tuple[list[tuple[int, int]], list[list[float]], list[list[str]]]]:
        """Per row: each word's character span, its best swap gains and their tokens."""
        enc = self.encoder
        batch = enc.tokenizer(
            rows, padding=True, truncation=True, max_length=enc.max_length,
            return_tensors="pt", return_offsets_mapping=True,
        )  # fmt: skip
        offsets = batch.pop("offset_mapping")
        ids = batch["input_ids"].to(enc.device)
        mask = batch["attention_mask"].to(enc.device)
        table = enc.input_embeddings.detach()
        inputs = table[ids].clone().requires_grad_(True)
        with torch.enable_grad():
            vectors = torch.nn.functional.normalize(enc.forward(inputs, mask), dim=-1)
            # Only the inputs' gradient: no weight gradients computed or left on the embedder.
            (grad,) = torch.autograd.grad((vectors * self.targets[targets]).sum(), inputs)
        self.calls += 1
        # Per row, each word's first and last word piece: a swap at the first replaces them all.
        words = [_word_pieces(batch.word_ids(b)) for b in range(len(rows))]
        flat = [(b, first) for b, row in enumerate(words) for first, _ in row]
        if not flat:
            return [([], [], []) for _ in rows]
        b_idx = torch.tensor([b for b, _ in flat], device=enc.device)
        t_idx = torch.tensor([t for _, t in flat], device=enc.device)
        g = grad[b_idx, t_idx]  # [P, hidden]
        with torch.no_grad():
            # Linearised change in cosine if the token at that position became each other token.
            gains = g @ table.T - (g * table[ids[b_idx, t_idx]]).sum(-1, keepdim=True)
            gains = gains.masked_fill(~self.allowed.to(gains.device), float("-inf"))
            top_gains, top_ids = gains.topk(self.per_position, dim=-1)
        out, k = [], 0
        for b, row in enumerate(words):
            spans, row_gains, row_tokens = [], [], []
            for first, last in row:
                spans.append((int(offsets[b, first, 0]), int(offsets[b, last, 1])))
                row_gains.append(top_gains[k].tolist())
                row_tokens.append([self.vocabulary[i] for i in top_ids[k].tolist()])
                k += 1
            out.append((spans, row_gains, row_tokens))
        return out


def _word_pieces(word_ids: list[int | None]) -> list[tuple[int, int]]:
    """``(first, last)`` token index of each word, in order (special tokens have no word)."""
    spans: dict[int, list[int]] = {}
    for t, w in enumerate(word_ids):
        if w is not None:
            spans.setdefault(w, [t, t])[1] = t
    return [(first, last) for first, last in spans.values()]


def _whole_word_tokens(tokenizer) -> tuple[list[str], torch.Tensor]:
    """Each vocabulary id's surface word, and which ids are whole words a swap may use.

    WordPiece marks continuations with ``##``; byte-level BPE (``Ġ``) and SentencePiece (``▁``)
    mark word starts instead. Special tokens and non-alphanumeric pieces are left out.
    """
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    pieces = [p or "" for p in pieces]
    marker = next((m for m in ("Ġ", "▁") if sum(p.startswith(m) for p in pieces) > len(pieces) // 10), None)
    special = set(tokenizer.all_special_tokens)
    words, allowed = [], []
    for piece in pieces:
        if marker is not None:
            word, ok = piece[len(marker) :], piece.startswith(marker)
        else:
            word, ok = piece, not piece.startswith("##")
        words.append(word)
        allowed.append(ok and piece not in special and bool(_WORD.fullmatch(word)))
    return words, torch.tensor(allowed)
