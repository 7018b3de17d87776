"""The lender API's keys: made and revoked by the lender's admin, stored hashed, shown once,
and the authentication, scope permission and per-key throttle every lender API view uses."""

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from apps.audit.models import AuditEvent
from apps.lenders.api.auth import ApiKeyRateThrottle, LenderApiMixin, lender_id_of
from apps.lenders.models import ApiKey, Membership
from apps.lenders.services import api_key_authenticate
from tests.lenders.factories import ApiKeyFactory, api_key_for, api_key_header

pytestmark = pytest.mark.django_db


class LoansProbe(LenderApiMixin, APIView):
    required_scopes = {"GET": {"loans:read"}, "POST": {"loans:write"}}

    def get(self, request):
        return Response({"lender_id": lender_id_of(request)})

    def post(self, request):
        return Response({"lender_id": lender_id_of(request)}, status=201)


class NamesNoScopes(LenderApiMixin, APIView):
    def get(self, request):
        return Response({})


def call(key: str | None, method: str = "get", view=LoansProbe):
    factory = APIRequestFactory()
    headers = api_key_header(key) if key is not None else {}
    request = getattr(factory, method)("/api/lender/v1/probe", **headers)
    return view.as_view()(request)


def test_only_the_hash_of_the_key_is_stored(lender_a) -> None:
    api_key, key = api_key_for(lender_a, scopes=["loans:read"])
    assert re.fullmatch(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{40}", key)
    assert api_key.prefix == key.split(".")[0]
    assert api_key.hashed_key == "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
    assert key.split(".")[1] not in str(
        AuditEvent.objects.filter(action__contains="api_key")[0].data
    )


def test_key_answers_for_its_lender_and_marks_its_last_use(lender_a) -> None:
    api_key, key = ApiKeyFactory(lender=lender_a, scopes=["loans:read"])
    response = call(key)
    assert response.status_code == 200
    assert response.data == {"lender_id": lender_a.pk}
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    ["", "Api-Key ", "Api-Key nodot", "Api-Key abcdefgh.wrong", "Bearer x.y"],
)
def test_missing_or_wrong_key_is_401(lender_a, header) -> None:
    api_key_for(lender_a)
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=header)
    response = LoansProbe.as_view()(request)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_right_prefix_with_a_wrong_secret_is_401(lender_a) -> None:
    _, key = api_key_for(lender_a)
    assert call(key[:-1] + ("A" if key[-1] != "A" else "B")).status_code == 401


def test_revoked_key_is_401_from_then_on(lender_a, make_agent, verified_client) -> None:
    api_key, key = api_key_for(lender_a)
    assert call(key).status_code == 200
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    url = reverse("admin:lenders_apikey_revoke", args=[api_key.pk])
    assert client.post(url, {"reason": ""}).status_code == 200  # a reason is required
    assert client.post(url, {"reason": "Laptop lost."}).status_code == 302
    response = call(key)
    assert response.status_code == 401
    assert response.data["code"] == "authentication_failed"
    event = AuditEvent.objects.get(action="lenders.api_key.revoked")
    assert event.reason == "Laptop lost."


def test_expired_key_is_401(lender_a) -> None:
    api_key, key = api_key_for(lender_a, expires_at=timezone.now() + timedelta(hours=1))
    assert call(key).status_code == 200
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert call(key).status_code == 401
    assert api_key_authenticate(key=key) is None


def test_key_without_the_scope_of_the_method_is_403(lender_a) -> None:
    _, key = api_key_for(lender_a, scopes=["loans:read"])
    assert call(key, "get").status_code == 200
    response = call(key, "post")
    assert response.status_code == 403
    assert response.data["code"] == "scope_missing"


def test_view_naming_no_scope_refuses_every_key(lender_a) -> None:
    _, key = api_key_for(lender_a)
    assert call(key, view=NamesNoScopes).status_code == 403


def test_throttle_counts_per_key(lender_a, monkeypatch) -> None:
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "lender_api", "3/min")
    _, first = api_key_for(lender_a)
    _, second = api_key_for(lender_a)
    assert [call(first).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert call(second).status_code == 200


def test_lender_admin_creates_a_key_shown_once(lender_a, make_agent, verified_client) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    url = reverse("admin:lenders_apikey_add")
    response = client.post(url, {"name": "Core banking", "scopes": ["loans:read", "devices:read"]})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    api_key = ApiKey.objects.get(lender=lender_a)
    assert api_key.scopes == ["devices:read", "loans:read"]
    assert call(key).status_code == 200
    page = client.get(reverse("admin:lenders_apikey_change", args=[api_key.pk]))
    assert page.status_code == 200
    assert key.split(".")[1] not in page.content.decode()
    assert api_key.hashed_key not in page.content.decode()
    event = AuditEvent.objects.get(action="lenders.api_key.created")
    assert event.lender_id == lender_a.pk


def test_key_of_the_admins_own_lender_whatever_the_form_says(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    client.post(
        reverse("admin:lenders_apikey_add"),
        {"lender": lender_b.pk, "name": "Sneaky", "scopes": ["loans:read"]},
    )
    assert list(ApiKey.objects.values_list("lender_id", flat=True)) == [lender_a.pk]


@pytest.mark.parametrize("role", [Membership.Role.AGENT, Membership.Role.SUPERVISOR])
def test_other_roles_neither_create_nor_revoke(lender_a, make_agent, verified_client, role) -> None:
    api_key, key = api_key_for(lender_a)
    client = verified_client(make_agent(lender_a, role=role))
    add = client.post(reverse("admin:lenders_apikey_add"), {"name": "x", "scopes": ["loans:read"]})
    assert add.status_code == 403
    revoke = reverse("admin:lenders_apikey_revoke", args=[api_key.pk])
    assert client.post(revoke, {"reason": "x"}).status_code == 403
    assert ApiKey.objects.count() == 1
    assert call(key).status_code == 200


def test_admin_of_another_lender_cannot_revoke(lender_a, lender_b, make_agent, verified_client):
    api_key, key = api_key_for(lender_b)
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    revoke = reverse("admin:lenders_apikey_revoke", args=[api_key.pk])
    assert client.post(revoke, {"reason": "x"}).status_code == 404
    assert call(key).status_code == 200


def test_throttle_counts_every_call_of_concurrent_workers(lender_a, monkeypatch) -> None:
    """The per-key count is one counter: calls from several threads at once are each
    counted, so no more than the rate get through."""
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "lender_api", "10/min")
    api_key, _key = api_key_for(lender_a)
    request = SimpleNamespace(auth=api_key)
    throttle = ApiKeyRateThrottle()

    def one(_: int) -> bool:
        return ApiKeyRateThrottle().allow_request(request, None)

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(one, range(30)))
    assert sum(allowed) == 10
    assert not throttle.allow_request(request, None)
    assert 0 < throttle.wait() <= 60
