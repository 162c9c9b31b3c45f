"""Fixtures of the billing tests: the projects tests' people, legal entity, customer and won projects, a
bank account on the legal entity, approved time on the T&M project, and ``make_draft`` that turns a
project's unbilled items into a draft invoice (set-up for issuing tests, not the run under test)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import Invoice, InvoiceItem, InvoiceLine
from billing.pricing import invoice_refigure
from projects import selectors as project_selectors
from projects import timesheets as ts
from projects.models import TimeEntry
from tests.customers.factories import BankAccountFactory
from tests.projects.conftest import (  # noqa: F401 -- fixtures, used by name
    amend,
    customer,
    deal,
    fixed_deal,
    fixed_project,
    legal_entity,
    people,
    propose,
    retainer_deal,
    team,
    tm_deal,
    tm_project,
    win,
)

MON = dt.date(2026, 3, 9)  # a Monday inside the T&M project (2026-03-02 … 2026-08-31)


@pytest.fixture
def bank_account(legal_entity):  # noqa: F811 -- the imported fixture, by name
    return BankAccountFactory(legal_entity=legal_entity, account_holder=legal_entity.legal_name)


@pytest.fixture
def approved_time(team, people):  # noqa: F811
    """Five approved 8-hour days of the sales rep (Senior consultant, 150/h) on the T&M project."""
    entries = TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=people["sales"],
                project=team,
                date=MON + dt.timedelta(days=offset),
                hours=Decimal("8"),
                labour_category="Senior consultant",
                description=f"Data platform build, day {offset + 1}",
                status="submitted",
            )
            for offset in range(5)
        ]
    )
    ts.time_entries_approve(actor=people["pm"], entries=entries)
    return list(TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("date"))


@pytest.fixture
def make_draft(people):  # noqa: F811
    """``make_draft(project, up_to=…)`` → a draft invoice of the project's unbilled items, one line per item."""

    def make(project, *, up_to=dt.date(2026, 12, 31), created_by=None):
        items = project_selectors.unbilled_items(project=project, up_to=up_to)
        invoice = Invoice.objects.create(
            legal_entity=project.legal_entity,
            customer=project.customer,
            project=project,
            currency=project.currency,
            language=project.language,
            po_number=project.po_number,
            payment_terms_days=project.payment_terms_days,
            created_by=created_by or people["finance"],
            consolidation_key=f"project:{project.pk}",
        )
        for position, item in enumerate(items, start=1):
            line = InvoiceLine.objects.create(
                invoice=invoice,
                position=position,
                kind=item.kind,
                project=project,
                description=item.description,
                labour_category=item.labour_category,
                quantity=item.quantity,
                unit="HUR" if item.kind in ("time", "adjustment") else "C62",
                unit_price=item.unit_price,
                net_amount=item.amount,
                service_start=item.date,
                service_end=item.date,
            )
            InvoiceItem.objects.create(
                line=line,
                invoice=invoice,
                kind=item.kind,
                project=project,
                time_entry=item.entry if item.kind in ("time", "adjustment") else None,
                expense=item.entry if item.kind == "expense" else None,
                milestone=item.entry if item.kind == "milestone" else None,
                date=item.date,
                description=item.description,
                quantity=item.quantity,
                unit_price=item.unit_price,
                amount=item.amount,
            )
        invoice_refigure(invoice)
        return Invoice.objects.get(pk=invoice.pk)

    return make
