"""Every API endpoint the URLconf routes to, found by walking the resolver: a new one is
covered by the tests that use this without being listed anywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

# A value for each path converter, valid for the routes that take one (the demo provider).
SAMPLES = {"slug": "demo", "str": "x", "int": "1", "path": "x", "uuid": "0" * 32}


def api_endpoints() -> Iterator[tuple[str, type[APIView]]]:
    """(a URL that reaches it, its view class) for each DRF view in the URLconf."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, type[APIView]]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None)
                if isinstance(view, type) and issubclass(view, APIView):
                    route = re.sub(
                        r"<(?:(\w+):)?\w+>",
                        lambda m: SAMPLES[m.group(1) or "str"],
                        str(pattern.pattern),
                    )
                    yield "/" + prefix + route, view

    return walk(get_resolver().url_patterns, "")
