"""Read queries of projects, contracts and change orders, shared by pages, the API and billing.

Object access is decided here: missing and forbidden both answer 404. Who sees which project (ROLES.md):
admins, finance, executives and auditors all of them; a project manager the projects they manage; a sales
rep the projects of the customers they own; everybody the projects whose team they are on.

``contract_version_on`` and ``rate_on`` are the ONE way billing learns the terms of a day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Max, Q, QuerySet, Sum
from django.http import Http404

from backbone.models import Notification, UserProfile
from backbone.money import format_money
from backbone.roles import Role, has_role, is_read_only
from customers.models import Deal, PipelineStage

from . import terms as contract_terms
from .errors import ContractNotInForce, RateMissing
from .models import (
    BudgetAlert,
    ChangeOrder,
    ContractVersion,
    EntryStatus,
    Expense,
    Milestone,
    Project,
    ProjectMember,
    TimeEntry,
)

# Roles that see every project (ROLES.md "projects: view").
_SEE_ALL_PROJECTS = (Role.ADMIN, Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR)


def is_admin(user) -> bool:
    return bool(getattr(user, "is_superuser", False)) or has_role(user, Role.ADMIN)


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


# --- projects -----------------------------------------------------------------------------------------


def projects_visible_to(user) -> QuerySet[Project]:
    """The projects ``user`` may see; one query whatever the number of rows."""
    if not _signed_in(user) or not user.has_perm("projects.view_project"):
        return Project.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_PROJECTS):
        return Project.objects.all()
    scopes = []
    if has_role(user, Role.PROJECT_MANAGER):
        scopes.append(Q(project_manager=user))
    if has_role(user, Role.SALES):
        scopes.append(Q(customer__owner=user))
    # Anyone on a project's team (consultants above all) sees it.
    scopes.append(Q(pk__in=ProjectMember.objects.filter(user=user).values("project_id")))
    if not scopes:
        return Project.objects.none()
    scope = scopes[0]
    for extra in scopes[1:]:
        scope |= extra
    return Project.objects.filter(scope)


def project_list(*, user) -> QuerySet[Project]:
    """The project list's base query (constant number of queries), with the current contract version number."""
    return (
        projects_visible_to(user)
        .select_related("customer", "legal_entity", "project_manager", "deal")
        .annotate(contract_version_number=Max("contract_versions__number"))
        .order_by("-created_at", "-id")  # Meta.ordering does not apply to aggregating queries
    )


def access_project(*, user, public_id, for_edit: bool = False) -> Project:
    """The project with ``public_id`` if ``user`` may see it (and edit its plan, when asked); else 404."""
    try:
        project = project_list(user=user).get(public_id=public_id)
    except (Project.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such project.") from exc
    if for_edit and not project_can_edit(user=user, project=project):
        raise Http404("No such project.")
    return project


def project_can_create(*, user) -> bool:
    """Project managers and admins create projects by hand (a won deal creates its own)."""
    if not _signed_in(user) or is_read_only(user) or not user.has_perm("projects.add_project"):
        return False
    return is_admin(user) or has_role(user, Role.PROJECT_MANAGER)


def project_can_edit(*, user, project: Project) -> bool:
    """The project's manager (through the django-guardian object permission given at the win) and admins."""
    if not _signed_in(user) or is_read_only(user):
        return False
    if is_admin(user):
        return True
    return user.has_perm("projects.change_project") and user.has_perm("projects.change_project", project)


def project_status_allowed(*, user, project: Project, status: str) -> bool:
    return project_can_edit(user=user, project=project) and project.can_transition_to(status)


# --- contract versions and terms ----------------------------------------------------------------------


def versions_of(project: Project) -> QuerySet[ContractVersion]:
    return (
        ContractVersion.objects.filter(project=project)
        .select_related("change_order", "created_by", "quote")
        .order_by("number")
    )


def current_version(project: Project) -> ContractVersion:
    """The newest version (the plan now; it may take effect on a later day than today)."""
    version = ContractVersion.objects.filter(project=project).order_by("-number").first()
    if version is None:
        raise ContractNotInForce(f"{project.number} has no contract version.")
    return version


def current_terms(project: Project) -> dict[str, Any]:
    return current_version(project).terms


def contract_version_on(*, project: Project, day: dt.date) -> ContractVersion:
    """The version that governs ``day``: the greatest ``effective_from`` on or before it, ties by number.

    Billing prices each item with the version in force on the item's date. A day before version 1 takes
    effect has no contract: ``ContractNotInForce`` says so, with the first day there is one.
    """
    version = (
        ContractVersion.objects.filter(project=project, effective_from__lte=day)
        .order_by("-effective_from", "-number")
        .first()
    )
    if version is None:
        first = ContractVersion.objects.filter(project=project).order_by("effective_from", "number").first()
        when = f"; the first version takes effect on {first.effective_from.isoformat()}" if first else ""
        raise ContractNotInForce(f"No contract of {project.number} is in force on {day.isoformat()}{when}.")
    return version


def rate_on(*, project: Project, labour_category: str, day: dt.date) -> Decimal:
    """The hourly rate of ``labour_category`` on ``day``: from the version in force that day, the rate card
    entry of the category with the greatest ``effective_from`` on or before the day."""
    version = contract_version_on(project=project, day=day)
    rate = contract_terms.rate_in_terms(version.terms, labour_category=labour_category, day=day)
    if rate is None:
        raise RateMissing(
            f"The contract of {project.number} in force on {day.isoformat()} (version {version.number}) has no rate "
            f"for '{labour_category}' on that day."
        )
    return rate


def version_diff(older: ContractVersion, newer: ContractVersion) -> list[dict[str, str]]:
    return contract_terms.version_diff(older, newer)


def version_previous(version: ContractVersion) -> ContractVersion | None:
    return (
        ContractVersion.objects.filter(project_id=version.project_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )


def version_diff_from_previous(version: ContractVersion) -> list[dict[str, str]]:
    """What ``version`` changed against the one before it (nothing for version 1)."""
    previous = version_previous(version)
    return [] if previous is None else contract_terms.version_diff(previous, version)


# --- budget -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetRow:
    """One row of the plan-versus-actual table: a labour category, or one non-labour budget line."""

    key: str  # "labour:<category>" for a category (all its lines together), else the budget line's key
    kind: str
    label: str
    planned_hours: Decimal | None
    planned_amount: Decimal
    actual_hours: Decimal
    actual_amount: Decimal

    @property
    def remaining_amount(self) -> Decimal:
        return self.planned_amount - self.actual_amount

    @property
    def burn_percent(self) -> Decimal | None:
        if not self.planned_amount:
            return None
        return (self.actual_amount * 100 / self.planned_amount).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class BudgetSummary:
    currency: str
    rows: list[BudgetRow]

    @property
    def planned_amount(self) -> Decimal:
        return sum((row.planned_amount for row in self.rows), Decimal(0))

    @property
    def actual_amount(self) -> Decimal:
        return sum((row.actual_amount for row in self.rows), Decimal(0))

    @property
    def planned_hours(self) -> Decimal:
        return sum((row.planned_hours or Decimal(0) for row in self.rows), Decimal(0))

    @property
    def burn_percent(self) -> Decimal | None:
        if not self.planned_amount:
            return None
        return (self.actual_amount * 100 / self.planned_amount).quantize(Decimal("0.1"))

    def planned_display(self) -> str:
        return format_money(self.planned_amount, self.currency)


def _rate_resolver(project: Project):
    """``rate(category, day)`` with the semantics of ``rate_on`` (the version with the greatest
    ``effective_from`` on or before the day, ties by number; then the category's rate on the day) from one
    query of the project's versions, so pricing many entries costs no query per entry. None when missing."""
    versions: list[ContractVersion] = []
    cache: dict[tuple[str, dt.date], Decimal | None] = {}

    def rate(labour_category: str, day: dt.date) -> Decimal | None:
        key = (labour_category, day)
        if not versions:  # fetched on the first price asked for: nothing to price costs no query
            versions.extend(
                ContractVersion.objects.filter(project=project)
                .order_by("-effective_from", "-number")
                .only("effective_from", "number", "terms")
            )
        if key not in cache:
            version = next((v for v in versions if v.effective_from <= day), None)
            cache[key] = (
                None
                if version is None
                else contract_terms.rate_in_terms(version.terms, labour_category=labour_category, day=day)
            )
        return cache[key]

    return rate


def _expense_keys(project: Project) -> tuple[dict[str, str], str]:
    """Where expenses land in the budget summary: the ``expenses:<category>`` line when the budget has one,
    else its first ``expenses:`` line, else a bare ``expenses`` key (shown nowhere until a line exists)."""
    keys = list(
        project.budget_lines.filter(kind="non_labour", key__startswith="expenses:")
        .order_by("id")
        .values_list("key", flat=True)
    )
    fallback = keys[0] if keys else "expenses"
    return {key.split(":", 1)[1]: key for key in keys}, fallback


def expense_billed_amount(expense) -> Decimal:
    """The amount with the markup frozen on the expense (rounded to cents, half up)."""
    markup = expense.markup_percent if expense.billable else Decimal(0)
    return (expense.amount * (1 + markup / 100)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def project_actuals(project: Project) -> dict[str, tuple[Decimal, Decimal]]:
    """Actual (hours, amount) per budget row key of ``project_budget_summary`` from approved and billed time
    (``labour:<category slug>``: hours x the rate in force on each entry's day, adjustments included) and
    expenses (amount with markup, under the expenses line's key). At most four queries whatever the entries
    (two when nothing is approved yet)."""
    counted = (EntryStatus.APPROVED, EntryStatus.BILLED)
    rate = _rate_resolver(project)
    actuals: dict[str, tuple[Decimal, Decimal]] = {}
    per_day = (
        TimeEntry.objects.filter(project=project, status__in=counted)
        .values("labour_category", "date")
        .annotate(total=Sum("hours"))
        .order_by()
    )
    for row in per_day:
        key = contract_terms.slug_key("labour", row["labour_category"], ())
        hours, amount = actuals.get(key, (Decimal(0), Decimal(0)))
        day_rate = rate(row["labour_category"], row["date"]) or Decimal(0)
        actuals[key] = (hours + row["total"], amount + (row["total"] * day_rate).quantize(Decimal("0.01")))
    expenses = list(
        Expense.objects.filter(project=project, status__in=counted).only(
            "amount", "markup_percent", "billable", "category"
        )
    )
    by_category, fallback = _expense_keys(project) if expenses else ({}, "expenses")
    for expense in expenses:
        key = by_category.get(expense.category, fallback)
        hours, amount = actuals.get(key, (Decimal(0), Decimal(0)))
        actuals[key] = (hours, amount + expense_billed_amount(expense))
    return actuals


def project_actual_amount(project: Project) -> Decimal:
    """Everything approved so far (what budget alerts compare with the budget)."""
    return sum((amount for _, amount in project_actuals(project).values()), Decimal(0))


def project_budget_summary(project: Project) -> BudgetSummary:
    """Plan per labour category (hours, amount) and per non-labour line, with the actuals of the hook."""
    actuals = project_actuals(project)
    zero = (Decimal(0), Decimal(0))
    categories: dict[str, dict[str, Any]] = {}
    rows: list[BudgetRow] = []
    pending_non_labour = []
    for line in project.budget_lines.order_by("kind", "id"):
        if line.kind == line.Kind.LABOUR:
            key = contract_terms.slug_key("labour", line.labour_category, ())
            entry = categories.setdefault(
                key, {"label": line.labour_category, "hours": None, "amount": Decimal(0), "kind": line.kind}
            )
            if line.hours is not None:
                entry["hours"] = (entry["hours"] or Decimal(0)) + line.hours
            entry["amount"] += line.amount
        else:
            pending_non_labour.append(line)
    for key, entry in categories.items():
        hours, amount = actuals.get(key, zero)
        rows.append(
            BudgetRow(
                key=key,
                kind=entry["kind"],
                label=entry["label"],
                planned_hours=entry["hours"],
                planned_amount=entry["amount"],
                actual_hours=hours,
                actual_amount=amount,
            )
        )
    for line in pending_non_labour:
        hours, amount = actuals.get(line.key, zero)
        rows.append(
            BudgetRow(
                key=line.key,
                kind=line.kind,
                label=line.description,
                planned_hours=line.hours,
                planned_amount=line.amount,
                actual_hours=hours,
                actual_amount=amount,
            )
        )
    return BudgetSummary(currency=project.currency, rows=rows)


def budget_alerts_of(*, user, project: Project) -> QuerySet[BudgetAlert]:
    """The alerts of a project the person may see (project managers, finance, executives, auditors, admins)."""
    if not _signed_in(user) or not user.has_perm("projects.view_budgetalert"):
        return BudgetAlert.objects.none()
    if not projects_visible_to(user).filter(pk=project.pk).exists():
        return BudgetAlert.objects.none()
    return BudgetAlert.objects.filter(project=project).select_related("milestone")


def notifications_of(user, *, unread_only: bool = False) -> QuerySet[Notification]:
    if not _signed_in(user):
        return Notification.objects.none()
    queryset = Notification.objects.filter(user=user)
    return queryset.filter(read_at__isnull=True) if unread_only else queryset


# --- change orders ------------------------------------------------------------------------------------


def change_orders_visible_to(user) -> QuerySet[ChangeOrder]:
    """Change orders of the projects a person sees, for holders of ``view_changeorder``; one query."""
    if not _signed_in(user) or not user.has_perm("projects.view_changeorder"):
        return ChangeOrder.objects.none()
    return ChangeOrder.objects.filter(project__in=projects_visible_to(user))


def change_order_list(*, user) -> QuerySet[ChangeOrder]:
    return change_orders_visible_to(user).select_related(
        "project", "project__customer", "proposed_by", "decided_by", "resulting_version"
    )


def access_change_order(*, user, public_id) -> ChangeOrder:
    try:
        return change_order_list(user=user).get(public_id=public_id)
    except (ChangeOrder.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such change order.") from exc


def change_order_can_propose(*, user, project: Project) -> bool:
    """ROLES.md "change orders: propose": sales on their own customers' projects, project managers on their
    own projects, admins on any; never on a closed project, never by an auditor."""
    if not _signed_in(user) or is_read_only(user) or not user.has_perm("projects.add_changeorder"):
        return False
    if project.status == Project.Status.CLOSED:
        return False
    return _proposer_scope(user, project)


def _proposer_scope(user, project: Project) -> bool:
    if is_admin(user):
        return True
    if has_role(user, Role.PROJECT_MANAGER) and project.project_manager_id == user.pk:
        return True
    return has_role(user, Role.SALES) and project.customer.owner_id == user.pk


def change_order_can_edit(*, user, change_order: ChangeOrder) -> bool:
    """Drafts are edited (and submitted) by whoever may propose on the project."""
    if change_order.status != ChangeOrder.Status.DRAFT:
        return False
    if not _signed_in(user) or is_read_only(user) or not user.has_perm("projects.change_changeorder"):
        return False
    return change_order.project.status != Project.Status.CLOSED and _proposer_scope(user, change_order.project)


def change_order_limit(user) -> Decimal:
    """The largest |budget change| ``user`` may approve alone (0 without a profile)."""
    limit = UserProfile.objects.filter(user=user).values_list("change_order_limit_amount", flat=True).first()
    return limit if limit is not None else Decimal(0)


def change_order_scope_refusal(user, change_order: ChangeOrder) -> str | None:
    """Whether ``user``'s roles reach this change order at all (limits aside); the refusal when not."""
    if not _signed_in(user) or is_read_only(user):
        return "Auditors can view change orders but decide nothing."
    if not user.has_perm("projects.approve_changeorder"):
        return "Your role cannot approve or reject change orders."
    if is_admin(user) or has_role(user, Role.EXECUTIVE):
        return None
    co, project = change_order, change_order.project
    if co.touches_billing_terms:
        if has_role(user, Role.FINANCE):
            return None
        return (
            f"{co.number} changes billing terms (rates or billing rules): finance approves it within their limit, "
            "an executive above it."
        )
    if has_role(user, Role.PROJECT_MANAGER) and project.project_manager_id == user.pk:
        return None
    if has_role(user, Role.PROJECT_MANAGER):
        return f"Only the project manager of {project.number} approves its change orders (or an executive)."
    return f"{co.number} does not change billing terms: the project manager of {project.number} approves it."


def change_order_approval_refusal(
    *, user, change_order: ChangeOrder, budget_delta: Decimal | None = None
) -> str | None:
    """Why ``user`` may not approve ``change_order`` (None: they may). The approval matrix of ROLES.md:

    * the project's manager approves change orders of their project that leave billing terms alone, up to
      their change-order limit (on the absolute budget change);
    * finance approves changes of billing terms (rates, billing rules) up to their limit;
    * executives approve anything, above the limits; admins anything;
    * nobody approves their own change order above their own limit (maker-checker).
    """
    refusal = change_order_scope_refusal(user, change_order)
    if refusal:
        return refusal
    co, currency = change_order, change_order.project.currency
    delta = abs(co.budget_delta_amount if budget_delta is None else budget_delta)
    limit = change_order_limit(user)
    amount, limit_text = format_money(delta, currency), format_money(limit, currency)
    if co.proposed_by_id == user.pk and delta > limit:
        return (
            f"You proposed {co.number}; its budget change of {amount} is above your own change-order limit of "
            f"{limit_text}, so someone else must approve it."
        )
    if is_admin(user) or has_role(user, Role.EXECUTIVE):
        return None
    if delta > limit:
        return (
            f"{co.number} changes the budget by {amount}, above your change-order limit of {limit_text}; "
            "an executive approves it."
        )
    return None


def change_order_can_reject(*, user, change_order: ChangeOrder) -> bool:
    """Whoever the change order's kind reaches (limits aside) may send it back with a reason."""
    return change_order.status == ChangeOrder.Status.SUBMITTED and not change_order_scope_refusal(user, change_order)


def change_order_actions(*, user, change_order: ChangeOrder) -> frozenset[str]:
    """What ``user`` may do with ``change_order`` now: a subset of edit, submit, approve, reject."""
    actions = set()
    if change_order_can_edit(user=user, change_order=change_order):
        actions |= {"edit", "submit"}
    if change_order.status == ChangeOrder.Status.SUBMITTED:
        if change_order_approval_refusal(user=user, change_order=change_order) is None:
            actions.add("approve")
        if change_order_can_reject(user=user, change_order=change_order):
            actions.add("reject")
    return frozenset(actions)


def change_order_approvers(change_order: ChangeOrder) -> list:
    """The people to tell that ``change_order`` waits for them: its project's manager, finance and executives
    who may approve it (the proposer aside); admins only when nobody else may."""
    User = get_user_model()
    project = change_order.project
    candidates = User.objects.filter(is_active=True).filter(
        Q(pk=project.project_manager_id) | Q(groups__name__in=[Role.FINANCE, Role.EXECUTIVE])
    )
    chosen = [
        user
        for user in candidates.distinct().order_by("pk")
        if user.pk != change_order.proposed_by_id
        and change_order_approval_refusal(user=user, change_order=change_order) is None
    ]
    if chosen:
        return chosen
    admins = User.objects.filter(is_active=True).filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN))
    return [user for user in admins.distinct().order_by("pk") if user.pk != change_order.proposed_by_id]


# --- the handoff --------------------------------------------------------------------------------------


def deal_win_refusal(*, user, deal: Deal) -> str | None:
    """Why ``user`` may not mark ``deal`` won (None: they may). ROLES.md: sales their own deals, admins any."""
    if not _signed_in(user) or is_read_only(user):
        return "Sign in with a role that may win deals."
    if not user.has_perm("customers.win_deal"):
        return "Your role cannot mark deals won."
    if not is_admin(user) and deal.owner_id != user.pk:
        return f"{deal.number} belongs to another sales rep; only its owner (or an admin) marks it won."
    return None


def won_stage() -> PipelineStage | None:
    return (
        PipelineStage.objects.filter(outcome=PipelineStage.Outcome.WON, is_active=True)
        .order_by("position", "id")
        .first()
    )


def project_managers():
    """People who may manage projects: holders of the project manager role."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.PROJECT_MANAGER)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


# --- milestones ---------------------------------------------------------------------------------------


def milestone_acceptance_refusal(*, user, project: Project) -> str | None:
    """Why ``user`` may not record (or withdraw) the client's acceptance of ``project``'s milestones, or None:
    its project manager and admins may (ROLES.md)."""
    if not _signed_in(user):
        return "Sign in to make changes."
    if is_read_only(user) or not user.has_perm("projects.accept_milestone"):
        return "Your role does not record milestone acceptance."
    if is_admin(user) or (has_role(user, Role.PROJECT_MANAGER) and project.project_manager_id == user.pk):
        return None
    return f"Only the project manager of {project.number} records its milestones' acceptance."


def access_milestone(*, user, project: Project, public_id) -> Milestone:
    """A milestone of a project ``user`` may see (the caller checked the project); else 404."""
    try:
        return project.milestones.select_related("project", "acceptance_recorded_by").get(public_id=public_id)
    except (Milestone.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such milestone.") from exc


# --- time and expenses --------------------------------------------------------------------------------

# Roles that see every time entry and expense (ROLES.md: finance all, executives and auditors read, admins).
_SEE_ALL_ENTRIES = (Role.ADMIN, Role.FINANCE, Role.EXECUTIVE, Role.AUDITOR)


def _entries_visible_to(user, model) -> QuerySet:
    """Own rows for every logger; a project manager also those of their projects; finance, executives,
    auditors and admins all. One query whatever the rows."""
    name = model._meta.model_name
    if not _signed_in(user) or not user.has_perm(f"projects.view_{name}"):
        return model.objects.none()
    if user.is_superuser or has_role(user, *_SEE_ALL_ENTRIES):
        return model.objects.all()
    scope = Q(person=user)
    if has_role(user, Role.PROJECT_MANAGER):
        scope |= Q(project__project_manager=user)
    return model.objects.filter(scope)


def time_entries_visible_to(user) -> QuerySet:
    return _entries_visible_to(user, TimeEntry)


def expenses_visible_to(user) -> QuerySet:
    return _entries_visible_to(user, Expense)


@dataclass(frozen=True)
class ApprovalQueue:
    """One page of the queue: ``time_entries`` and ``expenses`` from ``offset`` on, at most ``limit`` of each,
    with the totals of everything that matches."""

    time_entries: list
    expenses: list
    time_total: int = 0
    expense_total: int = 0

    def __len__(self) -> int:
        return len(self.time_entries) + len(self.expenses)

    @property
    def total(self) -> int:
        return self.time_total + self.expense_total


def approval_queue(
    *,
    user,
    person=None,
    project: Project | None = None,
    week: dt.date | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> ApprovalQueue:
    """Submitted time and expenses waiting for ``user``: of the projects they manage (admins: all; auditors
    read all of them), filtered by person, project and ISO week (any day of it), ordered by person and date.
    ``limit``/``offset`` page each list. Two queries for the rows and two for the totals, whatever the number
    of entries."""
    if not _signed_in(user) or not (user.has_perm("projects.approve_timeentry") or is_read_only(user)):
        return ApprovalQueue(time_entries=[], expenses=[])
    filters = Q(status=EntryStatus.SUBMITTED)
    if is_read_only(user):
        if not user.has_perm("projects.view_timeentry"):
            return ApprovalQueue(time_entries=[], expenses=[])
    elif not is_admin(user):
        filters &= Q(project__project_manager=user)
    if person is not None:
        filters &= Q(person=person)
    if project is not None:
        filters &= Q(project=project)
    if week is not None:
        monday = week - dt.timedelta(days=week.isoweekday() - 1)
        filters &= Q(date__range=(monday, monday + dt.timedelta(days=6)))
    related = ("person", "project", "project__customer")
    end = None if limit is None else offset + limit
    time_rows = TimeEntry.objects.filter(filters).select_related(*related, "adjusts").order_by("person", "date", "pk")
    expense_rows = Expense.objects.filter(filters).select_related(*related).order_by("person", "date", "pk")
    time_entries, expenses = list(time_rows[offset:end]), list(expense_rows[offset:end])
    paged = limit is not None or offset
    return ApprovalQueue(
        time_entries=time_entries,
        expenses=expenses,
        time_total=TimeEntry.objects.filter(filters).count() if paged else len(time_entries),
        expense_total=Expense.objects.filter(filters).count() if paged else len(expenses),
    )


@dataclass(frozen=True)
class UnbilledItem:
    """One approved, unbilled thing billing will invoice, priced as of its own date."""

    kind: str  # "time", "adjustment", "expense" or "milestone"
    entry: Any  # the TimeEntry, Expense (billing passes these back to time_entries_mark_billed) or Milestone
    # (back to milestones.milestones_mark_billed)
    project_id: int
    date: dt.date
    description: str
    labour_category: str
    quantity: Decimal  # hours for time and adjustments (negative on a downward adjustment), 1 for an expense
    unit_price: Decimal  # the hourly rate in force on the date, or the expense with markup
    amount: Decimal
    currency: str
    markup_percent: Decimal = Decimal(0)
    phase: str = ""  # a milestone's phase
    note: str = ""  # a milestone's acceptance note, carried onto the invoice


TIME_KINDS = frozenset({"time", "adjustment"})
UNBILLED_KINDS = frozenset({"time", "adjustment", "expense", "milestone"})


def unbilled_time(*, project: Project, up_to: dt.date) -> QuerySet[TimeEntry]:
    """The approved, billable, unbilled time entries (adjustments included) of ``project`` dated on or before
    ``up_to``: the rows ``unbilled_items`` prices one by one, as a query billing can narrow, aggregate and
    copy in the database when there are too many to carry through Python."""
    return TimeEntry.objects.filter(_unbilled([project.pk], up_to))


def rate_resolver(project: Project):
    """``rate(labour_category, day) -> Decimal | None``: ``rate_on`` for any number of days from one query of
    the project's versions; None where ``rate_on`` raises (call it for the reason)."""
    return _rate_resolver(project)


def _unbilled(project_ids: list[int], up_to: dt.date) -> Q:
    return Q(project_id__in=project_ids, status=EntryStatus.APPROVED, billable=True, date__lte=up_to)


def unbilled_items(
    *,
    project: Project | None = None,
    customer=None,
    up_to: dt.date,
    problems: list | None = None,
    kinds: frozenset[str] = UNBILLED_KINDS,
) -> list[UnbilledItem]:
    """The approved, billable, unbilled time, adjustments and expenses dated on or before ``up_to`` of one
    project or all projects of one customer, each time item priced with the rate card of the contract
    version in force on its date (``rate_on`` semantics; across a change order's effective date the price
    changes). A missing rate raises ``RateMissing`` (or ``ContractNotInForce`` before version 1): billing must
    not guess a price. Given a ``problems`` list, such items are left out and appended to it as
    ``(entry, error)`` instead, so one unpriced entry does not hold back the rest.

    Accepted milestones with an amount (fixed-fee instalments) are items dated on their acceptance, with the
    acceptance note. ``kinds`` narrows the answer (billing takes expenses and milestones here and copies
    time in the database). Queries: one for the projects, one per project for its versions, three for the
    items (one per kind asked for)."""
    if (project is None) == (customer is None):
        raise ValueError("Give a project or a customer.")
    projects = [project] if project is not None else list(Project.objects.filter(customer=customer).order_by("pk"))
    by_pk = {p.pk: p for p in projects}
    rates = {p.pk: _rate_resolver(p) for p in projects}
    base = _unbilled(list(by_pk), up_to)
    items: list[UnbilledItem] = []
    time_entries = TimeEntry.objects.filter(base) if kinds & TIME_KINDS else TimeEntry.objects.none()
    for entry in time_entries.order_by("project_id", "date", "pk"):
        kind = "adjustment" if entry.adjusts_id else "time"
        if kind not in kinds:
            continue
        owner = by_pk[entry.project_id]
        rate = rates[entry.project_id](entry.labour_category, entry.date)
        if rate is None:
            try:
                rate_on(project=owner, labour_category=entry.labour_category, day=entry.date)  # raises the reason
            except (RateMissing, ContractNotInForce) as exc:
                if problems is None:
                    raise
                problems.append((entry, exc))
                continue
        items.append(
            UnbilledItem(
                kind=kind,
                entry=entry,
                project_id=entry.project_id,
                date=entry.date,
                description=entry.description,
                labour_category=entry.labour_category,
                quantity=entry.hours,
                unit_price=rate,
                amount=(entry.hours * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                currency=owner.currency,
            )
        )
    expenses = Expense.objects.filter(base) if "expense" in kinds else Expense.objects.none()
    for expense in expenses.order_by("project_id", "date", "pk"):
        amount = expense_billed_amount(expense)
        items.append(
            UnbilledItem(
                kind="expense",
                entry=expense,
                project_id=expense.project_id,
                date=expense.date,
                description=expense.description,
                labour_category="",
                quantity=Decimal(1),
                unit_price=amount,
                amount=amount,
                currency=expense.currency,
                markup_percent=expense.markup_percent,
            )
        )
    accepted = (
        Milestone.objects.filter(
            project_id__in=list(by_pk), status=Milestone.Status.ACCEPTED, accepted_on__lte=up_to, amount__gt=0
        )
        if "milestone" in kinds
        else Milestone.objects.none()
    )
    for milestone in accepted.order_by("project_id", "accepted_on", "position", "pk"):
        items.append(
            UnbilledItem(
                kind="milestone",
                entry=milestone,
                project_id=milestone.project_id,
                date=milestone.accepted_on,
                description=milestone.name,
                labour_category="",
                quantity=Decimal(1),
                unit_price=milestone.amount,
                amount=milestone.amount,
                currency=by_pk[milestone.project_id].currency,
                phase=milestone.phase,
                note=milestone.acceptance_note,
            )
        )
    items.sort(key=lambda item: (item.project_id, item.date, item.kind))
    return items
