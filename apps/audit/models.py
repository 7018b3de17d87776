from typing import ClassVar

import pgtrigger
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel

GENESIS_HASH = "0" * 64


class AuditChain(BaseModel):
    """The head of one hash chain: one per lender, plus the platform chain (lender NULL).

    Appending locks this row, so concurrent writers on one lender queue here and
    can never fork the chain (tests/audit/test_races_chain.py).
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey(
        "lenders.Lender", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [
            # NULLS NOT DISTINCT: exactly one platform chain too.
            models.UniqueConstraint(
                fields=["lender"], nulls_distinct=False, name="audit_one_chain_per_lender"
            ),
            models.CheckConstraint(
                condition=models.Q(last_seq__gte=0), name="audit_chain_seq_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"chain {self.lender_id or 'platform'} @ {self.last_seq}"


class AuditEvent(BaseModel):
    """Who did what to which object, when and why. Append-only, hash-chained.

    The database refuses UPDATE, DELETE and TRUNCATE on this table
    (tests/audit/test_models_append_only.py); ``verify_audit`` proves the chain.
    """

    lender_path: ClassVar[str] = "lender"

    class ActorType(models.TextChoices):
        AGENT = "agent", _("Back-office agent")
        CLERK = "clerk", _("Shop clerk")
        CUSTOMER = "customer", _("Customer")
        DEVICE = "device", _("Device")
        SYSTEM = "system", _("System")

    # Indexes are what every append pays for: only those a query needs, none twice
    # ((chain, seq) serves the chain, (lender, occurred_at) the lender and the time).
    created_at = models.DateTimeField(auto_now_add=True)
    chain = models.ForeignKey(
        AuditChain, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    seq = models.BigIntegerField()
    # The chain's lender, for scoping queries: the chain's foreign key already guarantees
    # it exists and verify_audit checks it matches, so no second check on each event.
    lender = models.ForeignKey(
        "lenders.Lender",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    occurred_at = models.DateTimeField()
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model")
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    # Text, not inet: the hash covers exactly these characters, and PostgreSQL's
    # inet output would re-spell some IPv6 forms (tests/audit/test_services_chain.py).
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # how ``hash`` is computed (apps/audit/hashing.py): 1 for events appended before format 2
    format = models.PositiveSmallIntegerField(db_default=2)

    class Meta:
        ordering = ("chain", "seq")
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_event_chain_seq_unique"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_event_seq_gte_1"),
        ]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_event_target_idx"),
            models.Index(fields=["lender", "occurred_at"], name="audit_event_lender_time_idx"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="audit_event_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
            pgtrigger.Trigger(
                name="audit_event_no_truncate",
                when=pgtrigger.Before,
                operation=pgtrigger.Truncate,
                level=pgtrigger.Statement,
                func="RAISE EXCEPTION 'audit events are append-only: TRUNCATE refused'; RETURN NULL;",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.seq}"
