"""Log filters: what must never reach a log line even when a library logs a request path."""

from __future__ import annotations

import logging
import re

# a provider callback's path carries the lender's secret token where the provider signs
# nothing: /api/payments/v1/daraja/<lender>/<token>/<route>/ and
# /api/messaging/v1/africastalking/<lender>/<token>/<route>/
_PATH_TOKEN = re.compile(r"(/(?:daraja|africastalking)/[^/\s]+/)[^/\s]+")


def path_secrets_redacted(text: str) -> str:
    return _PATH_TOKEN.sub(r"\1[token]", text)


class PathSecretsRedacted(logging.Filter):
    """Blanks the secret token of a callback path in the message and its arguments (Django
    logs the path of every 4xx answer: "Bad Request: /api/...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = path_secrets_redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                path_secrets_redacted(a) if isinstance(a, str) else a for a in record.args
            )
        return True
