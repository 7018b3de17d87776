"""Concurrent edits and creates of a lender's restriction policy: consecutive versions, one
active policy."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.lenders.models import RestrictionPolicy
from apps.lenders.services import default_stages, restriction_policy_version_create
from tests.lenders.ladders import create

pytestmark = pytest.mark.django_db


def race(target: Callable[[], object], writers: int = 2) -> list[BaseException]:
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_get_consecutive_version_numbers_when_racing(lender_a) -> None:
    policy = create(lender_a, default_stages("en")).policy
    errors = race(
        lambda: restriction_policy_version_create(
            policy=policy, stages=default_stages("en"), actor=Actor.system()
        ),
        writers=4,
    )
    assert errors == []
    assert sorted(policy.versions.values_list("version", flat=True)) == [1, 2, 3, 4, 5]


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_leave_exactly_one_active_policy_when_racing(lender_a) -> None:
    errors = race(lambda: create(lender_a, default_stages("en")), writers=3)
    assert errors == []
    assert RestrictionPolicy.objects.filter(lender=lender_a).count() == 3
    assert RestrictionPolicy.objects.filter(lender=lender_a, is_active=True).count() == 1
    assert AuditEvent.objects.filter(action="lenders.restriction_policy.deactivated").count() == 2
