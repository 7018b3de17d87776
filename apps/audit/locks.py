from apps.audit.models import AuditChain
from apps.audit.sql import CHAIN_LOCK, PLATFORM_CHAIN_LOCK
from apps.core.sql import select_rows


def audit_chain_lock(*, lender_id: int | None) -> AuditChain:
    """Lock the head of ``lender_id``'s chain (the platform chain for None), creating it once.

    The chain head is the last lock in any transaction that records an event,
    after lender, retailer, loan, installments and device (STYLE.md section 7).
    """
    # SQL written once rather than a queryset compiled on every audited write, loaded
    # without RawQuerySet's per-call mapping; the same row and lock
    # (tests/audit/test_races_chain.py).
    sql, params = (CHAIN_LOCK, [lender_id]) if lender_id is not None else (PLATFORM_CHAIN_LOCK, [])
    found = select_rows(AuditChain, sql, params)
    if not found:
        # INSERT ... ON CONFLICT DO NOTHING: two first writers create one head.
        AuditChain.objects.bulk_create([AuditChain(lender_id=lender_id)], ignore_conflicts=True)
        found = select_rows(AuditChain, sql, params)
    return found[0]
