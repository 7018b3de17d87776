"""What the front door shows: the lenders a customer chooses from and, in the demo, its
logins and phones. Reads only; the front door is public, so nothing secret leaves here
(passwords and login codes are printed once in the demo's terminal, never stored readable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext

from apps.customers.models import Customer
from apps.customers.selectors import customer_list_all
from apps.devices.models import DeviceState
from apps.devices.selectors import device_list_with_applied_level
from apps.lenders.models import Lender
from apps.lenders.selectors import membership_list_all
from apps.retailers.models import Clerk

DEMO_ROWS = 20  # the demo has a handful of each; a bound all the same


def lender_list_for_chooser() -> QuerySet[Lender]:
    """The lenders whose customers' pages the front door offers, by name."""
    return Lender.objects.order_by("name", "id")


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    role: str
    where: str


def demo_login_list() -> list[DemoLogin]:
    """The demo's back-office and counter logins: the operator, each lender's people, the
    clerks."""
    operators = get_user_model().objects.filter(is_superuser=True).order_by("username")
    logins = [
        DemoLogin(u.username, gettext("Platform operator"), "") for u in operators[:DEMO_ROWS]
    ]
    logins += [
        DemoLogin(m.user.username, str(m.get_role_display()), m.lender.name)
        for m in membership_list_all(limit=DEMO_ROWS)
    ]
    clerks = Clerk.objects.select_related("user", "shop").order_by("user__username")
    clerk = gettext("Shop clerk")
    logins += [DemoLogin(c.user.username, clerk, c.shop.name) for c in clerks[:DEMO_ROWS]]
    return logins


def demo_customer_list() -> QuerySet[Customer]:
    """The demo's customers, who log in on their lender's page with a texted code."""
    return customer_list_all(limit=DEMO_ROWS)


@dataclass(frozen=True, slots=True)
class DemoPhone:
    customer: str
    brand: str
    model_name: str
    status: str
    level: str  # of the state the phone acknowledged last (no restriction before any)
    in_sync: bool
    last_seen_at: datetime | None


def demo_phone_list() -> list[DemoPhone]:
    """The demo's phones as they are now: the state each one applied and whether it has
    caught up with what it should do."""
    return [
        DemoPhone(
            customer=device.loan.customer.full_name,
            brand=device.brand,
            model_name=device.model_name,
            status=device.get_status_display(),
            level=str(DeviceState.Level(getattr(device, "applied_level", None) or "normal").label),
            in_sync=device.acked_version >= device.desired_version,
            last_seen_at=device.last_seen_at,
        )
        for device in device_list_with_applied_level(limit=DEMO_ROWS)
    ]
