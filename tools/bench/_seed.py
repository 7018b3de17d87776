"""Shared by the benchmarks (and the load drill): a lender, loans signed through the real
services, and enrolled phones seeded set-based."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

CHUNK = 5000  # rows per bulk insert: bounded memory while seeding 100k phones


def lender_seed(*, slug: str, name: str) -> Any:
    """The bench lender ``slug`` (KES, Kenya) with its restriction policy and a 12-month
    product, created once."""
    from django.db import transaction

    from apps.core.actor import Actor
    from apps.lenders.models import Lender, LoanProduct
    from apps.lenders.services import (
        default_stages,
        lender_create,
        loan_product_save,
        restriction_policy_create,
    )

    actor = Actor.system()
    with transaction.atomic():
        lender = Lender.objects.filter(slug=slug).first()
        if lender is None:
            lender = lender_create(
                name=name,
                slug=slug,
                country="KE",
                currency="KES",
                timezone="Africa/Nairobi",
                locale="en",
                actor=actor,
            )
            restriction_policy_create(
                lender=lender,
                name="Standard",
                stages=default_stages("en", country="KE"),
                actor=actor,
            )
            loan_product_save(
                product=LoanProduct(
                    lender=lender,
                    name="12m",
                    installments=12,
                    frequency="monthly",
                    interest_rate_percent=Decimal(3),
                ),
                actor=actor,
            )
    return lender


def loans_seed(*, lender: Any, loans: int, tag: str = "91", phone_offset: int = 0) -> None:
    """Loans signed through the real services up to ``loans``, each with a customer of its
    own: national id ``<tag><n:06d>`` (8 digits, a Kenyan id), mobile number ``07<phone_offset + n>`` (8 digits), and a
    demo-seed consent. The customers already there (counted by their national ids) are kept."""
    from django.db import transaction

    from apps.collections.services import loan_sign
    from apps.core.actor import Actor
    from apps.core.money import Money
    from apps.customers.models import Customer
    from apps.customers.services import consent_record_demo_seed, customer_get_or_create
    from apps.lenders.models import LoanProduct
    from apps.retailers.services import demo_counter

    actor = Actor.system()
    product = LoanProduct.objects.filter(lender=lender).order_by("pk").first()
    shop, clerk = demo_counter(lender)
    existing = Customer.objects.filter(
        lender=lender, national_id__regex=rf"^{tag}[0-9]{{6}}$"
    ).count()
    for n in range(existing, loans):
        with transaction.atomic():
            customer, _ = customer_get_or_create(
                lender=lender,
                full_name=f"Bench {n}",
                phone=f"07{(phone_offset + n) % 10**8:08d}",
                national_id=f"{tag}{n:06d}",
                actor=actor,
            )
            consent = consent_record_demo_seed(
                customer=customer,
                text="Benchmark terms",
                text_version="bench",
                clerk_id=clerk.user_id,
                shop_id=shop.pk,
                actor=actor,
            )
            loan_sign(
                customer=customer,
                consent=consent,
                product=product,
                device_price=Money(Decimal(10**6), "KES"),
                down_payment=Money(Decimal(1000), "KES"),
                actor=actor,
            )


def device_secret(imei: str) -> str:
    """A bench phone's credential, derived from its IMEI so that a later run can use it."""
    from apps.devices.services.enrollment import sha256_hex

    return sha256_hex(f"bench-agent-secret:{imei}")


def loan_seed(
    lender: Any, *, full_name: str, phone: str, national_id: str, signed_at: Any = None
) -> Any:
    """One loan signed through the real services for a customer of its own (the demo seed's
    consent, the lender's first product, a 12,000 KES phone with 2,000 down), optionally
    signed at ``signed_at``. The caller holds a transaction."""
    from apps.collections.services import loan_sign
    from apps.core.actor import Actor
    from apps.core.money import Money
    from apps.customers.services import consent_record_demo_seed, customer_get_or_create
    from apps.lenders.models import LoanProduct
    from apps.retailers.services import demo_counter

    actor = Actor.system()
    shop, clerk = demo_counter(lender)
    customer, _ = customer_get_or_create(
        lender=lender, full_name=full_name, phone=phone, national_id=national_id, actor=actor
    )
    consent = consent_record_demo_seed(
        customer=customer,
        text="Benchmark terms",
        text_version="bench",
        clerk_id=clerk.user_id,
        shop_id=shop.pk,
        actor=actor,
    )
    return loan_sign(
        customer=customer,
        consent=consent,
        product=LoanProduct.objects.filter(lender=lender).order_by("pk").first(),
        device_price=Money(Decimal(12000), "KES"),
        down_payment=Money(Decimal(2000), "KES"),
        signed_at=signed_at,
        actor=actor,
    )


def template_loan_seed(lender: Any) -> Any:
    """The lender's first loan, signed through the real services if there is none: the
    template that ``enrolled_seed`` copies."""
    from django.db import transaction

    from apps.collections.models import Loan

    with transaction.atomic():
        template = Loan.objects.filter(lender=lender).order_by("pk").first()
        if template is None:
            template = loan_seed(
                lender, full_name="Bench Agent", phone="0700000001", national_id="9000001"
            )
    return template


def copies(instance: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """Unsaved copies of ``instance`` (without its id and timestamps), one per dict of the
    fields that differ."""
    model = type(instance)
    common = {
        f.attname: getattr(instance, f.attname)
        for f in model._meta.concrete_fields
        if f.attname not in ("id", "created_at", "updated_at")
    }
    return [model(**(common | row)) for row in rows]


def enrolled_seed(*, lender: Any, template: Any, devices: int) -> None:
    """Enrolled phones up to ``devices``, each on its own active loan (one live phone per
    loan is a unique index), that applied and acknowledged their first state.

    Four bulk inserts and one ``device_states_write`` (the states' one writer,
    set-based) per chunk. The loans copy the template's terms; each needs a
    consent of its own (a one-to-one), a copy of the template's with its own
    consumed challenge.
    """
    from django.db import transaction
    from django.utils import timezone

    from apps.collections.models import Loan
    from apps.core.actor import Actor
    from apps.customers.models import ConsentChallenge, ConsentRecord
    from apps.devices.models import Device
    from apps.devices.selectors import lender_key_version_current
    from apps.devices.services.enrollment import sha256_hex
    from apps.devices.services.state_writer import StateChange, device_states_write

    key_version = lender_key_version_current(lender_id=lender.pk)
    start = Device.objects.filter(lender=lender, status=Device.Status.ENROLLED).count()
    for first in range(start, devices, CHUNK):
        numbers = range(first, min(first + CHUNK, devices))
        with transaction.atomic():
            challenges = ConsentChallenge.objects.bulk_create(
                copies(template.consent.challenge, [{} for _ in numbers])
            )
            consents = ConsentRecord.objects.bulk_create(
                copies(template.consent, [{"challenge_id": c.pk} for c in challenges])
            )
            loans = Loan.objects.bulk_create(
                copies(
                    template,
                    [
                        {"reference": f"BA-{n:08d}", "consent_id": c.pk, "idempotency_key": None}
                        for n, c in zip(numbers, consents, strict=True)
                    ],
                )
            )
            imeis = [f"35{n:013d}" for n in numbers]
            phones = Device.objects.bulk_create(
                Device(
                    lender=lender,
                    loan=loan,
                    imei=imei,
                    brand="Bench",
                    model_name="A1",
                    status=Device.Status.ENROLLED,
                    credential_hash=sha256_hex(device_secret(imei)),
                    enrolled_at=timezone.now(),
                    agent_version="1.0",
                    key_version=key_version,
                )
                for loan, imei in zip(loans, imeis, strict=True)
            )
            ids = [phone.pk for phone in phones]
            # Their nudges find no push address: the relay started after commit marks them dead.
            device_states_write(
                lender_id=lender.pk,
                actor=Actor.system(),
                reason="Benchmark phones.",
                changes=[StateChange.of(device_id=pk, level="normal", locale="en") for pk in ids],
            )
            Device.objects.filter(pk__in=ids).update(acked_version=1, acked_at=timezone.now())
