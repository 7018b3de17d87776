"""Drill 5, its admin part: every custom admin view and action (beyond the lists and forms the
tenancy matrix tries) called by lender A's supervisor on lender B's rows: 0 rows leaked.

The views are found in each scoped admin's own URL patterns, so a view added later is tried
without anyone remembering to add it here."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import URLPattern

from apps.collections.admin import LOAN_ACTIONS
from apps.collections.models import Loan, LoanPause, ManualLock, ReconciliationReport
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from apps.lenders.tenancy import LenderScopedAdmin
from tests.collections.daraja import paybill_for
from tests.drills.conftest import late_loan_with_requests
from tests.lenders.test_admin_tenancy_matrix import CROSS_TENANT_ROWS

pytestmark = [pytest.mark.drill, pytest.mark.django_db]
STANDARD = {"changelist", "add", "history", "delete", "change", "autocomplete"}


def custom_views() -> list[tuple[type, URLPattern]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, LenderScopedAdmin):
            continue
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None) or ""
            if name.startswith(prefix) and name.removeprefix(prefix) not in STANDARD:
                found.append((model, pattern))
    return found


def test_no_custom_admin_view_reaches_another_lenders_rows(
    lender_a, lender_b, make_agent, verified_client, make_member_b_rows, report
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.SUPERVISOR))
    rows_b = make_member_b_rows
    tried, leaked, views = 0, [], set()
    for model, pattern in custom_views():
        params = set(pattern.pattern.converters)
        if "object_id" not in params:
            continue  # lender-wide views: checked below
        target = rows_b.get(model) or CROSS_TENANT_ROWS[model](lender_b)
        fills = [{"object_id": target.pk}]
        if "action" in params:
            fills = [{**f, "action": action} for f in fills for action in LOAN_ACTIONS]
        if "pause_id" in params:
            fills = [{**f, "pause_id": rows_b["pause"].pk} for f in fills]
        if "request_id" in params:
            fills = [{**f, "request_id": rows_b["manual_lock"].pk} for f in fills]
        views.add(pattern.name)
        for kwargs in fills:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/" + _fill(
                str(pattern.pattern), kwargs
            )
            for method in ("get", "post"):
                tried += 1
                answer = getattr(client, method)(
                    url, {"reason": "drill", "until": "2030-01-01", "approve": "yes"}
                )
                if answer.status_code not in (403, 404):
                    leaked.append(f"{method.upper()} {url} -> {answer.status_code}")
    portfolio = client.get(
        "/admin/collections/loan/portfolio/", {"lender": lender_b.pk}
    ).content.decode()
    if "Portfolio of Lender B" in portfolio:
        leaked.append("portfolio of lender B")
    # lender A's admin builds yesterday's reconciliation reports: lender A's, none of B's
    paybill_for(lender_a)
    paybill_for(lender_b)
    admin_a = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    admin_a.post("/admin/collections/reconciliationreport/build/")
    tried += 1
    if ReconciliationReport.objects.filter(lender=lender_b).exists():
        leaked.append("reconciliation report of lender B built")
    assert ReconciliationReport.objects.filter(lender=lender_a).exists()
    report(
        f"tenancy, custom admin views: {tried} requests to {len(views)} views ({', '.join(sorted(views))}) "
        f"by lender A's supervisor on lender B's rows; "
        f"leaks: {len(leaked)} {leaked}"
    )
    assert tried > 20
    assert not leaked
    loan_b = Loan.objects.get(pk=rows_b[Loan].pk)
    assert (loan_b.status, loan_b.stage) == ("active", rows_b[Loan].stage)  # untouched
    assert ManualLock.objects.get(pk=rows_b["manual_lock"].pk).status == "requested"
    assert LoanPause.objects.get(pk=rows_b["pause"].pk).status == "requested"


def _fill(pattern: str, kwargs: dict) -> str:
    for name, value in kwargs.items():
        for converter in ("int", "slug", "str"):
            pattern = pattern.replace(f"<{converter}:{name}>", str(value))
    return pattern


@pytest.fixture
def make_member_b_rows(lender_b):
    """Lender B's late loan with its phone, a hardship request and a manual lock waiting."""
    from apps.collections.services import loan_stage_sweep

    loan, device, lock, pause = late_loan_with_requests(lender_b)
    today = lender_local_date(lender=lender_b)
    loan_stage_sweep(
        lender_id=lender_b.pk, business_date=today - timedelta(days=10), id_from=0, id_to=10**12
    )
    loan.refresh_from_db()
    return {Loan: loan, "pause": pause, "manual_lock": lock, type(device): device}
