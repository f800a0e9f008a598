"""The correction experiment (vec2text, arXiv 2310.06816): trained inverter → corrector → steps.

Loads a trained inverter, generates (and caches) its hypotheses for the training split, trains a
prefix-LM corrector on them with the shared Trainer (optionally a second round on its own
outputs), then scores held-out pairs after 0, 1, 5, 20 correction steps and with a sequence
beam, beside the nearest-neighbour and bag-of-words (arXiv 2004.00053) baselines.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate

from invert.data.pairs import embed_split
from invert.data.splits import prepare_corpus
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
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.loading import build_corrector, load_inverter
from invert.models.nearest_neighbour import NearestNeighbourInverter
from invert.reporting.tracking import build_tracker, save_json
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
    run_dir = Path(cfg["paths"]["output_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    inverter = load_inverter(cfg["inverter_path"])
    embedder: Embedder = instantiate(cfg["embedder"], _convert_="all")
    if embedder.dim != inverter.config.embedder_dim:
        raise DimensionMismatchError(
            f"embedder {embedder.name} gives dim {embedder.dim}, the inverter was trained on "
            f"{inverter.config.embedder_name} (dim {inverter.config.embedder_dim}); set embedder=..."
        )
    data = {**cfg["data"], "max_tokens": inverter.config.max_text_tokens}
    splits = prepare_corpus(tokenizer=inverter.tokenizer, **data)
    train = embed_split(splits["train"], embedder, data["name"], "train", data["max_tokens"])
    held = embed_split(
        splits[cfg["split"]], embedder, data["name"], cfg["split"], data["max_tokens"]
    )
    opts, evaluation = cfg["correct"], cfg["eval"]
    n_train = opts.get("train_examples") or len(train)
    examples = inverter_hypotheses(
        inverter,
        embedder,
        train.texts[:n_train],
        train.embeddings[:n_train],
        num_beams=opts["hypothesis_beams"],
        batch_size=evaluation["batch_size"],
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
    if opts.get("second_round_steps"):
        examples = examples + corrector_round(
            examples, corrector, embedder, evaluation["batch_size"]
        )
        second = TrainerConfig(
            **{
                **cfg["train"],
                "output_dir": str(run_dir / "train_round2"),
                "max_steps": opts["second_round_steps"],
                "seed": train_cfg.seed + 1,
            }
        )
        Trainer(corrector, CorrectionDataset(examples), collate, second).train()
        train_summary["second_round_pairs"] = len(examples)
    corrector_path = run_dir / "corrector"
    corrector.save_pretrained(corrector_path)
    corrector.eval()

    n = evaluation["num_examples"]
    texts, targets = held.texts[:n], held.embeddings[:n]
    predictions: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - start
        return out

    nn = NearestNeighbourInverter(train.texts, train.embeddings, embedder.name)
    predictions["nearest_neighbour"] = timed("nearest_neighbour", lambda: nn.invert(targets))
    bow_cfg = cfg["bow"]
    bow = BagOfWordsInverter.build(
        train.texts,
        embedder.dim,
        bow_cfg["hidden_dim"],
        bow_cfg["max_vocabulary"],
        embedder.name,
        cfg["seed"],
    )
    bow.fit(
        train.texts, train.embeddings, epochs=bow_cfg["epochs"], lr=bow_cfg["lr"], seed=cfg["seed"]
    )
    predictions["bag_of_words"] = bow.generate_texts(targets, top_k=bow_cfg.get("top_k"))
    steps = sorted(set(opts["eval_steps"]))
    common = dict(early_stop_cosine=opts["early_stop_cosine"], batch_size=evaluation["batch_size"])
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
    width = opts["sequence_beam_width"]
    beam = timed(
        "corrector_beam",
        lambda: correct(
            targets,
            inverter,
            corrector,
            embedder,
            num_steps=max(steps),
            sequence_beam_width=width,
            num_candidates=opts["num_candidates"],
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
    options = {k: v for k, v in cfg["logger"].items() if k != "kind"}
    tracker = build_tracker(cfg["logger"]["kind"], run_dir, config=cfg, **options)
    tracker.summary({f"{m}/{k}": v for m, values in metrics.items() for k, v in values.items()})
    tracker.finish()
    save_json(run_dir / "results.json", summary)
    print(json.dumps(summary, indent=1, default=str))
    return summary
