"""Forms of the draft editor and the review comments: they parse input into Python values, nothing more. The
rules (lengths, ranges, which lines may change, defaults from the catalog) live in ``billing.drafts``, whose
refusals are put back onto the fields they name (``apply_domain_errors``)."""

from __future__ import annotations

from django import forms

from backbone.errors import DomainError
from customers.models import Product, UnitCode
from tax.categories import PRODUCT_TAX_CATEGORIES

from .models import Invoice


def apply_domain_errors(form: forms.Form, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """A service's messages next to the inputs they name (``aliases`` maps a service field to a form field);
    the rest become the form's own error."""
    aliases = aliases or {}
    placed = False
    for key, values in (exc.errors or {}).items():
        name = aliases.get(key, key)
        if name in form.fields:
            for message in values if isinstance(values, list | tuple) else [values]:
                form.add_error(name, str(message))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class DraftHeaderForm(forms.Form):
    po_number = forms.CharField(label="PO number", required=False)
    payment_terms_days = forms.IntegerField(label="Payment terms (days net)")
    grouping = forms.ChoiceField(label="Lines of work", choices=Invoice.Grouping.choices)
    detail_appendix = forms.BooleanField(label="Print the detail appendix (every entry billed)", required=False)
    notes = forms.CharField(
        label="Notes printed on the invoice", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, invoice: Invoice, **kwargs) -> None:
        kwargs.setdefault("prefix", "header")
        kwargs.setdefault(
            "initial",
            {
                "po_number": invoice.po_number,
                "payment_terms_days": invoice.payment_terms_days,
                "grouping": invoice.grouping,
                "detail_appendix": invoice.detail_appendix,
                "notes": invoice.notes,
            },
        )
        super().__init__(*args, **kwargs)
        if invoice.kind == Invoice.Kind.CREDIT_NOTE:
            self.fields["grouping"].disabled = True
            self.fields["grouping"].help_text = "A credit note keeps the lines it credits."


class LineDescriptionForm(forms.Form):
    description = forms.CharField(
        label="Client-facing description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ProductChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Product) -> str:
        return f"{obj.code} — {obj.name}"


class ManualLineForm(forms.Form):
    """A catalog product (its name, unit, price and tax category are the defaults) or a described line."""

    product = ProductChoiceField(
        label="Catalog item",
        required=False,
        queryset=Product.objects.none(),
        to_field_name="public_id",
        empty_label="None: describe the line below",
    )
    description = forms.CharField(
        label="Description", required=False, help_text="Empty: the catalog item's client-facing name."
    )
    quantity = forms.DecimalField(label="Quantity", required=False, help_text="Empty: 1.")
    unit = forms.ChoiceField(label="Unit", required=False, choices=[("", "The item's unit (or C62 one)")])
    unit_price = forms.DecimalField(label="Unit price", required=False, help_text="Empty: the catalog price.")
    product_tax_category = forms.ChoiceField(
        label="Product tax category",
        required=False,
        choices=[("", "The item's category (or S standard)"), *PRODUCT_TAX_CATEGORIES],
        help_text="What the line sells; the tax engine decides the VAT (reverse charge, exports…).",
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("prefix", "manual")
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = Product.objects.filter(is_active=True).order_by("code")
        self.fields["unit"].choices = [*self.fields["unit"].choices, *UnitCode.choices]

    def arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "product": data["product"],
            "description": data["description"],
            "quantity": data["quantity"],
            "unit": data["unit"],
            "unit_price": data["unit_price"],
            "product_tax_category": data["product_tax_category"],
        }


class DiscountForm(forms.Form):
    METHODS = [("percent", "Percent of the lines' net"), ("amount", "Amount")]

    method = forms.ChoiceField(label="Discount as", choices=METHODS, initial="percent")
    value = forms.DecimalField(label="Percent or amount")
    description = forms.CharField(label="Description", required=False, help_text='Empty: "Discount 10 %".')
    product_tax_category = forms.ChoiceField(
        label="Reduces the lines of",
        required=False,
        choices=[("", "Every VAT category on the draft"), *PRODUCT_TAX_CATEGORIES],
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("prefix", "discount")
        super().__init__(*args, **kwargs)

    def arguments(self) -> dict:
        data = self.cleaned_data
        percent = data["method"] == "percent"
        return {
            "description": data["description"],
            "percent": data["value"] if percent else None,
            "amount": None if percent else data["value"],
            "product_tax_category": data["product_tax_category"],
        }

    ALIASES = {"percent": "value", "amount": "value"}


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the invoice, never edited; a project manager's comment notifies finance.",
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("prefix", "comment")
        super().__init__(*args, **kwargs)
