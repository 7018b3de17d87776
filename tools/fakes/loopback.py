"""What the messaging providers' loopback fakes share: a threaded HTTP server on 127.0.0.1
whose POSTs one function answers, and which logs nothing (a request carries a number), the
fields of a form post, and what the fakes do in the demo: report a message later, post a
customer's reply, and the command that plays one."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import requests

# (path with its query, headers, raw body) -> (HTTP status, body, content type)
PostAnswer = Callable[[str, Mapping[str, str], bytes], tuple[int, bytes, str]]


class LoopbackServer(ThreadingHTTPServer):
    """A threaded server on loopback for which a client that hangs up mid-answer (a test
    that ended, a timeout) is not an error to print: the fakes' output is the demo's."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


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

    server = LoopbackServer(("127.0.0.1", port), Handler)
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


def report_later(
    seconds: float, report: Callable[[], str], *, say: Callable[[str], None], ref: str
) -> None:
    """In ``seconds``, on a thread of its own, play the delivery report of message ``ref``
    with ``report`` (which posts it and returns what to say of it), and say it."""

    def run() -> None:
        try:
            said = report()
        except requests.RequestException as error:
            said = f"the report found no server ({type(error).__name__})"
        say(f"{ref}: {said}")

    timer = threading.Timer(seconds, run)
    timer.daemon = True
    timer.start()


def reply_posted(
    post: Callable[[], requests.Response],
    *,
    say: Callable[[str], None],
    sender: str,
    text: str,
    to: str,
) -> dict[str, Any]:
    """A customer's text (from ``sender`` to ``to``) posted to the lender's server by ``post``,
    said, and what came of it for ``reply_main``: ``{"sent", "message"}``."""
    try:
        answer = post()
    except requests.RequestException as error:
        return {"sent": False, "message": f"The server did not answer ({type(error).__name__})."}
    say(f"text from ...{sender[-4:]}: {text}; posted, {answer.status_code}")
    return {
        "sent": answer.ok,
        "message": f"Sent to {to}; the server answered {answer.status_code}.",
    }


def reply_main(
    argv: list[str] | None,
    *,
    prog: str,
    name: str,
    port_variable: str,
    default_port: int,
    example: str,
) -> int:
    """``<prog> reply <number> <text>``: a customer writes to the lender, against the fake of
    provider ``name`` in a running demo (``make run``), at ``--url`` (by default on loopback
    at ``$<port_variable>``, else ``default_port``). The fake posts the text to the
    lender's server as the provider does; this prints what came of it."""
    parser = argparse.ArgumentParser(
        prog=prog, description=f"Play a customer writing to the lender, on the demo's {name} fake."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reply = commands.add_parser("reply", help="a customer writes to the lender")
    reply.add_argument("number", help=f"the customer's number, in international format ({example})")
    reply.add_argument("text", nargs="+", help="what they write (STOP, START, ...)")
    port = os.environ.get(port_variable) or str(default_port)
    reply.add_argument(
        "--url",
        default=f"http://127.0.0.1:{port}",
        help=f"the demo's {name} fake (default: http://127.0.0.1:${port_variable}, {default_port})",
    )
    args = parser.parse_args(argv)
    fields = {"from": args.number, "text": " ".join(args.text)}
    try:
        answer = requests.post(f"{args.url.rstrip('/')}/demo/reply", data=fields, timeout=60)
        outcome = answer.json()
    except (requests.RequestException, ValueError):
        print(f"No {name} fake at {args.url}: is `make run` running?", file=sys.stderr)
        return 2
    print(outcome["message"])
    return 0 if outcome["sent"] else 1
