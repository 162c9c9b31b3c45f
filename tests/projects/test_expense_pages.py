"""The expense pages through Django's test client: logging with a receipt (and every refused receipt shown on
its field, nothing saved), editing and deleting only one's own drafts and rejected expenses, the receipt
download's scope, the list's filters and constant queries, and submitting a week from the list."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from projects import timesheets as ts
from projects.models import EntryStatus, Expense, LockedPeriod, ProjectMember, TimeEntry

from .factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db

MON = dt.date(2026, 3, 9)  # a Monday inside the T&M project (2026-03-02 … 2026-08-31)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
LIST_URL = reverse("projects:expense-list")
CREATE_URL = reverse("projects:expense-create")
SUBMIT_URL = reverse("projects:expense-submit-week")
HTMX = {"HX-Request": "true"}


def image_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type)


def signed_in(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", response.content.decode(), flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text)
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


def field_error(response, html_name: str) -> str:
    match = re.search(rf'id="id_{re.escape(html_name)}_error">(.*?)</div>', response.content.decode(), re.S)
    return match.group(1).replace("&#x27;", "'").replace("&quot;", '"') if match else ""


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def url(name: str, expense) -> str:
    return reverse(f"projects:{name}", kwargs={"public_id": expense.public_id})


def spend(person, project, day=MON, amount="120.00", **fields):
    fields.setdefault("description", "Train to the workshop")
    fields.setdefault("category", "travel")
    return ts.expense_create(actor=person, project=project, date=day, amount=amount, **fields)


def form_data(project, **overrides):
    data = {
        "project": str(project.public_id),
        "date": MON.isoformat(),
        "category": "travel",
        "amount": "84.20",
        "currency": "",
        "description": "Taxi from the airport",
        "billable": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def other_project(customer, legal_entity, win):
    """A second T&M project of the same project manager, without the consultant on its team."""
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Second project")
    tm_quote(deal)
    return win(deal)


# --- access -------------------------------------------------------------------------------------------


def test_signed_out_people_are_sent_to_sign_in(client):
    for target in (LIST_URL, CREATE_URL):
        response = client.get(target)
        assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("role", ["finance", "executive", "auditor"])
def test_roles_that_do_not_log_expenses_cannot_open_the_form(client, people, role):
    assert signed_in(client, people[role]).get(CREATE_URL).status_code == 403
    assert client.post(SUBMIT_URL, {"week_start": MON.isoformat()}).status_code == 403


# --- creating -----------------------------------------------------------------------------------------


def test_create_form_offers_only_the_projects_the_person_logs_on(client, people, team, other_project):
    response = signed_in(client, people["consultant"]).get(CREATE_URL)
    assert response.status_code == 200
    choices = [str(value) for value, _ in response.context["form"].fields["project"].choices if value]
    assert choices == [str(team.public_id)]
    # The only project is chosen already; the markup preview knows it.
    assert response.context["form"].initial["project"] == team.public_id
    assert response.context["project_terms"] == {str(team.public_id): {"currency": "EUR", "markup": "10"}}


def test_create_form_without_a_team_says_how_to_get_on_one(client, people, tm_project):
    response = signed_in(client, people["consultant"]).get(CREATE_URL)
    assert response.status_code == 200
    assert "You are on no project team yet" in text_of(response)


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("Taxi 12.PDF", PDF, "application/pdf"),
        ("taxi.png", image_bytes("PNG"), "image/png"),
        ("taxi.jpg", image_bytes("JPEG"), "image/jpeg"),
        ("taxi.jpeg", image_bytes("JPEG"), "application/octet-stream"),  # uninformative: the content decides
    ],
    ids=["pdf", "png", "jpg", "jpeg-octet-stream"],
)
def test_create_with_a_good_receipt_saves_a_draft_with_the_frozen_markup(
    client, people, team, name, content, content_type
):
    data = form_data(team, receipt=upload(name, content, content_type))
    response = signed_in(client, people["consultant"]).post(CREATE_URL, data)
    assert response.status_code == 302 and response["Location"] == LIST_URL
    expense = Expense.objects.get()
    assert (expense.status, expense.amount, expense.currency, expense.markup_percent) == (
        EntryStatus.DRAFT,
        Decimal("84.20"),
        "EUR",
        Decimal("10.00"),
    )
    assert expense.receipt_filename == name and expense.receipt.read() == content
    assert "with a 10 % markup" in flashed(response)[0]
    # After saving, the markup is shown read-only on the edit page, not as an input.
    page = client.get(url("expense-edit", expense))
    assert 'id="markup-value">10 %' in page.content.decode()
    assert "markup" not in page.context["form"].fields


def test_a_non_billable_expense_carries_no_markup(client, people, team):
    data = form_data(team)
    del data["billable"]
    signed_in(client, people["consultant"]).post(CREATE_URL, data)
    assert Expense.objects.get().markup_percent == 0


BIG = b"%PDF-1.4\n" + b"0" * (ts.RECEIPT_MAX_BYTES + 1)


@pytest.mark.parametrize(
    ("receipt", "message"),
    [
        (("receipt.txt", b"a taxi receipt", "text/plain"), "The receipt must be a PDF, JPEG or PNG file"),
        (("receipt.pdf", PDF, "image/png"), "'receipt.pdf' was sent as image/png, which is not a PDF file."),
        (
            ("receipt.pdf", b"just some text, not a PDF", "application/pdf"),
            "'receipt.pdf' is named as a PDF file but its content is not a PDF, JPEG or PNG file.",
        ),
        (
            ("receipt.png", image_bytes("JPEG"), "image/png"),
            "'receipt.png' is named as a PNG file but its content is a JPEG file.",
        ),
        (("big.pdf", BIG, "application/pdf"), "The receipt is 5.0 MB; the limit is 5 MB."),
    ],
    ids=["wrong-extension", "declared-type-mismatch", "text-named-pdf", "jpeg-named-png", "too-big"],
)
def test_a_refused_receipt_saves_nothing_and_keeps_the_entered_values(client, people, team, receipt, message):
    data = form_data(team, description="Hotel in Lyon, two nights", amount="310.00", receipt=upload(*receipt))
    response = signed_in(client, people["consultant"]).post(CREATE_URL, data)
    assert response.status_code == 400
    assert message in field_error(response, "receipt")
    assert not Expense.objects.exists()
    form = response.context["form"]
    assert (form["amount"].value(), form["description"].value()) == ("310.00", "Hotel in Lyon, two nights")
    assert "Hotel in Lyon, two nights" in response.content.decode()
    assert "The expense cannot be logged." in text_of(response)


def test_a_good_receipt_with_a_bad_amount_saves_nothing_and_asks_for_the_file_again(client, people, team):
    data = form_data(team, amount="12.345", receipt=upload("r.pdf", PDF, "application/pdf"))
    response = signed_in(client, people["consultant"]).post(CREATE_URL, data)
    assert response.status_code == 400
    assert field_error(response, "amount") == "Enter the amount in cents at most (2 decimals)."
    assert "choose it again" in text_of(response)
    assert not Expense.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"date": "2026-09-01"}, "date", "ended on 2026-08-31; nothing after that."),
        ({"amount": "abc"}, "amount", "Enter the amount as a number, e.g. 12.50."),
        ({"amount": "0"}, "amount", "The amount must be more than 0."),
        ({"currency": "USD"}, "currency", "is billed in EUR; enter it in that."),
        ({"description": ""}, "description", "Describe the expense: the description appears on the invoice."),
        ({"category": ""}, "category", "Choose the category"),
        ({"date": "not a date"}, "date", "Enter a valid date."),
    ],
    ids=["after-the-end", "amount-text", "amount-zero", "currency", "description", "category", "date-garbage"],
)
def test_every_refusal_is_shown_on_its_field(client, people, team, overrides, field, message):
    response = signed_in(client, people["consultant"]).post(CREATE_URL, form_data(team, **overrides))
    assert response.status_code == 400
    assert message in field_error(response, field)
    assert not Expense.objects.exists()


def test_a_locked_month_is_refused_on_the_date(client, people, team):
    LockedPeriod.objects.create(
        month=MON.replace(day=1), locked_by=people["finance"], locked_at=dt.datetime.now(dt.UTC)
    )
    response = signed_in(client, people["consultant"]).post(CREATE_URL, form_data(team))
    assert response.status_code == 400
    assert "March 2026 is locked by finance" in field_error(response, "date")


def test_a_project_the_person_is_not_on_is_refused(client, people, team, other_project):
    response = signed_in(client, people["consultant"]).post(CREATE_URL, form_data(other_project))
    assert response.status_code == 400
    assert "you log expenses only on projects whose team you are on" in field_error(response, "project")
    assert not Expense.objects.exists()


# --- editing and deleting -----------------------------------------------------------------------------


def test_edit_a_draft_changes_it_and_keeps_the_frozen_markup(client, people, team):
    expense = spend(people["consultant"], team)
    signed_in(client, people["consultant"])
    response = client.get(url("expense-edit", expense))
    assert response.status_code == 200
    assert response.context["form"]["amount"].value() == "120.00"
    data = form_data(team, amount="99.50", description="Train, second class", currency="")
    response = client.post(url("expense-edit", expense), data)
    assert response.status_code == 302
    expense.refresh_from_db()
    assert (expense.amount, expense.description, expense.currency, expense.markup_percent) == (
        Decimal("99.50"),
        "Train, second class",
        "EUR",
        Decimal("10.00"),
    )


def test_edit_replaces_the_receipt_and_refuses_a_bad_one_without_saving(client, people, team):
    expense = spend(people["consultant"], team, receipt=upload("first.pdf", PDF, "application/pdf"))
    signed_in(client, people["consultant"])
    bad = form_data(team, amount="50.00", receipt=upload("second.pdf", b"plain text", "application/pdf"))
    response = client.post(url("expense-edit", expense), bad)
    assert response.status_code == 400
    assert "its content is not a PDF" in field_error(response, "receipt")
    expense.refresh_from_db()
    assert (expense.amount, expense.receipt_filename) == (Decimal("120.00"), "first.pdf")
    good = form_data(team, receipt=upload("second.png", image_bytes("PNG"), "image/png"))
    assert client.post(url("expense-edit", expense), good).status_code == 302
    expense.refresh_from_db()
    assert expense.receipt_filename == "second.png"


def test_a_rejected_expense_shows_the_reason_prominently_and_can_be_corrected(client, people, team):
    con = people["consultant"]
    expense = spend(con, team)
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_reject(actor=people["pm"], entries=[expense], reason="The receipt is missing.")
    response = signed_in(client, con).get(url("expense-edit", expense))
    assert response.status_code == 200
    rejection = re.search(r'id="rejection">(.*?)</div>\s*</div>', response.content.decode(), re.S).group(1)
    assert "The receipt is missing." in rejection and "Returned to you by pm" in rejection
    data = form_data(team, receipt=upload("r.pdf", PDF, "application/pdf"))
    assert client.post(url("expense-edit", expense), data).status_code == 302
    expense.refresh_from_db()
    assert (expense.status, expense.receipt_filename) == (EntryStatus.REJECTED, "r.pdf")


@pytest.mark.parametrize("name", ["expense-edit", "expense-delete"])
def test_only_ones_own_expenses_are_edited_or_deleted(client, people, team, name):
    expense = spend(people["consultant"], team)
    # The project manager sees the expense in the list, but it is not theirs to change.
    assert signed_in(client, people["pm"]).get(url(name, expense)).status_code == 404
    assert client.post(url(name, expense), form_data(team)).status_code == 404
    assert signed_in(client, people["sales"]).get(url(name, expense)).status_code == 404
    expense.refresh_from_db()
    assert expense.amount == Decimal("120.00")


@pytest.mark.parametrize("name", ["expense-edit", "expense-delete"])
def test_submitted_expenses_are_neither_edited_nor_deleted(client, people, team, name):
    con = people["consultant"]
    expense = spend(con, team)
    ts.timesheet_submit(actor=con, week_start=MON)
    response = signed_in(client, con).get(url(name, expense))
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert "only drafts and rejected expenses can be changed" in flashed(response)[0]
    response = client.post(url(name, expense), form_data(team, amount="1.00"))
    assert response.status_code == 302
    expense.refresh_from_db()
    assert (expense.amount, expense.status) == (Decimal("120.00"), EntryStatus.SUBMITTED)


def test_delete_asks_first_then_removes_the_draft(client, people, team):
    expense = spend(people["consultant"], team)
    signed_in(client, people["consultant"])
    page = client.get(url("expense-delete", expense))
    assert page.status_code == 200 and "Delete this expense?" in text_of(page)
    response = client.post(url("expense-delete", expense))
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert not Expense.objects.exists()
    assert flashed(response) == ["The travel expense of 2026-03-09 was deleted."]


def test_delete_in_a_locked_month_is_refused_with_the_services_message(client, people, team):
    expense = spend(people["consultant"], team)
    LockedPeriod.objects.create(
        month=MON.replace(day=1), locked_by=people["finance"], locked_at=dt.datetime.now(dt.UTC)
    )
    response = signed_in(client, people["consultant"]).post(url("expense-delete", expense))
    assert response.status_code == 302
    assert flashed(response) == ["March 2026 is locked by finance; nothing dated in it can change."]
    assert Expense.objects.filter(pk=expense.pk).exists()


# --- the receipt --------------------------------------------------------------------------------------


def test_receipt_download_is_an_attachment_with_the_original_name_for_everyone_in_scope(client, people, team):
    expense = spend(people["consultant"], team, receipt=upload("Taxi Lyon.pdf", PDF, "application/pdf"))
    for role in ("consultant", "pm", "finance", "executive", "auditor", "admin"):
        response = signed_in(client, people[role]).get(url("expense-receipt", expense))
        assert response.status_code == 200, role
        assert response["Content-Disposition"] == 'attachment; filename="Taxi Lyon.pdf"'
        assert response["Content-Type"] == "application/pdf"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"".join(response.streaming_content) == PDF
    assert "/media/" not in signed_in(client, people["consultant"]).get(LIST_URL).content.decode()


def test_receipt_download_outside_the_persons_scope_answers_404(client, people, team, other_project):
    expense = spend(people["consultant"], team, receipt=upload("r.png", image_bytes("PNG"), "image/png"))
    # The sales rep is on the team, but the expense is the consultant's; pm2 manages another project.
    for role in ("sales", "pm2"):
        assert signed_in(client, people[role]).get(url("expense-receipt", expense)).status_code == 404, role
    without = spend(people["consultant"], team, description="No receipt")
    assert signed_in(client, people["consultant"]).get(url("expense-receipt", without)).status_code == 404
    assert client.get(reverse("projects:expense-receipt", kwargs={"public_id": team.public_id})).status_code == 404
    assert client.get(url("expense-receipt", expense))["Content-Type"] == "image/png"


def test_receipt_download_signed_out_goes_to_sign_in(client, people, team):
    expense = spend(people["consultant"], team, receipt=upload("r.pdf", PDF, "application/pdf"))
    response = client.get(url("expense-receipt", expense))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the list -----------------------------------------------------------------------------------------


def test_the_list_shows_the_persons_own_expenses_with_their_actions(client, people, team):
    con = people["consultant"]
    mine = spend(con, team, receipt=upload("r.pdf", PDF, "application/pdf"))
    spend(people["sales"], team, description="Lunch with the customer", category="meals")
    response = signed_in(client, con).get(LIST_URL)
    assert response.status_code == 200
    assert [item["expense"] for item in response.context["items"]] == [mine]
    html = response.content.decode()
    assert url("expense-edit", mine) in html and url("expense-delete", mine) in html
    assert url("expense-receipt", mine) in html
    assert 'name="week_start" value="2026-03-09"' in html
    assert response.context["show_person"] is False


def test_project_managers_and_finance_see_the_teams_expenses_without_edit_buttons(client, people, team):
    theirs = spend(people["consultant"], team)
    for role in ("pm", "finance", "auditor"):
        response = signed_in(client, people[role]).get(LIST_URL)
        assert [item["expense"] for item in response.context["items"]] == [theirs], role
        assert response.context["show_person"] is True
        assert url("expense-edit", theirs) not in response.content.decode()
    assert "Log an expense" not in text_of(signed_in(client, people["finance"]).get(LIST_URL))


def test_the_list_filters_by_project_status_and_month(client, people, team, other_project):
    pm = people["pm"]
    ProjectMember.objects.create(project=other_project, user=people["consultant"])
    con = people["consultant"]
    march = spend(con, team)
    april = spend(con, team, day=dt.date(2026, 4, 14), description="Hotel", category="accommodation")
    elsewhere = spend(con, other_project, day=dt.date(2026, 4, 15))
    ts.timesheet_submit(actor=con, week_start=dt.date(2026, 4, 13))
    signed_in(client, pm)

    def shown(**params):
        response = client.get(LIST_URL, params)
        assert response.status_code == 200
        return {item["expense"] for item in response.context["items"]}

    assert shown() == {march, april, elsewhere}
    assert shown(project=str(team.public_id)) == {march, april}
    assert shown(status="submitted") == {april, elsewhere}
    assert shown(month="2026-04") == {april, elsewhere}
    assert shown(month="2026-04", project=str(other_project.public_id), status="submitted") == {elsewhere}
    assert shown(status="approved") == set()
    # A bad filter value is said so, and the other filters still apply.
    response = client.get(LIST_URL, {"month": "April", "project": str(team.public_id)})
    assert {item["expense"] for item in response.context["items"]} == {march, april}
    assert "Enter the month as YYYY-MM" in response.content.decode()
    assert "No expenses match these filters" in text_of(client.get(LIST_URL, {"month": "2025-01"}))


def test_the_list_answers_htmx_with_the_results_alone(client, people, team):
    spend(people["consultant"], team)
    response = signed_in(client, people["consultant"]).get(LIST_URL, headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in response.content.decode() and "1 expense" in text_of(response)
    assert "HX-Request" in response["Vary"]


def test_the_empty_list_says_what_to_do(client, people, team):
    response = signed_in(client, people["consultant"]).get(LIST_URL)
    assert "No expenses yet" in text_of(response)
    assert CREATE_URL in response.content.decode()


@pytest.mark.parametrize(("role", "headers"), [("consultant", {}), ("pm", {}), ("finance", HTMX)])
def test_list_queries_do_not_grow_with_rows(client, people, team, role, headers, django_assert_max_num_queries):
    con = people["consultant"]
    spend(con, team, receipt=upload("r.pdf", PDF, "application/pdf"))
    signed_in(client, people[role])
    client.get(LIST_URL)  # warm the session and permission caches alike for both counts
    with CaptureQueriesContext(connection) as one:
        assert client.get(LIST_URL, headers=headers).status_code == 200
    for index in range(6):
        spend(con, team, day=MON + dt.timedelta(days=index % 5), amount=f"{10 + index}.00", category="meals")
    spend(people["sales"], team, description="Lunch")
    ts.timesheet_submit(actor=con, week_start=MON)
    with django_assert_max_num_queries(len(one)):
        response = client.get(LIST_URL, headers=headers)
    assert len(response.context["items"]) >= 7


def test_the_list_is_paginated(client, people, team):
    con = people["consultant"]
    for index in range(27):
        spend(con, team, day=dt.date(2026, 3, 2) + dt.timedelta(days=index), amount="5.00")
    signed_in(client, con)
    first = client.get(LIST_URL)
    assert len(first.context["items"]) == 25 and first.context["page_obj"].paginator.num_pages == 2
    assert len(client.get(LIST_URL, {"page": "2"}).context["items"]) == 2


def test_a_locked_month_shows_on_its_rows_and_offers_no_changes(client, people, team):
    expense = spend(people["consultant"], team)
    LockedPeriod.objects.create(
        month=MON.replace(day=1), locked_by=people["finance"], locked_at=dt.datetime.now(dt.UTC)
    )
    response = signed_in(client, people["consultant"]).get(LIST_URL)
    assert "Month locked" in text_of(response)
    assert url("expense-edit", expense) not in response.content.decode()


# --- submitting a week --------------------------------------------------------------------------------


def test_submit_week_sends_the_weeks_time_and_expenses_to_approval(client, people, team):
    con = people["consultant"]
    expense = spend(con, team, day=MON + dt.timedelta(days=2))
    entry = ts.time_entry_create(actor=con, project=team, date=MON, hours="8", description="Workshop")
    later = spend(con, team, day=MON + dt.timedelta(days=7))
    back = f"{LIST_URL}?status=draft"
    response = signed_in(client, con).post(
        SUBMIT_URL, {"week_start": (MON + dt.timedelta(days=3)).isoformat(), "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert flashed(response) == [
        "The week of 9–15 Mar 2026 was submitted: 2 entries (time and expenses) went to the project managers for "
        "approval."
    ]
    assert Expense.objects.get(pk=expense.pk).status == EntryStatus.SUBMITTED
    assert TimeEntry.objects.get(pk=entry.pk).status == EntryStatus.SUBMITTED
    assert Expense.objects.get(pk=later.pk).status == EntryStatus.DRAFT


def test_submit_week_in_a_locked_month_says_so(client, people, team):
    spend(people["consultant"], team)
    LockedPeriod.objects.create(
        month=MON.replace(day=1), locked_by=people["finance"], locked_at=dt.datetime.now(dt.UTC)
    )
    response = signed_in(client, people["consultant"]).post(SUBMIT_URL, {"week_start": MON.isoformat()})
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert "March 2026 is locked by finance; entries dated in it cannot be submitted." in flashed(response)[0]
    assert Expense.objects.get().status == EntryStatus.DRAFT


def test_submit_week_with_nothing_or_a_bad_week(client, people, team):
    signed_in(client, people["consultant"])
    nothing = client.post(SUBMIT_URL, {"week_start": MON.isoformat()})
    assert flashed(nothing) == ["Nothing to submit in the week of 9–15 Mar 2026: no drafts left."]
    bad = client.post(SUBMIT_URL, {"week_start": "soon", "next": "https://evil.example/"})
    assert bad["Location"] == LIST_URL  # never off-site
    assert "choose the week" in flashed(bad)[-1]
    assert client.get(SUBMIT_URL).status_code == 405
