"""Reads of loans and their schedules. Every page and API uses these, not its own arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, models
from django.db.models import (
    BooleanField,
    Case,
    DateField,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.collections.errors import LoanNotFound
from apps.collections.ladder import Ladder
from apps.collections.models import (
    STAGE_ORDER,
    UNPAID,
    InboundMessage,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    ManualLock,
    Payment,
    PaymentAttempt,
    PaymentReversal,
    RestrictionSuspension,
    SupportPin,
)
from apps.collections.sql import LENDER_ID_BY_SLUG, LOCK_NOTICED_BY, PAYMENT_RECEIPT
from apps.core.money import Money
from apps.core.tenancy import scope_to_lender
from apps.devices.models import DeviceState
from apps.devices.selectors import (
    device_state_of_outer_loan,
    loan_ids_out_of_sync,
    loan_ids_with_event_since,
)
from apps.lenders.country_rules import (
    COUNTRY_RULES,
    NOTICE_ACTIONS,
    country_rule_for,
)
from apps.lenders.models import Lender, RestrictionStage
from apps.lenders.selectors import (
    lender_day_start,
    lender_local_date,
    restriction_stage_list_taking,
)
from apps.notifications.selectors import notice_list_confirmed_since

ZERO = Decimal(0)
_MONEY = DecimalField(max_digits=18, decimal_places=3)
_OUTSTANDING = ExpressionWrapper(
    F("principal_amount")
    + F("interest_amount")
    + F("fee_amount")
    + F("late_fee_amount")
    - F("principal_paid")
    - F("interest_paid")
    - F("fee_paid")
    - F("late_fee_paid"),
    output_field=_MONEY,
)


def loan_id_by_reference(*, lender_id: int, reference: str) -> int:
    loan_id = (
        Loan.objects.filter(lender_id=lender_id, reference=reference)
        .values_list("pk", flat=True)
        .first()
    )
    if loan_id is None:
        raise LoanNotFound(reference=reference)
    return loan_id


def loan_outstanding(*, loan: Loan) -> Money:
    """What the customer still owes: every component of every installment, less what is paid."""
    total = Installment.objects.filter(loan=loan).aggregate(
        total=Coalesce(Sum(_OUTSTANDING), Value(ZERO), output_field=_MONEY)
    )["total"]
    return Money(total, loan.currency)


def _local_today(loan: Loan, as_of: datetime | None) -> date:
    return lender_local_date(lender=loan.lender, at=as_of)


def installment_list_open(*, loan: Loan) -> QuerySet[Installment]:
    """The loan's unpaid installments (``UNPAID``: the one definition), oldest first."""
    return (
        Installment.objects.filter(UNPAID, loan=loan)
        .annotate(outstanding_amount=_OUTSTANDING)
        .order_by("sequence")
    )


@dataclass(frozen=True, slots=True)
class NextDue:
    sequence: int
    due_date: date
    amount: Money


def loan_next_due(*, loan: Loan) -> NextDue | None:
    """The oldest installment not fully paid, and what is left of it."""
    installment = installment_list_open(loan=loan).first()
    if installment is None:
        return None
    return NextDue(
        installment.sequence,
        installment.due_date,
        Money(installment.outstanding_amount, loan.currency),  # type: ignore[attr-defined]  # annotated by installment_list_open
    )


def loan_days_overdue(*, loan: Loan, as_of: datetime | None = None) -> int:
    """Days since the due date of the oldest unpaid installment, once past its grace days.

    Counted in the lender's timezone. Within the grace days it is 0: the
    installment does not count as overdue yet. Days are counted from the due
    date itself, so at the first overdue day the count is grace days + 1.
    """
    oldest = installment_list_open(loan=loan).first()
    if oldest is None:
        return 0
    late_by = (_local_today(loan, as_of) - oldest.due_date).days
    return late_by if late_by > loan.grace_days else 0


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    sequence: int
    due_date: date
    due: Money
    paid: Money
    outstanding: Money
    status: str  # paid, partial, overdue, due, upcoming


def loan_schedule(*, loan: Loan, as_of: datetime | None = None) -> list[ScheduleRow]:
    """The full schedule with what is paid of each installment and its status today."""
    today = _local_today(loan, as_of)
    rows = []
    for inst in Installment.objects.filter(loan=loan).order_by("sequence"):
        outstanding = inst.outstanding
        if inst.paid_at is not None:  # owes nothing (installment_paid_at_iff_nothing_owed)
            status = "paid"
        elif (today - inst.due_date).days > loan.grace_days:
            status = "overdue"
        elif inst.total_paid > 0:
            status = "partial"
        elif inst.due_date <= today:
            status = "due"
        else:
            status = "upcoming"
        rows.append(
            ScheduleRow(
                sequence=inst.sequence,
                due_date=inst.due_date,
                due=Money(inst.total_due, loan.currency),
                paid=Money(inst.total_paid, loan.currency),
                outstanding=Money(outstanding, loan.currency),
                status=status,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class DueReminder:
    loan_id: int
    customer_id: int
    installment_id: int
    due_date: date
    outstanding: Decimal
    currency: str


def installment_list_due_on(*, lender_id: int, dates: list[date]) -> list[DueReminder]:
    """The unpaid installments of the lender's active loans due on one of ``dates``."""
    rows = (
        Installment.objects.filter(
            UNPAID, lender_id=lender_id, due_date__in=dates, loan__status=Loan.Status.ACTIVE
        )
        .annotate(outstanding_amount=_OUTSTANDING)
        .values_list(
            "loan_id", "loan__customer_id", "pk", "due_date", "outstanding_amount", "loan__currency"
        )
        .order_by("loan_id", "sequence")
    )
    return [DueReminder(*row) for row in rows]


def lender_id_by_slug(*, slug: str) -> int | None:
    """The id of the lender ``slug`` names, or None (``LENDER_ID_BY_SLUG``: read first on every
    provider callback)."""
    with connection.cursor() as cursor:
        cursor.execute(LENDER_ID_BY_SLUG, [slug])
        row = cursor.fetchone()
    return row[0] if row else None


def payment_get(*, payment_id: int) -> Payment:
    return Payment.objects.select_related("loan").get(pk=payment_id)


@dataclass(frozen=True, slots=True)
class PaymentReceiptFacts:
    """What a payment's receipt tells: the money, its reference, and what is left to pay."""

    loan_id: int
    lender_id: int
    customer_id: int
    amount: Money
    receipt_ref: str
    outstanding: Money


def payment_receipt_facts(*, payment_id: int) -> PaymentReceiptFacts:
    """The payment's receipt facts (``PAYMENT_RECEIPT``: one statement, read after every
    payment), or ``Payment.DoesNotExist``."""
    with connection.cursor() as cursor:
        cursor.execute(PAYMENT_RECEIPT, [payment_id])
        row = cursor.fetchone()
    if row is None:
        raise Payment.DoesNotExist(f"No payment {payment_id}.")
    amount, receipt_ref, loan_id, lender_id, customer_id, currency, outstanding = row
    return PaymentReceiptFacts(
        loan_id=loan_id,
        lender_id=lender_id,
        customer_id=customer_id,
        amount=Money(amount, currency),
        receipt_ref=receipt_ref,
        outstanding=Money(outstanding, currency),
    )


def loan_list_for_customer(*, customer_id: int, lender_id: int) -> list[Loan]:
    """The customer's loans the self-service pages show: active ones, then paid-off ones."""
    order: dict[str, int] = {Loan.Status.ACTIVE: 0, Loan.Status.PAID_OFF: 1}
    loans = Loan.objects.select_related("lender", "product").filter(
        customer_id=customer_id, lender_id=lender_id, status__in=list(order)
    )
    return sorted(loans, key=lambda loan: (order[loan.status], -loan.pk))


@dataclass(frozen=True, slots=True)
class LoanOverview:
    """What a customer needs to know about one loan, as facts (the page words them)."""

    loan: Loan
    balance: Money
    arrears: Money  # what is late now: the outstanding of installments past their grace days
    next_due: NextDue | None
    schedule: list[ScheduleRow]
    payments: list[Payment]
    days_late: int
    late_installment: int | None  # the sequence of the oldest late installment
    stage: str
    stage_since: date | None  # the lender's local date the stage began
    pause_kind: str
    pause_until: date | None
    next_stage: str
    next_stage_on: date | None

    @property
    def pay_amount(self) -> Money:
        """What paying now asks for: what is late, else the next installment."""
        if self.arrears.amount > 0:
            return self.arrears
        return self.next_due.amount if self.next_due else self.balance


def loan_overview(*, loan: Loan) -> LoanOverview:
    """Balance, schedule, payments, the stage and why, an open pause, and the next stage and
    when it applies if nothing is paid (the pinned policy, filtered by the country's rules)."""
    today = _local_today(loan, None)
    schedule = loan_schedule(loan=loan)
    late = [row for row in schedule if row.status == "overdue"]
    days_late = loan_days_overdue(loan=loan)
    pause = (
        LoanPause.objects.filter(
            loan=loan, status=LoanPause.Status.ACTIVE, starts_on__lte=today, ends_on__gte=today
        )
        .order_by("ends_on")
        .first()
    )
    step = None
    if (
        loan.status == Loan.Status.ACTIVE
        and days_late > 0
        and not loan.released_with_arrears
        and (oldest := installment_list_open(loan=loan).first()) is not None
    ):
        ladder = Ladder.load(lender=loan.lender, policy_version_ids={loan.policy_version_id})
        notice_days = country_rule_for(loan.lender.country).lock_notice_days
        noticed = loan_notice_dates(loan=loan, since=oldest.due_date, notice_days=notice_days)
        step = ladder.next_step(
            policy_version_id=loan.policy_version_id,
            stage=loan.stage,
            days=days_late,
            paused=pause is not None,
            today=today,
            notice_days=notice_days,
            noticed=noticed,
        )
    since = None
    if loan.stage_changed_at is not None:
        since = lender_local_date(lender=loan.lender, at=loan.stage_changed_at)
    arrears = sum((row.outstanding.amount for row in late), ZERO)
    return LoanOverview(
        loan=loan,
        balance=loan_outstanding(loan=loan),
        arrears=Money(arrears, loan.currency),
        next_due=loan_next_due(loan=loan),
        schedule=schedule,
        payments=list(Payment.objects.filter(loan=loan).order_by("-received_at", "-id")[:50]),
        days_late=days_late,
        late_installment=late[0].sequence if late else None,
        stage=loan.stage,
        stage_since=since,
        pause_kind=pause.kind if pause else "",
        pause_until=pause.ends_on if pause else None,
        next_stage=step.stage if step else "",
        next_stage_on=step.on if step else None,
    )


def loan_notice_dates(*, loan: Loan, since: date, notice_days: int) -> dict[str, date]:
    """For each stage that blocks apps or locks, the first date the loan's confirmed notices
    allow it, in the spell of lateness that began on ``since`` (the oldest unpaid due date):
    the date a notice named, and ``notice_days`` after the local date it was confirmed; a
    notice of a harsher stage allows a milder one. The sweep's rule, for one loan."""
    start = lender_day_start(lender=loan.lender, day=since)
    notices = notice_list_confirmed_since(loan_id=loan.pk, since=start)
    allowed: dict[str, date] = {}
    for notice in notices:
        confirmed = notice.acked_at or notice.sent_at
        if confirmed is None or notice.announces_on is None:
            continue
        on = max(
            notice.announces_on,
            lender_local_date(lender=loan.lender, at=confirmed) + timedelta(days=notice_days),
        )
        for stage in NOTICE_ACTIONS:
            if STAGE_ORDER.index(notice.announces_stage) >= STAGE_ORDER.index(stage):
                allowed[stage] = min(allowed.get(stage, on), on)
    return allowed


def loan_list_with_credit_over_an_installment(queryset: QuerySet[Loan]) -> QuerySet[Loan]:
    """The loans of ``queryset`` holding a credit larger than their largest scheduled
    installment (late fees aside), annotated with that ``credit``, in one statement.

    A credit is money received that no installment took: each payment less what reverses
    it (as the allocation counts it, never below zero), less what the installments were
    paid. The loan keeps it (the money arrived); more than an installment of it is more
    likely a wrong amount or a wrong loan than a customer paying ahead, so an agent
    reviews it, and a refund through the provider (a reversal) takes it off the list.
    tests/collections/test_selectors_work_queues.py.
    """
    reversed_total = (
        PaymentReversal.objects.filter(
            loan_id=OuterRef("loan_id"),
            provider=OuterRef("provider"),
            payment_provider_ref=OuterRef("provider_ref"),
        )
        .order_by()
        .values("payment_provider_ref")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    reversed_or_zero = Coalesce(Subquery(reversed_total), Value(ZERO))
    kept = Greatest(Value(ZERO), F("amount") - reversed_or_zero, output_field=_MONEY)
    received = (
        Payment.objects.filter(loan_id=OuterRef("pk"))
        .order_by()
        .values("loan_id")
        .annotate(total=Sum(kept))
        .values("total")
    )
    installments = Installment.objects.filter(loan_id=OuterRef("pk")).order_by().values("loan_id")
    paid = installments.annotate(
        total=Sum(F("principal_paid") + F("interest_paid") + F("fee_paid") + F("late_fee_paid"))
    ).values("total")
    largest = installments.annotate(
        largest=Max(F("principal_amount") + F("interest_amount") + F("fee_amount"))
    ).values("largest")
    credit = Coalesce(Subquery(received), Value(ZERO), output_field=_MONEY) - Coalesce(
        Subquery(paid), Value(ZERO), output_field=_MONEY
    )
    return queryset.annotate(credit=credit, largest_installment=Subquery(largest)).filter(
        credit__gt=F("largest_installment")
    )


class WorkQueue(models.TextChoices):
    """The lists an agent works through each day (the loan list's "work queue" filter)."""

    PROMISES_DUE = "promises_due", _("Promises due today")
    PROMISES_BROKEN = "promises_broken", _("Promises broken in the last 7 days")
    LOCK_TOMORROW = "lock_tomorrow", _("Lock tomorrow unless paid")
    OUT_OF_SYNC = "out_of_sync", _("Phone out of sync for over an hour")
    SIM_CHANGED = "sim_changed", _("SIM changed in the last 7 days")
    MANUAL_LOCKS = "manual_locks", _("Manual locks waiting for a second person")
    APPROVALS = "approvals", _("Approvals waiting")
    RELEASED_WITH_ARREARS = "released_with_arrears", _("Released with arrears (phone free)")
    CREDIT_TO_REVIEW = "credit_to_review", _("Credit over one installment, to review")
    MESSAGES_TO_ANSWER = "messages_to_answer", _("Messages to answer")


def loan_work_queue(queryset: QuerySet[Loan], *, queue: str, today: date) -> QuerySet[Loan]:
    """The loans of ``queryset`` in ``queue`` as of the lender's ``today``, in SQL."""
    week_ago = timezone.now() - timedelta(days=7)
    if queue == WorkQueue.CREDIT_TO_REVIEW:
        return loan_list_with_credit_over_an_installment(queryset)
    if queue == WorkQueue.MESSAGES_TO_ANSWER:
        unanswered = InboundMessage.objects.filter(needs_agent=True, handled_at__isnull=True)
        return queryset.filter(pk__in=unanswered.values("loan_id"))
    if queue == WorkQueue.PROMISES_DUE:
        due = LoanPause.objects.filter(
            kind=LoanPause.Kind.PROMISE, status=LoanPause.Status.ACTIVE, ends_on=today
        )
        return queryset.filter(pk__in=due.values("loan_id"))
    if queue == WorkQueue.PROMISES_BROKEN:
        broken = LoanPause.objects.filter(
            kind=LoanPause.Kind.PROMISE, status=LoanPause.Status.BROKEN, closed_at__gte=week_ago
        )
        return queryset.filter(pk__in=broken.values("loan_id"))
    if queue == WorkQueue.OUT_OF_SYNC:
        return queryset.filter(pk__in=loan_ids_out_of_sync(longer_than=timedelta(hours=1)))
    if queue == WorkQueue.MANUAL_LOCKS:
        waiting = ManualLock.objects.filter(
            status=ManualLock.Status.REQUESTED,
            created_at__gte=timezone.now() - ManualLock.EXPIRES_AFTER,
        )
        return queryset.filter(pk__in=waiting.values("loan_id"))
    if queue == WorkQueue.APPROVALS:
        # what waits for a supervisor's or a second person's decision, not yet void
        now = timezone.now()
        locks = ManualLock.objects.filter(
            status=ManualLock.Status.REQUESTED, created_at__gte=now - ManualLock.EXPIRES_AFTER
        )
        pins = SupportPin.objects.filter(
            status=SupportPin.Status.REQUESTED, created_at__gte=now - SupportPin.EXPIRES_AFTER
        )
        pauses = LoanPause.objects.filter(status=LoanPause.Status.REQUESTED)
        return queryset.filter(
            Q(pk__in=locks.values("loan_id"))
            | Q(pk__in=pins.values("loan_id"))
            | Q(pk__in=pauses.values("loan_id"))
        )
    if queue == WorkQueue.RELEASED_WITH_ARREARS:
        return queryset.filter(status=Loan.Status.ACTIVE, collateral_released_at__isnull=False)
    if queue == WorkQueue.SIM_CHANGED:
        return queryset.filter(pk__in=loan_ids_with_event_since(kind="sim_changed", since=week_ago))
    if queue == WorkQueue.LOCK_TOMORROW:
        # tomorrow's sweep locks a loan whose oldest unpaid installment is then at least the
        # pinned policy's lock day late, unless it is locked already or a pause covers tomorrow
        tomorrow = today + timedelta(days=1)
        oldest = Installment.objects.filter(UNPAID, loan=OuterRef("pk"))
        lock_day = restriction_stage_list_taking(
            action=RestrictionStage.Action.LOCK, policy_version=OuterRef("policy_version")
        )
        paused = LoanPause.objects.filter(
            loan=OuterRef("pk"),
            status=LoanPause.Status.ACTIVE,
            starts_on__lte=tomorrow,
            ends_on__gte=tomorrow,
        )
        # the country's rules as the sweep applies them (Ladder.load): no lock where the
        # country forbids it, and none from a stage earlier than its earliest lock day
        earliest = Case(
            *[
                When(lender__country=country, then=Value(rule.earliest_lock_day))
                for country, rule in COUNTRY_RULES.items()
                if rule.earliest_lock_day is not None
            ],
            default=None,
            output_field=IntegerField(),
        )
        return (
            queryset.filter(status=Loan.Status.ACTIVE, consent__isnull=False)
            .exclude(stage="lock")
            .annotate(
                oldest_due=Subquery(oldest.order_by("due_date").values("due_date")[:1]),
                lock_day=Subquery(lock_day.order_by("days_overdue").values("days_overdue")[:1]),
                earliest_lock_day=earliest,
            )
            .filter(earliest_lock_day__isnull=False, lock_day__gte=F("earliest_lock_day"))
            .annotate(
                lock_on=ExpressionWrapper(F("oldest_due") + F("lock_day"), output_field=DateField())
            )
            .filter(lock_on__lte=tomorrow)
            .exclude(Exists(paused))
            .filter(collateral_released_at__isnull=True)
            .filter(
                RawSQL(  # noqa: S611  (a composed constant; values are parameters)
                    LOCK_NOTICED_BY.as_string(), [tomorrow, tomorrow], output_field=BooleanField()
                )
            )
        )
    raise ValueError(f"unknown work queue {queue!r}")


PHONE_STATES = ("no_phone", "not_enrolled", *DeviceState.Level.values)
"""What a loan's phone really is, in the order the loan list sorts it: no phone, sold but
never enrolled (no restriction can reach it), the level of the state it acknowledged, set
free."""


def loan_list_at_a_glance(
    queryset: QuerySet[Loan], *, now: datetime | None = None
) -> QuerySet[Loan]:
    """``queryset`` annotated in SQL, for the loan list's columns and the loan's header: the
    lender's local date (``local_today``), days past due as ``loan_days_overdue`` counts them
    (``days_past_due``), what is due now (``amount_due``: the outstanding of the installments
    due by then), the phone's real state (``phone_state``, one of ``PHONE_STATES``, and its
    rank ``phone_rank`` to sort on) and whether the phone has yet to apply its newest state
    (``phone_behind``). Subqueries, not a query per row: tests/collections/test_selectors_loans.py."""
    at = Value(now or timezone.now(), output_field=DateTimeField())
    local_today = Cast(
        Func(F("lender__timezone"), at, function="timezone", output_field=DateTimeField()),
        DateField(),
    )
    unpaid = Installment.objects.filter(UNPAID, loan=OuterRef("pk")).order_by()
    oldest_due = Subquery(unpaid.order_by("due_date").values("due_date")[:1])
    late_by = Func(
        F("local_today"),
        oldest_due,
        template="(%(expressions)s)",
        arg_joiner=" - ",
        output_field=IntegerField(),
    )
    due_now = (
        unpaid.filter(due_date__lte=OuterRef("local_today"))
        .values("loan_id")
        .annotate(total=Sum(_OUTSTANDING))
        .values("total")
    )
    phone = device_state_of_outer_loan()
    return queryset.annotate(
        local_today=local_today,
        days_past_due=Case(
            When(Q(grace_days__lt=late_by), then=late_by),
            default=Value(0),
            output_field=IntegerField(),
        ),
        amount_due=Coalesce(Subquery(due_now), Value(ZERO), output_field=_MONEY),
        phone_state=Coalesce(Subquery(phone.values("state")[:1]), Value("no_phone")),
        phone_rank=Case(
            *[When(phone_state=state, then=Value(n)) for n, state in enumerate(PHONE_STATES)],
            output_field=IntegerField(),
        ),
        phone_behind=Coalesce(Subquery(phone.values("behind")[:1]), Value(False)),
    )


def loan_list_late_more_than(queryset: QuerySet[Loan], *, days: int, today: date) -> QuerySet[Loan]:
    """The active loans of ``queryset`` whose oldest unpaid installment fell due more than
    ``days`` days before ``today``: the loans behind the portfolio's PAR ``days`` (its rule,
    ``sql.PAR``: days from the due date, grace days not deducted)."""
    late = Installment.objects.filter(
        UNPAID, loan=OuterRef("pk"), due_date__lt=today - timedelta(days=days)
    )
    return queryset.filter(Exists(late), status=Loan.Status.ACTIVE)


def loan_work_queue_counts(queryset: QuerySet[Loan], *, today: date) -> dict[str, int]:
    """How many loans of ``queryset`` each work queue holds: one count each."""
    return {
        queue: loan_work_queue(queryset, queue=queue, today=today).count()
        for queue in WorkQueue.values
    }


def payment_list_for_loan(*, loan: Loan) -> QuerySet[Payment]:
    return Payment.objects.filter(loan=loan).order_by("received_at", "id")


def loan_stage_change_list(*, loan: Loan) -> QuerySet[LoanStageChange]:
    """Every move of the loan's stage, oldest first, with the policy version behind it."""
    return LoanStageChange.objects.filter(loan=loan).select_related("policy_version").order_by("id")


def payment_for_loan(*, loan_id: int, payment_id: int) -> Payment | None:
    return Payment.objects.filter(pk=payment_id, loan_id=loan_id).first()


def restriction_suspension_in_force(*, lender: Lender) -> RestrictionSuspension | None:
    """The open suspension that holds ``lender``: its own, or its country's (the lender's own
    first); None when restrictions go on."""
    return (
        RestrictionSuspension.objects.filter(lifted_at__isnull=True)
        .filter(
            models.Q(lender_id=lender.pk) | models.Q(lender__isnull=True, country=lender.country)
        )
        .select_related("started_by")
        .order_by("country", "-created_at")
        .first()
    )


def loan_ids_with_late_fees(*, lender_id: int | None = None) -> Iterator[int]:
    """The ids of the loans that have a late fee standing, in id order, read in batches."""
    loans = Loan.objects.filter(installments__late_fee_amount__gt=0).distinct()
    if lender_id is not None:
        loans = loans.filter(lender_id=lender_id)
    return loans.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=2000)


def loan_payable_by_reference(*, lender_id: int, reference: str) -> bool:
    """Whether ``reference`` names a loan of the lender that owes money (a paybill's
    account number, checked before M-Pesa takes the money)."""
    return Loan.objects.filter(
        lender_id=lender_id,
        reference=Loan.reference_as_typed(reference),
        status__in=(Loan.Status.ACTIVE, Loan.Status.WRITTEN_OFF),
    ).exists()


def payment_attempt_showing(*, loan_id: int, lender_id: int) -> PaymentAttempt | None:
    """The payment the customer's page tells about: the newest one started in the last
    PAYMENTS_ATTEMPT_EXPIRE_MINUTES, or a cash voucher still waiting for its money."""
    since = timezone.now() - timedelta(minutes=settings.PAYMENTS_ATTEMPT_EXPIRE_MINUTES)
    return (
        PaymentAttempt.objects.filter(loan_id=loan_id, lender_id=lender_id)
        .filter(Q(created_at__gte=since) | Q(status=PaymentAttempt.Status.PENDING))
        .order_by("-created_at")
        .first()
    )


def loan_for_reply(*, customer_id: int, lender_id: int) -> Loan | None:
    """The loan an answer to the customer's text speaks of (one: an SMS has no room for a
    list, and a promise is made on one loan). Of the customer's active loans, the one whose
    oldest unpaid installment is the oldest: the one a restriction reaches first. Else their
    latest paid-off loan, else their latest loan of any other status (written off,
    cancelled: an agent answers). None for a customer with no loan at the lender."""
    oldest_unpaid = (
        Installment.objects.filter(UNPAID, loan=OuterRef("pk"))
        .order_by("due_date")
        .values("due_date")[:1]
    )
    rank = Case(
        When(status=Loan.Status.ACTIVE, then=Value(0)),
        When(status=Loan.Status.PAID_OFF, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        Loan.objects.select_related("lender")
        .filter(customer_id=customer_id, lender_id=lender_id)
        .annotate(rank=rank, oldest_unpaid=Subquery(oldest_unpaid))
        .order_by("rank", F("oldest_unpaid").asc(nulls_last=True), "-pk")
        .first()
    )


def loan_pause_open(*, loan_id: int, kind: str) -> bool:
    """Whether the loan has a pause of ``kind`` requested or active (one at most)."""
    return LoanPause.objects.filter(
        loan_id=loan_id,
        kind=kind,
        status__in=(LoanPause.Status.REQUESTED, LoanPause.Status.ACTIVE),
    ).exists()


def loan_promise_open_until(*, loan_id: int) -> date | None:
    """The last day of the loan's open promise to pay (there is one at most), or None."""
    return (
        LoanPause.objects.filter(
            loan_id=loan_id,
            kind=LoanPause.Kind.PROMISE,
            status__in=(LoanPause.Status.REQUESTED, LoanPause.Status.ACTIVE),
        )
        .values_list("ends_on", flat=True)
        .first()
    )


def inbound_message_list_for_loan(*, loan_id: int) -> QuerySet[InboundMessage]:
    """The texts the loan's customer sent about it, newest first, with who handled each."""
    return (
        InboundMessage.objects.filter(loan_id=loan_id)
        .select_related("handled_by")
        .order_by("-received_at", "-id")
    )


def inbound_message_list_waiting(*, loan_id: int) -> QuerySet[InboundMessage]:
    """The loan's texts waiting for an agent, oldest first (the order to read them in)."""
    return InboundMessage.objects.filter(
        loan_id=loan_id, needs_agent=True, handled_at__isnull=True
    ).order_by("received_at", "id")


# --- The lender API (/api/lender/v1/): a lender's own rows, through the tenancy scope ------
def loan_list_for_lender(
    *,
    lender_id: int,
    today: date,
    stage: str | None = None,
    external_id: str | None = None,
    days_overdue_min: int | None = None,
    days_overdue_max: int | None = None,
) -> QuerySet[Loan]:
    """``lender_id``'s loans, newest first, each annotated with ``oldest_unpaid_due`` (the due
    date of its oldest unpaid installment, NULL when none): days overdue are ``today`` (the
    lender's date) less that date, once past the loan's grace days (``loan_days_overdue``).
    The days-overdue filters count that way, in SQL."""
    oldest = Subquery(
        Installment.objects.filter(UNPAID, loan_id=OuterRef("pk"))
        .order_by("sequence")
        .values("due_date")[:1],
        output_field=DateField(),
    )
    loans = (
        scope_to_lender(Loan.objects.all(), lender_id)
        .select_related("customer", "product")
        .annotate(oldest_unpaid_due=oldest)
    )
    if stage:
        loans = loans.filter(stage=stage)
    if external_id:
        loans = loans.filter(external_id=external_id)
    # overdue by at least n days: the oldest unpaid is due n days ago or more, and more
    # than the grace days ago
    past_grace = Q(oldest_unpaid_due__lt=Value(today) - F("grace_days") * Value(timedelta(days=1)))
    if days_overdue_min is not None and days_overdue_min > 0:
        loans = loans.filter(
            past_grace, oldest_unpaid_due__lte=today - timedelta(days=days_overdue_min)
        )
    if days_overdue_max is not None:
        on_time = Q(oldest_unpaid_due__isnull=True) | ~past_grace
        loans = loans.filter(
            on_time | Q(oldest_unpaid_due__gte=today - timedelta(days=days_overdue_max))
        )
    return loans.order_by("-id")


def loan_days_overdue_of(loan: Loan, *, today: date) -> int:
    """Days overdue of a loan from ``loan_list_for_lender``, from its annotation."""
    oldest: date | None = getattr(loan, "oldest_unpaid_due", None)
    if oldest is None:
        return 0
    late_by = (today - oldest).days
    return late_by if late_by > loan.grace_days else 0


def loan_get_for_lender(*, lender_id: int, loan_id: int, today: date) -> Loan:
    """One of ``lender_id``'s loans; LoanNotFound for a loan of another lender, exactly as for
    one that does not exist."""
    loan = loan_list_for_lender(lender_id=lender_id, today=today).filter(pk=loan_id).first()
    if loan is None:
        raise LoanNotFound(loan_id=loan_id)
    return loan


def payment_list_for_lender(*, lender_id: int, loan_id: int | None = None) -> QuerySet[Payment]:
    """``lender_id``'s payments, newest first, with each one's reversed total."""
    payments = scope_to_lender(Payment.objects.all(), lender_id).select_related("loan")
    if loan_id is not None:
        payments = payments.filter(loan_id=loan_id)
    reversed_total = Subquery(
        PaymentReversal.objects.filter(
            lender_id=OuterRef("lender_id"),
            provider=OuterRef("provider"),
            payment_provider_ref=OuterRef("provider_ref"),
        )
        .order_by()
        .values("payment_provider_ref")
        .annotate(total=Sum("amount"))
        .values("total")[:1],
        output_field=_MONEY,
    )
    return payments.annotate(reversed_amount=Coalesce(reversed_total, Value(ZERO))).order_by("-id")
