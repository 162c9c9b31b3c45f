"""The monthly invoice runs of the schedule: last month's run for every active legal entity, started once
however often the schedule fires, by the scheduler system user with the trigger "schedule"; and the command
that creates, keeps single and removes the django-q2 schedule (the 1st of the month at 06:00 local time).

Entities without billable work are not skipped: their run completes with no invoices, so the run list shows
the schedule ran for every entity."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from backbone.models import Notification
from backbone.roles import Role, roles_of
from billing import services
from billing.issuing import invoice_approve
from billing.models import Invoice, InvoiceRun
from billing.schedules import (
    SCHEDULE_FUNC,
    SCHEDULE_NAME,
    SCHEDULER_USERNAME,
    next_schedule_slot,
    scheduled_invoice_runs,
)
from billing.tasks_schedule import scheduled_invoice_runs_task
from tests.customers.factories import LegalEntityFactory

pytestmark = pytest.mark.django_db

MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def run_schedule(django_capture_on_commit_callbacks):
    """``run_schedule(today)``: the schedule's call, with the queued runs executed (the test queue is sync)."""

    def call(today=dt.date(2026, 4, 1)):
        with django_capture_on_commit_callbacks(execute=True):
            return scheduled_invoice_runs(today=today)

    return call


def runs_of(entity) -> list[InvoiceRun]:
    return list(InvoiceRun.objects.filter(legal_entity=entity).order_by("pk"))


# --- the runs ------------------------------------------------------------------------------------------------


def test_the_schedule_bills_the_previous_calendar_month_of_each_active_entity(
    people, legal_entity, approved_time, run_schedule
):
    outcome = run_schedule(dt.date(2026, 4, 17))
    (run,) = runs_of(legal_entity)
    assert (run.period_start, run.period_end) == MARCH
    assert (run.trigger, run.started_by.username, run.status) == ("schedule", SCHEDULER_USERNAME, "completed")
    assert (run.invoices_created, run.items_billed) == (1, 5)
    assert run in outcome.started and not outcome.refused
    (invoice,) = run.invoices.all()
    assert invoice.status == Invoice.Status.DRAFT and invoice.created_by == run.started_by


def test_the_month_before_january_is_last_december(people, legal_entity, run_schedule):
    run_schedule(dt.date(2026, 1, 1))
    (run,) = runs_of(legal_entity)
    assert (run.period_start, run.period_end) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def test_calling_the_schedule_twice_starts_nothing_new(people, legal_entity, approved_time, run_schedule):
    first = run_schedule()
    second = run_schedule()
    third = run_schedule(dt.date(2026, 4, 30))  # later the same month: still March, still done
    assert len(runs_of(legal_entity)) == 1
    assert first.started and not second.started and not third.started
    assert [run.pk for _, run in second.skipped if _ == legal_entity] == [first.started[0].pk]
    assert "0 started" in second.summary() and "1 already had a run" in second.summary()


def test_a_queued_run_of_the_period_counts_as_started(people, legal_entity):
    # Without executing the queue: the first call's run is still queued when the second call comes.
    scheduled_invoice_runs(today=dt.date(2026, 4, 1))
    again = scheduled_invoice_runs(today=dt.date(2026, 4, 1))
    (run,) = runs_of(legal_entity)
    assert run.status == InvoiceRun.Status.QUEUED
    assert again.skipped == [(legal_entity, run)] and not again.refused


def test_an_entity_without_work_gets_a_run_that_completes_with_no_invoices(people, legal_entity, run_schedule):
    idle = LegalEntityFactory()
    run_schedule()
    for entity in (legal_entity, idle):
        (run,) = runs_of(entity)
        assert (run.status, run.projects_total, run.invoices_created, run.items_billed) == ("completed", 0, 0, 0)


def test_inactive_entities_are_left_out(people, legal_entity, run_schedule):
    closed = LegalEntityFactory(is_active=False)
    outcome = run_schedule()
    assert runs_of(closed) == [] and len(runs_of(legal_entity)) == 1
    assert all(run.legal_entity != closed for run in outcome.started)


def test_a_failed_run_of_the_period_is_followed_by_a_new_one(people, legal_entity, approved_time, run_schedule):
    failed = services.invoice_run_start(
        actor=people["finance"], legal_entity=legal_entity, period_start=MARCH[0], period_end=MARCH[1]
    )
    InvoiceRun.objects.filter(pk=failed.pk).update(status=InvoiceRun.Status.FAILED, error="Worker killed")
    outcome = run_schedule()
    assert [run.pk for run in outcome.started] == [runs_of(legal_entity)[1].pk]
    new = runs_of(legal_entity)[1]
    assert (new.status, new.invoices_created, new.trigger) == ("completed", 1, "schedule")


def test_a_run_finance_started_for_the_period_is_respected(people, legal_entity, approved_time, run_schedule):
    by_hand = services.invoice_run_start(
        actor=people["finance"], legal_entity=legal_entity, period_start=MARCH[0], period_end=MARCH[1]
    )
    outcome = run_schedule()
    assert runs_of(legal_entity) == [by_hand] and outcome.skipped == [(legal_entity, by_hand)]


def test_an_entity_refused_by_the_service_does_not_hold_up_the_others_and_finance_is_told(
    people, legal_entity, run_schedule
):
    other = LegalEntityFactory()
    # A run of another period still working: the service refuses a second run of the entity (409).
    busy = services.invoice_run_start(
        actor=people["finance"],
        legal_entity=legal_entity,
        period_start=dt.date(2026, 2, 1),
        period_end=dt.date(2026, 2, 28),
    )
    outcome = run_schedule()
    assert runs_of(legal_entity) == [busy]
    assert [run.legal_entity for run in outcome.started] == [other]
    ((entity, reason),) = outcome.refused
    assert entity == legal_entity and f"{busy.number} of {legal_entity} is still queued" in reason
    note = Notification.objects.get(user=people["finance"])
    assert "1 not started" in note.title and reason in note.body and note.url == reverse("billing:run-list")
    assert not Notification.objects.filter(user__username=SCHEDULER_USERNAME).exists()
    # The next call, once the busy run is done, starts the missing one.
    InvoiceRun.objects.filter(pk=busy.pk).update(status=InvoiceRun.Status.COMPLETED)
    assert [run.legal_entity for run in run_schedule().started] == [legal_entity]


def test_the_scheduler_is_a_finance_system_user_nobody_can_sign_in_as(people, legal_entity, client):
    scheduled_invoice_runs(today=dt.date(2026, 4, 1))
    scheduled_invoice_runs(today=dt.date(2026, 5, 1))
    (run,) = [r for r in runs_of(legal_entity) if r.period_start == MARCH[0]]
    scheduler = run.started_by
    assert scheduler.username == SCHEDULER_USERNAME and scheduler.is_active
    assert not scheduler.has_usable_password() and scheduler.email == ""
    assert roles_of(scheduler) == {Role.FINANCE} and not scheduler.is_staff and not scheduler.is_superuser
    assert {r.started_by_id for r in runs_of(legal_entity)} == {scheduler.pk}  # one user, made once
    assert not client.login(username=SCHEDULER_USERNAME, password="")


def test_finance_gives_the_first_approval_of_a_scheduled_draft_above_her_limit(
    people, legal_entity, approved_time, bank_account, run_schedule
):
    """The scheduler made the draft, not finance: she may approve it (first of two above her limit)."""
    run_schedule()
    invoice = Invoice.objects.get(run__legal_entity=legal_entity)
    invoice = invoice_approve(actor=people["finance"], invoice=invoice)
    assert invoice.approved_by == people["finance"]


def test_the_task_returns_the_summary_for_the_task_log(people, legal_entity, monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: dt.date(2026, 4, 1))
    summary = scheduled_invoice_runs_task()
    assert summary.startswith("Invoice runs for 2026-03-01 – 2026-03-31: 1 started (RUN-")
    assert scheduled_invoice_runs_task().startswith("Invoice runs for 2026-03-01 – 2026-03-31: 0 started")


# --- the pages ----------------------------------------------------------------------------------------------


def test_the_run_pages_show_that_the_schedule_started_the_run(client, people, legal_entity, run_schedule):
    run_schedule()
    (run,) = runs_of(legal_entity)
    client.force_login(people["finance"])
    listing = client.get(reverse("billing:run-list")).content.decode()
    row = listing[listing.index(run.number) :]
    row = row[: row.index("</tr>")]
    assert "Schedule" in row and "Invoice schedule" not in row
    detail = client.get(reverse("billing:run-detail", kwargs={"public_id": run.public_id})).content.decode()
    assert "by the monthly schedule" in " ".join(detail.split())


# --- the django-q2 schedule ----------------------------------------------------------------------------------


def call(*args) -> str:
    out = StringIO()
    call_command("schedule_invoice_runs", *args, stdout=out)
    return out.getvalue()


def test_the_command_creates_one_monthly_schedule_on_the_first_at_six(db):
    output = call()
    (schedule,) = Schedule.objects.all()
    assert (schedule.name, schedule.func, schedule.schedule_type, schedule.repeats) == (
        SCHEDULE_NAME,
        SCHEDULE_FUNC,
        Schedule.MONTHLY,
        -1,
    )
    local = timezone.localtime(schedule.next_run, zoneinfo.ZoneInfo(settings.TIME_ZONE))
    assert (local.day, local.hour, local.minute) == (1, 6, 0) and schedule.next_run > timezone.now()
    assert schedule.next_run - timezone.now() <= dt.timedelta(days=32)
    assert "created" in output and local.strftime("%Y-%m-%d 06:00") in output


def test_running_the_command_again_keeps_one_schedule_and_mends_it(db):
    call()
    (first,) = Schedule.objects.all()
    Schedule.objects.filter(pk=first.pk).update(schedule_type=Schedule.DAILY, next_run=timezone.now())
    Schedule.objects.create(name="copy", func=SCHEDULE_FUNC, schedule_type=Schedule.WEEKLY)  # made by hand
    output = call()
    (schedule,) = Schedule.objects.all()
    assert schedule.pk == first.pk and schedule.schedule_type == Schedule.MONTHLY
    assert schedule.next_run == first.next_run and "up to date" in output


def test_a_missed_slot_is_kept_so_the_cluster_still_runs_it(db):
    call()
    missed = dt.datetime(2026, 11, 1, 6, tzinfo=BERLIN)
    Schedule.objects.update(next_run=missed)
    call()
    assert Schedule.objects.get().next_run == missed


def test_disable_removes_the_schedule(db):
    call()
    assert "removed" in call("--disable")
    assert not Schedule.objects.exists()
    assert "no monthly invoice run schedule" in call("--disable")


def test_run_now_starts_last_months_runs_once(people, legal_entity, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        output = call("--run-now")
    (run,) = runs_of(legal_entity)
    assert run.period_end == timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    assert run.status == "completed" and f"1 started ({run.number})" in output
    assert "0 started" in call("--run-now") and len(runs_of(legal_entity)) == 1
    assert Schedule.objects.count() == 1


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2026, 3, 15, 12, tzinfo=BERLIN), dt.datetime(2026, 4, 1, 6, tzinfo=BERLIN)),
        (dt.datetime(2026, 12, 1, 6, tzinfo=BERLIN), dt.datetime(2027, 1, 1, 6, tzinfo=BERLIN)),  # the slot is past
        (dt.datetime(2026, 12, 1, 5, 59, tzinfo=BERLIN), dt.datetime(2026, 12, 1, 6, tzinfo=BERLIN)),
    ],
)
def test_the_next_slot_is_the_next_first_of_a_month_at_six_local(now, expected, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    assert next_schedule_slot(now) == expected


def test_django_q_keeps_the_first_at_six_across_daylight_saving_time(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    schedule = Schedule(func=SCHEDULE_FUNC, schedule_type=Schedule.MONTHLY)
    moment = dt.datetime(2026, 3, 1, 6, tzinfo=BERLIN).astimezone(dt.UTC)
    for _ in range(12):
        moment = schedule.calculate_next_run(moment)
        local = moment.astimezone(BERLIN)
        assert (local.day, local.hour, local.minute) == (1, 6, 0), local
