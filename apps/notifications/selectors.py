from dataclasses import dataclass

from django.db import connection

from apps.notifications.models import Notification


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    kind: str
    body: str


# read on every agent check-in: one narrow statement, no ORM compilation
_PENDING = (
    f"SELECT id, kind, body FROM {Notification._meta.db_table} "  # noqa: S608
    "WHERE loan_id = %s AND status = 'pushed' ORDER BY pushed_at, id"
)


def notices_pending(*, loan_id: int) -> list[Notice]:
    """What the phone should show now (the agent's check-in hands them over)."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING, [loan_id])
        return [Notice(*row) for row in cursor.fetchall()]


def notification_status(*, lender_id: int, dedupe_key: str) -> str:
    """The status of the lender's message queued under ``dedupe_key`` ("" if none)."""
    found = Notification.objects.filter(lender_id=lender_id, dedupe_key=dedupe_key)
    return found.values_list("status", flat=True).first() or ""
