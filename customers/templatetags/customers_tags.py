"""Template helpers of the customer and catalog pages: money, IBANs, status badges, sortable headers and
Bootstrap classes on form widgets."""

from __future__ import annotations

import datetime

from django import forms, template
from django.utils.translation import get_language
from stdnum import iban as stdnum_iban

from backbone.money import MoneyError, format_money

register = template.Library()

STATUS_CLASSES = {
    "prospect": "text-bg-info",
    "active": "text-bg-success",
    "on_hold": "text-bg-warning",
    "archived": "text-bg-secondary",
}


@register.filter
def money(amount, currency: str) -> str:
    """``{{ product.default_price_amount|money:product.currency }}`` → ``€1,234.50`` (locale-aware)."""
    if amount is None or amount == "":
        return ""
    try:
        return format_money(amount, currency, locale=(get_language() or "en").replace("-", "_"))
    except (MoneyError, ValueError):
        return f"{amount} {currency}"


@register.filter
def iban(value: str) -> str:
    """An IBAN in groups of four, as printed: ``DE89 3704 0044 0532 0130 00``."""
    return stdnum_iban.format(value) if value else ""


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(str(status), "text-bg-light")


@register.simple_tag
def invoice_series_preview(entity, year: int | None = None) -> str:
    """The first invoice number of ``entity``'s series, e.g. ``DE-2026-000001``."""
    first = f"{1:0{entity.invoice_number_padding}d}"
    if entity.invoice_numbers_restart_yearly:
        return f"{entity.invoice_prefix}-{year or datetime.date.today().year}-{first}"
    return f"{entity.invoice_prefix}-{first}"


@register.simple_tag(takes_context=True)
def sort_query(context, key: str) -> str:
    """The query string that sorts the current list by ``key`` (toggling its direction), page reset."""
    request = context["request"]
    params = request.GET.copy()
    params.pop("page", None)
    current = params.get("ordering", "")
    params["ordering"] = f"-{key}" if current == key else key
    return "?" + params.urlencode()


@register.simple_tag(takes_context=True)
def sort_state(context, key: str) -> str:
    """``asc``, ``desc`` or ``""``: how the current list is sorted by ``key``."""
    current = context["request"].GET.get("ordering", "")
    if current == key:
        return "asc"
    if current == f"-{key}":
        return "desc"
    return ""


@register.simple_tag(takes_context=True)
def page_query(context, page: int) -> str:
    params = context["request"].GET.copy()
    params["page"] = page
    return "?" + params.urlencode()


def _widget_class(widget: forms.Widget) -> str:
    if isinstance(widget, forms.CheckboxInput):
        return "form-check-input"
    if isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple):
        return ""
    if isinstance(widget, forms.Select):
        return "form-select"
    if widget.attrs.get("type") == "color":
        return "form-control form-control-color"
    return "form-control"


@register.filter
def is_checkbox(bound_field) -> bool:
    return isinstance(bound_field.field.widget, forms.CheckboxInput)


@register.filter
def bs_widget(bound_field, size: str = ""):
    """Render a field's widget with Bootstrap's classes, ``is-invalid`` and the ARIA links to its messages."""
    widget = bound_field.field.widget
    classes = [widget.attrs.get("class", ""), _widget_class(widget)]
    if size and classes[-1] in ("form-control", "form-select"):
        classes.append(f"{classes[-1]}-{size}")
    described_by = []
    if bound_field.errors:
        classes.append("is-invalid")
        described_by.append(f"{bound_field.auto_id}_error")
    if bound_field.help_text:
        described_by.append(f"{bound_field.auto_id}_helptext")
    attrs = {"class": " ".join(c for c in classes if c)}
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    return bound_field.as_widget(attrs=attrs)


# Grid widths of inline-formset fields (Bootstrap columns on md and up); the rest take a third.
FIELD_COLS = {
    "line1": 6,
    "line2": 6,
    "label": 4,
    "kind": 4,
    "postal_code": 3,
    "city": 5,
    "region": 4,
    "country": 4,
    "number": 8,
    "first_name": 4,
    "last_name": 4,
    "email": 4,
    "phone": 4,
    "job_title": 4,
    "role": 4,
    "bank_name": 6,
    "account_holder": 6,
    "iban": 6,
    "bic": 3,
    "currency": 3,
}


@register.filter
def field_col(name: str) -> str:
    return f"col-12 col-md-{FIELD_COLS.get(name, 4)}"


QUOTE_STATUS_CLASSES = {
    "draft": "text-bg-secondary",
    "sent": "text-bg-info",
    "accepted": "text-bg-success",
    "superseded": "text-bg-light border",
    "declined": "text-bg-danger",
}
STAGE_OUTCOME_CLASSES = {"open": "text-bg-primary", "won": "text-bg-success", "lost": "text-bg-danger"}


@register.filter
def quote_status_class(status: str) -> str:
    return QUOTE_STATUS_CLASSES.get(str(status), "text-bg-light")


@register.filter
def stage_class(stage) -> str:
    return STAGE_OUTCOME_CLASSES.get(str(getattr(stage, "outcome", stage)), "text-bg-light")


@register.filter
def weighted(deal):
    """A deal's weighted value: amount x win probability / 100 (unrounded; ``money`` rounds it)."""
    return deal.amount * deal.probability / 100
