"""A loopback stand-in for Google's side of FCM: the OAuth token endpoint and the v1 send API.

firebase-admin runs its real request path against it: it signs a JWT with the
generated service-account key, fetches an access token from ``token_uri``
(this server), and POSTs each message to ``/v1/projects/<id>/messages:send``.
Errors use FCM's documented shape, so firebase-admin raises its own
exceptions (``UnregisteredError``, ``QuotaExceededError``, ``UnavailableError``).

Scripting:

* ``fail_next(status, count)``: the next ``count`` sends answer ``status``
  (429 with ``Retry-After``, 503, ...), whatever the token;
* ``outage(seconds, statuses)``: for the next ``seconds`` every send answers
  one of ``statuses`` in turn (an outage of Google's side, not of one phone);
* ``unregistered``: tokens answered 404 ``UNREGISTERED``;
* ``lose``: tokens whose messages are accepted (200) and never delivered;
* ``subscribe(token, callback)``: called with the data of each delivered
  message, as the phone's FCM client would be.

Run standalone for benchmarks: ``python -m tests.fakes.fcm [--no-record]`` prints
the port and serves until killed (the sender then shares no GIL with it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT_ID = "smartcollection-test"

ERRORS = {
    404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    500: ("INTERNAL", "INTERNAL", "Internal error."),
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid registration token."),
}


def service_account_file(path: Path, *, token_uri: str) -> Path:
    """A service-account JSON with a fresh RSA key, whose token_uri is ours."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": "test-key",
                "private_key": pem,
                "client_email": f"push@{PROJECT_ID}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


class _Server(ThreadingHTTPServer):
    # send_each opens up to 500 connections at once; the default backlog of 5
    # would refuse some, and the relay would (rightly) retry them.
    request_queue_size = 1024


class FakeFcm:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delivered: list[dict[str, Any]] = []  # the messages, as FCM received them
        self.accepted = 0
        self.answers: list[int] = []  # scripted statuses for the next sends
        self.outage_until = 0.0
        self.outage_statuses: itertools.cycle[int] = itertools.cycle([503])
        self.refused: dict[int, int] = {}
        self.unregistered: set[str] = set()
        self.lose: set[str] = set()
        self.token_requests = 0
        self.record = True
        self.listeners: dict[str, Callable[[dict[str, str]], None]] = {}
        self.ids = itertools.count(1)
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def start(self) -> FakeFcm:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.answers.extend([status] * count)

    def outage(self, seconds: float, statuses: tuple[int, ...] = (503, 429)) -> None:
        with self.lock:
            self.outage_until = time.monotonic() + seconds
            self.outage_statuses = itertools.cycle(statuses)

    def subscribe(self, token: str, callback: Callable[[dict[str, str]], None]) -> None:
        with self.lock:
            self.listeners[token] = callback

    def _send(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        message = body.get("message") or {}
        token = message.get("token") or message.get("fid") or ""
        with self.lock:
            if self.answers:
                status = self.answers.pop(0)
            elif time.monotonic() < self.outage_until:
                status = next(self.outage_statuses)
            else:
                status = 200
            if status == 200 and token in self.unregistered:
                status = 404
            if status != 200:
                self.refused[status] = self.refused.get(status, 0) + 1
                reason, code, text = ERRORS.get(status, ERRORS[500])
                return status, {
                    "error": {
                        "code": status,
                        "message": text,
                        "status": reason,
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                "errorCode": code,
                            }
                        ],
                    }
                }
            self.accepted += 1
            name = f"projects/{PROJECT_ID}/messages/{next(self.ids)}"
            listener = None if token in self.lose else self.listeners.get(token)
            if self.record and token not in self.lose:
                self.delivered.append(message)
        if listener is not None:
            threading.Thread(target=listener, args=(message.get("data", {}),), daemon=True).start()
        return 200, {"name": name}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to each answer

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    with fake.lock:
                        fake.token_requests += 1
                    self._answer(
                        200,
                        {
                            "access_token": "fake-access-token",
                            "expires_in": 3600,
                            "token_type": "Bearer",
                        },
                    )
                elif self.path == f"/v1/projects/{PROJECT_ID}/messages:send":
                    if self.headers.get("Authorization") != "Bearer fake-access-token":
                        self._answer(
                            401,
                            {
                                "error": {
                                    "code": 401,
                                    "status": "UNAUTHENTICATED",
                                    "message": "No access token.",
                                }
                            },
                        )
                        return
                    self._answer(*fake._send(json.loads(raw)))
                else:
                    self._answer(
                        404,
                        {
                            "error": {
                                "code": 404,
                                "status": "NOT_FOUND",
                                "message": "No such endpoint.",
                            }
                        },
                    )

            def do_GET(self) -> None:
                with fake.lock:
                    counts = {
                        "accepted": fake.accepted,
                        "refused": fake.refused,
                        "token_requests": fake.token_requests,
                    }
                self._answer(200, counts)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-record", action="store_true", help="count messages, keep none")
    args = parser.parse_args()
    fake = FakeFcm()
    fake.record = not args.no_record
    print(fake.server.server_address[1], flush=True)  # noqa: T201  (the parent reads the port)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
