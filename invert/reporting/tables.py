"""One table writer for every run: the same rows as CSV (for code) and Markdown (for people)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invert.errors import EmptyInputError


def format_cell(value: Any, digits: int = 3) -> str:
    """A Markdown cell: floats to ``digits`` significant places, missing or non-finite as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "n/a"
    return str(value)


def write_table(
    rows: Sequence[dict[str, Any]],
    run_dir: str | Path,
    stem: str = "table",
    columns: Sequence[str] | None = None,
    digits: int = 3,
) -> dict[str, Path]:
    """Writes ``<stem>.csv`` and ``<stem>.md`` into ``run_dir``.

    Args:
        rows: One dict per row.
        run_dir: The run folder.
        stem: File name without suffix.
        columns: Column order (None: the first row's keys).
        digits: Significant digits of floats in the Markdown table (the CSV keeps all).

    Returns:
        ``{"csv": path, "markdown": path}``.

    Raises:
        EmptyInputError: No rows.
    """
    if not rows:
        raise EmptyInputError(f"no rows to write to {stem}.csv / {stem}.md")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    columns = list(columns or rows[0])
    files = {"csv": run_dir / f"{stem}.csv", "markdown": run_dir / f"{stem}.md"}
    with files["csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(r.get(c), digits) for c in columns) + " |" for r in rows]
    files["markdown"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files
