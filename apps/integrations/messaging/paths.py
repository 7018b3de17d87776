"""Where the messaging providers call back, and which callback a URL is.

``/api/messaging/v1/<provider>/<lender>/<route>/``, with the lender's secret token before the
route for a provider that signs nothing (``/africastalking/<lender>/<token>/<route>/``). The
route (``delivery``, ``inbound``, ``optout``) is the last segment, which is how an adapter
tells one callback from another.
"""

from __future__ import annotations

from urllib.parse import urlsplit

PATH_PREFIX = "/api/messaging/v1"


def callback_path(*, provider: str, lender_slug: str, route: str, token: str = "") -> str:
    middle = f"{lender_slug}/{token}" if token else lender_slug
    return f"{PATH_PREFIX}/{provider}/{middle}/{route}/"


def callback_route(url: str) -> str:
    """Which callback ``url`` is: the last segment of its path (a query is not part of it)."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
