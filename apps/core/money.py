"""Money: a Decimal plus an ISO 4217 currency, rounded only at named points."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils import formats

MONEY_MAX_DIGITS, MONEY_DECIMAL_PLACES = 18, 3  # storage; each currency quantizes to its own

# ISO 4217 active currency codes (funds and precious-metal codes excluded).
_ISO_4217_TABLE = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
"""
ISO_4217_CODES = frozenset(_ISO_4217_TABLE.split())

# ISO 4217 minor units where they are not 2 (tested in tests/core/test_money.py).
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_MINOR_UNITS_EXCEPTIONS = {
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


class UnknownCurrency(ValueError):
    pass


def minor_units(currency: str) -> int:
    if currency not in ISO_4217_CODES:
        raise UnknownCurrency(currency)
    return _MINOR_UNITS_EXCEPTIONS.get(currency, 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit: the only rounding rule we use."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def amount_format(amount: Decimal, currency: str) -> str:
    """``1,091.66``: an amount in ``currency``'s minor units, grouped as the active language
    groups, without the currency's code (a column or field beside it names the currency)."""
    return formats.number_format(
        quantize(amount, currency),
        decimal_pos=minor_units(currency),
        use_l10n=True,
        force_grouping=True,
    )


def money_format(amount: Decimal, currency: str) -> str:
    """``KES 1,091.66``: the currency's minor units, grouped as the active language groups."""
    return f"{currency} {amount_format(amount, currency)}"


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str  # ISO 4217

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        minor_units(self.currency)  # raises UnknownCurrency
