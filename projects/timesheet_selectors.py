"""Reads behind the timesheet pages: one person's week as a grid, the entries returned to them, and the
approval queue of a project manager (admins: everybody's; auditors: everybody's, read-only).

Every function here costs a fixed number of queries whatever the number of entries: the pages' tests assert
it. Week maths (an ISO week runs Monday to Sunday) lives in ``week_start_of``; nothing else normalises.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from backbone.roles import Role, has_role, is_read_only

from . import terms as contract_terms
from .models import (
    EDITABLE_STATUSES,
    ContractVersion,
    EntryStatus,
    Expense,
    LockedPeriod,
    Project,
    ProjectMember,
    TimeEntry,
)
from .selectors import is_admin

ZERO = Decimal(0)
LOCKED_STATUSES = frozenset({EntryStatus.APPROVED, EntryStatus.BILLED})


def hours_text(value: Decimal | None) -> str:
    """Hours without trailing zeros ("8", "7.5", "0.25"); empty for none."""
    if value is None:
        return ""
    return f"{value.normalize():f}" if value else "0"


def week_start_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week."""
    return day - dt.timedelta(days=day.isoweekday() - 1)


def week_days(monday: dt.date) -> list[dt.date]:
    return [monday + dt.timedelta(days=offset) for offset in range(7)]


def row_key(project_id: int, labour_category: str) -> str:
    """A stable HTML id for a grid row (labour categories are free text, so they are hashed)."""
    digest = hashlib.sha1(f"{project_id}|{labour_category}".encode(), usedforsecurity=False).hexdigest()[:10]
    return f"ts-{digest}"


def may_log_time(user) -> bool:
    return (
        bool(getattr(user, "is_authenticated", False))
        and not is_read_only(user)
        and user.has_perm("projects.add_timeentry")
    )


# --- the week grid ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowSpec:
    """A row a person added or copied that may have no entry yet (kept in their session by the page)."""

    project_id: int
    labour_category: str
    description: str = ""
    billable: bool = True


@dataclass
class Cell:
    day: dt.date
    index: int  # 0 = Monday
    key: str = ""  # the HTML id of the cell
    entries: list[TimeEntry] = field(default_factory=list)
    locked_month: bool = False

    @property
    def entry(self) -> TimeEntry | None:
        return self.entries[0] if len(self.entries) == 1 else None

    @property
    def hours(self) -> Decimal | None:
        return sum((e.hours for e in self.entries), ZERO) if self.entries else None

    @property
    def hours_text(self) -> str:
        return hours_text(self.hours)

    @property
    def status(self) -> str:
        """One status for the cell: the entry's; several entries show the least advanced one."""
        if not self.entries:
            return ""
        order = [EntryStatus.REJECTED, EntryStatus.DRAFT, EntryStatus.SUBMITTED, EntryStatus.APPROVED]
        statuses = {e.status for e in self.entries}
        return next((s for s in order if s in statuses), EntryStatus.BILLED)

    @property
    def editable(self) -> bool:
        """Typed into in the grid: empty or one draft/rejected entry, in an open month."""
        if self.locked_month or len(self.entries) > 1:
            return False
        return not self.entries or self.entries[0].status in EDITABLE_STATUSES

    @property
    def locked(self) -> bool:
        """Approved or billed: never changes again (a correction is an adjustment)."""
        return bool(self.entries) and all(e.status in LOCKED_STATUSES for e in self.entries)

    @property
    def rejection_reason(self) -> str:
        return next((e.rejection_reason for e in self.entries if e.status == EntryStatus.REJECTED), "")


@dataclass
class Row:
    key: str
    project: Project
    labour_category: str
    description: str
    billable: bool
    cells: list[Cell]
    pending: bool  # no entry yet: it lives in the person's session until a cell is saved
    mixed: bool = False  # the editable entries disagree on description or billable

    @property
    def total(self) -> Decimal:
        return sum((cell.hours or ZERO for cell in self.cells), ZERO)

    @property
    def total_text(self) -> str:
        return hours_text(self.total)

    @property
    def has_entries(self) -> bool:
        return any(cell.entries for cell in self.cells)

    @property
    def editable_count(self) -> int:
        return sum(1 for cell in self.cells for e in cell.entries if e.status in EDITABLE_STATUSES)

    @property
    def meta_editable(self) -> bool:
        """Description and billable can change while the row has an editable entry or an open day (its
        next entry takes them)."""
        return self.editable_count > 0 or any(cell.editable and not cell.entries for cell in self.cells)

    @property
    def has_fixed_entries(self) -> bool:
        """Entries that keep their description whatever the row says (submitted, approved, billed)."""
        return any(e.status not in EDITABLE_STATUSES for cell in self.cells for e in cell.entries)

    @property
    def closed(self) -> bool:
        return self.project.status == Project.Status.CLOSED

    @property
    def removable(self) -> bool:
        return not self.has_entries

    @property
    def rejections(self) -> list[dict[str, Any]]:
        """The reasons the row's rejected entries came back with, each with its days and who decided."""
        found: dict[str, dict[str, Any]] = {}
        for cell in self.cells:
            for entry in cell.entries:
                if entry.status == EntryStatus.REJECTED:
                    item = found.setdefault(
                        entry.rejection_reason, {"reason": entry.rejection_reason, "days": [], "by": entry.decided_by}
                    )
                    item["days"].append(cell.day)
        return list(found.values())


@dataclass
class LoggableProject:
    project: Project
    categories: list[str]
    default_category: str


@dataclass
class TimesheetWeek:
    person: Any
    monday: dt.date
    days: list[dt.date]
    rows: list[Row]
    locked_months: set[dt.date]
    loggable: list[LoggableProject]
    adjustments: list[TimeEntry]
    expenses: list[dict[str, Any]]  # per status: count and amounts per currency

    @property
    def previous_monday(self) -> dt.date:
        return self.monday - dt.timedelta(days=7)

    @property
    def next_monday(self) -> dt.date:
        return self.monday + dt.timedelta(days=7)

    @property
    def sunday(self) -> dt.date:
        return self.days[-1]

    @property
    def day_totals(self) -> list[Decimal]:
        return [sum((row.cells[i].hours or ZERO for row in self.rows), ZERO) for i in range(7)]

    @property
    def day_totals_text(self) -> list[str]:
        return [hours_text(total) for total in self.day_totals]

    @property
    def total(self) -> Decimal:
        return sum((row.total for row in self.rows), ZERO)

    @property
    def total_text(self) -> str:
        return hours_text(self.total)

    @property
    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for row in self.rows:
            for cell in row.cells:
                for entry in cell.entries:
                    counts[entry.status] += 1
        for entry in self.adjustments:
            counts[entry.status] += 1
        return dict(counts)

    @property
    def to_submit(self) -> int:
        """Draft and rejected time (adjustments included) and expenses the "Submit week" button sends."""
        counts = self.status_counts
        time = counts.get(EntryStatus.DRAFT, 0) + counts.get(EntryStatus.REJECTED, 0)
        return time + sum(item["count"] for item in self.expenses if item["status"] in EDITABLE_STATUSES)

    @property
    def rejected_count(self) -> int:
        return self.status_counts.get(EntryStatus.REJECTED, 0)

    def row(self, project_id: int, labour_category: str) -> Row | None:
        return next((r for r in self.rows if r.project.pk == project_id and r.labour_category == labour_category), None)

    def loggable_project(self, project_id: int) -> LoggableProject | None:
        return next((item for item in self.loggable if item.project.pk == project_id), None)


def loggable_projects(person, *, first: dt.date, last: dt.date) -> QuerySet[Project]:
    """Projects ``person`` may log time on between ``first`` and ``last``: they are on the team or manage it,
    the project is not closed and its planned dates meet the period. Annotated with the person's default
    labour category on it (``member_category``). One query."""
    if not may_log_time(person):
        return Project.objects.none()
    membership = ProjectMember.objects.filter(project=OuterRef("pk"), user=person)
    return (
        Project.objects.filter(Q(project_manager=person) | Q(pk__in=membership.values("project_id")))
        .exclude(status=Project.Status.CLOSED)
        .filter(planned_start__lte=last, planned_end__gte=first)
        .annotate(member_category=Subquery(membership.values("labour_category")[:1]))
        .select_related("customer")
        .order_by("number")
    )


def _categories_in_force(versions: Sequence[ContractVersion], days: Iterable[dt.date]) -> list[str]:
    """Labour categories with a rate on at least one of ``days`` (``rate_on`` semantics), else those of the
    newest version (so a person still sees what the project sells; the service explains a missing rate)."""
    ordered = sorted(versions, key=lambda v: (v.effective_from, v.number), reverse=True)
    found: dict[str, str] = {}
    for day in days:
        version = next((v for v in ordered if v.effective_from <= day), None)
        if version is None:
            continue
        for item in version.terms.get("rate_card", []):
            name = item["labour_category"]
            if name.lower() not in found and contract_terms.rate_in_terms(version.terms, labour_category=name, day=day):
                found[name.lower()] = name
    if not found and ordered:
        newest = max(ordered, key=lambda v: v.number)
        for item in newest.terms.get("rate_card", []):
            found.setdefault(item["labour_category"].lower(), item["labour_category"])
    return sorted(found.values(), key=str.lower)


def timesheet_week(*, person, week_start: dt.date, extra_rows: Sequence[RowSpec] = ()) -> TimesheetWeek:
    """The grid of ``person``'s ISO week (any day of it): a row per (project, labour category) of their
    entries, plus ``extra_rows`` the page keeps for rows without an entry yet; the projects they may add a
    row for, with the labour categories of the rate card in force that week; the week's adjustments and
    expenses. Five queries whatever the number of entries and rows (six when kept rows name projects the
    person can no longer log on)."""
    monday = week_start_of(week_start)
    days = week_days(monday)
    entries = list(
        TimeEntry.objects.filter(person=person, date__range=(days[0], days[-1]))
        .select_related("project", "project__customer", "decided_by")
        .order_by("date", "pk")
    )
    months = {days[0].replace(day=1), days[-1].replace(day=1)}
    locked_months = set(LockedPeriod.objects.filter(month__in=months).values_list("month", flat=True))
    loggable = list(loggable_projects(person, first=days[0], last=days[-1]))
    projects = {p.pk: p for p in loggable}
    for entry in entries:
        projects.setdefault(entry.project_id, entry.project)
    # Rows the page kept for projects no longer open to the person (closed since): shown, so the service can
    # say why nothing more is logged. No query when there are none.
    missing = {spec.project_id for spec in extra_rows} - set(projects)
    for project in Project.objects.filter(pk__in=missing).select_related("customer") if missing else ():
        projects[project.pk] = project
    versions: dict[int, list[ContractVersion]] = defaultdict(list)
    if loggable:
        for version in ContractVersion.objects.filter(project_id__in=[p.pk for p in loggable]).only(
            "project_id", "effective_from", "number", "terms"
        ):
            versions[version.project_id].append(version)
    expenses = _expense_summary(person, days[0], days[-1])

    grouped: dict[tuple[int, str], list[TimeEntry]] = defaultdict(list)
    adjustments = []
    for entry in entries:
        if entry.adjusts_id is not None:
            adjustments.append(entry)
        else:
            grouped[(entry.project_id, entry.labour_category)].append(entry)
    specs = {(spec.project_id, spec.labour_category): spec for spec in extra_rows if spec.project_id in projects}
    rows = []
    for key in set(grouped) | set(specs):
        project_id, category = key
        row_entries = grouped.get(key, [])
        key_ = row_key(project_id, category)
        cells = [
            Cell(day=day, index=i, key=f"{key_}-d{i}", locked_month=day.replace(day=1) in locked_months)
            for i, day in enumerate(days)
        ]
        for entry in row_entries:
            cells[(entry.date - monday).days].entries.append(entry)
        spec = specs.get(key)
        # The row's description and flag: its editable entries' (the newest first), else what the person
        # last typed into the row, else its newest entry's.
        editable = sorted(
            (e for e in row_entries if e.status in EDITABLE_STATUSES), key=lambda e: e.updated_at, reverse=True
        )
        newest = sorted(row_entries, key=lambda e: e.updated_at, reverse=True)
        if editable:
            description, billable = editable[0].description, editable[0].billable
        elif spec is not None:
            description, billable = spec.description, spec.billable
        elif newest:
            description, billable = newest[0].description, newest[0].billable
        else:
            description, billable = "", True
        rows.append(
            Row(
                key=key_,
                project=projects[project_id],
                labour_category=category,
                description=description,
                billable=billable,
                cells=cells,
                pending=not row_entries,
                mixed=len({(e.description, e.billable) for e in editable}) > 1,
            )
        )
    rows.sort(key=lambda r: (r.project.number, r.labour_category.lower()))
    return TimesheetWeek(
        person=person,
        monday=monday,
        days=days,
        rows=rows,
        locked_months=locked_months,
        loggable=[
            LoggableProject(
                project=p,
                categories=_categories_in_force(versions[p.pk], days),
                default_category=p.member_category or "",
            )
            for p in loggable
        ],
        adjustments=adjustments,
        expenses=expenses,
    )


def _expense_summary(person, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The person's expenses dated in the week per status: how many and how much per currency. One query."""
    summary: dict[str, dict[str, Any]] = {}
    for item in (
        Expense.objects.filter(person=person, date__range=(first, last))
        .values("status", "currency")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("status", "currency")
    ):
        entry = summary.setdefault(item["status"], {"status": item["status"], "count": 0, "amounts": []})
        entry["count"] += item["count"]
        entry["amounts"].append((item["currency"], item["amount"]))
    order = list(EntryStatus.values)
    return sorted(summary.values(), key=lambda item: order.index(item["status"]))


# --- what came back ---------------------------------------------------------------------------------------


@dataclass
class Returned:
    time_entries: list[TimeEntry]
    expenses: list[Expense]
    time_total: int
    expense_total: int

    def __len__(self) -> int:
        return self.time_total + self.expense_total


def returned_to(person, *, limit: int = 50) -> Returned:
    """``person``'s rejected time entries and expenses (any week), oldest first, with who sent them back and
    why; at most ``limit`` of each with the full counts. Four queries."""
    related = ("project", "decided_by")
    time = TimeEntry.objects.filter(person=person, status=EntryStatus.REJECTED)
    expenses = Expense.objects.filter(person=person, status=EntryStatus.REJECTED)
    return Returned(
        time_entries=list(time.select_related(*related).order_by("date", "pk")[:limit]),
        expenses=list(expenses.select_related(*related).order_by("date", "pk")[:limit]),
        time_total=time.count(),
        expense_total=expenses.count(),
    )


# --- the approval queue -------------------------------------------------------------------------------------


def approval_scope(user) -> tuple[Q | None, bool]:
    """Which submitted entries the queue shows ``user`` and whether they decide them: a project manager
    those of the projects they manage, an admin all (as ``selectors.approval_queue``); an auditor all,
    read-only. ``(None, False)``: the queue is not theirs."""
    if not getattr(user, "is_authenticated", False):
        return None, False
    if is_read_only(user):
        return (Q(), False) if user.has_perm("projects.view_timeentry") else (None, False)
    if not user.has_perm("projects.approve_timeentry"):
        return None, False
    if is_admin(user):
        return Q(), True
    if has_role(user, Role.PROJECT_MANAGER):
        return Q(project__project_manager=user), True
    return None, False


@dataclass
class ApprovalGroup:
    person: Any
    monday: dt.date
    time_entries: list[TimeEntry] = field(default_factory=list)
    expenses: list[Expense] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"g-{self.person.pk}-{self.monday.isoformat()}"

    @property
    def hours(self) -> Decimal:
        return sum((e.hours for e in self.time_entries), ZERO)

    @property
    def hours_text(self) -> str:
        return hours_text(self.hours)

    @property
    def expense_amounts(self) -> list[tuple[str, Decimal]]:
        amounts: dict[str, Decimal] = defaultdict(Decimal)
        for expense in self.expenses:
            amounts[expense.currency] += expense.amount
        return sorted(amounts.items())

    @property
    def size(self) -> int:
        return len(self.time_entries) + len(self.expenses)


@dataclass
class ApprovalPage:
    groups: list[ApprovalGroup]
    can_decide: bool
    time_shown: int
    time_total: int
    expense_shown: int
    expense_total: int
    hours_total: Decimal  # of every matching time entry, shown or not
    people: list
    projects: list[Project]

    @property
    def hours_total_text(self) -> str:
        return hours_text(self.hours_total)

    @property
    def capped(self) -> bool:
        return self.time_shown < self.time_total or self.expense_shown < self.expense_total

    @property
    def total(self) -> int:
        return self.time_total + self.expense_total


QUEUE_LIMIT = 200  # time entries shown at most (expenses: half of it); the filters narrow the rest


def _person_order(prefix: str = "") -> list[str]:
    return [f"{prefix}last_name", f"{prefix}first_name", f"{prefix}username"]


def approval_queue_page(
    *, user, person=None, project: Project | None = None, week: dt.date | None = None, limit: int | None = None
) -> ApprovalPage:
    """The approval queue page: submitted time entries and expenses in ``user``'s scope (``approval_scope``),
    filtered like ``selectors.approval_queue`` (person, project, ISO week), grouped by person and week, the
    oldest first. At most ``limit`` time entries and half as many expenses are loaded, with the full counts
    and hours so the page can say "showing N of M". Six queries whatever the number of entries."""
    limit = QUEUE_LIMIT if limit is None else limit
    scope, can_decide = approval_scope(user)
    User = get_user_model()
    if scope is None:
        return ApprovalPage([], False, 0, 0, 0, 0, ZERO, [], [])
    waiting = Q(status=EntryStatus.SUBMITTED) & scope
    filters = waiting
    if person is not None:
        filters &= Q(person=person)
    if project is not None:
        filters &= Q(project=project)
    if week is not None:
        monday = week_start_of(week)
        filters &= Q(date__range=(monday, monday + dt.timedelta(days=6)))
    related = ("person", "project", "project__customer")
    order = (*_person_order("person__"), "person_id", "date", "pk")
    time_qs = TimeEntry.objects.filter(filters)
    expense_qs = Expense.objects.filter(filters)
    time_entries = list(time_qs.select_related(*related, "adjusts").order_by(*order)[:limit])
    expenses = list(expense_qs.select_related(*related).order_by(*order)[: max(limit // 2, 1)])
    time_stats = time_qs.aggregate(count=Count("pk"), hours=Sum("hours"))
    expense_total = expense_qs.count()
    people = list(
        User.objects.filter(
            Q(pk__in=TimeEntry.objects.filter(waiting).values("person_id"))
            | Q(pk__in=Expense.objects.filter(waiting).values("person_id"))
        ).order_by(*_person_order())
    )
    projects = list(
        Project.objects.filter(
            Q(pk__in=TimeEntry.objects.filter(waiting).values("project_id"))
            | Q(pk__in=Expense.objects.filter(waiting).values("project_id"))
        ).order_by("number")
    )
    groups: dict[tuple[int, dt.date], ApprovalGroup] = {}
    for entry in time_entries:
        key = (entry.person_id, week_start_of(entry.date))
        groups.setdefault(key, ApprovalGroup(person=entry.person, monday=key[1])).time_entries.append(entry)
    for expense in expenses:
        key = (expense.person_id, week_start_of(expense.date))
        groups.setdefault(key, ApprovalGroup(person=expense.person, monday=key[1])).expenses.append(expense)
    ordered = sorted(
        groups.values(),
        key=lambda g: (g.person.last_name.lower(), g.person.first_name.lower(), g.person.username, g.monday),
    )
    return ApprovalPage(
        groups=ordered,
        can_decide=can_decide,
        time_shown=len(time_entries),
        time_total=time_stats["count"] or 0,
        expense_shown=len(expenses),
        expense_total=expense_total,
        hours_total=time_stats["hours"] or ZERO,
        people=people,
        projects=projects,
    )


def approval_selection(*, user, time_ids: Sequence[str], expense_ids: Sequence[str]) -> tuple[list, list]:
    """The submitted entries among ``time_ids`` and ``expense_ids`` (public IDs) that ``user`` decides;
    anything else (decided meanwhile, another manager's, unknown) is left out for the caller to notice.
    Two queries."""
    scope, can_decide = approval_scope(user)
    if scope is None or not can_decide:
        return [], []
    filters = Q(status=EntryStatus.SUBMITTED) & scope
    time = list(TimeEntry.objects.filter(filters, public_id__in=list(time_ids))) if time_ids else []
    expenses = list(Expense.objects.filter(filters, public_id__in=list(expense_ids))) if expense_ids else []
    return time, expenses
