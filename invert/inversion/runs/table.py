"""The results table (the small version of vec2text's Tables 1-2): every method, every corpus.

Rows: bag-of-words and nearest-neighbour baselines, zero-shot guided search, each saved
inverter (one per PEFT regime) at 0 steps, the embedder-guided edit search seeded by the first
inverter, retrieval and the bag-of-words guess, that inverter proposing edits too (after several
round counts), a corrector after 1 / 5 / 20 steps and
with a sequence beam. Columns: corpus BLEU, mean sentence BLEU, token F1, exact %, cosine and
seconds per 100 inversions, on held-out texts of the training corpus (in-domain) and of other
corpora (out-of-domain). Baselines are fitted on the in-domain training split, the attacker's
data. Also reports how close the embedder-in-the-loop methods run to the encoder-bound rate.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from invert.data.pairs import EmbeddedSplit, embed_split
from invert.data.splits import prepare_corpus
from invert.embedders.base import Embedder
from invert.env import default_device
from invert.errors import DimensionMismatchError, EmptyInputError
from invert.inversion.correction import correct
from invert.inversion.metrics import reconstruction_metrics
from invert.inversion.search.edit_search import guided_search
from invert.inversion.search.zero_shot import zero_shot_invert
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.loading import load_corrector, load_inverter
from invert.models.nearest_neighbour import NearestNeighbourInverter
from invert.models.pretrained_lm import load_causal_lm, load_tokenizer
from invert.reporting.plots import save_figure
from invert.reporting.tracking import build_tracker, save_json

logger = logging.getLogger(__name__)

COLUMNS = ("corpus", "domain", "method", "bleu", "sentence_bleu", "token_f1", "exact_pct",
           "cosine", "seconds_per_100", "encoder_bound_fraction", "n")  # fmt: skip


def encoder_rate(embedder: Embedder, texts: list[str], repeats: int = 2) -> float:
    """Texts per second the embedder alone sustains on ``texts`` (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        embedder.encode(texts, show_progress=False)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def run_inversion_table(cfg: dict[str, Any]) -> dict[str, Any]:
    """Builds the table for ``cfg`` (see ``conf/inversion_table.yaml``) in the run folder.

    Returns:
        ``{"rows": [...], "files": {...}, "encoder_texts_per_second": float}``; also writes
        ``table.md``, ``table.csv``, ``steps.png`` and ``results.json``.
    """
    run_dir = Path(cfg["paths"]["output_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    embedder: Embedder = instantiate(cfg["embedder"], _convert_="all")
    inverters = {name: load_inverter(path) for name, path in cfg["inverters"].items()}
    if not inverters:
        raise EmptyInputError("inverters is empty; give at least one {regime: path}")
    main = next(iter(inverters.values()))
    for name, inv in inverters.items():
        if inv.config.embedder_dim != embedder.dim:
            raise DimensionMismatchError(
                f"inverter {name!r} inverts {inv.config.embedder_name} (dim "
                f"{inv.config.embedder_dim}), the embedder {embedder.name} gives dim {embedder.dim}"
            )
    corrector = load_corrector(cfg["corrector_path"]) if cfg.get("corrector_path") else None
    max_tokens = main.config.max_text_tokens
    data = cfg["data"]
    corpora = [(data["in_domain"], "in")] + [(c, "out") for c in data.get("out_of_domain") or []]
    splits = {
        name: prepare_corpus(name, max_tokens=max_tokens, tokenizer=main.tokenizer, seed=data["seed"],
                             val_fraction=data["val_fraction"], test_fraction=data["test_fraction"],
                             max_examples=data.get("max_examples"))
        for name, _ in corpora
    }  # fmt: skip
    train = embed_split(splits[data["in_domain"]]["train"], embedder, data["in_domain"], "train", max_tokens)
    methods = _methods(cfg, embedder, inverters, corrector, train)
    rate = encoder_rate(embedder, train.texts[: int(cfg["encoder_rate_texts"])])
    rows, samples = [], []
    for corpus, domain in corpora:
        held = embed_split(splits[corpus]["test"], embedder, corpus, "test", max_tokens)
        held = EmbeddedSplit(held.texts[: cfg["n"]], held.embeddings[: cfg["n"]])
        logger.info("%s (%s-domain): %d held-out texts", corpus, domain, len(held.texts))
        for run in methods.values():
            start = time.perf_counter()
            outputs = run(held.embeddings)
            seconds = time.perf_counter() - start
            for name, (texts, embedded, timed) in outputs.items():
                metrics, per_example = reconstruction_metrics(texts, held.texts, held.embeddings, embedder)
                took = seconds if timed else None
                rows.append(_row(corpus, domain, name, metrics, took, len(held.texts), embedded, rate))
                if domain == "in" and cfg.get("log_samples"):
                    samples += [[corpus, name, r["target"], r["prediction"], r["cosine"]] for r in per_example[:5]]
    files = _write(rows, run_dir)
    summary = {"rows": rows, "files": {k: str(v) for k, v in files.items()},
               "encoder_texts_per_second": rate}  # fmt: skip
    save_json(run_dir / "results.json", summary)
    _log(cfg, run_dir, rows, files, samples)
    print(files["markdown"].read_text())
    return summary


# target embeddings -> {row name: (texts, texts embedded or None, timed)}; "timed" is False for
# rows read off a longer run (5 steps out of a 20-step run), which get no time of their own.
Outputs = dict[str, tuple[list[str], int | None, bool]]
Method = Callable[[torch.Tensor], Outputs]


def _methods(cfg: dict[str, Any], embedder: Embedder, inverters: dict[str, Any],
             corrector: Any, train: EmbeddedSplit) -> dict[str, Method]:  # fmt: skip
    """The table's methods, by name (see ``Outputs``)."""
    methods: dict[str, Method] = {}
    bow_cfg, bow = cfg["bow"], None
    if bow_cfg.get("enabled", True):
        bow = BagOfWordsInverter.build(train.texts, embedder.dim, bow_cfg["hidden_dim"],
                                       bow_cfg["max_vocabulary"], embedder.name, cfg["seed"])  # fmt: skip
        bow.fit(train.texts, train.embeddings, epochs=bow_cfg["epochs"], lr=bow_cfg["lr"], seed=cfg["seed"])
        methods["bag_of_words"] = lambda e: {"bag_of_words": (bow.generate_texts(e), None, True)}
    nn = NearestNeighbourInverter(train.texts, train.embeddings, embedder.name)
    methods["nearest_neighbour"] = lambda e: {"nearest_neighbour": (nn.invert(e), None, True)}
    zs = cfg["zero_shot"]
    if zs.get("enabled"):
        lm, tok = load_causal_lm(zs["lm"]).to(default_device()), load_tokenizer(zs["lm"])
        zs_args = {k: zs[k] for k in ("beam_width", "top_k", "block_size", "max_tokens")}

        def zero_shot(e: torch.Tensor) -> Outputs:
            res = zero_shot_invert(e, embedder, lm, tok, show_progress=True, **zs_args)
            return {"zero_shot_search": (res.texts, res.embedded_texts, True)}

        methods["zero_shot"] = zero_shot
    batch = int(cfg["batch_size"])
    for regime, inverter in inverters.items():
        methods[f"inverter_{regime}"] = lambda e, inv=inverter, r=regime: {
            f"inverter_{r}_0_steps": (inv.generate_texts(e, batch_size=batch, show_progress=True), None, True)
        }
    search = cfg.get("search") or {}
    if search.get("enabled"):
        rounds = sorted(set(int(r) for r in search["rounds"]))
        first = next(iter(inverters.values()))

        def guided(e: torch.Tensor) -> Outputs:
            hyps = first.generate_texts(e, batch_size=batch, show_progress=True)
            res = guided_search(e, embedder, hyps, nn, bow, {**search, "num_rounds": max(rounds)},
                                show_progress=True, inverter=first)  # fmt: skip
            # One R-round run holds every shorter run's result (the best never falls back).
            out = {f"guided_search_{r}_rounds": (res.texts_by_round[r], None, False)
                   for r in rounds if r < max(rounds)}  # fmt: skip
            return out | {f"guided_search_{max(rounds)}_rounds": (res.texts, res.embedded_texts, True)}

        methods["guided_search"] = guided
    if corrector is not None:
        main = next(iter(inverters.values()))
        corr = cfg["correct"]
        steps = sorted(set(corr["steps"]))

        def corrected(e: torch.Tensor) -> Outputs:
            res = correct(e, main, corrector, embedder, num_steps=max(steps),
                          early_stop_cosine=corr["early_stop_cosine"], batch_size=batch,
                          show_progress=True)  # fmt: skip
            # One N-step run holds every shorter run's result (stopping only looks back).
            out = {f"corrector_{s}_steps": (res.texts_by_step[s], None, False) for s in steps if s > 0}
            return out | {f"corrector_{max(steps)}_steps": (res.texts, res.embedded_texts, True)}

        def beam(e: torch.Tensor) -> Outputs:
            width = corr["sequence_beam_width"]
            res = correct(e, main, corrector, embedder, num_steps=max(steps),
                          sequence_beam_width=width, num_candidates=corr["num_candidates"],
                          early_stop_cosine=corr["early_stop_cosine"], batch_size=batch,
                          show_progress=True)  # fmt: skip
            return {f"corrector_beam{width}_{max(steps)}_steps": (res.texts, res.embedded_texts, True)}

        methods["corrector"] = corrected
        methods["corrector_beam"] = beam
    return methods


def _row(corpus: str, domain: str, method: str, metrics: dict[str, float], seconds: float | None,
         n: int, embedded: int | None, rate: float) -> dict[str, Any]:  # fmt: skip
    # Embedder-bound rate: the time the encoder alone needs for every text this method
    # embedded, over the time the method took. Rows without the embedder in the loop: None.
    fraction = (embedded / rate) / seconds if embedded and seconds else None
    return {
        "corpus": corpus, "domain": domain, "method": method, "bleu": metrics["bleu"],
        "sentence_bleu": metrics["sentence_bleu"], "token_f1": metrics["token_f1"],
        "exact_pct": 100 * metrics["exact"], "cosine": metrics.get("cosine"),
        "seconds_per_100": 100 * seconds / n if seconds is not None else None,
        "encoder_bound_fraction": fraction, "n": n,
    }  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _write(rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Path]:
    files = {"markdown": run_dir / "table.md", "csv": run_dir / "table.csv"}
    with files["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    files["markdown"].write_text("\n".join(lines) + "\n")
    if any(r["method"].startswith("corrector_") for r in rows):
        files["plot"] = plot_metrics_by_step(rows, run_dir / "steps.png")
    return files


def plot_metrics_by_step(rows: list[dict[str, Any]], path: Path) -> Path:
    """BLEU, token F1 and cosine against correction steps (0 = the inverter), one line a corpus."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        mine = {r["method"]: r for r in rows if r["corpus"] == corpus}
        points = sorted(
            (int(m.split("_")[1]), r) for m, r in mine.items()
            if m.startswith("corrector_") and m.split("_")[1].isdigit()
        )  # fmt: skip
        zero = next((r for m, r in mine.items() if m.endswith("_0_steps")), None)
        points = ([(0, zero)] if zero else []) + points
        for ax, key in zip(axes, ("bleu", "token_f1", "cosine"), strict=True):
            ax.plot([s for s, _ in points], [r[key] or 0 for _, r in points], marker="o", label=corpus)
            nn = mine.get("nearest_neighbour")
            if nn is not None and nn[key] is not None:
                ax.axhline(nn[key], ls=":", lw=1, color=ax.lines[-1].get_color())
    for ax, key in zip(axes, ("corpus BLEU", "token F1", "cosine"), strict=True):
        ax.set_xlabel("correction steps")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Correction steps (dotted: nearest neighbour)")
    return save_figure(fig, path)


def _log(cfg: dict[str, Any], run_dir: Path, rows: list[dict], files: dict[str, Path],
         samples: list[list]) -> None:  # fmt: skip
    options = {k: v for k, v in cfg["logger"].items() if k != "kind"}
    tracker = build_tracker(cfg["logger"]["kind"], run_dir, config=cfg, **options)
    tracker.log_table("results", list(COLUMNS), [[r[c] for c in COLUMNS] for r in rows])
    if "plot" in files:
        tracker.log_image("metrics_by_step", files["plot"])
    if samples:
        tracker.log_table("samples", ["corpus", "method", "target", "reconstruction", "cosine"], samples)
    tracker.summary({f"{r['corpus']}/{r['method']}/{k}": r[k] for r in rows
                     for k in ("bleu", "token_f1", "cosine") if r[k] is not None})  # fmt: skip
    tracker.finish()
    logger.info("table: %s", json.dumps({k: str(v) for k, v in files.items()}))
