"""The customer pages through Django's test client: list (queries, filters, sort, pages), create, edit,
status changes and external IDs — every refusal a clear message, never a 500."""

from __future__ import annotations

import uuid

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backbone.models import ExternalId
from customers.models import Address, Contact, Customer, TaxRegistration
from customers.services import customer_create, customer_link_external_id, customer_set_status
from tests.customers.factories import (
    AddressFactory,
    ContactFactory,
    CustomerFactory,
    LegalEntityFactory,
    TaxRegistrationFactory,
)

pytestmark = pytest.mark.django_db

LIST_URL = reverse("customers:customer-list")
CREATE_URL = reverse("customers:customer-create")
HTMX = {"HX-Request": "true"}

BILLING = {"kind": "billing", "line1": "12 Rue de Rivoli", "postal_code": "75004", "city": "Paris", "country": "FR"}
VAT = {"country": "FR", "number": "FR 40 303 265 045"}
CONTACT = {
    "first_name": "Claire",
    "last_name": "Martin",
    "email": "claire@atelier.test",
    "role": "billing",
    "receives_invoices": True,
    "is_active": True,
}


def detail_url(customer) -> str:
    return reverse("customers:customer-detail", args=[customer.public_id])


def edit_url(customer) -> str:
    return reverse("customers:customer-edit", args=[customer.public_id])


def signed_in(client, user):
    client.force_login(user)
    return client


def formset_data(prefix: str, rows, *, initial: int = 0) -> dict[str, str]:
    """What the browser posts for an inline formset: its management form and one set of inputs per row."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            if value is True:
                data[f"{prefix}-{index}-{name}"] = "on"
            elif value is not False:  # an unticked checkbox sends nothing
                data[f"{prefix}-{index}-{name}"] = value
    return data


def create_data(*, addresses=(BILLING,), registrations=(VAT,), contacts=(CONTACT,), **fields) -> dict[str, str]:
    """The new-customer page as a sales rep submits it."""
    data = {
        "legal_name": "Atelier Lumière SAS",
        "display_name": "",
        "kind": "business",
        "status": "prospect",
        "parent": "",
        "notes": "",
        "billing_entity": "",
        "default_currency": "EUR",
        "payment_terms_days": "30",
        "early_discount_percent": "0",
        "early_discount_days": "0",
        "invoice_language": "en",
        "delivery_channel": "email",
        "consolidation": "per_project",
        "einvoice_endpoint": "",
    }
    data.update(fields)
    data |= formset_data("addresses", list(addresses))
    data |= formset_data("registrations", list(registrations))
    data |= formset_data("contacts", list(contacts))
    return data


def resubmit_data(response) -> dict[str, str]:
    """Every input of a rendered customer form with its current value, as the browser would post it back."""
    data: dict[str, str] = {}

    def add(bound):
        value = bound.value()
        if isinstance(bound.field.widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else str(value)

    for bound in response.context["form"]:
        add(bound)
    for formset in response.context["formsets"].values():
        for bound in formset.management_form:
            add(bound)
        for row in formset.forms:
            for bound in row:
                add(bound)
    return data


def through_service(user, legal_name="Atelier Lumière SAS", **kwargs) -> Customer:
    """A customer made the way the pages make it (owner permission included)."""
    return customer_create(
        user=user,
        data={"legal_name": legal_name, "default_currency": "EUR"},
        addresses=[BILLING],
        registrations=kwargs.pop("registrations", []),
        contacts=kwargs.pop("contacts", []),
        **kwargs,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def names(response) -> list[str]:
    return [customer.display_name for customer in response.context["customers"]]


# --- the list: a constant number of queries ----------------------------------------------------------


def _add_customers(count: int, owners, parent=None) -> None:
    for _ in range(count):
        customer = CustomerFactory(owner=owners[_ % len(owners)], parent=parent)
        TaxRegistrationFactory(customer=customer)
        ContactFactory(customer=customer)
        AddressFactory(customer=customer, kind=Address.Kind.SHIPPING, country="GB")


def _queries(client, url, **kwargs) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(captured), response


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["full page", "htmx partial"])
def test_customer_list_queries_do_not_grow_with_the_rows(client, sales, make_user, headers):
    other_rep = make_user("rep-two", "sales", first_name="Rita", last_name="Rep")
    parent = CustomerFactory(legal_name="Group Holding Ltd")
    signed_in(client, sales)
    url = LIST_URL + "?ordering=number"
    _add_customers(4, [sales, other_rep], parent=parent)
    client.get(url, headers=headers)  # warm the per-process caches (content types, sites)

    few, response = _queries(client, url, headers=headers)
    assert len(response.context["customers"]) == 5

    _add_customers(45, [sales, other_rep], parent=parent)
    many, response = _queries(client, url, headers=headers)
    assert len(response.context["customers"]) == 25  # a full page
    assert response.context["page_obj"].paginator.count == 50
    assert many == few, f"{few} queries for 5 customers, {many} for 50"


def test_customer_list_htmx_answers_only_the_results(client, sales):
    CustomerFactory(legal_name="Harbour Freight Ltd")
    signed_in(client, sales)
    full = client.get(LIST_URL)
    partial = client.get(LIST_URL, headers=HTMX)
    assert "<html" in full.content.decode() and "customer-filter" in full.content.decode()
    body = partial.content.decode()
    assert "<html" not in body and 'id="customer-filter"' not in body
    assert "Harbour Freight" in body
    assert "HX-Request" in partial["Vary"]


# --- the list: search, filters, sort, pages ----------------------------------------------------------


@pytest.fixture
def catalogue(make_user, sales):
    """Four customers that differ in status, billing country, owner, VAT number and contact email."""
    rival = make_user("rival", "sales")
    alpha = CustomerFactory(
        legal_name="Alpha Analytics Ltd", status=Customer.Status.ACTIVE, owner=sales, billing_address__country="IE"
    )
    bravo = CustomerFactory(
        legal_name="Bravo Bakery Ltd", status=Customer.Status.PROSPECT, owner=rival, billing_address__country="FR"
    )
    charlie = CustomerFactory(
        legal_name="Charlie Chemicals Ltd", status=Customer.Status.ON_HOLD, owner=sales, billing_address__country="DE"
    )
    delta = CustomerFactory(
        legal_name="Delta Design Ltd", status=Customer.Status.ARCHIVED, owner=None, billing_address__country="DE"
    )
    TaxRegistrationFactory(customer=charlie, country="DE", number="DE136585820")
    ContactFactory(customer=bravo, email="ap@bravo-bakery.test")
    # Charlie also has a *delivery* address in France: the country filter looks at billing addresses only.
    AddressFactory(customer=charlie, kind=Address.Kind.SHIPPING, country="FR")
    return {"alpha": alpha, "bravo": bravo, "charlie": charlie, "delta": delta, "rival": rival}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Alpha Analytics", "Bravo Bakery", "Charlie Chemicals", "Delta Design"]),
        ("status=active", ["Alpha Analytics"]),
        ("status=active&status=on_hold", ["Alpha Analytics", "Charlie Chemicals"]),
        ("country=FR", ["Bravo Bakery"]),
        ("country=DE", ["Charlie Chemicals", "Delta Design"]),
        ("owner=rival", ["Bravo Bakery"]),
        ("owner=sales&status=on_hold", ["Charlie Chemicals"]),
        ("q=bakery", ["Bravo Bakery"]),
        ("q=DE136585820", ["Charlie Chemicals"]),
        ("q=de+136+585+820", ["Charlie Chemicals"]),  # typed with spaces and lower case
        ("q=ap@bravo-bakery", ["Bravo Bakery"]),
        ("q=BRAVO-BAKERY.TEST", ["Bravo Bakery"]),
        ("q=zebra", []),
    ],
)
def test_customer_list_filters(client, sales, catalogue, query, expected):
    response = signed_in(client, sales).get(f"{LIST_URL}?{query}")
    assert response.status_code == 200
    assert sorted(names(response)) == expected
    assert response.context["is_filtered"] is bool(query)


def test_customer_list_search_by_number(client, sales, catalogue):
    number = catalogue["delta"].number
    response = signed_in(client, sales).get(LIST_URL, {"q": number})
    assert names(response) == ["Delta Design"]


def test_customer_list_empty_filter_result_says_so(client, sales, catalogue):
    response = signed_in(client, sales).get(LIST_URL, {"q": "zebra"})
    assert "No customers match these filters" in response.content.decode()


def test_customer_list_invalid_filter_values_do_not_fail(client, sales, catalogue):
    response = signed_in(client, sales).get(LIST_URL, {"country": "XX", "status": "nope", "owner": "nobody"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("name", ["Alpha Analytics", "Bravo Bakery", "Charlie Chemicals", "Delta Design"]),
        ("-name", ["Delta Design", "Charlie Chemicals", "Bravo Bakery", "Alpha Analytics"]),
        ("status", ["Alpha Analytics", "Delta Design", "Charlie Chemicals", "Bravo Bakery"]),
    ],
)
def test_customer_list_sorts(client, sales, catalogue, ordering, expected):
    response = signed_in(client, sales).get(LIST_URL, {"ordering": ordering})
    assert names(response) == expected
    state = "ascending" if not ordering.startswith("-") else "descending"
    assert f'aria-sort="{state}"' in response.content.decode()


def test_customer_list_sorts_by_number(client, sales, catalogue):
    response = signed_in(client, sales).get(LIST_URL, {"ordering": "-number"})
    numbers = [customer.number for customer in response.context["customers"]]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 4


def test_customer_list_pages_keep_filters_and_sort(client, sales):
    for index in range(30):
        CustomerFactory(legal_name=f"Kappa {index:02d} Ltd", status=Customer.Status.ACTIVE)
    CustomerFactory(legal_name="Omega Prospect Ltd", status=Customer.Status.PROSPECT)
    signed_in(client, sales)

    first = client.get(LIST_URL, {"status": "active", "ordering": "-name"})
    assert first.context["page_obj"].paginator.count == 30
    assert names(first)[0] == "Kappa 29" and len(names(first)) == 25
    assert "Page 1 of 2" in first.content.decode()
    assert "status=active" in first.content.decode().split('rel="next"')[0].rsplit("href=", 1)[1]

    second = client.get(LIST_URL, {"status": "active", "ordering": "-name", "page": "2"})
    assert names(second) == ["Kappa 04", "Kappa 03", "Kappa 02", "Kappa 01", "Kappa 00"]
    assert "Omega Prospect" not in names(first) + names(second)

    beyond = client.get(LIST_URL, {"status": "active", "page": "99"})  # out of range: the last page
    assert beyond.status_code == 200 and beyond.context["page_obj"].number == 2
    garbage = client.get(LIST_URL, {"page": "abc"})
    assert garbage.status_code == 200 and garbage.context["page_obj"].number == 1


def test_customer_list_needs_sign_in(client):
    response = client.get(LIST_URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- creating ----------------------------------------------------------------------------------------


def test_create_page_renders_for_sales_and_refuses_auditors(client, sales, auditor):
    response = signed_in(client, sales).get(CREATE_URL)
    assert response.status_code == 200
    assert 'name="addresses-TOTAL_FORMS"' in response.content.decode()
    assert "owner" not in response.context["form"].fields  # a sales rep owns what they create
    assert signed_in(client, auditor).get(CREATE_URL).status_code == 403


def test_create_saves_everything_and_redirects_to_the_detail_page(client, sales):
    response = signed_in(client, sales).post(CREATE_URL, create_data())

    customer = Customer.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(customer)
    assert customer.owner == sales and customer.status == Customer.Status.PROSPECT
    assert customer.addresses.get().country == "FR"
    assert customer.registrations.get().number == "FR40303265045"
    contact = customer.contacts.get()
    assert contact.receives_invoices and contact.role == Contact.Role.BILLING

    page = client.get(response["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert "FR40303265045" in body and "Atelier Lumière SAS" in body
    assert f"Customer {customer.number} Atelier Lumière SAS was created." in body


def test_create_with_invalid_vat_id_answers_400_and_saves_nothing(client, sales):
    data = create_data(registrations=[{"country": "DE", "number": "DE123456789"}])
    response = signed_in(client, sales).post(CREATE_URL, data)

    assert response.status_code == 400
    body = response.content.decode()
    assert "check digit does not match" in body
    assert 'id="id_registrations-0-number_error"' in body  # next to the VAT input
    assert response.context["formsets"]["registrations"].forms[0].errors["number"]
    assert not Customer.objects.exists()
    assert not Address.objects.exists() and not TaxRegistration.objects.exists() and not Contact.objects.exists()
    # What was typed comes back.
    assert 'value="DE123456789"' in body and 'value="Atelier Lumière SAS"' in body


def test_create_with_vat_id_of_another_country_is_refused(client, sales):
    data = create_data(registrations=[{"country": "FR", "number": "DE136585820"}])
    response = signed_in(client, sales).post(CREATE_URL, data)
    assert response.status_code == 400
    assert "not the VAT prefix of the registration country FR" in response.content.decode()
    assert not Customer.objects.exists()


def test_create_without_billing_address_answers_400_with_the_message(client, sales):
    blank_row = dict.fromkeys(("label", "line1", "line2", "postal_code", "city", "region", "country"), "")
    blank_row["kind"] = "billing"  # the untouched extra row, as the page posts it
    response = signed_in(client, sales).post(CREATE_URL, create_data(addresses=[blank_row]))

    assert response.status_code == 400
    assert "A billing address is required" in response.content.decode()
    assert not Customer.objects.exists()


def test_create_with_only_a_delivery_address_answers_400(client, sales):
    delivery = BILLING | {"kind": "shipping"}
    response = signed_in(client, sales).post(CREATE_URL, create_data(addresses=[delivery]))
    assert response.status_code == 400
    assert "A billing address is required" in response.content.decode()
    assert not Customer.objects.exists()


def test_create_with_two_billing_addresses_answers_400(client, sales):
    second = BILLING | {"line1": "1 Place Vendôme"}
    response = signed_in(client, sales).post(CREATE_URL, create_data(addresses=[BILLING, second]))
    assert response.status_code == 400
    assert "Only one billing address is allowed" in response.content.decode()
    assert not Customer.objects.exists()


def test_create_with_invalid_country_answers_400(client, sales):
    response = signed_in(client, sales).post(CREATE_URL, create_data(addresses=[BILLING | {"country": "XX"}]))
    assert response.status_code == 400
    address_form = response.context["formsets"]["addresses"].forms[0]
    assert "country" in address_form.errors
    assert 'id="id_addresses-0-country_error"' in response.content.decode()
    assert not Customer.objects.exists()


def test_create_with_missing_legal_name_and_bad_email_lists_every_error_at_once(client, sales):
    data = create_data(legal_name="", contacts=[CONTACT | {"email": "not-an-email"}])
    response = signed_in(client, sales).post(CREATE_URL, data)
    assert response.status_code == 400
    assert "legal_name" in response.context["form"].errors
    assert "email" in response.context["formsets"]["contacts"].forms[0].errors
    assert "The customer was not saved" in response.content.decode()
    assert not Customer.objects.exists()


def test_create_with_discount_but_no_discount_days_shows_the_service_message(client, sales):
    response = signed_in(client, sales).post(
        CREATE_URL, create_data(early_discount_percent="2", early_discount_days="")
    )
    assert response.status_code == 400
    assert "Say within how many days the early-payment discount applies." in response.content.decode()
    assert response.context["form"].errors["early_discount_days"]
    assert not Customer.objects.exists()


def test_create_with_duplicate_contact_email_points_at_the_second_row(client, sales):
    twin = CONTACT | {"first_name": "Claude", "email": "CLAIRE@atelier.test"}
    response = signed_in(client, sales).post(CREATE_URL, create_data(contacts=[CONTACT, twin]))
    assert response.status_code == 400
    rows = response.context["formsets"]["contacts"].forms
    assert not rows[0].errors and "listed twice" in rows[1].errors["email"][0]


def test_create_with_tampered_management_form_is_a_400_not_a_500(client, sales):
    data = create_data()
    del data["addresses-TOTAL_FORMS"]
    response = signed_in(client, sales).post(CREATE_URL, data)
    assert response.status_code == 400
    assert not Customer.objects.exists()


def test_create_as_billed_by_one_of_our_entities(client, sales):
    entity = LegalEntityFactory(short_name="Studio GmbH")
    response = signed_in(client, sales).post(CREATE_URL, create_data(billing_entity=str(entity.public_id)))
    assert response.status_code == 302
    assert Customer.objects.get().billing_entity == entity


# --- editing -----------------------------------------------------------------------------------------


def test_owner_edits_core_fields_and_the_reason_is_recorded(client, sales):
    customer = through_service(sales, contacts=[CONTACT])
    signed_in(client, sales)
    data = resubmit_data(client.get(edit_url(customer)))
    data |= {"display_name": "Atelier Lumière", "reason": "Shorter name for lists"}

    response = client.post(edit_url(customer), data)

    assert response.status_code == 302 and response["Location"] == detail_url(customer)
    customer.refresh_from_db()
    assert customer.display_name == "Atelier Lumière"
    assert customer.history.first().history_change_reason == "Shorter name for lists"
    assert customer.contacts.count() == 1 and customer.addresses.count() == 1


def test_finance_edit_page_shows_only_billing_fields(client, sales, finance):
    customer = through_service(sales)
    response = signed_in(client, finance).get(edit_url(customer))

    assert response.status_code == 200
    fields = set(response.context["form"].fields)
    assert fields.isdisjoint({"legal_name", "display_name", "kind", "owner", "parent", "notes", "status"})
    assert {"payment_terms_days", "default_currency", "invoice_language", "reason"} <= fields
    body = response.content.decode()
    assert 'name="legal_name"' not in body and 'name="payment_terms_days"' in body
    assert "As finance you change the billing terms" in body


def test_finance_saves_a_billing_field(client, sales, finance):
    customer = through_service(sales)
    signed_in(client, finance)
    data = resubmit_data(client.get(edit_url(customer)))
    data |= {"payment_terms_days": "14", "purchase_order_required": "on", "reason": "New AP policy"}

    response = client.post(edit_url(customer), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert customer.payment_terms_days == 14 and customer.purchase_order_required
    assert customer.legal_name == "Atelier Lumière SAS" and customer.owner == sales
    record = customer.history.first()
    assert record.history_user == finance and record.history_change_reason == "New AP policy"


def test_finance_cannot_smuggle_a_core_field_into_the_billing_form(client, sales, finance):
    customer = through_service(sales)
    signed_in(client, finance)
    data = resubmit_data(client.get(edit_url(customer))) | {"legal_name": "Hijacked SA", "payment_terms_days": "20"}
    response = client.post(edit_url(customer), data)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.legal_name == "Atelier Lumière SAS" and customer.payment_terms_days == 20


def test_edit_with_invalid_vat_keeps_the_old_number(client, sales):
    customer = through_service(sales, registrations=[{"country": "DE", "number": "DE136585820"}])
    signed_in(client, sales)
    data = resubmit_data(client.get(edit_url(customer))) | {"registrations-0-number": "DE123456789"}
    response = client.post(edit_url(customer), data)
    assert response.status_code == 400
    assert "check digit does not match" in response.content.decode()
    assert customer.registrations.get().number == "DE136585820"


def test_sales_rep_cannot_open_another_reps_customer_edit_page(client, make_user, sales):
    other = make_user("rep-two", "sales")
    customer = through_service(other)
    assert signed_in(client, other).get(edit_url(customer)).status_code == 200  # its owner can

    signed_in(client, sales)
    assert client.get(edit_url(customer)).status_code == 404
    before = Customer.objects.values().get(pk=customer.pk)
    data = create_data(legal_name="Taken Over SA") | {"reason": "mine now"}
    assert client.post(edit_url(customer), data).status_code == 404
    assert Customer.objects.values().get(pk=customer.pk) == before
    # Seeing it is fine (sales see every customer), just without the edit buttons.
    detail = client.get(detail_url(customer))
    assert detail.status_code == 200 and edit_url(customer) not in detail.content.decode()


def test_auditor_sees_customer_but_cannot_edit(client, sales, auditor):
    customer = through_service(sales)
    signed_in(client, auditor)
    assert client.get(detail_url(customer)).status_code == 200
    assert client.get(edit_url(customer)).status_code == 403


# --- status changes ----------------------------------------------------------------------------------


def status_url(customer) -> str:
    return reverse("customers:customer-status", args=[customer.public_id])


def test_status_change_moves_the_customer_along(client, sales):
    customer = through_service(sales)
    response = signed_in(client, sales).post(status_url(customer), {"status": "active"})
    assert response.status_code == 302 and response["Location"] == detail_url(customer)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE
    assert any("is now active" in message for message in messages_of(response))


def test_illegal_status_transition_shows_a_clear_message(client, sales):
    customer = through_service(sales)  # a prospect: it cannot be put on hold
    response = signed_in(client, sales).post(status_url(customer), {"status": "on_hold"}, follow=True)
    assert response.status_code == 200
    assert "A customer cannot go from Prospect to On hold." in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PROSPECT


def test_archiving_needs_a_reason(client, sales):
    customer = through_service(sales)
    signed_in(client, sales)
    response = client.post(status_url(customer), {"status": "archived", "reason": "  "}, follow=True)
    assert "Say why the customer is archived." in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PROSPECT

    client.post(status_url(customer), {"status": "archived", "reason": "Went out of business"})
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ARCHIVED
    assert customer.history.first().history_change_reason == "Went out of business"


def test_unknown_status_is_refused_with_a_message(client, sales):
    customer = through_service(sales)
    response = signed_in(client, sales).post(status_url(customer), {"status": "deleted"}, follow=True)
    assert response.status_code == 200 and "Choose a valid status." in response.content.decode()


def test_status_page_answers_post_only(client, sales):
    customer = through_service(sales)
    assert signed_in(client, sales).get(status_url(customer)).status_code == 405


def test_other_rep_cannot_change_the_status(client, make_user, sales):
    customer = through_service(make_user("rep-two", "sales"))
    assert signed_in(client, sales).post(status_url(customer), {"status": "active"}).status_code == 404
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PROSPECT


# --- external IDs ------------------------------------------------------------------------------------


def external_url(customer) -> str:
    return reverse("customers:customer-external-id", args=[customer.public_id])


def test_link_external_id(client, sales):
    customer = through_service(sales)
    response = signed_in(client, sales).post(external_url(customer), {"system": "HubSpot", "external_id": " 4711 "})
    assert response.status_code == 302
    link = ExternalId.objects.get()
    assert (link.system, link.external_id, link.object_id) == ("hubspot", "4711", customer.pk)
    assert "hubspot" in client.get(detail_url(customer)).content.decode()


def test_duplicate_external_id_is_a_clear_error_not_a_500(client, sales):
    taken = through_service(sales, legal_name="First SA")
    customer_link_external_id(user=sales, customer=taken, system="hubspot", external_id="4711")
    customer = through_service(sales, legal_name="Second SA")

    response = signed_in(client, sales).post(external_url(customer), {"system": "hubspot", "external_id": "4711"})

    assert response.status_code == 409  # a conflict, as the API answers it
    assert "already belongs to another customer" in response.content.decode()
    assert response.context["external_id_form"].errors["external_id"]
    assert ExternalId.objects.count() == 1


def test_second_external_id_of_the_same_system_is_refused(client, sales):
    customer = through_service(sales)
    customer_link_external_id(user=sales, customer=customer, system="hubspot", external_id="4711")
    response = signed_in(client, sales).post(external_url(customer), {"system": "hubspot", "external_id": "4712"})
    assert response.status_code == 409
    assert "external IDs never change" in response.content.decode()
    assert ExternalId.objects.get().external_id == "4711"


@pytest.mark.parametrize(
    ("data", "field"),
    [({"system": "", "external_id": "1"}, "system"), ({"system": "hub spot", "external_id": "1"}, "system")],
)
def test_malformed_external_id_is_a_form_error(client, sales, data, field):
    customer = through_service(sales)
    response = signed_in(client, sales).post(external_url(customer), data)
    assert response.status_code == 400
    assert response.context["external_id_form"].errors[field]
    assert not ExternalId.objects.exists()


# --- addresses that do not exist ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/customers/not-a-uuid/",
        "/customers/not-a-uuid/edit/",
        "/customers/12345/",
        "/customers/3F2504E0-4F89-11D3-9A0C-0305E82C3301/",
        f"/customers/{uuid.uuid4()}/",
        f"/customers/{uuid.uuid4()}/edit/",
    ],
)
def test_malformed_or_unknown_customer_address_is_404(client, sales, path):
    assert signed_in(client, sales).get(path).status_code == 404


@pytest.mark.parametrize("suffix", ["status/", "external-ids/"])
def test_post_to_unknown_customer_is_404(client, sales, suffix):
    response = signed_in(client, sales).post(f"/customers/{uuid.uuid4()}/{suffix}", {"status": "active"})
    assert response.status_code == 404


# --- the detail page ---------------------------------------------------------------------------------


def test_customer_detail_queries_do_not_grow_with_contacts_and_history(client, sales):
    customer = through_service(sales, contacts=[CONTACT])
    signed_in(client, sales)
    client.get(detail_url(customer))
    few, _ = _queries(client, detail_url(customer))

    for index in range(12):
        ContactFactory(customer=customer)
        AddressFactory(customer=customer, kind=Address.Kind.OTHER, label=f"Site {index}")
        client.post(status_url(customer), {"status": "on_hold" if index % 2 else "active"})
    CustomerFactory(parent=customer)
    many, response = _queries(client, detail_url(customer))
    assert len(response.context["contacts"]) == 13
    assert many == few, f"{few} queries with 1 contact, {many} with 13"


def test_finance_puts_an_active_customer_on_hold_and_releases_it(client, sales, finance):
    customer = through_service(sales)
    customer_set_status(user=sales, customer=customer, status="active")
    signed_in(client, finance)
    client.post(status_url(customer), {"status": "on_hold", "reason": "Invoices 90 days overdue"})
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ON_HOLD
    client.post(status_url(customer), {"status": "active"})
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE


def test_finance_cannot_archive_and_is_told_why(client, sales, finance):
    customer = through_service(sales)
    response = signed_in(client, finance).post(
        status_url(customer), {"status": "archived", "reason": "Never bought"}, follow=True
    )
    assert response.status_code == 200
    assert "Finance can put an active customer on hold and release the hold" in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PROSPECT


def test_finance_sees_only_the_status_buttons_it_may_use(client, sales, finance):
    customer = through_service(sales)  # a prospect: finance may neither activate nor archive it
    response = signed_in(client, finance).get(detail_url(customer))
    assert response.context["transitions"] == []
    assert "Archive customer" not in response.content.decode()


def test_swapping_two_contacts_emails_is_refused_with_a_message_not_a_500(client, sales):
    second = CONTACT | {"first_name": "Bruno", "last_name": "Blanc", "email": "bruno@atelier.test"}
    customer = through_service(sales, contacts=[CONTACT, second])
    signed_in(client, sales)
    data = resubmit_data(client.get(edit_url(customer)))
    data["contacts-0-email"], data["contacts-1-email"] = data["contacts-1-email"], data["contacts-0-email"]

    response = client.post(edit_url(customer), data)

    assert response.status_code in (400, 409)
    assert "Save the change in two steps" in response.content.decode()
    assert sorted(customer.contacts.values_list("last_name", "email")) == [
        ("Blanc", "bruno@atelier.test"),
        ("Martin", "claire@atelier.test"),
    ]


def test_address_of_another_customer_cannot_be_edited_through_this_one(client, sales):
    other = through_service(sales, legal_name="Other SA")
    customer = through_service(sales)
    signed_in(client, sales)
    data = resubmit_data(client.get(edit_url(customer)))
    data |= {"addresses-0-public_id": str(other.addresses.get().public_id), "addresses-0-city": "Lyon"}

    response = client.post(edit_url(customer), data)

    assert response.status_code == 400
    assert "does not belong to the record being edited" in response.content.decode()
    assert other.addresses.get().city == "Paris" and customer.addresses.get().city == "Paris"
