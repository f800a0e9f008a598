"""Word hints for a prefix LM that reads them: its hint head, and out-of-fold hints to train on.

The LM learns to turn the hint head's token bag into the sentence. Trained on the bags the
head predicts for texts it was fit on, it would learn to copy a near-perfect bag and then
meet worse ones at test time (correctors trained on in-fold hypotheses "learn to copy", as
the vec2text-qwen3-fr recipe found). So each training pair's hints come from a head fit on
the other folds, as noisy as the full head's are on unseen text; the full head, fit on every
pair, is the one saved in the model and used at test time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch

from invert.errors import InvertError
from invert.models.token_bag import TokenBagHead

logger = logging.getLogger(__name__)


def fit_hint_heads(
    inverter: torch.nn.Module,
    texts: Sequence[str],
    embeddings: torch.Tensor,
    folds: int = 2,
    epochs: int = 10,
    lr: float = 2e-3,
    seed: int = 0,
    mixed_precision: str = "no",
) -> torch.Tensor:
    """Fits ``inverter.hint_head`` on all pairs; returns each pair's out-of-fold hints.

    Args:
        inverter: A :class:`~invert.models.prefix_lm.PrefixLMInverter` with ``hint_tokens > 0``
            and a tokenizer attached.
        texts: The training texts.
        embeddings: Their embeddings.
        folds: Folds for the out-of-fold hints (>= 2).
        epochs: Passes over the pairs for each head.
        lr: Adam learning rate of each head.
        seed: Seeds the fold split, the heads' initialization and their batches.
        mixed_precision: ``bf16`` fits the heads under bf16 autocast where that is faster
            (:func:`~invert.models.multilabel.fit_multilabel`).

    Returns:
        ``[len(texts), hint_tokens]`` LM token ids: row i from a head that never saw pair i.

    Raises:
        InvertError: The inverter reads no hints, ``folds < 2`` or fewer pairs than folds.
    """
    head = getattr(inverter, "hint_head", None)
    if head is None or inverter.tokenizer is None:
        raise InvertError("this inverter reads no word hints (model.hint_tokens is 0)")
    if folds < 2 or len(texts) < folds:
        raise InvertError(
            f"out-of-fold hints need folds >= 2 and >= folds pairs; got {folds} folds, {len(texts)} pairs"
        )
    start = time.perf_counter()
    config = inverter.config
    token_lists = inverter.tokenizer(
        list(texts), add_special_tokens=False, truncation=True, max_length=config.max_text_tokens
    )["input_ids"]
    embeddings = embeddings.float().cpu()
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
    hints = torch.empty(len(texts), config.hint_tokens, dtype=torch.long)
    for fold in range(folds):
        held = order[fold::folds]
        kept = torch.cat([order[f::folds] for f in range(folds) if f != fold])
        torch.manual_seed(seed + 1 + fold)
        fold_head = TokenBagHead(
            config.embedder_dim, config.hint_vocabulary, config.hint_hidden_dim
        )
        fold_head.fit(
            [token_lists[i] for i in kept.tolist()], embeddings[kept], epochs, lr, seed + 1 + fold,
            mixed_precision,
        )
        hints[held] = fold_head.top_tokens(embeddings[held], config.hint_tokens).cpu()
    torch.manual_seed(seed)
    device = head.token_ids.device
    head.to("cpu")
    losses = head.fit(token_lists, embeddings, epochs, lr, seed, mixed_precision)
    head.to(device)
    logger.info("hint heads: %d folds + the full head, final loss %.4f, %.0f s",
                folds, losses[-1], time.perf_counter() - start)  # fmt: skip
    return hints
