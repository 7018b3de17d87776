"""Country calendars: no collection message on a rest day or a public holiday, in the
customer's local time (the lender's timezone); a message in a closed window waits for the
next open one and is not dropped; receipts are exempt."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.lenders.country_rules import COUNTRY_RULES, CountryRule, contact_window
from apps.notifications.models import Notification
from apps.notifications.rules import contact_slot
from apps.notifications.services import (
    Draft,
    notifications_dispatch,
    notifications_queue,
)
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import LenderFactory
from tests.lenders.markets import MARKETS, MONDAY, SUNDAY, local, opening


def test_every_country_of_the_table_has_a_market_here() -> None:
    assert set(MARKETS) == set(COUNTRY_RULES)


@pytest.mark.parametrize("country", MARKETS)
def test_a_message_waits_for_monday_when_it_falls_on_a_sunday(country) -> None:
    tz = MARKETS[country][0]
    for at in (
        local(country, SUNDAY, time(10)),
        local(country, SUNDAY - timedelta(days=1), time(22, 30)),
    ):
        assert contact_slot(country=country, tz=tz, at=at) == opening(country, MONDAY)
    assert contact_window(country=country, day=SUNDAY) is None
    monday = local(country, MONDAY, time(12))
    assert contact_slot(country=country, tz=tz, at=monday) == monday


@pytest.mark.parametrize("country", MARKETS)
def test_a_message_waits_past_a_public_holiday_when_it_falls_on_one(country) -> None:
    tz, _, _, holiday, (day, at) = MARKETS[country]
    reopens = local(country, day, at)
    assert contact_window(country=country, day=holiday) is None
    for at in (local(country, holiday, time(0, 1)), local(country, holiday, time(12))):
        assert contact_slot(country=country, tz=tz, at=at) == reopens
    # it is the holiday that closes the day: the same weekday a week earlier is open
    week_before = local(country, holiday - timedelta(days=7), time(12))
    assert contact_slot(country=country, tz=tz, at=week_before) == week_before


def test_the_holiday_is_the_customers_local_date_not_utcs() -> None:
    # 17 Aug 2026 00:30 in Jakarta is still 16 Aug in UTC, and 06:30 in Bogota on 20 July
    # is already 11:30 UTC: both are the local holiday, whatever the UTC date says
    jakarta = datetime(2026, 8, 16, 17, 30, tzinfo=ZoneInfo("UTC"))
    assert contact_slot(country="ID", tz="Asia/Jakarta", at=jakarta) == datetime(
        2026, 8, 18, 8, tzinfo=ZoneInfo("Asia/Jakarta")
    )
    bogota = datetime(2026, 7, 20, 11, 30, tzinfo=ZoneInfo("UTC"))
    assert contact_slot(country="CO", tz="America/Bogota", at=bogota) == datetime(
        2026, 7, 21, 7, tzinfo=ZoneInfo("America/Bogota")
    )


def test_colombia_contacts_on_saturday_from_8_to_15_only() -> None:
    saturday = SUNDAY - timedelta(days=1)
    assert contact_window(country="CO", day=saturday) == (time(8), time(15))
    tz = "America/Bogota"
    early, inside, late = (local("CO", saturday, t) for t in (time(7, 30), time(14, 59), time(15)))
    assert contact_slot(country="CO", tz=tz, at=early) == local("CO", saturday, time(8))
    assert contact_slot(country="CO", tz=tz, at=inside) == inside
    assert contact_slot(country="CO", tz=tz, at=late) == opening("CO", MONDAY)  # no Sunday


def test_indonesia_contacts_on_saturday_but_not_on_sunday() -> None:
    saturday = SUNDAY - timedelta(days=1)
    assert contact_window(country="ID", day=saturday) == (time(8), time(20))
    assert contact_window(country="ID", day=SUNDAY) is None


def _draft(loan, kind: str, n: int) -> Draft:
    return Draft(
        customer_id=loan.customer_id,
        loan_id=loan.pk,
        kind=kind,
        locale="en",
        body=f"{kind} {n}",
        dedupe_key=f"{kind}:calendar:{n}",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("country", MARKETS)
def test_a_notice_queued_on_a_sunday_and_a_holiday_waits_and_a_receipt_does_not(
    country, sms_outbox
) -> None:
    tz, currency, _, holiday, (day, at) = MARKETS[country]
    lender = LenderFactory(country=country, currency=currency, timezone=tz)
    device, _, _ = enrolled_phone(lender)  # no push address: messages go by SMS
    loan = device.loan
    closed = [(holiday, local(country, day, at)), (SUNDAY, opening(country, MONDAY))]
    for n, (day, opens) in enumerate(sorted(closed)):  # in time order: weekly limits count
        with time_machine.travel(local(country, day, time(11)), tick=False):
            notifications_queue(
                lender=lender,
                drafts=[
                    _draft(loan, "overdue", n),
                    _draft(loan, "due_soon", n),
                    _draft(loan, "payment", n),
                ],
            )
            # the receipt goes at once; the others are not sent on the closed day
            assert notifications_dispatch()["sms"] == 1
        with time_machine.travel(opens - timedelta(minutes=1), tick=False):
            assert notifications_dispatch()["sms"] == 0
        with time_machine.travel(opens, tick=False):
            assert notifications_dispatch()["sms"] == 2  # waited, not dropped
        sent = Notification.objects.filter(loan=loan, dedupe_key__endswith=f":{n}")
        assert {(m.kind, m.status) for m in sent} == {
            ("overdue", "sms"),
            ("due_soon", "sms"),
            ("payment", "sms"),
        }
        assert {m.scheduled_for for m in sent if m.kind != "payment"} == {opens}
    assert len(sms_outbox) == 6


def test_a_held_due_today_reminder_is_translated() -> None:
    from apps.notifications.messages import render

    held = {"currency": "COP", "amount": Decimal(88), "due": SUNDAY, "sent_on": MONDAY}
    assert render("due_today", locale="es", **held) == (
        "Su cuota de COP 88.00 venció el 22 de noviembre de 2026."
    )
    assert (
        render("due_today", locale="zh-hans", **held)
        == "您的分期款 COP 88.00 已于2026年11月22日到期。"
    )
    on_time = {**held, "sent_on": SUNDAY}
    assert (
        render("due_today", locale="en", **on_time) == "Your installment of COP 88.00 is due today."
    )


def test_a_country_outside_the_table_keeps_its_own_holidays_and_sundays() -> None:
    # DEFAULT_RULE (08:00-20:00): 14 July is France's national day, a Tuesday in 2026
    assert contact_window(country="FR", day=date(2026, 7, 14)) is None
    assert contact_window(country="FR", day=date(2026, 7, 15)) == (time(8), time(20))
    assert contact_window(country="FR", day=SUNDAY) is None


def test_a_rule_closed_every_day_of_the_week_is_refused() -> None:
    with pytest.raises(ValueError, match="closed weekdays"):
        CountryRule(frozenset(), None, (time(8), time(20)), closed_weekdays=frozenset(range(7)))
