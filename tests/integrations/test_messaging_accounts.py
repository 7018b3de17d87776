"""A lender's SMS provider accounts: each provider's settings and write-only secrets checked
by field, one SMS provider in use at a time, the adapter built from the account in use (its
secrets opened only for it), and the addresses the providers call back."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.integrations.messaging.africastalking import AfricasTalkingAdapter
from apps.integrations.messaging.base import Channel, Outbound
from apps.integrations.messaging.registry import (
    messaging_adapter_for,
    messaging_callback_adapter,
    messaging_callback_url,
)
from apps.integrations.messaging.twilio_sms import TwilioSmsAdapter
from apps.integrations.messaging.whatsapp import WhatsAppAdapter
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.signing import path_token_for
from apps.integrations.services import provider_account_save
from tests.integrations.messaging import (
    AT_API_KEY,
    AT_SENDER_ID,
    PHONE,
    TWILIO_NUMBER,
    TWILIO_SERVICE,
    TWILIO_SID,
    TWILIO_TOKEN,
    africastalking_for,
    twilio_for,
)
from tests.integrations.whatsapp import whatsapp_for

pytestmark = pytest.mark.django_db


def save(lender, provider, *, enabled=False, settings=None, secrets=None):
    return provider_account_save(
        lender_id=lender.pk,
        provider=provider,
        enabled=enabled,
        settings=settings or {},
        secrets=secrets or {},
        actor=Actor.system(),
    )


def problems(lender, provider, **values) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        save(lender, provider, **values)
    return refused.value.message_dict


def test_africastalkings_values_are_checked_by_field(lender_a) -> None:
    found = problems(
        lender_a,
        "africastalking",
        settings={"username": "my app!", "sender_id": "WAYTOOLONGSENDER"},
        secrets={"api_key": "short"},
    )
    assert set(found) == {"username", "sender_id", "api_key"}
    assert "sandbox" in found["username"][0]
    assert "shortcode" in found["sender_id"][0]
    # a shortcode, a sender id with a letter, or none at all are each a sender
    for sender_id in ("22384", "SMARTCOL", ""):
        save(lender_a, "africastalking", settings={"username": "sandbox", "sender_id": sender_id})


def test_africastalking_is_turned_on_with_its_username_and_key_the_sender_id_optional(
    lender_a,
) -> None:
    assert set(problems(lender_a, "africastalking", enabled=True)) == {"username", "api_key"}
    account = save(
        lender_a,
        "africastalking",
        enabled=True,
        settings={"username": "sandbox"},
        secrets={"api_key": AT_API_KEY},
    )
    assert account.enabled


def test_twilios_values_are_checked_by_field(lender_a) -> None:
    found = problems(
        lender_a,
        "twilio",
        settings={
            "account_sid": "AC123",
            "from_number": "0712345678",
            "messaging_service_sid": "MGnothex",
        },
        secrets={"auth_token": "not-a-token"},
    )
    assert set(found) == {"account_sid", "from_number", "messaging_service_sid", "auth_token"}
    assert "AC and 32 hexadecimal" in found["account_sid"][0]
    assert "international format" in found["from_number"][0]


def test_twilio_is_turned_on_with_a_number_or_a_messaging_service(lender_a) -> None:
    found = problems(
        lender_a,
        "twilio",
        enabled=True,
        settings={"account_sid": TWILIO_SID},
        secrets={"auth_token": TWILIO_TOKEN},
    )
    assert set(found) == {"from_number", "messaging_service_sid"}
    assert "One of these" in found["from_number"][0]
    assert twilio_for(lender_a, from_number="", messaging_service_sid=TWILIO_SERVICE).enabled


def test_one_sms_provider_is_in_use_at_a_time(lender_a, lender_b) -> None:
    africastalking_for(lender_a)
    with pytest.raises(ValidationError) as refused:
        twilio_for(lender_a)
    found = refused.value.message_dict
    assert list(found) == ["enabled"]
    assert "SMS: Africa's Talking already sends this lender's messages" in found["enabled"][0]
    twilio_for(lender_a, enabled=False)  # set up, not in use: allowed
    twilio_for(lender_b)  # another lender's choice is its own
    africastalking_for(lender_a, enabled=False)
    assert twilio_for(lender_a).enabled  # switched


def test_the_database_holds_one_sms_provider_in_use_against_a_race(lender_a) -> None:
    africastalking_for(lender_a)
    twilio_for(lender_a, enabled=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderAccount.objects.filter(lender=lender_a, provider="twilio").update(enabled=True)


def test_the_audit_trail_never_holds_a_messaging_secret(lender_a) -> None:
    africastalking_for(lender_a)
    twilio_for(lender_a, enabled=False)
    events = AuditEvent.objects.filter(action="integrations.provider_account.saved")
    assert sorted(e.data["secrets_changed"][0] for e in events) == ["api_key", "auth_token"]
    trail = json.dumps(list(events.values_list("data", flat=True)))
    assert AT_API_KEY not in trail
    assert TWILIO_TOKEN not in trail
    assert AT_SENDER_ID in trail  # a public setting, old and new


def test_the_adapter_is_the_lenders_sms_provider_in_use(
    lender_a, lender_b, africastalking_fake
) -> None:
    assert messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.SMS) is None
    africastalking_for(lender_a, enabled=False)
    assert messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.SMS) is None
    africastalking_for(lender_a)
    adapter = messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.SMS)
    assert isinstance(adapter, AfricasTalkingAdapter)
    assert adapter.lender_slug == lender_a.slug
    # built with the opened secrets: Africa's Talking takes its key
    assert adapter.send(Outbound(to=PHONE, text="Hello")).provider_ref
    assert africastalking_fake.messages[0].sender_id == AT_SENDER_ID
    assert messaging_adapter_for(lender_id=lender_b.pk, channel=Channel.SMS) is None
    assert messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.WHATSAPP) is None


def test_twilios_adapter_is_built_from_its_account(lender_a, twilio_fake) -> None:
    twilio_for(lender_a)
    adapter = messaging_adapter_for(lender_id=lender_a.pk, channel="sms")
    assert isinstance(adapter, TwilioSmsAdapter)
    sent = adapter.send(Outbound(to=PHONE, text="Hola"))
    assert twilio_fake.messages[sent.provider_ref].from_ == TWILIO_NUMBER


def test_whatsapp_is_the_lenders_whatsapp_channel(lender_a) -> None:
    whatsapp_for(lender_a)
    adapter = messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.WHATSAPP)
    assert isinstance(adapter, WhatsAppAdapter)
    assert isinstance(
        messaging_callback_adapter(lender_id=lender_a.pk, provider="whatsapp"), WhatsAppAdapter
    )
    assert messaging_adapter_for(lender_id=lender_a.pk, channel=Channel.SMS) is None


def test_callbacks_are_read_for_a_provider_the_lender_has_switched_off(lender_a) -> None:
    twilio_for(lender_a)
    twilio_for(lender_a, enabled=False)  # a message sent before still reports its delivery
    adapter = messaging_callback_adapter(lender_id=lender_a.pk, provider="twilio")
    assert isinstance(adapter, TwilioSmsAdapter)
    assert messaging_callback_adapter(lender_id=lender_a.pk, provider="africastalking") is None
    assert messaging_callback_adapter(lender_id=lender_a.pk, provider="mpesa") is None


def test_the_callback_addresses_are_on_the_public_address_with_the_token_where_unsigned(
    settings,
) -> None:
    settings.PAYMENTS_CALLBACK_BASE_URL = "https://pay.example.com/"
    token = path_token_for(lender_slug="lender-a", provider="africastalking")
    assert token != path_token_for(lender_slug="lender-a", provider="mpesa")
    for route in ("delivery", "inbound", "optout"):
        assert messaging_callback_url(
            provider="africastalking", lender_slug="lender-a", route=route
        ) == (f"https://pay.example.com/api/messaging/v1/africastalking/lender-a/{token}/{route}/")
    assert messaging_callback_url(provider="twilio", lender_slug="lender-a", route="inbound") == (
        "https://pay.example.com/api/messaging/v1/twilio/lender-a/inbound/"
    )
    with pytest.raises(ValueError, match="optout"):
        messaging_callback_url(provider="twilio", lender_slug="lender-a", route="optout")
