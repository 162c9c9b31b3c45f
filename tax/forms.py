"""Forms of the tax pages: the rate table's filters, a new rate, and the tax preview with its lines.

Forms only parse input into Python values; the rules live in ``tax.services`` (rates) and in
``TaxContext.from_dict`` plus the engine (preview). When those refuse, ``apply_errors`` and
``PreviewForm.apply_errors`` put each flat error key (``valid_from``, ``buyer.country``, ``lines.2.net_amount``)
on the input it names, so the message sits next to what the person typed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.forms.boundfield import BoundField
from django_countries import countries

from backbone.money import CURRENCY_CHOICES
from tax.categories import TaxCategory
from tax.context import REDUCED_RATE_KINDS, LineKind, SupplyKind
from tax.models import Jurisdiction
from tax.rates import RATE_KINDS
from tax.vatex import VATEX

DATE_WIDGET = {"attrs": {"type": "date"}, "format": "%Y-%m-%d"}


# --- Bootstrap rendering without template tags -----------------------------------------------------------


class BootstrapBoundField(BoundField):
    """Adds Bootstrap's classes (and ``is-invalid`` once the field has errors) to the widget.

    Django 5.2 already links the help text and the errors through ``aria-describedby`` and sets
    ``aria-invalid``; this only adds the looks. ``form.control_size = "sm"`` gives the small controls.
    """

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        if isinstance(widget, forms.CheckboxInput):
            base = "form-check-input"
        elif isinstance(widget, forms.Select):
            base = "form-select"
        else:
            base = "form-control"
        classes = [widget.attrs.get("class", ""), base]
        size = getattr(self.form, "control_size", "")
        if size and base != "form-check-input":
            classes.append(f"{base}-{size}")
        if self.errors:
            classes.append("is-invalid")
        attrs["class"] = " ".join(c for c in classes if c)
        return attrs


class BootstrapForm(forms.Form):
    bound_field_class = BootstrapBoundField
    control_size = ""


def apply_errors(errors: Mapping[str, Sequence[str]], form: forms.Form, field_map: Mapping[str, str] = ()) -> None:
    """Each flat key onto the field it names (through ``field_map`` when the names differ); the rest form-wide."""
    field_map = dict(field_map or {})
    for key, messages in errors.items():
        name = field_map.get(key, key)
        for message in messages if isinstance(messages, list | tuple) else [messages]:
            form.add_error(name if name in form.fields else None, str(message))


# --- the rate table ------------------------------------------------------------------------------------


class JurisdictionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Jurisdiction) -> str:
        return f"{obj.name} ({obj.country})"


def _jurisdictions():
    return Jurisdiction.objects.order_by("name")


class RateTableFilterForm(BootstrapForm):
    """GET filters of the rate table; an invalid value is reported by the view and otherwise ignored."""

    on = forms.DateField(label="Rates in force on", required=False, widget=forms.DateInput(**DATE_WIDGET))
    country = JurisdictionChoiceField(
        queryset=None, required=False, to_field_name="country", empty_label="All countries", label="Country"
    )
    eu_only = forms.BooleanField(label="EU member states only", required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["country"].queryset = _jurisdictions()


class TaxRateForm(BootstrapForm):
    """A new rate of a jurisdiction. Range, decimals and overlaps are judged by ``tax_rate_create``."""

    country = JurisdictionChoiceField(
        queryset=None, to_field_name="country", empty_label="Choose a country", label="Country"
    )
    kind = forms.ChoiceField(choices=RATE_KINDS, initial="standard", label="Kind of rate")
    rate = forms.DecimalField(
        label="Rate (%)",
        help_text="Percent, e.g. 19 or 25.5 (at most three decimals).",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    valid_from = forms.DateField(
        label="Valid from", help_text="The first day the rate is in force.", widget=forms.DateInput(**DATE_WIDGET)
    )
    valid_to = forms.DateField(
        label="Valid to",
        required=False,
        help_text="The last day in force; leave empty while it stays in force.",
        widget=forms.DateInput(**DATE_WIDGET),
    )
    source_reference = forms.CharField(
        label="Source reference",
        max_length=200,
        required=False,
        help_text="Where the figure comes from, e.g. a law gazette or the tax authority's page.",
    )
    note = forms.CharField(label="Note", max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["country"].queryset = _jurisdictions()

    def service_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["country"] = data["country"].country
        data["source_reference"] = data.get("source_reference") or ""
        data["note"] = data.get("note") or ""
        return data


# --- the tax preview -----------------------------------------------------------------------------------

# What a product's own category asks for (the engine may override it: reverse charge, export...).
PRODUCT_CATEGORY_CHOICES = [
    (TaxCategory.STANDARD.value, "S — Standard rate"),
    (TaxCategory.REDUCED.value, "AA — Reduced rate"),
    (TaxCategory.ZERO.value, "Z — Zero rated"),
    (TaxCategory.EXEMPT.value, "E — Exempt"),
]
REDUCED_RATE_CHOICES = [(kind, label) for kind, label in RATE_KINDS if kind in REDUCED_RATE_KINDS]
VATEX_CHOICES = [("", "(none — the default reason)"), *((code, f"{code} — {text}") for code, text in VATEX.items())]


class PreviewForm(BootstrapForm):
    """The parties and the document of a tax decision. Most fields are optional here on purpose: what is
    missing or wrong is reported by ``TaxContext.from_dict`` and the engine, in their words."""

    seller_country = JurisdictionChoiceField(
        queryset=None,
        required=False,
        to_field_name="country",
        empty_label="Choose a country",
        label="Seller's country",
        help_text="Where the selling legal entity is established.",
    )
    seller_oss_registered = forms.BooleanField(label="Seller is registered for the One-Stop Shop", required=False)
    eu_b2c_sales_current_year_eur = forms.DecimalField(
        label="Cross-border B2C sales this year (EUR)",
        required=False,
        max_digits=18,
        decimal_places=2,
        help_text="Before this document; judged against the EUR 10,000 threshold.",
    )
    eu_b2c_sales_previous_year_eur = forms.DecimalField(
        label="Cross-border B2C sales last year (EUR)", required=False, max_digits=18, decimal_places=2
    )
    eu_b2c_threshold_exceeded = forms.BooleanField(
        label="Threshold forced (treat the EUR 10,000 threshold as exceeded)", required=False
    )
    buyer_country = forms.ChoiceField(label="Buyer's country", required=False)
    buyer_is_business = forms.BooleanField(label="Buyer is a business", required=False, initial=True)
    buyer_vat_id = forms.CharField(
        label="Buyer's VAT ID",
        max_length=40,
        required=False,
        help_text="Optional, e.g. FR40303265045; checked offline (format and check digit).",
    )
    tax_point = forms.DateField(label="Tax point date", required=False, widget=forms.DateInput(**DATE_WIDGET))
    currency = forms.ChoiceField(label="Currency", choices=CURRENCY_CHOICES, initial="EUR", required=False)
    eur_rate = forms.DecimalField(
        label="EUR rate",
        required=False,
        max_digits=18,
        decimal_places=8,
        help_text="EUR per unit of the currency; only for the EUR 10,000 threshold.",
    )

    # Flat keys of TaxContext.from_dict and the engine → fields of this form.
    FIELD_MAP = {
        "seller.country": "seller_country",
        "seller.eu_b2c_sales_current_year_eur": "eu_b2c_sales_current_year_eur",
        "seller.eu_b2c_sales_previous_year_eur": "eu_b2c_sales_previous_year_eur",
        "buyer.country": "buyer_country",
        "tax_point": "tax_point",
        "currency": "currency",
        "eur_rate": "eur_rate",
    }

    def __init__(self, *args, today: dt.date, **kwargs) -> None:
        kwargs.setdefault("initial", {}).setdefault("tax_point", today)
        super().__init__(*args, **kwargs)
        self.fields["seller_country"].queryset = _jurisdictions()
        self.fields["buyer_country"].choices = [("", "Choose a country"), *countries]

    def context_data(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON form of a ``TaxContext`` (see ``TaxContext.from_dict``) from the cleaned values."""
        data = self.cleaned_data
        seller_country = data.get("seller_country")
        buyer_country = data.get("buyer_country") or ""
        registrations = []
        if data.get("buyer_vat_id") and buyer_country:
            # valid=None: the engine checks the number itself and records that it did.
            registrations.append({"country": buyer_country, "number": data["buyer_vat_id"], "valid": None})
        return {
            "seller": {
                "country": seller_country.country if seller_country else "",
                "oss_registered": bool(data.get("seller_oss_registered")),
                "eu_b2c_sales_current_year_eur": data.get("eu_b2c_sales_current_year_eur"),
                "eu_b2c_sales_previous_year_eur": data.get("eu_b2c_sales_previous_year_eur"),
                "eu_b2c_threshold_exceeded": bool(data.get("eu_b2c_threshold_exceeded")),
            },
            "buyer": {
                "country": buyer_country,
                "is_business": bool(data.get("buyer_is_business")),
                "registrations": registrations,
            },
            "lines": lines,
            "tax_point": data.get("tax_point"),
            "currency": data.get("currency") or "",
            "eur_rate": data.get("eur_rate"),
        }

    def apply_errors(self, errors: Mapping[str, Sequence[str]], lines: LineFormSet, sent: Sequence[forms.Form]) -> None:
        """Place every error of the context reader or the engine: ``lines.N.field`` on the N-th *sent* row
        (blank rows are not sent), ``lines`` on the line list, the buyer's registration on the VAT ID."""
        own: dict[str, list[str]] = {}
        for key, messages in errors.items():
            messages = list(messages) if isinstance(messages, list | tuple) else [messages]
            parts = key.split(".")
            if parts[0] == "lines" and len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < len(sent):
                row = sent[int(parts[1])]
                for message in messages:
                    row.add_error(parts[2] if parts[2] in row.fields else None, str(message))
            elif key == "lines":
                lines.extra_errors.extend(str(m) for m in messages)
            elif key.startswith("buyer.registrations."):
                own.setdefault("buyer_vat_id", []).extend(messages)
            else:
                own.setdefault(key, []).extend(messages)
        apply_errors(own, self, self.FIELD_MAP)


class LineForm(BootstrapForm):
    control_size = "sm"

    description = forms.CharField(label="Description", max_length=200, required=False)
    net_amount = forms.DecimalField(
        label="Net amount",
        required=False,
        max_digits=18,
        decimal_places=4,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    # Selects without a blank choice always send a value; not "required" so no asterisk suggests otherwise.
    category = forms.ChoiceField(label="Category", choices=PRODUCT_CATEGORY_CHOICES, initial="S", required=False)
    rate_kind = forms.ChoiceField(
        label="Reduced rate (for AA)", choices=REDUCED_RATE_CHOICES, initial="reduced", required=False
    )
    supply_kind = forms.ChoiceField(
        label="Supply", choices=SupplyKind.CHOICES, initial=SupplyKind.GENERAL_SERVICE, required=False
    )
    kind = forms.ChoiceField(label="Line kind", choices=LineKind.CHOICES, initial=LineKind.LINE, required=False)
    exemption_reason_code = forms.ChoiceField(label="Exemption reason (for E)", choices=VATEX_CHOICES, required=False)

    FIELDS = ("description", "net_amount", "category", "rate_kind", "supply_kind", "kind", "exemption_reason_code")

    def is_blank(self) -> bool:
        """A row without description and amount is left out, whatever its selects say."""
        data = getattr(self, "cleaned_data", {})
        return not data.get("description") and data.get("net_amount") is None and not self.errors


class LineFormSet(forms.BaseFormSet):
    """The preview's lines; blank rows are ignored, so a few spare rows can stay on the page."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra_errors: list[str] = []

    def rows(self) -> tuple[list[dict[str, Any]], list[LineForm]]:
        """The lines to send (JSON form) and the forms they came from, same index; ``id`` is the row number."""
        rows, sent = [], []
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or form.is_blank():
                continue
            row = {name: form.cleaned_data.get(name) for name in LineForm.FIELDS}
            row["id"] = str(index + 1)
            row["description"] = row["description"] or ""
            row["exemption_reason_code"] = row["exemption_reason_code"] or ""
            row = {name: value for name, value in row.items() if value not in (None, "") or name == "net_amount"}
            rows.append(row)
            sent.append(form)
        return rows, sent

    def all_errors(self) -> list[str]:
        return [*self.non_form_errors(), *self.extra_errors]


def line_formset(*, extra: int = 3):
    return forms.formset_factory(LineForm, formset=LineFormSet, extra=extra, max_num=50, validate_max=True)
