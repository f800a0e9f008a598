"""Typed configs of the memorization probes (``conf/capacity_probe/``, ``conf/memorization_probe/``,
``conf/scaling_probe/``).

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
        n_bootstrap: Bootstrap resamples of the AUC's and TPRs' confidence intervals.
        blind_folds: Cross-fitting folds of the model-free blind baseline
            (``invert.memorization.blind_baseline``) that stands beside every attack.
        negative_control: A corpus name (``fortunes``, ``wikipedia``, ...) whose texts replace
            the non-members in a second run of every attack: a distribution-shifted split on
            which the blind baseline must score high (None: no control).
    """

    attacks: list[str]
    k: float
    fprs: list[float]
    n_bootstrap: int
    blind_folds: int
    negative_control: str | None = None


@dataclass(kw_only=True)
class ShadowConfig:
    """Shadow models for LiRA (arXiv 2112.03570) and RMIA (arXiv 2312.03262).

    Attributes:
        n_models: Shadows per trained regime, each trained like the target on a random subset
            of the candidates (0: no shadow attacks). The count is checked after training.
        rmia_a: Offline RMIA's correction slope for the missing IN models (None: tuned on
            the shadows, one playing the target, as Zarifzadeh et al. do).
        rmia_gamma: How much a candidate's likelihood ratio must beat a population text's.
    """

    n_models: int
    rmia_a: float | None
    rmia_gamma: float


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
        shadows: Shadow models for LiRA and RMIA.
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
    shadows: ShadowConfig


@dataclass(kw_only=True)
class ScalingTrainConfig:
    """How each cell of the scaling grid trains (:class:`invert.training.TrainerConfig` fields).

    A cell trains ``epochs`` passes over its N sequences, clamped to ``[min_steps, max_steps]``
    optimizer steps: small N would otherwise stop before it is memorized, large N never end.

    Attributes:
        lr: Peak learning rate.
        batch_size: Sequences per step (0: the whole training set, capped at N in any case).
        warmup_steps: Linear warm-up.
        schedule: ``constant``, ``linear`` or ``cosine`` decay over the cell's steps.
        epochs: Passes over the training set.
        min_steps: Fewest optimizer steps.
        max_steps: Most optimizer steps.
        max_minutes: Wall-clock cap per cell (None: none); a cell it cuts short is recorded
            as ``stopped_early`` and is no longer reproducible step for step.
        weight_decay: AdamW weight decay.
        max_grad_norm: Gradient clipping (0: none).
        log_every: Steps between logged losses.
    """

    lr: float
    batch_size: int
    warmup_steps: int
    schedule: str
    epochs: float
    min_steps: int
    max_steps: int
    max_minutes: float | None
    weight_decay: float
    max_grad_norm: float
    log_every: int


@dataclass(kw_only=True)
class ScalingProbeConfig:
    """The capacity scaling grid: membership and test loss against dataset size
    (Morris et al. 2025, arXiv 2505.24832).

    Attributes:
        name: The preset's name, recorded in the results.
        data: ``random`` (uniform tokens) or ``text`` (character chunks of a corpus).
        seq_len: S, tokens (characters) per sequence.
        vocab_size: V of the random tokens (random data only).
        corpus: An ``invert.data.corpora`` name (text data only).
        ngram_order: Order of the character n-gram that estimates the dataset's bits (text).
        ngram_fit_sequences: Sequences set aside to fit that n-gram (text).
        model_sizes: GPT shapes (``n_layer``, ``d_model``, ``n_head``), each optionally with
            its own ``n_sequences`` list.
        n_sequences: The N swept for sizes without their own list.
        n_non_members: Held-out sequences scored per cell (None: N, as many as members).
        bits_per_parameter: Capacity per parameter that sizes the ratio dataset bits / capacity.
        seed: Seeds the data, the models and the membership splits.
        num_threads: Torch threads (None: leave as is).
        score_batch_size: Sequences per scoring pass.
        n_bootstrap: Bootstrap resamples of the AUC's confidence interval.
        train: How each cell trains.
    """

    name: str
    data: str
    seq_len: int
    vocab_size: int | None
    corpus: str | None
    ngram_order: int | None
    ngram_fit_sequences: int | None
    model_sizes: list[dict[str, Any]]
    n_sequences: list[int]
    n_non_members: int | None
    bits_per_parameter: float
    seed: int
    num_threads: int | None
    score_batch_size: int
    n_bootstrap: int
    train: ScalingTrainConfig
