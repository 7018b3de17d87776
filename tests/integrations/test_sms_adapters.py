"""What every SMS adapter promises of a refusal, each against its provider's loopback fake:
a number the provider finds invalid or opted out is not tried again; a rate limit, an outage
and nothing listening may be; wrong credentials are an authentication failure."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from apps.integrations.messaging.africastalking import (
    AfricasTalkingAccount,
    AfricasTalkingAdapter,
)
from apps.integrations.messaging.base import MessagingAdapter, Outbound, SendRefused
from apps.integrations.messaging.twilio_sms import TwilioAccount, TwilioSmsAdapter
from tests.integrations.messaging import (
    AT_API_KEY,
    AT_USERNAME,
    PHONE,
    TWILIO_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
    send_refused,
)

TEXT = "Your installment is due tomorrow."


@dataclass
class Provider:
    fake: Any
    adapter: Callable[[str], MessagingAdapter]  # with this key or token
    secret: str
    invalid: tuple[Any, ...]  # the provider's refusals of an invalid number
    opted_out: Any
    outage_status: int


def africastalking(fake) -> Provider:
    def adapter(key: str) -> MessagingAdapter:
        return AfricasTalkingAdapter(
            AfricasTalkingAccount(AT_USERNAME, key), lender_slug="lender-a"
        )

    return Provider(fake, adapter, AT_API_KEY, (403,), 406, 503)


def twilio(fake) -> Provider:
    def adapter(token: str) -> MessagingAdapter:
        return TwilioSmsAdapter(TwilioAccount(TWILIO_SID, token, from_number=TWILIO_NUMBER))

    return Provider(fake, adapter, TWILIO_TOKEN, (21211, 21614), 21610, 500)


@pytest.fixture(params=["africastalking", "twilio"])
def provider(request) -> Provider:
    fake = request.getfixturevalue(f"{request.param}_fake")
    return {"africastalking": africastalking, "twilio": twilio}[request.param](fake)


def refusal(provider: Provider, secret: str = "") -> SendRefused:
    return send_refused(provider.adapter(secret or provider.secret), text=TEXT)


def sent(provider: Provider) -> str:
    return provider.adapter(provider.secret).send(Outbound(to=PHONE, text=TEXT)).provider_ref


def test_an_invalid_number_is_not_tried_again(provider) -> None:
    for code in provider.invalid:
        provider.fake.refuse(PHONE, code)
        refused = refusal(provider)
        assert (refused.code, refused.retryable) == ("invalid_number", False)


def test_a_number_that_opted_out_is_not_tried_again(provider) -> None:
    provider.fake.refuse(PHONE, provider.opted_out)
    refused = refusal(provider)
    assert (refused.code, refused.retryable) == ("opted_out", False)


def test_a_rate_limit_may_be_tried_again_and_the_next_call_goes_through(provider) -> None:
    provider.fake.rate_limit()
    refused = refusal(provider)
    assert (refused.code, refused.retryable, refused.status) == ("rate_limited", True, 429)
    assert sent(provider)


def test_an_outage_may_be_tried_again(provider) -> None:
    provider.fake.down = True
    refused = refusal(provider)
    assert (refused.code, refused.retryable) == ("unreachable", True)
    assert refused.status == provider.outage_status


def test_nothing_listening_may_be_tried_again(provider) -> None:
    provider.fake.stop()
    refused = refusal(provider)
    assert (refused.code, refused.retryable, refused.status) == ("unreachable", True, None)


def test_wrong_credentials_are_an_authentication_failure_not_tried_again(provider) -> None:
    refused = refusal(provider, secret="0" * 32)
    assert (refused.code, refused.retryable, refused.status) == ("auth_failed", False, 401)
