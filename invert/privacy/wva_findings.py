"""The weights-vs-activations findings, each a number with a 95% bootstrap interval.

The experiment's table says what each method scored; the findings answer the issue's questions
(RAG over the knowledge cut-off, recall by repetitions, leakage per example and per trainable
parameter, PII from the stored vectors, what deletion leaves behind) with the uncertainty that
a few hundred questions, a hundred vectors or a handful of canaries leave. Differences between
methods are paired (the same questions resampled for both), so the interval is that of the gap.
Percentile bootstrap (Efron & Tibshirani 1993); the record attack's PII rates, reported as
rates, get Wilson score intervals (Wilson 1927).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from invert.errors import EmptyInputError

CONFIDENCE = 0.95


def _interval(value: float, draws: np.ndarray, n: int) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high", "n"}`` with the percentile interval of ``draws``."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {"value": value, "ci_low": float(low), "ci_high": float(high), "n": n}


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high", "n"}``: the mean and its percentile interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise EmptyInputError("no values to average")
    rng = np.random.default_rng(seed)
    draws = x[rng.integers(0, x.size, (n_bootstrap, x.size))].mean(axis=1)
    return _interval(float(x.mean()), draws, x.size)


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``a - b`` over the same items, with the interval of resampling those items."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in shape: {a.shape} and {b.shape}")
    return bootstrap_mean(a - b, n_bootstrap, seed)


def difference_of_means(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """``mean(a) - mean(b)`` for two independent groups, each resampled on its own."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise EmptyInputError("a difference of means needs values in both groups")
    rng = np.random.default_rng(seed)
    draws_a = a[rng.integers(0, a.size, (n_bootstrap, a.size))].mean(axis=1)
    draws_b = b[rng.integers(0, b.size, (n_bootstrap, b.size))].mean(axis=1)
    return _interval(float(a.mean() - b.mean()), draws_a - draws_b, a.size + b.size)


def wilson(rate: float, n: int) -> dict[str, float]:
    """A binomial rate's Wilson score interval (sound at 0 and 1, unlike the normal one)."""
    if n < 1:
        raise EmptyInputError("a rate over no trials has no interval")
    z = 1.959963984540054
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if rate <= 0 else max(0.0, centre - half)
    high = 1.0 if rate >= 1 else min(1.0, centre + half)
    return {"value": rate, "ci_low": low, "ci_high": high, "n": n}


def _row(finding: str, method: str, stat: Mapping[str, float], unit: str) -> dict[str, Any]:
    return {"finding": finding, "method": method, "unit": unit, **stat}


def compute_findings(
    results: Mapping[str, Mapping[str, Any]],
    flags: Mapping[str, Mapping[str, np.ndarray]],
    forms: Mapping[str, np.ndarray],
    repetitions: Mapping[str, np.ndarray],
    member_bits: Mapping[str, np.ndarray] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every finding of the experiment as rows ``{finding, method, unit, value, ci_low, ...}``.

    Args:
        results: The runner's per-method metrics.
        flags: ``{method: {split: contains flag per question}}`` (``deleted_after`` too).
        forms: ``{split: form per question}`` (same order as the flags).
        repetitions: ``{split: repetition count per question}``.
        member_bits: ``{method: memorized bits per training document}`` (tuned methods), above
            the held-out documents' mean (what training on the documents' form alone gives).
        n_bootstrap: Resamples per interval.
        seed: Seeds the resamples.
    """
    rows: list[dict[str, Any]] = []
    boot = {"n_bootstrap": n_bootstrap, "seed": seed}
    members = flags.get("none", {}).get("members")
    for method, f in flags.items():
        for form in ("verbatim", "paraphrase"):
            pick = forms["members"] == form
            rows.append(_row(f"recall, members, {form}", method,
                             bootstrap_mean(f["members"][pick], **boot), "share"))  # fmt: skip
            if method != "none" and members is not None:
                gap = paired_difference(f["members"][pick], members[pick], **boot)
                rows.append(_row(f"recall above the base LM, {form}", method, gap, "share"))
        if results[method].get("cost", {}).get("trainable_parameters"):
            reps = repetitions["members"]
            verbatim = forms["members"] == "verbatim"
            for r in sorted(set(reps.tolist())):
                pick = verbatim & (reps == r)
                if pick.any():
                    rows.append(_row(f"recall, verbatim, fact repeated {r}x", method,
                                     bootstrap_mean(f["members"][pick], **boot), "share"))  # fmt: skip
            low, high = verbatim & (reps == reps.min()), verbatim & (reps == reps.max())
            if low.any() and high.any() and reps.max() > reps.min():
                gain = difference_of_means(f["members"][high], f["members"][low], **boot)
                rows.append(_row(f"recall gain, verbatim, {reps.max()}x over {reps.min()}x",
                                 method, gain, "share"))  # fmt: skip
        rows.append(_row("deleted people's recall, before deletion", method,
                         bootstrap_mean(f["deleted"], **boot), "share"))  # fmt: skip
        rows.append(_row("deleted people's recall, after deletion", method,
                         bootstrap_mean(f["deleted_after"], **boot), "share"))  # fmt: skip
    for method, m in results.items():
        weights = m.get("weights_leakage")
        if weights:
            bits = (member_bits or {}).get(method)
            n_docs = len(bits) if bits is not None else 0
            for label, mia in ((f"membership AUC ({weights['mia_best']['best_attack']})",
                                weights["mia_best"]),
                               ("membership AUC, blind baseline", weights["mia_blind"])):  # fmt: skip
                rows.append(_row(label, method, {"value": mia["auc"], "ci_low": mia["auc_ci_low"],
                                 "ci_high": mia["auc_ci_high"], "n": n_docs}, "AUC"))  # fmt: skip
            if bits is not None and len(bits):
                per_example = bootstrap_mean(bits, **boot)
                rows.append(_row("memorized bits per training document", method, per_example,
                                 "bits"))  # fmt: skip
                scale = len(bits) / max(1, m["cost"]["trainable_parameters"])
                rows.append(_row("memorized bits per trainable parameter", method,
                                 {k: (v * scale if k != "n" else v)
                                  for k, v in per_example.items()}, "bits"))  # fmt: skip
        exposure = m.get("exposure", {})
        for key, label in (("members", "members'"), ("deleted_before", "deleted people's"),
                           ("deleted_after", "deleted people's, after deletion,")):  # fmt: skip
            values = exposure.get(key, {}).get("per_canary")
            if values:
                rows.append(_row(f"{label} canary exposure", method,
                                 bootstrap_mean(values, **boot), "bits"))  # fmt: skip
        store = m.get("store_leakage")
        if store and not any(r["finding"].startswith("store inversion") for r in rows):
            for field, rate in store["pii"].items():
                rows.append(_row(f"store inversion recovers {field}", "store",
                                 wilson(rate, store["n_vectors"]), "share of vectors"))  # fmt: skip
    return rows
