"""The reference integration: a lender's loan system against the Lender API, in one file.

It uses only ``requests`` and the ``standardwebhooks`` library (nothing of this project), so a
lender's developer can read it as the whole of what an integration needs:

1. start a small webhook receiver, and register it as an endpoint (``webhooks:manage``); the
   signing secret comes back once, in that answer;
2. create a loan under the loan system's own ``external_id``, with the customer, the phone's
   IMEI, the product and the consent the customer gave in the lender's channel
   (``loans:write``);
3. mint the phone's enrollment code and save its QR code as a PNG, for the counter to show;
4. wait until the phone scanned it (the ``device.enrolled`` webhook);
5. post a payment received elsewhere (``payments:write``) and wait for ``payment.applied``;
6. print every webhook as it arrives, after verifying its signature with ``standardwebhooks``;
   then delete the endpoint (unless ``--keep-endpoint``).

    SC_API_KEY=<prefix>.<secret> python -m tools.lender_reference \\
        --base-url https://collect.example.com --product-id 3 \\
        --receiver-host 0.0.0.0 --receiver-port 8088 \\
        --receiver-url https://hooks.my-lender.example/webhooks

``--receiver-url`` is the address the server reaches the receiver at (a tunnel or your own
proxy); by default ``http://<receiver-host>:<port>/webhooks``, which a server accepts only
where plain http is allowed (a test or a demo). Exits 0 once every awaited event arrived and
verified, 1 otherwise. tests/tools/test_lender_reference.py runs it against a live server.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import queue
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

API = "/api/lender/v1/"
CONSENT_TEXT = (
    "I agree to repay this phone in installments. If I fall behind, after a notice, the "
    "phone may be restricted until I pay; calls to emergency numbers always work."
)


def luhn_imei(prefix: str = "35209900") -> str:
    """A made-up IMEI with a valid check digit (replace with the phone's real one)."""
    body = prefix + "".join(random.choice("0123456789") for _ in range(14 - len(prefix)))  # noqa: S311
    total = 0
    for index, char in enumerate(body):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


class LenderApi:
    """The few calls of the Lender API this script makes, with the key and idempotency keys."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0) -> None:
        self.base = base_url.rstrip("/") + API
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Api-Key {api_key}"
        self.timeout = timeout

    def _check(self, response: requests.Response) -> Any:
        if response.status_code >= 400:
            raise SystemExit(
                f"{response.request.method} {response.url} -> {response.status_code}: "
                f"{response.text[:500]}"
            )
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.http.get(self.base + path, params=params, timeout=self.timeout))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        # one key per operation: a retry of this very call (a timeout, a 5xx) reuses it and
        # gets the first answer; this script does not retry, a real loan system should
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._check(
            self.http.post(self.base + path, json=body or {}, headers=headers, timeout=self.timeout)
        )

    def delete(self, path: str) -> None:
        self._check(self.http.delete(self.base + path, timeout=self.timeout))


class Receiver:
    """A webhook receiver: verifies each post's signature, answers 204, queues the event.
    A post that does not verify gets 400 (the sender retries it) and is not queued."""

    def __init__(self, host: str, port: int) -> None:
        self.secret = ""  # known once the endpoint is registered
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError as exc:
                    print(f"webhook REFUSED ({exc}): {body[:200]!r}", flush=True)
                    self.send_response(400)
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                if event["id"] in receiver.seen:  # at least once: a repeat is no news
                    return
                receiver.seen.add(event["id"])
                print(
                    f"webhook verified {event['type']} {event['id']} "
                    f"{json.dumps(event['data'], sort_keys=True)}",
                    flush=True,
                )
                receiver.events.put(event)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: each event is printed above

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, type_: str, *, timeout: float, **data: Any) -> dict[str, Any]:
        """The first event of ``type_`` whose data has ``data``; others are kept for later."""
        deadline = time.monotonic() + timeout
        kept: list[dict[str, Any]] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"no {type_} webhook within {timeout:.0f} s")
                try:
                    event = self.events.get(timeout=left)
                except queue.Empty:
                    continue
                if event["type"] == type_ and all(
                    event["data"].get(k) == v for k, v in data.items()
                ):
                    return event
                kept.append(event)
        finally:
            for event in kept:
                self.events.put(event)


def run(args: argparse.Namespace, api_key: str) -> int:
    api = LenderApi(args.base_url, api_key)
    receiver = Receiver(args.receiver_host, args.receiver_port)
    receiver.start()
    url = args.receiver_url or f"http://{args.receiver_host}:{receiver.port}/webhooks"
    print(f"receiver listening on {args.receiver_host}:{receiver.port}", flush=True)

    # 1. the endpoint first: events reach an endpoint from its creation on
    endpoint = api.post(
        "webhooks/endpoints",
        {"url": url, "description": "Reference integration", "event_types": []},
    )
    receiver.secret = endpoint["secret"]  # shown this once: keep it in your secret store
    print(f"endpoint {endpoint['id']} registered for {url}", flush=True)
    try:
        # 2. the loan, as the loan system sold it
        external_id = args.external_id or f"REF-{uuid.uuid4().hex[:10].upper()}"
        imei = args.imei or luhn_imei()
        loan = api.post(
            "loans",
            {
                "external_id": external_id,
                "customer": {
                    "full_name": args.customer_name,
                    "phone": args.customer_phone,
                    "national_id": args.customer_national_id,
                },
                "phone": {"imei": imei, "brand": args.brand, "model": args.model},
                "product_id": args.product_id,
                "device_price": args.price,
                "down_payment": args.down_payment,
                "consent": {
                    "text": CONSENT_TEXT,
                    "text_sha256": hashlib.sha256(CONSENT_TEXT.encode()).hexdigest(),
                    "text_version": "reference-1",
                    "method": "sms_code",
                    "given_at": datetime.now(UTC).isoformat(),
                },
            },
        )
        print(
            f"loan {loan['id']} created ({loan['reference']}, external_id {external_id}, "
            f"{loan['financed']} {loan['currency']} financed), phone {imei}",
            flush=True,
        )
        receiver.wait_for("loan.signed", timeout=args.timeout, loan_id=loan["id"])

        # 3. the enrollment code, as a PNG for the counter's screen
        code = api.post(f"loans/{loan['id']}/enrollment-code")
        qr = Path(args.qr_out)
        qr.write_bytes(base64.b64decode(code["qr_png_base64"]))
        print(f"enrollment QR saved to {qr} (valid until {code['expires_at']})", flush=True)

        # 4. the phone scans it
        print("waiting for the phone to enroll (scan the QR code)...", flush=True)
        receiver.wait_for("device.enrolled", timeout=args.timeout, device_id=code["device_id"])

        # 5. a payment received by the lender's own payment stack
        payment = api.post(
            "payments",
            {
                "loan_id": loan["id"],
                "amount": str(Decimal(args.amount)),
                "currency": loan["currency"],
                "provider_reference": f"{external_id}-PAY-1",
                "received_at": datetime.now(UTC).isoformat(),
            },
        )
        print(
            f"payment {payment['id']} posted: {payment['amount']} {payment['currency']}", flush=True
        )
        receiver.wait_for("payment.applied", timeout=args.timeout, payment_id=payment["id"])
        print(
            "done: loan.signed, device.enrolled and payment.applied received and verified",
            flush=True,
        )
        return 0
    finally:
        if not args.keep_endpoint:
            api.delete(f"webhooks/endpoints/{endpoint['id']}")
        receiver.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.lender_reference",
        description="Play a lender's loan system against the Lender API (key in SC_API_KEY).",
    )
    p.add_argument("--base-url", required=True, help="The server, e.g. https://collect.example.com")
    p.add_argument("--product-id", type=int, required=True, help="The loan product's id")
    p.add_argument("--receiver-host", default="127.0.0.1")
    p.add_argument("--receiver-port", type=int, default=0, help="0: any free port")
    p.add_argument("--receiver-url", default="", help="The address the server posts to")
    p.add_argument("--qr-out", default="enrollment-qr.png")
    p.add_argument("--external-id", default="", help="Your loan's id (default: a new one)")
    p.add_argument("--imei", default="", help="The phone's IMEI (default: a made-up one)")
    p.add_argument("--brand", default="Tecno")
    p.add_argument("--model", default="Spark 20")
    p.add_argument("--customer-name", default="Amina Otieno")
    p.add_argument("--customer-phone", default="0712345678")
    p.add_argument("--customer-national-id", default="23456789")
    p.add_argument("--price", default="12000.00")
    p.add_argument("--down-payment", default="2000.00")
    p.add_argument("--amount", default="500.00", help="The payment to post")
    p.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait per webhook")
    p.add_argument("--keep-endpoint", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    api_key = os.environ.get("SC_API_KEY", "")
    if not api_key:
        print("Set SC_API_KEY to your API key (<prefix>.<secret>).", file=sys.stderr)
        return 2
    return run(args, api_key)


if __name__ == "__main__":
    sys.exit(main())
