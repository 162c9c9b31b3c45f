"""Properties of the rules engine that hold for any document: EN 16931 sums and rounding, credit notes,
determinism and the round trip through the JSON form. Rates come from the shipped data file; no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backbone.money import minor_units, quantize
from tax.context import (
    Buyer,
    ExemptionCertificate,
    Line,
    LineKind,
    Registration,
    Seller,
    SupplyKind,
    TaxContext,
)
from tax.rates import RateBook
from tax.rules import RulesEngine

BOOK = RateBook.from_file()
ENGINE = RulesEngine()
PROPERTY = settings(max_examples=200, deadline=None)

SELLERS = ["DE", "FR", "AT", "GB", "CH"]
BUYERS = ["DE", "FR", "AT", "GB", "CH", "US"]
VAT_IDS = {"DE": "DE123456788", "FR": "FR40303265045", "AT": "ATU13585627", "GB": "GB980780684"}
EUR_RATES = {"EUR": None, "JPY": Decimal("0.0062"), "GBP": Decimal("1.17")}
EXEMPT_CODES = ["", "VATEX-EU-132", "VATEX-EU-132-1F", "VATEX-EU-143-1A"]

amounts = st.one_of(
    st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=2, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=4, allow_nan=False, allow_infinity=False),
)
tax_points = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2026, 12, 31))


@st.composite
def lines(draw) -> tuple[Line, ...]:
    count = draw(st.integers(min_value=1, max_value=6))
    result = []
    for index in range(count):
        kind = draw(st.sampled_from([LineKind.LINE, LineKind.LINE, LineKind.ALLOWANCE, LineKind.CHARGE]))
        amount = draw(amounts)
        if kind != LineKind.LINE:
            amount = abs(amount)
        category = draw(st.sampled_from(["S", "AA", "Z", "E"]))
        result.append(
            Line(
                id=f"L{index + 1}",
                net_amount=amount,
                category=category,
                supply_kind=draw(st.sampled_from(sorted(SupplyKind.VALUES))),
                kind=kind,
                exemption_reason_code=draw(st.sampled_from(EXEMPT_CODES)) if category == "E" else "",
            )
        )
    return tuple(result)


@st.composite
def contexts(draw, *, may_cross_threshold: bool = True) -> TaxContext:
    """Any valid context. ``may_cross_threshold=False`` keeps the EUR 10,000 judgement independent of this
    document's own amount (current-year sales 0 or far above), so an invoice and its credit note agree."""
    seller_country = draw(st.sampled_from(SELLERS))
    buyer_country = draw(st.sampled_from(BUYERS))
    current_choices = ["0", "9500", "20000"] if may_cross_threshold else ["0", "20000"]
    seller = Seller(
        country=seller_country,
        oss_registered=draw(st.booleans()),
        eu_b2c_sales_current_year_eur=Decimal(draw(st.sampled_from(current_choices))),
        eu_b2c_sales_previous_year_eur=Decimal(draw(st.sampled_from(["0", "20000"]))),
        eu_b2c_threshold_exceeded=draw(st.booleans()),
    )
    registrations = ()
    vat_state = draw(st.sampled_from(["none", "valid", "invalid", "unchecked", "unchecked-bad"]))
    if vat_state != "none" and buyer_country in VAT_IDS:
        number = VAT_IDS[buyer_country]
        if vat_state == "unchecked-bad":
            number = number[:-1] + str((int(number[-1]) + 1) % 10)
        valid = {"valid": True, "invalid": False}.get(vat_state)
        registrations = (Registration(country=buyer_country, number=number, valid=valid),)
    certificates = ()
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        start = draw(tax_points)
        certificates = (
            ExemptionCertificate(
                reference="CERT-1",
                reason_code="VATEX-EU-151-1E",
                valid_from=start,
                valid_to=draw(st.one_of(st.none(), st.dates(min_value=start, max_value=dt.date(2027, 12, 31)))),
                country=draw(st.sampled_from([None, buyer_country, seller_country])),
            ),
        )
    buyer = Buyer(
        country=buyer_country,
        is_business=draw(st.booleans()),
        registrations=registrations,
        exemption_certificates=certificates,
    )
    currency = draw(st.sampled_from(sorted(EUR_RATES)))
    return TaxContext(
        seller=seller,
        buyer=buyer,
        lines=draw(lines()),
        tax_point=draw(tax_points),
        currency=currency,
        eur_rate=EUR_RATES[currency],
    )


def signed_rounded(line: Line, currency: str) -> Decimal:
    amount = quantize(line.net_amount, currency)
    return -amount if line.kind == LineKind.ALLOWANCE else amount


def credit_note(context: TaxContext) -> TaxContext:
    """Every line's net negated: lines change sign, an allowance becomes a charge of the same amount and back."""
    swap = {LineKind.ALLOWANCE: LineKind.CHARGE, LineKind.CHARGE: LineKind.ALLOWANCE}
    lines = []
    for line in context.lines:
        if line.kind == LineKind.LINE:
            lines.append(Line(**{**vars(line), "net_amount": -line.net_amount}))
        else:
            lines.append(Line(**{**vars(line), "kind": swap[line.kind]}))
    return TaxContext(**{**vars(context), "lines": tuple(lines)})


@PROPERTY
@given(contexts())
def test_document_totals_are_sums_of_rounded_lines_and_category_taxes(context):
    result = ENGINE.calculate(context, rates=BOOK)
    currency = context.currency
    expected_nets = [signed_rounded(line, currency) for line in context.lines]

    assert [item.net_amount for item in result.lines] == expected_nets
    assert [item.line_id for item in result.lines] == [line.id for line in context.lines]
    assert result.net_amount == sum(expected_nets, Decimal("0"))
    assert result.net_amount == sum((row.taxable_amount for row in result.breakdown), Decimal("0"))
    assert result.tax_amount == sum((row.tax_amount for row in result.breakdown), Decimal("0"))
    assert result.gross_amount == result.net_amount + result.tax_amount
    exponent = -minor_units(currency)
    for amount in (result.net_amount, result.tax_amount, result.gross_amount):
        assert amount.as_tuple().exponent == exponent
    for row in result.breakdown:
        assert row.tax_amount.as_tuple().exponent == exponent


@PROPERTY
@given(contexts())
def test_each_category_tax_is_its_base_times_rate_within_half_a_minor_unit(context):
    result = ENGINE.calculate(context, rates=BOOK)
    half_unit = Decimal(1).scaleb(-minor_units(context.currency)) / 2
    keys = [(row.category, row.rate, row.exemption_reason_code) for row in result.breakdown]
    assert len(keys) == len(set(keys))  # one row per category, rate and exemption reason
    for row in result.breakdown:
        members = [
            item
            for item in result.lines
            if (item.category, item.rate, item.exemption_reason_code)
            == (row.category, row.rate, row.exemption_reason_code)
        ]
        assert members
        assert row.taxable_amount == sum((item.net_amount for item in members), Decimal("0"))
        exact = row.taxable_amount * row.rate / Decimal(100)
        assert abs(row.tax_amount - exact) <= half_unit
        if row.category in {"Z", "E", "AE", "K", "G", "O"}:
            assert row.rate == 0
            assert row.tax_amount == 0
        else:
            assert row.rate > 0


@PROPERTY
@given(contexts())
def test_each_rate_is_the_one_in_force_at_the_place_of_supply_on_the_tax_point(context):
    result = ENGINE.calculate(context, rates=BOOK)
    for line, item in zip(context.lines, result.lines, strict=True):
        if item.category == "S":
            assert item.rate == BOOK.rate(item.place_of_supply, "standard", context.tax_point).rate
        elif item.category == "AA":
            assert line.category == "AA"
            assert item.rate == BOOK.rate(item.place_of_supply, line.rate_kind, context.tax_point).rate
        if context.seller.country == context.buyer.country:
            assert item.place_of_supply == context.seller.country
            assert item.category in {line.category, "E"}


@PROPERTY
@given(contexts(may_cross_threshold=False))
def test_a_credit_note_negates_every_category_tax_exactly(context):
    invoice = ENGINE.calculate(context, rates=BOOK)
    credit = ENGINE.calculate(credit_note(context), rates=BOOK)

    assert [(row.category, row.rate, row.exemption_reason_code) for row in credit.breakdown] == [
        (row.category, row.rate, row.exemption_reason_code) for row in invoice.breakdown
    ]
    assert [(row.taxable_amount, row.tax_amount) for row in credit.breakdown] == [
        (-row.taxable_amount, -row.tax_amount) for row in invoice.breakdown
    ]
    assert [item.net_amount for item in credit.lines] == [-item.net_amount for item in invoice.lines]
    assert credit.net_amount == -invoice.net_amount
    assert credit.tax_amount == -invoice.tax_amount
    assert credit.gross_amount == -invoice.gross_amount
    assert credit.place_of_supply == invoice.place_of_supply
    assert credit.rules_fired == invoice.rules_fired


@PROPERTY
@given(contexts())
def test_calculation_is_deterministic_and_the_context_round_trips(context):
    first = ENGINE.calculate(context, rates=BOOK).to_dict()
    second = ENGINE.calculate(context, rates=BOOK).to_dict()
    assert first == second

    data = context.to_dict()
    again = TaxContext.from_dict(data)
    assert again == context
    assert again.canonical_json() == context.canonical_json()
    assert again.sha256() == context.sha256()
    assert ENGINE.calculate(again, rates=BOOK).to_dict() == first
