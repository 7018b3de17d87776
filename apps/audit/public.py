"""The lender's public events: a projection of its audit chain.

Every change a lender's systems may follow is already on the lender's chain, written in the
transaction of the change, in order. This module says which audit actions a lender sees, under
which public type (``loan.signed``, ``payment.applied``, ...), and which few fields of the
event's data go with it: ids, amounts, the fields that changed, never a person's data. The
events feed reads them with ``public_event_list``; the webhooks project the same rows into
their deliveries (``apps.integrations.services.webhooks``), so the feed and the webhooks carry the
same events, each once, in chain order (``apps.audit.selectors.public_event_list``).

The actions are named here by their strings, as each app's ``events.py`` defines them: the
apps that own them sit above this one (``tests/audit/test_public.py`` checks each still
exists).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

# how far one read may look along the chain for public events: bounds the work of a page
# however few of the chain's events are public (the cursor moves on past the rest)
SCAN_WINDOW = 10_000


@dataclass(frozen=True, slots=True)
class Projection:
    """Audit ``action`` seen by the lender as ``type``.

    ``subject``: what the event's target is, ``loan`` or ``device`` (a device's events name
    their loan in their data, ``loan_id``). ``fields``: public name -> path in the event's
    data (absent values are left out). ``when``: (path, values): only events whose data has
    one of ``values`` there ("" for absent)."""

    action: str
    type: str
    subject: str = "loan"
    fields: dict[str, tuple[str, ...]] | None = None
    when: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "type": self.type,
            "subject": self.subject,
            "fields": {k: list(v) for k, v in (self.fields or {}).items()},
            "when_path": list(self.when[0]) if self.when else None,
            "when_in": list(self.when[1]) if self.when else None,
        }


def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {n: (n,) for n in names}


def _new(*names: str) -> dict[str, tuple[str, ...]]:
    return {n: ("new", n) for n in names}


PROJECTIONS: tuple[Projection, ...] = (
    Projection(
        "collections.loan.signed",
        "loan.signed",
        fields=_new(
            "external_id",
            "reference",
            "customer_id",
            "product_id",
            "currency",
            "financed",
            "installments",
            "first_due",
        ),
    ),
    Projection(
        "devices.device.enrolled",
        "device.enrolled",
        subject="device",
        fields=_same("agent_version", "android_version"),
    ),
    Projection(
        "collections.loan.stage_changed",
        "loan.stage_changed",
        fields=_same("stage", "days_overdue", "cause", "paused", "device_id"),
    ),
    # the phone applied a new state (a lock, an unlock, a reminder) ...
    Projection(
        "devices.state.acknowledged",
        "device.state_applied",
        subject="device",
        fields={"version": ("version", "new"), "level": ("level",)},
        when=(("status", "new"), ("",)),
    ),
    # ... and the state it applied was the release: the phone is free for good
    Projection(
        "devices.state.acknowledged",
        "device.released",
        subject="device",
        fields={"version": ("version", "new")},
        when=(("status", "new"), ("released",)),
    ),
    Projection(
        "devices.device.out_of_sync",
        "device.out_of_sync",
        subject="device",
        fields=_same("desired_version", "acked_version", "behind_since"),
    ),
    Projection("devices.device.sim_changed", "device.sim_changed", subject="device"),
    Projection(
        "devices.device.event_reported",
        "device.tamper_suspected",
        subject="device",
        fields=_same("event_id", "occurred_at"),
        when=(("kind",), ("tamper_suspected",)),
    ),
    Projection(
        "collections.payment.received",
        "payment.applied",
        fields=_same("payment_id", "amount", "currency", "channel", "provider_ref", "received_at"),
    ),
    Projection(
        "collections.payment.reversed",
        "payment.reversed",
        fields=_same("reversal_id", "kind", "amount", "payment_provider_ref"),
    ),
    Projection("collections.loan.paid_off", "loan.paid_off"),
    Projection(
        "collections.pause.decided", "pause.decided", fields=_same("pause_id", "kind", "status")
    ),
)

PUBLIC_TYPES: tuple[str, ...] = tuple(dict.fromkeys(p.type for p in PROJECTIONS))
PUBLIC_ACTIONS: frozenset[str] = frozenset(p.action for p in PROJECTIONS)


@cache
def projection_spec() -> str:
    """``PROJECTIONS`` as the JSON the SQL reads (``%(pub_spec)s``)."""
    return json.dumps([p.as_json() for p in PROJECTIONS])


@dataclass(frozen=True, slots=True)
class PublicEvent:
    id: str
    seq: int
    type: str
    occurred_at: datetime
    loan_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PublicEventPage:
    """Events after a cursor, and the cursor to ask from next (past every event read, public
    or not: a feed never reads the same stretch of chain twice)."""

    events: list[PublicEvent]
    cursor: int


def public_events_params(
    *, chain_id: int, after: int, upto: int, limit: int, types: Sequence[str] | None = None
) -> dict[str, Any]:
    """The parameters of ``PUBLIC_EVENTS`` (also for statements that compose it)."""
    return {
        "pub_spec": projection_spec(),
        "pub_chain": chain_id,
        "pub_after": after,
        "pub_upto": upto,
        "pub_limit": limit,
        "pub_types": list(types) if types else None,
    }
