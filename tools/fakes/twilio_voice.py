"""A loopback stand-in for Twilio's Programmable Voice API and the callbacks a call makes, next
to its Messaging API (``tools.fakes.twilio``: one fake serves both, as one Twilio account does).

It speaks the documented requests and answers, so the product's adapter
(``apps.integrations.voice.twilio_voice``) runs Twilio's own client against it:

* ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` with HTTP Basic, form fields ``To``,
  ``From``, ``Twiml`` (or ``Url``), ``StatusCallback``, ``StatusCallbackEvent``,
  ``StatusCallbackMethod``: 201 with the Call resource (``sid`` CA..., ``status`` "queued").
  Errors in Twilio's JSON shape: 20003 (401) for a wrong SID or token; 21201 (400) no To,
  21213 (400) no From, 21205 (400) no Twiml or Url, 21211 (400) a To not in E.164 or a number
  ``refuse`` names; ``down``, ``rate_limit`` as the messaging fake.

``calls`` records each call by SID, its TwiML among it. The callbacks, signed with
``X-Twilio-Signature`` as Twilio computes it: ``press(sid, digits)`` posts the key to the
``action`` of the call's ``<Gather>`` (``CallSid``, ``Digits``, ``CallStatus`` in-progress,
...) and returns the answer (the TwiML the call says next); ``end(sid, status)`` posts the
call's end (``completed``, ``busy``, ``no-answer``, ``failed``) to its ``StatusCallback``.

In the demo (``demo=True``) it prints each call's script (the ``<Say>`` texts), and plays
the customer: ``python -m tools.fakes.twilio_voice press 1`` from a terminal
(``POST /demo/press``) presses a key on the last call, prints what the call says next,
then ends the call.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import requests

from tools.fakes.loopback import form_fields
from tools.fakes.twilio import API_VERSION, E164, FakeTwilio, error

CALLS_PATH = re.compile(rf"/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Calls\.json")
CALL_ERRORS = {
    21201: (400, "No 'To' number is specified"),
    21213: (400, "No 'From' number is specified"),
    21205: (400, "Url parameter is required."),
}


@dataclass
class Call:
    sid: str
    account_sid: str
    to: str
    from_: str
    twiml: str
    status_callback: str
    status: str = "queued"
    digits: str = ""

    def said(self) -> list[str]:
        """The texts the call reads, in order."""
        root = ElementTree.fromstring(self.twiml)  # noqa: S314  (our own TwiML, on loopback)
        return [(say.text or "").strip() for say in root.iter("Say")]

    def gather_action(self) -> str:
        root = ElementTree.fromstring(self.twiml)  # noqa: S314
        gather = root.find("Gather")
        return gather.get("action", "") if gather is not None else ""


def _call_error(code: int) -> tuple[int, dict[str, Any]]:
    if code in CALL_ERRORS:
        status, message = CALL_ERRORS[code]
        more_info = f"https://www.twilio.com/docs/errors/{code}"
        return status, {"code": code, "message": message, "more_info": more_info, "status": status}
    return error(code)


@dataclass
class FakeTwilioVoice(FakeTwilio):
    calls_placed: dict[str, Call] = field(default_factory=dict)

    def place(
        self, account_sid: str, auth: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """``POST .../Calls.json``: the answer's HTTP status and JSON body."""
        refused = self.gate(account_sid, auth)
        if refused is not None:
            return refused
        to, sender, twiml = form.get("To", ""), form.get("From", ""), form.get("Twiml", "")
        if not to:
            return _call_error(21201)
        if not sender:
            return _call_error(21213)
        if not twiml and not form.get("Url"):
            return _call_error(21205)
        code = self.refused.get(to, 0 if E164.fullmatch(to) else 21211)
        if code:
            return error(code)
        sid = f"CA{secrets.token_hex(16)}"
        call = Call(sid, account_sid, to, sender, twiml, form.get("StatusCallback", ""))
        self.calls_placed[sid] = call
        if self.demo:
            self.say(f"call to ...{to[-4:]} ({sid}) reads:")
            for line in call.said():
                self.say(f"  {line}")
            self.say("  (python -m tools.fakes.twilio_voice press 1|2|9 answers it)")
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{sid}.json"
        return 201, {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "direction": "outbound-api",
            "from": sender,
            "sid": sid,
            "status": "queued",
            "to": to,
            "uri": uri,
        }

    def _fields(self, call: Call, status: str) -> dict[str, str]:
        return {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    def press_fields(self, sid: str, digits: str) -> tuple[str, dict[str, str]]:
        """Where Twilio posts ``digits`` pressed on call ``sid`` (its Gather's action), and
        what."""
        call = self.calls_placed[sid]
        call.status, call.digits = "in-progress", digits
        fields = {**self._fields(call, "in-progress"), "Digits": digits, "FinishedOnKey": ""}
        return call.gather_action(), fields

    def end_fields(self, sid: str, status: str = "completed") -> tuple[str, dict[str, str]]:
        """Where Twilio posts call ``sid``'s end (its StatusCallback), and what."""
        call = self.calls_placed[sid]
        call.status = status
        duration = "31" if status == "completed" else "0"
        return call.status_callback, {**self._fields(call, status), "CallDuration": duration}

    def press(self, sid: str, digits: str) -> requests.Response:
        """The customer presses ``digits``: Twilio posts them to the Gather's action."""
        url, fields = self.press_fields(sid, digits)
        return self.post_signed(url, fields, self.calls_placed[sid].account_sid)

    def end(self, sid: str, status: str = "completed") -> requests.Response | None:
        """The call ends ``status``: Twilio posts it to the call's StatusCallback."""
        url, fields = self.end_fields(sid, status)
        if not url:
            return None
        return self.post_signed(url, fields, self.calls_placed[sid].account_sid)

    def _demo_press(self, form: dict[str, str]) -> dict[str, Any]:
        if not self.calls_placed:
            return {"sent": False, "message": "No call placed yet."}
        call = list(self.calls_placed.values())[-1]
        digits = form.get("digits", "")
        try:
            answer = self.press(call.sid, digits)
            said = [(s.text or "").strip() for s in ElementTree.fromstring(answer.text).iter("Say")]  # noqa: S314
            self.end(call.sid, "completed")
        except (requests.RequestException, ElementTree.ParseError) as exc:
            return {"sent": False, "message": f"The server did not answer ({type(exc).__name__})."}
        self.say(f"{call.sid}: pressed {digits}; the call says: {' '.join(said)}")
        return {"sent": answer.ok, "message": f"Pressed {digits}: {' '.join(said)}"}

    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        bare = path.split("?")[0]
        if self.demo and bare == "/demo/press":
            answer = self._demo_press(form_fields(body))
            return 200, json.dumps(answer).encode(), "application/json"
        found = CALLS_PATH.fullmatch(bare)
        if found is None:
            return super().answer_post(path, headers, body)
        status, data = self.place(
            found.group(1), headers.get("Authorization", ""), form_fields(body)
        )
        return status, json.dumps(data).encode(), "application/json"


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.twilio_voice press 1``: the customer on the demo's last call
    presses a key."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.fakes.twilio_voice",
        description="Play a customer answering the demo's last reminder call.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    press = commands.add_parser("press", help="press a key on the last call")
    press.add_argument("digits", help="1: a link to pay by SMS, 2: promise, 9: an agent")
    port = os.environ.get("DEMO_TWILIO_PORT") or "8705"
    press.add_argument("--url", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    try:
        answer = requests.post(
            f"{args.url.rstrip('/')}/demo/press", data={"digits": args.digits}, timeout=60
        )
        outcome = answer.json()
    except (requests.RequestException, ValueError):
        print(f"No Twilio fake at {args.url}: is `make run` running?", file=sys.stderr)
        return 2
    print(outcome["message"])
    return 0 if outcome["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
