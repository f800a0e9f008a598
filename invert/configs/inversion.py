"""Typed configs of the inversion path: the bag-of-words proposer, the searches, correction."""

from __future__ import annotations

from dataclasses import dataclass, field

# The embedder-guided search rows the evaluation can report.
SEARCH_ROWS = ("bag_of_words_search", "guided_decoding", "inverter_search", "guided_search", "sentence_rewrite")


@dataclass
class BagOfWordsConfig:
    """The bag-of-words model (Song & Raghunathan 2020, arXiv 2004.00053).

    Attributes:
        enabled: Fit it (the searches' word proposer and a baseline row).
        hidden_dim: Width of its one hidden layer.
        max_vocabulary: Most frequent training words it can predict.
        epochs: Passes over the training pairs.
        lr: Adam learning rate.
        top_k: Its baseline row's word count (None: the words above ``threshold``).
        threshold: Probability above which a word enters the baseline row (chosen for token
            F1 on held-out validation sentences: docs/results.md).
    """

    enabled: bool = True
    hidden_dim: int = 512
    max_vocabulary: int = 8000
    epochs: int = 10
    lr: float = 2e-3
    top_k: int | None = None
    threshold: float = 0.2


@dataclass
class GuidedDecodingConfig:
    """The inverter's beam search scored by the embedder at every token
    (:func:`invert.inversion.search.guided_decoding.embedder_guided_decode`; ZSInvert's
    adversarial decoding, arXiv 2504.00147, with the trained inverter as the proposer).

    Attributes:
        beam_width: Texts kept per example after each token.
        top_k: Next tokens the inverter proposes per beam (each costs an embedding).
        fluency_weight: Weight of the inverter's mean token log-probability beside the cosine.
        max_tokens: Longest text in LM tokens (None: the inverter's ``max_text_tokens``).
        patience: End an example once its best finished text has outscored every live beam
            for this many steps in a row (0: never; each step costs ``beam_width * top_k``
            embeddings, and a short text can outscore the start of a longer, closer one).
        batch_size: Examples decoded together.
        max_minutes: Wall-time cap: each batch takes the widest beam its measured cost fits in
            the time left, greedy at worst (None: no cap; a budgeted run fits it to its deadline).
    """

    beam_width: int = 4
    top_k: int = 8
    fluency_weight: float = 0.05
    max_tokens: int | None = None
    patience: int = 3
    batch_size: int = 50
    max_minutes: float | None = None


@dataclass
class SearchConfig:
    """The embedder-guided word-edit search (:func:`invert.inversion.search.guided_search`).

    Each round tries every one-word deletion, ``edits_per_round`` random edits with the
    bag-of-words model's ``proposal_words`` likeliest words, the embedder's ``gradient_edits``
    best one-word swaps and insertions (HotFlip, arXiv 1712.06751) and the inverter's
    ``inverter_edits`` likeliest token fixes; the real embedder keeps what it scores closest.

    Attributes:
        rows: Which search rows the evaluation reports (see ``SEARCH_ROWS``):
            ``inverter_search`` (seeded by the inverter and the word guess, no retrieval),
            ``bag_of_words_search`` (the same without the inverter: its ablation),
            ``guided_decoding`` (the inverter's beam search with the embedder scoring every
            token, see ``guided``; when it runs, ``inverter_search`` starts from its texts),
            ``guided_search`` (adds the ``nn_seeds`` nearest training texts) and
            ``sentence_rewrite`` (a hinted inverter writes ``inverter_search``'s texts as
            sentences, the closest kept; needs that row).
        num_rounds: Edit rounds.
        report_rounds: Rounds after which the domain table reports a row (None: the last).
        edits_per_round: Random edits per kept text per round.
        gradient_edits: The embedder's best swaps and insertions per kept text (0: none, e.g.
            for an embedder without gradients such as stored vectors).
        gradient_insertions: Word gaps per kept text where the gradient proposes insertions.
        beam_width: Texts kept per example.
        nn_seeds: Nearest training texts added as seeds (guided_search).
        proposal_words: Bag-of-words words the random edits draw from.
        weighted_proposals: Draw them by bag-of-words probability instead of uniformly.
        bow_seed_words: The likeliest words joined into one more seed (0: none).
        inverter_edits: The inverter's likeliest token fixes per kept text (0: it only seeds).
        inverter_places_words: The inverter also proposes where to place proposal words.
        inverter_edit_every: The inverter proposes on rounds ``k``, ``2k``, ... only (1: every
            round): each of its rounds costs an LM pass per kept text, the random edits'
            rounds only embeddings, so at a fixed time the search runs more rounds.
        inverter_edit_last: With ``inverter_edit_every`` > 1, the inverter also proposes on the
            search's last round (round ``num_rounds``, or under ``max_minutes``, once one of
            its rounds has been timed, the last the cap affords), so the search ends on its
            fluent edits rather than on random ones
            (:class:`invert.inversion.search.proposers.RoundSchedule`).
        rewrite_every: A hinted inverter rewrites each example's best text as a sentence,
            reading its words as the hints, every this many rounds
            (:mod:`invert.inversion.search.sentence_rewrites`; 0: never).
        rewrite_word_probability: The hint probability a rewrite gives the text's words.
        sentence_samples: Sampled rewrites per text in ``sentence_rewrite``, beside the
            greedy one.
        early_stop_cosine: An example stops once its best cosine reaches this (None: never).
        word_prior_weight: > 0 scores kept texts by cosine + this x expected token F1 under
            the bag-of-words probabilities (fewer filler words that embed close).
        fluency_weight: > 0 scores kept texts by cosine + this x their mean word
            log-probability under a word trigram model of the training texts (sentences, not
            word salad).
        max_minutes: Wall-time budget of each search row: no round starts that would end
            past it (None: all ``num_rounds``). Sizes a run to a machine, at the price of a
            round count that depends on its speed (recorded with the results).
        deletions_per_round: One-word deletions tried per kept text (None: all; each costs an
            embedding).
        mixed_precision: ``bf16`` runs the search's forward passes (candidate embeddings, the
            embedder's gradient, the inverter's proposals) under bf16 autocast where that is
            faster than fp32 (:func:`invert.env.resolve_mixed_precision`): more rounds in the
            same minutes, with cosines off by ~1e-3 while choosing. The texts it returns are
            scored in fp32 by the evaluation. ``no``: fp32. The inverter's decodings (seeds,
            rewrites) follow its own precision (``eval.mixed_precision``).
        seed: Seed of the random edits.
        bow: The bag-of-words model the search proposes words with.
        guided: The ``guided_decoding`` row.
    """

    rows: list[str] = field(default_factory=lambda: list(SEARCH_ROWS))
    num_rounds: int = 6
    report_rounds: list[int] | None = None
    edits_per_round: int = 8
    gradient_edits: int = 16
    gradient_insertions: int = 1
    beam_width: int = 1
    nn_seeds: int = 4
    proposal_words: int = 24
    weighted_proposals: bool = False
    bow_seed_words: int = 8
    inverter_edits: int = 8
    inverter_places_words: bool = True
    inverter_edit_every: int = 1
    inverter_edit_last: bool = True
    rewrite_every: int = 0
    rewrite_word_probability: float = 0.9
    sentence_samples: int = 4
    early_stop_cosine: float | None = 0.99
    word_prior_weight: float = 0.0
    fluency_weight: float = 0.0
    max_minutes: float | None = None
    deletions_per_round: int | None = None
    mixed_precision: str = "no"
    seed: int = 0
    bow: BagOfWordsConfig = field(default_factory=BagOfWordsConfig)
    guided: GuidedDecodingConfig = field(default_factory=GuidedDecodingConfig)


@dataclass
class CorrectionConfig:
    """vec2text's iterative correction (Morris et al. 2023, arXiv 2310.06816, §3).

    Attributes:
        steps: Correction steps reported (one run of the largest holds the shorter ones).
        sequence_beam_width: Texts kept per example in the beam row.
        num_candidates: Corrector samples per kept text per step in the beam row.
        early_stop_cosine: An example stops once its best cosine reaches this.
        train_examples: Training pairs to generate hypotheses for (None: all).
        hypothesis_beams: Beam width of the inverter's hypotheses.
        second_round_steps: > 0 adds the corrector's own outputs and trains this much more.
    """

    steps: list[int] = field(default_factory=lambda: [0, 1, 5, 20])
    sequence_beam_width: int = 4
    num_candidates: int = 4
    early_stop_cosine: float = 0.99
    train_examples: int | None = None
    hypothesis_beams: int = 1
    second_round_steps: int = 0


@dataclass
class ZeroShotConfig:
    """Zero-shot search with a pretrained LM and no trained inverter.

    Attributes:
        enabled: Report the row.
        lm: The causal LM (a packaged name, a folder or a hub id).
        beam_width: Texts kept per step.
        top_k: Next tokens the LM proposes per kept text.
        block_size: Tokens added per step.
        max_tokens: Length limit of the texts.
    """

    enabled: bool = True
    lm: str = "smollm2"
    beam_width: int = 4
    top_k: int = 8
    block_size: int = 2
    max_tokens: int = 32


@dataclass
class EvalConfig:
    """Held-out evaluation of an inverter beside the baselines.

    Attributes:
        num_examples: Held-out test texts scored at the end.
        val_examples: Validation texts scored every ``train.eval_every`` steps (0: none).
        num_beams: Beam width of the plain inverter.
        num_candidates: Beams re-ranked by embedder cosine (1: no re-ranking).
        batch_size: Embeddings per generation call.
        table_rows: Rows of the W&B samples table.
        log_examples: Reconstructions may leave the run folder (W&B table, terminal); off for
            private corpora.
        print_examples: (target -> reconstruction) rows printed at the end, if
            ``log_examples``.
        search: The embedder-guided edit search (None: no search rows).
        fluency_lm: A reference LM (``smollm2``, a folder or hub id) whose perplexity of each
            method's texts, and of the targets, is reported (None: not measured).
        hint_bias: A hinted prefix LM's decoding pull toward its hinted tokens
            (:mod:`invert.models.hint_bias`) for this evaluation (None: the inverter's own).
        draft_bias: A drafted prefix LM's decoding pull toward its retrieved draft's tokens
            (:class:`invert.models.hint_bias.DraftCopyBias`) for this evaluation (None: the
            inverter's own).
        mixed_precision: ``bf16`` decodes the inverter under bf16 autocast where that is
            faster than fp32 on the device (:func:`invert.env.resolve_mixed_precision`);
            ``no``: fp32. Embeddings and the reference LM's perplexity stay fp32.
    """

    num_examples: int = 200
    val_examples: int = 32
    num_beams: int = 1
    num_candidates: int = 8
    batch_size: int = 32
    table_rows: int = 50
    log_examples: bool = True
    print_examples: int = 5
    search: SearchConfig | None = None
    fluency_lm: str | None = None
    hint_bias: float | None = None
    draft_bias: float | None = None
    mixed_precision: str = "no"
