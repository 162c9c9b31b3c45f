"""The tax and totals of an invoice from its lines, through the tax engine (``tax.engines.calculate``).

Drafts are refigured whenever their lines change; issuing refigures once more with the issue date as the
tax point and stores the evidence. Rounding happens in the engine (EN 16931: lines first, then tax per
category on the sum), never here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from customers.tax_parties import tax_context_for
from tax.context import LineKind, SupplyKind, TaxContext, TaxResult
from tax.engines import calculate
from tax.rates import RateBook

from .models import Invoice, InvoiceLine


def tax_point_of(invoice: Invoice) -> dt.date:
    """The issue date once issued; for a draft the day it would be issued (today). A credit note reverses the
    VAT of the supply it corrects, so its tax point is the credited invoice's (the same rates apply)."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.credited_invoice_id:
        credited_on = invoice.credited_invoice.issue_date
        if credited_on:
            return credited_on
    return invoice.issue_date or timezone.localdate()


def invoice_tax_context(
    invoice: Invoice, lines: Sequence[InvoiceLine] | None = None, *, tax_point: dt.date | None = None
) -> TaxContext:
    """The tax context of the invoice's lines (each line's id is its position). Raises
    ``backbone.errors.ValidationFailed`` naming what is missing (``buyer.country``…)."""
    lines = list(invoice.lines.all()) if lines is None else list(lines)
    data = [
        {
            "id": str(line.position),
            "net_amount": str(-line.net_amount if line.kind == InvoiceLine.Kind.DISCOUNT else line.net_amount),
            "category": line.product_tax_category or "S",
            "supply_kind": SupplyKind.GENERAL_SERVICE,
            "kind": LineKind.ALLOWANCE if line.kind == InvoiceLine.Kind.DISCOUNT else LineKind.LINE,
            "description": line.description[:200],
        }
        for line in lines
    ]
    return tax_context_for(
        legal_entity=invoice.legal_entity,
        customer=invoice.customer,
        lines=data,
        tax_point=tax_point or tax_point_of(invoice),
        currency=invoice.currency,
    )


def breakdown_of(result: TaxResult) -> list[dict]:
    """The VAT breakdown (EN 16931 BG-23) with the legal notes, as stored on the invoice."""
    return [
        {
            "category": row.category,
            "rate": str(row.rate),
            "taxable_amount": str(row.taxable_amount),
            "tax_amount": str(row.tax_amount),
            "exemption_reason_code": row.exemption_reason_code,
            "exemption_reason": row.exemption_reason,
        }
        for row in result.breakdown
    ]


def invoice_figures(
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    *,
    tax_point: dt.date | None = None,
    rates: RateBook | None = None,
) -> tuple[TaxContext, TaxResult]:
    """Run the engine over the lines and set each line's category and rate and the invoice's totals and
    breakdown on the objects, writing nothing: for lines and drafts not saved yet (an invoice run figures a
    new draft before it inserts it, so that it is written once, with its totals). Raises
    ``ValidationFailed`` like ``invoice_tax_context``. ``rates``: see ``invoice_refigure``."""
    context = invoice_tax_context(invoice, lines, tax_point=tax_point)
    result = calculate(context, rates=rates)
    by_id = {row.line_id: row for row in result.lines}
    for line in lines:
        row = by_id.get(str(line.position))
        if row is not None:
            line.tax_category, line.tax_rate = row.category, row.rate
    invoice.net_total = result.net_amount
    invoice.tax_total = result.tax_amount
    invoice.gross_total = result.gross_amount
    invoice.tax_breakdown = breakdown_of(result)
    invoice.legal_notes = list(result.legal_notes)
    return context, result


def invoice_refigure(
    invoice: Invoice,
    lines: Sequence[InvoiceLine] | None = None,
    *,
    tax_point: dt.date | None = None,
    rates: RateBook | None = None,
) -> tuple[TaxContext, TaxResult]:
    """Run the engine over the lines and write each line's category and rate and the invoice's totals and
    breakdown (the caller's transaction saves them: two UPDATE statements). Returns the context and result
    so that issuing can store them as evidence.

    ``rates``: the rate book to calculate with (``tax.selectors.rate_book()``), for a caller that figures
    many invoices in a row (an invoice run reads it once, not once an invoice: it holds every VAT rate); by
    default the engine reads the rates in the database now, as approving and issuing always do."""
    lines = list(invoice.lines.all()) if lines is None else list(lines)
    context, result = invoice_figures(invoice, lines, tax_point=tax_point, rates=rates)
    if lines:
        InvoiceLine.objects.bulk_update(lines, ["tax_category", "tax_rate"])
    Invoice.objects.filter(pk=invoice.pk).update(
        net_total=invoice.net_total,
        tax_total=invoice.tax_total,
        gross_total=invoice.gross_total,
        tax_breakdown=invoice.tax_breakdown,
        legal_notes=invoice.legal_notes,
    )
    return context, result
