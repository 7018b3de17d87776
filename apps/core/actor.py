"""Who did something: the actor every service takes and every audit event records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.http import HttpRequest


class ActorType(StrEnum):
    AGENT = "agent"  # a lender's back-office user, or a platform operator
    CLERK = "clerk"
    CUSTOMER = "customer"
    DEVICE = "device"
    SYSTEM = "system"


MAX_USER_AGENT = 400


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or behind ``TRUSTED_PROXY_COUNT`` proxies the
    address the outermost trusted proxy saw (never a value the client could choose)."""
    from django.conf import settings

    proxies: int = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        header: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [a.strip() for a in header.split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    id: str | None = None
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls(type=ActorType.SYSTEM)

    @classmethod
    def agent(cls, user: AbstractBaseUser, request: HttpRequest | None = None) -> Actor:
        return cls._with_request(ActorType.AGENT, str(user.pk), request)

    @classmethod
    def customer(cls, request: HttpRequest, customer_id: int | None = None) -> Actor:
        """A customer on their own pages (before login, the id is not known yet)."""
        return cls._with_request(
            ActorType.CUSTOMER, str(customer_id) if customer_id else None, request
        )

    @classmethod
    def api_key(cls, prefix: str, request: HttpRequest | None = None) -> Actor:
        """A lender's own system calling the lender API with the key ``prefix`` names."""
        return cls._with_request(ActorType.SYSTEM, f"api-key:{prefix}", request)

    @classmethod
    def from_request(cls, request: HttpRequest, type: ActorType = ActorType.AGENT) -> Actor:
        user = getattr(request, "user", None)
        actor_id = str(user.pk) if user is not None and user.is_authenticated else None
        return cls._with_request(type, actor_id, request)

    @classmethod
    def _with_request(
        cls, type: ActorType, actor_id: str | None, request: HttpRequest | None
    ) -> Actor:
        if request is None:
            return cls(type=type, id=actor_id)
        return cls(
            type=type,
            id=actor_id,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT],
        )
