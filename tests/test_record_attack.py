"""The schema-aware record attack: templates, attribute inference, and filling with the embedder."""

from __future__ import annotations

import copy
import json

import pytest
from audit_helpers import HashEmbedder, build_chroma_store

from invert.data.synthetic_pii import synthetic_pii_records
from invert.errors import DimensionMismatchError, EmptyInputError, InvertError, UnknownNameError
from invert.privacy import run_privacy_audit
from invert.privacy.defenses import NoisyEmbedder
from invert.privacy.pii import pii_recovery
from invert.privacy.record_attack import RecordAttack, derive_template, load_records, render

FIELDS = ["first_name", "last_name", "date", "city", "address", "phone"]


@pytest.fixture(scope="module")
def fitted():
    embedder = HashEmbedder(dim=1024)
    aux = synthetic_pii_records(1500, seed=7)
    attack = RecordAttack(embedder, FIELDS, top_k=6, rounds=2).fit(aux, show_progress=False)
    victims = synthetic_pii_records(30, seed=1)
    vectors = embedder.encode([r["text"] for r in victims])
    return embedder, attack, victims, vectors, aux


def test_templates_render_back_to_the_record():
    for record in synthetic_pii_records(200, seed=0):
        template = derive_template(record, FIELDS)
        assert render(template, record) == record["text"]
        # Address sits only in some templates; a field the text lacks gets no slot.
        slots = [s[1] for s in template if isinstance(s, tuple)]
        assert ("address" in slots) == (record["address"] in record["text"])


def test_longer_values_claim_their_span_first():
    record = {"text": "Ann lives at 5 Ann Road.", "first_name": "Ann", "address": "5 Ann Road"}
    template = derive_template(record, ["first_name", "address"])
    assert template == (("field", "first_name"), " lives at ", ("field", "address"), ".")


def test_attack_recovers_names_and_search_beats_inference_alone(fitted):
    embedder, attack, victims, vectors, _ = fitted
    texts, _ = attack.invert(vectors, show_progress=False)
    guess = copy.copy(attack)
    guess.rounds = 0  # attribute inference alone, no embedder queries
    first, _ = guess.invert(vectors, show_progress=False)
    after = pii_recovery(texts, victims)
    before = pii_recovery(first, victims)
    assert after["first_name"]["rate"] >= 0.6 and after["last_name"]["rate"] >= 0.6
    names = ("first_name", "last_name", "city")
    assert sum(after[f]["recovered"] for f in names) > sum(before[f]["recovered"] for f in names)
    # Dates are composed word by word (month, day, year), so unseen whole dates come back too.
    assert after["date"]["rate"] >= 0.8
    cos = (embedder.encode(texts) * vectors).sum(1)
    cos_first = (embedder.encode(first) * vectors).sum(1)
    # Coordinate ascent only keeps improvements, and here it finds some.
    assert (cos >= cos_first - 1e-6).all() and cos.mean() > cos_first.mean() + 0.01


def test_heavy_noise_defeats_the_attack(fitted):
    embedder, attack, victims, vectors, _ = fitted
    noisy = NoisyEmbedder(embedder, 0.5).transform(vectors, seed=0)
    texts, _ = attack.invert(noisy, show_progress=False)
    assert pii_recovery(texts, victims)["first_name"]["rate"] <= 0.2


def test_bad_use_is_refused(fitted, tmp_path):
    embedder, attack, _, vectors, _ = fitted
    with pytest.raises(DimensionMismatchError, match="1024"):
        attack.invert(vectors[:, :100], show_progress=False)
    with pytest.raises(InvertError, match="fit"):
        RecordAttack(embedder, FIELDS).invert(vectors, show_progress=False)
    with pytest.raises(InvertError, match="fields"):
        RecordAttack(embedder, [])
    with pytest.raises(EmptyInputError, match="verbatim"):
        RecordAttack(embedder, ["first_name"]).fit([{"text": "no name", "first_name": "Zed"}])
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    with pytest.raises(EmptyInputError, match="auxiliary"):
        load_records(str(empty))


def test_audit_with_the_record_attack_needs_no_inverter(tmp_path):
    embedder = HashEmbedder(dim=64)
    records = synthetic_pii_records(60, seed=3)
    aux = tmp_path / "aux.json"
    aux.write_text(json.dumps(synthetic_pii_records(600, seed=11)))
    store = build_chroma_store(tmp_path / "chroma", records, embedder)
    cfg = {
        "store": store,
        "seed": 0,
        "logger": {"kind": "none"},
        "paths": {"output_dir": str(tmp_path / "run")},
        "audit": {
            "attacker": "records",
            "record_attack": {"aux": str(aux), "top_k": 4, "rounds": 1},
            "sample_size": 10,
            "defenses": ["noise"],
            "noise_levels": [2.0],
            "retrieval": {"n": 40, "k": 10},
            "pii_records": {"source": "synthetic_pii", "n": 60, "seed": 3},
        },
    }
    result = run_privacy_audit(cfg, embedder=embedder)
    clean, noisy = result["rows"]
    assert result["inverter"]["attacker"] == "records"
    assert clean["pii"]["last_name"]["rate"] > noisy["pii"]["last_name"]["rate"]
    assert clean["token_f1"] > noisy["token_f1"]
    assert "record attack" in (tmp_path / "run" / "report.html").read_text()
    wrong_truth = {**cfg["audit"], "pii_records": {"source": "synthetic_pii", "n": 60, "seed": 4}}
    with pytest.raises(InvertError, match="none of the 10 sampled documents"):
        run_privacy_audit({**cfg, "audit": wrong_truth}, embedder=embedder)
    with pytest.raises(UnknownNameError, match="inverter, records"):
        run_privacy_audit({**cfg, "audit": {"attacker": "oracle"}}, embedder=embedder)
