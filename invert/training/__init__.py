"""The shared trainer (HF Accelerate)."""

from invert.training.trainer import EpochPermutationSampler, Trainer, TrainerConfig, TrainResult

__all__ = ["EpochPermutationSampler", "TrainResult", "Trainer", "TrainerConfig"]
