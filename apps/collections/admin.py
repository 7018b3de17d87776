"""Back office for loans and payments: read-only, corrections through services."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.collections import portfolio
from apps.collections.conversion import conversion_by_trigger
from apps.collections.evidence import loan_audit_event_list
from apps.collections.forms import (
    DecisionForm,
    HardshipPauseForm,
    ManualPaymentForm,
    MessagesHandledForm,
    MpesaPromptForm,
    PauseForm,
    PortfolioPeriodForm,
    ReasonForm,
    SupportPinForm,
    SuspendForm,
)
from apps.collections.models import (
    STAGE_ORDER,
    FundsAlert,
    InboundMessage,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    ManualLock,
    Payment,
    PaymentAttempt,
    ReconciliationReport,
    RestrictionSuspension,
    Stage,
    SupportPin,
)
from apps.collections.selectors import (
    WorkQueue,
    inbound_message_list_for_loan,
    inbound_message_list_waiting,
    loan_days_overdue,
    loan_list_at_a_glance,
    loan_list_late_more_than,
    loan_next_due,
    loan_outstanding,
    loan_overview,
    loan_work_queue,
    loan_work_queue_counts,
    restriction_suspension_in_force,
)
from apps.collections.services import (
    SupportPinOutcome,
    SweepForecast,
    inbound_messages_handle,
    loan_action_refusals,
    loan_cancel,
    loan_evidence_export,
    loan_hardship_pause_set,
    loan_hardship_request,
    loan_legal_hold_set,
    loan_manual_lock_decide,
    loan_manual_lock_request,
    loan_pause_decide,
    loan_promise_record,
    loan_reminder_resend,
    loan_stage_lift,
    loan_support_pin_decide,
    loan_support_pin_request,
    login_links_masked,
    payment_attempt_start,
    payment_record,
    reconciliation_reports_build,
    restrictions_resume,
    restrictions_suspend,
    sweep_forecast,
)
from apps.collections.sql import PAR_DAYS
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money, amount_format, money_format
from apps.customers.services import phone_to_e164
from apps.devices.errors import OfflineCodeUnknown
from apps.devices.models import DeviceState, OfflineToken
from apps.devices.selectors import (
    device_list_for_loan,
    device_list_with_sync_lag,
    offline_code_list_for_loan,
)
from apps.devices.services import offline_code_resend
from apps.integrations.payments.registry import MPESA, providers_enabled
from apps.lenders.models import Lender, Membership
from apps.lenders.selectors import (
    lender_local_date,
    restriction_policy_version_list,
    restriction_stage_list,
)
from apps.lenders.services import StageSpec, restriction_stages_draft
from apps.lenders.tenancy import (
    LenderScopedAdmin,
    ReadOnlyAdminMixin,
    ScopedReadOnlyInline,
    is_platform_operator,
    scope_for_user,
    user_lender_id,
)
from apps.notifications.models import Notification
from apps.notifications.selectors import notification_list_for_loan


class InstallmentInline(ScopedReadOnlyInline):
    model = Installment
    fields = (
        "sequence",
        "due_date",
        "principal_amount",
        "interest_amount",
        "fee_amount",
        "late_fee_amount",
        "principal_paid",
        "interest_paid",
        "fee_paid",
        "late_fee_paid",
        "paid_at",
    )
    readonly_fields = fields
    ordering = ("sequence",)


class PaymentInline(ScopedReadOnlyInline):
    model = Payment
    fields = (
        "received_at",
        "amount",
        "currency",
        "channel",
        "provider",
        "provider_ref",
        "receipt_ref",
        "reason",
    )
    readonly_fields = fields
    ordering = ("received_at",)


class StageChangeInline(ScopedReadOnlyInline):
    model = LoanStageChange
    verbose_name_plural = _("Restriction stage history")
    fields = (
        "created_at",
        "from_stage",
        "to_stage",
        "cause",
        "days_overdue",
        "business_date",
        "policy_version",
        "device_version",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class _DecisionInline(ScopedReadOnlyInline):
    """Rows waiting for a supervisor's decision, with a link to decide each."""

    decide_url: str
    decide_class: str

    @admin.display(description=_("Decide"))
    def decide(self, row: Any) -> str:
        if row.status != "requested":
            return ""
        url = reverse(self.decide_url, args=[row.loan_id, row.pk])
        return format_html(
            '<a class="{}" href="{}">{}</a>', self.decide_class, url, _("Approve or reject")
        )


class PauseInline(_DecisionInline):
    model = LoanPause
    verbose_name_plural = _("Promises and pauses")
    fields = (
        "kind",
        "status",
        "starts_on",
        "ends_on",
        "promised_amount",
        "reason",
        "requested_by",
        "decided_by",
        "decision_reason",
        "decide",
    )
    readonly_fields = fields
    ordering = ("-created_at",)

    decide_url, decide_class = "admin:collections_loan_pause_decide", "decide-pause"


class ManualLockInline(_DecisionInline):
    model = ManualLock
    verbose_name_plural = _("Manual locks (two-person rule)")
    fields = (
        "created_at",
        "status",
        "reason",
        "requested_by",
        "decided_by",
        "decided_at",
        "decision_reason",
        "decide",
    )
    readonly_fields = fields
    ordering = ("-created_at",)

    decide_url, decide_class = "admin:collections_loan_manual_lock_decide", "decide-lock"


class SupportPinInline(_DecisionInline):
    """Support PINs asked for on this loan; one asked without a payment since the restriction
    waits here for a supervisor. The PIN itself is never kept: only its challenge."""

    model = SupportPin
    verbose_name_plural = _("Support PINs (a supervisor approves one without a payment)")
    fields = (
        "created_at",
        "status",
        "challenge",
        "payment_since_lock",
        "reason",
        "requested_by",
        "decided_by",
        "decided_at",
        "decide",
    )
    readonly_fields = fields
    ordering = ("-created_at",)

    decide_url, decide_class = "admin:collections_loan_support_pin_decide", "decide-support-pin"


class NotificationInline(ScopedReadOnlyInline):
    model = Notification
    verbose_name_plural = _("Messages to the customer (latest 20)")
    fields = (
        "created_at",
        "kind",
        "status",
        "text",
        "scheduled_for",
        "channel",
        "pushed_at",
        "acked_at",
        "sent_at",
        "delivery",
        "delivered_at",
    )
    readonly_fields = fields

    @admin.display(description=_("text"))
    def text(self, notification: Notification) -> str:
        # an answer to PAY carries a login link: an agent sees it without its token
        return login_links_masked(notification.body)

    def get_queryset(self, request: HttpRequest) -> Any:
        # the latest 20 of this loan (the page's object), not of every loan
        loan_id = (request.resolver_match.kwargs if request.resolver_match else {}).get("object_id")
        mine = notification_list_for_loan(loan_id=loan_id)
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=mine.values("pk")[:20])
            .order_by("-created_at")
        )


class InboundMessageInline(ScopedReadOnlyInline):
    """What the customer wrote to the lender's number or WhatsApp account, and how it was
    answered: at once (the keywords), or by an agent, who marks it handled."""

    model = InboundMessage
    verbose_name_plural = _("Messages from the customer (latest 20)")
    fields = (
        "received_at",
        "channel",
        "text",
        "intent",
        "answer",
        "refusal",
        "needs_agent",
        "handled_at",
        "handled_by",
        "handled_note",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        # the latest 20 of this loan (the page's object), not of every loan
        loan_id = (request.resolver_match.kwargs if request.resolver_match else {}).get("object_id")
        mine = inbound_message_list_for_loan(loan_id=loan_id)
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=mine.values("pk")[:20])
            .order_by("-received_at", "-id")
        )


@dataclass(frozen=True)
class LoanAction:
    title: Any
    form: type[forms.Form]
    roles: frozenset[str]


AGENTS = frozenset(Membership.Role)
SUPERVISORS = frozenset({Membership.Role.SUPERVISOR, Membership.Role.LENDER_ADMIN})
LOAN_ACTIONS: dict[str, LoanAction] = {
    "promise": LoanAction(_("Record a promise to pay"), PauseForm, AGENTS),
    "hardship": LoanAction(_("Request a hardship pause"), PauseForm, AGENTS),
    "legal-hold": LoanAction(_("Set a legal hold"), PauseForm, SUPERVISORS),
    "lift": LoanAction(_("Lift the restriction now"), ReasonForm, AGENTS),
    "lock": LoanAction(
        _("Ask to lock the phone now (a second person approves)"), ReasonForm, AGENTS
    ),
    "resend": LoanAction(_("Send the reminder again"), ReasonForm, AGENTS),
    "resend-code": LoanAction(_("Send the unlock code again"), ReasonForm, AGENTS),
    "cancel": LoanAction(_("Cancel the sale (the phone never enrolled)"), ReasonForm, SUPERVISORS),
}


STAGE_RANK = Case(
    *[When(stage=stage, then=Value(n)) for n, stage in enumerate(STAGE_ORDER)],
    output_field=IntegerField(),
)
"""A stage's place on the ladder, to sort the loan list by."""

QUEUE_TABS = (
    WorkQueue.PROMISES_DUE,
    WorkQueue.PROMISES_BROKEN,
    WorkQueue.LOCK_TOMORROW,
    WorkQueue.OUT_OF_SYNC,
    WorkQueue.SIM_CHANGED,
    WorkQueue.APPROVALS,
    WorkQueue.CREDIT_TO_REVIEW,
    WorkQueue.RELEASED_WITH_ARREARS,
    WorkQueue.MESSAGES_TO_ANSWER,
)
"""The work queues at the top of the loan list, in the order of an agent's day."""

PHONE_STATE_LABELS = {
    "no_phone": _("No phone"),
    "not_enrolled": _("Not enrolled: restrictions cannot apply"),
    **dict(DeviceState.Level.choices),  # the level of the state the phone acknowledged
}


def _glance(loan: Loan) -> Any:
    """The loan with what ``loan_list_at_a_glance`` annotated on it (days past due, amount
    due, phone state), which the model does not declare."""
    return loan


LOAN_FIELDS = (
    "reference",
    "customer",
    "status",
    "stage",
    "stage_changed_at",
    "summary",
    "phone",
    "consent_given",
    "shop",
    "lender",
    "signed_at",
    "start_date",
    "paid_off_at",
    "collateral_released_at",
)
PRODUCT_FIELDS = (
    "product",
    "policy_version",
    "currency",
    "device_price_amount",
    "down_payment_amount",
    "financed_amount",
    "installments_count",
    "frequency",
    "interest_method",
    "interest_rate_percent",
    "origination_fee_percent",
    "grace_days",
    "late_fee_type",
    "late_fee_value",
    "late_fee_cap",
)
LOAN_ACTION_LINKS = (
    ("promise", _("Promise to pay")),
    ("hardship", _("Hardship pause")),
    ("legal-hold", _("Legal hold")),
    ("lift", _("Lift restriction")),
    ("lock", _("Manual lock")),
    ("resend", _("Resend reminder")),
    ("support-pin", _("Support PIN")),
    ("cancel", _("Cancel the sale")),
)
"""The actions of the loan's header, in order; each is offered where the rules allow it."""


class WorkQueueFilter(admin.SimpleListFilter):
    """The day's work lists: promises due, broken promises, loans that lock tomorrow, phones out
    of sync, SIM changes (``loan_work_queue``, in SQL), as of the agent's lender's date."""

    title = _("work queue")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(WorkQueue.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Loan]) -> QuerySet[Loan]:
        if self.value() not in WorkQueue.values:
            return queryset
        return loan_work_queue(queryset, queue=self.value(), today=LoanAdmin._lender_today(request))


class LateOverFilter(admin.SimpleListFilter):
    """The loans behind a PAR figure of the portfolio: active, more than N days late
    (``loan_list_late_more_than``, the PAR's rule), as of the lender's date."""

    title = _("portfolio at risk")
    parameter_name = "late_over"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(n), _("More than %(n)s days late") % {"n": n}) for n in PAR_DAYS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Loan]) -> QuerySet[Loan]:
        if not (self.value() or "").isdigit():
            return queryset
        return loan_list_late_more_than(
            queryset, days=int(self.value() or 0), today=LoanAdmin._lender_today(request)
        )


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    payment_roles = frozenset(Membership.Role)
    list_display = (
        "reference",
        "customer",
        "standing",
        "days_late",
        "due_now",
        "phone_state",
        "lender",
    )
    list_select_related = ("customer", "lender", "shop")
    list_filter = (WorkQueueFilter, LateOverFilter, "status", "stage", "shop", "product", "lender")
    change_list_template = "admin/collections/loan/change_list.html"
    actions = ("bulk_resend", "bulk_hardship_pause")
    search_fields = (
        "reference",
        "customer__full_name",
        "customer__phone",
        "customer__national_id",
        "=devices__imei",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Loan], search_term: str
    ) -> tuple[QuerySet[Loan], bool]:
        """Also a phone number as people write it (``0712 345 678``, ``+254 712…``): its last
        nine digits against the stored E.164 number."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        digits = re.sub(r"\D", "", search_term)
        if 7 <= len(digits) <= 15 and not search_term.strip().startswith("SC-"):
            found = found | queryset.filter(customer__phone__endswith=digits.lstrip("0")[-9:])
        return found, duplicates

    readonly_fields = (*LOAN_FIELDS, *PRODUCT_FIELDS, "audit_trail", "offline_codes")
    inlines = (
        InstallmentInline,
        PaymentInline,
        StageChangeInline,
        PauseInline,
        ManualLockInline,
        SupportPinInline,
        InboundMessageInline,
        NotificationInline,
    )
    change_form_template = "admin/collections/loan/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Loan]:
        """The scoped loans with their days late, what is due now and the phone's state, in
        SQL (``loan_list_at_a_glance``): the list sorts on them, with no query per row."""
        return loan_list_at_a_glance(super().get_queryset(request))

    def get_list_display(self, request: HttpRequest) -> Any:
        """The lender's column only for an operator, who sees every lender's loans."""
        shown = super().get_list_display(request)
        if is_platform_operator(request.user):
            return shown
        return [name for name in shown if name != "lender"]

    @admin.display(description=_("days late"), ordering="days_past_due")
    def days_late(self, loan: Loan) -> int:
        return _glance(loan).days_past_due

    @admin.display(description=_("due now"), ordering="amount_due")
    def due_now(self, loan: Loan) -> str:
        return money_format(_glance(loan).amount_due, loan.currency)

    @admin.display(description=_("phone"), ordering="phone_rank")
    def phone_state(self, loan: Loan) -> str:
        """The phone's real state (what it acknowledged), never a stage it cannot take."""
        state = _glance(loan).phone_state
        text = PHONE_STATE_LABELS[state]
        behind = _glance(loan).phone_behind
        if state == "not_enrolled":
            return format_html('<span class="phone-not-enrolled">{}</span>', text)
        if behind:
            return format_html(
                '{} <span class="phone-behind">({})</span>', text, _("not yet applied")
            )
        return str(text)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The loan list under the work queues as tabs, each with its count (one count
        query each, however many loans)."""
        loans = super().get_queryset(request)
        counts = loan_work_queue_counts(loans, today=self._lender_today(request))
        chosen = request.GET.get("queue", "")
        tabs = [
            {
                "queue": queue,
                "label": WorkQueue(queue).label,
                "count": counts[queue],
                "url": f"?queue={queue}",
                "current": queue == chosen,
            }
            for queue in QUEUE_TABS
        ]
        return super().changelist_view(
            request, {**(extra_context or {}), "queue_tabs": tabs, "queue_chosen": chosen}
        )

    @staticmethod
    def _lender_today(request: HttpRequest) -> Any:
        lender_id = user_lender_id(request.user)
        if lender_id is None:
            return timezone.localdate()
        return lender_local_date(lender=Lender.objects.get(pk=lender_id))

    @admin.display(description=_("stage"), ordering=STAGE_RANK)
    def standing(self, loan: Loan) -> str:
        """An active loan's restriction stage; else what became of the loan (paid off,
        cancelled, released with arrears), which no stage applies to."""
        if loan.released_with_arrears:
            return str(_("Released with arrears"))
        if loan.status != Loan.Status.ACTIVE:
            return loan.get_status_display()
        return loan.get_stage_display()

    @admin.display(description=_("Balance"))
    def summary(self, loan: Loan) -> str:
        next_due = loan_next_due(loan=loan)
        due = (
            _("next due on %(date)s (%(amount)s)")
            % {
                "date": date_format(next_due.due_date, "DATE_FORMAT"),
                "amount": money_format(next_due.amount.amount, loan.currency),
            }
            if next_due
            else _("nothing due")
        )
        days = loan_days_overdue(loan=loan)
        balance = ngettext(
            "Outstanding %(amount)s; %(due)s; %(days)d day overdue",
            "Outstanding %(amount)s; %(due)s; %(days)d days overdue",
            days,
        ) % {
            "amount": money_format(loan_outstanding(loan=loan).amount, loan.currency),
            "due": due,
            "days": days,
        }
        if loan.released_with_arrears:
            released = lender_local_date(lender=loan.lender, at=loan.collateral_released_at)
            return str(
                _(
                    "Released with arrears: the phone was released on %(date)s and can no "
                    "longer be restricted. %(balance)s"
                )
                % {"date": released, "balance": balance}
            )
        return balance

    @admin.display(description=_("Phone"))
    def phone(self, loan: Loan) -> str:
        """The phone, its desired and acknowledged state, and how long it has been behind."""
        devices = device_list_with_sync_lag(
            device_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id)
        )
        rows = []
        for device in devices:
            url = reverse("admin:devices_device_change", args=[device.pk])
            lag = (
                _("in sync")
                if device.sync_lag is None
                else _("behind for %(lag)s") % {"lag": str(device.sync_lag).split(".")[0]}
            )
            rows.append(
                format_html(
                    '<a href="{}">{} {}</a> · IMEI {} · {} · {} v{} · {} v{} · {} · {} {}',
                    url,
                    device.brand,
                    device.model_name,
                    device.imei,
                    device.get_status_display(),
                    _("should be on"),
                    device.desired_version,
                    _("acknowledged"),
                    device.acked_version,
                    lag,
                    _("last seen"),
                    device.last_seen_at or "-",
                )
            )
        return format_html_join(mark_safe("<br>"), "{}", ((row,) for row in rows)) or "-"

    def get_fieldsets(self, request: HttpRequest, obj: Loan | None = None) -> Any:
        """What an agent reads first, then the product's terms folded away, the phone's
        offline unlock codes and the audit trail, each in a section of its own."""
        return [
            (None, {"fields": LOAN_FIELDS}),
            (_("Product settings"), {"classes": ["collapse"], "fields": PRODUCT_FIELDS}),
            (_("Offline unlock codes"), {"fields": ["offline_codes"]}),
            (_("Audit trail"), {"classes": ["collapse"], "fields": ["audit_trail"]}),
        ]

    @admin.display(description=_("consent"))
    def consent_given(self, loan: Loan) -> str:
        """The customer's consent as what it is: how, when, at which shop, which text."""
        consent = loan.consent
        if consent is None:
            return str(_("None recorded: no restriction may apply."))
        return str(
            _("%(method)s, %(when)s, at %(shop)s (text %(version)s, in %(locale)s)")
            % {
                "method": consent.get_method_display(),
                "when": date_format(timezone.localtime(consent.created_at), "DATETIME_FORMAT"),
                "shop": consent.shop,
                "version": consent.text_version,
                "locale": consent.locale,
            }
        )

    def _header(self, request: HttpRequest, loan: Loan) -> dict[str, Any]:
        """The loan's header: how late, what is due now, the stage beside the phone's real
        state, the customer's number, the next step and its date, and the actions the rules
        allow, each refused one with the service's reason."""
        overview = loan_overview(loan=loan)
        if overview.pause_kind:
            step = _("%(pause)s until %(until)s") % {
                "pause": LoanPause.Kind(overview.pause_kind).label,
                "until": date_format(overview.pause_until, "DATE_FORMAT"),
            }
        elif overview.next_stage_on:
            step = _("%(stage)s on %(date)s unless paid") % {
                "stage": Stage(overview.next_stage).label,
                "date": date_format(overview.next_stage_on, "DATE_FORMAT"),
            }
        elif overview.next_due:
            step = _("Installment %(n)s of %(amount)s due on %(date)s") % {
                "n": overview.next_due.sequence,
                "amount": money_format(overview.next_due.amount.amount, loan.currency),
                "date": date_format(overview.next_due.due_date, "DATE_FORMAT"),
            }
        else:
            step = _("Nothing more is due.")
        refusals = loan_action_refusals(loan=loan)
        actions = []
        for action, label in LOAN_ACTION_LINKS:
            if not self._offered(action, loan):
                continue
            roles = LOAN_ACTIONS[action].roles if action in LOAN_ACTIONS else AGENTS
            refusal = refusals.get(action, "")
            allowed = is_platform_operator(request.user) or self._role_allows(request, roles, loan)
            if not (refusal or allowed):
                refusal = str(_("Only a supervisor or the lender's admin may do this."))
            url = (
                reverse("admin:collections_loan_support_pin", args=[loan.pk])
                if action == "support-pin"
                else reverse("admin:collections_loan_act", args=[loan.pk, action])
            )
            actions.append({"id": action, "label": label, "url": url, "refusal": refusal})
        phone, glance = loan.customer.phone, _glance(loan)
        return {
            "days_late": glance.days_past_due,
            "due_now": money_format(glance.amount_due, loan.currency),
            "phone_state": glance.phone_state,
            "phone_state_label": PHONE_STATE_LABELS[glance.phone_state],
            "phone_behind": glance.phone_behind,
            "customer_phone": phone,
            "customer_tel": "tel:" + re.sub(r"[^\d+]", "", phone),
            "next_step": step,
            "actions": actions,
        }

    @staticmethod
    def _offered(action: str, loan: Loan) -> bool:
        """Whether the action belongs on this loan's page at all (a lift needs a restriction,
        a lock or a PIN a phone not released, a cancel a phone still waiting for its
        enrollment); the rules decide the rest."""
        if action == "lift":
            return loan.stage != Stage.NONE
        if action in ("lock", "support-pin"):  # a phone released at payoff is free for good
            return loan.collateral_released_at is None
        if action == "cancel":
            return _glance(loan).phone_state == "not_enrolled"
        return True

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Loan | None = None,
    ) -> HttpResponse:
        if obj is not None:  # "send the unlock code again" only where there is one
            context["has_offline_codes"] = offline_code_list_for_loan(
                loan_id=obj.pk, lender_id=obj.lender_id
            ).exists()
            context["has_mpesa"] = MPESA in providers_enabled(lender_id=obj.lender_id)
            context["messages_waiting"] = inbound_message_list_waiting(loan_id=obj.pk).count()
            context["header"] = self._header(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("Codes issued to the phone (never their digits)"))
    def offline_codes(self, loan: Loan) -> str:
        """The unlock codes issued to the loan's phone, newest first: when, what they give, how
        they reached the customer, and when the phone reported applying one offline."""

        def when(value: Any) -> str:
            return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"

        def delivered(code: OfflineToken) -> str:
            if code.sms_sent_at:
                return f"{code.get_delivery_display()} ({when(code.sms_sent_at)})"
            return str(code.get_delivery_display())

        codes = offline_code_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    when(code.created_at),
                    code.count,
                    code.get_kind_display(),
                    code.paid_until or "-",
                    code.cause or "-",
                    delivered(code),
                    when(code.resent_at),
                    when(code.applied_at),
                )
                for code in codes
            ),
        )
        if not rows:
            return str(_("No code issued yet: a payment that lowers the restriction brings one."))
        head = format_html_join(
            "",
            "<th>{}</th>",
            (
                (title,)
                for title in (
                    _("Issued"),
                    _("Count"),
                    _("Kind"),
                    _("Lease moves to"),
                    _("Cause"),
                    _("Delivered"),
                    _("Sent again"),
                    _("Applied offline (phone's report)"),
                )
            ),
        )
        return format_html(
            '<table id="offline-codes"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            rows,
        )

    @admin.display(description=_("Audit trail (latest 30)"))
    def audit_trail(self, loan: Loan) -> str:
        events = loan_audit_event_list(loan=loan)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}…</code></td></tr>",
            (
                (
                    e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{e.actor_type} {e.actor_id}".strip(),
                    e.action,
                    e.reason or "",
                    e.hash[:12],
                )
                for e in events
            ),
        )
        return format_html('<table class="audit-trail">{}</table>', rows) if events else "-"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.record_payment_view)
        mpesa_prompt = self.admin_site.admin_view(self.mpesa_prompt_view)
        action = self.admin_site.admin_view(self.loan_action_view)
        decide = self.admin_site.admin_view(self.pause_decide_view)
        lock_decide = self.admin_site.admin_view(self.manual_lock_decide_view)
        # admin_view answers with never_cache: a page showing a support PIN is never cached
        support_pin = self.admin_site.admin_view(self.support_pin_view)
        support_pin_decide = self.admin_site.admin_view(self.support_pin_decide_view)
        evidence = self.admin_site.admin_view(self.evidence_view)
        messages_handled = self.admin_site.admin_view(self.messages_handled_view)
        dashboard = self.admin_site.admin_view(self.portfolio_view)
        forecast = self.admin_site.admin_view(self.sweep_forecast_view)
        return [
            path("portfolio/", dashboard, name="collections_loan_portfolio"),
            path("sweep-forecast/", forecast, name="collections_loan_sweep_forecast"),
            path("<int:object_id>/record-payment/", view, name="collections_loan_record_payment"),
            path(
                "<int:object_id>/mpesa-prompt/", mpesa_prompt, name="collections_loan_mpesa_prompt"
            ),
            path("<int:object_id>/evidence/", evidence, name="collections_loan_evidence"),
            path(
                "<int:object_id>/messages/",
                messages_handled,
                name="collections_loan_messages_handled",
            ),
            path(
                "<int:object_id>/manual-locks/<int:request_id>/decide/",
                lock_decide,
                name="collections_loan_manual_lock_decide",
            ),
            path("<int:object_id>/support-pin/", support_pin, name="collections_loan_support_pin"),
            path(
                "<int:object_id>/support-pins/<int:request_id>/decide/",
                support_pin_decide,
                name="collections_loan_support_pin_decide",
            ),
            path("<int:object_id>/act/<slug:action>/", action, name="collections_loan_act"),
            path(
                "<int:object_id>/pauses/<int:pause_id>/decide/",
                decide,
                name="collections_loan_pause_decide",
            ),
            *super().get_urls(),
        ]

    def _loan_or_404(self, request: HttpRequest, object_id: int) -> Loan:
        loan = self.get_object(request, str(object_id))
        if loan is None:
            raise Http404
        return loan

    @admin.action(description=_("Send the reminder again to the selected loans"))
    def bulk_resend(self, request: HttpRequest, queryset: QuerySet[Loan]) -> HttpResponse | None:
        def run(loan: Loan, values: dict[str, Any], actor: Actor) -> object:
            return loan_reminder_resend(
                loan_id=loan.pk, lender_id=loan.lender_id, actor=actor, reason=values["reason"]
            )

        return self._bulk(request, queryset, "bulk_resend", ReasonForm, AGENTS, run)

    @admin.action(
        description=_("Pause the selected loans for hardship (e.g. a region hit by a disaster)")
    )
    def bulk_hardship_pause(
        self, request: HttpRequest, queryset: QuerySet[Loan]
    ) -> HttpResponse | None:
        def run(loan: Loan, values: dict[str, Any], actor: Actor) -> object:
            return loan_hardship_pause_set(
                loan_id=loan.pk,
                lender_id=loan.lender_id,
                until=values["until"],
                user=request.user,
                reason=values["reason"],
                actor=actor,
            )

        return self._bulk(
            request, queryset, "bulk_hardship_pause", HardshipPauseForm, SUPERVISORS, run
        )

    def _bulk(
        self,
        request: HttpRequest,
        queryset: QuerySet[Loan],
        name: str,
        form_class: type[forms.Form],
        roles: frozenset[str],
        run: Any,
    ) -> HttpResponse | None:
        """An action over the selected loans with the same form and rules as on one loan: a
        page for the reason (and date), then each loan in its own transaction; a loan the
        service refuses is named with why, the others go ahead."""
        loans = list(queryset.order_by("pk"))
        for loan in loans:
            self.require_role(request, roles, loan)
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor, done, refused = Actor.agent(request.user, request), 0, []
            for loan in loans:
                try:
                    run(loan, form.cleaned_data, actor)
                    done += 1
                except DomainError as exc:
                    refused.append(f"{loan.reference}: {exc.message}")
            self.message_user(
                request,
                _("%(done)s of %(total)s loans done.") % {"done": done, "total": len(loans)},
                messages.SUCCESS if done else messages.WARNING,
            )
            if refused:
                self.message_user(request, " · ".join(refused), messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "loans": loans,
            "form": form,
            "action_name": name,
            "title": getattr(type(self), name).short_description,
        }
        return TemplateResponse(request, "admin/collections/loan/bulk.html", context)

    def portfolio_view(self, request: HttpRequest) -> HttpResponse:
        """The lender's portfolio at a glance: stages, PAR, roll rates, cure rates, unlock times.
        An agent sees their own lender; an operator picks one (``?lender=<id>``)."""
        lender = self._lender_shown(request)
        operator = is_platform_operator(request.user)
        lenders = Lender.objects.order_by("name")
        period = PortfolioPeriodForm(request.GET or None)
        start, end = (
            (period.cleaned_data["start"], period.cleaned_data["end"])
            if period.is_valid()
            else (None, None)
        )
        figures = portfolio.dashboard(lender=lender, now=timezone.now(), start=start, end=end)
        export = request.GET.get("export", "")
        if export:
            tables = portfolio.dashboard_tables(figures)
            if export not in tables:
                raise Http404
            response = HttpResponse(
                portfolio.table_csv(*tables[export]), content_type="text/csv; charset=utf-8"
            )
            name = f"{lender.slug}-{export}-{figures['end'].isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        changelist = reverse("admin:collections_loan_changelist")
        scope = f"&lender__id__exact={lender.pk}" if operator else ""
        query = request.GET.copy()
        query.pop("export", None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Portfolio of %(lender)s") % {"lender": lender.name},
            "lenders": lenders if operator else None,
            "suspension": restriction_suspension_in_force(lender=lender),
            "period": period,
            "loans_url": f"{changelist}?status__exact=active{scope}",
            "export_query": query.urlencode() + ("&" if query else ""),
            **figures,
            "conversions": conversion_by_trigger(lender_id=lender.pk, now=timezone.now()),
        }
        return TemplateResponse(request, "admin/collections/loan/portfolio.html", context)

    def _lender_shown(self, request: HttpRequest) -> Lender:
        """The lender a dashboard page shows: the agent's own; an operator picks one
        (``?lender=<id>``, else the first)."""
        self.require_role(request, self.view_roles)  # a staff user without a lender sees nothing
        lenders = Lender.objects.order_by("name")
        if not is_platform_operator(request.user):
            return lenders.get(pk=user_lender_id(request.user))
        chosen = request.GET.get("lender", "")
        lender = lenders.filter(pk=int(chosen)).first() if chosen.isdigit() else lenders.first()
        if lender is None:
            raise Http404
        return lender

    def sweep_forecast_view(self, request: HttpRequest) -> HttpResponse:
        """What tomorrow's sweep would do (``sweep_forecast``: the sweep's own
        classification, read-only): the stage changes, by shop, and the loans that would
        lock; and what a draft of a policy version's ladder would do instead, before it
        is published (its days changed: ``?version=<id>&days_<position>=<n>``)."""
        lender = self._lender_shown(request)
        tomorrow = lender_local_date(lender=lender) + timedelta(days=1)
        versions = list(restriction_policy_version_list(lender_id=lender.pk))
        chosen = request.GET.get("version", "")
        version = next((v for v in versions if str(v.pk) == chosen), None)
        stages = restriction_stage_list(policy_version_ids=[version.pk]) if version else []
        draft_rows, draft, errors = [], None, []
        for stage in stages:
            typed = request.GET.get(f"days_{stage.position}", "").strip()
            draft_rows.append({"stage": stage, "days": typed or stage.days_overdue})
        if version and any(f"days_{stage.position}" in request.GET for stage in stages):
            try:
                specs = [
                    StageSpec(
                        days_overdue=int(row["days"]) if str(row["days"]).isdigit() else -1,
                        action=row["stage"].action,
                        messages=row["stage"].messages,
                        alarm_times=row["stage"].alarm_times,
                        blocked_packages=row["stage"].blocked_packages,
                        blocked_categories=row["stage"].blocked_categories,
                    )
                    for row in draft_rows
                ]
                draft = (version.pk, restriction_stages_draft(lender=lender, stages=specs))
            except ValidationError as exc:
                errors = [str(m) for messages_ in exc.message_dict.values() for m in messages_]
        forecast = sweep_forecast(lender_id=lender.pk, business_date=tomorrow)
        what_if = (
            sweep_forecast(lender_id=lender.pk, business_date=tomorrow, draft=draft)
            if draft
            else None
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("What tomorrow's sweep would do: %(lender)s") % {"lender": lender.name},
            "lender": lender,
            "lenders": Lender.objects.order_by("name")
            if is_platform_operator(request.user)
            else None,
            "tomorrow": tomorrow,
            "forecast": forecast,
            "versions": versions,
            "version": version,
            "draft_rows": draft_rows,
            "draft_errors": errors,
            "what_if": what_if,
            "changes": self._changes_named(forecast),
            "what_if_changes": self._changes_named(what_if) if what_if else [],
        }
        return TemplateResponse(request, "admin/collections/loan/sweep_forecast.html", context)

    @staticmethod
    def _changes_named(forecast: SweepForecast) -> list[tuple[str, str, str, int]]:
        """A forecast's stage changes as (key, from stage's name, to stage's name, loans)."""
        return [(f"{a}-{b}", Stage(a).label, Stage(b).label, n) for a, b, n in forecast.by_change()]

    def messages_handled_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The customer's messages waiting for an agent, oldest first; the agent who answered
        them says how, and they leave the work queue (those shown, not one come since)."""
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, AGENTS, loan)
        waiting = list(inbound_message_list_waiting(loan_id=loan.pk))
        shown = ",".join(str(message.pk) for message in waiting)
        form = MessagesHandledForm(request.POST or None, initial={"ids": shown})
        if request.method == "POST" and form.is_valid():
            try:
                count = inbound_messages_handle(
                    loan_id=loan.pk,
                    lender_id=loan.lender_id,
                    message_ids=form.cleaned_data["ids"],
                    user=request.user,
                    actor=Actor.agent(request.user, request),
                    note=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    _("%(count)s messages marked answered.") % {"count": count},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Messages to answer: %(loan)s") % {"loan": loan.reference},
            "loan": loan,
            "form": form,
            "opts": self.model._meta,
            "action": "messages",
            "waiting": waiting,
            "submit": _("Mark them answered"),
        }
        return TemplateResponse(request, "admin/collections/loan/action.html", context)

    def evidence_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The loan's evidence file (a ZIP: PDF, the audit events, their verifier); recorded."""
        loan = self._loan_or_404(request, object_id)
        evidence = loan_evidence_export(loan=loan, actor=Actor.agent(request.user, request))
        response = HttpResponse(evidence.content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{evidence.filename}"'
        return response

    def loan_action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        """A promise, a hardship request, a legal hold or a lift, each with its reason."""
        spec = LOAN_ACTIONS.get(action)
        if spec is None:
            raise Http404
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, spec.roles, loan)
        form = spec.form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            values, actor = form.cleaned_data, Actor.agent(request.user, request)
            try:
                outcome = self._act(
                    action, loan=loan, values=values, actor=actor, user=request.user
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                done = _("Done: %(what)s.") % {"what": spec.title}
                self.message_user(request, f"{done} {outcome}".strip(), messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{spec.title}: {loan.reference}",
            "loan": loan,
            "form": form,
            "opts": self.model._meta,
            "action": action,
            # said before the agent types a reason: the service's own refusal
            "refusal": "" if form.is_bound else loan_action_refusals(loan=loan).get(action, ""),
        }
        return TemplateResponse(request, "admin/collections/loan/action.html", context)

    @staticmethod
    def _act(action: str, *, loan: Loan, values: dict[str, Any], actor: Actor, user: Any) -> str:
        """Call the action's service; returns what to add to the agent's confirmation."""
        common = {
            "loan_id": loan.pk,
            "lender_id": loan.lender_id,
            "actor": actor,
            "reason": values["reason"],
        }
        if action == "promise":
            amount = values.get("amount")
            loan_promise_record(
                until=values["until"],
                amount=Money(amount, loan.currency) if amount else None,
                **common,
            )
        elif action == "hardship":
            loan_hardship_request(until=values["until"], **common)
        elif action == "legal-hold":
            loan_legal_hold_set(until=values["until"], user=user, **common)
        elif action == "lock":
            loan_manual_lock_request(user=user, **common)
        elif action == "cancel":
            loan_cancel(**common)
        elif action == "resend":
            status = loan_reminder_resend(**common)
            return str(_("The message is %(status)s.") % {"status": status})
        elif action == "resend-code":
            newest = offline_code_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id).first()
            if newest is None:
                raise OfflineCodeUnknown()
            code = offline_code_resend(
                device_id=newest.device_id,
                lender_id=loan.lender_id,
                actor=actor,
                reason=values["reason"],
            )
            return str(
                _("Code #%(count)s goes to the customer by SMS now.") % {"count": code.count}
            )
        else:
            loan_stage_lift(**common)
        return ""

    def pause_decide_view(
        self, request: HttpRequest, object_id: int, pause_id: int
    ) -> HttpResponse:
        """A supervisor approves or rejects a requested pause."""

        def title(pause: LoanPause) -> str:
            return _("Decide the %(kind)s until %(until)s") % {
                "kind": pause.get_kind_display().lower(),
                "until": pause.ends_on,
            }

        return self._decision_view(
            request, object_id, LoanPause, pause_id, loan_pause_decide, "pause_id", title
        )

    def _decision_view(
        self,
        request: HttpRequest,
        object_id: int,
        model: Any,
        row_id: int,
        decide: Any,
        id_arg: str,
        title: Any,
        *,
        action: str = "",
        shown: Any = None,
    ) -> HttpResponse:
        """A supervisor's approve-or-reject page for a ``model`` row of this loan, deciding
        through the service ``decide`` (which takes the row's id as ``id_arg``). ``action``
        picks the page's explanation; ``shown``, if given, makes the page that follows a
        decision from the service's answer (None: back to the loan)."""
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, SUPERVISORS, loan)
        row = model.objects.filter(pk=row_id, loan=loan).first()
        if row is None:
            raise Http404
        form = DecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = decide(
                    **{id_arg: row.pk},
                    lender_id=loan.lender_id,
                    approve=form.cleaned_data["approve"],
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                    actor=Actor.agent(request.user, request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                page = shown(request, loan, outcome) if shown else None
                if page is not None:
                    return page
                self.message_user(request, _("Decision recorded."), messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "loan": loan,
            "form": form,
            "title": title(row),
            "asked": row,
            "action": action,
        }
        return TemplateResponse(request, "admin/collections/loan/action.html", context)

    def manual_lock_decide_view(
        self, request: HttpRequest, object_id: int, request_id: int
    ) -> HttpResponse:
        """The second person approves or rejects a manual lock."""

        def title(ask: ManualLock) -> str:
            return _("Decide the manual lock asked by %(who)s") % {"who": ask.requested_by}

        return self._decision_view(
            request, object_id, ManualLock, request_id, loan_manual_lock_decide, "request_id", title
        )

    def support_pin_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """An agent types the challenge the customer reads from the lock screen, and a reason:
        the PIN comes back on the page that answers (once: never kept, never in a URL or a
        message), or the request waits for a supervisor when nothing was paid since the
        restriction."""
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, AGENTS, loan)
        form = SupportPinForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = loan_support_pin_request(
                    loan_id=loan.pk,
                    lender_id=loan.lender_id,
                    challenge=form.cleaned_data["challenge"],
                    user=request.user,
                    actor=Actor.agent(request.user, request),
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                if outcome.pin:
                    return self._support_pin_page(request, loan, outcome)
                self.message_user(
                    request,
                    _(
                        "Waiting for a supervisor: no payment was recorded since the phone was "
                        "restricted, so a supervisor other than you approves this PIN on the "
                        "loan's page, within an hour."
                    ),
                    messages.WARNING,
                )
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Support PIN: %(loan)s") % {"loan": loan.reference},
            "loan": loan,
            "form": form,
            "opts": self.model._meta,
            "action": "support-pin",
            "refusal": ""
            if form.is_bound
            else loan_action_refusals(loan=loan).get("support-pin", ""),
            "support_pin_hours": settings.SUPPORT_PIN_HOURS,
            "submit": _("Get the PIN"),
        }
        return TemplateResponse(request, "admin/collections/loan/action.html", context)

    def support_pin_decide_view(
        self, request: HttpRequest, object_id: int, request_id: int
    ) -> HttpResponse:
        """A supervisor, not the requester, approves (and reads the PIN) or rejects."""

        def title(ask: SupportPin) -> str:
            return _("Decide the support PIN asked by %(who)s for the challenge %(challenge)s") % {
                "who": ask.requested_by,
                "challenge": ask.challenge,
            }

        def shown(
            request: HttpRequest, loan: Loan, outcome: SupportPinOutcome
        ) -> HttpResponse | None:
            return self._support_pin_page(request, loan, outcome) if outcome.pin else None

        return self._decision_view(
            request,
            object_id,
            SupportPin,
            request_id,
            loan_support_pin_decide,
            "request_id",
            title,
            action="support-pin-decide",
            shown=shown,
        )

    def _support_pin_page(
        self, request: HttpRequest, loan: Loan, outcome: SupportPinOutcome
    ) -> HttpResponse:
        """The PIN, grouped for reading out, in the answer to the POST that issued it."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("Support PIN: %(loan)s") % {"loan": loan.reference},
            "loan": loan,
            "opts": self.model._meta,
            "pin": f"{outcome.pin[:4]} {outcome.pin[4:]}",
            "challenge": f"{outcome.request.challenge[:3]} {outcome.request.challenge[3:]}",
            "hours": settings.SUPPORT_PIN_HOURS,
        }
        return TemplateResponse(request, "admin/collections/loan/support_pin.html", context)

    def mpesa_prompt_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Send the customer an M-Pesa prompt for what is due now (on the phone with them)."""
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, self.payment_roles, loan)
        form = MpesaPromptForm(request.POST or None, initial={"phone": loan.customer.phone})
        if request.method == "POST" and form.is_valid():
            try:
                attempt = payment_attempt_start(
                    loan_id=loan.pk,
                    lender_id=loan.lender_id,
                    provider=MPESA,
                    actor=Actor.agent(request.user, request),
                    phone=phone_to_e164(
                        phone=form.cleaned_data["phone"], country=loan.lender.country
                    ),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    _(
                        "M-Pesa prompt sent for %(amount)s %(currency)s: the customer enters their PIN."
                    )
                    % {
                        "amount": amount_format(attempt.amount, attempt.currency),
                        "currency": attempt.currency,
                    },
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send an M-Pesa prompt for %(loan)s") % {"loan": loan.reference},
            "loan": loan,
            "form": form,
            "amount": loan_overview(loan=loan).pay_amount,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/collections/loan/mpesa_prompt.html", context)

    def record_payment_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Record a payment received outside the provider: amount, reason, receipt reference."""
        loan = self._loan_or_404(request, object_id)
        self.require_role(request, self.payment_roles, loan)
        form = ManualPaymentForm(
            request.POST or None, initial={"idempotency_key": uuid.uuid4().hex}
        )
        if request.method == "POST" and form.is_valid():
            try:
                outcome = payment_record(
                    loan_id=loan.pk,
                    lender_id=loan.lender_id,
                    amount=Money(form.cleaned_data["amount"], loan.currency),
                    channel=Payment.Channel.MANUAL,
                    provider="manual",
                    provider_ref=form.cleaned_data["idempotency_key"],
                    received_at=timezone.now(),
                    reason=form.cleaned_data["reason"],
                    receipt_ref=form.cleaned_data["receipt_ref"],
                    actor=Actor.agent(request.user, request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                shown = {"amount": money_format(outcome.payment.amount, loan.currency)}
                recorded = (
                    _("Recorded: %(amount)s.")
                    if outcome.created
                    else _("Already recorded: %(amount)s.")
                )
                self.message_user(request, recorded % shown, messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Record a payment for {loan.reference}",
            "loan": loan,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/collections/loan/record_payment.html", context)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    list_display = (
        "received_at",
        "loan",
        "amount",
        "currency",
        "channel",
        "provider",
        "provider_ref",
        "receipt_ref",
    )
    list_filter = ("channel", "provider", "lender")
    list_select_related = ("loan",)
    search_fields = ("provider_ref", "receipt_ref", "loan__reference")
    date_hierarchy = "received_at"


@admin.register(FundsAlert)
class FundsAlertAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The funds alerts the lender's aggregator sent, and what became of each."""

    list_display = ("created_at", "loan", "provider", "outcome", "amount_due", "observed_at")
    list_filter = ("outcome", "provider", "lender")
    list_select_related = ("loan",)
    search_fields = ("loan__reference", "webhook_id", "reference")
    exclude = ("available",)  # the customer's balance is theirs, not the lender's


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Payments started through a provider (an M-Pesa prompt, a checkout, an OXXO voucher):
    where each stands and the payment it became."""

    list_display = (
        "created_at",
        "loan",
        "provider",
        "amount",
        "currency",
        "status",
        "started_by",
        "receipt",
        "detail",
    )
    list_filter = ("provider", "status", "lender")
    list_select_related = ("loan",)
    search_fields = ("loan__reference", "attempt_ref", "receipt", "voucher_number")
    date_hierarchy = "created_at"
    exclude = ("redirect_url",)


@admin.register(SupportPin)
class SupportPinAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Support PINs asked for: by whom, why, who decided. Their challenges, never the PINs;
    asked and decided on the loan's page."""

    list_display = (
        "created_at",
        "loan",
        "status",
        "challenge",
        "payment_since_lock",
        "requested_by",
        "decided_by",
        "issued_at",
    )
    list_filter = ("status", "payment_since_lock", "lender")
    search_fields = ("loan__reference", "challenge")
    date_hierarchy = "created_at"


@admin.register(RestrictionSuspension)
class RestrictionSuspensionAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Suspensions of new restrictions: started and lifted only through their services, by a
    platform operator (a country or any lender) or a lender's admin (their own lender)."""

    list_display = (
        "__str__",
        "reason",
        "lower_to_reminder",
        "started_by",
        "created_at",
        "lifted_at",
        "lifted_by",
    )
    list_filter = ("lifted_at",)
    change_list_template = "admin/collections/restrictionsuspension/change_list.html"
    change_form_template = "admin/collections/restrictionsuspension/change_form.html"
    admins = frozenset({Membership.Role.LENDER_ADMIN})

    def get_urls(self) -> list[Any]:
        suspend = self.admin_site.admin_view(self.suspend_view)
        lift = self.admin_site.admin_view(self.lift_view)
        return [
            path("suspend/", suspend, name="collections_restrictionsuspension_suspend"),
            path("<int:object_id>/lift/", lift, name="collections_restrictionsuspension_lift"),
            *super().get_urls(),
        ]

    def suspend_view(self, request: HttpRequest) -> HttpResponse:
        self.require_role(request, self.admins)
        operator = is_platform_operator(request.user)
        lenders = scope_for_user(Lender.objects.order_by("name"), request.user)
        form = SuspendForm(request.POST or None, lenders=lenders, operator=operator)
        if request.method == "POST" and form.is_valid():
            values = form.cleaned_data
            try:
                suspension = restrictions_suspend(
                    user=request.user,
                    actor=Actor.agent(request.user, request),
                    lender_id=values["lender"].pk if values["lender"] else None,
                    country=values.get("country", ""),
                    reason=values["reason"],
                    lower_to_reminder=values["lower_to_reminder"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _("New restrictions are suspended."), messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:collections_restrictionsuspension_change", args=[suspension.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Suspend new restrictions"),
        }
        return TemplateResponse(
            request, "admin/collections/restrictionsuspension/form.html", context
        )

    def lift_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        suspension = self.get_object(request, str(object_id))
        if suspension is None:
            raise Http404
        self.require_role(request, self.admins, suspension)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                restrictions_resume(
                    suspension_id=suspension.pk,
                    user=request.user,
                    actor=Actor.agent(request.user, request),
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request, _("Restrictions resume with the next sweep."), messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:collections_restrictionsuspension_change", args=[suspension.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Lift: %(what)s") % {"what": suspension},
        }
        return TemplateResponse(
            request, "admin/collections/restrictionsuspension/form.html", context
        )


class HasDifferencesFilter(admin.SimpleListFilter):
    title = _("differences")
    parameter_name = "differs"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("Has differences")), ("no", _("No differences"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationReport]
    ) -> QuerySet[ReconciliationReport]:
        if self.value() == "yes":
            return queryset.filter(difference_count__gt=0)
        if self.value() == "no":
            return queryset.filter(difference_count=0)
        return queryset


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Each day's payments through each provider beside what the provider settled, built
    each night for yesterday (``reconciliation_reports_build``); the lender's admin builds
    yesterday's again from the list. Read-only: a report is replaced by building it again."""

    builders = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = (
        "day",
        "provider",
        "status",
        "our_count",
        "our_total_shown",
        "provider_count",
        "provider_total_shown",
        "difference_count",
        "lender",
    )
    list_filter = ("provider", HasDifferencesFilter, "status", "lender")
    list_select_related = ("lender",)
    date_hierarchy = "day"
    fields = (
        "lender",
        "day",
        "provider",
        "status",
        "failure_code",
        "generated_at",
        "our_count",
        "our_total_shown",
        "provider_count",
        "provider_total_shown",
        "difference_count",
        "differences_table",
    )
    readonly_fields = ("our_total_shown", "provider_total_shown", "differences_table")
    change_list_template = "admin/collections/reconciliationreport/change_list.html"

    @admin.display(description=_("total here"), ordering="our_total")
    def our_total_shown(self, report: ReconciliationReport) -> str:
        return money_format(report.our_total, report.currency)

    @admin.display(description=_("total at the provider"), ordering="provider_total")
    def provider_total_shown(self, report: ReconciliationReport) -> str:
        if report.provider_total is None:
            return "-"
        return money_format(report.provider_total, report.currency)

    @admin.display(description=_("Differences"))
    def differences_table(self, report: ReconciliationReport) -> str:
        if not report.differences:
            return str(_("None: both sides agree."))
        kinds = dict(ReconciliationReport.Kind.choices)

        def amount(entry: dict[str, Any]) -> str:
            if not entry["amount"]:
                return "-"
            shown = money_format(Decimal(entry["amount"]), entry["currency"])
            if entry.get("provider_amount"):
                there = money_format(Decimal(entry["provider_amount"]), entry["provider_currency"])
                return str(
                    _("%(here)s here, %(there)s at the provider") % {"here": shown, "there": there}
                )
            return shown

        zone = ZoneInfo(report.lender.timezone)

        def received(entry: dict[str, Any]) -> str:  # in the lender's time, as the day is
            at = datetime.fromisoformat(entry["received_at"]).astimezone(zone)
            return at.strftime("%Y-%m-%d %H:%M:%S")

        def loan(entry: dict[str, Any]) -> str:
            if entry.get("loan"):
                url = reverse("admin:collections_loan_change", args=[entry["loan"]])
                return format_html('<a href="{}">{}</a>', url, entry["loan_reference"])
            if entry.get("account"):
                return format_html("{} <q>{}</q>", _("none; account typed"), entry["account"])
            return entry.get("loan_reference") or "-"

        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry["reference"],
                    kinds.get(entry["kind"], entry["kind"]),
                    amount(entry),
                    received(entry),
                    loan(entry),
                )
                for entry in report.differences
            ),
        )
        head = format_html_join(
            "",
            "<th>{}</th>",
            ((t,) for t in (_("Reference"), _("Kind"), _("Amount"), _("Received"), _("Loan"))),
        )
        return format_html(
            '<table id="differences"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            rows,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        can_build = is_platform_operator(request.user) or self._role_allows(
            request, self.builders, None
        )
        return super().changelist_view(
            request, {**(extra_context or {}), "can_build_reports": can_build}
        )

    def get_urls(self) -> list[Any]:
        build = self.admin_site.admin_view(self.build_view)
        return [
            path("build/", build, name="collections_reconciliationreport_build"),
            *super().get_urls(),
        ]

    def build_view(self, request: HttpRequest) -> HttpResponse:
        """The lender's admin builds yesterday's reports (each provider in use) now: the
        nightly run's, replaced. An operator builds every lender's."""
        self.require_role(request, self.builders)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        lender_id = None if is_platform_operator(request.user) else user_lender_id(request.user)
        reports = reconciliation_reports_build(
            actor=Actor.agent(request.user, request), lender_id=lender_id
        )
        failed = [r for r in reports if r.status == ReconciliationReport.Status.FAILED]
        if not reports:
            self.message_user(
                request, _("No payment provider in use: nothing to reconcile."), messages.WARNING
            )
        else:
            self.message_user(
                request,
                _("%(built)s reports built, %(failed)s of them failed at the provider.")
                % {"built": len(reports), "failed": len(failed)},
                messages.WARNING if failed else messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:collections_reconciliationreport_changelist"))
