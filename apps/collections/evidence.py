"""The loan's story: the targets whose audit events tell it, and its evidence file.

The evidence file is a ZIP an agent downloads from the loan's page:

- ``evidence.pdf``: for a reader: the customer and their recorded consent (the
  exact text, its hash, how and where it was given), the schedule with what
  is paid, the payments, every restriction with the policy version and the
  days overdue behind it, the phone's states and acknowledgements, and the
  audit events with their hashes;
- ``audit-events.json``: every audit event about the loan, its customer,
  consent, payments and phone, with the fields each hash covers (the audit
  app's export over those targets, ``apps.audit.export``);
- ``verify.py`` and ``hashing.py``: check those events with Python alone
  (``python verify.py audit-events.json``).
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from apps.audit.export import audit_export_for_targets, audit_verifier_files
from apps.audit.models import AuditEvent
from apps.audit.selectors import AuditTargets, audit_event_list_for_targets
from apps.collections.models import Loan
from apps.collections.selectors import (
    loan_outstanding,
    loan_schedule,
    loan_stage_change_list,
    payment_list_for_loan,
)
from apps.core.money import money_format
from apps.devices.selectors import device_list_for_loan, device_state_list
from apps.lenders.selectors import restriction_stage_list

FONTS = Path(__file__).resolve().parent / "fonts"


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    filename: str
    content: bytes


def loan_audit_targets(*, loan: Loan) -> list[AuditTargets]:
    """The objects whose events tell a loan's story: the loan, its customer, consent,
    payments and phones."""
    devices = [str(d.pk) for d in device_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id)]
    payments = [str(p.pk) for p in payment_list_for_loan(loan=loan)]
    targets = [
        AuditTargets("collections.loan", [str(loan.pk)]),
        AuditTargets("customers.customer", [str(loan.customer_id)]),
        AuditTargets("devices.device", devices),
        AuditTargets("collections.payment", payments),
    ]
    if loan.consent_id:
        targets.append(AuditTargets("customers.consentrecord", [str(loan.consent_id)]))
    return targets


def loan_audit_event_list(*, loan: Loan, limit: int = 30) -> list[AuditEvent]:
    """The latest events of the loan's story, newest first (the loan page's audit trail)."""
    return audit_event_list_for_targets(
        lender_id=loan.lender_id, targets=loan_audit_targets(loan=loan), limit=limit
    )


def loan_evidence_build(
    *, loan: Loan, exported_by: str, at: datetime | None = None
) -> EvidenceFile:
    """The ZIP for ``loan`` (already scoped to the agent's lender by the caller)."""
    at = at or timezone.now()
    export = audit_export_for_targets(
        lender_id=loan.lender_id, targets=loan_audit_targets(loan=loan)
    )
    pack = {
        "format": "smart-collection-evidence/1",
        "generated_at": at.isoformat(),
        "exported_by": exported_by,
        "lender": {"id": loan.lender_id, "slug": loan.lender.slug, "name": loan.lender.name},
        "loan": {"id": loan.pk, "reference": loan.reference},
        "chain": export.chain,
        "events": export.events,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("evidence.pdf", _pdf(loan=loan, pack=pack))
        archive.writestr(
            "audit-events.json",
            json.dumps(pack, cls=DjangoJSONEncoder, indent=1, ensure_ascii=False),
        )
        for name, text in audit_verifier_files().items():  # verify.py, hashing.py
            archive.writestr(name, text)
        archive.writestr("README.txt", _README.format(reference=loan.reference))
    stamp = at.strftime("%Y%m%d-%H%M%S")
    return EvidenceFile(
        filename=f"evidence-{loan.reference}-{stamp}.zip", content=buffer.getvalue()
    )


_README = """Evidence file of loan {reference}

evidence.pdf        the loan, the consent, payments, restrictions and the phone, for a reader
audit-events.json   the audit events about the loan, with the fields each hash covers
verify.py           checks them: python verify.py audit-events.json (needs hashing.py beside it)
"""


@functools.cache
def _pdf_class() -> type[Any]:
    """The evidence PDF's document class. fpdf and its font tools weigh about 18 MiB, so they
    are loaded by the first export, not by every web process as it starts (the back office
    imports this module)."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    class _Pdf(FPDF):
        def __init__(self, title: str) -> None:
            super().__init__(format="A4")
            self.add_font("body", "", str(FONTS / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
            self.set_title(title)
            self.set_auto_page_break(auto=True, margin=15)
            self.title_text = title

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("body", "", 7)
            self.cell(0, 5, f"{self.title_text} · page {self.page_no()}", align="C")

        def heading(self, text: str) -> None:
            self.ln(3)
            self.set_font("body", "B", 12)
            self.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_font("body", "", 9)

        def line_of(self, label: str, value: object) -> None:
            self.set_font("body", "B", 9)
            self.cell(48, 5, label)
            self.set_font("body", "", 9)
            self.multi_cell(0, 5, str(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        def rows(
            self,
            header: tuple[str, ...],
            rows: Sequence[tuple[object, ...]],
            widths: tuple[int, ...],
        ) -> None:
            self.set_font("body", "", 8)
            with self.table(col_widths=widths, text_align="LEFT", line_height=4.5) as table:
                table.row(header)
                for row in rows:
                    table.row(tuple(str(cell) for cell in row))
            self.set_font("body", "", 9)

    return _Pdf


def _pdf(*, loan: Loan, pack: dict[str, Any]) -> bytes:
    from fpdf.enums import XPos, YPos  # loaded with the document class, on the first export

    pdf = _pdf_class()(f"Evidence file · loan {loan.reference}")
    pdf.add_page()
    pdf.set_font("body", "B", 15)
    pdf.cell(
        0, 9, f"Loan {loan.reference} · {loan.lender.name}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font("body", "", 9)
    pdf.line_of("Generated", f"{pack['generated_at']} by {pack['exported_by']}")
    pdf.line_of("Status, stage", f"{loan.status}, {loan.stage}")
    pdf.line_of(
        "Financed",
        f"{money_format(loan.financed_amount, loan.currency)}; left to pay "
        f"{money_format(loan_outstanding(loan=loan).amount, loan.currency)}",
    )
    pdf.line_of("Signed", loan.signed_at)

    customer = loan.customer
    pdf.heading("Customer and consent")
    pdf.line_of(
        "Customer", f"{customer.full_name}, {customer.phone}, national id {customer.national_id}"
    )
    consent = loan.consent
    if consent is not None:
        pdf.line_of(
            "Consent recorded",
            f"{consent.created_at.isoformat()} by {consent.method} "
            f"(code check: {consent.code_check})",
        )
        pdf.line_of(
            "Where",
            f"shop {consent.shop_id}, clerk {consent.clerk_id}, address "
            f"{consent.ip or '-'}, browser {consent.user_agent or '-'}",
        )
        pdf.line_of(
            "Text",
            f"version {consent.text_version}, language {consent.locale}, "
            f"SHA-256 {consent.text_sha256}",
        )
        pdf.set_font("body", "", 8)
        pdf.multi_cell(
            0, 4.2, consent.text, border=1, padding=2, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.set_font("body", "", 9)

    pdf.heading("Schedule")
    pdf.rows(
        ("#", "due", "amount", "paid", "status"),
        [
            (r.sequence, r.due_date, r.due.amount, r.paid.amount, r.status)
            for r in loan_schedule(loan=loan)
        ],
        (10, 30, 35, 35, 30),
    )

    pdf.heading("Payments")
    payments = list(payment_list_for_loan(loan=loan))
    if payments:
        pdf.rows(
            ("received", "amount", "channel", "provider", "reference"),
            [
                (
                    p.received_at.isoformat(timespec="seconds"),
                    money_format(p.amount, p.currency),
                    p.channel,
                    p.provider,
                    p.provider_ref,
                )
                for p in payments
            ],
            (42, 28, 20, 25, 65),
        )
    else:
        pdf.cell(0, 5, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.heading("Restrictions")
    changes = list(loan_stage_change_list(loan=loan))
    if changes:
        pdf.rows(
            (
                "business date",
                "from",
                "to",
                "cause",
                "days overdue",
                "policy version",
                "phone state",
            ),
            [
                (
                    c.business_date,
                    c.from_stage,
                    c.to_stage,
                    c.cause,
                    c.days_overdue,
                    c.policy_version_id,
                    c.device_version or "-",
                )
                for c in changes
            ],
            (26, 22, 22, 20, 24, 26, 24),
        )
        versions = {c.policy_version_id for c in changes}
        ladder = [
            (s.policy_version_id, s.days_overdue, s.action)
            for s in restriction_stage_list(policy_version_ids=versions)
        ]
        pdf.ln(2)
        pdf.rows(("policy version", "from day overdue", "stage"), ladder, (40, 40, 60))
    else:
        pdf.cell(0, 5, "The phone was never restricted.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.heading("Phone")
    acks = [e for e in pack["events"] if e["action"] == "devices.state.acknowledged"]
    for device in device_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id):
        pdf.line_of(
            "Phone",
            f"{device.brand} {device.model_name}, IMEI {device.imei}, {device.status}, "
            f"enrolled {device.enrolled_at or '-'}",
        )
        pdf.rows(
            ("version", "level", "issued", "signing key"),
            [
                (s.version, s.level, s.created_at.isoformat(timespec="seconds"), s.key_version)
                for s in device_state_list(device=device)
            ],
            (20, 30, 60, 30),
        )
        mine = [e for e in acks if e["target_id"] == str(device.pk)]
        if mine:
            pdf.ln(1)
            pdf.rows(
                ("acknowledged at", "version"),
                [
                    (e["occurred_at"], (e["data"].get("version") or {}).get("new", "-"))
                    for e in mine
                ],
                (60, 30),
            )

    pdf.heading("Audit events")
    chain = pack["chain"]
    pdf.line_of(
        "Chain", f"lender {chain['lender_id']}, head seq {chain['head_seq']}, {chain['head_hash']}"
    )
    pdf.rows(
        ("seq", "when (UTC)", "who", "what", "hash"),
        [
            (
                e["seq"],
                e["occurred_at"][:19],
                f"{e['actor_type']} {e['actor_id']}".strip(),
                e["action"],
                e["hash"][:16] + "…",
            )
            for e in pack["events"]
        ],
        (14, 38, 28, 70, 38),
    )
    pdf.ln(2)
    pdf.multi_cell(
        0,
        4.5,
        "Each event's hash covers its fields and the previous event's hash "
        "(docs/audit.md). audit-events.json holds them in full; "
        "python verify.py audit-events.json checks them.",
    )
    return bytes(pdf.output())
