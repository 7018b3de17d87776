"""Serializer fields shared by the APIs."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class PlainDecimalField(serializers.DecimalField):
    """A non-negative decimal sent as a JSON string of ASCII digits, with an optional point
    and more digits: ``"100"``, ``"100.50"``.

    DRF's DecimalField hands the text to Python's ``Decimal``, which also reads other
    scripts' digits (Arabic-Indic, Devanagari, fullwidth), exponents ("1e9"), underscores
    ("1_000"), surrounding spaces and JSON numbers (floats): a provider's amount that was
    not what it looked like was applied as money.
    tests/collections/test_api_webhook.py.
    """

    default_error_messages = {
        "not_plain": _(
            "Send the amount as a JSON string of ASCII digits with an optional decimal point, "
            'such as "100.50": no exponent, sign, spaces, separators or other digits.'
        )
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str) or not PLAIN_DECIMAL.fullmatch(data):
            self.fail("not_plain")
        return super().to_internal_value(data)


class PlainDecimalFieldSchema(OpenApiSerializerFieldExtension):
    """The schema says what the field takes: DecimalField's own pattern allows a sign,
    nothing before or after the point, and (in Python's reading of ``\\d``) any script's
    digits."""

    target_class = "apps.core.api.fields.PlainDecimalField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        schema: dict[str, Any] = auto_schema._map_serializer_field(
            field, direction, bypass_extensions=True
        )
        schema["pattern"] = (
            rf"^[0-9]{{1,{field.max_whole_digits}}}(\.[0-9]{{1,{field.decimal_places}}})?$"
        )
        return schema
