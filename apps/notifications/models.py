from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Notification(BaseModel):
    """One message to a customer: the outbox row and its delivery log.

    Queued once per ``dedupe_key`` (a job that runs twice queues nothing
    twice), held until the country's contact hours, sent as a notice through
    the phone's agent (pushed, shown, acknowledged) and by SMS when the
    agent has not acknowledged it in time or the phone cannot be reached.
    """

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Installment due in 3 days")
        DUE_TODAY = "due_today", _("Installment due today")
        OVERDUE = "overdue", _("Overdue: the restriction stage changed")
        NOTICE = "notice", _("Notice of apps to be blocked or of a lock")
        PAYMENT = "payment", _("Payment received")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        PUSHED = "pushed", _("Sent to the phone, waiting for its acknowledgement")
        ACKED = "acked", _("Shown on the phone")
        SMS = "sms", _("Sent by SMS")
        SUPPRESSED = "suppressed", _("Not sent: weekly contact limit")
        FAILED = "failed", _("Failed")

    # Answers to the customer's own action: no weekly limit, no quiet hours.
    TRANSACTIONAL: ClassVar[frozenset[str]] = frozenset({Kind.PAYMENT})

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="notifications"
    )
    loan = models.ForeignKey(
        "collections.Loan", on_delete=models.PROTECT, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.SCHEDULED
    )
    locale = models.CharField(max_length=10)
    body = models.TextField(_("text"))
    dedupe_key = models.CharField(max_length=120)
    scheduled_for = models.DateTimeField(_("not before"))
    pushed_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    sms_sent_at = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=100, blank=True)
    # A notice of a restriction that blocks apps or locks: the stage and the date it names.
    # Confirmed (acknowledged by the phone, or accepted by the SMS provider) at least the
    # country's ``lock_notice_days`` before, it lets that stage apply (the sweep checks).
    announces_stage = models.CharField(_("announces"), max_length=12, blank=True, default="")
    announces_on = models.DateField(_("announced for"), null=True, blank=True)

    CONFIRMED: ClassVar[tuple[str, ...]] = (Status.ACKED, Status.SMS)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["lender", "dedupe_key"], name="notification_once"),
            models.CheckConstraint(
                condition=Q(announces_stage="", announces_on__isnull=True)
                | (~Q(announces_stage="") & Q(announces_on__isnull=False)),
                name="notification_announces_a_date",
            ),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_for"], condition=Q(status="scheduled"), name="notification_due"
            ),
            models.Index(fields=["loan", "status"], name="notification_loan_status"),
            models.Index(fields=["customer", "created_at"], name="notification_customer_week"),
            # the sweep's question, per late loan: what was it told about blocks and locks
            models.Index(
                fields=["loan", "created_at"],
                condition=~Q(announces_stage=""),
                name="notification_announces",
            ),
        ]
