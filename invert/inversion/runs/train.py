"""The inversion experiment: corpus → pairs → train an inverter → evaluate beside retrieval.

Called by ``experiments/train_inverter.py`` (Hydra) or directly with a plain config dict,
e.g. from a notebook through Hydra's compose API. Returns the headline metrics.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from invert.data.pairs import EmbeddedSplit, embed_split
from invert.data.splits import prepare_corpus
from invert.embedders.base import Embedder
from invert.inversion.evaluation import evaluate_methods
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.loading import load_inverter
from invert.models.nearest_neighbour import NearestNeighbourInverter
from invert.reporting.plots import plot_learning_curve, plot_metric_bars
from invert.reporting.tracking import Tracker, build_tracker, save_json
from invert.training import Trainer, TrainerConfig
from invert.training.inversion_data import PairDataset, pair_collator

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("target", "reconstruction", "bleu", "token_f1", "cosine", "nearest_neighbour")


def run_inversion_experiment(cfg: dict[str, Any]) -> dict[str, Any]:
    """Trains and evaluates an inverter as ``cfg`` says; writes everything into the run folder.

    Args:
        cfg: Resolved config with ``embedder``, ``data``, ``model``, ``train``, ``eval``,
            ``logger``, ``paths`` and ``seed`` (see ``conf/config.yaml``).

    Returns:
        ``{"metrics": {method: {...}}, "train": {...}, "inverter_path": str}``.
    """
    run_dir = Path(cfg["paths"]["output_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    embedder: Embedder = instantiate(cfg["embedder"], _convert_="all")
    # The embedder's name and dim are read off the embedder, never typed in a config.
    data = cfg["data"]
    inverter = instantiate(
        cfg["model"], _convert_="all", embedder_name=embedder.name, embedder_dim=embedder.dim,
        max_text_tokens=data["max_tokens"],
    )
    splits = prepare_corpus(tokenizer=inverter.tokenizer, **data)
    pairs = {
        split: embed_split(splits[split], embedder, data["name"], split, data["max_tokens"])
        for split in ("train", "validation", "test")
    }
    for split, p in pairs.items():
        logger.info("%s: %d pairs%s", split, len(p), " (from cache)" if p.from_cache else "")
    tracker = _tracker(cfg, run_dir)
    evaluation = cfg["eval"]
    baseline = NearestNeighbourInverter(pairs["train"].texts, pairs["train"].embeddings, embedder.name)
    val = _head(pairs["validation"], evaluation["val_examples"])

    def eval_fn(model: Any, step: int) -> dict[str, float]:
        results, _ = evaluate_methods(
            model, embedder, val.texts, val.embeddings, show_progress=False,
            batch_size=evaluation["batch_size"],
        )
        return {k: v for k, v in results["inverter"].items() if k in ("bleu", "token_f1", "cosine", "exact")}

    train_cfg = TrainerConfig(**{**cfg["train"], "output_dir": str(run_dir)})
    trainer = Trainer(
        inverter,
        PairDataset(pairs["train"].texts, pairs["train"].embeddings),
        pair_collator(inverter.tokenizer, data["max_tokens"]),
        train_cfg,
        tracker=tracker,
        eval_fn=eval_fn if evaluation["val_examples"] > 0 else None,
    )
    result = trainer.train()
    inverter_path = run_dir / "inverter"
    trainer.save_model(inverter_path)
    summary: dict[str, Any] = {
        "train": {
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "examples_per_second": round(result.examples_per_second, 2),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "stopped_early": result.stopped_early,
            "train_pairs": len(pairs["train"]),
            # Draws from the training set (a run may stop inside an epoch): membership audits
            # replay them with invert.training.trainer.seen_example_indices.
            "examples_seen": result.steps * train_cfg.batch_size * train_cfg.grad_accum_steps
            * trainer.accelerator.num_processes,
        },
        "inverter_path": str(inverter_path),
    }
    if trainer.is_main_process:
        test = _head(pairs["test"], evaluation["num_examples"])
        bow = _fit_bag_of_words(pairs["train"], embedder, evaluation, run_dir)
        summary["metrics"], examples = _evaluate_and_report(
            inverter, embedder, test, baseline, evaluation, tracker, run_dir, bow
        )
        curve = plot_learning_curve(result.history, run_dir / "learning_curve.png",
                                    keys=("train/loss", "eval/token_f1", "eval/cosine"))
        tracker.log_image("learning_curve", curve)
        if cfg["logger"].get("log_model"):
            tracker.log_artifact(inverter_path, name="inverter", type="model")
        tracker.summary(_flatten(summary["metrics"]))
        save_json(run_dir / "results.json", summary)
        _print_summary(summary, examples)
    tracker.finish()
    return summary


def evaluate_saved_inverter(cfg: dict[str, Any]) -> dict[str, Any]:
    """Evaluates the inverter at ``cfg["inverter_path"]`` on a corpus split beside retrieval."""
    run_dir = Path(cfg["paths"]["output_dir"])
    inverter = load_inverter(cfg["inverter_path"])
    embedder: Embedder = instantiate(cfg["embedder"], _convert_="all")
    data = {**cfg["data"], "max_tokens": inverter.config.max_text_tokens}
    splits = prepare_corpus(tokenizer=inverter.tokenizer, **data)
    train = embed_split(splits["train"], embedder, data["name"], "train", data["max_tokens"])
    split = cfg["split"]
    held_out = embed_split(splits[split], embedder, data["name"], split, data["max_tokens"])
    baseline = NearestNeighbourInverter(train.texts, train.embeddings, embedder.name)
    tracker = _tracker(cfg, run_dir)
    evaluation = cfg["eval"]
    bow = _fit_bag_of_words(train, embedder, evaluation, run_dir)
    metrics, examples = _evaluate_and_report(
        inverter, embedder, _head(held_out, evaluation["num_examples"]), baseline,
        evaluation, tracker, run_dir, bow,
    )
    summary = {"metrics": metrics, "inverter_path": cfg["inverter_path"], "split": split}
    tracker.summary(_flatten(metrics))
    save_json(run_dir / "results.json", summary)
    _print_summary(summary, examples)
    tracker.finish()
    return summary


def _evaluate_and_report(
    inverter: Any,
    embedder: Embedder,
    test: EmbeddedSplit,
    baseline: NearestNeighbourInverter,
    evaluation: dict[str, Any],
    tracker: Tracker,
    run_dir: Path,
    bow: BagOfWordsInverter | None = None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, str]]]:
    """Scores every method, logs and saves them; returns the metrics and a few printable rows
    (none when ``eval.log_examples`` is off: private corpora stay off the terminal too)."""
    metrics, rows = evaluate_methods(
        inverter, embedder, test.texts, test.embeddings, baseline,
        num_candidates=evaluation["num_candidates"], num_beams=evaluation["num_beams"],
        batch_size=evaluation["batch_size"], bag_of_words=bow, search=evaluation.get("search"),
    )
    best = next(m for m in ("guided_search", "inverter_search", "inverter_rerank", "inverter")
                if m in metrics)  # fmt: skip
    for method, values in metrics.items():
        tracker.log({f"test/{method}/{k}": v for k, v in values.items()})
    bars = plot_metric_bars(metrics, ("token_f1", "cosine", "exact"), run_dir / "methods.png")
    tracker.log_image("methods", bars)
    save_json(run_dir / "predictions.json", rows)
    if evaluation.get("log_examples", True):
        table = [
            [r["target"], r[best], r[f"{best}_bleu"], r[f"{best}_token_f1"], r[f"{best}_cosine"],
             r.get("nearest_neighbour", "")]
            for r in rows[: evaluation["table_rows"]]
        ]
        tracker.log_table("samples", list(SAMPLE_COLUMNS), table)
    shown = int(evaluation.get("print_examples", 5)) if evaluation.get("log_examples", True) else 0
    methods = [m for m in ("nearest_neighbour", "inverter", "inverter_search", best) if m in metrics]
    examples = [{m: r[m] for m in ("target", *dict.fromkeys(methods))} for r in rows[:shown]]
    return metrics, examples


def _fit_bag_of_words(
    train: EmbeddedSplit, embedder: Embedder, evaluation: dict[str, Any], run_dir: Path
) -> BagOfWordsInverter | None:
    """The guided search's word proposer, fit on the training pairs (seconds on a CPU)."""
    search = evaluation.get("search")
    if not search or not search.get("bow"):
        return None
    options = search["bow"]
    start = time.perf_counter()
    bow = BagOfWordsInverter.build(
        train.texts, embedder.dim, int(options["hidden_dim"]),
        max_vocabulary=int(options["max_vocabulary"]), embedder_name=embedder.name,
    )  # fmt: skip
    losses = bow.fit(train.texts, train.embeddings, epochs=int(options["epochs"]),
                     lr=float(options["lr"]))  # fmt: skip
    bow.save(run_dir / "bag_of_words.safetensors")
    logger.info("bag-of-words model: %d words, loss %.4f, %.0f s",
                len(bow.vocabulary), losses[-1], time.perf_counter() - start)  # fmt: skip
    return bow


def _tracker(cfg: dict[str, Any], run_dir: Path) -> Tracker:
    from accelerate import PartialState

    options = {k: v for k, v in cfg["logger"].items() if k != "kind"}
    # Under accelerate launch / torchrun only rank 0 opens a W&B run.
    return build_tracker(
        cfg["logger"]["kind"], run_dir, config=cfg,
        is_main_process=PartialState().is_main_process, **options,
    )


def _head(split: EmbeddedSplit, n: int) -> EmbeddedSplit:
    return EmbeddedSplit(split.texts[:n], split.embeddings[:n])


def _flatten(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{m}/{k}": v for m, values in metrics.items() for k, v in values.items()}


def _print_summary(summary: dict[str, Any], examples: list[dict[str, str]]) -> None:
    metrics = summary["metrics"]
    print(json.dumps(summary, indent=1, default=str))
    width = max(map(len, [*metrics, "nearest_neighbour"]))
    for example in examples:
        print(f"\n{'target':<{width + 2}} {example['target']}")
        for method, text in example.items():
            if method != "target":
                print(f"  → {method:<{width}} {text}")
    print("\nheld-out metrics (token F1 / cosine / BLEU / exact):")
    for method, m in metrics.items():
        print(f"  {method:<{width + 1}} F1 {m['token_f1']:.3f}  cos {m['cosine']:.3f}  "
              f"BLEU {m['bleu']:.1f}  exact {m['exact']:.3f}  ({m['seconds_per_100']:.1f} s/100)")
    comparisons = [("inverter_search", "nearest_neighbour"), ("guided_search", "nearest_neighbour"),
                   ("inverter_search", "bag_of_words_search")]  # the last: the inverter's share
    for method, other in comparisons:
        if method in metrics and other in metrics:
            a, b = metrics[method], metrics[other]
            print(f"  {method.replace('_', ' ')} vs {other.replace('_', ' ')}: "
                  f"F1 {a['token_f1'] - b['token_f1']:+.3f}, cosine {a['cosine'] - b['cosine']:+.3f}")
