"""The messaging providers' callbacks as a test posts them to our endpoints: as each provider
sends its own (Twilio's and WhatsApp's signed, Africa's Talking's on the lender's secret
path), so the endpoint's verification runs for real."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from apps.integrations.messaging.registry import messaging_callback_url
from tests.integrations.messaging import TWILIO_TOKEN
from tests.integrations.whatsapp import APP_SECRET
from tools.fakes.twilio import signature

FORM = "application/x-www-form-urlencoded"


def callback_path(provider: str, lender, route: str = "") -> str:
    """The path of ``lender``'s callback endpoint for ``provider`` (and its ``route``)."""
    return urlsplit(
        messaging_callback_url(provider=provider, lender_slug=lender.slug, route=route)
    ).path


def form_post(client, path: str, fields: dict[str, str], **headers: str):
    """A form post as the SMS providers send theirs (urlencoded)."""
    return client.post(path, urlencode(fields), content_type=FORM, **headers)


def twilio_post(client, lender, route: str, fields: dict[str, str], *, token: str = TWILIO_TOKEN):
    """``fields`` posted to ``lender``'s Twilio ``route``, signed with ``token``."""
    url = messaging_callback_url(provider="twilio", lender_slug=lender.slug, route=route)
    return form_post(
        client, urlsplit(url).path, fields, HTTP_X_TWILIO_SIGNATURE=signature(token, url, fields)
    )


def whatsapp_post(client, lender, fake, body: dict, *, secret: str = APP_SECRET):
    """``body`` posted to ``lender``'s WhatsApp webhook, signed with the app ``secret``."""
    raw, headers = fake.signed(body, secret)
    return client.post(
        callback_path("whatsapp", lender),
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=headers["X-Hub-Signature-256"],
    )
