"""The shared trainer (HF Accelerate)."""

from invert.training.sampling import EpochPermutationSampler, seen_example_indices
from invert.training.trainer import Trainer, TrainerConfig, TrainResult

__all__ = ["EpochPermutationSampler", "TrainResult", "Trainer", "TrainerConfig", "seen_example_indices"]
