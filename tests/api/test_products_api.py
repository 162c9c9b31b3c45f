"""The catalog endpoint: finance maintains it, sales reads it, nobody deletes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers import services
from customers.models import Product

pytestmark = pytest.mark.django_db

LIST = "/api/v1/products/"
BODY = {
    "code": "cons-h",
    "name": "Consulting hour",
    "unit": "HUR",
    "default_price_amount": "150.00",
    "currency": "EUR",
    "revenue_account": "8400",
}


def test_finance_creates_and_updates_a_product(person, client_for):
    client = client_for(person("finance"))

    created = client.post(LIST, BODY, format="json")
    assert created.status_code == 201, created.json()
    url = f"{LIST}{created.json()['id']}/"
    updated = client.patch(url, {"default_price_amount": "160", "reason": "2027 prices"}, format="json")

    assert created.json()["code"] == "CONS-H"
    assert created.json()["default_price_amount"] == "150.0000"
    assert updated.status_code == 200 and updated.json()["default_price_amount"] == "160.0000"
    assert Product.objects.get().history.first().history_change_reason == "2027 prices"


def test_product_errors_are_per_field(person, client_for):
    finance = person("finance")
    services.product_create(user=finance, data={**BODY, "code": "CONS-H"})
    client = client_for(finance)

    duplicate = client.post(LIST, BODY, format="json")
    rate_card_goods = client.post(
        LIST, {**BODY, "code": "BOX", "kind": "goods", "pricing_rule": "rate_card"}, format="json"
    )
    negative = client.post(LIST, {**BODY, "code": "NEG", "default_price_amount": "-1"}, format="json")
    bad_currency = client.post(LIST, {**BODY, "code": "XYZ", "currency": "XXX"}, format="json")

    assert duplicate.status_code == 400 and "already used" in duplicate.json()["errors"]["code"][0]
    assert rate_card_goods.status_code == 400 and "pricing_rule" in rate_card_goods.json()["errors"]
    assert negative.status_code == 400 and "default_price_amount" in negative.json()["errors"]
    assert bad_currency.status_code == 400 and "currency" in bad_currency.json()["errors"]


def test_sales_reads_the_catalog_but_cannot_change_it(person, client_for):
    product = services.product_create(user=person("finance"), data=BODY)
    client = client_for(person("sales"))

    assert client.get(LIST).json()["count"] == 1
    assert client.post(LIST, {**BODY, "code": "NEW"}, format="json").status_code == 403
    assert client.patch(f"{LIST}{product.public_id}/", {"name": "x"}, format="json").status_code == 403
    assert client_for(person("consultant")).get(LIST).status_code == 403


def test_products_are_not_deleted(person, client_for):
    product = services.product_create(user=person("finance"), data=BODY)
    assert client_for(person("admin")).delete(f"{LIST}{product.public_id}/").status_code == 405


def test_product_list_filters_and_runs_constant_queries(person, client_for):
    finance = person("finance")
    client = client_for(finance)
    services.product_create(user=finance, data={**BODY, "code": "TRAVEL", "name": "Travel", "kind": "expense"})

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST, {"page_size": 100}).status_code == 200
        return len(queries)

    few = count_queries()
    for n in range(20):
        services.product_create(user=finance, data={**BODY, "code": f"SVC-{n}"})
    assert count_queries() == few
    assert [p["code"] for p in client.get(LIST, {"kind": "expense"}).json()["results"]] == ["TRAVEL"]
    assert client.get(LIST, {"q": "svc-1"}).json()["count"] == 11
