import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
