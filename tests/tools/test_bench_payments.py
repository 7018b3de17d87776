"""make bench-payments' providers, small and with no server: the callbacks the bench posts are
applied by the product exactly once each, the bench's own check says so, and it says so no
longer when one is missing."""

from typing import Any

import pytest
from django.test import Client

from apps.collections.models import Loan, Payment
from tools.bench._providers import PROVIDERS, Provider, verification_costs
from tools.bench._seed import lender_seed, loans_seed

pytestmark = pytest.mark.django_db

CALLBACKS = 6


def provider_for(name: str, settings: Any) -> Provider:
    kind = PROVIDERS[name]
    lender = lender_seed(slug=kind.slug, name="Bench")
    loans_seed(lender=lender, loans=2)
    loans = list(Loan.objects.filter(lender=lender).values_list("pk", "reference"))
    provider = kind(lender=lender, loans=loans, run_id="t1")
    for name, value in provider.server_env().items():  # as the bench gives them to gunicorn
        setattr(settings, name, value.split(",") if name.endswith("_IPS") else value)
    return provider


def post_all(provider: Provider, posts: list[Any], *, again: bool = False) -> None:
    client = Client()
    for post in posts:
        meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in post.headers.items()}
        answer = client.post(post.path, post.body, content_type=post.content_type, **meta)
        if again:  # a delivery seen before: answered, not applied
            assert answer.status_code == 200, answer.content
        else:
            assert provider.answered(answer.status_code, answer.content), answer.content


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_callback_applies_once_when_posted_as_the_bench_posts_it(name, settings) -> None:
    provider = provider_for(name, settings)
    try:
        posts = provider.posts(CALLBACKS)
        post_all(provider, posts)
        post_all(provider, posts[:2], again=True)
        problems, _ = provider.check()
    finally:
        provider.close()
    assert problems == []
    assert Payment.objects.filter(lender=provider.lender).count() == CALLBACKS


@pytest.mark.parametrize("name", ["mpesa", "stripe"])
def test_check_finds_a_problem_when_a_callback_was_not_applied(name, settings) -> None:
    provider = provider_for(name, settings)
    try:
        posts = provider.posts(CALLBACKS)
        post_all(provider, posts[:-1])
        problems, _ = provider.check()
    finally:
        provider.close()
    assert problems


def test_verification_costs_name_each_provider() -> None:
    lines = verification_costs(number=5)
    assert [line.split()[0] for line in lines] == ["generic", "stripe", "mpesa"]
    assert all("µs" in line for line in lines)


def test_receipts_missing_counts_the_payments_whose_receipt_was_not_queued(
    settings, django_capture_on_commit_callbacks
) -> None:
    from apps.notifications.models import Notification
    from tools.bench.payments import receipts_missing

    provider = provider_for("generic", settings)
    try:
        before = Payment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with django_capture_on_commit_callbacks(execute=True):  # the receipts, eagerly
            post_all(provider, provider.posts(CALLBACKS))
    finally:
        provider.close()
    assert receipts_missing(lender=provider.lender, after=before) == 0
    latest = Payment.objects.filter(lender=provider.lender).latest("pk")
    Notification.objects.filter(dedupe_key=f"payment:{latest.pk}").delete()
    assert receipts_missing(lender=provider.lender, after=before) == 1
    assert receipts_missing(lender=provider.lender, after=latest.pk) == 0
