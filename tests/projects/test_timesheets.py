"""Time entries and expenses: logging rules, the weekly submission, bulk approval and rejection, adjustments,
locked months, billing's mark, visibility, the approval queue and the budget burn they feed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import audit_chain_verify
from backbone.models import AuditEntry, Notification
from projects import selectors, services
from projects import timesheets as ts
from projects.models import BudgetAlert, EntryStatus, Expense, ProjectMember, TimeEntry

MON = dt.date(2026, 3, 9)  # a Monday inside the T&M project (2026-03-02 … 2026-08-31)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def log(person, project, day=MON, hours="8", **fields):
    fields.setdefault("description", "Data model workshop")
    return ts.time_entry_create(actor=person, project=project, date=day, hours=hours, **fields)


def spend(person, project, day=MON, amount="120.00", **fields):
    fields.setdefault("description", "Train to the workshop")
    fields.setdefault("category", "travel")
    return ts.expense_create(actor=person, project=project, date=day, amount=amount, **fields)


def submitted(person, project, *days, hours="8", category="Senior consultant"):
    """Submitted entries made directly (set-up for approval tests, not the rule under test)."""
    return TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                person=person,
                project=project,
                date=day,
                hours=Decimal(hours),
                labour_category=category,
                description="Work",
                status=EntryStatus.SUBMITTED,
            )
            for day in days
        ]
    )


def errors_of(caught):
    return caught.value.errors


# --- logging --------------------------------------------------------------------------------------------


def test_time_entry_create_logs_a_draft_with_the_members_default_category(team, people):
    entry = log(people["consultant"], team, hours="7.5")
    assert (entry.status, entry.labour_category, entry.hours, entry.person) == (
        EntryStatus.DRAFT,
        "Developer",
        Decimal("7.5"),
        people["consultant"],
    )
    record = entry.history.get()
    assert (record.history_user, record.history_change_reason) == (people["consultant"], "Time logged")


@pytest.mark.parametrize("hours", ["1.1", "0.3", "abc", "0", "-1", "24.25"])
def test_time_entry_create_refuses_hours_off_the_quarter_hour_or_out_of_range(team, people, hours):
    with pytest.raises(ValidationFailed) as caught:
        log(people["consultant"], team, hours=hours)
    assert "hours" in errors_of(caught)
    assert not TimeEntry.objects.exists()


def test_no_more_than_24_hours_per_person_and_day_across_projects_and_entries(team, people):
    con = people["consultant"]
    first = log(con, team, hours="16")
    log(con, team, hours="8", labour_category="Senior consultant")
    with pytest.raises(ValidationFailed) as caught:
        log(con, team, hours="0.25")
    assert "exceed 24 h" in errors_of(caught)["hours"][0]
    # An update counts the other entries, not the entry's own old hours.
    assert ts.time_entry_update(actor=con, entry=first, data={"hours": "15.75"}).hours == Decimal("15.75")
    with pytest.raises(ValidationFailed):
        ts.time_entry_update(actor=con, entry=first, data={"hours": "16.25"})
    log(con, team, day=MON + dt.timedelta(days=1), hours="24")  # another day is another 24 h


def test_only_team_members_and_the_project_manager_log_time(tm_project, people):
    with pytest.raises(NotPermitted, match="not a member"):
        log(people["consultant"], tm_project, labour_category="Developer")
    assert log(people["pm"], tm_project, labour_category="Developer").person == people["pm"]


@pytest.mark.parametrize("role", ["finance", "executive", "auditor"])
def test_roles_that_do_not_log_time_are_refused(team, people, role):
    ProjectMember.objects.create(project=team, user=people[role])
    with pytest.raises(NotPermitted):
        log(people[role], team, labour_category="Developer")


@pytest.mark.parametrize(
    ("day", "field"), [(dt.date(2026, 3, 1), "date"), (dt.date(2026, 9, 1), "date")], ids=["before", "after"]
)
def test_no_time_outside_the_project_dates(team, people, day, field):
    with pytest.raises(ValidationFailed) as caught:
        log(people["consultant"], team, day=day)
    assert field in errors_of(caught)


def test_no_time_on_a_closed_project(team, people):
    services.project_set_status(actor=people["pm"], project=team, status="closed", reason="Done")
    with pytest.raises(ValidationFailed) as caught:
        log(people["consultant"], team)
    assert "closed" in errors_of(caught)["project"][0]


def test_description_is_required(team, people):
    with pytest.raises(ValidationFailed) as caught:
        log(people["consultant"], team, description=" ")
    assert "description" in errors_of(caught)


def test_billable_time_needs_the_category_in_the_rate_card_in_force_on_its_date(team, people, amend):
    con = people["consultant"]
    with pytest.raises(ValidationFailed) as caught:
        log(con, team, labour_category="Architect")
    assert "no rate for 'Architect'" in errors_of(caught)["labour_category"][0]
    assert log(con, team, labour_category="Architect", billable=False).billable is False
    amend(
        team,
        [{"op": "rate.set", "labour_category": "Architect", "rate": "180", "effective_from": "2026-06-01"}],
        effective_from=dt.date(2026, 6, 1),
    )
    with pytest.raises(ValidationFailed):
        log(con, team, day=dt.date(2026, 5, 29), labour_category="Architect")
    assert log(con, team, day=dt.date(2026, 6, 1), labour_category="Architect").labour_category == "Architect"


def test_external_id_is_unique_per_system(team, people):
    log(people["consultant"], team, external_system="harvest", external_id="H-1")
    with pytest.raises(ValidationFailed) as caught:
        log(people["consultant"], team, day=MON + dt.timedelta(days=1), external_system="harvest", external_id="H-1")
    assert "external_id" in errors_of(caught)


# --- locked periods ---------------------------------------------------------------------------------------


def test_finance_locks_a_month_once_and_nothing_dated_in_it_changes(team, people):
    con = people["consultant"]
    draft = log(con, team)
    expense = spend(con, team)
    period = ts.period_lock(actor=people["finance"], month=dt.date(2026, 3, 17))
    assert period.month == dt.date(2026, 3, 1) and period.locked_by == people["finance"]
    with pytest.raises(Conflict):
        ts.period_lock(actor=people["finance"], month=dt.date(2026, 3, 1))
    with pytest.raises(ValidationFailed, match="locked"):
        log(con, team, day=MON + dt.timedelta(days=1))
    with pytest.raises(ValidationFailed, match="locked"):
        ts.time_entry_update(actor=con, entry=draft, data={"date": dt.date(2026, 4, 6)})  # nothing leaves it
    with pytest.raises(Conflict):
        ts.time_entry_delete(actor=con, entry=draft)
    with pytest.raises(ValidationFailed, match="locked"):
        spend(con, team, day=MON + dt.timedelta(days=1))
    with pytest.raises(Conflict):
        ts.expense_delete(actor=con, expense=expense)
    with pytest.raises(Conflict, match="locked"):
        ts.timesheet_submit(actor=con, week_start=MON)
    assert log(con, team, day=dt.date(2026, 4, 6)).status == EntryStatus.DRAFT  # April is open


@pytest.mark.parametrize("role", ["pm", "consultant", "auditor", "executive"])
def test_only_finance_locks_periods(people, role):
    with pytest.raises(NotPermitted):
        ts.period_lock(actor=people[role], month=dt.date(2026, 3, 1))


# --- editing and the life cycle ---------------------------------------------------------------------------


def test_only_the_person_changes_their_own_draft(team, people):
    entry = log(people["consultant"], team)
    with pytest.raises(NotPermitted):
        ts.time_entry_update(actor=people["sales"], entry=entry, data={"hours": "4"})
    with pytest.raises(ValidationFailed):
        ts.time_entry_update(actor=people["consultant"], entry=entry, data={"status": "approved"})
    ts.time_entry_delete(actor=people["consultant"], entry=entry)
    assert not TimeEntry.objects.exists()
    assert TimeEntry.history.filter(history_type="-").count() == 1


def test_submit_moves_the_weeks_drafts_and_rejected_entries_and_nothing_else(team, people):
    con = people["consultant"]
    monday, sunday, next_week = (
        log(con, team),
        log(con, team, day=MON + dt.timedelta(days=6)),
        log(con, team, day=MON + dt.timedelta(days=7)),
    )
    expense = spend(con, team, day=MON + dt.timedelta(days=2))
    others = log(people["sales"], team)
    with pytest.raises(ValidationFailed, match="Monday"):
        ts.timesheet_submit(actor=con, week_start=MON + dt.timedelta(days=1))
    assert ts.timesheet_submit(actor=con, week_start=MON) == 3
    states = {e.pk: e.status for e in TimeEntry.objects.all()}
    assert states == {
        monday.pk: "submitted",
        sunday.pk: "submitted",
        next_week.pk: "draft",
        others.pk: "draft",
    }
    expense.refresh_from_db()
    assert expense.status == "submitted" and expense.submitted_at is not None
    assert ts.timesheet_submit(actor=con, week_start=MON) == 0  # nothing left to submit


def test_rejection_needs_a_reason_and_the_person_fixes_and_resubmits(team, people):
    con, pm = people["consultant"], people["pm"]
    entry = log(con, team)
    ts.timesheet_submit(actor=con, week_start=MON)
    with pytest.raises(TransitionNotAllowed):
        ts.time_entry_update(actor=con, entry=entry, data={"hours": "4"})  # submitted: not editable
    with pytest.raises(ValidationFailed, match="reason"):
        ts.time_entries_reject(actor=pm, entries=[entry], reason="  ")
    assert ts.time_entries_reject(actor=pm, entries=[entry], reason="Split the workshop from the travel") == 1
    entry.refresh_from_db()
    assert (entry.status, entry.rejection_reason, entry.decided_by) == (
        "rejected",
        "Split the workshop from the travel",
        pm,
    )
    assert Notification.objects.filter(user=con, body__contains="Split the workshop").exists()
    ts.time_entry_update(actor=con, entry=entry, data={"hours": "6", "description": "Workshop only"})
    assert ts.timesheet_submit(actor=con, week_start=MON) == 1
    ts.time_entries_approve(actor=pm, entries=[entry])
    entry.refresh_from_db()
    assert entry.status == "approved" and entry.decided_at is not None


def test_approved_and_billed_entries_cannot_be_edited_deleted_or_decided_again(team, people):
    con, pm = people["consultant"], people["pm"]
    entry = log(con, team)
    with pytest.raises(TransitionNotAllowed, match="only submitted"):
        ts.time_entries_approve(actor=pm, entries=[entry])
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=pm, entries=[entry])
    entry.refresh_from_db()
    for attempt in (
        lambda: ts.time_entry_update(actor=con, entry=entry, data={"hours": "4"}),
        lambda: ts.time_entry_delete(actor=con, entry=entry),
        lambda: ts.time_entries_reject(actor=pm, entries=[entry], reason="Late"),
    ):
        with pytest.raises(TransitionNotAllowed):
            attempt()
    assert ts.time_entries_mark_billed(entries=[entry], invoice_ref="DE-2026-0001") == 1
    entry.refresh_from_db()
    assert (entry.status, entry.invoice_ref) == ("billed", "DE-2026-0001") and entry.billed_at is not None
    with pytest.raises(TransitionNotAllowed, match="billed twice"):
        ts.time_entries_mark_billed(entries=[entry], invoice_ref="DE-2026-0002")
    with pytest.raises(TransitionNotAllowed):
        ts.time_entry_update(actor=con, entry=entry, data={"hours": "4"})


def test_mark_billed_needs_an_invoice_and_approved_entries(team, people):
    entry = log(people["consultant"], team)
    with pytest.raises(ValidationFailed):
        ts.time_entries_mark_billed(entries=[entry], invoice_ref=" ")
    with pytest.raises(TransitionNotAllowed):
        ts.time_entries_mark_billed(entries=[entry], invoice_ref="DE-1")


@pytest.mark.parametrize("role", ["pm2", "consultant", "finance", "executive", "auditor", "sales"])
def test_only_the_projects_manager_or_an_admin_decides(team, people, role):
    entries = submitted(people["consultant"], team, MON)
    with pytest.raises(NotPermitted):
        ts.time_entries_approve(actor=people[role], entries=entries)
    with pytest.raises(NotPermitted):
        ts.time_entries_reject(actor=people[role], entries=entries, reason="No")
    assert ts.time_entries_approve(actor=people["admin"], entries=entries) == 1


def test_bulk_approval_is_one_update_with_history_and_an_intact_audit_chain(
    team, people, django_assert_max_num_queries
):
    entries = submitted(people["consultant"], team, *[MON + dt.timedelta(days=d) for d in range(20)], hours="1")
    audit_before = AuditEntry.objects.count()
    with django_assert_max_num_queries(30):
        assert ts.time_entries_approve(actor=people["pm"], entries=entries) == 20
    assert TimeEntry.objects.filter(status="approved", decided_by=people["pm"]).count() == 20
    records = TimeEntry.history.filter(history_type="~")
    assert records.count() == 20
    assert {(r.history_user_id, r.history_change_reason, r.status) for r in records} == {
        (people["pm"].pk, "Entry approved", "approved")
    }
    assert AuditEntry.objects.count() == audit_before + 20
    intact, _, broken = audit_chain_verify()
    assert intact, broken


def test_budget_alert_is_raised_once_when_approvals_cross_75_percent(team, people):
    """Budget 37,000 (senior consultant 15,000, developer 19,800, travel 2,200); 24 days x 8 h x 150 = 28,800."""
    days = [dt.date(2026, 3, 2) + dt.timedelta(days=d) for d in range(40)]
    first = submitted(people["sales"], team, *days[:20])  # 24,000 = 64.9 %
    ts.time_entries_approve(actor=people["pm"], entries=first)
    assert not BudgetAlert.objects.exists()
    second = submitted(people["sales"], team, *days[20:24])  # 28,800 = 77.8 %
    ts.time_entries_approve(actor=people["pm"], entries=second)
    third = submitted(people["sales"], team, *days[24:25])  # 30,000 = 81.1 %
    ts.time_entries_approve(actor=people["pm"], entries=third)
    alerts = list(BudgetAlert.objects.all())
    assert [(a.threshold_percent, a.actual_amount) for a in alerts] == [(75, Decimal("28800.00"))]


# --- adjustments ------------------------------------------------------------------------------------------


def test_an_adjustment_corrects_approved_or_billed_time_and_never_changes_the_original(team, people):
    con = people["consultant"]
    original = log(con, team)
    with pytest.raises(TransitionNotAllowed):
        ts.time_entry_adjust(actor=con, original=original, hours="-1", description="Less")
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[original])
    ts.time_entries_mark_billed(entries=[original], invoice_ref="DE-1")
    before = TimeEntry.objects.filter(pk=original.pk).values().get()
    adjustment = ts.time_entry_adjust(actor=con, original=original, hours="-2", description="Workshop ended early")
    assert (adjustment.status, adjustment.hours, adjustment.adjusts, adjustment.date) == (
        "draft",
        Decimal("-2"),
        original,
        original.date,
    )
    assert TimeEntry.objects.filter(pk=original.pk).values().get() == before
    with pytest.raises(ValidationFailed, match="below 0"):
        ts.time_entry_adjust(actor=con, original=original, hours="-6.25", description="Too much")
    with pytest.raises(ValidationFailed):
        ts.time_entry_adjust(actor=con, original=adjustment, hours="1", description="Of an adjustment")
    with pytest.raises(ValidationFailed):
        ts.time_entry_adjust(actor=con, original=original, hours="0", description="Nothing")
    with pytest.raises(NotPermitted):
        ts.time_entry_adjust(actor=people["sales"], original=original, hours="1", description="Not mine")
    # The adjustment follows the life cycle like any entry (and is exempt from a later month lock).
    ts.period_lock(actor=people["finance"], month=MON)
    later = ts.time_entry_adjust(actor=con, original=original, hours="0.5", description="Travel time")
    assert TimeEntry.objects.filter(adjusts=original).count() == 2
    # …and in the locked month it is still edited, deleted and submitted like any draft.
    ts.time_entry_update(actor=con, entry=later, data={"hours": "0.75"})
    ts.time_entry_delete(actor=con, entry=later)
    assert ts.timesheet_submit(actor=con, week_start=MON) == 1
    assert TimeEntry.objects.get(pk=adjustment.pk).status == EntryStatus.SUBMITTED
    ts.time_entries_approve(actor=people["pm"], entries=[adjustment])
    with pytest.raises(ValidationFailed, match="locked by finance"):  # while ordinary time stays locked
        ts.time_entry_create(
            actor=con, project=team, date=MON, hours="1", description="Late", labour_category="Developer"
        )


# --- expenses ---------------------------------------------------------------------------------------------


def test_expense_takes_the_markup_of_the_projects_expenses_rule(team, people):
    expense = spend(people["consultant"], team)
    assert (expense.markup_percent, expense.currency, expense.status) == (Decimal("10.00"), "EUR", "draft")
    assert spend(people["consultant"], team, billable=False).markup_percent == 0


def test_making_an_expense_billable_or_not_brings_or_drops_the_markup(team, people):
    con = people["consultant"]
    expense = ts.expense_update(actor=con, expense=spend(con, team, billable=False), data={"billable": True})
    assert expense.markup_percent == Decimal("10.00")
    expense = ts.expense_update(actor=con, expense=expense, data={"billable": False})
    assert Expense.objects.get(pk=expense.pk).markup_percent == 0
    unchanged = ts.expense_update(actor=con, expense=spend(con, team), data={"description": "Taxi"})
    assert unchanged.markup_percent == Decimal("10.00")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "x"}, "amount"),
        ({"category": "bribes"}, "category"),
        ({"currency": "USD"}, "currency"),
        ({"description": ""}, "description"),
    ],
)
def test_expense_input_rules(team, people, fields, field):
    with pytest.raises(ValidationFailed) as caught:
        spend(people["consultant"], team, **fields)
    assert field in errors_of(caught)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: SimpleUploadedFile("r.pdf", b"hello", "application/pdf"), "content"),
        (lambda: SimpleUploadedFile("r.txt", b"hello", "text/plain"), "must be"),
        (lambda: SimpleUploadedFile("r.pdf", PDF, "image/png"), "sent as"),
        (lambda: SimpleUploadedFile("r.pdf", b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024), "application/pdf"), "limit"),
    ],
    ids=["fake-pdf", "text", "declared-png", "too-big"],
)
def test_receipt_must_be_a_real_pdf_jpeg_or_png_of_at_most_5_mb(team, people, upload, message):
    with pytest.raises(ValidationFailed) as caught:
        spend(people["consultant"], team, receipt=upload())
    assert message in errors_of(caught)["receipt"][0]


def test_receipt_is_stored_under_a_random_name(team, people, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    expense = spend(people["consultant"], team, receipt=SimpleUploadedFile("Taxi 12.PDF", PDF, "application/pdf"))
    assert expense.receipt_filename == "Taxi 12.PDF"
    assert expense.receipt.name.startswith(f"receipts/{expense.public_id}/") and expense.receipt.name.endswith(".pdf")


def test_expenses_share_the_life_cycle_with_time(team, people):
    con, pm = people["consultant"], people["pm"]
    expense, entry = spend(con, team), log(con, team)
    ts.expense_update(actor=con, expense=expense, data={"amount": "99.50"})
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_reject(actor=pm, entries=[expense], reason="Receipt missing")
    expense.refresh_from_db()
    assert expense.status == "rejected"
    ts.expense_update(actor=con, expense=expense, data={"receipt": SimpleUploadedFile("r.pdf", PDF, "application/pdf")})
    ts.timesheet_submit(actor=con, week_start=MON)
    assert ts.time_entries_approve(actor=pm, entries=[expense, entry]) == 2
    with pytest.raises(TransitionNotAllowed):
        ts.expense_update(actor=con, expense=expense, data={"amount": "1"})
    assert ts.time_entries_mark_billed(entries=[expense, entry], invoice_ref="DE-7") == 2


# --- reading ----------------------------------------------------------------------------------------------


def test_project_actuals_feed_the_budget_summary(team, people):
    con = people["consultant"]
    ts.time_entries_approve(actor=people["pm"], entries=submitted(people["sales"], team, MON, MON + dt.timedelta(1)))
    ts.time_entries_approve(actor=people["pm"], entries=submitted(con, team, MON, hours="2.5", category="Developer"))
    log(con, team, day=MON + dt.timedelta(days=3))  # a draft counts for nothing
    expense = spend(con, team, amount="100.00")
    ts.timesheet_submit(actor=con, week_start=MON)
    ts.time_entries_approve(actor=people["pm"], entries=[expense])
    summary = selectors.project_budget_summary(team)
    rows = {row.key: (row.actual_hours, row.actual_amount) for row in summary.rows}
    assert rows["labour:senior-consultant"] == (Decimal("16"), Decimal("2400.00"))
    assert rows["labour:developer"] == (Decimal("2.5"), Decimal("247.50"))  # 110 less 10 % = 99
    assert rows["expenses:travel"] == (Decimal(0), Decimal("110.00"))
    assert summary.actual_amount == selectors.project_actual_amount(team) == Decimal("2757.50")


def test_visibility_of_time_entries(team, people, pm2_project):
    own = log(people["consultant"], team)
    sales_own = log(people["sales"], team)
    elsewhere = log(people["pm2"], pm2_project, labour_category="Developer")
    visible = {key: set(selectors.time_entries_visible_to(people[key])) for key in people}
    assert visible["consultant"] == {own}
    assert visible["sales"] == {sales_own}
    assert visible["pm"] == {own, sales_own}
    assert visible["pm2"] == {elsewhere}
    assert (
        visible["finance"]
        == visible["auditor"]
        == visible["executive"]
        == visible["admin"]
        == {
            own,
            sales_own,
            elsewhere,
        }
    )
    assert set(selectors.projects_visible_to(people["consultant"])) == {team}


@pytest.fixture
def pm2_project(people, customer, legal_entity, win):
    from .factories import DealFactory, tm_quote

    deal = DealFactory(customer=customer, legal_entity=legal_entity, title="Second")
    tm_quote(deal)
    return win(deal, project_manager=people["pm2"])


def test_approval_queue_filters_and_keeps_a_constant_number_of_queries(
    team, people, pm2_project, django_assert_num_queries
):
    con, pm = people["consultant"], people["pm"]
    submitted(con, team, MON, MON + dt.timedelta(days=1), hours="2", category="Developer")
    submitted(people["pm2"], pm2_project, MON)
    pm = type(pm).objects.get(pk=pm.pk)
    selectors.approval_queue(user=pm)  # warm the permission and role caches
    with django_assert_num_queries(2):
        small = selectors.approval_queue(user=pm)
        [(e.person.username, str(e.project.customer)) for e in small.time_entries]
    submitted(con, team, *[MON + dt.timedelta(days=d) for d in range(2, 30)], hours="1", category="Developer")
    spend(con, team)
    ts.timesheet_submit(actor=con, week_start=MON)
    with django_assert_num_queries(2):
        big = selectors.approval_queue(user=pm)
        [(e.person.username, str(e.project.customer)) for e in [*big.time_entries, *big.expenses]]
    assert len(small) == 2 and len(big) == 31
    assert len(selectors.approval_queue(user=pm, week=MON + dt.timedelta(days=3))) == 8
    assert len(selectors.approval_queue(user=pm, person=people["sales"])) == 0
    assert len(selectors.approval_queue(user=people["admin"], project=pm2_project)) == 1
    assert len(selectors.approval_queue(user=people["consultant"])) == 0
    assert len(selectors.approval_queue(user=people["auditor"])) == 32  # auditors read every project's queue
    with django_assert_num_queries(4):  # a page: the rows and the totals
        page = selectors.approval_queue(user=pm, limit=10, offset=10)
    assert (len(page.time_entries), len(page.expenses), page.time_total, page.expense_total) == (10, 0, 30, 1)
