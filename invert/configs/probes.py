"""Typed configs of the memorization probes (``conf/capacity_probe/``, ``conf/memorization_probe/``).

Each probe yaml is a complete preset, so these schemas hold no defaults of their own (only
``None`` where a block or setting is optional): the yaml states every value once, and the
schema gives its type, its meaning and an error for a key it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class CapacityProbeConfig:
    """The capacity grid (Morris et al. 2025, arXiv 2505.24832).

    Attributes:
        name: The preset's name, recorded in the results.
        vocab_size: V of the uniform random tokens.
        seq_len: S, tokens per sequence (S·log2 V bits of entropy each).
        model_sizes: GPT shapes (``n_layer``, ``d_model``, ``n_head``), each optionally with
            its own ``n_sequences`` list.
        n_sequences: The N swept for sizes without their own list.
        seed: Seeds the data and the models.
        mixed_precision: ``no`` (fp32) or ``bf16`` (autocast, fp32 master weights).
        num_threads: Torch threads per cell (None: leave as is).
        workers: Cells run at once, one process each (1: one after another).
        max_total_minutes: Cells not started by then are skipped (None: no limit).
        score_batch_size: Sequences per scoring pass.
        collect_from: Summarize the cells of a finished multirun sweep instead of training.
        train: :class:`invert.training.TrainerConfig` fields per cell.
        convergence: :class:`invert.memorization.capacity.ConvergenceCriterion` fields.
        sizes: Named shapes for ``model_sizes`` to interpolate (GPU preset).
    """

    name: str
    vocab_size: int
    seq_len: int
    model_sizes: list[dict[str, Any]]
    n_sequences: list[int]
    seed: int
    mixed_precision: str
    num_threads: int | None
    workers: int
    max_total_minutes: float | None
    score_batch_size: int
    collect_from: str | None
    train: dict[str, Any]
    convergence: dict[str, Any]
    sizes: dict[str, Any] | None = None


@dataclass(kw_only=True)
class TargetConfig:
    """The audited model.

    Attributes:
        kind: ``gpt`` (trained from scratch) or ``pretrained``.
        name: The pretrained LM (``smollm2``, a folder or a hub id).
        gpt: GPT shape for ``kind=gpt``.
        tuning: ``load_pretrained_target`` arguments (LoRA rank, prefix tokens, ...).
    """

    kind: str
    name: str | None = None
    gpt: dict[str, Any] | None = None
    tuning: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ReferenceConfig:
    """The reference model of the reference-based attacks.

    Attributes:
        kind: ``none``, ``pretrained`` (``name``) or ``population`` (trained on a disjoint
            split of the same pool: it stands in for the data distribution).
        name: The pretrained reference.
        regime: How a population reference trains (``scratch``, ...).
        max_steps: Its steps (None: the target's).
    """

    kind: str
    name: str | None = None
    regime: str = "scratch"
    max_steps: int | None = None


@dataclass(kw_only=True)
class ScoringConfig:
    """How models are scored.

    Attributes:
        precision: ``fp32`` or ``bf16`` (autocast).
        batch_size: Texts per scoring pass.
    """

    precision: str
    batch_size: int


@dataclass(kw_only=True)
class ExposureConfig:
    """Canary exposure (Carlini et al. 2019, arXiv 1802.08232).

    Attributes:
        method: ``auto``, ``exact`` (enumerate the secret space) or ``skewnorm`` (extrapolate).
        n_samples: Random secrets scored for the skew-normal fit.
        max_enumerate: Largest secret space ``auto`` enumerates.
        search_batches: Best-first search batches for the exact rank of canaries that beat
            every sample.
    """

    method: str
    n_samples: int
    max_enumerate: int
    search_batches: int


@dataclass(kw_only=True)
class ExtractionConfig:
    """Greedy extraction (Carlini et al. 2021, arXiv 2012.07805).

    Attributes:
        prefix_lengths: Prefix lengths in tokens.
        suffix_length: Suffix tokens that must come back exactly.
        headline_prefix: The prefix length the comparison table reports (None: the longest).
        max_texts: Texts per side probed (None: all).
    """

    prefix_lengths: list[int]
    suffix_length: int
    headline_prefix: int | None = None
    max_texts: int | None = None


@dataclass(kw_only=True)
class MembershipConfig:
    """Membership inference (MIMIR's attacks, arXiv 2402.07841).

    Attributes:
        attacks: Attack names (``invert.memorization.membership.ATTACKS``).
        k: Fraction of tokens Min-K% / Min-K%++ keep.
        fprs: False-positive rates the TPR is reported at.
        n_bootstrap: Bootstrap resamples of the AUC's confidence interval.
    """

    attacks: list[str]
    k: float
    fprs: list[float]
    n_bootstrap: int


@dataclass(kw_only=True)
class MemorizationProbeConfig:
    """The memorization audit: exposure, extraction, membership and memorized bits.

    Attributes:
        name: The preset's name.
        tokenizer: ``char``, ``smollm2`` or a tokenizer folder.
        regimes: ``none``, ``scratch`` (gpt) or ``full`` / ``lora`` / ``prefix`` (pretrained).
        log_examples: Send canary texts to W&B.
        num_threads: Torch threads (None: leave as is).
        data: ``invert.memorization.build_private_corpus`` arguments (members, canaries, ...).
        target: The audited model.
        reference: The reference model.
        train: :class:`invert.training.TrainerConfig` fields plus ``max_length``; ``lr`` may
            be ``{regime: lr}``.
        eval: Scoring.
        exposure: Exposure settings.
        extraction: Extraction settings.
        mia: Membership inference settings.
    """

    name: str
    tokenizer: str
    regimes: list[str]
    log_examples: bool
    num_threads: int | None
    data: dict[str, Any]
    target: TargetConfig
    reference: ReferenceConfig
    train: dict[str, Any]
    eval: ScoringConfig
    exposure: ExposureConfig
    extraction: ExtractionConfig
    mia: MembershipConfig
