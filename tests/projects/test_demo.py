"""The demo seeder wins one project per billing model through the real handoff, approves one change order
(contract version 2) and leaves one waiting, and makes three months of the team's time and expenses up to
today in every state a team has them before billing — and a second run changes nothing. Billing, the
adjustment of billed time and the month lock are the billing seeder's (tests/billing/test_demo.py); this
module seeds the users, customers and projects only, so none of them is here.

The demo is seeded once per module and date (today, and a Monday that is the first of a month, where this
week has one day and last week lies in the month before), in a transaction rolled back at the end; each test
runs in a savepoint inside it.
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
from django.db.models import Count, Sum
from django.utils import timezone

from backbone.demo import seed_users
from backbone.models import UserProfile
from backbone.services import external_id_lookup
from customers.demo import seed_customers
from customers.models import Deal
from customers.uploads import document_format
from projects import selectors
from projects.demo import TEAMS, seed_projects
from projects.models import (
    BudgetAlert,
    ChangeOrder,
    ContractVersion,
    EntryStatus,
    Expense,
    LockedPeriod,
    Milestone,
    Project,
    ProjectMember,
    TimeEntry,
)

pytestmark = pytest.mark.django_db

DAYS = {"today": None, "monday-the-first": dt.date(2027, 3, 1)}


def _month_start(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@pytest.fixture(scope="module", params=list(DAYS))
def demo(request, django_db_setup, django_db_blocker):
    today = DAYS[request.param] or timezone.localdate()
    with (
        mock.patch("django.utils.timezone.localdate", return_value=today),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        seed_users(password="demo")
        seed_customers(password="demo")
        summary = seed_projects(password="demo")
        User = get_user_model()
        projects = {}
        for key in ("PRJ-DEMO-TM", "PRJ-DEMO-FIXED", "PRJ-DEMO-RETAINER", "PRJ-DEMO-EXPENSES"):
            deal = external_id_lookup(model=Deal, system="demo", external_id=key)
            projects[key] = Project.objects.get(deal=deal)
        yield SimpleNamespace(
            today=today,
            this_monday=today - dt.timedelta(days=today.weekday()),
            month_before_last=_month_start(today, -2),
            summary=summary,
            projects=projects,
            people={u.username: u for u in User.objects.filter(username__in=["pm", "finance", "consultant"])},
        )
        transaction.set_rollback(True)


def _state() -> tuple:
    """Everything the seeder makes, as comparable values."""
    return (
        list(Project.objects.order_by("pk").values_list("number", "name", "status")),
        list(ContractVersion.objects.order_by("pk").values_list("project__number", "number", "sha256")),
        list(ChangeOrder.objects.order_by("pk").values_list("number", "status")),
        list(ProjectMember.objects.order_by("pk").values_list("project__number", "user__username", "labour_category")),
        list(TimeEntry.objects.order_by("pk").values_list("pk", "date", "hours", "status", "description")),
        list(Expense.objects.order_by("pk").values_list("pk", "date", "amount", "status", "receipt")),
        list(Milestone.objects.order_by("pk").values_list("pk", "status", "accepted_on")),
        list(BudgetAlert.objects.order_by("pk").values_list("project__number", "key")),
        list(LockedPeriod.objects.order_by("pk").values_list("month", flat=True)),
        TimeEntry.history.count(),
        Expense.history.count(),
        get_user_model().objects.count(),
    )


def test_demo_projects_are_won_through_the_handoff_and_get_their_change_orders(demo):
    assert demo.summary.startswith("4 demo projects (4 new), 2 new change orders (1 waiting for approval)")
    models = {tuple(sorted(p.billing_rules.values_list("model", flat=True))) for p in Project.objects.all()}
    assert models == {("tm",), ("fixed_fee",), ("retainer",), ("expenses", "tm")}
    assert all(p.deal and p.deal.stage.outcome == "won" for p in Project.objects.all())
    assert set(Project.objects.values_list("status", flat=True)) == {Project.Status.ACTIVE}  # work has started
    assert ContractVersion.objects.filter(source="change_order").count() == 1
    assert list(ChangeOrder.objects.order_by("pk").values_list("status", "touches_billing_terms")) == [
        ("approved", True),
        ("submitted", False),
    ]
    limits = dict(UserProfile.objects.values_list("user__username", "change_order_limit_amount"))
    assert (limits["pm"], limits["finance"], limits["executive"]) == (
        Decimal("5000"),
        Decimal("20000"),
        Decimal("1000000"),
    )


def test_demo_team_is_put_on_the_projects_by_their_manager(demo):
    keys = {project.pk: key for key, project in demo.projects.items()}
    members = {(keys[m.project_id], m.user.username) for m in ProjectMember.objects.select_related("user")}
    assert members == {(key, username) for key, username, _ in TEAMS}
    loggers = set(TimeEntry.objects.values_list("person__username", flat=True))
    assert loggers == {"consultant", "consultant2", "consultant3", "pm"}
    for member in ProjectMember.objects.select_related("project"):
        assert member.history.first().history_user.username == "pm"


def test_demo_time_spans_three_months_up_to_today_in_quarter_hours(demo):
    first = TimeEntry.objects.order_by("date").first().date
    last = TimeEntry.objects.order_by("-date").first().date
    assert demo.month_before_last <= first <= demo.month_before_last + dt.timedelta(days=3)
    assert demo.today - dt.timedelta(days=3) <= last <= demo.today
    assert Expense.objects.filter(date__gt=demo.today).count() == 0
    assert all(hours % Decimal("0.25") == 0 for hours in TimeEntry.objects.values_list("hours", flat=True))
    assert TimeEntry.objects.filter(date__week_day__in=(1, 7)).count() <= 2  # weekdays, but for a Saturday


def test_demo_days_total_six_to_nine_hours(demo):
    days = (
        TimeEntry.objects.filter(adjusts__isnull=True)
        .exclude(date__week_day__in=(1, 7))
        .values("person", "date")
        .annotate(total=Sum("hours"))
        .order_by()
    )
    totals = [row["total"] for row in days]
    assert len(totals) > 100  # two to three months of four people
    assert all(Decimal(6) <= total <= Decimal(9) for total in totals), sorted(set(totals))


def test_demo_descriptions_read_like_consulting_work_and_vary_per_labour_category(demo):
    per_category = defaultdict(list)
    for category, description in TimeEntry.objects.values_list("labour_category", "description"):
        per_category[category].append(description)
    assert {"Senior consultant", "Data engineer", "Developer", "Researcher", "Designer"} <= set(per_category)
    for category, descriptions in per_category.items():
        if category != "Service manager" and len(descriptions) >= 5:  # one monthly service review
            assert len(set(descriptions)) >= 3, category
    assert all(len(d) > 10 for d in TimeEntry.objects.values_list("description", flat=True))


def test_demo_has_every_state_where_a_team_has_it(demo):
    statuses = {status for model in (TimeEntry, Expense) for status in model.objects.values_list("status", flat=True)}
    assert statuses == set(EntryStatus.values) - {EntryStatus.BILLED}  # billing's seeder bills
    drafts = TimeEntry.objects.filter(status=EntryStatus.DRAFT)
    assert drafts.exists() and not drafts.filter(date__lt=demo.this_monday).exists()
    assert not TimeEntry.objects.filter(date__gte=demo.this_monday).exclude(status=EntryStatus.DRAFT).exists()
    last_week = (demo.this_monday - dt.timedelta(days=7), demo.this_monday - dt.timedelta(days=1))
    assert set(TimeEntry.objects.filter(date__range=last_week).values_list("status", flat=True)) == {"submitted"}
    assert set(Expense.objects.filter(date__range=last_week).values_list("status", flat=True)) <= {"submitted"}
    queue = selectors.approval_queue(user=demo.people["pm"])
    assert len(queue.time_entries) == TimeEntry.objects.filter(status=EntryStatus.SUBMITTED).count() > 10
    assert len(queue.expenses) == Expense.objects.filter(status=EntryStatus.SUBMITTED).count() >= 1
    older = TimeEntry.objects.filter(date__lt=last_week[0])
    assert set(older.values_list("status", flat=True)) == {"approved", "rejected", "submitted"}


def test_demo_rejections_carry_reasons_and_some_are_fixed_and_resubmitted(demo):
    rejected = TimeEntry.objects.filter(status=EntryStatus.REJECTED)
    assert rejected.count() >= 2
    assert all(len(reason) > 20 for reason in rejected.values_list("rejection_reason", flat=True))
    assert {e.person.username for e in rejected} == {"consultant2", "consultant3"}  # waiting for their people

    # The first record of each rejection: later records (the person's corrections) keep the reason.
    workshop = (
        TimeEntry.history.filter(
            status=EntryStatus.REJECTED, rejection_reason__startswith="Please split the workshop prep from the workshop"
        )
        .order_by("history_date", "history_id")
        .first()
    )
    fixed = TimeEntry.objects.get(pk=workshop.id)
    assert fixed.status == EntryStatus.APPROVED
    assert fixed.hours < workshop.hours
    assert TimeEntry.objects.filter(
        person=fixed.person, date=fixed.date, description__startswith="Preparation of the data strategy workshop"
    ).exists()

    receipt = (
        Expense.history.filter(status=EntryStatus.REJECTED, rejection_reason__contains="hotel invoice")
        .order_by("history_date", "history_id")
        .first()
    )
    expense = Expense.objects.get(pk=receipt.id)
    assert expense.status == EntryStatus.APPROVED and expense.receipt and not receipt.receipt

    waiting = TimeEntry.objects.filter(status=EntryStatus.SUBMITTED).exclude(rejection_reason="")
    assert [e.rejection_reason[:45] for e in waiting] == ["Please split the preparation from the readout"]
    split = TimeEntry.objects.filter(status=EntryStatus.SUBMITTED, date=waiting[0].date, person=waiting[0].person)
    assert split.filter(description__startswith="Preparation of the findings readout").exists()


def test_demo_leaves_billing_and_the_lock_to_the_billing_seeder(demo):
    assert not TimeEntry.objects.filter(status=EntryStatus.BILLED).exists()
    assert not Expense.objects.filter(status=EntryStatus.BILLED).exists()
    assert (
        not TimeEntry.objects.exclude(invoice_ref="").exists() and not Expense.objects.exclude(invoice_ref="").exists()
    )
    assert not TimeEntry.objects.filter(adjusts__isnull=False).exists()
    assert not LockedPeriod.objects.exists()
    assert "0 billed" in demo.summary and demo.summary.endswith("locked: nothing")


def test_demo_leaves_the_month_before_last_approved_and_unbilled_for_billing(demo):
    """Everything in the month before last is decided and approved (nothing open: billing's seeder can lock
    it), and its billable time and expenses wait, priced, for the invoice run."""
    window = (demo.month_before_last, _month_start(demo.month_before_last, 1) - dt.timedelta(days=1))
    for model in (TimeEntry, Expense):
        in_month = model.objects.filter(date__range=window)
        assert in_month.exists()
        assert set(in_month.values_list("status", flat=True)) == {"approved"}
    for key in ("PRJ-DEMO-TM", "PRJ-DEMO-EXPENSES"):
        unbilled = selectors.unbilled_items(project=demo.projects[key], up_to=window[1])
        billable = TimeEntry.objects.filter(project=demo.projects[key], date__range=window, billable=True).count()
        billable += Expense.objects.filter(project=demo.projects[key], date__range=window, billable=True).count()
        assert len(unbilled) == billable > 10
        assert all(item.amount > 0 for item in unbilled)


def test_demo_fixed_fee_project_has_an_accepted_and_pending_milestones(demo):
    milestones = list(demo.projects["PRJ-DEMO-FIXED"].milestones.order_by("planned_date"))
    assert [m.status for m in milestones] == ["accepted", "planned", "planned"]
    accepted = milestones[0]
    assert accepted.accepted_by_name.startswith("Camille Roussel")
    assert accepted.accepted_on <= demo.today and accepted.acceptance_note
    assert accepted.acceptance_recorded_by.username == "pm"
    assert document_format(accepted.acceptance_document.open("rb")) == "PDF"


def test_demo_research_project_runs_near_its_budget_and_raises_alerts(demo):
    research, tm = demo.projects["PRJ-DEMO-EXPENSES"], demo.projects["PRJ-DEMO-TM"]
    thresholds = set(research.alerts.filter(kind="budget_threshold").values_list("threshold_percent", flat=True))
    assert {75, 90} <= thresholds
    assert Decimal(90) <= selectors.project_budget_summary(research).burn_percent < Decimal(100)
    assert not tm.alerts.filter(kind="budget_threshold").exists()
    assert selectors.project_budget_summary(tm).burn_percent < Decimal(75)


def test_demo_expenses_cover_the_categories_with_real_receipts_on_some(demo):
    expenses = list(Expense.objects.all())
    assert {e.category for e in expenses} == {"travel", "accommodation", "meals", "software", "other"}
    assert all(e.currency == e.project.currency for e in expenses)
    with_receipt = [e for e in expenses if e.receipt]
    assert len(expenses) // 2 < len(with_receipt) < len(expenses)
    formats = {document_format(e.receipt.open("rb")) for e in with_receipt}
    assert formats == {"PDF", "PNG"}
    counts = Expense.objects.values("billable").annotate(n=Count("pk")).order_by("billable")
    assert [row["billable"] for row in counts] == [False, True]


def test_seeding_the_demo_twice_changes_nothing(demo):
    before = _state()
    with mock.patch("django.utils.timezone.localdate", return_value=demo.today):
        again = seed_projects(password="demo")
    assert again.startswith("4 demo projects (0 new), 0 new change orders")
    assert "0 new consultants, 0 projects activated, 0 team members added" in again
    assert "(new)" not in again
    assert _state() == before
