import json
import os
from typing import ClassVar

# A process started by a test or a benchmark (gunicorn, a Celery worker) has its outbox out
# of the caller's reach: with this variable set, each message is also appended to that file,
# one JSON line, where the caller reads the codes it needs (tools/bench/load.py).
SPOOL_VARIABLE = "FAKE_SMS_SPOOL"


class FakeSmsGateway:
    """Records messages instead of sending them; emptied by the sms_outbox fixture."""

    outbox: ClassVar[list[tuple[str, str]]] = []
    down: ClassVar[bool] = False  # the provider unreachable: every send raises

    def send(self, *, to: str, body: str) -> str:
        if self.down:
            raise ConnectionError("SMS provider unreachable")
        self.outbox.append((to, body))
        spool = os.environ.get(SPOOL_VARIABLE)
        if spool:
            line = json.dumps({"to": to, "body": body}) + "\n"
            # one write of one line with O_APPEND: lines of several processes never interleave
            descriptor = os.open(spool, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line.encode())
            finally:
                os.close(descriptor)
        return f"fake-{len(self.outbox)}"
