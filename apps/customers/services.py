"""Writes for customers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, timedelta

import phonenumbers
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.core.errors import NotAllowed, NotFound
from apps.customers.consent import consent_text_sha256
from apps.customers.errors import (
    ConsentCodeExpired,
    ConsentCodeInvalid,
    ConsentCodeNotSent,
    ConsentTextChanged,
    CustomerDetailsMismatch,
    LoginCodeExpired,
    LoginCodeInvalid,
    LoginLocked,
    PhoneInUse,
    PhoneInvalid,
)
from apps.customers.events import CustomersAction
from apps.customers.models import ConsentChallenge, ConsentRecord, Customer, CustomerLoginCode
from apps.customers.national_ids import national_id_normalise
from apps.integrations.sms.base import get_sms_gateway, sms_send_quietly
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


def customer_name_masked(full_name: str) -> str:
    """The name as a clerk may see it for a customer they did not enter: the first name's
    initial and the last name's first letter ("Brian Otieno" -> "B. O***")."""
    words = full_name.split()
    if len(words) < 2:
        return f"{full_name.strip()[:1].upper()}***"
    return f"{words[0][0].upper()}. {words[-1][0].upper()}***"


def _phone_holder(*, lender_id: int, e164: str) -> Customer | None:
    return Customer.objects.filter(lender_id=lender_id, phone=e164).first()


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
    nobody. A new person on a number that is another customer's is refused
    with PhoneInUse naming that customer masked: the login finds a customer by
    number, so a second customer on it would see the first one's loans. The
    unique (lender, national id) and (lender, phone) indexes settle two clerks
    entering at once (tests/customers/test_identity.py). Emits
    ``customers.customer.created`` for a new customer.
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
    holder = _phone_holder(lender_id=lender.pk, e164=e164)
    if holder is not None:
        raise PhoneInUse(name_masked=customer_name_masked(holder.full_name))
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
        with transaction.atomic():  # two clerks entering at once: one customer, one number
            customer.save()
    except IntegrityError:
        existing = Customer.objects.filter(lender=lender, national_id=national_id).first()
        if existing is not None:
            if existing.phone != e164:
                raise CustomerDetailsMismatch() from None
            return existing, False
        holder = _phone_holder(lender_id=lender.pk, e164=e164)
        if holder is None:
            raise
        raise PhoneInUse(name_masked=customer_name_masked(holder.full_name)) from None
    audit_event_record(
        actor=actor,
        action=CustomersAction.CUSTOMER_CREATED,
        target=customer,
        data={"new": {"id": customer.pk}},
    )
    return customer, True


@transaction.atomic
def customer_phone_change(*, customer_id: int, phone: str, actor: Actor, reason: str) -> Customer:
    """Give the customer another mobile number, under the rule step 1 at the counter applies:
    a number that is another customer's of the lender is refused (PhoneInUse, masked).

    Locks the customer's row. The same number again changes nothing. The reason is
    required. Emits ``customers.customer.phone_changed`` with the last 4 digits of the old
    and the new number only: the audit chain is append-only, and a full number in it could
    never be erased.
    """
    if not reason.strip():
        raise NotAllowed(_("Say why the number changes."))
    customer = (
        Customer.objects.select_for_update().select_related("lender").filter(pk=customer_id).first()
    )
    if customer is None:
        raise NotFound(customer_id=customer_id)
    e164 = phone_to_e164(phone=phone, country=customer.lender.country)
    if e164 == customer.phone:
        return customer
    holder = _phone_holder(lender_id=customer.lender_id, e164=e164)
    if holder is not None:
        raise PhoneInUse(name_masked=customer_name_masked(holder.full_name))
    old = customer.phone
    customer.phone = e164
    try:
        with transaction.atomic():  # the same number given to another customer meanwhile
            customer.save(update_fields=["phone", "updated_at"])
    except IntegrityError:
        holder = _phone_holder(lender_id=customer.lender_id, e164=e164)
        if holder is None:
            raise
        raise PhoneInUse(name_masked=customer_name_masked(holder.full_name)) from None
    audit_event_record(
        actor=actor,
        action=CustomersAction.CUSTOMER_PHONE_CHANGED,
        target=customer,
        data={"old": {"phone_last4": old[-4:]}, "new": {"phone_last4": e164[-4:]}},
        reason=reason.strip(),
    )
    return customer


CONSENT_CODE_TTL = timedelta(minutes=10)


def _code_hash(challenge_customer_id: int, code: str) -> str:
    return hashlib.sha256(f"{challenge_customer_id}:{code}".encode()).hexdigest()


@transaction.atomic
def consent_code_send(*, customer: Customer, text: str, actor: Actor) -> ConsentChallenge:
    """Send a 6-digit code to the customer's phone to confirm ``text``; valid 10 minutes.

    The code itself is never stored or logged, only its hash. The SMS goes out
    before anything is written, not after commit: a code the customer never
    received is not kept (``ConsentCodeNotSent``, the clerk tries again), and the
    lender's audit chain is not locked while the provider answers (only the
    caller's own rows are: the counter's sale). Emits ``customers.consent.code_sent``.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    body = _(
        "Your code to accept the phone financing terms: %(code)s. Give it to the shop clerk only."
    ) % {"code": code}
    try:
        get_sms_gateway().send(to=customer.phone, body=body)
    except Exception as exc:  # the provider is down or refused it
        raise ConsentCodeNotSent() from exc
    challenge = ConsentChallenge.objects.create(
        lender_id=customer.lender_id, customer=customer, text_sha256=consent_text_sha256(text),
        code_hash=_code_hash(customer.pk, code), expires_at=timezone.now() + CONSENT_CODE_TTL,
    )  # fmt: skip
    audit_event_record(actor=actor, action=CustomersAction.CONSENT_CODE_SENT, target=customer,
                       data={"challenge_id": challenge.pk, "text_sha256": challenge.text_sha256})  # fmt: skip
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


# --- the customer's own pages: login by a code sent to their phone -------------------

LOGIN_CODE_TTL = timedelta(minutes=10)
LOGIN_WINDOW = timedelta(minutes=15)  # codes sent and wrong codes are counted over this
LOGIN_CODES_PER_WINDOW = 3
LOGIN_MAX_FAILURES = 5


def _login_code_hash(customer_id: int, code: str) -> str:
    return hashlib.sha256(f"login:{customer_id}:{code}".encode()).hexdigest()


def _login_customer(*, lender: Lender, phone: str) -> Customer | None:
    """The lender's customer with this number: at most one, by the unique (lender, phone)
    index, so a login can never open another person's loans."""
    e164 = phone_to_e164(phone=phone, country=lender.country)
    return _phone_holder(lender_id=lender.pk, e164=e164)


def _failures_recent(customer: Customer) -> int:
    since = timezone.now() - LOGIN_WINDOW
    return sum(CustomerLoginCode.objects.filter(customer=customer, created_at__gte=since)
               .values_list("failures", flat=True))  # fmt: skip


@transaction.atomic
def customer_login_code_send(*, lender_id: int, phone: str, actor: Actor) -> None:
    """Send a 6-digit login code to ``phone`` if it is one of the lender's customers.

    Says nothing about whether the number is known (no SMS, no error), so the
    form cannot be used to find out who borrows. Locks the customer's row: at
    most ``LOGIN_CODES_PER_WINDOW`` codes per ``LOGIN_WINDOW``, none while
    locked out (withheld silently, for the same reason). ``PhoneInvalid`` for
    a number that is not a mobile number of the lender's country. Emits
    ``customers.login.code_sent`` or ``customers.login.code_withheld``.
    """
    lender = Lender.objects.get(pk=lender_id)
    customer = _login_customer(lender=lender, phone=phone)
    if customer is None:
        return
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    since = timezone.now() - LOGIN_WINDOW
    sent = CustomerLoginCode.objects.filter(customer=customer, created_at__gte=since).count()
    if _failures_recent(customer) >= LOGIN_MAX_FAILURES or sent >= LOGIN_CODES_PER_WINDOW:
        # no code, and no different answer either: a refusal would tell a stranger the
        # number borrows from this lender (the code page says when to ask again)
        audit_event_record(actor=actor, action=CustomersAction.LOGIN_CODE_WITHHELD, target=customer,
                           data={"codes_sent": sent})  # fmt: skip
        return
    code = f"{secrets.randbelow(10**6):06d}"
    login = CustomerLoginCode.objects.create(
        lender=lender, customer=customer, code_hash=_login_code_hash(customer.pk, code),
        expires_at=timezone.now() + LOGIN_CODE_TTL,
    )  # fmt: skip
    audit_event_record(actor=actor, action=CustomersAction.LOGIN_CODE_SENT, target=customer,
                       data={"login_code_id": login.pk})  # fmt: skip
    with translation.override(customer.locale):
        body = _("Your code to see your phone loan: %(code)s. Do not share it.") % {"code": code}
    to = customer.phone
    # a failed send answers as any other request does (a different answer would tell a
    # stranger this number borrows here); the customer asks again
    transaction.on_commit(lambda: sms_send_quietly(to=to, body=body))


def customer_login_check(*, lender_id: int, phone: str, code: str, actor: Actor) -> Customer:
    """The customer whose newest login code ``code`` is; the code is used up.

    A wrong code counts against the customer (kept even though the error is
    raised); after ``LOGIN_MAX_FAILURES`` within ``LOGIN_WINDOW`` no code
    works until the window passes. An unknown number fails like a wrong code.
    Emits ``customers.login.succeeded`` or ``customers.login.code_failed``.
    """
    lender = Lender.objects.get(pk=lender_id)
    with transaction.atomic(durable=True):  # a failure's count commits though we raise
        found = _login_customer(lender=lender, phone=phone)
        if found is None:
            raise LoginCodeInvalid()
        customer = Customer.objects.select_for_update().get(pk=found.pk)
        if _failures_recent(customer) >= LOGIN_MAX_FAILURES:
            raise LoginLocked()
        login = CustomerLoginCode.objects.filter(customer=customer).order_by("-created_at").first()
        if login is None or login.consumed_at or login.expires_at <= timezone.now():
            raise LoginCodeExpired()
        if hmac.compare_digest(_login_code_hash(customer.pk, code.strip()), login.code_hash):
            login.consumed_at = timezone.now()
            login.save(update_fields=["consumed_at", "updated_at"])
            audit_event_record(actor=actor, action=CustomersAction.LOGIN_SUCCEEDED, target=customer,
                               data={"login_code_id": login.pk})  # fmt: skip
            return customer
        login.failures += 1
        login.save(update_fields=["failures", "updated_at"])
        audit_event_record(actor=actor, action=CustomersAction.LOGIN_CODE_FAILED, target=customer,
                           data={"login_code_id": login.pk, "failures": login.failures})  # fmt: skip
    raise LoginCodeInvalid()


LOGIN_LINK_TTL = timedelta(minutes=5)
_LINK_SALT = "customers.login-link"


def customer_login_link_mint(*, customer_id: int, lender_id: int, actor: Actor) -> str:
    """A signed link that logs the customer in once, within ``LOGIN_LINK_TTL``: what the
    lender's app on the customer's phone opens (``POST /api/agent/v1/customer-link``).
    Returns the token. Emits ``customers.login.link_minted``."""
    nonce = secrets.token_urlsafe(12)
    token = signing.dumps({"c": customer_id, "l": lender_id, "n": nonce}, salt=_LINK_SALT)
    with transaction.atomic():
        audit_event_record(actor=actor, action=CustomersAction.LOGIN_LINK_MINTED,
                           target=Customer(pk=customer_id, lender_id=lender_id), lender_id=lender_id)  # fmt: skip
    return token


def customer_login_link_use(*, lender_id: int, token: str, actor: Actor) -> Customer:
    """The customer a login link stands for, once: a forged, foreign, expired or used link is
    ``LoginCodeExpired``. Emits ``customers.login.succeeded`` (by link)."""
    try:
        data = signing.loads(token, salt=_LINK_SALT, max_age=LOGIN_LINK_TTL)
    except signing.BadSignature as exc:
        raise LoginCodeExpired() from exc
    customer = Customer.objects.filter(pk=data.get("c"), lender_id=lender_id).first()
    if data.get("l") != lender_id or customer is None:
        raise LoginCodeExpired()
    # once: the first use claims the nonce in the shared cache for longer than the link lives
    if not cache.add(
        f"customers:login-link:{data['n']}", 1, timeout=int(LOGIN_LINK_TTL.total_seconds()) + 60
    ):
        raise LoginCodeExpired()
    with transaction.atomic():
        audit_event_record(actor=actor, action=CustomersAction.LOGIN_SUCCEEDED, target=customer,
                           data={"by": "link"})  # fmt: skip
    return customer
