"""Typed config of the vector-store privacy audit (``conf/audit/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from invert.configs.inversion import SearchConfig

ATTACKERS = ("inverter", "records")
PII_FIELD_NAMES = ("first_name", "last_name", "date", "city", "address", "phone")


@dataclass
class RecordAttackConfig:
    """The schema-aware record attack (attribute inference + template filling).

    Attributes:
        aux: The attacker's own records of the same schema: ``{source, n, seed}`` or a path to
            a ``.json`` list; never the store's own records.
        fields: Record fields the attack infers.
        top_k: Candidate templates, and words per word slot, per round.
        rounds: Coordinate-ascent sweeps.
    """

    aux: Any = field(default_factory=lambda: {"source": "synthetic_pii", "n": 10000, "seed": 7})
    fields: list[str] = field(default_factory=lambda: list(PII_FIELD_NAMES))
    top_k: int = 8
    rounds: int = 2


@dataclass
class RetrievalConfig:
    """The retrieval utility a defense costs: BBC headline -> article, Recall/nDCG@k.

    Attributes:
        n: Headline/article pairs.
        k: Cut-off of the ranking metrics.
    """

    n: int = 200
    k: int = 10


@dataclass
class PrivacyAuditConfig:
    """What the store audit does (:func:`invert.privacy.run_privacy_audit`).

    Attributes:
        attacker: ``inverter`` (the trained inverter at ``inverter_path``) or ``records``.
        record_attack: Settings of ``attacker=records``.
        sample_size: Stored vectors inverted (drawn with the run's seed, streamed).
        batch_size: Rows read from the store per batch.
        num_candidates: > 1: beam candidates re-ranked by the embedder (vec2text).
        max_new_tokens: Generation length limit (None: the inverter's training length).
        pii_records: Ground truth for PII: ``{source: synthetic_pii, n, seed}`` or a ``.json``
            list of records (None: no PII rows).
        defenses: Defenses audited: ``noise``, ``int8``, ``binary``, ``orthogonal``.
        noise_levels: λ in ``v + λ·N(0, I)`` (vec2text, arXiv 2310.06816, §8).
        alignment_k: Leaked pairs given to the ALGEN alignment attack (arXiv 2502.11308).
        retrieval: The retrieval-utility task.
        show_examples: Put a few reconstructions in ``report.html`` / ``report.json``.
        num_examples: How many.
        log_examples: Send stored and reconstructed text to W&B.
        search: The embedder in the loop (None: the inverter's text as is).
    """

    attacker: str = "inverter"
    record_attack: RecordAttackConfig = field(default_factory=RecordAttackConfig)
    sample_size: int = 64
    batch_size: int = 1024
    num_candidates: int = 1
    max_new_tokens: int | None = None
    pii_records: Any = None
    defenses: list[str] = field(default_factory=lambda: ["noise", "int8", "binary", "orthogonal"])
    noise_levels: list[float] = field(
        default_factory=lambda: [0.0, 0.01, 0.02, 0.05, 0.07, 0.1, 0.5]
    )
    alignment_k: list[int] = field(default_factory=lambda: [10, 100, 1000])
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    show_examples: bool = False
    num_examples: int = 5
    log_examples: bool = False
    search: SearchConfig | None = None
