"""bench-payments' providers: the callbacks each one sends and the check that each applied.

* ``generic``: the product's own signed webhook (``X-Signature``, HMAC-SHA256 over
  timestamp and body), one payment each, to the lender's loans in turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

AMOUNT = Decimal("150.00")  # KES, the bench lender's currency


@dataclass(frozen=True, slots=True)
class Post:
    """One callback as the provider sends it: path, content type, its own headers, body."""

    path: str
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, port: int) -> bytes:
        """The HTTP/1.1 request, ready for a keep-alive socket to ``port``."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
            + "\r\n"
        )
        return head.encode() + self.body


class Provider:
    """One provider's run against the lender ``lender`` (its loans ``loans``: id and
    reference). ``posts`` builds the callbacks; ``check`` says, after the run, whether every
    one applied exactly once."""

    name = ""
    slug = ""  # the bench lender of this provider
    noun = "callbacks"
    unit = "callback"  # in the figures: callbacks/s, cpu/callback

    def __init__(self, *, lender: Any, loans: list[tuple[int, str]], run_id: str) -> None:
        self.lender, self.loans, self.run_id = lender, loans, run_id

    def server_env(self) -> dict[str, str]:
        """What the server's environment needs for this provider."""
        return {}

    def posts(self, events: int) -> list[Post]:
        raise NotImplementedError

    def answered(self, status: int, payload: bytes) -> bool:
        """The answer of a callback that was applied."""
        return status == 200

    def describe(self, events: int) -> str:
        return f"{events} {self.noun}"

    def check(self) -> tuple[list[str], str]:
        """Problems found (none: each callback applied once) and a line for the report; the
        generic webhook's payments stored say it all."""
        return [], ""

    def close(self) -> None:
        """Stop what the provider started."""


class Generic(Provider):
    name, slug, noun, unit = "generic", "bench-payments", "signed webhooks", "webhook"

    def posts(self, events: int) -> list[Post]:
        from apps.integrations.payments.signing import sign, webhook_secret_for

        secret = webhook_secret_for(lender_slug=self.lender.slug, provider="demo")
        references = [reference for _, reference in self.loans]
        posts = []
        for n in range(events):
            body = json.dumps(
                {
                    "id": f"evt-{self.run_id}-{n}",
                    "type": "payment.succeeded",
                    "data": {
                        "loan": references[n % len(references)],
                        "amount": str(AMOUNT),
                        "currency": "KES",
                        "reference": f"MP-{self.run_id}-{n}",
                    },
                }
            ).encode()
            headers = {"X-Lender": self.lender.slug, "X-Signature": sign(secret=secret, body=body)}
            posts.append(Post("/api/payments/v1/webhooks/demo/", body, headers=headers))
        return posts
