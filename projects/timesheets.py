"""Every write of time entries, expenses and locked periods: logging, the weekly submission, approval and
rejection in bulk, adjustments, month locks and the billed mark billing sets.

Life cycle (``models.ENTRY_TRANSITIONS``): draft → submitted → approved / rejected → billed; a rejected entry
is edited and submitted again. Approved and billed entries never change: a correction is an adjustment entry
linked to the original. The one way back from billed is billing's release of the entries of a credited
invoice line (billed → approved, ``time_entries_release_billed``), so that a later run bills them again.
Bulk transitions are single UPDATE statements with bulk history and audit records, so approving a thousand
entries costs a handful of queries.

This module imports ``projects.services`` (for budget alerts) and nothing imports it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone

from backbone.errors import Conflict, NotPermitted, TransitionNotAllowed, ValidationFailed
from backbone.history import audit_entries_append_bulk, stamp
from backbone.money import CURRENCY_CODES
from backbone.roles import Role, has_role, require_writer
from backbone.services import notify
from customers.uploads import file_problem

from . import selectors
from . import services as project_services
from .errors import ContractNotInForce, RateMissing
from .lock_objects import entries_for_update, person_for_update
from .models import (
    EDITABLE_STATUSES,
    BillingRule,
    EntryStatus,
    Expense,
    LockedPeriod,
    Project,
    ProjectMember,
    TimeEntry,
)
from .services import _Errors

MAX_HOURS_PER_DAY = Decimal("24")
QUARTER = Decimal("0.25")
RECEIPT_MAX_BYTES = 5 * 1024 * 1024
RECEIPT_TYPES = {
    ".pdf": ("PDF", frozenset({"application/pdf"})),
    ".jpg": ("JPEG", frozenset({"image/jpeg", "image/pjpeg"})),
    ".jpeg": ("JPEG", frozenset({"image/jpeg", "image/pjpeg"})),
    ".png": ("PNG", frozenset({"image/png"})),
}
Entry = TimeEntry | Expense


# --- guards -------------------------------------------------------------------------------------------


def _require_logger(actor, model: type[models.Model]) -> None:
    require_writer(actor)
    name = model._meta.model_name
    if not actor.has_perm(f"projects.add_{name}"):
        noun = "time" if model is TimeEntry else "expenses"
        raise NotPermitted(f"Your role does not log {noun}.")


def _require_member(actor, project: Project) -> None:
    if project.project_manager_id == actor.pk or ProjectMember.objects.filter(project=project, user=actor).exists():
        return
    raise NotPermitted(f"You are not a member of {project.number}; its project manager adds you to the team.")


def _require_own_editable(actor, entry: Entry) -> None:
    noun = "time entry" if isinstance(entry, TimeEntry) else "expense"
    if entry.person_id != actor.pk:
        raise NotPermitted(f"Only the person who logged this {noun} may change it.")
    if entry.status not in EDITABLE_STATUSES:
        raise TransitionNotAllowed(
            f"This {noun} is {entry.get_status_display().lower()}; only drafts and rejected entries can be changed"
            + (" (correct approved time with an adjustment)." if noun == "time entry" else "."),
            field="status",
        )


def period_is_locked(day: dt.date) -> bool:
    return LockedPeriod.objects.filter(month=day.replace(day=1)).exists()


def _check_day(errors: _Errors, *, project: Project, day: Any, check_lock: bool = True) -> dt.date | None:
    if not isinstance(day, dt.date):
        errors.add("date", "Enter the date.")
        return None
    if project.status == Project.Status.CLOSED:
        errors.add("project", f"{project.number} is closed; nothing more can be logged on it.")
    elif day < project.planned_start:
        errors.add("date", f"{project.number} starts on {project.planned_start.isoformat()}; nothing before that.")
    elif day > project.planned_end:
        errors.add("date", f"{project.number} ended on {project.planned_end.isoformat()}; nothing after that.")
    if check_lock and period_is_locked(day):
        errors.add("date", f"{day.strftime('%B %Y')} is locked by finance; nothing dated in it can change.")
    return day


def _hours(errors: _Errors, value: Any, *, adjustment: bool = False) -> Decimal | None:
    try:
        hours = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        errors.add("hours", "Enter the hours as a number, e.g. 1.5.")
        return None
    if not hours.is_finite():
        errors.add("hours", "Enter the hours as a number, e.g. 1.5.")
        return None
    if hours % QUARTER != 0:
        errors.add("hours", "Log hours in quarter-hour steps (0.25, 0.5, 0.75 …).")
    elif adjustment and hours == 0:
        errors.add("hours", "An adjustment of 0 hours changes nothing.")
    elif not adjustment and hours <= 0:
        errors.add("hours", "Hours must be more than 0.")
    elif abs(hours) > MAX_HOURS_PER_DAY:
        errors.add("hours", "A day has 24 hours.")
    return hours


def _check_day_total(errors: _Errors, *, person, day: dt.date, hours: Decimal, exclude_pk: int | None) -> None:
    """No more than 24 h per person per day across all their entries, this one included."""
    others = TimeEntry.objects.filter(person=person, date=day)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    logged = others.aggregate(total=models.Sum("hours"))["total"] or Decimal(0)
    if logged + hours > MAX_HOURS_PER_DAY:
        errors.add(
            "hours",
            f"You already logged {logged.normalize():f} h on {day.isoformat()}; with these "
            f"{hours.normalize():f} h the day would exceed 24 h.",
        )


def _check_rate(errors: _Errors, *, project: Project, labour_category: str, day: dt.date | None) -> None:
    if day is None:
        return
    try:
        selectors.rate_on(project=project, labour_category=labour_category, day=day)
    except (RateMissing, ContractNotInForce) as exc:
        errors.add("labour_category", f"Billable time needs a rate: {exc.message}")


# --- time entries -------------------------------------------------------------------------------------


def _validate_time(
    *, entry: TimeEntry, errors: _Errors, hours_value: Any, check_lock: bool = True, adjustment: bool = False
) -> None:
    day = _check_day(errors, project=entry.project, day=entry.date, check_lock=check_lock)
    hours = _hours(errors, hours_value, adjustment=adjustment)
    entry.labour_category = (entry.labour_category or "").strip()
    if not entry.labour_category:
        errors.add("labour_category", "Choose the labour category.")
    if not (entry.description or "").strip():
        errors.add("description", "Describe the work: the description appears on the invoice.")
    if hours is not None and day is not None and "hours" not in errors.errors:
        entry.hours = hours
        _check_day_total(errors, person=entry.person, day=day, hours=hours, exclude_pk=entry.pk)
    if entry.billable and entry.labour_category:
        _check_rate(errors, project=entry.project, labour_category=entry.labour_category, day=day)


@transaction.atomic
def time_entry_create(
    *,
    actor,
    project: Project,
    date: dt.date,
    hours: Decimal | str,
    description: str,
    labour_category: str = "",
    billable: bool = True,
    external_system: str = "",
    external_id: str = "",
) -> TimeEntry:
    """Log time as a draft of ``actor`` (people only ever log their own time)."""
    _require_logger(actor, TimeEntry)
    project = Project.objects.get(pk=project.pk)  # its status now, not the caller's copy
    _require_member(actor, project)
    person_for_update(pk=actor.pk)
    if not labour_category:
        member = ProjectMember.objects.filter(project=project, user=actor).first()
        labour_category = member.labour_category if member else ""
    entry = TimeEntry(
        person=actor,
        project=project,
        date=date,
        labour_category=labour_category,
        description=(description or "").strip(),
        billable=bool(billable),
        external_system=external_system,
        external_id=external_id,
    )
    errors = _Errors()
    _validate_time(entry=entry, errors=errors, hours_value=hours)
    if external_id and TimeEntry.objects.filter(external_system=external_system, external_id=external_id).exists():
        errors.add("external_id", f"Entry {external_id} of {external_system or 'that system'} is already imported.")
    errors.raise_if_any("The time cannot be logged.")
    stamp(entry, actor=actor, reason="Time logged").save()
    return entry


_TIME_FIELDS = ("date", "hours", "labour_category", "description", "billable")


@transaction.atomic
def time_entry_update(*, actor, entry: TimeEntry, data: Mapping[str, Any]) -> TimeEntry:
    """Change a draft or rejected entry of one's own (``data``: any of date, hours, labour_category,
    description, billable). The old date must not be locked either: nothing leaves a locked month."""
    _require_logger(actor, TimeEntry)
    person_for_update(pk=actor.pk)
    (entry,) = entries_for_update(TimeEntry, pks=[entry.pk])
    _require_own_editable(actor, entry)
    unknown = set(data) - set(_TIME_FIELDS)
    if unknown:
        raise ValidationFailed(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    errors = _Errors()
    if period_is_locked(entry.date) and entry.adjusts_id is None:  # an adjustment is a new fact: not locked
        errors.add("date", f"{entry.date.strftime('%B %Y')} is locked by finance; nothing dated in it can change.")
    for field in ("date", "labour_category", "description", "billable"):
        if field in data:
            setattr(entry, field, data[field])
    _validate_time(
        entry=entry,
        errors=errors,
        hours_value=data.get("hours", entry.hours),
        adjustment=entry.adjusts_id is not None,
        check_lock=entry.adjusts_id is None,
    )
    errors.raise_if_any("The time entry cannot be changed.")
    stamp(entry, actor=actor, reason="Time entry changed").save(
        update_fields=[*_TIME_FIELDS, "updated_at"],
    )
    return entry


@transaction.atomic
def time_entry_delete(*, actor, entry: TimeEntry) -> None:
    _require_logger(actor, TimeEntry)
    (entry,) = entries_for_update(TimeEntry, pks=[entry.pk])
    _require_own_editable(actor, entry)
    if period_is_locked(entry.date) and entry.adjusts_id is None:
        raise Conflict(f"{entry.date.strftime('%B %Y')} is locked by finance; nothing dated in it can change.")
    stamp(entry, actor=actor, reason="Time entry deleted").delete()


@transaction.atomic
def time_entry_adjust(*, actor, original: TimeEntry, hours: Decimal | str, description: str) -> TimeEntry:
    """A draft correction (positive or negative hours) of an approved or billed entry of one's own.

    The original never changes. The adjustment carries the original's date, project and labour category, so
    billing prices it with the rate in force on the day the work was done; it is exempt from the month lock
    (it is a new fact, not a change of the locked month) and flows into the next invoice or a credit note.
    """
    _require_logger(actor, TimeEntry)
    person_for_update(pk=actor.pk)
    original = TimeEntry.objects.select_related("project").get(pk=original.pk)
    if original.person_id != actor.pk:
        raise NotPermitted("Only the person who logged the time may adjust it.")
    if original.adjusts_id is not None:
        raise ValidationFailed("Adjust the original entry, not an adjustment.", field="original")
    if original.status not in (EntryStatus.APPROVED, EntryStatus.BILLED):
        raise TransitionNotAllowed(
            f"This entry is {original.get_status_display().lower()}; change it directly. Only approved or billed "
            "time is corrected with an adjustment.",
            field="original",
        )
    errors = _Errors()
    entry = TimeEntry(
        person=actor,
        project=original.project,
        date=original.date,
        labour_category=original.labour_category,
        description=(description or "").strip(),
        billable=original.billable,
        adjusts=original,
    )
    value = _hours(errors, hours, adjustment=True)
    if value is not None and "hours" not in errors.errors:
        corrected = original.hours + (original.adjustments.aggregate(s=models.Sum("hours"))["s"] or 0) + value
        if corrected < 0:
            errors.add("hours", f"That would leave {corrected.normalize():f} h of the original; it cannot go below 0.")
        entry.hours = value
        _check_day_total(errors, person=actor, day=original.date, hours=value, exclude_pk=None)
    if not entry.description:
        errors.add("description", "Say why the time is corrected: the description appears on the invoice.")
    errors.raise_if_any("The adjustment cannot be made.")
    stamp(entry, actor=actor, reason=f"Adjustment of the entry of {original.date.isoformat()}").save()
    return entry


# --- expenses -----------------------------------------------------------------------------------------


def _receipt(errors: _Errors, expense: Expense, upload) -> None:
    problem = file_problem(upload, types=RECEIPT_TYPES, max_bytes=RECEIPT_MAX_BYTES, noun="receipt")
    if problem:
        errors.add("receipt", problem)
        return
    expense.receipt = upload
    expense.receipt_filename = PurePosixPath(getattr(upload, "name", "") or "").name[:200]


def _validate_expense(*, expense: Expense, errors: _Errors) -> None:
    _check_day(errors, project=expense.project, day=expense.date)
    if expense.category not in Expense.Category.values:
        errors.add("category", "Choose the category: travel, accommodation, meals, software or other.")
    try:
        amount = Decimal(str(expense.amount).strip())
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        errors.add("amount", "Enter the amount as a number, e.g. 12.50.")
    else:
        if amount <= 0:
            errors.add("amount", "The amount must be more than 0.")
        elif amount != amount.quantize(Decimal("0.01")):
            errors.add("amount", "Enter the amount in cents at most (2 decimals).")
        expense.amount = amount
    if expense.currency not in CURRENCY_CODES:
        errors.add("currency", "Choose a currency.")
    elif expense.currency != expense.project.currency:
        # Conversion comes with multi-currency billing; until then the project's currency keeps budgets exact.
        errors.add("currency", f"{expense.project.number} is billed in {expense.project.currency}; enter it in that.")
    if not (expense.description or "").strip():
        errors.add("description", "Describe the expense: the description appears on the invoice.")


def _expense_markup(project: Project) -> Decimal:
    """The markup % of the project's expenses billing rule now (0 without one); frozen on the expense."""
    markup = (
        BillingRule.objects.filter(project=project, model="expenses").values_list("markup_percent", flat=True).first()
    )
    return markup if markup is not None else Decimal(0)


@transaction.atomic
def expense_create(
    *,
    actor,
    project: Project,
    date: dt.date,
    category: str,
    amount: Decimal | str,
    currency: str = "",
    description: str,
    billable: bool = True,
    receipt=None,
) -> Expense:
    """Log an expense as a draft of ``actor``; the markup is frozen from the project's expenses rule now."""
    _require_logger(actor, Expense)
    project = Project.objects.get(pk=project.pk)  # its status now, not the caller's copy
    _require_member(actor, project)
    expense = Expense(
        person=actor,
        project=project,
        date=date,
        category=category,
        amount=amount,
        currency=currency or project.currency,
        description=(description or "").strip(),
        billable=bool(billable),
        markup_percent=_expense_markup(project) if billable else Decimal(0),
    )
    errors = _Errors()
    _validate_expense(expense=expense, errors=errors)
    if receipt is not None:
        _receipt(errors, expense, receipt)
    errors.raise_if_any("The expense cannot be logged.")
    stamp(expense, actor=actor, reason="Expense logged").save()
    return expense


_EXPENSE_FIELDS = ("date", "category", "amount", "currency", "description", "billable")


@transaction.atomic
def expense_update(*, actor, expense: Expense, data: Mapping[str, Any]) -> Expense:
    """Change a draft or rejected expense of one's own (``data``: the fields above and ``receipt``)."""
    _require_logger(actor, Expense)
    (expense,) = entries_for_update(Expense, pks=[expense.pk])
    _require_own_editable(actor, expense)
    unknown = set(data) - {*_EXPENSE_FIELDS, "receipt"}
    if unknown:
        raise ValidationFailed(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    errors = _Errors()
    if period_is_locked(expense.date):
        errors.add("date", f"{expense.date.strftime('%B %Y')} is locked by finance; nothing dated in it can change.")
    was_billable = expense.billable
    for field in _EXPENSE_FIELDS:
        if field in data:
            setattr(expense, field, data[field])
    expense.billable = bool(expense.billable)
    if expense.billable != was_billable:  # the markup follows: the project's rule when billable, else none
        expense.markup_percent = _expense_markup(expense.project) if expense.billable else Decimal(0)
    _validate_expense(expense=expense, errors=errors)
    if data.get("receipt") is not None:
        _receipt(errors, expense, data["receipt"])
    errors.raise_if_any("The expense cannot be changed.")
    stamp(expense, actor=actor, reason="Expense changed").save()
    return expense


@transaction.atomic
def expense_delete(*, actor, expense: Expense) -> None:
    _require_logger(actor, Expense)
    (expense,) = entries_for_update(Expense, pks=[expense.pk])
    _require_own_editable(actor, expense)
    if period_is_locked(expense.date):
        raise Conflict(f"{expense.date.strftime('%B %Y')} is locked by finance; nothing dated in it can change.")
    stamp(expense, actor=actor, reason="Expense deleted").delete()


# --- bulk transitions ---------------------------------------------------------------------------------


def _bulk_set(model, rows: list, *, actor, reason: str, values: dict[str, Any]) -> None:
    """One UPDATE for ``rows`` (already locked), then one INSERT of their history and one of audit entries."""
    if not rows:
        return
    now = values.setdefault("updated_at", timezone.now())
    model.objects.filter(pk__in=[row.pk for row in rows]).update(**values)
    for row in rows:
        for field, value in values.items():
            setattr(row, field, value)
        row._history_date = now
    history = model.history.bulk_history_create(
        rows, update=True, default_user=actor if getattr(actor, "pk", None) else None, default_change_reason=reason
    )
    audit_entries_append_bulk(history_instances=history, changed=[f for f in values if f != "updated_at"])


def _split(entries: Iterable[Entry]) -> dict[type, list[int]]:
    split: dict[type, list[int]] = {TimeEntry: [], Expense: []}
    for entry in entries:
        split[type(entry)].append(entry.pk)
    return split


def _locked_rows(entries: Iterable[Entry]) -> dict[type, list]:
    """Lock the projects (in key order), then the entries of each model in key order."""
    split = _split(entries)
    project_ids = set()
    for model, pks in split.items():
        project_ids |= set(model.objects.filter(pk__in=pks).values_list("project_id", flat=True))
    list(Project.objects.filter(pk__in=project_ids).order_by("pk").select_for_update(of=("self",)))
    return {model: entries_for_update(model, pks=pks) for model, pks in split.items()}


def _week(week_start: dt.date) -> tuple[dt.date, dt.date]:
    if not isinstance(week_start, dt.date) or week_start.isoweekday() != 1:
        raise ValidationFailed("A timesheet week starts on a Monday.", field="week_start")
    return week_start, week_start + dt.timedelta(days=6)


@transaction.atomic
def timesheet_submit(*, actor, week_start: dt.date) -> int:
    """Submit all of ``actor``'s draft and rejected time and expenses of the ISO week; returns how many."""
    _require_logger(actor, TimeEntry)
    first, last = _week(week_start)
    wanted = []
    for model in (TimeEntry, Expense):
        wanted += list(
            model.objects.filter(person=actor, date__range=(first, last), status__in=EDITABLE_STATUSES).only(
                "pk", "project_id"
            )
        )
    rows = _locked_rows(wanted)
    locked_months = set(
        LockedPeriod.objects.filter(month__in={first.replace(day=1), last.replace(day=1)}).values_list(
            "month", flat=True
        )
    )
    now = timezone.now()
    count = 0
    for model, items in rows.items():
        items = [row for row in items if row.person_id == actor.pk and row.status in EDITABLE_STATUSES]
        blocked = [  # adjustments carry their original's date but are new facts: the lock does not hold them
            row
            for row in items
            if row.date.replace(day=1) in locked_months and getattr(row, "adjusts_id", None) is None
        ]
        if blocked:
            raise Conflict(
                f"{blocked[0].date.strftime('%B %Y')} is locked by finance; entries dated in it cannot be submitted.",
                field="week_start",
            )
        _bulk_set(
            model,
            items,
            actor=actor,
            reason="Timesheet submitted",
            values={"status": EntryStatus.SUBMITTED, "submitted_at": now},
        )
        count += len(items)
    return count


def _decision_refusal(actor, project: Project) -> str | None:
    if not actor.has_perm("projects.approve_timeentry"):
        return "Your role cannot approve or reject time and expenses."
    if selectors.is_admin(actor):
        return None
    if has_role(actor, Role.PROJECT_MANAGER) and project.project_manager_id == actor.pk:
        return None
    return f"Only the project manager of {project.number} approves or rejects its time and expenses."


def _decide(*, actor, entries: Sequence[Entry], status: str, reason: str = "") -> int:
    require_writer(actor)
    rows = _locked_rows(entries)
    projects = {p.pk: p for p in Project.objects.filter(pk__in={r.project_id for rs in rows.values() for r in rs})}
    for project in projects.values():
        refusal = _decision_refusal(actor, project)
        if refusal:
            raise NotPermitted(refusal)
    for items in rows.values():
        for row in items:
            if row.status != EntryStatus.SUBMITTED:
                raise TransitionNotAllowed(
                    f"The entry of {row.date.isoformat()} is {row.get_status_display().lower()}; only submitted "
                    "entries are approved or rejected.",
                    field="entries",
                )
    now = timezone.now()
    values = {"status": status, "decided_by": actor, "decided_at": now, "rejection_reason": reason}
    verb = "approved" if status == EntryStatus.APPROVED else f"rejected: {reason}"
    for model, items in rows.items():
        _bulk_set(model, items, actor=actor, reason=f"Entry {verb}"[:100], values=dict(values))
    if status == EntryStatus.APPROVED:
        for project in projects.values():
            project_services.budget_alerts_evaluate(
                project=project, actual_amount=selectors.project_actual_amount(project)
            )
    else:
        people = {row.person_id for items in rows.values() for row in items}
        for person in get_user_model().objects.filter(pk__in=people).order_by("pk"):
            notify(users=[person], title="Time or expenses returned to you", body=f"{actor}: {reason}")
    return sum(len(items) for items in rows.values())


@transaction.atomic
def time_entries_approve(*, actor, entries: Sequence[Entry]) -> int:
    """Approve submitted time entries and expenses (mixed) of the actor's projects; returns how many.
    Budget alerts are evaluated once per touched project with its new actuals."""
    return _decide(actor=actor, entries=entries, status=EntryStatus.APPROVED)


@transaction.atomic
def time_entries_reject(*, actor, entries: Sequence[Entry], reason: str) -> int:
    """Send submitted entries back to their people with ``reason`` (required); they edit and resubmit."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason for the rejection: the person sees it.", field="reason")
    return _decide(actor=actor, entries=entries, status=EntryStatus.REJECTED, reason=reason)


@transaction.atomic
def time_entries_mark_billed(*, entries: Sequence[Entry], invoice_ref: str, actor=None) -> int:
    """Approved → billed: the one path billing uses (it never writes projects' rows itself)."""
    invoice_ref = (invoice_ref or "").strip()
    if not invoice_ref:
        raise ValidationFailed("Name the invoice that billed the entries.", field="invoice_ref")
    rows = _locked_rows(entries)
    for items in rows.values():
        for row in items:
            if not row.can_transition_to(EntryStatus.BILLED):
                raise TransitionNotAllowed(
                    f"The entry of {row.date.isoformat()} is {row.get_status_display().lower()}; only approved "
                    "entries are billed (nothing is billed twice).",
                    field="entries",
                )
    now = timezone.now()
    for model, items in rows.items():
        _bulk_set(
            model,
            items,
            actor=actor,
            reason=f"Billed on {invoice_ref}"[:100],
            values={"status": EntryStatus.BILLED, "invoice_ref": invoice_ref, "billed_at": now},
        )
    return sum(len(items) for items in rows.values())


@transaction.atomic
def time_entries_release_billed(*, entries: Sequence[Entry], invoice_ref: str, credit_ref: str, actor=None) -> int:
    """Billed → approved, the invoice reference and billed time cleared: the one path back, taken when a credit
    note of ``invoice_ref`` (``credit_ref``) gives the entries back to billing, so that the next invoice run
    bills them again. Time entries and expenses (mixed), like ``time_entries_mark_billed``; returns how many.

    Outside ``ENTRY_TRANSITIONS`` on purpose (billed is final for everything else): only billing calls it, for
    entries billed on the invoice it credits, and the history record names the credit note. Every entry must be
    billed on ``invoice_ref``, or nothing is released. The content of an entry never changes (the PostgreSQL
    trigger of ``0009_release_billed`` refuses anything else)."""
    invoice_ref, credit_ref = (invoice_ref or "").strip(), (credit_ref or "").strip()
    if not invoice_ref:
        raise ValidationFailed("Name the invoice that billed the entries.", field="invoice_ref")
    if not credit_ref:
        raise ValidationFailed("Name the credit note that releases the entries.", field="credit_ref")
    rows = _locked_rows(entries)
    for items in rows.values():
        for row in items:
            if row.status != EntryStatus.BILLED or row.invoice_ref != invoice_ref:
                where = f"billed on {row.invoice_ref}" if row.status == EntryStatus.BILLED else "not billed"
                raise TransitionNotAllowed(
                    f"The entry of {row.date.isoformat()} is {where}; only entries billed on {invoice_ref} are "
                    f"released by {credit_ref}.",
                    field="entries",
                )
    for model, items in rows.items():
        _bulk_set(
            model,
            items,
            actor=actor,
            reason=f"Released by {credit_ref} of {invoice_ref} for rebilling"[:100],
            values={"status": EntryStatus.APPROVED, "invoice_ref": "", "billed_at": None},
        )
    return sum(len(items) for items in rows.values())


# --- locked periods -----------------------------------------------------------------------------------


@transaction.atomic
def period_lock(*, actor, month: dt.date) -> LockedPeriod:
    """Finance closes a month: nothing dated in it is logged, changed or submitted from now on."""
    require_writer(actor)
    if not actor.has_perm("projects.add_lockedperiod") or not (
        selectors.is_admin(actor) or has_role(actor, Role.FINANCE)
    ):
        raise NotPermitted("Only finance locks periods.")
    if not isinstance(month, dt.date):
        raise ValidationFailed("Choose the month.", field="month")
    first = month.replace(day=1)
    if LockedPeriod.objects.filter(month=first).exists():
        raise Conflict(f"{first.strftime('%B %Y')} is already locked.", field="month")
    return LockedPeriod.objects.create(month=first, locked_by=actor, locked_at=timezone.now())


# --- timesheet rows (the weekly grid) -------------------------------------------------------------------


@transaction.atomic
def timesheet_row_update(
    *,
    actor,
    week_start: dt.date,
    project: Project,
    labour_category: str,
    description: str,
    billable: bool,
) -> int:
    """Give every editable (draft or rejected) entry of one grid row — ``actor``'s time on ``project`` in
    ``labour_category`` during the ISO week of ``week_start`` — the row's client-facing description and
    billable flag; returns how many changed. All or nothing: each entry goes through ``time_entry_update``
    (its rules, history and audit), and the first refusal, named with its day, undoes the others. Submitted,
    approved and billed entries keep theirs; adjustments are not rows of the grid and are left alone."""
    _require_logger(actor, TimeEntry)
    first, last = _week(week_start)
    entries = list(
        TimeEntry.objects.filter(
            person=actor,
            project=project,
            labour_category=labour_category,
            date__range=(first, last),
            adjusts__isnull=True,
            status__in=EDITABLE_STATUSES,
        ).order_by("date", "pk")
    )
    data = {"description": (description or "").strip(), "billable": bool(billable)}
    changed = 0
    for entry in entries:
        if (entry.description, entry.billable) == (data["description"], data["billable"]):
            continue
        try:
            time_entry_update(actor=actor, entry=entry, data=data)
        except ValidationFailed as exc:
            day = entry.date.strftime("%a %d %b")
            raise ValidationFailed(f"{day}: {exc.message}", field=exc.field, errors=exc.errors) from exc
        changed += 1
    return changed
