"""django-axes announces a lockout only through its signal; we audit it."""

from typing import Any

from axes.signals import user_locked_out
from django.dispatch import receiver
from django.http import HttpRequest

from apps.accounts.services import user_lockout_record
from apps.core.actor import Actor, ActorType
from apps.lenders.selectors import lender_id_for_username


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def audit_lockout(sender: Any, request: HttpRequest, username: str | None, **kwargs: Any) -> None:
    # The caller is not authenticated: the system records what it refused, and from where.
    user_lockout_record(
        username=username or "",
        lender_id=lender_id_for_username(username=username or ""),
        actor=Actor.from_request(request, type=ActorType.SYSTEM),
    )
