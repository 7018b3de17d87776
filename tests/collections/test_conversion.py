"""Conversion by trigger, against a fixture worked out by hand.

Now is 2026-11-30 12:00 UTC; the window is the 30 days that ended 7 days ago
(2026-10-24 12:00 to 2026-11-23 12:00).

reminder  R1 texted 11-10 09:00, paid 11:00 the same day  -> 24 h and 7 d
          R2 texted 11-10 09:00, paid 11-13               -> 7 d only
          R3 texted 11-10 09:00, never paid               -> neither
          R4 paid 11-09, texted 11-10 09:00               -> neither (paid before)
          R5 texted 11-27 (too recent: not counted)
          R1 texted again 11-12: counts once, from its first text
          => 4 customers, 1 in 24 h (25 %), 2 in 7 d (50 %)
funds     F1 link 11-15 10:00, paid 10:30                 -> 24 h and 7 d
          F2 link 11-15 10:00, never paid                 -> neither
          => 2 customers, 1 (50 %), 1 (50 %)
voice     V1 answered 11-05, paid 11-11 (6 days)          -> 7 d only
          V2 not answered (busy): not counted
          V3 answered 11-05, paid 11-13 (8 days)          -> neither
          => 2 customers, 0 (0 %), 1 (50 %)
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.collections.conversion import Conversion, conversion_by_trigger
from apps.collections.models import Payment
from apps.notifications.models import Notification, VoiceCall
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def texted(loan, when: datetime, *, kind: str = "overdue") -> None:
    Notification.objects.create(
        lender_id=loan.lender_id,
        customer_id=loan.customer_id,
        loan=loan,
        kind=kind,
        status="sms",
        locale="en",
        body="A reminder.",
        dedupe_key=f"fixture:{loan.pk}:{kind}:{when.isoformat()}",
        scheduled_for=when,
        sent_at=when,
    )


def called(loan, when: datetime, *, status: str = "answered") -> None:
    VoiceCall.objects.create(
        lender_id=loan.lender_id,
        customer_id=loan.customer_id,
        loan=loan,
        stage="alarm",
        locale="en",
        script="A reminder.",
        dedupe_key=f"fixture:{loan.pk}:{when.isoformat()}",
        status=status,
        scheduled_for=when,
        attempts=1,
        called_at=when,
    )


def paid(loan, when: datetime) -> None:
    Payment.objects.create(
        lender_id=loan.lender_id,
        loan=loan,
        amount=Decimal("500"),
        currency=loan.currency,
        channel="manual",
        provider="fixture",
        provider_ref=f"fixture-{loan.pk}-{when.isoformat()}",
        received_at=when,
    )


def test_the_share_who_paid_within_24_hours_and_7_days_per_trigger(lender_a) -> None:
    r1, r2, r3, r4, r5, f1, f2, v1, v2, v3 = (signed_loan(lender_a) for _ in range(10))
    for loan in (r1, r2, r3, r4):
        texted(loan, at(11, 10))
    texted(r1, at(11, 12))
    texted(r5, at(11, 27))
    paid(r1, at(11, 10, 11))
    paid(r2, at(11, 13))
    paid(r4, at(11, 9))
    paid(r5, at(11, 27, 10))
    for loan in (f1, f2):
        texted(loan, at(11, 15, 10), kind="funds")
    paid(f1, at(11, 15, 10, 30))
    called(v1, at(11, 5))
    called(v2, at(11, 5), status="unanswered")
    called(v3, at(11, 5))
    paid(v1, at(11, 11))
    paid(v2, at(11, 5, 10))
    paid(v3, at(11, 13))
    figures = conversion_by_trigger(lender_id=lender_a.pk, now=NOW)
    assert figures == [
        Conversion("reminder", 4, 1, 2),
        Conversion("funds", 2, 1, 1),
        Conversion("voice", 2, 0, 1),
    ]
    reminder, funds, voice = figures
    assert (reminder.share_24h, reminder.share_7d) == (Decimal("0.25"), Decimal("0.5"))
    assert (funds.share_24h, funds.share_7d) == (Decimal("0.5"), Decimal("0.5"))
    assert (voice.share_24h, voice.share_7d) == (Decimal(0), Decimal("0.5"))


def test_a_lender_sees_only_its_own_customers(lender_a, lender_b) -> None:
    loan = signed_loan(lender_b)
    texted(loan, at(11, 10))
    paid(loan, at(11, 10, 11))
    assert conversion_by_trigger(lender_id=lender_a.pk, now=NOW)[0] == Conversion(
        "reminder", 0, 0, 0
    )
    assert conversion_by_trigger(lender_id=lender_b.pk, now=NOW)[0] == Conversion(
        "reminder", 1, 1, 1
    )
