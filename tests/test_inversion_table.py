"""The inversion results table end to end on tiny models, two local corpora and a hash embedder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from correction_helpers import HashWordEmbedder
from helpers import TEXTS, TINY_LLAMA, make_trainer, tiny_inverter, tokenizer_path
from transformers import AutoConfig, AutoModelForCausalLM

import invert
from invert.errors import CheckpointError, DimensionMismatchError
from invert.inversion.runs.preamble import training_record
from invert.inversion.runs.table import COLUMNS, encoder_rate, run_inversion_table
from invert.models.loading import build_corrector
from invert.models.pretrained_lm import load_tokenizer

OTHER = [
    "green apples grow on tall trees",
    "the train left the station at noon",
    "cold wind blew from the north",
    "he painted the old fence white",
    "birds sing early in the morning",
    "the clock struck twelve times",
]


def _cfg(tmp_path: Path, inverters: dict[str, str], corrector: str | None, zs_lm: str) -> dict:
    outside = tmp_path / "out.txt"
    outside.write_text("\n".join(OTHER) + "\n")
    return {
        "seed": 0, "inverters": inverters, "corrector_path": corrector, "n": 3, "batch_size": 8,
        "encoder_rate_texts": 8, "log_samples": False, "fluency_lm": zs_lm,
        "embedder": {"_target_": "correction_helpers.HashWordEmbedder"},
        # No corpus, seed or split here: the first inverter's folder records them.
        "data": {"in_domain": None, "out_of_domain": [f"file:{outside}"]},
        "correct": {"steps": [0, 1, 2], "sequence_beam_width": 2, "num_candidates": 2,
                    "early_stop_cosine": 0.99},
        "zero_shot": {"enabled": True, "lm": zs_lm, "beam_width": 2, "top_k": 2, "block_size": 1,
                      "max_tokens": 3},
        "bow": {"enabled": True, "hidden_dim": 16, "max_vocabulary": 100, "epochs": 2, "lr": 1e-3},
        "search": {"num_rounds": 2, "report_rounds": [1, 2], "edits_per_round": 4, "nn_seeds": 2, "gradient_edits": 0,
                   "proposal_words": 8},
        "logger": {"kind": "none"}, "paths": {"output_dir": str(tmp_path / "run")},
    }  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    embedder = HashWordEmbedder()
    inside = root / "in.txt"
    inside.write_text("\n".join(TEXTS * 1 + [t + " today" for t in TEXTS]) + "\n")
    data = {"name": f"file:{inside}", "seed": 0, "val_fraction": 0.1, "test_fraction": 0.3,
            "max_examples": None}
    paths = {}
    for regime, seed in (("full", 0), ("prefix", 1)):
        inverter = tiny_inverter("prefix_lm", seed=seed)
        make_trainer(inverter, root / f"t{regime}", embeddings=embedder.encode(TEXTS), max_steps=5,
                     lr=3e-3, warmup_steps=0).train()  # fmt: skip
        inverter.config.training_data = training_record(data, 0, 5 * 8)
        inverter.save_pretrained(root / regime)
        paths[regime] = str(root / regime)
    corrector = build_corrector(tiny_inverter("prefix_lm"), num_prefix_tokens=2, projection_hidden_dim=32)
    corrector.save_pretrained(root / "corrector")
    tok = load_tokenizer(tokenizer_path())
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(**{**TINY_LLAMA, "vocab_size": len(tok)}))
    lm.save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    return paths, str(root / "corrector"), str(root / "lm")


def test_table_has_every_method_for_every_corpus(tmp_path, saved):
    inverters, corrector, lm = saved
    summary = run_inversion_table(_cfg(tmp_path, inverters, corrector, lm))
    rows = summary["rows"]
    corpora = {r["corpus"] for r in rows}
    assert len(corpora) == 2 and {r["domain"] for r in rows} == {"in", "out"}
    expected = {"bag_of_words", "nearest_neighbour", "zero_shot_search", "inverter_full_0_steps",
                "inverter_prefix_0_steps", "corrector_1_steps", "corrector_2_steps",
                "corrector_beam2_2_steps", "guided_search_1_rounds", "guided_search_2_rounds",
                "guided_decoding"}  # fmt: skip
    for corpus in corpora:
        mine = {r["method"]: r for r in rows if r["corpus"] == corpus}
        assert set(mine) == expected
        # The search keeps the retrieved text unless an edit scores closer: never below it.
        assert mine["guided_search_2_rounds"]["cosine"] >= mine["nearest_neighbour"]["cosine"] - 1e-6
        assert mine["guided_search_2_rounds"]["cosine"] >= mine["guided_search_1_rounds"]["cosine"] - 1e-6
        # It starts from guided_decoding's sentences, as the evaluation's search does, and is
        # charged for their time.
        assert mine["guided_search_2_rounds"]["cosine"] >= mine["guided_decoding"]["cosine"] - 1e-6
        assert mine["guided_search_2_rounds"]["seconds_per_100"] > mine["guided_decoding"]["seconds_per_100"]
    for r in rows:
        assert 0 <= r["token_f1"] <= 1 and -1 <= r["cosine"] <= 1 and r["n"] == 3
        # Fluency beside the targets' own, one reference perplexity per corpus.
        assert r["target_perplexity"] > 1 and (r["perplexity"] is None or r["perplexity"] > 1)
        # Rows read off a longer run carry no time; methods with the embedder in the loop
        # report their share of the encoder-bound rate, a fraction in (0, 1].
        read_off = ("corrector_1_steps", "guided_search_1_rounds")
        assert (r["seconds_per_100"] is None) == (r["method"] in read_off)
        if r["method"] in ("zero_shot_search", "corrector_2_steps", "corrector_beam2_2_steps",
                           "guided_search_2_rounds"):
            assert 0 < r["encoder_bound_fraction"] <= 1.0
        elif r["method"] == "guided_decoding":  # its partial texts are shorter than the timed ones
            assert r["encoder_bound_fraction"] > 0
        else:
            assert r["encoder_bound_fraction"] is None
    assert len({(r["corpus"], r["target_perplexity"]) for r in rows}) == len(corpora)
    run = tmp_path / "run"
    with (run / "table.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    md = (run / "table.md").read_text().splitlines()
    assert md[0] == "| " + " | ".join(COLUMNS) + " |" and len(md) == len(rows) + 2
    assert (run / "steps.png").stat().st_size > 0
    assert json.loads((run / "results.json").read_text())["rows"] == json.loads(json.dumps(rows))


def test_table_without_corrector_or_search_has_no_step_rows(tmp_path, saved):
    inverters, _, lm = saved
    cfg = _cfg(tmp_path, {"full": inverters["full"]}, None, lm)
    cfg["zero_shot"]["enabled"] = False
    cfg["search"] = None
    cfg["data"]["out_of_domain"] = []
    methods = {r["method"] for r in run_inversion_table(cfg)["rows"]}
    assert methods == {"bag_of_words", "nearest_neighbour", "inverter_full_0_steps"}
    assert not (tmp_path / "run" / "steps.png").exists()


def test_table_refuses_an_inverter_for_another_embedder(tmp_path, saved):
    inverters, _, lm = saved
    cfg = _cfg(tmp_path, inverters, None, lm)
    cfg["embedder"] = {"_target_": "correction_helpers.HashWordEmbedder", "dim": 8}
    with pytest.raises(DimensionMismatchError, match="dim 16.*dim 8"):
        run_inversion_table(cfg)


def test_table_needs_the_data_an_old_inverter_folder_does_not_record(tmp_path, saved):
    inverters, _, lm = saved
    old = tmp_path / "old"
    inverter = invert.load_inverter(inverters["full"])
    del inverter.config.training_data
    inverter.save_pretrained(old)
    with pytest.raises(CheckpointError, match="does not record its training data.*data="):
        run_inversion_table(_cfg(tmp_path, {"full": str(old)}, None, lm))


def test_encoder_rate_is_positive():
    assert encoder_rate(HashWordEmbedder(), TEXTS) > 0


def test_a_hinted_inverter_adds_its_sentence_rewrite_of_the_search(tmp_path, saved):
    # The quick start's inverter reads word hints: the table then also writes the guided
    # search's texts back as its sentences, a timed row of its own.
    from invert.training.hints import fit_hint_heads

    _, _, lm = saved
    first = invert.load_inverter(saved[0]["full"])
    embedder = HashWordEmbedder()
    hinted = tiny_inverter("prefix_lm", hint_tokens=3, hint_vocabulary=64, hint_hidden_dim=32, hint_bias=1.0)
    fit_hint_heads(hinted, TEXTS, embedder.encode(TEXTS), folds=2, epochs=20, lr=1e-2, seed=0)
    hinted.config.training_data = first.config.training_data
    hinted.save_pretrained(tmp_path / "hinted")
    cfg = _cfg(tmp_path, {"hinted": str(tmp_path / "hinted")}, None, lm)
    cfg["zero_shot"]["enabled"] = False
    rows = run_inversion_table(cfg)["rows"]
    for corpus in {r["corpus"] for r in rows}:
        mine = {r["method"]: r for r in rows if r["corpus"] == corpus}
        assert {"guided_search_2_rounds", "sentence_rewrite", "guided_decoding"} <= set(mine)
        assert mine["sentence_rewrite"]["seconds_per_100"] is not None
        assert mine["guided_decoding"]["seconds_per_100"] is not None
