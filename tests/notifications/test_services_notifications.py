"""Messages to customers: held to contact hours, limited per week, sent via the phone or SMS."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from apps.collections.services import (
    loan_stage_sweep,
    payment_record,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import PushNudge
from apps.notifications.models import Notification
from apps.notifications.rules import contact_slot
from apps.notifications.services import (
    Draft,
    notices_ack,
    notifications_dispatch,
    notifications_queue,
)
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone
from tests.notifications.wording import django_date

pytestmark = pytest.mark.django_db

NAIROBI = ZoneInfo("Africa/Nairobi")
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NAIROBI)  # inside Kenya's 07:00-20:00

# what notifications_dispatch answers when nothing happened
COUNTS = {"pushed": 0, "whatsapp": 0, "sms": 0, "fallback": 0, "opted_out": 0, "failed": 0}


def test_a_message_outside_contact_hours_waits_for_the_next_window() -> None:
    night = datetime(2026, 11, 24, 22, 30, tzinfo=NAIROBI)
    assert contact_slot(country="KE", tz="Africa/Nairobi", at=night) == datetime(
        2026, 11, 25, 7, 0, tzinfo=NAIROBI
    )
    early = datetime(2026, 11, 24, 5, 0, tzinfo=NAIROBI)
    assert contact_slot(country="KE", tz="Africa/Nairobi", at=early) == datetime(
        2026, 11, 24, 7, 0, tzinfo=NAIROBI
    )
    assert contact_slot(country="KE", tz="Africa/Nairobi", at=MORNING) == MORNING
    # the same instant is already out of hours in Colombia (07:00-19:00 local)
    bogota = datetime(2026, 11, 24, 19, 30, tzinfo=ZoneInfo("America/Bogota"))
    assert contact_slot(country="CO", tz="America/Bogota", at=bogota).hour == 7


def _draft(loan, n: int, kind: str = "overdue") -> Draft:
    return Draft(
        customer_id=loan.customer_id,
        loan_id=loan.pk,
        kind=kind,
        locale="en",
        body=f"Message {n}",
        dedupe_key=f"{kind}:test:{n}",
    )


def test_the_weekly_limit_suppresses_reminders_but_never_receipts(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    loan = device.loan
    with time_machine.travel(MORNING, tick=False):
        assert notifications_queue(lender=lender_a, drafts=[_draft(loan, n) for n in range(9)]) == 9
        assert notifications_queue(lender=lender_a, drafts=[_draft(loan, 99, "payment")]) == 1
    statuses = list(
        Notification.objects.filter(loan=loan).order_by("id").values_list("status", flat=True)
    )
    assert statuses == ["scheduled"] * 7 + ["suppressed"] * 2 + ["scheduled"]
    # queued twice: nothing new
    assert notifications_queue(lender=lender_a, drafts=[_draft(loan, 0)]) == 0


def test_night_messages_are_held_and_receipts_are_not(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    with time_machine.travel(datetime(2026, 11, 24, 23, 0, tzinfo=NAIROBI), tick=False):
        notifications_queue(
            lender=lender_a, drafts=[_draft(device.loan, 1), _draft(device.loan, 2, "payment")]
        )
    held, receipt = Notification.objects.filter(loan=device.loan).order_by("id")
    assert held.scheduled_for == datetime(2026, 11, 25, 7, 0, tzinfo=NAIROBI)
    assert receipt.scheduled_for == datetime(2026, 11, 24, 23, 0, tzinfo=NAIROBI)


def test_an_overdue_notice_says_what_happens_next_and_when(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    device, _, _ = enrolled_phone(lender_a)
    loan = device.loan
    noticed(loan, stage="block_apps")  # told of the blocked apps; not yet of the lock
    first = loan.installments.order_by("sequence").first()
    on = first.due_date + timedelta(days=20)  # blocked apps since day 14; lock at day 30
    with django_capture_on_commit_callbacks(execute=True):  # the notices' task, after commit
        loan_stage_sweep(lender_id=lender_a.pk, business_date=on, id_from=0, id_to=10**12)
    notice = Notification.objects.get(loan=loan, kind="overdue")
    lock_day = on + timedelta(days=10)
    assert notice.body == (
        f"Your installment is 20 days late. If it is not paid by {django_date(lock_day)}, "
        "the phone will lock (emergency calls always work)."
    )
    assert (notice.announces_stage, notice.announces_on) == ("lock", lock_day)


def test_an_overdue_notice_is_queued_once_and_not_after_the_customer_paid(lender_a) -> None:
    from apps.collections.services.notices import overdue_notices_queue

    paid, _, _ = enrolled_phone(lender_a)
    late, _, _ = enrolled_phone(lender_a)
    on = paid.loan.installments.order_by("sequence").first().due_date + timedelta(days=20)
    loan_stage_sweep(lender_id=lender_a.pk, business_date=on, id_from=0, id_to=10**12)
    arrears = sum(i.total_due for i in paid.loan.installments.filter(due_date__lte=on))
    payment_record(
        loan_id=paid.loan.pk,
        amount=Money(arrears, lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="r-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash.",
    )
    args = {"lender_id": lender_a.pk, "business_date": on, "id_from": 0, "id_to": 10**12}
    assert overdue_notices_queue(**args) == 1
    assert overdue_notices_queue(**args) == 0
    assert list(Notification.objects.filter(kind="overdue").values_list("loan", flat=True)) == [
        late.loan.pk
    ]


def test_notices_go_through_the_phone_and_by_sms_when_not_acknowledged(
    lender_a, settings, sms_outbox, client
) -> None:
    settings.NOTICE_ACK_MINUTES = 30
    device, secret, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    silent, _, _ = enrolled_phone(lender_a)  # no push address: straight to SMS
    with time_machine.travel(MORNING, tick=False):
        notifications_queue(
            lender=lender_a,
            drafts=[_draft(device.loan, 1), _draft(device.loan, 2), _draft(silent.loan, 3)],
        )
        assert notifications_dispatch() == COUNTS | {"pushed": 2, "sms": 1}
    assert PushNudge.objects.filter(device=device, version=device.desired_version).count() == 2
    assert [body for _, body in sms_outbox] == ["Message 3"]
    response = client.post(
        "/api/agent/v1/check-in",
        {"version": 1},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {device.pk}:{secret}",
    )
    notices = response.json()["notices"]
    assert [n["body"] for n in notices] == ["Message 1", "Message 2"]
    assert notices_ack(loan_id=device.loan_id, ids=[notices[0]["id"]]) == 1
    assert notices_ack(loan_id=silent.loan_id, ids=[notices[1]["id"]]) == 0  # not its notice
    with time_machine.travel(MORNING + timedelta(minutes=31), tick=False):
        assert notifications_dispatch()["fallback"] == 1  # the one not shown goes by SMS
    assert [body for _, body in sms_outbox] == ["Message 3", "Message 2"]
    assert dict(Notification.objects.filter(loan=device.loan).values_list("body", "status")) == {
        "Message 1": "acked",
        "Message 2": "sms",
    }


def test_an_sms_fallback_waits_for_contact_hours(lender_a, settings, sms_outbox) -> None:
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    evening = datetime(2026, 11, 24, 19, 45, tzinfo=NAIROBI)
    with time_machine.travel(evening, tick=False):
        notifications_queue(lender=lender_a, drafts=[_draft(device.loan, 1)])
        notifications_dispatch()
    with time_machine.travel(evening + timedelta(minutes=40), tick=False):  # 20:25: too late
        assert notifications_dispatch()["fallback"] == 0
    with time_machine.travel(datetime(2026, 11, 25, 7, 5, tzinfo=NAIROBI), tick=False):
        assert notifications_dispatch()["fallback"] == 1
    assert len(sms_outbox) == 1


def test_messages_are_written_in_the_customers_language() -> None:
    from apps.notifications.messages import NextStep, render

    step = NextStep(stage="lock", on=date(2026, 12, 24))
    assert render("overdue", locale="es", currency="MXN", days=20, step=step) == (
        "Su cuota tiene 20 días de atraso. Si no se paga antes del 24 de diciembre de 2026, "
        "el teléfono se bloqueará (las llamadas de emergencia siempre funcionan)."
    )
    assert render(
        "payment", locale="es", currency="MXN", amount=Decimal("1234.5"), balance=Decimal("10000")
    ) == (
        # Django's Spanish formats group thousands with a no-break space
        "Recibimos MXN 1,234.50. Gracias. Saldo pendiente: MXN 10,000.00."
    )
    assert render("due_today", locale="zh-hans", currency="CNY", amount=Decimal("88")) == (
        "您的分期款 CNY 88.00 今天到期。"
    )


def test_a_backlog_found_at_night_waits_for_the_morning(lender_a, sms_outbox) -> None:
    device, _, _ = enrolled_phone(lender_a)  # no push address: it would go by SMS
    with time_machine.travel(datetime(2026, 11, 24, 18, 0, tzinfo=NAIROBI), tick=False):
        notifications_queue(lender=lender_a, drafts=[_draft(device.loan, 1)])
    # the dispatcher was down until 02:00: the message is not sent in the night
    with time_machine.travel(datetime(2026, 11, 25, 2, 0, tzinfo=NAIROBI), tick=False):
        assert notifications_dispatch() == COUNTS
    held = Notification.objects.get(loan=device.loan)
    assert (held.status, held.scheduled_for) == (
        "scheduled",
        datetime(2026, 11, 25, 7, 0, tzinfo=NAIROBI),
    )
    with time_machine.travel(datetime(2026, 11, 25, 7, 1, tzinfo=NAIROBI), tick=False):
        assert notifications_dispatch()["sms"] == 1
    assert [body for _, body in sms_outbox] == ["Message 1"]
