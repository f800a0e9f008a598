"""The inversion experiment: corpus → pairs → train an inverter → evaluate beside retrieval.

Called by ``experiments/train_inverter.py`` (Hydra) or directly with a plain config dict,
e.g. from a notebook through Hydra's compose API. Returns the headline metrics.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hydra.utils import instantiate

from invert.configs import BudgetConfig, EvalConfig, from_mapping
from invert.data.pairs import EmbeddedSplit
from invert.embedders import build_embedder
from invert.embedders.base import Embedder
from invert.inversion.evaluation import evaluate_methods
from invert.inversion.fluency import ReferenceLM
from invert.inversion.methods import OPTIMIZED_KEY, Method, best_method, headline_metric
from invert.inversion.runs.preamble import (
    data_for,
    embedded_splits,
    fit_bag_of_words,
    head,
    nearest_neighbour,
    training_record,
)
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.hint_bias import set_draft_bias, set_hint_bias
from invert.models.loading import load_inverter
from invert.models.nearest_neighbour import NearestNeighbourInverter
from invert.reporting.plots import plot_learning_curve, plot_metric_bars
from invert.reporting.run_context import RunContext, open_run
from invert.reporting.tracking import save_json
from invert.training import Trainer, TrainerConfig
from invert.training.budget import budget_deadline, training_minutes
from invert.training.hints import fit_hint_heads
from invert.training.inversion_data import PairDataset, pair_collator

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("target", "reconstruction", "bleu", "token_f1", "cosine", "nearest_neighbour")


def run_inversion_experiment(cfg: dict[str, Any]) -> dict[str, Any]:
    """Trains and evaluates an inverter as ``cfg`` says; writes everything into the run folder.

    Args:
        cfg: Resolved config with ``embedder``, ``data``, ``model``, ``train``, ``eval``,
            ``logger``, ``paths`` and ``seed`` (see ``conf/train_inverter.yaml``).

    Returns:
        ``{"metrics": {method: {...}}, "train": {...}, "inverter_path": str}``; the inverter
        folder records its data (``config.training_data``) for downstream commands.
    """
    run = open_run(cfg)
    embedder: Embedder = build_embedder(cfg["embedder"])
    # The embedder's name and dim are read off the embedder, never typed in a config.
    data = cfg["data"]
    inverter = instantiate(
        cfg["model"], _convert_="all", embedder_name=embedder.name, embedder_dim=embedder.dim,
        max_text_tokens=data["max_tokens"],
    )
    pairs = embedded_splits(data, embedder, inverter.tokenizer)
    evaluation = from_mapping(EvalConfig, cfg["eval"], "eval")
    baseline = nearest_neighbour(pairs["train"], embedder)
    val = head(pairs["validation"], evaluation.val_examples)

    def eval_fn(model: Any, step: int) -> dict[str, float]:
        results, _ = evaluate_methods(
            model, embedder, val.texts, val.embeddings, show_progress=False,
            batch_size=evaluation.batch_size,
        )
        scores = results[Method.INVERTER].items()
        return {k: v for k, v in scores if k in ("bleu", "token_f1", "cosine", "exact") and v is not None}

    hints = None
    if getattr(inverter, "hint_head", None) is not None:
        config = inverter.config
        hints = fit_hint_heads(inverter, pairs["train"].texts, pairs["train"].embeddings,
                               config.hint_folds, config.hint_epochs, seed=run.seed,
                               mixed_precision=cfg["train"].get("mixed_precision", "no"))  # fmt: skip
    drafts = None
    if getattr(inverter, "draft_index", None) is not None:
        drafts = inverter.set_draft_corpus(pairs["train"].texts, pairs["train"].embeddings)
    # Sized last, once loading, embedding and the hint heads have taken what they took here.
    budget = from_mapping(BudgetConfig, cfg.get("budget"), "budget")
    minutes = training_minutes(budget, cfg["train"].get("max_minutes"))
    train_cfg = TrainerConfig(**{**cfg["train"], "output_dir": str(run.run_dir), "max_minutes": minutes})
    trainer = Trainer(
        inverter,
        PairDataset(pairs["train"].texts, pairs["train"].embeddings, hints, drafts),
        pair_collator(inverter.tokenizer, data["max_tokens"]),
        train_cfg,
        tracker=run.tracker,
        eval_fn=eval_fn if evaluation.val_examples > 0 else None,
    )
    result = trainer.train()
    # Draws from the training set (a run may stop inside an epoch): membership audits replay
    # them with invert.training.sampling.seen_example_indices.
    examples_seen = (result.steps * train_cfg.batch_size * train_cfg.grad_accum_steps
                     * trainer.accelerator.num_processes)  # fmt: skip
    inverter_path = run.run_dir / "inverter"
    trainer.accelerator.unwrap_model(trainer.model).config.training_data = training_record(
        data, train_cfg.seed, examples_seen
    )
    trainer.save_model(inverter_path)
    summary: dict[str, Any] = {
        "train": {
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "examples_per_second": round(result.examples_per_second, 2),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "stopped_early": result.stopped_early,
            "train_pairs": len(pairs["train"]),
            "examples_seen": examples_seen,
        },
        "inverter_path": str(inverter_path),
    }
    if not run.is_main_process:
        run.tracker.finish()
        return summary
    test = head(pairs["test"], evaluation.num_examples)
    _set_pulls(inverter, evaluation)  # after saving: the folder keeps the trained model's own
    bow = _search_bag_of_words(pairs["train"], embedder, evaluation, run)
    summary["metrics"], examples = _evaluate_and_report(
        inverter, embedder, test, baseline, evaluation, run, bow, deadline=budget_deadline(budget)
    )
    summary[OPTIMIZED_KEY] = headline_metric(summary["metrics"], cfg.get("optimized_metric"))
    if any("train/loss" in h for h in result.history):  # none before the first logged step
        curve = plot_learning_curve(result.history, run.run_dir / "learning_curve.png",
                                    keys=("train/loss", "eval/token_f1", "eval/cosine"))
        run.tracker.log_image("learning_curve", curve)
    if cfg["logger"].get("log_model"):
        run.tracker.log_artifact(inverter_path, name="inverter", type="model")
    run.finish(summary)
    _print_summary(summary, examples)
    return summary


def evaluate_saved_inverter(cfg: dict[str, Any]) -> dict[str, Any]:
    """Evaluates the inverter at ``cfg["inverter_path"]`` on a corpus split beside retrieval.

    The corpus, seed and split fractions come from the inverter's folder unless ``cfg["data"]``
    is given (e.g. another corpus, for out-of-domain text).
    """
    run = open_run(cfg)
    inverter = load_inverter(cfg["inverter_path"])
    embedder: Embedder = build_embedder(cfg["embedder"])
    data = data_for(inverter, cfg["inverter_path"], cfg.get("data"))
    split = cfg["split"]
    pairs = embedded_splits(data, embedder, inverter.tokenizer, dict.fromkeys(("train", split)))
    evaluation = from_mapping(EvalConfig, cfg["eval"], "eval")
    _set_pulls(inverter, evaluation)
    bow = _search_bag_of_words(pairs["train"], embedder, evaluation, run)
    metrics, examples = _evaluate_and_report(
        inverter, embedder, head(pairs[split], evaluation.num_examples),
        nearest_neighbour(pairs["train"], embedder), evaluation, run, bow,
    )
    summary = {"metrics": metrics, "inverter_path": cfg["inverter_path"], "split": split,
               "data": data}  # fmt: skip
    summary[OPTIMIZED_KEY] = headline_metric(metrics, cfg.get("optimized_metric"))
    run.finish(summary)
    _print_summary(summary, examples)
    return summary


def _set_pulls(inverter: Any, evaluation: EvalConfig) -> None:
    """Applies ``eval.hint_bias`` / ``eval.draft_bias`` where given (None: the inverter's own)
    and ``eval.mixed_precision`` to its decoding."""
    precision = inverter.set_decoding_precision(evaluation.mixed_precision)
    if precision != evaluation.mixed_precision:
        logger.info("decoding the inverter in %s", "fp32" if precision == "no" else precision)
    if evaluation.hint_bias is not None:
        set_hint_bias(inverter, evaluation.hint_bias)
    if evaluation.draft_bias is not None:
        set_draft_bias(inverter, evaluation.draft_bias)


def _evaluate_and_report(
    inverter: Any,
    embedder: Embedder,
    test: EmbeddedSplit,
    baseline: NearestNeighbourInverter,
    evaluation: EvalConfig,
    run: RunContext,
    bow: BagOfWordsInverter | None = None,
    deadline: float | None = None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, str]]]:
    """Scores every method, logs and saves them; returns the metrics and a few printable rows
    (none when ``eval.log_examples`` is off: private corpora stay off the terminal too).
    ``deadline``: a budgeted run's end (:func:`invert.training.budget.budget_deadline`)."""
    metrics, rows = evaluate_methods(
        inverter, embedder, test.texts, test.embeddings, baseline,
        num_candidates=evaluation.num_candidates, num_beams=evaluation.num_beams,
        batch_size=evaluation.batch_size, bag_of_words=bow, search=evaluation.search,
        fluency=ReferenceLM(evaluation.fluency_lm) if evaluation.fluency_lm else None,
        deadline=deadline,
    )
    best = best_method(metrics)
    for method, values in metrics.items():
        run.tracker.log({f"test/{method}/{k}": v for k, v in values.items()})
    bars = plot_metric_bars(metrics, ("token_f1", "cosine", "exact"), run.run_dir / "methods.png")
    run.tracker.log_image("methods", bars)
    save_json(run.run_dir / "predictions.json", rows)
    if evaluation.log_examples:
        table = [
            [r["target"], r[best], r[f"{best}_bleu"], r[f"{best}_token_f1"], r[f"{best}_cosine"],
             r.get("nearest_neighbour", "")]
            for r in rows[: evaluation.table_rows]
        ]
        run.tracker.log_table("samples", list(SAMPLE_COLUMNS), table)
    shown = evaluation.print_examples if evaluation.log_examples else 0
    shown_methods = (Method.NEAREST_NEIGHBOUR, Method.INVERTER, Method.GUIDED_DECODING,
                     Method.INVERTER_SEARCH, Method.SENTENCE_REWRITE, best)  # fmt: skip
    methods = [m for m in shown_methods if m in metrics]
    examples = [{m: r[m] for m in ("target", *dict.fromkeys(methods))} for r in rows[:shown]]
    return metrics, examples


def _search_bag_of_words(
    train: EmbeddedSplit, embedder: Embedder, evaluation: EvalConfig, run: RunContext
) -> BagOfWordsInverter | None:
    """The search's word proposer, fit on the training pairs (None without a search)."""
    if evaluation.search is None:
        return None
    config = evaluation.search.bow
    if not config.enabled:
        return None
    return fit_bag_of_words(train, embedder, config, run.seed, run.run_dir / "bag_of_words.safetensors",
                            evaluation.search.mixed_precision)  # fmt: skip


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
        cosine = "n/a" if m["cosine"] is None else f"{m['cosine']:.3f}"
        fluency = f"  ppl {m['perplexity']:.0f}" if m.get("perplexity") is not None else ""
        print(f"  {method:<{width + 1}} F1 {m['token_f1']:.3f}  cos {cosine}  "
              f"BLEU {m['bleu']:.1f}  exact {m['exact']:.3f}{fluency}  "
              f"({m['seconds_per_100']:.1f} s/100)")
    if (targets := next(iter(metrics.values())).get("target_perplexity")) is not None:
        print(f"  (reference-LM perplexity of the targets themselves: {targets:.0f})")
    comparisons = [(Method.GUIDED_DECODING, Method.NEAREST_NEIGHBOUR),
                   (Method.INVERTER_SEARCH, Method.NEAREST_NEIGHBOUR),
                   (Method.GUIDED_SEARCH, Method.NEAREST_NEIGHBOUR),
                   (Method.SENTENCE_REWRITE, Method.NEAREST_NEIGHBOUR),
                   (Method.INVERTER_SEARCH, Method.BAG_OF_WORDS_SEARCH)]  # the last: the inverter's share
    for method, other in comparisons:
        if method in metrics and other in metrics:
            a, b = metrics[method], metrics[other]
            cosine = ("n/a" if a["cosine"] is None or b["cosine"] is None
                      else f"{a['cosine'] - b['cosine']:+.3f}")  # fmt: skip
            print(f"  {method.replace('_', ' ')} vs {other.replace('_', ' ')}: "
                  f"F1 {a['token_f1'] - b['token_f1']:+.3f}, cosine {cosine}")
