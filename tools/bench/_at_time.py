"""Run a command of the product's (a Celery worker) with its clock moved to a moment.

    python -m tools.bench._at_time 2026-12-07T10:00:00+03:00 celery -A config worker ...

The clock ticks on from there (time-machine, in this process only). bench-notify uses it on
a day when no contact window of its countries is open (a Sunday): the worker then sends as
it would on a weekday morning, contact rules and all.
"""

from __future__ import annotations

import sys
from datetime import datetime

import time_machine


def main() -> None:
    at, command = datetime.fromisoformat(sys.argv[1]), sys.argv[2:]
    if command[:1] != ["celery"]:
        raise SystemExit("usage: python -m tools.bench._at_time <ISO moment> celery ...")
    sys.argv = command
    with time_machine.travel(at, tick=True):
        from celery.__main__ import main as celery

        celery()


if __name__ == "__main__":
    main()
