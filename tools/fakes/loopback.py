"""What the messaging providers' loopback fakes share: a threaded HTTP server on 127.0.0.1
whose POSTs one function answers, and which logs nothing (a request carries a number), and
the fields of a form post."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# (path with its query, headers, raw body) -> (HTTP status, body, content type)
PostAnswer = Callable[[str, Mapping[str, str], bytes], tuple[int, bytes, str]]


def serve_posts(answer: PostAnswer, port: int = 0) -> ThreadingHTTPServer:
    """Start a server answering each POST with ``answer`` (one call at a time); stop it
    with ``shutdown()`` and ``server_close()``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the providers' APIs answer
        disable_nagle_algorithm = True  # headers and body leave at once on a kept connection

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                status, data, kind = answer(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            if data:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True  # a kept-alive connection's thread never holds up shutdown
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def address(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def form_fields(body: bytes) -> dict[str, str]:
    """The fields of a form post (the first value of a repeated one)."""
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


class PostServer:
    """A fake answering POSTs with ``answer_post``: ``start`` it (on ``port``, any free one
    by default; returns its address), ``stop`` it."""

    server: ThreadingHTTPServer

    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        raise NotImplementedError

    def start(self, port: int = 0) -> str:
        self.server = serve_posts(self.answer_post, port)
        return address(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
