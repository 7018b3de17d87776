"""National identity numbers, validated with python-stdnum where the country has a validator.

One table, country -> the stdnum module of that country's personal id. A
country without a module but with a known shape has a pattern instead (Kenya's
national id card number has no check digit: 7 or 8 digits, the older cards
7). Any other country accepts the number as typed, without spaces.
"""

from __future__ import annotations

import re
from importlib import import_module

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from stdnum.exceptions import ValidationError as StdnumValidationError

from apps.customers.errors import NationalIdInvalid

PERSONAL_ID_VALIDATORS = {
    "AR": "stdnum.ar.dni",
    "BR": "stdnum.br.cpf",
    "CL": "stdnum.cl.rut",
    "EC": "stdnum.ec.ci",
    "ES": "stdnum.es.dni",
    "ID": "stdnum.id.nik",
    "IN": "stdnum.in_.aadhaar",
    "MX": "stdnum.mx.curp",
    "PE": "stdnum.pe.cui",
    "ZA": "stdnum.za.idnr",
}

# Countries without a stdnum validator whose id has a known shape: the pattern the compact
# number must match in full, and the rule as the clerk reads it under the field.
NATIONAL_ID_PATTERNS: dict[str, tuple[re.Pattern[str], Promise]] = {
    "KE": (re.compile(r"[0-9]{7,8}"), _("A Kenyan national id number is 7 or 8 digits.")),
}


def national_id_normalise(*, value: str, country: str) -> str:
    """The number in its compact form, or NationalIdInvalid naming the country's id."""
    compact = "".join(value.split()).upper()
    if not compact:
        raise NationalIdInvalid()
    module_name = PERSONAL_ID_VALIDATORS.get(country)
    if module_name is None:
        pattern, rule = NATIONAL_ID_PATTERNS.get(country, (None, None))
        if pattern is not None and not pattern.fullmatch(compact):
            raise NationalIdInvalid(rule)
        return compact
    module = import_module(module_name)
    try:
        return str(module.validate(compact))
    except StdnumValidationError as exc:
        raise NationalIdInvalid(id_name=getattr(module, "__doc__", "").split("\n")[0]) from exc
