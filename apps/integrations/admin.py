"""The lender's payment and messaging provider accounts in the back office: its admin sets
them up; the secrets are write-only (typed in, never shown back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from apps.audit.public import PUBLIC_TYPES
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.integrations.funds_plaid import plaid_webhook_url
from apps.integrations.messaging.registry import ROUTES, messaging_callback_url
from apps.integrations.messaging.whatsapp import DEFAULT_API_VERSION, whatsapp_webhook_url
from apps.integrations.models import ProviderAccount, WebhookDelivery, WebhookEndpoint
from apps.integrations.payments.base import ProviderError
from apps.integrations.payments.credentials import CredentialsUnreadable
from apps.integrations.payments.mpesa import Route
from apps.integrations.payments.registry import callback_url
from apps.integrations.selectors import provider_account_readable
from apps.integrations.services import (
    PROVIDER_FIELDS,
    mpesa_callbacks_register,
    provider_account_check,
    provider_account_save,
    webhook_deliveries_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
)
from apps.lenders.models import Membership
from apps.lenders.tenancy import LenderScopedAdmin, ReadOnlyAdminMixin, user_lender_id

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# the form's fields per provider, as PROVIDER_FIELDS names them (each declared below)
MPESA, STRIPE = PROVIDER_FIELDS["mpesa"], PROVIDER_FIELDS["stripe"]
WHATSAPP = PROVIDER_FIELDS["whatsapp"]
AFRICASTALKING, TWILIO = PROVIDER_FIELDS["africastalking"], PROVIDER_FIELDS["twilio"]
FUNDS_ALERTS, PLAID = PROVIDER_FIELDS["funds_alerts"], PROVIDER_FIELDS["plaid"]
SETTING_FIELDS = tuple(dict.fromkeys(n for f in PROVIDER_FIELDS.values() for n in f.settings))
WRITE_ONLY = _("Write-only: never shown again. Leave blank to keep the one stored.")
# where each messaging provider is told the addresses it calls (by route)
MESSAGING_CALLBACKS: dict[str, dict[str, StrOrPromise]] = {
    "africastalking": {
        "delivery": _("Delivery reports (dashboard: SMS > SMS Callback URLs)"),
        "inbound": _("Incoming messages"),
        "optout": _("Bulk SMS opt-out"),
    },
    "twilio": {
        "delivery": _("Status callback (sent with each message)"),
        "inbound": _("A message comes in (the number's or the Messaging Service's webhook, POST)"),
    },
}


def _secret(label: StrOrPromise) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=WRITE_ONLY,
    )


class ProviderAccountForm(forms.ModelForm):  # type: ignore[type-arg]  # not subscriptable at run time
    shortcode = forms.CharField(label=_("M-Pesa shortcode (paybill or till)"), required=False)
    environment = forms.ChoiceField(
        label=_("M-Pesa environment"),
        required=False,
        choices=[("", "-"), ("sandbox", _("Sandbox")), ("production", _("Production"))],
        help_text=_("Plaid's environment too, for a Plaid account."),
    )
    consumer_key = _secret(_("M-Pesa consumer key"))
    consumer_secret = _secret(_("M-Pesa consumer secret"))
    passkey = _secret(_("M-Pesa passkey (STK push)"))
    secret_key = _secret(_("Stripe secret key"))
    webhook_secret = _secret(_("Stripe webhook signing secret"))
    phone_number_id = forms.CharField(label=_("WhatsApp phone number ID"), required=False)
    business_account_id = forms.CharField(label=_("WhatsApp Business Account ID"), required=False)
    graph_api_version = forms.CharField(
        label=_("Graph API version"),
        required=False,
        help_text=format_lazy(_("Blank: {version}."), version=DEFAULT_API_VERSION),
    )
    message_template = forms.CharField(
        label=_("WhatsApp message template"),
        required=False,
        help_text=_(
            "An approved template with one body parameter, approved in English (en), Spanish "
            "(es) and Chinese (zh_CN) as your customers need: every message to a customer "
            "goes as this template with its text as the parameter. WhatsApp takes free text "
            "only within 24 hours of the customer's last message; blank sends free text."
        ),
    )
    access_token = _secret(_("WhatsApp access token (system user)"))
    app_secret = _secret(_("Meta app secret (signs the webhooks)"))
    verify_token = _secret(_("Webhook verify token"))
    username = forms.CharField(label=_("Africa's Talking username"), required=False)
    sender_id = forms.CharField(
        label=_("Africa's Talking sender id or shortcode"),
        required=False,
        help_text=_("Optional: without one, texts go out from Africa's Talking's shared sender."),
    )
    api_key = _secret(_("Africa's Talking API key"))
    account_sid = forms.CharField(label=_("Twilio account SID"), required=False)
    from_number = forms.CharField(
        label=_("Twilio sending number"),
        required=False,
        help_text=_("In international format (+15005550006); or give a Messaging Service."),
    )
    messaging_service_sid = forms.CharField(label=_("Twilio Messaging Service SID"), required=False)
    auth_token = _secret(_("Twilio auth token"))
    voice_stages = forms.CharField(
        label=_("Stages with a voice call"),
        required=False,
        help_text=_(
            "Voice reminders (Twilio): the stages of the ladder whose customers get a call, "
            "separated by commas (alarm,block_apps). The account SID, calling number and auth "
            "token are the Twilio fields above."
        ),
    )
    agent_number = forms.CharField(
        label=_("Agents' number for voice calls"),
        required=False,
        help_text=_(
            "Optional: a customer who presses 9 is put through to it; without one, the call "
            "says an agent will call back (the request waits in the work queue either way)."
        ),
    )
    aggregator = forms.CharField(
        label=_("Account-information provider"),
        required=False,
        help_text=_("Its name as customers read it in their consent (Plaid, Belvo, Prometeo)."),
    )
    alerts_secret = _secret(_("Funds alerts signing secret (Standard Webhooks, whsec_…)"))
    client_id = _secret(_("Plaid client_id"))
    secret = _secret(_("Plaid secret (of the environment chosen above)"))

    class Meta:
        model = ProviderAccount
        fields = ("lender", "provider", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SETTING_FIELDS:
            self.fields[name].initial = self.instance.settings.get(name, "")

    def values(self) -> tuple[dict[str, str], dict[str, str]]:
        """The provider's settings and the secrets typed, from the cleaned form."""
        fields = PROVIDER_FIELDS.get(self.cleaned_data.get("provider") or self.instance.provider)
        if fields is None:
            return {}, {}
        data = self.cleaned_data
        return (
            {n: data.get(n) or "" for n in fields.settings},
            {n: data.get(n) or "" for n in fields.secrets},
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        settings, secrets = self.values()
        lender = data.get("lender")
        try:
            provider_account_check(
                provider=data.get("provider") or self.instance.provider,
                enabled=data.get("enabled", False),
                settings=settings,
                secrets=secrets,
                stored=self.instance.secret_names,
                lender_id=lender.pk if lender is not None else self.instance.lender_id,
            )
        except ValidationError as exc:  # by field: shown beside each
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        provider = data.get("provider") or self.instance.provider
        retyped = set(PROVIDER_FIELDS.get(provider, PROVIDER_FIELDS["generic"]).secrets) <= {
            name for name, value in secrets.items() if value
        }
        if self.instance.pk and not retyped and not provider_account_readable(self.instance):
            self.add_error(None, CredentialsUnreadable.default_message)
        return data


@admin.register(ProviderAccount)
class ProviderAccountAdmin(LenderScopedAdmin):
    """Lender admins set up their payment and messaging providers; every save goes through the
    service, which seals the secrets and audits the change (never a secret)."""

    form = ProviderAccountForm
    add_roles = change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("provider", "lender", "enabled", "secrets_set", "updated_at")
    list_filter = ("provider", "enabled")
    fieldsets = (
        (None, {"fields": ("lender", "provider", "enabled", "secrets_set", "callback_addresses")}),
        (_("M-Pesa"), {"fields": (*MPESA.settings, *MPESA.secrets)}),
        (_("Stripe"), {"fields": (*STRIPE.settings, *STRIPE.secrets)}),
        (_("WhatsApp Business"), {"fields": (*WHATSAPP.settings, *WHATSAPP.secrets)}),
        (
            _("SMS: Africa's Talking"),
            {"fields": (*AFRICASTALKING.settings, *AFRICASTALKING.secrets)},
        ),
        (_("SMS: Twilio"), {"fields": (*TWILIO.settings, *TWILIO.secrets)}),
        (_("Voice reminders: Twilio"), {"fields": ("voice_stages", "agent_number")}),
        (_("Funds alerts"), {"fields": (*FUNDS_ALERTS.settings, *FUNDS_ALERTS.secrets)}),
        (_("Funds alerts: Plaid"), {"fields": tuple(PLAID.secrets)}),
    )
    readonly_fields = ("secrets_set", "callback_addresses")
    actions = ("register_mpesa_callbacks",)

    @admin.display(description=_("Secrets set"))
    def secrets_set(self, account: ProviderAccount) -> str:
        return ", ".join(account.secret_names) or "-"

    @admin.display(description=_("Addresses the provider calls"))
    def callback_addresses(self, account: ProviderAccount) -> str:
        """Where the provider sends its callbacks for this lender: what to register with it."""
        if account.pk is None:
            return "-"
        slug, provider = account.lender.slug, account.provider
        rows: list[tuple[StrOrPromise, str]] = []
        if provider == ProviderAccount.Provider.MPESA:
            rows = [
                (label, callback_url(provider=provider, lender_slug=slug, route=route))
                for label, route in (
                    (_("C2B confirmation URL"), Route.C2B_CONFIRMATION),
                    (_("C2B validation URL"), Route.C2B_VALIDATION),
                    (_("STK callback (sent with each push)"), Route.STK),
                )
            ]
        elif provider == ProviderAccount.Provider.STRIPE:
            rows = [(_("Webhook endpoint"), callback_url(provider=provider, lender_slug=slug))]
        elif provider == ProviderAccount.Provider.PLAID:
            rows = [(_("Each Item's webhook (Plaid Link)"), plaid_webhook_url(lender_slug=slug))]
        elif provider == ProviderAccount.Provider.WHATSAPP:
            return format_html(
                "{}: <code>{}</code><br>{}",
                _("Webhook callback URL (subscribe to the messages field)"),
                whatsapp_webhook_url(lender_slug=slug),
                _("Verify token: the one stored here."),
            )
        elif provider in ROUTES:
            labels = MESSAGING_CALLBACKS[provider]
            rows = [
                (
                    labels[route],
                    messaging_callback_url(provider=provider, lender_slug=slug, route=route),
                )
                for route in ROUTES[provider]
            ]
        if not rows:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}: <code>{}</code>", rows)

    @admin.action(description=_("Register the paybill's C2B addresses with M-Pesa"))
    def register_mpesa_callbacks(
        self, request: HttpRequest, queryset: QuerySet[ProviderAccount]
    ) -> None:
        for account in queryset.filter(provider=ProviderAccount.Provider.MPESA).select_related(
            "lender"
        ):
            try:
                mpesa_callbacks_register(
                    lender_id=account.lender_id,
                    lender_slug=account.lender.slug,
                    actor=Actor.from_request(request),
                )
            except (DomainError, ProviderError) as exc:
                detail = getattr(exc, "code", "") or str(exc)
                self.message_user(
                    request,
                    _("M-Pesa refused the addresses of %(lender)s: %(detail)s")
                    % {"lender": account.lender.name, "detail": detail},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("M-Pesa now sends %(lender)s's paybill payments to this product.")
                    % {"lender": account.lender.name},
                    messages.SUCCESS,
                )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = ("lender", "provider") if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "lender": user_lender_id(request.user),
            **super().get_changeform_initial_data(request),
        }

    def save_model(
        self, request: HttpRequest, obj: ProviderAccount, form: Any, change: bool
    ) -> None:
        settings, secrets = form.values()
        saved = provider_account_save(
            lender_id=obj.lender_id,
            provider=obj.provider,
            enabled=obj.enabled,
            settings=settings,
            secrets=secrets,
            actor=Actor.from_request(request),
        )
        obj.pk, obj.sealed_secrets, obj.secret_names = (
            saved.pk,
            saved.sealed_secrets,
            saved.secret_names,
        )


class WebhookEndpointForm(forms.ModelForm):  # type: ignore[type-arg]  # not subscriptable at run time
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("Event types"),
        required=False,
        choices=[(t, t) for t in PUBLIC_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None chosen: every type, including types added later."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("lender", "url", "description", "event_types", "enabled")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(LenderScopedAdmin):
    """A lender's admin adds the addresses its events are posted to. The signing secret is
    shown once, when the endpoint is added or its secret rotated, never again."""

    form = WebhookEndpointForm
    add_roles = change_roles = delete_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("url", "lender", "enabled", "disabled_reason", "types", "failing_since")
    list_filter = ("enabled",)
    readonly_fields = ("disabled_reason", "failing_since", "secret_rotation")
    actions = ("rotate_secret",)

    @admin.display(description=_("Event types"))
    def types(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) or str(_("all"))

    @admin.display(description=_("Previous secret signs until"))
    def secret_rotation(self, endpoint: WebhookEndpoint) -> str:
        return str(endpoint.previous_until or "-")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = ("lender",) if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "lender": user_lender_id(request.user),
            **super().get_changeform_initial_data(request),
        }

    def _show_secret(self, request: HttpRequest, endpoint: WebhookEndpoint, secret: str) -> None:
        self.message_user(
            request,
            format_html(
                "{} <code>{}</code>",
                _("Signing secret of %(url)s, shown this once: keep it with your receiver.")
                % {"url": endpoint.url},
                secret,
            ),
            messages.WARNING,
        )

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        types = form.cleaned_data.get("event_types") or []
        actor = Actor.from_request(request)
        if change:
            webhook_endpoint_update(
                lender_id=obj.lender_id,
                endpoint_id=obj.pk,
                url=obj.url,
                event_types=types,
                description=obj.description,
                enabled=obj.enabled,
                actor=actor,
            )
            return
        created = webhook_endpoint_create(
            lender_id=obj.lender_id,
            url=obj.url,
            event_types=types,
            description=obj.description,
            enabled=obj.enabled,
            actor=actor,
        )
        obj.pk = created.endpoint.pk
        self._show_secret(request, created.endpoint, created.secret)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(
            lender_id=obj.lender_id, endpoint_id=obj.pk, actor=Actor.from_request(request)
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            self.delete_model(request, endpoint)

    @admin.action(
        description=_("Rotate the signing secret (the old one signs too for a day)"),
        permissions=["change"],
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            rotated = webhook_endpoint_secret_rotate(
                lender_id=endpoint.lender_id,
                endpoint_id=endpoint.pk,
                actor=Actor.from_request(request),
            )
            self._show_secret(request, rotated.endpoint, rotated.secret)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The delivery log: each event posted to each endpoint, how it went, and "send again"."""

    list_display = (
        "created_at",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event_type", "endpoint")
    list_select_related = ("endpoint",)
    readonly_fields = (
        "endpoint",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_attempt_at",
        "last_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
        "payload",
    )
    fields = readonly_fields
    actions = ("send_again",)

    @admin.action(description=_("Send again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        self.require_role(request, frozenset({Membership.Role.LENDER_ADMIN}))
        by_lender: dict[int, list[int]] = {}
        for lender_id, pk in queryset.values_list("lender_id", "pk"):
            by_lender.setdefault(lender_id, []).append(pk)
        count = sum(
            webhook_deliveries_resend(
                lender_id=lender_id, delivery_ids=ids, actor=Actor.from_request(request)
            )
            for lender_id, ids in by_lender.items()
        )
        self.message_user(request, _("%(count)d deliveries will be sent again.") % {"count": count})
