"""PII leakage: which personal fields an inversion attack recovers verbatim.

Token-level scores (BLEU, token F1; vec2text, arXiv:2310.06816) say how much text comes back;
a privacy officer asks which *identifiers* come back. Following the clinical-notes experiment
of vec2text (Sec. 7, arXiv:2310.06816), a field counts as recovered when its exact string
appears in the reconstruction, compared case-insensitively with whitespace collapsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from invert.inversion.metrics import LengthMismatchError

# first_name / last_name / full name / date / city / phone, as in the audit report.
PII_FIELDS = ("first_name", "last_name", "full_name", "date", "city", "phone")


def normalize(text: str) -> str:
    """Lowercases and collapses runs of whitespace to one space."""
    return " ".join(text.lower().split())


def field_value(record: Mapping[str, str], field: str) -> str | None:
    """The record's string for ``field``; ``full_name`` is ``first_name + " " + last_name``."""
    if field == "full_name":
        first, last = record.get("first_name"), record.get("last_name")
        return f"{first} {last}" if first and last else None
    value = record.get(field)
    return str(value) if value else None


def pii_recovery(
    reconstructions: Sequence[str],
    records: Sequence[Mapping[str, str]],
    fields: Sequence[str] = PII_FIELDS,
) -> dict[str, dict[str, float]]:
    """Per field, the share of records whose field string appears in their reconstruction.

    Args:
        reconstructions: One reconstructed text per record.
        records: Ground truth dicts (e.g. from ``synthetic_pii_records``), aligned with
            ``reconstructions``.
        fields: Field names; ``full_name`` is derived from first and last name.

    Returns:
        ``{field: {"recovered": count, "n": records having the field, "rate": count / n}}``;
        plus ``"any"``: records with at least one field recovered.

    Raises:
        LengthMismatchError: The two lists differ in length.
    """
    if len(reconstructions) != len(records):
        raise LengthMismatchError(
            f"got {len(reconstructions)} reconstructions for {len(records)} records"
        )
    out: dict[str, dict[str, float]] = {}
    hits_any = [False] * len(records)
    recon = [normalize(r) for r in reconstructions]
    for field in fields:
        recovered = n = 0
        for i, record in enumerate(records):
            value = field_value(record, field)
            if value is None or not normalize(value):
                continue
            n += 1
            if normalize(value) in recon[i]:
                recovered += 1
                hits_any[i] = True
        out[field] = {"recovered": recovered, "n": n, "rate": recovered / n if n else 0.0}
    total = len(records)
    out["any"] = {
        "recovered": sum(hits_any),
        "n": total,
        "rate": sum(hits_any) / total if total else 0.0,
    }
    return out
