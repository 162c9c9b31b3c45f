"""Pages of the draft editor (header fields, line descriptions, manual lines and discounts) and PM comments.

The invoice page (``billing.views._invoice_detail``) shows the editor through ``draft_editor_context``: on a
draft, to those who edit drafts (finance), the header form, "Add catalog item", "Add discount", and in the
lines table an inline edit of each line's description (htmx: the row comes back as a form, is saved, and
comes back as a row with the totals swapped out of band; 422 with the message on bad input) and a delete
button on manual lines and discounts. The review comments are listed to those who may read them, with a form
for those who may write them while the invoice is a draft (project managers on their projects' drafts,
finance).

Thin like ``billing.views``: access through ``billing.selectors.access_invoice`` (404 outside the person's
scope), one service of ``billing.drafts`` per POST, its refusal put onto the fields it names with its status
code, never a 500. Without htmx every form posts and redirects (or shows the invoice page with the errors).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from backbone.errors import DomainError, ValidationFailed
from backbone.roles import is_read_only
from backbone.views import Guarded

from . import drafts
from . import selectors as s
from .forms_drafts import (
    CommentForm,
    DiscountForm,
    DraftHeaderForm,
    LineDescriptionForm,
    ManualLineForm,
    apply_domain_errors,
)
from .models import Invoice, InvoiceItem, InvoiceLine

INVALID = 422  # a service refused the input: htmx swaps the row in (the invoice page's htmx-config)
CLEARED = " The first approval was cleared by this edit: the draft is approved again from the start."
EDIT = ("billing.view_invoice", "billing.change_invoice")


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


def _editor_role(user) -> bool:
    return (
        _signed_in(user)
        and not is_read_only(user)
        and all(user.has_perm(perm) for perm in (*EDIT, "billing.change_invoiceline"))
    )


def editor_flags(*, user, invoice: Invoice) -> dict[str, bool]:
    """What the person is offered on this invoice's lines: edit (descriptions), add lines, delete lines."""
    can_edit = _editor_role(user) and drafts.edit_refusal(invoice) is None
    lines_open = can_edit and invoice.kind == Invoice.Kind.INVOICE
    return {
        "can_edit": can_edit,
        "can_add_lines": lines_open and user.has_perm("billing.add_invoiceline"),
        "can_delete_lines": lines_open and user.has_perm("billing.delete_invoiceline"),
    }


def _detail_url(invoice: Invoice, anchor: str = "") -> str:
    url = reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})
    return f"{url}#{anchor}" if anchor else url


def draft_editor_context(*, user, invoice: Invoice) -> dict[str, Any] | None:
    """The invoice page's panel: None shows nothing. Bound forms of a refused POST ride on the invoice
    (``invoice.draft_forms``) so that the page shows them with their errors. Two queries (the comments and,
    for editors, the catalog for "Add catalog item")."""
    bound = getattr(invoice, "draft_forms", None) or {}
    flags = editor_flags(user=user, invoice=invoice)
    may_read_comments = _signed_in(user) and user.has_perm("billing.view_invoicecomment")
    comments = list(drafts.invoice_comments(invoice)) if may_read_comments else []
    comment_refusal = drafts.comment_refusal(user=user, invoice=invoice) if may_read_comments else "—"
    # Drafts (to comment) and approved invoices (the review is closed) show the panel; issued and discarded
    # ones only when comments were left.
    show_comments = may_read_comments and (
        invoice.status in (Invoice.Status.DRAFT, Invoice.Status.APPROVED) or bool(comments)
    )
    locked = drafts.edit_refusal(invoice) if _editor_role(user) and invoice.status == Invoice.Status.APPROVED else ""
    if not (flags["can_edit"] or show_comments or locked):
        return None
    public_id = invoice.public_id
    pending = invoice.approved_by if invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id else None
    context: dict[str, Any] = {
        **flags,
        "locked_message": locked,
        "pending_approval": pending,
        "pending_approved_at": invoice.approved_at if pending else None,
        "show_comments": show_comments,
        "comments": comments,
        "comment_form": None,
        "comment_closed": "",
        "open": bound.get("open", ""),
    }
    if flags["can_edit"]:
        context.update(
            header_form=bound.get("header") or DraftHeaderForm(invoice=invoice),
            header_url=reverse("billing:invoice-draft-header", kwargs={"public_id": public_id}),
        )
    if flags["can_add_lines"]:
        context.update(
            manual_form=bound.get("manual") or ManualLineForm(),
            manual_url=reverse("billing:invoice-draft-line-add", kwargs={"public_id": public_id}),
            discount_form=bound.get("discount") or DiscountForm(),
            discount_url=reverse("billing:invoice-draft-discount-add", kwargs={"public_id": public_id}),
        )
    if show_comments and comment_refusal is None:
        context.update(
            comment_form=bound.get("comment") or CommentForm(),
            comment_url=reverse("billing:invoice-comment-add", kwargs={"public_id": public_id}),
        )
    elif show_comments and user.has_perm("billing.add_invoicecomment") and not is_read_only(user):
        context["comment_closed"] = comment_refusal
    return context


# --- helpers ------------------------------------------------------------------------------------------------


def _is_htmx(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _page(
    request: HttpRequest,
    invoice: Invoice,
    *,
    forms: dict[str, Any] | None = None,
    error: DomainError | None = None,
    status: int,
) -> HttpResponse:
    """The invoice page again, fresh from the database (a refused call changed nothing), with the bound
    forms and the refusal."""
    from .views import _invoice_detail  # not at the top: the invoice page imports this module for its panel

    fresh = s.access_invoice(user=request.user, public_id=invoice.public_id)
    fresh.draft_forms = forms or {}
    return _invoice_detail(request, fresh, error=error, status=status)


def _done(request: HttpRequest, invoice: Invoice, message: str, *, was_pending: bool, anchor: str = "") -> HttpResponse:
    if was_pending and invoice.approved_by_id is None:
        message += CLEARED
    messages.success(request, message)
    return redirect(_detail_url(invoice, anchor))


def _was_pending(invoice: Invoice) -> bool:
    return invoice.status == Invoice.Status.DRAFT and invoice.approved_by_id is not None


def _line_or_404(invoice: Invoice, line_id) -> InvoiceLine:
    line = (
        InvoiceLine.objects.filter(invoice=invoice, public_id=line_id)
        .select_related("project")
        .prefetch_related(Prefetch("items", queryset=InvoiceItem.objects.order_by("date", "id")))
        .first()
    )
    if line is None:
        raise Http404("No such line on this invoice.")
    return line


def _decorate(line: InvoiceLine) -> InvoiceLine:
    """The figures as the invoice page prints them (``billing.views``)."""
    from .views import UNIT_LABELS, _number, _rate_text

    line.quantity_text = _number(line.quantity)
    line.unit_label = UNIT_LABELS.get(line.unit, line.unit)
    line.rate_text = _rate_text(line.tax_rate)
    return line


def _breakdown(invoice: Invoice) -> list[dict[str, Any]]:
    from .views import _rate_text

    return [
        {**row, "rate_text": _rate_text(row.get("rate")) if row.get("rate") not in (None, "") else ""}
        for row in invoice.tax_breakdown or []
    ]


def _row(
    request: HttpRequest,
    invoice: Invoice,
    line: InvoiceLine,
    *,
    form: LineDescriptionForm | None = None,
    totals: bool = False,
    status: int = 200,
) -> HttpResponse:
    """One row of the lines table: as printed, or as the description's form; with the totals block swapped
    out of band after a save."""
    context = {
        "invoice": invoice,
        "line": _decorate(line),
        "draft_editor": editor_flags(user=request.user, invoice=invoice),
        "editing": form is not None,
        "line_form": form,
        "totals_oob": totals,
        "breakdown": _breakdown(invoice) if totals else [],
    }
    return render(request, "billing/partials/draft_line_row.html", context, status=status)


def _plain(message: str, status: int) -> HttpResponse:
    """A refusal htmx does not swap in: the page's error handler shows the text."""
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


# --- the header -----------------------------------------------------------------------------------------------


class DraftHeaderView(Guarded):
    """POST only: PO number, notes, payment terms, grouping (which rebuilds the lines) and the appendix."""

    permission_required = EDIT
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = DraftHeaderForm(request.POST, invoice=invoice)
        if not form.is_valid():
            return _page(request, invoice, forms={"header": form}, status=400)
        data, was_pending = form.cleaned_data, _was_pending(invoice)
        try:
            invoice = drafts.invoice_update_header(
                actor=request.user,
                invoice=invoice,
                po_number=data["po_number"],
                notes=data["notes"],
                payment_terms_days=data["payment_terms_days"],
                grouping=data["grouping"],
                detail_appendix=data["detail_appendix"],
            )
        except DomainError as exc:
            apply_domain_errors(form, exc)
            return _page(request, invoice, forms={"header": form}, error=exc, status=exc.status_code)
        return _done(request, invoice, f"{invoice} is saved.", was_pending=was_pending, anchor="draft-editor")


# --- lines ----------------------------------------------------------------------------------------------------


class DraftLineAddView(Guarded):
    """POST only: a manual line, from the catalog or described."""

    permission_required = (*EDIT, "billing.add_invoiceline")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = ManualLineForm(request.POST)
        if not form.is_valid():
            return _page(request, invoice, forms={"manual": form, "open": "manual"}, status=400)
        was_pending = _was_pending(invoice)
        try:
            line = drafts.line_add_manual(actor=request.user, invoice=invoice, **form.arguments())
        except DomainError as exc:
            apply_domain_errors(form, exc)
            forms = {"manual": form, "open": "manual"}
            return _page(request, invoice, forms=forms, error=exc, status=exc.status_code)
        return _done(
            request,
            line.invoice,
            f"Line {line.position} added: {line.description}.",
            was_pending=was_pending,
            anchor=f"line-{line.public_id}",
        )


class DraftDiscountAddView(Guarded):
    """POST only: a discount, as a percentage of the lines' net or as an amount."""

    permission_required = (*EDIT, "billing.add_invoiceline")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = DiscountForm(request.POST)
        if not form.is_valid():
            return _page(request, invoice, forms={"discount": form, "open": "discount"}, status=400)
        was_pending = _was_pending(invoice)
        try:
            lines = drafts.line_add_discount(actor=request.user, invoice=invoice, **form.arguments())
        except DomainError as exc:
            apply_domain_errors(form, exc, DiscountForm.ALIASES)
            forms = {"discount": form, "open": "discount"}
            return _page(request, invoice, forms=forms, error=exc, status=exc.status_code)
        what = ", ".join(line.description for line in lines)
        return _done(request, lines[0].invoice, f"Discount added: {what}.", was_pending=was_pending)


class DraftLineDeleteView(Guarded):
    """POST only: delete a manual line or a discount (lines of work are refused with the reason)."""

    permission_required = (*EDIT, "billing.delete_invoiceline")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id, line_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        line = _line_or_404(invoice, line_id)
        was_pending = _was_pending(invoice)
        try:
            invoice = drafts.line_delete(actor=request.user, line=line)
        except DomainError as exc:
            return _page(request, invoice, error=exc, status=exc.status_code)
        return _done(request, invoice, f"Line {line.position} deleted: {line.description}.", was_pending=was_pending)


class DraftLineRowView(Guarded):
    """GET: one line as the table prints it (htmx: "Cancel" of an inline edit); otherwise the invoice page."""

    permission_required = ("billing.view_invoice",)

    def get(self, request, public_id, line_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        line = _line_or_404(invoice, line_id)
        if not _is_htmx(request):
            return redirect(_detail_url(invoice, f"line-{line.public_id}"))
        return _row(request, invoice, line)


class DraftLineEditView(Guarded):
    """GET: the description's inline form (htmx). POST: save it; the row comes back with the totals (out of
    band), or with the message and 422. Without htmx the POST redirects to the invoice page."""

    permission_required = (*EDIT, "billing.change_invoiceline")
    writes = True

    def get(self, request, public_id, line_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        line = _line_or_404(invoice, line_id)
        if not _is_htmx(request):
            return redirect(_detail_url(invoice, f"line-{line.public_id}"))
        refusal = drafts.edit_refusal(invoice)
        if refusal:
            return _plain(refusal, 409)
        return _row(request, invoice, line, form=LineDescriptionForm(initial={"description": line.description}))

    def post(self, request, public_id, line_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        line = _line_or_404(invoice, line_id)
        form = LineDescriptionForm(request.POST)
        htmx = _is_htmx(request)
        was_pending = _was_pending(invoice)
        try:
            if not form.is_valid():
                raise ValidationFailed("Enter the client-facing description.", field="description")
            updated = drafts.line_update(actor=request.user, line=line, description=form.cleaned_data["description"])
        except DomainError as exc:
            if not htmx:
                return _page(request, invoice, error=exc, status=exc.status_code)
            if isinstance(exc, ValidationFailed):
                apply_domain_errors(form, exc)
                return _row(request, invoice, line, form=form, status=INVALID)
            return _plain(exc.message, exc.status_code)
        if not htmx:
            return _done(request, updated.invoice, f"Line {updated.position} is saved.", was_pending=was_pending)
        invoice = updated.invoice
        response = _row(request, invoice, _line_or_404(invoice, line_id), totals=True)
        if was_pending and invoice.approved_by_id is None:
            messages.info(request, f"Line {updated.position} is saved.{CLEARED}")
            response["HX-Refresh"] = "true"  # the approvals and the buttons changed: the whole page again
        return response


# --- comments -------------------------------------------------------------------------------------------------


class CommentAddView(Guarded):
    """POST only: a review comment on a draft (project managers on their projects' drafts, finance)."""

    permission_required = ("billing.view_invoice", "billing.add_invoicecomment")
    writes = True
    http_method_names = ["post"]

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        form = CommentForm(request.POST)
        if not form.is_valid():
            return _page(request, invoice, forms={"comment": form}, status=400)
        try:
            drafts.invoice_comment_add(actor=request.user, invoice=invoice, body=form.cleaned_data["body"])
        except DomainError as exc:
            apply_domain_errors(form, exc)
            return _page(request, invoice, forms={"comment": form}, error=exc, status=exc.status_code)
        messages.success(request, "Your comment is added to the review.")
        return redirect(_detail_url(invoice, "comments"))
