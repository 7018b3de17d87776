from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.sql import select_rows
from apps.core.tenancy import scope_to_lender
from apps.devices.errors import DeviceNotFound, DeviceNotPending
from apps.devices.models import BOUND, Device, DeviceEvent, DeviceState, LenderKey, OfflineToken
from apps.devices.offline import pin_for, pin_secret, token_digits, token_secret
from apps.devices.sql import (
    DEVICE_IDS_ENROLLED_FOR_LOANS,
    DEVICE_STATE_FOR_LENDER,
    OFFLINE_CODE_WAITING,
)
from apps.lenders.models import Lender


@dataclass(frozen=True, slots=True)
class PhoneSync:
    """Where a loan's phone stands: what it should do and whether it has done it."""

    brand: str
    model_name: str
    status: str
    level: str  # of the newest desired state ("normal" before any)
    applied: bool  # the phone acknowledged the newest desired state


def phone_sync_for_loan(*, loan_id: int, lender_id: int) -> PhoneSync | None:
    """The loan's newest phone and whether it applied what it should, or None."""
    device = (
        Device.objects.filter(loan_id=loan_id, lender_id=lender_id)
        .order_by("-created_at")
        .annotate(level=Subquery(_desired_state().values("level")[:1]))
        .first()
    )
    if device is None:
        return None
    return PhoneSync(
        brand=device.brand,
        model_name=device.model_name,
        status=device.status,
        level=device.level or "normal",
        applied=device.acked_version >= device.desired_version,
    )


def device_imei_in_use(*, imei: str) -> bool:
    """Whether the phone is the collateral of a loan that is not closed."""
    return Device.objects.filter(imei=imei, status__in=BOUND).exists()


def lender_key_version_current(*, lender_id: int) -> int:
    """The version of the lender's state-signing key that new phones get (1 until a rotation)."""
    latest = LenderKey.objects.filter(lender_id=lender_id).aggregate(v=Max("version"))["v"]
    return latest or 1


def _desired_state(**filters: object) -> QuerySet[DeviceState]:
    """The outer device's desired state row (the version it should be on); (device, version)
    is unique, so no ordering, which would otherwise join the device table again."""
    return DeviceState.objects.filter(
        device_id=OuterRef("pk"), version=OuterRef("desired_version"), **filters
    ).order_by()


def device_list_with_sync_lag(
    queryset: QuerySet[Device], *, as_of: datetime | None = None
) -> QuerySet[Device]:
    """``queryset`` with its loan and lender joined and ``sync_lag`` annotated in SQL, so
    lists can sort on it: how long the phone has been behind, i.e. ``as_of`` (default:
    now) minus the time its desired state (version ``desired_version``) was written,
    while its acked version is older than that; NULL when the phone is in sync.
    """
    issued_at = Subquery(_desired_state().values("created_at")[:1])
    behind_for = ExpressionWrapper(
        Value(as_of or timezone.now(), output_field=DateTimeField()) - issued_at,
        output_field=DurationField(),
    )
    return queryset.select_related("loan", "lender").annotate(
        sync_lag=Case(
            When(acked_version__lt=F("desired_version"), then=behind_for),
            default=None,
            output_field=DurationField(),
        )
    )


def device_list_out_of_sync(
    queryset: QuerySet[Device], *, longer_than: timedelta, as_of: datetime | None = None
) -> QuerySet[Device]:
    """Phones of ``queryset`` whose acked version is older than their desired one, and whose
    desired state was written more than ``longer_than`` before ``as_of`` (default: now)."""
    cutoff = (as_of or timezone.now()) - longer_than
    return queryset.filter(
        Exists(_desired_state(created_at__lt=cutoff)), acked_version__lt=F("desired_version")
    )


def device_state_current(*, device: Device) -> DeviceState | None:
    """The state the phone should be on (version ``desired_version``), or None before the first."""
    return DeviceState.objects.filter(device_id=device.pk, version=device.desired_version).first()


def device_ids_enrolled_for_loans(*, loan_ids: Iterable[int]) -> dict[int, int]:
    """loan id -> the id of its enrolled phone, for the loans that have one."""
    # one array parameter: a sweep asks for thousands of loans at once
    with connection.cursor() as cursor:
        cursor.execute(DEVICE_IDS_ENROLLED_FOR_LOANS, [list(loan_ids), Device.Status.ENROLLED])
        return dict(cursor.fetchall())


def device_ids_to_release(*, loan_ids: Iterable[int]) -> list[int]:
    """The enrolled phones of these loans not yet told they are released."""
    told = DeviceState.objects.filter(
        device_id=OuterRef("pk"), version=OuterRef("desired_version"), level="released"
    )
    return list(
        Device.objects.filter(loan_id__in=list(loan_ids), status=Device.Status.ENROLLED)
        .exclude(Exists(told))
        .values_list("pk", flat=True)
    )


def device_ids_pushable_for_loans(*, loan_ids: Iterable[int]) -> dict[int, int]:
    """loan id -> its enrolled phone, for phones with a live push address."""
    return dict(
        Device.objects.filter(
            loan_id__in=list(loan_ids),
            status=Device.Status.ENROLLED,
            fcm_token_dead_at__isnull=True,
        )
        .exclude(fcm_token="")
        .values_list("loan_id", "pk")
    )


def loan_ids_out_of_sync(*, longer_than: timedelta) -> QuerySet[Device, Mapping[str, object]]:
    """The loan ids of enrolled phones behind their desired state for longer than
    ``longer_than`` (a subquery: ``loan__in=``)."""
    behind = device_list_out_of_sync(
        Device.objects.filter(status=Device.Status.ENROLLED), longer_than=longer_than
    )
    return behind.values("loan_id")


def loan_ids_with_event_since(
    *, kind: str, since: datetime
) -> QuerySet[DeviceEvent, Mapping[str, object]]:
    """The loan ids of phones that reported ``kind`` (e.g. a SIM change) since ``since``."""
    return DeviceEvent.objects.filter(kind=kind, occurred_at__gte=since).values("device__loan_id")


def device_list_for_loan(*, loan_id: int, lender_id: int) -> QuerySet[Device]:
    return Device.objects.filter(loan_id=loan_id, lender_id=lender_id).order_by("created_at")


def device_state_list(*, device: Device) -> QuerySet[DeviceState]:
    return DeviceState.objects.filter(device=device).order_by("version")


def offline_codes_current(codes: QuerySet[OfflineToken]) -> QuerySet[OfflineToken]:
    """Those of ``codes`` that still give what the books do: the newest code of an enrolled
    phone, with no state of another level written since the state it stands for. A state
    re-issued with the same level (a renewed lease, a new key) leaves a code current; a
    reversal's or a sweep's new level makes it stale."""
    level_then = DeviceState.objects.filter(
        device_id=OuterRef(OuterRef("device_id")), version=OuterRef(OuterRef("state_version"))
    ).values("level")[:1]
    changed = DeviceState.objects.filter(
        device_id=OuterRef("device_id"), version__gt=OuterRef("state_version")
    ).exclude(level=Subquery(level_then))
    newer = OfflineToken.objects.filter(
        device_id=OuterRef("device_id"), count__gt=OuterRef("count")
    )
    return (
        codes.filter(device__status=Device.Status.ENROLLED)
        .exclude(Exists(newer))
        .exclude(Exists(changed))
    )


def offline_code_waiting_for_loan(*, loan_id: int, lender_id: int) -> OfflineToken | None:
    """The unlock code the loan's phone still needs: its current code
    (``offline_codes_current``) while the phone has not acknowledged the state it stands for.
    None once the phone took its state, or a state of another level was written since.
    In SQL written once (``OFFLINE_CODE_WAITING``): it runs after every payment."""
    found = select_rows(OfflineToken, OFFLINE_CODE_WAITING, {"loan": loan_id, "lender": lender_id})
    return found[0] if found else None


def offline_code_list_for_loan(*, loan_id: int, lender_id: int) -> QuerySet[OfflineToken]:
    """Every unlock code issued to the loan's phones, newest first."""
    return OfflineToken.objects.filter(lender_id=lender_id, device__loan_id=loan_id).order_by(
        "-created_at", "-count"
    )


def offline_code_digits(*, code: OfflineToken) -> str:
    """The code's digits, made again from its phone's secret (never stored)."""
    slug = Lender.objects.values_list("slug", flat=True).get(pk=code.lender_id)
    return token_digits(
        secret=token_secret(lender_slug=slug, device_id=code.device_id),
        count=code.count,
        kind=code.kind,
        value=code.value,
    )


def support_pin_compute(*, device_id: int, lender_id: int, challenge: str) -> str:
    """The PIN that answers the lock-screen ``challenge`` of the lender's phone ``device_id``
    (the caller checked who may have it and recorded that it was given)."""
    slug = Lender.objects.values_list("slug", flat=True).get(pk=lender_id)
    return pin_for(pin_secret(lender_slug=slug, device_id=device_id), challenge)


# --- The lender API (/api/lender/v1/): a lender's own phones, through the tenancy scope ----
# what a lender's system sees of a phone's reports
REPORTED_EVENTS = (DeviceEvent.Kind.SIM_CHANGED, DeviceEvent.Kind.TAMPER_SUSPECTED)


def device_list_for_lender(*, lender_id: int, loan_id: int | None = None) -> QuerySet[Device]:
    """``lender_id``'s phones, newest first, with ``level`` (of the desired state) and
    ``sync_lag`` (``device_list_with_sync_lag``) annotated."""
    devices = device_list_with_sync_lag(scope_to_lender(Device.objects.all(), lender_id))
    # the phone's own columns only: a lender's system reads the loan through the loans
    devices = devices.select_related(None).annotate(
        level=Subquery(_desired_state().values("level")[:1])
    )
    if loan_id is not None:
        devices = devices.filter(loan_id=loan_id)
    return devices.order_by("-id")


def device_get_for_lender(*, lender_id: int, device_id: int) -> Device:
    """One of ``lender_id``'s phones; DeviceNotFound for another lender's, exactly as for one
    that does not exist."""
    found = list(device_list_for_lender(lender_id=lender_id).filter(pk=device_id).order_by()[:1])
    if not found:
        raise DeviceNotFound(device_id=device_id)
    return found[0]


@dataclass(frozen=True)
class DeviceStateRead:
    """A phone's state as ``DEVICE_STATE_FOR_LENDER`` reads it: the columns by name, the
    reported events as (kind, occurred_at), newest first."""

    id: int
    loan_id: int
    imei: str
    status: str
    level: str | None
    desired_version: int
    acked_version: int
    acked_at: datetime | None
    sync_lag: timedelta | None
    last_seen_at: datetime | None
    lease_until: datetime | None
    events: list[tuple[str, datetime]]


def device_state_for_lender(*, lender_id: int, device_id: int, limit: int = 20) -> DeviceStateRead:
    """Phone ``device_id`` of ``lender_id`` with its desired level, sync lag and newest
    reported events (``REPORTED_EVENTS``) in one statement (``DEVICE_STATE_FOR_LENDER``):
    what ``device_get_for_lender`` and ``device_event_list_reported`` read, on the lender
    API's hot path. DeviceNotFound for another lender's, exactly as for one that does not
    exist."""
    params: dict[str, Any] = {
        "device": device_id,
        "lender": lender_id,
        "now": timezone.now(),
        "kinds": [str(kind) for kind in REPORTED_EVENTS],
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(DEVICE_STATE_FOR_LENDER, params)
        row = cursor.fetchone()
    if row is None:
        raise DeviceNotFound(device_id=device_id)
    kinds, times = row[-2:]
    events = list(zip(kinds or (), times or (), strict=True))
    return DeviceStateRead(*row[:-2], events=events)  # type: ignore[misc]  # the columns in order


def device_event_list_reported(*, device: Device, limit: int = 20) -> list[DeviceEvent]:
    """The phone's newest SIM-change and tamper reports, newest first."""
    return list(
        DeviceEvent.objects.filter(device_id=device.pk, kind__in=REPORTED_EVENTS).order_by(
            "-occurred_at"
        )[:limit]
    )


def device_waiting_for_loan(*, lender_id: int, loan_id: int) -> Device:
    """The loan's newest phone still waiting to enrol; DeviceNotPending when it has none (an
    enrolled or released one needs no code)."""
    device = (
        scope_to_lender(Device.objects.all(), lender_id)
        .filter(loan_id=loan_id, status=Device.Status.PENDING)
        .order_by("-id")
        .first()
    )
    if device is None:
        raise DeviceNotPending(loan_id=loan_id)
    return device


def device_list_with_applied_level(*, limit: int) -> QuerySet[Device]:
    """Every phone with ``applied_level``, the level of the newest state it acknowledged
    (None before any), and its loan's customer: unscoped, for the demo's front door only."""
    applied = DeviceState.objects.filter(
        device_id=OuterRef("pk"), version__lte=OuterRef("acked_version")
    ).order_by("-version")
    return (
        Device.objects.select_related("loan__customer")
        .annotate(applied_level=Subquery(applied.values("level")[:1]))
        .order_by("lender_id", "id")[:limit]
    )


def device_state_of_outer_loan() -> QuerySet[Any]:
    """A subquery for a list of loans (``OuterRef("pk")`` is the loan): the loan's phone, the
    one bound to it (sold or enrolled) before a released one, annotated with its real
    ``state`` (``not_enrolled`` for a phone sold but never enrolled, which no restriction
    reaches; ``released``; else the level of the state it acknowledged) and ``behind`` (it
    has yet to apply its newest state). Take ``values("state")[:1]``."""
    acked_level = DeviceState.objects.filter(
        device=OuterRef("pk"), version=OuterRef("acked_version")
    ).values("level")[:1]
    return (
        Device.objects.filter(loan=OuterRef("pk"))
        .order_by(
            Case(When(status=Device.Status.RELEASED, then=Value(1)), default=Value(0)),
            "-created_at",
        )
        .annotate(
            state=Case(
                When(status=Device.Status.PENDING, then=Value("not_enrolled")),
                When(status=Device.Status.RELEASED, then=Value("released")),
                default=Coalesce(Subquery(acked_level), Value("normal")),
            ),
            behind=ExpressionWrapper(
                Q(status=Device.Status.ENROLLED, acked_version__lt=F("desired_version")),
                output_field=BooleanField(),
            ),
        )
    )
