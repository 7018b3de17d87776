from typing import ClassVar

import pgtrigger
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel

BOUND = ("pending", "enrolled")  # statuses in which an IMEI belongs to a loan


class Device(BaseModel):
    """The phone sold on a loan: from the sale (pending) through enrollment to release."""

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        PENDING = "pending", _("Sold, waiting for enrollment")
        ENROLLED = "enrolled", _("Enrolled")
        RELEASED = "released", _("Released")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="devices")
    loan = models.ForeignKey("collections.Loan", on_delete=models.PROTECT, related_name="devices")
    imei = models.CharField(_("IMEI"), max_length=15)
    brand = models.CharField(_("brand"), max_length=60)
    model_name = models.CharField(_("model"), max_length=80)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    serial = models.CharField(_("serial number"), max_length=64, blank=True)
    android_version = models.CharField(max_length=20, blank=True)
    agent_version = models.CharField(max_length=20, blank=True)
    fcm_token = models.CharField(max_length=512, blank=True)
    push_address_kind = models.CharField(
        max_length=5,
        choices=[("token", _("FCM registration token")), ("fid", _("Firebase installation id"))],
        default="token",
        help_text=_("What fcm_token holds; FCM addresses the phone by it."),
    )
    agent_public_key = models.CharField(max_length=64, blank=True, help_text=_("Ed25519, base64"))
    credential_hash = models.CharField(max_length=64, blank=True)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    desired_version = models.PositiveIntegerField(default=0)
    acked_version = models.PositiveIntegerField(default=0)
    acked_at = models.DateTimeField(null=True, blank=True)
    last_ack_error = models.CharField(max_length=60, blank=True)
    battery_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    iccid_sha256 = models.CharField(max_length=64, blank=True)
    last_ip = models.CharField(max_length=45, blank=True)
    key_version = models.PositiveSmallIntegerField(
        default=1, help_text=_("The lender key version the phone trusts.")
    )
    fcm_token_dead_at = models.DateTimeField(
        null=True, blank=True, help_text=_("FCM said the push address is gone: SMS fallback.")
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the offline lease of the newest state ends (its valid_until)."),
    )
    token_count = models.PositiveIntegerField(
        default=0, help_text=_("The count of the newest offline unlock code issued (OpenPAYGO).")
    )
    token_epoch = models.DateField(
        null=True, blank=True, help_text=_("The date offline unlock codes count days from.")
    )
    out_of_sync_version = models.PositiveIntegerField(
        default=0,
        help_text=_("The desired version the phone was last reported out of sync on."),
    )

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            # One phone, one live loan: tests/devices/test_services_enrollment.py
            models.UniqueConstraint(
                fields=["imei"], condition=Q(status__in=BOUND), name="device_imei_bound_once"
            ),
            models.UniqueConstraint(
                fields=["loan"], condition=Q(status__in=BOUND), name="device_one_live_per_loan"
            ),
            models.CheckConstraint(
                condition=Q(imei__regex=r"^[0-9]{15}$"), name="device_imei_15_digits"
            ),
        ]
        # A phone ends released, never deleted: its states and pushes, written in bulk,
        # name it without a foreign-key check each.
        triggers = [pgtrigger.Protect(name="device_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.brand} {self.model_name} ({self.imei[-4:]})"


class EnrollmentToken(BaseModel):
    """A single-use, expiring code that lets one phone enroll as one sold device.

    Only its SHA-256 is stored, with a random nonce: the code itself is derived from the
    master key, the row and the nonce (``apps.devices.keys.enrollment_code``), so the counter
    can show a live code again without the code being kept anywhere.
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="enrollment_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    # with the master key, makes the code again; "" on codes minted before codes were derived
    nonce = models.CharField(max_length=32, blank=True, default="")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(revoked_at__isnull=True),
                name="token_not_used_and_revoked",
            ),
        ]


class DeviceState(BaseModel):
    """One version of a phone's desired state; signed with its lender's Ed25519 key when
    the phone pulls it (``apps.devices.desired_state``).

    Append-only (the database refuses UPDATE and DELETE): a new version is a
    new row, and versions only grow. The phone pulls the newest, checks the
    signature, applies it and acknowledges its version; a lost push or a phone switched off cannot leave it in a wrong
    state longer than one check-in.
    """

    lender_path: ClassVar[str] = "lender"

    class Level(models.TextChoices):
        NORMAL = "normal", _("No restriction")
        REMINDER = "reminder", _("Reminders")
        WALLPAPER = "wallpaper", _("Payment-reminder wallpaper")
        ALARM = "alarm", _("Alarms")
        BLOCK_APPS = "block_apps", _("Blocked apps")
        LOCK = "lock", _("Locked")
        RELEASED = "released", _("Released")

    # written in bulk by the restriction sweep: no index a query does not use
    created_at = models.DateTimeField(auto_now_add=True)
    # A copy of the parent's lender, for scoping queries; the parent's own foreign key
    # already guarantees the lender exists, so no second check on each bulk-written row.
    # no index: every query of states is by device
    lender = models.ForeignKey(
        "lenders.Lender",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # (device, version) is unique, which serves every lookup by device; the device row is
    # updated in the statement that writes its state, and never deleted (device_never_deleted)
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="states", db_index=False, db_constraint=False
    )
    version = models.PositiveIntegerField()
    level = models.CharField(max_length=12, choices=Level.choices)
    document = models.JSONField()
    key_version = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ("device", "version")
        constraints = [
            models.UniqueConstraint(
                fields=["device", "version"], name="device_state_version_unique"
            ),
            models.CheckConstraint(
                condition=Q(
                    level__in=[
                        "normal",
                        "reminder",
                        "wallpaper",
                        "alarm",
                        "block_apps",
                        "lock",
                        "released",
                    ]
                ),
                name="device_state_level_known",
            ),
        ]
        # "is this phone's newest state its release?", asked of every phone a state is written
        # for: a probe of this small index, not of the one of every state
        indexes = [
            models.Index(
                fields=["device", "version"],
                condition=Q(level="released"),
                name="device_state_released",
            )
        ]
        triggers = [
            pgtrigger.Protect(
                name="device_state_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} · {self.get_level_display()}"


class DeviceEvent(BaseModel):
    """Something the phone reported: a SIM change, a reboot, suspected tampering, ...

    Stored once per (device, event id): an agent retrying a report changes nothing.
    """

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        SIM_CHANGED = "sim_changed", _("SIM changed")
        REBOOTED = "rebooted", _("Rebooted")
        TAMPER_SUSPECTED = "tamper_suspected", _("Tampering suspected")
        PROVISIONING_STATE = "provisioning_state", _("Provisioning state")
        LOW_STORAGE = "low_storage", _("Low storage")
        OFFLINE_TOKEN_APPLIED = "offline_token_applied", _("Unlock code typed offline")
        EMERGENCY_GRACE_USED = "emergency_grace_used", _("Emergency grace used")
        SUPPORT_PIN_USED = "support_pin_used", _("Support PIN used")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="events")
    event_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-occurred_at",)
        constraints = [
            models.UniqueConstraint(fields=["device", "event_id"], name="device_event_once")
        ]


class LenderKey(BaseModel):
    """A version of a lender's state-signing key: its public half, and when it began.

    The private half is derived from the environment (``apps.devices.keys``);
    version 1 exists without a row. A phone moves to a new version when it
    acknowledges a state, signed by the version it trusts, that announces it.
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveSmallIntegerField()
    public_key = models.CharField(max_length=64, help_text=_("Ed25519, base64"))

    class Meta:
        ordering = ("lender", "-version")
        constraints = [
            models.UniqueConstraint(fields=["lender", "version"], name="lender_key_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=2), name="lender_key_version_from_2"),
        ]


class PushNudge(BaseModel):
    """One wake-up push to a phone: the outbox row written with its state, and its delivery log.

    Written in the transaction that changes the desired state, so a broker
    that is down loses nothing: the relay task sends what is pending whenever
    it runs. Each row records its attempts, the provider's message id or last
    error, and its end (sent, superseded by a newer nudge, dead address, or
    failed).
    """

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        SENT = "sent", _("Sent")
        SUPERSEDED = "superseded", _("Superseded by a newer push")
        DEAD = "dead", _("Push address gone")
        FAILED = "failed", _("Failed")

    # A copy of the parent's lender, for scoping queries; the parent's own foreign key
    # already guarantees the lender exists, so no second check on each bulk-written row.
    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    # push_nudge_device (device, created_at) serves every lookup by device
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="nudges", db_index=False, db_constraint=False
    )
    version = models.PositiveIntegerField(help_text=_("The state version the push announces."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status__in=("pending", "sending")),
                name="push_nudge_due",
            ),
            models.Index(fields=["device", "-created_at"], name="push_nudge_device"),
        ]

    def __str__(self) -> str:
        return f"push of v{self.version} · {self.get_status_display()}"


class OfflineToken(BaseModel):
    """An unlock code the phone verifies without a network (OpenPAYGO Token).

    Stored as its count and value, never its digits: the scheme is deterministic, so the
    digits are made again from the phone's secret when shown or sent
    (``apps.devices.offline``). One row per count of a phone; counts only grow.
    """

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        SET_TIME = "set_time", _("Paid until (lowers the restriction)")
        DISABLE_PAYG = "disable_payg", _("Paid off (releases the phone)")

    class Delivery(models.TextChoices):
        WAITING = "waiting", _("Waiting for the phone to check in")
        SMS = "sms", _("Sent by SMS")
        NOT_NEEDED = "not_needed", _("Not needed: the phone took its new state")
        FAILED = "failed", _("SMS failed")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="offline_tokens")
    count = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    value = models.PositiveIntegerField(null=True, blank=True)
    paid_until = models.DateField(null=True, blank=True)
    state_version = models.PositiveIntegerField(
        help_text=_("The state the code stands for: once the phone acks it, no SMS is needed.")
    )
    cause = models.CharField(max_length=200, blank=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.WAITING)
    sms_due_at = models.DateTimeField()
    sms_sent_at = models.DateTimeField(null=True, blank=True)
    sms_ref = models.CharField(max_length=100, blank=True)
    sms_attempts = models.PositiveSmallIntegerField(default=0)
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text=_("Its SMS is being sent: claimed until then.")
    )
    resent_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the phone says it applied the code offline.")
    )

    class Meta:
        ordering = ("device", "-count")
        constraints = [
            models.UniqueConstraint(fields=["device", "count"], name="offline_token_count_once"),
            models.CheckConstraint(
                condition=Q(kind="disable_payg", value__isnull=True)
                | Q(kind="set_time", value__isnull=False, value__lte=995),
                name="offline_token_value_by_kind",
            ),
        ]
        indexes = [
            models.Index(
                fields=["sms_due_at", "id"],
                condition=Q(delivery="waiting"),
                name="offline_token_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"code #{self.count} · {self.get_kind_display()}"
