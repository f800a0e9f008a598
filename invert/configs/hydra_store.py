"""Registers the typed configs with Hydra's ConfigStore as ``<group>/schema``.

A yaml in ``conf/<group>/`` lists ``schema`` first in its defaults, so Hydra fills every key
from the dataclass and refuses keys it does not define.
"""

from __future__ import annotations

from invert.configs.budget import BudgetConfig
from invert.configs.inversion import (
    BagOfWordsConfig,
    CorrectionConfig,
    EvalConfig,
    SearchConfig,
    ZeroShotConfig,
)
from invert.configs.privacy import PrivacyAuditConfig

SCHEMAS = {
    "eval": EvalConfig,
    "search": SearchConfig,
    "bow": BagOfWordsConfig,
    "correct": CorrectionConfig,
    "zero_shot": ZeroShotConfig,
    "audit": PrivacyAuditConfig,
    "budget": BudgetConfig,
}


def register_configs() -> None:
    """Stores every schema (idempotent: re-storing replaces the node)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, schema in SCHEMAS.items():
        store.store(group=group, name="schema", node=schema)
