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
            cursor.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    wait_for(waiting, timeout)


def while_held(
    *,
    hold: Callable[[], object],
    act: Callable[[], object],
    finish: Callable[[], object] = lambda: None,
) -> list[tuple[str, Exception]]:
    """Two threads, for race tests: the first runs ``hold`` in a transaction and keeps it open;
    once the second, running ``act``, waits for a lock, the first runs ``finish`` and commits.
    Returns the errors of both, named "hold" and "act"."""
    import threading

    from django.db import connection, transaction

    held, go, errors, acting = threading.Event(), threading.Event(), [], []

    def holder() -> None:
        try:
            with transaction.atomic():
                hold()
                held.set()
                go.wait(10)
                finish()
        except Exception as exc:
            errors.append(("hold", exc))
            held.set()
        finally:
            connection.close()

    def actor() -> None:
        try:
            acting.append(backend_pid())
            act()
        except Exception as exc:
            errors.append(("act", exc))
        finally:
            connection.close()

    first = threading.Thread(target=holder)
    first.start()
    held.wait(10)
    second = threading.Thread(target=actor)
    second.start()
    wait_for(lambda: acting)
    wait_until_waiting_for_a_lock(acting[0])
    go.set()
    first.join()
    second.join()
    return errors


def run_at_once(*calls: Callable[[], object]) -> list[object]:
    """Run each call in a thread of its own, all released together; what each returned or
    raised (an exception is returned, not raised), in the order they finished."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            outcomes.append(call())
        except Exception as exc:  # kept: the caller asserts on it
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
