"""Exporting a loan's evidence file: the export is itself recorded on the chain."""

from django.db import transaction

from apps.audit.events import AuditAction
from apps.audit.services import audit_event_record
from apps.collections.evidence import EvidenceFile, loan_evidence_build
from apps.collections.models import Loan
from apps.core.actor import Actor


def loan_evidence_export(*, loan: Loan, actor: Actor) -> EvidenceFile:
    """The evidence file of ``loan``, its export recorded first (and committed) so the file's
    own events include it. The caller has scoped the loan to the agent's lender.
    Emits ``audit.evidence.exported``."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action=AuditAction.EVIDENCE_EXPORTED,
            target=loan,
            data={"reference": loan.reference},
        )
    return loan_evidence_build(
        loan=loan, exported_by=f"{actor.type.value} {actor.id or ''}".strip()
    )
