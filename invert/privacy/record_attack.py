"""A schema-aware inversion attack on stored records: attribute inference, then template filling.

Vector stores of structured text (clinical notes, customer records) are written from a few
templates with personal fields slotted in. An attacker who knows that schema, for instance
from a handful of leaked or public records of the same kind, does better than a generic
inverter:

1. **Attribute inference** (Song & Raghunathan 2020, arXiv:2004.00053, Sec. 5): a ridge map from
   a stored vector to the embedding of each field value, fitted on the attacker's auxiliary
   records. Multi-word values (dates, cities, addresses) are read word slot by word slot, so a
   date never seen whole is still composed from its month, day and year.
2. **Template filling with the embedder in the loop** (the test-time use of the embedder that
   makes vec2text precise, arXiv:2310.06816): each record's template and fields are chosen by
   coordinate ascent on the cosine between the filled-in text's embedding and the stored
   vector, among the top candidates of step 1.

The attack is only as good as its schema: a field absent from the auxiliary records, or a value
made of words never seen in its slot, cannot come back. It is precise where the embedding is,
which is what makes it sensitive to noise defenses (vec2text's Sec. 8 finding).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from invert.embedders.base import Embedder, check_embeddings
from invert.errors import EmptyInputError, InvertError

# A template is a tuple of segments: literal text (str) or a field slot (("field", name)).
Template = tuple[Any, ...]


def load_records(spec: Any) -> list[dict[str, str]]:
    """Records with ``text`` and field values, from ``{source: synthetic_pii, n, seed}`` or a
    ``.json`` list of dicts.

    Raises:
        EmptyInputError: The spec gives no records.
    """
    if isinstance(spec, Mapping) and spec.get("source") == "synthetic_pii":
        from invert.data.synthetic_pii import synthetic_pii_records

        records = synthetic_pii_records(int(spec.get("n", 5000)), int(spec.get("seed", 0)))
    else:
        records = json.loads(Path(str(spec)).expanduser().read_text(encoding="utf-8"))
    if not records:
        raise EmptyInputError(f"no records in {spec!r}; the attack needs auxiliary records")
    return records


def derive_template(record: Mapping[str, str], fields: Sequence[str]) -> Template | None:
    """Replaces each field's value in ``record["text"]`` by a slot.

    A field whose value the text does not contain is left out of the template (not every
    template carries every field). Longer values are placed first so that a name inside an
    address (``"610 Laura Estates"``) does not claim the address's span.

    Returns:
        The template, or None when the text contains none of the fields.
    """
    text = record["text"]
    spans: list[tuple[int, int, str]] = []
    for field in sorted(fields, key=lambda f: -len(str(record.get(f) or ""))):
        value = str(record.get(field) or "")
        if not value:
            continue
        start = 0
        while (pos := text.find(value, start)) >= 0:
            if all(pos >= e or pos + len(value) <= s for s, e, _ in spans):
                spans.append((pos, pos + len(value), field))
                break
            start = pos + 1
    if not spans:
        return None
    segments: list[Any] = []
    cursor = 0
    for start, end, field in sorted(spans):
        if start > cursor:
            segments.append(text[cursor:start])
        segments.append(("field", field))
        cursor = end
    if cursor < len(text):
        segments.append(text[cursor:])
    return tuple(segments)


def render(template: Template, values: Mapping[str, str]) -> str:
    """Fills a template's slots with ``values``."""
    return "".join(values[s[1]] if isinstance(s, tuple) else s for s in template)


def _slots(template: Template) -> list[str]:
    return [s[1] for s in template if isinstance(s, tuple)]


class RecordAttack:
    """Attribute inference + template filling against vectors of records with a known schema.

    Args:
        embedder: The embedder that filled the store (the attacker queries it, as vec2text does).
        fields: Field names to recover (keys of the auxiliary records).
        top_k: Candidate templates, and candidate words per word slot, tried in each
            coordinate-ascent round.
        rounds: Coordinate-ascent sweeps over template and fields.
        ridge: L2 penalty of the attribute-inference maps.
        max_classes: A word slot with more distinct words than this is always read by
            regressing the word's embedding; a smaller one by that or a least-squares
            classifier, whichever ranks held-out auxiliary records better.
        batch_size: Texts per encoder call.
    """

    def __init__(
        self,
        embedder: Embedder,
        fields: Sequence[str],
        top_k: int = 8,
        rounds: int = 2,
        ridge: float = 1e-2,
        max_classes: int = 2000,
        batch_size: int = 256,
    ) -> None:
        if not fields:
            raise InvertError("name the record fields to recover, e.g. ['first_name', 'city']")
        if top_k < 1 or rounds < 0:
            raise InvertError(f"top_k must be >= 1 and rounds >= 0, got {top_k} and {rounds}")
        self.embedder, self.fields = embedder, list(fields)
        self.top_k, self.rounds, self.ridge = top_k, rounds, ridge
        self.batch_size, self.max_classes = batch_size, max_classes
        self.templates: list[Template] = []

    # --- fitting ------------------------------------------------------------------------------

    def fit(self, records: Sequence[Mapping[str, str]], show_progress: bool = True) -> RecordAttack:
        """Derives templates and fits the attribute-inference maps on auxiliary records.

        Raises:
            EmptyInputError: No record's text contains any of the fields.
        """
        usable, templates = [], []
        for record in records:
            present = [f for f in self.fields if record.get(f)]
            template = derive_template(record, present)
            if template is not None:
                usable.append(record)
                templates.append(template)
        if not usable:
            raise EmptyInputError(
                f"no auxiliary record contains any of the fields {self.fields} verbatim; "
                "pass records whose 'text' includes each field value"
            )
        # A template seen once is most likely a coincidence (a first name equal to the last).
        seen = Counter(templates)
        keep = [i for i, t in enumerate(templates) if seen[t] > 1 or len(seen) == len(templates)]
        usable, templates = [usable[i] for i in keep], [templates[i] for i in keep]
        self.templates = sorted(set(templates), key=templates.index)
        index = {t: i for i, t in enumerate(self.templates)}
        emb = F.normalize(
            self.embedder.encode([r["text"] for r in usable], self.batch_size, show_progress), dim=1
        ).double()
        onehot = torch.zeros(len(usable), len(self.templates), dtype=torch.float64)
        onehot[torch.arange(len(usable)), torch.tensor([index[t] for t in templates])] = 1.0
        self.template_map = self._solve(emb, onehot)
        self.field_maps: dict[
            str, dict[int, list[tuple[torch.Tensor, list[str], torch.Tensor | None]]]
        ] = {}
        self.count_prior: dict[str, Counter] = {}
        for field in self.fields:
            self.field_maps[field], self.count_prior[field] = self._fit_field(field, usable, emb)
        return self

    def _solve(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gram = x.T @ x + self.ridge * torch.eye(x.shape[1], dtype=x.dtype)
        return torch.linalg.solve(gram, x.T @ y).float()

    def _fit_field(self, field: str, records: Sequence[Mapping[str, str]], emb: torch.Tensor):
        """One ridge map per (word count, word slot), read out as :meth:`_pick_readout` decides:
        the slot word's one-hot label (table None) or its embedding (the word table)."""
        by_count: dict[int, list[int]] = defaultdict(list)
        for i, record in enumerate(records):
            if record.get(field) and str(record[field]) in record["text"]:
                by_count[len(str(record[field]).split())].append(i)
        maps: dict[int, list[tuple[torch.Tensor, list[str], torch.Tensor | None]]] = {}
        prior = Counter({c: len(rows) for c, rows in by_count.items()})
        for count, rows in by_count.items():
            if len(rows) < max(5, 0.01 * len(records)):
                continue  # too rare a shape to learn; its values cannot come back
            words = [str(records[i][field]).split() for i in rows]
            slots = []
            for j in range(count):
                vocab = sorted({w[j] for w in words})
                pos = {w: k for k, w in enumerate(vocab)}
                labels = torch.tensor([pos[w[j]] for w in words])
                table = F.normalize(self.embedder.encode(vocab, self.batch_size, False), dim=1)
                use_table = self._pick_readout(emb[rows], labels, table)
                target = table[labels] if use_table else F.one_hot(labels, len(vocab))
                slots.append(
                    (self._solve(emb[rows], target.double()), vocab, table if use_table else None)
                )
            maps[count] = slots
        return maps, prior

    def _pick_readout(self, x: torch.Tensor, labels: torch.Tensor, table: torch.Tensor) -> bool:
        """True to regress the word's embedding, False for a least-squares classifier.

        Regression shares strength between words that embed alike (a bag-of-words embedder
        reads a name straight off the vector); a classifier can separate words whose
        embeddings alone are close (day numbers under MiniLM). Which one puts the true word
        in the top ``top_k`` more often is decided on a held-out fifth of the records.
        """
        if len(table) > self.max_classes:
            return True
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        cut = len(x) // 5
        if cut < 5:
            return len(table) > len(x) // 2  # too few rows to compare: classes need examples
        test, train = order[:cut], order[cut:]
        k = min(self.top_k, len(table))
        hits = []
        for use_table in (False, True):
            target = table[labels] if use_table else F.one_hot(labels, len(table))
            w_map = self._solve(x[train], target[train].double())
            scores = x[test].float() @ w_map
            if use_table:
                scores = F.normalize(scores, dim=1) @ table.T
            top = scores.topk(k, dim=1).indices
            hits.append((top == labels[test, None]).any(dim=1).float().mean().item())
        return hits[1] > hits[0]

    # --- attacking ----------------------------------------------------------------------------

    def candidates(self, vectors: torch.Tensor) -> tuple[list[list[int]], list[dict[str, Any]]]:
        """Attribute inference alone: top templates and, per field, word count and word slot,
        the top words for each vector.

        Returns:
            Per vector, template indices (best first), and ``{field: {count: [[words of slot
            0], [words of slot 1], ...]}}`` with counts ordered by how common they are.
        """
        return self._candidates(self._unit(vectors))

    def _unit(self, vectors: torch.Tensor) -> torch.Tensor:
        return F.normalize(check_embeddings(vectors, self.embedder.dim, "the record attack"), dim=1)

    def _candidates(self, x: torch.Tensor) -> tuple[list[list[int]], list[dict[str, Any]]]:
        top_t = (x @ self.template_map).topk(min(self.top_k, len(self.templates)), dim=1).indices
        per_vector: list[dict[str, Any]] = [{} for _ in range(len(x))]
        for field, maps in self.field_maps.items():
            counts = sorted(maps, key=lambda c: -self.count_prior[field][c])
            for count in counts:
                slots = []
                for w_map, vocab, table in maps[count]:
                    sims = x @ w_map if table is None else F.normalize(x @ w_map, dim=1) @ table.T
                    slots.append((sims.topk(min(self.top_k, len(vocab)), dim=1).indices, vocab))
                for i in range(len(x)):
                    words = [[vocab[k] for k in idx[i].tolist()] for idx, vocab in slots]
                    per_vector[i].setdefault(field, {})[count] = words
        return top_t.tolist(), per_vector

    def invert(
        self, vectors: torch.Tensor, show_progress: bool = True
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Reconstructs each vector's record by coordinate ascent on the embedder's cosine.

        One round tries, for every vector: its top templates; per field, the top composition
        of each other word count; per word slot of the current value, its top words. A trial
        is kept when it raises the cosine to the vector; every round's trials of all vectors go
        to the embedder in shared batches.

        Args:
            vectors: ``[n, dim]`` stored (possibly defended) vectors.
            show_progress: A progress bar over coordinate-ascent steps.

        Returns:
            The reconstructed texts and, per vector, the inferred field values.
        """
        if not self.templates:
            raise InvertError("call fit(auxiliary_records) before invert()")
        x = self._unit(vectors)
        top_t, cands = self._candidates(x)
        states = [
            _State(t[0], {f: [w[0] for w in next(iter(c[f].values()))] for f in c})
            for t, c in zip(top_t, cands, strict=True)
        ]
        texts = [self._render(s) for s in states]
        best = self._cosines(texts, x)
        widest = max((max(m) for m in self.field_maps.values() if m), default=0)
        steps: list[tuple[str, str, int]] = [("template", "", 0)]
        for field in self.fields:
            steps += [("shape", field, 0)] + [("slot", field, j) for j in range(widest)]
        steps *= self.rounds
        for kind, field, slot in tqdm(steps, desc="record attack", disable=not show_progress):
            trials: list[tuple[int, _State, str]] = []
            for i, state in enumerate(states):
                for trial in self._trials(kind, field, slot, state, top_t[i], cands[i]):
                    text = self._render(trial)
                    if text != texts[i]:
                        trials.append((i, trial, text))
            if not trials:
                continue
            sims = self._cosines([t[2] for t in trials], x[[t[0] for t in trials]])
            for (i, trial, text), sim in zip(trials, sims.tolist(), strict=True):
                if sim > best[i]:
                    best[i], states[i], texts[i] = sim, trial, text
        fields = [
            {f: " ".join(s.words[f]) for f in _slots(self.templates[s.template]) if f in s.words}
            for s in states
        ]
        return texts, fields

    def _trials(self, kind, field, slot, state: _State, top_t, cands) -> list[_State]:
        if kind == "template":
            return [_State(t, state.words) for t in top_t if t != state.template]
        if field not in _slots(self.templates[state.template]) or field not in cands:
            return []
        current = state.words[field]
        if kind == "shape":
            return [
                _State(state.template, {**state.words, field: [w[0] for w in words]})
                for count, words in cands[field].items()
                if count != len(current)
            ]
        if slot >= len(current):
            return []
        options = cands[field][len(current)][slot]
        return [
            _State(
                state.template, {**state.words, field: [*current[:slot], w, *current[slot + 1 :]]}
            )
            for w in options
            if w != current[slot]
        ]

    def _render(self, state: _State) -> str:
        return render(
            self.templates[state.template], {f: " ".join(w) for f, w in state.words.items()}
        )

    def _cosines(self, texts: list[str], targets: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(self.embedder.encode(texts, self.batch_size, False), dim=1)
        return (emb * targets.to(emb.device)).sum(dim=1).cpu()


class _State(NamedTuple):
    """One vector's current guess: a template index and each field's words."""

    template: int
    words: dict[str, list[str]]
