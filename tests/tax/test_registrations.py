"""VAT number validation for every EU member state plus GB, CH and NO (python-stdnum: normalise, checksum)."""

from __future__ import annotations

import pytest

from tax.registrations import SUPPORTED_VAT_COUNTRIES, RegistrationInvalid, validate_vat

# One valid number per country as people type them (spaces, dashes, lower case), and its normalised form.
# The numbers are the published examples of python-stdnum's own documentation.
VALID = {
    "AT": ("AT U13585627", "ATU13585627"),
    "BE": ("BE403019261", "BE0403019261"),
    "BG": ("BG 175 074 752", "BG175074752"),
    "CH": ("CHE-107.787.577 IVA", "CHE107787577IVA"),
    "CY": ("CY-10259033P", "CY10259033P"),
    "CZ": ("CZ 25123891", "CZ25123891"),
    "DE": ("DE 136,695 976", "DE136695976"),
    "DK": ("DK 13585628", "DK13585628"),
    "EE": ("EE 100 931 558", "EE100931558"),
    "ES": ("ES B-58378431", "ESB58378431"),
    "FI": ("FI 20774740", "FI20774740"),
    "FR": ("Fr 40 303 265 045", "FR40303265045"),
    "GB": ("GB 980 7806 84", "GB980780684"),
    "GR": ("EL 094259216 ", "EL094259216"),
    "HR": ("HR 33392005961", "HR33392005961"),
    "HU": ("HU-12892312", "HU12892312"),
    "IE": ("IE 6433435F", "IE6433435F"),
    "IT": ("IT 00743110157", "IT00743110157"),
    "LT": ("LT 119511515", "LT119511515"),
    "LU": ("LU 150 274 42", "LU15027442"),
    "LV": ("LV 4000 3521 600", "LV40003521600"),
    "MT": ("MT 1167-9112", "MT11679112"),
    "NL": ("004495445B01", "NL004495445B01"),
    "NO": ("NO 995 525 828 MVA", "NO995525828MVA"),
    "PL": ("PL 8567346215", "PL8567346215"),
    "PT": ("PT 501 964 843", "PT501964843"),
    "RO": ("RO 18 547 290", "RO18547290"),
    "SE": ("SE 123456789701", "SE123456789701"),
    "SI": ("SI 5022 3054", "SI50223054"),
    "SK": ("SK 202 274 96 19", "SK2022749619"),
}


def test_every_supported_country_has_a_case():
    assert set(VALID) == SUPPORTED_VAT_COUNTRIES
    assert len(VALID) == 30


@pytest.mark.parametrize("country", sorted(VALID))
def test_a_valid_number_is_normalised(country):
    typed, normalised = VALID[country]

    registration = validate_vat(typed, country)

    assert (registration.country, registration.number) == (country, normalised)


def _corrupt(number: str) -> str:
    """Change the last checked digit (the check digit; in NL the one before the B01 branch suffix)."""
    checked = number[:-3] if number.startswith("NL") else number
    positions = [i for i, ch in enumerate(checked) if ch.isdigit()]
    i = positions[-1]
    return number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1 :]


@pytest.mark.parametrize("country", sorted(VALID))
def test_a_mistyped_number_is_refused_with_a_reason(country):
    _, normalised = VALID[country]
    wrong = _corrupt(normalised)

    with pytest.raises(RegistrationInvalid) as refused:
        validate_vat(wrong, country)

    assert wrong in str(refused.value)
    assert f"{country} VAT number" in str(refused.value)


def test_a_number_of_another_country_is_refused_by_its_prefix():
    with pytest.raises(
        RegistrationInvalid, match="starts with FR, which is not the VAT prefix of the registration country DE"
    ):
        validate_vat("FR40303265045", "DE")


def test_the_country_is_read_from_the_prefix_when_not_given():
    assert validate_vat("el094259216").country == "GR"
    with pytest.raises(RegistrationInvalid, match="known country prefix"):
        validate_vat("123456789")
