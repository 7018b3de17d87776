import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def backend_pid() -> int:
    """This thread's PostgreSQL backend."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until_waiting_for_a_lock(pid: int, timeout: float = 20.0) -> None:
    """Poll until backend ``pid`` waits for a lock (a row lock another transaction holds)."""
    from django.db import connection

    def waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                           [pid])  # fmt: skip
            row = cursor.fetchone()
        return bool(row and row[0])

    wait_for(waiting, timeout)
