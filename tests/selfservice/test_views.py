"""The customer's own pages: login by a code sent by SMS, the loan and the phone in plain
words, pay link, promise and hardship request, and who sees what."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone

from apps.audit.models import AuditEvent
from apps.collections.models import LoanPause
from apps.collections.selectors import loan_days_overdue
from apps.collections.services import loan_stage_sweep
from apps.customers.models import CustomerLoginCode
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone
from tests.selfservice.conftest import code_from

pytestmark = pytest.mark.django_db


def day(value) -> str:
    return formats.date_format(value, "DATE_FORMAT")


def late_loan(lender, *, days_ago: int):
    """An enrolled phone on a loan signed ``days_ago`` days ago, swept this morning."""
    device, _, _ = enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=days_ago))
    noticed(device.loan)  # told of the lock ahead: the ladder applies in full
    loan_stage_sweep(
        lender_id=lender.pk, business_date=lender_local_date(lender=lender), id_from=0, id_to=10**12
    )
    device.loan.refresh_from_db()
    return device.loan


def test_a_customer_logs_in_with_a_code_and_sees_the_phone_and_what_happens_next(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=50)
    days = loan_days_overdue(loan=loan)
    assert loan.stage == "block_apps"
    assert 14 <= days < 30
    answer = log_in(lender_a, loan.customer)
    assert answer.status_code == 302
    assert answer.cookies["django_language"].value == "en"
    assert sms_outbox[-1][0] == loan.customer.phone
    page = client.get(answer.url).content.decode()
    today = lender_local_date(lender=lender_a)
    assert (
        f"Social apps are blocked since {day(today)} because installment 1 is {days} days late."
        in page
    )
    lock_on = today + timedelta(days=30 - days)
    assert (
        f"If it is not paid by {day(lock_on)}, the phone will lock (emergency calls always work)."
        in page
    )
    status = client.get(reverse("customers:status", kwargs={"lender_slug": lender_a.slug})).json()
    assert status["loans"][0]["stage"] == "block_apps"
    assert status["loans"][0]["phone"].startswith("Social apps are blocked since")


def test_the_page_speaks_the_customers_language(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=50)
    loan.customer.locale = "es"
    loan.customer.save(update_fields=["locale"])
    answer = log_in(lender_a, loan.customer)
    assert sms_outbox[-1][1].startswith("Tu código para ver el crédito de tu teléfono: ")
    page = client.get(answer.url).content.decode()
    assert "Las aplicaciones sociales están bloqueadas desde" in page
    assert '<label for="language">Idioma</label>' in page  # the switcher, in her language too


def test_an_unknown_number_gets_the_same_answer_and_no_sms(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    answer = ask_code(lender_a, "+254712000999")  # the task after the answer runs too
    assert answer.status_code == 302
    assert answer.url.endswith("/login/code/")
    assert sms_outbox == []
    code_url = reverse("customers:code", kwargs={"lender_slug": lender_a.slug})
    assert "That code is not right" in client.post(code_url, {"code": "123456"}).content.decode()


def test_an_sms_outage_gets_the_same_answer_as_any_login_request(
    client, lender_a, sms_outbox, ask_code, caplog
) -> None:
    """The gateway fails after the code is stored: no error page (it would tell a stranger
    the number borrows here), a warning without the number, and the next request works."""
    from tests.fakes.sms import FakeSmsGateway

    loan = late_loan(lender_a, days_ago=10)
    stranger = ask_code(lender_a, "+254712000999")
    FakeSmsGateway.down = True
    failed = ask_code(lender_a, loan.customer.phone)
    assert (failed.status_code, failed.url) == (stranger.status_code, stranger.url)
    assert sms_outbox == []
    assert "sms not sent: ConnectionError" in caplog.text
    assert loan.customer.phone[-6:] not in caplog.text
    FakeSmsGateway.down = False
    ask_code(lender_a, loan.customer.phone)
    assert len(sms_outbox) == 1


def test_a_number_that_is_not_a_mobile_number_is_refused(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    url = reverse("customers:login", kwargs={"lender_slug": lender_a.slug})
    page = client.post(url, {"phone": "12"}).content.decode()
    assert "not a valid mobile number" in page
    assert sms_outbox == []


def test_five_wrong_codes_lock_the_login_for_a_while(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=10)
    ask_code(lender_a, loan.customer.phone)
    right = code_from(sms_outbox)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    code_url = reverse("customers:code", kwargs={"lender_slug": lender_a.slug})
    for _ in range(5):
        assert "That code is not right" in client.post(code_url, {"code": wrong}).content.decode()
    assert "Too many wrong codes" in client.post(code_url, {"code": right}).content.decode()
    assert CustomerLoginCode.objects.get().consumed_at is None
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert log_in(lender_a, loan.customer).status_code == 302


def test_a_code_works_once_and_not_after_ten_minutes(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=10)
    assert log_in(lender_a, loan.customer).status_code == 302
    client.post(reverse("customers:logout", kwargs={"lender_slug": lender_a.slug}))
    code_url = reverse("customers:code", kwargs={"lender_slug": lender_a.slug})
    ask_code(lender_a, loan.customer.phone)
    code = code_from(sms_outbox)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert "has expired" in client.post(code_url, {"code": code}).content.decode()


def test_codes_asked_for_are_limited_without_telling_who_borrows(
    client, lender_a, sms_outbox, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=10)
    answers = [ask_code(lender_a, loan.customer.phone) for _ in range(4)]
    stranger = ask_code(lender_a, "+254712000999")
    assert [(a.status_code, a.url) for a in answers] == [(stranger.status_code, stranger.url)] * 4
    assert len(sms_outbox) == 3  # the fourth code is withheld, silently
    assert AuditEvent.objects.filter(action="customers.login.code_withheld").count() == 1


def test_a_customer_sees_and_acts_on_their_own_loans_only(
    client, lender_a, lender_b, sms_outbox, log_in
) -> None:
    mine, theirs = late_loan(lender_a, days_ago=50), late_loan(lender_a, days_ago=50)
    log_in(lender_a, mine.customer)
    page = client.get(
        reverse("customers:home", kwargs={"lender_slug": lender_a.slug})
    ).content.decode()
    assert mine.reference in page
    assert theirs.reference not in page
    for name in ("pay", "promise", "hardship"):
        url = reverse(
            f"customers:{name}",
            kwargs={"lender_slug": lender_a.slug, "reference": theirs.reference},
        )
        assert client.post(url, {"until": "2030-01-01", "reason": "x"}).status_code == 404
    assert not LoanPause.objects.exists()
    other = client.get(reverse("customers:home", kwargs={"lender_slug": lender_b.slug}))
    assert other.status_code == 302
    assert other.url.endswith(f"/my/{lender_b.slug}/login/")


def test_pay_sends_the_customer_to_the_checkout_for_what_is_late(
    client, lender_a, sms_outbox, log_in, ask_code
) -> None:
    loan = late_loan(lender_a, days_ago=50)
    late = loan.installments.get(sequence=1)
    log_in(lender_a, loan.customer)
    answer = client.post(
        reverse("customers:pay", kwargs={"lender_slug": lender_a.slug, "reference": loan.reference})
    )
    assert answer.status_code == 302
    assert answer.url.startswith("/demo-provider/checkout/")
    checkout = client.get(answer.url).content.decode()
    assert f"KES {late.outstanding:,.2f}" in checkout
    assert loan.reference in checkout
    assert client.get(answer.url[:-5] + "xxxx/").status_code == 404  # a forged link


def test_a_promise_from_the_page_holds_the_phone_at_reminders(client, lender_a, log_in) -> None:
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    url = reverse(
        "customers:promise", kwargs={"lender_slug": lender_a.slug, "reference": loan.reference}
    )
    today = lender_local_date(lender=lender_a)
    too_far = client.post(url, {"until": (today + timedelta(days=15)).isoformat()}, follow=True)
    assert "A pause must end between today and 14 days from today." in too_far.content.decode()
    until = today + timedelta(days=5)
    page = client.post(url, {"until": until.isoformat()}, follow=True).content.decode()
    assert "Your promise is recorded." in page
    assert f"Your promise to pay holds the restrictions back until {day(until)}." in page
    pause = LoanPause.objects.get(loan=loan)
    assert (pause.kind, pause.requested_by) == ("promise", f"customer:{loan.customer_id}")
    loan.refresh_from_db()
    assert loan.stage == "reminder"
    again = client.post(url, {"until": until.isoformat()}, follow=True).content.decode()
    assert "This loan already has an open pause of this kind." in again


def test_a_hardship_request_from_the_page_waits_for_a_supervisor(client, lender_a, log_in) -> None:
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    url = reverse(
        "customers:hardship", kwargs={"lender_slug": lender_a.slug, "reference": loan.reference}
    )
    until = lender_local_date(lender=lender_a) + timedelta(days=30)
    page = client.post(url, {"until": until.isoformat(), "reason": "I lost my job."}, follow=True)
    assert "Your request is sent. The lender will answer soon." in page.content.decode()
    pause = LoanPause.objects.get(loan=loan)
    assert (pause.kind, pause.status, pause.reason) == ("hardship", "requested", "I lost my job.")
    loan.refresh_from_db()
    assert loan.stage == "block_apps"  # nothing changes until a supervisor approves


def test_the_phones_app_opens_a_link_that_logs_the_customer_in_once(
    client, lender_a, lender_b
) -> None:
    device, secret, _ = enrolled_phone(lender_a)
    auth = {"HTTP_AUTHORIZATION": f"Device {device.pk}:{secret}"}
    minted = client.post("/api/agent/v1/customer-link", **auth).json()
    assert minted["expires_in"] == 300
    path = minted["url"].removeprefix("http://testserver")
    first = client.get(path)
    assert first.status_code == 302
    assert first.url == reverse("customers:home", kwargs={"lender_slug": lender_a.slug})
    assert device.loan.reference in client.get(first.url).content.decode()
    again = Client().get(path)  # the same link, from anywhere, a second time
    assert again.status_code == 410
    assert "expired or was already used" in again.content.decode()
    forged = Client().get(path[:-3] + "abc/")
    assert forged.status_code == 410
    login = reverse("customers:login", kwargs={"lender_slug": lender_a.slug})
    assert f'action="{login}"' in forged.content.decode()  # its form asks for a code, not the link
    token = path.rstrip("/").rsplit("/", 1)[1]
    elsewhere = Client().get(
        reverse("customers:link", kwargs={"lender_slug": lender_b.slug, "token": token})
    )
    assert elsewhere.status_code == 410
    anonymous = client.post("/api/agent/v1/customer-link")
    assert anonymous.status_code == 401  # the phone's own credentials only
    unused = client.post("/api/agent/v1/customer-link", **auth).json()["url"]
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):  # opened too late
        assert Client().get(unused.removeprefix("http://testserver")).status_code == 410


def test_a_customer_downloads_their_consent_and_receipts_only(client, lender_a, log_in) -> None:
    from apps.collections.services import payment_record
    from apps.core.actor import Actor
    from apps.core.money import Money

    loan, other = late_loan(lender_a, days_ago=50), late_loan(lender_a, days_ago=50)
    paid = [
        payment_record(
            loan_id=each.pk,
            amount=Money(each.installments.get(sequence=1).total_due, "KES"),
            channel="manual",
            provider="manual",
            provider_ref=f"cash-{each.pk}",
            received_at=timezone.now(),
            actor=Actor.system(),
            reason="Cash.",
        ).payment
        for each in (loan, other)
    ]
    log_in(lender_a, loan.customer)
    consent = client.get(
        reverse(
            "customers:consent", kwargs={"lender_slug": lender_a.slug, "reference": loan.reference}
        )
    )
    assert consent["Content-Disposition"] == f'attachment; filename="consent-{loan.reference}.txt"'
    text = consent.content.decode()
    assert loan.consent.text in text
    assert f"SHA-256 {loan.consent.text_sha256}" in text
    mine = reverse(
        "customers:receipt",
        kwargs={
            "lender_slug": lender_a.slug,
            "reference": loan.reference,
            "payment_id": paid[0].pk,
        },
    )
    receipt = client.get(mine).content.decode()
    assert f"Amount: KES {paid[0].amount:,.2f}" in receipt
    assert f"Reference: cash-{loan.pk}" in receipt
    theirs = reverse(
        "customers:receipt",
        kwargs={
            "lender_slug": lender_a.slug,
            "reference": loan.reference,
            "payment_id": paid[1].pk,
        },
    )
    assert client.get(theirs).status_code == 404
    other_consent = reverse(
        "customers:consent", kwargs={"lender_slug": lender_a.slug, "reference": other.reference}
    )
    assert client.get(other_consent).status_code == 404


def test_pay_on_a_paid_off_loan_says_there_is_nothing_to_pay(client, lender_a, log_in) -> None:
    from apps.collections.services import payment_record
    from apps.core.actor import Actor
    from apps.core.money import Money

    loan = late_loan(lender_a, days_ago=10)
    everything = sum(i.total_due for i in loan.installments.all())
    payment_record(
        loan_id=loan.pk,
        amount=Money(everything, "KES"),
        channel="manual",
        provider="manual",
        provider_ref="all",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Paid off.",
    )
    log_in(lender_a, loan.customer)
    url = reverse(
        "customers:pay", kwargs={"lender_slug": lender_a.slug, "reference": loan.reference}
    )
    page = client.post(url, follow=True)
    assert page.redirect_chain[-1][0] == reverse(
        "customers:home", kwargs={"lender_slug": lender_a.slug}
    )
    assert "There is nothing to pay on this loan." in page.content.decode()


def test_a_customer_gives_and_withdraws_consent_to_account_reading_on_their_page(
    client, lender_a, log_in
) -> None:
    from apps.customers.selectors import account_reading_consent_in_force
    from tests.funds.accounts import funds_account

    funds_account(lender_a)
    loan = late_loan(lender_a, days_ago=20)
    customer = loan.customer
    page = client.get(log_in(lender_a, customer).url).content.decode()
    assert "You let Plaid read the balance of your account" in page
    give = reverse("customers:account-reading-give", kwargs={"lender_slug": lender_a.slug})
    assert client.post(give).status_code == 302
    record = account_reading_consent_in_force(customer_id=customer.pk)
    assert record is not None
    assert record.method == "self_service"
    assert "Withdraw my consent" in client.get(page_url(lender_a)).content.decode()
    revoke = reverse("customers:account-reading-revoke", kwargs={"lender_slug": lender_a.slug})
    assert client.post(revoke).status_code == 302
    assert account_reading_consent_in_force(customer_id=customer.pk) is None
    assert "we no longer receive alerts" in client.get(page_url(lender_a)).content.decode()


def page_url(lender) -> str:
    return reverse("customers:home", kwargs={"lender_slug": lender.slug})
