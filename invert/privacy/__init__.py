"""Path 3, privacy: audits that compose inversion and memorization over a user's store or model.

Store audit (inversion leakage, PII recovery, defenses and their retrieval cost), the record
attack, the ALGEN alignment attack on defended vectors, and membership inference on inverters.
"""

from invert.privacy.alignment_attack import AlignmentAttack
from invert.privacy.defenses import DefendedEmbedder, build_defense
from invert.privacy.inverter_membership import inverter_membership
from invert.privacy.pii import PII_FIELDS, pii_recovery
from invert.privacy.retrieval import bbc_headline_task, defended_retrieval, retrieval_scores
from invert.privacy.store_audit import run_privacy_audit

__all__ = [
    "PII_FIELDS",
    "AlignmentAttack",
    "DefendedEmbedder",
    "bbc_headline_task",
    "build_defense",
    "defended_retrieval",
    "inverter_membership",
    "pii_recovery",
    "retrieval_scores",
    "run_privacy_audit",
]
