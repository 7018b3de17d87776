"""The customer's notices the sweep decides: what happens next and when (after a raise), and
the notice a stage that blocks apps or locks waits for."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction

from apps.collections.ladder import Ladder
from apps.collections.models import Loan
from apps.collections.services.voice import VoiceRow, voice_reminders_queue
from apps.collections.sql import RAISED
from apps.customers.selectors import customer_locales
from apps.lenders.country_rules import NOTICE_ACTIONS, country_rule_for
from apps.lenders.messages import message_book
from apps.lenders.models import Lender
from apps.notifications.messages import NextStep, render
from apps.notifications.models import Notification
from apps.notifications.services import Draft, notifications_queue


@transaction.atomic
def restriction_notices_queue(
    *, lender_id: int, business_date: date, loans: list[list[Any]]
) -> int:
    """Send the notice a held loan waits for: ``loans`` are [loan id, stage, days overdue] the
    sweep of ``business_date`` held below a stage that blocks apps or locks, with no notice of
    it on its way. Each notice names the stage and the date it applies if nothing is paid:
    the country's ``lock_notice_days`` from now (the sweep applies it once the notice is
    confirmed that long before). Returns how many were new; one per loan, stage and day
    (a second run queues nothing). A loan no longer active gets none.
    """
    lender = Lender.objects.get(pk=lender_id)
    on = business_date + timedelta(days=country_rule_for(lender.country).lock_notice_days)
    active = dict(
        Loan.objects.filter(
            pk__in=[row[0] for row in loans], lender_id=lender_id, status=Loan.Status.ACTIVE
        ).values_list("pk", "customer_id")
    )
    locales = customer_locales(customer_ids=set(active.values()))
    book = message_book(lender)
    drafts = []
    for loan_id, stage, days in loans:
        if loan_id not in active:
            continue
        locale = locales.get(active[loan_id], lender.locale)
        step = NextStep(stage=stage, on=on)
        drafts.append(
            Draft(
                customer_id=active[loan_id],
                loan_id=loan_id,
                kind=Notification.Kind.NOTICE,
                locale=locale,
                dedupe_key=f"notice:{loan_id}:{stage}:{business_date.isoformat()}",
                body=render(
                    "notice",
                    book=book,
                    locale=locale,
                    currency=lender.currency,
                    days=days,
                    step=step,
                ),
                announces_stage=stage,
                announces_on=on,
            )
        )
    return notifications_queue(lender=lender, drafts=drafts)


@transaction.atomic
def overdue_notices_queue(*, lender_id: int, business_date: date, id_from: int, id_to: int) -> int:
    """Queue the overdue notice ("what happens next and when") of each loan of the range
    that the sweep of ``business_date`` raised; returns how many were new.

    Runs after the sweep's commit, as its own task, so the sweep's transaction
    carries no message rendering. A loan whose stage has come down since (paid
    meanwhile) gets none; the dedupe key (loan, date) makes a second run queue
    nothing. A loan raised to a stage the lender calls at gets a reminder call too
    (``voice_reminders_queue``).
    """
    lender = Lender.objects.get(pk=lender_id)
    with connection.cursor() as cursor:
        cursor.execute(
            RAISED, {"lender": lender_id, "bd": business_date, "lo": id_from, "hi": id_to}
        )
        raised = cursor.fetchall()
    if not raised:
        return 0
    ladder = Ladder.load(lender=lender, policy_version_ids={row[3] for row in raised})
    locales = customer_locales(customer_ids={row[1] for row in raised})
    notice_days = country_rule_for(lender.country).lock_notice_days
    book = message_book(lender)
    drafts = []
    for loan_id, customer_id, days, policy_version_id, stage, paused in raised:
        locale = locales.get(customer_id, lender.locale)
        step = ladder.next_step(
            policy_version_id=policy_version_id,
            stage=stage,
            days=days,
            paused=paused,
            today=business_date,
            notice_days=notice_days,
        )
        announces = step is not None and step.stage in NOTICE_ACTIONS
        drafts.append(
            Draft(
                customer_id=customer_id,
                loan_id=loan_id,
                kind="overdue",
                locale=locale,
                dedupe_key=f"overdue:{loan_id}:{business_date.isoformat()}",
                body=render(
                    "overdue",
                    book=book,
                    locale=locale,
                    currency=lender.currency,
                    days=days,
                    step=step,
                ),
                announces_stage=step.stage if step and announces else "",
                announces_on=step.on if step and announces else None,
            )
        )
    rows = [
        VoiceRow(loan_id, customer_id, stage, paused, locales.get(customer_id, lender.locale))
        for loan_id, customer_id, _days, _version, stage, paused in raised
    ]
    voice_reminders_queue(lender=lender, business_date=business_date, rows=rows)
    return notifications_queue(lender=lender, drafts=drafts)
