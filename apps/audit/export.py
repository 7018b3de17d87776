"""A generic export of audit events: those about a list of targets, with what checks them.

An app that tells the story of one of its objects (the loan's evidence file,
``apps.collections.evidence``) names the targets whose events belong to it; this module
knows nothing of loans. ``audit_verifier_files`` are the files that check the exported
events with Python alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.audit.hashing import canonical_time
from apps.audit.selectors import AuditTargets, audit_event_rows_for_targets

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class AuditExport:
    """The chain's head (``lender_id``, ``head_seq``, ``head_hash``) and the events, in chain
    order, each with the fields its hash covers (``data_text`` for format 2)."""

    chain: dict[str, Any]
    events: list[dict[str, Any]]


def audit_export_for_targets(*, lender_id: int, targets: Sequence[AuditTargets]) -> AuditExport:
    """Every event about ``targets`` on ``lender_id``'s chain, and the chain's head."""
    chain, rows = audit_event_rows_for_targets(lender_id=lender_id, targets=targets)
    events = []
    for row in rows:
        row["occurred_at"] = canonical_time(row["occurred_at"]).replace("Z", "+00:00")
        events.append(row)
    head = {"lender_id": chain.lender_id, "head_seq": chain.last_seq, "head_hash": chain.last_hash}
    return AuditExport(chain=head, events=events)


def audit_verifier_files() -> dict[str, str]:
    """``verify.py`` and the ``hashing.py`` it needs beside it: ``python verify.py FILE``
    checks an export's events with the Python standard library alone."""
    return {
        "verify.py": (HERE / "evidence_verify.py").read_text(),
        "hashing.py": (HERE / "hashing.py").read_text(),
    }
