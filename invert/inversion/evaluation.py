"""Evaluate an inverter (and the nearest-neighbour baseline) on held-out pairs."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PreTrainedModel

from invert.api import invert_embeddings
from invert.configs import SEARCH_ROWS, BagOfWordsConfig, SearchConfig, from_mapping
from invert.embedders.base import Embedder
from invert.errors import InvertError
from invert.inversion.fluency import ReferenceLM
from invert.inversion.methods import Method
from invert.inversion.metrics import reconstruction_metrics
from invert.inversion.search.edit_search import guided_search
from invert.inversion.search.guided_decoding import embedder_guided_decode, supports_guided_decoding
from invert.inversion.search.sentence_rewrites import SentenceRewriter, closest_rewrites
from invert.inversion.search.word_lm import WordNgramLM
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.nearest_neighbour import NearestNeighbourInverter

logger = logging.getLogger(__name__)

# The rows whose wall time a deadline can cap (their rounds stop early); the others run whole.
CAPPED_ROWS = (Method.BAG_OF_WORDS_SEARCH, Method.GUIDED_DECODING, Method.INVERTER_SEARCH, Method.GUIDED_SEARCH)
# Their shares of the time a deadline leaves: guided decoding embeds a beam's proposals at every
# token of every example, and stopped early it decodes the rest greedily, so it gets two.
CAP_SHARES = {Method.GUIDED_DECODING: 2.0}


def fitted_search_minutes(
    seconds_left: float, searches_left: float, later_seconds: float, configured: float | None, share: float = 1.0
) -> float:
    """A search row's wall-time cap under a deadline: its ``share`` out of the ``searches_left``
    shares of the capped rows still to run (this one included), of what the deadline leaves
    once the rows that cannot be capped (decoding, rewriting, scoring) have their estimated
    time; never above ``configured`` (None: no cap of its own). 0 means one round: a search
    always runs its first.
    """
    minutes = share * max(0.0, seconds_left - later_seconds) / max(share, searches_left) / 60
    return minutes if configured is None else min(configured, minutes)


def later_rows_seconds(
    pending: list[str], scoring_seconds: list[float], greedy_seconds: float, sentence_samples: int
) -> float:
    """What the rows still to run (``pending``, the one about to run included) need besides
    their searches: each one's scoring (the mean so far), and a pending ``sentence_rewrite``'s
    greedy rewrite and ``sentence_samples`` sampled ones, each about one greedy decoding."""
    scoring = sum(scoring_seconds) / len(scoring_seconds) if scoring_seconds else 0.0
    later = len(pending) * scoring
    if Method.SENTENCE_REWRITE in pending:
        later += (1 + sentence_samples) * greedy_seconds
    return later


def evaluate_methods(
    inverter: PreTrainedModel | None,
    embedder: Embedder,
    texts: list[str],
    embeddings: torch.Tensor,
    baseline: NearestNeighbourInverter | None = None,
    num_candidates: int = 1,
    num_beams: int = 1,
    batch_size: int = 32,
    show_progress: bool = True,
    bag_of_words: BagOfWordsInverter | None = None,
    search: SearchConfig | Mapping[str, Any] | None = None,
    fluency: ReferenceLM | None = None,
    deadline: float | None = None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Reconstructs ``texts`` from ``embeddings`` with each method and scores every one.

    Methods: ``nearest_neighbour`` (retrieval baseline), ``bag_of_words`` (its predicted word
    set; only token F1 means anything) when given, ``inverter`` (greedy or beam),
    ``inverter_rerank`` (``num_candidates`` beams re-ranked by embedder cosine) when
    ``num_candidates > 1``, and, when ``search`` is given, the embedder-guided edit searches
    (:func:`invert.inversion.search.edit_search.guided_search`) named in ``search.rows``:
    ``inverter_search`` starts from the inverter's output and the bag-of-words guess and lets
    the inverter propose its ``inverter_edits`` likeliest fixes each round (no retrieval);
    ``bag_of_words_search`` is the same search without the trained inverter (its ablation);
    ``guided_decoding`` (a decoder-only prefix LM) beam-decodes with the embedder choosing
    the beams at every token, and when it runs ``inverter_search`` starts from its sentences
    instead of the greedy ones
    (:func:`~invert.inversion.search.guided_decoding.embedder_guided_decode`);
    ``guided_search`` adds the ``nn_seeds`` nearest training texts as seeds;
    ``sentence_rewrite`` (a hinted inverter only) writes ``inverter_search``'s texts as the
    inverter's sentences, greedy and ``search.sentence_samples`` sampled, and keeps the closest
    (:func:`~invert.inversion.search.sentence_rewrites.closest_rewrites`). All try the
    bag-of-words model's ``proposal_words`` guesses. Each method gets ``seconds_per_100``
    beside the quality metrics (a search's includes the inverter run that seeds it).

    Args:
        search: A :class:`~invert.configs.SearchConfig` or a mapping of its keys (None: no
            search rows); its ``bow`` block sets the bag-of-words row's threshold.
        fluency: A reference LM: each method gets ``perplexity`` of its texts and
            ``target_perplexity`` of the targets (None: neither).
        deadline: ``time.time()`` by which every row should have ended (a budgeted run's,
            :func:`invert.training.budget.budget_deadline`): each search row is then capped
            at its share of the time left (:func:`fitted_search_minutes`), the rows after it
            estimated from the decoding and scoring times measured so far (None: the
            searches' own ``max_minutes``).

    Raises:
        InvertError: ``search.rows`` names an unknown row.
        UnknownConfigKeyError: ``search`` has a key SearchConfig does not define.

    Returns:
        ``({method: metrics}, rows)`` where each row holds the target and every method's
        reconstruction, token F1 and cosine.
    """
    search = from_mapping(SearchConfig, search, "search") if search is not None else None
    if not embedder.embeds_new_text:
        # Stored vectors: nothing can embed a reconstruction, so no re-ranking, no search
        # and no cosine; the text metrics still hold.
        if search is not None or num_candidates > 1:
            logger.warning("%s cannot embed new text: re-ranking and search rows left out, "
                           "cosine reported as unavailable", embedder.name)  # fmt: skip
        search, num_candidates = None, 1
    # Fit once for every search row (guided_search says what it needs when there is no baseline).
    shared_lm = search is not None and search.fluency_weight > 0 and baseline is not None
    word_lm = WordNgramLM.fit(baseline.texts) if shared_lm else None
    runs: dict[str, Any] = {}
    outputs: dict[str, list[str]] = {}
    seconds_by_method: dict[str, float] = {}
    scoring_seconds: list[float] = []
    searched: dict[str, tuple[float | None, int]] = {}  # row -> (its cap, rounds it ran)

    def fitted_cap(method: Method, configured: float | None) -> float | None:
        """A capped row's minutes: ``configured``, or less to end by the deadline."""
        if deadline is None:
            return configured
        pending = [m for m in runs if m not in outputs]  # this row included
        later = later_rows_seconds(pending, scoring_seconds, seconds_by_method.get(Method.INVERTER, 0.0),
                                   search.sentence_samples)  # fmt: skip
        left = deadline - time.time()
        shares = sum(CAP_SHARES.get(m, 1.0) for m in pending if m in CAPPED_ROWS)
        minutes = fitted_search_minutes(left, shares, later, configured, CAP_SHARES.get(method, 1.0))
        if configured is None or minutes < configured:
            log = logger.warning if left <= 0 else logger.info
            log("budget: %s capped at %.1f minutes to end by the deadline (%.1f minutes left, %.1f "
                "estimated for the rows after it)", method, minutes, left / 60, later / 60)  # fmt: skip
        return minutes

    def run_search(
        method: Method, hypotheses: list[str] | None, retrieval: NearestNeighbourInverter | None, **kwargs: Any
    ) -> list[str]:
        """One search row (:func:`guided_search` from ``hypotheses`` and ``retrieval``), its cap
        fitted to the deadline; records the cap and the rounds it ran."""
        config = dataclasses.replace(search, max_minutes=fitted_cap(method, search.max_minutes))
        result = guided_search(embeddings, embedder, hypotheses, retrieval, bag_of_words, config, show_progress,
                               word_lm=word_lm, **kwargs)  # fmt: skip
        searched[method] = (config.max_minutes, result.rounds)
        return result.texts

    def guided_decoding() -> list[str]:
        """The ``guided_decoding`` row, its cap fitted to the deadline as a search's is."""
        config = dataclasses.replace(search.guided, max_minutes=fitted_cap(Method.GUIDED_DECODING, search.guided.max_minutes))
        result = embedder_guided_decode(inverter, embedder, embeddings, **dataclasses.asdict(config),
                                        mixed_precision=inverter.decoding_precision, show_progress=show_progress)  # fmt: skip
        return result.texts

    if baseline is not None:
        runs[Method.NEAREST_NEIGHBOUR] = lambda: baseline.invert(embeddings)
    if bag_of_words is not None:
        bow = search.bow if search is not None else BagOfWordsConfig()
        runs[Method.BAG_OF_WORDS] = lambda: bag_of_words.generate_texts(embeddings, bow.threshold, bow.top_k)
    if inverter is not None:
        runs[Method.INVERTER] = lambda: invert_embeddings(
            embeddings, inverter, num_beams=num_beams, batch_size=batch_size,
            show_progress=show_progress,
        )
        if num_candidates > 1:
            runs[Method.INVERTER_RERANK] = lambda: invert_embeddings(
                embeddings, inverter, embedder=embedder, num_beams=num_beams,
                num_candidates=num_candidates, batch_size=batch_size, show_progress=show_progress,
            )
    # Searches are seeded by the best inverter run above (guided_decoding's, when it runs: below)
    # and are charged for its time.
    seeding = next((m for m in (Method.INVERTER_RERANK, Method.INVERTER) if m in runs), None)
    rows_wanted = set(search.rows if search is not None else SEARCH_ROWS)
    if unknown := rows_wanted - set(SEARCH_ROWS):
        raise InvertError(f"unknown search rows {sorted(unknown)}; known: {list(SEARCH_ROWS)}")
    if search is not None and bag_of_words is not None and Method.BAG_OF_WORDS_SEARCH in rows_wanted:
        # The ablation: the same search with no trained inverter (seeded by the word guess).
        runs[Method.BAG_OF_WORDS_SEARCH] = lambda: run_search(Method.BAG_OF_WORDS_SEARCH, None, None)
    if search is not None and Method.GUIDED_DECODING in rows_wanted and supports_guided_decoding(inverter):
        runs[Method.GUIDED_DECODING] = guided_decoding
        seeding = Method.GUIDED_DECODING
    if search is not None and seeding is not None and Method.INVERTER_SEARCH in rows_wanted:
        # vec2text's recipe with a search for a corrector: the inverter's hypothesis, improved
        # with the embedder in the loop and the inverter proposing edits; nothing retrieved.
        runs[Method.INVERTER_SEARCH] = lambda: run_search(
            Method.INVERTER_SEARCH, outputs[seeding], None, inverter=inverter
        )
    if Method.INVERTER_SEARCH in runs and Method.SENTENCE_REWRITE in rows_wanted:
        if getattr(inverter, "hint_head", None) is not None:
            # The search's words, written back as the hinted LM's sentences (closest kept).
            runs[Method.SENTENCE_REWRITE] = lambda: closest_rewrites(
                SentenceRewriter(inverter, embeddings, word_probability=search.rewrite_word_probability),
                embedder, outputs[Method.INVERTER_SEARCH], search.sentence_samples, search.seed,
            )  # fmt: skip
        else:
            logger.info("sentence_rewrite left out: the inverter reads no word hints")
    retrieval_or_inverter = seeding is not None or baseline is not None
    if search is not None and retrieval_or_inverter and Method.GUIDED_SEARCH in rows_wanted:
        runs[Method.GUIDED_SEARCH] = lambda: run_search(
            Method.GUIDED_SEARCH, outputs.get(seeding), baseline, inverter=inverter
        )
    results: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = [{"target": t} for t in texts]
    target_perplexity: float | None = None
    for method, run in runs.items():
        start = time.perf_counter()
        predictions = outputs[method] = run()
        seconds = seconds_by_method[method] = time.perf_counter() - start
        if method in (Method.INVERTER_SEARCH, Method.GUIDED_SEARCH) and seeding is not None:
            seconds += seconds_by_method[seeding]  # guided_decoding's seeds: its own time only
        if method == Method.SENTENCE_REWRITE:  # charged for the search it rewrites
            seconds += seconds_by_method[Method.INVERTER_SEARCH] + seconds_by_method[seeding]
        scoring_started = time.perf_counter()
        scorable = embedder.embeds_new_text
        metrics, per_example = reconstruction_metrics(
            predictions, texts, target_embeddings=embeddings if scorable else None,
            embedder=embedder if scorable else None,
        )
        metrics.setdefault("cosine", None)  # None: unavailable for this embedder
        if fluency is not None:
            if target_perplexity is None:
                target_perplexity = fluency.perplexity(texts)
            fluent = [p for p in predictions if p.strip()]
            metrics["perplexity"] = fluency.perplexity(fluent) if fluent else None
            metrics["target_perplexity"] = target_perplexity
        metrics["seconds_per_100"] = 100 * seconds / len(texts)
        if method in searched:  # a row the clock may have cut short says by how much
            metrics["search_max_minutes"], metrics["search_rounds"] = searched[method]
        scoring_seconds.append(time.perf_counter() - scoring_started)
        results[str(method)] = metrics
        for row, example in zip(rows, per_example, strict=True):
            row[str(method)] = example["prediction"]
            row[f"{method}_token_f1"] = example["token_f1"]
            row[f"{method}_cosine"] = example["cosine"]
            row[f"{method}_bleu"] = example["bleu"]
    return results, rows
