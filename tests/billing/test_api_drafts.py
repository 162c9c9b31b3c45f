"""The draft editing and review API: header edits, manual lines and discounts (idempotent), a line's changes
and deletion, and the review comments; every refusal as JSON naming the field (400), the role (403), the
scope (404) or the state (409)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing import drafts
from billing.issuing import invoice_approve
from billing.models import Invoice, InvoiceComment, InvoiceLine
from tests.customers.factories import ProductFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/invoices"


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def draft(team, approved_time, make_draft):
    return make_draft(team)


def lines_of(invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))


def at(invoice, suffix: str = "") -> str:
    return f"{API}/{invoice.public_id}/{suffix}"


# --- header ---------------------------------------------------------------------------------------------------


def test_finance_edits_the_header_and_gets_the_draft_back(people, draft, client_for):
    response = client_for(people["finance"]).post(
        at(draft, "edit/"), {"po_number": "PO-1", "detail_appendix": True, "grouping": "rolled_up"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["po_number"], body["detail_appendix"], body["grouping"]) == ("PO-1", True, "rolled_up")
    assert body["gross_total"] == "7140.00" and len(body["lines"]) == 5
    assert body["lines"][0]["product_tax_category"] == "S"


def test_a_new_grouping_over_the_api_regroups(people, draft, client_for):
    finance = client_for(people["finance"])
    finance.post(at(draft, "edit/"), {"grouping": "detailed"}, format="json")
    body = finance.post(at(draft, "edit/"), {"grouping": "rolled_up"}, format="json").json()
    assert [(line["quantity"], line["net_amount"]) for line in body["lines"]] == [("40.0000", "6000.00")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payment_terms_days": 999}, "payment_terms_days"),
        ({"po_number": "P" * 61}, "po_number"),
        ({"grouping": "weekly"}, "grouping"),
        ({}, "non_field_errors"),
    ],
)
def test_header_errors_name_the_field(people, draft, client_for, body, field):
    response = client_for(people["finance"]).post(at(draft, "edit/"), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"] and response.json()["message"]


def test_an_approved_invoice_answers_409(people, draft, client_for):
    invoice_approve(actor=people["executive"], invoice=draft)
    response = client_for(people["finance"]).post(at(draft, "edit/"), {"notes": "x"}, format="json")
    assert response.status_code == 409
    assert "return it to draft" in response.json()["message"] and response.json()["code"] == "transition_not_allowed"


@pytest.mark.parametrize(("name", "code"), [("pm", 403), ("executive", 403), ("auditor", 403), ("sales", 403)])
def test_roles_that_do_not_edit_are_refused(people, draft, client_for, name, code):
    assert client_for(people[name]).post(at(draft, "edit/"), {"notes": "x"}, format="json").status_code == code
    assert Invoice.objects.get(pk=draft.pk).notes == ""


def test_signed_out_is_401(draft):
    assert APIClient().post(at(draft, "edit/"), {"notes": "x"}, format="json").status_code == 401


# --- adding lines ---------------------------------------------------------------------------------------------


def test_a_catalog_item_is_added_once_per_key(people, draft, client_for):
    product = ProductFactory(code="WS-1", name="Workshop day", unit="DAY", default_price_amount=Decimal("900"))
    finance = client_for(people["finance"])
    body = {"kind": "manual", "product": str(product.public_id), "quantity": "2"}
    first = finance.post(at(draft, "add-line/"), body, format="json", HTTP_IDEMPOTENCY_KEY="ws-1")
    assert first.status_code == 201, first.json()
    again = finance.post(at(draft, "add-line/"), body, format="json", HTTP_IDEMPOTENCY_KEY="ws-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert InvoiceLine.objects.filter(invoice=draft, kind="manual").count() == 1
    line = first.json()["lines"][-1]
    assert (line["description"], line["unit"], line["net_amount"]) == ("Workshop day", "DAY", "1800.00")
    assert first.json()["net_total"] == "7800.00"


def test_a_discount_is_added_over_the_api(people, draft, client_for):
    response = client_for(people["finance"]).post(
        at(draft, "add-line/"), {"kind": "discount", "percent": "12.5"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["lines"][-1]["net_amount"] == "-750.00" and body["net_total"] == "5250.00"
    assert body["tax_total"] == "997.50"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "manual", "quantity": "1"}, "unit_price"),
        ({"kind": "manual", "description": "x", "unit_price": "1", "percent": "5"}, "percent"),
        ({"kind": "discount", "amount": "5", "unit_price": "3"}, "unit_price"),
        ({"kind": "discount", "amount": "9000"}, "amount"),
        ({"kind": "discount", "percent": "150"}, "percent"),
        ({"kind": "gift"}, "kind"),
        ({"kind": "manual", "product": "00000000-0000-0000-0000-000000000000", "unit_price": "1"}, "product"),
    ],
)
def test_bad_lines_name_the_field(people, draft, client_for, body, field):
    response = client_for(people["finance"]).post(at(draft, "add-line/"), body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert InvoiceLine.objects.filter(invoice=draft).count() == 5


# --- changing and deleting lines ------------------------------------------------------------------------------


def test_a_lines_description_is_patched(people, draft, client_for):
    line = lines_of(draft)[0]
    response = client_for(people["finance"]).patch(
        at(draft, f"lines/{line.public_id}/"), {"description": "Kick-off", "phase": "Discovery"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["lines"][0]["description"], response.json()["lines"][0]["phase"]) == (
        "Kick-off",
        "Discovery",
    )


def test_the_quantity_of_a_line_of_work_is_refused_naming_the_field(people, draft, client_for):
    line = lines_of(draft)[0]
    response = client_for(people["finance"]).patch(
        at(draft, f"lines/{line.public_id}/"), {"quantity": "1"}, format="json"
    )
    assert response.status_code == 400
    assert "discarding the draft and re-running" in response.json()["errors"]["quantity"][0]


def test_a_manual_line_is_deleted_and_a_line_of_work_is_not(people, draft, client_for):
    manual = drafts.line_add_manual(actor=people["finance"], invoice=draft, description="Travel", unit_price="300")
    finance = client_for(people["finance"])
    response = finance.delete(at(draft, f"lines/{manual.public_id}/"))
    assert response.status_code == 200 and len(response.json()["lines"]) == 5
    refused = finance.delete(at(draft, f"lines/{lines_of(draft)[0].public_id}/"))
    assert refused.status_code == 409 and refused.json()["errors"]["line"]


def test_unknown_lines_are_404(people, draft, client_for):
    finance = client_for(people["finance"])
    assert finance.patch(at(draft, "lines/0000/"), {"description": "x"}, format="json").status_code == 404
    other = Invoice.objects.create(
        legal_entity=draft.legal_entity, customer=draft.customer, currency="EUR", created_by=people["finance"]
    )
    line = lines_of(draft)[0]
    assert finance.patch(at(other, f"lines/{line.public_id}/"), {"description": "x"}, format="json").status_code == 404


def test_the_auditor_cannot_patch_or_delete(people, draft, client_for):
    auditor = client_for(people["auditor"])
    line = lines_of(draft)[0]
    assert auditor.patch(at(draft, f"lines/{line.public_id}/"), {"description": "x"}, format="json").status_code == 403
    assert auditor.delete(at(draft, f"lines/{line.public_id}/")).status_code == 403


# --- comments -------------------------------------------------------------------------------------------------


def test_a_project_manager_comments_and_everyone_in_scope_reads(people, draft, client_for):
    pm = client_for(people["pm"])
    response = pm.post(at(draft, "comments/"), {"body": "Day 3 was the workshop."}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["author"], response.json()["body"]) == ("pm", "Day 3 was the workshop.")
    for name in ("pm", "finance", "executive", "auditor"):
        listed = client_for(people[name]).get(at(draft, "comments/"))
        assert listed.status_code == 200 and listed.json()["count"] == 1, name
    assert client_for(people["pm2"]).get(at(draft, "comments/")).status_code == 404
    assert client_for(people["sales"]).get(at(draft, "comments/")).status_code == 403


def test_comment_refusals(people, draft, client_for):
    assert client_for(people["executive"]).post(at(draft, "comments/"), {"body": "x"}, format="json").status_code == 403
    assert client_for(people["auditor"]).post(at(draft, "comments/"), {"body": "x"}, format="json").status_code == 403
    empty = client_for(people["pm"]).post(at(draft, "comments/"), {"body": " "}, format="json")
    assert empty.status_code == 400 and empty.json()["errors"] == {"body": ["Enter the comment."]}
    invoice_approve(actor=people["executive"], invoice=draft)
    closed = client_for(people["pm"]).post(at(draft, "comments/"), {"body": "Late"}, format="json")
    assert closed.status_code == 409 and "review is closed" in closed.json()["message"]
    assert not InvoiceComment.objects.exists()
