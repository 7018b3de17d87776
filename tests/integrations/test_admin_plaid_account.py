"""The lender's Plaid account in the back office: the keys are typed in and never shown back,
and the page shows the address each Item's webhook is to be."""

import pytest
from django.urls import reverse

from apps.integrations.funds_plaid import plaid_webhook_url
from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import provider_account_secrets
from apps.lenders.models import Membership

pytestmark = pytest.mark.django_db

CLIENT_ID, SECRET = "5f3c" + "0" * 20, "a1b2" + "9" * 26


def plaid_form(lender, **values) -> dict:
    return {
        "lender": lender.pk,
        "provider": "plaid",
        "enabled": "on",
        "environment": "sandbox",
        "client_id": CLIENT_ID,
        "secret": SECRET,
        **values,
    }


@pytest.fixture
def lender_admin(lender_a, make_agent, verified_client):
    return verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))


def test_the_lenders_admin_sets_up_plaid_and_never_sees_the_keys_again(
    lender_a, lender_admin
) -> None:
    fields = plaid_form(lender_a)
    created = lender_admin.post(reverse("admin:integrations_provideraccount_add"), fields)
    assert created.status_code == 302, created.content[:2000]
    account = ProviderAccount.objects.get(lender=lender_a, provider="plaid")
    assert (account.enabled, account.settings) == (True, {"environment": "sandbox"})
    assert provider_account_secrets(lender_id=lender_a.pk, provider="plaid") == {
        "client_id": CLIENT_ID,
        "secret": SECRET,
    }
    page = lender_admin.get(
        reverse("admin:integrations_provideraccount_change", args=[account.pk])
    ).content.decode()
    assert CLIENT_ID not in page
    assert SECRET not in page
    assert plaid_webhook_url(lender_slug=lender_a.slug) in page
    assert "/api/funds/v1/plaid/lender-a/" in page


def test_a_secret_that_is_not_plaids_is_refused_beside_its_field(lender_a, lender_admin) -> None:
    fields = plaid_form(lender_a, secret="not-a-plaid-secret")
    answer = lender_admin.post(reverse("admin:integrations_provideraccount_add"), fields)
    assert answer.status_code == 200
    assert not ProviderAccount.objects.filter(provider="plaid").exists()
