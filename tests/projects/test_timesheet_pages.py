"""The timesheet grid and the approval queue through Django's test client: a cell creates, changes and
deletes its draft through the services, every refusal of a service comes back next to the cell (never a
500), submitted and decided time is read-only, rows are added, copied and submitted, and managers approve or
return entries of their own projects only, at a constant number of queries."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects import services
from projects import timesheet_selectors as tss
from projects import timesheets as ts
from projects.models import EntryStatus, Expense, ProjectMember, TimeEntry

from .factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db

MON = dt.date(2026, 3, 9)  # a Monday inside the T&M project (2026-03-02 … 2026-08-31)
GRID = reverse("projects:timesheet")
CELL = reverse("projects:timesheet-cell")
ROW = reverse("projects:timesheet-row")
ROW_ADD = reverse("projects:timesheet-row-add")
ROW_REMOVE = reverse("projects:timesheet-row-remove")
COPY = reverse("projects:timesheet-copy")
SUBMIT = reverse("projects:timesheet-submit")
QUEUE = reverse("projects:approval-queue")
DECIDE = reverse("projects:approval-decide")
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- helpers ------------------------------------------------------------------------------------------------


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def grid(client, week=MON):
    return client.get(GRID, {"week": week.isoformat()})


def save_cell(client, project, day, hours, *, category="Developer", description="Data model workshop", billable=True):
    data = {
        "project": str(project.public_id),
        "category": category,
        "day": day.isoformat(),
        "hours": hours,
        "description": description,
        "billable": ["0", "1"] if billable else ["0"],
        "week": tss.week_start_of(day).isoformat(),
    }
    return client.post(CELL, data, **HTMX)


def log(person, project, day=MON, hours="8", **fields):
    fields.setdefault("description", "Data model workshop")
    fields.setdefault("labour_category", "Developer")
    return ts.time_entry_create(actor=person, project=project, date=day, hours=hours, **fields)


def entries(**filters):
    return list(TimeEntry.objects.filter(**filters).order_by("date", "pk"))


def cell_error(response, project, day, category="Developer") -> str:
    """The message shown next to the cell, after checking that the input points at it (aria)."""
    html = response.content.decode()
    key = f"{tss.row_key(project.pk, category)}-d{(day - tss.week_start_of(day)).days}"
    assert f'aria-describedby="{key}-error"' in html and 'aria-invalid="true"' in html
    match = re.search(rf'id="{key}-error"[^>]*>(.*?)</div>', html, re.S)
    assert match, "no message next to the cell"
    return match.group(1).replace("&#x27;", "'").strip()


@pytest.fixture
def con(client, people, team):
    return signed_in(client, people["consultant"])


@pytest.fixture
def pm2_project(people, customer, legal_entity, win):
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Second")
    tm_quote(deal)
    return win(deal, project_manager=people["pm2"])


# --- access -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("sales", 200),
        ("pm", 200),
        ("consultant", 200),
        ("admin", 200),
        ("finance", 403),
        ("executive", 403),
        ("auditor", 403),
    ],
)
def test_the_grid_is_for_people_who_log_time(client, people, role, status):
    assert signed_in(client, people[role]).get(GRID).status_code == status


def test_signed_out_people_are_sent_to_sign_in(client, db):
    for url in (GRID, QUEUE):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    for url in (CELL, ROW, ROW_ADD, ROW_REMOVE, COPY, SUBMIT, DECIDE):
        response = client.post(url, {})
        assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("url", [CELL, ROW, ROW_ADD, ROW_REMOVE, COPY, SUBMIT])
@pytest.mark.parametrize("role", ["finance", "executive", "auditor"])
def test_roles_that_do_not_log_time_cannot_post_to_the_grid(client, people, url, role):
    assert signed_in(client, people[role]).post(url, {"week": MON.isoformat()}).status_code == 403


def test_grid_actions_are_post_only(con):
    for url in (CELL, ROW, ROW_ADD, ROW_REMOVE, COPY, SUBMIT):
        assert con.get(url).status_code == 405


def test_a_project_the_person_does_not_see_answers_404(con, pm2_project):
    assert save_cell(con, pm2_project, MON, "8").status_code == 404
    assert not TimeEntry.objects.exists()


# --- the week -----------------------------------------------------------------------------------------------


def test_any_day_shows_its_iso_week_with_links_to_the_weeks_around(con):
    response = grid(con, MON + dt.timedelta(days=3))
    html = response.content.decode()
    assert response.context["week"].monday == MON
    assert "?week=2026-03-02" in html and "?week=2026-03-16" in html
    assert "Mon 9 Mar" in text_of(response) and "Sun 15 Mar" in text_of(response)


def test_a_bad_week_shows_this_week_with_a_warning(con):
    response = con.get(GRID, {"week": "next tuesday"})
    assert response.status_code == 200
    assert response.context["week"].monday == tss.week_start_of(dt.date.today())
    assert any("is not a date" in message for message in flashed(response))


def test_an_empty_week_invites_to_add_or_copy_rows(con):
    text = text_of(grid(con))
    assert "No time in this week yet" in text
    assert "Copy last week's rows" in text and "Add row" in text


# --- cells --------------------------------------------------------------------------------------------------


def test_a_cell_creates_updates_and_deletes_its_draft(con, people, team):
    response = save_cell(con, team, MON, "7.5")
    assert response.status_code == 200
    (entry,) = entries()
    assert (entry.person, entry.hours, entry.status, entry.labour_category, entry.description, entry.billable) == (
        people["consultant"],
        Decimal("7.5"),
        EntryStatus.DRAFT,
        "Developer",
        "Data model workshop",
        True,
    )
    html = response.content.decode()
    key = tss.row_key(team.pk, "Developer")
    assert html.lstrip().startswith(f'<td id="{key}-d0"') and 'value="7.5"' in html
    # The totals follow out of band: the row, the day, the week and the summary.
    assert re.search(rf'<td id="{key}-total"[^>]*hx-swap-oob="true">7.5<', html)
    assert re.search(r'id="ts-day-total-0">7.5<', html) and re.search(r'id="ts-week-total">7.5<', html)
    assert 'id="ts-summary"' in html

    assert save_cell(con, team, MON, "6").status_code == 200
    entry.refresh_from_db()
    assert entry.hours == Decimal("6")
    assert entry.history.first().history_change_reason == "Time entry changed"

    save_cell(con, team, MON + dt.timedelta(days=1), "2")
    response = save_cell(con, team, MON, "")
    assert response.status_code == 200 and [e.hours for e in entries()] == [Decimal("2")]
    assert re.search(r'id="ts-week-total">2<', response.content.decode())
    save_cell(con, team, MON + dt.timedelta(days=1), "0")
    assert not TimeEntry.objects.exists()


def test_a_cell_understands_commas_and_hours_with_minutes(con, team):
    save_cell(con, team, MON, "7,5")
    save_cell(con, team, MON + dt.timedelta(days=1), "6:45")
    assert [e.hours for e in entries()] == [Decimal("7.5"), Decimal("6.75")]


def test_an_empty_cell_left_empty_changes_nothing(con, team):
    assert save_cell(con, team, MON, "").status_code == 200
    assert not TimeEntry.objects.exists()


def test_a_cell_without_javascript_redirects_back_with_a_message(con, team):
    data = {"project": str(team.public_id), "category": "Developer", "day": MON.isoformat(), "hours": "1.1"}
    data["description"] = "Workshop"
    response = con.post(CELL, data)
    assert response.status_code == 302 and response["Location"].startswith(f"{GRID}?week=2026-03-09")
    assert any("quarter-hour" in message for message in flashed(response))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("1.1", "Log hours in quarter-hour steps"),
        ("abc", "Enter the hours as a number"),
        ("-2", "Hours must be more than 0"),
        ("25", "A day has 24 hours"),
    ],
)
def test_hours_the_service_refuses_show_its_message_next_to_the_cell(con, team, hours, message):
    response = save_cell(con, team, MON, hours)
    assert response.status_code == 422
    assert message in cell_error(response, team, MON)
    assert f'value="{hours}"' in response.content.decode()  # what was typed stays, to be corrected
    assert not TimeEntry.objects.exists()


def test_more_than_24_hours_a_day_is_refused_next_to_the_cell(con, people, team):
    log(people["consultant"], team, hours="20", labour_category="Senior consultant")
    response = save_cell(con, team, MON, "5")
    assert response.status_code == 422
    assert "the day would exceed 24 h" in cell_error(response, team, MON)
    assert TimeEntry.objects.count() == 1


def test_a_locked_month_is_refused_next_to_the_cell(con, people, team):
    ts.period_lock(actor=people["finance"], month=MON)
    response = save_cell(con, team, MON, "8")
    key = tss.row_key(team.pk, "Developer")
    html = response.content.decode()
    assert response.status_code == 422 and f'id="{key}-h0"' not in html  # a locked day has no input
    assert re.search(rf'id="{key}-d0-error"[^>]*>[^<]*March 2026 is locked by finance', html)
    assert not TimeEntry.objects.exists()
    assert "March 2026 is locked by finance: nothing dated in it changes" in text_of(grid(con))


def test_a_closed_project_is_refused_next_to_the_cell(con, people, team):
    save_cell(con, team, MON, "8")
    services.project_set_status(actor=people["pm"], project=team, status="closed", reason="Done")
    response = save_cell(con, team, MON + dt.timedelta(days=1), "4")
    assert response.status_code == 422
    assert "is closed; nothing more can be logged on it" in cell_error(response, team, MON + dt.timedelta(days=1))


def test_a_day_outside_the_project_is_refused_next_to_the_cell(con, team):
    sunday_before = dt.date(2026, 3, 1)
    response = save_cell(con, team, sunday_before, "2")
    assert response.status_code == 422
    assert "starts on 2026-03-02" in cell_error(response, team, sunday_before)


def test_a_category_missing_from_the_rate_card_is_refused_next_to_the_cell(con, people, team):
    con.post(ROW_ADD, {"week": MON.isoformat(), "row": f"{team.public_id}|Developer"})  # a real row first
    response = save_cell(con, team, MON, "3", category="Architect")
    assert response.status_code == 422
    assert "Billable time needs a rate" in cell_error(response, team, MON, category="Architect")
    assert "no rate for 'Architect'" in cell_error(response, team, MON, category="Architect")
    # Not billable, the same hours are fine.
    assert save_cell(con, team, MON, "3", category="Architect", billable=False).status_code == 200


def test_a_missing_description_is_refused_next_to_the_cell(con, team):
    response = save_cell(con, team, MON, "8", description="  ")
    assert response.status_code == 422
    assert "Describe the work" in cell_error(response, team, MON)


def test_the_grid_never_answers_500_to_nonsense(con, team):
    assert con.post(CELL, {"project": "nope", "day": "x"}, **HTMX).status_code == 404
    assert con.post(CELL, {"project": str(team.public_id), "day": "x", "category": "Developer"}).status_code == 400
    assert con.post(CELL, {"project": str(team.public_id), "day": MON.isoformat()}).status_code == 400


# --- read-only and returned entries ---------------------------------------------------------------------------


def test_submitted_approved_and_billed_days_are_read_only_and_decided_ones_locked(con, people, team):
    con_user, pm = people["consultant"], people["pm"]
    monday, tuesday, wednesday = (log(con_user, team, MON + dt.timedelta(days=d), hours="8") for d in range(3))
    ts.timesheet_submit(actor=con_user, week_start=MON)
    ts.time_entries_approve(actor=pm, entries=[tuesday, wednesday])
    ts.time_entries_mark_billed(entries=[wednesday], invoice_ref="DE-2026-0001")
    html = grid(con).content.decode()
    key = tss.row_key(team.pk, "Developer")
    for index in range(3):
        assert f'id="{key}-h{index}"' not in html  # no input on these days
    assert f'id="{key}-h3"' in html  # Thursday is still open
    cells = {i: re.search(rf'<td id="{key}-d{i}".*?</td>', html, re.S).group(0) for i in range(3)}
    assert "Submitted" in cells[0] and "bi-lock-fill" not in cells[0]
    assert "Approved" in cells[1] and "bi-lock-fill" in cells[1]
    assert "Billed" in cells[2] and "bi-lock-fill" in cells[2]
    # A submitted row's description is shown, no longer edited.
    assert f'id="{key}-desc"' in html  # Thursday keeps the row editable for new entries
    response = save_cell(con, team, MON, "4")  # a stale page still posting to a submitted day
    assert response.status_code == 422
    assert re.search(rf'id="{key}-d0-error"[^>]*>[^<]*only drafts and rejected entries', response.content.decode())
    monday.refresh_from_db()
    assert monday.hours == Decimal("8") and monday.status == EntryStatus.SUBMITTED


def test_returned_entries_are_highlighted_with_the_reason_and_stay_editable(con, people, team):
    con_user = people["consultant"]
    entry = log(con_user, team)
    ts.timesheet_submit(actor=con_user, week_start=MON)
    ts.time_entries_reject(actor=people["pm"], entries=[entry], reason="Split travel from the workshop")
    response = grid(con)
    html, text = response.content.decode(), text_of(response)
    key = tss.row_key(team.pk, "Developer")
    assert "Returned to you (1)" in text and "Split travel from the workshop" in text
    assert f'aria-describedby="{key}-d0-returned"' in html and "tl-ts-rejected-input" in html
    assert re.search(rf'id="{key}-d0-returned".*?Split travel from the workshop', html, re.S)
    # Fixed, it stays returned until the week is submitted again.
    assert save_cell(con, team, MON, "6").status_code == 200
    entry.refresh_from_db()
    assert (entry.hours, entry.status) == (Decimal("6"), EntryStatus.REJECTED)
    con.post(SUBMIT, {"week": MON.isoformat()})
    entry.refresh_from_db()
    assert entry.status == EntryStatus.SUBMITTED
    assert "Returned to you" not in text_of(grid(con))


def test_returned_entries_of_other_weeks_link_to_their_week(con, people, team):
    con_user = people["consultant"]
    entry = log(con_user, team, day=MON - dt.timedelta(days=7))
    ts.timesheet_submit(actor=con_user, week_start=MON - dt.timedelta(days=7))
    ts.time_entries_reject(actor=people["pm"], entries=[entry], reason="Wrong project")
    html = grid(con).content.decode()
    assert f"?week=2026-03-02#{tss.row_key(team.pk, 'Developer')}" in html


# --- rows ---------------------------------------------------------------------------------------------------


def test_add_row_offers_the_persons_projects_and_the_rate_card_in_force(con, team, pm2_project):
    response = grid(con)
    choices = {(item.project.pk, tuple(item.categories)) for item in response.context["week"].loggable}
    assert choices == {(team.pk, ("Developer", "Senior consultant"))}
    assert "(your usual)" in text_of(response)  # the consultant's default category is marked


def test_an_added_row_persists_across_reloads_until_removed(con, team):
    response = con.post(
        ROW_ADD, {"week": MON.isoformat(), "row": f"{team.public_id}|Senior consultant", "description": "Reviews"}
    )
    key = tss.row_key(team.pk, "Senior consultant")
    assert response.status_code == 302 and response["Location"].endswith(f"#{key}")
    html = grid(con).content.decode()
    assert f'id="{key}"' in html and 'value="Reviews"' in html
    assert f'id="{key}"' not in grid(con, MON + dt.timedelta(days=7)).content.decode()  # only in its week
    con.post(ROW_REMOVE, {"week": MON.isoformat(), "project": str(team.public_id), "category": "Senior consultant"})
    assert f'id="{key}"' not in grid(con).content.decode()


def test_add_row_refuses_a_category_off_the_rate_card_and_foreign_projects(con, team, pm2_project):
    response = con.post(ROW_ADD, {"week": MON.isoformat(), "row": f"{team.public_id}|Architect"})
    assert any("Choose a labour category of the rate card" in m for m in flashed(response))
    response = con.post(ROW_ADD, {"week": MON.isoformat(), "row": f"{pm2_project.public_id}|Developer"})
    assert any("Choose one of your projects" in m for m in flashed(response))
    response = con.post(ROW_ADD, {"week": MON.isoformat(), "row": "garbage"})
    assert any("Choose one of your projects" in m for m in flashed(response))
    assert grid(con).context["week"].rows == []


def test_a_row_with_hours_cannot_be_removed(con, team):
    save_cell(con, team, MON, "8")
    response = con.post(ROW_REMOVE, {"week": MON.isoformat(), "project": str(team.public_id), "category": "Developer"})
    assert any("empty its cells" in m for m in flashed(response))
    assert TimeEntry.objects.count() == 1


def test_emptying_the_last_cell_keeps_the_row(con, team):
    save_cell(con, team, MON, "8")
    save_cell(con, team, MON, "")
    assert f'id="{tss.row_key(team.pk, "Developer")}"' in grid(con).content.decode()


def test_the_row_description_and_billable_flag_update_its_editable_entries(con, people, team):
    con_user = people["consultant"]
    submitted = log(con_user, team, MON, description="Old")
    ts.timesheet_submit(actor=con_user, week_start=MON)
    tuesday = log(con_user, team, MON + dt.timedelta(days=1), description="Old")
    wednesday = log(con_user, team, MON + dt.timedelta(days=2), description="Old")
    next_week = log(con_user, team, MON + dt.timedelta(days=7), description="Old")
    data = {"project": str(team.public_id), "category": "Developer", "week": MON.isoformat()}
    response = con.post(ROW, {**data, "description": "API design", "billable": ["0"]}, **HTMX)
    assert response.status_code == 200 and "Saved to 2 entries" in text_of(response)
    for entry, expected in ((tuesday, ("API design", False)), (wednesday, ("API design", False))):
        entry.refresh_from_db()
        assert (entry.description, entry.billable) == expected
    for entry in (submitted, next_week):
        entry.refresh_from_db()
        assert (entry.description, entry.billable) == ("Old", True)


def test_a_row_refusal_is_shown_with_its_day_and_nothing_changes(con, people, team):
    con_user = people["consultant"]
    log(con_user, team, MON, labour_category="Architect", billable=False)
    log(con_user, team, MON + dt.timedelta(days=1), labour_category="Architect", billable=False)
    data = {"project": str(team.public_id), "category": "Architect", "week": MON.isoformat()}
    response = con.post(ROW, {**data, "description": "Design", "billable": ["0", "1"]}, **HTMX)
    key = tss.row_key(team.pk, "Architect")
    html = response.content.decode()
    assert response.status_code == 422
    assert f'aria-describedby="{key}-meta-error"' in html and 'aria-invalid="true"' in html
    assert "Mon 09 Mar" in text_of(response) and "no rate for 'Architect'" in text_of(response)
    assert set(TimeEntry.objects.values_list("billable", "description")) == {(False, "Data model workshop")}
    response = con.post(ROW, {**data, "description": " ", "billable": ["0"]}, **HTMX)
    assert response.status_code == 422 and "Describe the work" in text_of(response)
    assert f'id="{key}-desc" name="description"' in html


def test_a_row_in_a_locked_month_says_so(con, people, team):
    log(people["consultant"], team, MON)
    ts.period_lock(actor=people["finance"], month=MON)
    data = {"project": str(team.public_id), "category": "Developer", "week": MON.isoformat()}
    response = con.post(ROW, {**data, "description": "Later", "billable": ["0", "1"]}, **HTMX)
    assert response.status_code == 422 and "March 2026 is locked by finance" in text_of(response)
    assert TimeEntry.objects.get().description == "Data model workshop"


def test_a_rows_description_is_kept_for_its_first_cell(con, team):
    con.post(ROW_ADD, {"week": MON.isoformat(), "row": f"{team.public_id}|Developer"})
    data = {"project": str(team.public_id), "category": "Developer", "week": MON.isoformat()}
    response = con.post(ROW, {**data, "description": "Sprint planning", "billable": ["0"]}, **HTMX)
    assert response.status_code == 200
    html = grid(con).content.decode()
    assert 'value="Sprint planning"' in html


def test_copy_last_week_copies_rows_without_hours(con, people, team):
    con_user = people["consultant"]
    log(con_user, team, MON - dt.timedelta(days=7), description="Backend", hours="8")
    log(con_user, team, MON - dt.timedelta(days=6), description="Backend", hours="8")
    log(con_user, team, MON - dt.timedelta(days=5), labour_category="Senior consultant", description="Reviews")
    response = con.post(COPY, {"week": MON.isoformat()})
    assert any("Copied 2 rows" in m for m in flashed(response))
    week = grid(con).context["week"]
    assert [(r.labour_category, r.description, r.billable, r.total, r.pending) for r in week.rows] == [
        ("Developer", "Backend", True, 0, True),
        ("Senior consultant", "Reviews", True, 0, True),
    ]
    assert TimeEntry.objects.filter(date__gte=MON).count() == 0
    response = con.post(COPY, {"week": MON.isoformat()})
    assert any("already in this week's grid" in m for m in flashed(response))
    response = con.post(COPY, {"week": (MON + dt.timedelta(days=14)).isoformat()})
    assert any("has no rows to copy" in m for m in flashed(response))


def test_copy_skips_projects_closed_since(con, people, team):
    log(people["consultant"], team, MON - dt.timedelta(days=7))
    services.project_set_status(actor=people["pm"], project=team, status="closed", reason="Done")
    response = con.post(COPY, {"week": MON.isoformat()})
    assert any("1 row was not copied" in m for m in flashed(response))


# --- submit -------------------------------------------------------------------------------------------------


def test_submit_week_sends_the_drafts_and_says_how_many(con, people, team):
    con_user = people["consultant"]
    log(con_user, team, MON)
    log(con_user, team, MON + dt.timedelta(days=1))
    ts.expense_create(actor=con_user, project=team, date=MON, category="travel", amount="40.00", description="Train")
    assert "3 draft or returned entries to submit" in text_of(grid(con))
    response = con.post(SUBMIT, {"week": (MON + dt.timedelta(days=2)).isoformat()})  # any day of the week
    assert response.status_code == 302
    assert any("3 entries wait for approval" in m for m in flashed(response))
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.SUBMITTED}
    assert Expense.objects.get().status == EntryStatus.SUBMITTED
    response = con.post(SUBMIT, {"week": MON.isoformat()})
    assert any("Nothing to submit" in m for m in flashed(response))


def test_submit_refusal_is_a_message(con, people, team):
    log(people["consultant"], team)
    ts.period_lock(actor=people["finance"], month=MON)
    response = con.post(SUBMIT, {"week": MON.isoformat()})
    assert any("locked by finance" in m for m in flashed(response))
    assert TimeEntry.objects.get().status == EntryStatus.DRAFT


# --- query counts -------------------------------------------------------------------------------------------


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured)


def test_the_grid_costs_the_same_queries_for_one_entry_or_many(con, people, team, amend):
    con_user = people["consultant"]
    log(con_user, team, MON, hours="1")
    grid(con)  # warm the session
    few = _queries(con, GRID, {"week": MON.isoformat()})
    for day in range(7):
        for category in ("Developer", "Senior consultant"):
            if (day, category) != (0, "Developer"):
                log(con_user, team, MON + dt.timedelta(days=day), hours="1", labour_category=category)
    ts.timesheet_submit(actor=con_user, week_start=MON)
    con.post(ROW_ADD, {"week": MON.isoformat(), "row": f"{team.public_id}|Developer"})
    log(con_user, team, MON, hours="1", labour_category="Tester", billable=False)
    many = _queries(con, GRID, {"week": MON.isoformat()})
    assert many == few <= 25  # 15 today: session, user, roles, navigation, five for the week, four returned
    assert len(grid(con).context["week"].rows) == 3


def test_the_week_selector_takes_five_queries(people, team, django_assert_num_queries):
    con_user = people["consultant"]
    for day in range(5):
        log(con_user, team, MON + dt.timedelta(days=day), hours="2")
    con_user = type(con_user).objects.get(pk=con_user.pk)
    tss.timesheet_week(person=con_user, week_start=MON)  # warm the permission cache
    with django_assert_num_queries(5):
        week = tss.timesheet_week(person=con_user, week_start=MON)
    assert week.total == Decimal("10") and week.day_totals[0] == Decimal("2")


# --- the approval queue -------------------------------------------------------------------------------------


def submitted_week(person, project, *, days=5, hours="8", category="Developer"):
    made = [
        log(person, project, MON + dt.timedelta(days=d), hours=hours, labour_category=category) for d in range(days)
    ]
    ts.timesheet_submit(actor=person, week_start=MON)
    return made


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("pm", 200),
        ("admin", 200),
        ("auditor", 200),
        ("consultant", 403),
        ("sales", 403),
        ("finance", 403),
        ("executive", 403),
    ],
)
def test_the_queue_is_for_managers_admins_and_auditors(client, people, role, status):
    assert signed_in(client, people[role]).get(QUEUE).status_code == status


@pytest.mark.parametrize("role", ["consultant", "sales", "finance", "executive", "auditor"])
def test_only_deciders_post_decisions(client, people, team, role):
    (entry,) = submitted_week(people["consultant"], team, days=1)
    response = signed_in(client, people[role]).post(DECIDE, {"action": "approve", "time": [str(entry.public_id)]})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == EntryStatus.SUBMITTED


def test_a_manager_sees_the_submitted_entries_of_their_projects_grouped_by_person_and_week(
    client, people, team, pm2_project
):
    submitted_week(people["consultant"], team, days=3)
    submitted_week(people["sales"], team, days=1, category="Senior consultant")
    log(people["consultant"], team, MON + dt.timedelta(days=7))  # a draft of next week: not in the queue
    ProjectMember.objects.create(project=pm2_project, user=people["consultant"])
    foreign = log(people["consultant"], pm2_project, MON + dt.timedelta(days=6), hours="1")
    ts.timesheet_submit(actor=people["consultant"], week_start=MON)
    ts.expense_create(
        actor=people["consultant"],
        project=team,
        date=MON + dt.timedelta(days=6),
        category="travel",
        amount="120.00",
        description="Train",
    )
    ts.timesheet_submit(actor=people["consultant"], week_start=MON)
    response = signed_in(client, people["pm"]).get(QUEUE)
    queue = response.context["queue"]
    assert [(g.person.username, g.monday, len(g.time_entries), len(g.expenses)) for g in queue.groups] == [
        ("consultant", MON, 3, 1),
        ("sales", MON, 1, 0),
    ]
    assert queue.hours_total == Decimal("32") and queue.total == 5
    assert foreign.public_id not in {e.public_id for g in queue.groups for e in g.time_entries}
    text = text_of(response)
    assert "5 entries waiting" in text and "32 h" in text and "EUR 120.00" in text
    assert 'id="select-all"' in response.content.decode()
    # The admin sees both managers' entries.
    admin_queue = signed_in(client, people["admin"]).get(QUEUE).context["queue"]
    assert admin_queue.time_total == 5


def test_the_queue_filters_by_person_project_and_week(client, people, team):
    submitted_week(people["consultant"], team, days=2)
    submitted_week(people["sales"], team, days=1, category="Senior consultant")
    pm = signed_in(client, people["pm"])
    assert pm.get(QUEUE, {"person": people["sales"].pk}).context["queue"].time_total == 1
    assert pm.get(QUEUE, {"project": str(team.public_id)}).context["queue"].time_total == 3
    assert pm.get(QUEUE, {"week": "2026-03-12"}).context["queue"].time_total == 3
    response = pm.get(QUEUE, {"week": "2026-03-16"})
    assert response.context["queue"].time_total == 0 and "Nothing waiting matches these filters" in text_of(response)
    response = pm.get(QUEUE, {"week": "soon", "person": "x", "project": "y"})
    assert response.status_code == 200 and response.context["queue"].time_total == 3


def test_the_auditor_sees_the_queue_without_any_button(client, people, team):
    submitted_week(people["consultant"], team, days=2)
    response = signed_in(client, people["auditor"]).get(QUEUE)
    html = response.content.decode()
    assert response.context["queue"].time_total == 2
    assert "Read-only" in text_of(response)
    assert "approval-form" not in html and 'type="checkbox"' not in html and "Approve selected" not in html


def test_approve_and_reject_in_bulk(client, people, team):
    monday, tuesday, wednesday = submitted_week(people["consultant"], team, days=3)
    pm = signed_in(client, people["pm"])
    response = pm.post(DECIDE, {"action": "reject", "time": [str(tuesday.public_id)], "reason": "Split the travel"})
    assert response.status_code == 302 and response["Location"] == QUEUE
    assert any("Returned 1 entry (8 h) to 1 person" in m for m in flashed(response))
    response = pm.post(DECIDE, {"action": "approve", "time": [str(monday.public_id), str(wednesday.public_id)]})
    assert any("Approved 2 entries (16 h)" in m for m in flashed(response))
    states = {e.pk: (e.status, e.rejection_reason) for e in entries()}
    assert states == {
        monday.pk: (EntryStatus.APPROVED, ""),
        tuesday.pk: (EntryStatus.REJECTED, "Split the travel"),
        wednesday.pk: (EntryStatus.APPROVED, ""),
    }


def test_reject_needs_a_reason_shown_next_to_the_field(client, people, team):
    (entry,) = submitted_week(people["consultant"], team, days=1)
    response = signed_in(client, people["pm"]).post(
        DECIDE, {"action": "reject", "time": [str(entry.public_id)], "reason": "   "}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert 'aria-describedby="reject-reason-error"' in html and 'aria-invalid="true"' in html
    assert "Give a reason for the rejection" in text_of(response)
    assert f'value="{entry.public_id}" id="t-{entry.public_id}" data-group' in html and "checked" in html
    entry.refresh_from_db()
    assert entry.status == EntryStatus.SUBMITTED


def test_nothing_ticked_or_a_bad_action_is_a_clear_message(client, people, team):
    submitted_week(people["consultant"], team, days=1)
    pm = signed_in(client, people["pm"])
    response = pm.post(DECIDE, {"action": "approve"})
    assert response.status_code == 400 and "Tick at least one entry" in text_of(response)
    response = pm.post(DECIDE, {"action": "delete", "time": ["x"]})
    assert response.status_code == 400 and "Choose Approve or Reject" in text_of(response)
    response = pm.post(DECIDE, {"action": "approve", "time": ["not-a-uuid"]})
    assert response.status_code == 400 and "selection is not valid" in text_of(response)


def test_a_manager_cannot_decide_another_managers_entries(client, people, team, pm2_project):
    (entry,) = submitted_week(people["consultant"], team, days=1)
    response = signed_in(client, people["pm2"]).post(DECIDE, {"action": "approve", "time": [str(entry.public_id)]})
    assert response.status_code == 400
    assert "no longer wait for your decision" in text_of(response) and "nothing was changed" in text_of(response)
    entry.refresh_from_db()
    assert entry.status == EntryStatus.SUBMITTED
    assert signed_in(client, people["pm2"]).get(QUEUE).context["queue"].total == 0


def test_a_selection_partly_decided_meanwhile_changes_nothing(client, people, team):
    first, second = submitted_week(people["consultant"], team, days=2)
    ts.time_entries_approve(actor=people["admin"], entries=[first])
    response = signed_in(client, people["pm"]).post(
        DECIDE, {"action": "approve", "time": [str(first.public_id), str(second.public_id)]}
    )
    assert response.status_code == 400 and "1 of the ticked entries no longer wait" in text_of(response)
    second.refresh_from_db()
    assert second.status == EntryStatus.SUBMITTED


def test_expenses_are_decided_with_the_time(client, people, team):
    (entry,) = submitted_week(people["consultant"], team, days=1)
    expense = ts.expense_create(
        actor=people["consultant"], project=team, date=MON, category="meals", amount="20.00", description="Lunch"
    )
    ts.timesheet_submit(actor=people["consultant"], week_start=MON)
    response = signed_in(client, people["pm"]).post(
        DECIDE, {"action": "approve", "time": [str(entry.public_id)], "expense": [str(expense.public_id)]}
    )
    assert any("Approved 2 entries (8 h, 1 expense)" in m for m in flashed(response))
    expense.refresh_from_db()
    assert expense.status == EntryStatus.APPROVED


def test_the_decision_keeps_the_filters(client, people, team):
    (entry,) = submitted_week(people["consultant"], team, days=1)
    data = {
        "action": "approve",
        "time": [str(entry.public_id)],
        "week": MON.isoformat(),
        "project": str(team.public_id),
    }
    response = signed_in(client, people["pm"]).post(DECIDE, data)
    assert response["Location"] == f"{QUEUE}?project={team.public_id}&week=2026-03-09"


def test_the_queue_costs_the_same_queries_for_few_or_many_entries(client, people, team):
    submitted_week(people["consultant"], team, days=1)
    pm = signed_in(client, people["pm"])
    pm.get(QUEUE)
    few = _queries(pm, QUEUE)
    submitted_week(people["consultant"], team, days=7, hours="1", category="Senior consultant")
    submitted_week(people["sales"], team, days=7, hours="1", category="Senior consultant")
    ts.expense_create(
        actor=people["sales"], project=team, date=MON, category="meals", amount="20.00", description="Lunch"
    )
    ts.timesheet_submit(actor=people["sales"], week_start=MON)
    many = _queries(pm, QUEUE)
    assert many == few <= 25  # 12 today: session, user, roles, navigation, six for the queue


def test_a_big_queue_says_how_much_it_shows(client, people, team, monkeypatch):
    submitted_week(people["consultant"], team, days=7, hours="1")
    monkeypatch.setattr(tss, "QUEUE_LIMIT", 4)
    response = signed_in(client, people["pm"]).get(QUEUE)
    queue = response.context["queue"]
    assert (queue.time_shown, queue.time_total, queue.hours_total) == (4, 7, Decimal("7"))
    assert "Showing the oldest 4 of 7 time entries" in text_of(response)


def test_the_queue_page_matches_the_approval_queue_selector(client, people, team, pm2_project):
    from projects import selectors

    submitted_week(people["consultant"], team, days=3)
    ProjectMember.objects.create(project=pm2_project, user=people["sales"])
    log(people["sales"], pm2_project, MON, hours="2")
    ts.timesheet_submit(actor=people["sales"], week_start=MON)
    for who in ("pm", "pm2", "admin"):
        page = tss.approval_queue_page(user=people[who])
        shown = {e.pk for g in page.groups for e in g.time_entries}
        assert shown == {e.pk for e in selectors.approval_queue(user=people[who]).time_entries}


# --- the row service ----------------------------------------------------------------------------------------


def test_timesheet_row_update_is_all_or_nothing(people, team):
    con_user = people["consultant"]
    fine = log(con_user, team, MON, labour_category="Architect", billable=False)
    ts.period_lock(actor=people["finance"], month=dt.date(2026, 4, 1))
    assert (
        ts.timesheet_row_update(
            actor=con_user, week_start=MON, project=team, labour_category="Architect", description="X", billable=False
        )
        == 1
    )
    with pytest.raises(ts.ValidationFailed, match="Mon 09 Mar"):
        ts.timesheet_row_update(
            actor=con_user, week_start=MON, project=team, labour_category="Architect", description="Y", billable=True
        )
    fine.refresh_from_db()
    assert (fine.description, fine.billable) == ("X", False)
    with pytest.raises(ts.ValidationFailed, match="Monday"):
        ts.timesheet_row_update(
            actor=con_user,
            week_start=MON + dt.timedelta(days=1),
            project=team,
            labour_category="Architect",
            description="Y",
            billable=False,
        )
    with pytest.raises(ts.NotPermitted):
        ts.timesheet_row_update(
            actor=people["auditor"],
            week_start=MON,
            project=team,
            labour_category="Architect",
            description="Y",
            billable=False,
        )


# --- the permission matrix of these pages (GET and an empty POST per role) ---------------------------------

ROLES = ["sales", "pm", "consultant", "finance", "executive", "auditor", "admin"]
LOGGERS = {"sales", "pm", "consultant", "admin"}
MATRIX = {
    # url: (GET for loggers/deciders, empty POST for them); everybody else 403, signed out → sign-in.
    GRID: ({"sales", "pm", "consultant", "admin"}, 200, None),
    CELL: (LOGGERS, 405, 404),
    ROW: (LOGGERS, 405, 404),
    ROW_ADD: (LOGGERS, 405, 302),
    ROW_REMOVE: (LOGGERS, 405, 404),
    COPY: (LOGGERS, 405, 302),
    SUBMIT: (LOGGERS, 405, 302),
    QUEUE: ({"pm", "admin", "auditor"}, 200, None),
    DECIDE: ({"pm", "admin"}, 405, 400),
}


@pytest.mark.parametrize("url", list(MATRIX))
def test_the_permission_matrix(client, people, url):
    allowed, get_status, post_status = MATRIX[url]
    for role in ROLES:
        client.force_login(people[role])
        expected_get = get_status if role in allowed else 403
        assert client.get(url).status_code == expected_get, (url, role, "GET")
        if post_status is not None:
            expected_post = post_status if role in allowed else 403
            assert client.post(url, {}).status_code == expected_post, (url, role, "POST")
        client.logout()
