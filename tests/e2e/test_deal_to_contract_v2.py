"""From a deal to contract version 2, all in the browser.

A sales rep opens a deal, writes a quote with two fixed-fee phases (a milestone each) and a time & materials
line while the live tax preview follows, saves it, attaches the signed proposal, sends it, records the
customer's acceptance and marks the deal won for a project manager. The project manager finds the frozen
rate card, budget, milestones and contract version 1, then proposes a change order raising the T&M rate from
a date; it cannot be submitted before the customer's acceptance is on record, so they record it and submit.
Finance, told by a notification, approves the billing-term change; the project then lists contract version
2, whose page shows the new rate in its diff.

Only master data is made in the database (people and their roles, the approval limit, our legal entity, the
customer with its billing address, the pipeline stages and VAT rates a flushed database lacks); everything
else goes through the pages.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from importlib import import_module

import pytest
from django.utils import timezone

from backbone.models import UserProfile
from backbone.roles import Role
from customers.demo import complete_vat
from customers.models import Deal, PipelineStage, Quote, QuoteAttachment
from customers.services import customer_create
from projects.models import ChangeOrder, ContractVersion, Project, RateCardEntry
from tax.services import tax_rates_load
from tests.customers.deal_factories import make_entity

from .conftest import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "Nordlicht Energie AG"
DEAL_TITLE = "Customer portal relaunch"
PM_NAME = "Paula Martens"
RATE_CATEGORY = "Senior consultant"
SCREENSHOTS = "/tmp/e2e-deal-to-contract-{step}.png"  # noqa: S108 -- looked at by hand after a run


def _iso(day: dt.date) -> str:
    return day.isoformat()


@pytest.fixture
def master_data(_role_groups, make_user):
    """People with their roles (finance with a change-order limit), our German entity, a German business
    customer owned by the sales rep, and the pipeline stages and VAT rates an earlier flush may have removed."""
    tax_rates_load()
    stages = import_module("customers.migrations.0008_pipeline_stages_and_deal_permissions").STAGES
    for code, name, position, probability, outcome in stages:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": name, "position": position, "default_probability": probability, "outcome": outcome},
        )
    sales = make_user("sales", Role.SALES, first_name="Sina", last_name="Berger")
    pm = make_user("pm", Role.PROJECT_MANAGER, first_name="Paula", last_name="Martens")
    finance = make_user("finance", Role.FINANCE, first_name="Frank", last_name="Olsen")
    UserProfile.objects.create(user=finance, change_order_limit_amount=Decimal("20000"))
    UserProfile.objects.create(user=pm, change_order_limit_amount=Decimal("5000"))
    entity = make_entity(legal_name="Throughline Studio GmbH", short_name="Studio GmbH", invoice_prefix="DE")
    customer = customer_create(
        user=sales,
        data={"legal_name": CUSTOMER, "display_name": CUSTOMER, "status": "active", "billing_entity": entity},
        addresses=[
            {"kind": "billing", "line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}
        ],
        registrations=[{"country": "DE", "number": complete_vat("DE81234567")}],
        contacts=[
            {
                "first_name": "Ida",
                "last_name": "Berg",
                "email": "ida.berg@nordlicht.test",
                "role": "billing",
                "receives_invoices": True,
            }
        ],
    )
    assert customer.owner == sales
    return {"sales": sales, "pm": pm, "finance": finance, "entity": entity, "customer": customer}


@pytest.fixture
def signed_proposal(tmp_path):
    path = tmp_path / "signed-proposal.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    return path


def test_deal_to_contract_version_2(page, live_server, master_data, signed_proposal):
    from playwright.sync_api import expect

    today = timezone.localdate()
    start, end = today, today + dt.timedelta(days=120)
    phase_1_date, phase_2_date = today + dt.timedelta(days=30), today + dt.timedelta(days=90)
    rate_from = today + dt.timedelta(days=14)

    # === 1. the sales rep: deal, quote with live tax preview, attachment, send, accept, win ==================
    sign_in(page, live_server, "sales", "pw-sales")
    navbar = page.get_by_role("navigation", name="Main")
    navbar.get_by_role("link", name="Deals", exact=True).click()
    expect(page.get_by_role("heading", name="Deals", level=1)).to_be_visible()
    page.get_by_role("link", name="New deal").first.click()
    expect(page.get_by_role("heading", name="New deal", level=1)).to_be_visible()
    page.get_by_label("Title").fill(DEAL_TITLE)
    page.get_by_label("Customer").select_option(label=str(master_data["customer"]))  # "Name (number)"
    page.get_by_role("button", name="Open deal").click()

    expect(page.get_by_role("heading", name=DEAL_TITLE, level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="was opened in Qualified")).to_be_visible()
    deal = Deal.objects.get(title=DEAL_TITLE)
    assert deal.owner == master_data["sales"] and deal.legal_entity == master_data["entity"]

    page.get_by_role("link", name="New quote").first.click()
    expect(page.get_by_role("heading", name="New quote", level=1)).to_be_visible()
    tax_preview = page.get_by_role("region", name="Tax preview")
    expect(tax_preview).to_contain_text("No line can be taxed yet")
    page.evaluate("window.__samePage = true")

    terms = page.get_by_role("group", name="Terms")
    terms.get_by_label("Planned start").fill(_iso(start))
    terms.get_by_label("Planned end").fill(_iso(end))

    lines = page.get_by_role("group", name="Lines")
    # Line 1: time & materials — the role on the rate card, 40 hours at 150.
    _fill_line(
        lines,
        1,
        description="Senior consultant support",
        billing_model="tm",
        labour_category=RATE_CATEGORY,
        quantity="40",
        unit="HUR",
        unit_price="150",
    )
    # The preview follows as the line is typed (htmx, no reload): 40 h at €150, 19 % VAT.
    expect(tax_preview).to_contain_text("€6,000.00")
    expect(tax_preview).to_contain_text("€1,140.00")

    # Lines 2 and 3: one fixed-fee line per phase.
    lines.get_by_role("button", name="Add line").click()
    lines.get_by_role("button", name="Add line").click()
    expect(lines.get_by_role("textbox", name="Description")).to_have_count(3)
    # Added rows are numbered like the first: a group "Line 3" with its own "Remove line 3".
    expect(lines.get_by_role("group", name="Line 3", exact=True)).to_be_visible()
    expect(lines.get_by_role("checkbox", name="Remove line 3", exact=True)).not_to_be_checked()
    _fill_line(
        lines,
        2,
        description="Discovery and concept",
        billing_model="fixed_fee",
        phase="Phase 1 — Discovery",
        quantity="1",
        unit="LS",
        unit_price="8000",
    )
    _fill_line(
        lines,
        3,
        description="Build and launch",
        billing_model="fixed_fee",
        phase="Phase 2 — Build",
        quantity="1",
        unit="LS",
        unit_price="12000",
    )

    milestones = page.get_by_role("group", name="Phases and milestones")
    milestones.get_by_role("button", name="Add milestone").click()
    expect(milestones.get_by_role("textbox", name="Name")).to_have_count(2)
    _fill_milestone(
        milestones, 1, name="Concept signed off", phase="Phase 1 — Discovery", planned=phase_1_date, amount="8000"
    )
    _fill_milestone(milestones, 2, name="Portal live", phase="Phase 2 — Build", planned=phase_2_date, amount="12000")

    # 6,000 + 8,000 + 12,000 net, 19 % German VAT.
    expect(tax_preview).to_contain_text("€26,000.00")
    expect(tax_preview).to_contain_text("€4,940.00")
    expect(tax_preview).to_contain_text("€30,940.00")
    expect(tax_preview.get_by_role("table", name="VAT breakdown")).to_contain_text("19")
    expect(tax_preview).to_contain_text(f"tax point {start.day} {start:%b %Y}")
    assert page.evaluate("window.__samePage === true"), "the tax preview reloaded the whole page"
    page.screenshot(path=SCREENSHOTS.format(step="1-quote-tax-preview"), full_page=True)

    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name=f"Quote for {CUSTOMER}", level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="was saved as a draft")).to_be_visible()
    quote_lines = page.get_by_role("region", name="Lines").get_by_role("table")
    expect(quote_lines.get_by_role("row").filter(has_text="Senior consultant support")).to_contain_text("€6,000.00")
    expect(quote_lines).to_contain_text("€26,000.00")
    quote_milestones = page.get_by_role("region", name="Phases and milestones").get_by_role("table")
    expect(quote_milestones.get_by_role("row").filter(has_text="Concept signed off")).to_contain_text("€8,000.00")
    expect(quote_milestones.get_by_role("row").filter(has_text="Portal live")).to_contain_text("€12,000.00")
    expect(page.get_by_role("region", name="Tax and totals")).to_contain_text("€30,940.00")

    attachments = page.get_by_role("region", name="Attachments")
    expect(attachments.get_by_label("Kind")).to_have_value(QuoteAttachment.Kind.SIGNED_PROPOSAL)
    attachments.get_by_label("Kind").select_option(label="Signed proposal")
    attachments.get_by_label("File").set_input_files(str(signed_proposal))
    attachments.get_by_role("button", name="Attach").click()
    expect(page.get_by_role("status").filter(has_text="signed-proposal.pdf was attached")).to_be_visible()
    attachments = page.get_by_role("region", name="Attachments")
    expect(attachments.get_by_role("link", name="signed-proposal.pdf")).to_be_visible()
    expect(attachments).to_contain_text("Signed proposal")

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="is sent")).to_be_visible()
    accept = page.get_by_role("region", name="Customer accepted?")
    accept.get_by_label("Signed by").fill("Ida Berg, COO")
    accept.get_by_role("button", name="Record acceptance").click()
    expect(page.get_by_role("status").filter(has_text="is accepted")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="signed by Ida Berg, COO")).to_be_visible()
    quote = Quote.objects.get(deal=deal)
    assert quote.status == Quote.Status.ACCEPTED and quote.attachments.count() == 1

    page.get_by_role("link", name="Mark won").click()
    expect(page.get_by_role("heading", name=f"Mark {deal.number} won", level=1)).to_be_visible()
    expect(page.get_by_role("region", name=re.compile(r"^Quote version 1"))).to_contain_text("€26,000.00")
    win = page.get_by_role("form", name="The project")
    win.get_by_label("Project manager").select_option(label=PM_NAME)
    expect(win.get_by_label("Project name")).to_have_value(DEAL_TITLE)
    expect(win.get_by_label("Planned start")).to_have_value(_iso(start))
    expect(win.get_by_label("Planned end")).to_have_value(_iso(end))
    win.get_by_role("button", name="Mark won and create the project").click()

    expect(page.get_by_role("heading", name=DEAL_TITLE, level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="starts with contract version 1")).to_be_visible()
    project = Project.objects.get(deal=deal)
    assert project.project_manager == master_data["pm"]
    sign_out(page, "Sina Berger")

    # === 2. the project manager: frozen rates, budget, milestones, contract version 1 ========================
    sign_in(page, live_server, "pm", "pw-pm")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    page.get_by_role("link", name=DEAL_TITLE).click()
    expect(page.get_by_role("heading", name=DEAL_TITLE, level=1)).to_be_visible()
    expect(page.get_by_text(f"Project manager: {PM_NAME}")).to_be_visible()

    rate_card = page.get_by_role("region", name="Rate card").get_by_role("table")
    rate_row = rate_card.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(RATE_CATEGORY)))
    expect(rate_row).to_have_count(1)
    expect(rate_row).to_contain_text("€150.00")
    expect(rate_row).to_contain_text(_iso(start))
    expect(rate_row).to_contain_text("in force today")

    budget = page.get_by_role("region", name="Plan vs actual")
    expect(budget).to_contain_text("Budget €26,000.00")
    budget_table = budget.get_by_role("table")
    labour = budget_table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(RATE_CATEGORY)))
    expect(labour).to_contain_text("40")
    expect(labour).to_contain_text("€6,000.00")
    expect(budget_table.get_by_role("row").filter(has_text="Discovery and concept")).to_contain_text("€8,000.00")
    expect(budget_table.get_by_role("row").filter(has_text="Build and launch")).to_contain_text("€12,000.00")

    schedule = page.get_by_role("region", name="Schedule and milestones").get_by_role("table")
    first = schedule.get_by_role("row").filter(has_text="Concept signed off")
    expect(first).to_contain_text(_iso(phase_1_date))
    expect(first).to_contain_text("€8,000.00")
    second = schedule.get_by_role("row").filter(has_text="Portal live")
    expect(second).to_contain_text(_iso(phase_2_date))
    expect(second).to_contain_text("€12,000.00")

    versions = page.get_by_role("region", name="Contract versions")
    expect(versions.get_by_role("link", name="Version 1")).to_be_visible()
    expect(versions.get_by_role("listitem")).to_have_count(1)
    expect(versions).to_contain_text("in force")
    expect(
        page.get_by_role("region", name="Attachments").get_by_role("link", name="signed-proposal.pdf")
    ).to_be_visible()
    page.screenshot(path=SCREENSHOTS.format(step="2-project"), full_page=True)

    # === 3. the project manager proposes the rate change, records the acceptance and submits =================
    page.get_by_role("group", name="Actions").get_by_role("link", name="New change order").click()
    expect(page.get_by_role("heading", name="New change order", level=1)).to_be_visible()
    page.get_by_label("Title").fill("Senior consultant rate 2026")
    page.get_by_label("Reason").fill("The customer agreed to the new senior rate for the build phase.")
    page.get_by_label("Effective from").fill(_iso(rate_from))
    change = page.get_by_role("group", name="Change 1")
    change.get_by_role("combobox", name=re.compile(r"^Change\b")).select_option("rate.set")
    category = change.get_by_role("combobox", name=re.compile(r"^Labour category"))
    expect(category).to_be_visible()
    category.select_option(RATE_CATEGORY)
    change.get_by_label("Hourly rate").fill("175")
    change.get_by_label("Rate from").fill(_iso(rate_from))
    expect(change.get_by_label("Hours")).to_be_hidden()  # only what a rate change takes is shown
    page.get_by_role("button", name="Save draft").click()

    expect(page.get_by_role("heading", name="Senior consultant rate 2026", level=1)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="was saved as a draft")).to_be_visible()
    changes = page.get_by_role("region", name="Changes")
    expect(changes).to_contain_text(
        f"Set a rate from a date: {RATE_CATEGORY} at €175.00 per hour from {_iso(rate_from)}"
    )
    effect = page.get_by_role("region", name="Effect")
    expect(effect).to_contain_text("€0.00")
    expect(effect).to_contain_text("Rates or billing rules: finance approves.")
    expect(effect).to_contain_text("not yet recorded")

    # Not without the customer's acceptance.
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("alert").filter(has_text="Record who accepted the change")).to_be_visible()
    co = ChangeOrder.objects.get(project=project)
    assert co.status == ChangeOrder.Status.DRAFT

    page.get_by_role("group", name="Actions").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name=f"Edit change order {co.number}", level=1)).to_be_visible()
    acceptance = page.get_by_role("region", name="Customer's acceptance")
    acceptance.get_by_label("Accepted by (customer)").fill("Ida Berg, COO")
    acceptance.get_by_label("Accepted on").fill(_iso(today))
    page.get_by_label("What did you change?").fill("Recorded the customer's acceptance")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text=f"{co.number} was saved")).to_be_visible()
    expect(page.get_by_role("region", name="Effect")).to_contain_text(f"Ida Berg, COO, {_iso(today)}")

    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("status").filter(has_text="was submitted for approval")).to_be_visible()
    expect(page.get_by_role("button", name="Submit for approval")).to_have_count(0)
    expect(page.get_by_role("region", name="Status")).to_contain_text("Submitted for approval")
    sign_out(page, PM_NAME)

    # === 4. finance, told by a notification, approves =====================================================
    sign_in(page, live_server, "finance", "pw-finance")
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile(r"^Notifications, 1 unread")
    ).click()
    expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    # The hidden part of the name is a positioned span, so the computed name reads "Open : CO-…".
    page.get_by_role("button", name=re.compile(rf"^Open\s*: {co.number} waits for your approval")).click()
    expect(page.get_by_role("heading", name="Senior consultant rate 2026", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Changes")).to_contain_text(f"{RATE_CATEGORY} at €175.00 per hour")
    expect(page.get_by_role("region", name="Effect")).to_contain_text("Ida Berg, COO")
    page.get_by_role("button", name="Approve").click()
    expect(
        page.get_by_role("status").filter(has_text=f"{co.number} was approved: contract version 2 takes effect on")
    ).to_contain_text(_iso(rate_from))
    approved = page.get_by_role("status").filter(has_text="Approved: contract version 2")
    expect(approved.get_by_role("link", name="Open version 2")).to_be_visible()
    expect(page.get_by_role("region", name="Status")).to_contain_text("Approved")
    co.refresh_from_db()
    assert co.status == ChangeOrder.Status.APPROVED and co.decided_by == master_data["finance"]

    # === 5. the project lists version 2; its page shows the new rate in the diff ============================
    page.get_by_role("navigation", name="breadcrumb").get_by_role("link", name=project.number).click()
    expect(page.get_by_role("heading", name=DEAL_TITLE, level=1)).to_be_visible()
    versions = page.get_by_role("region", name="Contract versions")
    expect(versions.get_by_role("listitem")).to_have_count(2)
    version_2 = versions.get_by_role("listitem").filter(has=page.get_by_role("link", name="Version 2"))
    expect(version_2).to_contain_text(co.number)
    expect(version_2).to_contain_text(f"from {_iso(rate_from)}")
    expect(version_2).to_contain_text("upcoming")
    co_row = page.get_by_role("region", name="Change orders").get_by_role("row").filter(has_text=co.number)
    expect(co_row).to_contain_text("Approved")
    expect(co_row).to_contain_text("billing terms")
    expect(co_row.get_by_role("link", name="version 2")).to_be_visible()
    new_rate = page.get_by_role("region", name="Rate card").get_by_role("row").filter(has_text=_iso(rate_from))
    expect(new_rate).to_contain_text("€175.00")
    expect(new_rate).to_contain_text("upcoming")

    version_2.get_by_role("link", name="Version 2").click()
    expect(page.get_by_role("heading", name="Contract version 2", level=1)).to_be_visible()
    diff = page.get_by_role("region", name="What changed since version 1")
    expect(diff).to_contain_text(f"Rate for {RATE_CATEGORY}: €175.00 per hour from {_iso(rate_from)} (was €150.00).")
    rates = page.get_by_role("region", name="Rate card").get_by_role("table")
    expect(rates.get_by_role("row").filter(has_text=_iso(rate_from))).to_contain_text("€175.00")
    expect(rates.get_by_role("row").filter(has_text=_iso(start))).to_contain_text("€150.00")
    page.screenshot(path=SCREENSHOTS.format(step="5-version-diff"), full_page=True)

    version = ContractVersion.objects.get(project=project, number=2)
    assert version.change_order == co
    assert RateCardEntry.objects.filter(project=project, labour_category=RATE_CATEGORY).count() == 2


def _fill_line(
    lines, number: int, *, description, billing_model, quantity, unit, unit_price, labour_category="", phase=""
):
    """Fill the quote form's line ``number`` (1-based): the fieldset named "Line N", field by field."""
    line = lines.get_by_role("group", name=f"Line {number}", exact=True)
    line.get_by_role("textbox", name="Description").fill(description)
    line.get_by_role("combobox", name="Billing model").select_option(billing_model)
    if labour_category:
        line.get_by_role("textbox", name="Labour category").fill(labour_category)
    if phase:
        line.get_by_role("textbox", name="Phase").fill(phase)
    line.get_by_role("combobox", name="Unit").select_option(unit)
    line.get_by_label("Quantity").fill(quantity)
    line.get_by_label("Unit price").fill(unit_price)


def _fill_milestone(milestones, number: int, *, name, phase, planned: dt.date, amount):
    milestone = milestones.get_by_role("group", name=f"Milestone {number}", exact=True)
    milestone.get_by_role("textbox", name="Name").fill(name)
    milestone.get_by_role("textbox", name="Phase").fill(phase)
    milestone.get_by_label("Planned date").fill(_iso(planned))
    milestone.get_by_label("Amount").fill(amount)
