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
        REPLY = "reply", _("Answer to the customer's text")
        FUNDS = "funds", _("Link to pay, sent when money arrived in the customer's account")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        PUSHED = "pushed", _("Sent to the phone, waiting for its acknowledgement")
        ACKED = "acked", _("Shown on the phone")
        SMS = "sms", _("Sent by SMS")
        WHATSAPP = "whatsapp", _("Sent by WhatsApp")
        SUPPRESSED = "suppressed", _("Not sent: weekly contact limit")
        OPTED_OUT = "opted_out", _("Not sent: the customer opted out")
        FAILED = "failed", _("Failed")

    class Channel(models.TextChoices):
        PUSH = "push", _("The phone's agent")
        WHATSAPP = "whatsapp", _("WhatsApp")
        SMS = "sms", _("SMS")

    class Delivery(models.TextChoices):
        """Where a text stands at its provider (``apps.integrations.messaging.base.Delivery``):
        it only moves forward."""

        QUEUED = "queued", _("Queued at the provider")
        SENT = "sent", _("Sent to the network")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Not delivered")

    # Answers to the customer's own action: no weekly limit, no quiet hours.
    TRANSACTIONAL: ClassVar[frozenset[str]] = frozenset({Kind.PAYMENT, Kind.REPLY})

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
    # the channel it went out on last; the one it fell back from (a message falls back once)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    fell_back_from = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    # tried before the lender's order: an answer goes back on the channel the customer wrote on
    first_channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    # handed to a text provider (SMS or WhatsApp): which, its id, and what it reports since
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=20, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    delivery = models.CharField(_("delivery"), max_length=10, choices=Delivery.choices, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    error = models.CharField(max_length=100, blank=True)
    # A notice of a restriction that blocks apps or locks: the stage and the date it names.
    # Confirmed (acknowledged by the phone, or accepted by the SMS provider) at least the
    # country's ``lock_notice_days`` before, it lets that stage apply (the sweep checks).
    announces_stage = models.CharField(_("announces"), max_length=12, blank=True, default="")
    announces_on = models.DateField(_("announced for"), null=True, blank=True)

    # shown on the phone, or taken by a text provider (a text it then fails to deliver falls
    # back to the next channel or ends ``failed``: it is confirmed no more)
    CONFIRMED: ClassVar[tuple[str, ...]] = (Status.ACKED, Status.SMS, Status.WHATSAPP)

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
            # a provider's delivery report names its message
            models.Index(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="notification_provider_ref",
            ),
            # texts not yet delivered, which fall back when they wait too long
            models.Index(
                fields=["sent_at"],
                condition=Q(status__in=["sms", "whatsapp"], delivery__in=["queued", "sent"]),
                name="notification_undelivered",
            ),
            models.Index(fields=["customer", "created_at"], name="notification_customer_week"),
            # the sweep's question, per late loan: what was it told about blocks and locks
            models.Index(
                fields=["loan", "created_at"],
                condition=~Q(announces_stage=""),
                name="notification_announces",
            ),
        ]


class ContactOptOut(BaseModel):
    """A number that asked a lender to stop its reminders on one channel (a STOP reply, or
    the provider's own opt-out signal). Reminders and overdue notices skip that channel;
    what the law requires (the lock notice, a receipt) still goes, saying how to opt out.
    Removed when the customer opts in again (START)."""

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    phone = models.CharField(_("phone"), max_length=20)
    channel = models.CharField(_("channel"), max_length=10, choices=Notification.Channel.choices)
    source = models.CharField(_("how"), max_length=20)  # "keyword" or "provider"
    provider = models.CharField(_("provider"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("opt-out")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "phone", "channel"], name="contact_opt_out_once"
            )
        ]

    def __str__(self) -> str:
        return f"...{self.phone[-4:]} ({self.channel})"


class VoiceCall(BaseModel):
    """One reminder call to a customer: the script read to them (the lender's ``voice`` text in
    their language), where the call stands, and the key they pressed.

    Queued once per ``dedupe_key`` under the same contact rules as a text (held to the
    country's contact hours, weekday and holiday rules, and counted in the customer's
    weekly limit with every other reminder), placed through the lender's voice provider,
    and tried once more when it did not reach the customer (busy, no answer, failed).
    """

    lender_path: ClassVar[str] = "lender"
    MAX_ATTEMPTS: ClassVar[int] = 2  # the call, and one retry

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        CALLING = "calling", _("Placed, waiting for its end")
        ANSWERED = "answered", _("Answered")
        UNANSWERED = "unanswered", _("Not answered, retry spent")
        SUPPRESSED = "suppressed", _("Not placed: weekly contact limit")
        FAILED = "failed", _("Failed")

    class Answer(models.TextChoices):
        PAY_LINK = "pay_link", _("1: a link to pay by SMS")
        PROMISE = "promise", _("2: a promise to pay in 7 days")
        AGENT = "agent", _("9: talk to an agent")
        OTHER = "other", _("Another key")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="voice_calls"
    )
    loan = models.ForeignKey("collections.Loan", on_delete=models.PROTECT, related_name="+")
    stage = models.CharField(_("stage"), max_length=12)
    locale = models.CharField(max_length=10)
    script = models.TextField(_("script"))
    dedupe_key = models.CharField(max_length=120)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.SCHEDULED
    )
    scheduled_for = models.DateTimeField(_("not before"))
    attempts = models.PositiveSmallIntegerField(default=0)
    provider = models.CharField(_("provider"), max_length=20, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    called_at = models.DateTimeField(_("called"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    digit = models.CharField(_("key pressed"), max_length=1, blank=True)
    answer = models.CharField(_("answer"), max_length=10, choices=Answer.choices, blank=True)
    error = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["lender", "dedupe_key"], name="voice_call_once"),
            models.CheckConstraint(condition=Q(attempts__lte=2), name="voice_call_two_tries"),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_for"], condition=Q(status="scheduled"), name="voice_call_due"
            ),
            models.Index(fields=["customer", "created_at"], name="voice_call_customer_week"),
            models.Index(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="voice_call_provider_ref",
            ),
        ]
