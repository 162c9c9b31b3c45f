"""Finance reads the VAT rates, tries a cross-border tax decision in the preview (htmx, no page reload) and
adds a future rate that then shows on the country's page."""

from __future__ import annotations

import re

import pytest

from tax.models import TaxRate
from tax.services import tax_rates_load

from .conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _rates(_role_groups):
    """The shipped rates, as the data migration loads them: a transactional test before this one flushed them."""
    tax_rates_load()


def test_finance_reads_rates_previews_reverse_charge_and_adds_a_rate(page, live_server, finance):
    from playwright.sync_api import expect

    sign_in(page, live_server, "finance", "pw-finance")
    navbar = page.get_by_role("navigation", name="Main")

    # --- the rate table ---------------------------------------------------------------------------------
    navbar.get_by_role("button", name="Reference").click()  # catalog, legal entities and tax share a menu
    navbar.get_by_role("link", name="Tax", exact=True).click()
    expect(page.get_by_role("heading", name="VAT rates", level=1)).to_be_visible()
    germany = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(r"^Germany")))
    expect(germany).to_have_count(1)
    expect(germany.get_by_role("cell").nth(2)).to_have_text("19")  # code, currency, then the standard rate
    screenshot(page, "tax-1-rate-table")

    # --- the preview: an error first, shown on its field without a reload, then the result -----------------
    navbar.get_by_role("button", name="Reference").click()
    navbar.get_by_role("link", name="Tax preview").click()
    expect(page.get_by_role("heading", name="Tax preview", level=1)).to_be_visible()
    page.evaluate("window.__samePage = true")
    page.get_by_label("Seller's country").select_option("DE")
    page.get_by_label("Buyer's VAT ID").fill("FR40303265045")
    expect(page.get_by_label("Buyer is a business")).to_be_checked()
    line = page.get_by_role("group", name="Line 1")
    line.get_by_label("Description").fill("Data strategy workshop")
    line.get_by_label("Net amount").fill("2400")
    expect(line.get_by_label("Supply")).to_have_value("general_service")
    page.get_by_role("button", name="Calculate").click()

    buyer_country = page.get_by_label("Buyer's country")
    expect(buyer_country).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(buyer_country).to_have_accessible_description(re.compile("The buyer's country is missing"))
    expect(page.locator("#preview-result").get_by_role("alert")).to_contain_text("The buyer's country is missing")

    buyer_country.select_option("FR")
    page.get_by_role("button", name="Calculate").click()
    result = page.locator("#preview-result")
    expect(result.get_by_text(re.compile(r"^Reverse charge: the recipient is liable"))).to_be_visible()
    expect(result).to_contain_text("AE — VAT reverse charge")
    expect(result).to_contain_text("EU-B2B-SERVICE-REVERSE-CHARGE")
    expect(result).to_contain_text("€2,400.00")
    expect(page.get_by_label("Buyer's country")).not_to_have_class(re.compile(r"\bis-invalid\b"))
    assert page.evaluate("window.__samePage === true"), "the preview reloaded the whole page"
    screenshot(page, "tax-2-preview-result")

    # --- a future rate ----------------------------------------------------------------------------------
    navbar.get_by_role("button", name="Reference").click()  # catalog, legal entities and tax share a menu
    navbar.get_by_role("link", name="Tax", exact=True).click()
    page.get_by_role("link", name="Add a rate").click()
    expect(page.get_by_role("heading", name="Add a rate", level=1)).to_be_visible()
    page.get_by_label("Country").select_option(label="Germany (DE)")
    page.get_by_label("Kind of rate").select_option(label="Standard")
    page.get_by_label("Rate (%)").fill("20")
    page.get_by_label("Valid from").fill("2030-01-01")
    page.get_by_label("Source reference").fill("BGBl. 2029 I Nr. 99")
    page.get_by_role("button", name="Add the rate").click()

    expect(page.get_by_role("heading", name=re.compile(r"^Germany"), level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="now ends on 2029-12-31")).to_be_visible()
    rates = page.get_by_role("region", name="Rates over time").get_by_role("table")
    new_row = rates.get_by_role("row").filter(has_text="2030-01-01")
    expect(new_row).to_contain_text("20")
    expect(new_row).to_contain_text("Added in the app by finance")
    expect(new_row).to_contain_text("upcoming")
    expect(rates.get_by_role("row").filter(has_text="2021-01-01").filter(has_text="Standard")).to_contain_text(
        "2029-12-31"
    )
    screenshot(page, "tax-3-jurisdiction")
    assert TaxRate.objects.get(jurisdiction__country="DE", kind="standard", valid_to__isnull=True).created_by == finance
