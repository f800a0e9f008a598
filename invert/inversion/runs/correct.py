"""The correction experiment (vec2text, arXiv 2310.06816): trained inverter → corrector → steps.

Loads a trained inverter, generates (and caches) its hypotheses for the training split, trains a
prefix-LM corrector on them with the shared Trainer (optionally a second round on its own
outputs), then scores held-out pairs after 0, 1, 5, 20 correction steps and with a sequence
beam, beside the nearest-neighbour and bag-of-words (arXiv 2004.00053) baselines.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from invert.configs import BagOfWordsConfig, CorrectionConfig, EvalConfig, from_mapping
from invert.embedders import build_embedder
from invert.embedders.base import Embedder
from invert.errors import DimensionMismatchError
from invert.inversion.correction import correct
from invert.inversion.correction_data import (
    CorrectionDataset,
    correction_collator,
    corrector_round,
    inverter_hypotheses,
)
from invert.inversion.metrics import reconstruction_metrics
from invert.inversion.runs.preamble import (
    data_for,
    embedded_splits,
    fit_bag_of_words,
    nearest_neighbour,
)
from invert.models.loading import build_corrector, load_inverter
from invert.reporting.run_context import open_run
from invert.training import Trainer, TrainerConfig

logger = logging.getLogger(__name__)


def run_correction_experiment(cfg: dict[str, Any]) -> dict[str, Any]:
    """Trains a corrector for ``cfg["inverter_path"]`` and evaluates correction steps.

    Args:
        cfg: Resolved config (see ``conf/correct.yaml``): ``inverter_path``, ``embedder``,
            ``data``, ``split``, ``corrector`` (``build_corrector`` arguments), ``train``,
            ``correct``, ``bow``, ``eval``, ``paths``, ``seed``.

    Returns:
        ``{"metrics": {method: {...}}, "mean_cosine_by_step": [...], "train": {...},
        "corrector_path": str}``; also written to ``results.json`` and printed as JSON.
    """
    run = open_run(cfg)
    run_dir = run.run_dir
    inverter = load_inverter(cfg["inverter_path"])
    embedder: Embedder = build_embedder(cfg["embedder"])
    if embedder.dim != inverter.config.embedder_dim:
        raise DimensionMismatchError(
            f"embedder {embedder.name} gives dim {embedder.dim}, the inverter was trained on "
            f"{inverter.config.embedder_name} (dim {inverter.config.embedder_dim}); set embedder=..."
        )
    data = data_for(inverter, cfg["inverter_path"], cfg.get("data"))
    pairs = embedded_splits(data, embedder, inverter.tokenizer, dict.fromkeys(("train", cfg["split"])))
    train, held = pairs["train"], pairs[cfg["split"]]
    opts = from_mapping(CorrectionConfig, cfg["correct"], "correct")
    evaluation = from_mapping(EvalConfig, cfg["eval"], "eval")
    n_train = opts.train_examples or len(train)
    examples = inverter_hypotheses(
        inverter,
        embedder,
        train.texts[:n_train],
        train.embeddings[:n_train],
        num_beams=opts.hypothesis_beams,
        batch_size=evaluation.batch_size,
    )
    corrector = build_corrector(inverter, **cfg["corrector"])
    collate = correction_collator(corrector.tokenizer, corrector.config.max_text_tokens)
    train_cfg = TrainerConfig(**{**cfg["train"], "output_dir": str(run_dir / "train")})
    result = Trainer(corrector, CorrectionDataset(examples), collate, train_cfg).train()
    train_summary = {
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "pairs": len(examples),
    }
    if opts.second_round_steps:
        examples = examples + corrector_round(
            examples, corrector, embedder, evaluation.batch_size
        )
        second = TrainerConfig(
            **{
                **cfg["train"],
                "output_dir": str(run_dir / "train_round2"),
                "max_steps": opts.second_round_steps,
                "seed": train_cfg.seed + 1,
            }
        )
        Trainer(corrector, CorrectionDataset(examples), collate, second).train()
        train_summary["second_round_pairs"] = len(examples)
    corrector_path = run_dir / "corrector"
    corrector.save_pretrained(corrector_path)
    corrector.eval()

    n = evaluation.num_examples
    texts, targets = held.texts[:n], held.embeddings[:n]
    predictions: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - start
        return out

    nn = nearest_neighbour(train, embedder)
    predictions["nearest_neighbour"] = timed("nearest_neighbour", lambda: nn.invert(targets))
    bow_cfg = from_mapping(BagOfWordsConfig, cfg["bow"], "bow")
    bow = fit_bag_of_words(train, embedder, bow_cfg, run.seed)
    predictions["bag_of_words"] = bow.generate_texts(targets, bow_cfg.threshold, bow_cfg.top_k)
    steps = sorted(set(opts.steps))
    common = dict(early_stop_cosine=opts.early_stop_cosine, batch_size=evaluation.batch_size)
    greedy = timed(
        "corrector",
        lambda: correct(
            targets,
            inverter,
            corrector,
            embedder,
            num_steps=max(steps),
            show_progress=True,
            **common,
        ),
    )
    for s in steps:
        predictions[f"corrector_{s}_steps"] = greedy.texts_by_step[s]
    width = opts.sequence_beam_width
    beam = timed(
        "corrector_beam",
        lambda: correct(
            targets,
            inverter,
            corrector,
            embedder,
            num_steps=max(steps),
            sequence_beam_width=width,
            num_candidates=opts.num_candidates,
            show_progress=True,
            **common,
        ),
    )
    predictions[f"corrector_beam{width}_{max(steps)}_steps"] = beam.texts
    metrics = {}
    for method, preds in predictions.items():
        metrics[method], _ = reconstruction_metrics(
            preds, texts, target_embeddings=targets, embedder=embedder
        )
    for method, key in (
        ("nearest_neighbour", "nearest_neighbour"),
        (f"corrector_{max(steps)}_steps", "corrector"),
        (f"corrector_beam{width}_{max(steps)}_steps", "corrector_beam"),
    ):
        metrics[method]["seconds_per_100"] = 100 * seconds[key] / len(texts)
    summary = {
        "metrics": metrics,
        "mean_cosine_by_step": greedy.mean_cosine_by_step,
        "beam_mean_cosine_by_step": beam.mean_cosine_by_step,
        "corrector_inputs": {"greedy": greedy.corrector_inputs, "beam": beam.corrector_inputs},
        "train": train_summary,
        "corrector_path": str(corrector_path),
    }
    return run.finish(summary, print_json=True)
