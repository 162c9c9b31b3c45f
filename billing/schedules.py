"""The monthly invoice runs started by the schedule (``manage.py schedule_invoice_runs`` creates it).

On the 1st of each month the queue calls ``scheduled_invoice_runs``: every active legal entity gets a run for
the previous calendar month, started through ``billing.services.invoice_run_start`` with the trigger
"schedule", exactly as finance would start it from the page. Calling it again (a retried task, a second
cluster, ``--run-now`` the same day) starts nothing new: an entity that already has a run of that period which
did not fail is left alone. Only a failed run is followed by a new one (the new run leaves out whatever the
failed one already put on its drafts, so nothing is billed twice).

An entity without billable work still gets its run, which completes with no invoices: the run list then
shows, month after month, that the schedule ran for every entity and what each run found.

Who starts it: ``invoice_run_start`` only accepts a signed-in, active finance (or admin) user holding
``billing.start_invoicerun``; it records that user as the run's starter and its drafts' creator. The schedule
therefore acts as a dedicated system user (``SCHEDULER_USERNAME``): a member of the finance group with no
usable password and no email address, so nobody can sign in as it and it is never mailed. It has no
approval limit, so it never approves anything, and since it (not a finance person) created the drafts, any
finance person may give their first approval.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from backbone.errors import DomainError
from backbone.roles import Role
from backbone.services import notify
from customers.lock_objects import legal_entity_for_update
from customers.models import LegalEntity

from .forms import last_month
from .models import InvoiceRun
from .services import invoice_run_start

log = logging.getLogger(__name__)

SCHEDULER_USERNAME = "throughline-scheduler"
SCHEDULE_NAME = "Monthly invoice runs"
SCHEDULE_FUNC = "billing.tasks_schedule.scheduled_invoice_runs_task"
SCHEDULE_DAY, SCHEDULE_HOUR = 1, 6  # the 1st of the month at 06:00, local time (settings.TIME_ZONE)
_THIS_SCHEDULE = Q(name=SCHEDULE_NAME) | Q(func=SCHEDULE_FUNC)


@dataclass
class ScheduleOutcome:
    """What one call did, entity by entity: the runs it started, the entities it left alone (they have a run
    of the period already) and those whose run the service refused, with the reason."""

    period_start: dt.date
    period_end: dt.date
    started: list[InvoiceRun] = field(default_factory=list)
    skipped: list[tuple[LegalEntity, InvoiceRun]] = field(default_factory=list)
    refused: list[tuple[LegalEntity, str]] = field(default_factory=list)

    def summary(self) -> str:
        period = f"{self.period_start:%Y-%m-%d} – {self.period_end:%Y-%m-%d}"
        parts = [f"{len(self.started)} started"]
        if self.started:
            parts[-1] += f" ({', '.join(run.number for run in self.started)})"
        parts.append(f"{len(self.skipped)} already had a run")
        parts.append(f"{len(self.refused)} refused")
        text = f"Invoice runs for {period}: {', '.join(parts)}."
        for entity, reason in self.refused:
            text += f" {entity}: {reason}"
        return text


def scheduler_user():
    """The system user the schedule acts as (made on first use; see the module docstring)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=SCHEDULER_USERNAME,
        defaults={"first_name": "Invoice", "last_name": "schedule", "email": "", "is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    finance = Group.objects.get(name=Role.FINANCE)  # made by the migrations, with its permissions
    if not user.groups.filter(pk=finance.pk).exists():
        user.groups.add(finance)
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions or roles


def _existing_run(entity: LegalEntity, start: dt.date, end: dt.date) -> InvoiceRun | None:
    return (
        InvoiceRun.objects.filter(legal_entity=entity, period_start=start, period_end=end)
        .exclude(status=InvoiceRun.Status.FAILED)
        .order_by("pk")
        .first()
    )


def _start_one(*, actor, entity_pk: int, start: dt.date, end: dt.date) -> tuple[InvoiceRun | None, bool]:
    """Start the entity's run unless it has one of the period; (run, started). The entity row is locked
    first, so two schedulers racing see each other's run (``invoice_run_start`` takes the same lock)."""
    with transaction.atomic(durable=True):
        entity = legal_entity_for_update(pk=entity_pk)
        existing = _existing_run(entity, start, end)
        if existing is not None:
            return existing, False
        run = invoice_run_start(
            actor=actor, legal_entity=entity, period_start=start, period_end=end, trigger="schedule"
        )
        return run, True


def scheduled_invoice_runs(today: dt.date | None = None) -> ScheduleOutcome:
    """Start the previous calendar month's run of every active legal entity that has none yet (idempotent).

    ``today`` is the local date (``settings.TIME_ZONE``) the schedule fired on. Each entity is started in its
    own transaction: one entity refused (a run of another period still working, say) does not hold up the
    others; finance is told in the app and the schedule's next call tries it again.
    """
    today = today or timezone.localdate()
    start, end = last_month(today)
    outcome = ScheduleOutcome(period_start=start, period_end=end)
    actor = scheduler_user()
    for entity in LegalEntity.objects.filter(is_active=True).order_by("pk"):
        try:
            run, started = _start_one(actor=actor, entity_pk=entity.pk, start=start, end=end)
        except DomainError as exc:
            log.warning("Scheduled invoice run of %s for %s – %s refused: %s", entity, start, end, exc.message)
            outcome.refused.append((entity, exc.message))
            continue
        if started:
            outcome.started.append(run)
        else:
            outcome.skipped.append((entity, run))
    if outcome.refused:
        _tell_finance(outcome)
    log.info(outcome.summary())
    return outcome


def _tell_finance(outcome: ScheduleOutcome) -> None:
    people = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.FINANCE)
        .exclude(username=SCHEDULER_USERNAME)
        .distinct()
        .order_by("pk")
    )
    lines = [f"{entity}: {reason}" for entity, reason in outcome.refused]
    with transaction.atomic():
        notify(
            users=people,
            title=f"Scheduled invoice runs for {outcome.period_start:%B %Y}: {len(outcome.refused)} not started",
            body="\n".join(lines) + "\nStart them from Billing → Invoice runs once the reason is dealt with.",
            url=reverse("billing:run-list"),
        )


# --- the django-q2 schedule ------------------------------------------------------------------------------
#
# A MONTHLY schedule: django-q2 adds a calendar month to ``next_run`` after each call and corrects for daylight
# saving time, so the 1st at 06:00 local stays the 1st at 06:00. (It counts months on the UTC date: in a time
# zone more than six hours east of UTC, 06:00 on the 1st falls on the last day of the month before in UTC and
# the day would drift. Europe/Berlin, the default, is fine.)


def _is_slot(moment: dt.datetime | None) -> bool:
    if moment is None:
        return False
    local = timezone.localtime(moment, zoneinfo.ZoneInfo(settings.TIME_ZONE))
    return (local.day, local.hour, local.minute, local.second) == (SCHEDULE_DAY, SCHEDULE_HOUR, 0, 0)


def next_schedule_slot(now: dt.datetime | None = None) -> dt.datetime:
    """The next 1st of a month at 06:00 local time after ``now`` (aware)."""
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local = timezone.localtime(now or timezone.now(), zone)
    slot = dt.datetime(local.year, local.month, SCHEDULE_DAY, SCHEDULE_HOUR, tzinfo=zone)
    if slot <= local:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        slot = dt.datetime(year, month, SCHEDULE_DAY, SCHEDULE_HOUR, tzinfo=zone)
    return slot


@transaction.atomic
def invoice_run_schedule_ensure() -> tuple[Schedule, bool]:
    """Create the monthly schedule, or bring the existing one (found by name or function) up to date and remove
    any duplicate; (schedule, created). A ``next_run`` already on a 1st at 06:00 is kept, even when it is past
    (the cluster was down then): the cluster then calls it once, late, rather than skip the month."""
    found = list(Schedule.objects.select_for_update().filter(_THIS_SCHEDULE).order_by("pk"))
    schedule, duplicates = (found[0], found[1:]) if found else (Schedule(), [])
    for duplicate in duplicates:
        duplicate.delete()
    created = schedule.pk is None
    schedule.name = SCHEDULE_NAME
    schedule.func = SCHEDULE_FUNC
    schedule.args = schedule.kwargs = schedule.hook = schedule.cron = None
    schedule.schedule_type = Schedule.MONTHLY
    schedule.repeats = -1
    if created or not _is_slot(schedule.next_run):
        schedule.next_run = next_schedule_slot()
    schedule.save()
    return schedule, created


def invoice_run_schedule_remove() -> int:
    """Remove the monthly schedule (and any duplicate); the number removed."""
    removed, _ = Schedule.objects.filter(_THIS_SCHEDULE).delete()
    return removed
