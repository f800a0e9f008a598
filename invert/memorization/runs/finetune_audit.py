"""The memorization audit: exposure, extraction, membership inference and unintended bits.

One call builds (or loads) a target model, optionally fine-tunes it with the shared Trainer on a
synthetic private corpus in one or more regimes (``scratch`` for a tiny GPT from random init;
``full``, ``lora``, ``prefix`` for a pretrained LM via peft; ``none`` to audit it as is), and
runs every probe on each result:

- canary exposure (Carlini et al. 2019, arXiv:1802.08232),
- discoverable extraction (Carlini et al. 2021/2022, arXiv:2012.07805, arXiv:2202.07646),
- membership inference as in MIMIR (arXiv:2402.07841),
- unintended memorization in bits (Morris et al. 2025, arXiv:2505.24832).

Several regimes at matched steps give the fine-tuning comparison table. Aggregates, plots and
tables go to the tracker; training text goes to W&B only with ``log_examples: true``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invert.configs.probes import MemorizationProbeConfig
from invert.configs.schema import from_mapping
from invert.env import resolve_mixed_precision
from invert.errors import InvertError, unknown_name
from invert.memorization import exposure as exp_
from invert.memorization import extraction as ext
from invert.memorization import membership as mia
from invert.memorization.blind_baseline import BLIND, blind_baseline_scores
from invert.memorization.fine_tune import train_on_texts
from invert.memorization.private_corpus import (
    PrivateCorpus,
    build_private_corpus,
    load_probe_tokenizer,
    random_split,
    truncate_words,
)
from invert.memorization.reference_attacks import informia_token_bits
from invert.memorization.runs.audit_report import report_audit
from invert.memorization.runs.shadows import train_shadow_models
from invert.memorization.shadow_attacks import ShadowSignals, shadow_attack_scores
from invert.memorization.target_models import build_gpt, count_parameters, load_pretrained_target
from invert.memorization.unintended import (
    summarize_unintended,
    unintended_bits,
)
from invert.reporting.run_context import flatten_metrics, open_run
from invert.reporting.tracking import Tracker

logger = logging.getLogger(__name__)

REGIMES = ("none", "scratch", "full", "lora", "prefix")
REFERENCE_KINDS = ("none", "pretrained", "population")
LN2 = math.log(2.0)


class _OffsetTracker(Tracker):
    """Forwards to ``inner`` with keys under ``prefix/`` and steps shifted by ``offset``.

    Several trainings share one W&B run, whose steps must not decrease.
    """

    def __init__(self, inner: Tracker, prefix: str, offset: int) -> None:
        super().__init__(inner.run_dir)
        self.inner, self.prefix, self.offset = inner, prefix, offset

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        shifted = None if step is None else step + self.offset
        self.inner.log({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=shifted)


@contextlib.contextmanager
def _threads(n: int | None):
    """Sets torch's intra-op threads for the audit and restores them (None: leave as is).

    On a shared CPU, one thread can be several times faster than two spin-waiting ones.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _precision(name: str) -> contextlib.AbstractContextManager:
    # As the trainer: fp32 where bf16 would only be emulated, so scoring matches training.
    if name == "bf16" and resolve_mixed_precision(name) == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if name in ("fp32", "no", "bf16"):
        return contextlib.nullcontext()
    raise unknown_name("eval precision", name, ["fp32", "bf16"])


def _fit(
    probe: MemorizationProbeConfig,
    regime: str,
    texts: list[str],
    tokenizer: Any,
    out_dir: Path,
    tracker: Tracker,
    seed: int,
    max_steps: int | None = None,
) -> tuple[torch.nn.Module, int, dict[str, Any]]:
    """Builds the target for ``regime`` and trains it on ``texts`` with the shared Trainer.

    Returns:
        ``(model in eval mode, trainable parameters, training info)``.
    """
    target = probe.target
    if target.kind == "gpt":
        model = build_gpt(vocab_size=len(tokenizer), seed=seed, **(target.gpt or {}))
        n_trainable = count_parameters(model, trainable_only=True)
    else:
        tuning = "full" if regime == "none" else regime
        model, n_trainable = load_pretrained_target(
            target.name, tuning, **target.tuning
        )
    if regime == "none":
        return model.eval(), n_trainable, {"steps": 0, "train_seconds": 0.0}
    train = {**probe.train, **({"max_steps": max_steps} if max_steps else {})}
    model, info = train_on_texts(model, tokenizer, texts, train, regime, out_dir, tracker, seed)
    return model, n_trainable, info


def _reference(
    probe: MemorizationProbeConfig,
    corpus: PrivateCorpus,
    tokenizer: Any,
    run_dir: Path,
    tracker: Tracker,
    seed: int,
) -> tuple[torch.nn.Module | None, int]:
    """The reference model (None without one) and the training steps it took."""
    ref = probe.reference
    if ref.kind == "none":
        return None, 0
    if ref.kind == "pretrained":
        from invert.models.pretrained_lm import load_causal_lm

        return load_causal_lm(ref.name).eval(), 0
    if ref.kind == "population":
        if not corpus.population:
            raise InvertError("reference.kind=population needs data.n_population > 0")
        model, _, info = _fit(
            probe, ref.regime, corpus.population, tokenizer,
            run_dir / "reference", _OffsetTracker(tracker, "reference", 0), seed + 1,
            ref.max_steps,
        )  # fmt: skip
        return model, int(info["steps"])
    raise unknown_name("reference kind", ref.kind, REFERENCE_KINDS)


def _subset(texts: list[str], n: int | None, seed: int) -> list[str]:
    if not n or n >= len(texts):
        return list(texts)
    idx = np.random.default_rng(seed).choice(len(texts), size=n, replace=False)
    return [texts[i] for i in sorted(idx)]


def control_texts(probe: MemorizationProbeConfig, corpus: PrivateCorpus, seed: int) -> list[str]:
    """Non-members from another corpus for the negative control ([] without one).

    As many as the real non-members, cut like them, none equal to a member.
    """
    source = probe.mia.negative_control
    if not source:
        return []
    from invert.data.corpora import load_raw_corpus

    max_chars = probe.data.get("max_chars")
    members = set(corpus.members)
    pool = [truncate_words(t, max_chars) if max_chars else t for t in load_raw_corpus(source)]
    pool = [t for t in dict.fromkeys(pool) if t.strip() and t not in members]
    n = min(len(corpus.non_members), len(pool))
    return random_split(pool, [n], seed)[0]


def scored_texts(corpus: PrivateCorpus, control: list[str]) -> list[str]:
    """The texts every model is scored on, in order: members, non-members, control texts and
    the population (RMIA's ``z``)."""
    return corpus.members + corpus.non_members + control + corpus.population


def _membership(
    scores: dict[str, np.ndarray],
    texts: list[str],
    members: slice,
    non_members: slice,
    mi: Any,
    seed: int,
    groups: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The attacks' ``scores`` (over ``texts``) and the blind baseline on one member /
    non-member split of ``texts``."""
    split = {a: (s[members], s[non_members]) for a, s in scores.items()}
    m_texts, n_texts = texts[members], texts[non_members]
    by_group = None
    if groups:
        by_group = ([groups.get(t, t) for t in m_texts], [groups.get(t, t) for t in n_texts])
    split[BLIND] = blind_baseline_scores(m_texts, n_texts, mi.blind_folds, seed, groups=by_group)
    metrics = {
        a: mia.evaluate_attack(m, n, mi.fprs, mi.n_bootstrap, seed) for a, (m, n) in split.items()
    }
    return metrics, split


def evaluate_model(
    model: torch.nn.Module,
    tokenizer: Any,
    corpus: PrivateCorpus,
    probe: MemorizationProbeConfig,
    reference_stats: mia.TokenStats | None,
    n_trainable: int,
    seed: int = 0,
    control: list[str] | None = None,
    shadows: ShadowSignals | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs every probe on one model; returns ``(metrics, artifacts for plots)``.

    ``reference_stats`` score :func:`scored_texts` (``control``: the negative control's texts);
    ``shadows``, when given, add the LiRA and RMIA rows.
    """
    ev, ex, xt, mi = probe.eval, probe.exposure, probe.extraction, probe.mia
    bs = ev.batch_size
    control = control or []
    texts = scored_texts(corpus, control)
    n_m, n_mn = len(corpus.members), len(corpus.members) + len(corpus.non_members)
    with _precision(ev.precision):
        stats = mia.token_statistics(model, tokenizer, texts, bs)
        exposures = exp_.measure_exposure(
            model, tokenizer, corpus.canaries, corpus.space, ex.method, ex.n_samples,
            ex.max_enumerate, bs, seed, search_batches=ex.search_batches,
        )  # fmt: skip
        members = _subset(corpus.members, xt.max_texts, seed)
        held_out = _subset(corpus.non_members, xt.max_texts, seed)
        args = (xt.prefix_lengths, xt.suffix_length, bs)
        rates = {
            "members": ext.extraction_rates(model, tokenizer, members, *args),
            "non_members": ext.extraction_rates(model, tokenizer, held_out, *args),
        }
        canary_ext = ext.canary_extraction(model, tokenizer, corpus.canaries, bs)
    nll = stats.mean_nll()
    attacks = mia.runnable_attacks(mi.attacks, reference_stats is not None)
    scores = mia.attack_scores(attacks, stats, texts, reference_stats, mi.k)
    mia_metrics, split = _membership(
        scores, texts, slice(0, n_m), slice(n_m, n_mn), mi, seed, corpus.groups
    )
    if shadows is not None:  # LiRA / RMIA score the candidates only
        signal = -nll
        population = signal[n_mn + len(control) :] if corpus.population else None
        shadow_scores = shadow_attack_scores(
            signal[:n_mn], shadows, probe.shadows.n_models, population,
            probe.shadows.rmia_a, probe.shadows.rmia_gamma,
        )  # fmt: skip
        for name, s in shadow_scores.items():
            split[name] = (s[:n_m], s[n_m:])
            mia_metrics[name] = mia.evaluate_attack(*split[name], mi.fprs, mi.n_bootstrap, seed)
    blind = mia_metrics.pop(BLIND)
    metrics: dict[str, Any] = {
        "trainable_parameters": n_trainable,
        "member_loss": float(nll[:n_m].mean()),
        "task_loss": float(nll[n_m:n_mn].mean()),  # held-out loss on the private distribution
        "exposure": {
            "mean": float(np.mean([r["exposure"] for r in exposures])),
            "by_repetition": exp_.exposure_by_repetition(exposures),
            "max_exposure": exposures[0]["max_exposure"],
            "method": exposures[0]["method"],
            "per_canary": exposures,
        },
        "extraction": {
            **rates,
            "canaries_by_repetition": ext.extraction_by_repetition(canary_ext),
            "canary_extracted": float(np.mean([r["extracted"] for r in canary_ext])),
        },
        "mia": mia_metrics,
        "mia_best": mia.attack_summary(mia_metrics),
        "mia_blind": blind,
    }
    if control:
        control_metrics, _ = _membership(
            scores, texts, slice(0, n_m), slice(n_mn, n_mn + len(control)), mi, seed,
            corpus.groups,
        )  # fmt: skip
        metrics["mia_negative_control"] = {
            "source": mi.negative_control,
            "n_non_members": len(control),
            **{a: {k: v for k, v in m.items() if not k.endswith(("_low", "_high"))}
               for a, m in control_metrics.items()},
        }  # fmt: skip
    artifacts: dict[str, Any] = {"roc": split, "canary_extraction": canary_ext}
    if reference_stats is not None:
        bits_t = -np.array([lp.sum() for lp in stats.logp]) / LN2
        bits_r = -np.array([lp.sum() for lp in reference_stats.logp]) / LN2
        bits = unintended_bits(bits_t, bits_r)
        metrics["unintended"] = summarize_unintended(bits[:n_m], bits[n_m:n_mn], n_trainable)
        artifacts["unintended"] = (bits[:n_m], bits[n_m:n_mn])
        # InfoRMIA's view of the same question: bits per sample from its per-token gains.
        token_bits = informia_token_bits(stats, reference_stats)
        info_bits = np.array([b.sum() for b in token_bits])
        metrics["informia_bits"] = summarize_unintended(
            info_bits[:n_m], info_bits[n_m:n_mn], n_trainable
        )
    return metrics, artifacts


def run_memorization_audit(cfg: dict[str, Any]) -> dict[str, Any]:
    """Builds, optionally fine-tunes and audits the target model(s) described by ``cfg``.

    Args:
        cfg: Plain dict of the composed Hydra config: ``probe`` (the audit settings, see
            ``conf/memorization_probe/tiny.yaml``), ``logger``, ``paths.output_dir`` and ``seed``.

    Returns:
        ``{"config", "corpus", "regimes": {regime: metrics}, "table", "headline"}``; also written
        to ``<output_dir>/memorization_audit.json`` and printed as JSON.
    """
    probe = from_mapping(MemorizationProbeConfig, cfg["probe"], "probe")
    regimes = list(probe.regimes)
    bad = [r for r in regimes if r not in REGIMES]
    if bad:
        raise unknown_name("regime", bad[0], REGIMES)
    allowed = (
        ("none", "scratch")
        if probe.target.kind == "gpt"
        else ("none", "full", "lora", "prefix")
    )
    if any(r not in allowed for r in regimes):  # fail before any model trains
        raise InvertError(
            f"target.kind={probe.target.kind} trains in regimes {allowed}, got {regimes}; "
            f"use scratch for a from-scratch gpt and full/lora/prefix for a pretrained LM"
        )
    run = open_run(cfg)  # seeds everything before the corpus and models are built
    seed, run_dir, tracker = run.seed, run.run_dir, run.tracker
    started = time.perf_counter()
    with tracker, _threads(probe.num_threads):
        tokenizer = load_probe_tokenizer(probe.tokenizer)
        corpus = build_private_corpus(**probe.data, seed=seed)
        tracker.summary({f"corpus/{k}": v for k, v in corpus.summary().items() if v is not None})
        reference, offset = _reference(probe, corpus, tokenizer, run_dir, tracker, seed)
        control = control_texts(probe, corpus, seed)
        ref_stats = None
        if reference is not None:
            with _precision(probe.eval.precision):
                ref_stats = mia.token_statistics(
                    reference, tokenizer, scored_texts(corpus, control), probe.eval.batch_size
                )
        results: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for regime in regimes:
            start = time.perf_counter()
            model, n_trainable, info = _fit(
                probe, regime, corpus.train_texts, tokenizer, run_dir / regime,
                _OffsetTracker(tracker, regime, offset), seed,
            )  # fmt: skip
            offset += int(info["steps"])
            shadows, shadow_info = None, None
            if probe.shadows.n_models and regime != "none":
                shadows, shadow_info = train_shadow_models(
                    _fit, probe, regime, corpus, tokenizer, run_dir, seed
                )
            eval_start = time.perf_counter()
            metrics, artifacts[regime] = evaluate_model(
                model, tokenizer, corpus, probe, ref_stats, n_trainable, seed, control, shadows
            )
            metrics["train"] = info
            if shadow_info:
                metrics["shadows"] = shadow_info
            metrics["eval_seconds"] = time.perf_counter() - eval_start
            metrics["wall_seconds"] = time.perf_counter() - start
            results[regime] = metrics
            tracker.log(flatten_metrics(metrics, f"{regime}/", scalars_only=True), step=offset)
            logger.info("%s: %s", regime, json.dumps(flatten_metrics(metrics, scalars_only=True), default=str)[:400])
            del model
            gc.collect()  # a fine-tuned copy of a 135M model should not outlive its regime
        out = report_audit(cfg, probe, corpus, results, artifacts, run_dir, tracker, started)
    print(json.dumps(out, indent=1, default=str))
    return out
