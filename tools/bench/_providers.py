"""bench-payments' providers: the callbacks each one sends, the rows they pay, the check
that each applied exactly once, and what verifying one costs.

* ``generic``: the product's own signed webhook (``X-Signature``, HMAC-SHA256 over
  timestamp and body), one payment each, to the lender's loans in turn.
* ``mpesa``: Daraja's callbacks on the lender's secret path, half of them C2B paybill
  confirmations (the account number a loan's reference, a receipt of its own each), half
  STK callbacks answering prompts seeded as started. Daraja signs nothing: the path
  token and the allow-list of Safaricom's addresses are the check.
* ``stripe``: ``payment_intent.succeeded`` events signed as Stripe signs them
  (``Stripe-Signature``), each answering a checkout seeded as started and naming it in
  its metadata, as the product's sessions do.

The prompts and checkouts are seeded in one insert, as the provider took them (status
started, the provider's id, the amount asked): starting them through the provider would
measure the provider. The providers' APIs are loopback fakes (tools/fakes) that count
what they are asked: a callback that makes the server call the provider back (a status
query, a PaymentIntent read) would show there, and fails the run.
"""

from __future__ import annotations

import ast
import json
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from tools.bench._setup import ROOT

AMOUNT = Decimal("150.00")  # KES, the bench lender's currency
SHORTCODE = "600984"
DARAJA_APP = {
    "consumer_key": "bench-consumer-key",
    "consumer_secret": "bench-consumer-secret",
    "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
}
STRIPE_KEYS = {
    "secret_key": "sk_test_51BenchPayments0000000000",
    "webhook_secret": "whsec_BenchPayments00000000000000",
}
PHONE = "254712345678"


@dataclass(frozen=True, slots=True)
class Post:
    """One callback as the provider sends it: path, content type, its own headers, body."""

    path: str
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, port: int) -> bytes:
        """The HTTP/1.1 request, ready for a keep-alive socket to ``port``."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
            + "\r\n"
        )
        return head.encode() + self.body


class Provider:
    """One provider's run against the lender ``lender`` (its loans ``loans``: id and
    reference). ``posts`` seeds what the callbacks answer and builds them; ``check`` says,
    after the run, whether every one applied exactly once."""

    name = ""
    slug = ""  # the bench lender of this provider
    noun = "callbacks"
    unit = "callback"  # in the figures: callbacks/s, cpu/callback

    # in the check's line: what keys a payment, what a callback answers, whose API
    paid_by, answering, api = "", "", ""

    def __init__(self, *, lender: Any, loans: list[tuple[int, str]], run_id: str) -> None:
        self.lender, self.loans, self.run_id = lender, loans, run_id
        self.event_ids: list[str] = []  # of the callbacks sent, as the product keys them
        self.references: list[str] = []  # the provider's reference of each payment sent
        self.attempts: list[Any] = []  # the attempts seeded for the callbacks to answer

    def server_env(self) -> dict[str, str]:
        """What the server's environment needs for this provider."""
        return {}

    def posts(self, events: int) -> list[Post]:
        raise NotImplementedError

    def answered(self, status: int, payload: bytes) -> bool:
        """The answer of a callback that was applied."""
        return status == 200

    def describe(self, events: int) -> str:
        return f"{events} {self.noun}"

    def api_calls(self) -> int:
        """Calls the server made to the provider's API (its loopback fake) so far."""
        return 0

    def check(self) -> tuple[list[str], str]:
        """Problems found (none: each callback applied once, each attempt paid, no call to
        the provider's API) and a line for the report."""
        if not self.attempts:  # the generic webhook: the payments stored say it all
            return [], ""
        problems = self._applied_once(self.name, self.references)
        problems += self._attempts_paid(self.attempts)
        calls = self.api_calls()
        if calls:
            problems.append(f"{calls} calls to {self.api}'s API")
        line = (
            f"each {self.paid_by} paid once, {len(self.attempts)} {self.answering} paid; "
            f"{self.api} API calls {calls}"
        )
        return problems, line

    def close(self) -> None:
        """Stop what ``posts`` started."""

    def _applied_once(self, provider: str, references: list[str]) -> list[str]:
        """Problems unless each of ``references`` is exactly one payment of ``provider`` for
        AMOUNT, and each callback is stored once."""
        from apps.collections.models import Payment, WebhookEvent

        paid = Payment.objects.filter(
            lender=self.lender, provider=provider, provider_ref__in=references
        )
        problems = []
        if paid.count() != len(references):
            problems.append(f"{paid.count()} payments for {len(references)} references")
        if paid.exclude(amount=AMOUNT).exists():
            problems.append("a payment of another amount")
        stored = WebhookEvent.objects.filter(
            lender=self.lender, provider=provider, event_id__in=self.event_ids
        ).count()
        if stored != len(self.event_ids):
            problems.append(f"{stored} callbacks stored for {len(self.event_ids)} sent")
        return problems

    def _account_save(
        self, provider: str, *, settings: dict[str, str], secrets: dict[str, str]
    ) -> None:
        """The lender's account with ``provider``, in use, as its admin saves it."""
        from apps.core.actor import Actor
        from apps.integrations.services import provider_account_save

        provider_account_save(
            lender_id=self.lender.pk,
            provider=provider,
            enabled=True,
            settings=settings,
            secrets=secrets,
            actor=Actor.system(),
        )

    def _attempts_seed(self, *, provider: str, refs: list[str]) -> list[Any]:
        """Started attempts, one per provider id in ``refs``, on the loans in turn, for AMOUNT:
        as the provider took them (one insert)."""
        from apps.collections.models import PaymentAttempt
        from apps.core.actor import ActorType

        return PaymentAttempt.objects.bulk_create(
            PaymentAttempt(
                lender=self.lender,
                loan_id=self.loans[n % len(self.loans)][0],
                provider=provider,
                attempt_ref=ref,
                amount=AMOUNT,
                currency="KES",
                status=PaymentAttempt.Status.STARTED,
                started_by=ActorType.CUSTOMER,
            )
            for n, ref in enumerate(refs)
        )

    def _attempts_paid(self, attempts: list[Any]) -> list[str]:
        from apps.collections.models import PaymentAttempt

        paid = PaymentAttempt.objects.filter(
            pk__in=[a.pk for a in attempts],
            status=PaymentAttempt.Status.PAID,
            payment__isnull=False,
        ).count()
        return [] if paid == len(attempts) else [f"{paid} of {len(attempts)} attempts paid"]


class Generic(Provider):
    name, slug, noun, unit = "generic", "bench-payments", "signed webhooks", "webhook"

    def posts(self, events: int) -> list[Post]:
        from apps.integrations.payments.signing import sign, webhook_secret_for

        secret = webhook_secret_for(lender_slug=self.lender.slug, provider="demo")
        references = [reference for _, reference in self.loans]
        posts = []
        for n in range(events):
            body = json.dumps(
                {
                    "id": f"evt-{self.run_id}-{n}",
                    "type": "payment.succeeded",
                    "data": {
                        "loan": references[n % len(references)],
                        "amount": str(AMOUNT),
                        "currency": "KES",
                        "reference": f"MP-{self.run_id}-{n}",
                    },
                }
            ).encode()
            headers = {"X-Lender": self.lender.slug, "X-Signature": sign(secret=secret, body=body)}
            posts.append(Post("/api/payments/v1/webhooks/demo/", body, headers=headers))
        return posts


def safaricom_addresses() -> list[str]:
    """The allow-list production ships: config/settings/base.py's default for
    MPESA_CALLBACK_ALLOWED_IPS, read from its source (the test settings the bench runs on
    put the loopback address in its place)."""
    tree = ast.parse((ROOT / "config" / "settings" / "base.py").read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "MPESA_CALLBACK_ALLOWED_IPS"
        ):
            for keyword in node.keywords:
                if keyword.arg == "default":
                    return [str(a) for a in ast.literal_eval(keyword.value)]
    raise LookupError("no default for MPESA_CALLBACK_ALLOWED_IPS in config/settings/base.py")


def allowed_addresses() -> list[str]:
    """Safaricom's addresses, then the loopback the bench calls from: last, so every
    callback's check walks the whole list, as one from Safaricom's last address would."""
    return [*safaricom_addresses(), "127.0.0.1"]


class Mpesa(Provider):
    name, slug, noun = "mpesa", "bench-payments-mpesa", "M-Pesa callbacks"
    paid_by, answering, api = "receipt", "prompts", "Daraja"

    def __init__(self, **kwargs: Any) -> None:
        from tools.fakes.daraja import FakeDaraja

        super().__init__(**kwargs)
        self.daraja = FakeDaraja()
        self.daraja.app(
            key=DARAJA_APP["consumer_key"],
            secret=DARAJA_APP["consumer_secret"],
            passkey=DARAJA_APP["passkey"],
            shortcode=SHORTCODE,
        )
        self.base_url = self.daraja.start()

    def server_env(self) -> dict[str, str]:
        return {
            "MPESA_CALLBACK_ALLOWED_IPS": ",".join(allowed_addresses()),
            "MPESA_API_BASE": self.base_url,
        }

    def describe(self, events: int) -> str:
        stk = len(self.attempts)
        return f"{events} M-Pesa callbacks ({events - stk} C2B confirmations, {stk} STK)"

    def posts(self, events: int) -> list[Post]:
        """Even callbacks a C2B confirmation, odd ones an STK callback for a prompt seeded
        here; each with a receipt number of its own."""
        from apps.integrations.payments.mpesa import Route
        from apps.integrations.payments.registry import MPESA, callback_url
        from tools.fakes.daraja import Push, receipt_number

        self._account_save(
            MPESA, settings={"shortcode": SHORTCODE, "environment": "sandbox"}, secrets=DARAJA_APP
        )
        paths = {
            route: urlsplit(
                callback_url(provider=MPESA, lender_slug=self.lender.slug, route=route)
            ).path
            for route in (Route.STK, Route.C2B_CONFIRMATION)
        }
        self.attempts = self._attempts_seed(
            provider=MPESA, refs=[f"ws_CO_{self.run_id}_{n:06d}" for n in range(events // 2)]
        )
        receipts: set[str] = set()
        while len(receipts) < events:
            receipts.add(receipt_number())
        self.references = sorted(receipts)
        _second_passed()
        posts = []
        for n, receipt in enumerate(self.references):
            if n % 2:
                attempt = self.attempts[n // 2]
                push = Push(
                    checkout_id=attempt.attempt_ref,
                    merchant_id=f"29115-{self.run_id}-{n}",
                    shortcode=SHORTCODE,
                    amount=int(AMOUNT),
                    phone=PHONE,
                    account_reference=self.loans[(n // 2) % len(self.loans)][1],
                    callback_url="",
                    result_code=0,
                    receipt=receipt,
                )
                body = self.daraja.stk_callback_body(push)
                path, event_id = paths[Route.STK], f"stk:{attempt.attempt_ref}"
            else:
                body = self.daraja.c2b_body(
                    shortcode=SHORTCODE,
                    account=self.loans[(n // 2) % len(self.loans)][1],
                    amount=str(AMOUNT),
                    receipt=receipt,
                )
                path, event_id = paths[Route.C2B_CONFIRMATION], f"c2b:{receipt}"
            self.event_ids.append(event_id)
            posts.append(Post(path, json.dumps(body).encode()))
        return posts

    def answered(self, status: int, payload: bytes) -> bool:
        # Daraja is answered 200 whatever became of a callback it sent; "Accepted" is applied
        return status == 200 and b'"Accepted"' in payload

    def api_calls(self) -> int:
        # every call asks for an access token first (a worker has none cached yet)
        return self.daraja.token_requests + len(self.daraja.pushes)

    def close(self) -> None:
        self.daraja.stop()


class Stripe(Provider):
    name, slug, noun = "stripe", "bench-payments-stripe", "Stripe webhooks"
    paid_by, answering, api = "PaymentIntent", "checkouts", "Stripe"

    def __init__(self, **kwargs: Any) -> None:
        from tools.fakes.stripe import FakeStripe

        super().__init__(**kwargs)
        self.stripe = FakeStripe([STRIPE_KEYS["secret_key"]])
        self.base_url = self.stripe.start()

    def server_env(self) -> dict[str, str]:
        return {"STRIPE_API_BASE": self.base_url}

    def describe(self, events: int) -> str:
        return f"{events} Stripe webhooks (payment_intent.succeeded)"

    def posts(self, events: int) -> list[Post]:
        """One ``payment_intent.succeeded`` per checkout seeded here, signed now."""
        from django.urls import reverse

        from apps.integrations.payments.registry import STRIPE

        self._account_save(STRIPE, settings={}, secrets=STRIPE_KEYS)
        path = reverse(
            "payments-api:provider", kwargs={"provider": STRIPE, "lender_slug": self.lender.slug}
        )
        self.attempts = self._attempts_seed(
            provider=STRIPE, refs=[f"cs_test_{self.run_id}{n:06d}" for n in range(events)]
        )
        _second_passed()
        posts = []
        for n, attempt in enumerate(self.attempts):
            event = intent_succeeded(
                event_id=f"evt_{self.run_id}{n:06d}",
                intent_id=f"pi_{self.run_id}{n:06d}",
                attempt_key=str(attempt.key),
                loan=self.loans[n % len(self.loans)][1],
                lender_slug=self.lender.slug,
            )
            body, headers = self.stripe.signed(event, STRIPE_KEYS["webhook_secret"])
            self.references.append(event["data"]["object"]["id"])
            self.event_ids.append(event["id"])
            content_type = headers.pop("content-type")
            posts.append(Post(path, body, content_type=content_type, headers=headers))
        return posts

    def answered(self, status: int, payload: bytes) -> bool:
        return status == 200 and b'"applied"' in payload

    def api_calls(self) -> int:
        return len(self.stripe.requests)

    def close(self) -> None:
        self.stripe.stop()


def intent_succeeded(
    *, event_id: str, intent_id: str, attempt_key: str, loan: str, lender_slug: str
) -> dict[str, Any]:
    """Stripe's event for a card payment of AMOUNT on the checkout ``attempt_key`` (the shape
    tools/fakes/stripe.py sends; docs.stripe.com/api/events/object)."""
    from tools.fakes.stripe import API_VERSION

    now = int(time.time())
    minor = int(AMOUNT * 100)  # KES: two decimals at Stripe
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "created": now,
                "livemode": False,
                "amount": minor,
                "amount_received": minor,
                "currency": "kes",
                "description": None,
                "last_payment_error": None,
                "latest_charge": f"ch_{intent_id.removeprefix('pi_')}",
                "metadata": {"attempt": attempt_key, "loan": loan, "lender": lender_slug},
                "next_action": None,
                "payment_method_types": ["card"],
                "status": "succeeded",
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "payment_intent.succeeded",
    }


PROVIDERS: dict[str, type[Provider]] = {p.name: p for p in (Generic, Mpesa, Stripe)}


def _second_passed() -> None:
    """Wait for the next whole second: Daraja's and Stripe's times are whole seconds, and a
    loan signed in this second would otherwise see a payment dated before it."""
    time.sleep(1 - time.time() % 1)


# --- what verifying a callback costs, in-process --------------------------------------


def _per_call_us(work: Callable[[], object], number: int) -> float:
    """The best of five rounds of ``number`` calls, µs per call."""
    return min(timeit.repeat(work, number=number, repeat=5)) / number * 1e6


def verification_costs(number: int = 2000) -> list[str]:
    """µs per callback of each provider's check alone (no server, no database): for the
    generic webhook ``GenericAdapter.verify_signature`` (the HMAC, with the lender's secret
    derived each time, as the view does); for Stripe ``parse_callback`` against the same parse with no signature
    check; for M-Pesa ``parse_callback`` against the same with no path token and allow-list
    check (the allow-list as production ships it, the caller's address last)."""
    from django.conf import settings

    from apps.integrations.payments import mpesa
    from apps.integrations.payments.base import ProviderCallback
    from apps.integrations.payments.generic import GenericAdapter
    from apps.integrations.payments.signing import path_token_for
    from apps.integrations.payments.stripe_checkout import StripeAdapter
    from tools.fakes.daraja import FakeDaraja, Push, receipt_number
    from tools.fakes.stripe import FakeStripe

    slug, loan = "bench-verify", "LN-0000001"
    lines = []

    generic = Generic(lender=_Named(slug), loans=[(0, loan)], run_id="verify").posts(1)[0]
    signed_webhook = GenericAdapter(provider="demo", lender_slug=slug)

    def generic_check() -> None:
        signed_webhook.verify_signature(
            header=generic.headers["X-Signature"], lender_slug=slug, body=generic.body
        )

    lines.append(
        f"generic {_per_call_us(generic_check, number):.1f} µs "
        "(verify_signature: HMAC-SHA256, the lender's secret derived)"
    )

    stripe_fake = FakeStripe()
    adapter = StripeAdapter(**STRIPE_KEYS)
    event = intent_succeeded(
        event_id="evt_verify",
        intent_id="pi_verify",
        attempt_key="00000000-0000-4000-8000-000000000000",
        loan=loan,
        lender_slug=slug,
    )
    body, headers = stripe_fake.signed(event, STRIPE_KEYS["webhook_secret"])
    callback = ProviderCallback(body=body, headers=headers)

    def stripe_unchecked() -> object:
        return [adapter._read(json.loads(callback.body.decode("utf-8")))]

    full = _per_call_us(lambda: adapter.parse_callback(callback), number)
    bare = _per_call_us(stripe_unchecked, number)
    lines.append(
        f"stripe  {full - bare:.1f} µs (parse_callback {full:.1f} µs, "
        f"{bare:.1f} µs without the signature check)"
    )

    addresses = allowed_addresses()
    saved = settings.MPESA_CALLBACK_ALLOWED_IPS
    settings.MPESA_CALLBACK_ALLOWED_IPS = addresses
    try:
        daraja = mpesa.MpesaAdapter(
            mpesa.MpesaAccount(shortcode=SHORTCODE, **DARAJA_APP), lender_slug=slug
        )
        push = Push("ws_CO_verify", "29115-1", SHORTCODE, 150, PHONE, loan, "", 0, receipt_number())
        stk = ProviderCallback(
            body=json.dumps(FakeDaraja().stk_callback_body(push)).encode(),
            remote_addr=addresses[-1],
            path_token=path_token_for(lender_slug=slug, provider="mpesa"),
            route=mpesa.Route.STK,
        )

        def mpesa_unchecked() -> object:
            return [daraja._stk_event(mpesa.stk_callback_parse(json.loads(stk.body)))]

        full = _per_call_us(lambda: daraja.parse_callback(stk), number)
        bare = _per_call_us(mpesa_unchecked, number)
    finally:
        settings.MPESA_CALLBACK_ALLOWED_IPS = saved
    lines.append(
        f"mpesa   {full - bare:.1f} µs (parse_callback {full:.1f} µs, {bare:.1f} µs without "
        f"the path token and the allow-list of {len(addresses)} addresses)"
    )
    return lines


@dataclass
class _Named:
    """A lender as the posts see it: its slug."""

    slug: str
    pk: int = 0
