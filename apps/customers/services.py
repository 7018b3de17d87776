"""Writes for customers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, timedelta

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.core.errors import NotAllowed
from apps.customers.consent import consent_text_sha256
from apps.customers.errors import (
    ConsentCodeExpired,
    ConsentCodeInvalid,
    ConsentTextChanged,
    CustomerDetailsMismatch,
    PhoneInvalid,
)
from apps.customers.events import CustomersAction
from apps.customers.models import ConsentChallenge, ConsentRecord, Customer
from apps.customers.national_ids import national_id_normalise
from apps.integrations.sms.base import get_sms_gateway
from apps.lenders.models import Lender


def phone_to_e164(*, phone: str, country: str) -> str:
    """Parse a number as dialled in ``country`` (or in international form) into E.164."""
    try:
        parsed = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException as exc:
        raise PhoneInvalid(phone_country=country) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneInvalid(phone_country=country)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@transaction.atomic
def customer_get_or_create(
    *,
    lender: Lender,
    full_name: str,
    phone: str,
    national_id: str,
    actor: Actor,
    date_of_birth: date | None = None,
    locale: str | None = None,
) -> tuple[Customer, bool]:
    """The lender's customer with this national id, created if new (never duplicated).

    An existing customer is returned only if the phone given is the one on
    record (otherwise CustomerDetailsMismatch), so a national id alone reveals
    nobody. The unique (lender, national id) index settles two clerks entering
    one person at once. Emits ``customers.customer.created`` for a new customer.
    """
    national_id = national_id_normalise(value=national_id, country=lender.country)
    e164 = phone_to_e164(phone=phone, country=lender.country)
    existing = Customer.objects.filter(lender=lender, national_id=national_id).first()
    if existing is not None:
        # Finding a customer must not reveal them: the person at the counter
        # has to know the phone on record.
        if existing.phone != e164:
            raise CustomerDetailsMismatch()
        return existing, False
    customer = Customer(
        lender=lender,
        full_name=" ".join(full_name.split()),
        phone=e164,
        national_id=national_id,
        date_of_birth=date_of_birth,
        locale=locale or lender.locale,
    )
    customer.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():  # two clerks entering one person at once: one customer
            customer.save()
    except IntegrityError:
        existing = Customer.objects.get(lender=lender, national_id=national_id)
        if existing.phone != e164:
            raise CustomerDetailsMismatch() from None
        return existing, False
    audit_event_record(
        actor=actor,
        action=CustomersAction.CUSTOMER_CREATED,
        target=customer,
        data={"new": {"id": customer.pk}},
    )
    return customer, True


CONSENT_CODE_TTL = timedelta(minutes=10)


def _code_hash(challenge_customer_id: int, code: str) -> str:
    return hashlib.sha256(f"{challenge_customer_id}:{code}".encode()).hexdigest()


@transaction.atomic
def consent_code_send(*, customer: Customer, text: str, actor: Actor) -> ConsentChallenge:
    """Send a 6-digit code to the customer's phone to confirm ``text``; valid 10 minutes.

    The code itself is never stored or logged, only its hash. Emits
    ``customers.consent.code_sent``.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = ConsentChallenge.objects.create(
        lender_id=customer.lender_id, customer=customer, text_sha256=consent_text_sha256(text),
        code_hash=_code_hash(customer.pk, code), expires_at=timezone.now() + CONSENT_CODE_TTL,
    )  # fmt: skip
    audit_event_record(actor=actor, action=CustomersAction.CONSENT_CODE_SENT, target=customer,
                       data={"challenge_id": challenge.pk, "text_sha256": challenge.text_sha256})  # fmt: skip
    body = _(
        "Your code to accept the phone financing terms: %(code)s. Give it to the shop clerk only."
    ) % {"code": code}
    phone = customer.phone
    transaction.on_commit(lambda: get_sms_gateway().send(to=phone, body=body))
    return challenge


def consent_confirm(
    *,
    challenge_id: int,
    code: str,
    text: str,
    text_version: str,
    locale: str,
    clerk_id: int,
    shop_id: int,
    actor: Actor,
) -> ConsentRecord:
    """Check the customer's code and record their consent to ``text``.

    Locks the challenge: a code works once, at most five tries, for ten
    minutes, and only for the text it was sent for. A wrong code's failure is
    kept on the record (its own transaction) before the error is raised.
    Emits ``customers.consent.recorded`` or ``customers.consent.code_failed``.
    """
    # durable: the failed-attempt count below must commit even though we raise
    with transaction.atomic(durable=True):
        challenge = (
            ConsentChallenge.objects.select_for_update()
            .select_related("customer")
            .filter(pk=challenge_id)
            .first()
        )
        if challenge is None:
            raise ConsentCodeExpired()
        if challenge.consumed_at or challenge.attempts >= ConsentChallenge.MAX_ATTEMPTS:
            raise ConsentCodeExpired()
        if challenge.expires_at <= timezone.now():
            raise ConsentCodeExpired()
        if consent_text_sha256(text) != challenge.text_sha256:
            raise ConsentTextChanged()
        if hmac.compare_digest(
            _code_hash(challenge.customer_id, code.strip()), challenge.code_hash
        ):
            challenge.consumed_at = timezone.now()
            challenge.save(update_fields=["consumed_at", "updated_at"])
            record = ConsentRecord.objects.create(
                lender_id=challenge.lender_id, customer=challenge.customer, text=text, text_version=text_version,
                text_sha256=challenge.text_sha256, locale=locale, method=ConsentRecord.Method.SMS_CODE,
                code_check="passed", challenge=challenge, clerk_id=clerk_id, shop_id=shop_id,
                ip=actor.ip or "", user_agent=actor.user_agent,
            )  # fmt: skip
            audit_event_record(
                actor=actor, action=CustomersAction.CONSENT_RECORDED, target=record,
                data={"customer_id": challenge.customer_id, "text_version": text_version,
                      "text_sha256": record.text_sha256, "method": record.method, "code_check": "passed",
                      "shop_id": shop_id},
            )  # fmt: skip
            return record
        challenge.attempts += 1
        challenge.save(update_fields=["attempts", "updated_at"])
        audit_event_record(actor=actor, action=CustomersAction.CONSENT_CODE_FAILED, target=challenge.customer,
                           data={"challenge_id": challenge.pk, "attempts": challenge.attempts})  # fmt: skip
    raise ConsentCodeInvalid(attempts_left=ConsentChallenge.MAX_ATTEMPTS - challenge.attempts)


@transaction.atomic
def consent_record_demo_seed(
    *, customer: Customer, text: str, text_version: str, clerk_id: int, shop_id: int, actor: Actor
) -> ConsentRecord:
    """Consent for demo and benchmark data, marked as such (method ``demo_seed``).

    Refused unless ``DEMO_SEED_ALLOWED`` (local and test settings only), so no
    real loan can be signed on consent nobody gave. Emits
    ``customers.consent.recorded``.
    """
    if not settings.DEMO_SEED_ALLOWED:
        raise NotAllowed("Demo consent is not allowed here.")
    digest = consent_text_sha256(text)
    challenge = ConsentChallenge.objects.create(
        lender_id=customer.lender_id, customer=customer, text_sha256=digest, code_hash="",
        expires_at=timezone.now(), consumed_at=timezone.now(),
    )  # fmt: skip
    record = ConsentRecord.objects.create(
        lender_id=customer.lender_id, customer=customer, text=text, text_version=text_version,
        text_sha256=digest, locale=customer.locale, method=ConsentRecord.Method.DEMO_SEED,
        code_check="demo: not checked", challenge=challenge, clerk_id=clerk_id, shop_id=shop_id,
    )  # fmt: skip
    audit_event_record(actor=actor, action=CustomersAction.CONSENT_RECORDED, target=record,
                       data={"customer_id": customer.pk, "method": record.method, "text_sha256": digest})  # fmt: skip
    return record
