"""The credit note pages: "Credit…" on an issued invoice (the form, then the new draft credit note's page), and
the context of the panel that lists an invoice's credit notes with its remaining balance.

Thin like ``billing.views``: access through ``billing.selectors.access_invoice`` (404 outside the person's
scope), one service (``billing.credit_notes.credit_note_create``), its refusal put onto the fields it names,
with the refusal's status code, never a 500. Finance (``billing.add_invoice``) only; auditors never.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from backbone.errors import DomainError, TransitionNotAllowed
from backbone.money import format_money
from backbone.roles import is_read_only
from backbone.views import Guarded

from . import credit_notes as cn
from . import selectors as s
from .forms_credit import CreditNoteForm
from .models import Invoice

CREATE_PERMISSION = "billing.add_invoice"


def _detail_url(invoice: Invoice) -> str:
    return reverse("billing:invoice-detail", kwargs={"public_id": invoice.public_id})


def can_credit(*, user, invoice: Invoice) -> bool:
    """Offer "Credit…": the person may create credit notes and the invoice is an issued invoice."""
    return (
        bool(getattr(user, "is_authenticated", False))
        and not is_read_only(user)
        and user.has_perm(CREATE_PERMISSION)
        and cn.credit_refusal(invoice) is None
    )


def credit_notes_panel_context(*, user, invoice: Invoice) -> dict[str, Any] | None:
    """What ``billing/partials/credit_notes_panel.html`` shows on an invoice's page (``credit_panel``): its
    credit notes (linked where the person may open them), the balance, and the "Credit…" link. None for a
    credit note or an invoice that was never issued (nothing to show). Three queries."""
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status != Invoice.Status.ISSUED:
        return None
    notes = list(cn.credit_notes_of(invoice))
    visible = set(s.invoices_visible_to(user).filter(pk__in=[note.pk for note in notes]).values_list("pk", flat=True))
    rows = [
        {
            "note": note,
            "url": reverse("billing:invoice-detail", kwargs={"public_id": note.public_id})
            if note.pk in visible
            else None,
            "credited_amount": -note.gross_total,
        }
        for note in notes
    ]
    return {
        "invoice": invoice,
        "notes": rows,
        "balance": cn.invoice_balance(invoice),
        "create_url": reverse("billing:credit-note-create", kwargs={"public_id": invoice.public_id})
        if can_credit(user=user, invoice=invoice)
        else None,
    }


class CreditNoteCreateView(Guarded):
    """GET: the form. POST: create the draft credit note and open it. An invoice that cannot be credited (a
    draft, a credit note, a discarded one) answers 409 with the reason and a link back."""

    permission_required = (CREATE_PERMISSION,)
    writes = True

    def get(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        refusal = cn.credit_refusal(invoice)
        if refusal:
            return _render(request, invoice, form=None, error=TransitionNotAllowed(refusal), status=409)
        return _render(request, invoice, form=CreditNoteForm(lines=cn.creditable_lines(invoice)))

    def post(self, request, public_id):
        invoice = s.access_invoice(user=request.user, public_id=public_id)
        refusal = cn.credit_refusal(invoice)
        if refusal:
            return _render(request, invoice, form=None, error=TransitionNotAllowed(refusal), status=409)
        form = CreditNoteForm(request.POST, lines=cn.creditable_lines(invoice))
        if not form.is_valid():
            return _render(request, invoice, form=form, status=400)
        arguments, chosen_fields = form.credit_request()
        try:
            note = cn.credit_note_create(actor=request.user, invoice=invoice, **arguments)
        except DomainError as exc:
            form.apply_domain_errors(exc, chosen_fields)
            return _render(request, invoice, form=form, error=exc, status=exc.status_code)
        release = " Issuing it releases the credited items for rebilling." if note.releases_items else ""
        messages.success(
            request,
            f"Draft credit note of {format_money(-note.gross_total, note.currency)} for {invoice.number} created; "
            f"approve and issue it to give it its number.{release}",
        )
        return redirect("billing:invoice-detail", public_id=note.public_id)


def _render(
    request: HttpRequest,
    invoice: Invoice,
    *,
    form: CreditNoteForm | None,
    error: DomainError | None = None,
    status: int = 200,
) -> HttpResponse:
    from .views import _error_context  # not at the top: the invoice page imports this module for its panel

    context = {
        "invoice": invoice,
        "form": form,
        "rows": form.rows(cn.billed_items_by_line(invoice)) if form is not None else [],
        "balance": cn.invoice_balance(invoice) if invoice.status == Invoice.Status.ISSUED else None,
        "error": _error_context(error),
        "invoice_url": _detail_url(invoice),
        "release_available": cn.RELEASE_AVAILABLE,
    }
    return render(request, "billing/credit_note_form.html", context, status=status)
