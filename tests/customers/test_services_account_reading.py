"""Consent to account reading: recorded like the loan's consent, bounded in time, revocable,
and the one in force is what a funds alert needs."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.db.utils import ProgrammingError
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.customers.consent import ACCOUNT_READING_TEXT_VERSION, consent_text_sha256
from apps.customers.errors import AccountReadingConsentNotFound
from apps.customers.selectors import account_reading_consent_in_force
from apps.customers.services import account_reading_consent_revoke
from tests.customers.factories import CustomerFactory
from tests.funds.accounts import reading_consent

pytestmark = pytest.mark.django_db


def test_the_consent_records_its_text_version_hash_and_a_180_day_end(lender_a) -> None:
    customer = CustomerFactory(lender=lender_a, locale="es")
    record = reading_consent(customer)
    assert record.text_version == ACCOUNT_READING_TEXT_VERSION
    assert record.text_sha256 == consent_text_sha256(record.text)
    assert "Plaid" in record.text
    assert "180" in record.text
    assert record.locale == "es"
    assert record.expires_at - record.given_at == timedelta(days=180)
    # the reference is random (an aggregator learns nothing of our rows from it): 24
    # characters of 144 bits, a new one for each consent of the same customer
    assert re.fullmatch(r"arc_[A-Za-z0-9_-]{24}", record.reference)
    event = AuditEvent.objects.get(action="customers.account_reading.given")
    assert event.data["text_sha256"] == record.text_sha256
    assert account_reading_consent_in_force(customer_id=customer.pk) == record
    assert reading_consent(customer).reference != record.reference  # a new one each time


def test_no_consent_is_in_force_after_it_expires(lender_a) -> None:
    customer = CustomerFactory(lender=lender_a)
    reading_consent(customer)
    with time_machine.travel(timezone.now() + timedelta(days=180, seconds=1)):
        assert account_reading_consent_in_force(customer_id=customer.pk) is None


def test_a_revoked_consent_is_no_longer_in_force_and_revoking_twice_is_refused(lender_a) -> None:
    customer = CustomerFactory(lender=lender_a)
    record = reading_consent(customer)
    revoke = {"customer_id": customer.pk, "lender_id": lender_a.pk, "actor": Actor.system()}
    assert account_reading_consent_revoke(**revoke) == 1
    record.refresh_from_db()
    assert record.revoked_at is not None
    assert account_reading_consent_in_force(customer_id=customer.pk) is None
    assert AuditEvent.objects.filter(action="customers.account_reading.revoked").count() == 1
    with pytest.raises(AccountReadingConsentNotFound):
        account_reading_consent_revoke(**revoke)


def test_giving_it_again_replaces_the_one_in_force(lender_a) -> None:
    customer = CustomerFactory(lender=lender_a)
    first = reading_consent(customer)
    second = reading_consent(customer)
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert account_reading_consent_in_force(customer_id=customer.pk) == second


def test_a_consent_record_cannot_be_deleted(lender_a) -> None:
    record = reading_consent(CustomerFactory(lender=lender_a))
    with pytest.raises(ProgrammingError), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM customers_accountreadingconsent WHERE id = %s",
            [record.pk],
        )
