"""The lender API's credentials: ``Authorization: Api-Key <prefix>.<secret>``.

Every view of ``/api/lender/v1/`` takes ``LenderApiMixin`` (or its three classes):

* ``ApiKeyAuthentication`` finds the key; a missing, wrong, revoked or expired key is a 401.
* ``HasApiKeyScopes`` reads ``required_scopes`` on the view (a set for every method, or a
  mapping from the HTTP method to a set): a key without one of them is a 403 with the
  code ``scope_missing``.
* ``ApiKeyRateThrottle`` counts per key (``LENDER_API_THROTTLE``).
* ``IdempotentPostMixin`` (apps/core/api/idempotency.py): every POST names an
  ``Idempotency-Key``, its answer replayed for a repeat, 409 for the key with another body.

``request.auth`` is the ``ApiKey``; ``lender_id_of(request)`` is the only lender a view
reads or writes for, through the selectors' tenancy scope (``apps.core.tenancy``).
tests/lenders/test_api_auth.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.permissions import BasePermission

from apps.core.actor import Actor, client_ip
from apps.core.api.idempotency import IdempotentPostMixin
from apps.lenders.models import ApiKey
from apps.lenders.services import api_key_authenticate

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass

KEYWORD = "Api-Key"


class ApiKeyPrincipal:
    """``request.user`` for the lender API: the lender's system, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = f"api-key-{api_key.pk}"

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request: Any) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _sep, key = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key or len(key) > 200:
            raise exceptions.AuthenticationFailed(_("Malformed API key."))
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Unknown, revoked or expired API key."))
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class HasApiKeyScopes(BasePermission):
    """The caller holds an API key with every scope the view asks for this method."""

    message = _("This API key lacks a scope this call needs.")
    code = "scope_missing"

    def has_permission(self, request: Any, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            # no key at all: let DRF answer 401 (NotAuthenticated), not 403
            raise exceptions.NotAuthenticated()
        return required_scopes_of(view, request.method).issubset(api_key.scopes)


def required_scopes_of(view: Any, method: str) -> frozenset[str]:
    """The scopes ``view`` asks for ``method``: ``required_scopes`` is a set for every method,
    or a mapping from method to set. A view that names none is refused to every key."""
    required: Iterable[str] | Mapping[str, Iterable[str]] | None = getattr(
        view, "required_scopes", None
    )
    if required is None:
        return frozenset({"-"})  # no key has it: a view must say what it needs
    if isinstance(required, Mapping):
        return frozenset(required.get(method, {"-"}))
    return frozenset(required)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key (rate ``lender_api``); an anonymous caller by trusted address.

    A counter per bucket, from its first call for the rate's duration (``cache.incr``, atomic
    on Redis), rather than DRF's list of every call's time, which each call read, pruned and
    wrote back whole (a minute's calls pickled at every call, and two workers' writes losing
    each other's). ``wait`` is the duration: at most that long."""

    scope = "lender_api"
    num_requests: int  # set by SimpleRateThrottle from the rate
    duration: int

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count = self.cache.incr(self.key)
        except ValueError:  # the bucket's first call, or its duration is over
            if self.cache.add(self.key, 1, self.duration):
                return True
            count = self.cache.incr(self.key)  # another worker opened it meanwhile
        return bool(count <= self.num_requests)

    def wait(self) -> float:
        return float(self.duration)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        api_key = request.auth
        ident = f"key-{api_key.pk}" if isinstance(api_key, ApiKey) else client_ip(request) or ""
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or ""


class LenderApiMixin(IdempotentPostMixin):
    """Credentials, scopes, the per-key throttle and ``Idempotency-Key`` on every POST (the
    keys are the lender's: any of its API keys may repeat a call) of every lender API view."""

    authentication_classes: Sequence[type[authentication.BaseAuthentication]] = (
        ApiKeyAuthentication,
    )
    permission_classes: Sequence[_PermissionClass] = (HasApiKeyScopes,)
    throttle_classes: Sequence[type[throttling.BaseThrottle]] = (ApiKeyRateThrottle,)

    def idempotency_scope(self, request: Any) -> str:
        return f"lender:{lender_id_of(request)}"


def api_key_of(request: Any) -> ApiKey:
    api_key = request.auth
    if not isinstance(api_key, ApiKey):  # the permission refused it before any view code
        raise exceptions.NotAuthenticated()
    return api_key


def lender_id_of(request: Any) -> int:
    """The lender every read and write of this request is scoped to: the key's."""
    return api_key_of(request).lender_id


def actor_of(request: Any) -> Actor:
    """Who the audit records for a call: the lender's system, named by its key."""
    api_key = api_key_of(request)
    return Actor.api_key(api_key.prefix, request)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.lenders.api.auth.ApiKeyAuthentication"
    name = "lenderApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Api-Key <prefix>.<secret>, created by the lender's admin in the "
            "back office and shown once.",
        }
