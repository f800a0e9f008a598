"""Typed configs from plain mappings: every default stated once, an unknown key named.

Hydra composes plain dicts; the library reads them through these dataclasses, so a typo in a
key fails at once with the list of known keys instead of falling back to a silent default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from invert.errors import InvertError

T = TypeVar("T")


class UnknownConfigKeyError(InvertError, KeyError):
    """A config mapping names a key its schema does not have."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def from_mapping(cls: type[T], values: Mapping[str, Any] | T | None, where: str = "") -> T:
    """Builds the dataclass ``cls`` from ``values``; missing keys take the dataclass defaults.

    Nested dataclass fields are built from nested mappings the same way.

    Args:
        cls: A dataclass type.
        values: A mapping (e.g. a Hydra config block), an instance of ``cls``, or None.
        where: The config path, for the error message (e.g. ``"eval.search"``).

    Raises:
        UnknownConfigKeyError: ``values`` has a key ``cls`` does not define; lists the known ones.
    """
    if isinstance(values, cls):
        return values
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(set(values) - set(fields)):
        place = f" in {where}" if where else ""
        raise UnknownConfigKeyError(
            f"unknown key(s) {unknown}{place} ({cls.__name__}); known keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        nested = _dataclass_in(hints[name])
        if nested is not None and isinstance(value, Mapping):
            values[name] = from_mapping(nested, value, f"{where}.{name}" if where else name)
    return cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON-able dicts (for results files and W&B)."""
    return dataclasses.asdict(config)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass in ``hint`` (``X``, ``X | None``, ``Optional[X]``), if any."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
    return None
