from apps.audit.models import AuditChain


def audit_chain_lock(*, lender_id: int | None) -> AuditChain:
    """Lock the head of ``lender_id``'s chain (the platform chain for None), creating it once.

    The chain head is the last lock in any transaction that records an event,
    after lender, retailer, loan, installments and device (STYLE.md section 7).
    """
    lookup = {"lender_id": lender_id} if lender_id is not None else {"lender__isnull": True}
    queryset = AuditChain.objects.select_for_update(of=("self",)).filter(**lookup)
    chain = queryset.first()
    if chain is None:
        # INSERT ... ON CONFLICT DO NOTHING: two first writers create one head.
        AuditChain.objects.bulk_create([AuditChain(lender_id=lender_id)], ignore_conflicts=True)
        chain = queryset.get()
    return chain
