"""The billing demo seeder bills the month before last for real: an invoice run per legal entity of the demo
projects, every draft approved (finance within her limit, the executive above it) and issued with gapless
numbers, so the month's entries are billed on those numbers; an adjustment of billed time for the client's
query, approved and waiting for the next invoice; the month locked; and last month's run with its drafts
waiting for finance. What a run cannot bill is an exception with its reason. A second run changes nothing.

Every registered seeder runs (in their order: billing after projects), once per module and date (today, and
a Monday that is the first of a month), in a transaction rolled back at the end; each test runs in a
savepoint inside it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from backbone.demo import seeders
from backbone.models import OutboundMessage
from backbone.services import external_id_lookup
from billing.demo import seed_billing
from billing.issuing import approval_limit
from billing.models import Dispute, Invoice, InvoiceItem, InvoiceLine, InvoiceRun, RunException
from customers.models import Deal
from projects import selectors as project_selectors
from projects.models import EntryStatus, Expense, LockedPeriod, Project, TimeEntry

pytestmark = pytest.mark.django_db

DAYS = {"today": None, "monday-the-first": dt.date(2027, 3, 1)}


def _month_start(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(month: dt.date) -> dt.date:
    return _month_start(month, 1) - dt.timedelta(days=1)


@pytest.fixture(scope="module", params=list(DAYS))
def demo(request, django_db_setup, django_db_blocker):
    today = DAYS[request.param] or timezone.localdate()
    with (
        mock.patch("django.utils.timezone.localdate", return_value=today),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        order = [seeder.name for seeder in seeders()]
        summaries = {seeder.name: seeder.run(password="demo", stdout_write=lambda _: None) for seeder in seeders()}
        projects = {}
        for key in ("PRJ-DEMO-TM", "PRJ-DEMO-FIXED", "PRJ-DEMO-RETAINER", "PRJ-DEMO-EXPENSES"):
            deal = external_id_lookup(model=Deal, system="demo", external_id=key)
            projects[key] = Project.objects.get(deal=deal)
        billed = _month_start(today, -2)
        last = _month_start(today, -1)
        yield SimpleNamespace(
            today=today,
            order=order,
            summary=summaries["billing"],
            projects=projects,
            billed=billed,
            billed_window=(billed, _month_end(billed)),
            last=last,
            last_window=(last, _month_end(last)),
            people={u.username: u for u in get_user_model().objects.filter(username__in=["finance", "executive"])},
        )
        transaction.set_rollback(True)


def _runs(demo, month: dt.date):
    return InvoiceRun.objects.filter(period_start=month, period_end=_month_end(month)).order_by("pk")


def _issued_numbers() -> set[str]:
    return set(Invoice.objects.filter(status=Invoice.Status.ISSUED).values_list("number", flat=True))


def _state() -> tuple:
    """Everything the billing seeder makes or changes, as comparable values."""
    return (
        list(InvoiceRun.objects.order_by("pk").values_list("pk", "number", "status", "period_start", "attempts")),
        list(
            Invoice.objects.order_by("pk").values_list(
                "pk", "status", "number", "gross_total", "approved_by", "second_approved_by", "issued_by"
            )
        ),
        list(InvoiceLine.objects.order_by("pk").values_list("pk", "invoice", "net_amount")),
        list(InvoiceItem.objects.order_by("pk").values_list("pk", "invoice", "live", "time_entry", "expense")),
        list(RunException.objects.order_by("pk").values_list("pk", "run", "reason", "item_public_id")),
        list(TimeEntry.objects.order_by("pk").values_list("pk", "hours", "status", "invoice_ref", "adjusts")),
        list(Expense.objects.order_by("pk").values_list("pk", "status", "invoice_ref")),
        list(LockedPeriod.objects.order_by("pk").values_list("month", "locked_by")),
        Invoice.history.count(),
        TimeEntry.history.count(),
        OutboundMessage.objects.count(),
        Dispute.objects.count(),
    )


def test_billing_seeds_after_projects_and_sums_up_what_it_made(demo):
    assert demo.order.index("billing") == demo.order.index("projects") + 1
    assert demo.summary.startswith("4 invoice runs (4 new), 4 invoices drafted: 1 issued, 1 approved, 2 draft; ")
    assert demo.summary.endswith(
        "; 1 sent by email, 1 disputed from the portal; 1 new adjustment of billed time, 1 month locked"
    )
    count = RunException.objects.count()
    assert f"; {count} run exceptions ({count} po_missing);" in demo.summary


def test_the_issued_invoice_is_sent_with_its_pdf_and_its_client_disputes_it_from_the_portal(demo):
    issued = Invoice.objects.get(status=Invoice.Status.ISSUED, kind=Invoice.Kind.INVOICE)
    message = OutboundMessage.objects.get(about_id=issued.public_id)
    document = issued.documents.get()
    assert message.status == OutboundMessage.Status.QUEUED  # the worker sends it
    assert message.to and issued.number in message.subject
    assert [(a.filename, a.sha256) for a in message.attachments.all()] == [(document.filename, document.sha256)]
    dispute = Dispute.objects.get(invoice=issued)
    assert (dispute.status, dispute.source) == (Dispute.Status.OPEN, Dispute.Source.PORTAL)
    assert dispute.contact_email


def test_the_month_before_last_is_run_per_legal_entity_by_finance_without_the_queue(demo):
    entities = {project.legal_entity_id for project in demo.projects.values()}
    for month in (demo.billed, demo.last):
        runs = list(_runs(demo, month))
        assert {run.legal_entity_id for run in runs} == entities and len(runs) == len(entities) == 2
        for run in runs:
            assert (run.status, run.started_by.username, run.attempts) == (InvoiceRun.Status.COMPLETED, "finance", 1)
            assert run.projects_done == run.projects_total


def test_the_month_before_last_is_billed_on_issued_invoices_with_gapless_numbers(demo):
    invoices = list(Invoice.objects.filter(run__in=_runs(demo, demo.billed)).order_by("pk"))
    assert invoices and {i.status for i in invoices} == {Invoice.Status.ISSUED}
    finance, executive = demo.people["finance"], demo.people["executive"]
    for invoice in invoices:
        assert invoice.issued_by == finance and invoice.issue_date == demo.today and invoice.tax_calculation_id
        assert (invoice.period_start, invoice.period_end) == demo.billed_window
        if invoice.gross_total <= approval_limit(finance):
            assert invoice.approved_by == finance
        else:  # finance made the draft, above her limit: the executive approves it
            assert executive in (invoice.approved_by, invoice.second_approved_by)
            assert finance not in (invoice.approved_by, invoice.second_approved_by)

    series = defaultdict(list)
    for entity, kind, year, sequence, number in Invoice.objects.filter(status=Invoice.Status.ISSUED).values_list(
        "legal_entity", "kind", "fiscal_year", "sequence", "number"
    ):
        series[(entity, kind, year)].append(sequence)
        assert int(number.rsplit("-", 1)[1]) == sequence and str(year) in number
    assert series and all(sorted(s) == list(range(1, len(s) + 1)) for s in series.values())


def test_each_billed_entry_names_the_issued_invoice_that_billed_it(demo):
    issued = _issued_numbers()
    billed = [*TimeEntry.objects.filter(status=EntryStatus.BILLED), *Expense.objects.filter(status=EntryStatus.BILLED)]
    assert len(billed) > 20
    for entry in billed:
        assert entry.invoice_ref in issued and entry.billable and entry.billed_at
        assert demo.billed_window[0] <= entry.date <= demo.billed_window[1]
        field = "time_entry" if isinstance(entry, TimeEntry) else "expense"
        item = InvoiceItem.objects.select_related("invoice").get(**{field: entry, "live": True})
        assert item.invoice.number == entry.invoice_ref
    on_issued = InvoiceItem.objects.filter(invoice__status=Invoice.Status.ISSUED, live=True)
    assert on_issued.exclude(time_entry=None).count() + on_issued.exclude(expense=None).count() == len(billed)


def test_every_billable_item_of_the_month_is_billed_or_an_exception_says_why(demo):
    run_exceptions = set(
        RunException.objects.filter(run__in=_runs(demo, demo.billed)).values_list("item_public_id", flat=True)
    )
    for model in (TimeEntry, Expense):
        rows = model.objects.filter(date__range=demo.billed_window, billable=True)
        if model is TimeEntry:
            rows = rows.filter(adjusts__isnull=True)
        for entry in rows:
            assert entry.status == EntryStatus.BILLED or entry.public_id in run_exceptions, entry


def test_the_client_query_is_an_approved_unbilled_adjustment_on_last_months_draft(demo):
    adjustment = TimeEntry.objects.select_related("adjusts", "person", "decided_by").get(adjusts__isnull=False)
    original = adjustment.adjusts
    assert (adjustment.hours, adjustment.status, adjustment.invoice_ref) == (Decimal("-1.5"), EntryStatus.APPROVED, "")
    assert (adjustment.person.username, adjustment.decided_by.username) == ("consultant", "pm")
    assert (original.status, original.date, original.person) == (EntryStatus.BILLED, adjustment.date, adjustment.person)
    assert original.invoice_ref in _issued_numbers() and original.invoice_ref in adjustment.description
    assert original.project == demo.projects["PRJ-DEMO-TM"]
    # It flows into the next invoice: last month's draft of the project credits the 1.5 h.
    item = InvoiceItem.objects.select_related("invoice__run", "line").get(time_entry=adjustment, live=True)
    assert (item.kind, item.invoice.status, item.invoice.run.period_start) == ("adjustment", "draft", demo.last)
    assert item.line.quantity == Decimal("-1.5") and item.line.net_amount < 0


def test_finance_locks_the_billed_month_once_nothing_in_it_is_open(demo):
    period = LockedPeriod.objects.get()
    assert (period.month, period.locked_by.username) == (demo.billed, "finance")
    for model in (TimeEntry, Expense):
        in_month = model.objects.filter(date__range=demo.billed_window)
        assert in_month.exists()
        assert set(in_month.values_list("status", flat=True)) <= {"approved", "billed"}


def test_last_months_drafts_wait_for_finance_one_approved_but_not_issued(demo):
    invoices = list(Invoice.objects.filter(run__in=_runs(demo, demo.last)).order_by("pk"))
    assert len(invoices) == 3
    assert all((i.period_start, i.period_end) == demo.last_window and not i.number for i in invoices)
    approved = [i for i in invoices if i.status == Invoice.Status.APPROVED]
    drafts = [i for i in invoices if i.status == Invoice.Status.DRAFT]
    assert len(approved) == 1 and len(drafts) == 2
    assert approved[0].approved_by == demo.people["finance"] and not approved[0].issued_at
    assert approved[0].gross_total == min(i.gross_total for i in invoices)
    assert all(d.approved_by is None and d.gross_total > 0 for d in drafts)
    kinds = set(InvoiceLine.objects.filter(invoice__in=invoices).values_list("kind", flat=True))
    assert kinds == {"time", "adjustment", "milestone", "retainer"}
    assert (
        InvoiceItem.objects.get(invoice__in=invoices, kind="milestone").milestone.project
        == demo.projects["PRJ-DEMO-FIXED"]
    )
    assert InvoiceItem.objects.get(invoice__in=invoices, kind="retainer").retainer_month == demo.last


def test_what_a_run_cannot_bill_is_an_exception_with_its_reason(demo):
    exceptions = list(RunException.objects.select_related("project", "run"))
    assert exceptions  # the research project's customer requires a purchase order the project lacks
    for exception in exceptions:
        assert exception.reason in RunException.Reason.values and len(exception.message) > 20
        assert exception.project and exception.customer and exception.item_kind and exception.item_date
    research = demo.projects["PRJ-DEMO-EXPENSES"]
    assert {(e.project, e.reason) for e in exceptions} == {(research, RunException.Reason.PO_MISSING)}
    assert research.customer.purchase_order_required and not research.po_number
    # Each run names every item it left: the latest one all the research project's unbilled items.
    latest = {e.item_public_id for e in exceptions if e.run.period_start == demo.last}
    unbilled = project_selectors.unbilled_items(project=research, up_to=demo.last_window[1])
    assert latest == {item.entry.public_id for item in unbilled}


def test_seeding_the_demo_twice_changes_nothing(demo):
    before = _state()
    with mock.patch("django.utils.timezone.localdate", return_value=demo.today):
        for seeder in seeders():
            summary = seeder.run(password="demo", stdout_write=lambda _: None)
            if seeder.name == "billing":
                again = summary
        assert seed_billing(password="demo") == again
    assert again.startswith("4 invoice runs (0 new), 4 invoices drafted: 1 issued, 1 approved, 2 draft; ")
    assert again.endswith(
        "; 0 sent by email, 0 disputed from the portal; 0 new adjustment of billed time, 0 month locked"
    )
    assert _state() == before
