"""The quote as a PDF: what it prints (``quote_document``) and the rendering with WeasyPrint.

Rendered by the queue task ``customers.tasks.quote_pdf_render`` after the quote went out, never in a request,
and stored once on the quote with its SHA-256. Money is formatted in the customer's invoice language.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from backbone.money import MoneyError, format_money
from tax.categories import TaxCategory

from .deals import quote_tax_preview
from .models import Address, BillingModel, LegalEntityRegistration, Quote, TaxRegistration

_LOGO_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}
_LOGO_MAX_BYTES = 1024 * 1024


def _money(amount: Decimal, currency: str, locale: str) -> str:
    try:
        return format_money(amount, currency, locale=locale)
    except (MoneyError, ValueError):
        return f"{amount} {currency}"


def _number(value: Decimal) -> str:
    """1.5000 → "1.5", 40.0000 → "40": quantities and percentages without trailing zeros."""
    return format(value.normalize(), "f")


def _logo_data_uri(entity) -> str:
    """The entity's logo inlined (WeasyPrint fetches nothing over the network or from media URLs)."""
    if not entity.logo:
        return ""
    try:
        with entity.logo.open("rb") as handle:
            data = handle.read(_LOGO_MAX_BYTES + 1)
    except (FileNotFoundError, OSError, ValueError):
        return ""
    if len(data) > _LOGO_MAX_BYTES:
        return ""
    mime = next((kind for magic, kind in _LOGO_TYPES.items() if data.startswith(magic)), "")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}" if mime else ""


def quote_document(quote: Quote, *, tax=None) -> dict[str, Any]:
    """Everything the PDF prints, as plain values. ``tax``: the quote's ``TaxResult`` (computed when absent)."""
    deal = quote.deal
    entity, customer = deal.legal_entity, deal.customer
    locale = customer.invoice_language or "en"
    currency = quote.currency
    tax = tax if tax is not None else quote_tax_preview(quote=quote)
    billing = next((a for a in customer.addresses.all() if a.kind == Address.Kind.BILLING), None)
    lines = list(quote.lines.all())
    milestones = list(quote.milestones.all())
    categories = dict(TaxCategory.choices)
    models_used = {line.billing_model for line in lines}
    net_total = sum((line.net_amount for line in lines), Decimal("0"))
    billing_contact = next(
        (c for c in customer.contacts.all() if c.is_active and c.receives_invoices),
        None,
    )
    return {
        "quote": quote,
        "deal": deal,
        "brand_colour": entity.brand_colour or "#1F6FEB",
        "entity": {
            "legal_name": entity.legal_name,
            "address_lines": entity.address_lines(),
            "email": entity.email,
            "website": entity.website,
            "company_register": entity.company_register,
            "vat_numbers": [r.number for r in entity.registrations.all() if r.kind == LegalEntityRegistration.Kind.VAT],
            "logo": _logo_data_uri(entity),
        },
        "customer": {
            "legal_name": customer.legal_name,
            "number": customer.number,
            "address_lines": billing.address_lines() if billing else [],
            "vat_numbers": [r.number for r in customer.registrations.all() if r.kind == TaxRegistration.Kind.VAT],
            "contact": billing_contact.full_name if billing_contact else "",
        },
        "issued_on": timezone.localtime(quote.sent_at).date() if quote.sent_at else timezone.localdate(),
        "lines": [
            {
                "position": index + 1,
                "description": line.description,
                "phase": line.phase,
                "billing_model": BillingModel(line.billing_model).label,
                "labour_category": line.labour_category,
                "quantity": _number(line.quantity),
                "unit": line.unit,
                "unit_price": _money(line.unit_price, currency, locale),
                "discount": _number(line.discount_percent) if line.discount_percent else "",
                "markup": (
                    _number(quote.expense_markup_percent)
                    if line.billing_model == BillingModel.EXPENSES and quote.expense_markup_percent
                    else ""
                ),
                "net": _money(line.net_amount, currency, locale),
            }
            for index, line in enumerate(lines)
        ],
        "milestones": [
            {
                "name": m.name,
                "phase": m.phase,
                "planned_date": m.planned_date,
                "amount": _money(m.amount, currency, locale) if m.amount else "",
                "acceptance_criteria": m.acceptance_criteria,
            }
            for m in milestones
        ],
        "milestones_have_amounts": any(m.amount for m in milestones),
        "breakdown": [
            {
                "category": categories.get(row.category, row.category),
                "rate": _number(row.rate),
                "taxable": _money(row.taxable_amount, currency, locale),
                "tax": _money(row.tax_amount, currency, locale),
                "exemption_reason": row.exemption_reason,
            }
            for row in tax.breakdown
        ],
        "legal_notes": list(tax.legal_notes),
        "totals": {
            "net": _money(net_total, currency, locale),
            "tax": _money(tax.tax_amount, currency, locale),
            "gross": _money(tax.gross_amount, currency, locale),
        },
        "retainer": _money(quote.retainer_amount, currency, locale) if quote.retainer_amount else "",
        "has_tm": BillingModel.TIME_AND_MATERIALS in models_used,
        "has_expenses": BillingModel.EXPENSES in models_used,
        "expense_markup": _number(quote.expense_markup_percent),
        "currency": currency,
    }


def render_quote_pdf(quote: Quote) -> bytes:
    """The PDF bytes of ``quote`` (WeasyPrint; fonts and the logo are local, nothing is fetched)."""
    from weasyprint import HTML

    html = render_to_string("customers/pdf/quote.html", quote_document(quote))
    return HTML(string=html, base_url=None).write_pdf()
