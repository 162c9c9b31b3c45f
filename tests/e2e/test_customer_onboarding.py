"""A sales rep onboards a customer in the browser; an auditor then finds the change in the History area."""

from __future__ import annotations

import re

import pytest

from backbone.models import AuditEntry
from customers.models import Address, Contact, Customer, TaxRegistration
from tests.customers.factories import CustomerFactory

from .conftest import screenshot, sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEGAL_NAME = "Nordlicht Analytics GmbH"


def test_sales_rep_onboards_customer_and_auditor_sees_it_in_history(page, live_server, sales, auditor):
    from playwright.sync_api import expect

    # Another customer, so that the search below has something to leave out.
    CustomerFactory(legal_name="Harbour Freight Ltd", display_name="Harbour Freight")

    # --- the sales rep signs in and opens the new-customer page ---------------------------------------
    sign_in(page, live_server, "sales", "pw-sales")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()
    page.get_by_role("link", name="New customer").first.click()
    expect(page.get_by_role("heading", name="New customer", level=1)).to_be_visible()

    addresses = page.get_by_role("group", name="Addresses")
    registrations = page.get_by_role("group", name="VAT registrations")
    contacts = page.get_by_role("group", name="Contacts")

    page.get_by_role("group", name="Company").get_by_label("Legal name").fill(LEGAL_NAME)
    expect(addresses.get_by_label("Kind")).to_have_value("billing")
    addresses.get_by_label("Street and number").fill("Friedrichstraße 68")
    addresses.get_by_label("Postal code").fill("10117")
    addresses.get_by_label("City").fill("Berlin")
    addresses.get_by_label("Country").select_option(label="Germany")
    registrations.get_by_label("Country").select_option(label="Germany")
    vat = registrations.get_by_label("VAT number")
    vat.fill("DE123456789")  # the check digit does not match
    contacts.get_by_label("First name").fill("Jana")
    contacts.get_by_label("Last name").fill("Vogel")
    contacts.get_by_label("Email").fill("Jana.Vogel@nordlicht.test")
    contacts.get_by_label("Role").select_option(label="Billing")
    contacts.get_by_label("Receives invoices").check()
    page.get_by_role("button", name="Create customer").click()

    # --- refused: the message sits next to the VAT field and nothing was saved -------------------------
    expect(page.get_by_role("alert").filter(has_text="The customer was not saved")).to_be_visible()
    vat = page.get_by_role("group", name="VAT registrations").get_by_label("VAT number")
    expect(vat).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(vat).to_have_accessible_description(re.compile("check digit does not match"))
    expect(
        page.get_by_role("group", name="VAT registrations").get_by_text(re.compile("check digit does not match"))
    ).to_be_visible()
    screenshot(page, "onboarding-1-invalid-vat")
    assert not Customer.objects.filter(legal_name=LEGAL_NAME).exists()
    assert Customer.objects.count() == 1
    assert not TaxRegistration.objects.exists() and not Contact.objects.exists()
    # Everything typed is still there.
    expect(page.get_by_role("group", name="Company").get_by_label("Legal name")).to_have_value(LEGAL_NAME)
    expect(page.get_by_role("group", name="Contacts").get_by_label("Email")).to_have_value("Jana.Vogel@nordlicht.test")
    expect(page.get_by_role("group", name="Contacts").get_by_label("Receives invoices")).to_be_checked()

    # --- fixed: a valid number, typed loosely ---------------------------------------------------------
    vat.fill("de 136 585 820")
    page.get_by_role("button", name="Create customer").click()

    expect(page.get_by_role("heading", name=LEGAL_NAME, level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="was created")).to_be_visible()
    registrations_table = page.get_by_role("region", name="VAT registrations").get_by_role("table")
    expect(registrations_table.get_by_role("cell", name="DE136585820", exact=True)).to_be_visible()
    contacts_table = page.get_by_role("region", name="Contacts").get_by_role("table")
    contact_row = contacts_table.get_by_role("row").filter(has_text="Jana Vogel")
    expect(contact_row).to_contain_text("Billing")
    expect(contact_row).to_contain_text("jana.vogel@nordlicht.test")
    expect(contact_row).to_contain_text("Invoices")
    screenshot(page, "onboarding-2-customer-detail")

    customer = Customer.objects.get(legal_name=LEGAL_NAME)
    assert customer.owner == sales
    assert customer.registrations.get().number == "DE136585820"
    assert customer.addresses.get().kind == Address.Kind.BILLING
    assert customer.contacts.get(receives_invoices=True).role == Contact.Role.BILLING
    expect(page.get_by_text(customer.number, exact=True).first).to_be_visible()

    # --- the list finds it by name, and only it -------------------------------------------------------
    page.get_by_role("navigation", name="breadcrumb").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()
    results = page.locator("#customer-results")
    expect(results.get_by_role("link", name="Harbour Freight")).to_be_visible()
    page.get_by_role("searchbox", name="Search").fill("nordlicht")
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(results.get_by_role("link", name="Harbour Freight")).to_have_count(0)
    expect(results.get_by_role("link", name=LEGAL_NAME)).to_be_visible()
    expect(results).to_contain_text("1 customer matches the filters")
    expect(page).to_have_url(re.compile(r"[?&]q=nordlicht"))
    sign_out(page, "sales")

    # --- the auditor finds the creation in the History area -------------------------------------------
    sign_in(page, live_server, "auditor", "pw-auditor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History", level=1)).to_be_visible()
    history_filter = page.get_by_role("search", name="Filter the history")
    history_filter.get_by_label("Record type").select_option(label="Customer")
    history_filter.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]model=customers.customer"))

    created = page.get_by_role("row").filter(has_text=LEGAL_NAME)
    expect(created).to_have_count(1)
    expect(created.get_by_role("cell").nth(1)).to_have_text("sales")
    expect(created).to_contain_text("Created")
    # Only customers are listed: no address, registration or contact rows.
    expect(page.get_by_role("table").get_by_text("Address", exact=True)).to_have_count(0)
    expect(page.get_by_role("table").get_by_text("Contact", exact=True)).to_have_count(0)
    screenshot(page, "onboarding-3-history-filtered")
    assert AuditEntry.objects.filter(model_label="customers.customer", user=sales, action="+").count() == 1

    created.get_by_role("link", name=re.compile(LEGAL_NAME)).click()
    expect(page.get_by_role("heading", name=LEGAL_NAME, level=1)).to_be_visible()
    timeline = page.get_by_role("region", name="History").get_by_role("region", name="Change history")
    entry = timeline.get_by_role("listitem").filter(has_text="Created").first
    expect(entry).to_contain_text("sales")
    expect(entry).to_contain_text("Reason: Created")
    # An auditor changes nothing: no edit button, no status buttons, no external-ID form.
    expect(page.get_by_role("link", name=re.compile("^Edit"))).to_have_count(0)
    expect(page.get_by_role("button", name="Link external ID")).to_have_count(0)
    screenshot(page, "onboarding-4-auditor-customer-timeline")
    sign_out(page, "auditor")


def test_customer_form_sections_have_accessible_names(page, live_server, sales):
    from playwright.sync_api import expect

    sign_in(page, live_server, "sales", "pw-sales")
    page.goto(f"{live_server.url}/customers/new/")
    expect(page.get_by_role("group", name="Addresses")).to_be_visible()  # the formset sections do
    expect(page.get_by_role("group", name="Company")).to_be_visible(timeout=2_000)
    expect(page.get_by_role("group", name="Payment terms & invoicing")).to_be_visible(timeout=2_000)


def test_formset_remove_checkboxes_name_their_row(page, live_server, sales):
    from playwright.sync_api import expect

    sign_in(page, live_server, "sales", "pw-sales")
    page.goto(f"{live_server.url}/customers/new/")
    addresses = page.get_by_role("group", name="Addresses")
    addresses.get_by_role("button", name="Add address").click()
    expect(addresses.get_by_role("combobox", name="Kind")).to_have_count(2)
    expect(addresses.get_by_role("checkbox", name="Remove", exact=True)).to_have_count(0, timeout=2_000)


def test_legal_entity_form_sections_have_accessible_names(page, live_server, finance):
    from playwright.sync_api import expect

    sign_in(page, live_server, "finance", "pw-finance")
    page.goto(f"{live_server.url}/customers/legal-entities/new/")
    expect(page.get_by_role("group", name="Bank accounts")).to_be_visible()  # the formset sections do
    expect(page.get_by_role("group", name="Company")).to_be_visible(timeout=2_000)
    expect(page.get_by_role("group", name="Invoices")).to_be_visible(timeout=2_000)
