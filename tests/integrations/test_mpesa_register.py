"""Registering a lender's paybill addresses with M-Pesa: by command, by the back office's
action, and the addresses shown on the provider account's page."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.signing import path_token_for
from apps.lenders.models import Membership
from tests.collections.daraja import SHORTCODE, paybill_for

pytestmark = pytest.mark.django_db


def test_the_command_registers_the_lenders_secret_c2b_paths_with_m_pesa(
    lender_a, daraja, capsys
) -> None:
    paybill_for(lender_a)
    call_command("payments_mpesa_register_urls", lender_a.slug)
    confirmation, validation = daraja.c2b_urls[SHORTCODE]
    token = path_token_for(lender_slug=lender_a.slug, provider="mpesa")
    assert confirmation.endswith(f"/daraja/{lender_a.slug}/{token}/c2b-confirmation/")
    assert validation.endswith(f"/daraja/{lender_a.slug}/{token}/c2b-validation/")
    assert token not in capsys.readouterr().out  # the token stays off the terminal
    event = AuditEvent.objects.get(action="integrations.provider_account.callbacks_registered")
    assert token not in str(event.data)


def test_the_command_says_why_when_there_is_no_paybill(lender_a, daraja) -> None:
    with pytest.raises(CommandError, match="provider_not_configured"):
        call_command("payments_mpesa_register_urls", lender_a.slug)
    assert daraja.c2b_urls == {}


def test_the_lenders_admin_sees_the_addresses_and_registers_them(
    lender_a, daraja, make_agent, verified_client
) -> None:
    paybill_for(lender_a)
    account = ProviderAccount.objects.get(lender=lender_a, provider="mpesa")
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    page = client.get(
        reverse("admin:integrations_provideraccount_change", args=[account.pk])
    ).content.decode()
    token = path_token_for(lender_slug=lender_a.slug, provider="mpesa")
    assert f"/daraja/{lender_a.slug}/{token}/c2b-confirmation/" in page
    answer = client.post(
        reverse("admin:integrations_provideraccount_changelist"),
        {"action": "register_mpesa_callbacks", "_selected_action": [account.pk]},
        follow=True,
    )
    assert "now sends" in answer.content.decode()
    assert SHORTCODE in daraja.c2b_urls
