"""The weights-vs-activations experiment end to end on a tiny character GPT and a real Chroma store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from invert.errors import UnknownNameError
from invert.memorization.private_corpus import CharTokenizer
from invert.memorization.target_models import build_gpt
from invert.privacy.knowledge_base import build_knowledge_base
from invert.privacy.weights_vs_activations import run_weights_vs_activations

CONF = Path(__file__).resolve().parents[1] / "conf"


def _config(tmp_path: Path, *overrides: str) -> dict:
    lm = tmp_path / "char_lm"
    if not lm.exists():
        build_gpt(2, 64, 4, len(CharTokenizer()), 512, seed=0).save_pretrained(lm)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("weights_vs_activations", overrides=[
            "wva=tiny", f"wva.lm={lm}", "wva.tokenizer=char", "wva.max_new_tokens=20",
            "wva.methods=[none,rag,full]", "wva.train.max_steps=400", "wva.train.batch_size=16",
            f"paths.output_dir={tmp_path / 'run'}", *overrides,
        ])  # fmt: skip
    return OmegaConf.to_container(cfg, resolve=True)


def test_every_method_is_measured_and_no_private_text_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = _config(tmp_path, "logger=wandb", "+wva.budget.total_minutes=1000")
    out = run_weights_vs_activations(cfg)
    methods = out["methods"]
    assert set(methods) == {"none", "rag", "full"}
    # The base LM knows nobody; the fine-tuned one recites its training documents.
    none, full, rag = methods["none"], methods["full"], methods["rag"]
    assert none["recall"]["members"]["form"]["verbatim"]["contains"] == 0.0
    assert full["recall"]["members"]["form"]["verbatim"]["contains"] > 0.5
    assert full["recall"]["held_out"]["all"]["contains"] < 0.2
    assert rag["recall"]["members"]["retrieval_hit_rate"] > 0.5
    # Matched steps were sized to the budget before training, which pays for all of them here.
    assert out["budget"]["steps"] == full["cost"]["steps"] == 400
    assert set(out["budget"]["seconds_per_step"]) == {"full"}
    # Leakage: the weights' probes for the tuned model, the record attack for the store.
    assert "weights_leakage" in full and "weights_leakage" not in rag
    assert 0 <= full["weights_leakage"]["mia_blind"]["auc"] <= 1
    assert set(rag["store_leakage"]["pii"]) >= {"first_name", "full_name", "birth_date"}
    # Deletion: the store forgets its rows; the weights still answer about deleted people.
    assert rag["deletion"]["deleted_vectors"] > 0
    assert full["deletion"]["recall_after"] == full["deletion"]["recall_before"]
    assert full["deletion"]["forget_cost_s"] > 0
    # Canaries: a store hands its owners' canaries to the LM until the owners are deleted.
    assert rag["exposure"]["members"]["retrieved"] > 0.5
    assert rag["exposure"]["deleted_before"]["retrieved"] > 0.5
    assert rag["exposure"]["deleted_after"]["retrieved"] == 0.0
    assert full["exposure"]["deleted_after"] == full["exposure"]["deleted_before"]
    # Findings: every one a value inside its 95% interval; RAG's gap over the base LM.
    findings = {(f["finding"], f["method"]): f for f in out["findings"]}
    for f in out["findings"]:
        assert f["ci_low"] - 1e-9 <= f["value"] <= f["ci_high"] + 1e-9, f
    gap = findings[("recall above the base LM, verbatim", "rag")]
    assert gap["value"] == pytest.approx(
        rag["recall"]["members"]["form"]["verbatim"]["contains"]
        - none["recall"]["members"]["form"]["verbatim"]["contains"]
    )
    # The findings' memorized bits are the table's (members' bits above held-out documents').
    per_param = findings[("memorized bits per trainable parameter", "full")]["value"]
    assert per_param == pytest.approx(
        full["weights_leakage"]["unintended"]["bits_per_parameter"], rel=1e-6
    )
    assert ("store inversion recovers full_name", "store") in findings
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "table.csv").open()))
    assert [r["method"] for r in rows] == ["none", "rag", "full"]
    assert (run / "findings.md").read_text().count("\n") > 10
    assert {r["form"] for r in csv.DictReader((run / "recall_by_repetition.csv").open())} == {
        "verbatim",
        "paraphrase",
    }
    for name in ("recall_vs_leakage", "exposure_vs_repetitions", "recall_vs_repetitions"):
        assert (run / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "<table>" in (run / "report.html").read_text()
    # Private text: no person's name in the JSON, the table, the report or the W&B run.
    kb = build_knowledge_base(**cfg["wva"]["knowledge_base"], seed=cfg["seed"])
    names = [p.name for p in kb.people]
    written = (run / "weights_vs_activations.json").read_text() + (run / "table.md").read_text()
    written += (run / "report.html").read_text() + (run / "findings.md").read_text()
    wandb_bytes = b"".join(p.read_bytes() for p in (run / "wandb").rglob("*") if p.is_file())
    assert not [c for c in kb.canaries if c.text in written or c.text.encode() in wandb_bytes]
    assert not [n for n in names if n in written or n.encode() in wandb_bytes]
    assert json.loads((run / "weights_vs_activations.json").read_text())["knowledge_base"]


def test_an_unknown_method_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(UnknownNameError, match="rag"):
        run_weights_vs_activations(_config(tmp_path, "logger=none", "wva.methods=[none,vectors]"))


def test_canary_exposure_rises_with_repetitions(tmp_path):
    """A canary seen 16 times is more exposed than one seen once, through the LM alone."""
    from invert.privacy.knowledge_injection import inject
    from invert.privacy.weights_vs_activations import system_exposure

    lm = tmp_path / "char_lm"
    build_gpt(2, 64, 4, len(CharTokenizer()), 512, seed=0).save_pretrained(lm)
    kb = build_knowledge_base(
        n_people=12, n_held_out=2, n_deleted=0, fact_repetitions=(1,),
        canary_repetitions=(1, 16), canaries_per_repetition=3, secret_digits=3, seed=0,
    )  # fmt: skip
    train = {"max_steps": 120, "batch_size": 16, "lr": {"full": 3e-3}, "warmup_steps": 5,
             "schedule": "constant", "log_every": 1000, "max_length": 96}  # fmt: skip
    full = inject("full", kb, str(lm), CharTokenizer(), None, tmp_path / "run", train=train)
    exposure = {"method": "exact", "n_samples": 0, "max_enumerate": 1000, "search_batches": 0}
    out = system_exposure(full, kb, kb.canary_indices("members"), exposure, 64, 0)
    assert out["by_repetition"][16] > out["by_repetition"][1] + 2.0, out["by_repetition"]
