"""Defenses (noise, quantization, orthogonal), the ALGEN alignment attack, PII and utility."""

from __future__ import annotations

import pytest
import torch
from audit_helpers import HashEmbedder

from invert.data.synthetic_pii import synthetic_pii_records
from invert.errors import InvertError
from invert.inversion.metrics import cosine_similarity_rows
from invert.models import NearestNeighbourInverter
from invert.privacy.alignment_attack import AlignmentAttack
from invert.privacy.defenses import (
    NoisyEmbedder,
    OrthogonalEmbedder,
    QuantizedEmbedder,
    build_defense,
)
from invert.privacy.pii import pii_recovery
from invert.privacy.retrieval import bbc_headline_task, retrieval_scores


@pytest.fixture(scope="module")
def embedder():
    return HashEmbedder(dim=64)


@pytest.fixture(scope="module")
def bbc(embedder):
    queries, docs = bbc_headline_task(n=120, seed=0)
    return embedder.encode(queries), embedder.encode(docs)


def test_noise_zero_changes_nothing(embedder):
    texts = ["alice lives in paris", "bob was born in 1970"]
    assert torch.equal(NoisyEmbedder(embedder, 0.0).encode(texts), embedder.encode(texts))


def test_noise_is_fresh_per_call_and_reproducible(embedder):
    texts = ["alice lives in paris"]
    noisy = NoisyEmbedder(embedder, 0.1, seed=3)
    a, b = noisy.encode(texts), noisy.encode(texts)
    assert not torch.equal(a, b)  # fresh draw each call
    again = NoisyEmbedder(embedder, 0.1, seed=3)
    assert torch.equal(again.encode(texts), a) and torch.equal(again.encode(texts), b)
    clean = embedder.encode(texts)
    assert torch.equal(noisy.transform(clean, seed=7), noisy.transform(clean, seed=7))
    # λ·N(0,1) per dimension: the noise's std is λ.
    big = NoisyEmbedder(embedder, 0.5, seed=0).transform(torch.zeros(200, 64))
    assert abs(big.std().item() - 0.5) < 0.02
    with pytest.raises(InvertError, match=">= 0"):
        NoisyEmbedder(embedder, -1.0)


def test_large_noise_destroys_retrieval(embedder, bbc):
    qv, dv = bbc
    clean = retrieval_scores(qv, dv)
    assert clean["recall@10"] > 0.45  # chance is 10/120
    noisy = NoisyEmbedder(embedder, 10.0, seed=0)
    destroyed = retrieval_scores(noisy.transform(qv), noisy.transform(dv))
    assert destroyed["recall@10"] < 0.25 and destroyed["ndcg@10"] < 0.15
    assert retrieval_scores(*(NoisyEmbedder(embedder, 0.0).transform(v) for v in bbc)) == clean


def test_quantization(embedder, bbc):
    qv, dv = bbc
    int8 = QuantizedEmbedder(embedder, "int8").transform(dv)
    assert cosine_similarity_rows(int8, dv).min() > 0.999
    binary = QuantizedEmbedder(embedder, "binary").transform(dv)
    assert set(torch.unique(binary.sign()).tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(binary.norm(dim=1), dv.norm(dim=1))
    assert 0.5 < cosine_similarity_rows(binary, dv).mean() < 0.95
    with pytest.raises(InvertError, match="int8"):
        QuantizedEmbedder(embedder, "int4")


def test_orthogonal_keeps_retrieval_and_defeats_naive_attack(embedder, bbc):
    qv, dv = bbc
    ortho = OrthogonalEmbedder(embedder, seed=1)
    torch.testing.assert_close(ortho.matrix @ ortho.matrix.T, torch.eye(64), atol=1e-5, rtol=0)
    clean, defended = (
        retrieval_scores(qv, dv),
        retrieval_scores(ortho.transform(qv), ortho.transform(dv)),
    )
    assert defended == pytest.approx(clean, abs=1e-6)

    # The attacker's nearest-neighbour "inverter" over its own (clean) embeddings.
    texts = [r["text"] for r in synthetic_pii_records(300, seed=0)]
    clean_vecs = embedder.encode(texts)
    nn = NearestNeighbourInverter(texts, clean_vecs, embedder.name)
    victims = texts[:100]
    assert nn.invert(embedder.encode(victims)) == victims
    naive = nn.invert(ortho.encode(victims))
    assert sum(p == t for p, t in zip(naive, victims, strict=True)) <= 5
    assert (
        cosine_similarity_rows(ortho.encode(victims), embedder.encode(victims)).abs().mean() < 0.3
    )


def test_alignment_attack_recovers_cosine_with_enough_pairs(embedder):
    records = synthetic_pii_records(400, seed=1)
    leaked, victims = [r["text"] for r in records[:200]], [r["text"] for r in records[200:]]
    ortho = build_defense(embedder, "orthogonal", seed=5)
    truth = embedder.encode(victims)
    cos = {}
    for k in (10, 200):
        attack = AlignmentAttack(embedder).fit(leaked[:k], ortho.encode(leaked[:k]))
        cos[k] = float(cosine_similarity_rows(attack.map(ortho.encode(victims)), truth).mean())
    assert cos[200] > 0.95 > cos[10]
    nn = NearestNeighbourInverter(victims, truth, embedder.name)
    recovered = nn.invert(attack.map(ortho.encode(victims)))
    assert sum(p == t for p, t in zip(recovered, victims, strict=True)) >= 190
    with pytest.raises(InvertError, match="fit"):
        AlignmentAttack(embedder).map(truth)


def test_build_defense_names():
    emb = HashEmbedder(dim=8)
    assert isinstance(build_defense(emb, {"noise": 0.1}), NoisyEmbedder)
    assert build_defense(emb, "binary").name == "hash-bow-test+binary"
    with pytest.raises(InvertError, match="unknown defense"):
        build_defense(emb, "dp")


def test_pii_recovery_hand_made_counts():
    records = [
        {
            "first_name": "Ana",
            "last_name": "Lopez",
            "date": "March 03, 1970",
            "city": "New York",
            "phone": "555-0100",
        },
        {
            "first_name": "Bo",
            "last_name": "Chan",
            "date": "May 1, 1990",
            "city": "Lyon",
            "phone": "(212) 555-0199",
        },
        {"first_name": "Cy", "last_name": "Dee", "date": "", "city": "Oslo", "phone": "1"},
    ]
    recons = [
        "patient ANA   lopez, born march 03,\n1970 of new  york",  # name, full, date, city
        "Bo Smith called (212) 555-0199 from Lyon",  # first, city, phone; not last/full/date
        "nothing here",
    ]
    out = pii_recovery(recons, records)
    counts = {f: (v["recovered"], v["n"]) for f, v in out.items()}
    assert counts == {
        "first_name": (2, 3),
        "last_name": (1, 3),
        "full_name": (1, 3),
        "date": (1, 2),
        "city": (2, 3),
        "phone": (1, 3),
        "any": (2, 3),
    }
    assert out["date"]["rate"] == 0.5
