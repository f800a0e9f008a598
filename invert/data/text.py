"""Word-level tokenization shared by the metrics, the bag-of-words model and the searches."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def word_tokens(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (``\\w+`` runs), as token F1 counts them."""
    return _WORD.findall(text.lower())
