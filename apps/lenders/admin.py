from dataclasses import asdict
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from apps.collections.services import loan_financed_minimum
from apps.core.actor import Actor
from apps.core.money import money_format
from apps.lenders.messages import (
    KINDS,
    LANGUAGES,
    PLACEHOLDERS,
    default_text,
    message_book,
    message_preview,
)
from apps.lenders.models import (
    ApiKey,
    Lender,
    LoanProduct,
    Membership,
    MessageTemplate,
    RestrictionPolicy,
    RestrictionPolicyVersion,
    RestrictionStage,
)
from apps.lenders.selectors import message_template_history, message_template_newest
from apps.lenders.services import (
    api_key_create,
    api_key_revoke,
    lender_settings_save,
    loan_product_save,
    message_template_save,
)
from apps.lenders.tenancy import (
    LenderScopedAdmin,
    ReadOnlyAdminMixin,
    is_platform_operator,
    scope_for_user,
    user_can_see,
    user_lender_id,
)


@admin.register(Lender)
class LenderAdmin(LenderScopedAdmin):
    """The lender's own settings, changed by its admin through ``lender_settings_save``; the
    rest of the lender (its name, country, currency) is set when it is created."""

    change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("name", "slug", "country", "currency", "timezone", "locale")
    search_fields = ("name", "slug")
    fields = (
        "name",
        "slug",
        "country",
        "currency",
        "timezone",
        "locale",
        "emergency_grace_hours",
        "message_channels",
    )
    readonly_fields = ("name", "slug", "country", "currency", "timezone", "locale")

    def save_model(self, request: HttpRequest, obj: Lender, form: Any, change: bool) -> None:
        lender_settings_save(lender=obj, actor=Actor.from_request(request))


@admin.register(Membership)
class MembershipAdmin(LenderScopedAdmin):
    list_display = ("user", "lender", "role", "created_at")
    list_filter = ("role", "lender")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user", "lender")


@admin.register(LoanProduct)
class LoanProductAdmin(LenderScopedAdmin):
    """Lender admins define products; every save is validated and audited by the service."""

    add_roles = change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = (
        "name",
        "lender",
        "installments",
        "frequency",
        "interest_method",
        "interest_rate_percent",
        "grace_days",
        "is_active",
    )
    list_filter = ("is_active", "frequency", "interest_method", "lender")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("lender", "name", "is_active")}),
        (
            "Schedule",
            {
                "fields": (
                    "installments",
                    "frequency",
                    "min_down_payment_percent",
                    "smallest_financed",
                )
            },
        ),
        (
            "Price",
            {"fields": ("interest_method", "interest_rate_percent", "origination_fee_percent")},
        ),
        (
            "Late payment",
            {"fields": ("grace_days", "late_fee_type", "late_fee_value", "late_fee_cap")},
        ),
    )

    readonly_fields = ("smallest_financed",)

    @admin.display(description=_("Smallest amount financed"))
    def smallest_financed(self, product: LoanProduct) -> str:
        """Less than this would leave an installment of zero, which the counter refuses."""
        if product.pk is None:
            return "-"
        minimum = loan_financed_minimum(product=product)
        return money_format(minimum.amount, minimum.currency)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "lender": user_lender_id(request.user),
            **super().get_changeform_initial_data(request),
        }

    def save_model(self, request: HttpRequest, obj: LoanProduct, form: Any, change: bool) -> None:
        loan_product_save(product=obj, actor=Actor.from_request(request))


class _ReadOnlyInline(admin.TabularInline):
    """Children of an append-only parent: shown, never added, changed or removed.

    Whether the parent may be seen at all is the parent admin's (scoped)
    decision; the inline only repeats the lender check for the row it shows.
    """

    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return scope_for_user(super().get_queryset(request), request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Django also asks with obj=None when building the inline's queryset.
        if obj is None:
            return is_platform_operator(request.user) or user_lender_id(request.user) is not None
        return user_can_see(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _stages_summary(version: RestrictionPolicyVersion) -> str:
    return "; ".join(str(stage) for stage in version.stages.all())


class RestrictionPolicyVersionInline(_ReadOnlyInline):
    model = RestrictionPolicyVersion
    fields = ("version", "created_at", "stages_summary")
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("stages")

    @admin.display(description=_("stages"))
    def stages_summary(self, obj: RestrictionPolicyVersion) -> str:
        return _stages_summary(obj)


class RestrictionStageInline(_ReadOnlyInline):
    model = RestrictionStage
    fields = (
        "position",
        "days_overdue",
        "action",
        "messages",
        "alarm_times",
        "blocked_packages",
        "blocked_categories",
    )


@admin.register(RestrictionPolicy)
class RestrictionPolicyAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Policies are created and versioned by services, never edited here."""

    list_display = ("name", "lender", "is_active", "created_at")
    list_filter = ("is_active", "lender")
    search_fields = ("name",)
    readonly_fields = ("lender", "name", "is_active", "created_at")
    fields = readonly_fields
    inlines = (RestrictionPolicyVersionInline,)


@admin.register(RestrictionPolicyVersion)
class RestrictionPolicyVersionAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """An immutable version with its stages; loans pin one of these when they are signed."""

    list_display = ("policy", "version", "lender", "created_at", "stages_summary")
    list_filter = ("lender",)
    search_fields = ("policy__name",)
    readonly_fields = ("lender", "policy", "version", "created_at")
    fields = readonly_fields
    inlines = (RestrictionStageInline,)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("policy").prefetch_related("stages")

    @admin.display(description=_("stages"))
    def stages_summary(self, obj: RestrictionPolicyVersion) -> str:
        return _stages_summary(obj)


class MessageTextForm(forms.Form):
    text = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80, "spellcheck": "true"}),
        help_text=_("A placeholder is a name in braces; write {{ and }} for a brace itself."),
    )


@admin.register(MessageTemplate)
class MessageTemplateAdmin(LenderScopedAdmin):
    """The texts the lender sends its customers: each kind and language with the version in
    force and who wrote it, and every version kept. The lender's admin rewrites a text on its
    own page (``edit_view``), with a live preview (``preview_view``); each save is a new
    version through ``message_template_save``. Every role of the lender may read them."""

    change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("kind", "language", "version", "changed_by", "created_at", "lender")
    list_filter = ("kind", "language", "lender")
    search_fields = ("text",)
    fields = ("lender", "kind", "language", "version", "text", "changed_by", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("lender", "changed_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # a version never changes: a text is rewritten on its own page, as a new version
        return obj is None and super().has_change_permission(request)

    def get_urls(self) -> list[URLPattern]:
        edit = self.admin_site.admin_view(self.edit_view)
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [
            path(
                "<int:lender_id>/<slug:kind>/<str:language>/edit/",
                edit,
                name="lenders_messagetemplate_edit",
            ),
            path(
                "<int:lender_id>/<slug:kind>/<str:language>/preview/",
                preview,
                name="lenders_messagetemplate_preview",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """Above the versions: every kind and language of the lender (an operator's: the one
        chosen in the lender filter), the version in force or the shipped text, and a link to
        rewrite it."""
        chosen = (
            request.GET.get("lender__id__exact", "")
            if is_platform_operator(request.user)
            else str(user_lender_id(request.user) or "")
        )
        lender = Lender.objects.filter(pk=int(chosen)).first() if chosen.isdigit() else None
        context = {"texts_lender": lender, **(extra_context or {})}
        if lender is not None:
            context["texts"] = self._texts(request, lender)
        return super().changelist_view(request, context)

    def _texts(self, request: HttpRequest, lender: Lender) -> list[dict[str, Any]]:
        newest = {(t.kind, t.language): t for t in message_template_newest(lender_id=lender.pk)}
        editable = is_platform_operator(request.user) or self._role_allows(
            request, self.change_roles, lender
        )
        names = dict(settings.LANGUAGES)
        return [
            {
                "key": f"{kind}-{language}",
                "kind": MessageTemplate.Kind(kind).label,
                "language": names[language],
                "in_force": newest.get((kind, language)),
                "url": reverse(
                    "admin:lenders_messagetemplate_edit", args=[lender.pk, kind, language]
                )
                if editable
                else "",
            }
            for kind in KINDS
            for language in LANGUAGES
        ]

    def _lender_kind_language(
        self, request: HttpRequest, lender_id: int, kind: str, language: str
    ) -> Lender:
        """The lender, if the user may see it and rewrite its texts; 404 for a lender out of
        their scope (as for one that does not exist), 403 for a role that only reads."""
        lender = scope_for_user(Lender.objects.all(), request.user).filter(pk=lender_id).first()
        if lender is None or kind not in KINDS or language not in LANGUAGES:
            raise Http404
        self.require_role(request, self.change_roles, lender)
        return lender

    def edit_view(self, request: HttpRequest, lender_id: int, kind: str, language: str) -> Any:
        lender = self._lender_kind_language(request, lender_id, kind, language)
        in_force = message_book(lender).text(kind, language)
        form = MessageTextForm(request.POST or None, initial={"text": in_force})
        if request.method == "POST" and form.is_valid():
            try:
                saved = message_template_save(
                    lender_id=lender.pk,
                    kind=kind,
                    language=language,
                    text=form.cleaned_data["text"],
                    user=request.user,  # type: ignore[arg-type]  # a staff user: admin_view
                    actor=Actor.from_request(request),
                )
            except ValidationError as exc:
                form.add_error("text", exc)
            else:
                if saved is None:
                    self.message_user(request, _("Nothing changed."), messages.INFO)
                else:
                    self.message_user(
                        request,
                        _("Version %(version)s is in force.") % {"version": saved.version},
                        messages.SUCCESS,
                    )
                return HttpResponseRedirect(request.path)
        text = form.data.get("text", in_force) if form.is_bound else in_force
        spec = KINDS[kind]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("%(kind)s, %(language)s")
            % {
                "kind": MessageTemplate.Kind(kind).label,
                "language": dict(settings.LANGUAGES)[language],
            },
            "lender": lender,
            "form": form,
            "preview": message_preview(lender=lender, kind=kind, language=language, text=text),
            "preview_url": reverse(
                "admin:lenders_messagetemplate_preview", args=[lender.pk, kind, language]
            ),
            "placeholders": [(name, PLACEHOLDERS[name]) for name in spec.allowed],
            "required": spec.required,
            "shipped": default_text(kind, language),
            "history": message_template_history(lender_id=lender.pk, kind=kind, language=language),
        }
        return TemplateResponse(request, "admin/lenders/messagetemplate/edit.html", context)

    def preview_view(
        self, request: HttpRequest, lender_id: int, kind: str, language: str
    ) -> HttpResponse:
        """The preview of the text posted, as JSON: what it sends with typical values, its
        encoding, characters and segments, with the longest values too, and why it would be
        refused. Computed by the functions every send uses."""
        lender = self._lender_kind_language(request, lender_id, kind, language)
        preview = message_preview(
            lender=lender, kind=kind, language=language, text=request.POST.get("text", "")
        )
        return JsonResponse(
            {
                "text": preview.text,
                "count": asdict(preview.count),
                "longest": asdict(preview.longest) if preview.longest else None,
                "max_segments": preview.max_segments,
                "channel": preview.channel,
                "errors": preview.errors,
            }
        )


class ApiKeyCreateForm(forms.Form):
    lender = forms.ModelChoiceField(queryset=Lender.objects.none(), label=_("Lender"))
    name = forms.CharField(label=_("Name"), max_length=100, help_text=ApiKey.name.field.help_text)
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_at = forms.DateTimeField(
        label=_("Expires at"), required=False, help_text=_("Empty: never. In UTC.")
    )


class ApiKeyRevokeForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea)


@admin.register(ApiKey)
class ApiKeyAdmin(LenderScopedAdmin):
    """The lender's API keys, listed for every role (never the key nor its hash). Its admin
    alone creates one (the key is shown once, on the page that follows) and revokes one with
    a reason; both go through ``apps.lenders.services`` and are audited. Nothing else about
    a key changes."""

    add_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = (
        "name",
        "prefix",
        "lender",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("lender",)
    search_fields = ("name", "prefix")
    fields = (
        "lender",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields

    def get_urls(self) -> list[URLPattern]:
        revoke = self.admin_site.admin_view(self.revoke_view)
        return [
            path("<int:key_id>/revoke/", revoke, name="lenders_apikey_revoke"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **context: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **context}

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        self.require_role(request, self.add_roles)
        form = ApiKeyCreateForm(request.POST or None)
        lenders = scope_for_user(Lender.objects.all(), request.user)
        form.fields["lender"].queryset = lenders  # type: ignore[attr-defined]  # a ModelChoiceField
        if not is_platform_operator(request.user):
            form.fields["lender"].initial = user_lender_id(request.user)
            form.fields["lender"].disabled = True
        if request.method == "POST" and form.is_valid():
            try:
                api_key, key = api_key_create(
                    lender=form.cleaned_data["lender"],
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.cleaned_data["expires_at"],
                    actor=Actor.from_request(request),
                    created_by=request.user,  # type: ignore[arg-type]  # a staff user: admin_view
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                # admin_view marks every page no-store: the key is not kept by a cache
                return TemplateResponse(
                    request,
                    "admin/lenders/apikey/created.html",
                    self._context(request, title=_("API key created"), api_key=api_key, key=key),
                )
        return TemplateResponse(
            request,
            "admin/lenders/apikey/form.html",
            self._context(request, title=_("New API key"), form=form, submit=_("Create")),
        )

    def revoke_view(self, request: HttpRequest, key_id: int) -> HttpResponse:
        api_key = self.get_queryset(request).filter(pk=key_id).first()  # scoped to the user
        if api_key is None:
            raise Http404
        self.require_role(request, self.add_roles, api_key)
        form = ApiKeyRevokeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            api_key_revoke(
                api_key_id=api_key.pk,
                lender_id=api_key.lender_id,
                actor=Actor.from_request(request),
                reason=form.cleaned_data["reason"],
            )
            self.message_user(request, _("The key is revoked."), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:lenders_apikey_changelist"))
        return TemplateResponse(
            request,
            "admin/lenders/apikey/form.html",
            self._context(
                request,
                title=_("Revoke the API key %(key)s") % {"key": api_key},
                form=form,
                submit=_("Revoke for good"),
            ),
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = {**(extra_context or {})}
        if object_id.isdigit():
            extra["revoke_url"] = reverse("admin:lenders_apikey_revoke", args=[int(object_id)])
        return super().change_view(request, object_id, form_url, extra)
