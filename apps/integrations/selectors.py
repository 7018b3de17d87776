"""Reads of the integrations: a lender's accounts with payment and messaging providers, its
webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import QuerySet
from psycopg.sql import Composed

from apps.core.errors import NotFound
from apps.core.sql import select_rows
from apps.integrations.models import ProviderAccount, WebhookDelivery, WebhookEndpoint
from apps.integrations.payments.credentials import CredentialsUnreadable, unseal
from apps.integrations.sql import (
    PROVIDER_ACCOUNT_BY_LENDER_SLUG,
    PROVIDER_ACCOUNT_GET,
    PROVIDER_ACCOUNT_IN_USE,
)


def provider_account_get(*, lender_id: int, provider: str) -> ProviderAccount | None:
    return _account(PROVIDER_ACCOUNT_GET, lender_id=lender_id, provider=provider)


def provider_account_by_slug(*, lender_slug: str, provider: str) -> ProviderAccount | None:
    """The account with ``provider`` of the lender ``lender_slug``, with its lender (what a
    callback to the lender's address needs, in one query)."""
    return (
        ProviderAccount.objects.filter(lender__slug=lender_slug, provider=provider)
        .select_related("lender")
        .first()
    )


def provider_account_for_lender_slug(*, lender_slug: str, provider: str) -> ProviderAccount | None:
    """The account with ``provider`` of the lender ``lender_slug`` names, in or out of use."""
    found = select_rows(ProviderAccount, PROVIDER_ACCOUNT_BY_LENDER_SLUG, [lender_slug, provider])
    return found[0] if found else None


def provider_account_secrets(*, lender_id: int, provider: str) -> dict[str, str]:
    """The opened secrets of the lender's account with ``provider`` ({} if none), for the
    provider's client only: never to a page, a log or the audit trail."""
    account = provider_account_get(lender_id=lender_id, provider=provider)
    return unseal(account.sealed_secrets) if account else {}


def provider_account_readable(account: ProviderAccount) -> bool:
    """Whether a configured key still opens the account's sealed secrets."""
    try:
        unseal(account.sealed_secrets)
    except CredentialsUnreadable:
        return False
    return True


def provider_account_in_use(*, lender_id: int, provider: str) -> ProviderAccount | None:
    """The lender's account with ``provider`` if it is in use."""
    return _account(PROVIDER_ACCOUNT_IN_USE, lender_id=lender_id, provider=provider)


def _account(statement: Composed, *, lender_id: int, provider: str) -> ProviderAccount | None:
    """In SQL written once (apps/integrations/sql.py): read on every provider callback."""
    found = select_rows(ProviderAccount, statement, [lender_id, provider])
    return found[0] if found else None


def providers_in_use(*, lender_id: int, providers: tuple[str, ...]) -> set[str]:
    """Which of ``providers`` the lender has an account in use with."""
    return set(
        ProviderAccount.objects.filter(
            lender_id=lender_id, enabled=True, provider__in=providers
        ).values_list("provider", flat=True)
    )


def provider_account_in_use_among(
    *, lender_id: int, providers: tuple[str, ...]
) -> ProviderAccount | None:
    """The lender's account in use with one of ``providers`` (one at most per channel: the
    first by provider otherwise), its lender joined."""
    return (
        ProviderAccount.objects.filter(lender_id=lender_id, enabled=True, provider__in=providers)
        .select_related("lender")
        .order_by("provider")
        .first()
    )


def webhook_endpoint_list(*, lender_id: int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(lender_id=lender_id).order_by("id")


def webhook_endpoint_get(*, lender_id: int, endpoint_id: int) -> WebhookEndpoint:
    """The lender's endpoint, or ``NotFound`` (another lender's looks like none at all)."""
    endpoint = webhook_endpoint_list(lender_id=lender_id).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(endpoint_id=endpoint_id)
    return endpoint


def webhook_delivery_list(
    *, lender_id: int, endpoint_id: int | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The lender's deliveries, newest first (of one endpoint, in one status, if given)."""
    deliveries = WebhookDelivery.objects.filter(lender_id=lender_id)
    if endpoint_id is not None:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if status is not None:
        deliveries = deliveries.filter(status=status)
    return deliveries.select_related("endpoint").order_by("-id")
