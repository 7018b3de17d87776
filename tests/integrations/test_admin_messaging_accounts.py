"""The SMS provider accounts in the back office: the lender's admin sets up Africa's Talking
or Twilio, secrets are typed in and never shown back, the addresses to give the provider are
shown, and a second SMS provider in use is refused with the reason."""

import pytest
from django.urls import reverse

from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import provider_account_secrets
from apps.lenders.models import Membership
from tests.integrations.messaging import (
    AT_API_KEY,
    AT_SENDER_ID,
    AT_USERNAME,
    TWILIO_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    africastalking_for,
)

pytestmark = pytest.mark.django_db

BLANK = dict.fromkeys(
    (
        "shortcode",
        "environment",
        "consumer_key",
        "consumer_secret",
        "passkey",
        "secret_key",
        "webhook_secret",
        "username",
        "sender_id",
        "api_key",
        "account_sid",
        "from_number",
        "messaging_service_sid",
        "auth_token",
    ),
    "",
)


PROVIDER_SETTINGS = {
    "africastalking": {"username": AT_USERNAME, "sender_id": AT_SENDER_ID},
    "twilio": {"account_sid": TWILIO_SID, "from_number": TWILIO_NUMBER},
}


def form(lender, provider, **values):
    return {
        **BLANK,
        "lender": lender.pk,
        "provider": provider,
        **PROVIDER_SETTINGS[provider],
        **values,
    }


@pytest.fixture
def lender_admin(lender_a, make_agent, verified_client):
    return verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))


def set_up(client, lender, provider, **values) -> tuple[ProviderAccount, str]:
    """The lender's admin turns ``provider`` on with ``values``: the account, and its page
    as the admin sees it then."""
    created = client.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender, provider, enabled="on", **values),
    )
    assert created.status_code == 302, created.content[:2000]
    account = ProviderAccount.objects.get(lender=lender, provider=provider)
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    return account, client.get(change).content.decode()


def shows_addresses(page: str, lender, provider: str, routes: tuple[str, ...]) -> bool:
    return all(
        messaging_callback_url(provider=provider, lender_slug=lender.slug, route=route) in page
        for route in routes
    )


def test_the_lenders_admin_sets_up_africastalking_and_never_sees_the_key_again(
    lender_a, lender_admin
) -> None:
    account, page = set_up(lender_admin, lender_a, "africastalking", api_key=AT_API_KEY)
    assert account.enabled
    assert AT_API_KEY not in page
    assert "api_key" in page  # which secret is set, not what
    assert shows_addresses(page, lender_a, "africastalking", ("delivery", "inbound", "optout"))
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    # saved again with the key blank: the stored key is kept
    kept = lender_admin.post(change, form(lender_a, "africastalking", enabled="on", sender_id=""))
    assert kept.status_code == 302
    account.refresh_from_db()
    assert account.settings == {"username": AT_USERNAME}
    assert provider_account_secrets(lender_id=lender_a.pk, provider="africastalking") == {
        "api_key": AT_API_KEY
    }


def test_the_lenders_admin_sets_up_twilio_and_sees_where_twilio_calls(
    lender_a, lender_admin
) -> None:
    account, page = set_up(lender_admin, lender_a, "twilio", auth_token=TWILIO_TOKEN)
    assert account.enabled
    assert TWILIO_TOKEN not in page
    assert "auth_token" in page
    assert shows_addresses(page, lender_a, "twilio", ("delivery", "inbound"))
    assert "A message comes in" in page


def test_a_bad_value_is_shown_beside_its_field_and_nothing_is_saved(lender_a, lender_admin) -> None:
    page = lender_admin.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender_a, "twilio", enabled="on", from_number="0712345678", auth_token="x"),
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "The sending number in international format" in text
    assert "The account&#x27;s auth token: 32 hexadecimal digits." in text
    assert not ProviderAccount.objects.exists()


def test_a_second_sms_provider_in_use_is_refused_with_the_reason(lender_a, lender_admin) -> None:
    africastalking_for(lender_a)
    page = lender_admin.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender_a, "twilio", enabled="on", auth_token=TWILIO_TOKEN),
    )
    assert page.status_code == 200
    assert "already sends this lender&#x27;s messages: turn it off first" in page.content.decode()
    assert not ProviderAccount.objects.filter(provider="twilio").exists()
    # set up without turning it on: saved
    saved = lender_admin.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender_a, "twilio", auth_token=TWILIO_TOKEN),
    )
    assert saved.status_code == 302
