"""Read queries of projects, contracts and change orders, shared by pages, the API and billing.

Object access is decided here: missing and forbidden both answer 404. Who sees which project (ROLES.md):
admins, finance, executives and auditors all of them; a project manager the projects they manage; a sales
rep the projects of the customers they own; consultants none yet (assignments come with time entry).

``contract_version_on`` and ``rate_on`` are the ONE way billing learns the terms of a day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Max, Q, QuerySet
from django.http import Http404

from backbone.models import Notification, UserProfile
from backbone.money import format_money
from backbone.roles import Role, has_role, is_read_only
from customers.models import Deal, PipelineStage

from . import terms as contract_terms
from .errors import ContractNotInForce, RateMissing
from .models import BudgetAlert, ChangeOrder, ContractVersion, Project

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
    # Consultants: the projects they are assigned to, once time entry brings assignments.
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


def project_actuals(project: Project) -> dict[str, tuple[Decimal, Decimal]]:
    """HOOK for time and expenses: actual (hours, amount) per budget row key of ``project_budget_summary``
    (``labour:<category slug>`` or a non-labour line's key).

    Empty until time entries and expenses exist (the next issue fills it from approved entries); the budget
    summary and the budget alerts then show real burn. Nothing here makes actuals up.
    """
    return {}


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
