"""Checks a local text corpus before it is parsed: the error names the file and the place."""

from __future__ import annotations

import json
from pathlib import Path

from invert.errors import InvertError


class CorpusFileError(InvertError, ValueError):
    """A local corpus file that cannot be read as the text its suffix promises."""


def check_text_file(file: Path, jsonl: bool) -> None:
    """Names the file and the place when a text corpus is not UTF-8, or a JSON line is broken.

    Raises:
        CorpusFileError: Not UTF-8 text (with the byte offset), or a line that is not JSON.
    """
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusFileError(f"corpus file {file} is not UTF-8 text (byte {err.start}: "
                              f"{raw[err.start:err.start + 4]!r}); save it as UTF-8") from None  # fmt: skip
    if not jsonl or text.lstrip().startswith("["):  # a .json list is parsed whole
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusFileError(f"corpus file {file}: line {number} is not JSON ({err.msg}); "
                                  "a .jsonl file holds one JSON object per line") from None  # fmt: skip
