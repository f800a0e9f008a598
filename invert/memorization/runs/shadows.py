"""Shadow models for the memorization audit's LiRA and RMIA rows.

Each shadow is trained exactly as the target (same regime, trainer settings and canaries) on a
random subset of the candidate texts (members and non-members) as large as the member set, so
that every candidate has shadows that saw it and shadows that did not. The shadows then score
the candidates and the population texts; the attacks are in
:mod:`invert.memorization.shadow_attacks`.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.configs.probes import MemorizationProbeConfig
from invert.memorization.membership import token_statistics
from invert.memorization.private_corpus import PrivateCorpus
from invert.memorization.shadow_attacks import ShadowSignals, shadow_splits
from invert.reporting.tracking import Tracker

logger = logging.getLogger(__name__)

# fit(probe, regime, texts, tokenizer, out_dir, tracker, seed) -> (model, n_trainable, info)
FitFn = Callable[..., tuple[torch.nn.Module, int, dict[str, Any]]]


def train_shadow_models(
    fit: FitFn,
    probe: MemorizationProbeConfig,
    regime: str,
    corpus: PrivateCorpus,
    tokenizer: Any,
    run_dir: Path,
    seed: int,
) -> tuple[ShadowSignals, dict[str, Any]]:
    """Trains ``probe.shadows.n_models`` shadows of ``regime`` and scores every candidate.

    Returns:
        ``(signals, info)``: the shadows' mean token log-probabilities on the candidates
        (``corpus.members + corpus.non_members``) and on ``corpus.population``, and the count,
        steps and seconds spent.
    """
    n_models = probe.shadows.n_models
    candidates = corpus.members + corpus.non_members
    in_mask = shadow_splits(len(candidates), n_models, len(corpus.members), seed + 7919)
    canary_copies = [c.text for c in corpus.canaries for _ in range(c.repetitions)]
    scored = candidates + corpus.population
    signals = np.empty((n_models, len(scored)))
    started, steps = time.perf_counter(), 0
    for m in range(n_models):
        texts = [t for t, keep in zip(candidates, in_mask[m], strict=True) if keep]
        model, _, info = fit(
            probe, regime, texts + canary_copies, tokenizer,
            run_dir / "shadows" / f"{regime}-{m}", Tracker(), seed + 1000 + m,
        )  # fmt: skip
        steps += int(info["steps"])
        stats = token_statistics(model, tokenizer, scored, probe.eval.batch_size)
        signals[m] = -stats.mean_nll()
        del model
        gc.collect()
        logger.info(
            "shadow %d/%d of %s trained (%d steps), %.0f s so far",
            m + 1, n_models, regime, info["steps"], time.perf_counter() - started,
        )  # fmt: skip
    n = len(candidates)
    population = signals[:, n:] if corpus.population else None
    shadows = ShadowSignals(signals[:, :n], in_mask, population)
    info = {"n_models": n_models, "steps": steps, "seconds": time.perf_counter() - started}
    return shadows, info
