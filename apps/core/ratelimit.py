"""Counters in fixed windows of the clock, in the shared cache, for pages outside DRF's
throttles (the customer login).

A window is aligned on the clock (09:00-09:15, 09:15-09:30 for 15 minutes), so the time
until a refused caller may try again is known exactly and can be said. Production shares one
Redis cache across processes (``CACHE_URL``), so a count holds across workers. Keys must not
carry personal data: callers pass a keyed hash.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True, slots=True)
class Count:
    """This hit's number in its window, and the seconds until the window ends."""

    hits: int
    seconds_left: float

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil(self.seconds_left / 60))


def window_count(*, scope: str, key: str, window_seconds: int) -> Count:
    """Count one hit of ``key`` in ``scope`` in the current window (atomic: ``incr``)."""
    now = time.time()
    window = int(now // window_seconds)
    name = f"limit:{scope}:{key}:{window}"
    left = (window + 1) * window_seconds - now
    if cache.add(name, 1, timeout=window_seconds + 60):
        return Count(hits=1, seconds_left=left)
    try:
        return Count(hits=cache.incr(name), seconds_left=left)
    except ValueError:  # evicted between add and incr: count afresh
        cache.add(name, 1, timeout=window_seconds + 60)
        return Count(hits=1, seconds_left=left)


def window_forget(*, scope: str, key: str, window_seconds: int) -> None:
    """Drop the current window's count of ``key`` (a customer who logged in starts afresh)."""
    cache.delete(f"limit:{scope}:{key}:{int(time.time() // window_seconds)}")
