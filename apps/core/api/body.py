"""A callback's raw body, read within a limit (a signature covers its bytes, so the view
reads them itself)."""

from __future__ import annotations

from rest_framework.request import Request

from apps.core.errors import DomainError


class PayloadTooLarge(DomainError):
    code, http_status = "payload_too_large", 413
    default_message = "The body is larger than this address takes."


def body_read(request: Request, *, limit: int) -> bytes:
    """The raw body, refused over ``limit`` bytes from the declared length before reading,
    and never more than the limit read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(limit=limit)
    body = request._request.read(limit + 1)  # never more than the limit into memory
    if len(body) > limit:
        raise PayloadTooLarge(limit=limit)
    return body
