from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):  # type: ignore[misc]  # drf-spectacular ships no stubs
    """Names a serializer nested in its view after the view (``DeviceAckApiInput``).

    Every API nests ``InputSerializer`` and ``OutputSerializer`` (STYLE.md section 10);
    the default name, the class name alone, would collide across views.
    """

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.replace(".", "") + inner.removesuffix("Serializer")
        return str(super().get_serializer_name(serializer, direction))
