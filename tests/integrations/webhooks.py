"""A lender's webhook receiver for the tests: a loopback HTTP server that records each post
and answers with the statuses it is given (then 200)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tools.fakes.loopback import address, serve_posts


@dataclass
class Post:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    answers: list[int] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    delay: float = 0.0  # seconds each answer takes (posts are answered one at a time)

    def answer(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        time.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else 200
        self.posts.append(
            Post(headers={k.lower(): v for k, v in headers.items()}, body=body, status=status)
        )
        return status, b"", "text/plain"

    def taken(self) -> list[dict[str, Any]]:
        """The payloads answered 2xx, in the order they came."""
        return [p.payload for p in self.posts if 200 <= p.status < 300]


def _receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = serve_posts(receiver.answer)
    receiver.url = address(server) + "/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _receiver()


@pytest.fixture
def receiver_b() -> Iterator[Receiver]:
    yield from _receiver()
