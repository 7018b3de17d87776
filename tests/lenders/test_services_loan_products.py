from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.lenders.models import LoanProduct
from apps.lenders.services import loan_product_save
from tests.lenders.factories import LoanProductFactory

pytestmark = pytest.mark.django_db


def product(lender, **terms) -> LoanProduct:
    base = {
        "name": "12 months",
        "installments": 12,
        "frequency": "monthly",
        "min_down_payment_percent": Decimal("10"),
        "interest_method": "flat",
        "interest_rate_percent": Decimal("3"),
        "late_fee_type": "none",
        "late_fee_value": Decimal(0),
    }
    return LoanProduct(lender=lender, **{**base, **terms})


def test_valid_product_is_saved_and_audited(lender_a) -> None:
    saved = loan_product_save(product=product(lender_a), actor=Actor.system())
    event = AuditEvent.objects.get(action="lenders.loan_product.created")
    assert (event.lender_id, event.target_id, event.data["new"]["installments"]) == (
        lender_a.pk,
        str(saved.pk),
        12,
    )


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"installments": 0}, "installments"),
        ({"installments": 200}, "installments"),
        ({"frequency": "daily"}, "frequency"),
        ({"min_down_payment_percent": Decimal("100")}, "min_down_payment_percent"),
        ({"interest_rate_percent": Decimal("150")}, "interest_rate_percent"),
        (
            {"interest_method": "declining", "interest_rate_percent": Decimal("1500")},
            "interest_rate_percent",
        ),
        ({"late_fee_type": "fixed", "late_fee_value": Decimal(0)}, "late_fee_value"),
        ({"late_fee_type": "percent", "late_fee_value": Decimal("120")}, "late_fee_value"),
        (
            {
                "late_fee_type": "fixed",
                "late_fee_value": Decimal("50"),
                "late_fee_cap": Decimal("10"),
            },
            "late_fee_cap",
        ),
        ({"late_fee_value": Decimal("5")}, "late_fee_value"),
        ({"grace_days": 90}, "grace_days"),
    ],
)
def test_invalid_combinations_get_a_clear_error_and_nothing_is_stored(
    lender_a, terms, field
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        loan_product_save(product=product(lender_a, **terms), actor=Actor.system())
    if field:
        assert field in excinfo.value.message_dict
    assert not LoanProduct.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="lenders.loan_product").exists()


def test_change_records_old_and_new_terms_only_when_something_changed(lender_a) -> None:
    saved = LoanProductFactory(lender=lender_a, grace_days=3)
    saved.grace_days = 5
    loan_product_save(product=saved, actor=Actor.system())
    loan_product_save(product=saved, actor=Actor.system())
    events = AuditEvent.objects.filter(action="lenders.loan_product.changed")
    assert [e.data for e in events] == [{"old": {"grace_days": 3}, "new": {"grace_days": 5}}]


def test_fixed_late_fees_and_caps_are_in_the_currencys_minor_unit(lender_a) -> None:
    with pytest.raises(ValidationError) as excinfo:
        loan_product_save(
            product=product(lender_a, late_fee_type="fixed", late_fee_value=Decimal("10.005")),
            actor=Actor.system(),
        )
    assert "late_fee_value" in excinfo.value.message_dict
    with pytest.raises(ValidationError):
        loan_product_save(
            product=product(
                lender_a,
                late_fee_type="percent",
                late_fee_value=Decimal("5"),
                late_fee_cap=Decimal("1.001"),
            ),
            actor=Actor.system(),
        )
