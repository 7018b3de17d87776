"""The lender API's events feed (GET /api/lender/v1/events): the webhooks' events, after a
cursor, for the key's lender only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.selectors import public_event_list
from apps.core.actor import Actor
from apps.lenders.models import ApiKey
from apps.lenders.services import api_key_revoke
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import api_key_for, api_key_header

pytestmark = pytest.mark.django_db

EVENTS = "/api/lender/v1/events"


def feed(key: str, url: str = EVENTS, **params):
    return Client().get(url, params, **api_key_header(key))


def walk(key: str, **params) -> list[dict]:
    """Every event of the feed, following ``next`` until a page comes back empty."""
    seen: list[dict] = []
    url, query = EVENTS, dict(params)
    for _ in range(100):
        response = feed(key, url, **query)
        assert response.status_code == 200, response.content
        page = response.json()
        if not page["results"]:
            return seen
        seen.extend(page["results"])
        url, query = page["next"], {}
    raise AssertionError("the feed never ended")


def test_key_without_a_read_scope_is_403(lender_a) -> None:
    others = [s for s in ApiKey.Scope.values if s != "loans:read"]
    _, key = api_key_for(lender_a, scopes=others)
    response = feed(key)
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"
    _, allowed = api_key_for(lender_a, scopes=["loans:read"])
    assert feed(allowed).status_code == 200


def test_revoked_or_expired_key_is_401(lender_a) -> None:
    revoked, revoked_key = api_key_for(lender_a)
    api_key_revoke(api_key_id=revoked.pk, lender_id=lender_a.pk, actor=Actor.system(), reason="x")
    expired, expired_key = api_key_for(lender_a)
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for key in (revoked_key, expired_key):
        assert feed(key).status_code == 401
    assert Client().get(EVENTS).status_code == 401


def test_cursor_walks_every_event_once_in_order(lender_a) -> None:
    enrolled_phone(lender_a)
    for _ in range(4):
        signed_loan(lender_a)
    _, key = api_key_for(lender_a, scopes=["loans:read"])
    expected = [e.payload for e in public_event_list(lender_id=lender_a.pk, limit=1000).events]
    assert len(expected) >= 6  # five signings and an enrollment
    walked = walk(key, limit=2)
    assert walked == expected  # the same bodies the webhooks carry, in chain order
    assert len({e["id"] for e in walked}) == len(walked)
    # a new event after the end of the walk: the last page's `next` finds just it
    last = feed(key, limit=200).json()
    while last["results"]:
        last = feed(key, last["next"]).json()
    loan = signed_loan(lender_a)
    newer = feed(key, last["next"]).json()["results"]
    assert [(e["type"], e["data"]["loan_id"]) for e in newer] == [("loan.signed", loan.pk)]


def test_filter_by_type(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    signed_loan(lender_a)
    _, key = api_key_for(lender_a, scopes=["loans:read"])
    enrolled = walk(key, type="device.enrolled")
    assert [(e["type"], e["data"]["device_id"]) for e in enrolled] == [
        ("device.enrolled", device.pk)
    ]
    both = walk(key, type=["device.enrolled", "loan.signed"])
    assert {e["type"] for e in both} == {"device.enrolled", "loan.signed"}
    assert len(both) == 3
    assert feed(key, type="loan.eaten").status_code == 400


def test_another_lenders_events_never_appear(lender_a, lender_b) -> None:
    signed_loan(lender_a)
    theirs = signed_loan(lender_b)
    _, key_a = api_key_for(lender_a, scopes=["loans:read"])
    _, key_b = api_key_for(lender_b, scopes=["loans:read"])
    seen_by_a = walk(key_a)
    assert seen_by_a
    assert theirs.pk not in {e["data"]["loan_id"] for e in seen_by_a}
    # B's own cursor, replayed by A's key, reads A's chain at that place: never B's events
    b_next = feed(key_b).json()["next"]
    assert theirs.pk not in {e["data"]["loan_id"] for e in feed(key_a, b_next).json()["results"]}


def test_unknown_cursor_is_404(lender_a) -> None:
    _, key = api_key_for(lender_a, scopes=["loans:read"])
    for cursor in ("nonsense!", "ZTpub3Q", "eDox"):
        response = feed(key, cursor=cursor)
        assert response.status_code == 404, (cursor, response.content)


def test_loan_signed_carries_the_lenders_external_id(lender_a) -> None:
    from tests.collections.test_api_lender import loan_body
    from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for

    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(lender=lender_a)
    _, key = api_key_for(lender_a, scopes=["loans:write", "loans:read"])
    headers = {**api_key_header(key), "HTTP_IDEMPOTENCY_KEY": "sale-1"}
    body = loan_body(lender_a, product, external_id="LS-7731")
    created = Client().post(
        "/api/lender/v1/loans", body, content_type="application/json", **headers
    )
    assert created.status_code == 201, created.content
    counter = signed_loan(lender_a)  # sold at the counter: no external id

    signed = {e["data"]["loan_id"]: e["data"] for e in walk(key, type="loan.signed")}
    assert signed[created.json()["id"]]["external_id"] == "LS-7731"
    assert "external_id" not in signed[counter.pk]
