"""The training loop the multi-label word and token models share (binary cross-entropy)."""

from __future__ import annotations

import torch
from torch import nn

from invert.env import precision_context


def fit_multilabel(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    mixed_precision: str = "no",
) -> list[float]:
    """Trains ``model(inputs) -> logits`` against multi-hot ``labels`` with BCE and Adam.

    A plain loop rather than the shared Trainer: a few thousand MLP steps on precomputed
    embeddings take seconds on a CPU and need no checkpoints or distributed setup.
    ``mixed_precision="bf16"``: the forward pass under bf16 autocast where that is faster
    than fp32 (:func:`invert.env.resolve_mixed_precision`); the weights and the loss stay fp32.

    Returns:
        The mean loss of each epoch (shuffles seeded by ``seed``).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(len(inputs), generator=generator), 0.0
        for s in range(0, len(inputs), batch_size):
            idx = order[s : s + batch_size]
            with precision_context(mixed_precision, inputs.device.type):
                logits = model(inputs[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(inputs))
    model.eval()
    return losses
