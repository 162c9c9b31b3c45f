"""Billing's read side: who sees which invoice and run (ROLES.md), which buttons an invoice offers whom,
when a run is offered a retry, and how the seller and buyer are read from the master data or the snapshot."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from billing import selectors as s
from billing.forms import last_month
from billing.models import Invoice, InvoiceItem, InvoiceLine, InvoiceRun
from projects import timesheets as ts
from projects.models import TimeEntry
from tests.projects.factories import DealFactory, tm_quote

pytestmark = pytest.mark.django_db


def approve_time(project, person, *, days: int = 2) -> list[TimeEntry]:
    """``days`` approved 8-hour days of ``person`` (Senior consultant) on ``project`` from 2026-03-09."""
    entries = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=person,
                project=project,
                date=dt.date(2026, 3, 9) + dt.timedelta(days=offset),
                hours=Decimal("8"),
                labour_category="Senior consultant",
                description=f"Work, day {offset + 1}",
                status="submitted",
            )
            for offset in range(days)
        ]
    )
    ts.time_entries_approve(actor=project.project_manager, entries=entries)
    return entries


@pytest.fixture
def other_project(customer, legal_entity, win, people):
    """A T&M project of the same customer, managed by the second project manager, with approved time."""
    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Other work")
    tm_quote(deal)
    project = win(deal, project_manager=people["pm2"])
    approve_time(project, people["consultant"])
    return project


@pytest.fixture
def own_draft(team, approved_time, make_draft):
    return make_draft(team)


@pytest.fixture
def others_draft(other_project, make_draft):
    return make_draft(other_project)


def _customer_invoice(project, *, item_project=None) -> Invoice:
    """A per-customer invoice (no project) with one milestone-free time item of ``item_project``."""
    invoice = Invoice.objects.create(
        legal_entity=project.legal_entity,
        customer=project.customer,
        currency=project.currency,
        consolidation_key="customer",
    )
    if item_project is not None:
        entry = item_project.time_entries.first()
        line = InvoiceLine.objects.create(
            invoice=invoice,
            position=1,
            kind="time",
            project=item_project,
            description="Work",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            net_amount=Decimal("100"),
        )
        InvoiceItem.objects.create(
            line=line,
            invoice=invoice,
            kind="time",
            project=item_project,
            time_entry=entry,
            date=entry.date,
            description="Work",
            quantity=Decimal("1"),
            unit_price=Decimal("100"),
            amount=Decimal("100"),
            live=False,  # the entry is already on the project's own draft; this one is only a fixture
        )
    return invoice


# --- who sees which invoice -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["finance", "executive", "auditor", "admin"])
def test_finance_executives_auditors_and_admins_see_every_invoice(people, own_draft, others_draft, who):
    assert set(s.invoices_visible_to(people[who])) == {own_draft, others_draft}


def test_a_project_manager_sees_the_invoices_of_the_projects_they_manage(people, own_draft, others_draft):
    assert list(s.invoices_visible_to(people["pm"])) == [own_draft]
    assert list(s.invoices_visible_to(people["pm2"])) == [others_draft]


def test_a_project_manager_sees_a_customer_invoice_that_bills_an_item_of_their_project(
    people, team, approved_time, other_project
):
    mine = _customer_invoice(team, item_project=team)
    theirs = _customer_invoice(team, item_project=None)
    assert mine in s.invoices_visible_to(people["pm"])
    assert theirs not in s.invoices_visible_to(people["pm"])
    assert mine not in s.invoices_visible_to(people["pm2"])


@pytest.mark.parametrize("who", ["sales", "consultant"])
def test_sales_and_consultants_see_no_invoice(people, own_draft, who):
    assert not s.invoices_visible_to(people[who]).exists()


def test_access_invoice_answers_404_outside_the_scope_and_for_nonsense(people, own_draft, others_draft):
    assert s.access_invoice(user=people["pm"], public_id=own_draft.public_id) == own_draft
    with pytest.raises(Http404):
        s.access_invoice(user=people["pm"], public_id=others_draft.public_id)
    with pytest.raises(Http404):
        s.access_invoice(user=people["finance"], public_id="not-a-uuid")


def test_invoice_list_costs_one_query_whatever_the_rows(people, own_draft, others_draft, django_assert_num_queries):
    finance = people["finance"]
    s.invoices_visible_to(finance)  # the permission and role caches warm up
    with django_assert_num_queries(1):
        rows = list(s.invoice_list(user=finance))
        assert {row.customer.number for row in rows} and {row.legal_entity.short_name for row in rows}
        assert [row.project.number for row in rows]


# --- runs ---------------------------------------------------------------------------------------------------------


def _run(legal_entity, **fields) -> InvoiceRun:
    defaults = {
        "number": f"RUN-{InvoiceRun.objects.count() + 1:06d}",
        "period_start": dt.date(2026, 3, 1),
        "period_end": dt.date(2026, 3, 31),
    }
    return InvoiceRun.objects.create(legal_entity=legal_entity, **{**defaults, **fields})


@pytest.mark.parametrize(
    ("who", "sees"),
    [("finance", True), ("executive", True), ("auditor", True), ("admin", True), ("pm", False), ("sales", False)],
)
def test_runs_are_seen_by_those_who_hold_view_invoicerun(people, legal_entity, who, sees):
    run = _run(legal_entity)
    assert (run in s.runs_visible_to(people[who])) is sees
    if not sees:
        with pytest.raises(Http404):
            s.access_run(user=people[who], public_id=run.public_id)


def test_a_failed_run_is_offered_a_retry_to_finance_only(people, legal_entity):
    run = _run(legal_entity, status=InvoiceRun.Status.FAILED)
    assert s.run_can_retry(user=people["finance"], run=run)
    assert s.run_can_retry(user=people["admin"], run=run)
    for who in ("executive", "auditor", "pm"):
        assert not s.run_can_retry(user=people[who], run=run), who


def test_a_running_run_is_offered_a_retry_only_once_it_stopped_moving(people, legal_entity):
    run = _run(legal_entity, status=InvoiceRun.Status.RUNNING)
    assert not s.run_is_stuck(run)
    assert not s.run_can_retry(user=people["finance"], run=run)
    later = run.updated_at + s.RUN_STUCK_AFTER + dt.timedelta(seconds=1)
    assert s.run_is_stuck(run, now=later)
    assert s.run_can_retry(user=people["finance"], run=run, now=later)
    done = _run(legal_entity, status=InvoiceRun.Status.COMPLETED)
    assert not s.run_can_retry(user=people["finance"], run=done, now=later)


def test_the_stuck_threshold_is_the_services_lease():
    from billing import services

    assert s.RUN_STUCK_AFTER == services.RUN_LEASE


def test_run_exceptions_come_by_reason_then_project_and_date(people, legal_entity, team):
    run = _run(legal_entity)
    late = run.exceptions.create(project=team, reason="rate_missing", message="b", item_date=dt.date(2026, 3, 9))
    early = run.exceptions.create(project=team, reason="rate_missing", message="a", item_date=dt.date(2026, 3, 2))
    po = run.exceptions.create(project=team, reason="po_missing", message="c")
    assert list(s.run_exceptions(run)) == [po, early, late]


# --- buttons ------------------------------------------------------------------------------------------------------


def _as(invoice: Invoice, **fields) -> Invoice:
    for name, value in fields.items():
        setattr(invoice, name, value)
    return invoice


def test_invoice_actions_follow_permissions_and_status(people, own_draft):
    draft = own_draft
    approved = _as(Invoice(pk=draft.pk, status=Invoice.Status.APPROVED), approved_by_id=people["finance"].pk)
    issued = _as(Invoice(pk=draft.pk, status=Invoice.Status.ISSUED), number="DE-2026-000001")
    discarded = Invoice(pk=draft.pk, status=Invoice.Status.DISCARDED)
    finance, executive = people["finance"], people["executive"]
    assert s.invoice_actions(user=finance, invoice=draft) == {"approve", "discard"}
    assert s.invoice_actions(user=finance, invoice=approved) == {"issue", "return_to_draft", "discard"}
    assert s.invoice_actions(user=executive, invoice=draft) == {"approve"}
    assert s.invoice_actions(user=executive, invoice=approved) == {"return_to_draft"}
    assert s.invoice_actions(user=people["admin"], invoice=draft) == {"approve", "discard"}
    for invoice in (issued, discarded):
        assert s.invoice_actions(user=finance, invoice=invoice) == set()
    for who in ("auditor", "pm", "sales", "consultant"):
        for invoice in (draft, approved):
            assert s.invoice_actions(user=people[who], invoice=invoice) == set(), who


def test_the_first_approver_is_not_offered_the_second_approval(people, own_draft):
    pending = _as(own_draft, approved_by_id=people["finance"].pk, approved_at=timezone.now())
    assert s.invoice_actions(user=people["finance"], invoice=pending) == {"return_to_draft", "discard"}
    assert "approve" in s.invoice_actions(user=people["executive"], invoice=pending)


# --- seller and buyer -----------------------------------------------------------------------------------------------


def test_a_draft_shows_seller_and_buyer_from_the_master_data(own_draft):
    seller, buyer = s.invoice_parties(own_draft)
    assert seller.name == own_draft.legal_entity.legal_name
    assert seller.lines == own_draft.legal_entity.address_lines()
    assert buyer.name == own_draft.customer.legal_name
    assert buyer.lines and buyer.lines[0] == own_draft.customer.addresses.get(kind="billing").line1
    assert ("Customer number", own_draft.customer.number) in buyer.identifiers
    assert seller.source == buyer.source == "master data"


def test_an_issued_invoice_shows_its_snapshot_not_todays_master_data(own_draft):
    from billing.issuing import buyer_snapshot

    snapshot_buyer = buyer_snapshot(own_draft.customer, own_draft.customer.addresses.get(kind="billing"))
    snapshot_buyer["legal_name"] = "Name at issue GmbH"
    issued = _as(
        own_draft,
        status=Invoice.Status.ISSUED,
        seller={
            "legal_name": "Seller at issue GmbH",
            "address_lines": ["Torstraße 1", "10119 Berlin", "Germany"],
            "registrations": [{"kind": "vat", "number": "DE123456789"}, {"kind": "tax_number", "number": "12/345"}],
            "tax_number": "12/345",
            "bank_account": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
        },
        buyer=snapshot_buyer,
    )
    seller, buyer = s.invoice_parties(issued)
    assert seller.name == "Seller at issue GmbH" and seller.source == "snapshot"
    assert ("VAT ID", "DE123456789") in seller.identifiers
    assert ("Tax number", "12/345") in seller.identifiers
    assert ("IBAN", "DE89 3704 0044 0532 0130 00") in seller.identifiers
    assert buyer.name == "Name at issue GmbH"
    assert buyer.lines == snapshot_buyer["address_lines"]


def test_a_snapshot_without_address_lines_is_printed_from_its_address_fields():
    party = s.party_from_snapshot(
        {"name": "Fjord AS", "address": {"line1": "Karl Johans gate 1", "postal_code": "0154", "city": "Oslo"}}
    )
    assert party.lines == ["Karl Johans gate 1", "0154 Oslo"]
    assert s.party_from_snapshot({}).name == ""


# --- the billing period -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 4, 15), (dt.date(2026, 3, 1), dt.date(2026, 3, 31))),
        (dt.date(2026, 1, 1), (dt.date(2025, 12, 1), dt.date(2025, 12, 31))),
        (dt.date(2024, 3, 31), (dt.date(2024, 2, 1), dt.date(2024, 2, 29))),
    ],
)
def test_the_default_period_is_last_calendar_month(today, expected):
    assert last_month(today) == expected
