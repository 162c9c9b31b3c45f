"""Idempotency-Key on POST: a retried request answers the first response and creates nothing twice."""

from __future__ import annotations

import pytest

from customers.models import Contact, Customer, LegalEntity, Product

pytestmark = pytest.mark.django_db

LIST = "/api/v1/customers/"


def test_same_key_and_body_replays_the_first_response(person, client_for, customer_payload):
    client = client_for(person("sales"))
    payload = customer_payload()

    first = client.post(LIST, payload, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    second = client.post(LIST, payload, format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Customer.objects.count() == 1


def test_same_key_with_another_body_is_a_409(person, client_for, customer_payload):
    client = client_for(person("sales"))

    client.post(LIST, customer_payload(), format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    other = client.post(LIST, customer_payload(legal_name="Other AG"), format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert Customer.objects.count() == 1


def test_without_a_key_every_post_creates(person, client_for, customer_payload):
    client = client_for(person("sales"))
    client.post(LIST, customer_payload(), format="json")
    client.post(LIST, customer_payload(), format="json")
    assert Customer.objects.count() == 2


def test_a_refused_request_can_be_corrected_and_retried_with_the_same_key(person, client_for, customer_payload):
    client = client_for(person("sales"))
    bad = customer_payload(registrations=[{"country": "DE", "number": "DE123456789"}])

    refused = client.post(LIST, bad, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    fixed = client.post(LIST, customer_payload(), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert refused.status_code == 400
    assert fixed.status_code == 201
    assert Customer.objects.count() == 1


def test_keys_are_per_user(person, client_for, customer_payload):
    payload = customer_payload()
    first = client_for(person("sales")).post(LIST, payload, format="json", HTTP_IDEMPOTENCY_KEY="same")
    second = client_for(person("sales")).post(LIST, payload, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert first.status_code == second.status_code == 201
    assert Customer.objects.count() == 2


def test_status_change_replays(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales)
    client = client_for(sales)
    url = f"/api/v1/customers/{customer.public_id}/status/"

    first = client.post(url, {"status": "active"}, format="json", HTTP_IDEMPOTENCY_KEY="s1")
    second = client.post(url, {"status": "active"}, format="json", HTTP_IDEMPOTENCY_KEY="s1")

    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert customer.history.count() == 2  # created, activated: nothing for the replay


def test_contacts_products_and_legal_entities_honour_the_key(person, client_for, make_customer):
    sales, finance = person("sales"), person("finance")
    customer = make_customer(sales)
    cases = [
        (
            client_for(sales),
            "/api/v1/contacts/",
            {"customer": str(customer.public_id), "last_name": "Berg", "email": "ida@nordlicht.example"},
            Contact,
        ),
        (
            client_for(finance),
            "/api/v1/products/",
            {"code": "CONS-H", "name": "Consulting", "revenue_account": "8400"},
            Product,
        ),
        (
            client_for(finance),
            "/api/v1/legal-entities/",
            {
                "legal_name": "Studio GmbH",
                "short_name": "Studio",
                "line1": "Torstraße 1",
                "city": "Berlin",
                "country": "DE",
                "invoice_prefix": "DE",
            },
            LegalEntity,
        ),
    ]
    for client, url, body, model in cases:
        first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k{url}")
        second = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k{url}")
        assert first.status_code == 201, (url, first.json())
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert model.objects.count() == 1


def test_a_key_used_on_another_endpoint_is_a_409(person, client_for, make_customer):
    finance = person("finance")
    client = client_for(finance)
    product = {"code": "CONS-H", "name": "Consulting", "revenue_account": "8400"}
    client.post("/api/v1/products/", product, format="json", HTTP_IDEMPOTENCY_KEY="one")

    response = client.post("/api/v1/legal-entities/", product, format="json", HTTP_IDEMPOTENCY_KEY="one")

    assert response.status_code == 409
    assert not LegalEntity.objects.exists()
