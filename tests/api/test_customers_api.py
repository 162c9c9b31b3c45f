"""The customers endpoint: nested writes, error bodies, status changes, listing and sign-in."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backbone.models import ExternalId
from customers.models import Address, Customer

pytestmark = pytest.mark.django_db

LIST = "/api/v1/customers/"


def detail(customer_or_id) -> str:
    public_id = getattr(customer_or_id, "public_id", customer_or_id)
    return f"/api/v1/customers/{public_id}/"


def test_create_customer_with_nested_rows_returns_the_full_representation(person, client_for, customer_payload):
    sales = person("sales")
    payload = customer_payload(external_ids=[{"system": "hubspot", "external_id": "HS-1"}])

    response = client_for(sales).post(LIST, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    customer = Customer.objects.get()
    assert body["id"] == str(customer.public_id)
    assert body["number"] == customer.number and body["number"].startswith("CUST-")
    assert body["status"] == "prospect"
    assert body["owner"] == sales.username
    assert body["parent"] is None and body["billing_entity"] is None
    assert body["payment_terms_days"] == 30
    assert body["early_discount_percent"] == "0.00"
    assert [a["id"] for a in body["addresses"]] == [str(customer.addresses.get().public_id)]
    assert body["addresses"][0]["country"] == "DE"
    assert body["registrations"][0]["number"] == "DE123456788"
    assert body["registrations"][0]["validated_at"]
    assert body["contacts"][0]["email"] == "ida.berg@nordlicht.example"
    assert body["external_ids"] == [{"system": "hubspot", "external_id": "HS-1"}]
    assert "reason" not in body
    assert body["created_at"] and body["updated_at"]
    assert "pk" not in body and str(customer.pk) not in {str(v) for v in body.values()}


def test_history_records_the_api_user(person, client_for, customer_payload):
    sales = person("sales")
    response = client_for(sales).post(LIST, customer_payload(reason="Signed at the fair"), format="json")
    assert response.status_code == 201
    record = Customer.objects.get().history.first()
    assert record.history_user == sales
    assert record.history_change_reason == "Signed at the fair"


def test_token_authentication_works_and_records_the_user(person, customer_payload):
    sales = person("sales")
    token = Token.objects.create(user=sales)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    created = client.post(LIST, customer_payload(), format="json")
    listed = client.get(LIST)

    assert created.status_code == 201, created.json()
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert Customer.objects.get().history.first().history_user == sales


def test_wrong_token_and_anonymous_requests_get_a_json_refusal(person):
    anonymous = APIClient().get(LIST)
    wrong = APIClient(HTTP_AUTHORIZATION="Token not-a-token").get(LIST)

    # 403 rather than 401 because session authentication comes first in REST_FRAMEWORK (no WWW-Authenticate).
    assert anonymous.status_code in (401, 403)
    assert anonymous.json()["code"] == "not_authenticated"
    assert wrong.status_code in (401, 403)
    assert wrong.json() == {"message": "Invalid token.", "code": "authentication_failed", "errors": {}}


def test_invalid_vat_number_is_a_400_under_the_registration_key(person, client_for, customer_payload):
    payload = customer_payload(registrations=[{"country": "DE", "number": "DE123456789"}])

    response = client_for(person("sales")).post(LIST, payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "check digit" in body["errors"]["registrations.0.number"][0]
    assert Customer.objects.count() == 0


def test_unknown_country_is_a_400_under_the_address_key(person, client_for, customer_payload):
    address = {"kind": "billing", "line1": "1 Main St", "city": "Nowhere", "country": "XX"}

    response = client_for(person("sales")).post(LIST, customer_payload(addresses=[address]), format="json")

    assert response.status_code == 400
    assert "ISO 3166" in response.json()["errors"]["addresses.0.country"][0]


def test_missing_billing_address_is_a_400(person, client_for, customer_payload):
    shipping = {"kind": "shipping", "line1": "1 Dock Rd", "city": "Hamburg", "country": "DE"}

    without = client_for(person("sales")).post(LIST, customer_payload(addresses=[shipping]), format="json")
    absent = client_for(person("sales")).post(
        LIST, {k: v for k, v in customer_payload().items() if k != "addresses"}, format="json"
    )

    for response in (without, absent):
        assert response.status_code == 400
        assert "billing address is required" in response.json()["errors"]["addresses"][0]


def test_serializer_errors_use_the_same_flat_keys(person, client_for, customer_payload):
    payload = customer_payload(
        kind="martian",
        contacts=[{"last_name": "Berg", "email": "ida@nordlicht.example"}, {"last_name": "X", "email": "nope"}],
    )

    response = client_for(person("sales")).post(LIST, payload, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"kind", "contacts.1.email"}
    assert response.json()["message"].startswith("kind:")


def test_malformed_and_unknown_ids_answer_404_json(person, client_for):
    client = client_for(person("sales"))
    for url in ("/api/v1/customers/not-a-uuid/", detail(uuid.uuid4())):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert client.patch(url, {"notes": "x"}, format="json").status_code == 404


def test_update_replaces_nested_rows_present_and_keeps_absent_ones(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(
        sales,
        addresses=[
            {"kind": "billing", "line1": "Old 1", "city": "Berlin", "country": "DE"},
            {"kind": "shipping", "line1": "Dock 2", "city": "Hamburg", "country": "DE"},
        ],
        contacts=[{"last_name": "Berg", "email": "ida@nordlicht.example"}],
    )
    billing = customer.addresses.get(kind="billing")
    client = client_for(sales)

    response = client.patch(
        detail(customer),
        {
            "legal_name": "Nordlicht Analytics SE",
            "addresses": [
                {"id": str(billing.public_id), "kind": "billing", "line1": "New 1", "city": "Berlin", "country": "de"},
                {"kind": "other", "line1": "Lab 3", "city": "Potsdam", "country": "DE"},
            ],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["legal_name"] == "Nordlicht Analytics SE"
    by_kind = {a["kind"]: a for a in body["addresses"]}
    assert set(by_kind) == {"billing", "other"}  # the shipping address was left out, so deleted
    assert by_kind["billing"]["id"] == str(billing.public_id)
    assert by_kind["billing"]["line1"] == "New 1"
    assert [c["email"] for c in body["contacts"]] == ["ida@nordlicht.example"]  # absent key: untouched
    assert customer.addresses.count() == 2


def test_update_refuses_an_id_of_another_customers_row(person, client_for, make_customer):
    sales = person("sales")
    mine, other = make_customer(sales), make_customer(sales)
    foreign = other.addresses.get()
    row = {"id": str(foreign.public_id), "kind": "billing", "line1": "X", "city": "Y", "country": "DE"}

    response = client_for(sales).patch(detail(mine), {"addresses": [row]}, format="json")

    assert response.status_code == 400
    assert "addresses.0.public_id" in response.json()["errors"]
    assert foreign.customer_id == other.pk and Address.objects.filter(pk=foreign.pk).exists()


def test_status_changes_through_the_status_action_only(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales)
    client = client_for(sales)

    direct = client.patch(detail(customer), {"status": "active"}, format="json")
    activated = client.post(detail(customer) + "status/", {"status": "active"}, format="json")
    no_reason = client.post(detail(customer) + "status/", {"status": "archived"}, format="json")
    archived = client.post(detail(customer) + "status/", {"status": "archived", "reason": "Closed"}, format="json")
    illegal = client.post(detail(customer) + "status/", {"status": "on_hold"}, format="json")

    assert direct.status_code == 400 and "status" in direct.json()["errors"]
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert illegal.status_code == 409
    assert illegal.json()["code"] == "transition_not_allowed"
    assert "cannot go from Archived to On hold" in illegal.json()["message"]


def test_customers_are_not_deleted_through_the_api(person, client_for, make_customer):
    admin = person("admin")
    customer = make_customer(admin)
    assert client_for(admin).delete(detail(customer)).status_code == 405
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_duplicate_external_id_is_a_409_and_saves_nothing(person, client_for, customer_payload, make_customer):
    sales = person("sales")
    make_customer(sales, external_ids=[{"system": "hubspot", "external_id": "HS-7"}])

    response = client_for(sales).post(
        LIST, customer_payload(external_ids=[{"system": "hubspot", "external_id": "HS-7"}]), format="json"
    )

    assert response.status_code == 409
    assert response.json()["errors"]["external_id"]
    assert Customer.objects.count() == 1


def test_an_external_id_is_added_on_update_but_never_changed(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales)
    client = client_for(sales)

    added = client.patch(detail(customer), {"external_ids": [{"system": "xero", "external_id": "X-1"}]}, format="json")
    changed = client.patch(
        detail(customer), {"external_ids": [{"system": "xero", "external_id": "X-2"}]}, format="json"
    )

    assert added.status_code == 200 and added.json()["external_ids"] == [{"system": "xero", "external_id": "X-1"}]
    assert changed.status_code == 409
    assert list(ExternalId.objects.values_list("external_id", flat=True)) == ["X-1"]


def test_list_filters_by_search_status_and_country(person, client_for, make_customer):
    sales = person("sales")
    make_customer(sales, legal_name="Alpha Robotics GmbH")
    make_customer(
        sales,
        legal_name="Beta Foods SARL",
        addresses=[{"kind": "billing", "line1": "1 Rue X", "city": "Paris", "country": "FR"}],
    )
    client = client_for(sales)

    def names(**params):
        response = client.get(LIST, params)
        assert response.status_code == 200, response.json()
        return [row["legal_name"] for row in response.json()["results"]]

    assert names(q="robot") == ["Alpha Robotics GmbH"]
    assert names(country="FR") == ["Beta Foods SARL"]
    assert names(status="active") == []
    assert names(ordering="-name") == ["Beta Foods SARL", "Alpha Robotics GmbH"]
    assert names(owner=sales.username) == ["Alpha Robotics GmbH", "Beta Foods SARL"]


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, {"page_size": 100})
    assert response.status_code == 200
    return len(queries)


def test_list_runs_a_constant_number_of_queries(person, client_for, make_customer):
    sales = person("sales")
    parent = make_customer(sales, legal_name="Group Holding AG")
    client = client_for(sales)

    def add(count: int, start: int) -> None:
        for n in range(start, start + count):
            make_customer(
                sales,
                legal_name=f"Customer {n} GmbH",
                parent=parent,
                registrations=[{"country": "DE", "number": "DE123456788"}],
                contacts=[{"last_name": f"P{n}", "email": f"p{n}@example.test"}],
                external_ids=[{"system": "hubspot", "external_id": f"HS-{n}"}],
            )

    add(5, 0)
    few = _list_queries(client)
    add(45, 5)
    many = _list_queries(client)

    assert client.get(LIST, {"page_size": 100}).json()["count"] == 51
    assert few == many
    assert many <= 12


def test_retrieve_shows_the_external_ids(person, client_for, make_customer):
    sales = person("sales")
    customer = make_customer(sales, external_ids=[{"system": "crm", "external_id": "C-9"}])
    body = client_for(person("executive")).get(detail(customer)).json()
    assert body["external_ids"] == [{"system": "crm", "external_id": "C-9"}]


def test_schema_and_docs_are_served_to_signed_in_users_only(client, person):
    assert client.get("/api/schema/").status_code == 401
    client.force_login(person("consultant"))
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")
    assert schema.status_code == 200
    assert b"/api/v1/customers/by-external-id/{system}/{external_id}/" in schema.content
    assert docs.status_code == 200
