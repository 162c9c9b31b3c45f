"""The contacts endpoint: scoped to visible customers, written by whoever may edit the customer."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Contact

pytestmark = pytest.mark.django_db

LIST = "/api/v1/contacts/"


def contact_body(customer, **overrides) -> dict:
    return {
        "customer": str(customer.public_id),
        "first_name": "Ida",
        "last_name": "Berg",
        "email": "ida@nordlicht.example",
        **overrides,
    }


def test_owner_creates_updates_and_deletes_a_contact(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales)
    client = client_for(sales)

    created = client.post(LIST, contact_body(customer, email="Ida@Nordlicht.Example"), format="json")
    assert created.status_code == 201, created.json()
    url = f"{LIST}{created.json()['id']}/"
    patched = client.patch(url, {"phone": "+49 30 1234", "role": "billing"}, format="json")
    deleted = client.delete(url)

    assert created.json()["customer"] == str(customer.public_id)
    assert created.json()["email"] == "ida@nordlicht.example"
    assert patched.status_code == 200 and patched.json()["phone"] == "+49 30 1234"
    assert patched.json()["role"] == "billing" and patched.json()["last_name"] == "Berg"
    assert deleted.status_code == 204
    assert not Contact.objects.exists()


def test_customer_is_required_on_create_and_fixed_afterwards(person, client_for, make_customer):
    sales = person("sales")
    customer, other = make_customer(sales), make_customer(sales)
    client = client_for(sales)

    missing = client.post(LIST, {"last_name": "Berg", "email": "ida@nordlicht.example"}, format="json")
    unknown = client.post(LIST, {**contact_body(customer), "customer": str(uuid.uuid4())}, format="json")
    malformed = client.post(LIST, {**contact_body(customer), "customer": "nope"}, format="json")
    contact = client.post(LIST, contact_body(customer), format="json").json()
    moved = client.patch(f"{LIST}{contact['id']}/", {"customer": str(other.public_id)}, format="json")

    assert missing.status_code == 400 and "customer" in missing.json()["errors"]
    assert unknown.status_code == 400 and "customer" in unknown.json()["errors"]
    assert malformed.status_code == 400 and "customer" in malformed.json()["errors"]
    assert moved.status_code == 400 and "customer" in moved.json()["errors"]


def test_duplicate_email_and_bad_email_are_400_per_field(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales, contacts=[{"last_name": "Berg", "email": "ida@nordlicht.example"}])
    client = client_for(sales)

    duplicate = client.post(LIST, contact_body(customer), format="json")
    bad = client.post(LIST, contact_body(customer, email="not-an-email"), format="json")

    assert duplicate.status_code == 400
    assert "already a contact" in duplicate.json()["errors"]["email"][0]
    assert bad.status_code == 400 and "email" in bad.json()["errors"]


def test_another_rep_cannot_add_contacts_to_an_account_they_do_not_own(person, client_for, make_customer):
    customer = make_customer(person("sales"))
    response = client_for(person("sales")).post(LIST, contact_body(customer), format="json")
    assert response.status_code == 403


def test_finance_may_maintain_billing_contacts(person, client_for, make_customer):
    customer = make_customer(person("sales"))
    response = client_for(person("finance")).post(LIST, contact_body(customer, role="billing"), format="json")
    assert response.status_code == 201


def test_contacts_outside_scope_are_404_and_auditors_are_read_only(person, client_for, make_customer):
    customer = make_customer(person("sales"), contacts=[{"last_name": "Berg", "email": "ida@nordlicht.example"}])
    contact = customer.contacts.get()
    url = f"{LIST}{contact.public_id}/"

    assert client_for(person("project_manager")).get(url).status_code == 404
    assert client_for(person("consultant")).get(url).status_code == 403
    auditor = client_for(person("auditor"))
    assert auditor.get(url).status_code == 200
    assert auditor.delete(url).status_code == 403
    assert client_for(person("sales")).get(f"{LIST}not-a-uuid/").status_code == 404


def test_contact_list_filters_by_customer_with_constant_queries(person, client_for, make_customer):
    sales = person("sales")
    client = client_for(sales)
    first = make_customer(sales, contacts=[{"last_name": "Berg", "email": "ida@one.example"}])

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST, {"page_size": 100}).status_code == 200
        return len(queries)

    few = count_queries()
    for n in range(20):
        make_customer(sales, contacts=[{"last_name": f"P{n}", "email": f"p{n}@example.test"}])
    many = count_queries()

    assert few == many
    rows = client.get(LIST, {"customer": str(first.public_id)}).json()["results"]
    assert [row["email"] for row in rows] == ["ida@one.example"]
    assert client.get(LIST, {"q": "p1"}).json()["count"] == 11  # p1, p10 to p19
