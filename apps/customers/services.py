"""Writes for customers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.core.errors import NotAllowed, NotFound
from apps.core.outbox import task_enqueue_on_commit
from apps.core.ratelimit import window_count, window_forget
from apps.customers.consent import (
    ACCOUNT_READING_TEXT_VERSION,
    account_reading_text_build,
    consent_text_sha256,
)
from apps.customers.errors import (
    AccountReadingConsentNotFound,
    ConsentCodeExpired,
    ConsentCodeInvalid,
    ConsentCodeNotSent,
    ConsentHashMismatch,
    ConsentTextChanged,
    CustomerDetailsMismatch,
    LoginCodeExpired,
    LoginCodeInvalid,
    LoginLocked,
    LoginTooManyForNumber,
    PhoneInUse,
    PhoneInvalid,
)
from apps.customers.events import CustomersAction
from apps.customers.limits import number_key
from apps.customers.models import (
    AccountReadingConsent,
    ConsentChallenge,
    ConsentRecord,
    Customer,
    CustomerLoginCode,
    CustomerLoginFailure,
    PlaidItem,
)
from apps.customers.national_ids import national_id_normalise
from apps.integrations.payments.credentials import seal
from apps.integrations.sms.base import get_sms_gateway, sms_send_quietly
from apps.lenders.messages import message_render
from apps.lenders.models import Lender, MessageTemplate


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
    """The lender's customer with this national id, created if new (never duplicated),
    speaking ``locale`` (the lender's language when None): a customer found who now
    chooses another language gets it, and ``customers.customer.locale_changed``.

    An existing customer is returned only if the phone given is the one on
    record (otherwise CustomerDetailsMismatch), so a national id alone reveals
    nobody. A new person on a number that is another customer's is refused
    with PhoneInUse naming that customer masked: the login finds a customer by
    number, so a second customer on it would see the first one's loans. The
    unique (lender, national id) and (lender, phone) indexes settle two clerks
    entering at once (tests/customers/test_races_customers.py). Emits
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
        return _customer_locale_set(existing, locale=locale, actor=actor), False
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
            return _customer_locale_set(existing, locale=locale, actor=actor), False
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


def _customer_locale_set(customer: Customer, *, locale: str | None, actor: Actor) -> Customer:
    """``customer`` speaking ``locale`` from now on (None or the same: unchanged)."""
    if not locale or locale == customer.locale:
        return customer
    old, customer.locale = customer.locale, locale
    customer.full_clean(validate_unique=False, validate_constraints=False)
    customer.save(update_fields=["locale", "updated_at"])
    audit_event_record(
        actor=actor,
        action=CustomersAction.CUSTOMER_LOCALE_CHANGED,
        target=customer,
        data={"old": {"locale": old}, "new": {"locale": locale}},
    )
    return customer


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
        Customer.objects.select_for_update(no_key=True, of=("self",))
        .select_related("lender")
        .filter(pk=customer_id)
        .first()
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
    # in the language of the terms it confirms
    body = message_render(
        lender=customer.lender,
        kind=MessageTemplate.Kind.CONSENT_CODE,
        language=customer.locale,
        values={"code": code},
    )
    try:
        get_sms_gateway().send(to=customer.phone, body=body)
    except Exception as exc:  # the provider is down or refused it
        raise ConsentCodeNotSent() from exc
    challenge = ConsentChallenge.objects.create(
        lender_id=customer.lender_id,
        customer=customer,
        text_sha256=consent_text_sha256(text),
        code_hash=_code_hash(customer.pk, code),
        expires_at=timezone.now() + CONSENT_CODE_TTL,
    )
    audit_event_record(
        actor=actor,
        action=CustomersAction.CONSENT_CODE_SENT,
        target=customer,
        data={"challenge_id": challenge.pk, "text_sha256": challenge.text_sha256},
    )
    return challenge


def _challenge_spent(customer: Customer, *, digest: str, at: datetime) -> ConsentChallenge:
    """A challenge consumed as it is made, for consent no code of ours confirmed."""
    return ConsentChallenge.objects.create(
        lender_id=customer.lender_id,
        customer=customer,
        text_sha256=digest,
        code_hash="",
        expires_at=at,
        consumed_at=at,
    )


def _consent_record_write(
    challenge: ConsentChallenge,
    *,
    text: str,
    text_version: str,
    locale: str,
    method: str,
    code_check: str,
    clerk_id: int | None,
    shop_id: int | None,
    actor: Actor,
    audited: dict[str, Any],
) -> ConsentRecord:
    """The consent ``challenge`` confirmed, stored and audited ``customers.consent.recorded``
    with the customer, the method, the text's hash and what each way adds (``audited``)."""
    record = ConsentRecord.objects.create(
        lender_id=challenge.lender_id,
        customer_id=challenge.customer_id,
        text=text,
        text_version=text_version,
        text_sha256=challenge.text_sha256,
        locale=locale,
        method=method,
        code_check=code_check,
        challenge=challenge,
        clerk_id=clerk_id,
        shop_id=shop_id,
        ip=actor.ip or "",
        user_agent=actor.user_agent,
    )
    audit_event_record(
        actor=actor,
        action=CustomersAction.CONSENT_RECORDED,
        target=record,
        data={
            "customer_id": challenge.customer_id,
            "text_sha256": record.text_sha256,
            "method": record.method,
            **audited,
        },
    )
    return record


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
            return _consent_record_write(
                challenge,
                text=text,
                text_version=text_version,
                locale=locale,
                method=ConsentRecord.Method.SMS_CODE,
                code_check="passed",
                clerk_id=clerk_id,
                shop_id=shop_id,
                actor=actor,
                audited={"text_version": text_version, "code_check": "passed", "shop_id": shop_id},
            )
        challenge.attempts += 1
        challenge.save(update_fields=["attempts", "updated_at"])
        audit_event_record(
            actor=actor,
            action=CustomersAction.CONSENT_CODE_FAILED,
            target=challenge.customer,
            data={"challenge_id": challenge.pk, "attempts": challenge.attempts},
        )
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
    challenge = _challenge_spent(customer, digest=consent_text_sha256(text), at=timezone.now())
    return _consent_record_write(
        challenge,
        text=text,
        text_version=text_version,
        locale=customer.locale,
        method=ConsentRecord.Method.DEMO_SEED,
        code_check="demo: not checked",
        clerk_id=clerk_id,
        shop_id=shop_id,
        actor=actor,
        audited={},
    )


@transaction.atomic
def consent_record_from_lender(
    *,
    customer: Customer,
    text: str,
    text_sha256: str,
    text_version: str,
    method: str,
    given_at: datetime,
    actor: Actor,
) -> ConsentRecord:
    """The customer's consent as the lender's own system recorded it in its channel (the lender
    API): the exact text the customer was shown, its SHA-256 (checked against the text:
    ConsentHashMismatch otherwise), the text's version, how it was given (``method``, the
    lender's word: ``sms_code``, ``signature``...) and when. Method ``lender_system``; no
    clerk, no shop. Emits ``customers.consent.recorded``."""
    digest = consent_text_sha256(text)
    if not hmac.compare_digest(digest, text_sha256.lower()):
        raise ConsentHashMismatch(text_sha256=digest)
    challenge = _challenge_spent(customer, digest=digest, at=given_at)  # no code of ours
    return _consent_record_write(
        challenge,
        text=text,
        text_version=text_version,
        locale=customer.locale,
        method=ConsentRecord.Method.LENDER_SYSTEM,
        code_check=method[:20],
        clerk_id=None,
        shop_id=None,
        actor=actor,
        audited={"text_version": text_version, "lender_method": method, "given_at": given_at},
    )


# --- the customer's own pages: login by a code sent to their phone -------------------

LOGIN_CODE_TTL = timedelta(minutes=10)
LOGIN_WINDOW = timedelta(minutes=15)  # codes sent, tries and wrong codes are counted over this
LOGIN_CODES_PER_WINDOW = 3
LOGIN_MAX_FAILURES = 5
LOGIN_TRIES_PER_NUMBER = 10  # codes asked for and codes typed, whatever the address
_WINDOW_SECONDS = int(LOGIN_WINDOW.total_seconds())


def _login_code_hash(customer_id: int, code: str) -> str:
    return hashlib.sha256(f"login:{customer_id}:{code}".encode()).hexdigest()


_NO_CODE_HASH = "0" * 64  # what a code is compared with when there is none: the same work


def _login_number(*, lender_id: int, phone: str) -> str:
    """The number in E.164 (PhoneInvalid otherwise), its try counted: LoginTooManyForNumber
    past ``LOGIN_TRIES_PER_NUMBER`` in the window, for a customer's number and a stranger's
    alike, from any address."""
    e164 = phone_to_e164(phone=phone, country=Lender.objects.get(pk=lender_id).country)
    tries = window_count(
        scope="customer-login-number",
        key=number_key(lender_id=lender_id, e164=e164),
        window_seconds=_WINDOW_SECONDS,
    )
    if tries.hits > LOGIN_TRIES_PER_NUMBER:
        raise LoginTooManyForNumber(
            limit=LOGIN_TRIES_PER_NUMBER, window=_WINDOW_SECONDS // 60, minutes=tries.minutes_left
        )
    return e164


@transaction.atomic
def customer_login_code_request(*, lender_id: int, phone: str, actor: Actor) -> None:
    """Ask for a login code for ``phone``: it is made and sent after the answer.

    The answer does the same work, and so takes the same time, whether or not the
    number is one of the lender's customers (tests/selfservice/test_views_login_timing.py): the
    try is counted for the number, the number is looked up, and
    ``customers.login_code_send`` is enqueued through the task outbox with the
    customer's id or None, on which the task makes and sends the code
    (``customer_login_code_send``) or does nothing. ``PhoneInvalid`` for a number that is
    not a mobile number of the lender's country; ``LoginTooManyForNumber`` past
    ``LOGIN_TRIES_PER_NUMBER`` tries in the window.
    """
    e164 = _login_number(lender_id=lender_id, phone=phone)
    customer_id = (
        Customer.objects.filter(lender_id=lender_id, phone=e164)
        .values_list("pk", flat=True)
        .first()
    )
    task_enqueue_on_commit(
        "customers.login_code_send",
        lender_id=lender_id,
        customer_id=customer_id,
        request_key=str(uuid.uuid4()),
        actor_ip=actor.ip or "",
        actor_user_agent=actor.user_agent,
    )


@transaction.atomic
def customer_login_code_send(*, customer_id: int, request_key: str, actor: Actor) -> None:
    """Send the customer a 6-digit login code by SMS (the task after a request for one).

    Locks the customer's row: at most ``LOGIN_CODES_PER_WINDOW`` codes per
    ``LOGIN_WINDOW`` (past that, withheld: the request was answered already, as a
    stranger's is). Once per ``request_key``: a task run twice sends one code. The SMS
    goes after commit; a failed send is logged without the number. Emits
    ``customers.login.code_sent`` or ``customers.login.code_withheld``.
    """
    # NO KEY: a foreign key to the customer checked at another's commit (a loan signed after its
    # audit event) takes FOR KEY SHARE, which FOR UPDATE would block while this waits for the
    # chain that other holds (tests/customers/test_races_login.py)
    customer = Customer.objects.select_for_update(no_key=True).filter(pk=customer_id).first()
    if customer is None or CustomerLoginCode.objects.filter(request_key=request_key).exists():
        return
    since = timezone.now() - LOGIN_WINDOW
    sent = CustomerLoginCode.objects.filter(customer=customer, created_at__gte=since).count()
    if sent >= LOGIN_CODES_PER_WINDOW:
        audit_event_record(
            actor=actor,
            action=CustomersAction.LOGIN_CODE_WITHHELD,
            target=customer,
            data={"codes_sent": sent},
        )
        return
    code = f"{secrets.randbelow(10**6):06d}"
    login = CustomerLoginCode.objects.create(
        lender_id=customer.lender_id,
        customer=customer,
        code_hash=_login_code_hash(customer.pk, code),
        expires_at=timezone.now() + LOGIN_CODE_TTL,
        request_key=request_key,
    )
    audit_event_record(
        actor=actor,
        action=CustomersAction.LOGIN_CODE_SENT,
        target=customer,
        data={"login_code_id": login.pk},
    )
    body = message_render(
        lender=customer.lender,
        kind=MessageTemplate.Kind.LOGIN_CODE,
        language=customer.locale,
        values={"code": code},
    )
    to = customer.phone
    # the customer, told nothing different, asks again if no SMS comes
    transaction.on_commit(lambda: sms_send_quietly(to=to, body=body))


def _login_state(*, lender_id: int, e164: str) -> Mapping[str, Any] | None:
    """In one statement, for a customer's number and a stranger's alike: the customer's id
    and their newest login code."""
    newest = CustomerLoginCode.objects.filter(customer=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    return (
        Customer.objects.filter(lender_id=lender_id, phone=e164)
        .annotate(
            code_id=Subquery(newest.values("pk")[:1]),
            code_hash=Subquery(newest.values("code_hash")[:1]),
            code_expires_at=Subquery(newest.values("expires_at")[:1]),
            code_consumed_at=Subquery(newest.values("consumed_at")[:1]),
        )
        .values("pk", "code_id", "code_hash", "code_expires_at", "code_consumed_at")
        .first()
    )


def customer_login_check(*, lender_id: int, phone: str, code: str, actor: Actor) -> Customer:
    """The customer whose newest login code ``code`` is; the code is used up.

    A wrong code gets the same answer after the same work for a customer's number and a
    stranger's (tests/selfservice/test_views_login_timing.py). Every code typed is counted for
    the number at once, in the shared cache: past ``LOGIN_MAX_FAILURES`` in the window,
    ``LoginLocked`` for any number until the window ends (a login starts the count
    afresh). The lock is decided by that count alone: a lock read from the customer's
    rows would last differently from a stranger's and tell them apart. A wrong code on
    a customer's code is recorded on it, with its audit event, after the answer
    (``customers.login_failure_record`` through the task outbox; None for a stranger's
    number). A right code is claimed by one conditional update, so two requests with it
    log in once. A customer's code that expired or was used is ``LoginCodeExpired``.
    Emits ``customers.login.succeeded``.
    """
    e164 = _login_number(lender_id=lender_id, phone=phone)
    number = number_key(lender_id=lender_id, e164=e164)
    tries = window_count(scope="customer-login-code", key=number, window_seconds=_WINDOW_SECONDS)
    state = _login_state(lender_id=lender_id, e164=e164)
    if tries.hits > LOGIN_MAX_FAILURES:
        raise LoginLocked(
            limit=LOGIN_MAX_FAILURES, window=_WINDOW_SECONDS // 60, minutes=tries.minutes_left
        )
    typed = _login_code_hash(state["pk"] if state else 0, code.strip())
    right = hmac.compare_digest(typed, (state and state["code_hash"]) or _NO_CODE_HASH)
    live = bool(
        state
        and state["code_id"]
        and state["code_consumed_at"] is None
        and state["code_expires_at"] > timezone.now()
    )
    if right and live and state is not None:
        customer = _login_code_claim(
            customer_id=state["pk"], login_code_id=state["code_id"], actor=actor
        )
        window_forget(scope="customer-login-code", key=number, window_seconds=_WINDOW_SECONDS)
        return customer
    with transaction.atomic():
        task_enqueue_on_commit(
            "customers.login_failure_record",
            lender_id=lender_id,
            login_code_id=state["code_id"] if live and state is not None else None,
            attempt=str(uuid.uuid4()),
            actor_ip=actor.ip or "",
            actor_user_agent=actor.user_agent,
        )
    if state is not None and not live:
        raise LoginCodeExpired()
    raise LoginCodeInvalid()


@transaction.atomic
def _login_code_claim(*, customer_id: int, login_code_id: int, actor: Actor) -> Customer:
    """Use the code up, once: the conditional update lets one request through."""
    now = timezone.now()
    claimed = CustomerLoginCode.objects.filter(
        pk=login_code_id, consumed_at__isnull=True, expires_at__gt=now
    ).update(consumed_at=now, updated_at=now)
    if not claimed:
        raise LoginCodeExpired()
    customer = Customer.objects.get(pk=customer_id)
    audit_event_record(
        actor=actor,
        action=CustomersAction.LOGIN_SUCCEEDED,
        target=customer,
        data={"login_code_id": login_code_id},
    )
    return customer


@transaction.atomic
def customer_login_failure_record(*, login_code_id: int, attempt: str, actor: Actor) -> None:
    """Record a wrong code typed for the customer's login code (the task after the answer):
    one more failure on the code, once per ``attempt`` (a task run twice counts one).
    Locks the code's row. Emits ``customers.login.code_failed``."""
    login = (
        CustomerLoginCode.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk=login_code_id)
        .first()
    )
    if login is None or CustomerLoginFailure.objects.filter(attempt=attempt).exists():
        return
    CustomerLoginFailure.objects.create(
        lender_id=login.lender_id, login_code=login, attempt=attempt
    )
    login.failures += 1
    login.save(update_fields=["failures", "updated_at"])
    audit_event_record(
        actor=actor,
        action=CustomersAction.LOGIN_CODE_FAILED,
        target=login.customer,
        data={"login_code_id": login.pk, "failures": login.failures},
    )


LOGIN_LINK_TTL = timedelta(minutes=5)
_LINK_SALT = "customers.login-link"


def customer_login_link_mint(*, customer_id: int, lender_id: int, actor: Actor) -> str:
    """A signed link that logs the customer in once, within ``LOGIN_LINK_TTL``: what the
    lender's app on the customer's phone opens (``POST /api/agent/v1/customer-link``).
    Returns the token. Emits ``customers.login.link_minted``."""
    nonce = secrets.token_urlsafe(12)
    token = signing.dumps({"c": customer_id, "l": lender_id, "n": nonce}, salt=_LINK_SALT)
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action=CustomersAction.LOGIN_LINK_MINTED,
            target=Customer(pk=customer_id, lender_id=lender_id),
            lender_id=lender_id,
        )
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
        audit_event_record(
            actor=actor,
            action=CustomersAction.LOGIN_SUCCEEDED,
            target=customer,
            data={"by": "link"},
        )
    return customer


# --- consent to account reading (funds alerts) ---------------------------------------

ACCOUNT_READING_DAYS = 180  # the EU's open-banking limit; given again, it runs anew


@transaction.atomic
def account_reading_consent_give(
    *,
    customer_id: int,
    lender_id: int,
    lender_name: str,
    provider: str,
    provider_name: str,
    actor: Actor,
    method: str = AccountReadingConsent.Method.SELF_SERVICE,
    days: int = ACCOUNT_READING_DAYS,
) -> AccountReadingConsent:
    """Record the customer's consent to let ``provider`` read their balance for the lender,
    in force for ``days`` from now: the text shown (built here, in the customer's
    language), its version and hash, how and from where it was given. A consent still in
    force is revoked first (one in force at a time: the newest). Returns the new record,
    whose ``reference`` the provider is given to name the customer in its alerts.

    Demo data's consent (``DEMO_SEED``) is refused unless ``DEMO_SEED_ALLOWED``.

    Locks: the customer. Emits ``customers.account_reading.given`` (and ``.revoked`` for
    the one it replaces).
    """
    if method == AccountReadingConsent.Method.DEMO_SEED and not settings.DEMO_SEED_ALLOWED:
        raise NotAllowed("Demo consent is not allowed here.")
    customer = _customer_lock(customer_id=customer_id, lender_id=lender_id)
    now = timezone.now()
    _account_reading_revoke_locked(customer=customer, now=now, actor=actor, why="replaced")
    text = account_reading_text_build(
        lender_name=lender_name, provider_name=provider_name, days=days, locale=customer.locale
    )
    record = AccountReadingConsent(
        lender_id=lender_id,
        customer=customer,
        reference=f"arc_{secrets.token_urlsafe(18)}",
        provider=provider,
        text=text,
        text_version=ACCOUNT_READING_TEXT_VERSION,
        text_sha256=consent_text_sha256(text),
        locale=customer.locale,
        method=method,
        given_at=now,
        expires_at=now + timedelta(days=days),
        ip=actor.ip or "",
        user_agent=actor.user_agent[:400],
    )
    record.full_clean()
    record.save()
    audit_event_record(
        actor=actor,
        action=CustomersAction.ACCOUNT_READING_GIVEN,
        target=record,
        data={
            "customer_id": customer.pk,
            "provider": provider,
            "text_version": record.text_version,
            "text_sha256": record.text_sha256,
            "method": method,
            "expires_at": record.expires_at.isoformat(),
        },
    )
    return record


def _customer_lock(*, customer_id: int, lender_id: int) -> Customer:
    """The lender's customer, locked (its consents to account reading are changed under
    it); NotFound for another lender's or none."""
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .filter(pk=customer_id, lender_id=lender_id)
        .first()
    )
    if customer is None:
        raise NotFound()
    return customer


def _account_reading_revoke_locked(
    *, customer: Customer, now: datetime, actor: Actor, why: str
) -> int:
    """Revoke the customer's consents in force (the customer's row locked); returns how many."""
    in_force = list(
        AccountReadingConsent.objects.select_for_update(of=("self",))
        .filter(customer=customer, revoked_at__isnull=True, expires_at__gt=now)
        .order_by("id")
    )
    for record in in_force:
        record.revoked_at = now
        record.save(update_fields=["revoked_at", "updated_at"])
        audit_event_record(
            actor=actor,
            action=CustomersAction.ACCOUNT_READING_REVOKED,
            target=record,
            data={"customer_id": customer.pk, "provider": record.provider, "why": why},
        )
    return len(in_force)


@transaction.atomic
def account_reading_consent_revoke(*, customer_id: int, lender_id: int, actor: Actor) -> int:
    """The customer withdraws their consent to account reading: every one in force ends now,
    and no funds alert is acted on from this moment. ``AccountReadingConsentNotFound`` when
    none is in force.

    Locks: the customer, then its consents. Emits ``customers.account_reading.revoked``.
    """
    customer = _customer_lock(customer_id=customer_id, lender_id=lender_id)
    revoked = _account_reading_revoke_locked(
        customer=customer, now=timezone.now(), actor=actor, why="customer"
    )
    if not revoked:
        raise AccountReadingConsentNotFound()
    return revoked


@transaction.atomic
def plaid_item_link(
    *, consent_id: int, lender_id: int, item_id: str, access_token: str, actor: Actor
) -> PlaidItem:
    """Link the Plaid Item the customer connected under consent ``consent_id`` (its
    ``item_id`` and the ``access_token`` Plaid exchanged for it): the token is sealed at rest
    and never shown or logged again. Linking again replaces the item and token. ``NotFound``
    for another lender's consent or one no longer in force.

    Locks: the consent. Emits ``customers.plaid_item.linked`` (the item, never the token).
    """
    consent = (
        AccountReadingConsent.objects.select_for_update(of=("self",))
        .filter(pk=consent_id, lender_id=lender_id, revoked_at__isnull=True)
        .filter(expires_at__gt=timezone.now())
        .first()
    )
    if consent is None or not item_id.strip() or not access_token.strip():
        raise NotFound()
    item, _created = PlaidItem.objects.update_or_create(
        consent=consent,
        defaults={
            "lender_id": lender_id,
            "item_id": item_id.strip()[:100],
            "sealed_access_token": seal({"access_token": access_token.strip()}),
        },
    )
    audit_event_record(
        actor=actor,
        action=CustomersAction.PLAID_ITEM_LINKED,
        target=item,
        data={"customer_id": consent.customer_id, "item_id": item.item_id, "rule": item.rule},
    )
    return item
