"""Shadow-model membership attacks: LiRA and RMIA, online and offline.

Both calibrate the target's signal on a text against models trained with and without it:

- LiRA (Carlini et al. 2022, arXiv:2112.03570): fit Gaussians to the signal of the shadow
  models that trained on the text (IN) and of those that did not (OUT). Online, the score is
  the log-likelihood ratio ``log N(s; μ_in, σ_in) - log N(s; μ_out, σ_out)``; offline (OUT
  models only) it is the one-sided z-score ``(s - μ_out) / σ_out``. With fewer than 64 shadows
  the per-text variances are too noisy, so the paper's pooled ("global") variance is used.
- RMIA (Zarifzadeh et al. 2024, arXiv:2312.03262): the likelihood ratio
  ``p(x | θ) / p(x)`` of the text against that of population texts ``z``; the score is the
  share of ``z`` that ``x`` dominates by a factor ``γ``. ``p(x)`` averages the shadow models
  (online: all of them; offline: OUT only, ``p(x) = ((1 + a) p_out(x) + 1 - a) / 2``, the
  paper's linear correction for missing IN models).

For a language model the signal is the text's mean token log-probability (a geometric-mean
token probability for RMIA): close to Gaussian across shadow models, as LiRA assumes.
ML Privacy Meter once ran with fewer shadow models than configured without a word; here the
count is checked against the configuration (:func:`check_shadow_count`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from invert.errors import InvertError
from invert.memorization.membership import roc_auc

POOLED_VARIANCE_BELOW = 64  # shadows; Carlini et al. use a global variance below this


@dataclass
class ShadowSignals:
    """What the shadow models say about each candidate text.

    Attributes:
        signals: ``[n_models, n_texts]`` mean token log-probability of each text under each
            shadow model.
        in_mask: ``[n_models, n_texts]``, True where the shadow trained on the text.
        population: ``[n_models, n_population]`` signals on population texts that no model
            trained on (RMIA's ``z``); None to use the candidates themselves.
    """

    signals: np.ndarray
    in_mask: np.ndarray
    population: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.signals = np.asarray(self.signals, dtype=np.float64)
        self.in_mask = np.asarray(self.in_mask, dtype=bool)
        if self.signals.shape != self.in_mask.shape or self.signals.ndim != 2:
            raise InvertError(
                f"shadow signals {self.signals.shape} and in_mask {self.in_mask.shape} must both "
                "be [n_models, n_texts]"
            )
        if not np.all(np.isfinite(self.signals)):
            raise InvertError("shadow signals hold NaN/inf; check the shadow models' outputs")

    @property
    def n_models(self) -> int:
        return int(self.signals.shape[0])


def shadow_splits(n_texts: int, n_models: int, n_in: int, seed: int) -> np.ndarray:
    """Which texts each shadow trains on: ``[n_models, n_texts]`` bool.

    Every text is IN for exactly ``round(n_models * n_in / n_texts)`` shadows (the paired design
    of Carlini et al.), so each shadow trains on about ``n_in`` texts.
    """
    if n_models < 1:
        raise InvertError(f"need >= 1 shadow model, got {n_models}")
    if not 0 < n_in < n_texts:
        raise InvertError(f"a shadow trains on 0 < n_in < {n_texts} texts, got {n_in}")
    rng = np.random.default_rng(seed)
    order = rng.uniform(size=(n_models, n_texts)).argsort(axis=0)
    return order < max(1, round(n_models * n_in / n_texts))


def check_shadow_count(shadows: ShadowSignals, expected: int, online: bool) -> None:
    """Refuses a shadow set that does not match the configuration or cannot run the variant.

    Raises:
        InvertError: No shadows, a count other than ``expected``, or (online) a text without
            both an IN and an OUT shadow; offline, a text without an OUT shadow.
    """
    if expected < 1 or shadows.n_models < 1:
        raise InvertError(
            "LiRA and RMIA need shadow models; set shadows.n_models >= 1 (16+ for stable "
            "scores) or drop the shadow attacks"
        )
    if shadows.n_models != expected:
        raise InvertError(
            f"{shadows.n_models} shadow models scored the texts but the config asks for "
            f"{expected}; a silent mismatch skews every score: retrain or fix shadows.n_models"
        )
    n_in = shadows.in_mask.sum(axis=0)
    if np.any(n_in == shadows.n_models):
        raise InvertError("a text is IN for every shadow model: offline attacks need OUT models")
    if online and np.any(n_in == 0):
        raise InvertError("a text is OUT for every shadow: online attacks need IN models too")


def _pooled_std(values: np.ndarray, mask: np.ndarray) -> float:
    means = np.nanmean(np.where(mask, values, np.nan), axis=0)
    resid = np.where(mask, values - means, np.nan)
    return float(np.sqrt(np.nanmean(resid**2)) + 1e-6)


def _side_stats(
    values: np.ndarray, mask: np.ndarray, pooled: bool
) -> tuple[np.ndarray, np.ndarray]:
    masked = np.where(mask, values, np.nan)
    mean = np.nanmean(masked, axis=0)
    if pooled:
        return mean, np.full(mean.shape, _pooled_std(values, mask))
    return mean, np.nanstd(masked, axis=0) + 1e-6


def lira_scores(target: np.ndarray, shadows: ShadowSignals, online: bool = True) -> np.ndarray:
    """LiRA scores (higher = member) of the target's signals on the candidate texts.

    Args:
        target: ``[n_texts]`` the target's mean token log-probability per text.
        shadows: The shadows' signals on the same texts.
        online: Use IN and OUT shadows (likelihood ratio) or OUT only (one-sided z-score).
    """
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (shadows.signals.shape[1],):
        raise InvertError(
            f"target signals {target.shape} != shadow texts {shadows.signals.shape[1]}"
        )
    pooled = shadows.n_models < POOLED_VARIANCE_BELOW
    mu_out, sd_out = _side_stats(shadows.signals, ~shadows.in_mask, pooled)
    if not online:
        return (target - mu_out) / sd_out
    mu_in, sd_in = _side_stats(shadows.signals, shadows.in_mask, pooled)
    return norm.logpdf(target, mu_in, sd_in) - norm.logpdf(target, mu_out, sd_out)


def _log_mean_prob(signals: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    probs = np.exp(signals)
    if mask is None:
        return np.log(probs.mean(axis=0))
    return np.log((probs * mask).sum(axis=0) / mask.sum(axis=0))


def rmia_scores(
    target: np.ndarray,
    shadows: ShadowSignals,
    target_population: np.ndarray | None = None,
    online: bool = True,
    a: float = 1.0,
    gamma: float = 1.0,
) -> np.ndarray:
    """RMIA scores in [0, 1]: the share of population texts each candidate dominates.

    Args:
        target: ``[n_texts]`` the target's mean token log-probability per candidate.
        shadows: Shadow signals on the candidates (and on the population, if any).
        target_population: ``[n_population]`` the target's signals on ``shadows.population``;
            None (with no population) compares each candidate with the other candidates.
        online: ``p(x)`` from all shadows, or from OUT shadows with the offline correction.
        a: The offline correction's slope (:func:`tune_rmia_a` picks it as the paper does).
        gamma: How much a candidate's ratio must beat a population text's.
    """
    target = np.asarray(target, dtype=np.float64)
    if online:
        log_px = _log_mean_prob(shadows.signals)
    else:
        p_out = np.exp(_log_mean_prob(shadows.signals, ~shadows.in_mask))
        log_px = np.log(0.5 * ((1 + a) * p_out + (1 - a)))
    ratio_x = target - log_px
    if shadows.population is None or target_population is None:
        ratio_z = ratio_x
    else:
        log_pz = _log_mean_prob(np.asarray(shadows.population, dtype=np.float64))
        if not online:  # the population is OUT for every shadow: the same correction applies
            log_pz = np.log(0.5 * ((1 + a) * np.exp(log_pz) + (1 - a)))
        ratio_z = np.asarray(target_population, dtype=np.float64) - log_pz
    threshold = np.log(gamma)
    return (ratio_x[:, None] - ratio_z[None, :] > threshold).mean(axis=1)


A_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def tune_rmia_a(
    shadows: ShadowSignals, grid: tuple[float, ...] = A_GRID, max_targets: int = 4
) -> float:
    """Offline RMIA's ``a`` chosen as the paper does: on the shadows themselves.

    Each of up to ``max_targets`` shadows plays the target (its IN texts are the members) against
    the others' OUT signals; the ``a`` of the best mean AUC wins. With sequence probabilities far
    below 1, ``a`` near 1 (``p(x) ≈ p_out(x)``) is the usual winner.

    Raises:
        InvertError: Fewer than 2 shadows (none would be left to be the reference).
    """
    if shadows.n_models < 2:
        raise InvertError("tuning RMIA's a needs >= 2 shadow models; set shadows.rmia_a instead")
    aucs = np.zeros(len(grid))
    used = 0
    for j in range(min(max_targets, shadows.n_models)):
        rest = np.arange(shadows.n_models) != j
        others = ShadowSignals(shadows.signals[rest], shadows.in_mask[rest])
        if (
            np.any(others.in_mask.all(axis=0))
            or shadows.in_mask[j].all()
            or not shadows.in_mask[j].any()
        ):
            continue  # a text without OUT models, or a pseudo-target without both classes
        labels = shadows.in_mask[j]
        for g, a in enumerate(grid):
            s = rmia_scores(shadows.signals[j], others, online=False, a=float(a))
            aucs[g] += roc_auc(s[labels], s[~labels])
        used += 1
    return float(grid[int(np.argmax(aucs))]) if used else 1.0


SHADOW_ATTACKS = ("lira_online", "lira_offline", "rmia_online", "rmia_offline")


def shadow_attack_scores(
    target: np.ndarray,
    shadows: ShadowSignals,
    expected_models: int,
    target_population: np.ndarray | None = None,
    a: float | None = None,
    gamma: float = 1.0,
) -> dict[str, np.ndarray]:
    """All four shadow attacks, after checking the shadow set against the configured count.

    ``a``: offline RMIA's slope; None tunes it on the shadows (:func:`tune_rmia_a`).
    """
    check_shadow_count(shadows, expected_models, online=True)
    if a is None:
        a = tune_rmia_a(shadows) if shadows.n_models >= 2 else 1.0
    return {
        "lira_online": lira_scores(target, shadows, online=True),
        "lira_offline": lira_scores(target, shadows, online=False),
        "rmia_online": rmia_scores(target, shadows, target_population, True, a, gamma),
        "rmia_offline": rmia_scores(target, shadows, target_population, False, a, gamma),
    }
