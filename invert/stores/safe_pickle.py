"""Checks a pickle before anything unpickles it: only known data classes may appear.

Some stores persist records as pickles (qdrant-client's local mode pickles every point and
unpickles them all on open). A pickle can name any callable, so one from elsewhere can run
code; this module loads it with an unpickler that resolves only an allow-list of names and
refuses the rest, so a crafted payload is reported instead of run.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable

# Names a plain data pickle needs: containers, numbers, UUIDs and dates, and the machinery
# pickle uses to rebuild objects of allowed classes.
_SAFE_BUILTINS = frozenset({
    "dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
    "complex", "bool", "object", "slice", "range", "NoneType",
})  # fmt: skip
_SAFE_NAMES = {
    "builtins": _SAFE_BUILTINS,
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "collections": frozenset({"OrderedDict", "defaultdict"}),
    "uuid": frozenset({"UUID", "SafeUUID"}),
    "datetime": frozenset({"datetime", "date", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "enum": frozenset({"Enum"}),
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names something outside the allow-list."""


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, module_prefixes: tuple[str, ...]) -> None:
        super().__init__(io.BytesIO(data))
        self.module_prefixes = module_prefixes

    def find_class(self, module: str, name: str):  # noqa: ANN201  (pickle's own signature)
        # A dotted name walks attributes (Class.__init__.__builtins__...): never allowed.
        if "." in name:
            raise UnsafePickleError(f"the pickle asks for {module}.{name}, which is not data")
        if name in _SAFE_NAMES.get(module, ()):
            return super().find_class(module, name)
        if not module.startswith(self.module_prefixes) or name.startswith("_"):
            raise UnsafePickleError(f"the pickle asks for {module}.{name}, which is not data")
        found = super().find_class(module, name)
        # Only the data classes themselves: no functions or other objects those modules hold.
        if not (isinstance(found, type) and found.__module__.startswith(self.module_prefixes)):
            raise UnsafePickleError(f"the pickle asks for {module}.{name}, which is not a data class")
        return found


def check_pickles(blobs: Iterable[bytes], module_prefixes: tuple[str, ...]) -> int:
    """Unpickles each blob with the allow-list; returns how many were checked.

    Args:
        blobs: Pickled records.
        module_prefixes: Modules whose public classes a record may hold (e.g. the store
            client's data models, and pydantic, which they are built on).

    Raises:
        UnsafePickleError: A blob names a callable outside the allow-list (nothing it names
            was called); the message says which record.
    """
    n = 0
    for n, blob in enumerate(blobs, start=1):
        try:
            _AllowListUnpickler(bytes(blob), module_prefixes).load()
        except UnsafePickleError as err:
            raise UnsafePickleError(f"record {n}: {err}") from None
    return n
