"""Money: Decimal only, rounded in this one place.

Every amount in Throughline is a ``Decimal`` in a named currency. Rounding to the currency's minor unit
(ISO 4217: JPY 0 digits, EUR 2, BHD 3) uses ROUND_HALF_UP, the commercial rounding EN 16931 expects.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision

# Currencies offered in forms. Minor units come from Babel's copy of ISO 4217 / CLDR, not from this list.
CURRENCY_CHOICES = [
    ("EUR", "EUR — Euro"),
    ("GBP", "GBP — Pound sterling"),
    ("USD", "USD — US dollar"),
    ("CHF", "CHF — Swiss franc"),
    ("NOK", "NOK — Norwegian krone"),
    ("SEK", "SEK — Swedish krona"),
    ("DKK", "DKK — Danish krone"),
    ("PLN", "PLN — Polish złoty"),
    ("CZK", "CZK — Czech koruna"),
    ("JPY", "JPY — Japanese yen"),
]
CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)

# CLDR gives "cash" digits for some currencies; ISO 4217 minor units are what invoices use.
_ISO_MINOR_UNITS_OVERRIDE = {"CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "CZK": 2, "HUF": 2}


class MoneyError(ValueError):
    pass


def minor_units(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (ISO 4217)."""
    code = (currency or "").upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"'{currency}' is not an ISO 4217 currency code.")
    if code in _ISO_MINOR_UNITS_OVERRIDE:
        return _ISO_MINOR_UNITS_OVERRIDE[code]
    return get_currency_precision(code)


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Accept Decimal, int or a decimal string; refuse floats, which cannot hold cents exactly."""
    if isinstance(value, float):
        raise MoneyError("Money must not be a float; pass a Decimal or a string.")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"'{value}' is not a number.") from exc


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round ``amount`` to ``currency``'s minor unit, half away from zero (ROUND_HALF_UP)."""
    value = to_decimal(amount)
    if not value.is_finite():
        raise MoneyError(f"'{amount}' is not a finite amount.")
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | int | str, currency: str, locale: str = "en") -> str:
    """Locale formatting (``1.234,50 €`` in de, ``€1,234.50`` in en) of the rounded amount."""
    value = quantize(amount, currency)
    return format_currency(value, currency.upper(), locale=locale)
