"""A loan's restriction stage: the lender's restriction lock, the sweep's classification of
one loan, and the writer every stage move shares (phones, history, audit)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, NamedTuple

from django.db import connection
from django.utils import timezone

from apps.audit.services import audit_events_record_select
from apps.collections.events import CollectionsAction
from apps.collections.ladder import Ladder
from apps.collections.models import STAGE_ORDER, Loan, Stage
from apps.collections.sql import (
    ADVISORY_LOCK,
    ADVISORY_LOCK_SHARED,
    CLASSIFY_ONE,
    STAGE_AUDIT_ROWS,
    STAGE_HISTORY_INSERT,
)
from apps.core.actor import Actor
from apps.core.sql import array_literal
from apps.customers.selectors import customer_locales
from apps.devices.selectors import device_ids_enrolled_for_loans
from apps.devices.services import device_states_write_shown
from apps.lenders.country_rules import country_rule_for
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_day_start

# per lender: shared by whoever may restrict (a sweep range, a manual lock), exclusive for a
# suspension starting, so none raises anything after a suspension commits
_RESTRICT_LOCK_NAMESPACE = 7302


def restrictions_hold_shared(*, lender_id: int) -> None:
    """Take the lender's restriction lock shared, for the transaction (before the loans)."""
    with connection.cursor() as cursor:
        cursor.execute(ADVISORY_LOCK_SHARED, [_RESTRICT_LOCK_NAMESPACE, lender_id])


def restrictions_hold_exclusive(*, lender_id: int) -> None:
    """Take it exclusive: waits for every sweep range and manual lock of the lender under way."""
    with connection.cursor() as cursor:
        cursor.execute(ADVISORY_LOCK, [_RESTRICT_LOCK_NAMESPACE, lender_id])


def notice_params(lender: Lender, business_date: date) -> dict[str, Any]:
    """The classification's notice parameters: a notice counts if confirmed on a local date
    at least the country's ``lock_notice_days`` before ``business_date``."""
    days = country_rule_for(lender.country).lock_notice_days
    noticed_before = lender_day_start(lender=lender, day=business_date - timedelta(days=days - 1))
    return {"tz": lender.timezone, "noticed_before": noticed_before}


class Classified(NamedTuple):
    days: int
    paused: bool
    target: str
    noticed: int  # the rank of the harshest stage its customer was told of in time


def loan_classify(*, loan: Loan, lender: Lender, ladder: Ladder, business_date: date) -> Classified:
    """The sweep's classification of one loan (the same statement, for ``loan`` alone): days
    overdue past grace, paused, the target stage and the notices' rank; all zero when the loan
    is not late."""
    with connection.cursor() as cursor:
        cursor.execute(
            CLASSIFY_ONE,
            {
                "loan": loan.pk,
                "bd": business_date,
                "order": list(STAGE_ORDER),
                **notice_params(lender, business_date),
                **ladder.sql_params(),
            },
        )
        row = cursor.fetchone()
    return Classified(*row) if row else Classified(0, False, Stage.NONE.value, 0)


class Change(NamedTuple):  # a tuple: the sweep makes one per changed loan
    loan_id: int
    from_stage: str
    to_stage: str
    days: int
    policy_version_id: int
    customer_id: int
    paused: bool
    noticed: int = 0  # the rank of the harshest stage its customer was told of in time


def loan_stage_changes_apply(
    *,
    lender: Lender,
    ladder: Ladder,
    changes: list[Change],
    cause: str,
    business_date: date,
    actor: Actor,
    reason: str,
    devices: dict[int, int] | None = None,
    locales: dict[int, str] | None = None,
) -> int:
    """Write the phones' states, the history rows and the audit events of ``changes``
    (the loans are updated and locked already), in bulk. Returns how many phones took
    a state. ``devices`` (loan -> enrolled phone) and ``locales`` (customer ->
    language) are looked up unless given."""
    if devices is None:
        devices = device_ids_enrolled_for_loans(loan_ids=[c.loan_id for c in changes])
    if locales is None:
        locales = customer_locales(customer_ids={c.customer_id for c in changes})
    phones = [c for c in changes if c.loan_id in devices]
    shown_as = [
        ladder.content_index(
            policy_version_id=c.policy_version_id,
            stage=c.to_stage,
            days=c.days,
            paused=c.paused,
            locale=locales.get(c.customer_id, lender.locale),
            noticed=c.noticed,
        )
        for c in phones
    ]
    # each stage event names the phone and its new version: no second event per state
    versions = device_states_write_shown(
        lender_id=lender.pk,
        device_ids=[devices[c.loan_id] for c in phones],
        contents=ladder.contents,
        shown_as=shown_as,
        actor=actor,
        reason=reason,
        audit=False,
    )
    by_loan = {loan_id: versions.get(device_id) for loan_id, device_id in devices.items()}
    arrays: dict[str, list[Any]] = {
        "loans": [c.loan_id for c in changes],
        "froms": [c.from_stage for c in changes],
        "tos": [c.to_stage for c in changes],
        "ds": [c.days for c in changes],
        "pvs": [c.policy_version_id for c in changes],
        "paused": [c.paused for c in changes],
        "vs": [by_loan.get(c.loan_id) for c in changes],
        "devices": [devices.get(c.loan_id) if c.loan_id in by_loan else None for c in changes],
    }
    rows: dict[str, Any] = {
        "lender": lender.pk,
        "cause": cause,
        "bd": business_date,
        "now": timezone.now(),
        **{name: array_literal(values) for name, values in arrays.items()},
    }
    with connection.cursor() as cursor:
        cursor.execute(STAGE_HISTORY_INSERT, rows)
    audit_events_record_select(
        lender_id=lender.pk,
        actor=actor,
        action=CollectionsAction.STAGE_CHANGED,
        target_type=Loan._meta.label_lower,
        reason=reason,
        rows=STAGE_AUDIT_ROWS.as_string(),
        params={**rows, "bd": business_date.isoformat()},
    )
    return len(versions)
