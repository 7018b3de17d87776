"""The lender's WhatsApp Business account in the back office: its admin sets it up, the
secrets are typed in and never shown back, and the page shows the webhook address to
register with Meta."""

import pytest
from django.urls import reverse

from apps.integrations.admin import ProviderAccountForm
from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import provider_account_secrets
from apps.lenders.models import Membership
from tests.integrations.whatsapp import PHONE_NUMBER_ID
from tests.integrations.whatsapp import SECRETS as GOOD_SECRETS
from tests.integrations.whatsapp import SETTINGS as GOOD_SETTINGS

pytestmark = pytest.mark.django_db


def form(lender, **values):
    """The admin's form as posted: every provider's field blank but those given."""
    blank = dict.fromkeys(ProviderAccountForm.base_fields, "")
    return {**blank, "lender": lender.pk, "provider": "whatsapp", "enabled": "", **values}


@pytest.fixture
def lender_admin(lender_a, make_agent, verified_client):
    """Lender A's admin, logged in to the back office."""
    return verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))


def test_the_lenders_admin_sets_up_whatsapp_and_never_sees_a_secret_again(
    lender_a, lender_admin
) -> None:
    created = lender_admin.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender_a, enabled="on", **GOOD_SETTINGS, **GOOD_SECRETS),
    )
    assert created.status_code == 302, created.content[:2000]
    account = ProviderAccount.objects.get(lender=lender_a, provider="whatsapp")
    assert account.enabled
    assert account.settings == GOOD_SETTINGS
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    page = lender_admin.get(change).content.decode()
    for secret in GOOD_SECRETS.values():
        assert secret not in page
    assert "access_token, app_secret, verify_token" in page  # which are set, not what
    assert "/api/messaging/v1/whatsapp/lender-a/" in page  # where Meta is to post
    assert PHONE_NUMBER_ID in page  # a public setting is shown back
    kept = lender_admin.post(change, form(lender_a, enabled="on", **GOOD_SETTINGS))
    assert kept.status_code == 302
    assert provider_account_secrets(lender_id=lender_a.pk, provider="whatsapp") == GOOD_SECRETS


def test_a_bad_whatsapp_value_is_shown_beside_its_field_and_nothing_is_saved(
    lender_a, lender_admin
) -> None:
    page = lender_admin.post(
        reverse("admin:integrations_provideraccount_add"),
        form(
            lender_a,
            enabled="on",
            phone_number_id="+254700000100",
            app_secret="nope",
            access_token=GOOD_SECRETS["access_token"],
        ),
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert GOOD_SECRETS["access_token"] not in text  # a secret typed is not shown back
    assert "digits, not the number itself" in text
    assert "32 hexadecimal characters" in text
    assert "Needed before the provider is turned on." in text
    assert not ProviderAccount.objects.exists()
