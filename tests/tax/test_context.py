"""TaxContext's JSON form: errors under flat keys, canonical JSON and its SHA-256 as stored evidence."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from decimal import Decimal

import pytest

from backbone.errors import ValidationFailed
from tax.context import (
    Buyer,
    ExemptionCertificate,
    Line,
    LineKind,
    Registration,
    Seller,
    SupplyKind,
    TaxContext,
    canonical_json,
)


def valid_data() -> dict:
    return {
        "seller": {
            "country": "DE",
            "registrations": [{"country": "DE", "number": "DE123456788", "valid": True}],
            "oss_registered": True,
            "eu_b2c_sales_current_year_eur": "9500.00",
            "eu_b2c_sales_previous_year_eur": "0",
            "eu_b2c_threshold_exceeded": False,
        },
        "buyer": {
            "country": "FR",
            "is_business": True,
            "registrations": [
                {
                    "country": "FR",
                    "number": "FR40303265045",
                    "valid": True,
                    "source": "vies",
                    "checked_on": "2025-05-30",
                    "consultation_number": "WAPIAAAAW1234",
                }
            ],
            "exemption_certificates": [
                {
                    "reference": "CERT-9",
                    "reason_code": "VATEX-EU-151-1E",
                    "valid_from": "2025-01-01",
                    "valid_to": "2025-12-31",
                    "country": "FR",
                    "reason": "Diplomatic mission",
                }
            ],
        },
        "lines": [
            {"id": "1", "net_amount": "100.00", "description": "Consulting, Müller & Søn"},
            {"id": "2", "net_amount": "12.50", "category": "AA", "rate_kind": "reduced_2", "supply_kind": "goods"},
            {"id": "3", "net_amount": "5.00", "kind": "allowance"},
            {"id": "4", "net_amount": "3.20", "category": "E", "exemption_reason_code": "VATEX-EU-132-1F"},
        ],
        "tax_point": "2025-06-01",
        "currency": "EUR",
        "eur_rate": None,
    }


def expected_context() -> TaxContext:
    return TaxContext(
        seller=Seller(
            country="DE",
            registrations=(Registration("DE", "DE123456788", True),),
            oss_registered=True,
            eu_b2c_sales_current_year_eur=Decimal("9500.00"),
        ),
        buyer=Buyer(
            country="FR",
            registrations=(Registration("FR", "FR40303265045", True, "vies", dt.date(2025, 5, 30), "WAPIAAAAW1234"),),
            exemption_certificates=(
                ExemptionCertificate(
                    "CERT-9", "VATEX-EU-151-1E", dt.date(2025, 1, 1), dt.date(2025, 12, 31), "FR", "Diplomatic mission"
                ),
            ),
        ),
        lines=(
            Line("1", Decimal("100.00"), description="Consulting, Müller & Søn"),
            Line("2", Decimal("12.50"), category="AA", rate_kind="reduced_2", supply_kind=SupplyKind.GOODS),
            Line("3", Decimal("5.00"), kind=LineKind.ALLOWANCE),
            Line("4", Decimal("3.20"), category="E", exemption_reason_code="VATEX-EU-132-1F"),
        ),
        tax_point=dt.date(2025, 6, 1),
        currency="EUR",
    )


def errors_of(data) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        TaxContext.from_dict(data)
    return caught.value


# --- from_dict ---------------------------------------------------------------------------------------------


def test_from_dict_builds_the_context():
    assert TaxContext.from_dict(valid_data()) == expected_context()


def test_from_dict_normalises_case_defaults_and_greece():
    data = valid_data()
    data["buyer"] = {"country": "el", "registrations": [{"country": "EL", "number": " el094259216 "}]}
    data["currency"] = "eur"
    data["lines"] = [{"net_amount": "1"}, {"net_amount": "2", "category": "aa"}]
    context = TaxContext.from_dict(data)
    assert context.buyer.country == "GR"
    assert context.buyer.registrations == (Registration("GR", "EL094259216"),)
    assert context.buyer.is_business is True
    assert context.currency == "EUR"
    assert [(line.id, line.category, line.supply_kind, line.kind) for line in context.lines] == [
        ("1", "S", SupplyKind.GENERAL_SERVICE, LineKind.LINE),
        ("2", "AA", SupplyKind.GENERAL_SERVICE, LineKind.LINE),
    ]


def test_from_dict_reports_every_problem_under_a_flat_key():
    data = valid_data()
    data["buyer"]["country"] = ""
    data["lines"][1]["net_amount"] = "12,50"
    data["lines"][2]["net_amount"] = "-5.00"  # an allowance: given positive
    data["lines"][3]["category"] = "X"
    data["tax_point"] = "2025-02-30"
    error = errors_of(data)
    assert set(error.errors) == {
        "buyer.country",
        "lines.1.net_amount",
        "lines.2.net_amount",
        "lines.3.category",
        "tax_point",
    }
    assert error.errors["buyer.country"] == ["The buyer's country is missing."]
    assert error.errors["lines.1.net_amount"] == ["Line 2's net amount must be a number, not '12,50'."]
    assert "positive number" in error.errors["lines.2.net_amount"][0]
    assert error.errors["lines.3.category"][0].startswith("'X' is not a product tax category")
    assert "'2025-02-30'" in error.errors["tax_point"][0]
    assert error.message == "The buyer's country is missing. (and 4 more problems)"


def test_from_dict_single_problem_is_the_message():
    data = valid_data()
    del data["lines"][0]["net_amount"]
    error = errors_of(data)
    assert error.errors == {"lines.0.net_amount": ["Line 1's net amount is missing."]}
    assert error.message == "Line 1's net amount is missing."


FROM_DICT_ERRORS = [
    (lambda d: d.pop("seller"), "seller", "The seller is missing."),
    (lambda d: d.__setitem__("seller", "DE"), "seller", "The seller is missing."),
    (lambda d: d.pop("buyer"), "buyer", "The buyer is missing."),
    (lambda d: d["seller"].__setitem__("country", "Germany"), "seller.country", "two-letter ISO country code"),
    (lambda d: d["buyer"].pop("country"), "buyer.country", "The buyer's country is missing."),
    (lambda d: d.__setitem__("lines", []), "lines", "At least one line is needed."),
    (lambda d: d.__setitem__("lines", {"net_amount": "1"}), "lines", "At least one line is needed."),
    (lambda d: d.__setitem__("currency", ""), "currency", "The currency is missing."),
    (lambda d: d.pop("tax_point"), "tax_point", "The tax point date is missing."),
    (lambda d: d.__setitem__("eur_rate", "one"), "eur_rate", "must be a number, not 'one'"),
    (lambda d: d["lines"][0].__setitem__("net_amount", "NaN"), "lines.0.net_amount", "finite"),
    (lambda d: d["lines"][0].__setitem__("net_amount", "Infinity"), "lines.0.net_amount", "finite"),
    (lambda d: d["lines"][0].__setitem__("net_amount", True), "lines.0.net_amount", "must be a number"),
    (lambda d: d["lines"][1].__setitem__("supply_kind", "software"), "lines.1.supply_kind", "'software'"),
    (lambda d: d["lines"][1].__setitem__("kind", "rebate"), "lines.1.kind", "'rebate'"),
    (lambda d: d["lines"][1].__setitem__("rate_kind", "standard"), "lines.1.rate_kind", "'standard'"),
    (
        lambda d: d["lines"][3].__setitem__("exemption_reason_code", "VATEX-EU-999"),
        "lines.3.exemption_reason_code",
        "'VATEX-EU-999' is not a VATEX",
    ),
    (lambda d: d["lines"][1].__setitem__("id", "1"), "lines", "Line ids must be unique"),
    (
        lambda d: d["buyer"]["registrations"][0].pop("number"),
        "buyer.registrations.0.number",
        "Number is missing.",
    ),
    (
        lambda d: d["seller"]["registrations"][0].__setitem__("country", "DEU"),
        "seller.registrations.0.country",
        "two-letter",
    ),
    (
        lambda d: d["buyer"]["registrations"][0].__setitem__("checked_on", "yesterday"),
        "buyer.registrations.0.checked_on",
        "'yesterday'",
    ),
    (
        lambda d: d["buyer"]["exemption_certificates"][0].__setitem__("reason_code", "EXEMPT"),
        "buyer.exemption_certificates.0.reason_code",
        "'EXEMPT' is not a VATEX",
    ),
    (
        lambda d: d["buyer"]["exemption_certificates"][0].__setitem__("valid_to", "2024-12-31"),
        "buyer.exemption_certificates.0.valid_to",
        "end date is before its start date",
    ),
    (
        lambda d: d["buyer"]["exemption_certificates"][0].pop("valid_from"),
        "buyer.exemption_certificates.0.valid_from",
        "Valid from is missing.",
    ),
    (
        lambda d: d["seller"].__setitem__("eu_b2c_sales_current_year_eur", "lots"),
        "seller.eu_b2c_sales_current_year_eur",
        "'lots'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    FROM_DICT_ERRORS,
    ids=[f"{index}-{key}" for index, (_, key, _) in enumerate(FROM_DICT_ERRORS)],
)
def test_from_dict_error_keys(mutate, key, fragment):
    data = valid_data()
    mutate(data)
    error = errors_of(data)
    assert key in error.errors, error.errors
    assert any(fragment in message for message in error.errors[key]), error.errors[key]


def test_from_dict_refuses_rows_that_are_not_objects():
    """A line or registration that is not a JSON object is an error at its own key, not a silent zero line."""
    data = valid_data()
    data["lines"][1] = "12.50"
    data["buyer"]["registrations"] = ["FR40303265045"]
    data["buyer"]["exemption_certificates"] = {"reference": "CERT-9"}
    error = errors_of(data)
    assert "lines.1" in error.errors
    assert "buyer.registrations.0" in error.errors
    assert "buyer.exemption_certificates" in error.errors


@pytest.mark.parametrize(
    ("given", "expected"),
    [(True, True), (False, False), (None, None), ("false", False), ("true", True), ("0", False), ("", None)],
)
def test_registration_validity_is_read_as_yes_no_or_unknown(given, expected):
    data = valid_data()
    data["buyer"]["registrations"][0]["valid"] = given
    assert TaxContext.from_dict(data).buyer.registrations[0].valid is expected


def test_from_dict_reads_a_json_float_by_its_shortest_spelling():
    """A JSON number arrives as a float; it is read by its repr (19.99), never by its binary value (19.989999…)."""
    data = json.loads(json.dumps(valid_data()).replace('"100.00"', "19.99").replace('"9500.00"', "0.1"))
    context = TaxContext.from_dict(data)
    assert context.lines[0].net_amount == Decimal("19.99")
    assert context.seller.eu_b2c_sales_current_year_eur == Decimal("0.1")
    assert context.lines[0].net_amount != Decimal(json.loads("19.99"))


def test_from_dict_accepts_dates_and_decimals_already_parsed():
    data = valid_data()
    data["tax_point"] = dt.date(2025, 6, 1)
    data["lines"][0]["net_amount"] = Decimal("100.00")
    assert TaxContext.from_dict(data) == expected_context()
    data["tax_point"] = dt.datetime(2025, 6, 1, 23, 59)
    assert TaxContext.from_dict(data).tax_point == dt.date(2025, 6, 1)


def test_from_dict_of_something_that_is_not_an_object():
    error = errors_of(["not", "a", "context"])
    assert "context" in error.errors


# --- to_dict, canonical JSON and the SHA-256 ------------------------------------------------------------------


def test_round_trip_through_the_json_form():
    context = expected_context()
    data = json.loads(json.dumps(context.to_dict()))
    assert TaxContext.from_dict(data) == context
    assert TaxContext.from_dict(data).canonical_json() == context.canonical_json()


def test_to_dict_writes_amounts_and_dates_as_strings_never_floats():
    data = TaxContext.from_dict(valid_data()).to_dict()
    assert data["lines"][0]["net_amount"] == "100.00"
    assert data["lines"][1]["net_amount"] == "12.50"
    assert data["seller"]["eu_b2c_sales_current_year_eur"] == "9500.00"
    assert data["tax_point"] == "2025-06-01"
    assert data["buyer"]["registrations"][0]["checked_on"] == "2025-05-30"
    assert data["eur_rate"] is None

    def leaves(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, list):
            for item in value:
                yield from leaves(item)
        else:
            yield value

    assert not [leaf for leaf in leaves(data) if isinstance(leaf, float)]


def _reversed_keys(value):
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def test_canonical_json_does_not_depend_on_key_order():
    data = valid_data()
    shuffled = _reversed_keys(copy.deepcopy(data))
    assert list(shuffled) != list(data)
    assert json.dumps(shuffled) != json.dumps(data)
    assert canonical_json(shuffled) == canonical_json(data)
    assert TaxContext.from_dict(shuffled).canonical_json() == TaxContext.from_dict(data).canonical_json()
    assert TaxContext.from_dict(shuffled).sha256() == TaxContext.from_dict(data).sha256()


def test_canonical_json_form():
    text = canonical_json({"b": Decimal("1.50"), "a": [dt.date(2025, 1, 2), "Müller"], "c": None})
    assert text == '{"a":["2025-01-02","Müller"],"b":"1.50","c":null}'


def test_sha256_is_the_digest_of_the_canonical_json():
    context = expected_context()
    assert context.sha256() == hashlib.sha256(context.canonical_json().encode("utf-8")).hexdigest()


def test_sha256_is_stable_across_releases():
    """Pinned: stored evidence is verified against this digest years later; any change to the form breaks it."""
    assert TaxContext.from_dict(valid_data()).sha256() == PINNED_SHA256


def test_sha256_changes_with_any_value():
    base = TaxContext.from_dict(valid_data()).sha256()
    for mutate in (
        lambda d: d["lines"][0].__setitem__("net_amount", "100.01"),
        lambda d: d["buyer"].__setitem__("is_business", False),
        lambda d: d.__setitem__("tax_point", "2025-06-02"),
        lambda d: d["lines"].reverse(),
    ):
        data = valid_data()
        mutate(data)
        assert TaxContext.from_dict(data).sha256() != base


PINNED_SHA256 = "ebfd5f257b81aaed81228155c0fd5b07ffe013cbef9d63a39d30461cd65a7ef4"
