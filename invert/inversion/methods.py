"""Names of the inversion methods a run reports, and which one a run headlines.

Rows are named by these constants (never parsed back out of strings); the headline is the
metric multirun sweeps optimize (``optimized_metric``, as in lightning-hydra-template).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from invert.errors import InvertError


class Method(StrEnum):
    """The methods :func:`invert.inversion.evaluation.evaluate_methods` can report."""

    NEAREST_NEIGHBOUR = "nearest_neighbour"  # the closest training text (retrieval)
    BAG_OF_WORDS = "bag_of_words"  # the predicted word set (arXiv 2004.00053)
    INVERTER = "inverter"  # the trained inverter alone (greedy or beam)
    INVERTER_RERANK = "inverter_rerank"  # its beams re-ranked by the embedder
    BAG_OF_WORDS_SEARCH = "bag_of_words_search"  # the search without the inverter
    GUIDED_DECODING = "guided_decoding"  # the inverter's beams, the embedder choosing each token
    INVERTER_SEARCH = "inverter_search"  # the search seeded and proposed by the inverter
    GUIDED_SEARCH = "guided_search"  # the search with retrieval seeds as well
    SENTENCE_REWRITE = "sentence_rewrite"  # inverter_search's texts rewritten as sentences


# The report headlines the first of these a run produced: the strongest method that uses
# the trained inverter.
HEADLINE_ORDER = (
    Method.GUIDED_SEARCH,
    Method.INVERTER_SEARCH,
    Method.GUIDED_DECODING,
    Method.INVERTER_RERANK,
    Method.INVERTER,
)
HEADLINE_METRIC = "token_f1"
OPTIMIZED_KEY = "optimized_metric"


def best_method(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """The headlined method among those in ``metrics``."""
    found = next((m for m in HEADLINE_ORDER if m in metrics), None)
    if found is None:
        raise InvertError(f"no inverter method among {sorted(metrics)}; expected one of "
                          f"{[str(m) for m in HEADLINE_ORDER]}")  # fmt: skip
    return str(found)


def headline_metric(metrics: Mapping[str, Mapping[str, float]], key: str | None = None) -> float:
    """The value sweeps optimize.

    Args:
        metrics: ``{method: {metric: value}}``.
        key: ``"<method>/<metric>"`` (e.g. ``inverter_search/cosine``); None: the headlined
            method's token F1.

    Raises:
        InvertError: ``key`` names a method or metric the run did not report (lists them).
    """
    if key is None:
        return float(metrics[best_method(metrics)][HEADLINE_METRIC])
    method, _, metric = str(key).partition("/")
    if method not in metrics or metrics[method].get(metric) is None:
        known = [f"{m}/{k}" for m, values in metrics.items() for k, v in values.items() if v is not None]
        raise InvertError(f"optimized_metric={key!r} is not among this run's metrics: {known}")
    return float(metrics[method][metric])
