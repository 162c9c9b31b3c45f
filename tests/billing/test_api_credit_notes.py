"""Credit notes and the PDF in the API: ``POST /invoices/{id}/credit-notes/`` creates a draft credit note (full,
or chosen lines whole or in part, a root cause, the release wish) once per Idempotency-Key and refuses with
JSON naming the field or the line; ``GET`` on the same path lists the invoice's credit notes with its balance
in a constant number of queries; ``GET /invoices/{id}/pdf/`` downloads the stored PDF, and says in JSON why
there is none yet. Finance only creates; consultants and sales get 403; auditors read."""

# ruff: noqa: F811 -- the fixtures of test_credit_notes are imported by name and requested as arguments

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing import api_documents
from billing.models import Invoice, InvoiceDocument, InvoiceItem
from billing.tasks import invoice_pdf_render
from projects.models import EntryStatus, TimeEntry

from .test_credit_notes import approve_and_issue, create, issued, lines_of  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def credit_url(invoice) -> str:
    return f"{API}/invoices/{invoice.public_id}/credit-notes/"


def pdf_url(invoice) -> str:
    return f"{API}/invoices/{invoice.public_id}/pdf/"


# --- creating ------------------------------------------------------------------------------------------------


def test_finance_credits_chosen_lines_and_gets_the_draft_credit_note(issued, people, client_for):
    first, second = lines_of(issued)[:2]
    body = {
        "lines": [{"line": str(first.public_id)}, {"line": str(second.public_id), "amount": "150.00"}],
        "reason": "pricing_error",
        "explanation": "Two days at the wrong rate",
    }
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert (data["id"], data["kind"], data["status"], data["number"]) == (
        str(note.public_id),
        "credit_note",
        "draft",
        "",
    )
    assert (data["credited_invoice"], data["credited_invoice_number"]) == (str(issued.public_id), issued.number)
    assert (data["credit_reason"], data["credit_explanation"], data["releases_items"]) == (
        "pricing_error",
        "Two days at the wrong rate",
        False,
    )
    assert (data["net_total"], data["tax_total"], data["gross_total"]) == ("-1350.00", "-256.50", "-1606.50")
    assert sorted(line.net_amount for line in note.lines.all()) == [Decimal("-1200.00"), Decimal("-150.00")]


def test_a_full_credit_that_releases_the_items_frees_them_when_issued(issued, people, client_for):
    finance = client_for(people["finance"])
    response = finance.post(
        credit_url(issued), {"full": True, "reason": "scope_misunderstanding", "release_items": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["releases_items"] is True and response.json()["gross_total"] == "-7140.00"
    note = Invoice.objects.get(public_id=response.json()["id"])
    approve_and_issue(note, people)
    assert not InvoiceItem.objects.filter(invoice=issued, live=True).exists()
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}


def test_the_same_idempotency_key_creates_one_credit_note(issued, people, client_for):
    finance = client_for(people["finance"])
    body = {"full": True, "reason": "goodwill"}
    first = finance.post(credit_url(issued), body, format="json", HTTP_IDEMPOTENCY_KEY="credit-1")
    again = finance.post(credit_url(issued), body, format="json", HTTP_IDEMPOTENCY_KEY="credit-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).count() == 1
    other = finance.post(
        credit_url(issued), {**body, "reason": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="credit-1"
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    # Without a key a second request is a second request: the invoice is credited in full already.
    refused = finance.post(credit_url(issued), body, format="json")
    assert refused.status_code == 400 and "credited already" in refused.json()["errors"]["full"][0]
    assert Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).count() == 1


def test_a_line_that_is_not_on_the_invoice_is_named(issued, people, client_for):
    first = lines_of(issued)[0]
    stranger = "00000000-0000-0000-0000-000000000001"
    body = {"lines": [{"line": str(first.public_id)}, {"line": stranger}], "reason": "goodwill"}
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["errors"] == {"lines.1.line": [f"{stranger} is not a line of {issued.number}."]}
    assert (
        data["message"]
        == f"The credit note was not created: lines.1.line: {stranger} is not a line of {issued.number}."
    )
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


@pytest.mark.parametrize(
    ("line_body", "key", "message"),
    [
        ({"amount": "1300"}, "lines.0.amount", "Line 1 (Data platform build, day 1): €1,300.00 is more than can be"),
        (
            {"amount": "0.005"},
            "lines.0.amount",
            "Line 1 (Data platform build, day 1): 0.005 has more decimals than EUR",
        ),
        ({"amount": 0}, "lines.0.amount", "Line 1 (Data platform build, day 1): the amount to credit must be more"),
        ({"amount": "abc"}, "lines.0.amount", "A valid number is required."),
    ],
)
def test_a_bad_amount_is_refused_on_its_line(issued, people, client_for, line_body, key, message):
    first = lines_of(issued)[0]
    body = {"lines": [{"line": str(first.public_id), **line_body}], "reason": "goodwill"}
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [key] and response.json()["errors"][key][0].startswith(message)


def test_a_json_number_amount_is_taken_exactly(issued, people, client_for):
    first = lines_of(issued)[0]
    body = {"lines": [{"line": str(first.public_id), "amount": 120.1}], "reason": "goodwill"}
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 201 and response.json()["net_total"] == "-120.10"


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"reason": "goodwill"}, "lines", "Choose the lines to credit, or credit the whole invoice."),
        ({"full": True}, "reason", "This field is required."),
        ({"full": True, "reason": "typo"}, "reason", '"typo" is not a valid choice.'),
        ({"full": True, "reason": "other"}, "explanation", "Say what the other cause was"),
        (
            {"full": True, "reason": "goodwill", "lines": [{"line": None}]},
            "lines.0.line",
            "This field may not be null.",
        ),
    ],
)
def test_what_is_missing_or_wrong_is_named(issued, people, client_for, body, key, message):
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][key][0].startswith(message)


def test_a_partial_credit_cannot_release_and_the_line_is_named(issued, people, client_for):
    first = lines_of(issued)[0]
    body = {"lines": [{"line": str(first.public_id), "amount": "100.00"}], "reason": "goodwill", "release_items": True}
    response = client_for(people["finance"]).post(credit_url(issued), body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "release_items": [
            "Only lines credited in full release their items for rebilling; Line 1 (Data platform build, day 1) is "
            "credited in part."
        ]
    }


def test_an_invoice_that_cannot_be_credited_answers_409(issued, people, client_for):
    finance = client_for(people["finance"])
    note = finance.post(credit_url(issued), {"full": True, "reason": "goodwill"}, format="json").json()
    response = finance.post(f"{API}/invoices/{note['id']}/credit-notes/", {"full": True, "reason": "goodwill"})
    assert response.status_code == 409
    assert "is a credit note itself; only invoices are credited" in response.json()["message"]


@pytest.mark.parametrize("who", ["consultant", "sales", "pm", "executive", "auditor"])
def test_only_finance_creates_credit_notes(issued, people, client_for, who):
    response = client_for(people[who]).post(credit_url(issued), {"full": True, "reason": "goodwill"}, format="json")
    assert response.status_code == 403, who
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_signed_out_is_401_and_an_unknown_invoice_is_404(issued, people, client_for):
    assert APIClient().post(credit_url(issued), {"full": True, "reason": "goodwill"}, format="json").status_code == 401
    unknown = f"{API}/invoices/00000000-0000-0000-0000-000000000000/credit-notes/"
    finance = client_for(people["finance"])
    assert finance.post(unknown, {"full": True, "reason": "goodwill"}, format="json").status_code == 404
    assert finance.get(unknown).status_code == 404


# --- listing -------------------------------------------------------------------------------------------------


def test_the_list_has_the_credit_notes_and_the_balance(issued, people, client_for):
    lines = lines_of(issued)
    first = approve_and_issue(create(issued, people, lines=[{"line": lines[0], "amount": Decimal("300.00")}]), people)
    pending = create(issued, people, lines=[{"line": lines[1], "amount": None}], release_items=True)
    data = client_for(people["auditor"]).get(credit_url(issued)).json()
    assert data["count"] == 2 and (data["next"], data["previous"]) == (None, None)
    assert [(row["id"], row["number"], row["status"]) for row in data["results"]] == [
        (str(first.public_id), first.number, "issued"),
        (str(pending.public_id), "", "draft"),
    ]
    assert data["results"][1]["releases_items"] is True
    assert data["balance"] == {
        "currency": "EUR",
        "gross_total": "7140.00",
        "credited_amount": "357.00",
        "remaining_amount": "6783.00",
        "pending_amount": "1428.00",
        "issued_count": 1,
        "pending_count": 1,
    }


def test_the_list_costs_the_same_queries_whatever_the_number_of_credit_notes(issued, people, client_for):
    finance = client_for(people["finance"])
    line = lines_of(issued)[0]
    create(issued, people, lines=[{"line": line, "amount": Decimal("1.00")}])
    with CaptureQueriesContext(connection) as one:
        assert finance.get(credit_url(issued)).json()["count"] == 1
    for _ in range(6):
        create(issued, people, lines=[{"line": line, "amount": Decimal("1.00")}])
    with CaptureQueriesContext(connection) as seven:
        assert finance.get(credit_url(issued)).json()["count"] == 7
    assert len(seven.captured_queries) == len(one.captured_queries)


def test_who_may_list_credit_notes(issued, people, client_for):
    for who in ("finance", "executive", "auditor", "admin", "pm"):
        assert client_for(people[who]).get(credit_url(issued)).status_code == 200, who
    for who in ("consultant", "sales"):
        assert client_for(people[who]).get(credit_url(issued)).status_code == 403, who
    assert client_for(people["pm2"]).get(credit_url(issued)).status_code == 404  # not their project


# --- the PDF -------------------------------------------------------------------------------------------------


def test_the_pdf_is_404_until_rendered_then_downloaded(issued, people, client_for):
    finance = client_for(people["finance"])
    response = finance.get(pdf_url(issued))
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {
        "message": f"The PDF of {issued.number} is being rendered; try again in a few seconds.",
        "code": "pdf_rendering",
        "errors": {},
    }
    assert response["Retry-After"] == "5"

    assert invoice_pdf_render(issued.pk) is True  # the queue task of billing.tasks
    response = finance.get(pdf_url(issued), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf" and response["X-Content-Type-Options"] == "nosniff"
    assert f'filename="{issued.number}.pdf"' in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    document = InvoiceDocument.objects.get(invoice=issued)
    assert content.startswith(b"%PDF-") and len(content) == document.size


def test_the_pdf_of_a_draft_or_an_overdue_one_says_why(legal_entity, customer, issued, people, client_for, monkeypatch):
    finance = client_for(people["finance"])
    draft = Invoice.objects.create(legal_entity=legal_entity, customer=customer, currency="EUR")
    response = finance.get(pdf_url(draft), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404 and response.json()["code"] == "pdf_not_issued"
    assert response.json()["message"] == f"{draft} is a draft: a PDF is rendered once it is issued."
    monkeypatch.setattr(api_documents, "PDF_RENDER_GRACE", dt.timedelta(0))  # issued long enough ago
    response = finance.get(pdf_url(issued))
    assert response.status_code == 404 and response.json()["code"] == "pdf_not_rendered"
    assert response.json()["message"].startswith(
        f"The PDF of {issued.number} is not rendered yet although it was issued on {issued.issue_date.isoformat()}"
    )
    assert "Retry-After" not in response


def test_who_may_download_the_pdf(issued, people, client_for):
    invoice_pdf_render(issued.pk)
    for who in ("finance", "executive", "auditor", "admin", "pm"):
        assert client_for(people[who]).get(pdf_url(issued)).status_code == 200, who
    for who in ("consultant", "sales"):
        assert client_for(people[who]).get(pdf_url(issued)).status_code == 403, who
    assert client_for(people["pm2"]).get(pdf_url(issued)).status_code == 404
    assert APIClient().get(pdf_url(issued)).status_code == 401


@pytest.mark.parametrize(
    ("who", "credit_notes", "pdf"),
    [
        ("sales", 403, 403),
        ("pm", 200, 404),
        ("consultant", 403, 403),
        ("finance", 200, 404),
        ("executive", 200, 404),
        ("auditor", 200, 404),
        ("admin", 200, 404),
    ],
)
def test_a_draft_has_no_credit_notes_and_no_pdf_for_whoever_sees_it(
    make_draft, team, approved_time, people, client_for, who, credit_notes, pdf
):
    """The rows of the permission matrix: its world invoice is a draft of the project manager's project."""
    draft = make_draft(team)
    client = client_for(people[who])
    response = client.get(credit_url(draft))
    assert response.status_code == credit_notes
    if credit_notes == 200:
        assert response.json()["count"] == 0 and response.json()["balance"]["credited_amount"] == "0.00"
    assert client.get(pdf_url(draft)).status_code == pdf
    assert APIClient().get(credit_url(draft)).status_code == 401
