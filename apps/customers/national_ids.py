"""National identity numbers, validated with python-stdnum where the country has a validator.

One table, country -> the stdnum module of that country's personal id. A
country without a module (Kenya's national id has no check digit, for
example) accepts the number as typed, without spaces.
"""

from __future__ import annotations

from importlib import import_module

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


def national_id_normalise(*, value: str, country: str) -> str:
    """The number in its compact form, or NationalIdInvalid naming the country's id."""
    compact = "".join(value.split()).upper()
    if not compact:
        raise NationalIdInvalid()
    module_name = PERSONAL_ID_VALIDATORS.get(country)
    if module_name is None:
        return compact
    module = import_module(module_name)
    try:
        return str(module.validate(compact))
    except StdnumValidationError as exc:
        raise NationalIdInvalid(id_name=getattr(module, "__doc__", "").split("\n")[0]) from exc
