"""Inverters: prefix-LM (GEIA-style), hypothesis (vec2text), and the nearest-neighbour baseline."""

from invert.models.bag_of_words import BagOfWordsInverter
from invert.models.base import InverterMixin, tokenize_targets
from invert.models.corrector import Corrector, CorrectorConfig, CorrectorMismatchError
from invert.models.hypothesis import HypothesisInverter, HypothesisInverterConfig
from invert.models.loading import (
    INVERTER_KINDS,
    build_corrector,
    build_inverter,
    load_corrector,
    load_inverter,
)
from invert.models.nearest_neighbour import NearestNeighbourInverter
from invert.models.prefix_lm import PrefixLMInverter, PrefixLMInverterConfig
from invert.models.pretrained_lm import load_causal_lm, load_tokenizer, smollm2_path

__all__ = [
    "INVERTER_KINDS",
    "BagOfWordsInverter",
    "CorrectorConfig",
    "CorrectorMismatchError",
    "Corrector",
    "build_corrector",
    "load_corrector",
    "HypothesisInverter",
    "HypothesisInverterConfig",
    "InverterMixin",
    "NearestNeighbourInverter",
    "PrefixLMInverter",
    "PrefixLMInverterConfig",
    "build_inverter",
    "load_causal_lm",
    "load_inverter",
    "load_tokenizer",
    "smollm2_path",
    "tokenize_targets",
]
