"""Release of credited items for rebilling (``billing.credit_notes`` with ``release_items``): issuing such a
credit note frees the credited lines' items (``live`` false) and puts their sources back (time and expenses
approved, milestones accepted, the invoice reference cleared), so that the next invoice run bills them again,
exactly once, at the price in force. Only lines credited in full release (a partial credit is refused, also at
issue while the rest of the line is only in a draft); a credit note without release keeps the work billed;
everything happens in the issuing transaction or not at all; and on PostgreSQL the projects trigger still
refuses every other change of a billed entry."""

# ruff: noqa: F811 -- the fixtures of test_credit_notes are imported by name and requested as arguments

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from backbone.errors import Conflict, TransitionNotAllowed, ValidationFailed
from billing import services
from billing.issuing import invoice_issue
from billing.models import CreditReason, Invoice, InvoiceItem, InvoiceLine, InvoiceRun
from customers.models import Customer
from projects import milestones as ms
from projects import timesheets as ts
from projects.models import EntryStatus, Expense, Milestone, TimeEntry

from .conftest import MON
from .test_credit_notes import approve_and_issue, create, issued, lines_of  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year
MARCH = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 3, 31)}
SPRING = {"period_start": dt.date(2026, 3, 1), "period_end": dt.date(2026, 4, 30)}


def run_once(people, legal_entity, period=None) -> InvoiceRun:
    run = services.invoice_run_start(actor=people["finance"], legal_entity=legal_entity, **(period or MARCH))
    return services.invoice_run_execute(run.pk)


def sources_of(invoice: Invoice, *, live: bool | None = None) -> list[tuple[str, int | dt.date]]:
    """(kind, source) of the invoice's items: the time entry, expense, milestone pk or the retainer month."""
    items = InvoiceItem.objects.filter(invoice=invoice)
    if live is not None:
        items = items.filter(live=live)
    return sorted(
        (item.kind, item.time_entry_id or item.expense_id or item.milestone_id or item.retainer_month)
        for item in items.order_by("pk")
    )


def entry_states(model=TimeEntry) -> set[tuple[str, str, bool]]:
    return {(row.status, row.invoice_ref, row.billed_at is not None) for row in model.objects.all()}


# --- release on issue ------------------------------------------------------------------------------------------


def test_issuing_a_releasing_credit_note_frees_the_items_and_puts_the_time_back_to_approved(issued, people):
    note = create(issued, people, full=True, reason=CreditReason.PRICING_ERROR, release_items=True)
    assert note.releases_items
    # A draft releases nothing yet: the work is billed until the credit note is issued.
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 5
    assert entry_states() == {(EntryStatus.BILLED, issued.number, True)}

    note = approve_and_issue(note, people)
    assert note.number == f"DE-CN-{YEAR}-000001"
    assert not InvoiceItem.objects.filter(invoice=issued, live=True).exists()
    assert InvoiceItem.objects.filter(invoice=issued).count() == 5  # released, not deleted: the record stays
    assert entry_states() == {(EntryStatus.APPROVED, "", False)}
    record = TimeEntry.history.order_by("-history_date", "-history_id").first()
    assert record.history_change_reason == f"Released by {note.number} of {issued.number} for rebilling"
    assert record.history_user == people["finance"]
    # The original invoice itself never changes.
    original = Invoice.objects.get(pk=issued.pk)
    assert (original.status, original.gross_total, original.number) == ("issued", Decimal("7140.00"), issued.number)


def test_only_the_credited_lines_release_their_items(issued, people):
    first, second = lines_of(issued)[:2]
    note = create(issued, people, lines=[{"line": first, "amount": None}, {"line": second}], release_items=True)
    approve_and_issue(note, people)
    released = set(InvoiceItem.objects.filter(invoice=issued, live=False).values_list("line_id", flat=True))
    assert released == {first.pk, second.pk}
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 3
    assert sorted(TimeEntry.objects.filter(status=EntryStatus.APPROVED).values_list("date", flat=True)) == [
        MON,
        MON + dt.timedelta(days=1),
    ]
    assert TimeEntry.objects.filter(status=EntryStatus.BILLED, invoice_ref=issued.number).count() == 3


def test_a_rerun_bills_the_released_items_once_at_the_price_in_force(issued, people, legal_entity, team, amend):
    approve_and_issue(create(issued, people, full=True, release_items=True), people)
    # The price was wrong from the 11th on: the corrected rate card is in force for those days now.
    amend(
        team,
        [{"op": "rate.set", "labour_category": "Senior consultant", "rate": "140", "effective_from": "2026-03-11"}],
        effective_from=dt.date(2026, 3, 11),
    )
    run = run_once(people, legal_entity)
    assert (run.status, run.invoices_created, run.items_billed) == ("completed", 1, 5)
    (rebill,) = run.invoices.all()
    lines = list(rebill.lines.order_by("position"))
    assert [(line.quantity, line.unit_price, line.net_amount) for line in lines] == [
        (Decimal("16.0000"), Decimal("150.0000"), Decimal("2400.00")),
        (Decimal("24.0000"), Decimal("140.0000"), Decimal("3360.00")),
    ]
    assert sorted(pk for _, pk in sources_of(rebill)) == sorted(TimeEntry.objects.values_list("pk", flat=True))

    again = run_once(people, legal_entity)  # exactly once: nothing is left to bill
    assert (again.invoices_created, again.items_billed) == (0, 0) and not again.invoices.exists()
    for entry in TimeEntry.objects.all():
        assert InvoiceItem.objects.filter(time_entry=entry, live=True).count() == 1

    rebill = approve_and_issue(rebill, people)
    assert rebill.number == f"DE-{YEAR}-000002"
    assert entry_states() == {(EntryStatus.BILLED, rebill.number, True)}


@pytest.fixture
def mixed(people, legal_entity, customer, team, approved_time, fixed_project, retainer_deal, win, bank_account):
    """One issued invoice of the customer (consolidated per customer) with every kind of item: the five days of
    time, an expense with markup, the accepted design milestone and the retainer months of March and April."""
    Customer.objects.filter(pk=customer.pk).update(consolidation=Customer.Consolidation.PER_CUSTOMER)
    win(retainer_deal)
    expense = ts.expense_create(
        actor=people["consultant"], project=team, date=MON, amount="120.00", category="travel", description="Train"
    )
    ts.timesheet_submit(actor=people["consultant"], week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[Expense.objects.get(pk=expense.pk)])
    milestone = fixed_project.milestones.order_by("planned_date").first()
    ms.milestone_accept(
        actor=people["pm"], milestone=milestone, accepted_by_name="Ida Berg", accepted_on=dt.date(2026, 4, 30)
    )
    run = run_once(people, legal_entity, SPRING)
    (invoice,) = run.invoices.all()
    assert {kind for kind, _ in sources_of(invoice)} == {"time", "expense", "milestone", "retainer"}
    return approve_and_issue(invoice, people)


def test_every_kind_of_item_is_released_and_billed_again_by_the_next_run(mixed, people, legal_entity):
    before = sources_of(mixed)
    approve_and_issue(
        create(mixed, people, full=True, reason=CreditReason.SCOPE_MISUNDERSTANDING, release_items=True), people
    )
    assert sources_of(mixed, live=False) == before
    assert entry_states(TimeEntry) == entry_states(Expense) == {(EntryStatus.APPROVED, "", False)}
    milestone = Milestone.objects.get(status__in=["accepted", "billed"])
    assert (milestone.status, milestone.invoice_ref, milestone.accepted_by_name) == ("accepted", "", "Ida Berg")

    run = run_once(people, legal_entity, SPRING)
    (rebill,) = run.invoices.all()
    assert sources_of(rebill) == before  # the same time, expense, milestone and retainer months, once
    assert not run_once(people, legal_entity, SPRING).invoices.exists()
    rebill = approve_and_issue(rebill, people)
    assert rebill.gross_total == mixed.gross_total  # nothing changed in between: the same amount again
    assert entry_states(TimeEntry) == entry_states(Expense) == {(EntryStatus.BILLED, rebill.number, True)}
    assert Milestone.objects.get(pk=milestone.pk).invoice_ref == rebill.number


# --- what does not release -----------------------------------------------------------------------------------


def test_a_credit_note_without_release_keeps_the_work_billed(issued, people, legal_entity):
    note = approve_and_issue(create(issued, people, full=True), people)
    assert not note.releases_items
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 5
    assert entry_states() == {(EntryStatus.BILLED, issued.number, True)}
    run = run_once(people, legal_entity)
    assert (run.status, run.invoices_created, run.items_billed) == ("completed", 0, 0)


def test_a_partial_credit_cannot_release_and_says_which_line(issued, people):
    first, second = lines_of(issued)[:2]
    with pytest.raises(ValidationFailed) as refused:
        create(
            issued,
            people,
            lines=[{"line": first, "amount": None}, {"line": second, "amount": Decimal("1199.99")}],
            release_items=True,
        )
    assert refused.value.errors == {
        "release_items": [
            "Only lines credited in full release their items for rebilling; Line 2 (Data platform build, day 2) is "
            "credited in part."
        ]
    }
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_lines_without_items_have_nothing_to_release(legal_entity, customer, people, bank_account):
    invoice = Invoice.objects.create(
        legal_entity=legal_entity, customer=customer, currency="EUR", created_by=people["finance"], po_number="PO-1"
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        kind="manual",
        description="Workshop",
        quantity=1,
        unit="C62",
        unit_price=500,
        net_amount=Decimal("500.00"),
    )
    invoice = approve_and_issue(invoice, people)
    with pytest.raises(ValidationFailed, match="The credited lines carry no billed items; there is nothing to release"):
        create(invoice, people, full=True, release_items=True)


def test_the_rest_of_a_line_in_a_draft_does_not_count_as_credited_at_issue(issued, people):
    line = lines_of(issued)[0]
    part = create(issued, people, lines=[{"line": line, "amount": Decimal("200.00")}])
    rest = create(issued, people, lines=[{"line": line, "amount": None}], release_items=True)  # the 1,000.00 left
    with pytest.raises(Conflict) as refused:
        approve_and_issue(rest, people)
    assert refused.value.errors == {
        "release_items": [
            "The credit note cannot be issued: it releases the items of Line 1 (Data platform build, day 1) of "
            f"{issued.number}, but issued credit notes and this one credit only €1,000.00 of its €1,200.00; "
            "only lines credited in full release their items (issue the other credit notes of the line first). "
            "Nothing was issued."
        ]
    }
    rest.refresh_from_db()
    assert (rest.status, rest.number) == ("approved", "")
    assert InvoiceItem.objects.filter(invoice=issued, live=True).count() == 5
    # Once the other part is issued, the line is credited in full and the release goes through.
    part = approve_and_issue(part, people)
    rest = invoice_issue(actor=people["finance"], invoice=rest)  # approved already
    assert (part.number, rest.number) == (f"DE-CN-{YEAR}-000001", f"DE-CN-{YEAR}-000002")  # no gap
    assert InvoiceItem.objects.filter(invoice=issued, live=False).count() == 1
    assert TimeEntry.objects.get(date=MON).status == EntryStatus.APPROVED


# --- atomic ------------------------------------------------------------------------------------------------


def test_the_release_is_all_or_nothing(mixed, people):
    note = create(mixed, people, full=True, release_items=True)
    milestone = Milestone.objects.get(invoice_ref=mixed.number)
    # Someone billed the milestone elsewhere behind billing's back (no trigger guards milestones): its release
    # is refused after the items and the time were already released in the same transaction.
    Milestone.objects.filter(pk=milestone.pk).update(invoice_ref="XX-1")
    with pytest.raises(TransitionNotAllowed, match=f"'{milestone.name}' is billed on XX-1; only milestones billed on"):
        approve_and_issue(note, people)
    note.refresh_from_db()
    assert (note.status, note.number) == ("approved", "")
    assert sources_of(mixed, live=True) == sources_of(mixed)  # no item released
    assert entry_states(TimeEntry) == entry_states(Expense) == {(EntryStatus.BILLED, mixed.number, True)}

    Milestone.objects.filter(pk=milestone.pk).update(invoice_ref=mixed.number)
    note = invoice_issue(actor=people["finance"], invoice=note)  # approved already
    assert note.number == f"DE-CN-{YEAR}-000001"  # the failed attempt took no number
    assert not InvoiceItem.objects.filter(invoice=mixed, live=True).exists()


# --- the projects trigger still guards billed entries (PostgreSQL) --------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
@pytest.mark.parametrize(
    "assignments",
    [
        "description = 'Rewritten'",
        "hours = 1",
        "invoice_ref = 'DE-2026-999999'",
        "status = 'approved'",  # the reference kept
        "status = 'approved', invoice_ref = ''",  # the billed time kept
        "status = 'approved', invoice_ref = '', billed_at = NULL, hours = 1",
        "status = 'submitted', invoice_ref = '', billed_at = NULL",
        "status = 'draft', invoice_ref = '', billed_at = NULL",
    ],
)
def test_the_projects_trigger_refuses_every_other_change_of_a_billed_entry(issued, assignments):
    entry = TimeEntry.objects.order_by("pk").first()
    update = f"UPDATE projects_timeentry SET {assignments} WHERE id = %s"  # noqa: S608 -- the test's own SQL
    with (
        pytest.raises(IntegrityError, match="is billed: it is locked"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(update, [entry.pk])
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM projects_timeentry WHERE id = %s", [entry.pk])
    assert TimeEntry.objects.get(pk=entry.pk).status == EntryStatus.BILLED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_the_billing_trigger_lets_a_released_item_never_become_live_again(issued, people):
    approve_and_issue(create(issued, people, full=True, release_items=True), people)
    item = InvoiceItem.objects.filter(invoice=issued).first()
    with pytest.raises(IntegrityError, match="only releasing it is allowed"), transaction.atomic():
        InvoiceItem.objects.filter(pk=item.pk).update(live=True)
