"""The inversion experiment end to end on the tiny config: outputs, W&B run, cache, evaluation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_tracking import _offline_summary, _wandb_records

from invert.errors import CheckpointError, InvertError, UnknownNameError
from invert.inversion.runs.train import evaluate_saved_inverter, run_inversion_experiment
from invert.models.loading import load_inverter

CONF = Path(__file__).resolve().parents[1] / "conf"


def tiny_config(run_dir: Path, *overrides: str, name: str = "train_inverter") -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    cfg.paths.output_dir = str(run_dir)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One tiny run logged to an offline W&B run, shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("tiny-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        cfg = tiny_config(run_dir, "experiment=tiny", "logger=wandb")
        summary = run_inversion_experiment(cfg)
    return run_dir, summary


def test_tiny_run_reports_every_method_beside_the_baseline(tiny_run) -> None:
    run_dir, summary = tiny_run
    methods = summary["metrics"]
    assert set(methods) == {"nearest_neighbour", "bag_of_words", "inverter", "inverter_rerank",
                            "bag_of_words_search", "guided_decoding", "inverter_search", "guided_search"}
    for metrics in methods.values():
        for key in ("bleu", "sentence_bleu", "token_f1", "exact", "cosine", "seconds_per_100"):
            assert key in metrics
        assert 0.0 <= metrics["token_f1"] <= 1.0
    # Retrieval from the training set returns real sentences: its cosine is far from zero.
    assert methods["nearest_neighbour"]["cosine"] > 0.2
    # The search starts from the nearest training texts and keeps an edit only when the real
    # embedder scores it closer: it can never end below retrieval.
    assert methods["guided_search"]["cosine"] >= methods["nearest_neighbour"]["cosine"] - 1e-6
    # Without retrieval the search starts from guided decoding's sentences: same guarantee.
    assert methods["inverter_search"]["cosine"] >= methods["guided_decoding"]["cosine"] - 1e-6
    assert methods["inverter_search"]["seconds_per_100"] > methods["guided_decoding"]["seconds_per_100"]
    assert (run_dir / "bag_of_words.safetensors").stat().st_size > 0
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["metrics"]["inverter"]["n"] == summary["metrics"]["inverter"]["n"]
    for name in ("learning_curve.png", "methods.png", "predictions.json", "history.json"):
        assert (run_dir / name).stat().st_size > 0
    assert load_inverter(run_dir / "inverter").config.embedder_dim == 384


def test_tiny_run_writes_an_offline_wandb_run_with_metrics_and_samples(tiny_run) -> None:
    run_dir, _ = tiny_run
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = _wandb_records(next(runs[0].glob("run-*.wandb")))
    summary = _offline_summary(runs[0], records)
    assert "train/loss" in summary
    assert "nearest_neighbour/token_f1" in summary
    assert summary["samples"]["_type"] == "table-file"
    assert list((runs[0] / "files" / "media").rglob("samples*.table.json"))


@pytest.mark.slow  # a second whole tiny run: the second tier
def test_second_run_hits_the_embedding_cache(tiny_run, tmp_path: Path, caplog, capsys) -> None:
    caplog.set_level(logging.INFO, logger="invert")
    cfg = tiny_config(tmp_path, "experiment=tiny", "logger=none", "train.max_steps=1",
                      "eval.val_examples=0")
    summary = run_inversion_experiment(cfg)
    assert "train: " in caplog.text and "(from cache)" in caplog.text
    # The run ends by printing a few (target -> reconstruction) rows under the metrics.
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "predictions.json").read_text())
    width = max(map(len, summary["metrics"]))  # the method column fits the longest name
    assert f"{'target':<{width + 2}} {rows[0]['target']}" in printed
    assert f"→ {'guided_search':<{width}} {rows[0]['guided_search']}" in printed
    assert f"→ {'inverter_search':<{width}} {rows[0]['inverter_search']}" in printed
    assert "guided search vs nearest neighbour" in printed and "guided_search" in summary["metrics"]
    assert "inverter search vs nearest neighbour" in printed
    assert "inverter search vs bag of words search" in printed


@pytest.mark.slow  # embeds a second corpus with MiniLM: the second tier
def test_saved_inverter_evaluates_on_another_corpus(tiny_run, tmp_path: Path) -> None:
    run_dir, _ = tiny_run
    cfg = tiny_config(
        tmp_path, f"inverter_path={run_dir / 'inverter'}", "data=fortunes", "logger=none",
        "data.max_examples=60", "data.test_fraction=0.3", "eval.num_examples=4", "eval.num_candidates=1", name="evaluate",
    )
    summary = evaluate_saved_inverter(cfg)
    assert summary["metrics"]["inverter"]["n"] == 4
    assert "inverter_rerank" not in summary["metrics"]


def test_unknown_corpus_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "experiment=tiny", "logger=none", "data.name=wikipediaa")
    with pytest.raises(UnknownNameError, match="wikipedia.*bbc_news|bbc_news.*wikipedia"):
        run_inversion_experiment(cfg)


def test_inverter_folder_carries_its_data_so_evaluate_needs_only_the_path(tmp_path: Path) -> None:
    """Trained with a non-default seed and corpus, then evaluated with inverter_path alone."""
    cfg = tiny_config(tmp_path / "train", "experiment=tiny", "logger=none", "seed=3",
                      "data=fortunes", "data.max_examples=80", "eval.search=null",
                      "train.max_steps=2", "train.save_every=0")  # fmt: skip
    summary = run_inversion_experiment(cfg)
    record = load_inverter(summary["inverter_path"]).config.training_data
    assert record["data"]["name"] == "fortunes" and record["data"]["seed"] == 3
    assert record["train_seed"] == 3 and record["examples_seen"] == summary["train"]["examples_seen"]
    evaluated = evaluate_saved_inverter(tiny_config(
        tmp_path / "eval", f"inverter_path={summary['inverter_path']}", "logger=none",
        "eval.num_examples=4", "eval.num_candidates=1", "eval.search=null", name="evaluate",
    ))  # fmt: skip
    # Same corpus, seed and split as training: the same held-out texts, scored the same way.
    assert evaluated["data"]["name"] == "fortunes" and evaluated["data"]["seed"] == 3
    trained = json.loads((tmp_path / "train" / "predictions.json").read_text())
    again = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert [r["target"] for r in again] == [r["target"] for r in trained][:4]


def test_an_old_inverter_folder_says_which_overrides_to_pass(tiny_run, tmp_path: Path) -> None:
    run_dir, _ = tiny_run
    inverter = load_inverter(run_dir / "inverter")
    del inverter.config.training_data
    inverter.save_pretrained(tmp_path / "old")
    cfg = tiny_config(tmp_path / "eval", f"inverter_path={tmp_path / 'old'}", "logger=none",
                      name="evaluate")  # fmt: skip
    with pytest.raises(CheckpointError, match="does not record its training data.*data=wikipedia"):
        evaluate_saved_inverter(cfg)


def test_stored_vectors_train_and_report_cosine_as_unavailable(tmp_path: Path) -> None:
    """embedder=precomputed: texts and their vectors from one parquet, no model to re-embed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from invert.embedders import build_embedder

    texts = [f"the {w} river runs past the {v} mill" for w in ("old", "wide", "cold", "slow", "long",
             "dark", "green", "quiet") for v in ("stone", "red", "tall", "small", "last", "grey")]  # fmt: skip
    vectors = build_embedder("minilm").encode(texts).tolist()
    parquet = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"text": texts, "embedding": vectors}), parquet)
    cfg = tiny_config(tmp_path / "run", "experiment=tiny", "logger=none", "embedder=precomputed",
                      f"embedder.path={parquet}", "embedder.name=all-MiniLM-L6-v2", "data=file",
                      f"data.path={parquet}", "train.max_steps=2", "train.save_every=0")  # fmt: skip
    summary = run_inversion_experiment(cfg)
    metrics = summary["metrics"]
    assert {"nearest_neighbour", "bag_of_words", "inverter"} <= set(metrics)
    assert not {"inverter_rerank", "inverter_search", "guided_search"} & set(metrics)
    assert all(m["cosine"] is None for m in metrics.values())
    assert all(0.0 <= m["token_f1"] <= 1.0 for m in metrics.values())


def test_the_run_returns_the_headline_or_the_chosen_metric(tiny_run, tmp_path: Path) -> None:
    run_dir, summary = tiny_run
    metrics = summary["metrics"]
    assert summary["optimized_metric"] == metrics["guided_search"]["token_f1"]
    cfg = tiny_config(tmp_path, f"inverter_path={run_dir / 'inverter'}", "logger=none",
                      "eval.num_examples=4", "eval.num_candidates=1", "eval.search=null",
                      "optimized_metric=nearest_neighbour/cosine", name="evaluate")  # fmt: skip
    evaluated = evaluate_saved_inverter(cfg)
    assert evaluated["optimized_metric"] == evaluated["metrics"]["nearest_neighbour"]["cosine"]
    bad = tiny_config(tmp_path / "bad", f"inverter_path={run_dir / 'inverter'}", "logger=none",
                      "eval.num_examples=4", "eval.search=null", "optimized_metric=inverter/nope",
                      name="evaluate")  # fmt: skip
    with pytest.raises(InvertError, match="not among this run's metrics.*inverter/token_f1"):
        evaluate_saved_inverter(bad)


def test_a_hinted_budgeted_run_trains_on_hints_and_searches_with_the_fluency_term(tmp_path: Path) -> None:
    """The quick start's recipe on the tiny config: word hints, a budget, the fluency term."""
    cfg = tiny_config(tmp_path, "experiment=tiny", "logger=none", "model.hint_tokens=3",
                      "model.hint_vocabulary=64", "model.hint_epochs=2", "budget.total_minutes=600",
                      "budget.reserve_minutes=1", "eval.search.fluency_weight=0.05",
                      "eval.search.max_minutes=5", "eval.search.deletions_per_round=2",
                      "train.save_every=0", "model.hint_bias=1.0", "eval.search.rewrite_every=2",
                      "model.draft_tokens=4")  # fmt: skip
    summary = run_inversion_experiment(cfg)
    inverter = load_inverter(summary["inverter_path"])
    assert inverter.config.hint_tokens == 3 and inverter.hint_head is not None
    # The draft index (every training pair) reloads with the inverter.
    assert len(inverter.draft_index) == inverter.config.draft_corpus_size == summary["train"]["train_pairs"]
    # The search's texts, rewritten as the inverter's sentences, are a row of their own,
    # charged for the search they start from.
    metrics = summary["metrics"]
    assert metrics["sentence_rewrite"]["seconds_per_100"] > metrics["inverter_search"]["seconds_per_100"]
    assert summary["train"]["steps"] == cfg["train"]["max_steps"]  # a generous budget ends nothing
    assert {"bag_of_words_search", "inverter_search", "guided_search"} <= set(summary["metrics"])
