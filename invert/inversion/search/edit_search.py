"""Embedder-guided word-edit search: hill-climb a text's cosine to a target embedding.

Test-time use of the embedder without a trained corrector. Each example starts from seed texts
(nearest-neighbour texts, inverter hypotheses, ...) and a pool of proposal words (a bag-of-words
model's predicted words for the target, the seeds' own words). Every round each kept text gets
every one-word deletion plus ``edits_per_round`` random word edits (delete a word, replace one
with a proposal, insert a proposal, or splice the head of one kept/seed text onto the tail of
another); the real embedder scores every new candidate in one batched call, and the
``beam_width`` texts closest in cosine are kept (the previous ones compete too, so the best
cosine never falls; with a word prior it is the prior-weighted score that never falls).

Proposers add edits a random one rarely finds: the trained inverter's token fixes
(:mod:`invert.inversion.search.inverter_edits`) and the embedder's own gradient, which ranks every one-word swap
and insertion over its whole vocabulary (:mod:`invert.inversion.search.embedder_edits`).

It is the discrete counterpart of vec2text's correction (arXiv 2310.06816) and of the
embedder-scored search in ZSInvert: where a 15-minute CPU inverter is worse than retrieval, the
retrieved text is the best place to start editing, and the embedder says which edits move it
toward the target.

Cosine alone rewards any text that embeds close, including word salad that shares few words
with the target. An optional word prior (per example, each word's probability of being in the
target, from a bag-of-words model) adds the text's expected token F1 under that prior to the
score, so of two texts the embedder rates alike the one made of likelier words is kept.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from invert.configs import SearchConfig, from_mapping
from invert.embedders.base import Embedder, check_embeddings
from invert.env import precision_context
from invert.errors import InvertError
from invert.inversion.search.embedder_edits import EmbedderGradientProposer
from invert.inversion.search.inverter_edits import InverterEditProposer
from invert.inversion.search.proposers import Proposer, RoundSchedule, combine_proposers
from invert.inversion.search.scorer import CosineScorer
from invert.inversion.search.sentence_rewrites import SentenceRewriter
from invert.inversion.search.word_lm import WordNgramLM
from invert.inversion.search.word_prior import WordPrior
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.nearest_neighbour import NearestNeighbourInverter


@dataclass
class EditSearchResult:
    """What :func:`edit_search` found.

    Attributes:
        texts: Best text per example.
        cosines: Its cosine to the target.
        mean_cosine_by_round: Mean best cosine after round 0 (seeds only), 1, 2, ...
        texts_by_round: ``[round][example]`` best text after each round.
        embedded_texts: Distinct texts embedded in all.
        embedder_calls: Batched ``encode`` calls (one per round with anything new).
        rounds: Edit rounds run (fewer than asked when ``max_minutes`` ran out).
    """

    texts: list[str]
    cosines: list[float]
    mean_cosine_by_round: list[float] = field(default_factory=list)
    texts_by_round: list[list[str]] = field(default_factory=list)
    embedded_texts: int = 0
    embedder_calls: int = 0
    rounds: int = 0


def edit_search(
    embeddings: torch.Tensor,
    embedder: Embedder,
    seeds: Sequence[Sequence[str]],
    proposal_words: Sequence[Sequence[str]],
    num_rounds: int = SearchConfig.num_rounds,
    edits_per_round: int = SearchConfig.edits_per_round,
    beam_width: int = SearchConfig.beam_width,
    max_words: int = 48,
    early_stop_cosine: float | None = SearchConfig.early_stop_cosine,
    seed: int = SearchConfig.seed,
    show_progress: bool = False,
    proposer: Proposer | None = None,
    word_prior: WordPrior | None = None,
    proposal_weights: Sequence[Sequence[float]] | None = None,
    word_lm: WordNgramLM | None = None,
    fluency_weight: float = SearchConfig.fluency_weight,
    max_minutes: float | None = SearchConfig.max_minutes,
    deletions_per_round: int | None = SearchConfig.deletions_per_round,
    periodic_proposer: Proposer | None = None,
    periodic_every: int = 1,
    periodic_last: bool = False,
) -> EditSearchResult:
    """Word-edit hill climbing on the embedder's cosine, batched across examples.

    Args:
        embeddings: ``[n, dim]`` targets, from ``embedder``.
        embedder: The real embedder; it scores every candidate.
        seeds: Starting texts per example (at least one non-blank each).
        proposal_words: Words each example may replace or insert (e.g. bag-of-words guesses).
        num_rounds: Edit rounds after scoring the seeds.
        edits_per_round: Random edits per kept text per round (every one-word deletion is
            tried on top of these).
        beam_width: Texts kept per example between rounds.
        max_words: Insertions stop growing a text past this many words.
        early_stop_cosine: An example stops once its best cosine reaches this (None: never).
        seed: Seeds the random edits.
        show_progress: Progress bar over rounds.
        proposer: Also asked, once per round and batched over examples, for edits of every
            kept text (e.g. the trained inverter's token fixes,
            :class:`invert.inversion.search.inverter_edits.InverterEditProposer`).
        word_prior: Adds ``weight x`` each text's expected token F1 under a per-example
            word prior to the score that picks the kept texts (None: cosine alone). Early
            stopping and the reported cosines stay pure cosine.
        proposal_weights: Per example, one sampling weight per proposal word (e.g. its
            bag-of-words probability); None: random edits draw proposals uniformly.
        word_lm: Adds ``fluency_weight x`` each text's mean word log-probability under this
            n-gram model to the score that picks the kept texts, so the search ends on
            sentences rather than word salad (None: no fluency term).
        fluency_weight: Its weight beside the cosine.
        max_minutes: After the first round, no round starts that would end past this much
            wall time, judged by the last round of its kind (or the last round, before one of
            its kind has run; None: all ``num_rounds``). The rounds run are in the result.
        deletions_per_round: One-word deletions tried per kept text (random ones when a text
            has more words; None: every one).
        periodic_proposer: An expensive proposer (e.g. the inverter's edits) asked beside
            ``proposer`` on rounds ``periodic_every``, ``2 x periodic_every``, ... only.
        periodic_every: Its period (1: every round).
        periodic_last: Also ask it on the last round, so the search ends on its edits: round
            ``num_rounds``, or, once one of its rounds has been timed, the last the
            ``max_minutes`` cap affords (:class:`~invert.inversion.search.proposers.RoundSchedule`).

    Raises:
        DimensionMismatchError: The embedder's dimension differs from the targets'.
        InvertError: Rows of ``seeds``/``proposal_words`` do not match the targets, an
            example has no non-blank seed, or a count is out of range.
    """
    targets = check_embeddings(embeddings, embedder.dim, f"the embedder {embedder.name!r}")
    n = len(targets)
    if len(seeds) != n or len(proposal_words) != n:
        raise InvertError(
            f"need one row of seeds and of proposal words per target: got {len(seeds)} and "
            f"{len(proposal_words)} rows for {n} targets"
        )
    if proposal_weights is not None and [len(w) for w in proposal_weights] != [len(w) for w in proposal_words]:
        raise InvertError("proposal_weights needs one weight per proposal word, row by row")
    if num_rounds < 0 or edits_per_round < 1 or beam_width < 1:
        raise InvertError("need num_rounds >= 0, edits_per_round >= 1 and beam_width >= 1")
    schedule = RoundSchedule(
        num_rounds, periodic_every if periodic_proposer is not None else 1, periodic_last and periodic_proposer is not None,
        None if max_minutes is None else 60 * max_minutes,
    )  # fmt: skip
    pools = [list(dict.fromkeys(t.strip() for t in row if t and t.strip())) for row in seeds]
    if empty := [i for i, p in enumerate(pools) if not p]:
        raise InvertError(f"examples {empty[:5]} have no non-blank seed text")
    # An example without proposals edits with its seeds' own words.
    words = [list(p) or [w for t in pool for w in t.split()]
             for p, pool in zip(proposal_words, pools, strict=True)]  # fmt: skip
    weights = [list(w) if p else None for w, p in zip(proposal_weights, proposal_words, strict=True)] \
        if proposal_weights is not None else [None] * n  # fmt: skip
    rng = random.Random(seed)
    scorer = CosineScorer(targets, embedder)
    if word_prior is not None and len(word_prior.probabilities) != n:
        raise InvertError(f"the word prior has {len(word_prior.probabilities)} rows for {n} targets")
    result = EditSearchResult(texts=[], cosines=[])
    fluency = (word_lm, fluency_weight) if word_lm is not None and fluency_weight > 0 else None
    beams = _keep_best(pools, scorer, beam_width, result, word_prior, fluency)
    stop = early_stop_cosine if early_stop_cosine is not None else float("inf")
    # What a round asks, by whether the schedule calls it a periodic-proposer round.
    asks = {False: proposer, True: combine_proposers(periodic_proposer, proposer)}
    started = time.perf_counter()
    for number in tqdm(range(1, num_rounds + 1), desc="edit search", disable=not show_progress):
        now = time.perf_counter()
        if (periodic := schedule.next_round(number, now - started)) is None:
            break  # the next round would end past the budget
        result.rounds += 1
        active = [i for i in range(n) if scorer.cosine(i, beams[i][0]) < stop]
        proposed: dict[int, list[str]] = {i: [] for i in active}
        if (ask := asks[periodic]) is not None and active:
            kept = [(i, t) for i in active for t in beams[i]]
            for (i, _), edits in zip(kept, ask([i for i, _ in kept], [t for _, t in kept]), strict=True):
                proposed[i].extend(edits)
        new_pools = []
        for i in range(n):
            if i not in proposed:  # solved: early stop
                new_pools.append(beams[i])
                continue
            donors = beams[i] + pools[i]
            cands = [
                edit
                for text in beams[i]
                for edit in _deletions(text, deletions_per_round, rng)
                + [_random_edit(text, words[i], donors, max_words, rng, weights[i])
                   for _ in range(edits_per_round)]  # fmt: skip
            ]
            cands += proposed[i]
            new_pools.append(list(dict.fromkeys(beams[i] + [c for c in cands if c.strip()])))
        beams = _keep_best(new_pools, scorer, beam_width, result, word_prior, fluency)
        schedule.round_took(periodic, time.perf_counter() - now)
    result.texts = [b[0] for b in beams]
    result.cosines = [scorer.cosine(i, b[0]) for i, b in enumerate(beams)]
    result.embedded_texts, result.embedder_calls = len(scorer.vectors), scorer.calls
    return result


def _deletions(text: str, limit: int | None, rng: random.Random) -> list[str]:
    """One-word deletions (``limit`` random ones, None: all): what clears the repeats a climb
    leaves behind; each costs an embedding, so long texts may try a sample."""
    tokens = text.split()
    if len(tokens) < 2:
        return []
    places = range(len(tokens))
    if limit is not None and limit < len(tokens):
        places = sorted(rng.sample(places, limit))
    return [" ".join(tokens[:k] + tokens[k + 1 :]) for k in places]


def _random_edit(
    text: str,
    words: Sequence[str],
    donors: Sequence[str],
    max_words: int,
    rng: random.Random,
    weights: Sequence[float] | None = None,
) -> str:
    """One random word-level edit of ``text`` (proposal words drawn by ``weights`` if given)."""

    def pick() -> str:
        return rng.choices(words, weights)[0] if weights else rng.choice(words)

    tokens = text.split()
    op = rng.random()
    if op < 0.25 and len(tokens) > 1:  # delete a word
        del tokens[rng.randrange(len(tokens))]
    elif op < 0.55 and words:  # replace a word
        tokens[rng.randrange(len(tokens))] = pick()
    elif op < 0.85 and words and len(tokens) < max_words:  # insert a word
        tokens.insert(rng.randrange(len(tokens) + 1), pick())
    else:  # splice: this text's head onto another kept or seed text's tail
        other = rng.choice(donors).split()
        cut, cut_other = rng.randrange(len(tokens) + 1), rng.randrange(len(other) + 1)
        tokens = (tokens[:cut] + other[cut_other:])[:max_words] or tokens
    return " ".join(tokens)


def _keep_best(
    pools: list[list[str]],
    scorer: CosineScorer,
    width: int,
    result: EditSearchResult,
    word_prior: WordPrior | None = None,
    fluency: tuple[WordNgramLM, float] | None = None,
) -> list[list[str]]:
    """Scores the round's new texts in one call and keeps each example's ``width`` best."""
    scorer.embed_new({t for pool in pools for t in pool})

    def score(i: int, text: str) -> float:
        bonus = word_prior.weight * word_prior.expected_f1(i, text) if word_prior else 0.0
        if fluency is not None:
            bonus += fluency[1] * fluency[0].mean_log_prob(text)
        return scorer.cosine(i, text) + bonus

    beams = [sorted(pool, key=lambda t, i=i: -score(i, t))[:width] for i, pool in enumerate(pools)]
    best = [b[0] for b in beams]
    result.texts_by_round.append(best)
    result.mean_cosine_by_round.append(
        sum(scorer.cosine(i, t) for i, t in enumerate(best)) / len(best)
    )
    return beams


def guided_search(
    embeddings: torch.Tensor,
    embedder: Embedder,
    hypotheses: Sequence[str] | None,
    baseline: NearestNeighbourInverter | None,
    bag_of_words: BagOfWordsInverter | None,
    search: SearchConfig | Mapping[str, Any] | None = None,
    show_progress: bool = False,
    inverter: PreTrainedModel | None = None,
    word_lm: WordNgramLM | None = None,
) -> EditSearchResult:
    """:func:`edit_search` seeded by an inverter, retrieval and a bag-of-words guess.

    With ``inverter`` given (and ``search.inverter_edits > 0``), the trained inverter also
    proposes, for every kept text each round, its ``inverter_edits`` likeliest token fixes and
    its ``inverter_edits`` likeliest placements of the proposal words
    (:class:`~invert.inversion.search.inverter_edits.InverterEditProposer`), every
    ``search.inverter_edit_every`` rounds and, with ``search.inverter_edit_last``, the last
    (:class:`~invert.inversion.search.proposers.RoundSchedule`); a hinted inverter with
    ``search.rewrite_every > 0`` also rewrites each example's best text as a sentence
    every that many rounds (:class:`~invert.inversion.search.sentence_rewrites.SentenceRewriter`). With
    ``search.gradient_edits > 0`` the embedder's own gradient proposes that many one-word swaps
    and insertions over its whole vocabulary
    (:class:`~invert.inversion.search.embedder_edits.EmbedderGradientProposer`; no trained model).

    Args:
        embeddings: ``[n, dim]`` targets.
        embedder: The real embedder.
        hypotheses: One inverter text per target (None: retrieval seeds only).
        baseline: Nearest-neighbour index whose ``search.nn_seeds`` closest texts join the
            seeds (None: none).
        bag_of_words: Proposes its ``search.proposal_words`` likeliest words per target,
            and its ``bow_seed_words`` likeliest joined into one more seed (0: no such seed);
            without it, the seeds' own words are the proposals.
        search: A :class:`~invert.configs.SearchConfig` (or a mapping of its keys; None: its
            defaults).
        show_progress: Progress bar over rounds.
        inverter: The trained inverter, as an edit proposer (None: bag-of-words edits only).
        word_lm: The fluency term's n-gram model, weighted by ``search.fluency_weight``
            (None: fit on ``baseline``'s training texts when that weight is > 0).

    Raises:
        UnknownConfigKeyError: ``search`` has a key SearchConfig does not define.
        InvertError: ``search.fluency_weight > 0`` with neither ``word_lm`` nor ``baseline``.
    """
    search = from_mapping(SearchConfig, search, "search")
    n = len(embeddings)
    seeds: list[list[str]] = [[h] for h in hypotheses] if hypotheses is not None else [[] for _ in range(n)]
    if baseline is not None and search.nn_seeds > 0:
        neighbours = baseline.invert(embeddings, k=search.nn_seeds)
        for row, near in zip(seeds, neighbours, strict=True):
            row.extend([near] if isinstance(near, str) else near)
    weights = None
    if bag_of_words is not None:
        if search.weighted_proposals:
            words, weights = bag_of_words.top_words(embeddings, search.proposal_words)
        else:
            words = bag_of_words.predict_words(embeddings, top_k=search.proposal_words)
        # The likeliest words as one more seed: an unordered guess that often starts closer
        # to the target than a weak inverter's sentence, and that the edits then order.
        if (top := search.bow_seed_words) > 0:
            for row, guess in zip(seeds, words, strict=True):
                row.append(" ".join(guess[:top]))
    else:
        words = [[w for t in row for w in t.split()] for row in seeds]
    # A blank hypothesis from an untrained inverter must not leave an example with no seed.
    seeds = [row if any(t.strip() for t in row) else [" ".join(w[:8]) or "the"]
             for row, w in zip(seeds, words, strict=True)]  # fmt: skip
    proposer = None
    if inverter is not None and search.inverter_edits > 0:
        proposer = InverterEditProposer(
            inverter, embeddings, search.inverter_edits,
            words=words if search.inverter_places_words else None,
            mixed_precision=search.mixed_precision,
        )  # fmt: skip
    rewriter = None
    if inverter is not None and search.rewrite_every > 0:
        if getattr(inverter, "hint_head", None) is None:
            raise InvertError(f"search.rewrite_every={search.rewrite_every} needs an inverter "
                              "that reads word hints (model.hint_tokens > 0); set it to 0")  # fmt: skip
        rewriter = SentenceRewriter(inverter, embeddings, search.rewrite_every, search.rewrite_word_probability)
    gradient = None
    if search.gradient_edits > 0:
        gradient = EmbedderGradientProposer(
            embedder, embeddings, search.gradient_edits, insertions=search.gradient_insertions,
            seed=search.seed,
        )  # fmt: skip
    if search.fluency_weight > 0 and word_lm is None:
        if baseline is None:
            raise InvertError("search.fluency_weight > 0 needs a word LM: pass word_lm, or a "
                              "retrieval baseline whose training texts it is fit on")  # fmt: skip
        word_lm = WordNgramLM.fit(baseline.texts)
    prior = None
    if bag_of_words is not None and search.word_prior_weight > 0:
        prior = WordPrior.from_bag_of_words(bag_of_words, embeddings, seeds, search.word_prior_weight)
    if search.mixed_precision not in ("no", "bf16"):
        raise InvertError(f"search.mixed_precision must be 'no' or 'bf16', got {search.mixed_precision!r}")
    with precision_context(search.mixed_precision):
        return edit_search(
            embeddings, embedder, seeds, words, proposer=combine_proposers(gradient, rewriter),
            word_prior=prior, proposal_weights=weights, num_rounds=search.num_rounds,
            edits_per_round=search.edits_per_round, beam_width=search.beam_width,
            early_stop_cosine=search.early_stop_cosine, seed=search.seed, show_progress=show_progress,
            word_lm=word_lm, fluency_weight=search.fluency_weight, max_minutes=search.max_minutes,
            deletions_per_round=search.deletions_per_round,
            periodic_proposer=proposer, periodic_every=search.inverter_edit_every,
            periodic_last=search.inverter_edit_last,
        )  # fmt: skip
