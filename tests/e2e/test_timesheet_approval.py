"""A week of time from the grid to approval, all in the browser.

A consultant adds a row to this week's timesheet, types the hours of Monday to Friday (each cell saves
itself; a hour that is not a quarter-hour step is refused next to its cell), and submits the week. The
project manager returns Wednesday with a reason and approves the rest. The consultant sees the reason, fixes
Wednesday and submits again; the manager approves it; the whole week then shows approved and locked in the
consultant's grid.

Only master data is made in the database (people, their roles, the customer, a won T&M project with its rate
card, the consultant on its team); everything else goes through the pages.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import import_module
from pathlib import Path

import pytest
from django.utils import timezone

from backbone.roles import Role
from customers.models import PipelineStage
from projects import services
from projects.models import EntryStatus, ProjectMember, TimeEntry
from projects.timesheet_selectors import row_key, week_start_of
from tests.customers.factories import CustomerFactory, LegalEntityFactory
from tests.projects.factories import DealFactory, tm_quote

from .conftest import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots")  # noqa: S108 -- looked at by hand after a run
REASON = "Wednesday was the offsite: log the workshop hours only (6 h)."


@pytest.fixture
def master_data(_role_groups, make_user):
    stages = import_module("customers.migrations.0008_pipeline_stages_and_deal_permissions").STAGES
    for code, name, position, probability, outcome in stages:
        PipelineStage.objects.get_or_create(
            code=code,
            defaults={"name": name, "position": position, "default_probability": probability, "outcome": outcome},
        )
    sales = make_user("sales", Role.SALES, first_name="Sina", last_name="Berger")
    pm = make_user("pm", Role.PROJECT_MANAGER, first_name="Paula", last_name="Martens")
    consultant = make_user("consultant", Role.CONSULTANT, first_name="Carla", last_name="Nowak")
    entity = LegalEntityFactory(legal_name="Throughline Studio GmbH", short_name="Studio GmbH", invoice_prefix="DE")
    customer = CustomerFactory(owner=sales, billing_entity=entity, legal_name="Nordlicht Energie AG")
    monday = week_start_of(timezone.localdate())
    deal = DealFactory(customer=customer, legal_entity=entity, title="Data platform")
    tm_quote(deal, planned_start=monday - dt.timedelta(days=28), planned_end=monday + dt.timedelta(days=120))
    project, _ = services.deal_win(actor=sales, deal=deal, project_manager=pm)
    ProjectMember.objects.create(project=project, user=consultant, labour_category="Developer")
    return {"pm": pm, "consultant": consultant, "project": project, "monday": monday}


def hours_input(page, project, day: dt.date):
    return page.get_by_label(
        f"Hours on {day.strftime('%A')} {day.day} {day.strftime('%B')}, {project.number} Developer"
    )


def test_a_week_from_the_grid_to_approval(page, live_server, master_data):
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    project, monday = master_data["project"], master_data["monday"]
    days = [monday + dt.timedelta(days=offset) for offset in range(7)]
    wednesday = days[2]
    grid_url = f"{live_server.url}/projects/timesheet/"
    queue_url = f"{live_server.url}/projects/approvals/"

    # === 1. the consultant fills the week and submits it ==================================================
    sign_in(page, live_server, "consultant", "pw-consultant")
    page.goto(grid_url)
    expect(page.get_by_role("heading", name="Timesheet", level=1)).to_be_visible()
    expect(page.get_by_text("No time in this week yet")).to_be_visible()
    page.get_by_label("Project and labour category").select_option(value=f"{project.public_id}|Developer")
    page.get_by_label("Description on the invoice", exact=True).fill("Data platform: ingestion pipeline")
    page.get_by_role("button", name="Add row").click()
    expect(page.get_by_role("status").filter(has_text="Row added")).to_be_visible()
    key = row_key(project.pk, "Developer")
    expect(page.locator(f"#{key}-desc")).to_have_value("Data platform: ingestion pipeline")

    for index, day in enumerate(days[:5], start=1):
        cell = hours_input(page, project, day)
        cell.fill("8")
        cell.press("Tab")
        expect(page.locator("#ts-week-total")).to_have_text(str(8 * index))
    expect(page.locator(f"#{key}-total")).to_have_text("40")
    expect(page.locator("#ts-day-total-0")).to_have_text("8")

    # A refused cell says why, next to itself, and is marked invalid for assistive technology.
    saturday = hours_input(page, project, days[5])
    saturday.fill("7.3")
    saturday.press("Tab")
    error = page.locator(f"#{key}-d5-error")
    expect(error).to_contain_text("Log hours in quarter-hour steps")
    saturday = hours_input(page, project, days[5])
    expect(saturday).to_have_attribute("aria-invalid", "true")
    expect(saturday).to_have_attribute("aria-describedby", f"{key}-d5-error")
    saturday.fill("")
    saturday.press("Tab")
    expect(error).to_have_count(0)
    expect(hours_input(page, project, days[5])).not_to_have_class(re.compile(r"\bis-invalid\b"))
    expect(hours_input(page, project, days[5])).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ts-week-total")).to_have_text("40")
    assert TimeEntry.objects.filter(status=EntryStatus.DRAFT).count() == 5
    page.screenshot(path=str(SHOTS / "timesheet-grid-filled.png"), full_page=True)

    page.get_by_role("button", name="Submit week").click()
    expect(page.get_by_role("status").filter(has_text="5 entries wait for approval")).to_be_visible()
    expect(hours_input(page, project, days[0])).to_have_count(0)
    sign_out(page)

    # === 2. the project manager returns Wednesday and approves the rest ===================================
    sign_in(page, live_server, "pm", "pw-pm")
    page.goto(queue_url)
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Carla Nowak")).to_be_visible()
    expect(page.locator("#queue-summary")).to_contain_text("40 h")
    page.screenshot(path=str(SHOTS / "approval-queue.png"), full_page=True)

    page.get_by_label(
        f"{wednesday.strftime('%A')} {wednesday.day} {wednesday.strftime('%B')}, {project.number}"
    ).check()
    page.get_by_role("button", name="Reject selected").click()
    expect(page.locator("#reject-reason-error")).to_contain_text("Give a reason for the rejection")
    expect(page.get_by_label("Reason for returning them")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Reason for returning them").fill(REASON)
    page.get_by_role("button", name="Reject selected").click()
    expect(page.get_by_role("status").filter(has_text="Returned 1 entry (8 h)")).to_be_visible()

    page.get_by_label("Select all shown entries").check()
    expect(page.locator("#selected-count")).to_have_text("4")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_role("status").filter(has_text="Approved 4 entries (32 h)")).to_be_visible()
    expect(page.get_by_text("Nothing waits for a decision")).to_be_visible()
    sign_out(page)

    # === 3. the consultant reads the reason, fixes Wednesday and submits again ============================
    sign_in(page, live_server, "consultant", "pw-consultant")
    page.goto(grid_url)
    returned = page.get_by_role("region", name="Returned to you (1) — fix and submit again")
    expect(returned).to_contain_text(REASON)
    expect(page.locator(f"#{key}")).to_contain_text(REASON)
    fix = hours_input(page, project, wednesday)
    expect(fix).to_have_value("8")
    expect(fix).to_have_attribute("aria-describedby", f"{key}-d2-returned")
    fix.fill("6")
    fix.press("Tab")
    expect(page.locator("#ts-week-total")).to_have_text("38")
    page.screenshot(path=str(SHOTS / "timesheet-grid-returned.png"), full_page=True)
    page.get_by_role("button", name="Submit week").click()
    expect(page.get_by_role("status").filter(has_text="1 entry wait")).to_be_visible()
    sign_out(page)

    # === 4. the project manager approves the fix =========================================================
    sign_in(page, live_server, "pm", "pw-pm")
    page.goto(queue_url)
    expect(page.locator("#queue-summary")).to_contain_text("6 h")
    page.get_by_label("Select all shown entries").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_role("status").filter(has_text="Approved 1 entry (6 h)")).to_be_visible()
    sign_out(page)

    # === 5. the consultant's week is approved and locked ===================================================
    sign_in(page, live_server, "consultant", "pw-consultant")
    page.goto(grid_url)
    row = page.locator(f"#{key}")
    for index in range(5):
        cell = row.locator(f"#{key}-d{index}")
        expect(cell).to_contain_text("Approved")
        expect(cell.locator(".bi-lock-fill").first).to_be_visible()
        expect(cell.locator("input")).to_have_count(0)
    expect(page.locator("#ts-week-total")).to_have_text("38")
    expect(page.get_by_text("Returned to you")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "timesheet-grid-approved.png"), full_page=True)
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
