"""Who may do what on the customers endpoint (ROLES.md): model permissions, edit scope, read-only auditors."""

from __future__ import annotations

import pytest

from customers.models import Customer

pytestmark = pytest.mark.django_db

LIST = "/api/v1/customers/"


def detail(customer) -> str:
    return f"/api/v1/customers/{customer.public_id}/"


def test_sales_creates_and_owns_the_account(person, client_for, customer_payload):
    sales = person("sales")
    response = client_for(sales).post(LIST, customer_payload(), format="json")
    assert response.status_code == 201
    assert Customer.objects.get().owner == sales


@pytest.mark.parametrize("role", ["consultant", "project_manager", "executive", "finance"])
def test_roles_without_add_permission_cannot_create(role, person, client_for, customer_payload):
    response = client_for(person(role)).post(LIST, customer_payload(), format="json")
    assert response.status_code == 403
    assert response.json()["message"]
    assert Customer.objects.count() == 0


def test_consultant_cannot_even_list_customers(person, client_for, make_customer):
    make_customer(person("sales"))
    assert client_for(person("consultant")).get(LIST).status_code == 403


def test_auditor_reads_everything_but_every_write_is_403(person, client_for, customer_payload, make_customer):
    customer = make_customer(person("sales"))
    auditor = person("auditor")
    client = client_for(auditor)

    assert client.get(LIST).json()["count"] == 1
    assert client.get(detail(customer)).status_code == 200
    assert client.post(LIST, customer_payload(), format="json").status_code == 403
    assert client.patch(detail(customer), {"notes": "x"}, format="json").status_code == 403
    assert client.post(detail(customer) + "status/", {"status": "active"}, format="json").status_code == 403
    assert client.put("/api/v1/customers/by-external-id/crm/1/", customer_payload(), format="json").status_code == 403
    assert Customer.objects.count() == 1


def test_auditor_who_also_holds_sales_stays_read_only(person, client_for, customer_payload):
    response = client_for(person("sales", "auditor")).post(LIST, customer_payload(), format="json")
    assert response.status_code == 403


def test_finance_changes_billing_fields_but_not_core_fields(person, client_for, make_customer):
    customer = make_customer(person("sales"), legal_name="Nordlicht GmbH")
    client = client_for(person("finance"))

    billing = client.patch(detail(customer), {"payment_terms_days": 45, "delivery_channel": "portal"}, format="json")
    core = client.patch(detail(customer), {"legal_name": "Renamed GmbH"}, format="json")

    assert billing.status_code == 200, billing.json()
    assert billing.json()["payment_terms_days"] == 45
    assert core.status_code == 403
    assert "billing fields" in core.json()["message"]
    assert "legal_name" in core.json()["errors"]
    customer.refresh_from_db()
    assert (customer.legal_name, customer.payment_terms_days) == ("Nordlicht GmbH", 45)


def test_finance_full_put_with_unchanged_core_fields_is_accepted(person, client_for, make_customer):
    customer = make_customer(person("sales"), legal_name="Nordlicht GmbH")
    client = client_for(person("finance"))
    body = client.get(detail(customer)).json()
    body["payment_terms_days"] = 60

    response = client.put(detail(customer), body, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["payment_terms_days"] == 60


def test_sales_cannot_edit_another_reps_account(person, client_for, make_customer):
    """Every sales rep sees every customer, so the account is not hidden (no 404): the edit is refused."""
    customer = make_customer(person("sales"))
    other_rep = client_for(person("sales"))

    assert other_rep.get(detail(customer)).status_code == 200
    response = other_rep.patch(detail(customer), {"notes": "mine now"}, format="json")

    assert response.status_code == 403
    assert response.json()["message"] == "You cannot edit this customer."
    assert other_rep.post(detail(customer) + "status/", {"status": "active"}, format="json").status_code == 403


def test_project_manager_sees_only_customers_of_their_projects(person, client_for, make_customer):
    from guardian.shortcuts import assign_perm

    sales = person("sales")
    mine, other = make_customer(sales), make_customer(sales)
    pm = person("project_manager")
    assign_perm("customers.view_customer", pm, mine)
    client = client_for(pm)

    assert [row["id"] for row in client.get(LIST).json()["results"]] == [str(mine.public_id)]
    assert client.get(detail(other)).status_code == 404
    assert client.patch(detail(mine), {"notes": "x"}, format="json").status_code == 403


def test_admin_edits_any_account(person, client_for, make_customer):
    customer = make_customer(person("sales"))
    response = client_for(person("admin")).patch(detail(customer), {"legal_name": "Renamed AG"}, format="json")
    assert response.status_code == 200
    assert response.json()["legal_name"] == "Renamed AG"
