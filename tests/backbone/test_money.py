from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backbone.money import MoneyError, format_money, minor_units, quantize


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10.005", "EUR", Decimal("10.01")),
        ("10.004", "EUR", Decimal("10.00")),
        ("-10.005", "EUR", Decimal("-10.01")),  # half away from zero, also for credit notes
        ("1234.5", "JPY", Decimal("1235")),
        ("0.0005", "BHD", Decimal("0.001")),
        ("2.675", "GBP", Decimal("2.68")),  # the classic binary-float trap
        ("7.125", "CHF", Decimal("7.13")),  # ISO 4217 minor unit (2), not CHF's cash rounding
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    assert quantize(amount, currency) == expected
    assert quantize(amount, currency).as_tuple().exponent == -minor_units(currency)


def test_quantize_refuses_floats_and_garbage():
    with pytest.raises(MoneyError, match="float"):
        quantize(10.15, "EUR")
    with pytest.raises(MoneyError, match="not a number"):
        quantize("ten", "EUR")
    with pytest.raises(MoneyError, match="ISO 4217"):
        quantize("1", "EURO")
    with pytest.raises(MoneyError, match="finite"):
        quantize("NaN", "EUR")


def test_format_money_by_locale():
    assert format_money(Decimal("1234.5"), "EUR", "en") == "€1,234.50"
    assert format_money(Decimal("1234.5"), "EUR", "de") == "1.234,50\xa0€"
    assert format_money(Decimal("1234.5"), "JPY", "en") == "¥1,235"


@given(
    st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from(["EUR", "JPY", "BHD", "GBP"]),
)
def test_quantize_is_idempotent_and_within_half_a_unit(value, currency):
    once = quantize(value, currency)
    assert quantize(once, currency) == once
    half_unit = Decimal(1).scaleb(-minor_units(currency)) / 2
    assert abs(once - value) <= half_unit


@given(
    st.lists(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False), max_size=30)
)
def test_sums_of_rounded_cents_stay_exact(values):
    assert quantize(sum(values, Decimal(0)), "EUR") == sum((quantize(v, "EUR") for v in values), Decimal(0))
