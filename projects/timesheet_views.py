"""Pages of time capture and approval: a person's weekly timesheet grid, and the approval queue of project
managers (admins decide everything; auditors look, read-only).

The grid saves cell by cell with htmx: a cell POSTs its hours and the view creates, updates or deletes the
one draft or rejected entry of that (project, labour category, day) through the services, then answers with
the cell and, out of band, the totals. A refusal of a service comes back as the cell with its message
(HTTP 422, swapped in by htmx; see the page's ``htmx-config``), never as a 500.

Rows without an entry yet (added by hand or copied from last week) are kept in the person's session, per
week, until their first cell is saved; after that the entries themselves carry the row. Nothing about a row
is business data until it has hours, so no model holds it. Signing out forgets the empty rows, never hours.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from backbone.errors import DomainError
from backbone.views import Guarded

from . import selectors as s
from . import timesheet_selectors as tss
from . import timesheets
from .models import Project, TimeEntry

SESSION_KEY = "timesheet_rows"
SESSION_WEEKS = 26  # weeks of empty rows a session keeps (the oldest are dropped first)
SESSION_ROWS = 60  # rows per week at most
INVALID = 422  # a service refused the input: htmx swaps these in (the page's htmx-config)


# --- parsing ------------------------------------------------------------------------------------------------


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def _week(request: HttpRequest, value: Any) -> dt.date:
    """The Monday of the week asked for (any day of it); this week when none or a bad one is given."""
    day = _date(value)
    if value and day is None:
        messages.warning(request, f"'{value}' is not a date (YYYY-MM-DD); showing this week instead.")
    return tss.week_start_of(day or timezone.localdate())


def _hours(value: str) -> str:
    """Hours as typed, made friendly: "7,5" → "7.5", "7:30" → "7.5"; the service judges the result."""
    text = (value or "").strip().replace(",", ".").removesuffix("h").strip()
    match = re.fullmatch(r"(\d{1,2}):([0-5]\d)", text)
    if match:
        return f"{(Decimal(match[1]) + Decimal(match[2]) / 60).normalize():f}"
    return text


def _is_zero(text: str) -> bool:
    try:
        return Decimal(text) == 0
    except InvalidOperation:
        return False


def _flag(request: HttpRequest, name: str = "billable") -> bool:
    """A checkbox sent after its hidden "0" twin: the last value wins (absent → true, a new row's default)."""
    values = request.POST.getlist(name)
    return (values[-1] if values else "1") in ("1", "on", "true")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _actor(request: HttpRequest):
    """The signed-in user itself rather than the request's lazy wrapper: ``timesheets._decide`` looks people
    up through ``type(actor).objects``, which ``SimpleLazyObject`` does not have."""
    user = request.user
    user.pk  # noqa: B018 -- evaluates the lazy object
    return getattr(user, "_wrapped", user)


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _grid_url(monday: dt.date, anchor: str = "") -> str:
    url = f"{reverse('projects:timesheet')}?week={monday.isoformat()}"
    return f"{url}#{anchor}" if anchor else url


def _error_messages(exc: DomainError) -> list[str]:
    """The specific messages of a refusal (the service's summary only when it has none)."""
    found = [message for items in (exc.errors or {}).values() for message in items]
    return found or [exc.message]


# --- rows kept in the session -------------------------------------------------------------------------------


def _session_rows(request: HttpRequest, monday: dt.date) -> list[tss.RowSpec]:
    rows = request.session.get(SESSION_KEY, {}).get(monday.isoformat(), [])
    specs = []
    for item in rows if isinstance(rows, list) else []:
        try:
            specs.append(tss.RowSpec(int(item["p"]), str(item["c"]), str(item.get("d", "")), bool(item.get("b", True))))
        except (KeyError, TypeError, ValueError):
            continue
    return specs


def _session_rows_save(request: HttpRequest, monday: dt.date, specs: list[tss.RowSpec]) -> None:
    stored = dict(request.session.get(SESSION_KEY, {}))
    if specs:
        stored[monday.isoformat()] = [
            {"p": spec.project_id, "c": spec.labour_category, "d": spec.description, "b": spec.billable}
            for spec in specs[-SESSION_ROWS:]
        ]
    else:
        stored.pop(monday.isoformat(), None)
    for week in sorted(stored)[:-SESSION_WEEKS]:
        del stored[week]
    request.session[SESSION_KEY] = stored


def _remember_row(request: HttpRequest, monday: dt.date, spec: tss.RowSpec) -> None:
    specs = [
        s_
        for s_ in _session_rows(request, monday)
        if (s_.project_id, s_.labour_category) != (spec.project_id, spec.labour_category)
    ]
    _session_rows_save(request, monday, [*specs, spec])


def _forget_row(request: HttpRequest, monday: dt.date, project_id: int, category: str) -> None:
    specs = [
        spec
        for spec in _session_rows(request, monday)
        if (spec.project_id, spec.labour_category) != (project_id, category)
    ]
    _session_rows_save(request, monday, specs)


# --- the grid -----------------------------------------------------------------------------------------------


class TimesheetAccess(Guarded):
    """People who log time (sales, project managers, consultants; admins hold every permission)."""

    permission_required = ("projects.add_timeentry",)
    writes = True


def _week_data(request: HttpRequest, monday: dt.date) -> tss.TimesheetWeek:
    return tss.timesheet_week(person=request.user, week_start=monday, extra_rows=_session_rows(request, monday))


def _grid_context(request: HttpRequest, week: tss.TimesheetWeek) -> dict[str, Any]:
    today = timezone.localdate()
    returned = tss.returned_to(request.user)
    return {
        "week": week,
        "today": today,
        "this_monday": tss.week_start_of(today),
        "returned": returned,
        "returned_time": [
            {
                "entry": entry,
                "hours": tss.hours_text(entry.hours),
                "url": _grid_url(tss.week_start_of(entry.date), tss.row_key(entry.project_id, entry.labour_category)),
                "this_week": tss.week_start_of(entry.date) == week.monday,
            }
            for entry in returned.time_entries
        ],
    }


class TimesheetView(TimesheetAccess):
    def get(self, request):
        monday = _week(request, request.GET.get("week"))
        return render(request, "projects/timesheet.html", _grid_context(request, _week_data(request, monday)))


def _row_project(request: HttpRequest) -> Project:
    """The project a grid request names (its public ID), among those the person sees; else 404."""
    public_id = _uuid(request.POST.get("project"))
    project = s.projects_visible_to(request.user).filter(public_id=public_id).first() if public_id else None
    if project is None:
        raise Http404("No such project.")
    return project


def _render_cell(
    request: HttpRequest,
    week: tss.TimesheetWeek,
    *,
    project: Project,
    category: str,
    day: dt.date,
    errors: list[str] | None = None,
    typed: str = "",
    status: int = 200,
) -> HttpResponse:
    row = week.row(project.pk, category)
    if row is None:  # the project left the person's reach (closed, or they left the team) with no entry
        text = " ".join(errors or []) or f"{project.number} takes no time from you in this week."
        return HttpResponse(text, status=409, content_type="text/plain; charset=utf-8")
    context = {
        "week": week,
        "row": row,
        "cell": row.cells[(day - week.monday).days],
        "cell_errors": errors or [],
        "typed": typed,
        "today": timezone.localdate(),
        "oob": True,
    }
    return render(request, "projects/partials/timesheet_cell_response.html", context, status=status)


class TimesheetCellView(TimesheetAccess):
    """POST ``project``, ``category``, ``day``, ``hours`` (and the row's ``description`` and ``billable``):
    create the day's draft, change its hours, or delete it when the cell is emptied or 0."""

    http_method_names = ["post"]

    def post(self, request):
        project = _row_project(request)
        category = (request.POST.get("category") or "").strip()
        day = _date(request.POST.get("day"))
        if day is None or not category:
            return HttpResponse("Name the day (YYYY-MM-DD) and the labour category.", status=400)
        monday = tss.week_start_of(day)
        typed = (request.POST.get("hours") or "").strip()
        hours = _hours(typed)
        description = (request.POST.get("description") or "").strip()
        billable = _flag(request)
        _remember_row(request, monday, tss.RowSpec(project.pk, category, description, billable))
        errors: list[str] = []
        done = ""
        try:
            done = self._save(request, project=project, category=category, day=day, hours=hours, desc=description)
        except DomainError as exc:
            errors = _error_messages(exc)
        week = _week_data(request, monday)
        if not _is_htmx(request):
            for message in errors:
                messages.error(request, message)
            if done:
                messages.success(request, done)
            return redirect(_grid_url(monday, tss.row_key(project.pk, category)))
        return _render_cell(
            request,
            week,
            project=project,
            category=category,
            day=day,
            errors=errors,
            typed=typed if errors else "",
            status=INVALID if errors else 200,
        )

    def _save(self, request, *, project, category, day, hours, desc) -> str:
        user = request.user
        entries = list(
            TimeEntry.objects.filter(
                person=user, project=project, labour_category=category, date=day, adjusts__isnull=True
            ).order_by("pk")
        )
        if len(entries) > 1:
            raise DomainError(
                f"{day.isoformat()} has {len(entries)} entries in this row (imported or logged elsewhere); the grid "
                "edits a day with one entry."
            )
        entry = entries[0] if entries else None
        label = f"{day.strftime('%a %d %b')}, {project.number} {category}"
        if not hours or _is_zero(hours):
            if entry is None:
                return ""
            timesheets.time_entry_delete(actor=user, entry=entry)
            return f"The hours of {label} were removed."
        if entry is None:
            timesheets.time_entry_create(
                actor=user,
                project=project,
                date=day,
                hours=hours,
                description=desc,
                labour_category=category,
                billable=_flag(request),
            )
            return f"{hours} h saved on {label}."
        try:
            unchanged = Decimal(hours) == entry.hours
        except InvalidOperation:
            unchanged = False
        if not unchanged:
            timesheets.time_entry_update(actor=user, entry=entry, data={"hours": hours})
        return f"{hours} h saved on {label}."


class TimesheetRowView(TimesheetAccess):
    """POST a row's ``description`` and ``billable``: its editable entries of the week take them (through
    ``timesheets.timesheet_row_update``); a row without entries keeps them for its first cell."""

    http_method_names = ["post"]

    def post(self, request):
        project = _row_project(request)
        category = (request.POST.get("category") or "").strip()
        monday = _week(request, request.POST.get("week"))
        description = (request.POST.get("description") or "").strip()
        billable = _flag(request)
        errors: dict[str, list[str]] = {}
        saved = ""
        try:
            changed = timesheets.timesheet_row_update(
                actor=request.user,
                week_start=monday,
                project=project,
                labour_category=category,
                description=description,
                billable=billable,
            )
        except DomainError as exc:
            fields = set(exc.errors or {})
            key = "description" if "description" in fields else "billable" if "labour_category" in fields else "row"
            errors = {key: [exc.message]}
        else:
            _remember_row(request, monday, tss.RowSpec(project.pk, category, description, billable))
            saved = f"Saved to {changed} entr{'y' if changed == 1 else 'ies'}." if changed else "Saved."
        if not _is_htmx(request):
            for items in errors.values():
                for message in items:
                    messages.error(request, message)
            if saved:
                messages.success(request, f"{project.number} {category}: {saved}")
            return redirect(_grid_url(monday, tss.row_key(project.pk, category)))
        week = _week_data(request, monday)
        row = week.row(project.pk, category)
        if row is None:
            return HttpResponse(f"{project.number} takes no time from you in this week.", status=409)
        if errors:  # show what was typed, not what is stored
            row.description, row.billable = description, billable
        context = {"week": week, "row": row, "row_errors": errors, "saved": saved}
        return render(request, "projects/partials/timesheet_work.html", context, status=INVALID if errors else 200)


class TimesheetRowAddView(TimesheetAccess):
    """POST ``week`` and ``row`` ("<project public ID>|<labour category>"): a new empty row in the grid."""

    http_method_names = ["post"]

    def post(self, request):
        monday = _week(request, request.POST.get("week"))
        project_id, _, category = (request.POST.get("row") or "").partition("|")
        week = _week_data(request, monday)
        public_id = _uuid(project_id)
        choice = next((item for item in week.loggable if item.project.public_id == public_id), None)
        if choice is None:
            messages.error(request, "Choose one of your projects open in this week, with a labour category.")
            return redirect(_grid_url(monday))
        if category not in choice.categories:
            messages.error(
                request,
                f"Choose a labour category of the rate card of {choice.project.number} in force this week "
                f"({', '.join(choice.categories) or 'it has none'}).",
            )
            return redirect(_grid_url(monday))
        key = tss.row_key(choice.project.pk, category)
        if week.row(choice.project.pk, category) is not None:
            messages.info(request, f"{choice.project.number} · {category} is already in the grid.")
            return redirect(_grid_url(monday, key))
        description = (request.POST.get("description") or "").strip()
        _remember_row(request, monday, tss.RowSpec(choice.project.pk, category, description, _flag(request)))
        messages.success(
            request, f"Row added: {choice.project.number} · {category}. Enter the hours; each cell saves itself."
        )
        return redirect(_grid_url(monday, key))


class TimesheetRowRemoveView(TimesheetAccess):
    """POST ``week``, ``project``, ``category``: take an empty row out of the grid (rows with hours stay)."""

    http_method_names = ["post"]

    def post(self, request):
        project = _row_project(request)
        category = (request.POST.get("category") or "").strip()
        monday = _week(request, request.POST.get("week"))
        row = _week_data(request, monday).row(project.pk, category)
        if row is not None and row.has_entries:
            messages.error(
                request, f"{project.number} · {category} has hours this week; empty its cells before removing it."
            )
        else:
            _forget_row(request, monday, project.pk, category)
            messages.success(request, f"{project.number} · {category} was removed from the grid.")
        return redirect(_grid_url(monday))


class TimesheetCopyView(TimesheetAccess):
    """POST ``week``: the rows of the week before (project, category, description, billable — no hours)
    join this week's grid; rows of projects the person can no longer log on are skipped."""

    http_method_names = ["post"]

    def post(self, request):
        monday = _week(request, request.POST.get("week"))
        week = _week_data(request, monday)
        previous = tss.timesheet_week(
            person=request.user,
            week_start=week.previous_monday,
            extra_rows=_session_rows(request, week.previous_monday),
        )
        open_here = {item.project.pk for item in week.loggable}
        copied = skipped = 0
        for row in previous.rows:
            if week.row(row.project.pk, row.labour_category) is not None:
                continue
            if row.project.pk not in open_here:
                skipped += 1
                continue
            _remember_row(
                request, monday, tss.RowSpec(row.project.pk, row.labour_category, row.description, row.billable)
            )
            copied += 1
        since = week.previous_monday.strftime("%-d %B")
        if copied:
            messages.success(
                request,
                f"Copied {copied} row{'s' if copied != 1 else ''} of the week of {since}; enter this week's hours.",
            )
        elif not previous.rows:
            messages.info(request, f"The week of {since} has no rows to copy.")
        else:
            messages.info(request, f"Every row of the week of {since} is already in this week's grid.")
        if skipped:
            messages.warning(
                request,
                f"{skipped} row{'s were' if skipped != 1 else ' was'} not copied: the project is closed, not "
                "running this week, or you are no longer on its team.",
            )
        return redirect(_grid_url(monday))


class TimesheetSubmitView(TimesheetAccess):
    """POST ``week``: submit the week's draft and rejected time and expenses for approval."""

    http_method_names = ["post"]

    def post(self, request):
        monday = _week(request, request.POST.get("week"))
        try:
            count = timesheets.timesheet_submit(actor=request.user, week_start=monday)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            since = monday.strftime("%-d %B %Y")
            if count:
                messages.success(
                    request,
                    f"The week of {since} was submitted: {count} entr{'y' if count == 1 else 'ies'} wait for "
                    "approval by the project manager.",
                )
            else:
                messages.info(request, f"Nothing to submit in the week of {since}: no draft or returned entries.")
        return redirect(_grid_url(monday))


# --- the approval queue -------------------------------------------------------------------------------------


class ApprovalAccess(Guarded):
    """Project managers and admins decide; auditors see the queue read-only; everybody else is refused."""

    def has_permission(self) -> bool:
        return super().has_permission() and tss.approval_scope(self.request.user)[0] is not None


def _queue_filters(request: HttpRequest, data) -> dict[str, Any]:
    """Person (pk), project (public ID) and week (any day) of the queue, each dropped when not valid."""
    person_pk = str(data.get("person") or "")
    person = get_user_model().objects.filter(pk=person_pk).first() if person_pk.isdigit() else None
    project_id = _uuid(data.get("project"))
    project = Project.objects.filter(public_id=project_id).first() if project_id else None
    week = _date(data.get("week"))
    if data.get("week") and week is None:
        messages.warning(request, f"'{data.get('week')}' is not a date (YYYY-MM-DD); the week filter was ignored.")
    return {"person": person, "project": project, "week": tss.week_start_of(week) if week else None}


def _queue_query(filters: dict[str, Any]) -> str:
    query = {
        "person": filters["person"].pk if filters["person"] else "",
        "project": filters["project"].public_id if filters["project"] else "",
        "week": filters["week"].isoformat() if filters["week"] else "",
    }
    return urlencode({key: value for key, value in query.items() if value})


def _queue_page(
    request: HttpRequest,
    filters: dict[str, Any],
    *,
    selected: set[str] | None = None,
    reason: str = "",
    reason_error: str = "",
    selection_error: str = "",
    status: int = 200,
) -> HttpResponse:
    queue = tss.approval_queue_page(user=request.user, **filters)
    context = {
        "queue": queue,
        "filters": filters,
        "is_filtered": any(filters.values()),
        "query": _queue_query(filters),
        "selected": selected or set(),
        "reason": reason,
        "reason_error": reason_error,
        "selection_error": selection_error,
    }
    return render(request, "projects/approval_queue.html", context, status=status)


class ApprovalQueueView(ApprovalAccess):
    def get(self, request):
        return _queue_page(request, _queue_filters(request, request.GET))


class ApprovalDecideView(ApprovalAccess):
    """POST ``action`` (approve or reject), the ticked ``time`` and ``expense`` public IDs and, to reject, a
    ``reason``. All or nothing: when any ticked entry is no longer waiting for this person, nothing changes."""

    permission_required = ("projects.approve_timeentry",)
    writes = True
    http_method_names = ["post"]

    def post(self, request):
        filters = _queue_filters(request, request.POST)
        action = request.POST.get("action")
        time_ids = request.POST.getlist("time")
        expense_ids = request.POST.getlist("expense")
        reason = (request.POST.get("reason") or "").strip()
        selected = set(time_ids) | set(expense_ids)

        def again(**kwargs) -> HttpResponse:
            return _queue_page(request, filters, selected=selected, reason=reason, status=400, **kwargs)

        if action not in ("approve", "reject"):
            return again(selection_error="Choose Approve or Reject.")
        if not selected:
            return again(selection_error="Tick at least one entry to approve or reject.")
        if any(_uuid(value) is None for value in selected):
            return again(selection_error="The selection is not valid; reload the page and tick the entries again.")
        if action == "reject" and not reason:
            return again(reason_error="Give a reason for the rejection: the person sees it and fixes the entries.")
        time, expenses = tss.approval_selection(user=request.user, time_ids=time_ids, expense_ids=expense_ids)
        missing = len(selected) - len(time) - len(expenses)
        if missing:
            return again(
                selection_error=(
                    f"{missing} of the ticked entries no longer wait for your decision (decided meanwhile, withdrawn "
                    "or not of your projects); nothing was changed. Check the list and try again."
                )
            )
        try:
            if action == "approve":
                count = timesheets.time_entries_approve(actor=_actor(request), entries=[*time, *expenses])
            else:
                count = timesheets.time_entries_reject(actor=_actor(request), entries=[*time, *expenses], reason=reason)
        except DomainError as exc:
            if action == "reject" and "reason" in (exc.errors or {}):
                return again(reason_error=exc.message)
            return again(selection_error=exc.message)
        hours = sum((entry.hours for entry in time), Decimal(0))
        what = f"{count} entr{'y' if count == 1 else 'ies'}"
        if time:
            what += f" ({hours.normalize():f} h"
            what += f", {len(expenses)} expense{'s' if len(expenses) != 1 else ''})" if expenses else ")"
        if action == "approve":
            messages.success(request, f"Approved {what}.")
        else:
            people = sorted({entry.person_id for entry in [*time, *expenses]})
            messages.success(
                request,
                f"Returned {what} to {len(people)} {'person' if len(people) == 1 else 'people'} with your reason.",
            )
        query = _queue_query(filters)
        return redirect(f"{reverse('projects:approval-queue')}{'?' + query if query else ''}")
