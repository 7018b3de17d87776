"""Twilio's Programmable Voice: place a reminder call that reads a text and asks for one key,
and read the calls' callbacks (the key pressed, how the call ended), for one lender's account.

Twilio's own client (``twilio``), through the same HTTP client as its SMS
(``apps.integrations.messaging.twilio_sms``: ``TWILIO_API_BASE`` moves it to a loopback fake).
A call is created with its TwiML inline (``Calls.create(twiml=...)``): a ``<Gather>`` of one
digit whose ``<Say>`` reads the script in the customer's language (Twilio's text to speech),
posting the digit to ``action``; the call's end comes to ``status_url`` (``completed``,
``busy``, ``no-answer``, ``failed``, ``canceled``). Twilio signs every callback with
``X-Twilio-Signature`` (the account's auth token over the URL and the form fields), checked
by the client's ``RequestValidator``. Documented shapes: twilio.com/docs/voice (Call
resource, TwiML ``<Gather>`` and ``<Say>``, status callbacks).

Neither the number nor the script reaches a log or an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from apps.integrations.messaging.base import CallbackRefused, SendRefused
from apps.integrations.messaging.twilio_sms import (
    SIGNATURE_HEADER,
    TwilioAccount,
    _header,
    _refusal,
    twilio_client,
)

PROVIDER = "twilio_voice"
# Twilio's text-to-speech language for each of ours
SPEECH_LANGUAGES: Mapping[str, str] = {"en": "en-US", "es": "es-MX", "zh-hans": "zh-CN"}
# a call's final statuses, and whether it reached the customer
FINAL: Mapping[str, bool] = {
    "completed": True,
    "busy": False,
    "no-answer": False,
    "failed": False,
    "canceled": False,
}
GATHER_SECONDS = 8  # how long the call waits for a key after the script


def speech_language(language: str) -> str:
    return SPEECH_LANGUAGES.get(language, SPEECH_LANGUAGES["en"])


def script_twiml(*, script: str, menu: str, language: str, action: str, goodbye: str) -> str:
    """The call's TwiML: the script then the menu read in ``language``, one key gathered and
    posted to ``action``; without a key, ``goodbye`` and the call ends."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action, method="POST", timeout=GATHER_SECONDS)
    gather.say(script, language=speech_language(language))
    gather.say(menu, language=speech_language(language))
    response.append(gather)
    response.say(goodbye, language=speech_language(language))
    return str(response)


def answer_twiml(*, text: str, language: str, dial: str = "") -> str:
    """What the call says after a key (and, for an agent, the number it connects to)."""
    response = VoiceResponse()
    response.say(text, language=speech_language(language))
    if dial:
        response.dial(dial)
    return str(response)


@dataclass(frozen=True, slots=True)
class CallStatus:
    """A call's status callback read: its id, its status, whether it is final, whether it
    reached the customer."""

    call_sid: str
    status: str
    final: bool
    answered: bool


class TwilioVoiceAdapter:
    """Calls through one lender's Twilio account."""

    provider = PROVIDER

    def __init__(self, account: TwilioAccount) -> None:
        self.account = account
        self._client = twilio_client(account)

    def call(self, *, to: str, twiml: str, status_url: str) -> str:
        """Place a call to ``to`` from the account's number playing ``twiml``; returns the
        call's SID, or ``SendRefused`` (an invalid number, the account, an outage)."""
        refusal: SendRefused
        try:
            created = self._client.calls.create(
                to=to,
                from_=self.account.from_number,
                twiml=twiml,
                status_callback=status_url or values.unset,
                status_callback_event=["completed"] if status_url else values.unset,
                status_callback_method="POST",
            )
        except (TwilioRestException, TwilioServiceException) as error:
            refusal = _refusal(int(error.status), error.code)
        except requests.RequestException:
            refusal = SendRefused("unreachable", retryable=True)
        else:
            return str(created.sid)
        raise refusal

    def verified_fields(
        self, *, url: str, fields: Mapping[str, str], headers: Mapping[str, str]
    ) -> dict[str, str]:
        """The callback's form fields once its signature holds; ``CallbackRefused``
        (``signature_invalid``) otherwise."""
        signature = _header(headers, SIGNATURE_HEADER)
        form = dict(fields)
        if not signature or not RequestValidator(self.account.auth_token).validate(
            url, form, signature
        ):
            raise CallbackRefused("signature_invalid")
        return form

    @staticmethod
    def status_read(fields: Mapping[str, str]) -> CallStatus:
        sid, status = fields.get("CallSid", ""), fields.get("CallStatus", "")
        if not sid or not status:
            raise CallbackRefused("malformed")
        return CallStatus(sid, status, status in FINAL, FINAL.get(status, False))
