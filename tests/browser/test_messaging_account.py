"""The demo's Africa's Talking account in the back office, in headless Chromium: what the
lender's admin typed (the username and shortcode shown, the API key never) and the addresses
to paste into Africa's Talking's dashboard; saving with the key left blank keeps it."""

import pytest
from django.core.management import call_command

from apps.demo import providers
from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.lenders.models import Lender, Membership
from tests.browser.conftest import admin_log_in, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demo_lenders_sms_account_shows_the_addresses_africas_talking_calls(
    live_server, page, make_agent, settings
) -> None:
    settings.PAYMENTS_CALLBACK_BASE_URL = "https://pay.example.com"  # a deployment's address
    call_command("seed_demo")
    kenya = Lender.objects.get(slug=providers.AFRICASTALKING_LENDER)
    account = ProviderAccount.objects.get(lender=kenya, provider="africastalking")
    admin = make_agent(kenya, role=Membership.Role.LENDER_ADMIN, username="wanjiru")
    page.set_viewport_size({"width": 1280, "height": 900})
    url = f"{live_server.url}/admin/integrations/provideraccount/{account.pk}/change/"
    admin_log_in(page, url, admin)

    shown = page.inner_text(".field-callback_addresses")
    for route in ("delivery", "inbound", "optout"):
        address = messaging_callback_url(
            provider="africastalking", lender_slug=kenya.slug, route=route
        )
        assert address.startswith("https://pay.example.com/api/messaging/v1/africastalking/")
        assert address in shown
    assert page.input_value("#id_username") == providers.AFRICASTALKING_USERNAME
    assert page.input_value("#id_sender_id") == providers.AFRICASTALKING_SHORTCODE
    assert page.input_value("#id_api_key") == ""  # write-only
    assert providers.AFRICASTALKING_API_KEY not in page.content()
    assert page.inner_text(".field-secrets_set").endswith("api_key")
    save_screenshot(page, "backoffice-messaging-account")

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    account.refresh_from_db()
    assert unseal(account.sealed_secrets) == {"api_key": providers.AFRICASTALKING_API_KEY}
