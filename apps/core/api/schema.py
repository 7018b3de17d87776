from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers

from apps.core.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, IdempotentPostMixin


class AutoSchema(SpectacularAutoSchema):
    """Names a serializer nested in its view after the view (``DeviceAckApiInput``).

    Every API nests ``InputSerializer`` and ``OutputSerializer`` (STYLE.md section 10);
    the default name, the class name alone, would collide across views.
    """

    def get_override_parameters(self) -> list[Any]:
        """A POST of an ``IdempotentPostMixin`` view documents its ``Idempotency-Key``."""
        parameters = list(super().get_override_parameters())
        if self.method == "POST" and isinstance(self.view, IdempotentPostMixin):
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        return parameters

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.replace(".", "") + inner.removesuffix("Serializer")
        return str(super().get_serializer_name(serializer, direction))


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """The body of every API error, whatever raised it (apps/core/api/exception_handler.py)."""

    code = serializers.CharField(help_text="Stable and snake_case: clients branch on it.")
    message = serializers.CharField(help_text="For people, in the caller's language.")
    extra = serializers.DictField(
        help_text="Details that depend on the code: `fields` for `invalid`, ids, limits."
    )


ERROR_STATUSES = {
    400: "The input is not valid (`invalid`, with `extra.fields`), not parseable, or breaks a rule.",
    401: "Missing or wrong credentials.",
    403: "The caller may not do this.",
    404: "No such thing, or not the caller's.",
    409: "Conflicts with the current state.",
    410: "Gone for good.",
    413: "The body is too large.",
    415: "The body's content type is not accepted.",
    429: "Too many requests; `Retry-After` says when to try again.",
    502: "An outside service this call depends on did not answer; try again.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation documents, each with the house error body.

    Every status an operation can answer belongs in its schema; the schema drill
    (tests/drills/test_schema_fuzz_drill.py) fails on one that is not.
    """
    return {
        status: OpenApiResponse(ErrorSerializer, description=ERROR_STATUSES[status])
        for status in statuses
    }
