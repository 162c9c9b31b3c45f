"""The time and expenses API: logging, editing and adjusting time, expenses with receipts, the weekly
submission, the approval queue and bulk decisions, locked months and project teams; who may do what
(signed out 401, roles without the capability 403, records outside one's scope 404, auditors read only);
errors as JSON with flat keys; lists in a constant number of queries; everything in the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve, reverse
from rest_framework.test import APIClient

from projects import timesheets as ts
from projects.models import EntryStatus, Expense, LockedPeriod, ProjectMember, TimeEntry

pytestmark = pytest.mark.django_db

API = "/api/v1"
MON = dt.date(2026, 3, 9)  # a Monday inside the T&M project (2026-03-02 … 2026-08-31)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
ERROR_KEYS = {"message", "code", "errors"}


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


def log(person, project, day=MON, hours="8", **fields):
    fields.setdefault("description", "Data model workshop")
    return ts.time_entry_create(actor=person, project=project, date=day, hours=hours, **fields)


def spend(person, project, day=MON, amount="120.00", **fields):
    fields.setdefault("description", "Train to the workshop")
    fields.setdefault("category", "travel")
    return ts.expense_create(actor=person, project=project, date=day, amount=amount, **fields)


def submitted(person, project, *days, hours="1", category="Developer"):
    """Submitted entries made directly (set-up for approval tests, not the rule under test)."""
    return TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=person,
                project=project,
                date=day,
                hours=Decimal(hours),
                labour_category=category,
                description="Work",
                status=EntryStatus.SUBMITTED,
            )
            for day in days
        ]
    )


def submitted_expenses(person, project, *days):
    return Expense.objects.bulk_create(
        [
            Expense(
                person=person,
                project=project,
                date=day,
                category="travel",
                amount=Decimal("10.00"),
                currency="EUR",
                description="Taxi",
                status=EntryStatus.SUBMITTED,
            )
            for day in days
        ]
    )


def days(count: int, start: dt.date = MON) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range(count)]


def queries_of(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.json()
    return len(captured)


def entry_url(entry) -> str:
    return f"{API}/time-entries/{entry.public_id}/"


def expense_url(expense) -> str:
    return f"{API}/expenses/{expense.public_id}/"


def time_body(project, /, **overrides) -> dict:
    return {
        "project": str(project.public_id),
        "date": MON.isoformat(),
        "hours": "7.5",
        "description": "Data model workshop",
        **overrides,
    }


def pdf(name="receipt.pdf", content=PDF, content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type)


# --- signed out, and the routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/time-entries/"),
        ("post", "/time-entries/"),
        ("get", "/expenses/"),
        ("post", "/expenses/"),
        ("post", "/timesheets/submit/"),
        ("get", "/approvals/"),
        ("post", "/approvals/approve/"),
        ("post", "/approvals/reject/"),
        ("get", "/locked-periods/"),
        ("post", "/locked-periods/"),
    ],
)
def test_signed_out_callers_get_401(method, path):
    response = getattr(APIClient(), method)(f"{API}{path}", {}, format="json")
    assert response.status_code == 401 and set(response.json()) == ERROR_KEYS


def test_signed_out_callers_get_401_on_records_and_teams(team, people):
    entry = log(people["consultant"], team)
    client = APIClient()
    assert client.get(entry_url(entry)).status_code == 401
    assert client.patch(entry_url(entry), {"hours": "1"}, format="json").status_code == 401
    assert client.get(f"{API}/projects/{team.public_id}/members/").status_code == 401
    assert TimeEntry.objects.get().hours == Decimal("8")


def test_detail_routes_take_public_ids_only_so_sibling_paths_stay_free(team, people, client_for):
    try:
        match = resolve(f"{API}/time-entries/import/")
    except Resolver404:
        match = None
    assert match is None or match.url_name != "time-entry-detail"
    client = client_for(people["consultant"])
    assert client.get(f"{API}/time-entries/12/").status_code == 404  # database ids name nothing
    entry = log(people["consultant"], team)
    assert client.get(f"{API}/time-entries/{entry.pk}/").status_code == 404


# --- time entries -----------------------------------------------------------------------------------------


def test_log_time_and_read_it_back(team, people, client_for):
    client = client_for(people["consultant"])
    response = client.post(f"{API}/time-entries/", time_body(team), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    entry = TimeEntry.objects.get()
    assert body["id"] == str(entry.public_id)
    assert body["project"] == {"id": str(team.public_id), "number": team.number, "name": team.name}
    assert (body["person"], body["hours"], body["labour_category"], body["status"], body["editable"]) == (
        "consultant",
        "7.50",
        "Developer",  # the member's default category
        "draft",
        True,
    )
    assert body["adjusts"] is None and body["billable"] is True
    assert client.get(entry_url(entry)).json() == body


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hours": "1.1"}, "hours"),
        ({"hours": "0"}, "hours"),
        ({"hours": "25"}, "hours"),
        ({"hours": "abc"}, "hours"),
        ({"date": "2026-09-01"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"labour_category": "Architect"}, "labour_category"),
        ({"description": " "}, "description"),
        ({"project": "00000000-0000-0000-0000-000000000000"}, "project"),
        ({"project": "not-a-uuid"}, "project"),
    ],
)
def test_time_refusals_are_json_with_flat_keys(team, people, client_for, overrides, field):
    response = client_for(people["consultant"]).post(f"{API}/time-entries/", time_body(team, **overrides))
    assert response.status_code == 400, response.json()
    assert set(response.json()) == ERROR_KEYS and field in response.json()["errors"]
    assert not TimeEntry.objects.exists()


def test_more_than_24_hours_a_day_is_refused(team, people, client_for):
    client = client_for(people["consultant"])
    assert client.post(f"{API}/time-entries/", time_body(team, hours="20")).status_code == 201
    response = client.post(f"{API}/time-entries/", time_body(team, hours="4.25"))
    assert response.status_code == 400 and "exceed 24 h" in response.json()["errors"]["hours"][0]


@pytest.mark.parametrize(("who", "status"), [("finance", 403), ("executive", 403), ("auditor", 403), ("pm2", 400)])
def test_who_may_log_time(team, people, client_for, who, status):
    """Finance, executives and auditors do not log time; pm2 cannot even name a project outside their scope."""
    response = client_for(people[who]).post(f"{API}/time-entries/", time_body(team))
    assert response.status_code == status and set(response.json()) == ERROR_KEYS
    assert not TimeEntry.objects.exists()


def test_a_non_member_who_sees_the_project_is_refused_with_403(tm_project, people, client_for):
    # The sales rep owns the customer, so sees the project, but is not on its team here.
    response = client_for(people["sales"]).post(f"{API}/time-entries/", time_body(tm_project))
    assert response.status_code == 403 and "not a member" in response.json()["message"]


def test_create_honours_the_idempotency_key(team, people, client_for):
    client = client_for(people["consultant"])
    first = client.post(f"{API}/time-entries/", time_body(team), HTTP_IDEMPOTENCY_KEY="t-1")
    replay = client.post(f"{API}/time-entries/", time_body(team), HTTP_IDEMPOTENCY_KEY="t-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    other = client.post(f"{API}/time-entries/", time_body(team, hours="1"), HTTP_IDEMPOTENCY_KEY="t-1")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert TimeEntry.objects.count() == 1


def test_time_list_scope_and_filters(team, people, client_for):
    con, sales = people["consultant"], people["sales"]
    mine = log(con, team)
    log(con, team, day=MON + dt.timedelta(days=7))
    theirs = log(sales, team)
    ts.timesheet_submit(actor=sales, week_start=MON)

    def ids(who, query=""):
        response = client_for(people[who]).get(f"{API}/time-entries/{query}")
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert len(ids("consultant")) == 2  # own only
    assert ids("sales") == {str(theirs.public_id)}
    assert len(ids("pm")) == 3  # all of the projects they manage
    assert ids("pm2") == set()
    assert len(ids("finance")) == len(ids("auditor")) == len(ids("executive")) == 3
    assert ids("pm", "?person=sales") == {str(theirs.public_id)}
    assert ids("pm", "?status=submitted") == {str(theirs.public_id)}
    assert len(ids("pm", f"?week={(MON + dt.timedelta(days=3)).isoformat()}")) == 2
    assert ids("pm", "?person=consultant&date_to=2026-03-15") == {str(mine.public_id)}
    assert len(ids("pm", "?date_from=2026-03-10")) == 1
    assert len(ids("pm", f"?project={team.public_id}")) == 3
    assert ids("pm", "?project=00000000-0000-0000-0000-000000000000") == set()
    assert client_for(people["pm"]).get(f"{API}/time-entries/?week=someday").status_code == 400
    # Out of scope answers 404, not 403.
    assert client_for(people["pm2"]).get(entry_url(mine)).status_code == 404
    assert client_for(people["sales"]).get(entry_url(mine)).status_code == 404


def test_time_list_keeps_a_constant_number_of_queries(team, people, client_for):
    con = people["consultant"]
    log(con, team)
    client = client_for(people["pm"])
    one = queries_of(client, f"{API}/time-entries/")
    for day in days(6, MON + dt.timedelta(days=1)):
        log(con, team, day=day, hours="1")
    adjusted = submitted(people["sales"], team, dt.date(2026, 4, 6), category="Senior consultant")[0]
    ts.time_entries_approve(actor=people["pm"], entries=[adjusted])
    ts.time_entry_adjust(actor=people["sales"], original=adjusted, hours="-0.5", description="Shorter")
    many = queries_of(client, f"{API}/time-entries/")
    assert client.get(f"{API}/time-entries/").json()["count"] == 9
    assert many == one


def test_edit_and_delete_own_drafts_only(team, people, client_for):
    con = people["consultant"]
    entry = log(con, team)
    client = client_for(con)
    patched = client.patch(entry_url(entry), {"hours": "6", "description": "Workshop"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["hours"], patched.json()["description"]) == ("6.00", "Workshop")

    bad = client.patch(entry_url(entry), {"hours": "0.1"}, format="json")
    assert bad.status_code == 400 and "hours" in bad.json()["errors"]
    fixed = client.patch(entry_url(entry), {"project": str(team.public_id), "status": "approved"}, format="json")
    assert fixed.status_code == 400 and set(fixed.json()["errors"]) == {"project", "status"}
    assert client.put(entry_url(entry), time_body(team), format="json").status_code == 405

    # The project manager sees it but may not change someone else's time; other people do not see it.
    refused = client_for(people["pm"]).patch(entry_url(entry), {"hours": "1"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert client_for(people["pm"]).delete(entry_url(entry)).status_code == 403
    assert client_for(people["sales"]).patch(entry_url(entry), {"hours": "1"}, format="json").status_code == 404
    assert client_for(people["auditor"]).patch(entry_url(entry), {"hours": "1"}, format="json").status_code == 403
    assert client_for(people["auditor"]).delete(entry_url(entry)).status_code == 403

    ts.timesheet_submit(actor=con, week_start=MON)
    late = client.patch(entry_url(entry), {"hours": "5"}, format="json")
    assert late.status_code == 409 and late.json()["code"] == "transition_not_allowed"
    assert client.delete(entry_url(entry)).status_code == 409

    draft = log(con, team, day=MON + dt.timedelta(days=7))
    assert client.delete(entry_url(draft)).status_code == 204
    assert client.get(entry_url(draft)).status_code == 404
    assert TimeEntry.objects.get().hours == Decimal("6")


def test_approved_time_is_corrected_with_an_adjustment(team, people, client_for):
    con = people["consultant"]
    entry = log(con, team)
    client = client_for(con)
    url = f"{entry_url(entry)}adjust/"
    early = client.post(url, {"hours": "-1", "description": "Less"}, format="json")
    assert early.status_code == 409 and early.json()["code"] == "transition_not_allowed"

    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[entry])
    response = client.post(url, {"hours": "-2", "description": "Workshop ended early"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["adjusts"], body["hours"], body["date"], body["status"]) == (
        str(entry.public_id),
        "-2.00",
        MON.isoformat(),
        "draft",
    )
    assert client.post(url, {"hours": "0", "description": "Nothing"}, format="json").json()["errors"].keys() == {
        "hours"
    }
    assert client.post(url, {"hours": "-7", "description": "Too much"}, format="json").status_code == 400
    assert client.post(url, {"hours": "1"}, format="json").json()["errors"].keys() == {"description"}
    assert client_for(people["pm"]).post(url, {"hours": "1", "description": "Mine?"}, format="json").status_code == 403
    assert client_for(people["pm2"]).post(url, {"hours": "1", "description": "x"}, format="json").status_code == 404
    assert TimeEntry.objects.get(pk=entry.pk).hours == Decimal("8")  # the original never changes


# --- expenses ---------------------------------------------------------------------------------------------


def expense_body(project, /, **overrides) -> dict:
    return {
        "project": str(project.public_id),
        "date": MON.isoformat(),
        "category": "travel",
        "amount": "120.00",
        "description": "Train to the workshop",
        **overrides,
    }


def test_log_an_expense_as_json(team, people, client_for):
    response = client_for(people["consultant"]).post(f"{API}/expenses/", expense_body(team), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["amount"], body["currency"], body["markup_percent"], body["status"]) == (
        "120.00",
        "EUR",
        "10.00",
        "draft",
    )
    assert body["receipt"] is None and body["receipt_filename"] == ""


def test_log_an_expense_with_a_receipt_and_download_it(team, people, client_for):
    client = client_for(people["consultant"])
    response = client.post(
        f"{API}/expenses/", {**expense_body(team), "receipt": pdf("Taxi 12.PDF")}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    expense = Expense.objects.get()
    assert body["receipt_filename"] == "Taxi 12.PDF"
    assert body["receipt"] == f"http://testserver{API}/expenses/{expense.public_id}/receipt/"

    download = client.get(body["receipt"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf" and download["X-Content-Type-Options"] == "nosniff"
    disposition = download["Content-Disposition"]
    assert disposition.startswith("attachment;") and "Taxi 12.PDF" in disposition
    assert b"".join(download.streaming_content) == PDF
    # Whoever sees the expense downloads it; anyone else gets 404.
    assert client_for(people["pm"]).get(body["receipt"]).status_code == 200
    assert client_for(people["auditor"]).get(body["receipt"]).status_code == 200
    assert client_for(people["sales"]).get(body["receipt"]).status_code == 404
    assert client_for(people["pm2"]).get(body["receipt"]).status_code == 404
    assert APIClient().get(body["receipt"]).status_code == 401


def test_a_multipart_create_honours_the_idempotency_key(team, people, client_for):
    client = client_for(people["consultant"])

    def post(key, **overrides):
        body = {**expense_body(team, **overrides), "receipt": pdf()}
        return client.post(f"{API}/expenses/", body, format="multipart", HTTP_IDEMPOTENCY_KEY=key)

    first, replay = post("e-1"), post("e-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    assert post("e-1", amount="1.00").status_code == 409
    assert Expense.objects.count() == 1


def test_an_expense_without_a_receipt_has_nothing_to_download(team, people, client_for):
    expense = spend(people["consultant"], team)
    response = client_for(people["consultant"]).get(f"{expense_url(expense)}receipt/")
    assert response.status_code == 404 and set(response.json()) == ERROR_KEYS


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: pdf(content=b"hello"), "content"),
        (lambda: pdf("r.txt", b"hello", "text/plain"), "must be"),
        (lambda: pdf(content_type="image/png"), "sent as"),
        (lambda: pdf(content=b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024)), "limit"),
    ],
    ids=["fake-pdf", "text", "declared-png", "too-big"],
)
def test_a_receipt_that_is_no_real_pdf_jpeg_or_png_under_5_mb_is_refused(team, people, client_for, upload, message):
    response = client_for(people["consultant"]).post(
        f"{API}/expenses/", {**expense_body(team), "receipt": upload()}, format="multipart"
    )
    assert response.status_code == 400, response.json()
    assert message in response.json()["errors"]["receipt"][0]
    assert not Expense.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"category": "bribes"}, "category"),
        ({"currency": "USD"}, "currency"),
        ({"description": ""}, "description"),
        ({"date": "2026-02-01"}, "date"),
    ],
)
def test_expense_refusals_are_json_with_flat_keys(team, people, client_for, overrides, field):
    response = client_for(people["consultant"]).post(f"{API}/expenses/", expense_body(team, **overrides))
    assert response.status_code == 400 and field in response.json()["errors"]


def test_a_rejected_expense_gets_its_receipt_by_multipart_patch(team, people, client_for):
    con = people["consultant"]
    expense = spend(con, team)
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_reject(actor=people["pm"], entries=[expense], reason="Receipt missing")
    client = client_for(con)
    bad = client.patch(expense_url(expense), {"receipt": pdf(content=b"nope")}, format="multipart")
    assert bad.status_code == 400 and "receipt" in bad.json()["errors"]
    response = client.patch(expense_url(expense), {"receipt": pdf(), "amount": "99.50"}, format="multipart")
    assert response.status_code == 200, response.json()
    assert response.json()["receipt"] and response.json()["amount"] == "99.50"
    assert response.json()["status"] == "rejected"  # until it is submitted again
    kept = client.patch(expense_url(expense), {"description": "Train"}, format="json")
    assert kept.json()["receipt"] and kept.json()["receipt_filename"] == "receipt.pdf"
    assert client_for(people["pm"]).patch(expense_url(expense), {"amount": "1"}, format="json").status_code == 403


def test_expense_delete_and_refusals(team, people, client_for):
    con = people["consultant"]
    expense = spend(con, team)
    assert client_for(people["finance"]).get(expense_url(expense)).status_code == 200
    assert client_for(people["finance"]).delete(expense_url(expense)).status_code == 403
    assert client_for(people["finance"]).post(f"{API}/expenses/", expense_body(team)).status_code == 403
    assert client_for(people["auditor"]).post(f"{API}/expenses/", expense_body(team)).status_code == 403
    assert client_for(people["sales"]).delete(expense_url(expense)).status_code == 404
    assert client_for(con).delete(expense_url(expense)).status_code == 204
    assert not Expense.objects.exists()


def test_expense_list_filters_and_constant_queries(team, people, client_for):
    con = people["consultant"]
    spend(con, team, receipt=pdf())
    client = client_for(people["pm"])
    one = queries_of(client, f"{API}/expenses/")
    for day in days(5, MON + dt.timedelta(days=1)):
        spend(con, team, day=day, receipt=pdf(), category="meals")
    submitted_expenses(people["sales"], team, MON)
    many = queries_of(client, f"{API}/expenses/")
    assert many == one
    assert client.get(f"{API}/expenses/").json()["count"] == 7
    assert client.get(f"{API}/expenses/?category=meals").json()["count"] == 5
    assert client.get(f"{API}/expenses/?person=sales&status=submitted").json()["count"] == 1
    assert client.get(f"{API}/expenses/?week={MON.isoformat()}").json()["count"] == 7
    assert client_for(people["consultant"]).get(f"{API}/expenses/").json()["count"] == 6
    assert client_for(people["pm2"]).get(f"{API}/expenses/").json()["count"] == 0


# --- the weekly submission ---------------------------------------------------------------------------------


def test_submit_a_week(team, people, client_for):
    con = people["consultant"]
    log(con, team)
    spend(con, team, day=MON + dt.timedelta(days=6))
    log(con, team, day=MON + dt.timedelta(days=7))
    client = client_for(con)
    url = f"{API}/timesheets/submit/"
    response = client.post(url, {"week_start": MON.isoformat()}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"week_start": "2026-03-09", "week_end": "2026-03-15", "submitted": 2}
    assert client.post(url, {"week_start": MON.isoformat()}, format="json").json()["submitted"] == 0
    tuesday = client.post(url, {"week_start": "2026-03-10"}, format="json")
    assert tuesday.status_code == 400 and "Monday" in tuesday.json()["errors"]["week_start"][0]
    assert client.post(url, {}, format="json").json()["errors"].keys() == {"week_start"}
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {"submitted", "draft"}


@pytest.mark.parametrize("who", ["finance", "executive", "auditor"])
def test_roles_that_log_no_time_submit_nothing(people, client_for, who):
    response = client_for(people[who]).post(f"{API}/timesheets/submit/", {"week_start": "2026-03-09"})
    assert response.status_code == 403 and set(response.json()) == ERROR_KEYS


def test_a_week_in_a_locked_month_is_not_submitted(team, people, client_for):
    log(people["consultant"], team)
    ts.period_lock(actor=people["finance"], month=MON)
    response = client_for(people["consultant"]).post(f"{API}/timesheets/submit/", {"week_start": "2026-03-09"})
    assert response.status_code == 409 and "locked" in response.json()["message"]


# --- approvals --------------------------------------------------------------------------------------------


def test_the_approval_queue_scope_and_filters(team, people, client_for):
    con, sales = people["consultant"], people["sales"]
    entry = submitted(con, team, MON)[0]
    submitted(sales, team, MON + dt.timedelta(days=7), category="Senior consultant")
    expense = submitted_expenses(con, team, MON)[0]
    log(con, team, day=MON + dt.timedelta(days=1))  # a draft: not in the queue

    body = client_for(people["pm"]).get(f"{API}/approvals/").json()
    assert body["count"] == 3 and len(body["time_entries"]) == 2
    assert body["expenses"][0]["id"] == str(expense.public_id)

    def count(who, query=""):
        response = client_for(people[who]).get(f"{API}/approvals/{query}")
        assert response.status_code == 200, response.json()
        return response.json()["count"]

    assert count("pm", "?person=consultant") == 2
    assert count("pm", f"?week={(MON + dt.timedelta(days=2)).isoformat()}") == 2
    assert count("pm", f"?project={team.public_id}&person=sales") == 1
    assert count("pm", "?person=nobody") == 0
    assert count("pm", "?project=00000000-0000-0000-0000-000000000000") == 0
    assert count("pm2") == 0  # not their project
    assert count("admin") == 3
    assert count("auditor") == 3  # auditors read the queue, and decide nothing
    assert count("auditor", "?person=sales") == 1
    bad = client_for(people["pm"]).get(f"{API}/approvals/?week=soon&project=x")
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"week", "project"}
    rows = client_for(people["pm"]).get(f"{API}/approvals/?person=consultant").json()["time_entries"]
    assert [row["id"] for row in rows] == [str(entry.public_id)]


@pytest.mark.parametrize("who", ["consultant", "sales", "finance", "executive"])
def test_roles_that_do_not_approve_cannot_read_the_queue_or_decide(team, people, client_for, who):
    entry = submitted(people["consultant"], team, MON)[0]
    client = client_for(people[who])
    assert client.get(f"{API}/approvals/").status_code == 403
    body = {"time_entries": [str(entry.public_id)], "reason": "No"}
    assert client.post(f"{API}/approvals/approve/", body, format="json").status_code == 403
    assert client.post(f"{API}/approvals/reject/", body, format="json").status_code == 403
    assert TimeEntry.objects.get().status == "submitted"


def test_the_approval_queue_keeps_a_constant_number_of_queries(team, people, client_for):
    client, auditor = client_for(people["pm"]), client_for(people["auditor"])
    submitted(people["consultant"], team, MON)
    submitted_expenses(people["consultant"], team, MON)
    one = queries_of(client, f"{API}/approvals/")
    one_read = queries_of(auditor, f"{API}/approvals/")
    submitted(people["sales"], team, *days(5), category="Senior consultant")
    submitted_expenses(people["sales"], team, *days(5))
    adjusted = submitted(people["consultant"], team, MON + dt.timedelta(days=1))[0]
    ts.time_entries_approve(actor=people["pm"], entries=[adjusted])
    adjustment = ts.time_entry_adjust(
        actor=people["consultant"], original=adjusted, hours="0.5", description="Travel time"
    )
    TimeEntry.objects.filter(pk=adjustment.pk).update(status=EntryStatus.SUBMITTED)
    many = queries_of(client, f"{API}/approvals/")
    assert client.get(f"{API}/approvals/").json()["count"] == 13
    assert many == one
    assert queries_of(auditor, f"{API}/approvals/") == one_read


def test_the_approval_queue_pages_both_lists_with_totals(team, people, client_for):
    client = client_for(people["pm"])
    submitted(people["sales"], team, *days(5), category="Senior consultant")
    submitted_expenses(people["sales"], team, *days(3))
    first = client.get(f"{API}/approvals/", {"limit": 2}).json()
    assert (first["count"], first["time_entries_count"], first["expenses_count"]) == (8, 5, 3)
    assert (len(first["time_entries"]), len(first["expenses"]), first["previous"]) == (2, 2, None)
    second = client.get(first["next"]).json()
    assert (len(second["time_entries"]), len(second["expenses"])) == (2, 1)
    last = client.get(second["next"]).json()
    assert (len(last["time_entries"]), len(last["expenses"]), last["next"]) == (1, 0, None)
    seen = [e["id"] for page in (first, second, last) for e in page["time_entries"]]
    assert len(set(seen)) == 5 and last["previous"]
    bad = client.get(f"{API}/approvals/", {"limit": 0})
    assert bad.status_code == 400 and "limit" in bad.json()["errors"]


def test_approve_and_reject_in_bulk(team, people, client_for):
    con = people["consultant"]
    entries = submitted(con, team, *days(3))
    expense = submitted_expenses(con, team, MON)[0]
    client = client_for(people["pm"])
    body = {"time_entries": [str(e.public_id) for e in entries[:2]], "expenses": [str(expense.public_id)]}
    response = client.post(f"{API}/approvals/approve/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "approved" and response.json()["count"] == 3
    assert set(response.json()["time_entries"]) == set(body["time_entries"])
    assert list(TimeEntry.objects.order_by("date").values_list("status", flat=True)) == [
        "approved",
        "approved",
        "submitted",
    ]
    again = client.post(f"{API}/approvals/approve/", body, format="json")
    assert again.status_code == 409 and again.json()["code"] == "transition_not_allowed"

    rest = {"time_entries": [str(entries[2].public_id)]}
    missing = client.post(f"{API}/approvals/reject/", rest, format="json")
    assert missing.status_code == 400 and list(missing.json()["errors"]) == ["reason"]
    blank = client.post(f"{API}/approvals/reject/", {**rest, "reason": "  "}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()["errors"]
    rejected = client.post(f"{API}/approvals/reject/", {**rest, "reason": "Split it by task"}, format="json")
    assert rejected.status_code == 200 and rejected.json() == {
        "status": "rejected",
        "count": 1,
        "time_entries": rest["time_entries"],
        "expenses": [],
    }
    entries[2].refresh_from_db()
    assert (entries[2].status, entries[2].rejection_reason) == ("rejected", "Split it by task")


def test_ids_outside_ones_scope_are_named_in_a_400(team, people, client_for):
    entry = submitted(people["consultant"], team, MON)[0]
    unknown = "00000000-0000-0000-0000-000000000000"
    body = {"time_entries": [str(entry.public_id)], "expenses": [unknown]}
    response = client_for(people["pm"]).post(f"{API}/approvals/approve/", body, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["expenses.0"]
    assert unknown in response.json()["message"]
    # Another project manager sees neither: both are named, nothing is decided.
    body = {"time_entries": [str(entry.public_id)], "reason": "No"}
    response = client_for(people["pm2"]).post(f"{API}/approvals/reject/", body, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["time_entries.0"]
    assert str(entry.public_id) in response.json()["message"]
    for bad in ({}, {"time_entries": []}, {"time_entries": ["x"]}):
        assert client_for(people["pm"]).post(f"{API}/approvals/approve/", bad, format="json").status_code == 400
    assert TimeEntry.objects.get().status == "submitted"


def test_a_project_manager_decides_only_their_own_projects(team, people, client_for):
    """pm2 logs on pm's project (as a member): they see their own entry, yet may not approve it."""
    ProjectMember.objects.create(project=team, user=people["pm2"], labour_category="Developer")
    own = submitted(people["pm2"], team, MON)[0]
    response = client_for(people["pm2"]).post(
        f"{API}/approvals/approve/", {"time_entries": [str(own.public_id)]}, format="json"
    )
    assert response.status_code == 403 and "Only the project manager" in response.json()["message"]
    admin = client_for(people["admin"]).post(
        f"{API}/approvals/approve/", {"time_entries": [str(own.public_id)]}, format="json"
    )
    assert admin.status_code == 200


def test_auditors_read_and_never_decide(team, people, client_for):
    entry = submitted(people["consultant"], team, MON)[0]
    client = client_for(people["auditor"])
    assert client.get(f"{API}/approvals/").json()["count"] == 1
    assert client.get(entry_url(entry)).status_code == 200
    body = {"time_entries": [str(entry.public_id)], "reason": "No"}
    assert client.post(f"{API}/approvals/approve/", body, format="json").status_code == 403
    assert client.post(f"{API}/approvals/reject/", body, format="json").status_code == 403
    assert client.post(f"{API}/time-entries/", time_body(team), format="json").status_code == 403
    assert client.post(f"{API}/locked-periods/", {"month": "2026-03"}, format="json").status_code == 403


def test_decisions_honour_the_idempotency_key(team, people, client_for):
    entry = submitted(people["consultant"], team, MON)[0]
    client = client_for(people["pm"])
    body = {"time_entries": [str(entry.public_id)]}
    first = client.post(f"{API}/approvals/approve/", body, format="json", HTTP_IDEMPOTENCY_KEY="a-1")
    replay = client.post(f"{API}/approvals/approve/", body, format="json", HTTP_IDEMPOTENCY_KEY="a-1")
    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == first.json()


def test_submit_reject_fix_resubmit_approve_over_the_api(team, people, client_for):
    con, pm = client_for(people["consultant"]), client_for(people["pm"])
    created = con.post(f"{API}/time-entries/", time_body(team, hours="8"), format="json").json()
    expense = con.post(f"{API}/expenses/", expense_body(team), format="json").json()
    url = f"{API}/time-entries/{created['id']}/"

    assert con.post(f"{API}/timesheets/submit/", {"week_start": "2026-03-09"}).json()["submitted"] == 2
    queue = pm.get(f"{API}/approvals/?person=consultant").json()
    assert [row["id"] for row in queue["time_entries"]] == [created["id"]]
    assert [row["id"] for row in queue["expenses"]] == [expense["id"]]

    reason = "Split the workshop from the travel"
    body = {"time_entries": [created["id"]], "expenses": [expense["id"]], "reason": reason}
    assert pm.post(f"{API}/approvals/reject/", body, format="json").json()["count"] == 2
    returned = con.get(url).json()
    assert (returned["status"], returned["rejection_reason"], returned["decided_by"], returned["editable"]) == (
        "rejected",
        reason,
        "pm",
        True,
    )
    assert pm.get(f"{API}/approvals/").json()["count"] == 0

    assert con.patch(url, {"hours": "6", "description": "Workshop only"}, format="json").status_code == 200
    assert con.post(f"{API}/timesheets/submit/", {"week_start": "2026-03-09"}).json()["submitted"] == 2
    assert pm.get(f"{API}/approvals/").json()["count"] == 2

    body = {"time_entries": [created["id"]], "expenses": [expense["id"]]}
    assert pm.post(f"{API}/approvals/approve/", body, format="json").json()["count"] == 2
    approved = con.get(url).json()
    assert (approved["status"], approved["hours"], approved["editable"]) == ("approved", "6.00", False)
    assert con.patch(url, {"hours": "5"}, format="json").status_code == 409
    assert con.get(f"{API}/expenses/{expense['id']}/").json()["status"] == "approved"
    assert pm.get(f"{API}/approvals/").json()["count"] == 0


# --- locked periods ---------------------------------------------------------------------------------------


def test_finance_locks_a_month(team, people, client_for):
    client = client_for(people["finance"])
    response = client.post(f"{API}/locked-periods/", {"month": "2026-03"}, format="json")
    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in ("month", "first_day", "label", "locked_by")} == {
        "month": "2026-03",
        "first_day": "2026-03-01",
        "label": "March 2026",
        "locked_by": "finance",
    }
    again = client.post(f"{API}/locked-periods/", {"month": "2026-03-17"}, format="json")
    assert again.status_code == 409 and "already locked" in again.json()["errors"]["month"][0]
    assert client.post(f"{API}/locked-periods/", {"month": "2026-04-15"}).json()["month"] == "2026-04"
    for bad in ("2026-13", "March", ""):
        response = client.post(f"{API}/locked-periods/", {"month": bad}, format="json")
        assert response.status_code == 400 and "month" in response.json()["errors"], bad
    assert [row["month"] for row in client.get(f"{API}/locked-periods/").json()["results"]] == ["2026-04", "2026-03"]

    refused = client_for(people["consultant"]).post(f"{API}/time-entries/", time_body(team), format="json")
    assert refused.status_code == 400 and "locked" in refused.json()["errors"]["date"][0]


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [
        ("pm", 200, 403),
        ("consultant", 200, 403),
        ("executive", 200, 403),
        ("auditor", 200, 403),
        ("sales", 200, 403),
        ("admin", 200, 201),
    ],
)
def test_who_reads_and_locks_periods(people, client_for, who, read, write):
    client = client_for(people[who])
    assert client.get(f"{API}/locked-periods/").status_code == read
    assert client.post(f"{API}/locked-periods/", {"month": "2026-05"}, format="json").status_code == write


def test_locked_period_list_keeps_a_constant_number_of_queries(people, client_for):
    client = client_for(people["executive"])
    ts.period_lock(actor=people["finance"], month=dt.date(2026, 1, 1))
    one = queries_of(client, f"{API}/locked-periods/")
    for month in range(2, 7):
        ts.period_lock(actor=people["finance"], month=dt.date(2026, month, 1))
    assert queries_of(client, f"{API}/locked-periods/") == one
    assert LockedPeriod.objects.count() == 6


# --- a project's team -------------------------------------------------------------------------------------


def members_url(project) -> str:
    return f"{API}/projects/{project.public_id}/members/"


def test_the_project_manager_keeps_the_team(team, people, client_for):
    client = client_for(people["pm"])
    rows = client.get(members_url(team)).json()["results"]
    assert [(r["user"], r["labour_category"]) for r in rows] == [
        ("consultant", "Developer"),
        ("sales", "Senior consultant"),
    ]
    added = client.post(members_url(team), {"user": "pm2", "labour_category": "Developer"}, format="json")
    assert added.status_code == 201, added.json()
    member_url = f"{members_url(team)}{added.json()['id']}/"
    assert client.get(member_url).json()["user"] == "pm2"

    patched = client.patch(member_url, {"labour_category": "Senior consultant"}, format="json")
    assert patched.status_code == 200 and patched.json()["labour_category"] == "Senior consultant"
    assert client.patch(member_url, {"labour_category": "Astronaut"}, format="json").json()["errors"].keys() == {
        "labour_category"
    }
    assert client.patch(member_url, {"user": "sales"}, format="json").status_code == 400

    assert client.delete(member_url).status_code == 204
    assert not ProjectMember.objects.filter(user=people["pm2"]).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "consultant"}, "user"),  # already on the team
        ({"user": "finance"}, "user"),  # holds no role that logs time
        ({"user": "nobody"}, "user"),
        ({"user": "pm2", "labour_category": "Astronaut"}, "labour_category"),
        ({}, "user"),
    ],
)
def test_team_refusals_are_json_with_flat_keys(team, people, client_for, body, field):
    response = client_for(people["pm"]).post(members_url(team), body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.json()


def test_who_sees_and_keeps_a_team(team, people, client_for):
    member = ProjectMember.objects.get(user=people["consultant"])
    member_url = f"{members_url(team)}{member.public_id}/"
    # Those who see the project read its team (its members included); the rest answer 404.
    for who in ("finance", "executive", "auditor", "admin", "consultant", "sales"):
        assert client_for(people[who]).get(members_url(team)).status_code == 200, who
    assert client_for(people["pm2"]).get(members_url(team)).status_code == 404
    assert client_for(people["sales2"]).get(members_url(team)).status_code == 404
    assert client_for(people["pm2"]).post(members_url(team), {"user": "pm2"}, format="json").status_code == 404
    assert client_for(people["pm2"]).delete(member_url).status_code == 404
    for who in ("finance", "auditor", "consultant", "sales"):
        assert client_for(people[who]).post(members_url(team), {"user": "pm2"}, format="json").status_code == 403
        assert client_for(people[who]).delete(member_url).status_code == 403
    assert client_for(people["pm"]).get(f"{API}/projects/not-a-uuid/members/").status_code == 404
    assert client_for(people["admin"]).post(members_url(team), {"user": "pm2"}, format="json").status_code == 201
    assert client_for(people["admin"]).delete(member_url).status_code == 204


def test_team_list_keeps_a_constant_number_of_queries(team, people, client_for, make_user):
    client = client_for(people["pm"])
    one = queries_of(client, members_url(team))
    for n in range(4):
        ProjectMember.objects.create(project=team, user=make_user(f"dev{n}", "consultant"))
    assert queries_of(client, members_url(team)) == one


# --- GET per role (the rows tests/test_permission_matrix.py needs for these URLs) --------------------------

MATRIX_ROLES = ("anon", "sales", "pm", "consultant", "finance", "executive", "auditor", "admin")
# fmt: off
GET_MATRIX = {
    #                             anon sale pm   cons fin  exec aud  admin
    "api:time-entry-list":       (401, 200, 200, 200, 200, 200, 200, 200),
    "api:time-entry-detail":     (401, 404, 200, 404, 200, 200, 200, 200),
    "api:time-entry-adjust":     (401, 405, 405, 405, 405, 405, 405, 405),
    "api:expense-list":          (401, 200, 200, 200, 200, 200, 200, 200),
    "api:expense-detail":        (401, 404, 200, 404, 200, 200, 200, 200),
    "api:expense-receipt":       (401, 404, 200, 404, 200, 200, 200, 200),
    "api:timesheet-submit":      (401, 405, 405, 405, 403, 403, 403, 405),
    "api:approval-list":         (401, 403, 200, 403, 403, 403, 200, 200),
    "api:approval-approve":      (401, 403, 405, 403, 403, 403, 403, 405),
    "api:approval-reject":       (401, 403, 405, 403, 403, 403, 403, 405),
    "api:locked-period-list":    (401, 200, 200, 200, 200, 200, 200, 200),
    "api:project-member-list":   (401, 200, 200, 404, 200, 200, 200, 200),
    "api:project-member-detail": (401, 200, 200, 404, 200, 200, 200, 200),
}
# fmt: on


def test_each_role_gets_what_roles_md_gives_it(tm_project, people, client_for):
    """As the permission matrix's world would have them: the project manager's own time entry and expense (with
    a receipt) on their project and the sales rep (who sees the project already) on its team; the consultant is
    not on it, so every other row of the matrix stays as it is."""
    team = tm_project
    entry = log(people["pm"], team, labour_category="Developer")
    expense = spend(people["pm"], team, receipt=pdf())
    member = ProjectMember.objects.create(project=team, user=people["sales"], labour_category="Senior consultant")
    kwargs = {
        "api:time-entry-detail": {"id": entry.public_id},
        "api:time-entry-adjust": {"id": entry.public_id},
        "api:expense-detail": {"id": expense.public_id},
        "api:expense-receipt": {"id": expense.public_id},
        "api:project-member-list": {"project_id": team.public_id},
        "api:project-member-detail": {"project_id": team.public_id, "id": member.public_id},
    }
    clients = {role: APIClient() if role == "anon" else client_for(people[role]) for role in MATRIX_ROLES}
    outcomes = {
        name: tuple(clients[role].get(reverse(name, kwargs=kwargs.get(name))).status_code for role in MATRIX_ROLES)
        for name in GET_MATRIX
    }
    assert outcomes == GET_MATRIX


# --- schema -----------------------------------------------------------------------------------------------


def test_the_endpoints_are_in_the_openapi_schema_without_warnings(people, client_for):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        SchemaGenerator().get_schema(request=None, public=True)
    ours = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "time_api" in message or "time_serializers" in message
    ]
    GENERATOR_STATS.reset()
    assert not ours

    schema = client_for(people["pm"]).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/time-entries/",
        "/api/v1/time-entries/{id}/",
        "/api/v1/time-entries/{id}/adjust/",
        "/api/v1/expenses/",
        "/api/v1/expenses/{id}/",
        "/api/v1/expenses/{id}/receipt/",
        "/api/v1/timesheets/submit/",
        "/api/v1/approvals/",
        "/api/v1/approvals/approve/",
        "/api/v1/approvals/reject/",
        "/api/v1/locked-periods/",
        "/api/v1/projects/{project_id}/members/",
        "/api/v1/projects/{project_id}/members/{id}/",
    ):
        assert path in paths, path
    create = paths["/api/v1/expenses/"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert {"201", "400", "403", "404", "409"} <= set(create["responses"])
    filters = {p["name"] for p in paths["/api/v1/time-entries/"]["get"]["parameters"]}
    assert {"project", "person", "status", "date_from", "date_to", "week"} <= filters
