"""A lender's accounts with the SMS providers, as the tests set them up."""

from __future__ import annotations

from apps.core.actor import Actor
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender

AT_USERNAME = "smartcollection"
AT_API_KEY = "atsk_4f1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c"
AT_SENDER_ID = "SMARTCOL"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fedcba9876543210" * 2
TWILIO_NUMBER = "+15005550006"
TWILIO_SERVICE = "MG" + "00112233445566778899aabbccddeeff"
PHONE = "+254712345678"


def africastalking_for(lender: Lender, *, enabled: bool = True, sender_id: str = AT_SENDER_ID):
    return provider_account_save(
        lender_id=lender.pk,
        provider="africastalking",
        enabled=enabled,
        settings={"username": AT_USERNAME, "sender_id": sender_id},
        secrets={"api_key": AT_API_KEY},
        actor=Actor.system(),
    )


def twilio_for(lender: Lender, *, enabled: bool = True, **settings: str):
    return provider_account_save(
        lender_id=lender.pk,
        provider="twilio",
        enabled=enabled,
        settings={"account_sid": TWILIO_SID, "from_number": TWILIO_NUMBER, **settings},
        secrets={"auth_token": TWILIO_TOKEN},
        actor=Actor.system(),
    )
