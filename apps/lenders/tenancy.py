"""Lender scoping for back-office users: the one mechanism.

* ``user_lender_id`` answers "which lender does this user work for" (None for a
  platform operator or a user with no membership).
* ``scope_for_user`` filters any lender-owned queryset for a user; platform
  operators (superusers) see everything, a staff user with no lender nothing.
* ``LenderScopedAdmin`` applies it to every admin surface: changelist, change,
  delete and history views, search, autocomplete, foreign-key choices, list
  filters and bulk actions. Every lender-owned admin inherits it.
* ``PlatformAdmin`` is for platform-level models: superusers only.
* ``LenderObjectPermission`` is the DRF side: a per-object check for APIs.

tests/lenders/test_admin_tenancy_matrix.py enumerates every registered admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest
from rest_framework.permissions import BasePermission

from apps.accounts.permissions import user_is_verified
from apps.core.admin_money import MoneyAdminMixin
from apps.core.tenancy import belongs_to_lender, is_lender_owned, scope_to_lender
from apps.lenders.models import Membership
from apps.lenders.selectors import membership_get_for_user

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

M = TypeVar("M", bound=models.Model)

ALL_ROLES = frozenset(Membership.Role)
_CACHE_ATTR = "_lender_membership"


def user_membership(user: Any) -> Membership | None:
    """The user's membership, fetched once per request-bound user object."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, _CACHE_ATTR):
        setattr(user, _CACHE_ATTR, membership_get_for_user(user_id=user.pk))
    return getattr(user, _CACHE_ATTR)


def user_lender_id(user: Any) -> int | None:
    membership = user_membership(user)
    return membership.lender_id if membership is not None else None


def is_platform_operator(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.is_superuser)


def scope_for_user(queryset: models.QuerySet[M], user: Any) -> models.QuerySet[M]:
    if is_platform_operator(user):
        return queryset
    return scope_to_lender(queryset, user_lender_id(user))


def user_can_see(user: Any, obj: models.Model) -> bool:
    if is_platform_operator(user):
        return True
    lender_id = user_lender_id(user)
    return lender_id is not None and belongs_to_lender(obj, lender_id)


class _NotFoundOnMissingObject:
    """A row outside the user's scope answers 404, exactly like a row that does not exist.

    Django's admin would redirect to the index with a message naming the id;
    a 404 tells an agent nothing about other lenders' rows.
    """

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        raise Http404


class LenderScopedAdmin(MoneyAdminMixin, _NotFoundOnMissingObject, admin.ModelAdmin):
    """Base admin for every lender-owned model.

    Permissions come from the agent's role at their lender. By default every
    role may view and nobody may add, change or delete: the back office is
    read-mostly, and corrections go through admin actions that call services.
    """

    view_roles: ClassVar[frozenset[str]] = ALL_ROLES
    add_roles: ClassVar[frozenset[str]] = frozenset()
    change_roles: ClassVar[frozenset[str]] = frozenset()
    delete_roles: ClassVar[frozenset[str]] = frozenset()

    # --- rows ---------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        return scope_for_user(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "queryset" not in kwargs and is_lender_owned(db_field.related_model):
            kwargs["queryset"] = scope_for_user(
                db_field.related_model._default_manager.all(), request.user
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "queryset" not in kwargs and is_lender_owned(db_field.related_model):
            kwargs["queryset"] = scope_for_user(
                db_field.related_model._default_manager.all(), request.user
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A plain related-field filter lists every row of the related table;
        # RelatedOnlyFieldListFilter lists only rows the scoped changelist uses.
        return [
            (entry, admin.RelatedOnlyFieldListFilter)
            if isinstance(entry, str) and self._is_relation(entry)
            else entry
            for entry in super().get_list_filter(request)
        ]

    def _is_relation(self, path: str) -> bool:
        model: Any = self.model
        field = None
        for part in path.split("__"):
            field = model._meta.get_field(part)
            model = getattr(field, "related_model", None)
            if model is None:
                return False
        return field is not None and field.is_relation

    # --- permissions --------------------------------------------------------
    def _role_allows(self, request: HttpRequest, roles: frozenset[str], obj: Any) -> bool:
        membership = user_membership(request.user)
        if membership is None or not request.user.is_active or not request.user.is_staff:
            return False
        if membership.role not in roles:
            return False
        return obj is None or user_can_see(request.user, obj)

    def require_role(self, request: HttpRequest, roles: frozenset[str], obj: Any = None) -> None:
        """For custom admin views: PermissionDenied unless an operator or a member in ``roles``."""
        if not is_platform_operator(request.user) and not self._role_allows(request, roles, obj):
            raise PermissionDenied

    def has_module_permission(self, request: HttpRequest) -> bool:
        if is_platform_operator(request.user):
            return True
        return self._role_allows(request, self.view_roles, None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_platform_operator(request.user):
            return super().has_view_permission(request, obj)
        return self._role_allows(request, self.view_roles | self.change_roles, obj)

    # Operators write only where some role may: an admin without add, change or
    # delete roles has no write path through a service, so nobody writes there.
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if is_platform_operator(request.user):
            return bool(self.add_roles) and super().has_add_permission(request, *args)
        return self._role_allows(request, self.add_roles, None)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_platform_operator(request.user):
            return bool(self.change_roles) and super().has_change_permission(request, obj)
        return self._role_allows(request, self.change_roles, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if is_platform_operator(request.user):
            return bool(self.delete_roles) and super().has_delete_permission(request, obj)
        return self._role_allows(request, self.delete_roles, obj)


class ReadOnlyAdminMixin:
    """Money, ledger and audit models: nobody adds, changes or deletes, operators included."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ScopedReadOnlyInline(MoneyAdminMixin, admin.TabularInline):
    """A read-only inline inside a lender-scoped admin.

    Its rows hang off a parent the user could already open, so seeing them
    follows from seeing the parent; nobody adds, changes or deletes here.
    """

    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform_operator(request.user) or user_membership(request.user) is not None

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformAdminMixin(_NotFoundOnMissingObject):
    """Platform-level models (users, OTP devices, lockouts, schedules): operators only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_platform_operator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform_operator(request.user) and super().has_view_permission(request, obj)  # type: ignore[misc]  # a mixin: the admin it joins has it

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_platform_operator(request.user) and super().has_add_permission(request, *args)  # type: ignore[misc]  # a mixin: the admin it joins has it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform_operator(request.user) and super().has_change_permission(request, obj)  # type: ignore[misc]  # a mixin: the admin it joins has it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform_operator(request.user) and super().has_delete_permission(request, obj)  # type: ignore[misc]  # a mixin: the admin it joins has it


class PlatformAdmin(PlatformAdminMixin, admin.ModelAdmin):
    pass


class LenderObjectPermission(BasePermission):
    """DRF: the caller is a back-office user, and each object belongs to their lender."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not user_is_verified(user):
            return False
        return is_platform_operator(user) or user_lender_id(user) is not None

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return user_can_see(request.user, obj)
