"""What billing asks projects: the approved, unbilled items of a project or customer up to a date, each priced
with the rate card of the contract version in force on its own date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from projects import selectors
from projects import timesheets as ts
from projects.errors import RateMissing
from projects.models import EntryStatus, TimeEntry

from .test_timesheets import MON, spend, submitted

RATE_165_FROM_JUNE = [
    {"op": "rate.set", "labour_category": "Senior consultant", "rate": "165", "effective_from": "2026-06-01"}
]


def approve(people, entries):
    ts.time_entries_approve(actor=people["pm"], entries=entries)
    return [TimeEntry.objects.get(pk=e.pk) for e in entries]


def test_time_is_priced_with_the_rate_in_force_on_each_side_of_a_change_orders_effective_date(team, people, amend):
    amend(team, RATE_165_FROM_JUNE, effective_from=dt.date(2026, 6, 1))
    before, after = approve(people, submitted(people["sales"], team, dt.date(2026, 5, 29), dt.date(2026, 6, 1)))
    items = selectors.unbilled_items(project=team, up_to=dt.date(2026, 6, 30))
    assert [(i.kind, i.date, i.quantity, i.unit_price, i.amount) for i in items] == [
        ("time", dt.date(2026, 5, 29), Decimal("8.00"), Decimal("150.0000"), Decimal("1200.00")),
        ("time", dt.date(2026, 6, 1), Decimal("8.00"), Decimal("165.0000"), Decimal("1320.00")),
    ]
    for item in items:  # the same answer as THE selector billing relies on
        assert item.unit_price == selectors.rate_on(project=team, labour_category="Senior consultant", day=item.date)
    assert [i.entry for i in items] == [before, after]
    # Actuals price the same way.
    assert selectors.project_actuals(team)["labour:senior-consultant"] == (Decimal("16.00"), Decimal("2520.00"))


def test_only_approved_billable_unbilled_items_up_to_the_date_with_adjustments_and_expenses(team, people):
    con, sales = people["consultant"], people["sales"]
    approved, billed, later = approve(
        people, submitted(sales, team, MON, MON + dt.timedelta(days=1), dt.date(2026, 4, 6))
    )
    submitted(sales, team, MON + dt.timedelta(days=2))  # still waiting
    (non_billable,) = submitted(sales, team, MON + dt.timedelta(days=3))
    TimeEntry.objects.filter(pk=non_billable.pk).update(billable=False)
    approve(people, [non_billable])
    ts.time_entries_mark_billed(entries=[billed], invoice_ref="DE-1")
    adjustment = ts.time_entry_adjust(actor=sales, original=billed, hours="-1.5", description="Shorter day")
    kept, dropped = spend(con, team, amount="100.00"), spend(con, team, amount="50.00", billable=False)
    ts.timesheet_submit(actor=sales, week_start=MON)
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[adjustment, kept, dropped])

    items = selectors.unbilled_items(project=team, up_to=dt.date(2026, 3, 31))
    assert sorted((i.kind, i.entry.pk, i.amount) for i in items) == sorted(
        [
            ("time", approved.pk, Decimal("1200.00")),
            ("adjustment", adjustment.pk, Decimal("-225.00")),
            ("expense", kept.pk, Decimal("110.00")),
        ]
    )
    expense_item = next(i for i in items if i.kind == "expense")
    assert (expense_item.markup_percent, expense_item.currency) == (Decimal("10.00"), "EUR")
    assert later.pk in {i.entry.pk for i in selectors.unbilled_items(project=team, up_to=dt.date(2026, 4, 30))}
    # Billing marks them billed through projects; then they are gone, and nothing is billed twice.
    ts.time_entries_mark_billed(entries=[i.entry for i in items], invoice_ref="DE-2")
    assert selectors.unbilled_items(project=team, up_to=dt.date(2026, 3, 31)) == []
    assert TimeEntry.objects.get(pk=billed.pk).status == EntryStatus.BILLED


def test_by_customer_covers_all_its_projects_in_constant_queries(team, people, customer, django_assert_num_queries):
    approve(people, submitted(people["sales"], team, *[MON + dt.timedelta(days=d) for d in range(10)], hours="1"))
    with django_assert_num_queries(5):  # projects, versions of the one project, time, expenses, milestones
        items = selectors.unbilled_items(customer=customer, up_to=dt.date(2026, 8, 31))
    assert len(items) == 10 and {i.project_id for i in items} == {team.pk}
    with pytest.raises(ValueError):
        selectors.unbilled_items(up_to=MON)


def test_a_rate_that_went_missing_is_refused_not_guessed(team, people):
    (entry,) = submitted(people["sales"], team, MON)
    TimeEntry.objects.filter(pk=entry.pk).update(labour_category="Architect")  # before approval locks it
    approve(people, [entry])
    with pytest.raises(RateMissing, match="Architect"):
        selectors.unbilled_items(project=team, up_to=MON)


def test_kinds_narrow_the_items_and_unbilled_time_is_the_time_they_price(team, people, django_assert_num_queries):
    sales, con = people["sales"], people["consultant"]
    entries = approve(people, submitted(sales, team, MON, MON + dt.timedelta(days=1)))
    kept = spend(con, team, amount="100.00")
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[kept])
    up_to = dt.date(2026, 3, 31)
    everything = selectors.unbilled_items(project=team, up_to=up_to)
    assert sorted(i.kind for i in everything) == ["expense", "time", "time"]
    with django_assert_num_queries(1):  # expenses only: no versions, no time, no milestones
        (expense,) = selectors.unbilled_items(project=team, up_to=up_to, kinds=frozenset({"expense"}))
    assert expense.entry == kept
    timed = selectors.unbilled_items(project=team, up_to=up_to, kinds=frozenset({"time", "adjustment"}))
    assert [i.entry for i in timed] == entries
    assert list(selectors.unbilled_time(project=team, up_to=up_to).order_by("date")) == entries
    assert selectors.rate_resolver(team)("Senior consultant", MON) == selectors.rate_on(
        project=team, labour_category="Senior consultant", day=MON
    )
