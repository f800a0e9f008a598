"""The training order: seeded, identical on every process and rerun, and replayable.

Replaying it tells a membership audit which texts a run that stopped inside an epoch drew.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class EpochPermutationSampler(Sampler[int]):
    """A fresh seeded permutation each epoch, identical on every process and every rerun."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def seen_example_indices(size: int, seed: int, examples_seen: int) -> list[int]:
    """Indices of the examples a single-process run drew in its first ``examples_seen`` draws.

    Replays :class:`EpochPermutationSampler`, so a membership audit can tell the texts a run
    that stopped inside an epoch actually trained on from those it never reached.
    """
    sampler, seen, epoch = EpochPermutationSampler(size, seed), [], 0
    while epoch * size < examples_seen and len(set(seen)) < size:
        sampler.set_epoch(epoch)
        seen.extend(list(sampler)[: examples_seen - epoch * size])
        epoch += 1
    return sorted(set(seen))
