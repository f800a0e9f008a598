"""The preamble every inversion run shares: corpus -> (text, embedding) pairs -> baselines.

Also what a trained inverter's folder records of its data (``config.training_data``), so a
downstream command needs only ``inverter_path=``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invert.configs import BagOfWordsConfig
from invert.data.pairs import EmbeddedSplit, embed_split
from invert.data.splits import prepare_corpus
from invert.embedders.base import Embedder
from invert.errors import CheckpointError
from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.nearest_neighbour import NearestNeighbourInverter

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# The data keys a checkpoint records; together they fix which texts land in which split.
DATA_KEYS = ("name", "path", "max_tokens", "seed", "val_fraction", "test_fraction", "max_examples")
# The keys that say how any corpus is split (all but which corpus it is).
SPLIT_KEYS = ("max_tokens", "seed", "val_fraction", "test_fraction", "max_examples")


def embedded_splits(
    data: Mapping[str, Any], embedder: Embedder, tokenizer: Any, splits: Sequence[str] = SPLITS
) -> dict[str, EmbeddedSplit]:
    """Prepares the corpus ``data`` describes and embeds the named splits (disk-cached).

    Args:
        data: A data config (``conf/data/``): ``name``, ``max_tokens``, ``seed``, fractions,
            ``max_examples`` and any corpus arguments (``path``, ``n``, ...).
        embedder: The embedder whose vectors are paired with the texts.
        tokenizer: The inverter's tokenizer (it counts ``max_tokens``).
        splits: Which of train / validation / test to embed.

    Returns:
        ``{split: EmbeddedSplit}``.
    """
    data = {k: v for k, v in data.items() if v is not None or k != "path"}
    prepared = prepare_corpus(tokenizer=tokenizer, **data)
    pairs = {
        split: embed_split(prepared[split], embedder, data["name"], split, data["max_tokens"])
        for split in splits
    }
    for split, p in pairs.items():
        logger.info("%s: %d pairs%s", split, len(p), " (from cache)" if p.from_cache else "")
    return pairs


def head(split: EmbeddedSplit, n: int) -> EmbeddedSplit:
    """The first ``n`` pairs of ``split``."""
    return EmbeddedSplit(split.texts[:n], split.embeddings[:n])


def nearest_neighbour(train: EmbeddedSplit, embedder: Embedder) -> NearestNeighbourInverter:
    """The retrieval baseline: the closest training text."""
    return NearestNeighbourInverter(train.texts, train.embeddings, embedder.name)


def fit_bag_of_words(
    train: EmbeddedSplit,
    embedder: Embedder,
    config: BagOfWordsConfig,
    seed: int,
    save_to: str | Path | None = None,
    mixed_precision: str = "no",
) -> BagOfWordsInverter:
    """Fits the bag-of-words model (arXiv 2004.00053) on the training pairs.

    Args:
        train: Training pairs.
        embedder: Their embedder (its name and dimension are recorded).
        config: Width, vocabulary, epochs and learning rate.
        seed: Seeds its initialization and batches.
        save_to: Also write it there (a ``.safetensors`` file).
        mixed_precision: ``bf16`` fits it under bf16 autocast where that is faster
            (:func:`~invert.models.multilabel.fit_multilabel`).
    """
    start = time.perf_counter()
    bow = BagOfWordsInverter.build(
        train.texts, embedder.dim, config.hidden_dim, config.max_vocabulary, embedder.name, seed
    )
    losses = bow.fit(train.texts, train.embeddings, epochs=config.epochs, lr=config.lr, seed=seed,
                     mixed_precision=mixed_precision)  # fmt: skip
    if save_to is not None:
        bow.save(save_to)
    logger.info("bag-of-words model: %d words, loss %.4f, %.0f s",
                len(bow.vocabulary), losses[-1], time.perf_counter() - start)  # fmt: skip
    return bow


def training_record(data: Mapping[str, Any], train_seed: int, examples_seen: int) -> dict[str, Any]:
    """What an inverter folder records of its training data (see :func:`recorded_data`)."""
    record = {k: data[k] for k in DATA_KEYS if k in data}
    extra = {k: v for k, v in data.items() if k not in DATA_KEYS}
    return {"data": record | extra, "train_seed": int(train_seed), "examples_seen": int(examples_seen)}


def recorded_data(inverter: Any, path: str | Path) -> dict[str, Any]:
    """The training-data record of a loaded inverter.

    Raises:
        CheckpointError: The folder was saved before inverters recorded their data; says
            which overrides to pass instead.
    """
    record = getattr(inverter.config, "training_data", None)
    if not record:
        raise CheckpointError(
            f"{path} does not record its training data (saved by an older invert); pass the "
            "training run's data and seed explicitly, e.g. data=wikipedia seed=0, or add "
            '"training_data": {"data": {...}, "train_seed": 0, "examples_seen": N} to its '
            "config.json"
        )
    return dict(record)


def data_for(inverter: Any, path: str | Path, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """The data config a downstream run uses: ``override`` if given, else the recorded one.

    Either way ``max_tokens`` is the inverter's own training length.
    """
    data = dict(override) if override else dict(recorded_data(inverter, path)["data"])
    return data | {"max_tokens": int(inverter.config.max_text_tokens)}
