import itertools

from stdnum import luhn

_serials = itertools.count(100000)


def valid_imei(prefix: str = "35209900") -> str:
    """A fresh 15-digit IMEI with a correct Luhn check digit."""
    body = f"{prefix}{next(_serials):06d}"
    return body + luhn.calc_check_digit(body)
