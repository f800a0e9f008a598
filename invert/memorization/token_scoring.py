"""Batched per-token and per-sequence log-likelihoods under a causal LM, shared by all probes.

Token ``t`` of a row is scored given tokens ``< t``, so a row of length L yields L-1 scores;
the first token has no context and is never scored. Probes that need every token of a sample
scored prepend a fixed BOS token (the capacity probe of Morris et al. 2025, arXiv:2505.24832,
does so). Log-softmax runs in fp32 whatever the model's dtype, so bf16 logits lose no more
precision than they already have.
"""

from __future__ import annotations

import math

import torch

from invert.errors import EmptyInputError, InvertError

LN2 = math.log(2.0)


def _check(input_ids: torch.Tensor, mask: torch.Tensor | None, name: str) -> None:
    if input_ids.dim() != 2:
        raise InvertError(f"input_ids must be [n, length], got shape {tuple(input_ids.shape)}")
    if input_ids.shape[0] == 0:
        raise EmptyInputError("no sequences to score; pass at least one row of input_ids")
    if input_ids.shape[1] < 2:
        raise InvertError("rows need >= 2 tokens: the first is context only; prepend a BOS token")
    if mask is not None and mask.shape != input_ids.shape:
        raise InvertError(f"{name} shape {tuple(mask.shape)} != input_ids {tuple(input_ids.shape)}")


@torch.no_grad()
def token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    target_mask: torch.Tensor | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Natural-log probabilities ``log p(x_t | x_<t)`` of each token after the first.

    Args:
        model: Causal LM whose ``forward(input_ids=..., attention_mask=...)`` returns ``.logits``
            of shape ``[batch, length, vocab]`` (any transformers or peft causal LM).
        input_ids: ``[n, L]`` token ids (right-padded when lengths differ).
        attention_mask: ``[n, L]``, 1 for real tokens; None means all real.
        target_mask: ``[n, L]``, 1 where a token counts as a target (e.g. only a suffix after a
            prompt); None means every real token. Position 0 never counts.
        batch_size: Rows per forward pass.

    Returns:
        ``[n, L-1]`` float32 on the CPU; entry ``[i, t-1]`` scores token ``t`` of row ``i``,
        and is 0 where token ``t`` is padding or not a target.
    """
    _check(input_ids, attention_mask, "attention_mask")
    _check(input_ids, target_mask, "target_mask")
    if batch_size < 1:
        raise InvertError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()  # dropout off: scores must be deterministic
    device = next(model.parameters()).device
    keep = torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask is not None:
        keep &= attention_mask.bool()
    if target_mask is not None:
        keep &= target_mask.bool()
    out = []
    try:
        for start in range(0, input_ids.shape[0], batch_size):
            ids = input_ids[start : start + batch_size].to(device)
            kwargs = {}
            if attention_mask is not None:
                kwargs["attention_mask"] = attention_mask[start : start + batch_size].to(device)
            logits = model(input_ids=ids, **kwargs).logits[:, :-1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            picked = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
            out.append(picked.cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) * keep[:, 1:]


def sequence_nll_bits(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    target_mask: torch.Tensor | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Negative log-likelihood of each row in bits, summed over its scored tokens.

    Same arguments as :func:`token_logprobs`; a row of length L scores L-1 tokens (prepend a
    BOS token to score all of a sample).

    Returns:
        ``[n]`` float64 bits on the CPU (float64: totals over thousands of rows stay exact).
    """
    logp = token_logprobs(model, input_ids, attention_mask, target_mask, batch_size)
    return -logp.double().sum(dim=1) / LN2
