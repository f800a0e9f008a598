"""Turns a named corpus into deterministic train/validation/test splits of short texts.

Each text goes to a split by a seeded hash of the text itself, so the assignment does not
depend on corpus order, on ``max_examples`` or on the machine, and a duplicate text can never
sit in two splits (duplicates are removed after truncation, which can create new ones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from invert.data.corpora import DEFAULT_CORPUS, corpus_name, load_raw_corpus
from invert.errors import EmptyInputError

SPLITS = ("train", "validation", "test")
_TOKENIZE_CHUNK = 2048  # texts per tokenizer call: batched (fast) yet bounded in memory


def clean_texts(texts: Iterable[str], min_words: int = 3) -> list[str]:
    """Collapses whitespace, strips, and drops texts with fewer than ``min_words`` words."""
    cleaned = (" ".join(str(text).split()) for text in texts)
    return [text for text in cleaned if len(text.split()) >= min_words]


def truncate_texts(texts: list[str], max_tokens: int, tokenizer: Any = None) -> list[str]:
    """Cuts each text to its first ``max_tokens`` tokens (whitespace words without a tokenizer).

    With a fast tokenizer the cut is made in the original string at a token's character offset,
    backing off to a whole word, so casing and spacing survive (decoding an uncased tokenizer
    would lowercase the text). A final pass re-tokenizes and trims any text still too long.

    Args:
        texts: Cleaned texts.
        max_tokens: Most tokens a text may keep; special tokens are not counted.
        tokenizer: A Hugging Face tokenizer, or None for whitespace words.

    Returns:
        One text per input, in order; a text that cannot be cut comes back empty.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if tokenizer is None:
        return [" ".join(text.split()[:max_tokens]) for text in texts]
    if getattr(tokenizer, "is_fast", False):
        cut = _cut_at_offsets(texts, max_tokens, tokenizer)
    else:
        cut = _cut_by_decoding(texts, max_tokens, tokenizer)
    changed = [
        i for i, (before, after) in enumerate(zip(texts, cut, strict=True)) if before != after
    ]
    for i, text in zip(
        changed, _enforce_limit([cut[i] for i in changed], max_tokens, tokenizer), strict=True
    ):
        cut[i] = text  # texts that were not cut already fit
    return cut


def _encode(tokenizer: Any, texts: list[str], max_tokens: int, offsets: bool = False) -> Any:
    # max_tokens + 1 tells "fits" from "was cut" without tokenizing whole long paragraphs.
    return tokenizer(
        texts,
        add_special_tokens=False,
        truncation=True,
        max_length=max_tokens + 1,
        return_offsets_mapping=offsets,
        return_attention_mask=False,
        return_token_type_ids=False,
    )


def _cut_at_offsets(texts: list[str], max_tokens: int, tokenizer: Any) -> list[str]:
    out: list[str] = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = texts[start : start + _TOKENIZE_CHUNK]
        enc = _encode(tokenizer, chunk, max_tokens, offsets=True)
        for i, text in enumerate(chunk):
            if len(enc["input_ids"][i]) <= max_tokens:
                out.append(text)
                continue
            words, keep = enc.word_ids(i), max_tokens
            if words[keep] is not None and words[keep] == words[keep - 1]:
                first = keep - 1  # the cut splits a word: keep only the words before it
                while first > 0 and words[first - 1] == words[keep]:
                    first -= 1
                keep = first or keep  # a single over-long word: cut inside it
            out.append(text[: enc["offset_mapping"][i][keep - 1][1]].strip())
    return out


def _cut_by_decoding(texts: list[str], max_tokens: int, tokenizer: Any) -> list[str]:
    out: list[str] = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = texts[start : start + _TOKENIZE_CHUNK]
        ids = _encode(tokenizer, chunk, max_tokens)["input_ids"]
        for text, row in zip(chunk, ids, strict=True):
            fits = len(row) <= max_tokens
            out.append(
                text
                if fits
                else tokenizer.decode(row[:max_tokens], skip_special_tokens=True).strip()
            )
    return out


def _enforce_limit(texts: list[str], max_tokens: int, tokenizer: Any, rounds: int = 8) -> list[str]:
    """Drops trailing words from texts that re-tokenize to more than ``max_tokens`` tokens."""
    texts = list(texts)
    todo = [i for i, text in enumerate(texts) if text]
    for _ in range(rounds):
        if not todo:
            break
        lengths = [
            len(ids)
            for ids in _encode(tokenizer, [texts[i] for i in todo], max_tokens)["input_ids"]
        ]
        todo = [i for i, n in zip(todo, lengths, strict=True) if n > max_tokens]
        for i in todo:
            texts[i] = texts[i].rsplit(" ", 1)[0] if " " in texts[i] else ""
        todo = [i for i in todo if texts[i]]
    for i in todo:  # still too long after every round: give up on it
        texts[i] = ""
    return texts


def hash_unit(text: str, seed: int, salt: str) -> float:
    """A uniform number in [0, 1) from sha256 of the seed, a salt and the text (stable everywhere)."""
    digest = hashlib.sha256(f"{seed}:{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(
    text: str, seed: int = 0, val_fraction: float = 0.05, test_fraction: float = 0.05
) -> str:
    """The split ("train", "validation" or "test") that ``text`` belongs to."""
    return _bucket(hash_unit(text, seed, "split"), val_fraction, test_fraction)


def _bucket(u: float, val_fraction: float, test_fraction: float) -> str:
    if u < test_fraction:
        return "test"
    return "validation" if u < test_fraction + val_fraction else "train"


def prepare_corpus(
    name: str = DEFAULT_CORPUS,
    max_tokens: int = 32,
    tokenizer: Any = None,
    seed: int = 0,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    max_examples: int | None = None,
    min_words: int = 3,
    path: str | None = None,
    **corpus_kwargs: Any,
) -> Any:
    """Loads, cleans, truncates, de-duplicates and splits a corpus for inversion training.

    Args:
        name: A corpus name (see ``list_corpora()``), ``file:PATH`` or ``hf:DATASET``.
        max_tokens: Each text keeps at most this many tokens of ``tokenizer``.
        tokenizer: The tokenizer that counts tokens (the inverter's); None counts words.
        seed: Seeds the subsample and the split hash.
        val_fraction: Expected share of texts in "validation".
        test_fraction: Expected share of texts in "test".
        max_examples: Keep at most this many texts, picked by seeded hash before splitting.
        min_words: Drop texts with fewer words (before truncation).
        path: A local file for the file corpus (``conf/data/file.yaml``'s ``data.path``):
            with ``name="file"`` or the same file as ``file:PATH``.
        **corpus_kwargs: Passed to the corpus loader.

    Returns:
        ``datasets.DatasetDict`` with "train", "validation", "test", each with a ``text``
        column, ordered by the split hash (deterministic, and shuffled with respect to source).

    Raises:
        EmptyInputError: Nothing is left after cleaning, or a split with a non-zero fraction
            is empty.
        ValueError: Fractions or sizes out of range, or ``path`` conflicts with ``name``.
    """
    import datasets

    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
            f"[0, 1) and sum to less than 1, leaving texts for training"
        )
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be at least 1 or None, got {max_examples}")

    name = corpus_name(name, path)
    texts = clean_texts(load_raw_corpus(name, **corpus_kwargs), min_words)
    texts = list(dict.fromkeys(t for t in truncate_texts(texts, max_tokens, tokenizer) if t))
    if not texts:
        raise EmptyInputError(
            f"corpus {name!r} has no text left with at least {min_words} words; "
            f"lower min_words or pick another corpus"
        )
    if max_examples is not None and len(texts) > max_examples:
        texts = sorted(texts, key=lambda t: hash_unit(t, seed, "sample"))[:max_examples]

    buckets: dict[str, list[tuple[float, str]]] = {split: [] for split in SPLITS}
    for text in texts:
        u = hash_unit(text, seed, "split")
        buckets[_bucket(u, val_fraction, test_fraction)].append((u, text))
    fractions = {
        "train": 1 - val_fraction - test_fraction,
        "validation": val_fraction,
        "test": test_fraction,
    }
    for split, rows in buckets.items():
        if fractions[split] > 0 and not rows:
            raise EmptyInputError(
                f"corpus {name!r}: the {split} split is empty ({len(texts)} texts, "
                f"{split} fraction {fractions[split]}); use more texts or a larger fraction"
            )
    features = datasets.Features({"text": datasets.Value("string")})
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"text": [t for _, t in sorted(rows)]}, features=features
            )
            for split, rows in buckets.items()
        }
    )
