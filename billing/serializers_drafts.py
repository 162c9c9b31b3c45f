"""Serializers of the draft editing and review API (``billing.api_drafts``): what goes in (header fields, a
manual line or a discount, a line's changes, a comment) and the draft that comes back, with its lines and
the tax preview. They check types only; ``billing.drafts`` decides the rest and names the field at fault."""

from __future__ import annotations

from rest_framework import serializers

from customers.models import Product, UnitCode
from projects.serializers import named_choices
from tax.categories import PRODUCT_TAX_CATEGORIES

from .models import Invoice, InvoiceComment
from .serializers import InvoiceDetailSerializer, InvoiceLineSerializer

GroupingField = named_choices(
    "InvoiceGrouping",
    Invoice.Grouping.choices,
    "rolled_up: the lines of work rolled up by labour category and rate; detailed: one line per entry.",
)
ProductTaxCategoryField = named_choices(
    "InvoiceLineProductTaxCategory",
    PRODUCT_TAX_CATEGORIES,
    "What the line sells (the tax engine's input): S standard, AA reduced, Z zero, E exempt.",
)
LineUnitField = named_choices("InvoiceLineUnit", UnitCode.choices, "UN/ECE Recommendation 20 unit code.")
AddedLineKindField = named_choices(
    "DraftLineKind", [("manual", "Manual line"), ("discount", "Discount")], "manual or discount."
)
MANUAL_FIELDS = ("product", "quantity", "unit", "unit_price")
DISCOUNT_FIELDS = ("percent", "amount")


class DraftLineSerializer(InvoiceLineSerializer):
    product_tax_category = serializers.CharField(read_only=True)

    class Meta(InvoiceLineSerializer.Meta):
        fields = [*InvoiceLineSerializer.Meta.fields, "product_tax_category"]
        read_only_fields = fields


class InvoiceDraftSerializer(InvoiceDetailSerializer):
    """An invoice with its lines and totals (for a draft: the tax engine's preview), grouping and appendix."""

    grouping = GroupingField(read_only=True)
    lines = DraftLineSerializer(many=True, read_only=True)

    class Meta(InvoiceDetailSerializer.Meta):
        fields = [*InvoiceDetailSerializer.Meta.fields, "grouping", "detail_appendix"]
        read_only_fields = fields


class DraftHeaderSerializer(serializers.Serializer):
    """Only the fields given change; a new grouping rebuilds the lines of work."""

    po_number = serializers.CharField(required=False, allow_blank=True, help_text="Purchase order number.")
    notes = serializers.CharField(required=False, allow_blank=True, help_text="Printed on the invoice.")
    payment_terms_days = serializers.IntegerField(required=False, help_text="0 to 365 days net.")
    grouping = GroupingField(required=False)
    detail_appendix = serializers.BooleanField(required=False, help_text="Print the underlying entries.")

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                "Give at least one of po_number, notes, payment_terms_days, grouping, detail_appendix."
            )
        return attrs


class DraftLineAddSerializer(serializers.Serializer):
    """A manual line (a catalog product, or a description with quantity, unit and price) or a discount (a
    percentage of the lines' net, per VAT category, or an amount)."""

    kind = AddedLineKindField()
    product = serializers.SlugRelatedField(
        slug_field="public_id",
        queryset=Product.objects.all(),
        required=False,
        allow_null=True,
        help_text="Manual lines: a catalog product; its name, unit, price and tax category are the defaults.",
    )
    description = serializers.CharField(required=False, allow_blank=True, help_text="Client-facing.")
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    unit = LineUnitField(required=False, allow_blank=True)
    unit_price = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    product_tax_category = ProductTaxCategoryField(required=False, allow_blank=True)
    percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True, help_text="Discounts: 0 < percent ≤ 100."
    )
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, allow_null=True, help_text="Discounts: the amount off."
    )

    def validate(self, attrs):
        kind = attrs["kind"]
        foreign = DISCOUNT_FIELDS if kind == "manual" else MANUAL_FIELDS
        errors = {
            name: [f"A {'manual line' if kind == 'manual' else 'discount'} has no {name.replace('_', ' ')}."]
            for name in foreign
            if attrs.get(name) not in (None, "")
        }
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DraftLineUpdateSerializer(serializers.Serializer):
    """A line's client-facing description and phase; a manual line's quantity, price and tax category too."""

    description = serializers.CharField(required=False, allow_blank=True)
    phase = serializers.CharField(required=False, allow_blank=True)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    unit_price = serializers.DecimalField(max_digits=18, decimal_places=4, required=False)
    product_tax_category = ProductTaxCategoryField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                "Give at least one of description, phase, quantity, unit_price, product_tax_category."
            )
        return attrs


class InvoiceCommentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    author_name = serializers.SerializerMethodField()
    body = serializers.CharField(allow_blank=True, help_text="The remark; kept with the invoice, never edited.")

    class Meta:
        model = InvoiceComment
        fields = ["id", "author", "author_name", "body", "created_at"]
        read_only_fields = ["id", "author", "author_name", "created_at"]

    def get_author_name(self, comment: InvoiceComment) -> str:
        return comment.author.get_full_name() or comment.author.get_username()
