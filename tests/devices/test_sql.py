"""The hand-written statements of devices (apps/devices/sql.py), each against a Python oracle
of the same rule, and each EXPLAINed to show it uses the index it is written for."""

import itertools
import json
from datetime import date, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import sql

from apps.collections.models import Loan
from apps.core.actor import Actor
from apps.core.sql import array_literal
from apps.core.tenancy import scope_to_lender
from apps.devices import sql as device_sql
from apps.devices.errors import DeviceNotFound
from apps.devices.models import Device, DeviceEvent, DeviceState, OfflineToken, PushNudge
from apps.devices.selectors import (
    REPORTED_EVENTS,
    device_event_list_reported,
    device_list_for_lender,
    device_state_for_lender,
)
from apps.devices.services import StateChange, device_release, device_states_write
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db

S = PushNudge.Status


def run(statement: sql.Composable, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def plan_indexes(statement: sql.Composable, params: Any) -> set[str]:
    """The indexes the plan of ``statement`` reads, with sequential scans off: even with the
    ``volume`` below, a test's tables are small next to a real one."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Index Name" in node:
                found.add(node["Index Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def clone_rows(
    model: type[Any], *, template_id: int, count: int, **exprs: str | sql.Composable
) -> None:
    """``count`` copies of one row of ``model``, with the columns of ``exprs`` set by SQL
    expressions of ``i`` (1 to ``count``)."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    values = [
        (sql.SQL(e) if isinstance(e := exprs[c], str) else e)
        if c in exprs
        else sql.Identifier("t", c)
        for c in columns
    ]
    run(
        sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {values}"
            " FROM {table} AS t, generate_series(1, %s) AS i WHERE t.id = %s"
        ).format(
            table=sql.Identifier(model._meta.db_table),
            columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
            values=sql.SQL(", ").join(values),
        ),
        [count, template_id],
    )
    run(sql.SQL("ANALYZE {}").format(sql.Identifier(model._meta.db_table)))


@pytest.fixture
def volume(phones) -> None:
    """Tables shaped like a lender's after a while (in the test's transaction): thousands of
    loans with a phone each, half of them enrolled and half released, and thousands of
    states and of pushes sent, around the few phones of the test."""
    template = phones[0]
    clone_rows(
        Loan,
        template_id=template.loan_id,
        count=4000,
        reference="'volume-' || i",
        idempotency_key="'volume-' || i",
        status="'draft'",
        consent_id="NULL",
    )
    clone_rows(
        Device,
        template_id=template.pk,
        count=4000,
        loan_id=sql.SQL(
            "(SELECT l.id FROM {loans} AS l WHERE l.lender_id = t.lender_id"
            " AND l.reference = 'volume-' || i)"
        ).format(loans=sql.Identifier(Loan._meta.db_table)),
        imei="lpad(i::text, 15, '0')",
        status="CASE WHEN i %% 2 = 0 THEN 'enrolled' ELSE 'released' END",
        fcm_token="'volume-' || i",
    )
    state = DeviceState.objects.filter(device=template).order_by("version").first()
    clone_rows(
        DeviceState,
        template_id=state.pk,
        count=20000,
        device_id="1000000000 + i / 4",
        version="i %% 4 + 1",
        level="CASE WHEN i %% 4 = 3 THEN 'released' ELSE 'lock' END",
    )
    nudge = PushNudge.objects.filter(device=template).first()
    clone_rows(
        PushNudge,
        template_id=nudge.pk,
        count=20000,
        device_id="1000000000 + i / 4",
        status="CASE WHEN i %% 1000 = 0 THEN 'pending' ELSE 'sent' END",
    )


def foreign_key_index(model: type[Any], column: str) -> str:
    """The index of ``model``'s foreign key ``column`` (named by Django with a hash)."""
    (name,) = run(
        sql.SQL(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s"
            " AND indexdef NOT LIKE %s"
        ),
        [model._meta.db_table, f"%({column})", "%WHERE%"],
    )[0]
    return name


def loan_index() -> str:
    """The index of the device's foreign key to its loan."""
    return foreign_key_index(Device, "loan_id")


DEVICES_PKEY = f"{Device._meta.db_table}_pkey"
NUDGES_PKEY = f"{PushNudge._meta.db_table}_pkey"
CODES_PKEY = f"{OfflineToken._meta.db_table}_pkey"


@pytest.fixture
def phones(lender_a, lender_b) -> list[Device]:
    """Four enrolled phones of lender A (on version 1, acked) and one of lender B."""
    mine = [enrolled_phone(lender_a, fcm_token=f"tok-{i}")[0] for i in range(4)]
    devices = [*mine, enrolled_phone(lender_b, fcm_token="tok-b")[0]]
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(acked_version=1)
    for device in devices:
        device.refresh_from_db()
    return devices


# --- locks and reads ---------------------------------------------------------------------


def test_devices_lock_returns_the_rows_asked_for_in_id_order(phones) -> None:
    asked = [phones[2].pk, phones[0].pk, 10**12, phones[3].pk]
    existing = {d.pk for d in Device.objects.all()}
    with transaction.atomic():
        locked = run(device_sql.DEVICES_LOCK, [array_literal(asked)])
    assert [row[0] for row in locked] == sorted(pk for pk in asked if pk in existing)


def test_token_counts_are_set_on_exactly_the_devices_named(phones) -> None:
    now = timezone.now()
    oracle = {d.pk: d.token_count for d in Device.objects.all()}
    oracle |= {phones[0].pk: 7, phones[3].pk: 1}
    run(
        device_sql.DEVICE_TOKEN_COUNTS_SET,
        [now, array_literal([phones[0].pk, phones[3].pk]), [7, 1]],
    )
    assert dict(Device.objects.values_list("pk", "token_count")) == oracle
    assert Device.objects.get(pk=phones[3].pk).updated_at == now
    assert Device.objects.get(pk=phones[1].pk).updated_at != now


def test_devices_lock_for_loans_returns_every_phone_of_the_loans_in_id_order(phones) -> None:
    released = phones[1]
    Device.objects.filter(pk=released.pk).update(status=Device.Status.RELEASED)
    loans = [phones[3].loan_id, phones[1].loan_id, phones[0].loan_id]
    with transaction.atomic():
        locked = run(device_sql.DEVICES_LOCK_FOR_LOANS, [array_literal(loans)])
    oracle = sorted(d.pk for d in Device.objects.all() if d.loan_id in loans)
    assert [row[0] for row in locked] == oracle


def test_enrolled_ids_for_loans_are_the_enrolled_phones_of_those_loans(phones) -> None:
    Device.objects.filter(pk=phones[1].pk).update(status=Device.Status.RELEASED)
    loans = [d.loan_id for d in phones[:3]] + [10**12]
    found = dict(run(device_sql.DEVICE_IDS_ENROLLED_FOR_LOANS, [loans, Device.Status.ENROLLED]))
    oracle = {
        d.loan_id: d.pk
        for d in Device.objects.all()
        if d.loan_id in loans and d.status == Device.Status.ENROLLED
    }
    assert found == oracle
    assert len(found) == 2


def code_waiting_oracle(*, loan_id: int, lender_id: int) -> int | None:
    """By hand, from every row: the id of the newest code of the loan's enrolled phone that
    stands for a state the phone has not acked, with no state of another level written after
    that state (a state whose level is unknown changes nothing); None if there is none."""
    devices = {d.pk: d for d in Device.objects.all()}
    codes = list(OfflineToken.objects.all())
    levels = {(s.device_id, s.version): s.level for s in DeviceState.objects.all()}

    def current(code: OfflineToken) -> bool:
        device = devices[code.device_id]
        then = levels.get((code.device_id, code.state_version))
        return (
            device.loan_id == loan_id
            and code.lender_id == lender_id
            and device.status == Device.Status.ENROLLED
            and device.acked_version < code.state_version
            and not any(c.device_id == code.device_id and c.count > code.count for c in codes)
            and not any(
                device_id == code.device_id and version > code.state_version and level != then
                for (device_id, version), level in levels.items()
                if then is not None
            )
        )

    waiting = [c for c in codes if current(c)]
    return max(waiting, key=lambda c: c.count).pk if waiting else None


def test_the_code_waiting_is_the_newest_current_code_the_phone_has_not_acked(
    lender_a, lender_b
) -> None:
    """``OFFLINE_CODE_WAITING`` against the rule worked out by hand, for a phone in every
    position: acked or not, enrolled or released, a newer code or none, a state written
    since at the same level, at another level or none, and the code's own state unknown;
    for another lender and for a loan with no phone."""
    now = timezone.now()
    cases = list(
        itertools.product(
            (True, False),  # enrolled
            (0, 1),  # a newer code, for the state the phone had before
            ("none", "same", "other", "unknown"),  # what was written after its state
            (1, 2),  # the version the phone acked (the code stands for version 2)
        )
    )
    loans = []
    for enrolled, newer, since, acked in cases:
        device = enrolled_phone(lender_a)[0]
        states = [("lock", 2)] + {
            "none": [],
            "same": [("lock", 3)],
            "other": [("reminder", 3)],
            "unknown": [("reminder", 3)],
        }[since]
        DeviceState.objects.bulk_create(
            DeviceState(
                lender_id=lender_a.pk,
                device=device,
                version=version,
                level=level,
                document={},
                key_version=1,
            )
            for level, version in states
            if not (since == "unknown" and version == 2)
        )
        Device.objects.filter(pk=device.pk).update(
            acked_version=acked,
            desired_version=max(v for _, v in states),
            status=Device.Status.ENROLLED if enrolled else Device.Status.RELEASED,
        )
        OfflineToken.objects.bulk_create(
            OfflineToken(
                lender_id=lender_a.pk,
                device=device,
                count=count,
                kind=OfflineToken.Kind.SET_TIME,
                value=count,
                state_version=2 if count <= 2 else 1,
                sms_due_at=now,
            )
            for count in range(1, 3 + newer)
        )
        loans.append(device.loan_id)
    found = 0
    for loan_id, lender_id in [(loan, lender_a.pk) for loan in loans] + [
        (loans[0], lender_b.pk),
        (10**12, lender_a.pk),
    ]:
        rows = run(device_sql.OFFLINE_CODE_WAITING, {"loan": loan_id, "lender": lender_id})
        assert [row[0] for row in rows] == [
            w for w in [code_waiting_oracle(loan_id=loan_id, lender_id=lender_id)] if w
        ], (loan_id, lender_id)
        found += len(rows)
    # enrolled, not acked, no newer code, nothing of another level since: three of them
    assert found == 3


# --- the agent's calls -------------------------------------------------------------------


def test_the_heartbeat_touches_exactly_the_current_phones(phones) -> None:
    current, with_sim, behind, released = phones[:4]
    Device.objects.filter(pk=with_sim.pk).update(iccid_sha256="sim-a")
    Device.objects.filter(pk=behind.pk).update(desired_version=2)
    Device.objects.filter(pk=released.pk).update(status=Device.Status.RELEASED)

    soon = timezone.now() + timedelta(hours=2)
    Device.objects.filter(pk=with_sim.pk).update(lease_until=soon)

    def is_current(device: Device, applied: int, iccid: str, renew_by) -> bool:
        return (
            device.status == Device.Status.ENROLLED
            and device.desired_version == applied == device.acked_version
            and (iccid == "" or device.iccid_sha256 == iccid)
            and device.lease_until > renew_by
        )

    checked = 0
    for device in Device.objects.filter(pk__in=[current.pk, with_sim.pk, behind.pk, released.pk]):
        for applied, iccid, renew_by in itertools.product(
            (1, 2), ("", "sim-a", "sim-b"), (timezone.now(), soon)
        ):
            seen_before = Device.objects.get(pk=device.pk).last_seen_at
            rows = run(
                device_sql.DEVICE_HEARTBEAT,
                {
                    "now": timezone.now(),
                    "battery": 50,
                    "agent": "",
                    "ip": "",
                    "id": device.pk,
                    "applied": applied,
                    "iccid": iccid,
                    "renew_by": renew_by,
                },
            )
            wanted = is_current(device, applied, iccid, renew_by)
            assert bool(rows) == wanted, (device, applied, iccid, renew_by)
            seen = Device.objects.get(pk=device.pk).last_seen_at
            assert (seen != seen_before) == bool(rows)
            checked += bool(rows)
    # the current phone (no SIM on record) reporting none, at either time; the one with a SIM
    # reporting none or its own, only at the time its lease runs past
    assert checked == 4


def test_authenticate_reads_the_fields_it_names(phones) -> None:
    for device in phones:
        (row,) = run(device_sql.DEVICE_AUTHENTICATE, [device.pk])
        fields = device_sql.DEVICE_AUTHENTICATE_FIELDS
        assert row == tuple(Device.objects.values_list(*fields).get(pk=device.pk))
    assert run(device_sql.DEVICE_AUTHENTICATE, [10**12]) == []


# --- the push outbox ---------------------------------------------------------------------


def test_enqueue_adds_one_pending_due_nudge_per_row(phones) -> None:
    PushNudge.objects.all().delete()
    rows = [(d.lender_id, d.pk, 7) for d in phones[:3]]
    run(device_sql.PUSH_NUDGES_ENQUEUE, [list(column) for column in zip(*rows, strict=True)])
    nudges = PushNudge.objects.order_by("pk")
    assert [(n.lender_id, n.device_id, n.version) for n in nudges] == rows
    assert {(n.status, n.attempts, n.message_id, n.error_code) for n in nudges} == {
        (S.PENDING, 0, "", "")
    }
    assert all(n.next_attempt_at <= timezone.now() for n in nudges)


def nudges_of(device: Device, specs: list[tuple[str, timedelta, timedelta | None]]) -> None:
    """Nudges of ``device`` with (status, due in, claimed ago)."""
    now = timezone.now()
    PushNudge.objects.bulk_create(
        PushNudge(
            lender_id=device.lender_id,
            device=device,
            version=1,
            status=status,
            attempts=1,
            next_attempt_at=now + due_in,
            claimed_at=None if claimed_ago is None else now - claimed_ago,
        )
        for status, due_in, claimed_ago in specs
    )


def test_the_claim_takes_the_oldest_due_and_the_abandoned_up_to_the_limit(phones) -> None:
    PushNudge.objects.all().delete()
    hour = timedelta(hours=1)
    nudges_of(
        phones[0],
        [
            (S.PENDING, -3 * hour, None),
            (S.PENDING, -hour, None),
            (S.PENDING, hour, None),  # not due yet
            (S.SENDING, -2 * hour, 2 * hour),  # abandoned by a dead relay
            (S.SENDING, -4 * hour, timedelta(seconds=1)),  # being sent right now
            (S.SENT, -5 * hour, None),
            (S.FAILED, -5 * hour, None),
        ],
    )
    timeout, limit = 600, 2
    before = {n.pk: n for n in PushNudge.objects.all()}
    now = timezone.now()

    def due(n: PushNudge) -> bool:
        if n.status == S.PENDING:
            return n.next_attempt_at <= now
        return n.status == S.SENDING and n.claimed_at < now - timedelta(seconds=timeout)

    oracle = sorted((n for n in before.values() if due(n)), key=lambda n: (n.next_attempt_at, n.pk))
    with transaction.atomic():
        claimed = run(device_sql.PUSH_NUDGES_CLAIM, [timeout, limit])
    assert sorted(row[0] for row in claimed) == sorted(n.pk for n in oracle[:limit])
    assert len(oracle) == 3
    for nudge_id, device_id, version, attempts in claimed:
        assert (device_id, version, attempts) == (phones[0].pk, 1, before[nudge_id].attempts + 1)
        assert PushNudge.objects.get(pk=nudge_id).status == S.SENDING


def test_outcomes_are_recorded_only_on_rows_still_held_by_the_claim(phones) -> None:
    PushNudge.objects.all().delete()
    nudges_of(
        phones[0], [(S.SENDING, timedelta(0), timedelta(0))] * 3 + [(S.PENDING, timedelta(0), None)]
    )
    held, reclaimed, other, pending = PushNudge.objects.order_by("pk")
    PushNudge.objects.filter(pk=reclaimed.pk).update(attempts=2)
    claims = {held.pk: 1, reclaimed.pk: 1, other.pk: 1, pending.pk: 1}
    outcomes = {
        held.pk: (S.SENT, "msg-1", "", 0.0),
        reclaimed.pk: (S.SENT, "msg-2", "", 0.0),
        other.pk: (S.PENDING, "", "quota", 30.0),
        pending.pk: (S.SENT, "msg-4", "", 0.0),
    }
    before = {n.pk: n for n in PushNudge.objects.all()}
    ids = list(outcomes)
    columns = [list(c) for c in zip(*outcomes.values(), strict=True)]
    recorded = run(device_sql.PUSH_OUTCOMES_RECORD, [ids, *columns, [claims[i] for i in ids]])
    oracle = {i for i in ids if before[i].status == S.SENDING and before[i].attempts == claims[i]}
    assert {row[0] for row in recorded} == oracle == {held.pk, other.pk}
    after = {n.pk: n for n in PushNudge.objects.all()}
    assert (after[held.pk].status, after[held.pk].message_id) == (S.SENT, "msg-1")
    assert after[held.pk].sent_at is not None
    assert (after[other.pk].status, after[other.pk].error_code) == (S.PENDING, "quota")
    assert after[other.pk].next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert (after[reclaimed.pk].status, after[reclaimed.pk].message_id) == (S.SENDING, "")
    assert (after[pending.pk].status, after[pending.pk].message_id) == (S.PENDING, "")


def test_a_dead_token_is_marked_only_if_it_is_still_the_phones_live_one(phones) -> None:
    live, changed, dead_already = phones[:3]
    Device.objects.filter(pk=dead_already.pk).update(fcm_token_dead_at=timezone.now())
    asked = [(live.pk, live.fcm_token), (changed.pk, "tok-old"), (dead_already.pk, "tok-2")]
    before = {d.pk: d for d in Device.objects.all()}
    with transaction.atomic():
        marked = run(
            device_sql.PUSH_TOKENS_DEAD, [[pk for pk, _ in asked], [token for _, token in asked]]
        )
    oracle = {
        (pk, before[pk].lender_id)
        for pk, token in asked
        if before[pk].fcm_token == token and before[pk].fcm_token_dead_at is None
    }
    assert set(marked) == oracle == {(live.pk, live.lender_id)}
    assert Device.objects.get(pk=live.pk).fcm_token_dead_at is not None


def test_next_due_in_is_the_wait_for_the_earliest_pending_nudge(phones) -> None:
    PushNudge.objects.all().delete()
    assert run(device_sql.PUSH_NEXT_DUE_IN) == [(None,)]
    hour = timedelta(hours=1)
    nudges_of(
        phones[0],
        [(S.PENDING, 2 * hour, None), (S.PENDING, hour, None), (S.SENDING, -hour, hour)],
    )
    ((seconds,),) = run(device_sql.PUSH_NEXT_DUE_IN)
    now = timezone.now()
    oracle = min(
        (n.next_attempt_at - now).total_seconds()
        for n in PushNudge.objects.filter(status=S.PENDING)
    )
    assert abs(float(seconds) - oracle) < 5


def test_the_renudge_lock_is_the_transactions_advisory_lock_of_its_key() -> None:
    with transaction.atomic():
        run(device_sql.PUSH_RENUDGE_ADVISORY_LOCK, [7302])
        held = run(
            sql.SQL(
                "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        )
    assert (7302,) in held


def test_release_unacked_lists_the_released_phones_due_for_another_push(phones) -> None:
    waiting, _due, too_soon, no_token, acked = phones
    for device in phones:
        device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")
    now = timezone.now()
    # the release's push of each phone but the waiting one was sent, some while ago
    PushNudge.objects.exclude(device=waiting).update(status=S.SENT)
    PushNudge.objects.exclude(device=too_soon).update(created_at=now - timedelta(hours=1))
    PushNudge.objects.filter(device=too_soon).update(created_at=now - timedelta(seconds=5))
    Device.objects.filter(pk=no_token.pk).update(fcm_token="")
    Device.objects.filter(pk=acked.pk).update(acked_version=F("desired_version"))

    def due_again(device: Device, *, base: int, cap: int, give_up_days: int) -> bool:
        state = DeviceState.objects.filter(device=device, version=device.desired_version).first()
        sent = list(PushNudge.objects.filter(device=device, version=device.desired_version))
        if not (
            device.status == Device.Status.ENROLLED
            and device.acked_version < device.desired_version
            and device.fcm_token
            and device.fcm_token_dead_at is None
            and state is not None
            and state.level == "released"
            and state.created_at > now - timedelta(days=give_up_days)
            and not any(n.status in (S.PENDING, S.SENDING) for n in sent)
        ):
            return False
        if not sent:
            return True
        wait = min(cap, base * 2 ** max(len(sent) - 1, 0))
        return max(n.created_at for n in sent) < now - timedelta(seconds=wait)

    for rule in (
        {"base": 60, "cap": 6 * 3600, "give_up_days": 30},
        {"base": 7200, "cap": 6 * 3600, "give_up_days": 30},  # an hour is too soon
        {"base": 60, "cap": 6 * 3600, "give_up_days": 0},  # given up
    ):
        rows = run(device_sql.PUSH_RELEASE_UNACKED, rule)
        oracle = {
            (d.lender_id, d.pk, d.desired_version)
            for d in Device.objects.all()
            if due_again(d, **rule)
        }
        assert set(rows) == oracle
        assert len(oracle) == (
            1 if rule == {"base": 60, "cap": 6 * 3600, "give_up_days": 30} else 0
        )


# --- the desired states ------------------------------------------------------------------


def test_states_are_written_for_the_phones_the_rule_allows_with_their_documents(
    phones, lender_a
) -> None:
    normal, told_released, released, _, other_lender = phones
    device_release(device_id=told_released.pk, actor=Actor.system(), reason="Paid off.")
    Device.objects.filter(pk=released.pk).update(status=Device.Status.RELEASED)
    before = {d.pk: d for d in Device.objects.all()}
    newest = {
        s.device_id: s.level
        for s in DeviceState.objects.all()
        if s.version == before[s.device_id].desired_version
    }
    changes = [
        StateChange.of(
            device_id=d.pk,
            level="wallpaper",
            locale="sw",
            wallpaper_text="Lipa leo.",
            blocked_packages=["b.app", "a.app"],
        )
        for d in (normal, told_released, released, other_lender)
    ]

    def takes_state(device: Device, level: str) -> bool:
        return (
            device.lender_id == lender_a.pk
            and device.status == Device.Status.ENROLLED
            and (level == "released" or newest.get(device.pk) != "released")
        )

    with transaction.atomic():
        written = device_states_write(
            lender_id=lender_a.pk, changes=changes, actor=Actor.system(), reason="Overdue."
        )
    oracle = {
        c.device_id: before[c.device_id].desired_version + 1
        for c in changes
        if takes_state(before[c.device_id], c.level)
    }
    assert written == oracle == {normal.pk: before[normal.pk].desired_version + 1}
    state = DeviceState.objects.get(device=normal, version=written[normal.pk])
    expected = {
        "device": normal.pk,
        "version": written[normal.pk],
        "key_version": before[normal.pk].key_version,
        "level": "wallpaper",
        "locale": "sw",
        "fallback_level": "normal",
        "wallpaper_text": "Lipa leo.",
        "lock_screen_text": "",
        "blocked_packages": ["a.app", "b.app"],
        "blocked_categories": [],
        "alarm_times": [],
        "always_allowed_numbers": [],
        "alarm_days": {},
        "timezone": lender_a.timezone,
        "token_count": before[normal.pk].token_count,
        "emergency_grace_hours": lender_a.emergency_grace_hours,
        "support_pin_hours": settings.SUPPORT_PIN_HOURS,
    }
    assert {k: state.document[k] for k in expected} == expected
    assert set(state.document) == {
        *expected,
        "issued_at",
        "valid_until",
        "always_allowed_packages",
    }
    assert PushNudge.objects.filter(device=normal, version=written[normal.pk]).count() == 1


def test_audit_rows_are_one_per_state_in_order() -> None:
    written = [(11, 3, "lock"), (7, 1, "released")]
    rows = run(
        device_sql.DEVICE_STATE_AUDIT_ROWS,
        {
            "ids": array_literal([w[0] for w in written]),
            "versions": array_literal([w[1] for w in written]),
            "levels": array_literal([w[2] for w in written]),
        },
    )
    oracle = [
        (n, str(pk), {"version": version, "level": level})
        for n, (pk, version, level) in enumerate(written, start=1)
    ]
    assert [(n, target, json.loads(data)) for n, target, data in rows] == oracle


# --- offline unlock codes ----------------------------------------------------------------


def _codes_insert(phones, *, now, counts=(1, 3)) -> list[int]:
    lender, device_ids = phones[0].lender_id, [phones[0].pk, phones[2].pk]
    return [
        row[0]
        for row in run(
            device_sql.OFFLINE_CODES_INSERT,
            {
                "cause": "Paid.",
                "now": now,
                "lenders": [lender, lender],
                "devices": array_literal(device_ids),
                "counts": list(counts),
                "kinds": ["set_time", "disable_payg"],
                "values": [40, None],
                "paid_until": [date(2027, 1, 5), None],
                "versions": [4, 9],
                "due": [now, now + timedelta(minutes=2)],
            },
        )
    ]


def test_codes_are_inserted_waiting_one_per_entry_in_order(phones) -> None:
    now = timezone.now()
    ids = _codes_insert(phones, now=now)
    stored = [
        OfflineToken.objects.values(
            "device_id",
            "count",
            "kind",
            "value",
            "paid_until",
            "state_version",
            "delivery",
            "sms_due_at",
            "cause",
            "created_at",
        ).get(pk=pk)
        for pk in ids
    ]
    oracle = [
        {
            "device_id": phones[0].pk,
            "count": 1,
            "kind": "set_time",
            "value": 40,
            "paid_until": date(2027, 1, 5),
            "state_version": 4,
            "delivery": "waiting",
            "sms_due_at": now,
            "cause": "Paid.",
            "created_at": now,
        },
        {
            "device_id": phones[2].pk,
            "count": 3,
            "kind": "disable_payg",
            "value": None,
            "paid_until": None,
            "state_version": 9,
            "delivery": "waiting",
            "sms_due_at": now + timedelta(minutes=2),
            "cause": "Paid.",
            "created_at": now,
        },
    ]
    assert stored == oracle
    with pytest.raises(IntegrityError), transaction.atomic():  # a count is issued once
        _codes_insert(phones, now=now)


def test_code_audit_rows_name_each_code_in_the_arrays_order_never_its_digits(phones) -> None:
    ids = _codes_insert(phones, now=timezone.now())
    rows = run(device_sql.OFFLINE_CODE_AUDIT_ROWS, {"ids": array_literal(ids[::-1])})
    codes = {c.pk: c for c in OfflineToken.objects.filter(pk__in=ids)}
    oracle = [
        (
            n,
            str(codes[pk].device_id),
            {
                "code_id": pk,
                "count": codes[pk].count,
                "kind": codes[pk].kind,
                "paid_until": codes[pk].paid_until.isoformat() if codes[pk].paid_until else None,
                "state_version": codes[pk].state_version,
            },
        )
        for n, pk in enumerate(ids[::-1], start=1)
    ]
    found = sorted((n, target, json.loads(data)) for n, target, data in rows)
    assert [(n, t, {k: v for k, v in d.items() if k != "sms_due_at"}) for n, t, d in found] == (
        oracle
    )
    assert all(set(d) == {*oracle[0][2], "sms_due_at"} for _, _, d in found)


# --- the indexes each statement is written for -------------------------------------------


def _state_write_params(lender_id: int, device_ids: list[int]) -> dict[str, Any]:
    one = ["x"]
    return {
        "lender": lender_id,
        "devices": array_literal(device_ids),
        "shown_as": array_literal([0] * len(device_ids)),
        "levels": ["lock"],
        "locales": ["en"],
        "wallpapers": one,
        "lock_texts": one,
        "packages": ["[]"],
        "categories": ["[]"],
        "alarms": ["[]"],
        "numbers": ["[]"],
        "fallbacks": ["normal"],
        "alarm_days": ["{}"],
        "timezone": "UTC",
        "grace_hours": 24,
        "pin_hours": 24,
        "now": timezone.now(),
        "lease": timedelta(days=7),
        "allowed": "[]",
        "key_version": 1,
        "next_key": "{}",
    }


# each statement, the indexes its plan must read
WRITTEN_FOR: dict[str, set[str | tuple[str, ...]]] = {
    "DEVICES_LOCK": {DEVICES_PKEY},
    "DEVICES_LOCK_FOR_LOANS": {"loan"},
    "DEVICE_IDS_ENROLLED_FOR_LOANS": {"device_one_live_per_loan"},
    "DEVICE_HEARTBEAT": {DEVICES_PKEY},
    "DEVICE_AUTHENTICATE": {DEVICES_PKEY},
    "PUSH_NUDGES_CLAIM": {"push_nudge_due"},
    "PUSH_OUTCOMES_RECORD": {NUDGES_PKEY},
    "PUSH_TOKENS_DEAD": {DEVICES_PKEY},
    "PUSH_NEXT_DUE_IN": {"push_nudge_due"},
    "PUSH_RELEASE_UNACKED": {"device_state_released", "push_nudge_device"},
    "DEVICE_STATES_WRITE": {DEVICES_PKEY, "device_state_released"},
    "DEVICE_TOKEN_COUNTS_SET": {DEVICES_PKEY},
    "OFFLINE_CODE_AUDIT_ROWS": {CODES_PKEY},
    # the phone's codes by device: by count, or (few codes a phone) its foreign key's index
    "OFFLINE_CODE_WAITING": {
        "device_one_live_per_loan",
        ("offline_token_count_once", "code_device"),
        "device_state_version_unique",
    },
    "DEVICE_STATE_FOR_LENDER": {DEVICES_PKEY, "device_state_version_unique", "event_device"},
}


def test_each_statement_uses_the_index_it_is_written_for(phones, volume) -> None:
    ids = [d.pk for d in phones[:2]]
    params: dict[str, Any] = {
        "DEVICES_LOCK": [array_literal(ids)],
        "DEVICES_LOCK_FOR_LOANS": [array_literal([d.loan_id for d in phones[:2]])],
        "DEVICE_IDS_ENROLLED_FOR_LOANS": [[d.loan_id for d in phones[:2]], "enrolled"],
        "DEVICE_HEARTBEAT": {
            "now": timezone.now(),
            "battery": 1,
            "agent": "",
            "ip": "",
            "id": ids[0],
            "applied": 1,
            "iccid": "",
            "renew_by": timezone.now(),
        },
        "DEVICE_AUTHENTICATE": [ids[0]],
        "PUSH_NUDGES_CLAIM": [120, 500],
        "PUSH_OUTCOMES_RECORD": [[1], ["sent"], ["m"], [""], [0.0], [1]],
        "PUSH_TOKENS_DEAD": [[ids[0]], ["tok-0"]],
        "PUSH_NEXT_DUE_IN": None,
        "PUSH_RELEASE_UNACKED": {"base": 60, "cap": 3600, "give_up_days": 30},
        "DEVICE_STATES_WRITE": _state_write_params(phones[0].lender_id, ids),
        "DEVICE_TOKEN_COUNTS_SET": [timezone.now(), array_literal(ids), [3, 5]],
        "OFFLINE_CODE_AUDIT_ROWS": {"ids": array_literal([1, 2])},
        "OFFLINE_CODE_WAITING": {"loan": phones[0].loan_id, "lender": phones[0].lender_id},
        "DEVICE_STATE_FOR_LENDER": {
            "device": ids[0],
            "lender": phones[0].lender_id,
            "now": timezone.now(),
            "kinds": [str(k) for k in REPORTED_EVENTS],
            "limit": 20,
        },
    }
    named = {
        "loan": loan_index(),
        "code_device": foreign_key_index(OfflineToken, "device_id"),
        "event_device": foreign_key_index(DeviceEvent, "device_id"),
    }
    missing = {}
    for name, indexes in WRITTEN_FOR.items():
        used = plan_indexes(getattr(device_sql, name), params[name])
        # an index, or a tuple of indexes any of which serves
        unserved = [
            i
            for i in indexes
            if not {named.get(n, n) for n in (i if isinstance(i, tuple) else (i,))} & used
        ]
        if unserved:
            missing[name] = (sorted(map(str, unserved)), sorted(used))
    assert missing == {}
    # every statement with an index is in the table (the others read none or only insert)
    no_index = {
        "PUSH_NUDGES_ENQUEUE",
        "PUSH_RENUDGE_ADVISORY_LOCK",
        "DEVICE_STATE_AUDIT_ROWS",
        "OFFLINE_CODES_INSERT",
    }
    statements = {
        name for name, value in vars(device_sql).items() if isinstance(value, sql.Composable)
    }
    assert statements - {n for n in statements if n.startswith("_")} == {
        *WRITTEN_FOR,
        *no_index,
    }


# --- the lender API's phone state -----------------------------------------------------------


def test_device_state_for_lender_reads_what_the_scoped_querysets_read(phones, lender_a) -> None:
    """``DEVICE_STATE_FOR_LENDER`` finds a phone for a lender exactly when the tenancy rule's
    queryset (``scope_to_lender``) does, and reads what the querysets of
    ``device_list_for_lender`` and ``device_event_list_reported`` read: the level, the sync lag
    of a phone behind, and only the reported kinds of events, newest first."""
    behind = phones[1]
    Device.objects.filter(pk=behind.pk).update(acked_version=0)
    at = timezone.now() - timedelta(hours=3)
    for i, kind in enumerate(
        [
            DeviceEvent.Kind.SIM_CHANGED,
            DeviceEvent.Kind.TAMPER_SUSPECTED,
            next(k for k in DeviceEvent.Kind if k not in REPORTED_EVENTS),
        ]
    ):
        DeviceEvent.objects.create(
            lender_id=behind.lender_id,
            device=behind,
            event_id=f"e-{i}",
            kind=kind,
            occurred_at=at + timedelta(minutes=i),
        )
    lenders = {d.lender_id for d in phones}
    for lender_id, device in itertools.product(lenders, phones):
        scoped = scope_to_lender(Device.objects.all(), lender_id).filter(pk=device.pk)
        if not scoped.exists():
            with pytest.raises(DeviceNotFound):
                device_state_for_lender(lender_id=lender_id, device_id=device.pk)
            continue
        read = device_state_for_lender(lender_id=lender_id, device_id=device.pk)
        (orm,) = device_list_for_lender(lender_id=lender_id).filter(pk=device.pk)
        events = device_event_list_reported(device=orm)
        # the lag as of each one's own now: a few milliseconds apart
        assert (read.sync_lag is None) is (orm.sync_lag is None)
        if orm.sync_lag is not None:
            assert abs(read.sync_lag - orm.sync_lag) < timedelta(seconds=5)
        assert (
            read.id,
            read.loan_id,
            read.imei,
            read.status,
            read.level,
            read.desired_version,
            read.acked_version,
            read.acked_at,
            read.last_seen_at,
            read.lease_until,
            read.events,
        ) == (
            orm.pk,
            orm.loan_id,
            orm.imei,
            orm.status,
            orm.level,
            orm.desired_version,
            orm.acked_version,
            orm.acked_at,
            orm.last_seen_at,
            orm.lease_until,
            [(e.kind, e.occurred_at) for e in events],
        )
    read = device_state_for_lender(lender_id=lender_a.pk, device_id=behind.pk)
    assert read.sync_lag is not None
    assert read.sync_lag > timedelta(0)
    assert [kind for kind, _ in read.events] == [
        DeviceEvent.Kind.TAMPER_SUSPECTED,
        DeviceEvent.Kind.SIM_CHANGED,
    ]
    with pytest.raises(DeviceNotFound):
        device_state_for_lender(lender_id=lender_a.pk, device_id=phones[-1].pk + 10_000)
