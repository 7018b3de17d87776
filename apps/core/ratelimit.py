"""A fixed-window counter in the cache, for pages outside DRF's throttles (the customer login).

Production shares one Redis cache across processes (``CACHE_URL``), so the
count holds across workers.
"""

from __future__ import annotations

from django.core.cache import cache


def rate_limit_hit(*, scope: str, key: str, limit: int, window_seconds: int) -> bool:
    """Count one hit of ``key`` in ``scope``; True once it is over ``limit`` in the window."""
    name = f"ratelimit:{scope}:{key}"
    if cache.add(name, 1, timeout=window_seconds):
        return False
    try:
        return cache.incr(name) > limit
    except ValueError:  # expired between add and incr: a new window
        cache.add(name, 1, timeout=window_seconds)
        return False
