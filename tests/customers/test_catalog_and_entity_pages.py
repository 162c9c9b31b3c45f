"""The catalog and legal entity pages through Django's test client: constant queries, create and edit,
and refusals shown next to the input at fault."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.models import BankAccount, LegalEntity, LegalEntityRegistration, Product
from tests.customers.factories import BankAccountFactory, LegalEntityFactory, ProductFactory

pytestmark = pytest.mark.django_db

PRODUCTS_URL = reverse("customers:product-list")
PRODUCT_CREATE_URL = reverse("customers:product-create")
ENTITIES_URL = reverse("customers:legal-entity-list")
ENTITY_CREATE_URL = reverse("customers:legal-entity-create")
HTMX = {"HX-Request": "true"}


def signed_in(client, user):
    client.force_login(user)
    return client


def _queries(client, url, **kwargs) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(captured), response


def product_data(**overrides) -> dict[str, str]:
    data = {
        "code": "CONS-SR",
        "name": "Senior consulting",
        "description": "Senior consultant, per hour.",
        "kind": "service",
        "unit": "HUR",
        "default_price_amount": "150.00",
        "currency": "EUR",
        "pricing_rule": "fixed",
        "revenue_account": "8400",
        "default_tax_category": "S",
        "revenue_recognition": "on_issue",
        "is_active": "on",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def formset_data(prefix: str, rows) -> dict[str, str]:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            if value is True:
                data[f"{prefix}-{index}-{name}"] = "on"
            elif value is not False:
                data[f"{prefix}-{index}-{name}"] = value
    return data


ACCOUNT = {
    "bank_name": "Commerzbank",
    "account_holder": "Studio Nord GmbH",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
    "currency": "EUR",
    "is_default": True,
}
REGISTRATION = {"kind": "vat", "country": "DE", "number": "DE 136 585 820", "is_oss_registered": False}


def entity_data(*, registrations=(REGISTRATION,), bank_accounts=(ACCOUNT,), **overrides) -> dict[str, str]:
    data = {
        "legal_name": "Studio Nord GmbH",
        "short_name": "Studio Nord",
        "line1": "Torstraße 1",
        "line2": "",
        "postal_code": "10119",
        "city": "Berlin",
        "region": "",
        "country": "DE",
        "default_currency": "EUR",
        "email": "billing@studio-nord.test",
        "website": "",
        "company_register": "Amtsgericht Berlin HRB 12345",
        "brand_colour": "#1F6FEB",
        "invoice_prefix": "SN",
        "invoice_number_padding": "6",
        "invoice_numbers_restart_yearly": "on",
        "is_active": "on",
    }
    data.update(overrides)
    data |= formset_data("registrations", list(registrations))
    data |= formset_data("bank_accounts", list(bank_accounts))
    return data


def resubmit_data(response) -> dict[str, str]:
    """Every input of a rendered form (and its formsets) with its current value, as a browser posts it."""
    data: dict[str, str] = {}

    def add(bound):
        if isinstance(bound.field, forms.FileField):
            return
        value = bound.value()
        if isinstance(bound.field.widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else str(value)

    for bound in response.context["form"]:
        add(bound)
    for formset in (response.context.get("formsets") or {}).values():
        for bound in formset.management_form:
            add(bound)
        for row in formset.forms:
            for bound in row:
                add(bound)
    return data


# --- the catalog -------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["full page", "htmx partial"])
def test_product_list_queries_do_not_grow_with_the_rows(client, finance, headers):
    signed_in(client, finance)
    ProductFactory.create_batch(5)
    client.get(PRODUCTS_URL, headers=headers)
    few, response = _queries(client, PRODUCTS_URL, headers=headers)
    assert len(response.context["products"]) == 5

    ProductFactory.create_batch(45, currency="USD", is_active=False)
    many, response = _queries(client, PRODUCTS_URL, headers=headers)
    assert len(response.context["products"]) == 25 and response.context["page_obj"].paginator.count == 50
    assert many == few, f"{few} queries for 5 products, {many} for 50"


def test_product_list_htmx_answers_only_the_results(client, finance):
    ProductFactory(name="Workshop day")
    response = signed_in(client, finance).get(PRODUCTS_URL, headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body and "Workshop day" in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["CONS-JR", "CONS-SR", "TRAVEL"]),
        ({"q": "senior"}, ["CONS-SR"]),
        ({"q": "cons"}, ["CONS-JR", "CONS-SR"]),
        ({"kind": "expense"}, ["TRAVEL"]),
        ({"is_active": "false"}, ["CONS-JR"]),
        ({"is_active": "true", "q": "cons"}, ["CONS-SR"]),
        ({"ordering": "-price"}, ["CONS-SR", "CONS-JR", "TRAVEL"]),
    ],
)
def test_product_list_filters_and_sorts(client, sales, query, expected):
    ProductFactory(code="CONS-SR", name="Senior consulting", default_price_amount=Decimal("150"))
    ProductFactory(code="CONS-JR", name="Junior consulting", default_price_amount=Decimal("90"), is_active=False)
    ProductFactory(code="TRAVEL", name="Travel", kind=Product.Kind.EXPENSE, default_price_amount=Decimal("0"))
    response = signed_in(client, sales).get(PRODUCTS_URL, query)
    assert [product.code for product in response.context["products"]] == expected


def test_finance_creates_a_product(client, finance):
    response = signed_in(client, finance).post(PRODUCT_CREATE_URL, product_data(code="cons-sr"))

    product = Product.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:product-detail", args=[product.public_id])
    assert product.code == "CONS-SR" and product.default_price_amount == Decimal("150.00")
    assert product.history.get().history_user == finance
    assert "CONS-SR was added to the catalog." in client.get(response["Location"]).content.decode()


def test_duplicate_product_code_is_a_message_next_to_the_code(client, finance):
    ProductFactory(code="CONS-SR")
    response = signed_in(client, finance).post(PRODUCT_CREATE_URL, product_data(code="cons-sr", name="Another"))

    assert response.status_code == 400
    assert "The code CONS-SR is already used by another product." in response.content.decode()
    assert response.context["form"].errors["code"]
    assert 'id="id_code_error"' in response.content.decode()
    assert Product.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "cons sr!"}, "code"),
        ({"default_price_amount": "-1"}, "default_price_amount"),
        ({"revenue_account": "8"}, "revenue_account"),
        ({"pricing_rule": "rate_card", "kind": "goods"}, "pricing_rule"),
        ({"name": ""}, "name"),
        ({"unit": "XXX"}, "unit"),
    ],
)
def test_invalid_product_is_refused_next_to_the_field(client, finance, overrides, field):
    response = signed_in(client, finance).post(PRODUCT_CREATE_URL, product_data(**overrides))
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not Product.objects.exists()


def test_finance_edits_a_product_with_a_reason(client, finance):
    product = ProductFactory(code="CONS-SR", name="Senior consulting", default_price_amount=Decimal("150"))
    url = reverse("customers:product-edit", args=[product.public_id])
    signed_in(client, finance)
    data = resubmit_data(client.get(url)) | {"default_price_amount": "165.50", "reason": "2027 price list"}
    del data["is_active"]  # untick "Active"

    response = client.post(url, data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.default_price_amount == Decimal("165.50") and product.is_active is False
    assert product.code == "CONS-SR" and product.name == "Senior consulting"
    assert product.history.first().history_change_reason == "2027 price list"


def test_editing_a_product_to_a_taken_code_is_refused(client, finance):
    ProductFactory(code="TAKEN")
    product = ProductFactory(code="FREE")
    url = reverse("customers:product-edit", args=[product.public_id])
    signed_in(client, finance)
    response = client.post(url, resubmit_data(client.get(url)) | {"code": "taken"})
    assert response.status_code == 400 and "already used by another product" in response.content.decode()
    product.refresh_from_db()
    assert product.code == "FREE"


def test_sales_sees_the_catalog_but_cannot_change_it(client, sales):
    product = ProductFactory()
    signed_in(client, sales)
    assert client.get(PRODUCTS_URL).status_code == 200
    assert client.get(reverse("customers:product-detail", args=[product.public_id])).status_code == 200
    assert client.get(PRODUCT_CREATE_URL).status_code == 403
    assert client.post(PRODUCT_CREATE_URL, product_data()).status_code == 403
    assert client.get(reverse("customers:product-edit", args=[product.public_id])).status_code == 403
    assert Product.objects.count() == 1


@pytest.mark.parametrize("path", ["/customers/catalog/not-a-uuid/", f"/customers/catalog/{uuid.uuid4()}/edit/"])
def test_unknown_product_is_404(client, finance, path):
    assert signed_in(client, finance).get(path).status_code == 404


# --- our legal entities ------------------------------------------------------------------------------


def test_legal_entity_list_queries_do_not_grow_with_the_rows(client, finance):
    signed_in(client, finance)

    def add(count):
        for _ in range(count):
            entity = LegalEntityFactory()
            LegalEntityRegistration.objects.create(legal_entity=entity, country="DE", number="DE136585820")
            BankAccountFactory(legal_entity=entity)

    add(5)
    client.get(ENTITIES_URL)
    few, response = _queries(client, ENTITIES_URL)
    assert len(response.context["entities"]) == 5
    add(45)
    many, response = _queries(client, ENTITIES_URL)
    assert len(response.context["entities"]) == 25
    assert many == few, f"{few} queries for 5 entities, {many} for 50"


def test_finance_creates_a_legal_entity(client, finance):
    response = signed_in(client, finance).post(ENTITY_CREATE_URL, entity_data())

    entity = LegalEntity.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:legal-entity-detail", args=[entity.public_id])
    assert entity.registrations.get().number == "DE136585820"
    account = entity.bank_accounts.get()
    assert account.iban == "DE89370400440532013000" and account.is_default
    body = client.get(response["Location"]).content.decode()
    assert "Studio Nord was created." in body and "DE89 3704 0044 0532 0130 00" in body


def test_legal_entity_with_invalid_iban_is_refused_next_to_the_iban(client, finance):
    data = entity_data(bank_accounts=[ACCOUNT | {"iban": "DE89 3704 0044 0532 0130 01"}])
    response = signed_in(client, finance).post(ENTITY_CREATE_URL, data)

    assert response.status_code == 400
    body = response.content.decode()
    assert "is not a valid IBAN: its check digits do not match" in body
    account_form = response.context["formsets"]["bank_accounts"].forms[0]
    assert "check digits" in account_form.errors["iban"][0]
    assert 'id="id_bank_accounts-0-iban_error"' in body
    assert 'aria-describedby="id_bank_accounts-0-iban_error"' in body
    assert not LegalEntity.objects.exists()
    assert not BankAccount.objects.exists() and not LegalEntityRegistration.objects.exists()


def test_legal_entity_with_invalid_bic_and_vat_lists_both(client, finance):
    data = entity_data(
        registrations=[REGISTRATION | {"number": "DE123456789"}], bank_accounts=[ACCOUNT | {"bic": "NOTABIC"}]
    )
    response = signed_in(client, finance).post(ENTITY_CREATE_URL, data)
    assert response.status_code == 400
    assert response.context["formsets"]["bank_accounts"].forms[0].errors["bic"]
    assert response.context["formsets"]["registrations"].forms[0].errors["number"]
    assert not LegalEntity.objects.exists()


def test_legal_entity_with_taken_invoice_prefix_is_refused(client, finance):
    LegalEntityFactory(invoice_prefix="SN")
    response = signed_in(client, finance).post(ENTITY_CREATE_URL, entity_data(invoice_prefix="sn"))
    assert response.status_code == 400
    assert response.context["form"].errors["invoice_prefix"]
    assert LegalEntity.objects.count() == 1


def test_legal_entity_with_bad_brand_colour_is_refused(client, finance):
    response = signed_in(client, finance).post(ENTITY_CREATE_URL, entity_data(brand_colour="blue"))
    assert response.status_code == 400
    assert "A brand colour is a hex colour such as #1F6FEB." in response.content.decode()
    assert not LegalEntity.objects.exists()


def test_finance_edits_a_legal_entity_and_keeps_its_bank_account(client, finance):
    signed_in(client, finance)
    client.post(ENTITY_CREATE_URL, entity_data())
    entity = LegalEntity.objects.get()
    url = reverse("customers:legal-entity-edit", args=[entity.public_id])
    data = resubmit_data(client.get(url)) | {"city": "Hamburg", "reason": "Moved"}

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    entity.refresh_from_db()
    assert entity.city == "Hamburg"
    assert entity.bank_accounts.get().iban == "DE89370400440532013000"
    assert entity.registrations.get().number == "DE136585820"
    assert entity.history.first().history_change_reason == "Moved"


def test_sales_cannot_create_legal_entities(client, sales):
    signed_in(client, sales)
    assert client.get(ENTITIES_URL).status_code == 200
    assert client.get(ENTITY_CREATE_URL).status_code == 403
    assert client.post(ENTITY_CREATE_URL, entity_data()).status_code == 403
    assert not LegalEntity.objects.exists()


@pytest.mark.parametrize(
    "path", ["/customers/legal-entities/not-a-uuid/", f"/customers/legal-entities/{uuid.uuid4()}/edit/"]
)
def test_unknown_legal_entity_is_404(client, finance, path):
    assert signed_in(client, finance).get(path).status_code == 404
