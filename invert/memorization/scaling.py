"""Capacity scaling: membership and test loss against dataset size (Morris et al. 2025,
arXiv:2505.24832).

The paper's claims tested here: a loss-threshold membership attack weakens toward chance as
the training set grows past the model's capacity (its F1 follows a sigmoid in capacity /
dataset bits), and double descent in test loss begins where dataset bits reach capacity. Each
(GPT size, N) cell trains a GPT from scratch on N sequences, scores them and N (or a fixed
number of) non-members from the same distribution, and records:

* train / test loss: mean NLL in bits per token of members / non-members;
* dataset bits and capacity bits = ``bits_per_parameter`` × all parameters (embeddings
  included, as :func:`~invert.memorization.capacity.run_capacity_cell` counts them), and their
  ratio, the x axis of every plot;
* the loss attack (score = minus the loss): AUC with a bootstrap interval
  (:func:`~invert.memorization.membership.evaluate_attack`) and a held-out F1 (see
  :func:`held_out_threshold_f1`).

Data sources (``DATA_SOURCES``):

* ``random``: uniform tokens (:func:`~invert.memorization.capacity.random_sequences`). Dataset
  bits are exactly ``N·S·log2 V``; non-members are fresh sequences of another seed. Nothing
  generalizes, so the test loss can only rise above ``log2 V`` as the model memorizes.
* ``text``: S-character chunks of a packaged corpus (:mod:`invert.data.corpora`), one shuffled
  pool split into n-gram fitting, member and non-member sequences. Their bits are an
  *estimate*: the NLL under a character n-gram fitted on the disjoint fitting part
  (:class:`~invert.memorization.ngram.TokenNgramModel`), not the unknown true entropy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.configs.probes import ScalingTrainConfig
from invert.configs.schema import from_mapping
from invert.errors import InvertError, unknown_name
from invert.memorization.capacity import (
    CellTracker,
    TokenRows,
    lm_collate,
    memorized_bits,
    model_name,
    random_sequences,
    sequence_entropy_bits,
    with_bos,
)
from invert.memorization.membership import evaluate_attack
from invert.memorization.ngram import TokenNgramModel
from invert.memorization.private_corpus import CharTokenizer
from invert.memorization.target_models import build_gpt, count_parameters
from invert.memorization.token_scoring import sequence_nll_bits
from invert.reporting.tracking import Tracker
from invert.training.trainer import Trainer, TrainerConfig

DATA_SOURCES = ("random", "text")


@dataclass
class SequenceSource:
    """Where a grid's members and non-members come from; rows carry the BOS in column 0.

    Attributes:
        kind: One of ``DATA_SOURCES``.
        seq_len: S, scored tokens per sequence.
        model_vocab_size: Ids the GPT reads and predicts (BOS included).
        bos_id: The id in column 0.
        seed: Seeds the random tokens (random) or the pool's shuffle (text).
        vocab_size: V of the random tokens (random only).
        pool: The shuffled text chunks after the n-gram's share, ``[n, S + 1]`` (text only).
        ngram: The n-gram that prices text in bits (text only).
    """

    kind: str
    seq_len: int
    model_vocab_size: int
    bos_id: int
    seed: int
    vocab_size: int | None = None
    pool: torch.Tensor | None = None
    ngram: TokenNgramModel | None = None

    def members(self, n: int) -> torch.Tensor:
        """The first ``n`` training sequences (a smaller N's set is a prefix of a larger one's)."""
        if self.pool is None:
            return with_bos(
                random_sequences(n, self.seq_len, self.vocab_size, self.seed), self.bos_id
            )
        self._check_fits(n, 0)
        return self.pool[:n]

    def non_members(self, n: int, n_members: int) -> torch.Tensor:
        """``n`` held-out sequences, disjoint from the first ``n_members`` members."""
        if self.pool is None:
            # Another seed: the same distribution; a row equal to a member has odds ~N / V^S.
            tokens = random_sequences(n, self.seq_len, self.vocab_size, self.seed + 1)
            return with_bos(tokens, self.bos_id)
        self._check_fits(n_members, n)
        # From the pool's far end, so the held-out set is one fixed set whatever N is.
        return self.pool[self.pool.shape[0] - n :]

    def _check_fits(self, n_members: int, n_non_members: int) -> None:
        if n_members + n_non_members > self.pool.shape[0]:
            raise InvertError(
                f"the {self.pool.shape[0]}-sequence pool cannot hold {n_members} members and "
                f"{n_non_members} non-members apart; lower N, n_non_members or seq_len, or "
                "pick a larger corpus"
            )

    def dataset_bits(self, rows: torch.Tensor) -> float:
        """Information content of ``rows``: exact for random tokens, an n-gram estimate for text."""
        if self.ngram is None:
            return rows.shape[0] * sequence_entropy_bits(self.seq_len, self.vocab_size)
        return float(self.ngram.sequence_bits(rows).sum())

    def reference_loss(self, rows: torch.Tensor) -> float:
        """Bits per token of a model that memorized nothing: ``log2 V``, or the n-gram's."""
        return self.dataset_bits(rows) / (rows.shape[0] * self.seq_len)


def build_source(
    kind: str,
    seq_len: int,
    seed: int,
    vocab_size: int | None = None,
    corpus: str | None = None,
    ngram_order: int | None = None,
    ngram_fit_sequences: int | None = None,
) -> SequenceSource:
    """Builds a data source for the scaling grid.

    Args:
        kind: ``random`` or ``text``.
        seq_len: S, tokens (characters) per sequence.
        seed: Seeds the tokens (random) or the shuffle of the chunk pool (text).
        vocab_size: V of the random tokens (random; the BOS is id V).
        corpus: A registered corpus name or ``file:PATH`` (text), joined with newlines and cut
            into S-character chunks; characters outside printable ASCII become one unknown id.
        ngram_order: The n-gram's order (text).
        ngram_fit_sequences: Chunks set aside to fit the n-gram (text), never trained or scored.

    Raises:
        UnknownNameError: ``kind`` is not one of ``DATA_SOURCES``.
        InvertError: A setting the source needs is missing, or the corpus is too small.
    """
    if kind not in DATA_SOURCES:
        raise unknown_name("data source", kind, DATA_SOURCES)
    if kind == "random":
        if vocab_size is None:
            raise InvertError("random data needs vocab_size (V of the uniform tokens)")
        return SequenceSource(kind, seq_len, model_vocab_size=vocab_size + 1, bos_id=vocab_size,
                              seed=seed, vocab_size=vocab_size)  # fmt: skip
    if corpus is None or ngram_order is None or ngram_fit_sequences is None:
        raise InvertError("text data needs corpus, ngram_order and ngram_fit_sequences")
    from invert.data.corpora import load_raw_corpus

    tokenizer = CharTokenizer()
    ids = torch.tensor(tokenizer.encode("\n".join(load_raw_corpus(corpus))), dtype=torch.long)
    n = ids.numel() // seq_len
    if n <= ngram_fit_sequences:
        raise InvertError(
            f"{corpus} gives {n} chunks of {seq_len} characters, not more than the "
            f"{ngram_fit_sequences} the n-gram takes; lower ngram_fit_sequences or seq_len"
        )
    chunks = ids[: n * seq_len].view(n, seq_len)
    chunks = chunks[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    rows = with_bos(chunks, tokenizer.bos_token_id)
    vocab = tokenizer.vocab_size
    ngram = TokenNgramModel.fit(rows[:ngram_fit_sequences], ngram_order, vocab)
    return SequenceSource(kind, seq_len, model_vocab_size=vocab, bos_id=tokenizer.bos_token_id,
                          seed=seed, pool=rows[ngram_fit_sequences:], ngram=ngram)  # fmt: skip


def _fitted_threshold(members: np.ndarray, non_members: np.ndarray) -> float:
    """The threshold ("member if score >= t") midway between the two classes' median scores.

    Not the threshold of best accuracy: on scores without signal that one lands anywhere (the
    arg-max of a random walk), so its F1 on fresh scores averages ~0.44 with a spread of ~0.13
    at any N, below chance. The midpoint predicts about half members on such scores (F1 0.50),
    and on a clean gap between the classes it falls inside the gap.
    """
    return float((np.median(members) + np.median(non_members)) / 2)


def _f1(members: np.ndarray, non_members: np.ndarray, threshold: float) -> tuple[float, float]:
    true_pos = int((members >= threshold).sum())
    false_pos = int((non_members >= threshold).sum())
    f1 = 2 * true_pos / (members.size + true_pos + false_pos)
    accuracy = (true_pos + int((non_members < threshold).sum())) / (members.size + non_members.size)
    return f1, accuracy


def held_out_threshold_f1(
    members: np.ndarray, non_members: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """F1 and accuracy of a threshold attack whose threshold never saw the scores it is rated on.

    Members and non-members are each split into two random halves; the threshold fitted on
    one half (:func:`_fitted_threshold`) is rated on the other, then the halves swap
    and the two ratings are averaged. A threshold fitted and rated on the same scores would be
    optimistic, most of all on small sets.

    Args:
        members: Scores of training sequences (higher = more likely a member).
        non_members: Scores of held-out sequences, ideally as many as members (F1 depends on
            the share of members; chance is ~0.5 only when the classes are balanced).
        seed: Seeds the split.

    Returns:
        ``{"f1": ..., "accuracy": ...}``, both ~0.5 at chance on balanced classes.

    Raises:
        InvertError: Fewer than two scores on either side (no split possible).
    """
    members, non_members = np.asarray(members, float), np.asarray(non_members, float)
    if min(members.size, non_members.size) < 2:
        raise InvertError("a held-out F1 needs >= 2 members and >= 2 non-members; raise N")
    rng = np.random.default_rng(seed)
    halves = [np.array_split(rng.permutation(s), 2) for s in (members, non_members)]
    ratings = []
    for fit, rate in ((0, 1), (1, 0)):
        threshold = _fitted_threshold(halves[0][fit], halves[1][fit])
        ratings.append(_f1(halves[0][rate], halves[1][rate], threshold))
    return {"f1": float(np.mean([r[0] for r in ratings])),
            "accuracy": float(np.mean([r[1] for r in ratings]))}  # fmt: skip


def cell_steps(n_sequences: int, batch_size: int, train: ScalingTrainConfig) -> int:
    """Optimizer steps of a cell: ``epochs`` passes over N, within ``[min_steps, max_steps]``."""
    per_epoch = math.ceil(n_sequences / batch_size)
    return max(train.min_steps, min(train.max_steps, math.ceil(train.epochs * per_epoch)))


def run_scaling_cell(
    source: SequenceSource,
    model_size: Mapping[str, int],
    n_sequences: int,
    output_dir: str | Path,
    train: ScalingTrainConfig | Mapping[str, Any],
    bits_per_parameter: float,
    n_non_members: int | None = None,
    seed: int = 0,
    tracker: Tracker | None = None,
    score_batch_size: int = 1024,
    n_bootstrap: int = 1000,
) -> dict[str, Any]:
    """Trains a GPT from scratch on N sequences and measures loss and membership on them.

    Args:
        source: :func:`build_source`'s data.
        model_size: ``n_layer``, ``d_model``, ``n_head`` (and optionally ``d_mlp``).
        n_sequences: N, the training set's size.
        output_dir: The cell's folder (the shared Trainer writes ``history.json`` there).
        train: :class:`~invert.configs.probes.ScalingTrainConfig` or its fields.
        bits_per_parameter: Capacity per parameter (the paper measures ~3.6).
        n_non_members: Held-out sequences scored (None: N). The attack uses as many of each
            side as the smaller one has, so its classes are balanced.
        seed: Seeds the initial weights, the data order, the bootstrap and the F1 split.
        tracker: Receives the cell's training curve under ``cell/<model>/N<n>/``.
        score_batch_size: Sequences per scoring pass.
        n_bootstrap: Resamples of the AUC's interval.

    Returns:
        The cell's record: ``model``, sizes, ``params``, ``n_sequences``, ``n_non_members``,
        ``dataset_bits``, ``capacity_bits``, ``dataset_to_capacity``, ``train_loss``,
        ``test_loss``, ``reference_loss`` (bits/token; see :meth:`SequenceSource.reference_loss`),
        ``auc``, ``auc_ci_low``, ``auc_ci_high``, ``f1``, ``accuracy``,
        ``memorized_bits`` and ``memorized_of_capacity`` (random data only: how full the
        model is; a low share past capacity means under-training, not a full model),
        ``steps``, ``epochs``, ``stopped_early`` and ``seconds``.
    """
    start = time.perf_counter()
    train = from_mapping(ScalingTrainConfig, train, "train")
    size = {k: int(v) for k, v in model_size.items()}
    name, seq_len = model_name(size), source.seq_len
    n_non_members = n_non_members or n_sequences
    members = source.members(n_sequences)
    non_members = source.non_members(n_non_members, n_sequences)
    model = build_gpt(vocab_size=source.model_vocab_size, context_length=seq_len + 1, seed=seed,
                      **size)  # fmt: skip
    batch_size = min(train.batch_size or n_sequences, n_sequences)
    steps = cell_steps(n_sequences, batch_size, train)
    config = TrainerConfig(
        output_dir=str(output_dir), max_steps=steps, batch_size=batch_size, lr=train.lr,
        # A short cell (small N) still spends half its steps at or past the peak LR.
        weight_decay=train.weight_decay, warmup_steps=min(train.warmup_steps, steps // 2),
        schedule=train.schedule, max_grad_norm=train.max_grad_norm, seed=seed,
        log_every=train.log_every, max_minutes=train.max_minutes,
    )  # fmt: skip
    cell_tracker = CellTracker(tracker, f"cell/{name}/N{n_sequences}") if tracker else None
    result = Trainer(model, TokenRows(members), lm_collate, config, cell_tracker).train()
    member_nll = sequence_nll_bits(model, members, batch_size=score_batch_size)
    non_member_nll = sequence_nll_bits(model, non_members, batch_size=score_batch_size)
    balanced = min(n_sequences, n_non_members)
    # Equal-length rows: minus the mean loss ranks exactly as minus the summed NLL.
    member_scores = -(member_nll[:balanced] / seq_len).numpy()
    non_member_scores = -(non_member_nll[:balanced] / seq_len).numpy()
    # No TPR at low FPR: with tens of non-members it would read a single score.
    attack = evaluate_attack(member_scores, non_member_scores, fprs=(), n_bootstrap=n_bootstrap,
                             seed=seed)  # fmt: skip
    params = count_parameters(model)
    dataset_bits = source.dataset_bits(members)
    capacity_bits = bits_per_parameter * params
    record = {
        "model": name, **size, "params": params, "data": source.kind,
        "n_sequences": n_sequences, "n_non_members": n_non_members, "seq_len": seq_len,
        "dataset_bits": dataset_bits, "capacity_bits": capacity_bits,
        "dataset_to_capacity": dataset_bits / capacity_bits,
        "train_loss": float(member_nll.mean()) / seq_len,
        "test_loss": float(non_member_nll.mean()) / seq_len,
        "reference_loss": source.reference_loss(non_members),
        **attack, **held_out_threshold_f1(member_scores, non_member_scores, seed),
        "memorized_bits": None, "memorized_of_capacity": None,
        "steps": result.steps, "epochs": result.steps * batch_size / n_sequences,
        "stopped_early": result.stopped_early, "seconds": time.perf_counter() - start,
    }  # fmt: skip
    if source.kind == "random":
        entropy = sequence_entropy_bits(seq_len, source.vocab_size)
        record["memorized_bits"] = float(memorized_bits(member_nll, entropy).sum())
        record["memorized_of_capacity"] = record["memorized_bits"] / capacity_bits
    return record


def scaling_by_model(cells: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model: membership at the smallest and largest ratio, and where test loss peaks.

    Returns:
        One dict per model (in order of parameter count): ``model``, ``params``,
        ``capacity_bits``, ``cells``, ``f1_first`` / ``auc_first`` (smallest ratio),
        ``f1_last`` / ``auc_last`` and ``ratio_last`` (largest), and ``test_loss_peak`` with
        ``test_loss_peak_ratio`` (double descent predicts a peak near ratio 1).
    """
    out = []
    for name in dict.fromkeys(c["model"] for c in cells):
        mine = sorted(
            (c for c in cells if c["model"] == name), key=lambda c: c["dataset_to_capacity"]
        )
        peak = max(mine, key=lambda c: c["test_loss"])
        out.append({
            "model": name, "params": mine[0]["params"], "capacity_bits": mine[0]["capacity_bits"],
            "cells": len(mine), "f1_first": mine[0]["f1"], "auc_first": mine[0]["auc"],
            "f1_last": mine[-1]["f1"], "auc_last": mine[-1]["auc"],
            "ratio_last": mine[-1]["dataset_to_capacity"],
            "test_loss_peak": peak["test_loss"], "test_loss_peak_ratio": peak["dataset_to_capacity"],
        })  # fmt: skip
    return sorted(out, key=lambda m: m["params"])
