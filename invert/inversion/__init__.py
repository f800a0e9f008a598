"""Path 1, embedding inversion: embedding -> text.

Metrics (:mod:`invert.inversion.metrics`), evaluation of methods side by side, vec2text-style
correction, the searches with the embedder in the loop (:mod:`invert.inversion.search`), and
the functions behind the entry points (:mod:`invert.inversion.runs`).
"""

from __future__ import annotations

import importlib
from typing import Any

# Resolved on first use: ``invert.api`` imports the metrics, and the evaluation imports the API.
_PUBLIC = {
    "correct": "invert.inversion.correction",
    "edit_search": "invert.inversion.search.edit_search",
    "evaluate_methods": "invert.inversion.evaluation",
    "guided_search": "invert.inversion.search.edit_search",
    "reconstruction_metrics": "invert.inversion.metrics",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'invert.inversion' has no attribute {name!r}")
