"""Pages of projects: the list, a project's plan versus actual, its contract versions and what changed
between them, change orders from proposal to approval, a project made by hand, and winning a deal.

Thin on purpose: parse the request, check access through the selectors, call one service, render. Every
view declares the model permissions it needs (signed out → login, missing permission → 403); an object
outside the person's scope answers 404 through the ``access_*`` selectors. Buttons are offered from the
selectors' answers, but the service decides when one is pressed: its refusal (``NotPermitted``,
``TransitionNotAllowed``, ``ValidationFailed``) is shown as a message on the page, never a 500.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify
from django.utils.translation import get_language

from backbone.errors import DomainError
from backbone.money import MoneyError, format_money
from backbone.views import Guarded
from customers.models import BillingModel, Quote
from customers.selectors import access_deal, deal_quotes
from tax.categories import TaxCategory
from tax.rules import RULES

from . import forms as f
from . import selectors as s
from . import services
from .models import ChangeOrder, Project

PAGE_SIZE = 25
OP_LABELS = {value: label for _, group in f.OPERATION_CHOICES[1:] for value, label in group}
BILLING_LABELS = dict(BillingModel.choices)
AREA_LABELS = {
    "schedule": "Schedule",
    "budget": "Budget",
    "rate_card": "Rate card",
    "milestones": "Milestones",
    "billing_rules": "Billing rules",
}


def _url(name: str, **kwargs) -> str | None:
    """The URL of a page another app may not have wired yet: ``None`` when it is missing."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def money_text(amount, currency: str) -> str:
    if amount in (None, ""):
        return ""
    try:
        return format_money(amount, currency, locale=(get_language() or "en").replace("-", "_"))
    except (MoneyError, ValueError, InvalidOperation):
        return f"{amount} {currency}"


def _number(value: Any) -> str:
    """A decimal string without trailing zeros: "40.00" → "40", "12.50" → "12.5"."""
    if value in (None, ""):
        return ""
    try:
        return f"{Decimal(str(value)).normalize():f}"
    except InvalidOperation:
        return str(value)


def _htmx_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


# --- the project list -------------------------------------------------------------------------------------


class ProjectListView(Guarded):
    permission_required = ("projects.view_project",)

    def get(self, request):
        projects = s.project_list(user=request.user)
        form = f.ProjectFilterForm(request.GET or None, projects=s.projects_visible_to(request.user))
        filters = form.filters()
        if filters.get("q"):
            projects = projects.filter(Q(name__icontains=filters["q"]) | Q(number__icontains=filters["q"]))
        if filters.get("status"):
            projects = projects.filter(status=filters["status"])
        if filters.get("customer"):
            projects = projects.filter(customer=filters["customer"])
        if filters.get("manager"):
            projects = projects.filter(project_manager=filters["manager"])
        page_obj = Paginator(projects.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            "filter_form": form,
            "page_obj": page_obj,
            "projects": page_obj.object_list,
            "is_filtered": any(value for key, value in request.GET.items() if key != "page"),
            "can_create": s.project_can_create(user=request.user),
        }
        template = "projects/partials/project_table.html" if _htmx_partial(request) else "projects/project_list.html"
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


# --- one project --------------------------------------------------------------------------------------------


def _rate_card_rows(project: Project, today: dt.date) -> list[dict[str, Any]]:
    """Every rate card entry with its period; the one in force today per category marked."""
    entries = list(project.rate_card.order_by("labour_category", "effective_from"))
    in_force: dict[str, Any] = {}
    for entry in entries:
        if entry.effective_from <= today:
            in_force[entry.labour_category.lower()] = entry
    rows = []
    for index, entry in enumerate(entries):
        following = entries[index + 1] if index + 1 < len(entries) else None
        same_next = following if following and following.labour_category == entry.labour_category else None
        rows.append(
            {
                "entry": entry,
                "rate": money_text(entry.rate, entry.currency),
                "until": same_next.effective_from - dt.timedelta(days=1) if same_next else None,
                "in_force": in_force.get(entry.labour_category.lower()) is entry,
                "upcoming": entry.effective_from > today,
            }
        )
    return rows


def _burn_chart(project: Project, summary: s.BudgetSummary) -> dict[str, Any]:
    """The burn chart's series: the planned budget spent evenly from the planned start to the planned end
    (a point per month), and the cumulative actuals (none until time and expenses are approved)."""
    start, end, total = project.planned_start, project.planned_end, summary.planned_amount
    days = max((end - start).days, 1)
    points, day = [], start
    while day < end:
        points.append(day)
        day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    points.append(end)
    planned = [
        {"x": point.isoformat(), "y": str((total * (point - start).days / days).quantize(Decimal("0.01")))}
        for point in points
    ]
    return {"currency": project.currency, "planned": planned, "actual": [], "budget": str(total)}


def _attachment_rows(terms: dict[str, Any], user) -> list[dict[str, Any]]:
    """The frozen attachments of a version, each linked to its download when the person may open it."""
    may_open = user.has_perm("customers.view_quoteattachment")
    rows = []
    for attachment in terms.get("attachments") or []:
        url = _url("customers:quote-attachment-download", public_id=attachment["public_id"]) if may_open else None
        rows.append(
            {
                **attachment,
                "url": url,
                "kind_label": attachment["kind"].replace("_", " ").capitalize(),
                "size_kb": max(1, round(int(attachment.get("size") or 0) / 1024)),
            }
        )
    return rows


class ProjectDetailView(Guarded):
    permission_required = ("projects.view_project",)

    def get(self, request, public_id):
        return _project_detail(request, s.access_project(user=request.user, public_id=public_id))


def _project_links(user, project: Project) -> list[dict[str, str]]:
    """The project's team, and the time and expense pages filtered to it, for those who may open them."""
    team = {"public_id": project.public_id}
    wanted = [
        ("Team", "projects:project-team", team, "", "people", "projects.view_projectmember"),
        ("Log time", "projects:timesheet", {}, "", "calendar-week", "projects.add_timeentry"),
        ("Expenses", "projects:expense-list", {}, f"?project={project.public_id}", "receipt", "projects.view_expense"),
        (
            "Waiting for approval",
            "projects:approval-queue",
            {},
            f"?project={project.public_id}",
            "check2-square",
            "projects.approve_timeentry",
        ),
    ]
    links = []
    for label, name, kwargs, query, icon, perm in wanted:
        url = _url(name, **kwargs)
        if url and user.has_perm(perm):
            links.append({"label": label, "url": url + query, "icon": icon})
    return links


def _project_detail(request, project: Project, *, status_form=None, status: int = 200) -> HttpResponse:
    user = request.user
    today = timezone.localdate()
    can = {
        "budget": user.has_perm("projects.view_budgetline"),
        "rates": user.has_perm("projects.view_ratecardentry"),
        "milestones": user.has_perm("projects.view_milestone"),
        "billing": user.has_perm("projects.view_billingrule"),
        "versions": user.has_perm("projects.view_contractversion"),
        "change_orders": user.has_perm("projects.view_changeorder"),
        "alerts": user.has_perm("projects.view_budgetalert"),
    }
    context: dict[str, Any] = {
        "project": project,
        "can": can,
        "today": today,
        "can_edit": s.project_can_edit(user=user, project=project),
        "transitions": [
            status for status in Project.Status if s.project_status_allowed(user=user, project=project, status=status)
        ],
        "status_form": status_form,
        "deal_url": _url("customers:deal-detail", public_id=project.deal.public_id)
        if project.deal_id and user.has_perm("customers.view_deal")
        else None,
    }
    context["links"] = _project_links(user, project)
    if can["budget"]:
        summary = s.project_budget_summary(project)
        context.update(
            summary=summary,
            budget_rows=[
                {
                    "row": row,
                    "planned_hours": _number(row.planned_hours),
                    "planned": money_text(row.planned_amount, project.currency),
                    "actual_hours": _number(row.actual_hours),
                    "actual": money_text(row.actual_amount, project.currency),
                    "remaining": money_text(row.remaining_amount, project.currency),
                    "burn": row.burn_percent,
                }
                for row in summary.rows
            ],
            budget_total={
                "planned_hours": _number(summary.planned_hours) if summary.planned_hours else "",
                "planned": money_text(summary.planned_amount, project.currency),
                "actual": money_text(summary.actual_amount, project.currency),
                "burn": summary.burn_percent,
            },
            has_actuals=any(row.actual_amount or row.actual_hours for row in summary.rows),
            chart=_burn_chart(project, summary),
        )
    if can["rates"]:
        context["rate_rows"] = _rate_card_rows(project, today)
    if can["milestones"]:
        context["milestones"] = [
            {
                "milestone": milestone,
                "slipped": milestone.planned_date > milestone.baseline_date,
                "slip_days": (milestone.planned_date - milestone.baseline_date).days,
                "amount": money_text(milestone.amount, project.currency),
            }
            for milestone in project.milestones.all()
        ]
        context["can_accept_milestones"] = s.milestone_acceptance_refusal(user=user, project=project) is None
    if can["billing"]:
        context["billing_rules"] = [
            {
                "rule": rule,
                "retainer": money_text(rule.retainer_amount, project.currency),
                "markup": _number(rule.markup_percent),
            }
            for rule in project.billing_rules.all()
        ]
    if can["versions"]:
        versions = list(s.versions_of(project))
        context["versions"] = versions
        context["attachments"] = _attachment_rows(versions[-1].terms, user) if versions else []
        context["version_in_force"] = next(
            (
                v
                for v in sorted(versions, key=lambda v: (v.effective_from, v.number), reverse=True)
                if v.effective_from <= today
            ),
            None,
        )
    if can["change_orders"]:
        context["change_orders"] = [
            {"co": co, "delta": money_text(co.budget_delta_amount, project.currency)}
            for co in s.change_orders_visible_to(user)
            .filter(project=project)
            .select_related("proposed_by", "resulting_version")
            .order_by("-created_at", "-pk")
        ]
        context["can_propose"] = s.change_order_can_propose(user=user, project=project)
    if can["alerts"]:
        context["alerts"] = list(s.budget_alerts_of(user=user, project=project))
    return render(request, "projects/project_detail.html", context, status=status)


class ProjectStatusView(Guarded):
    """POST only: move the project along its lifecycle (holding and closing need a reason)."""

    permission_required = ("projects.change_project",)
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        project = s.access_project(user=request.user, public_id=public_id)
        form = f.StatusForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a valid status.")
            return redirect("projects:project-detail", public_id=project.public_id)
        try:
            project = services.project_set_status(
                actor=request.user,
                project=project,
                status=form.cleaned_data["status"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{project.number} is now {project.get_status_display().lower()}.")
        return redirect("projects:project-detail", public_id=project.public_id)


class ProjectCreateView(Guarded):
    """A project without a deal: its plan (rate card, budget, milestones, billing rules) becomes version 1."""

    permission_required = ("projects.add_project",)
    writes = True

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not s.project_can_create(user=request.user):
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)

    def render_form(self, request, *, form, formsets, status=200, summary=""):
        context = {"form": form, "formsets": formsets, "error_summary": summary}
        return render(request, "projects/project_form.html", context, status=status)

    def get(self, request):
        initial = {"planned_start": timezone.localdate()}
        return self.render_form(
            request, form=f.ProjectForm(user=request.user, initial=initial), formsets=f.plan_formsets()
        )

    def post(self, request):
        form = f.ProjectForm(request.POST, user=request.user)
        formsets = f.plan_formsets(request.POST)
        if not all([form.is_valid(), *(fs.is_valid() for fs in formsets.values())]):
            summary = "The project was not saved. Please correct the fields marked below."
            return self.render_form(request, form=form, formsets=formsets, status=400, summary=summary)
        sent = {prefix: fs.rows() for prefix, fs in formsets.items()}
        data = form.service_data()
        data.update({prefix: rows for prefix, (rows, _forms) in sent.items()})
        try:
            project = services.project_create(actor=request.user, data=data)
        except DomainError as exc:
            f.apply_domain_errors(exc, form, {prefix: (formsets[prefix], pair[1]) for prefix, pair in sent.items()})
            return self.render_form(request, form=form, formsets=formsets, status=exc.status_code, summary=exc.message)
        messages.success(request, f"Project {project.number} {project.name} was created with contract version 1.")
        return redirect("projects:project-detail", public_id=project.public_id)


# --- contract versions --------------------------------------------------------------------------------------


def _diff_maps(diff: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """area → key → change ("added", "changed", "moved", "removed"), for highlighting the terms' tables."""
    maps: dict[str, dict[str, str]] = {}
    for row in diff:
        maps.setdefault(row["area"], {})[row["key"]] = row["change"]
    return maps


def _rate_key(entry: dict[str, Any]) -> str:
    return f"rate:{slugify(entry['labour_category'])}:{entry['effective_from']}"


def _version_terms(terms: dict[str, Any], previous: dict[str, Any] | None, diff: list[dict[str, str]]):
    """The terms of a version ready to print, every item marked with what changed against the previous
    version; removed items come from the previous terms so that the page can show them struck through."""
    currency = terms["project"]["currency"]
    marks = _diff_maps(diff)

    def mark(area: str, key: str) -> str:
        return marks.get(area, {}).get(key, "")

    budget = [
        {
            **line,
            "change": mark("budget", line["key"]),
            "hours_text": _number(line.get("hours")),
            "rate_text": money_text(line.get("rate"), currency),
            "amount_text": money_text(line["amount"], currency),
        }
        for line in terms.get("budget", [])
    ]
    milestones = [
        {
            **m,
            "change": mark("milestones", m["key"]),
            "amount_text": money_text(m["amount"], currency),
            "slipped": m["planned_date"] > m["baseline_date"],
        }
        for m in terms.get("milestones", [])
    ]
    rates = [
        {**entry, "change": mark("rate_card", _rate_key(entry)), "rate_text": money_text(entry["rate"], currency)}
        for entry in terms.get("rate_card", [])
    ]
    rules = [
        {
            **rule,
            "change": mark("billing_rules", rule["model"]),
            "label": BILLING_LABELS.get(rule["model"], rule["model"]),
            "retainer_text": money_text(rule["retainer_amount"], currency),
            "markup_text": _number(rule["markup_percent"]),
        }
        for rule in terms.get("billing_rules", [])
    ]
    if previous is not None:
        for line in previous.get("budget", []):
            if mark("budget", line["key"]) == "removed":
                budget.append(
                    {
                        **line,
                        "change": "removed",
                        "hours_text": _number(line.get("hours")),
                        "rate_text": money_text(line.get("rate"), currency),
                        "amount_text": money_text(line["amount"], currency),
                    }
                )
        for m in previous.get("milestones", []):
            if mark("milestones", m["key"]) == "removed":
                milestones.append(
                    {**m, "change": "removed", "amount_text": money_text(m["amount"], currency), "slipped": False}
                )
        for rule in previous.get("billing_rules", []):
            if mark("billing_rules", rule["model"]) == "removed":
                rules.append(
                    {
                        **rule,
                        "change": "removed",
                        "label": BILLING_LABELS.get(rule["model"], rule["model"]),
                        "retainer_text": money_text(rule["retainer_amount"], currency),
                        "markup_text": _number(rule["markup_percent"]),
                    }
                )
    lines = [
        {
            **line,
            "billing_label": BILLING_LABELS.get(line["billing_model"], line["billing_model"]),
            "quantity_text": _number(line["quantity"]),
            "unit_price_text": money_text(line["unit_price"], currency),
            "discount_text": _number(line["discount_percent"]),
            "net_text": money_text(line["net_amount"], currency),
        }
        for line in terms.get("lines", [])
    ]
    return {
        "currency": currency,
        "project": terms["project"],
        "customer": terms.get("customer"),
        "legal_entity": terms.get("legal_entity"),
        "quote": terms.get("quote"),
        "lines": lines,
        "lines_total": money_text(
            sum((Decimal(line["net_amount"]) for line in terms.get("lines", [])), Decimal(0)), currency
        ),
        "budget": budget,
        "budget_total": money_text(
            sum((Decimal(line["amount"]) for line in terms.get("budget", [])), Decimal(0)), currency
        ),
        "rate_card": sorted(rates, key=lambda e: (e["labour_category"].lower(), e["effective_from"])),
        "milestones": sorted(milestones, key=lambda m: (m["planned_date"], m["key"])),
        "billing_rules": rules,
        "tax": _tax_display(terms.get("tax")),
        "end_changed": "planned_end" in marks.get("schedule", {}),
    }


def _tax_display(tax: dict[str, Any] | None) -> dict[str, Any] | None:
    """The frozen tax treatment: the VAT breakdown, the rules that decided it and the legal notes."""
    if not tax:
        return None
    currency = tax.get("currency", "EUR")
    categories = {category.value: category.label for category in TaxCategory}
    return {
        "breakdown": [
            {
                "category": row["category"],
                "category_label": categories.get(row["category"], row["category"]),
                "rate": _number(row["rate"]),
                "taxable": money_text(row["taxable_amount"], currency),
                "tax": money_text(row["tax_amount"], currency),
                "exemption": " — ".join(
                    x for x in (row.get("exemption_reason_code"), row.get("exemption_reason")) if x
                ),
            }
            for row in tax.get("breakdown", [])
        ],
        "net": money_text(tax.get("net_amount"), currency),
        "tax": money_text(tax.get("tax_amount"), currency),
        "gross": money_text(tax.get("gross_amount"), currency),
        "place_of_supply": tax.get("place_of_supply", ""),
        "legal_notes": tax.get("legal_notes", []),
        "rules": [(rule, RULES.get(rule, "")) for rule in tax.get("rules_fired", [])],
        "warnings": tax.get("warnings", []),
        "engine": f"{tax.get('engine', '')} {tax.get('engine_version', '')}".strip(),
    }


class VersionDetailView(Guarded):
    permission_required = ("projects.view_project", "projects.view_contractversion")

    def get(self, request, public_id, number):
        project = s.access_project(user=request.user, public_id=public_id)
        versions = list(s.versions_of(project))
        version = next((v for v in versions if v.number == number), None)
        if version is None:
            raise Http404("No such contract version.")
        previous = next((v for v in reversed(versions) if v.number < number), None)
        following = next((v for v in versions if v.number > number), None)
        diff = s.version_diff(previous, version) if previous is not None else []
        context = {
            "project": project,
            "version": version,
            "previous": previous,
            "following": following,
            "versions": versions,
            "diff": [
                {**row, "area_label": AREA_LABELS.get(row["area"], row["area"].replace("_", " "))} for row in diff
            ],
            "terms": _version_terms(version.terms, previous.terms if previous else None, diff),
            "attachments": _attachment_rows(version.terms, request.user),
            "quote_url": _url("customers:quote-detail", public_id=version.quote.public_id)
            if version.quote_id and request.user.has_perm("customers.view_quote")
            else None,
        }
        return render(request, "projects/version_detail.html", context)


# --- change orders ------------------------------------------------------------------------------------------


def _operation_text(operation: dict[str, Any], currency: str, names: dict[str, str]) -> str:
    """One operation in words, as the change order's page lists it (the hours times the rate, the amount)."""
    op = operation.get("op", "")
    label = OP_LABELS.get(op, op)
    key = operation.get("key")
    target = names.get(key, key) if key else ""
    parts = []
    if op.startswith("budget_line"):
        if op == "budget_line.add":
            parts.append(operation.get("description") or operation.get("labour_category") or "")
            if operation.get("labour_category") and operation.get("labour_category") != operation.get("description"):
                parts.append(f"({operation['labour_category']})")
        else:
            parts.append(target)
        if op != "budget_line.remove":
            hours, rate, amount = operation.get("hours"), operation.get("rate"), operation.get("amount")
            if hours and rate:
                parts.append(f"— {_number(hours)} h × {money_text(rate, currency)}")
            elif hours:
                parts.append(f"— {_number(hours)} h")
            if amount:
                parts.append(
                    f"= {money_text(amount, currency)}" if hours and rate else f"— {money_text(amount, currency)}"
                )
            if operation.get("fixed_fee"):
                parts.append("(fixed-fee scope)")
    elif op == "rate.set":
        parts.append(
            f"{operation.get('labour_category', '')} at {money_text(operation.get('rate'), currency)} per hour from "
            f"{operation.get('effective_from', '')}"
        )
    elif op == "milestone.add":
        parts.append(f"'{operation.get('name', '')}' on {operation.get('planned_date', '')}")
        if operation.get("amount") and Decimal(str(operation["amount"])):
            parts.append(f"— {money_text(operation['amount'], currency)}")
    elif op == "milestone.move":
        parts.append(f"{target} to {operation.get('planned_date', '')}")
    elif op == "milestone.change":
        changed = [
            f"{field.replace('_', ' ')} {money_text(value, currency) if field == 'amount' else repr(value)}"
            for field, value in operation.items()
            if field not in ("op", "key")
        ]
        parts.append(f"{target}: {', '.join(changed)}" if changed else target)
    elif op == "milestone.remove":
        parts.append(target)
    elif op == "end_date.set":
        parts.append(f"to {operation.get('planned_end', '')}")
    elif op.startswith("billing_rule"):
        model = operation.get("model", "")
        parts.append(BILLING_LABELS.get(model, model))
        if op == "billing_rule.set" and model == BillingModel.RETAINER:
            parts.append(f"— {money_text(operation.get('retainer_amount'), currency)} a month")
        if op == "billing_rule.set" and model == BillingModel.EXPENSES:
            parts.append(f"— markup {_number(operation.get('markup_percent'))} %")
    text = " ".join(part for part in parts if part)
    return f"{label}: {text}" if text else label


def _key_names(terms: dict[str, Any]) -> dict[str, str]:
    names = {line["key"]: f"'{line['description']}'" for line in terms.get("budget", [])}
    names.update({m["key"]: f"'{m['name']}'" for m in terms.get("milestones", [])})
    return names


def _timeline(co: ChangeOrder) -> list[dict[str, Any]]:
    """The change order's way so far: proposed, submitted, decided — with who and when."""

    def who(user) -> str:
        return (user.get_full_name() or user.get_username()) if user is not None else "someone"

    steps = [{"label": "Proposed", "when": co.created_at, "who": who(co.proposed_by), "done": True, "icon": "pencil"}]
    steps.append(
        {
            "label": "Submitted for approval",
            "when": co.submitted_at,
            "who": who(co.proposed_by) if co.submitted_at else "",
            "done": co.submitted_at is not None,
            "icon": "send",
        }
    )
    if co.status == ChangeOrder.Status.APPROVED:
        steps.append(
            {
                "label": "Approved",
                "when": co.decided_at,
                "who": who(co.decided_by),
                "done": True,
                "icon": "check2-circle",
            }
        )
    elif co.status == ChangeOrder.Status.REJECTED:
        steps.append(
            {
                "label": "Rejected",
                "when": co.decided_at,
                "who": who(co.decided_by),
                "done": True,
                "icon": "x-circle",
                "note": co.rejection_reason,
            }
        )
    else:
        steps.append({"label": "Approved or rejected", "when": None, "who": "", "done": False, "icon": "hourglass"})
    return steps


def _change_order_detail(request, co: ChangeOrder, *, reject_form=None, status: int = 200) -> HttpResponse:
    user = request.user
    project = co.project
    try:
        terms = s.current_terms(project)
    except DomainError:
        terms = {}
    names = _key_names(terms)
    version = getattr(co, "resulting_version", None) if co.status == ChangeOrder.Status.APPROVED else None
    if version is not None:
        previous = s.version_previous(version)
        names = {**_key_names(previous.terms if previous else {}), **_key_names(version.terms)}
    actions = s.change_order_actions(user=user, change_order=co)
    refusal = None
    if (
        co.status == ChangeOrder.Status.SUBMITTED
        and "approve" not in actions
        and user.has_perm("projects.approve_changeorder")
    ):
        refusal = s.change_order_approval_refusal(user=user, change_order=co)
    context = {
        "co": co,
        "project": project,
        "operations": [_operation_text(op, project.currency, names) for op in co.changes],
        "delta": money_text(co.budget_delta_amount, project.currency),
        "delta_sign": (co.budget_delta_amount > 0) - (co.budget_delta_amount < 0),
        "timeline": _timeline(co),
        "version": version,
        "actions": actions,
        "approval_refusal": refusal,
        "reject_form": reject_form or (f.RejectForm() if "reject" in actions else None),
        "can_view_versions": user.has_perm("projects.view_contractversion"),
    }
    return render(request, "projects/change_order_detail.html", context, status=status)


class ChangeOrderDetailView(Guarded):
    permission_required = ("projects.view_changeorder",)

    def get(self, request, public_id):
        return _change_order_detail(request, s.access_change_order(user=request.user, public_id=public_id))


class ChangeOrderFormMixin:
    """The change order form with its operations formset; shared by create (on a project) and edit (a draft)."""

    def _choices(self, project: Project) -> dict[str, list[tuple[str, str]]]:
        try:
            terms = s.current_terms(project)
        except DomainError:
            terms = {}
        return f.operation_choices(terms, lambda amount: money_text(amount, project.currency))

    def render_form(self, request, *, form, formset, project, co=None, status=200, summary=""):
        context = {
            "form": form,
            "formset": formset,
            "project": project,
            "co": co,
            "error_summary": summary,
            "operation_fields": f.OPERATION_FIELDS,
        }
        return render(request, "projects/change_order_form.html", context, status=status)

    def submit(self, request, *, project, co=None):
        form = f.ChangeOrderForm(request.POST, request.FILES, editing=co is not None)
        formset = f.OperationFormSet(request.POST, prefix="changes", choices=self._choices(project))
        if not all([form.is_valid(), formset.is_valid()]):
            summary = "The change order was not saved. Please correct the fields marked below."
            return self.render_form(
                request, form=form, formset=formset, project=project, co=co, status=400, summary=summary
            )
        changes, sent = formset.operations()
        header = form.header_data()
        upload = form.cleaned_data.get("acceptance_file")
        try:
            if co is None:
                co = services.change_order_create(
                    actor=request.user, project=project, changes=changes, acceptance_file=upload or None, **header
                )
                messages.success(
                    request,
                    f"Change order {co.number} was saved as a draft. Submit it when the customer has accepted it.",
                )
            else:
                data = {**header, "changes": changes, "edit_reason": form.cleaned_data.get("edit_reason", "")}
                if upload:
                    data["acceptance_file"] = upload
                co = services.change_order_update(actor=request.user, change_order=co, data=data)
                messages.success(request, f"Change order {co.number} was saved.")
        except DomainError as exc:
            f.apply_domain_errors(exc, form, {"changes": (formset, sent)})
            return self.render_form(
                request, form=form, formset=formset, project=project, co=co, status=exc.status_code, summary=exc.message
            )
        return redirect("projects:change-order-detail", public_id=co.public_id)


class ChangeOrderCreateView(ChangeOrderFormMixin, Guarded):
    permission_required = ("projects.view_project", "projects.add_changeorder")
    writes = True

    def _refused(self, request, project: Project) -> HttpResponse | None:
        if s.change_order_can_propose(user=request.user, project=project):
            return None
        if project.status == Project.Status.CLOSED:
            messages.error(request, f"{project.number} is closed; closed projects take no change orders.")
        else:
            messages.error(
                request,
                "Change orders are proposed by the project's manager, the sales rep who owns the customer, "
                "or an admin.",
            )
        return redirect("projects:project-detail", public_id=project.public_id)

    def get(self, request, public_id):
        project = s.access_project(user=request.user, public_id=public_id)
        refused = self._refused(request, project)
        if refused is not None:
            return refused
        try:
            in_force_from = s.current_version(project).effective_from
        except DomainError:
            in_force_from = project.planned_start
        # The earliest day an amendment may take effect, or today when that is later.
        start = max(timezone.localdate(), project.planned_start, in_force_from)
        form = f.ChangeOrderForm(initial={"effective_from": start})
        formset = f.OperationFormSet(prefix="changes", choices=self._choices(project), initial=[{}])
        return self.render_form(request, form=form, formset=formset, project=project)

    def post(self, request, public_id):
        project = s.access_project(user=request.user, public_id=public_id)
        return self._refused(request, project) or self.submit(request, project=project)


class ChangeOrderEditView(ChangeOrderFormMixin, Guarded):
    permission_required = ("projects.change_changeorder",)
    writes = True

    def _draft(self, request, public_id) -> ChangeOrder | None:
        co = s.access_change_order(user=request.user, public_id=public_id)
        if not s.change_order_can_edit(user=request.user, change_order=co):
            return None
        return co

    def _not_editable(self, request, public_id):
        co = s.access_change_order(user=request.user, public_id=public_id)
        if co.status != ChangeOrder.Status.DRAFT:
            messages.info(request, f"{co.number} is {co.get_status_display().lower()}; only drafts can be edited.")
            return redirect("projects:change-order-detail", public_id=co.public_id)
        raise Http404("You cannot edit this change order.")

    def get(self, request, public_id):
        co = self._draft(request, public_id)
        if co is None:
            return self._not_editable(request, public_id)
        choices = self._choices(co.project)
        initial = {name: getattr(co, name) for name in f.ChangeOrderForm.HEADER}
        form = f.ChangeOrderForm(initial=initial, editing=True)
        formset = f.OperationFormSet(
            prefix="changes",
            choices=choices,
            initial=[f.OperationForm.initial_from(op, choices) for op in co.changes] or [{}],
        )
        return self.render_form(request, form=form, formset=formset, project=co.project, co=co)

    def post(self, request, public_id):
        co = self._draft(request, public_id)
        if co is None:
            return self._not_editable(request, public_id)
        return self.submit(request, project=co.project, co=co)


class ChangeOrderActionView(Guarded):
    """POST only: one step of a change order's approval. The service decides; its refusal is the message."""

    writes = True
    http_method_names = ["post"]

    def act(self, request, co: ChangeOrder) -> HttpResponse | None:
        """Call the step's service and say what happened; a response replaces the redirect to the page."""
        raise NotImplementedError

    def post(self, request, public_id):
        co = s.access_change_order(user=request.user, public_id=public_id)
        try:
            response = self.act(request, co)
        except DomainError as exc:
            messages.error(request, exc.message)
            response = None
        return response or redirect("projects:change-order-detail", public_id=co.public_id)


class ChangeOrderSubmitView(ChangeOrderActionView):
    permission_required = ("projects.change_changeorder",)

    def act(self, request, co):
        co = services.change_order_submit(actor=request.user, change_order=co)
        messages.success(request, f"{co.number} was submitted for approval; the approvers were notified.")


class ChangeOrderApproveView(ChangeOrderActionView):
    permission_required = ("projects.approve_changeorder",)

    def act(self, request, co):
        version = services.change_order_approve(actor=request.user, change_order=co)
        messages.success(
            request,
            f"{co.number} was approved: contract version {version.number} takes effect on "
            f"{version.effective_from.isoformat()}.",
        )


class ChangeOrderRejectView(ChangeOrderActionView):
    permission_required = ("projects.approve_changeorder",)

    def act(self, request, co):
        form = f.RejectForm(request.POST)
        if not form.is_valid():
            return _change_order_detail(request, co, reject_form=form, status=400)
        try:
            co = services.change_order_reject(actor=request.user, change_order=co, reason=form.cleaned_data["reason"])
        except DomainError as exc:
            if "reason" in (exc.errors or {}):
                form.add_error("reason", exc.message)
                return _change_order_detail(request, co, reject_form=form, status=exc.status_code)
            raise
        messages.success(request, f"{co.number} was rejected; {co.proposed_by.get_username()} was told why.")


# --- the handoff: winning a deal ----------------------------------------------------------------------------


def _quote_summary(quote: Quote | None) -> dict[str, Any] | None:
    if quote is None:
        return None
    lines = list(quote.lines.all())
    return {
        "quote": quote,
        "lines": lines,
        "milestones": list(quote.milestones.all()),
        "attachments": list(quote.attachments.all()),
        "net": money_text(sum((line.net_amount for line in lines), Decimal(0)), quote.currency),
        "url": _url("customers:quote-detail", public_id=quote.public_id),
    }


class DealWinView(Guarded):
    """Mark a deal won: confirm the project manager, name and dates; the service freezes the quote into
    contract version 1 of the new project. Winning twice never makes two projects."""

    permission_required = ("customers.win_deal",)
    writes = True

    def _deal(self, request, public_id):
        deal = access_deal(user=request.user, public_id=public_id)
        quotes = list(deal_quotes(deal=deal))
        quote = next((q for q in quotes if q.status == Quote.Status.ACCEPTED), None)
        quote = quote or next((q for q in quotes if q.status == Quote.Status.SENT), None)
        return deal, quote or (quotes[0] if quotes else None)

    def _already_won(self, request, deal):
        project = Project.objects.filter(deal=deal).first()
        if project is None:
            return None
        messages.info(request, f"This deal was already won: project {project.number}.")
        if s.projects_visible_to(request.user).filter(pk=project.pk).exists():
            return redirect("projects:project-detail", public_id=project.public_id)
        return redirect(_url("customers:deal-detail", public_id=deal.public_id) or reverse("projects:project-list"))

    def render_form(self, request, *, deal, quote, form, status=200, summary=""):
        context = {
            "deal": deal,
            "summary": _quote_summary(quote),
            "form": form,
            "refusal": s.deal_win_refusal(user=request.user, deal=deal),
            "error_summary": summary,
            "deal_url": _url("customers:deal-detail", public_id=deal.public_id),
        }
        if context["refusal"] and status == 200:
            status = 403
        return render(request, "projects/deal_win.html", context, status=status)

    def get(self, request, public_id):
        deal, quote = self._deal(request, public_id)
        done = self._already_won(request, deal)
        if done is not None:
            return done
        initial = {"name": deal.title}
        if quote is not None:
            initial.update(planned_start=quote.planned_start, planned_end=quote.planned_end)
        return self.render_form(request, deal=deal, quote=quote, form=f.DealWinForm(initial=initial))

    def post(self, request, public_id):
        deal, quote = self._deal(request, public_id)
        done = self._already_won(request, deal)
        if done is not None:
            return done
        form = f.DealWinForm(request.POST)
        if not form.is_valid():
            summary = "The deal was not won. Please correct the fields marked below."
            return self.render_form(request, deal=deal, quote=quote, form=form, status=400, summary=summary)
        try:
            project, created = services.deal_win(
                actor=request.user,
                deal=deal,
                quote=quote
                if quote is not None and quote.status in (Quote.Status.ACCEPTED, Quote.Status.SENT)
                else None,
                project_manager=form.cleaned_data["project_manager"],
                name=form.cleaned_data["name"],
                planned_start=form.cleaned_data["planned_start"],
                planned_end=form.cleaned_data["planned_end"],
            )
        except DomainError as exc:
            f.apply_domain_errors(exc, form)
            return self.render_form(
                request, deal=deal, quote=quote, form=form, status=exc.status_code, summary=exc.message
            )
        if not created:
            messages.info(request, f"This deal was already won: project {project.number}.")
        else:
            messages.success(
                request,
                f"{deal.number} is won. Project {project.number} starts with contract version 1 — the prices and "
                "terms that were sold.",
            )
        return redirect("projects:project-detail", public_id=project.public_id)
