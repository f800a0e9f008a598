"""A synthetic private corpus with canaries, and the tokenization every memorization probe shares.

Records are Faker people (``synthetic_pii_records``: names, birthdays, addresses, phones). One
pool of records is split at random into members (trained on), non-members (held out) and an
optional population split (for a reference model), so membership inference compares samples of
one distribution, never a time shift (Duan et al., MIMIR, arXiv:2402.07841). Canaries follow
Carlini et al., "The Secret Sharer" (arXiv:1802.08232): a template holding a random secret,
inserted ``r`` times for each repetition count ``r`` in (1, 2, 4, ...).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from invert.data.corpora import load_raw_corpus
from invert.data.synthetic_pii import synthetic_pii_records
from invert.errors import EmptyInputError, InvertError, unknown_name

DEFAULT_TEMPLATE = "The account PIN of {first_name} {last_name} is {secret}."
IDENTITY_TEMPLATE = "The emergency contact of {first_name} {last_name} is {secret}."
SECRET_KINDS = ("digits", "identity")


class SecretSpace(Protocol):
    """The randomness space R a canary's secret is drawn from."""

    size: int | None  # |R|, or None when R cannot be enumerated

    def sample(self, n: int, seed: int) -> list[str]: ...

    def enumerate(self) -> list[str]: ...


@dataclass(frozen=True)
class DigitSpace:
    """All ``n_digits``-digit strings (leading zeros allowed): |R| = 10**n_digits."""

    n_digits: int

    @property
    def size(self) -> int:
        return 10**self.n_digits

    def sample(self, n: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [f"{v:0{self.n_digits}d}" for v in rng.integers(0, self.size, size=n)]

    def enumerate(self) -> list[str]:
        return [f"{v:0{self.n_digits}d}" for v in range(self.size)]


@dataclass(frozen=True)
class IdentitySpace:
    """Faker identities ("Name Surname, born DATE, phone PHONE"); too large to enumerate."""

    size: None = None

    def sample(self, n: int, seed: int) -> list[str]:
        # Offset: candidates must not replay the corpus's own Faker stream.
        records = synthetic_pii_records(n, seed=1_000_003 + seed)
        return [
            f"{r['first_name']} {r['last_name']}, born {r['date']}, phone {r['phone']}"
            for r in records
        ]

    def enumerate(self) -> list[str]:
        raise InvertError("Faker identities cannot be enumerated; use exposure method='skewnorm'")


def secret_space(kind: str = "digits", n_digits: int = 9) -> DigitSpace | IdentitySpace:
    """The secret space named by ``kind`` (``digits`` or ``identity``)."""
    if kind == "digits":
        if n_digits < 1:
            raise InvertError(f"secret_digits must be >= 1, got {n_digits}")
        return DigitSpace(n_digits)
    if kind == "identity":
        return IdentitySpace()
    raise unknown_name("secret kind", kind, SECRET_KINDS)


@dataclass(frozen=True)
class Canary:
    """One inserted secret: ``text = prefix + secret + suffix``, seen ``repetitions`` times."""

    prefix: str
    secret: str
    suffix: str
    repetitions: int

    @property
    def text(self) -> str:
        return self.prefix + self.secret + self.suffix

    def with_secret(self, secret: str) -> str:
        """The canary's text with another candidate secret."""
        return self.prefix + secret + self.suffix


@dataclass
class PrivateCorpus:
    """Members, non-members, population and canaries of one randomly split pool of records."""

    members: list[str]
    non_members: list[str]
    population: list[str]
    canaries: list[Canary]
    space: DigitSpace | IdentitySpace
    seed: int
    train_texts: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # text -> its group (e.g. person)

    def summary(self) -> dict[str, Any]:
        """Counts only: no record text (safe to log)."""
        reps = sorted({c.repetitions for c in self.canaries})
        return {
            "n_members": len(self.members),
            "n_non_members": len(self.non_members),
            "n_population": len(self.population),
            "n_canaries": len(self.canaries),
            "canary_repetitions": reps,
            "n_train_texts": len(self.train_texts),
            "secret_space_size": self.space.size,
        }


def truncate_words(text: str, max_chars: int) -> str:
    """``text`` cut at the last space within ``max_chars`` characters (hard cut if none)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars + 1)
    return text[: cut if cut > 0 else max_chars]


def random_split(items: Sequence[Any], sizes: Sequence[int], seed: int) -> list[list[Any]]:
    """Splits ``items`` into disjoint parts of ``sizes`` by one seeded random permutation.

    Raises:
        EmptyInputError: The parts ask for more items than there are.
    """
    if sum(sizes) > len(items):
        raise EmptyInputError(
            f"asked for {sum(sizes)} texts ({list(sizes)}) but the corpus holds {len(items)}; "
            f"lower n_members/n_non_members/n_population or use a larger corpus"
        )
    order = np.random.default_rng(seed).permutation(len(items))
    parts, start = [], 0
    for size in sizes:
        parts.append([items[i] for i in order[start : start + size]])
        start += size
    return parts


def make_canaries(
    repetitions: Sequence[int],
    per_repetition: int,
    space: DigitSpace | IdentitySpace,
    seed: int,
    template: str | None = None,
) -> list[Canary]:
    """One canary per (repetition count, copy), each with its own name and a uniform secret.

    Each canary names a different person, so canaries do not share a prefix and their exposures
    are measured independently.
    """
    if any(int(r) < 1 for r in repetitions):
        raise InvertError(f"canary repetitions must be >= 1, got {list(repetitions)}")
    if template is None:
        template = IDENTITY_TEMPLATE if isinstance(space, IdentitySpace) else DEFAULT_TEMPLATE
    if template.count("{secret}") != 1:
        raise InvertError(f"canary template needs exactly one '{{secret}}', got {template!r}")
    n = len(repetitions) * per_repetition
    people = synthetic_pii_records(n, seed=2_000_003 + seed)  # not the corpus's own people
    secrets = space.sample(n, seed=3_000_017 + seed)
    canaries = []
    for i, (person, secret) in enumerate(zip(people, secrets, strict=True)):
        prefix, suffix = template.format_map(_KeepSecret(person)).split("{secret}")
        canaries.append(Canary(prefix, secret, suffix, int(repetitions[i // per_repetition])))
    return canaries


class _KeepSecret(dict):
    """format_map helper that leaves ``{secret}`` in place."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def build_private_corpus(
    n_members: int = 256,
    n_non_members: int = 256,
    n_population: int = 0,
    canary_repetitions: Sequence[int] = (1, 2, 4, 8, 16),
    canaries_per_repetition: int = 1,
    secret_kind: str = "digits",
    secret_digits: int = 9,
    canary_template: str | None = None,
    source: str = "synthetic_pii",
    max_chars: int | None = None,
    seed: int = 0,
) -> PrivateCorpus:
    """Builds the corpus: a random member/non-member/population split plus repeated canaries.

    Args:
        n_members: Records to train on.
        n_non_members: Held-out records of the same pool (membership negatives).
        n_population: More held-out records, for training a reference model.
        canary_repetitions: How often each group of canaries is inserted.
        canaries_per_repetition: Canaries per repetition count.
        secret_kind: ``digits`` (exactly enumerable for small ``secret_digits``) or ``identity``.
        secret_digits: Digits of a numeric secret (|R| = 10**secret_digits).
        canary_template: Format string with ``{secret}`` (and optionally Faker fields such as
            ``{first_name}``); a default per secret kind when None.
        source: ``synthetic_pii`` or any corpus name ``load_raw_corpus`` knows.
        max_chars: Cut each record at the last word boundary within this many characters
            (shorter sequences train faster; the PII fields come first in most templates).
        seed: Seeds the records, the split, the canaries and the training order.

    Returns:
        A :class:`PrivateCorpus` whose ``train_texts`` are members plus canary copies, shuffled.
    """
    total = n_members + n_non_members + n_population
    if n_members < 1 or n_non_members < 1:
        raise EmptyInputError("need at least one member and one non-member record")
    def distinct(texts: list[str]) -> list[str]:
        if max_chars:
            texts = [truncate_words(t, max_chars) for t in texts]
        return list(dict.fromkeys(texts))  # a duplicate would be member and non-member at once

    if source == "synthetic_pii":
        n = total
        pool = distinct([r["text"] for r in synthetic_pii_records(n, seed=seed)])
        while len(pool) < total:  # records cut short can repeat: draw more (a seeded prefix)
            n += 2 * (total - len(pool)) + 16
            pool = distinct([r["text"] for r in synthetic_pii_records(n, seed=seed)])
    else:
        pool = distinct(load_raw_corpus(source))
    members, non_members, population = random_split(
        pool, [n_members, n_non_members, n_population], seed
    )
    space = secret_space(secret_kind, secret_digits)
    canaries = make_canaries(
        canary_repetitions, canaries_per_repetition, space, seed, canary_template
    )
    train = members + [c.text for c in canaries for _ in range(c.repetitions)]
    train = [train[i] for i in np.random.default_rng(seed + 1).permutation(len(train))]
    return PrivateCorpus(members, non_members, population, canaries, space, seed, train)


# --- tokenization shared by training and probes -----------------------------------------------


class CharTokenizer:
    """Character-level tokenizer for tiny from-scratch models: printable ASCII plus specials.

    Ids: 0 pad, 1 bos, 2 unk, then ``string.printable``. Tiny test models stay tiny (vocab 103)
    and every digit of a secret is one token.
    """

    pad_token_id, bos_token_id, unk_token_id = 0, 1, 2
    eos_token_id = None

    def __init__(self) -> None:
        self._chars = list(string.printable)
        self._ids = {c: i + 3 for i, c in enumerate(self._chars)}

    @property
    def vocab_size(self) -> int:
        return len(self._chars) + 3

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self._ids.get(c, self.unk_token_id) for c in text]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(self._chars[i - 3] if i >= 3 else "" for i in ids)


def load_probe_tokenizer(name: str) -> Any:
    """``char`` for :class:`CharTokenizer`, else a causal LM tokenizer (``smollm2``, a path)."""
    if name == "char":
        return CharTokenizer()
    from invert.models.pretrained_lm import load_tokenizer

    return load_tokenizer(name)


def bos_id(tokenizer: Any) -> int:
    """The id prepended to every sequence, so its first real token is scored too."""
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise InvertError("the tokenizer has no bos, eos or pad token; set tokenizer.bos_token")


def tokenize(tokenizer: Any, texts: Sequence[str], add_bos: bool = True) -> list[list[int]]:
    """Token ids of each text without the tokenizer's specials, with ``bos_id`` prepended."""
    if isinstance(texts, str):
        raise TypeError("pass a list of texts, not a single string")
    if isinstance(tokenizer, CharTokenizer):
        ids = [tokenizer.encode(t) for t in texts]
    else:
        ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    head = [bos_id(tokenizer)] if add_bos else []
    return [head + list(row) for row in ids]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pads id lists into ``(input_ids, attention_mask)`` tensors."""
    if not rows:
        raise EmptyInputError("no sequences to pad")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


class LMDataset(torch.utils.data.Dataset):
    """Token id lists for the shared Trainer (each text with ``bos_id`` prepended)."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], max_length: int | None = None):
        rows = tokenize(tokenizer, texts)
        self.rows = [r[:max_length] for r in rows] if max_length else rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> list[int]:
        return self.rows[i]


def lm_collate(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    """Batch for ``model(**batch).loss``: padded ids, mask, and labels with padding as -100."""
    ids, mask = pad_batch(rows)
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
