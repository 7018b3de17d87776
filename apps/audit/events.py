"""Audit actions owned by the audit app itself."""

from enum import StrEnum


class AuditAction(StrEnum):
    CHAIN_CHECKPOINTED = "audit.chain.checkpointed"
    EVIDENCE_EXPORTED = "audit.evidence.exported"
