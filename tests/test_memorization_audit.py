"""The memorization audit end to end on the tiny config, composed with Hydra's compose API."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from invert.errors import InvertError, UnknownNameError
from invert.memorization.private_corpus import build_private_corpus
from invert.memorization.runs.finetune_audit import run_memorization_audit
from invert.memorization.shadow_attacks import SHADOW_ATTACKS
from invert.memorization.target_models import count_parameters
from invert.reporting.run_context import flatten_metrics

CONF = Path(__file__).resolve().parents[1] / "conf"
# Smaller than audit_tiny itself: this checks the plumbing; the probes' own tests check values.
FAST = [
    "logger=none",
    "probe.regimes=[none,scratch]",
    "probe.train.max_steps=40",
    "probe.reference.max_steps=20",
    "probe.data.n_members=24",
    "probe.data.n_non_members=24",
    "probe.data.n_population=24",
    "probe.data.canary_repetitions=[1,8]",
    "probe.data.canaries_per_repetition=1",
    "probe.extraction.max_texts=12",
    "probe.mia.n_bootstrap=50",
    "probe.shadows.n_models=2",
]


def _config(tmp_path: Path, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "memorization_audit", overrides=[*FAST, f"paths.output_dir={tmp_path}", *overrides]
        )
    return OmegaConf.to_container(cfg, resolve=True)


def test_primary_config_defaults():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("memorization_audit")
    assert cfg.logger.kind == "wandb" and cfg.probe.name == "audit_tiny"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        real = compose("memorization_audit", overrides=["memorization_probe=smollm2"])
    assert list(real.probe.regimes) == ["full", "lora", "prefix"]
    assert real.probe.train.max_steps > 0 and real.probe.reference.kind == "pretrained"


def test_audit_runs_end_to_end(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = run_memorization_audit(cfg)
    assert set(out["regimes"]) == {"none", "scratch"}
    untrained, trained = out["regimes"]["none"], out["regimes"]["scratch"]
    assert trained["member_loss"] < untrained["member_loss"] - 0.5  # it did train
    assert trained["train"]["steps"] == 40 and untrained["train"]["steps"] == 0
    assert trained["shadows"]["n_models"] == 2 and "shadows" not in untrained
    # InfoRMIA's memorized bits, beside the unintended bits: training on the members adds some.
    bits = [m["informia_bits"]["corrected_total_bits"] for m in (untrained, trained)]
    assert bits[1] > bits[0], bits
    for metrics in (untrained, trained):
        values = flatten_metrics(metrics, scalars_only=True)
        assert values and all(math.isfinite(v) for v in values.values())
        shadow_rows = set(SHADOW_ATTACKS) if metrics is trained else set()  # none trains no shadows
        assert set(metrics["mia"]) == {
            "loss", "reference", "zlib", "min_k", "min_k_plus_plus", "ez_mia", "wbc", "informia"
        } | shadow_rows  # fmt: skip
        assert 0 <= metrics["mia"]["loss"]["auc"] <= 1
        lo, hi = metrics["mia"]["loss"]["tpr@1%fpr_ci_low"], metrics["mia"]["loss"]["tpr@1%fpr_ci_high"]
        assert 0 <= lo <= hi <= 1
        # The blind baseline stands beside the attacks: near chance on the random split, and
        # high on the negative control, whose non-members come from another corpus.
        assert 0.25 < metrics["mia_blind"]["auc"] < 0.75
        control = metrics["mia_negative_control"]
        assert control["source"] == "fortunes" and control["blind"]["auc"] > 0.9
        assert metrics["exposure"]["method"] == "exact"  # |R| = 1000 is enumerated
        assert "bits_per_parameter" in metrics["unintended"]
    assert 0 <= out["headline"]["value"] <= 1
    # Files: JSON, the comparison table (CSV + markdown) and the plots.
    saved = json.loads((tmp_path / "memorization_audit.json").read_text())
    assert saved["headline"] == out["headline"]
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["regime"] for r in rows] == ["none", "scratch"]
    assert {"task_loss", "exposure_mean", "mia_loss_auc", "bits_per_param", "wall_s"} <= set(
        rows[0]
    )
    assert (tmp_path / "comparison.md").read_text().startswith("| regime |")
    attacks = list(csv.DictReader((tmp_path / "attacks.csv").open()))
    assert [r["attack"] for r in attacks if r["regime"] == "scratch"][-1] == "blind"
    assert {"auc_ci", "tpr@1%fpr_ci", "control_auc"} <= set(attacks[0])
    for name in (
        "exposure_vs_repetitions",
        "extractable_vs_prefix_length",
        "roc_scratch",
        "unintended_bits",
    ):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0
    assert '"headline"' in capsys.readouterr().out  # the JSON is printed too
    # Privacy: no training text (records or canaries) in what the run writes or prints.
    corpus = build_private_corpus(**cfg["probe"]["data"], seed=cfg["seed"])
    written = (tmp_path / "memorization_audit.json").read_text() + (
        tmp_path / "comparison.md"
    ).read_text() + (tmp_path / "attacks.md").read_text()
    assert not [t for t in corpus.members + [c.text for c in corpus.canaries] if t in written]


def test_audit_rejects_bad_settings(tmp_path):
    with pytest.raises(UnknownNameError, match="regime"):
        run_memorization_audit(_config(tmp_path, "probe.regimes=[bogus]"))
    with pytest.raises(InvertError, match="scratch"):
        run_memorization_audit(_config(tmp_path, "probe.regimes=[lora]"))


def test_unintended_bits_by_hand():
    from invert.memorization.unintended import summarize_unintended, unintended_bits

    bits = unintended_bits([10.0, 30.0, 5.0], [20.0, 25.0, 9.0])  # max(0, ref - target)
    assert bits.tolist() == [10.0, 0.0, 4.0]
    out = summarize_unintended(bits, [1.0, 3.0], trainable_parameters=2)
    assert out["total_bits"] == 14.0 and out["members"]["frac_positive"] == pytest.approx(2 / 3)
    assert out["corrected_total_bits"] == 14.0 - 3 * 2.0  # minus n_members x mean(non-members)
    assert out["bits_per_parameter"] == 4.0 and out["raw_bits_per_parameter"] == 7.0
    with pytest.raises(InvertError, match="same texts"):
        unintended_bits([1.0], [1.0, 2.0])


def test_lora_regime_trains_lora_shadows_and_reports_the_shadow_attacks(tmp_path):
    from invert.memorization.private_corpus import CharTokenizer
    from invert.memorization.target_models import build_gpt

    base = tmp_path / "base"  # a tiny "pretrained" LM on characters stands in for SmolLM2
    build_gpt(1, 32, 2, len(CharTokenizer()), 128).save_pretrained(base)
    cfg = _config(
        tmp_path / "run", "probe.regimes=[lora]", "probe.target.kind=pretrained",
        f"probe.target.name={base}", "+probe.target.tuning.lora_r=2",
        "probe.reference.kind=pretrained", f"probe.reference.name={base}",
        "probe.train.lr=1e-2",
    )  # fmt: skip
    lora = run_memorization_audit(cfg)["regimes"]["lora"]
    assert lora["shadows"]["n_models"] == 2 and lora["shadows"]["steps"] == 2 * 40
    assert lora["trainable_parameters"] < count_parameters(build_gpt(1, 32, 2, 103, 128))
    for name in SHADOW_ATTACKS:
        assert 0 <= lora["mia"][name]["auc"] <= 1
