"""Drill 5, its API and pages part: every agent API call, provider webhook, point-of-sale page
and customer page tried by lender A's phone, signer, clerk and customer on lender B's rows:
0 rows leaked. (test_tenancy_drill.py tries the admin's custom views.)

The endpoints are found in the URL resolver, so an endpoint added later fails this drill until
it is tried here or listed in NOT_LENDER_OWNED with the reason. Every answer must be a refusal
(4xx, or the login page of the lender named in the address) or the designed harmless answer
(the caller's own rows only); no answer may carry a value of B's that the request did not
carry itself (loan references, names, phone numbers, IMEIs, amounts, notices, sale ids); a
row of B's that exists looks exactly like one that does not; and afterwards every row of every
lender-owned table of B's is as it was, but for the refusals designed to land on B's audit
chain (an enrollment code of B's scanned by another phone)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from apps.audit.models import AuditEvent
from apps.collections.events import CollectionsAction
from apps.collections.models import Loan, Payment, PaymentAttempt, WebhookEvent
from apps.collections.services import (
    loan_stage_sweep,
    sale_consent_confirm,
    sale_consent_send,
    sale_customer_set,
    sale_phone_set,
    sale_plan_set,
    sale_sign,
)
from apps.collections.services.voice import VoiceRow, voice_reminders_queue
from apps.core.actor import Actor
from apps.core.tenancy import is_lender_owned, scope_to_lender
from apps.counter import urls as counter_urls
from apps.customers.models import Customer
from apps.devices.api import urls as agent_urls
from apps.devices.api.auth import DeviceAuthentication
from apps.devices.events import DevicesAction
from apps.devices.models import Device
from apps.devices.services import (
    device_enroll,
    device_event_report,
    enrollment_token_mint,
)
from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.services import provider_account_save
from apps.integrations.services.webhooks import webhook_endpoint_create, webhooks_project
from apps.integrations.voice.registry import voice_callback_url
from apps.lenders.models import Lender, LoanProduct
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import ContactOptOut, Notification, VoiceCall
from apps.notifications.services import Draft, notifications_dispatch, notifications_queue
from apps.retailers.models import Sale
from apps.retailers.services import sale_start
from apps.selfservice import urls as selfservice_urls
from tests.accounts.factories import PASSWORD
from tests.collections import daraja, webhooks
from tests.collections.daraja import SHORTCODE, paybill_for
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei
from tests.funds.accounts import (
    funds_account,
    plaid_account,
    plaid_item,
    plaid_running,
    reading_consent,
)
from tests.integrations.messaging import africastalking_for
from tests.integrations.whatsapp import whatsapp_for
from tests.lenders.factories import LoanProductFactory, api_key_for, api_key_header
from tests.retailers.factories import ShopFactory, clerk_for
from tools.fakes.plaid import FakePlaid
from tools.fakes.twilio import signature as twilio_signature

pytestmark = [pytest.mark.drill, pytest.mark.django_db]

# Endpoints that hold no lender's rows, so there is no boundary to try. The admin is tried by
# test_tenancy_drill.py (custom views) and tests/lenders/test_admin_tenancy_matrix.py (the rest).
NOT_LENDER_OWNED = {
    "": "the front door: links to each face; only a demo (DEMO_SEED_ALLOWED) lists its phones",
    "pos/login/": "the clerk's login form: no shop and no lender until the clerk is known",
    "pos/logout/": "ends the clerk's session; reads and writes no row",
    "pos/phone-model/": "the brand and model a TAC names, from a table in the code; no row",
    "my/<slug:lender_slug>/logout/": "ends the customer's session; reads and writes no row",
    "api/schema/": "the OpenAPI document: the same for every caller, no rows",
    "api/docs/": "the Swagger page that renders that document",
    "i18n/setlang/": "sets the language cookie; no rows",
}
SHARED_PHONE = "+254711000999"  # one person, a customer of both lenders
AGENT = "/api/agent/v1/"
LENDER_API = "/api/lender/v1/"
MISSING_REF = "SC-ZZZZZZZZ"  # a loan reference no lender has
B_HOOK_URL = "http://127.0.0.1:9/lender-b-only-hooks"  # B's receiver: nothing listens


def endpoint_routes() -> set[str]:
    """Every URL pattern of the project, as its full route, the admin's left out."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route != settings.ADMIN_URL:
                    yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route

    return set(walk(get_resolver().url_patterns, ""))


@dataclass
class Boundary:
    """Sends each request, notes the endpoint it reached and anything it gave away."""

    secrets: set[str]  # B's identifying values, as they would appear in an answer
    tried: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)

    def hit(
        self,
        client: Client,
        method: str,
        path: str,
        allowed: set[int],
        *,
        data: Any = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        redirect_to: str | None = None,
        **extra: Any,
    ) -> Any:
        if body is not None:
            response = getattr(client, method)(path, data=body, content_type=content_type, **extra)
        else:
            response = getattr(client, method)(path, data or {}, **extra)
        route = resolve(path.split("?")[0]).route
        self.tried[route] += 1
        self.statuses[response.status_code] += 1
        label = f"{method.upper()} {path}"
        if response.status_code not in allowed:
            self.leaks.append(f"{label} -> {response.status_code}")
        if response.status_code == 302 and redirect_to not in (None, response["Location"]):
            self.leaks.append(f"{label} -> redirect to {response['Location']}")
        sent = f"{path} {data} {body!r} {extra}"
        answer = getattr(response, "content", b"").decode(errors="replace")
        answer += " " + response.get("Location", "")
        shown = sorted(s for s in self.secrets if s in answer and s not in sent)
        if shown:
            self.leaks.append(f"{label} shows {shown}")
        return response

    def same(self, real: Any, ghost: Any, swap: tuple[str, str], label: str) -> None:
        """B's row and a row that does not exist must get the same answer."""
        if real.status_code != ghost.status_code:
            self.leaks.append(
                f"{label}: {real.status_code} for B's row, {ghost.status_code} for none"
            )
        elif _unmasked(real.content) != _unmasked(
            ghost.content.replace(swap[1].encode(), swap[0].encode())
        ):
            self.leaks.append(f"{label}: B's row answered differently from a missing one")


# a form's CSRF token is masked afresh for every answer (BREACH): it tells nothing of a row
CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def _unmasked(content: bytes) -> bytes:
    """The answer with its forms' CSRF tokens blanked, the one part that differs each time."""
    return CSRF_TOKEN.sub(b'name="csrfmiddlewaretoken" value=""', content)


def lender_rows(lender: Lender) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every lender-owned table that belongs to ``lender``, whole."""
    return {
        model._meta.label: {
            row["id"]: row
            for row in scope_to_lender(model._default_manager.all(), lender.pk).values()
        }
        for model in apps.get_models()
        if is_lender_owned(model)
    }


def row_changes(before: dict, after: dict) -> list[str]:
    found = []
    for label, rows in before.items():
        now = after[label]
        found += [f"{label} #{pk} gone" for pk in rows.keys() - now.keys()]
        found += [f"{label} #{pk} new" for pk in now.keys() - rows.keys()]
        for pk in rows.keys() & now.keys():
            fields = sorted(k for k in rows[pk] if rows[pk][k] != now[pk][k])
            if fields:
                found.append(f"{label} #{pk} changed {fields}")
    return found


def routes_taking(urls: Any, parameter: str) -> list[str]:
    """The names of an app's URL patterns that take ``parameter`` (a row of some lender's)."""
    return [p.name for p in urls.urlpatterns if parameter in p.pattern.converters]


def device_authenticated(urls: Any) -> list[str]:
    """The agent API's routes that a phone calls with its own credentials."""
    return [
        str(p.pattern)
        for p in urls.urlpatterns
        if DeviceAuthentication in getattr(p.callback.view_class, "authentication_classes", ())
    ]


def designed_on_b(change: str) -> bool:
    """What a refusal may add to B's rows: its audit event, appended to B's chain."""
    if change.startswith("audit.AuditEvent #"):
        return change.endswith(" new")
    return change.startswith("audit.AuditChain #") and change.endswith(
        ("changed ['last_hash', 'last_seq']", "changed ['last_hash', 'last_seq', 'updated_at']")
    )


def sms_code(sms_outbox: list[tuple[str, str]]) -> str:
    return re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)


def _agent_key() -> str:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(public).decode()


def _phone_sold(lender: Lender, *, name: str, phone: str, price: str, down: str, days_ago: int):
    """A loan signed ``days_ago`` days ago, its customer ``name`` on ``phone``, and its phone
    registered: (device, fresh enrollment code)."""
    loan = signed_loan(
        lender, price=price, down=down, signed_at=timezone.now() - timedelta(days=days_ago)
    )
    Customer.objects.filter(pk=loan.customer_id).update(full_name=name, phone=phone)
    device = phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark 20")
    return device, enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token


def _phone_enrolled(lender: Lender, *, fcm_token: str, **sold: Any) -> tuple[Device, str]:
    device, token = _phone_sold(lender, **sold)
    enrolled = device_enroll(
        token=token,
        imei=device.imei,
        serial="",
        model_name="",
        android_version="14",
        agent_version="1.0",
        fcm_token=fcm_token,
        agent_public_key=_agent_key(),
        actor=Actor.system(),
    )
    return Device.objects.select_related("loan").get(pk=enrolled.device.pk), enrolled.device_secret


def _pos_sale(
    lender: Lender, clerk, product, *, imei: str, sign: bool, sms_outbox, capture
) -> Sale:
    """A sale at the counter through the real services, to consent (code sent) or signed."""
    actor = Actor.system()
    sale = sale_start(clerk=clerk, lender_id=lender.pk, actor=actor)
    sale_customer_set(
        sale_id=sale.pk,
        clerk=clerk,
        full_name="Bruno Bastida Drill",
        phone="+52 55 1234 5678",
        national_id="BOXW310820HNERXN09",
        date_of_birth=None,
        actor=actor,
    )
    sale_phone_set(
        sale_id=sale.pk,
        clerk=clerk,
        imei=imei,
        brand="Moto",
        model_name="G24",
        price=Decimal("13579.00"),
        actor=actor,
    )
    sale_plan_set(
        sale_id=sale.pk,
        clerk=clerk,
        product_id=product.pk,
        down_payment=Decimal("2468.00"),
        actor=actor,
    )
    with capture(execute=True):
        sale_consent_send(sale_id=sale.pk, clerk=clerk, actor=actor)
    if sign:
        code = sms_code(sms_outbox)
        sale_consent_confirm(sale_id=sale.pk, clerk=clerk, code=code, actor=actor)
        sale_sign(sale_id=sale.pk, clerk=clerk, actor=actor)
    return Sale.objects.get(pk=sale.pk)


def _log_in(client: Client, lender: Lender, phone: str, sms_outbox, capture) -> None:
    """The customer's real login: the number, then the code the fake SMS gateway got."""
    with capture(execute=True):
        asked = client.post(
            reverse("customers:login", kwargs={"lender_slug": lender.slug}), {"phone": phone}
        )
    assert asked.status_code == 302
    code = sms_code(sms_outbox)
    done = client.post(
        reverse("customers:code", kwargs={"lender_slug": lender.slug}), {"code": code}
    )
    assert done.status_code == 302, done.content[:300]


@pytest.fixture
def plaid(settings) -> Iterator[FakePlaid]:
    with plaid_running(settings) as fake:
        yield fake


@pytest.fixture
def world(
    lender_a, lender_b, client, sms_outbox, django_capture_on_commit_callbacks, plaid
) -> dict[str, Any]:
    """Both lenders with phones (enrolled and waiting), notices on the phones, a payment
    through the webhook, a device event, shops, clerks and sales; the person on
    ``SHARED_PHONE`` borrows from both."""
    capture = django_capture_on_commit_callbacks
    w: dict[str, Any] = {}
    # lender B: the rows that must not move, from its webhook endpoint on (which takes them)
    w["b_endpoint"] = webhook_endpoint_create(
        lender_id=lender_b.pk, url=B_HOOK_URL, description="B only 5151", actor=Actor.system()
    ).endpoint
    w["b_phone"], w["b_secret"] = _phone_enrolled(
        lender_b,
        fcm_token="fcm-b-only-7f3a",
        name="Beatriz Bravo Drill",
        phone=SHARED_PHONE,
        price="13579",
        down="2468",
        days_ago=70,
    )
    # a late loan: the sweep restricts it, so B's phone is at a state version A's never reached
    loan_stage_sweep(
        lender_id=lender_b.pk,
        business_date=lender_local_date(lender=lender_b),
        id_from=0,
        id_to=10**12,
    )
    body = webhooks.event(w["b_phone"].loan.reference, "1234.56", "b-pay-1", currency="MXN")
    assert webhooks.deliver(client, lender_b, body).status_code == 200
    w["b_payment"] = Payment.objects.get(lender=lender_b)
    webhooks_project(lender_id=lender_b.pk)
    w["b_delivery"] = WebhookDelivery.objects.filter(lender=lender_b).order_by("id").first()
    # both lenders on M-Pesa, each with its own paybill, and a push started for B's loan
    paybill_for(lender_a)
    provider_account_save(
        lender_id=lender_b.pk,
        provider="mpesa",
        enabled=True,
        settings={"shortcode": "600100", "environment": "sandbox"},
        secrets={
            "consumer_key": "b-key-0001",
            "consumer_secret": "b-secret-01",
            "passkey": "b-pass-001",
        },
        actor=Actor.system(),
    )
    w["b_attempt"] = PaymentAttempt.objects.create(
        lender=lender_b,
        loan=w["b_phone"].loan,
        provider="mpesa",
        attempt_ref="ws_CO_B00000000001",
        amount=Decimal(500),
        currency="MXN",
        started_by="customer",
        status=PaymentAttempt.Status.STARTED,
    )
    # both lenders text through Africa's Talking, B also through Twilio and WhatsApp; one of
    # B's texts is out with the provider
    africastalking_for(lender_a)
    provider_account_save(
        lender_id=lender_b.pk,
        provider="africastalking",
        enabled=True,
        settings={"username": "lender-b-sms"},
        secrets={"api_key": "atsk_" + "b" * 32},
        actor=Actor.system(),
    )
    whatsapp_for(lender_b)
    w["b_text"] = Notification.objects.create(
        lender=lender_b,
        customer=w["b_phone"].loan.customer,
        loan=w["b_phone"].loan,
        kind="overdue",
        status="sms",
        locale="es",
        body="Aviso solo para B 4242",
        dedupe_key="drill-b-text",
        scheduled_for=timezone.now(),
        channel="sms",
        sent_at=timezone.now(),
        provider="africastalking",
        provider_ref="ATXid_b000000000000000000000000001",
        delivery="sent",
    )
    device_event_report(
        device_id=w["b_phone"].pk,
        event_id="b-evt-1",
        kind="rebooted",
        occurred_at=timezone.now(),
        detail={"note": "B only"},
        actor=Actor.system(),
    )
    w["b_waiting"], w["b_code"] = _phone_sold(
        lender_b,
        name="Bianca Bermudez Drill",
        phone="+525587654321",
        price="13579",
        down="2468",
        days_ago=1,
    )
    shop_b = ShopFactory(lenders=[lender_b])
    clerk_b, product_b = clerk_for(shop_b), LoanProductFactory(lender=lender_b)
    w["b_sales"] = [
        _pos_sale(
            lender_b,
            clerk_b,
            product_b,
            imei=valid_imei(),
            sign=sign,
            sms_outbox=sms_outbox,
            capture=capture,
        )
        for sign in (False, True)
    ]
    # lender A: the actors
    w["a_phone"], w["a_secret"] = _phone_enrolled(
        lender_a,
        fcm_token="fcm-a-1",
        name="Amina Achieng Drill",
        phone=SHARED_PHONE,
        price="12000",
        down="2000",
        days_ago=10,
    )
    w["a_waiting"], w["a_code"] = _phone_sold(
        lender_a,
        name="Akinyi Atieno Drill",
        phone="+254711000888",
        price="12000",
        down="2000",
        days_ago=1,
    )
    shop_a = ShopFactory(lenders=[lender_a])
    w["clerk_a"], w["product_a"] = clerk_for(shop_a), LoanProductFactory(lender=lender_a)
    w["a_sale"] = sale_start(clerk=w["clerk_a"], lender_id=lender_a.pk, actor=Actor.system())
    # a notice waiting on each phone
    for lender, phone, text in (
        (lender_a, w["a_phone"], "Notice for A"),
        (lender_b, w["b_phone"], "Aviso solo para B 4242"),
    ):
        notifications_queue(
            lender=lender,
            drafts=[
                Draft(
                    customer_id=phone.loan.customer_id,
                    loan_id=phone.loan_id,
                    kind="payment",
                    locale="en",
                    body=text,
                    dedupe_key=f"drill:{lender.slug}",
                )
            ],
        )
    notifications_dispatch()
    w["b_notices"] = list(
        Notification.objects.filter(lender=lender_b, status="pushed").values_list("pk", flat=True)
    )
    assert w["b_notices"]
    # the person on SHARED_PHONE, logged in at B's pages, sees B's loan and nothing of A's
    at_b = Client()
    _log_in(at_b, lender_b, SHARED_PHONE, sms_outbox, capture)
    page = at_b.get(
        reverse("customers:home", kwargs={"lender_slug": lender_b.slug})
    ).content.decode()
    assert w["b_phone"].loan.reference in page
    assert w["a_phone"].loan.reference not in page
    assert "Amina Achieng Drill" not in page
    for device in ("b_phone", "b_waiting", "a_phone"):
        w[device].refresh_from_db()
    w["sms_outbox"], w["capture"] = sms_outbox, capture
    w["plaid"] = plaid
    _funds_and_voice_world(w, lender_a, lender_b)
    return w


A_VOICE_TOKEN, B_VOICE_TOKEN = "a" * 32, "b" * 32
VOICE_SID = "AC" + "0123456789abcdef" * 2


def _funds_and_voice_world(w: dict[str, Any], lender_a: Lender, lender_b: Lender) -> None:
    """Funds alerts and reminder calls at both lenders: B's customer (the person on
    ``SHARED_PHONE``) consented to account reading at B, and has a reminder call of B's."""
    for lender, token in ((lender_a, A_VOICE_TOKEN), (lender_b, B_VOICE_TOKEN)):
        funds_account(lender, secret=FUNDS_SECRETS[lender.slug])
        provider_account_save(
            lender_id=lender.pk,
            provider="twilio_voice",
            enabled=True,
            settings={
                "account_sid": VOICE_SID,
                "from_number": "+15005550006",
                "voice_stages": "reminder,wallpaper,alarm,block_apps,lock",
            },
            secrets={"auth_token": token},
            actor=Actor.system(),
        )
        plaid_account(lender, w["plaid"])
    w["b_consent"] = reading_consent(w["b_phone"].loan.customer)
    w["b_item"], _token = plaid_item(
        w["b_consent"], w["plaid"], currency=lender_b.currency, available="999999.00"
    )
    loan = w["b_phone"].loan
    rows = [VoiceRow(loan.pk, loan.customer_id, "block_apps", False, "es")]
    today = lender_local_date(lender=lender_b)
    assert voice_reminders_queue(lender=lender_b, business_date=today, rows=rows) == 1
    w["b_call"] = VoiceCall.objects.get(lender=lender_b)


def caller() -> Client:
    """A client that gets the error page (500) rather than the exception: one more wrong answer."""
    return Client(raise_request_exception=False)


def b_secrets(lender_b: Lender, w: dict[str, Any]) -> set[str]:
    """What of B's must never appear in an answer to A's actors. (B's event id and payment
    reference are left out: A's phone and A's signer use the same strings for rows of A's.)"""
    values = {
        "Aviso solo para B 4242",
        w["b_phone"].fcm_token,
        "BOXW310820HNERXN09",
        "+525512345678",
        "+525587654321",
        B_HOOK_URL,
        "B only 5151",
    }
    for loan in Loan.objects.filter(lender=lender_b).select_related("customer"):
        values |= {loan.reference, loan.customer.full_name, loan.customer.national_id}
        for amount in (loan.device_price_amount, loan.financed_amount):
            values |= {f"{amount:,.2f}", f"{amount:.2f}"}
    for device in Device.objects.filter(lender=lender_b):
        values.add(device.imei)
    for sale in Sale.objects.filter(lender=lender_b):
        values |= {str(sale.public_id), sale.imei}
    values |= {f"{w['b_payment'].amount:,.2f}", f"{w['b_payment'].amount:.2f}"}
    values.discard(SHARED_PHONE)  # A's customer has it too
    return values


def test_no_endpoint_gives_lender_a_anything_of_lender_b(lender_a, lender_b, world, report) -> None:
    before = lender_rows(lender_b)
    audit_before = AuditEvent.objects.filter(lender=lender_b).count()
    drill = Boundary(secrets=b_secrets(lender_b, world))

    refusals_on_b = _agent_api(drill, world, lender_a, lender_b)
    _payments_webhook(drill, world, lender_a, lender_b)
    _provider_callbacks(drill, world, lender_a, lender_b)
    _messaging_callbacks(drill, world, lender_a, lender_b)
    _funds_and_voice(drill, world, lender_a, lender_b)
    _pos_pages(drill, world, lender_b)
    _customer_pages(drill, world, lender_a, lender_b)
    _lender_api(drill, world, lender_a, lender_b)

    untried = endpoint_routes() - set(drill.tried) - set(NOT_LENDER_OWNED)
    stale = set(NOT_LENDER_OWNED) - endpoint_routes()
    changes = [c for c in row_changes(before, lender_rows(lender_b)) if not designed_on_b(c)]
    new_audit = list(
        AuditEvent.objects.filter(lender=lender_b)
        .order_by("seq")[audit_before:]
        .values_list("action", flat=True)
    )
    report(
        f"tenancy, API and pages: {sum(drill.tried.values())} requests to {len(drill.tried)} endpoints "
        f"(agent API, payments webhook, POS pages, customer pages, lender API) by lender A's phone, "
        f"signer, clerk, customer and API key on lender B's rows; answers {dict(sorted(drill.statuses.items()))}; "
        f"lender B's rows changed: {len(changes)}; leaks: {len(drill.leaks)} {drill.leaks[:10]}"
    )
    assert not untried, f"endpoints neither tried nor listed as not lender-owned: {sorted(untried)}"
    assert not stale, f"NOT_LENDER_OWNED names endpoints that are gone: {sorted(stale)}"
    assert not drill.leaks
    assert not changes, changes
    assert new_audit == [DevicesAction.ENROLLMENT_REFUSED] * refusals_on_b, new_audit


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _agent_api(drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender) -> int:
    """Lender A's phone: crossed credentials, B's versions, notices and event ids, B's
    enrollment code; its customer link. Returns how many refusals land on B's audit chain."""
    agent = caller()
    crossed = device_authenticated(agent_urls)
    assert len(crossed) >= 4, crossed  # check-in, ack, events, push token at least
    for name in crossed:  # one phone's id with the other's secret
        for device, secret in ((w["a_phone"], w["b_secret"]), (w["b_phone"], w["a_secret"])):
            drill.hit(
                agent,
                "post",
                AGENT + name,
                {401},
                body=_json({"version": 1}),
                HTTP_AUTHORIZATION=f"Device {device.pk}:{secret}",
            )
    # the phone's own credentials, naming B's rows: they reach A's phone only
    own = {"HTTP_AUTHORIZATION": f"Device {w['a_phone'].pk}:{w['a_secret']}"}
    b_version = w["b_phone"].desired_version  # never issued to A's phone
    drill.hit(agent, "post", AGENT + "ack", {409}, body=_json({"version": b_version}), **own)
    drill.hit(
        agent,
        "post",
        AGENT + "ack",
        {409},
        body=_json({"version": b_version, "error_code": "expired"}),
        **own,
    )
    drill.hit(agent, "post", AGENT + "check-in", {200}, body=_json({"version": b_version}), **own)
    acked = drill.hit(
        agent, "post", AGENT + "notices/ack", {200}, body=_json({"ids": w["b_notices"]}), **own
    )
    if acked.json() != {"acknowledged": 0}:
        drill.leaks.append(f"notices/ack of B's notices: {acked.json()}")
    drill.hit(
        agent,
        "post",
        AGENT + "events",
        {200},
        **own,
        body=_json(
            {
                "event_id": "b-evt-1",
                "kind": "tamper_suspected",
                "occurred_at": timezone.now().isoformat(),
                "detail": {"device_id": w["b_phone"].pk},
            }
        ),
    )
    drill.hit(
        agent, "post", AGENT + "fcm-token", {200}, body=_json({"fcm_token": "fcm-a-2"}), **own
    )
    # enrollment: B's code scanned by A's phones (waiting and enrolled), and A's code by B's
    tries = [
        (w["b_code"], w["a_waiting"].imei),
        (w["b_code"], w["a_phone"].imei),
        (w["a_code"], w["b_waiting"].imei),
        (w["a_code"], w["b_phone"].imei),
    ]
    for token, imei in tries:
        drill.hit(
            agent,
            "post",
            AGENT + "enroll",
            {409},
            body=_json(
                {
                    "token": token,
                    "imei": imei,
                    "agent_public_key": _agent_key(),
                    "fcm_token": "fcm-thief",
                }
            ),
        )
    # the customer link opens A's customer's pages, at A's address, and nothing at B's
    path = drill.hit(agent, "post", AGENT + "customer-link", {200}, **own).json()["url"]
    path = path.removeprefix("http://testserver")
    token = path.rstrip("/").rsplit("/", 1)[1]
    if path != reverse("customers:link", kwargs={"lender_slug": lender_a.slug, "token": token}):
        drill.leaks.append(f"customer-link of A's phone opens {path}")
    drill.hit(
        caller(),
        "get",
        reverse("customers:link", kwargs={"lender_slug": lender_b.slug, "token": token}),
        {410},
    )
    opened = caller()
    drill.hit(opened, "get", path, {302}, redirect_to=_page("home", lender_a))
    drill.hit(opened, "get", _page("home", lender_b), {302}, redirect_to=_page("login", lender_b))
    return sum(token == w["b_code"] for token, _ in tries)


def _page(name: str, lender: Lender, **kwargs: Any) -> str:
    return reverse(f"customers:{name}", kwargs={"lender_slug": lender.slug, **kwargs})


def _payments_webhook(
    drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender
) -> None:
    """Events signed with lender A's key that name B's loan: refused as an unknown loan, the
    refusal on A's record; and B's event id and payment reference used on A's own loan."""
    provider, url = caller(), webhooks.URL
    b_ref, b_pay = w["b_phone"].loan.reference, w["b_payment"]
    events = [
        ("MXN", {}),
        ("KES", {}),
        ("MXN", {"type_": "payment.reversed", "reverses": b_pay.provider_ref}),
    ]
    for n, (currency, extra) in enumerate(events):
        replies = []
        for ref in (b_ref, MISSING_REF):
            body = webhooks.event(ref, "500.00", f"a-{n}", currency=currency, **extra)
            replies.append(
                drill.hit(
                    provider, "post", url, {404}, body=body, **webhooks.headers(lender_a, body)
                )
            )
        drill.same(*replies, swap=(b_ref, MISSING_REF), label=f"webhook naming B's loan ({n})")
    rejected = AuditEvent.objects.filter(
        lender=lender_a, action=CollectionsAction.WEBHOOK_REJECTED, data__problem="loan_not_found"
    ).count()
    if rejected != 2 * len(events):  # designed: refused, and on the signer's record, not on B's
        drill.leaks.append(f"{rejected} of {2 * len(events)} refusals on A's audit chain")
    body = webhooks.event(b_ref, "500.00", "a-9", currency="MXN")  # A's key, B's name
    drill.hit(
        provider,
        "post",
        url,
        {401},
        body=body,
        HTTP_X_LENDER=lender_b.slug,
        HTTP_X_SIGNATURE=webhooks.headers(lender_a, body)["HTTP_X_SIGNATURE"],
    )
    a_ref = w["a_phone"].loan.reference
    b_event_id = WebhookEvent.objects.get(lender=lender_b).event_id
    for body in (
        webhooks.event(a_ref, "100.00", b_pay.provider_ref, event_id=b_event_id),
        webhooks.event(
            a_ref, "50.00", "a-rev-1", type_="payment.reversed", reverses=b_pay.provider_ref
        ),
    ):
        drill.hit(provider, "post", url, {200}, body=body, **webhooks.headers(lender_a, body))


def _provider_callbacks(
    drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender
) -> None:
    """Daraja's callbacks on A's secret path that name B's loan or B's push, beside ones that
    name nothing (the same answer, nothing applied, the refusal on A's record); A's path token
    on B's path (refused); a signed provider webhook sent to B's address."""
    provider = caller()
    b_ref = w["b_phone"].loan.reference
    for route in ("c2b-validation", "c2b-confirmation"):
        replies = []
        for ref in (b_ref, MISSING_REF):
            body = {
                "TransactionType": "Pay Bill",
                "TransID": f"SA{route[4:6].upper()}{ref[-6:]}",
                "TransTime": "20261201101010",
                "TransAmount": "500.00",
                "BusinessShortCode": SHORTCODE,
                "BillRefNumber": ref,
            }
            replies.append(
                drill.hit(
                    provider,
                    "post",
                    daraja.path(lender_a, route),
                    {200},
                    body=json.dumps(body).encode(),
                )
            )
        swap = (b_ref, MISSING_REF)
        if route == "c2b-confirmation":  # the receipt numbers differ with the reference
            swap = (
                f"SA{route[4:6].upper()}{b_ref[-6:]}",
                f"SA{route[4:6].upper()}{MISSING_REF[-6:]}",
            )
        drill.same(*replies, swap=swap, label=f"M-Pesa {route} naming B's loan")
    replies = []
    for push in (w["b_attempt"].attempt_ref, "ws_CO_000000000000"):
        body = {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "1-1",
                    "CheckoutRequestID": push,
                    "ResultCode": 0,
                    "ResultDesc": "ok",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": 500.0},
                            {"Name": "MpesaReceiptNumber", "Value": "SAB0000001"},
                            {"Name": "TransactionDate", "Value": 20261201101010},
                        ]
                    },
                }
            }
        }
        replies.append(
            drill.hit(
                provider,
                "post",
                daraja.path(lender_a, "stk"),
                {200},
                body=json.dumps(body).encode(),
            )
        )
    drill.same(
        *replies,
        swap=(w["b_attempt"].attempt_ref, "ws_CO_000000000000"),
        label="STK naming B's push",
    )
    a_token = daraja.path(lender_a, "stk").split("/")[-3]
    for route in ("stk", "c2b-confirmation"):
        b_path = daraja.path(lender_b, route)
        drill.hit(
            provider, "post", b_path.replace(b_path.split("/")[-3], a_token), {403}, body=b"{}"
        )
    drill.hit(
        provider,
        "post",
        reverse(
            "payments-api:provider", kwargs={"provider": "stripe", "lender_slug": lender_b.slug}
        ),
        {401, 404},
        body=b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
    )


def _messaging_callbacks(
    drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender
) -> None:
    """Africa's Talking on A's secret path reporting B's text delivered, and the person both
    lenders lend to writing STOP to A (A's opt-out only) and asking A for the balance, a pay
    link and a promise (answered of A's loan only); A's path token on B's path; B's
    Twilio and WhatsApp addresses with signatures no secret of B's made, and B's WhatsApp
    handshake with a guessed token."""
    provider = caller()
    form = "application/x-www-form-urlencoded"

    def at_path(lender: Lender, route: str) -> str:
        url = messaging_callback_url(
            provider="africastalking", lender_slug=lender.slug, route=route
        )
        return urlsplit(url).path

    b_ref = w["b_text"].provider_ref
    report = {"id": b_ref, "status": "Failed", "failureReason": "UserInBlacklist"}
    drill.hit(
        provider,
        "post",
        at_path(lender_a, "delivery"),
        {200},
        body=urlencode(report).encode(),
        content_type=form,
    )
    # the person both lenders lend to writes STOP to A, then asks A's number for the balance,
    # a pay link and a promise: A answers of A's loan alone, nothing of B's moves or is told
    for n, text in enumerate(("STOP", "SALDO", "PAGAR", "PROMESA 1/1"), start=1):
        ask = {"from": SHARED_PHONE, "to": "20880", "text": text, "id": f"at-drill-{n}"}
        drill.hit(
            provider,
            "post",
            at_path(lender_a, "inbound"),
            {200},
            body=urlencode(ask).encode(),
            content_type=form,
        )
    answers = Notification.objects.filter(lender=lender_a, kind=Notification.Kind.REPLY)
    assert set(answers.values_list("loan_id", flat=True)) == {w["a_phone"].loan_id}
    told = " ".join(answers.values_list("body", flat=True))
    assert answers.count() == 3
    assert not [secret for secret in drill.secrets if secret in told]
    drill.hit(
        provider,
        "post",
        at_path(lender_a, "optout"),
        {200},
        body=urlencode({"senderId": "SMARTCOL", "phoneNumber": SHARED_PHONE}).encode(),
        content_type=form,
    )
    a_token = at_path(lender_a, "delivery").split("/")[-3]
    for route in ("delivery", "inbound", "optout"):
        b_path = at_path(lender_b, route)
        forged = b_path.replace(b_path.split("/")[-3], a_token)
        drill.hit(
            provider, "post", forged, {403}, body=urlencode(report).encode(), content_type=form
        )
    for route in ("delivery", "inbound"):
        url = messaging_callback_url(provider="twilio", lender_slug=lender_b.slug, route=route)
        fields = {
            "MessageSid": "SM" + "b" * 32,
            "MessageStatus": "delivered",
            "From": SHARED_PHONE,
            "Body": "STOP",
        }
        drill.hit(
            provider,
            "post",
            urlsplit(url).path,
            {403, 404},
            body=urlencode(fields).encode(),
            content_type=form,
            HTTP_X_TWILIO_SIGNATURE=twilio_signature("0" * 32, url, fields),
        )
    wa_path = urlsplit(
        messaging_callback_url(provider="whatsapp", lender_slug=lender_b.slug, route="")
    ).path
    drill.hit(
        provider,
        "post",
        wa_path,
        {403},
        body=b'{"object": "whatsapp_business_account", "entry": []}',
        HTTP_X_HUB_SIGNATURE_256="sha256=" + "0" * 64,
    )
    handshake = {
        "hub.mode": "subscribe",
        "hub.verify_token": "guess-" + "x" * 16,
        "hub.challenge": "42",
    }
    drill.hit(provider, "get", wa_path, {403}, data=handshake)
    assert ContactOptOut.objects.filter(lender=lender_a, phone=SHARED_PHONE).exists()


FUNDS_SECRETS = {
    "lender-a": "whsec_" + base64.b64encode(b"a-funds-secret-0123456789abcdef").decode(),
    "lender-b": "whsec_" + base64.b64encode(b"b-funds-secret-0123456789abcdef").decode(),
}


def _funds_and_voice(
    drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender
) -> None:
    """A's aggregator (A's secret) alerting of B's customer by B's consent reference, at A
    (unknown there: nothing sent) and at B (refused: not B's signature); A's Twilio account
    pressing keys and ending B's reminder call, on B's address (refused: not B's signature)
    and on A's (no such call at A, like a call that does not exist)."""
    provider = caller()
    body = json.dumps(
        {
            "type": "funds.available",
            "customer_reference": w["b_consent"].reference,
            "provider": "drill",
            "amount_available": "9999.00",
            "currency": "KES",
            "observed_at": timezone.now().isoformat(),
        }
    ).encode()
    for named, allowed in ((lender_a, {200}), (lender_b, {401})):
        msg_id = f"msg_drill_{named.slug}"
        now = timezone.now()
        answer = drill.hit(
            provider,
            "post",
            "/api/funds/v1/alerts",
            allowed,
            body=body,
            HTTP_X_LENDER=named.slug,
            HTTP_WEBHOOK_ID=msg_id,
            HTTP_WEBHOOK_TIMESTAMP=str(int(now.timestamp())),
            HTTP_WEBHOOK_SIGNATURE=Webhook(FUNDS_SECRETS[lender_a.slug]).sign(msg_id, now, body),
        )
        if answer.status_code == 200 and answer.json()["outcome"] != "unknown_customer":
            drill.leaks.append(f"an alert at A of B's customer: {answer.json()}")
    # Plaid's genuine webhook of B's Item, posted at A's address: not A's Item (nothing read,
    # nothing sent); and one not signed by Plaid at B's address, refused
    fake: FakePlaid = w["plaid"]
    body, headers = fake.signed(w["b_item"])
    answer = drill.hit(
        provider,
        "post",
        f"/api/funds/v1/plaid/{lender_a.slug}/",
        {200},
        body=body,
        HTTP_PLAID_VERIFICATION=headers["Plaid-Verification"],
    )
    if answer.status_code == 200 and answer.json()["outcome"] != "unknown_item":
        drill.leaks.append(f"Plaid at A of B's Item: {answer.json()}")
    if "/accounts/balance/get" in fake.calls:
        drill.leaks.append("Plaid at A read the balance of B's Item")
    forger = FakePlaid(kid=fake.kid)
    body, headers = forger.signed(w["b_item"])
    drill.hit(
        provider,
        "post",
        f"/api/funds/v1/plaid/{lender_b.slug}/",
        {401},
        body=body,
        HTTP_PLAID_VERIFICATION=headers["Plaid-Verification"],
    )
    form = "application/x-www-form-urlencoded"
    call = w["b_call"]
    for route, fields in (
        ("gather", {"CallSid": "CA" + "b" * 32, "Digits": "2", "AccountSid": VOICE_SID}),
        ("status", {"CallSid": "CA" + "b" * 32, "CallStatus": "completed"}),
    ):
        b_url = voice_callback_url(lender_slug=lender_b.slug, call_id=call.pk, route=route)
        drill.hit(
            provider,
            "post",
            urlsplit(b_url).path,
            {403},
            body=urlencode(fields).encode(),
            content_type=form,
            HTTP_X_TWILIO_SIGNATURE=twilio_signature(A_VOICE_TOKEN, b_url, fields),
        )
        replies = []
        for call_id in (call.pk, 10**9):
            a_url = voice_callback_url(lender_slug=lender_a.slug, call_id=call_id, route=route)
            replies.append(
                drill.hit(
                    provider,
                    "post",
                    urlsplit(a_url).path,
                    {404} if route == "gather" else {200},
                    body=urlencode(fields).encode(),
                    content_type=form,
                    HTTP_X_TWILIO_SIGNATURE=twilio_signature(A_VOICE_TOKEN, a_url, fields),
                )
            )
        drill.same(*replies, swap=(str(call.pk), str(10**9)), label=f"voice {route} at A")
    # the person on SHARED_PHONE, logged in at A, gives and withdraws A's consent only; at
    # B's pages, the login page
    me = caller()
    _log_in(me, lender_a, SHARED_PHONE, w["sms_outbox"], w["capture"])
    for name in ("account-reading-give", "account-reading-revoke"):
        drill.hit(me, "post", _page(name, lender_a), {302}, redirect_to=_page("home", lender_a))
        drill.hit(me, "post", _page(name, lender_b), {302}, redirect_to=_page("login", lender_b))


def _pos_pages(drill: Boundary, w: dict[str, Any], lender_b: Lender) -> None:
    """A clerk of A's shop on every page of each of B's sales, GET and POST, beside a sale
    that does not exist; the clerk's home, and a sale started for B."""
    pos = caller()
    login = {"username": w["clerk_a"].user.username, "password": PASSWORD}
    assert pos.post(reverse("pos:login"), login).status_code == 302
    assert pos.get(reverse("pos:customer", args=[w["a_sale"].public_id])).status_code == 200
    filled = {
        "full_name": "X Y",
        "phone": "0712 345 678",
        "national_id": "23456781",
        "imei": valid_imei(),
        "brand": "T",
        "model_name": "S",
        "price": "100",
        "product": w["product_a"].pk,
        "down_payment": "10",
        "code": "123456",
    }
    for sale in w["b_sales"]:
        for name in routes_taking(counter_urls, "public_id"):
            for method, data in (
                ("get", None),
                ("post", {**filled, "action": "send"}),
                ("post", {**filled, "action": "confirm"}),
            ):
                ghost = str(uuid.uuid4())
                replies = [
                    drill.hit(
                        pos, method, reverse(f"pos:{name}", args=[public_id]), {404}, data=data
                    )
                    for public_id in (str(sale.public_id), ghost)
                ]
                drill.same(
                    *replies, swap=(str(sale.public_id), ghost), label=f"pos:{name} {method}"
                )
    drill.hit(pos, "get", reverse("pos:home"), {200})
    drill.hit(
        pos, "post", reverse("pos:home"), {200}, data={"lender": lender_b.pk}
    )  # the form: not offered


def _customer_pages(drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender) -> None:
    """The person on SHARED_PHONE, logged in at A's pages: B's pages, and B's loans and
    payment at A's; A's login code tried at B's; the demo checkout with a forged link."""
    sms_outbox, capture = w["sms_outbox"], w["capture"]
    me, a_ref, b_pay = caller(), w["a_phone"].loan.reference, w["b_payment"]
    _log_in(me, lender_a, SHARED_PHONE, sms_outbox, capture)
    for lender in (lender_a, lender_b):
        at_a = lender == lender_a
        to = None if at_a else _page("login", lender)  # B's pages: log in at B first
        drill.hit(me, "get", _page("home", lender), {200} if at_a else {302}, redirect_to=to)
        status = drill.hit(
            me, "get", _page("status", lender), {200} if at_a else {302}, redirect_to=to
        )
        if at_a and [loan["reference"] for loan in status.json()["loans"]] != [a_ref]:
            drill.leaks.append(f"status lists {status.json()['loans']}")
        for loan in Loan.objects.filter(lender=lender_b):
            for name in routes_taking(selfservice_urls, "reference"):
                extra = {"payment_id": b_pay.pk} if name == "receipt" else {}
                for method in ("get", "post"):  # the wrong one is refused with 405
                    replies = [
                        drill.hit(
                            me,
                            method,
                            _page(name, lender, reference=ref, **extra),
                            ({404} if at_a else {302}) | {405},
                            redirect_to=to,
                            data={"until": "2030-01-01", "reason": "Drill."},
                        )
                        for ref in (loan.reference, MISSING_REF)
                    ]
                    drill.same(
                        *replies,
                        swap=(loan.reference, MISSING_REF),
                        label=f"customers:{name} {lender.slug}",
                    )
    # B's payment's receipt under A's own loan, beside a payment that does not exist
    replies = [
        drill.hit(me, "get", _page("receipt", lender_a, reference=a_ref, payment_id=pk), {404})
        for pk in (b_pay.pk, 10**9)
    ]
    drill.same(*replies, swap=(str(b_pay.pk), str(10**9)), label="receipt of B's payment")
    # a code sent by A's page to this number, typed at B's page: the form says it is not right
    stranger = caller()
    with capture(execute=True):
        stranger.post(_page("login", lender_a), {"phone": SHARED_PHONE})
    drill.hit(stranger, "post", _page("code", lender_b), {200}, data={"code": sms_code(sms_outbox)})
    drill.hit(stranger, "get", _page("home", lender_b), {302}, redirect_to=_page("login", lender_b))
    # a number only A knows, at B's page: the answer of any number, and no code sent
    sent = len(sms_outbox)
    with capture(execute=True):
        drill.hit(
            caller(),
            "post",
            _page("login", lender_b),
            {302},
            data={"phone": "+254711000888"},
            redirect_to=_page("code", lender_b),
        )
    if len(sms_outbox) != sent:
        drill.leaks.append("a code was sent at B's page to a number only A knows")
    # the demo provider's checkout, with a link that names B's loan but was never signed
    forged = base64.urlsafe_b64encode(
        _json({"lender": lender_b.slug, "loan": w["b_phone"].loan.reference})
    )
    for method in ("get", "post"):
        drill.hit(
            caller(),
            method,
            reverse("fake-checkout:page", args=[f"{forged.decode()}:x:sig"]),
            {404},
        )


def _lender_api(drill: Boundary, w: dict[str, Any], lender_a: Lender, lender_b: Lender) -> None:
    """Lender A's API key, with every scope, on B's loans, payments and phones: each answer
    to B's row is the answer to a row that does not exist, and lists filtered on B's rows
    are empty."""
    _, key = api_key_for(lender_a)
    client = caller()
    auth = api_key_header(key)
    b_loan, b_device = w["b_phone"].loan, w["b_phone"]
    ghost_loan = Loan.objects.order_by("-id").first().pk + 10**6
    ghost_device = Device.objects.order_by("-id").first().pk + 10**6
    keys = iter(range(10**6))

    def post(path: str, body: dict[str, Any]) -> Any:
        headers = {**auth, "HTTP_IDEMPOTENCY_KEY": f"drill-{next(keys)}"}
        return drill.hit(client, "post", path, {404}, body=_json(body), **headers)

    def both(method: str, template: str, real: int, ghost: int, body: Any = None) -> None:
        if method == "post" and body is None:
            answers = [post(LENDER_API + template.format(i), {}) for i in (real, ghost)]
        elif method == "get":
            answers = [
                drill.hit(client, "get", LENDER_API + template.format(i), {404}, **auth)
                for i in (real, ghost)
            ]
        else:
            answers = [
                post(LENDER_API + template.format(i), {**body, "loan_id": i} if body else {})
                for i in (real, ghost)
            ]
        drill.same(*answers, (str(real), str(ghost)), f"{method.upper()} {template}")

    both("get", "loans/{}", b_loan.pk, ghost_loan)
    waiting = w["b_waiting"].loan_id  # B's phone waiting to enrol: no code for A's key
    both("post", "loans/{}/enrollment-code", waiting, ghost_loan)
    # a loan on B's product: as on a product that does not exist (and nothing of B's made)
    b_product = LoanProduct.objects.filter(lender=lender_b).order_by("id").first().pk
    ghost_product = LoanProduct.objects.order_by("-id").first().pk + 10**6
    text = "I agree."
    sold = {
        "external_id": "drill-1",
        "customer": {"full_name": "Drill", "phone": SHARED_PHONE, "national_id": "12345678"},
        "phone": {"imei": w["b_waiting"].imei, "brand": "X", "model": "Y"},
        "device_price": "12000.00",
        "down_payment": "2000.00",
        "consent": {
            "text": text,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text_version": "1",
            "method": "sms_code",
            "given_at": timezone.now().isoformat(),
        },
    }
    answers = []
    for product in (b_product, ghost_product):
        headers = {**auth, "HTTP_IDEMPOTENCY_KEY": f"drill-{next(keys)}"}
        answers.append(
            drill.hit(
                client,
                "post",
                LENDER_API + "loans",
                {400},
                body=_json({**sold, "product_id": product}),
                **headers,
            )
        )
    drill.same(*answers, (str(b_product), str(ghost_product)), "POST loans on B's product")
    both("get", "devices/{}", b_device.pk, ghost_device)
    received = timezone.now().isoformat()
    payment = {
        "amount": "100.00",
        "currency": "MXN",
        "provider_reference": "drill-pay-1",
        "received_at": received,
    }
    both("post", "payments", b_loan.pk, ghost_loan, payment)
    reversal = {
        "kind": "chargeback",
        "amount": "100.00",
        "currency": "MXN",
        "provider_reference": "drill-rev-1",
        "payment_provider_reference": w["b_payment"].provider_ref,
        "received_at": received,
    }
    both("post", "payments/reversals", b_loan.pk, ghost_loan, reversal)
    commands = {
        "lift": {"reason": "Drill."},
        "promise": {"reason": "Drill.", "until": str(timezone.now().date() + timedelta(days=3))},
        "hardship-pause": {
            "reason": "Drill.",
            "until": str(timezone.now().date() + timedelta(days=9)),
        },
        "manual-lock": {"reason": "Drill."},
        "message": {"reason": "Drill."},
        "unlock-code/resend": {"reason": "Drill."},
    }
    for command, body in commands.items():
        answers = [
            post(f"{LENDER_API}devices/{i}/{command}", body) for i in (b_device.pk, ghost_device)
        ]
        drill.same(*answers, (str(b_device.pk), str(ghost_device)), f"POST devices/<id>/{command}")
    _lender_api_webhooks(drill, w, client, auth, both)
    # lists: A's own rows only, whatever the filter names
    for path, model in (
        (f"loans?external_id={b_loan.reference}", Loan),
        ("loans?stage=lock", Loan),
        ("loans?days_overdue_min=1", Loan),
        ("loans", Loan),
        (f"payments?loan_id={b_loan.pk}", Payment),
        ("payments", Payment),
        (f"devices?loan_id={b_loan.pk}", Device),
        ("devices", Device),
        ("webhooks/endpoints", WebhookEndpoint),
    ):
        listed = drill.hit(client, "get", LENDER_API + path, {200}, **auth).json()["results"]
        ids = {row["id"] for row in listed}
        own = set(model._default_manager.filter(lender=lender_a).values_list("pk", flat=True))
        if not ids <= own:
            drill.leaks.append(f"GET {path} lists rows not A's: {sorted(ids - own)}")
    # the events feed: A's chain only, from its start (a cursor names a place in A's chain)
    a_loans = set(Loan.objects.filter(lender=lender_a).values_list("pk", flat=True))
    url: str = LENDER_API + "events?limit=200"
    for _ in range(50):
        page = drill.hit(client, "get", url, {200}, **auth).json()
        if not page["results"]:
            break
        strays = {e["data"].get("loan_id") for e in page["results"]} - a_loans
        if strays:
            drill.leaks.append(f"GET events lists events of loans not A's: {sorted(strays)}")
        url = urlsplit(page["next"]).path + "?" + urlsplit(page["next"]).query


def _lender_api_webhooks(
    drill: Boundary, w: dict[str, Any], client: Client, auth: dict[str, str], both: Any
) -> None:
    """A's key on B's webhook endpoint and its delivery: each as one that does not exist."""
    endpoint, delivery = w["b_endpoint"].pk, w["b_delivery"].pk
    ghost_endpoint = WebhookEndpoint.objects.order_by("-id").first().pk + 10**6
    ghost_delivery = WebhookDelivery.objects.order_by("-id").first().pk + 10**6
    both("get", "webhooks/endpoints/{}", endpoint, ghost_endpoint)
    both("get", "webhooks/endpoints/{}/deliveries", endpoint, ghost_endpoint)
    both("post", "webhooks/endpoints/{}/secret-rotation", endpoint, ghost_endpoint)
    both("post", "webhooks/deliveries/{}/resend", delivery, ghost_delivery)
    for method, body in (
        ("patch", _json({"enabled": False, "url": "https://a.example/"})),
        ("delete", None),
    ):
        answers = [
            drill.hit(
                client,
                method,
                f"{LENDER_API}webhooks/endpoints/{i}",
                {404},
                body=body,
                **auth,
            )
            for i in (endpoint, ghost_endpoint)
        ]
        drill.same(
            *answers,
            (str(endpoint), str(ghost_endpoint)),
            f"{method.upper()} webhooks/endpoints/<id>",
        )
