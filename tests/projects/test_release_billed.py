"""Billing's way back: a credit note that releases its items puts billed time entries and expenses back to
approved and billed milestones back to accepted, the invoice reference and billed time cleared, with history
naming the credit note, so the next invoice run bills them again. Only what is billed on the credited invoice
is released, all or nothing; on PostgreSQL the trigger allows exactly this change of a billed entry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from backbone.errors import TransitionNotAllowed, ValidationFailed
from backbone.history import audit_chain_verify
from projects import milestones as ms
from projects import selectors
from projects import timesheets as ts
from projects.models import EntryStatus, Expense, Milestone, TimeEntry

from .test_milestones import accept
from .test_timesheets import MON, spend, submitted

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
UP_TO = dt.date(2026, 12, 31)


@pytest.fixture
def billed(team, people):
    """Two time entries and an expense of the T&M project, approved and billed on DE-2026-000001."""
    entries = list(submitted(people["sales"], team, MON, MON + dt.timedelta(days=1)))
    expense = spend(people["consultant"], team, day=MON)
    ts.timesheet_submit(actor=people["consultant"], week_start=MON)
    expense = Expense.objects.get(pk=expense.pk)
    ts.time_entries_approve(actor=people["pm"], entries=[*entries, expense])
    ts.time_entries_mark_billed(entries=[*entries, expense], invoice_ref="DE-2026-000001", actor=people["finance"])
    return [
        *TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("pk"),
        Expense.objects.get(pk=expense.pk),
    ]


def states(rows):
    return {(type(row).__name__, row.status, row.invoice_ref, row.billed_at) for row in _fresh(rows)}


def _fresh(rows):
    return [type(row).objects.get(pk=row.pk) for row in rows]


def test_billed_entries_go_back_to_approved_and_are_unbilled_items_again(billed, team, people):
    assert selectors.unbilled_items(project=team, up_to=UP_TO) == []
    released = ts.time_entries_release_billed(
        entries=billed, invoice_ref="DE-2026-000001", credit_ref="DE-CN-2026-000001", actor=people["finance"]
    )
    assert released == 3
    assert states(billed) == {("TimeEntry", "approved", "", None), ("Expense", "approved", "", None)}
    # the content and the approval are untouched
    for before, after in zip(billed, _fresh(billed), strict=True):
        assert (after.date, after.description, after.decided_by_id, after.decided_at) == (
            before.date,
            before.description,
            before.decided_by_id,
            before.decided_at,
        )
    items = selectors.unbilled_items(project=team, up_to=UP_TO)
    assert sorted((item.kind, item.entry.pk) for item in items) == sorted(
        [("time", billed[0].pk), ("time", billed[1].pk), ("expense", billed[2].pk)]
    )
    # and billing may bill them again, on another invoice
    ts.time_entries_mark_billed(entries=billed, invoice_ref="DE-2026-000002")
    assert {row.invoice_ref for row in _fresh(billed)} == {"DE-2026-000002"}


def test_the_release_is_in_the_history_with_who_and_which_credit_note(billed, people):
    ts.time_entries_release_billed(
        entries=billed[:1], invoice_ref="DE-2026-000001", credit_ref="DE-CN-2026-000001", actor=people["finance"]
    )
    record = TimeEntry.history.filter(id=billed[0].pk).order_by("-history_date", "-history_id").first()
    assert (record.status, record.invoice_ref, record.history_user) == ("approved", "", people["finance"])
    assert record.history_change_reason == "Released by DE-CN-2026-000001 of DE-2026-000001 for rebilling"
    intact, _, broken = audit_chain_verify()
    assert intact and broken is None


def test_only_entries_billed_on_the_credited_invoice_are_released_and_nothing_when_one_is_not(billed, team, people):
    (other,) = submitted(people["sales"], team, MON + dt.timedelta(days=2))
    ts.time_entries_approve(actor=people["pm"], entries=[other])
    with pytest.raises(TransitionNotAllowed, match="The entry of 2026-03-11 is not billed; only entries billed on"):
        ts.time_entries_release_billed(entries=[*billed, other], invoice_ref="DE-2026-000001", credit_ref="CN-1")
    with pytest.raises(TransitionNotAllowed, match="is billed on DE-2026-000001; only entries billed on DE-2026-9"):
        ts.time_entries_release_billed(entries=billed, invoice_ref="DE-2026-9", credit_ref="CN-1")
    assert {(row.status, row.invoice_ref) for row in _fresh(billed)} == {(EntryStatus.BILLED, "DE-2026-000001")}
    assert all(row.billed_at is not None for row in _fresh(billed))


def test_an_entry_released_once_is_not_released_again(billed):
    ts.time_entries_release_billed(entries=billed, invoice_ref="DE-2026-000001", credit_ref="CN-1")
    with pytest.raises(TransitionNotAllowed, match="is not billed"):
        ts.time_entries_release_billed(entries=billed, invoice_ref="DE-2026-000001", credit_ref="CN-2")


@pytest.mark.parametrize(
    ("invoice_ref", "credit_ref", "field", "message"),
    [
        (" ", "CN-1", "invoice_ref", "Name the invoice that billed the entries."),
        ("DE-1", "", "credit_ref", "Name the credit note that releases the entries."),
    ],
)
def test_the_release_names_the_invoice_and_the_credit_note(billed, invoice_ref, credit_ref, field, message):
    with pytest.raises(ValidationFailed) as refused:
        ts.time_entries_release_billed(entries=billed, invoice_ref=invoice_ref, credit_ref=credit_ref)
    assert refused.value.errors == {field: [message]}


def test_nothing_to_release_is_zero(people):
    assert ts.time_entries_release_billed(entries=[], invoice_ref="DE-1", credit_ref="CN-1") == 0
    assert ms.milestones_release_billed(milestones=[], invoice_ref="DE-1", credit_ref="CN-1") == 0


# --- milestones -------------------------------------------------------------------------------------------


def test_a_billed_milestone_goes_back_to_accepted_with_its_acceptance(fixed_project, people):
    milestone = accept(fixed_project)
    ms.milestones_mark_billed(milestones=[milestone], invoice_ref="DE-2026-000001")
    assert (
        ms.milestones_release_billed(
            milestones=[milestone],
            invoice_ref="DE-2026-000001",
            credit_ref="DE-CN-2026-000001",
            actor=people["finance"],
        )
        == 1
    )
    milestone.refresh_from_db()
    assert (milestone.status, milestone.invoice_ref, milestone.billed_at) == (Milestone.Status.ACCEPTED, "", None)
    assert (milestone.accepted_by_name, milestone.acceptance_note) == (
        "Ida Berg, COO",
        "Designs approved as presented.",
    )
    record = milestone.history.order_by("-history_date", "-history_id").first()
    assert record.history_change_reason == "Released by DE-CN-2026-000001 of DE-2026-000001 for rebilling"
    assert record.history_user == people["finance"]
    (item,) = selectors.unbilled_items(project=fixed_project, up_to=UP_TO)
    assert (item.kind, item.entry) == ("milestone", milestone)


def test_a_milestone_not_billed_on_the_invoice_is_not_released(fixed_project):
    milestone = accept(fixed_project)
    with pytest.raises(TransitionNotAllowed, match="is not billed; only milestones billed on DE-1 are released"):
        ms.milestones_release_billed(milestones=[milestone], invoice_ref="DE-1", credit_ref="CN-1")
    ms.milestones_mark_billed(milestones=[milestone], invoice_ref="DE-2")
    with pytest.raises(TransitionNotAllowed, match="is billed on DE-2; only milestones billed on DE-1"):
        ms.milestones_release_billed(milestones=[milestone], invoice_ref="DE-1", credit_ref="CN-1")
    with pytest.raises(ValidationFailed, match="Name the credit note"):
        ms.milestones_release_billed(milestones=[milestone], invoice_ref="DE-2", credit_ref=" ")
    assert Milestone.objects.get(pk=milestone.pk).status == Milestone.Status.BILLED


# --- the trigger (PostgreSQL) -----------------------------------------------------------------------------


def _refused(queryset, **values):
    with pytest.raises(IntegrityError, match="locked"), transaction.atomic():
        queryset.update(**values)


@ON_POSTGRESQL
def test_the_trigger_allows_exactly_billed_to_approved_with_the_reference_cleared(billed):
    entry, expense = billed[0], billed[2]
    for model, row in ((TimeEntry, entry), (Expense, expense)):
        rows = model.objects.filter(pk=row.pk)
        _refused(rows, status=EntryStatus.APPROVED)  # the reference kept
        _refused(rows, status=EntryStatus.APPROVED, invoice_ref="")  # the billed time kept
        _refused(rows, status=EntryStatus.APPROVED, invoice_ref="", billed_at=None, description="Rewritten")
        _refused(rows, status=EntryStatus.SUBMITTED, invoice_ref="", billed_at=None)
        _refused(rows, status=EntryStatus.DRAFT, invoice_ref="", billed_at=None)
        _refused(rows, invoice_ref="DE-2026-000002")
        assert rows.update(status=EntryStatus.APPROVED, invoice_ref="", billed_at=None) == 1
        # approved again: locked as approved entries are (only billing's mark moves it)
        _refused(rows, description="Rewritten after the release")
        _refused(rows, status=EntryStatus.DRAFT)
    with pytest.raises(IntegrityError, match="never deleted"), transaction.atomic():
        TimeEntry.objects.filter(pk=entry.pk).delete()


@ON_POSTGRESQL
def test_the_service_passes_the_trigger_for_time_and_expenses(billed):
    assert ts.time_entries_release_billed(entries=billed, invoice_ref="DE-2026-000001", credit_ref="CN-1") == 3
    assert {row.status for row in _fresh(billed)} == {EntryStatus.APPROVED}
