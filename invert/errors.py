"""Errors that name their fix. Every error invert raises on bad input is an ``InvertError``."""

from __future__ import annotations


class InvertError(Exception):
    """Base class for invert's input and configuration errors."""


class DimensionMismatchError(InvertError, ValueError):
    """An embedding's dimension differs from the one a model or store expects."""


class InvalidEmbeddingError(InvertError, ValueError):
    """Embeddings hold NaN/inf, have the wrong rank, or are empty."""


class EmptyInputError(InvertError, ValueError):
    """Empty text, an empty list of texts, or a corpus with nothing left after cleaning."""


class UnknownNameError(InvertError, ValueError):
    """A model, embedder or corpus name that invert does not know."""


class HubUnavailableError(InvertError, OSError):
    """A Hugging Face hub id was asked for while hub access is off."""


class CheckpointError(InvertError, OSError):
    """A checkpoint folder is missing, corrupt, or not one of invert's."""


class RunFolderInUseError(InvertError, FileExistsError):
    """A new run was pointed at a folder that holds another run's results or checkpoints."""


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Builds the error for an unknown ``kind`` name, listing the known ones."""
    return UnknownNameError(
        f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}"
    )


def check_counts(**counts: int | None) -> None:
    """Each count given (not None) must be a whole number of at least 1.

    Raises:
        InvertError: Names the argument and its value.
    """
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvertError(f"{name} must be a whole number >= 1, got {value!r}")
