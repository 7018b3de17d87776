"""A loopback stand-in for an account-information provider that watches customers' balances
and tells the lender when money arrives: the sender of funds alerts.

It signs each alert in the Standard Webhooks format (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``, with the format's own library) under the lender's secret, names the
lender in ``X-Lender`` and posts it to the lender's ``/api/funds/v1/alerts``, as the
product's endpoint documents (``apps.collections.api.funds``).

* ``lender(slug, secret)``: the lender's account with the provider, and the secret it signs
  that lender's alerts with (the one the lender typed into its funds-alerts account).
* ``watch(lender=, reference=, url=, currency=, after=)``: the customer's consent reached the
  provider (``POST /demo/watch`` from ``seed_demo``); ``after`` seconds later (if given) money
  arrives and the alert goes.
* ``alert(reference, amount)``: money arrived in that customer's account now (``POST
  /demo/alert``, and ``python -m tools.fakes.aggregator alert <reference>`` from a terminal).

In the demo it prints each alert it sends and what the server answered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from tools.fakes.loopback import PostServer, form_fields

ALERTS_PATH = "/api/funds/v1/alerts"


@dataclass
class Watched:
    lender: str
    url: str
    currency: str


@dataclass
class FakeAggregator(PostServer):
    name: str = "belvo"
    demo: bool = False
    secrets: dict[str, str] = field(default_factory=dict)  # lender slug -> signing secret
    watched: dict[str, Watched] = field(default_factory=dict)  # consent reference -> lender
    sent: list[dict[str, Any]] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)  # alerts still to come

    def say(self, line: str) -> None:
        if self.demo:
            print(f"aggregator: {line}", flush=True)

    def lender(self, slug: str, secret: str) -> None:
        self.secrets[slug] = secret

    def watch(
        self,
        *,
        lender: str,
        reference: str,
        url: str,
        currency: str,
        after: float | None = None,
        amount: str = "5000.00",
    ) -> None:
        if lender not in self.secrets:
            raise ValueError(f"no account for {lender}")
        self.watched[reference] = Watched(lender, url.rstrip("/"), currency)
        self.say(f"watching {reference} for {lender}")
        if after is not None:
            timer = threading.Timer(after, lambda: self.alert(reference, amount))
            timer.daemon = True
            timer.start()
            self.timers.append(timer)

    def stop(self) -> None:
        """Stop listening, and raise no alert still to come (a test's server is gone)."""
        for timer in self.timers:
            timer.cancel()
        super().stop()

    def signed(self, reference: str, amount: str) -> tuple[bytes, dict[str, str]]:
        """The alert for ``reference`` and its headers, signed as the provider signs."""
        watched = self.watched[reference]
        now = datetime.now(UTC)
        body = json.dumps(
            {
                "type": "funds.available",
                "customer_reference": reference,
                "provider": self.name,
                "amount_available": amount,
                "currency": watched.currency,
                "observed_at": now.isoformat(),
            }
        ).encode()
        webhook_id = f"msg_{uuid.uuid4().hex}"
        headers = {
            "Content-Type": "application/json",
            "X-Lender": watched.lender,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(self.secrets[watched.lender]).sign(webhook_id, now, body),
        }
        return body, headers

    def alert(self, reference: str, amount: str = "5000.00") -> dict[str, Any]:
        """Money arrived in ``reference``'s account: post the alert. ``{"sent", "message"}``."""
        if reference not in self.watched:
            return {"sent": False, "message": f"Not watching {reference}."}
        body, headers = self.signed(reference, amount)
        url = f"{self.watched[reference].url}{ALERTS_PATH}"
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=30)
        except requests.RequestException as exc:
            return {"sent": False, "message": f"The server did not answer ({type(exc).__name__})."}
        said = answer.json().get("outcome", answer.json().get("code", "")) if answer.content else ""
        self.sent.append({"reference": reference, "status": answer.status_code, "said": said})
        self.say(f"{amount} arrived for {reference}: alert posted, {answer.status_code} {said}")
        return {"sent": answer.ok, "message": f"Alert posted: {answer.status_code} {said}"}

    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        form = form_fields(body)
        bare = path.split("?")[0]
        if bare == "/demo/watch":
            after = form.get("after")
            try:
                self.watch(
                    lender=form.get("lender", ""),
                    reference=form.get("reference", ""),
                    url=form.get("server", ""),
                    currency=form.get("currency", ""),
                    after=float(after) if after else None,
                )
            except ValueError as exc:
                answer: dict[str, Any] = {"saved": False, "message": str(exc)}
            else:
                answer = {"saved": True, "message": "Watching."}
        elif bare == "/demo/alert":
            answer = self.alert(form.get("reference", ""), form.get("amount") or "5000.00")
        else:
            return 404, b'{"error": "not found"}', "application/json"
        return 200, json.dumps(answer).encode(), "application/json"


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.aggregator alert <reference>``: money arrives in that customer's
    account, against the aggregator fake of a running demo (``make run``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.fakes.aggregator",
        description="Play money arriving in a demo customer's account (a funds alert).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    alert = commands.add_parser("alert", help="money arrives in the customer's account")
    alert.add_argument("reference", help="the customer's consent reference (arc_...)")
    alert.add_argument("--amount", default="5000.00")
    port = os.environ.get("DEMO_AGGREGATOR_PORT") or "8706"
    alert.add_argument("--url", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    try:
        answer = requests.post(
            f"{args.url.rstrip('/')}/demo/alert",
            data={"reference": args.reference, "amount": args.amount},
            timeout=60,
        )
        outcome = answer.json()
    except (requests.RequestException, ValueError):
        print(f"No aggregator fake at {args.url}: is `make run` running?", file=sys.stderr)
        return 2
    print(outcome["message"])
    return 0 if outcome["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
