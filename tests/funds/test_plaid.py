"""Funds alerts from Plaid: Plaid's webhook, signed with its ``Plaid-Verification`` JWT, makes
us read the Item's balance with Plaid's own client; a balance that covers what is due sends
the link to pay, once, within the funds alerts' rules. Everything else is refused (401) or
ignored, and audited.

Plaid is the loopback fake (tools/fakes/plaid.py): it generates the EC key, signs the
webhooks and answers the client's calls, so the verification and the client run for real."""

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.collections.models import FundsAlert
from apps.core.actor import Actor
from apps.customers.services import account_reading_consent_revoke
from apps.notifications.models import Notification
from tests.collections.factories import signed_loan
from tests.funds.accounts import plaid_account, plaid_item, plaid_running, reading_consent
from tools.fakes.plaid import FakePlaid

pytestmark = pytest.mark.django_db

NAIROBI = ZoneInfo("Africa/Nairobi")
SIGNED = datetime(2026, 10, 1, 10, 0, tzinfo=NAIROBI)
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NAIROBI)  # a Tuesday, inside contact hours


def address(lender) -> str:
    return f"/api/funds/v1/plaid/{lender.slug}/"


@pytest.fixture
def plaid(settings) -> Iterator[FakePlaid]:
    with plaid_running(settings) as fake:
        yield fake


def late_item(lender, fake: FakePlaid, *, available: str, login_required: bool = False):
    """A late loan whose customer consented and linked a Plaid Item holding ``available``."""
    with time_machine.travel(SIGNED, tick=False):
        loan = signed_loan(lender)
    with time_machine.travel(MORNING - timedelta(days=1), tick=False):
        consent = reading_consent(loan.customer)
        item_id, token = plaid_item(
            consent,
            fake,
            currency=loan.currency,
            available=available,
            login_required=login_required,
        )
    return loan, item_id, token


@pytest.fixture
def rich(lender_a, plaid):
    plaid_account(lender_a, plaid)
    return late_item(lender_a, plaid, available="1000000.00")


def post(client, lender, body: bytes, headers: dict[str, str], *, at: datetime = MORNING):
    with time_machine.travel(at, tick=False):
        return client.post(
            address(lender),
            body,
            content_type="application/json",
            HTTP_PLAID_VERIFICATION=headers["Plaid-Verification"],
        )


def webhook(client, lender, fake: FakePlaid, item_id: str, *, at: datetime = MORNING, **kw):
    with time_machine.travel(at, tick=False):
        body, headers = fake.signed(item_id, **kw)
    return post(client, lender, body, headers, at=at)


def outcome_of(answer) -> str:
    assert answer.status_code == 200, answer.content
    return answer.json()["outcome"]


def funds_links(loan) -> int:
    return Notification.objects.filter(loan=loan, kind=Notification.Kind.FUNDS).count()


def ignored_why() -> list[str]:
    events = AuditEvent.objects.filter(action="collections.funds_alert.plaid_ignored")
    return [e.data["why"] for e in events.order_by("id")]


def test_a_balance_covering_the_amount_due_sends_the_link_once(
    client, lender_a, plaid, rich, caplog
) -> None:
    loan, item_id, token = rich
    caplog.set_level(logging.DEBUG)
    assert outcome_of(webhook(client, lender_a, plaid, item_id)) == "sent"
    assert funds_links(loan) == 1
    alert = FundsAlert.objects.get(loan=loan)
    assert (alert.provider, alert.available) == ("plaid", 1000000)
    event = AuditEvent.objects.get(action="collections.funds_alert.received")
    assert event.lender_id == lender_a.pk
    assert plaid.calls == ["/webhook_verification_key/get", "/accounts/balance/get"]
    # the access token is sealed, and nowhere in the record or the logs
    assert token not in json.dumps([e.data for e in AuditEvent.objects.all()])
    assert token not in caplog.text
    assert "1000000" not in caplog.text  # nor the balance (Plaid's client logs answers in debug)
    later = MORNING + timedelta(minutes=5)
    answer = webhook(client, lender_a, plaid, item_id, at=later, code="DEFAULT_UPDATE")
    assert outcome_of(answer) == "already_today"
    assert funds_links(loan) == 1
    assert plaid.calls.count("/webhook_verification_key/get") == 1  # the key, kept a while


def test_a_balance_below_the_amount_due_sends_nothing(client, lender_a, plaid) -> None:
    plaid_account(lender_a, plaid)
    loan, item_id, _token = late_item(lender_a, plaid, available="1.00")
    assert outcome_of(webhook(client, lender_a, plaid, item_id)) == "balance_below_due"
    assert funds_links(loan) == 0
    assert not FundsAlert.objects.exists()
    assert ignored_why() == ["balance_below_due"]
    event = AuditEvent.objects.get(action="collections.funds_alert.plaid_ignored")
    assert "1.0" not in json.dumps(event.data)  # the customer's balance is not the lender's


def test_a_code_that_says_nothing_of_money_is_ignored_unread(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    answer = webhook(client, lender_a, plaid, item_id, code="TRANSACTIONS_REMOVED")
    assert outcome_of(answer) == "ignored"
    assert "/accounts/balance/get" not in plaid.calls
    assert funds_links(loan) == 0


def test_a_bad_signature_is_refused(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    other = FakePlaid(kid=plaid.kid)  # another key under Plaid's key id: not Plaid's signature
    with time_machine.travel(MORNING, tick=False):
        body, headers = other.signed(item_id)
    answer = post(client, lender_a, body, headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "signature_invalid"
    rejected = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert (rejected.lender_id, rejected.data["provider"]) == (None, "plaid")
    headers = {"Plaid-Verification": "not-a-jwt"}
    assert post(client, lender_a, body, headers).status_code == 401
    assert funds_links(loan) == 0


def test_a_webhook_signed_over_five_minutes_ago_is_refused(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    with time_machine.travel(MORNING - timedelta(minutes=6), tick=False):
        body, headers = plaid.signed(item_id)
    answer = post(client, lender_a, body, headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "timestamp_stale"
    assert funds_links(loan) == 0


def test_a_tampered_body_is_refused(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    with time_machine.travel(MORNING, tick=False):
        body, headers = plaid.signed(item_id, code="TRANSACTIONS_REMOVED")
    tampered = body.replace(b"TRANSACTIONS_REMOVED", b"DEFAULT_UPDATE")
    answer = post(client, lender_a, tampered, headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "signature_invalid"
    assert funds_links(loan) == 0


def test_an_item_whose_login_is_required_is_audited_and_sends_nothing(
    client, lender_a, plaid
) -> None:
    plaid_account(lender_a, plaid)
    loan, item_id, _token = late_item(lender_a, plaid, available="1000000", login_required=True)
    assert outcome_of(webhook(client, lender_a, plaid, item_id)) == "plaid_error"
    assert funds_links(loan) == 0
    event = AuditEvent.objects.get(action="collections.funds_alert.plaid_ignored")
    assert (event.lender_id, event.data["plaid_error"]) == (lender_a.pk, "ITEM_LOGIN_REQUIRED")


def test_a_replayed_webhook_sends_nothing_twice(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    with time_machine.travel(MORNING, tick=False):
        body, headers = plaid.signed(item_id)
    assert outcome_of(post(client, lender_a, body, headers)) == "sent"
    later = MORNING + timedelta(minutes=1)
    assert outcome_of(post(client, lender_a, body, headers, at=later)) == "duplicate"
    assert funds_links(loan) == 1
    assert FundsAlert.objects.count() == 1


def test_an_unknown_item_is_ignored_and_audited(client, lender_a, plaid, rich) -> None:
    assert outcome_of(webhook(client, lender_a, plaid, "no-such-item")) == "unknown_item"
    assert ignored_why() == ["unknown_item"]
    assert "/accounts/balance/get" not in plaid.calls


def test_no_balance_is_read_under_a_revoked_consent(client, lender_a, plaid, rich) -> None:
    loan, item_id, _token = rich
    with time_machine.travel(MORNING - timedelta(hours=1), tick=False):
        account_reading_consent_revoke(
            customer_id=loan.customer_id, lender_id=lender_a.pk, actor=Actor.system()
        )
    assert outcome_of(webhook(client, lender_a, plaid, item_id)) == "consent_revoked"
    assert "/accounts/balance/get" not in plaid.calls
    assert funds_links(loan) == 0


def test_a_lenders_address_cannot_act_on_another_lenders_item(
    client, lender_a, lender_b, plaid, rich
) -> None:
    loan, item_id, _token = rich
    plaid_account(lender_b, plaid)
    assert outcome_of(webhook(client, lender_b, plaid, item_id)) == "unknown_item"
    assert funds_links(loan) == 0
    event = AuditEvent.objects.get(action="collections.funds_alert.plaid_ignored")
    assert event.lender_id == lender_b.pk


def test_an_address_without_a_plaid_account_is_refused(client, lender_b, plaid, rich) -> None:
    _loan, item_id, _token = rich
    answer = webhook(client, lender_b, plaid, item_id)
    assert answer.status_code == 401


def test_the_command_links_an_item_with_the_token_from_standard_input(
    client, lender_a, lender_b, plaid, monkeypatch
) -> None:
    plaid_account(lender_a, plaid)
    with time_machine.travel(SIGNED, tick=False):
        loan = signed_loan(lender_a)
    with time_machine.travel(MORNING - timedelta(days=1), tick=False):
        consent = reading_consent(loan.customer)
    item_id, token = plaid.item(currency=loan.currency, available="1000000")
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    out = io.StringIO()
    with time_machine.travel(MORNING - timedelta(hours=1), tick=False):
        call_command("plaid_item_link", lender_a.slug, consent.reference, item_id, stdout=out)
    assert token not in out.getvalue()
    assert outcome_of(webhook(client, lender_a, plaid, item_id)) == "sent"
    with pytest.raises(CommandError, match="no consent"):  # A's consent, named at B
        call_command("plaid_item_link", lender_b.slug, consent.reference, item_id)
