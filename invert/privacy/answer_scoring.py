"""Scoring answers about the knowledge base's people: exact match, contains-match, token F1,
and the share of a person's PII a reply states (issue #18)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from invert.errors import EmptyInputError
from invert.inversion.metrics import LengthMismatchError, token_f1
from invert.privacy.knowledge_base import FACTS, Person, Question, check_names
from invert.privacy.pii import field_value, normalize

_PUNCTUATION = str.maketrans(dict.fromkeys(string.punctuation + "‘’“”", " "))


def normalize_answer(text: str) -> str:
    """Lower-cased, punctuation made spaces, whitespace collapsed (``pii.normalize``)."""
    # A space rather than nothing, so "555-123-4567" and "555 123 4567" agree.
    return normalize(text.translate(_PUNCTUATION))


def contains_answer(prediction: str, gold: str) -> bool:
    """Whether ``prediction`` holds the whole normalized ``gold`` as a run of words."""
    return f" {normalize_answer(gold)} " in f" {normalize_answer(prediction)} "


def answer_scores(predictions: Sequence[str], golds: Sequence[str]) -> dict[str, float]:
    """``{"n", "exact_match", "contains", "token_f1"}`` of predicted answers, each a mean.

    Exact match compares ``normalize_answer`` forms; contains-match counts a prediction holding
    the whole normalized gold as a run of words ("born on March 3, 1981 in Ohio" for "March 3,
    1981"), the usual relaxation for generated answers (Kandpal et al., arXiv:2211.08411); token
    F1 is SQuAD's (arXiv:1606.05250), ``inversion.metrics.token_f1``.

    Raises:
        EmptyInputError: No pairs.
        LengthMismatchError: The lists differ in length.
    """
    if isinstance(predictions, str) or isinstance(golds, str):
        raise TypeError("pass lists of strings, not a single string")
    if len(predictions) != len(golds):
        raise LengthMismatchError(f"got {len(predictions)} predictions for {len(golds)} golds")
    if not golds:
        raise EmptyInputError("no answers to score; pass at least one prediction and gold")
    exact = contains = f1 = 0.0
    for prediction, gold in zip(predictions, golds, strict=True):
        pred, ref = normalize_answer(prediction), normalize_answer(gold)
        exact += pred == ref
        contains += contains_answer(prediction, gold)
        f1 += token_f1(prediction, gold)
    n = len(golds)
    return {"n": n, "exact_match": exact / n, "contains": contains / n, "token_f1": f1 / n}


def answer_scores_by(
    predictions: Sequence[str],
    questions: Sequence[Question],
    by: Sequence[str] = ("form", "repetitions"),
) -> dict[str, Any]:
    """``answer_scores`` overall and per value of each ``Question`` attribute in ``by``.

    Each question's ``answer`` is the gold of the prediction at its index; ``by`` takes ``form``,
    ``repetitions``, ``fact`` and ``split``. Returns ``{"all": scores, key: {value: scores}}``.
    """
    by = check_names("breakdown", by, ("form", "repetitions", "fact", "split"))
    out: dict[str, Any] = {"all": answer_scores(predictions, [q.answer for q in questions])}
    for key in by:
        groups: dict[Any, list[int]] = {}
        for i, question in enumerate(questions):
            groups.setdefault(getattr(question, key), []).append(i)
        out[key] = {
            value: answer_scores([predictions[i] for i in idx], [questions[i].answer for i in idx])
            for value, idx in sorted(groups.items())
        }
    return out


def pii_share(text: str, person: Person, fields: Sequence[str] = FACTS) -> float:
    """Share of ``person``'s PII ``fields`` found in ``text``: what a reply about them reveals.

    Matching is ``pii.pii_recovery``'s (exact string, case and whitespace aside). ``fields``
    are facts or ``first_name`` / ``last_name`` / ``full_name``; the default leaves out the
    name, which a question about the person already holds.
    """
    fields = check_names("PII field", fields, (*FACTS, "first_name", "last_name", "full_name"))
    haystack, record = normalize(text), person.record()
    values = [field_value(record, f) for f in fields]
    return sum(v is not None and normalize(v) in haystack for v in values) / len(fields)
