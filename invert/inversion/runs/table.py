"""The results table (the small version of vec2text's Tables 1-2): every method, every corpus.

Rows: bag-of-words and nearest-neighbour baselines, zero-shot guided search, each saved
inverter (one per PEFT regime) at 0 steps, the first inverter's beam search with the embedder
choosing the beams (``guided_decoding``, when ``search.rows`` names it), the embedder-guided edit
search seeded by that row's sentences (else the first inverter's greedy text), retrieval and the
bag-of-words guess, that inverter proposing edits too (after several round counts), a corrector
after 1 / 5 / 20 steps and
with a sequence beam. Columns: corpus BLEU, mean sentence BLEU, token F1, exact %, cosine and
seconds per 100 inversions, on held-out texts of the training corpus (in-domain) and of other
corpora (out-of-domain). Baselines are fitted on the in-domain training split, the attacker's
data. Also reports how close the embedder-in-the-loop methods run to the encoder-bound rate.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from invert.configs import (
    BagOfWordsConfig,
    CorrectionConfig,
    SearchConfig,
    ZeroShotConfig,
    from_mapping,
)
from invert.data.pairs import EmbeddedSplit
from invert.embedders import build_embedder
from invert.embedders.base import Embedder
from invert.env import default_device
from invert.errors import DimensionMismatchError, EmptyInputError, InvertError
from invert.inversion.correction import correct
from invert.inversion.fluency import ReferenceLM
from invert.inversion.methods import Method
from invert.inversion.metrics import reconstruction_metrics
from invert.inversion.runs.preamble import (
    SPLIT_KEYS,
    data_for,
    embedded_splits,
    fit_bag_of_words,
    head,
    nearest_neighbour,
)
from invert.inversion.search.edit_search import guided_search
from invert.inversion.search.guided_decoding import embedder_guided_decode, supports_guided_decoding
from invert.inversion.search.sentence_rewrites import SentenceRewriter, closest_rewrites
from invert.inversion.search.zero_shot import zero_shot_invert
from invert.models.loading import load_corrector, load_inverter
from invert.models.pretrained_lm import load_causal_lm, load_tokenizer
from invert.reporting.plots import save_figure
from invert.reporting.run_context import open_run
from invert.reporting.tables import write_table
from invert.reporting.tracking import Tracker, save_json

logger = logging.getLogger(__name__)

COLUMNS = ("corpus", "domain", "method", "bleu", "sentence_bleu", "token_f1", "exact_pct",
           "cosine", "perplexity", "target_perplexity", "seconds_per_100", "encoder_bound_fraction",
           "n", "correction_steps")  # fmt: skip


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

    The in-domain corpus, its seed and split fractions come from the first inverter's folder
    (``data.in_domain`` names another corpus); out-of-domain corpora are split the same way.

    Returns:
        ``{"rows": [...], "files": {...}, "encoder_texts_per_second": float}``; also writes
        ``table.md``, ``table.csv``, ``steps.png`` and ``results.json``.
    """
    run = open_run(cfg)
    embedder: Embedder = build_embedder(cfg["embedder"])
    inverters = {name: load_inverter(path) for name, path in cfg["inverters"].items()}
    if not inverters:
        raise EmptyInputError("inverters is empty; give at least one {regime: path}")
    first_name, main = next(iter(inverters.items()))
    for name, inv in inverters.items():
        if inv.config.embedder_dim != embedder.dim:
            raise DimensionMismatchError(
                f"inverter {name!r} inverts {inv.config.embedder_name} (dim "
                f"{inv.config.embedder_dim}), the embedder {embedder.name} gives dim {embedder.dim}"
            )
    corrector = load_corrector(cfg["corrector_path"]) if cfg.get("corrector_path") else None
    trained_on = data_for(main, cfg["inverters"][first_name], None)
    in_domain = cfg["data"]["in_domain"] or trained_on["name"]
    # The training corpus is in-domain only, even when the out-of-domain list names it.
    corpora = [(in_domain, "in")] + [(c, "out") for c in cfg["data"]["out_of_domain"] or []
                                     if c != in_domain]  # fmt: skip

    def data_of(corpus: str) -> dict[str, Any]:
        # Every corpus is split as the inverter's own was; only its training corpus keeps
        # its corpus-specific arguments (a file path, a record count).
        if corpus == trained_on["name"]:
            return trained_on
        return {k: trained_on[k] for k in SPLIT_KEYS if k in trained_on} | {"name": corpus}

    train = embedded_splits(data_of(in_domain), embedder, main.tokenizer, ("train",))["train"]
    methods = _methods(cfg, embedder, inverters, corrector, train)
    rate = encoder_rate(embedder, train.texts[: int(cfg["encoder_rate_texts"])])
    fluency = ReferenceLM(cfg["fluency_lm"]) if cfg.get("fluency_lm") else None
    rows, samples = [], []
    for corpus, domain in corpora:
        held = head(embedded_splits(data_of(corpus), embedder, main.tokenizer, ("test",))["test"],
                    cfg["n"])  # fmt: skip
        logger.info("%s (%s-domain): %d held-out texts", corpus, domain, len(held.texts))
        target_ppl = fluency.perplexity(held.texts) if fluency is not None else None
        for method in methods.values():
            start = time.perf_counter()
            outputs = method(held.embeddings)
            seconds = time.perf_counter() - start
            for name, out in outputs.items():
                metrics, per_example = reconstruction_metrics(out.texts, held.texts, held.embeddings, embedder)
                took = seconds + out.seconds_before if out.timed else None
                if fluency is not None:
                    fluent = [x for x in out.texts if x.strip()]
                    metrics["perplexity"] = fluency.perplexity(fluent) if fluent else None
                    metrics["target_perplexity"] = target_ppl
                rows.append(_row(corpus, domain, name, metrics, took, len(held.texts), out, rate))
                if domain == "in" and cfg.get("log_samples"):
                    samples += [[corpus, name, r["target"], r["prediction"], r["cosine"]] for r in per_example[:5]]
    files = _write(rows, run.run_dir)
    summary = {"rows": rows, "files": {k: str(v) for k, v in files.items()},
               "encoder_texts_per_second": rate, "data": trained_on}  # fmt: skip
    save_json(run.run_dir / "results.json", summary)
    _log(run.tracker, rows, files, samples)
    print(files["markdown"].read_text())
    return summary


class Output(NamedTuple):
    """One row's reconstructions.

    Attributes:
        texts: One per held-out text.
        embedded: Texts the method embedded (None: no embedder in the loop).
        timed: False for rows read off a longer run (5 steps out of a 20-step run), which get
            no time of their own.
        steps: Correction steps behind the row (0: the inverter alone; None: no correction).
        seconds_before: Time of another row's run this one started from, charged to it too.
    """

    texts: list[str]
    embedded: int | None
    timed: bool
    steps: int | None = None
    seconds_before: float = 0.0


# target embeddings -> {row name: its reconstructions}
Outputs = dict[str, Output]
RowMaker = Callable[[torch.Tensor], Outputs]


def _methods(cfg: dict[str, Any], embedder: Embedder, inverters: dict[str, Any],
             corrector: Any, train: EmbeddedSplit) -> dict[str, RowMaker]:  # fmt: skip
    """The table's methods, by name (see ``Outputs``)."""
    methods: dict[str, RowMaker] = {}
    bow_cfg, bow = from_mapping(BagOfWordsConfig, cfg["bow"], "bow"), None
    if bow_cfg.enabled:
        bow = fit_bag_of_words(train, embedder, bow_cfg, cfg["seed"])
        methods["bag_of_words"] = lambda e: {
            "bag_of_words": Output(bow.generate_texts(e, bow_cfg.threshold, bow_cfg.top_k), None, True)
        }
    nn = nearest_neighbour(train, embedder)
    methods["nearest_neighbour"] = lambda e: {Method.NEAREST_NEIGHBOUR: Output(nn.invert(e), None, True)}
    zs = from_mapping(ZeroShotConfig, cfg["zero_shot"], "zero_shot")
    if zs.enabled:
        lm, tok = load_causal_lm(zs.lm).to(default_device()), load_tokenizer(zs.lm)
        zs_args = {k: getattr(zs, k) for k in ("beam_width", "top_k", "block_size", "max_tokens")}

        def zero_shot(e: torch.Tensor) -> Outputs:
            res = zero_shot_invert(e, embedder, lm, tok, show_progress=True, **zs_args)
            return {"zero_shot_search": Output(res.texts, res.embedded_texts, True)}

        methods["zero_shot"] = zero_shot
    batch = int(cfg["batch_size"])
    for regime, inverter in inverters.items():
        methods[f"inverter_{regime}"] = lambda e, inv=inverter, r=regime: {
            f"inverter_{r}_0_steps": Output(inv.generate_texts(e, batch_size=batch, show_progress=True), None, True, 0)
        }
    # conf/inversion_table.yaml composes the search group; `search=null` leaves the row out.
    if cfg.get("search") is not None:
        search = from_mapping(SearchConfig, cfg["search"], "search")
        rounds = sorted(set(search.report_rounds or [search.num_rounds]))
        first = next(iter(inverters.values()))
        searched: dict[str, Any] = {}  # the last search's targets and texts (sentence_rewrite reads them)
        decoded: dict[str, Any] = {}  # guided_decoding's targets, texts and seconds

        if "guided_decoding" in search.rows and supports_guided_decoding(first):
            # The first inverter's beams, the embedder choosing them at every token.
            def guided_decoding(e: torch.Tensor) -> Outputs:
                start = time.perf_counter()
                res = embedder_guided_decode(first, embedder, e, **dataclasses.asdict(search.guided),
                                             mixed_precision=first.decoding_precision, show_progress=True)  # fmt: skip
                decoded.update(embeddings=e, texts=res.texts, seconds=time.perf_counter() - start)
                return {"guided_decoding": Output(res.texts, res.embedded_texts, True)}

            methods["guided_decoding"] = guided_decoding

        def guided(e: torch.Tensor) -> Outputs:
            # Seeded as the evaluation seeds it: by guided_decoding's sentences when that row ran
            # on these targets (and charged for its time), else by the first inverter's greedy text.
            if decoded.get("embeddings") is e:
                hyps, before = decoded["texts"], decoded["seconds"]
            else:
                hyps, before = first.generate_texts(e, batch_size=batch, show_progress=True), 0.0
            res = guided_search(e, embedder, hyps, nn, bow,
                                dataclasses.replace(search, num_rounds=max(rounds)),
                                show_progress=True, inverter=first)  # fmt: skip
            # One R-round run holds every shorter run's result (the best never falls back).
            out = {f"guided_search_{r}_rounds": Output(res.texts_by_round[r], None, False)
                   for r in rounds if r < max(rounds)}  # fmt: skip
            searched["embeddings"], searched["texts"] = e, res.texts
            return out | {f"guided_search_{max(rounds)}_rounds": Output(res.texts, res.embedded_texts, True,
                                                                       seconds_before=before)}

        methods["guided_search"] = guided
        if "sentence_rewrite" in search.rows and getattr(first, "hint_head", None) is not None:
            # The guided search's texts, written back as the hinted inverter's sentences
            # (closest kept); timed apart from the search it reads.
            def rewritten(e: torch.Tensor) -> Outputs:
                if searched.get("embeddings") is not e:
                    raise InvertError("sentence_rewrite reads the guided search of the same targets; run it first")
                rewriter = SentenceRewriter(first, e, word_probability=search.rewrite_word_probability)
                texts = closest_rewrites(rewriter, embedder, searched["texts"], search.sentence_samples, search.seed)
                return {"sentence_rewrite": Output(texts, None, True)}

            methods["sentence_rewrite"] = rewritten
    if corrector is not None:
        main = next(iter(inverters.values()))
        corr = from_mapping(CorrectionConfig, cfg["correct"], "correct")
        steps = sorted(set(corr.steps))

        def corrected(e: torch.Tensor) -> Outputs:
            res = correct(e, main, corrector, embedder, num_steps=max(steps),
                          early_stop_cosine=corr.early_stop_cosine, batch_size=batch,
                          show_progress=True)  # fmt: skip
            # One N-step run holds every shorter run's result (stopping only looks back).
            out = {f"corrector_{s}_steps": Output(res.texts_by_step[s], None, False, s) for s in steps if s > 0}
            return out | {f"corrector_{max(steps)}_steps": Output(res.texts, res.embedded_texts, True, max(steps))}

        def beam(e: torch.Tensor) -> Outputs:
            width = corr.sequence_beam_width
            res = correct(e, main, corrector, embedder, num_steps=max(steps),
                          sequence_beam_width=width, num_candidates=corr.num_candidates,
                          early_stop_cosine=corr.early_stop_cosine, batch_size=batch,
                          show_progress=True)  # fmt: skip
            return {f"corrector_beam{width}_{max(steps)}_steps": Output(res.texts, res.embedded_texts, True, max(steps))}

        methods["corrector"] = corrected
        methods["corrector_beam"] = beam
    return methods


def _row(corpus: str, domain: str, method: str, metrics: dict[str, float], seconds: float | None,
         n: int, out: Output, rate: float) -> dict[str, Any]:  # fmt: skip
    # Embedder-bound rate: the time the encoder alone needs for every text this method
    # embedded, over the time the method took. Rows without the embedder in the loop: None.
    fraction = (out.embedded / rate) / seconds if out.embedded and seconds else None
    return {
        "corpus": corpus, "domain": domain, "method": method, "bleu": metrics["bleu"],
        "sentence_bleu": metrics["sentence_bleu"], "token_f1": metrics["token_f1"],
        "exact_pct": 100 * metrics["exact"], "cosine": metrics.get("cosine"),
        "seconds_per_100": 100 * seconds / n if seconds is not None else None,
        "encoder_bound_fraction": fraction, "n": n, "correction_steps": out.steps,
        "perplexity": metrics.get("perplexity"), "target_perplexity": metrics.get("target_perplexity"),
    }  # fmt: skip


def _write(rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Path]:
    files = write_table(rows, run_dir, columns=COLUMNS)
    if any(r["correction_steps"] for r in rows):  # a corrector ran (0: the inverter alone)
        files["plot"] = plot_metrics_by_step(rows, run_dir / "steps.png")
    return files


def plot_metrics_by_step(rows: list[dict[str, Any]], path: Path) -> Path:
    """BLEU, token F1 and cosine against correction steps (0 = the inverter), one line a corpus."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        mine = {r["method"]: r for r in rows if r["corpus"] == corpus}
        # The first inverter's 0-step row, then the greedy corrector's rows by step.
        points = sorted((r["correction_steps"], r) for r in mine.values()
                        if r["correction_steps"] and not r["method"].startswith("corrector_beam"))
        zero = next((r for r in mine.values() if r["correction_steps"] == 0), None)
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


def _log(tracker: Tracker, rows: list[dict], files: dict[str, Path], samples: list[list]) -> None:
    tracker.log_table("results", list(COLUMNS), [[r[c] for c in COLUMNS] for r in rows])
    if "plot" in files:
        tracker.log_image("metrics_by_step", files["plot"])
    if samples:
        tracker.log_table("samples", ["corpus", "method", "target", "reconstruction", "cosine"], samples)
    tracker.summary({f"{r['corpus']}/{r['method']}/{k}": r[k] for r in rows
                     for k in ("bleu", "token_f1", "cosine") if r[k] is not None})  # fmt: skip
    tracker.finish()
    logger.info("table: %s", json.dumps({k: str(v) for k, v in files.items()}))
