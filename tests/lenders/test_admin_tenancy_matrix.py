"""Every registered admin, tried across the lender boundary.

The test enumerates ``admin.site._registry``: an admin added later is covered
without anyone remembering to add it here, and a lender-owned model with no
entry in ``CROSS_TENANT_ROWS`` fails ``test_every_scoped_admin_has_a_row_maker``.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import models
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.collections.models import (
    FundsAlert,
    Loan,
    Payment,
    PaymentAttempt,
    ReconciliationReport,
    RestrictionSuspension,
    SupportPin,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.core.tenancy import belongs_to_lender, is_lender_owned
from apps.customers.models import AccountReadingConsent, Customer
from apps.devices.models import Device, LenderKey, PushNudge
from apps.integrations.models import ProviderAccount, WebhookDelivery, WebhookEndpoint
from apps.lenders.models import (
    ApiKey,
    Lender,
    LoanProduct,
    Membership,
    MessageTemplate,
    RestrictionPolicy,
    RestrictionPolicyVersion,
)
from apps.lenders.tenancy import LenderScopedAdmin, PlatformAdminMixin
from apps.notifications.models import Notification, VoiceCall
from apps.retailers.models import Clerk, Shop
from tests.audit.factories import audit_event_for
from tests.collections.factories import signed_loan
from tests.customers.factories import CustomerFactory
from tests.funds.accounts import reading_consent
from tests.lenders.factories import (
    LoanProductFactory,
    MembershipFactory,
    api_key_for,
    message_text_for,
    restriction_policy_version_for,
)
from tests.retailers.factories import clerk_for, shop_for

pytestmark = pytest.mark.django_db

# model -> a function that makes one row owned by the given lender
CROSS_TENANT_ROWS: dict[type[models.Model], Callable[[Lender], models.Model]] = {
    Lender: lambda lender: lender,
    Membership: lambda lender: MembershipFactory(lender=lender),
    User: lambda lender: MembershipFactory(lender=lender).user,
    AuditEvent: lambda lender: audit_event_for(lender),
    LoanProduct: lambda lender: LoanProductFactory(lender=lender),
    RestrictionPolicy: lambda lender: restriction_policy_version_for(lender).policy,
    RestrictionPolicyVersion: lambda lender: restriction_policy_version_for(lender),
    Customer: lambda lender: CustomerFactory(lender=lender),
    Loan: lambda lender: signed_loan(lender),
    Payment: lambda lender: payment_for(signed_loan(lender)),
    Device: lambda lender: device_for(signed_loan(lender)),
    PushNudge: lambda lender: push_nudge_for(lender),
    Notification: lambda lender: notification_for(lender),
    LenderKey: lambda lender: lender_key_for(lender),
    Shop: lambda lender: shop_for(lender),
    Clerk: lambda lender: clerk_for(shop_for(lender)),
    RestrictionSuspension: lambda lender: suspension_for(lender),
    SupportPin: lambda lender: support_pin_for(lender),
    ProviderAccount: lambda lender: provider_account_for(lender),
    WebhookEndpoint: lambda lender: webhook_endpoint_for(lender),
    WebhookDelivery: lambda lender: webhook_delivery_for(lender),
    ReconciliationReport: lambda lender: reconciliation_report_for(lender),
    PaymentAttempt: lambda lender: payment_attempt_for(lender),
    MessageTemplate: lambda lender: message_text_for(lender, "login_code", "en", "{code}"),
    AccountReadingConsent: lambda lender: reading_consent(CustomerFactory(lender=lender)),
    VoiceCall: lambda lender: voice_call_for(lender),
    FundsAlert: lambda lender: funds_alert_for(lender),
    ApiKey: lambda lender: api_key_for(lender)[0],
}


def voice_call_for(lender: Lender) -> VoiceCall:
    from apps.notifications.services import VoiceDraft, voice_calls_queue

    loan = signed_loan(lender)
    draft = VoiceDraft(loan.customer_id, loan.pk, "alarm", "en", "A reminder.", f"v:{loan.pk}")
    voice_calls_queue(lender=lender, drafts=[draft])
    return VoiceCall.objects.get(loan=loan)


def funds_alert_for(lender: Lender) -> FundsAlert:
    from apps.collections.services import FundsAlertIn, funds_alert_apply

    outcome = funds_alert_apply(
        lender=lender,
        alert=FundsAlertIn(
            f"msg_{lender.slug}", "arc_x", "belvo", Decimal(5), "KES", timezone.now()
        ),
        actor=Actor.system(),
    )
    return FundsAlert.objects.get(pk=outcome.alert_id)


def device_for(loan: Loan) -> Device:
    from tests.devices.factories import phone_registered, valid_imei

    return phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark 20")


def push_nudge_for(lender: Lender) -> PushNudge:
    from tests.devices.factories import enrolled_phone

    device, _, _ = enrolled_phone(lender, fcm_token=f"tok-{lender.slug}")
    return PushNudge.objects.filter(device=device).latest("id")  # enrollment's state queued it


def notification_for(lender: Lender) -> Notification:
    from apps.collections.services import reminders_queue
    from tests.devices.factories import enrolled_phone

    device, _, _ = enrolled_phone(lender)
    first = device.loan.installments.order_by("sequence").first()
    reminders_queue(lender_id=lender.pk, business_date=first.due_date)
    return Notification.objects.get(loan=device.loan)


def lender_key_for(lender: Lender) -> LenderKey:
    from apps.devices.services import lender_signing_key_rotate

    return lender_signing_key_rotate(lender_id=lender.pk, actor=Actor.system(), reason="Drill.")


def payment_for(loan: Loan) -> Payment:
    from apps.collections.services import payment_record

    return payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal(100), loan.currency),
        channel="manual",
        provider="manual",
        provider_ref=f"m-{loan.pk}",
        received_at=timezone.now(),
        actor=Actor.system(),
    ).payment


def suspension_for(lender: Lender) -> RestrictionSuspension:
    from apps.collections.services import restrictions_suspend
    from tests.accounts.factories import OperatorFactory

    operator = OperatorFactory()
    return restrictions_suspend(
        user=operator,
        actor=Actor.agent(operator),
        lender_id=lender.pk,
        reason="A regulator's order.",
    )


def provider_account_for(lender: Lender) -> ProviderAccount:
    from apps.integrations.services import provider_account_save

    return provider_account_save(
        lender_id=lender.pk,
        provider="mpesa",
        enabled=False,
        settings={"shortcode": "174379"},
        secrets={"consumer_key": "consumer-key-1"},
        actor=Actor.system(),
    )


def webhook_endpoint_for(lender: Lender) -> WebhookEndpoint:
    from apps.integrations.services import webhook_endpoint_create

    return webhook_endpoint_create(
        lender_id=lender.pk, url=f"https://{lender.slug}.test/hooks", actor=Actor.system()
    ).endpoint


def webhook_delivery_for(lender: Lender) -> WebhookDelivery:
    """A delivery of a sale to the lender's endpoint (projected, never sent)."""
    from apps.integrations.services.webhooks import webhooks_project

    endpoint = webhook_endpoint_for(lender)
    signed_loan(lender)
    webhooks_project(lender_id=lender.pk)
    return WebhookDelivery.objects.filter(endpoint=endpoint).latest("id")


def payment_attempt_for(lender: Lender) -> PaymentAttempt:
    """A payment started through a provider (its provider never called: a row is enough)."""
    loan = signed_loan(lender)
    return PaymentAttempt.objects.create(
        lender=lender,
        loan=loan,
        provider="mpesa",
        attempt_ref=f"ws_CO_{lender.slug}",
        amount=Decimal(100),
        currency=lender.currency,
        started_by="customer",
    )


def reconciliation_report_for(lender: Lender) -> ReconciliationReport:
    from apps.collections.services import reconciliation_report_build

    # no account with the provider: a report all the same, failed with that code
    return reconciliation_report_build(
        lender_id=lender.pk, provider="stripe", day=timezone.localdate(), actor=Actor.system()
    )


def support_pin_for(lender: Lender) -> SupportPin:
    from apps.collections.services import loan_support_pin_request
    from tests.devices.factories import enrolled_phone

    device, _, _ = enrolled_phone(lender)
    agent = MembershipFactory(lender=lender).user
    return loan_support_pin_request(
        loan_id=device.loan_id,
        lender_id=lender.pk,
        challenge="123456",
        user=agent,
        actor=Actor.agent(agent),
        reason="The customer reads the challenge.",
    ).request


def scoped_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return [(m, ma) for m, ma in admin.site._registry.items() if isinstance(ma, LenderScopedAdmin)]


def platform_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return [(m, ma) for m, ma in admin.site._registry.items() if isinstance(ma, PlatformAdminMixin)]


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_registered_admin_is_scoped_or_platform_only() -> None:
    unscoped = [
        type(ma).__name__
        for ma in admin.site._registry.values()
        if not isinstance(ma, LenderScopedAdmin | PlatformAdminMixin)
    ]
    assert unscoped == []
    assert len(scoped_admins()) >= 4
    assert platform_admins(), "third-party admins (OTP devices, axes, beat) are operators-only"


def test_every_scoped_admin_has_a_row_maker() -> None:
    missing = [m.__name__ for m, _ in scoped_admins() if m not in CROSS_TENANT_ROWS]
    assert missing == []
    assert all(is_lender_owned(m) for m, _ in scoped_admins())


@pytest.fixture
def rows(
    lender_a: Lender, lender_b: Lender
) -> dict[type[models.Model], tuple[models.Model, models.Model]]:
    return {model: (make(lender_a), make(lender_b)) for model, make in CROSS_TENANT_ROWS.items()}


@pytest.mark.parametrize("role", list(Membership.Role))
def test_agent_of_a_never_sees_rows_of_b(
    role, lender_a, lender_b, rows, make_agent, verified_client
) -> None:
    agent = make_agent(lender_a, role=role)
    client = verified_client(agent)
    for model, model_admin in scoped_admins():
        row_a, row_b = rows[model]
        label = model.__name__

        # changelist: own rows listed, the other lender's not
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, label
        listed = {obj.pk for obj in response.context["cl"].result_list}
        assert row_a.pk in listed, label
        assert row_b.pk not in listed, label
        # a search for the other lender's row finds nothing either
        if model_admin.search_fields:
            response = client.get(admin_url(model, "changelist"), {"q": str(row_b)})
            assert row_b.pk not in {obj.pk for obj in response.context["cl"].result_list}, label
        # list filters offer only own related rows
        for spec in response.context["cl"].filter_specs:
            for choice in getattr(spec, "lookup_choices", []):
                related = getattr(spec, "field", None)
                if related is None or not getattr(related, "is_relation", False):
                    continue
                obj = related.related_model._default_manager.filter(pk=choice[0]).first()
                if obj is not None and is_lender_owned(type(obj)):
                    assert belongs_to_lender(obj, lender_a.pk), (label, spec.title)

        # change and history of the other lender's row: 404, as for a row that
        # does not exist; delete: 404, or 403 where the role may delete nothing
        for view, allowed in (("change", {404}), ("history", {404}), ("delete", {403, 404})):
            response = client.get(admin_url(model, view, row_b.pk))
            assert response.status_code in allowed, (label, view, response.status_code)
        # and of one's own row: allowed
        assert client.get(admin_url(model, "change", row_a.pk)).status_code == 200, label

        # bulk actions run on the changelist's queryset, filtered by the selected ids
        request = RequestFactory().get("/")
        request.user = agent
        action_queryset = model_admin.get_changelist_instance(request).get_queryset(request)
        assert not action_queryset.filter(pk=row_b.pk).exists(), label


def test_autocomplete_offers_only_own_rows(
    lender_a, lender_b, rows, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    checked = 0
    for source_model, source_admin in admin.site._registry.items():
        for field_name in source_admin.autocomplete_fields:
            target = source_model._meta.get_field(field_name).related_model
            response = client.get(
                reverse("admin:autocomplete"),
                {
                    "app_label": source_model._meta.app_label,
                    "model_name": source_model._meta.model_name,
                    "field_name": field_name,
                    "term": "",
                },
            )
            assert response.status_code == 200, (source_model, field_name)
            ids = {int(r["id"]) for r in response.json()["results"]}
            own, other = rows[target]
            assert own.pk in ids, (source_model, field_name)
            assert other.pk not in ids, (source_model, field_name)
            checked += 1
    assert checked >= 2


def test_foreign_key_choices_are_scoped(lender_a, lender_b, rows, make_agent) -> None:
    agent = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    request = RequestFactory().get("/")
    request.user = agent
    checked = 0
    for model, model_admin in scoped_admins():
        for field in model._meta.get_fields():
            if not (field.is_relation and field.many_to_one and field.concrete):
                continue
            if not is_lender_owned(field.related_model):
                continue
            formfield = model_admin.formfield_for_foreignkey(field, request)
            choices = list(formfield.queryset)
            assert choices, (model, field.name)
            assert all(belongs_to_lender(obj, lender_a.pk) for obj in choices), (model, field.name)
            checked += 1
    assert checked >= 2


def test_platform_admins_refuse_lender_agents(lender_a, make_agent, verified_client) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    for model, _ in platform_admins():
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code == 403, model
    index = client.get(reverse("admin:index"))
    shown = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert shown.isdisjoint({m._meta.object_name for m, _ in platform_admins()})


def test_operator_sees_every_lender(lender_a, lender_b, rows, operator, verified_client) -> None:
    client = verified_client(operator)
    for model, _ in scoped_admins():
        response = client.get(admin_url(model, "changelist"))
        listed = {obj.pk for obj in response.context["cl"].result_list}
        assert {rows[model][0].pk, rows[model][1].pk} <= listed, model


def test_staff_without_a_lender_sees_nothing(lender_a, rows, make_agent, verified_client) -> None:
    from tests.accounts.factories import UserFactory

    client = verified_client(UserFactory())
    for model, _ in scoped_admins():
        assert client.get(admin_url(model, "changelist")).status_code == 403, model


def test_operators_do_not_write_where_no_service_does(
    operator, lender_a, rows, verified_client
) -> None:
    client = verified_client(operator)
    for model, model_admin in scoped_admins():
        if model_admin.add_roles or model_admin.change_roles:
            continue
        assert client.get(admin_url(model, "add")).status_code == 403, model
        response = client.post(admin_url(model, "change", rows[model][0].pk), {})
        assert response.status_code == 403, model
