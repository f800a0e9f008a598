"""The blind baseline: membership "inference" that never looks at the model.

Das et al. (arXiv:2406.16201) beat every published attack on temporally split benchmarks
(WikiMIA: AUC 99 against 83.9) with classifiers that see only the text: when members and
non-members differ in distribution, an attack's AUC measures the shift, not memorization. So
every membership table in invert carries this model-free score beside the attacks: a
binarized naive Bayes classifier on word unigrams, word bigrams and character 3-grams,
cross-fitted so that each text is scored by a classifier trained on the other folds (a held-out
part of the member/non-member split), and averaged over several fold draws (one draw's AUC swings
by a few points with where the folds fall). On a random split of one distribution it scores
~0.5; far above that, the split itself leaks and no attack number on it means memorization.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from invert.errors import EmptyInputError, InvertError

BLIND = "blind"  # the key of the baseline in membership tables
_WORD = re.compile(r"\w+|[^\w\s]")


def text_features(text: str) -> set[str]:
    """The features a text has: lower-cased words, word bigrams and character 3-grams."""
    words = _WORD.findall(text.lower())
    feats = {f"w:{w}" for w in words}
    feats.update(f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    padded = f" {text.lower()} "
    feats.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return feats


class NaiveBayesTextClassifier:
    """Binarized multinomial naive Bayes with add-``alpha`` smoothing (log-count ratio scores)."""

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha <= 0:
            raise InvertError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.weights: dict[str, float] = {}

    def fit(
        self, positives: Iterable[set[str]], negatives: Iterable[set[str]]
    ) -> NaiveBayesTextClassifier:
        pos, neg = Counter(), Counter()
        for feats in positives:
            pos.update(feats)
        for feats in negatives:
            neg.update(feats)
        if not pos or not neg:
            raise EmptyInputError("the blind baseline needs texts of both classes to train on")
        vocab = set(pos) | set(neg)
        pos_total = sum(pos.values()) + self.alpha * len(vocab)
        neg_total = sum(neg.values()) + self.alpha * len(vocab)
        self.weights = {
            f: float(
                np.log((pos[f] + self.alpha) / pos_total)
                - np.log((neg[f] + self.alpha) / neg_total)
            )
            for f in vocab
        }
        return self

    def score(self, feats: set[str]) -> float:
        """Log-likelihood ratio positive vs negative (features never seen count 0)."""
        return float(sum(self.weights.get(f, 0.0) for f in feats))


def _folds(
    n: int, folds: int, rng: np.random.Generator, groups: Sequence[str] | None = None
) -> np.ndarray:
    if groups is None:
        return rng.permutation(np.arange(n) % folds)
    # Whole groups share a fold: a text must not be scored by a classifier that saw another
    # text of its group (another document of the same person names them too).
    names = list(dict.fromkeys(groups))
    fold_of = dict(zip(names, rng.permutation(np.arange(len(names)) % folds), strict=True))
    return np.array([fold_of[g] for g in groups])


def blind_baseline_scores(
    members: Sequence[str],
    non_members: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    repeats: int = 5,
    groups: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold blind scores (higher = "member") for members and non-members.

    Args:
        members: Texts labelled members.
        non_members: Texts labelled non-members.
        folds: Cross-fitting folds (>= 2); members and non-members are split into folds apart,
            so every fold holds both classes.
        seed: Seeds the fold assignments.
        repeats: Fold assignments drawn; a text's score is its mean out-of-fold score.
        groups: ``(member_groups, non_member_groups)``, one label per text (e.g. the person a
            document is about): a group's texts always share a fold.

    Returns:
        ``(member_scores, non_member_scores)``; each text scored only by classifiers that did
        not train on it.

    Raises:
        InvertError: ``folds < 2`` or a class has fewer texts than folds.
    """
    if folds < 2:
        raise InvertError(f"the blind baseline cross-fits over >= 2 folds, got folds={folds}")
    g_m, g_n = groups if groups is not None else (None, None)
    n_units = [
        len(set(g)) if g is not None else len(t) for g, t in ((g_m, members), (g_n, non_members))
    ]
    if min(n_units) < folds:
        raise InvertError(
            f"the blind baseline needs >= {folds} members and non-members (one per fold), got "
            f"{len(members)} and {len(non_members)}; lower its folds"
        )
    if repeats < 1:
        raise InvertError(f"repeats must be >= 1, got {repeats}")
    rng = np.random.default_rng(seed)
    feats_m = [text_features(t) for t in members]
    feats_n = [text_features(t) for t in non_members]
    scores_m, scores_n = np.zeros(len(members)), np.zeros(len(non_members))
    for _ in range(repeats):
        fold_m = _folds(len(members), folds, rng, g_m)
        fold_n = _folds(len(non_members), folds, rng, g_n)
        for f in range(folds):
            clf = NaiveBayesTextClassifier().fit(
                (x for x, g in zip(feats_m, fold_m, strict=True) if g != f),
                (x for x, g in zip(feats_n, fold_n, strict=True) if g != f),
            )
            for i in np.flatnonzero(fold_m == f):
                scores_m[i] += clf.score(feats_m[i]) / repeats
            for i in np.flatnonzero(fold_n == f):
                scores_n[i] += clf.score(feats_n[i]) / repeats
    return scores_m, scores_n
