"""Privacy audit of vector stores: inversion leakage, PII recovery, defenses and utility."""

from invert.audit.pii import PII_FIELDS, pii_recovery
from invert.audit.retrieval import bbc_headline_task, defended_retrieval, retrieval_scores
from invert.audit.run import run_privacy_audit

__all__ = [
    "PII_FIELDS",
    "bbc_headline_task",
    "defended_retrieval",
    "pii_recovery",
    "retrieval_scores",
    "run_privacy_audit",
]
