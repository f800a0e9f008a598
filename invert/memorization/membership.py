"""Membership inference attacks on language models and their metrics, as benchmarked by MIMIR.

Duan et al., "Do Membership Inference Attacks Work on Large Language Models?" (MIMIR,
arXiv:2402.07841). Every attack maps a text to a score, higher meaning "more likely a training
member":

- ``loss``: minus the mean token NLL (Yeom et al., arXiv:1709.01604).
- ``reference``: minus (target loss - reference loss) (Carlini et al., arXiv:2012.07805).
- ``zlib``: minus target loss / zlib-compressed length in bytes (Carlini et al., 2012.07805).
- ``min_k``: mean of the k% lowest token log-probs (Shi et al., Min-K%, arXiv:2310.16789).
- ``min_k_plus_plus``: the same over token log-probs standardised by the mean and standard
  deviation of log p under the model's own next-token distribution (Zhang et al., Min-K%++,
  arXiv:2404.02936).

Metrics: ROC AUC, a bootstrap confidence interval for it, and TPR at low FPR (Carlini et al.,
"Membership Inference Attacks From First Principles", arXiv:2112.03570). Members and
non-members must be drawn from one distribution (a random split of one corpus).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from invert.errors import EmptyInputError, InvertError, unknown_name
from invert.memorization.blind_baseline import BLIND, blind_baseline_scores
from invert.memorization.private_corpus import pad_batch, tokenize
from invert.reporting.plots import save_figure


@dataclass
class TokenStats:
    """Per-text token statistics under one model (token 0, the BOS context, is not scored).

    Attributes:
        logp: ``log p(x_t | x_<t)`` per scored token (nats).
        mu: ``E_z[log p(z | x_<t)]`` under the model's next-token distribution.
        sigma: Standard deviation of ``log p(z | x_<t)`` under that distribution.
        top1_hit: Whether the model's most likely next token is ``x_t`` (None when not kept):
            EZ-MIA reads memorization at the tokens the model gets wrong.
    """

    logp: list[np.ndarray]
    mu: list[np.ndarray]
    sigma: list[np.ndarray]
    top1_hit: list[np.ndarray] | None = None

    def mean_nll(self) -> np.ndarray:
        """Mean token NLL (nats) per text: the LM loss."""
        return np.array([-lp.mean() for lp in self.logp])


@torch.no_grad()
def token_statistics(
    model: torch.nn.Module, tokenizer: Any, texts: Sequence[str], batch_size: int = 16
) -> TokenStats:
    """One forward pass per batch gives every attack's inputs (BOS prepended to each text)."""
    if not texts:
        raise EmptyInputError("no texts to score")
    rows = tokenize(tokenizer, texts)
    if min(len(r) for r in rows) < 2:
        raise EmptyInputError("a text tokenizes to nothing; drop empty texts first")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logp, mu, sigma, hit = ([None] * len(rows) for _ in range(4))
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = pad_batch([rows[i] for i in chunk])
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            probs = log_probs.exp()
            m = (probs * log_probs).sum(-1)
            var = (probs * log_probs.square()).sum(-1) - m.square()
            s = var.clamp_min(1e-12).sqrt()
            picked = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1)
            top1 = log_probs.argmax(-1) == ids[:, 1:]
            for j, i in enumerate(chunk):
                n = len(rows[i]) - 1
                logp[i] = picked[j, :n].double().cpu().numpy()
                mu[i] = m[j, :n].double().cpu().numpy()
                sigma[i] = s[j, :n].double().cpu().numpy()
                hit[i] = top1[j, :n].cpu().numpy()
    finally:
        model.train(was_training)
    return TokenStats(logp, mu, sigma, hit)  # type: ignore[arg-type]


# --- attacks ---------------------------------------------------------------------------------

AttackFn = Callable[[TokenStats, Sequence[str], "TokenStats | None", float], np.ndarray]
ATTACKS: dict[str, AttackFn] = {}
NEEDS_REFERENCE: set[str] = set()


def register_attack(name: str, needs_reference: bool = False) -> Callable[[AttackFn], AttackFn]:
    """Registers ``fn(target_stats, texts, reference_stats, k) -> scores`` under ``name``.

    ``needs_reference``: the attack compares with a reference model, so a run without one
    leaves it out rather than failing.
    """

    def wrap(fn: AttackFn) -> AttackFn:
        ATTACKS[name] = fn
        if needs_reference:
            NEEDS_REFERENCE.add(name)
        return fn

    return wrap


def runnable_attacks(attacks: Sequence[str], has_reference: bool) -> list[str]:
    """``attacks`` less those that need a reference model when there is none."""
    return [a for a in attacks if has_reference or a not in NEEDS_REFERENCE]


def _lowest_k_mean(values: np.ndarray, k: float) -> float:
    n = max(1, int(len(values) * k))
    return float(np.sort(values)[:n].mean())


@register_attack("loss")
def loss_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    return -target.mean_nll()


@register_attack("reference", needs_reference=True)
def reference_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    if ref is None:
        raise InvertError(
            "the 'reference' attack needs a reference model; configure one or drop it"
        )
    return -(target.mean_nll() - ref.mean_nll())


def zlib_bytes(texts: Sequence[str]) -> np.ndarray:
    """Each text's zlib-compressed size in bytes: how predictable it is to a generic compressor."""
    return np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)


@register_attack("zlib")
def zlib_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    return -target.mean_nll() / zlib_bytes(texts)


@register_attack("min_k")
def min_k_attack(target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float):
    return np.array([_lowest_k_mean(lp, k) for lp in target.logp])


@register_attack("min_k_plus_plus")
def min_k_plus_plus_attack(
    target: TokenStats, texts: Sequence[str], ref: TokenStats | None, k: float
):
    return np.array(
        [
            _lowest_k_mean((lp - m) / s, k)
            for lp, m, s in zip(target.logp, target.mu, target.sigma, strict=True)
        ]
    )


def attack_scores(
    attacks: Sequence[str],
    target: TokenStats,
    texts: Sequence[str],
    reference: TokenStats | None = None,
    k: float = 0.2,
) -> dict[str, np.ndarray]:
    """Scores of each named attack (higher = more likely a member)."""
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise unknown_name("membership attack", unknown[0], list(ATTACKS))
    if not 0 < k <= 1:
        raise InvertError(f"k is a fraction of tokens in (0, 1], got {k}")
    return {
        a: np.asarray(ATTACKS[a](target, texts, reference, k), dtype=np.float64) for a in attacks
    }


DEFAULT_ATTACKS = (
    "loss", "reference", "zlib", "min_k", "min_k_plus_plus", "ez_mia", "wbc", "informia",
)  # fmt: skip


# --- metrics ---------------------------------------------------------------------------------


def _check_scores(members: np.ndarray, non_members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    members = np.asarray(members, dtype=np.float64).ravel()
    non_members = np.asarray(non_members, dtype=np.float64).ravel()
    if members.size == 0 or non_members.size == 0:
        raise EmptyInputError("need at least one member and one non-member score")
    if not (np.all(np.isfinite(members)) and np.all(np.isfinite(non_members))):
        raise InvertError("membership scores hold NaN/inf; check the model's outputs")
    return members, non_members


def roc_curve(members: np.ndarray, non_members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (FPR, TPR) for "member if score >= threshold", one per distinct score.

    Returns:
        ``(fpr, tpr)`` from (0, 0) to (1, 1), FPR non-decreasing.
    """
    members, non_members = _check_scores(members, non_members)
    thresholds = np.unique(np.concatenate([members, non_members]))[::-1]
    m_sorted, n_sorted = np.sort(members), np.sort(non_members)
    tp = members.size - np.searchsorted(m_sorted, thresholds, side="left")
    fp = non_members.size - np.searchsorted(n_sorted, thresholds, side="left")
    fpr = np.concatenate([[0.0], fp / non_members.size])
    tpr = np.concatenate([[0.0], tp / members.size])
    return fpr, tpr


def roc_auc(members: np.ndarray, non_members: np.ndarray) -> float:
    """P(member score > non-member score) + 0.5 P(tie): the area under the ROC curve."""
    members, non_members = _check_scores(members, non_members)
    ranks = rankdata(np.concatenate([members, non_members]))  # average ranks handle ties
    n_m, n_n = members.size, non_members.size
    return float((ranks[:n_m].sum() - n_m * (n_m + 1) / 2) / (n_m * n_n))


def tpr_at_fpr(members: np.ndarray, non_members: np.ndarray, fpr: float) -> float:
    """Highest TPR of any threshold whose FPR is at most ``fpr``.

    With fewer than ``1 / fpr`` non-members this is the TPR at zero false positives.
    """
    if not 0 <= fpr <= 1:
        raise InvertError(f"fpr must lie in [0, 1], got {fpr}")
    fprs, tprs = roc_curve(members, non_members)
    return float(tprs[fprs <= fpr + 1e-12].max())


def _tpr_key(fpr: float) -> str:
    return f"tpr@{100 * fpr:g}%fpr"


def bootstrap_intervals(
    members: np.ndarray,
    non_members: np.ndarray,
    fprs: Sequence[float] = (),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the AUC and of TPR at each FPR in ``fprs``.

    Members and non-members are resampled apart (each side keeps its size), and every metric is
    read off the same resamples.

    Returns:
        ``{"auc": (low, high), "tpr@1%fpr": (low, high), ...}``.
    """
    members, non_members = _check_scores(members, non_members)
    if n_bootstrap < 1:
        raise InvertError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    draws = {"auc": np.empty(n_bootstrap), **{_tpr_key(f): np.empty(n_bootstrap) for f in fprs}}
    for b in range(n_bootstrap):
        m = members[rng.integers(0, members.size, members.size)]
        n = non_members[rng.integers(0, non_members.size, non_members.size)]
        draws["auc"][b] = roc_auc(m, n)
        if fprs:
            fpr_curve, tpr_curve = roc_curve(m, n)
            for f in fprs:
                draws[_tpr_key(f)][b] = tpr_curve[fpr_curve <= f + 1e-12].max()
    tail = 100 * (1 - confidence) / 2
    return {
        k: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))
        for k, v in draws.items()
    }


def bootstrap_auc_ci(
    members: np.ndarray,
    non_members: np.ndarray,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for the AUC, resampling members and non-members apart."""
    return bootstrap_intervals(members, non_members, (), n_bootstrap, confidence, seed)["auc"]


def evaluate_attack(
    members: np.ndarray,
    non_members: np.ndarray,
    fprs: Sequence[float] = (0.01, 0.001),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """AUC and TPR at each FPR in ``fprs`` (keys like ``tpr@1%fpr``), each with its 95%
    bootstrap interval (``auc_ci_low`` / ``auc_ci_high``, ``tpr@1%fpr_ci_low`` / ``_ci_high``).
    """
    intervals = bootstrap_intervals(members, non_members, fprs, n_bootstrap, seed=seed)
    out = {"auc": roc_auc(members, non_members)}
    out["auc_ci_low"], out["auc_ci_high"] = intervals["auc"]
    for f in fprs:
        key = _tpr_key(f)
        out[key] = tpr_at_fpr(members, non_members, f)
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = intervals[key]
    return out


def membership_inference(
    model: torch.nn.Module,
    tokenizer: Any,
    members: Sequence[str],
    non_members: Sequence[str],
    reference: torch.nn.Module | None = None,
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    k: float = 0.2,
    fprs: Sequence[float] = (0.01, 0.001),
    n_bootstrap: int = 1000,
    batch_size: int = 16,
    seed: int = 0,
    blind_folds: int | None = 5,
) -> tuple[dict[str, dict[str, float]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Runs the attacks on members vs non-members and scores each.

    Args:
        model: The target model.
        tokenizer: Its tokenizer (the reference model must share it).
        members: Training texts.
        non_members: Held-out texts from the same distribution.
        reference: Reference model for the ``reference`` attack (skipped when None).
        attacks: Names from ``ATTACKS``.
        k: Token fraction for Min-K% and Min-K%++.
        fprs: FPRs at which to report TPR.
        n_bootstrap: Bootstrap resamples for the AUC interval.
        batch_size: Texts per forward pass.
        seed: Seeds the bootstrap and the blind baseline's folds.
        blind_folds: Folds of the model-free blind baseline reported beside the attacks under
            ``"blind"`` (None: leave it out).

    Returns:
        ``(metrics, scores)``: ``{attack: evaluate_attack(...)}`` and
        ``{attack: (member_scores, non_member_scores)}``.
    """
    attacks = runnable_attacks(attacks, reference is not None)
    texts = list(members) + list(non_members)
    target = token_statistics(model, tokenizer, texts, batch_size)
    ref = (
        token_statistics(reference, tokenizer, texts, batch_size) if reference is not None else None
    )
    scores = attack_scores(attacks, target, texts, ref, k)
    split = {a: (s[: len(members)], s[len(members) :]) for a, s in scores.items()}
    if blind_folds:
        split[BLIND] = blind_baseline_scores(members, non_members, blind_folds, seed)
    metrics = {a: evaluate_attack(m, n, fprs, n_bootstrap, seed) for a, (m, n) in split.items()}
    return metrics, split


def plot_roc(
    scores: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str | None = None
) -> Path:
    """ROC curves of several attacks: linear axes and log-log (low-FPR regime) side by side."""
    from matplotlib.figure import Figure

    if not scores:
        raise EmptyInputError("no attack scores to plot")
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    lin, log = fig.subplots(1, 2)
    for name, (m, n) in scores.items():
        fpr, tpr = roc_curve(m, n)
        label = f"{name} (AUC {roc_auc(m, n):.3f})"
        lin.plot(fpr, tpr, label=label)
        log.plot(np.maximum(fpr, 1e-4), np.maximum(tpr, 1e-4), label=label)
    for ax in (lin, log):
        ax.plot([1e-4, 1], [1e-4, 1], color="grey", ls=":", lw=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.grid(alpha=0.3)
    log.set_xscale("log")
    log.set_yscale("log")
    lin.legend(fontsize=7, loc="lower right")
    fig.suptitle(title or "Membership inference ROC")
    return save_figure(fig, path)


def attack_summary(metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The best attack by AUC and its numbers (for headline tables; the blind baseline, which
    never looks at the model, is not an attack)."""
    attacks = [a for a in metrics if a != BLIND]
    if not attacks:
        raise EmptyInputError("no attack metrics")
    best = max(attacks, key=lambda a: metrics[a]["auc"])
    return {"best_attack": best, **metrics[best]}
