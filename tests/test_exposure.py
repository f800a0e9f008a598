"""Canary exposure (Carlini et al. 2019, arXiv:1802.08232) on hand-made scores and a tiny GPT.

The repetition test checks the same canaries under an untrained model too, so it cannot pass
unless training is what raised the 16x canaries' exposure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from invert.errors import InvertError, UnknownNameError
from invert.memorization.exposure import (
    canary_rank,
    exact_exposure,
    exposure_by_repetition,
    exposure_from_rank,
    measure_exposure,
    plot_exposure_vs_repetitions,
    search_rank,
    skewnorm_exposure,
)
from invert.memorization.private_corpus import (
    CharTokenizer,
    LMDataset,
    build_private_corpus,
    lm_collate,
    secret_space,
)
from invert.memorization.target_models import build_gpt
from invert.training import Trainer, TrainerConfig


def test_rank_and_exact_exposure_by_hand():
    others = np.array([1.0, 2.0, 3.0])  # |R| = 4 with the canary
    assert canary_rank(0.5, others) == 1
    assert exact_exposure(0.5, others) == 2.0  # log2 4 - log2 1
    assert canary_rank(2.5, others) == 3
    assert exact_exposure(2.5, others) == pytest.approx(2 - math.log2(3))
    assert exact_exposure(9.0, others) == 0.0  # least likely of all
    assert exposure_from_rank(1, 10**9) == pytest.approx(9 * math.log2(10))
    with pytest.raises(InvertError, match="rank"):
        exposure_from_rank(0, 10)


def test_skewnorm_extrapolation_matches_enumeration_on_skewnormal_scores():
    # A whole space R of 50k log-perplexities from a skew-normal; exposure of canaries at
    # several ranks by exact enumeration vs by a fit to 2k sampled candidates.
    space = stats.skewnorm.rvs(4.0, loc=60, scale=6, size=50_000, random_state=0)
    sample = np.random.default_rng(1).choice(space, 2000, replace=False)
    order = np.sort(space)
    for rank in (10, 100, 1000, 10_000):
        canary = order[rank - 1]
        others = np.delete(space, np.argmin(np.abs(space - canary)))
        exact = exact_exposure(canary, others)
        assert exact == pytest.approx(math.log2(50_000 / rank), abs=1e-9)
        # rank 10 lies beyond the sample's resolution (1/2000): true extrapolation, looser.
        tolerance = 1.0 if rank < 50_000 / 2000 else 0.5
        assert abs(skewnorm_exposure(canary, sample) - exact) < tolerance, rank
    # Far below every sample the fit overshoots log2 |R|; the cap keeps exposure <= log2 |R|.
    assert skewnorm_exposure(0.0, sample) > math.log2(50_000)
    assert skewnorm_exposure(0.0, sample, space_size=50_000) == pytest.approx(math.log2(50_000))
    with pytest.raises(InvertError, match="n_samples"):
        skewnorm_exposure(50.0, sample[:5])


def test_secret_spaces():
    space = secret_space("digits", 3)
    assert space.size == 1000 and len(space.enumerate()) == 1000
    assert space.enumerate()[7] == "007"
    assert space.sample(5, seed=0) == space.sample(5, seed=0)
    identity = secret_space("identity")
    assert identity.size is None and len(identity.sample(3, seed=0)) == 3
    with pytest.raises(InvertError, match="skewnorm"):
        identity.enumerate()
    with pytest.raises(UnknownNameError):
        secret_space("emoji")


# --- a tiny GPT trained with canaries repeated 1x and 16x ---------------------------------------

TEMPLATE = "PIN of {first_name}: {secret}."


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = build_private_corpus(
        96, 8, 0, canary_repetitions=[1, 16], canaries_per_repetition=4, secret_digits=3,
        canary_template=TEMPLATE, max_chars=48, seed=0,
    )  # fmt: skip
    tok = CharTokenizer()
    untrained = build_gpt(n_layer=2, d_model=64, n_head=4, vocab_size=len(tok), context_length=64)
    model = build_gpt(n_layer=2, d_model=64, n_head=4, vocab_size=len(tok), context_length=64)
    config = TrainerConfig(
        output_dir=str(tmp_path_factory.mktemp("exposure")), max_steps=60, batch_size=16,
        lr=3e-3, warmup_steps=5, log_every=1000,
    )  # fmt: skip
    Trainer(model, LMDataset(tok, corpus.train_texts), lm_collate, config).train()
    return corpus, tok, model.eval(), untrained.eval()


@pytest.fixture(scope="module")
def exposures(trained):
    """Exact exposure of every canary under both models, candidate scores kept."""
    corpus, tok, model, untrained = trained
    return {
        name: measure_exposure(m, tok, corpus.canaries, corpus.space, "exact", keep_scores=True)
        for name, m in (("trained", model), ("untrained", untrained))
    }


def test_16x_canary_exposure_exceeds_1x_and_untrained_shows_none(exposures, tmp_path):
    after = exposure_by_repetition(exposures["trained"])
    before = exposure_by_repetition(exposures["untrained"])
    top = math.log2(1000)
    assert after[16] - after[1] > 2.5, after
    assert after[16] > 0.6 * top, after
    # The same claim on the same canaries without training must fail, so it is not luck.
    assert before[16] - before[1] < 2.5, before
    assert after[16] - before[16] > 2.5, (after, before)
    path = plot_exposure_vs_repetitions(
        {"trained": after, "untrained": before}, tmp_path / "e.png", top
    )
    assert path.stat().st_size > 0


def test_skewnorm_agrees_with_exact_enumeration_on_a_small_space(exposures):
    compared = 0
    for rows in exposures.values():
        for row in rows:
            if row["exposure"] > math.log2(1000) - 3:  # rank < 8: beyond a 300-sample fit
                continue
            sample = np.random.default_rng(0).choice(row["candidate_bits"], 300, replace=False)
            fitted = skewnorm_exposure(row["canary_bits"], sample)
            assert abs(fitted - row["exposure"]) < 1.0, row
            compared += 1
    assert compared >= 4  # the comparison must actually have happened


def test_measure_exposure_methods(trained, exposures):
    corpus, tok, model, _ = trained
    exact = exposures["trained"]
    assert all(1 <= r["rank"] <= 1000 and r["method"] == "exact" for r in exact)
    assert all(len(r["candidate_bits"]) == 999 for r in exact)
    fitted = measure_exposure(
        model, tok, corpus.canaries[:2], corpus.space, "skewnorm", n_samples=100
    )
    assert [r["method"] for r in fitted] == ["skewnorm"] * 2
    assert all(r["exposure"] <= math.log2(1000) and 1 <= r["rank_in_sample"] <= 101 for r in fitted)
    assert all("secret" not in r and "candidate_bits" not in r for r in fitted)
    # Canaries that beat every sample get their exact rank by search instead of the fit.
    top = measure_exposure(
        model, tok, corpus.canaries[-4:], corpus.space, "skewnorm", n_samples=100
    )
    searched = [(r, e) for r, e in zip(top, exact[-4:], strict=True) if r["method"] == "search"]
    assert searched and all(r["rank"] == e["rank"] for r, e in searched)
    assert all(r["rank_in_sample"] > 1 for r in top if r["method"] == "skewnorm")
    with pytest.raises(UnknownNameError):
        measure_exposure(model, tok, corpus.canaries, corpus.space, method="guess")


def test_search_rank_matches_enumeration(trained, exposures):
    corpus, tok, model, _ = trained
    checked = 0
    for canary, row in zip(corpus.canaries, exposures["trained"], strict=True):
        if row["rank"] > 30:  # the search's cost grows with the rank
            continue
        rank, popped = search_rank(model, tok, canary, 3, max_batches=200, batch_size=32)
        assert rank == row["rank"] and popped == rank - 1, (rank, row["rank"])
        checked += 1
    assert checked >= 3
    rank, popped = search_rank(model, tok, corpus.canaries[0], 3, max_batches=1)
    assert rank is None and popped == 0  # one pass expands the root only: no secret yet


def test_scoring_a_shared_start_once_gives_the_same_bits():
    """Candidates behind one long context: the cached start changes no score."""
    from invert.memorization.exposure import sequence_bits, shared_prefix_bits

    model = build_gpt(2, 64, 4, len(CharTokenizer()), 256, seed=3).eval()
    context = "Known facts:\nAda Byron works for Babbage Ltd.\n\nThe account number of Ada is "
    texts = [context + s + "." for s in ("314159", "2", "27182818", "0", "161803")] * 3
    cached = shared_prefix_bits(model, CharTokenizer(), texts, batch_size=4)
    np.testing.assert_allclose(cached, sequence_bits(model, CharTokenizer(), texts, 4), atol=1e-3)
    assert len(set(np.round(cached, 3))) == 5  # the tails differ, and so do their bits
