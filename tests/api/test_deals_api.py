"""The deals and quotes API: scope (404 outside it), role refusals, nested quotes with flat error keys, the
lifecycle actions, multipart attachments, Idempotency-Key on every POST, and constant query counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backbone.roles import Role
from customers.models import Deal, PipelineStage, Quote, QuoteAttachment
from customers.services import quote_send
from tests.customers.deal_factories import TODAY, make_customer, make_deal, make_entity, make_quote

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def sales2(make_user):
    return make_user("sales2", Role.SALES)


@pytest.fixture
def entity(db):
    return make_entity()


@pytest.fixture
def account(sales, entity):
    return make_customer(sales, entity=entity, legal_name="Nordlicht Energie AG")


@pytest.fixture
def deal(sales, account):
    return make_deal(sales, account, title="Customer portal relaunch")


@pytest.fixture
def draft(sales, deal):
    return make_quote(sales, deal)


def quote_body(deal, **overrides) -> dict:
    body = {
        "deal": str(deal.public_id),
        "valid_until": (TODAY + dt.timedelta(days=30)).isoformat(),
        "lines": [
            {
                "description": "Senior consultant",
                "billing_model": "tm",
                "labour_category": "Senior consultant",
                "quantity": "40",
                "unit": "HUR",
                "unit_price": "150.00",
            },
            {
                "description": "Discovery phase",
                "billing_model": "fixed_fee",
                "quantity": "1",
                "unit": "LS",
                "unit_price": "12000",
            },
        ],
        "milestones": [
            {
                "name": "Discovery accepted",
                "planned_date": (TODAY + dt.timedelta(days=30)).isoformat(),
                "amount": "12000.00",
            }
        ],
    }
    body.update(overrides)
    return body


# --- deals ----------------------------------------------------------------------------------------------


def test_deal_create_is_idempotent(client_for, sales, account):
    client = client_for(sales)
    body = {"title": "Data platform", "customer": str(account.public_id), "amount": "25000.00"}
    first = client.post("/api/v1/deals/", body, format="json", HTTP_IDEMPOTENCY_KEY="deal-1")
    again = client.post("/api/v1/deals/", body, format="json", HTTP_IDEMPOTENCY_KEY="deal-1")
    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert Deal.objects.count() == 1
    data = first.json()
    assert data["number"].startswith("DEAL-") and data["stage"] == "qualified" and data["probability"] == 20
    other = client.post("/api/v1/deals/", {**body, "title": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="deal-1")
    assert other.status_code == 409


def test_deal_create_errors_are_flat_json(client_for, sales, account):
    client = client_for(sales)
    response = client.post("/api/v1/deals/", {"customer": str(account.public_id)}, format="json")
    assert response.status_code == 400 and "title" in response.json()["errors"]
    response = client.post(
        "/api/v1/deals/", {"title": "X", "customer": str(account.public_id), "stage": "won"}, format="json"
    )
    assert response.status_code == 400 and list(response.json()["errors"]) == ["stage"]
    assert not Deal.objects.exists()


def test_deal_list_is_scoped_and_keeps_a_constant_number_of_queries(
    client_for, sales, sales2, entity, account, django_assert_max_num_queries
):
    make_deal(sales2, make_customer(sales2, entity=entity))
    make_deal(sales, account)
    client = client_for(sales)
    client.get("/api/v1/deals/")
    with django_assert_max_num_queries(20) as few:
        response = client.get("/api/v1/deals/")
    assert response.json()["count"] == 1
    for _ in range(10):
        make_deal(sales, account)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/deals/?ordering=-amount")
    assert response.json()["count"] == 11


def test_another_reps_deal_is_404(client_for, sales2, deal):
    client = client_for(sales2)
    assert client.get(f"/api/v1/deals/{deal.public_id}/").status_code == 404
    assert client.patch(f"/api/v1/deals/{deal.public_id}/", {"title": "x"}, format="json").status_code == 404
    assert (
        client.post(f"/api/v1/deals/{deal.public_id}/stage/", {"stage": "proposal"}, format="json").status_code == 404
    )


def test_deal_update_and_stage_action(client_for, sales, deal):
    client = client_for(sales)
    response = client.patch(f"/api/v1/deals/{deal.public_id}/", {"next_step": "Call their CTO"}, format="json")
    assert response.status_code == 200 and response.json()["next_step"] == "Call their CTO"
    response = client.post(
        f"/api/v1/deals/{deal.public_id}/stage/", {"stage": "negotiation"}, format="json", HTTP_IDEMPOTENCY_KEY="s1"
    )
    assert response.status_code == 200 and response.json()["stage"] == "negotiation"
    assert response.json()["probability"] == 60
    response = client.post(f"/api/v1/deals/{deal.public_id}/stage/", {"stage": "won"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "transition_not_allowed"
    response = client.post(f"/api/v1/deals/{deal.public_id}/stage/", {"stage": "lost"}, format="json")
    assert response.status_code == 400 and "lost_reason" in response.json()["errors"]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.FINANCE, Role.EXECUTIVE])
def test_roles_that_only_look_read_deals_and_change_nothing(client_for, users, deal, role):
    client = client_for(users[role])
    assert client.get(f"/api/v1/deals/{deal.public_id}/").status_code == 200
    assert client.patch(f"/api/v1/deals/{deal.public_id}/", {"title": "x"}, format="json").status_code == 403
    assert (
        client.post(f"/api/v1/deals/{deal.public_id}/stage/", {"stage": "proposal"}, format="json").status_code == 403
    )
    body = {"title": "Mine", "customer": str(deal.customer.public_id)}
    assert client.post("/api/v1/deals/", body, format="json").status_code == 403


def test_consultants_and_pms_without_projects_see_no_deals(client_for, users, deal):
    assert client_for(users[Role.CONSULTANT]).get("/api/v1/deals/").status_code == 403
    response = client_for(users[Role.PROJECT_MANAGER]).get("/api/v1/deals/")
    assert response.status_code == 200 and response.json()["count"] == 0


# --- quotes ---------------------------------------------------------------------------------------------


def test_quote_create_with_nested_lines_and_milestones_is_idempotent(client_for, sales, deal):
    client = client_for(sales)
    first = client.post("/api/v1/quotes/", quote_body(deal), format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    again = client.post("/api/v1/quotes/", quote_body(deal), format="json", HTTP_IDEMPOTENCY_KEY="q-1")
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert Quote.objects.count() == 1
    data = first.json()
    assert data["version"] == 1 and data["status"] == "draft" and data["net_amount"] == "18000.00"
    assert [line["net_amount"] for line in data["lines"]] == ["6000.00", "12000.00"]
    assert data["milestones"][0]["amount"] == "12000.00"


def test_quote_errors_use_flat_keys(client_for, sales, deal):
    body = quote_body(deal)
    body["lines"][1]["unit_price"] = None
    body["lines"][0]["discount_percent"] = "120"
    body["milestones"][0]["amount"] = "100.00"
    response = client_for(sales).post("/api/v1/quotes/", body, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "lines.1.unit_price" in errors and "lines.0.discount_percent" in errors
    assert not Quote.objects.exists()


def test_quote_without_lines_or_deal_is_refused(client_for, sales, deal):
    client = client_for(sales)
    response = client.post("/api/v1/quotes/", quote_body(deal, lines=[], milestones=[]), format="json")
    assert response.status_code == 400 and "lines" in response.json()["errors"]
    body = quote_body(deal)
    del body["deal"]
    assert "deal" in client.post("/api/v1/quotes/", body, format="json").json()["errors"]


def test_quote_update_of_a_draft_and_refusal_once_sent(client_for, sales, draft):
    client = client_for(sales)
    response = client.patch(f"/api/v1/quotes/{draft.public_id}/", {"payment_terms_days": 14}, format="json")
    assert response.status_code == 200 and response.json()["payment_terms_days"] == 14
    assert len(response.json()["lines"]) == 2
    quote_send(user=sales, quote=draft)
    response = client.patch(f"/api/v1/quotes/{draft.public_id}/", {"terms": "x"}, format="json")
    assert response.status_code == 409


def test_send_accept_and_new_version_actions(client_for, sales, deal, draft, django_capture_on_commit_callbacks):
    client = client_for(sales)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/quotes/{draft.public_id}/send/", HTTP_IDEMPOTENCY_KEY="send-1")
    assert response.status_code == 200 and response.json()["status"] == "sent"
    assert Quote.objects.get(pk=draft.pk).pdf_sha256
    replay = client.post(f"/api/v1/quotes/{draft.public_id}/send/", HTTP_IDEMPOTENCY_KEY="send-1")
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    response = client.post(f"/api/v1/quotes/{draft.public_id}/new-version/", HTTP_IDEMPOTENCY_KEY="nv-1")
    assert response.status_code == 201 and response.json()["version"] == 2
    copy_id = response.json()["id"]
    response = client.post(f"/api/v1/quotes/{copy_id}/accept/", {"customer_signatory": "Katrin Vogel"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert response.json()["customer_signatory"] == "Katrin Vogel" and response.json()["accepted_by"] == "sales"
    response = client.post(f"/api/v1/quotes/{draft.public_id}/accept/", {}, format="json")
    assert response.status_code == 409


def test_quote_list_keeps_a_constant_number_of_queries(client_for, sales, account, django_assert_max_num_queries):
    make_quote(sales, make_deal(sales, account))
    client = client_for(sales)
    client.get("/api/v1/quotes/")
    with django_assert_max_num_queries(20) as few:
        client.get("/api/v1/quotes/")
    for _ in range(6):
        make_quote(sales, make_deal(sales, account))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/quotes/")
    assert response.json()["count"] == 7


def test_quotes_of_another_reps_deal_are_404(client_for, sales2, draft, deal):
    client = client_for(sales2)
    assert client.get(f"/api/v1/quotes/{draft.public_id}/").status_code == 404
    assert client.post(f"/api/v1/quotes/{draft.public_id}/send/").status_code == 404
    response = client.post("/api/v1/quotes/", quote_body(deal), format="json")
    assert response.status_code == 400 and "deal" in response.json()["errors"]  # not visible: no such deal


@pytest.mark.parametrize("action", ["send", "accept", "new-version"])
def test_auditors_cannot_use_quote_actions(client_for, auditor, draft, action):
    response = client_for(auditor).post(f"/api/v1/quotes/{draft.public_id}/{action}/")
    assert response.status_code == 403


# --- attachments ----------------------------------------------------------------------------------------


def test_attachment_upload_is_multipart_checked_and_listed(client_for, sales, draft):
    client = client_for(sales)
    url = f"/api/v1/quotes/{draft.public_id}/attachments/"
    response = client.post(
        url,
        {"kind": "signed_proposal", "file": SimpleUploadedFile("signed.pdf", PDF_BYTES, "application/pdf")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["filename"] == "signed.pdf" and len(response.json()["sha256"]) == 64
    response = client.post(
        url, {"kind": "po", "file": SimpleUploadedFile("po.pdf", b"GIF89a", "application/pdf")}, format="multipart"
    )
    assert response.status_code == 400 and "file" in response.json()["errors"]
    listed = client.get(url)
    assert listed.status_code == 200 and [a["kind"] for a in listed.json()] == ["signed_proposal"]
    assert QuoteAttachment.objects.count() == 1


def test_attachments_are_refused_to_auditors_and_outside_scope(client_for, auditor, sales2, draft):
    url = f"/api/v1/quotes/{draft.public_id}/attachments/"
    upload = {"kind": "po", "file": SimpleUploadedFile("po.pdf", PDF_BYTES, "application/pdf")}
    assert client_for(auditor).post(url, upload, format="multipart").status_code == 403
    assert client_for(auditor).get(url).status_code == 200
    assert client_for(sales2).get(url).status_code == 404


def test_stage_filter_and_amounts_in_the_list(client_for, sales, account):
    make_deal(sales, account, amount=Decimal("100"), stage=PipelineStage.objects.get(code="proposal"))
    make_deal(sales, account, amount=Decimal("200"))
    response = client_for(sales).get("/api/v1/deals/?stage=proposal")
    assert [d["amount"] for d in response.json()["results"]] == ["100.00"]
