"""On PostgreSQL the database refuses what the services refuse: approved entries change only to billed
(status, invoice reference, billed time), billed entries never change, and neither is ever deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from projects import timesheets as ts
from projects.models import EntryStatus, Expense, TimeEntry

from .test_timesheets import spend, submitted

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")


def _refused(queryset, **values):
    with pytest.raises(IntegrityError, match=r"locked|never deleted"), transaction.atomic():
        if values:
            queryset.update(**values)
        else:
            queryset.delete()


def test_approved_time_only_becomes_billed_and_billed_time_never_changes(team, people):
    day = team.planned_start
    (entry,) = submitted(people["sales"], team, day)
    rows = TimeEntry.objects.filter(pk=entry.pk)
    rows.update(description="Still submitted: may change")  # not locked yet
    ts.time_entries_approve(actor=people["pm"], entries=[entry])
    _refused(rows, hours=1)
    _refused(rows, description="Rewritten after approval")
    _refused(rows, status=EntryStatus.DRAFT)
    _refused(rows, status=EntryStatus.BILLED, hours=2)  # billing cannot change the content either
    _refused(rows)
    ts.time_entries_mark_billed(entries=[entry], invoice_ref="DE-2026-0001")
    assert rows.get().status == EntryStatus.BILLED and rows.get().date == day
    _refused(rows, invoice_ref="DE-2026-0002")
    _refused(rows, status=EntryStatus.APPROVED)
    _refused(rows)


def test_approved_and_billed_expenses_are_locked_the_same_way(team, people):
    monday = team.planned_start + dt.timedelta(days=7 - team.planned_start.weekday())
    expense = spend(people["consultant"], team, day=monday)
    ts.timesheet_submit(actor=people["consultant"], week_start=monday)
    ts.time_entries_approve(actor=people["pm"], entries=[Expense.objects.get(pk=expense.pk)])
    rows = Expense.objects.filter(pk=expense.pk)
    _refused(rows, amount="1.00")
    _refused(rows)
    ts.time_entries_mark_billed(entries=[expense], invoice_ref="DE-2026-0001")
    _refused(rows, markup_percent=50)
    assert rows.get().status == EntryStatus.BILLED
