"""Validation of VAT and similar registrations with python-stdnum: normalise, check format and checksum.

Covers every EU member state's VAT number plus GB, CH and NO. Offline only: an online VIES check is a
separate, pluggable adapter (the tax engine issue), whose answer becomes evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import get_cc_module

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)
# Greece's VAT prefix is EL; stdnum's module is 'gr'. Northern Ireland (XI) uses GB's format.
_VAT_PREFIX_TO_COUNTRY = {"EL": "GR", "XI": "GB"}
_COUNTRY_TO_VAT_PREFIX = {"GR": "EL"}
SUPPORTED_VAT_COUNTRIES = EU_COUNTRIES | {"GB", "CH", "NO"}

_EXAMPLES = {
    "DE": "DE123456788",
    "FR": "FR40303265045",
    "NL": "NL004495445B01",
    "IE": "IE6433435F",
    "GB": "GB980780684",
    "CH": "CHE-116.281.710 MWST",
    "AT": "ATU13585627",
    "BE": "BE0403019261",
    "ES": "ESB58378431",
    "IT": "IT00743110157",
    "NO": "NO974760673MVA",
}


class RegistrationInvalid(ValueError):
    """The number is not a valid registration; the message says what is wrong in words a user acts on."""


@dataclass(frozen=True)
class Registration:
    country: str
    number: str  # compact form with country prefix, e.g. DE123456788
    display: str  # formatted for documents


def _vat_module(country: str):
    module = get_cc_module(country.lower(), "vat")
    if module is None:
        raise RegistrationInvalid(f"VAT numbers of {country} cannot be validated yet.")
    return module


def validate_vat(number: str, country: str | None = None) -> Registration:
    """Normalise and validate a VAT number; ``country`` is the ISO country it must belong to.

    Accepts the number with or without its country prefix, with spaces, dots or dashes.
    """
    raw = (number or "").strip()
    if not raw:
        raise RegistrationInvalid("Enter a VAT number.")
    cleaned = "".join(ch for ch in raw.upper() if ch.isalnum())
    prefix = cleaned[:2]
    prefix_country = _VAT_PREFIX_TO_COUNTRY.get(prefix, prefix) if prefix.isalpha() else None
    if country:
        country = country.upper()
        if prefix_country and prefix_country in SUPPORTED_VAT_COUNTRIES and prefix_country != country:
            raise RegistrationInvalid(
                f"'{raw}' starts with {prefix}, which is not the VAT prefix of the registration country {country}."
            )
    else:
        if not prefix_country or prefix_country not in SUPPORTED_VAT_COUNTRIES:
            raise RegistrationInvalid(f"'{raw}' does not start with a known country prefix such as DE or FR.")
        country = prefix_country
    if country not in SUPPORTED_VAT_COUNTRIES:
        raise RegistrationInvalid(
            f"VAT numbers of {country} are not supported; supported are the EU member states, GB, CH and NO."
        )
    module = _vat_module(country)
    candidate = raw if prefix_country == country else f"{_COUNTRY_TO_VAT_PREFIX.get(country, country)}{raw}"
    example = _EXAMPLES.get(country)
    hint = f" A valid number looks like {example}." if example else ""
    try:
        compact = module.validate(candidate)
    except InvalidChecksum as exc:
        raise RegistrationInvalid(
            f"'{raw}' is not a valid {country} VAT number: its check digit does not match (a typo?)."
        ) from exc
    except InvalidLength as exc:
        raise RegistrationInvalid(f"'{raw}' has the wrong length for a {country} VAT number.{hint}") from exc
    except (InvalidFormat, InvalidComponent) as exc:
        raise RegistrationInvalid(f"'{raw}' is not in the format of a {country} VAT number.{hint}") from exc
    except ValidationError as exc:
        raise RegistrationInvalid(f"'{raw}' is not a valid {country} VAT number.{hint}") from exc
    vat_prefix = _COUNTRY_TO_VAT_PREFIX.get(country, country)
    if not compact.upper().startswith(vat_prefix) and country != "CH":
        compact = f"{vat_prefix}{compact}"
    if country == "CH" and not compact.upper().startswith("CHE"):
        compact = f"CHE{compact}" if not compact.upper().startswith("CH") else compact
    display = module.format(compact) if hasattr(module, "format") else compact
    if not display.replace(" ", "").upper().startswith(vat_prefix):
        display = f"{vat_prefix} {display}"
    return Registration(country=country, number=compact.upper(), display=display)


def validate_iban(value: str) -> str:
    """Return the compact IBAN or raise with what is wrong."""
    raw = (value or "").strip()
    try:
        return stdnum_iban.validate(raw)
    except InvalidChecksum as exc:
        raise RegistrationInvalid(f"'{raw}' is not a valid IBAN: its check digits do not match (a typo?).") from exc
    except InvalidLength as exc:
        raise RegistrationInvalid(f"'{raw}' has the wrong length for an IBAN of its country.") from exc
    except ValidationError as exc:
        raise RegistrationInvalid(f"'{raw}' is not a valid IBAN (expected e.g. DE89 3704 0044 0532 0130 00).") from exc


def validate_bic(value: str) -> str:
    raw = (value or "").strip()
    try:
        return stdnum_bic.validate(raw)
    except ValidationError as exc:
        raise RegistrationInvalid(f"'{raw}' is not a valid BIC: 8 or 11 characters, e.g. COBADEFFXXX.") from exc
