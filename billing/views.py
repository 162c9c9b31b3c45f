"""Pages of billing: invoice runs (start, follow, retry, work through their exceptions) and invoices (list,
one invoice as it will print, and its transitions: approve, return to draft, issue, discard).

Thin on purpose: parse the request, check access through the selectors, call one service, render. Every
view declares the model permissions it needs (signed out → login, missing permission → 403); an object
outside the person's scope answers 404 through the ``access_*`` selectors. Buttons are offered from the
selectors' answers, but the service decides: its refusal (a ``DomainError``) is shown on the page as an
alert with its status code, and the response carries that code, never a 500.

The services are imported inside the views (``billing.services`` for runs, ``billing.issuing`` for the
transitions) so that the pages load while those modules are being written.
"""

from __future__ import annotations

import itertools
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from backbone.errors import DomainError
from backbone.views import Guarded

from . import forms as f
from . import selectors as s
from .credit_views import credit_notes_panel_context
from .delivery_views import delivery_panel_context
from .draft_views import draft_editor_context
from .models import Invoice, InvoiceRun, RunException
from .portal_views import disputes_panel_context

PAGE_SIZE = 25

UNIT_LABELS = {"HUR": "h", "DAY": "days", "MON": "months", "C62": "unit", "H87": "pcs"}

# What to do about each kind of exception, and on which record (ROLES.md: finance's work queue).
EXCEPTION_HELP: dict[str, tuple[str, str]] = {
    RunException.Reason.PO_MISSING: (
        "project",
        "The customer requires a purchase order number on its invoices. Record the PO on the project (a change "
        "order on the billing terms), then retry the run.",
    ),
    RunException.Reason.BILLING_ADDRESS_MISSING: (
        "customer",
        "Without a billing address there is no buyer to invoice and no place of supply. Add the billing "
        "address to the customer, then retry.",
    ),
    RunException.Reason.RATE_MISSING: (
        "project",
        "The rate card in force on the item's date has no rate for its labour category. Add the rate with a "
        "change order, or correct the entry's labour category.",
    ),
    RunException.Reason.CONTRACT_NOT_IN_FORCE: (
        "project",
        "No contract version was in force on the item's date. Check the entry's date or amend the contract's "
        "effective dates.",
    ),
    RunException.Reason.TAX_CONTEXT_INCOMPLETE: (
        "customer",
        "The tax engine lacks a fact it needs (the buyer's country, business or consumer, a VAT ID). Complete "
        "the customer's record.",
    ),
    RunException.Reason.CURRENCY_MISMATCH: (
        "project",
        "The item is in another currency than its project. Correct the item, or bill it separately.",
    ),
    RunException.Reason.CUSTOMER_NOT_BILLABLE: (
        "customer",
        "The customer is on hold, archived or has no billing entity. Resolve the account's status first.",
    ),
}


def _url(name: str, **kwargs) -> str | None:
    """The URL of a page another app may not have wired yet: ``None`` when it is missing."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _number(value: Any) -> str:
    """A decimal string without trailing zeros: "40.0000" → "40", "12.50" → "12.5"."""
    if value in (None, ""):
        return ""
    try:
        return f"{Decimal(str(value)).normalize():f}"
    except InvalidOperation:
        return str(value)


def _htmx_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _error_context(exc: DomainError | None) -> dict[str, Any] | None:
    """A service's refusal as the page shows it: the message, the HTTP status and the per-field messages
    that say more than the message itself."""
    if exc is None:
        return None
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = ""
    details = [
        (key, message)
        for key, values in (exc.errors or {}).items()
        for message in (values if isinstance(values, list | tuple) else [values])
        if str(message) not in exc.message
    ]
    return {"message": exc.message, "status_code": exc.status_code, "phrase": phrase, "details": details}


def _apply_domain_errors(form, exc: DomainError) -> None:
    """Put a service's messages next to the inputs they name; the rest become the form's own error."""
    placed = False
    for key, values in (exc.errors or {}).items():
        if key in form.fields:
            for message in values if isinstance(values, list | tuple) else [values]:
                form.add_error(key, str(message))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


# --- invoice runs -------------------------------------------------------------------------------------------


class RunListView(Guarded):
    """Runs newest first, with the form that starts one (for those who may)."""

    permission_required = ("billing.view_invoicerun",)

    def get(self, request):
        return _run_list(request)


def _run_list(request, *, form: f.RunStartForm | None = None, error=None, status: int = 200) -> HttpResponse:
    user = request.user
    can_start = s.run_can_start(user=user)
    if can_start and form is None:
        form = f.RunStartForm(today=timezone.localdate())
    page_obj = Paginator(s.run_list(user=user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page_obj,
        "runs": page_obj.object_list,
        "can_start": can_start,
        "start_form": form if can_start else None,
        "error": _error_context(error),
    }
    return render(request, "billing/run_list.html", context, status=status)


class RunStartView(Guarded):
    """POST only: start a run for a legal entity and period; the run works in the background."""

    permission_required = ("billing.start_invoicerun",)
    writes = True
    http_method_names = ["post"]

    def post(self, request):
        form = f.RunStartForm(request.POST, today=timezone.localdate())
        if not form.is_valid():
            return _run_list(request, form=form, status=400)
        from billing import services

        data = form.cleaned_data
        try:
            run = services.invoice_run_start(
                actor=request.user,
                legal_entity=data["legal_entity"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                trigger="page",
            )
        except DomainError as exc:
            _apply_domain_errors(form, exc)
            return _run_list(request, form=form, error=exc, status=exc.status_code)
        messages.success(
            request,
            f"Run {run.number} started for {run.legal_entity}, {run.period_start:%Y-%m-%d} to "
            f"{run.period_end:%Y-%m-%d}. This page follows its progress.",
        )
        return redirect("billing:run-detail", public_id=run.public_id)


def _progress_context(run: InvoiceRun, *, exception_count: int | None = None) -> dict[str, Any]:
    """The progress card's figures. A run writes its invoice and item counts when it completes; while it
    works they are counted from what it made so far (two small queries per poll)."""
    active = s.run_is_active(run)
    made = s.run_made_so_far(run) if active else {"invoices": run.invoices_created, "items": run.items_billed}
    return {
        "run": run,
        "active": active,
        "stuck": s.run_is_stuck(run),
        "percent": run.progress_percent,
        "invoices_made": made["invoices"],
        "items_made": made["items"],
        "exception_count": run.exceptions.count() if exception_count is None else exception_count,
    }


def _exception_groups(exceptions: list[RunException], user) -> list[dict[str, Any]]:
    """The exceptions by reason, each with what to do and, per row, a link to the record to fix."""
    see_projects = user.has_perm("projects.view_project")
    see_customers = user.has_perm("customers.view_customer")
    labels = dict(RunException.Reason.choices)
    groups = []
    for reason, rows in itertools.groupby(exceptions, key=lambda e: e.reason):
        fix_on, hint = EXCEPTION_HELP.get(reason, ("project", ""))
        items, totals = [], {}
        for exception in rows:
            project = exception.project
            customer = exception.customer or (project.customer if project else None)
            project_url = (
                _url("projects:project-detail", public_id=project.public_id) if project and see_projects else None
            )
            customer_url = (
                _url("customers:customer-detail", public_id=customer.public_id) if customer and see_customers else None
            )
            if exception.amount is not None:
                currency = project.currency if project else ""
                totals[currency] = totals.get(currency, Decimal(0)) + exception.amount
            items.append(
                {
                    "exception": exception,
                    "project": project,
                    "customer": customer,
                    "project_url": project_url,
                    "customer_url": customer_url,
                    "currency": project.currency if project else "",
                    "fix_url": customer_url if fix_on == "customer" else project_url,
                    "fix_label": "Open customer" if fix_on == "customer" else "Open project",
                }
            )
        groups.append(
            {
                "reason": reason,
                "label": labels.get(reason, reason),
                "hint": hint,
                "rows": items,
                "count": len(items),
                "totals": sorted(totals.items()),
            }
        )
    return groups


class RunDetailView(Guarded):
    """One run: its progress (polled while it works), the invoices it made and what it could not bill."""

    permission_required = ("billing.view_invoicerun",)

    def get(self, request, public_id):
        return _run_detail(request, s.access_run(user=request.user, public_id=public_id))


def _run_detail(request, run: InvoiceRun, *, error=None, status: int = 200) -> HttpResponse:
    user = request.user
    invoices = list(s.run_invoices(user=user, run=run))
    totals: dict[str, Decimal] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.gross_total
    exceptions = list(s.run_exceptions(run))
    context = {
        **_progress_context(run, exception_count=len(exceptions)),
        "invoices": invoices,
        "invoice_totals": sorted(totals.items()),
        "groups": _exception_groups(exceptions, user),
        "can_retry": s.run_can_retry(user=user, run=run),
        "invoice_list_url": f"{reverse('billing:invoice-list')}?run={run.public_id}",
        "error": _error_context(error),
    }
    return render(request, "billing/run_detail.html", context, status=status)


class RunProgressView(Guarded):
    """The progress card alone, polled by htmx every second while the run is queued or running. Once the
    run is done, an htmx request is told to reload the page (``HX-Refresh``): the invoices and exceptions
    it made appear, and the reloaded page polls no more."""

    permission_required = ("billing.view_invoicerun",)

    def get(self, request, public_id):
        run = s.access_run(user=request.user, public_id=public_id)
        context = _progress_context(run)
        context["can_retry"] = s.run_can_retry(user=request.user, run=run)
        response = render(request, "billing/partials/run_progress.html", context)
        if getattr(request, "htmx", False) and not context["active"]:
            response["HX-Refresh"] = "true"
        return response


class RunRetryView(Guarded):
    """POST only: run a failed (or stuck) run again; the service decides whether it may."""

    permission_required = ("billing.start_invoicerun",)
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        run = s.access_run(user=request.user, public_id=public_id)
        from billing import services

        try:
            retried = services.invoice_run_retry(actor=request.user, run=run)
        except DomainError as exc:
            return _run_detail(
                request, s.access_run(user=request.user, public_id=public_id), error=exc, status=exc.status_code
            )
        run = retried if isinstance(retried, InvoiceRun) else run
        messages.success(request, f"Run {run.number} was queued again; this page follows its progress.")
        return redirect("billing:run-detail", public_id=run.public_id)


# --- invoices -------------------------------------------------------------------------------------------------


class InvoiceListView(Guarded):
    permission_required = ("billing.view_invoice",)

    def get(self, request):
        user = request.user
        invoices = s.invoice_list(user=user)
        may_see_runs = user.has_perm("billing.view_invoicerun")
        form = f.InvoiceFilterForm(
            request.GET or None,
            invoices=s.invoices_visible_to(user),
            runs=s.runs_visible_to(user) if may_see_runs else None,
        )
        filters = form.filters()
        if filters.get("q"):
            invoices = invoices.filter(Q(number__icontains=filters["q"]))
        for name in ("status", "customer", "legal_entity", "project", "run"):
            if filters.get(name):
                invoices = invoices.filter(**{name: filters[name]})
        page_obj = Paginator(invoices.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
        context = {
            "filter_form": form,
            "page_obj": page_obj,
            "invoices": page_obj.object_list,
            "is_filtered": any(value for key, value in request.GET.items() if key != "page"),
            "may_see_runs": may_see_runs,
            "can_start_runs": s.run_can_start(user=user),
        }
        template = "billing/partials/invoice_table.html" if _htmx_partial(request) else "billing/invoice_list.html"
        response = render(request, template, context)
        patch_vary_headers(response, ("HX-Request",))
        return response


class InvoiceDetailView(Guarded):
    permission_required = ("billing.view_invoice",)

    def get(self, request, public_id):
        return _invoice_detail(request, s.access_invoice(user=request.user, public_id=public_id))


def _rate_text(rate) -> str:
    return f"{_number(rate)} %" if rate is not None else ""


def _invoice_detail(
    request,
    invoice: Invoice,
    *,
    error: DomainError | None = None,
    reason_forms: dict[str, f.ReasonForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    lines = s.invoice_lines(invoice)
    for line in lines:
        line.quantity_text = _number(line.quantity)
        line.unit_label = UNIT_LABELS.get(line.unit, line.unit)
        line.rate_text = _rate_text(line.tax_rate)
        for item in line.items.all():
            item.quantity_text = _number(item.quantity)
    seller, buyer = s.invoice_parties(invoice)
    actions = s.invoice_actions(user=user, invoice=invoice)
    forms = {
        "return_to_draft": f.ReasonForm(prefix="return_to_draft"),
        "discard": f.ReasonForm(prefix="discard"),
        **(reason_forms or {}),
    }
    breakdown = [
        {**row, "rate_text": _rate_text(row.get("rate")) if row.get("rate") not in (None, "") else ""}
        for row in invoice.tax_breakdown or []
    ]
    calculation_url = None
    if invoice.tax_calculation_id and user.has_perm("tax.view_taxcalculation"):
        calculation_url = _url("tax:calculation-detail", public_id=invoice.tax_calculation.public_id)
    context = {
        "invoice": invoice,
        "seller": seller,
        "buyer": buyer,
        "lines": lines,
        "item_count": sum(len(line.items.all()) for line in lines),
        "breakdown": breakdown,
        "actions": actions,
        "return_form": forms["return_to_draft"],
        "discard_form": forms["discard"],
        "error": _error_context(error),
        "project_url": _url("projects:project-detail", public_id=invoice.project.public_id)
        if invoice.project_id and user.has_perm("projects.view_project")
        else None,
        "customer_url": _url("customers:customer-detail", public_id=invoice.customer.public_id)
        if user.has_perm("customers.view_customer")
        else None,
        "run_url": _url("billing:run-detail", public_id=invoice.run.public_id)
        if invoice.run_id and user.has_perm("billing.view_invoicerun")
        else None,
        "credited_url": _url("billing:invoice-detail", public_id=invoice.credited_invoice.public_id)
        if invoice.credited_invoice_id
        else None,
        "calculation_url": calculation_url,
        "awaiting_second_approval": invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id is not None,
        "credit_panel": credit_notes_panel_context(user=user, invoice=invoice),
        "draft_editor": draft_editor_context(user=user, invoice=invoice),
        "delivery_panel": delivery_panel_context(user=user, invoice=invoice),
        "disputes_panel": disputes_panel_context(user=user, invoice=invoice),
    }
    return render(request, "billing/invoice_detail.html", context, status=status)


class InvoiceActionView(Guarded):
    """POST only: one transition of an invoice through ``billing.issuing``. The service decides; its refusal
    is shown on the invoice's page with its status code."""

    writes = True
    http_method_names = ["post"]
    action = ""
    needs_reason = False

    def call(self, issuing, *, actor, invoice: Invoice, reason: str):
        raise NotImplementedError

    def success_message(self, invoice: Invoice) -> str:
        raise NotImplementedError

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = None
        if self.needs_reason:
            form = f.ReasonForm(request.POST, prefix=self.action)
            if not form.is_valid():
                return _invoice_detail(request, invoice, reason_forms={self.action: form}, status=400)
        from billing import issuing

        try:
            result = self.call(
                issuing, actor=request.user, invoice=invoice, reason=form.cleaned_data["reason"] if form else ""
            )
        except DomainError as exc:
            if form is not None and "reason" in (exc.errors or {}):
                form.add_error("reason", exc.message)
            fresh = s.access_invoice(user=request.user, public_id=public_id)  # the refused call changed nothing
            return _invoice_detail(
                request,
                fresh,
                error=exc,
                reason_forms={self.action: form} if form is not None else None,
                status=exc.status_code,
            )
        invoice = result if isinstance(result, Invoice) else invoice
        messages.success(request, self.success_message(invoice))
        return redirect("billing:invoice-detail", public_id=invoice.public_id)


class InvoiceApproveView(InvoiceActionView):
    permission_required = ("billing.approve_invoice",)
    action = "approve"

    def call(self, issuing, *, actor, invoice, reason):
        return issuing.invoice_approve(actor=actor, invoice=invoice)

    def success_message(self, invoice):
        if invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id and not invoice.second_approved_by_id:
            return f"{invoice} is approved by you; it is above your approval limit, so a second approver is needed."
        return f"{invoice} is approved and can be issued."


class InvoiceReturnToDraftView(InvoiceActionView):
    permission_any = ("billing.approve_invoice", "billing.change_invoice")
    action = "return_to_draft"
    needs_reason = True

    def call(self, issuing, *, actor, invoice, reason):
        return issuing.invoice_return_to_draft(actor=actor, invoice=invoice, reason=reason)

    def success_message(self, invoice):
        return f"{invoice} is a draft again; its approvals were withdrawn."


class InvoiceIssueView(InvoiceActionView):
    permission_required = ("billing.issue_invoice",)
    action = "issue"

    def call(self, issuing, *, actor, invoice, reason):
        return issuing.invoice_issue(actor=actor, invoice=invoice)

    def success_message(self, invoice):
        return f"Invoice {invoice} was issued; from now on it cannot change (corrections are credit notes)."


class InvoiceDiscardView(InvoiceActionView):
    permission_required = ("billing.change_invoice",)
    action = "discard"
    needs_reason = True

    def call(self, issuing, *, actor, invoice, reason):
        return issuing.invoice_discard(actor=actor, invoice=invoice, reason=reason)

    def success_message(self, invoice):
        return f"{invoice} was discarded; its items are free for the next run."
