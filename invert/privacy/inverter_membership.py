"""Membership inference against an embedding inverter: are its own training texts easier?

An inverter trained on (text, embedding) pairs may memorize its training texts. The auditor
holds candidate texts and the embedder; members are texts from the inverter's training split,
non-members come from the held-out split of the same corpus (same distribution, so a gap is
memorization and not a distribution shift). Two kinds of attack, higher score = "member":

* white-box ``loss``: minus the inverter's mean token NLL of the text given its own embedding,
  and ``zlib``: the same NLL in bits over the text's zlib-compressed bits (calibrates for how
  predictable the text is anyway, as in Carlini et al. 2021);
* black-box ``reconstruction_f1`` / ``reconstruction_cosine``: invert the embedding and
  compare the reconstruction with the candidate text (token F1) or re-embed it (cosine) —
  needs only the inverter's outputs, as an attacker with API access would have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from invert.embedders import build_embedder
from invert.embedders.base import Embedder
from invert.errors import EmptyInputError
from invert.inversion.metrics import cosine_similarity_rows, token_f1
from invert.memorization.blind_baseline import BLIND, blind_baseline_scores
from invert.memorization.membership import evaluate_attack, zlib_bytes
from invert.models.base import tokenize_targets

INVERTER_ATTACKS = ("loss", "zlib", "reconstruction_f1", "reconstruction_cosine")


@torch.no_grad()
def conditional_nll(
    inverter: Any,
    embeddings: torch.Tensor,
    texts: Sequence[str],
    batch_size: int = 16,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) of each text given its embedding under the inverter, and token counts.

    Works for both inverter families: an encoder-decoder's logits line up with its labels; a
    prefix LM's last ``T + 1`` positions predict the ``T`` target tokens (after its prefix).
    """
    inverter.eval()
    emb = inverter.check_embeddings(embeddings)
    device = next(inverter.parameters()).device
    max_length = inverter.config.max_text_tokens
    nll, counts = [], []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="scoring texts", disable=not show_progress):
        batch = tokenize_targets(
            inverter.tokenizer, list(texts[start : start + batch_size]), max_length
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        out = inverter(emb[start : start + batch_size].to(device), **batch)
        labels = batch["labels"]
        width = labels.shape[1]
        logits = out.logits.float()
        logits = logits if logits.shape[1] == width else logits[:, -width - 1 : -1]
        token_nll = F.cross_entropy(
            logits.transpose(1, 2), labels, ignore_index=-100, reduction="none"
        )
        nll.append(token_nll.sum(1).cpu())
        counts.append((labels != -100).sum(1).cpu())
    return torch.cat(nll).numpy(), torch.cat(counts).numpy()


def inverter_attack_scores(
    inverter: Any,
    embedder: Embedder,
    texts: Sequence[str],
    embeddings: torch.Tensor,
    attacks: Sequence[str] = INVERTER_ATTACKS,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    show_progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-text membership scores (higher = more likely a training text) for each attack."""
    unknown = sorted(set(attacks) - set(INVERTER_ATTACKS))
    if unknown:
        raise ValueError(f"unknown inverter attacks {unknown}; known: {list(INVERTER_ATTACKS)}")
    scores: dict[str, np.ndarray] = {}
    if {"loss", "zlib"} & set(attacks):
        nll, counts = conditional_nll(inverter, embeddings, texts, batch_size, show_progress)
        if "loss" in attacks:
            scores["loss"] = -nll / np.maximum(counts, 1)
        if "zlib" in attacks:
            scores["zlib"] = -(nll / math.log(2)) / (8.0 * zlib_bytes(texts))
    if {"reconstruction_f1", "reconstruction_cosine"} & set(attacks):
        recon = inverter.generate_texts(
            embeddings,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            show_progress=show_progress,
        )
        if "reconstruction_f1" in attacks:
            scores["reconstruction_f1"] = np.array(
                [token_f1(r, t) for r, t in zip(recon, texts, strict=True)]
            )
        if "reconstruction_cosine" in attacks:
            # An empty reconstruction cannot be embedded; it is as far as it gets (cosine -1).
            cos = np.full(len(recon), -1.0)
            keep = [i for i, r in enumerate(recon) if r.strip()]
            if keep:
                re_emb = embedder.encode([recon[i] for i in keep])
                cos[keep] = cosine_similarity_rows(re_emb, embeddings[keep].float()).numpy()
            scores["reconstruction_cosine"] = cos
    return {a: scores[a] for a in attacks}


def inverter_membership(
    inverter: Any,
    embedder: Embedder,
    members: Sequence[str],
    non_members: Sequence[str],
    member_embeddings: torch.Tensor | None = None,
    non_member_embeddings: torch.Tensor | None = None,
    attacks: Sequence[str] = INVERTER_ATTACKS,
    fprs: Sequence[float] = (0.01, 0.001),
    n_bootstrap: int = 1000,
    batch_size: int = 16,
    seed: int = 0,
    show_progress: bool = False,
    blind_folds: int | None = 5,
) -> tuple[dict[str, dict[str, float]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Membership inference on an inverter's training texts vs held-out texts.

    Args:
        inverter: A trained inverter with its tokenizer attached.
        embedder: The embedder it inverts (embeds texts when embeddings are not given, and
            re-embeds reconstructions for the cosine attack).
        members: Texts from the inverter's training split.
        non_members: Held-out texts of the same corpus.
        member_embeddings: Their embeddings (e.g. from the pair cache); computed when None.
        non_member_embeddings: Likewise for the non-members.
        attacks: Names from ``INVERTER_ATTACKS``.
        fprs: FPRs at which to report TPR.
        n_bootstrap: Bootstrap resamples for the AUC interval.
        batch_size: Texts per forward / generate call.
        seed: Seeds the bootstrap and the blind baseline's folds.
        show_progress: Progress bars.
        blind_folds: Folds of the model-free blind baseline reported beside the attacks as
            ``"blind"`` (None: left out).

    Returns:
        ``(metrics, scores)`` as :func:`invert.memorization.membership.membership_inference`.

    Raises:
        EmptyInputError: Members or non-members are empty.
    """
    if not members or not non_members:
        raise EmptyInputError(
            f"membership inference needs members and non-members; got {len(members)} and "
            f"{len(non_members)}"
        )
    texts = list(members) + list(non_members)
    if member_embeddings is None or non_member_embeddings is None:
        embeddings = embedder.encode(texts)
    else:
        embeddings = torch.cat([member_embeddings, non_member_embeddings]).float()
    scores = inverter_attack_scores(
        inverter, embedder, texts, embeddings, attacks, batch_size, show_progress=show_progress
    )
    n = len(members)
    split = {a: (s[:n], s[n:]) for a, s in scores.items()}
    folds = min(blind_folds or 0, len(members), len(non_members))
    if folds >= 2:  # a handful of texts still gets a baseline, with fewer folds
        split[BLIND] = blind_baseline_scores(members, non_members, folds, seed)
    metrics = {a: evaluate_attack(m, x, fprs, n_bootstrap, seed) for a, (m, x) in split.items()}
    return metrics, split


def run_inverter_membership(cfg: dict[str, Any]) -> dict[str, Any]:
    """The Hydra experiment: membership inference on a saved inverter's training texts.

    Members are the training-split texts the run actually drew (replayed from its sampler when
    its ``results.json`` records ``train.examples_seen``, or ``cfg["examples_seen"]``); the
    non-members are the test split. Writes ``results.json`` and ``roc.png``; W&B gets the
    aggregates and the plot, never the texts.

    Args:
        cfg: ``inverter_path``, ``embedder``, ``data`` (the corpus the inverter was trained on,
            same seed and fractions), ``n`` (texts per side), ``attacks``, ``examples_seen``,
            ``seed``, ``batch_size``, ``logger`` and ``paths``.

    Returns:
        ``{"metrics": {attack: {...}}, "best": {...}, "n_members": ..., ...}``.
    """

    from invert.inversion.runs.preamble import data_for, embedded_splits, recorded_data
    from invert.memorization.membership import attack_summary, plot_roc
    from invert.models.loading import load_inverter
    from invert.reporting.run_context import open_run
    from invert.training.sampling import seen_example_indices

    run = open_run(cfg)
    inverter = load_inverter(cfg["inverter_path"])
    embedder: Embedder = build_embedder(cfg["embedder"])
    data = data_for(inverter, cfg["inverter_path"], cfg.get("data"))
    pairs = embedded_splits(data, embedder, inverter.tokenizer, ("train", "test"))
    train, test = pairs["train"], pairs["test"]
    record = getattr(inverter.config, "training_data", None) or {}
    seen = cfg.get("examples_seen") or record.get("examples_seen")
    train_seed = cfg.get("train_seed")
    if train_seed is None:
        train_seed = recorded_data(inverter, cfg["inverter_path"])["train_seed"] if seen else 0
    pool = seen_example_indices(len(train.texts), int(train_seed), int(seen)) if seen else list(range(len(train.texts)))
    rng = np.random.default_rng(cfg["seed"])
    n = min(int(cfg["n"]), len(pool), len(test.texts))
    members = sorted(rng.choice(pool, n, replace=False).tolist())
    non_members = sorted(rng.choice(len(test.texts), n, replace=False).tolist())
    metrics, scores = inverter_membership(
        inverter,
        embedder,
        [train.texts[i] for i in members],
        [test.texts[i] for i in non_members],
        train.embeddings[members],
        test.embeddings[non_members],
        attacks=cfg["attacks"],
        batch_size=int(cfg["batch_size"]),
        seed=int(cfg["seed"]),
        show_progress=True,
    )
    roc = plot_roc(scores, run.run_dir / "roc.png", title="Inverter membership inference")
    summary = {
        "metrics": metrics, "best": attack_summary(metrics), "n_members": n, "n_non_members": n,
        "members_from": "examples the training run drew" if seen else "the whole training split",
        "examples_seen": seen, "train_pairs": len(train.texts), "inverter_path": cfg["inverter_path"],
        "corpus": data["name"], "plot": str(roc),
    }  # fmt: skip
    run.tracker.log_image("roc", roc)
    run.finish(summary)
    print(json.dumps({a: round(m["auc"], 3) for a, m in metrics.items()}))
    return summary
