"""``IdempotentPostMixin``: a repeated POST gets the stored answer, the same key with another
body 409, and concurrent repeats run the view once (real PostgreSQL, real threads)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apps.core.api.idempotency import IdempotentPostMixin
from apps.core.errors import NotFound
from apps.core.models import IdempotencyRecord


class Counted(IdempotentPostMixin, APIView):
    """Counts its runs; slow enough that concurrent repeats overlap."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    runs: list[dict] = []
    runs_lock = threading.Lock()

    def idempotency_scope(self, request):
        return "test:" + request.headers.get("X-Tenant", "a")

    def post(self, request):
        if request.data.get("missing"):
            raise NotFound(thing="x")
        if request.data.get("crash"):
            return Response({"code": "server_error"}, status=503)
        with self.runs_lock:
            self.runs.append(dict(request.data))
            number = len(self.runs)
        time.sleep(0.2)
        return Response({"run": number, **request.data}, status=201)


@pytest.fixture(autouse=True)
def _runs():
    Counted.runs = []


def post(body, key: str | None = "k-1", tenant: str = "a"):
    headers = {"HTTP_X_TENANT": tenant}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    request = APIRequestFactory().post("/api/test/things", body, format="json", **headers)
    return Counted.as_view()(request)


@pytest.mark.django_db
def test_repeat_gets_the_first_answer_and_runs_nothing() -> None:
    first = post({"amount": "10.00"})
    again = post({"amount": "10.00"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.data == first.data == {"run": 1, "amount": "10.00"}
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert len(Counted.runs) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_409() -> None:
    post({"amount": "10.00"})
    response = post({"amount": "11.00"})
    assert response.status_code == 409
    assert response.data["code"] == "idempotency_conflict"
    assert len(Counted.runs) == 1
    assert post({"amount": "10.00"}).status_code == 201  # the first still answers


@pytest.mark.django_db
def test_keys_of_two_scopes_never_meet() -> None:
    post({"amount": "10.00"}, tenant="a")
    other = post({"amount": "99.00"}, tenant="b")
    assert other.status_code == 201
    assert other.data["run"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "", "x" * 256, "has space", "é"])
def test_post_without_a_usable_key_is_400(key) -> None:
    response = post({"amount": "10.00"}, key=key)
    assert response.status_code == 400
    assert response.data["code"] == "idempotency_key_missing"
    assert Counted.runs == []


@pytest.mark.django_db
def test_a_refusal_is_stored_and_replayed_but_a_5xx_is_not() -> None:
    assert post({"missing": True}, key="r").status_code == 404
    assert post({"missing": True}, key="r")["Idempotent-Replayed"] == "true"
    assert post({"crash": True}, key="c").status_code == 503
    assert not IdempotencyRecord.objects.filter(key="c").exists()


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_repeats_run_the_view_once() -> None:
    def one(_):
        try:
            response = post({"amount": "10.00"}, key="same")
            return response.status_code, response.data
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(one, range(5)))
    assert len(Counted.runs) == 1
    assert answers == [(201, {"run": 1, "amount": "10.00"})] * 5
    assert IdempotencyRecord.objects.filter(key="same").count() == 1


@pytest.mark.django_db
def test_answers_older_than_a_day_are_purged_and_the_key_runs_again() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.idempotency import idempotency_records_purge

    post({"amount": "10.00"}, key="old")
    post({"amount": "10.00"}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert post({"amount": "10.00"}, key="old").data["run"] == 3
