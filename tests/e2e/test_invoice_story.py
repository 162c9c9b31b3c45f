"""The whole invoice story, all in the browser, each step signed in as the person who does it.

A sales rep marks a deal won (the project starts). A consultant logs last week in the timesheet grid and
submits it; the project manager approves it and records the client's acceptance of a milestone. Finance
(Frank) starts an invoice run from Billing → Invoice runs and watches its progress bar reach 100 % while the
queue works; the draft it made is Frank's and above his approval limit, so he may not approve it himself. A
second finance person (Fiona) gives the first approval — above her limit too, so it waits — and an executive
gives the second. Frank issues it: the number appears and the PDF downloaded through the page's link is a PDF
carrying that number. He sends it by email (the Outbox lists the message with the PDF attached) and copies
the client portal link from the invoice's page. The client opens it in a browser of their own, without
signing in, sees the amount due and disputes the rate; Frank sees the dispute on the invoice, credits part of
the time line with a credit note (root cause: pricing error), approves and issues it, and the invoice lists
the credit note and the reduced balance — as does the client's portal page.

The queue: the test settings run django-q2 tasks synchronously (``Q_CLUSTER["sync"]``). For the run the
test holds the queue (the task waits in the ORM broker, as with a real cluster) so that the page really
polls; the test then does the worker's part (``billing.tasks.invoice_run_task``) and the page follows. The
PDF and the email go through the (synchronous) queue as in production.

Only master data is made in the database (people, roles and approval limits, our legal entity with its
bank account, the customer, the deal with its quote, the consultant on the team, the VAT rates); everything
else goes through the pages.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal
from importlib import import_module

import pytest
from django.core import mail
from django.utils import timezone
from django_q.conf import Conf

from backbone.models import UserProfile
from backbone.roles import Role
from billing.models import Invoice, InvoiceRun
from billing.tasks import invoice_run_task
from customers.demo import complete_vat
from customers.models import BillingModel, PipelineStage
from customers.services import customer_create
from projects.models import EntryStatus, Milestone, Project, ProjectMember, TimeEntry
from projects.timesheet_selectors import week_start_of
from tax.services import tax_rates_load
from tests.customers.deal_factories import make_entity
from tests.customers.factories import BankAccountFactory
from tests.projects.factories import DealFactory, QuoteFactory, QuoteLineFactory, QuoteMilestoneFactory

from .conftest import screenshot, sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "Nordlicht Energie AG"
DEAL_TITLE = "Data platform"
MILESTONE = "Concept signed off"
DISPUTE = "Two of the five days were junior work but are billed at the developer rate."
LIMIT = Decimal("10000")  # finance's approval limit; the invoice (EUR 16,660.00) is above it


def money(amount: str) -> str:
    return f"€{amount}"


@pytest.fixture
def master_data(_role_groups, make_user):
    tax_rates_load()
    stages = import_module("customers.migrations.0008_pipeline_stages_and_deal_permissions").STAGES
    for code, name, position, probability, outcome in stages:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": name, "position": position, "default_probability": probability, "outcome": outcome},
        )
    sales = make_user("sales", Role.SALES, first_name="Sina", last_name="Berger")
    pm = make_user("pm", Role.PROJECT_MANAGER, first_name="Paula", last_name="Martens")
    consultant = make_user("consultant", Role.CONSULTANT, first_name="Carla", last_name="Nowak")
    frank = make_user("finance", Role.FINANCE, first_name="Frank", last_name="Olsen")
    fiona = make_user("fiona", Role.FINANCE, first_name="Fiona", last_name="Weber")
    executive = make_user("executive", Role.EXECUTIVE, first_name="Erik", last_name="Lund")
    for person in (frank, fiona):
        UserProfile.objects.create(user=person, approval_limit_amount=LIMIT)
    entity = make_entity(legal_name="Throughline Studio GmbH", short_name="Studio GmbH", invoice_prefix="DE")
    BankAccountFactory(legal_entity=entity, account_holder=entity.legal_name)
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
    today = timezone.localdate()
    last_monday = week_start_of(today) - dt.timedelta(days=7)
    deal = DealFactory(customer=customer, legal_entity=entity, owner=sales, title=DEAL_TITLE)
    quote = QuoteFactory(
        deal=deal, planned_start=last_monday - dt.timedelta(days=28), planned_end=today + dt.timedelta(days=120)
    )
    QuoteLineFactory(quote=quote, position=1, description="Development", labour_category="Developer")
    QuoteLineFactory(
        quote=quote,
        position=2,
        description="Discovery and concept",
        billing_model=BillingModel.FIXED_FEE,
        labour_category="",
        quantity=Decimal("1"),
        unit="LS",
        unit_price=Decimal("8000.0000"),
    )
    QuoteMilestoneFactory(
        quote=quote, position=1, name=MILESTONE, planned_date=today + dt.timedelta(days=14), amount=Decimal("8000")
    )
    return {
        "sales": sales,
        "pm": pm,
        "consultant": consultant,
        "finance": frank,
        "fiona": fiona,
        "executive": executive,
        "entity": entity,
        "customer": customer,
        "deal": deal,
        "today": today,
        "last_monday": last_monday,
    }


def hours_input(page, project, day: dt.date):
    return page.get_by_label(
        f"Hours on {day.strftime('%A')} {day.day} {day.strftime('%B')}, {project.number} Developer"
    )


def open_invoice(page, live_server, invoice):
    page.goto(f"{live_server.url}/billing/invoices/{invoice.public_id}/")
    expect = _expect()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _expect():
    from playwright.sync_api import expect

    return expect


def test_the_invoice_story(page, browser, live_server, master_data, monkeypatch, settings, tmp_path):
    expect = _expect()
    settings.SITE_URL = live_server.url  # the portal links (page, PDF, email) point at this server
    today, last_monday = master_data["today"], master_data["last_monday"]
    deal, entity = master_data["deal"], master_data["entity"]
    status = page.get_by_role("status")

    # === 1. the sales rep marks the deal won: the project starts ============================================
    sign_in(page, live_server, "sales", "pw-sales")
    page.goto(f"{live_server.url}/customers/deals/{deal.public_id}/")
    page.get_by_role("link", name="Mark won").click()
    win = page.get_by_role("form", name="The project")
    win.get_by_label("Project manager").select_option(label="Paula Martens")
    win.get_by_role("button", name="Mark won and create the project").click()
    expect(status.filter(has_text="starts with contract version 1")).to_be_visible()
    project = Project.objects.get(deal=deal)
    sign_out(page, "Sina Berger")
    ProjectMember.objects.create(project=project, user=master_data["consultant"], labour_category="Developer")

    # === 2. the consultant logs last week in the grid and submits it ========================================
    sign_in(page, live_server, "consultant", "pw-consultant")
    page.goto(f"{live_server.url}/projects/timesheet/?week={last_monday.isoformat()}")
    page.get_by_label("Project and labour category").select_option(value=f"{project.public_id}|Developer")
    page.get_by_label("Description on the invoice", exact=True).fill("Data platform: ingestion pipeline")
    page.get_by_role("button", name="Add row").click()
    expect(status.filter(has_text="Row added")).to_be_visible()
    for index in range(5):
        cell = hours_input(page, project, last_monday + dt.timedelta(days=index))
        cell.fill("8")
        cell.press("Tab")
        expect(page.locator("#ts-week-total")).to_have_text(str(8 * (index + 1)))
    page.get_by_role("button", name="Submit week").click()
    expect(status.filter(has_text="5 entries wait for approval")).to_be_visible()
    sign_out(page)

    # === 3. the project manager approves the week and records the milestone's acceptance ==================
    sign_in(page, live_server, "pm", "pw-pm")
    page.goto(f"{live_server.url}/projects/approvals/")
    page.get_by_label("Select all shown entries").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(status.filter(has_text="Approved 5 entries (40 h)")).to_be_visible()
    page.goto(f"{live_server.url}/projects/{project.public_id}/")
    page.get_by_role("link", name=f"Record acceptance of {MILESTONE}").click()
    expect(page.get_by_role("heading", name=MILESTONE, level=1)).to_be_visible()
    page.get_by_label("Accepted by (client side)").fill("Ida Berg, COO")
    page.get_by_label("Accepted on").fill(today.isoformat())
    page.get_by_label("Acceptance note").fill("Concept workshop outcomes signed off.")
    page.get_by_role("button", name="Record acceptance").click()
    expect(page.locator(".badge").filter(has_text="Accepted").first).to_be_visible()
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
    assert Milestone.objects.get(project=project).status == Milestone.Status.ACCEPTED
    sign_out(page, "Paula Martens")

    # === 4. finance starts the run; the page follows its progress to 100 % =================================
    sign_in(page, live_server, "finance", "pw-finance")
    navbar = page.get_by_role("navigation", name="Main")
    navbar.get_by_role("button", name="Billing").click()
    navbar.get_by_role("link", name="Invoice runs").click()
    expect(page.get_by_role("heading", name="Invoice runs", level=1)).to_be_visible()
    page.get_by_label("Legal entity").select_option(label=str(entity))
    page.get_by_label("Period start").fill(last_monday.isoformat())
    page.get_by_label("Period end").fill(today.isoformat())
    with monkeypatch.context() as held:
        held.setattr(Conf, "SYNC", False)  # the task waits in the broker, as with a real cluster
        page.get_by_role("button", name="Start run").click()
        expect(page.get_by_text("Waiting for a worker…")).to_be_visible()
        run = InvoiceRun.objects.get()
        assert (run.status, run.trigger, run.started_by) == ("queued", "page", master_data["finance"])
        bar = page.get_by_role("progressbar", name=f"Progress of run {run.number}")
        expect(bar).to_have_attribute("aria-valuenow", "0")
    assert invoice_run_task(run.pk) == "completed"  # the worker's part
    expect(bar).to_have_attribute("aria-valuenow", "100")  # the page polled, saw it done and reloaded
    expect(page.get_by_text("Finished")).to_be_visible()
    invoice = Invoice.objects.get(run=run)
    assert invoice.gross_total == Decimal("16660.00")
    made = page.get_by_role("region", name=re.compile(r"^Invoices made by this run"))
    expect(made).to_contain_text(money("16,660.00"))
    screenshot(page, "invoice-story-1-run")

    # The draft is Frank's (his run made it) and above his limit: he may not approve it himself.
    open_invoice(page, live_server, invoice)
    page.get_by_role("group", name="Actions").get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert").filter(has_text="someone else must approve it")).to_be_visible()
    sign_out(page, "Frank Olsen")

    # === 5. Fiona gives the first approval; above her limit it waits for a second ===========================
    sign_in(page, live_server, "fiona", "pw-fiona")
    open_invoice(page, live_server, invoice)
    page.get_by_role("group", name="Actions").get_by_role("button", name="Approve").click()
    expect(status.filter(has_text="a second approver is needed")).to_be_visible()
    expect(page.get_by_role("note").filter(has_text="Approved by Fiona Weber")).to_be_visible()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.approved_by) == (Invoice.Status.DRAFT, master_data["fiona"])
    sign_out(page, "Fiona Weber")

    # === 6. the executive gives the second approval =========================================================
    sign_in(page, live_server, "executive", "pw-executive")
    open_invoice(page, live_server, invoice)
    page.get_by_role("group", name="Actions").get_by_role("button", name="Approve (second)").click()
    expect(status.filter(has_text="is approved and can be issued")).to_be_visible()
    sign_out(page, "Erik Lund")

    # === 7. Frank issues it: the number, and the PDF through the page's link ================================
    sign_in(page, live_server, "finance", "pw-finance")
    open_invoice(page, live_server, invoice)
    page.get_by_role("group", name="Actions").get_by_role("button", name="Issue").click()
    expect(status.filter(has_text="was issued")).to_be_visible()
    invoice.refresh_from_db()
    number = invoice.number
    assert invoice.status == Invoice.Status.ISSUED and number
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    pdf_panel = page.get_by_role("region", name="Invoice PDF")
    with page.expect_download() as download_info:
        pdf_panel.get_by_role("link", name=f"Download {number}.pdf").click()
    path = tmp_path / f"{number}.pdf"
    download_info.value.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler's pdftotext is needed (.ci/run installs it)"
    text = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert number in text and money("16,660.00") in text
    assert "Pay or dispute online:" in text

    # === 8. Frank sends it by email; the Outbox lists the message with the PDF attached =====================
    delivery = page.get_by_role("region", name="Delivery by email")
    send_form = delivery.get_by_role("form", name=f"Send {number} by email")
    expect(send_form.get_by_label("To", exact=True)).to_have_value("ida.berg@nordlicht.test")
    send_form.get_by_label("Message (optional)").fill("Dear Ida, please find our invoice for the data platform.")
    send_form.get_by_role("button", name="Send", exact=True).click()
    expect(
        status.filter(has_text=f"is queued for sending to ida.berg@nordlicht.test with {number}.pdf")
    ).to_be_visible()
    sent = page.get_by_role("list", name=re.compile(r"^Messages about this invoice"))
    expect(sent.get_by_role("listitem").first).to_contain_text(f"{number}.pdf")
    (email,) = [message for message in mail.outbox if message.to == ["ida.berg@nordlicht.test"]]
    assert email.to == ["ida.berg@nordlicht.test"] and number in email.subject
    ((filename, content, mimetype),) = email.attachments
    assert (filename, mimetype) == (f"{number}.pdf", "application/pdf") and content.startswith(b"%PDF")
    screenshot(page, "invoice-story-2-issued-and-sent")

    navbar = page.get_by_role("navigation", name="Main")
    navbar.get_by_role("button", name="Billing").click()
    navbar.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox", level=1)).to_be_visible()
    message_row = page.get_by_role("row").filter(has_text=number)
    expect(message_row).to_have_count(1)
    expect(message_row).to_contain_text("ida.berg@nordlicht.test")
    expect(message_row).to_contain_text(f"{number}.pdf")
    expect(message_row).to_contain_text("Sent")
    screenshot(page, "invoice-story-3-outbox")

    # === 9. Frank copies the portal link; the client opens it without signing in and disputes the rate ======
    open_invoice(page, live_server, invoice)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    portal_panel = page.get_by_role("region", name="Disputes")
    portal_panel.get_by_role("button", name="Copy the portal link").click()
    expect(portal_panel.get_by_role("button", name="Copy the portal link")).to_contain_text("Copied")
    portal_link = page.evaluate("navigator.clipboard.readText()")
    assert portal_link == portal_panel.get_by_label("Client portal link").input_value()
    assert portal_link.startswith(f"{live_server.url}/billing/portal/")

    client = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    try:
        portal = client.new_page()
        portal.set_default_timeout(15_000)
        portal.goto(portal_link)
        expect(portal.get_by_role("heading", name=number, level=1)).to_be_visible()
        expect(portal.locator("#amount-due")).to_have_text(money("16,660.00"))
        expect(portal.get_by_role("link", name="Sign in")).to_have_count(0)
        dispute = portal.get_by_role("region", name="Something wrong? Raise a dispute")
        dispute.get_by_label("What is wrong").select_option(label="Wrong rate or price")
        dispute.get_by_label("Your message").fill(DISPUTE)
        dispute.get_by_label("Your name").fill("Ida Berg")
        dispute.get_by_label("Your email address").fill("ida.berg@nordlicht.test")
        dispute.get_by_role("button", name="Send").click()
        expect(portal.get_by_role("status").filter(has_text="Your dispute was sent")).to_be_visible()
        expect(portal.get_by_role("status").filter(has_text="Wrong rate or price")).to_be_visible()
        screenshot(portal, "invoice-story-4-portal-disputed")

        # === 10. Frank sees the dispute on the invoice ======================================================
        page.reload()
        disputes = page.get_by_role("region", name="Disputes")
        expect(disputes).to_contain_text("1 open")
        raised = disputes.get_by_role("listitem").filter(has_text="Wrong rate or price")
        expect(raised).to_contain_text(DISPUTE)
        expect(raised).to_contain_text("Ida Berg")
        expect(raised).to_contain_text("Open")

        # === 11. Frank credits part of the time line, approves and issues the credit note ====================
        credit_part_of_the_time_line(page, number)
        note = Invoice.objects.get(credited_invoice=invoice)
        assert note.status == Invoice.Status.ISSUED and note.gross_total == Decimal("-714.00")
        the_invoice_shows_the_credit_note(page, number, note)

        # The client's page shows the reduced amount due too.
        portal.reload()
        expect(portal.locator("#amount-due")).to_have_text(money("15,946.00"))
    finally:
        client.close()


def credit_part_of_the_time_line(page, number: str) -> None:
    expect = _expect()
    status = page.get_by_role("status")

    page.get_by_role("region", name="Credit notes").get_by_role("link", name="Credit…").click()
    expect(page.get_by_role("heading", name=f"Credit {number}", level=1)).to_be_visible()
    page.get_by_label("Chosen lines").check()
    page.get_by_label("Credit line 1", exact=True).check()
    page.get_by_label("Amount to credit of line 1", exact=True).fill("600.00")
    page.get_by_label("Root cause").select_option(label="Pricing error")
    page.get_by_label("Explanation").fill("Two days were billed at the senior rate; 600.00 net credited.")
    page.get_by_role("button", name="Create draft credit note").click()
    expect(status.filter(has_text=f"Draft credit note of {money('714.00')} for {number} created")).to_be_visible()
    page.get_by_role("group", name="Actions").get_by_role("button", name="Approve").click()
    expect(status.filter(has_text="is approved and can be issued")).to_be_visible()
    page.get_by_role("group", name="Actions").get_by_role("button", name="Issue").click()
    expect(status.filter(has_text="was issued")).to_be_visible()


def the_invoice_shows_the_credit_note(page, number: str, note: Invoice) -> None:
    expect = _expect()
    page.get_by_role("link", name=number).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    credits = page.get_by_role("region", name="Credit notes")
    row = credits.get_by_role("listitem").filter(has_text=note.number)
    expect(row).to_contain_text(money("714.00"))
    expect(row).to_contain_text("Pricing error")
    balance = credits.get_by_role("table", name="Balance after credit notes")
    expect(balance.get_by_role("row", name=re.compile(r"^Remaining"))).to_contain_text(money("15,946.00"))
    screenshot(page, "invoice-story-5-credited")
