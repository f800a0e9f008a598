"""Memorization probes: what a language model remembers of its training data."""

from invert.memorization.capacity import (
    ConvergenceCriterion,
    capacity_by_model,
    fit_bits_per_parameter,
    memorized_bits,
    random_sequences,
    run_capacity_cell,
    run_capacity_experiment,
    sequence_entropy_bits,
    summarize_cells,
)
from invert.memorization.capacity_plots import plot_capacity_vs_params, plot_memorized_vs_n
from invert.memorization.target_models import (
    TargetModel,
    build_gpt,
    count_parameters,
    load_pretrained_target,
)
from invert.memorization.token_scoring import sequence_nll_bits, token_logprobs
