"""The billing API: start a run (idempotent), watch its progress and exceptions, list and read invoices in
scope, and move them through approval and issue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from backbone.models import UserProfile
from billing.models import Invoice, InvoiceRun
from projects.models import Project

API = "/api/v1"
BODY = {"period_start": "2026-03-01", "period_end": "2026-03-31"}


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def start(client, legal_entity, **extra):
    return client.post(
        f"{API}/invoice-runs/", {**BODY, "legal_entity": str(legal_entity.public_id)}, format="json", **extra
    )


def test_finance_starts_a_run_once_per_key_and_reads_its_progress(
    people, legal_entity, approved_time, client_for, django_capture_on_commit_callbacks
):
    finance = client_for(people["finance"])
    with django_capture_on_commit_callbacks(execute=True):
        response = start(finance, legal_entity, HTTP_IDEMPOTENCY_KEY="run-march")
    assert response.status_code == 201, response.json()
    again = start(finance, legal_entity, HTTP_IDEMPOTENCY_KEY="run-march")
    assert again.status_code == 201 and again.json()["id"] == response.json()["id"]
    assert InvoiceRun.objects.count() == 1
    run = finance.get(f"{API}/invoice-runs/{response.json()['id']}/").json()
    assert (run["status"], run["progress_percent"], run["invoices_created"], run["items_billed"]) == (
        "completed",
        100,
        1,
        5,
    )
    assert finance.get(f"{API}/invoice-runs/").json()["count"] == 1
    assert finance.get(f"{API}/invoice-runs/{run['id']}/exceptions/").json()["count"] == 0


def test_starting_is_refused_clearly(people, legal_entity, client_for):
    finance = client_for(people["finance"])
    bad = finance.post(
        f"{API}/invoice-runs/",
        {"legal_entity": str(legal_entity.public_id), "period_start": "2026-03-01", "period_end": "2099-01-01"},
        format="json",
    )
    assert bad.status_code == 400 and "future" in bad.json()["errors"]["period_end"][0]
    missing = finance.post(f"{API}/invoice-runs/", {}, format="json")
    assert missing.status_code == 400 and {"legal_entity", "period_start", "period_end"} <= set(
        missing.json()["errors"]
    )
    for who in ("pm", "executive", "auditor", "consultant"):
        assert start(client_for(people[who]), legal_entity).status_code == 403, who
    assert start(APIClient(), legal_entity).status_code == 401


def test_exceptions_say_why_over_the_api(people, legal_entity, approved_time, team, client_for):
    Project.objects.filter(pk=team.pk).update(po_number="", po_required=True)
    finance = client_for(people["finance"])
    run = start(finance, legal_entity).json()
    from billing.services import invoice_run_execute

    invoice_run_execute(InvoiceRun.objects.get(public_id=run["id"]).pk)
    rows = finance.get(f"{API}/invoice-runs/{run['id']}/exceptions/").json()
    assert rows["count"] == 5 and {r["reason"] for r in rows["results"]} == {"po_missing"}
    assert rows["results"][0]["project_number"] == team.number
    assert client_for(people["pm"]).get(f"{API}/invoice-runs/").status_code == 403


def test_invoices_in_scope_with_their_lines_in_constant_queries(
    people, legal_entity, approved_time, team, make_draft, client_for
):
    invoice = make_draft(team)
    finance = client_for(people["finance"])
    listed = finance.get(f"{API}/invoices/").json()
    assert listed["count"] == 1 and listed["results"][0]["status"] == "draft"
    detail = finance.get(f"{API}/invoices/{invoice.public_id}/").json()
    assert len(detail["lines"]) == 5 and detail["net_total"] == "6000.00"
    assert finance.get(f"{API}/invoices/{invoice.public_id}/lines/").json()["count"] == 5
    assert client_for(people["pm"]).get(f"{API}/invoices/{invoice.public_id}/").status_code == 200
    assert client_for(people["pm2"]).get(f"{API}/invoices/{invoice.public_id}/").status_code == 404
    assert client_for(people["consultant"]).get(f"{API}/invoices/").status_code == 403
    with CaptureQueriesContext(connection) as one:
        finance.get(f"{API}/invoices/")
    for _ in range(4):
        Invoice.objects.create(legal_entity=legal_entity, customer=team.customer, project=team, currency="EUR")
    with CaptureQueriesContext(connection) as five:
        assert finance.get(f"{API}/invoices/").json()["count"] == 5
    assert len(five) == len(one)
    assert finance.get(f"{API}/invoices/", {"status": "issued"}).json()["count"] == 0


def test_approve_and_issue_over_the_api(
    people, legal_entity, bank_account, approved_time, team, make_draft, client_for
):
    UserProfile.objects.filter(user=people["finance"]).update(approval_limit_amount=Decimal("5000"))
    invoice = make_draft(team)  # 7,140.00 gross, drafted by finance: above their own limit
    finance = client_for(people["finance"])
    first = finance.post(f"{API}/invoices/{invoice.public_id}/approve/")
    assert first.status_code == 403 and "your own approval limit" in first.json()["message"]
    UserProfile.objects.filter(user=people["finance"]).update(approval_limit_amount=Decimal("20000"))
    finance = client_for(type(people["finance"]).objects.get(pk=people["finance"].pk))
    approved = finance.post(f"{API}/invoices/{invoice.public_id}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.json()
    refused = client_for(people["executive"]).post(f"{API}/invoices/{invoice.public_id}/issue/")
    assert refused.status_code == 403
    issued = finance.post(f"{API}/invoices/{invoice.public_id}/issue/", HTTP_IDEMPOTENCY_KEY="issue-1")
    assert issued.status_code == 200, issued.json()
    body = issued.json()
    assert body["status"] == "issued" and body["number"] and body["due_date"]
    assert body["number"].startswith(legal_entity.invoice_prefix)
    replay = finance.post(f"{API}/invoices/{invoice.public_id}/issue/", HTTP_IDEMPOTENCY_KEY="issue-1")
    assert replay.status_code == 200 and replay.json()["number"] == body["number"]
    twice = finance.post(f"{API}/invoices/{invoice.public_id}/issue/")
    assert twice.status_code == 409
    gone = finance.post(f"{API}/invoices/{invoice.public_id}/discard/", {"reason": "x"}, format="json")
    assert gone.status_code == 409
    no_reason = finance.post(f"{API}/invoices/{invoice.public_id}/discard/", {}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    assert client_for(people["auditor"]).post(f"{API}/invoices/{invoice.public_id}/approve/").status_code == 403
    assert dt.date.fromisoformat(body["due_date"]) > dt.date.fromisoformat(body["issue_date"])
