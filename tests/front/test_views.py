"""The front door and the error pages, without a browser: status, language, way back."""

import pytest
from django.test import RequestFactory
from django.utils import translation

from apps.front import views

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "back"),
    [
        ("/admin/collections/loan/", "/admin/"),
        ("/pos/sales/1/plan/", "/pos/"),
        ("/my/demo-ke/loans/SC-1/pay/", "/my/demo-ke/"),
        ("/nowhere/", "/"),
    ],
)
def test_a_refusal_says_so_and_leads_back_to_its_part_of_the_site(path, back, rf: RequestFactory):
    request = rf.get(path)
    response = views.permission_denied(request, None)
    assert response.status_code == 403
    assert f'href="{back}" data-testid="way-back"' in response.content.decode()


def test_the_server_error_page_answers_500_in_the_visitors_language(rf: RequestFactory) -> None:
    request = rf.get("/my/demo-ke/")
    with translation.override("es"):
        response = views.server_error(request)
    assert response.status_code == 500
    assert "Algo salió mal de nuestro lado" in response.content.decode()


def test_an_expired_form_offers_to_open_its_page_again(client) -> None:
    client.handler.enforce_csrf_checks = True
    response = client.post("/my/lender-x/login/", {"phone": "0712345678"})
    assert response.status_code == 403
    assert 'href="/my/lender-x/login/" data-testid="retry"' in response.content.decode()


def test_the_root_answers_with_the_front_door(client, lender_a) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert 'value="lender-a"' in response.content.decode()
    assert client.get("/?lender=lender-a").url == "/my/lender-a/login/"
    assert client.get("/?lender=nobody").status_code == 200
