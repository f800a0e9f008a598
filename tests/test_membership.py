"""Membership inference (MIMIR, arXiv:2402.07841): exact metrics, attacks, and two sanity checks.

An untrained model must score AUC ≈ 0.5 and a heavily overfit one > 0.9, with the same code
path, so the overfit test cannot pass on a model that learned nothing.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from invert.data.synthetic_pii import synthetic_pii_records
from invert.errors import EmptyInputError, InvertError, UnknownNameError
from invert.memorization.membership import (
    ATTACKS,
    TokenStats,
    attack_scores,
    bootstrap_auc_ci,
    evaluate_attack,
    membership_inference,
    plot_roc,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)
from invert.memorization.private_corpus import (
    CharTokenizer,
    LMDataset,
    build_private_corpus,
    lm_collate,
    random_split,
)
from invert.memorization.target_models import build_gpt
from invert.training import Trainer, TrainerConfig

# --- metrics on hand-made scores ---------------------------------------------------------------


def test_auc_is_exact_with_ties():
    # pairs (m > n) + 0.5 (tie): 3 vs (1, 2, 3) -> 2.5; 4 -> 3; 5 -> 3; total 8.5 / 9
    assert roc_auc(np.array([3.0, 4, 5]), np.array([1.0, 2, 3])) == pytest.approx(8.5 / 9)
    assert roc_auc(np.array([1.0]), np.array([0.0])) == 1.0
    assert roc_auc(np.array([0.0]), np.array([1.0])) == 0.0
    assert roc_auc(np.ones(5), np.ones(7)) == 0.5


def test_roc_curve_and_tpr_at_fpr_are_exact():
    members = np.array([0.9, 0.8, 0.7, 0.2])
    non_members = np.array([0.85, 0.1, 0.05, 0.01])
    fpr, tpr = roc_curve(members, non_members)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert tpr_at_fpr(members, non_members, 0.0) == 0.25  # only 0.9 beats every non-member
    assert tpr_at_fpr(members, non_members, 0.25) == 1.0  # threshold 0.2 lets 0.85 through
    assert tpr_at_fpr(members, non_members, 0.2) == 0.25


def test_tpr_at_one_and_point_one_percent_fpr():
    non_members = np.arange(1000, dtype=float)  # scores 0..999
    members = np.array([1000.5, 999.5, 998.5, 995.5, 989.5, 500.0, 1.0, 0.5])
    # FPR <= 0.1%: one non-member (999) may pass -> threshold 998.5: 3 members of 8.
    assert tpr_at_fpr(members, non_members, 0.001) == 3 / 8
    # FPR <= 1%: ten non-members (990..999) may pass -> threshold 989.5: 5 members.
    assert tpr_at_fpr(members, non_members, 0.01) == 5 / 8
    assert tpr_at_fpr(members, non_members, 1.0) == 1.0


def test_bootstrap_ci_contains_point_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(0.5, 1, 200), rng.normal(0, 1, 300)
    auc = roc_auc(members, non_members)
    lo, hi = bootstrap_auc_ci(members, non_members, n_bootstrap=300, seed=1)
    assert lo < auc < hi and hi - lo < 0.2
    assert (lo, hi) == bootstrap_auc_ci(members, non_members, n_bootstrap=300, seed=1)
    metrics = evaluate_attack(members, non_members, n_bootstrap=100)
    tprs = {f"tpr@{f}%fpr{end}" for f in ("1", "0.1") for end in ("", "_ci_low", "_ci_high")}
    assert set(metrics) == {"auc", "auc_ci_low", "auc_ci_high"} | tprs
    assert metrics["tpr@1%fpr_ci_low"] <= metrics["tpr@1%fpr"] <= metrics["tpr@1%fpr_ci_high"]


def test_metrics_reject_bad_input():
    with pytest.raises(EmptyInputError):
        roc_auc(np.array([]), np.array([1.0]))
    with pytest.raises(InvertError, match="NaN"):
        roc_auc(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(InvertError, match="fpr"):
        tpr_at_fpr(np.array([1.0]), np.array([0.0]), 2.0)


# --- attacks on hand-made token statistics -----------------------------------------------------


def _stats(logps: list[list[float]]) -> TokenStats:
    logp = [np.array(x) for x in logps]
    return TokenStats(
        logp, [np.full(len(x), -1.0) for x in logp], [np.full(len(x), 2.0) for x in logp]
    )


def test_attacks_compute_their_definitions():
    target = _stats([[-1.0, -2.0, -3.0, -4.0, -10.0], [-0.5, -0.5, -0.5, -0.5, -0.5]])
    ref = _stats([[-2.0] * 5, [-1.0] * 5])
    texts = ["aaaa aaaa aaaa", "a quick brown fox"]
    s = attack_scores(
        ["loss", "reference", "zlib", "min_k", "min_k_plus_plus"], target, texts, ref, k=0.4
    )
    np.testing.assert_allclose(s["loss"], [-4.0, -0.5])
    np.testing.assert_allclose(s["reference"], [-(4.0 - 2.0), -(0.5 - 1.0)])
    sizes = [len(zlib.compress(t.encode())) for t in texts]
    np.testing.assert_allclose(s["zlib"], [-4.0 / sizes[0], -0.5 / sizes[1]])
    np.testing.assert_allclose(s["min_k"], [-7.0, -0.5])  # mean of the 2 lowest of 5
    np.testing.assert_allclose(s["min_k_plus_plus"], [(-7.0 + 1) / 2, (-0.5 + 1) / 2])
    with pytest.raises(UnknownNameError, match="min_k"):
        attack_scores(["nope"], target, texts)
    with pytest.raises(InvertError, match="reference model"):
        attack_scores(["reference"], target, texts, None)


# --- the split ----------------------------------------------------------------------------------


def test_members_and_non_members_are_a_random_split_of_one_corpus():
    corpus = build_private_corpus(40, 30, 20, canary_repetitions=[1], seed=3)
    pool = [r["text"] for r in synthetic_pii_records(90, seed=3)]
    parts = [corpus.members, corpus.non_members, corpus.population]
    assert [len(p) for p in parts] == [40, 30, 20]
    assert sorted(sum(parts, [])) == sorted(pool)  # one pool, disjoint, nothing left out
    # Random, not a slice of the pool's order (a time-shift-like split would be contiguous).
    member_pos = sorted(pool.index(t) for t in corpus.members)
    assert member_pos != list(range(40)) and max(member_pos) > 60
    other = build_private_corpus(40, 30, 20, canary_repetitions=[1], seed=4)
    assert set(other.members) != set(corpus.members)
    assert random_split(list(range(10)), [3, 3], seed=0) == random_split(
        list(range(10)), [3, 3], seed=0
    )
    with pytest.raises(EmptyInputError, match="n_members"):
        random_split(list(range(5)), [3, 3], seed=0)


# --- end to end on tiny models ------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    corpus = build_private_corpus(32, 32, 0, canary_repetitions=[1], max_chars=56, seed=0)
    return corpus.members, corpus.non_members


def _tiny_gpt(seed: int = 0):
    return build_gpt(
        n_layer=2,
        d_model=64,
        n_head=4,
        vocab_size=len(CharTokenizer()),
        context_length=64,
        seed=seed,
    )


def test_untrained_model_has_auc_near_half(split):
    members, non_members = split
    metrics, _ = membership_inference(
        _tiny_gpt(), CharTokenizer(), members, non_members, n_bootstrap=200
    )
    for attack in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        m = metrics[attack]
        assert abs(m["auc"] - 0.5) < 0.15, (attack, m)
        assert m["auc"] < 0.9  # what the overfit test demands must fail here


def test_overfit_model_has_auc_above_0_9(split, tmp_path):
    members, non_members = split
    tok, model = CharTokenizer(), _tiny_gpt()
    config = TrainerConfig(
        output_dir=str(tmp_path),
        max_steps=160,
        batch_size=16,
        lr=3e-3,
        warmup_steps=5,
        log_every=1000,
    )
    Trainer(model, LMDataset(tok, members), lm_collate, config).train()
    metrics, scores = membership_inference(
        model, tok, members, non_members, reference=_tiny_gpt(seed=1), n_bootstrap=200
    )
    assert metrics["loss"]["auc"] > 0.9 and metrics["loss"]["auc_ci_low"] > 0.8, metrics["loss"]
    assert metrics["loss"]["tpr@1%fpr"] > 0.1
    assert set(metrics) == set(ATTACKS) | {"blind"}
    assert plot_roc(scores, tmp_path / "roc.png").stat().st_size > 0
