import threading

import pytest
from django.db import connection, transaction

from apps.audit.models import AuditChain, AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_event_record
from apps.core.actor import Actor

WRITERS, EVENTS_EACH = 8, 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_lender_make_one_unbroken_chain(lender_a) -> None:
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(EVENTS_EACH):
                with transaction.atomic():
                    audit_event_record(
                        actor=Actor.system(),
                        action="tests.thing.happened",
                        lender_id=lender_a.pk,
                        data={"writer": n, "i": i},
                    )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    chain = AuditChain.objects.get(lender=lender_a)
    seqs = list(
        AuditEvent.objects.filter(chain=chain).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    assert chain.last_seq == WRITERS * EVENTS_EACH
    assert audit_chain_verify(chain=chain) is None
    # every writer's events all landed, none twice
    pairs = {
        (e["writer"], e["i"])
        for e in AuditEvent.objects.filter(chain=chain).values_list("data", flat=True)
    }
    assert len(pairs) == WRITERS * EVENTS_EACH


@pytest.mark.django_db(transaction=True)
def test_first_events_of_a_new_lender_race_to_one_chain_head(lender_a) -> None:
    """Two writers that both find no chain head create exactly one."""
    barrier = threading.Barrier(2)

    def writer() -> None:
        barrier.wait()
        with transaction.atomic():
            audit_event_record(
                actor=Actor.system(), action="tests.thing.happened", lender_id=lender_a.pk
            )
        connection.close()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditChain.objects.filter(lender=lender_a).count() == 1
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None
    assert AuditEvent.objects.filter(lender=lender_a).count() == 2
