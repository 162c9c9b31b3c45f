"""Pages of a person's expenses (list, log, edit, delete, the receipt, submitting a week), finance's locked
periods, and a project's team.

Thin like ``projects.views``: parse, check access through the selectors, call one service, render. The
services in ``projects.timesheets`` and ``projects.members`` decide every rule; their refusal is shown next
to the input it is about (or as a message), never a 500, and nothing is half-saved: a service validates
everything, the receipt included, before it writes. Objects outside a person's scope answer 404.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme

from backbone.downloads import stored_file_response
from backbone.errors import DomainError
from backbone.roles import Role, has_role, is_read_only
from backbone.views import Guarded
from customers.uploads import CANONICAL_CONTENT_TYPES

from . import forms_time as ft
from . import selectors as s
from . import timesheets as ts
from .forms import apply_domain_errors
from .members import LOGGING_ROLES, member_refusal, project_member_add, project_member_remove, project_member_update
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

PAGE_SIZE = 25
PERIOD_MONTHS = 18  # the locked-periods page shows this month and the 17 before it
UNAPPROVED = (EntryStatus.DRAFT, EntryStatus.SUBMITTED, EntryStatus.REJECTED)


def _htmx_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def _months_back(month: dt.date, count: int) -> list[dt.date]:
    """``count`` first-of-month dates, ``month`` first, each the month before the previous one."""
    months = [month.replace(day=1)]
    while len(months) < count:
        months.append((months[-1] - dt.timedelta(days=1)).replace(day=1))
    return months


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.isoweekday() - 1)


def _week_label(monday: dt.date) -> str:
    sunday = monday + dt.timedelta(days=6)
    if monday.month == sunday.month:
        return f"{monday.day}–{sunday.day} {sunday.strftime('%b %Y')}"
    if monday.year == sunday.year:
        return f"{monday.day} {monday.strftime('%b')} – {sunday.day} {sunday.strftime('%b %Y')}"
    return f"{monday.day} {monday.strftime('%b %Y')} – {sunday.day} {sunday.strftime('%b %Y')}"


def _name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def _local_next(request: HttpRequest, prefix: str) -> str | None:
    """The page to return to after a POST: a local path under ``prefix`` only (filters and page kept)."""
    target = request.POST.get("next", "")
    if (
        target.startswith(prefix)
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
        and "\\" not in target
    ):
        return target
    return None


# --- expenses -----------------------------------------------------------------------------------------


def _loggable_projects(user) -> QuerySet[Project]:
    """The projects ``user`` may log expenses on now: those they manage or whose team they are on, not closed.
    (``timesheets.expense_create`` checks membership and the dates again when the expense is saved.)"""
    if not getattr(user, "is_authenticated", False):
        return Project.objects.none()
    mine = Q(project_manager=user) | Q(pk__in=ProjectMember.objects.filter(user=user).values("project_id"))
    return Project.objects.filter(mine).exclude(status=Project.Status.CLOSED).order_by("number")


def _visible_expense(request: HttpRequest, public_id, *, own: bool = False) -> Expense:
    """An expense the person may see (with ``own``: one they logged themselves); else 404."""
    expenses = s.expenses_visible_to(request.user)
    if own:
        expenses = expenses.filter(person=request.user)
    try:
        return expenses.select_related("project", "project__customer", "person", "decided_by").get(public_id=public_id)
    except (Expense.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such expense.") from exc


def _can_log(user) -> bool:
    return user.has_perm("projects.add_expense") and not is_read_only(user)


def _locked_months(first: dt.date | None = None, last: dt.date | None = None) -> set[dt.date]:
    periods = LockedPeriod.objects.all()
    if first is not None:
        periods = periods.filter(month__gte=first.replace(day=1))
    if last is not None:
        periods = periods.filter(month__lte=last)
    return set(periods.values_list("month", flat=True))


class ExpenseListView(Guarded):
    """The person's expenses; project managers, finance, executives, auditors and admins see the rows
    ``expenses_visible_to`` gives them. Filters by project, status and month; a constant number of queries."""

    permission_required = ("projects.view_expense",)

    def get(self, request):
        user = request.user
        visible = s.expenses_visible_to(user)
        form = ft.ExpenseFilterForm(
            request.GET or None,
            projects=Project.objects.filter(pk__in=visible.values("project_id")).order_by("number"),
        )
        filters = form.filters()
        rows = visible
        if filters.get("project"):
            rows = rows.filter(project=filters["project"])
        if filters.get("status"):
            rows = rows.filter(status=filters["status"])
        if filters.get("month"):
            rows = rows.filter(date__gte=filters["month"], date__lt=_next_month(filters["month"]))
        rows = rows.select_related("project", "project__customer", "person").order_by("-date", "-pk")
        page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        expenses = list(page_obj.object_list)
        can_log = _can_log(user)
        locked = _locked_months(min(e.date for e in expenses), max(e.date for e in expenses)) if expenses else set()
        items = []
        for expense in expenses:
            own = expense.person_id == user.pk
            in_locked_month = expense.date.replace(day=1) in locked
            editable = can_log and own and expense.status in EDITABLE_STATUSES and not in_locked_month
            monday = _monday(expense.date)
            items.append(
                {
                    "expense": expense,
                    "own": own,
                    "locked": in_locked_month,
                    "can_edit": editable,
                    "week_start": monday if editable else None,
                    "week_label": _week_label(monday),
                }
            )
        context = {
            "filter_form": form,
            "page_obj": page_obj,
            "items": items,
            "is_filtered": any(value for key, value in request.GET.items() if key != "page"),
            "can_log": can_log,
            "show_person": any(not item["own"] for item in items),
            "back": request.get_full_path(),
        }
        template = "projects/partials/expense_table.html" if _htmx_partial(request) else "projects/expense_list.html"
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


class ExpenseFormView(Guarded):
    writes = True
    template_name = "projects/expense_form.html"

    def render_form(self, request, *, form, expense=None, status=200, summary="", receipt_again=False):
        projects = list(form.fields["project"].queryset) if "project" in form.fields else []
        markups = dict(
            BillingRule.objects.filter(project__in=[p.pk for p in projects], model="expenses").values_list(
                "project_id", "markup_percent"
            )
        )
        context = {
            "form": form,
            "expense": expense,
            "error_summary": summary,
            "receipt_again": receipt_again,
            "has_projects": bool(projects) or expense is not None,
            "project_terms": {
                str(p.public_id): {
                    "currency": p.currency,
                    "markup": f"{markups[p.pk].normalize():f}" if p.pk in markups else "",
                }
                for p in projects
            },
        }
        if expense is not None:
            context["markup"] = f"{expense.markup_percent.normalize():f}"
        return render(request, self.template_name, context, status=status)

    def refused(self, request, form, exc: DomainError, *, expense=None):
        apply_domain_errors(exc, form)
        sent_receipt = bool(request.FILES.get("receipt"))
        return self.render_form(
            request,
            form=form,
            expense=expense,
            status=exc.status_code,
            summary=exc.message,
            receipt_again=sent_receipt and "receipt" not in form.errors,
        )

    def invalid(self, request, form, *, expense=None):
        sent_receipt = bool(request.FILES.get("receipt"))
        return self.render_form(
            request,
            form=form,
            expense=expense,
            status=400,
            summary="The expense was not saved. Please correct the fields marked below.",
            receipt_again=sent_receipt and "receipt" not in form.errors,
        )


class ExpenseCreateView(ExpenseFormView):
    permission_required = ("projects.add_expense",)

    def get(self, request):
        projects = _loggable_projects(request.user)
        initial: dict[str, Any] = {"date": timezone.localdate(), "billable": True}
        wanted = request.GET.get("project", "")
        chosen = [p for p in projects if str(p.public_id) == wanted] if wanted else []
        if chosen or len(projects) == 1:
            initial["project"] = (chosen or list(projects))[0].public_id
        return self.render_form(request, form=ft.ExpenseForm(initial=initial, projects=projects))

    def post(self, request):
        form = ft.ExpenseForm(request.POST, request.FILES, projects=_loggable_projects(request.user))
        if not form.is_valid():
            return self.invalid(request, form)
        try:
            expense = ts.expense_create(actor=request.user, project=form.cleaned_data["project"], **form.service_data())
        except DomainError as exc:
            return self.refused(request, form, exc)
        markup = f"{expense.markup_percent.normalize():f}"
        note = ""
        if expense.billable:
            note = f" with a {markup} % markup (frozen from the project's expenses billing rule)"
        messages.success(
            request,
            f"Expense of {expense.amount} {expense.currency} on {expense.project.number} saved as a draft{note}. "
            "Submit its week when the week is complete.",
        )
        return redirect("projects:expense-list")


def _not_editable(request, expense: Expense) -> HttpResponse:
    messages.info(
        request,
        f"This expense is {expense.get_status_display().lower()}; only drafts and rejected expenses can be changed.",
    )
    return redirect("projects:expense-list")


class ExpenseEditView(ExpenseFormView):
    """A draft or rejected expense of one's own; a rejected one shows why it came back."""

    permission_required = ("projects.change_expense",)

    def get(self, request, public_id):
        expense = _visible_expense(request, public_id, own=True)
        if not expense.is_editable:
            return _not_editable(request, expense)
        form = ft.ExpenseForm(initial=ft.ExpenseForm.initial_from(expense), editing=True)
        return self.render_form(request, form=form, expense=expense)

    def post(self, request, public_id):
        expense = _visible_expense(request, public_id, own=True)
        if not expense.is_editable:
            return _not_editable(request, expense)
        form = ft.ExpenseForm(request.POST, request.FILES, editing=True)
        if not form.is_valid():
            return self.invalid(request, form, expense=expense)
        data = form.service_data()
        data["currency"] = data["currency"] or expense.project.currency
        try:
            expense = ts.expense_update(actor=request.user, expense=expense, data=data)
        except DomainError as exc:
            return self.refused(request, form, exc, expense=expense)
        messages.success(request, f"The expense of {expense.date.isoformat()} was saved.")
        return redirect("projects:expense-list")


class ExpenseDeleteView(Guarded):
    """GET: the confirmation; POST: delete a draft or rejected expense of one's own."""

    permission_required = ("projects.delete_expense",)
    writes = True

    def get(self, request, public_id):
        expense = _visible_expense(request, public_id, own=True)
        if not expense.is_editable:
            return _not_editable(request, expense)
        return render(request, "projects/expense_confirm_delete.html", {"expense": expense})

    def post(self, request, public_id):
        expense = _visible_expense(request, public_id, own=True)
        label = f"{expense.get_category_display().lower()} expense of {expense.date.isoformat()}"
        try:
            ts.expense_delete(actor=request.user, expense=expense)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"The {label} was deleted.")
        return redirect("projects:expense-list")


class ExpenseReceiptView(Guarded):
    """The receipt, for whoever may see the expense. Served through this view, never from the media URL:
    receipts are personal and media files are not served in production."""

    permission_required = ("projects.view_expense",)

    def get(self, request, public_id):
        expense = _visible_expense(request, public_id)
        if not expense.receipt:
            raise Http404("This expense has no receipt.")
        suffix = PurePosixPath(expense.receipt.name).suffix.lower()
        kind = ts.RECEIPT_TYPES.get(suffix, ("",))[0]
        filename = expense.receipt_filename or f"receipt-{expense.date.isoformat()}{suffix}"
        response = stored_file_response(
            expense.receipt,
            filename=filename,
            content_type=CANONICAL_CONTENT_TYPES.get(kind, "application/octet-stream"),
            missing="The receipt file is missing.",
        )
        patch_cache_control(response, private=True, no_store=True)
        return response


class ExpenseSubmitWeekView(Guarded):
    """POST only: submit the person's draft and rejected time and expenses of one ISO week, through the same
    service as the timesheet's "Submit week"."""

    permission_required = ("projects.add_expense",)
    writes = True
    http_method_names = ["post"]

    def post(self, request):
        back = _local_next(request, reverse("projects:expense-list")) or reverse("projects:expense-list")
        form = ft.WeekForm(request.POST)
        if not form.is_valid():
            messages.error(request, "The week was not submitted: choose the week (its Monday, e.g. 2026-03-09).")
            return redirect(back)
        monday = _monday(form.cleaned_data["week_start"])
        try:
            count = ts.timesheet_submit(actor=request.user, week_start=monday)
        except DomainError as exc:
            messages.error(request, f"The week of {_week_label(monday)} was not submitted. {exc.message}")
            return redirect(back)
        if count:
            messages.success(
                request,
                f"The week of {_week_label(monday)} was submitted: {count} entr{'y' if count == 1 else 'ies'} "
                "(time and expenses) went to the project managers for approval.",
            )
        else:
            messages.info(request, f"Nothing to submit in the week of {_week_label(monday)}: no drafts left.")
        return redirect(back)


# --- locked periods -----------------------------------------------------------------------------------


def _can_lock(user) -> bool:
    """Whether to offer "Lock" (``timesheets.period_lock`` decides again): finance and admins."""
    return (
        user.has_perm("projects.add_lockedperiod")
        and not is_read_only(user)
        and (s.is_admin(user) or has_role(user, Role.FINANCE))
    )


def _unapproved_by_month(first: dt.date, last: dt.date) -> dict[dt.date, dict[str, int]]:
    """Time entries and expenses not yet approved (draft, submitted, rejected) per month: two queries."""
    counts: dict[dt.date, dict[str, int]] = {}
    for key, model in (("time", TimeEntry), ("expenses", Expense)):
        rows = (
            model.objects.filter(date__gte=first, date__lt=_next_month(last), status__in=UNAPPROVED)
            .annotate(month=TruncMonth("date"))
            .values("month")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            month = row["month"]
            month = month.date() if isinstance(month, dt.datetime) else month
            counts.setdefault(month, {"time": 0, "expenses": 0})[key] = row["n"]
    return counts


class PeriodListView(Guarded):
    """The last 18 months, locked (by whom, when) or open; finance locks an open month from here."""

    permission_required = ("projects.view_lockedperiod",)

    def get(self, request):
        current = timezone.localdate().replace(day=1)
        months = _months_back(current, PERIOD_MONTHS)
        locked = {
            period.month: period
            for period in LockedPeriod.objects.filter(month__gte=months[-1], month__lte=current).select_related(
                "locked_by"
            )
        }
        can_lock = _can_lock(request.user)
        pending = _unapproved_by_month(months[-1], current) if can_lock else {}
        rows = [
            {
                "month": month,
                "period": locked.get(month),
                "current": month == current,
                "pending": pending.get(month, {"time": 0, "expenses": 0}),
            }
            for month in months
        ]
        context = {"rows": rows, "can_lock": can_lock, "locked_count": len(locked)}
        return render(request, "projects/period_list.html", context)


class PeriodLockView(Guarded):
    """GET ``?month=YYYY-MM`` (default: last month, the one finance usually closes): what locking the month
    means; POST: lock it (finance)."""

    permission_required = ("projects.add_lockedperiod",)
    writes = True

    def get(self, request):
        if request.GET.get("month"):
            month = ft.parse_month(request.GET.get("month"))
            if month is None:
                messages.error(request, "Choose the month to lock from the list.")
                return redirect("projects:period-list")
        else:
            month = (timezone.localdate().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        period = LockedPeriod.objects.filter(month=month).select_related("locked_by").first()
        if period is not None:
            messages.info(
                request,
                f"{month.strftime('%B %Y')} is already locked (by {_name(period.locked_by)} on "
                f"{timezone.localtime(period.locked_at):%Y-%m-%d %H:%M}).",
            )
            return redirect("projects:period-list")
        pending = _unapproved_by_month(month, month).get(month, {"time": 0, "expenses": 0})
        context = {
            "month": month,
            "month_value": month.strftime("%Y-%m"),
            "pending": pending,
            "is_current": month == timezone.localdate().replace(day=1),
            "is_future": month > timezone.localdate().replace(day=1),
        }
        return render(request, "projects/period_confirm_lock.html", context)

    def post(self, request):
        form = ft.PeriodLockForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Nothing was locked. " + " ".join(form.errors["month"]))
            return redirect("projects:period-list")
        month = form.cleaned_data["month"]
        try:
            period = ts.period_lock(actor=request.user, month=month)
        except DomainError as exc:
            messages.error(request, f"{month.strftime('%B %Y')} was not locked. {exc.message}")
        else:
            messages.success(
                request,
                f"{period} is locked: no time or expense dated in it can be logged, changed or submitted any more.",
            )
        return redirect("projects:period-list")


# --- a project's team ---------------------------------------------------------------------------------


def _role_labels(user) -> list[str]:
    """The person's role labels from their prefetched groups."""
    return sorted(Role(group.name).label for group in user.groups.all() if group.name in Role.values)


def _team_candidates(project: Project):
    """The add form's list: active people holding a logging role who are not on the team yet."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[role.value for role in LOGGING_ROLES])
        .exclude(project_memberships__project=project)
        .distinct()
        .prefetch_related("groups")
        .order_by("first_name", "last_name", "username")
    )


def _rate_card_categories(project: Project) -> list[str]:
    return list(project.rate_card.order_by("labour_category").values_list("labour_category", flat=True).distinct())


def _team_refusal(user, project: Project) -> str | None:
    """Why the person may not change the team now, or None (``projects.members`` decides again on POST)."""
    if is_read_only(user):
        return "Auditors can view everything but change nothing."
    refusal = member_refusal(user, project)
    if refusal:
        return refusal
    if project.status == Project.Status.CLOSED:
        return f"{project.number} is closed; its team no longer changes."
    return None


def _team_page(
    request: HttpRequest,
    project: Project,
    *,
    add_form=None,
    error: str = "",
    row_error: tuple[int, str] | None = None,
    row_value: tuple[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    refusal = _team_refusal(user, project)
    members = sorted(
        project.members.select_related("user").prefetch_related("user__groups"),
        key=lambda member: (_name(member.user).casefold(), member.pk),
    )
    categories = _rate_card_categories(project) if refusal is None else []
    rows = []
    for member in members:
        row: dict[str, Any] = {
            "member": member,
            "roles": _role_labels(member.user),
            "is_manager": member.user_id == project.project_manager_id,
            "error": row_error[1] if row_error and row_error[0] == member.pk else "",
        }
        if refusal is None:
            wanted = row_value[1] if row_value and row_value[0] == member.pk else member.labour_category
            choices = categories + ([member.labour_category] if member.labour_category not in categories else [])
            row["form"] = ft.TeamMemberChangeForm(
                initial={"labour_category": wanted},
                categories=[c for c in choices if c],
                auto_id=f"id_member_{member.public_id}_%s",
            )
        rows.append(row)
    if refusal is None:
        if add_form is None:
            add_form = ft.TeamMemberAddForm(people=_team_candidates(project), categories=categories)
        else:
            add_form.fields["user"].queryset = _team_candidates(project)
    context = {
        "project": project,
        "rows": rows,
        "refusal": refusal,
        "add_form": add_form if refusal is None else None,
        "error": error,
        "manager_on_team": any(row["is_manager"] for row in rows),
    }
    return render(request, "projects/team.html", context, status=status)


def _team_member(request: HttpRequest, public_id) -> ProjectMember:
    """A team member of a project the person may see; else 404."""
    try:
        return ProjectMember.objects.select_related("project", "user").get(
            public_id=public_id, project__in=s.projects_visible_to(request.user)
        )
    except (ProjectMember.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such team member.") from exc


def _team_redirect(project: Project) -> HttpResponse:
    return redirect("projects:project-team", public_id=project.public_id)


class ProjectTeamView(Guarded):
    """Who may log time and expenses on the project; its project manager and admins change it."""

    permission_required = ("projects.view_project", "projects.view_projectmember")

    def get(self, request, public_id):
        return _team_page(request, s.access_project(user=request.user, public_id=public_id))


class ProjectTeamAddView(Guarded):
    permission_required = ("projects.view_project", "projects.add_projectmember")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        project = s.access_project(user=request.user, public_id=public_id)
        # Any active person resolves here, so the service names what is wrong (no logging role, already on it).
        people = get_user_model().objects.filter(is_active=True).prefetch_related("groups")
        form = ft.TeamMemberAddForm(request.POST, people=people, categories=_rate_card_categories(project))
        if not form.is_valid():
            return _team_page(request, project, add_form=form, status=400)
        try:
            member = project_member_add(
                actor=request.user,
                project=project,
                user=form.cleaned_data["user"],
                labour_category=form.cleaned_data["labour_category"],
            )
        except DomainError as exc:
            apply_domain_errors(exc, form)
            return _team_page(request, project, add_form=form, error=exc.message, status=exc.status_code)
        category = f" as {member.labour_category}" if member.labour_category else ""
        messages.success(
            request, f"{_name(member.user)} is on the team of {project.number}{category}; they may log time now."
        )
        return _team_redirect(project)


class ProjectTeamMemberView(Guarded):
    """POST only: change a member's usual labour category."""

    permission_required = ("projects.view_project", "projects.change_projectmember")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        member = _team_member(request, public_id)
        project = member.project
        value = request.POST.get("labour_category", "").strip()
        try:
            member = project_member_update(actor=request.user, member=member, labour_category=value)
        except DomainError as exc:
            message = next(iter(exc.errors.get("labour_category", [])), exc.message)
            return _team_page(
                request,
                project,
                row_error=(member.pk, message),
                row_value=(member.pk, value),
                error=exc.message,
                status=exc.status_code,
            )
        if member.labour_category:
            messages.success(request, f"{_name(member.user)}'s usual labour category is now {member.labour_category}.")
        else:
            messages.success(request, f"{_name(member.user)} has no usual labour category now.")
        return _team_redirect(project)


class ProjectTeamRemoveView(Guarded):
    """GET: the confirmation (with what they logged, which stays); POST: take them off the team."""

    permission_required = ("projects.view_project", "projects.delete_projectmember")
    writes = True

    def get(self, request, public_id):
        member = _team_member(request, public_id)
        project = member.project
        refusal = _team_refusal(request.user, project)
        context = {
            "member": member,
            "project": project,
            "refusal": refusal,
            "time_count": TimeEntry.objects.filter(project=project, person=member.user).count(),
            "expense_count": Expense.objects.filter(project=project, person=member.user).count(),
        }
        return render(request, "projects/team_confirm_remove.html", context, status=403 if refusal else 200)

    def post(self, request, public_id):
        member = _team_member(request, public_id)
        project, name = member.project, _name(member.user)
        try:
            project_member_remove(actor=request.user, member=member)
        except DomainError as exc:
            messages.error(request, f"{name} was not taken off the team. {exc.message}")
        else:
            messages.success(
                request,
                f"{name} is no longer on the team of {project.number}: they log nothing more on it; "
                "what they logged stays as it is.",
            )
        return _team_redirect(project)
