"""The tax API: preview (in the OpenAPI schema), rates with validity windows, jurisdictions and evidence."""

from __future__ import annotations

import pytest

from tax.context import TaxContext
from tax.models import TaxRate
from tax.rates import load_rate_file
from tax.services import tax_calculation_record

pytestmark = pytest.mark.django_db

PREVIEW = "/api/v1/tax/preview/"


def reverse_charge_context(**overrides):
    context = {
        "seller": {"country": "DE"},
        "buyer": {
            "country": "FR",
            "is_business": True,
            "registrations": [{"country": "FR", "number": "FR40303265045"}],
        },
        "lines": [
            {"id": "1", "description": "Consulting", "net_amount": "1200.00", "category": "S"},
            {"id": "2", "description": "Licence", "net_amount": "99.995", "category": "S"},
        ],
        "tax_point": "2026-03-31",
        "currency": "EUR",
    }
    context.update(overrides)
    return context


def test_preview_answers_reverse_charge_with_note_rules_and_versions(person, client_for):
    response = client_for(person("sales")).post(PREVIEW, reverse_charge_context(), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [row["category"] for row in body["breakdown"]] == ["AE"]
    assert body["breakdown"][0]["taxable_amount"] == "1300.00"  # 1200.00 + 100.00 (line rounded first)
    assert body["tax_amount"] == "0.00"
    assert body["place_of_supply"] == "FR"
    assert any("Art. 196" in note for note in body["legal_notes"])
    assert "EU-B2B-SERVICE-REVERSE-CHARGE" in body["rules_fired"]
    assert body["engine"] == "throughline-rules"
    assert body["rate_data_version"].startswith(load_rate_file()["version"] + "+")
    assert len(body["context_sha256"]) == 64


def test_preview_of_a_domestic_sale_charges_the_rate_on_the_category_sum(person, client_for):
    context = reverse_charge_context(
        buyer={"country": "DE", "is_business": True},
        lines=[{"net_amount": "0.33"}, {"net_amount": "0.33"}, {"net_amount": "0.33"}],
    )
    response = client_for(person("finance")).post(PREVIEW, context, format="json")

    body = response.json()
    assert response.status_code == 200
    assert body["breakdown"] == [
        {
            "category": "S",
            "rate": "19",
            "taxable_amount": "0.99",
            "tax_amount": "0.19",
            "exemption_reason_code": "",
            "exemption_reason": "",
        }
    ]
    assert body["gross_amount"] == "1.18"


def test_preview_refuses_a_missing_buyer_country_by_name(person, client_for):
    context = reverse_charge_context(buyer={"is_business": True})
    response = client_for(person("finance")).post(PREVIEW, context, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "The buyer's country is missing."
    assert body["errors"] == {"buyer.country": ["The buyer's country is missing."]}


def test_preview_reports_shape_errors_under_flat_keys(person, client_for):
    context = reverse_charge_context(lines=[{"net_amount": "12"}, {"net_amount": "lots"}])
    response = client_for(person("finance")).post(PREVIEW, context, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["lines.1.net_amount"]


@pytest.mark.parametrize(
    ("override", "key", "fragment"),
    [
        ({"currency": "XYZ"}, "currency", "'XYZ' is not an ISO 4217 currency"),
        ({"tax_point": "2019-06-30"}, "tax_point", "on 2019-06-30"),
    ],
)
def test_preview_refuses_what_it_cannot_know(person, client_for, override, key, fragment):
    context = reverse_charge_context(buyer={"country": "DE"}, **override)
    response = client_for(person("finance")).post(PREVIEW, context, format="json")

    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert key in response.json()["errors"]


def test_preview_refuses_an_unknown_category(person, client_for):
    context = reverse_charge_context(lines=[{"net_amount": "10", "category": "X"}])
    response = client_for(person("finance")).post(PREVIEW, context, format="json")

    assert response.status_code == 400
    assert "'X' is not a product tax category" in response.json()["errors"]["lines.0.category"][0]


@pytest.mark.parametrize("role", ["consultant", "auditor"])
def test_preview_is_refused_to_roles_without_it(person, client_for, role):
    response = client_for(person(role)).post(PREVIEW, reverse_charge_context(), format="json")

    assert response.status_code == 403


def test_preview_is_in_the_openapi_schema(person, client_for):
    response = client_for(person("finance")).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    schema = response.json()
    operation = schema["paths"]["/api/v1/tax/preview/"]["post"]
    assert operation["operationId"] == "tax_preview"
    assert "TaxContext" in operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "TaxResult" in operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


def test_rates_filter_by_country_and_day_in_force(person, client_for):
    client = client_for(person("executive"))

    before = client.get("/api/v1/tax/rates/", {"country": "ee", "kind": "standard", "on": "2025-06-30"}).json()
    after = client.get("/api/v1/tax/rates/", {"country": "EE", "kind": "standard", "on": "2025-07-01"}).json()

    assert [row["rate"] for row in before["results"]] == ["22.000"]
    assert [row["rate"] for row in after["results"]] == ["24.000"]


def test_rates_list_keeps_a_constant_number_of_queries(person, client_for, django_assert_max_num_queries):
    client = client_for(person("finance"))
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/tax/rates/", {"page_size": 200})
    assert response.status_code == 200
    assert len(response.json()["results"]) == TaxRate.objects.count() > 90


def test_jurisdictions_list_keeps_a_constant_number_of_queries(person, client_for, django_assert_max_num_queries):
    client = client_for(person("finance"))
    with django_assert_max_num_queries(10):
        response = client.get("/api/v1/tax/jurisdictions/")
    assert response.status_code == 200
    assert response.json()["count"] == 30


def test_finance_adds_a_rate_which_closes_the_open_one(person, client_for):
    client = client_for(person("finance"))
    body = {"country": "de", "kind": "standard", "rate": "20", "valid_from": "2030-01-01", "source_reference": "BGBl."}

    response = client.post("/api/v1/tax/rates/", body, format="json", HTTP_IDEMPOTENCY_KEY="de-2030")
    replay = client.post("/api/v1/tax/rates/", body, format="json", HTTP_IDEMPOTENCY_KEY="de-2030")

    assert response.status_code == 201, response.json()
    assert replay.json() == response.json()
    assert response.json()["source"] == "manual"
    rates = TaxRate.objects.filter(jurisdiction__country="DE", kind="standard").order_by("valid_from")
    assert [(str(r.rate), str(r.valid_to)) for r in rates][-2:] == [("19.000", "2029-12-31"), ("20.000", "None")]


def test_an_overlapping_rate_is_a_409_that_names_the_rate_it_hits(person, client_for):
    client = client_for(person("finance"))
    body = {"country": "EE", "kind": "standard", "rate": "23", "valid_from": "2025-03-01", "valid_to": "2025-12-31"}

    response = client.post("/api/v1/tax/rates/", body, format="json")

    assert response.status_code == 409
    assert "overlaps the 22 % rate" in response.json()["message"]


def test_executives_may_read_rates_but_not_add_them(person, client_for):
    client = client_for(person("executive"))
    body = {"country": "DE", "kind": "standard", "rate": "20", "valid_from": "2030-01-01"}

    assert client.post("/api/v1/tax/rates/", body, format="json").status_code == 403
    assert client.get("/api/v1/tax/rates/").status_code == 200


def test_evidence_is_listed_and_read_by_auditors(person, client_for):
    calculation = tax_calculation_record(context=TaxContext.from_dict(reverse_charge_context()), purpose="test")
    client = client_for(person("auditor"))

    listing = client.get("/api/v1/tax/calculations/").json()
    detail = client.get(f"/api/v1/tax/calculations/{calculation.public_id}/").json()

    assert listing["count"] == 1
    assert detail["sha256"] == calculation.sha256
    assert detail["rules_fired"] == ["VAT-ID-FORMAT-CHECKED", "EU-B2B-SERVICE-REVERSE-CHARGE"]
    assert detail["context"]["buyer"]["country"] == "FR"
