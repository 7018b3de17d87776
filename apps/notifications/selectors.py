from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from apps.notifications.models import Notification, VoiceCall
from apps.notifications.sql import PENDING


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    kind: str
    body: str


# read on every agent check-in: one narrow statement (sql.PENDING), no ORM compilation
def notices_pending(*, loan_id: int) -> list[Notice]:
    """What the phone should show now (the agent's check-in hands them over)."""
    with connection.cursor() as cursor:
        cursor.execute(PENDING, [loan_id])
        return [Notice(*row) for row in cursor.fetchall()]


def notification_status(*, lender_id: int, dedupe_key: str) -> str:
    """The status of the lender's message queued under ``dedupe_key`` ("" if none)."""
    found = Notification.objects.filter(lender_id=lender_id, dedupe_key=dedupe_key)
    return found.values_list("status", flat=True).first() or ""


def notification_list_for_loan(*, loan_id: int) -> QuerySet[Notification]:
    """The loan's messages, newest first."""
    return Notification.objects.filter(loan_id=loan_id).order_by("-created_at", "-id")


def notice_list_confirmed_since(*, loan_id: int, since: datetime) -> QuerySet[Notification]:
    """The loan's notices of a coming stage, created since ``since``, that the customer
    confirmably got (acknowledged on the phone or sent by SMS)."""
    return Notification.objects.filter(
        loan_id=loan_id, status__in=Notification.CONFIRMED, created_at__gte=since
    ).exclude(announces_stage="")


def voice_call_for_lender(*, lender_id: int, call_id: int) -> VoiceCall | None:
    """The lender's call ``call_id`` with its customer, or None (another lender's looks the
    same as none)."""
    return (
        VoiceCall.objects.select_related("customer").filter(pk=call_id, lender_id=lender_id).first()
    )


def notification_queued(*, lender_id: int, dedupe_key: str) -> Notification | None:
    """The lender's message queued under ``dedupe_key`` (``notification_once``), or None."""
    return Notification.objects.filter(lender_id=lender_id, dedupe_key=dedupe_key).first()
