"""The payment provider accounts in the back office: the lender's admin sets them up, secrets
are typed in and never shown back, and no one else sees or changes them."""

import pytest
from django.urls import reverse

from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import provider_account_secrets
from apps.lenders.models import Membership

pytestmark = pytest.mark.django_db

KEY, SECRET, PASSKEY = "abcd1234efgh5678", "ijkl9012mnop3456", "pass1234key5678word"


def form(lender, **values):
    return {
        "lender": lender.pk,
        "provider": "mpesa",
        "shortcode": "174379",
        "environment": "sandbox",
        "consumer_key": "",
        "consumer_secret": "",
        "passkey": "",
        "secret_key": "",
        "webhook_secret": "",
        **values,
    }


def test_the_lenders_admin_sets_up_mpesa_and_never_sees_a_secret_again(
    lender_a, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    add = reverse("admin:integrations_provideraccount_add")
    created = client.post(
        add,
        form(lender_a, enabled="on", consumer_key=KEY, consumer_secret=SECRET, passkey=PASSKEY),
    )
    assert created.status_code == 302, created.content[:2000]
    account = ProviderAccount.objects.get(lender=lender_a)
    assert account.enabled
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    page = client.get(change).content.decode()
    for value in (KEY, SECRET, PASSKEY):
        assert value not in page
    assert "consumer_key, consumer_secret, passkey" in page  # which are set, not what
    # saved again with the secret fields blank: each stored secret is kept
    kept = client.post(change, {**form(lender_a, enabled="on"), "shortcode": "600123"})
    assert kept.status_code == 302
    account.refresh_from_db()
    assert account.settings["shortcode"] == "600123"
    assert provider_account_secrets(lender_id=lender_a.pk, provider="mpesa") == {
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "passkey": PASSKEY,
    }


def test_a_bad_value_is_shown_beside_its_field_and_nothing_is_saved(
    lender_a, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    page = client.post(
        reverse("admin:integrations_provideraccount_add"),
        form(lender_a, shortcode="12ab", enabled="on"),
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "A paybill or till number: 5 to 7 digits." in text
    assert "Needed before the provider is turned on." in text
    assert not ProviderAccount.objects.exists()


def test_agents_cannot_and_other_lenders_see_nothing(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    admin_a = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    admin_a.post(
        reverse("admin:integrations_provideraccount_add"), form(lender_a, consumer_key=KEY)
    )
    account = ProviderAccount.objects.get()
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    agent = verified_client(make_agent(lender_a, role=Membership.Role.AGENT))
    assert agent.get(reverse("admin:integrations_provideraccount_add")).status_code == 403
    assert agent.post(change, form(lender_a, consumer_key="x" * 20)).status_code == 403
    stranger = verified_client(make_agent(lender_b, role=Membership.Role.LENDER_ADMIN))
    assert stranger.get(change).status_code == 404
    listing = stranger.get(reverse("admin:integrations_provideraccount_changelist"))
    assert "174379" not in listing.content.decode()
    assert provider_account_secrets(lender_id=lender_a.pk, provider="mpesa") == {
        "consumer_key": KEY
    }


def test_secrets_no_key_opens_any_more_are_asked_for_again_not_a_crash(
    lender_a, make_agent, verified_client, settings
) -> None:
    from cryptography.fernet import Fernet

    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    client.post(reverse("admin:integrations_provideraccount_add"), form(lender_a, passkey=PASSKEY))
    account = ProviderAccount.objects.get()
    settings.PAYMENTS_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    change = reverse("admin:integrations_provideraccount_change", args=[account.pk])
    page = client.post(change, form(lender_a, consumer_key=KEY))
    assert page.status_code == 200
    assert "type every secret of this provider again" in page.content.decode()
    mended = client.post(
        change, form(lender_a, consumer_key=KEY, consumer_secret=SECRET, passkey=PASSKEY)
    )
    assert mended.status_code == 302
