"""Typed configs: each default stated once, here; unknown keys are errors that list the known.

Hydra's ``conf/`` groups hold what an experiment changes; the library reads every block
through these dataclasses (:func:`from_mapping`).
"""

from invert.configs.budget import BudgetConfig
from invert.configs.inversion import (
    SEARCH_ROWS,
    BagOfWordsConfig,
    CorrectionConfig,
    EvalConfig,
    GuidedDecodingConfig,
    SearchConfig,
    ZeroShotConfig,
)
from invert.configs.privacy import PrivacyAuditConfig, RecordAttackConfig, RetrievalConfig
from invert.configs.schema import UnknownConfigKeyError, from_mapping, to_dict

__all__ = [
    "SEARCH_ROWS",
    "BagOfWordsConfig",
    "BudgetConfig",
    "CorrectionConfig",
    "EvalConfig",
    "GuidedDecodingConfig",
    "PrivacyAuditConfig",
    "RecordAttackConfig",
    "RetrievalConfig",
    "SearchConfig",
    "UnknownConfigKeyError",
    "ZeroShotConfig",
    "from_mapping",
    "to_dict",
    "register_configs",
]

from invert.configs.hydra_store import register_configs  # noqa: E402

register_configs()
