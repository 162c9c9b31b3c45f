"""The legal entities endpoint: our billing companies with registrations and bank accounts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers import services
from customers.models import BankAccount, LegalEntity

pytestmark = pytest.mark.django_db

LIST = "/api/v1/legal-entities/"


def entity_body(**overrides) -> dict:
    body = {
        "legal_name": "Throughline Studio GmbH",
        "short_name": "Studio DE",
        "line1": "Torstraße 1",
        "postal_code": "10119",
        "city": "Berlin",
        "country": "de",
        "invoice_prefix": "de",
        "registrations": [{"kind": "vat", "country": "DE", "number": "DE123456788"}],
        "bank_accounts": [
            {
                "bank_name": "Commerzbank",
                "account_holder": "Throughline Studio GmbH",
                "iban": "DE89 3704 0044 0532 0130 00",
                "bic": "COBADEFFXXX",
                "is_default": True,
            }
        ],
    }
    body.update(overrides)
    return body


def test_finance_creates_an_entity_with_registrations_and_bank_accounts(person, client_for):
    response = client_for(person("finance")).post(LIST, entity_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["country"] == "DE" and body["invoice_prefix"] == "DE"
    assert body["registrations"][0]["number"] == "DE123456788"
    assert body["bank_accounts"][0]["iban"] == "DE89370400440532013000"
    assert body["logo"] is None
    assert body["id"] == str(LegalEntity.objects.get().public_id)


def test_invalid_iban_bic_and_vat_are_400_per_field(person, client_for):
    body = entity_body(
        registrations=[{"country": "DE", "number": "DE123456789"}],
        bank_accounts=[{"bank_name": "B", "account_holder": "H", "iban": "DE00 1234", "bic": "NOPE"}],
    )

    response = client_for(person("finance")).post(LIST, body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"registrations.0.number", "bank_accounts.0.iban", "bank_accounts.0.bic"} <= set(errors)
    assert not LegalEntity.objects.exists()


def test_update_replaces_nested_lists_only_when_present(person, client_for):
    client = client_for(person("finance"))
    url = f"{LIST}{client.post(LIST, entity_body(), format='json').json()['id']}/"

    renamed = client.patch(url, {"short_name": "Studio"}, format="json")
    second_account = {
        "bank_name": "N26",
        "account_holder": "Studio",
        "iban": "GB82 WEST 1234 5698 7654 32",
        "bic": "NWBKGB2L",
        "currency": "GBP",
        "is_default": True,
    }
    replaced = client.patch(url, {"bank_accounts": [second_account]}, format="json")

    assert renamed.status_code == 200 and renamed.json()["short_name"] == "Studio"
    assert len(renamed.json()["bank_accounts"]) == 1 and len(renamed.json()["registrations"]) == 1
    assert replaced.status_code == 200, replaced.json()
    assert [a["currency"] for a in replaced.json()["bank_accounts"]] == ["GBP"]
    assert len(replaced.json()["registrations"]) == 1
    assert BankAccount.objects.count() == 1


def test_sales_reads_entities_but_cannot_write(person, client_for):
    services.legal_entity_create(
        user=person("finance"),
        data={k: v for k, v in entity_body().items() if k not in ("registrations", "bank_accounts")},
    )
    client = client_for(person("sales"))
    assert client.get(LIST).json()["count"] == 1
    assert client.post(LIST, entity_body(legal_name="Other", invoice_prefix="OT"), format="json").status_code == 403
    assert client_for(person("consultant")).get(LIST).status_code == 403


def test_duplicate_prefix_is_a_400(person, client_for):
    client = client_for(person("finance"))
    client.post(LIST, entity_body(), format="json")
    response = client.post(LIST, entity_body(legal_name="Other GmbH"), format="json")
    assert response.status_code == 400
    assert "invoice_prefix" in response.json()["errors"]


def test_entity_list_runs_constant_queries(person, client_for):
    finance = person("finance")
    client = client_for(finance)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST).status_code == 200
        return len(queries)

    client.post(LIST, entity_body(), format="json")
    few = count_queries()
    for n in range(5):
        client.post(LIST, entity_body(legal_name=f"Entity {n}", invoice_prefix=f"E{n}"), format="json")
    assert client.get(LIST).json()["count"] == 6
    assert count_queries() == few
