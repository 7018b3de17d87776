import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from apps.lenders.models import Membership
from tests.accounts.factories import PASSWORD, TOTPDeviceFactory, UserFactory
from tests.conftest import current_code

pytestmark = pytest.mark.django_db

# Views a user reaches before the second factor, by design.
PRE_VERIFICATION = {"login", "logout", "otp_setup", "otp_verify"}


def every_admin_url() -> list[str]:
    """One concrete URL for every named admin route, custom admin views included."""
    app_label = next(iter(admin.site._registry))._meta.app_label
    values = {"object_id": "1", "app_label": app_label, "content_type_id": "1", "url": "x"}
    urls = []

    def walk(patterns: list, prefix: str = "") -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif (
                isinstance(pattern, URLPattern)
                and pattern.name
                and pattern.name not in PRE_VERIFICATION
            ):
                kwargs = {k: values.get(k, "1") for k in pattern.pattern.converters}
                route = str(pattern.pattern)
                if not pattern.pattern.converters and re.search(r"\(\?P<", route):
                    kwargs = {"app_label": app_label}
                urls.append(reverse(f"admin:{pattern.name}", kwargs=kwargs))

    walk(admin.site.get_urls())
    return sorted(set(urls))


def password_only_client(user) -> Client:
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return client


def test_every_admin_url_requires_the_second_factor(lender_a, make_agent) -> None:
    agent = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    TOTPDeviceFactory(user=agent)
    client = password_only_client(agent)
    urls = every_admin_url()
    assert len(urls) > 20
    login = reverse("admin:login")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(login), url


def test_verified_agent_gets_in(lender_a, make_agent, verified_client) -> None:
    client = verified_client(make_agent(lender_a))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["user"].is_verified()


def test_password_step_leads_to_code_step(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    TOTPDeviceFactory(user=agent)
    client = password_only_client(agent)
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert b'name="otp_token"' in response.content


def test_wrong_code_is_refused_and_audited(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    TOTPDeviceFactory(user=agent)
    client = password_only_client(agent)
    response = client.post(reverse("admin:login"), {"otp_token": "000000"})
    assert response.status_code == 200
    assert b"not valid" in response.content
    assert client.get(reverse("admin:index")).status_code == 302
    event = AuditEvent.objects.get(action="accounts.user.verification_failed")
    assert (event.lender_id, event.target_id) == (lender_a.pk, str(agent.pk))


def test_first_login_sets_up_authenticator_then_shows_backup_codes(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    client = password_only_client(agent)

    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("admin:otp_setup"))
    assert b"<svg" in response.content
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    # reloading shows the same secret, so an app that already scanned it still works
    client.get(reverse("admin:otp_setup"))
    assert TOTPDevice.objects.filter(user=agent).count() == 1

    response = client.post(reverse("admin:otp_setup"), {"otp_token": "123456"})
    assert b"not valid" in response.content
    response = client.post(reverse("admin:otp_setup"), {"otp_token": current_code(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li>([a-z0-9]+)</li>", response.content.decode())
    assert len(codes) == 10
    # the same codes to download as a file, or to print (the page's print button)
    from urllib.parse import unquote

    html = response.content.decode()
    link = re.search(r'id="download-codes" download="([^"]+)" href="([^"]+)"', html)
    assert link.group(1) == f"backup-codes-{agent.username}.txt"
    prefix = "data:text/plain;charset=utf-8,"
    assert link.group(2).startswith(prefix)
    assert [c for c in unquote(link.group(2)[len(prefix) :]).splitlines() if c in codes] == codes
    assert 'id="print-codes" data-print' in html
    assert client.get(reverse("admin:index")).status_code == 200
    assert AuditEvent.objects.filter(
        action="accounts.totp_device.confirmed", target_id=str(agent.pk), lender=lender_a
    ).exists()


def test_setup_is_refused_once_a_device_is_confirmed(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    device = TOTPDeviceFactory(user=agent)
    client = password_only_client(agent)
    response = client.get(reverse("admin:otp_setup"))
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=agent).get() == device


def test_backup_code_works_once(lender_a, make_agent) -> None:
    from django_otp.plugins.otp_static.models import StaticDevice

    agent = make_agent(lender_a)
    TOTPDeviceFactory(user=agent)
    static = StaticDevice.objects.create(user=agent, name="Backup codes")
    StaticToken.objects.create(device=static, token="backup01")

    first = password_only_client(agent)
    first.post(reverse("admin:login"), {"otp_token": "backup01"})
    assert first.get(reverse("admin:index")).status_code == 200

    second = password_only_client(agent)
    second.post(reverse("admin:login"), {"otp_token": "backup01"})
    assert second.get(reverse("admin:index")).status_code == 302


def test_non_staff_cannot_reach_the_code_step() -> None:
    user = UserFactory(is_staff=False)
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 200  # the admin form refuses non-staff
    assert client.get(reverse("admin:otp_setup")).status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_operators_cannot_enrol_themselves(operator) -> None:
    client = password_only_client(operator)
    response = client.get(reverse("admin:otp_setup"))
    assert response.status_code == 403
    assert b"provision_totp" in response.content
    assert not TOTPDevice.objects.filter(user=operator).exists()


def test_a_double_submitted_setup_form_does_not_fail(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    client = password_only_client(agent)
    client.get(reverse("admin:otp_setup"))
    code = current_code(TOTPDevice.objects.get(user=agent))
    assert client.post(reverse("admin:otp_setup"), {"otp_token": code}).status_code == 200
    second = password_only_client(agent)  # the same form, posted again from the other tab
    response = second.post(reverse("admin:otp_setup"), {"otp_token": code})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=agent).count() == 1


def test_drf_views_need_the_second_factor_too(lender_a, make_agent) -> None:
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory, force_authenticate
    from rest_framework.views import APIView

    from apps.lenders.tenancy import LenderObjectPermission

    class Probe(APIView):
        def get(self, request):
            return Response({"ok": True})

    class ScopedProbe(Probe):
        permission_classes = (LenderObjectPermission,)

    agent = make_agent(lender_a)
    agent.is_verified = lambda: False  # what OTPMiddleware says of a password-only session
    for view in (Probe, ScopedProbe):
        request = APIRequestFactory().get("/")
        force_authenticate(request, user=agent)
        response = view.as_view()(request)
        assert response.status_code == 403
        assert response.data["code"] == "permission_denied"
    agent.is_verified = lambda: True
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=agent)
    assert ScopedProbe.as_view()(request).status_code == 200
