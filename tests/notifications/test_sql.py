"""The notifications app's statements (apps/notifications/sql.py): each against a Python
oracle, and the index each is written for, by EXPLAIN."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.notifications import sql
from apps.notifications.models import Notification
from tests.devices.factories import enrolled_phone
from tests.explain import plan_of

pytestmark = pytest.mark.django_db

S = Notification.Status


def queue_params(lender, loan, keys: list[str]) -> dict[str, Any]:
    now = timezone.now()
    n = len(keys)
    return {
        "lender": lender.pk,
        "now": now,
        "customers": [loan.customer_id] * n,
        "loans": [loan.pk] * n,
        "kinds": ["overdue"] * n,
        "statuses": [S.SCHEDULED] * n,
        "locales": ["en"] * n,
        "bodies": [f"body of {key}" for key in keys],
        "dedupes": keys,
        "ats": [now] * n,
        "announces": [""] * n,
        "announces_on": [None] * n,
        "firsts": [""] * n,
    }


def queue(params: dict[str, Any]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql.QUEUE, params)
        return [row[0] for row in cursor.fetchall()]


def queue_oracle(already: set[str], keys: list[str]) -> list[str]:
    """The keys a queue of ``keys`` adds: each key's first time, unless the lender has it."""
    added: list[str] = []
    for key in keys:
        if key not in already and key not in added:
            added.append(key)
    return added


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (["a", "b"], ["b", "c", "c", "d", "a"]),
        ([], ["x", "x", "x"]),
        (["only"], ["only"]),
        (["p", "q"], []),
    ],
)
def test_queue_adds_each_new_dedupe_key_once_per_lender(lender_a, lender_b, first, then) -> None:
    mine, _, _ = enrolled_phone(lender_a)
    theirs, _, _ = enrolled_phone(lender_b)
    queue(queue_params(lender_b, theirs.loan, then))  # another lender's keys never conflict
    queue(queue_params(lender_a, mine.loan, first))

    ids = queue(queue_params(lender_a, mine.loan, then))

    expected = queue_oracle(set(first), then)
    rows = Notification.objects.filter(pk__in=ids).order_by("id")
    assert [n.dedupe_key for n in rows] == expected
    assert all(n.body == f"body of {n.dedupe_key}" for n in rows)
    assert all(n.first_channel == "" for n in rows)
    assert Notification.objects.filter(lender=lender_a).count() == len(set(first) | set(then))


def test_queue_skips_conflicts_by_the_notification_once_index(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    with plan_of(sql.QUEUE, queue_params(lender_a, device.loan, ["k"])) as plan:
        assert "Conflict Arbiter Indexes: notification_once" in plan


def test_pending_is_the_loans_pushed_notices_oldest_first(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    other, _, _ = enrolled_phone(lender_a)
    now = timezone.now()
    for loan in (device.loan, other.loan):
        queue(queue_params(lender_a, loan, [f"{loan.pk}:{n}" for n in range(6)]))
    # pushed out of id order, one acknowledged, one only scheduled, one tied on time
    statuses = [S.PUSHED, S.PUSHED, S.ACKED, S.SCHEDULED, S.PUSHED, S.SMS]
    offsets = [5, 1, 3, 0, 1, 2]
    for notification, status, minutes in zip(
        Notification.objects.order_by("id"), statuses * 2, offsets * 2, strict=True
    ):
        notification.status = status
        notification.pushed_at = now - timedelta(minutes=minutes)
        notification.save(update_fields=["status", "pushed_at"])

    with connection.cursor() as cursor:
        cursor.execute(sql.PENDING, [device.loan_id])
        found = cursor.fetchall()

    oracle = sorted(
        (n for n in Notification.objects.filter(loan=device.loan) if n.status == S.PUSHED),
        key=lambda n: (n.pushed_at, n.pk),
    )
    assert found == [(n.pk, n.kind, n.body) for n in oracle]
    assert len(found) == 3


def test_pending_finds_the_loans_notices_by_the_loan_status_index(lender_a) -> None:
    # a loan with a long history of acknowledged notices and a few pushed ones, as the
    # statistics of a live table would show: the status column is what the index adds
    device, _, _ = enrolled_phone(lender_a)
    params = queue_params(lender_a, device.loan, [f"old:{n}" for n in range(2000)])
    params["statuses"] = [S.ACKED] * 1995 + [S.PUSHED] * 5
    queue(params)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Notification._meta.db_table}")
    with plan_of(sql.PENDING, [device.loan_id]) as plan:
        assert "notification_loan_status" in plan


RANK = {"": -1, "queued": 0, "sent": 1, "delivered": 2, "failed": 2}


def _texts(lender, loan, deliveries: list[str], provider: str = "africastalking") -> list[int]:
    """Texts of ``lender`` with the provider's references ``ref-0``, ``ref-1``, ... as
    ``deliveries`` say ("" for one with no delivery recorded)."""
    ids = queue(
        queue_params(lender, loan, [f"{provider}:{lender.pk}:{n}" for n in range(len(deliveries))])
    )
    for n, (pk, delivery) in enumerate(zip(ids, deliveries, strict=True)):
        Notification.objects.filter(pk=pk).update(
            status=S.SMS,
            channel="sms",
            provider=provider,
            provider_ref=f"ref-{n}",
            delivery=delivery,
        )
    return ids


@pytest.mark.parametrize(
    "reports",
    [
        [("ref-0", "sent"), ("ref-1", "delivered"), ("ref-2", "queued"), ("ref-3", "delivered")],
        [("ref-4", "sent"), ("nope", "delivered"), ("ref-2", "sent")],
        [],
    ],
)
def test_delivery_forward_moves_only_forward_and_only_the_lenders_texts(
    lender_a, lender_b, reports
) -> None:
    mine, _, _ = enrolled_phone(lender_a)
    theirs, _, _ = enrolled_phone(lender_b)
    states = ["queued", "sent", "delivered", "failed", ""]
    ids = _texts(lender_a, mine.loan, states)
    other = _texts(lender_b, theirs.loan, ["queued"] * 5)  # the same references at B
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            sql.DELIVERY_FORWARD,
            {
                "now": now,
                "lender": lender_a.pk,
                "provider": "africastalking",
                "refs": [r for r, _ in reports],
                "deliveries": [d for _, d in reports],
                "ats": [None] * len(reports),
            },
        )
        moved = {row[0] for row in cursor.fetchall()}

    expected = dict(zip(ids, states, strict=True))
    by_ref = {f"ref-{n}": pk for n, pk in enumerate(ids)}
    for ref, delivery in reports:
        pk = by_ref.get(ref)
        if pk is not None and expected[pk] != "" and RANK[delivery] > RANK[expected[pk]]:
            expected[pk] = delivery
    rows = dict(Notification.objects.filter(pk__in=ids).values_list("pk", "delivery"))
    assert rows == expected
    assert moved == {pk for pk in ids if expected[pk] != dict(zip(ids, states, strict=True))[pk]}
    assert set(Notification.objects.filter(pk__in=other).values_list("delivery", flat=True)) == {
        "queued"
    }
    delivered_now = Notification.objects.filter(pk__in=moved, delivery="delivered")
    assert all(n.delivered_at == now for n in delivered_now)


def test_delivery_forward_finds_texts_by_the_provider_ref_index(lender_a) -> None:
    params = {
        "now": timezone.now(),
        "lender": lender_a.pk,
        "provider": "twilio",
        "refs": ["SM1"],
        "deliveries": ["delivered"],
        "ats": [None],
    }
    with plan_of(sql.DELIVERY_FORWARD, params) as plan:
        assert "notification_provider_ref" in plan


def test_sent_writes_each_rows_columns_from_its_place_in_the_arrays(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    ids = queue(queue_params(lender_a, device.loan, ["s1", "s2", "s3"]))
    untouched = ids.pop()
    now = timezone.now()
    values = {
        "status": [S.SMS, S.PUSHED],
        "channel": ["sms", "push"],
        "fell_back_from": ["whatsapp", ""],
        "pushed_at": [None, now],
        "sent_at": [now, None],
        "provider": ["twilio", ""],
        "provider_ref": ["SM9", ""],
        "delivery": ["queued", ""],
        "delivered_at": [None, None],
        "error": ["", ""],
    }
    params = {"now": now, "ids": ids}
    names = dict(
        zip(
            sql.SENT_COLUMNS,
            [
                "statuses",
                "channels",
                "fell_back_from",
                "pushed_at",
                "sent_at",
                "providers",
                "provider_refs",
                "deliveries",
                "delivered_at",
                "errors",
            ],
            strict=True,
        )
    )
    params |= {names[column]: values[column] for column in sql.SENT_COLUMNS}
    with connection.cursor() as cursor:
        cursor.execute(sql.SENT, params)
    for n, pk in enumerate(ids):
        row = Notification.objects.get(pk=pk)
        assert {c: getattr(row, c) for c in sql.SENT_COLUMNS} == {
            c: values[c][n] for c in sql.SENT_COLUMNS
        }
    assert Notification.objects.get(pk=untouched).status == S.SCHEDULED
