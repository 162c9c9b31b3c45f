"""PUT /api/v1/customers/by-external-id/{system}/{external_id}/: an upstream system's create-or-update."""

from __future__ import annotations

import pytest

from backbone.models import AuditEntry, ExternalId
from customers.models import Address, Contact, Customer, TaxRegistration

pytestmark = pytest.mark.django_db


def url(system: str = "hubspot", external_id: str = "HS-100") -> str:
    return f"/api/v1/customers/by-external-id/{system}/{external_id}/"


def test_creates_then_updates_and_never_duplicates(person, client_for, customer_payload):
    client = client_for(person("sales"))

    created = client.put(url(), customer_payload(), format="json")
    updated = client.put(url(), customer_payload(legal_name="Nordlicht Analytics SE"), format="json")
    again = client.put(url(), customer_payload(legal_name="Nordlicht Analytics SE"), format="json")

    assert created.status_code == 201, created.json()
    assert updated.status_code == 200, updated.json()
    assert again.status_code == 200
    assert Customer.objects.count() == 1
    customer = Customer.objects.get()
    assert customer.legal_name == "Nordlicht Analytics SE"
    assert created.json()["id"] == updated.json()["id"] == str(customer.public_id)
    assert created.json()["external_ids"] == [{"system": "hubspot", "external_id": "HS-100"}]
    assert ExternalId.objects.count() == 1


def test_the_same_body_twice_gives_the_same_result_and_writes_nothing(person, client_for, customer_payload):
    client = client_for(person("sales"))
    payload = customer_payload(
        addresses=[
            {"kind": "billing", "line1": "Torstraße 1", "city": "Berlin", "country": "de"},
            {"kind": "shipping", "label": "Warehouse", "line1": "Dock 2", "city": "Hamburg", "country": "DE"},
        ],
    )
    client.put(url(), payload, format="json")
    second = client.put(url(), payload, format="json")
    rows = (Address.objects.count(), TaxRegistration.objects.count(), Contact.objects.count())
    audit = AuditEntry.objects.count()

    third = client.put(url(), payload, format="json")

    assert third.status_code == 200
    assert third.json() == second.json()
    assert (Address.objects.count(), TaxRegistration.objects.count(), Contact.objects.count()) == rows == (2, 1, 1)
    assert AuditEntry.objects.count() == audit  # no history rows for a no-op sync


def test_nested_rows_keep_their_ids_when_matched_by_natural_key(person, client_for, customer_payload):
    client = client_for(person("sales"))
    first = client.put(url(), customer_payload(), format="json").json()

    changed = client.put(
        url(),
        customer_payload(
            addresses=[{"kind": "billing", "line1": "Neue Straße 5", "city": "Berlin", "country": "DE"}],
            contacts=[{"first_name": "Ida", "last_name": "Berg-Lund", "email": "ida.berg@nordlicht.example"}],
        ),
        format="json",
    ).json()

    assert changed["addresses"][0]["id"] == first["addresses"][0]["id"]
    assert changed["addresses"][0]["line1"] == "Neue Straße 5"
    assert changed["contacts"][0]["id"] == first["contacts"][0]["id"]
    assert changed["contacts"][0]["last_name"] == "Berg-Lund"


def test_nested_lists_present_replace_and_absent_ones_are_kept(person, client_for, customer_payload):
    client = client_for(person("sales"))
    client.put(url(), customer_payload(), format="json")
    body = customer_payload(contacts=[])
    del body["registrations"]

    response = client.put(url(), body, format="json")

    assert response.status_code == 200
    assert response.json()["contacts"] == []
    assert len(response.json()["registrations"]) == 1


def test_invalid_input_is_a_400_and_creates_nothing(person, client_for, customer_payload):
    client = client_for(person("sales"))
    response = client.put(url(), customer_payload(registrations=[{"country": "DE", "number": "1"}]), format="json")
    assert response.status_code == 400
    assert "registrations.0.number" in response.json()["errors"]
    assert not Customer.objects.exists() and not ExternalId.objects.exists()


def test_invalid_system_is_a_400(person, client_for, customer_payload):
    response = client_for(person("sales")).put(url(system="no spaces!"), customer_payload(), format="json")
    assert response.status_code == 400
    assert "system" in response.json()["errors"]


def test_create_needs_add_permission_and_update_needs_edit_scope(person, client_for, customer_payload):
    owner = person("sales")
    client_for(owner).put(url(), customer_payload(), format="json")

    finance_create = client_for(person("finance")).put(url(external_id="NEW"), customer_payload(), format="json")
    other_rep_update = client_for(person("sales")).put(url(), customer_payload(notes="hijack"), format="json")
    finance_billing = client_for(person("finance")).put(url(), customer_payload(payment_terms_days=14), format="json")

    assert finance_create.status_code == 403
    assert other_rep_update.status_code == 403
    assert finance_billing.status_code == 200, finance_billing.json()
    assert finance_billing.json()["payment_terms_days"] == 14
    assert Customer.objects.count() == 1


def test_a_customer_that_already_has_another_id_of_the_system_conflicts(person, client_for, customer_payload):
    client = client_for(person("sales"))
    client.put(url(external_id="HS-1"), customer_payload(), format="json")
    body = customer_payload(external_ids=[{"system": "hubspot", "external_id": "HS-1"}])

    response = client.put(url(external_id="HS-2"), body, format="json")

    assert response.status_code == 409
    assert Customer.objects.count() == 1
