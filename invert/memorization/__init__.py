"""Memorization probes: what a language model remembers of its training data."""

# ruff: noqa: F401  (this module only re-exports the public names)

from invert.memorization.capacity import (
    ConvergenceCriterion,
    capacity_by_model,
    fit_bits_per_parameter,
    memorized_bits,
    random_sequences,
    run_capacity_cell,
    sequence_entropy_bits,
)
from invert.memorization.capacity_plots import plot_capacity_vs_params, plot_memorized_vs_n
from invert.memorization.runs.capacity import run_capacity_experiment, summarize_cells
from invert.memorization.target_models import (
    TargetModel,
    build_gpt,
    count_parameters,
    load_pretrained_target,
)
from invert.memorization.token_scoring import sequence_nll_bits, token_logprobs

# isort: split
# Exposure, extraction, membership inference, unintended bits and the audit.
from invert.memorization.exposure import (
    exact_exposure,
    exposure_by_repetition,
    measure_exposure,
    skewnorm_exposure,
)
from invert.memorization.extraction import (
    canary_extraction,
    extraction_by_repetition,
    extraction_rates,
    greedy_continuations,
)
from invert.memorization.membership import (
    ATTACKS,
    bootstrap_auc_ci,
    membership_inference,
    register_attack,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)
from invert.memorization.private_corpus import (
    Canary,
    CharTokenizer,
    PrivateCorpus,
    build_private_corpus,
)
from invert.memorization.reference_attacks import (
    ez_scores,
    informia_token_bits,
    wbc_scores,
)
from invert.memorization.runs.finetune_audit import evaluate_model, run_memorization_audit
from invert.memorization.unintended import (
    summarize_unintended,
    unintended_bits,
    unintended_memorization,
)
