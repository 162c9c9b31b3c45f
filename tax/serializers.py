"""Serializers of the tax API: the shape of a tax context and of a result, so the OpenAPI schema documents both.

They check types and shapes only; the meaning (known categories, countries with rates, a tax point inside
the rates' validity) is judged by ``TaxContext.from_dict`` and the engine, whose messages come back as-is.
"""

from __future__ import annotations

from rest_framework import serializers

from tax.context import REDUCED_RATE_KINDS, LineKind, SupplyKind
from tax.models import Jurisdiction, TaxCalculation, TaxRate
from tax.rates import RATE_KINDS

_AMOUNT = {"max_digits": 18, "decimal_places": 4, "coerce_to_string": True}


class RegistrationInputSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2)
    number = serializers.CharField(max_length=40)
    valid = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Leave out to have the engine check format and check digit; true/false when you checked it.",
    )
    source = serializers.ChoiceField(choices=["format", "vies"], required=False, default="format")
    checked_on = serializers.DateField(required=False, allow_null=True, default=None)
    consultation_number = serializers.CharField(required=False, allow_blank=True, default="")


class ExemptionCertificateInputSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=100)
    reason_code = serializers.CharField(max_length=30, help_text="A VATEX code, e.g. VATEX-EU-151-1E.")
    valid_from = serializers.DateField()
    valid_to = serializers.DateField(required=False, allow_null=True, default=None)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class SellerInputSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2, help_text="ISO country of the selling legal entity.")
    registrations = RegistrationInputSerializer(many=True, required=False, default=list)
    oss_registered = serializers.BooleanField(required=False, default=False)
    eu_b2c_sales_current_year_eur = serializers.DecimalField(required=False, default="0", **_AMOUNT)
    eu_b2c_sales_previous_year_eur = serializers.DecimalField(required=False, default="0", **_AMOUNT)
    eu_b2c_threshold_exceeded = serializers.BooleanField(required=False, default=False)


class BuyerInputSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    is_business = serializers.BooleanField(required=False, default=True)
    registrations = RegistrationInputSerializer(many=True, required=False, default=list)
    exemption_certificates = ExemptionCertificateInputSerializer(many=True, required=False, default=list)


class LineInputSerializer(serializers.Serializer):
    id = serializers.CharField(
        max_length=40, required=False, help_text="Unique within the document; 1, 2, … if left out."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    net_amount = serializers.DecimalField(**_AMOUNT, help_text="Net amount in the document currency.")
    category = serializers.CharField(max_length=2, required=False, default="S", help_text="S, AA, Z or E.")
    supply_kind = serializers.ChoiceField(
        choices=SupplyKind.CHOICES, required=False, default=SupplyKind.GENERAL_SERVICE
    )
    kind = serializers.ChoiceField(choices=LineKind.CHOICES, required=False, default=LineKind.LINE)
    rate_kind = serializers.ChoiceField(choices=REDUCED_RATE_KINDS, required=False, default="reduced")
    exemption_reason_code = serializers.CharField(required=False, allow_blank=True, default="")


class TaxContextSerializer(serializers.Serializer):
    seller = SellerInputSerializer()
    buyer = BuyerInputSerializer()
    lines = LineInputSerializer(many=True)
    tax_point = serializers.DateField(help_text="The tax point (supply) date: it picks the rates in force.")
    currency = serializers.CharField(max_length=3)
    eur_rate = serializers.DecimalField(
        max_digits=18,
        decimal_places=8,
        coerce_to_string=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="EUR value of one unit of the currency; needed only for the EUR 10,000 threshold.",
    )


class LineResultSerializer(serializers.Serializer):
    line_id = serializers.CharField()
    kind = serializers.CharField()
    net_amount = serializers.DecimalField(**_AMOUNT)
    category = serializers.CharField(help_text="UNCL5305 category code.")
    rate = serializers.DecimalField(max_digits=6, decimal_places=3, coerce_to_string=True)
    place_of_supply = serializers.CharField()
    rule = serializers.CharField()
    exemption_reason_code = serializers.CharField()
    exemption_reason = serializers.CharField()


class CategoryTotalSerializer(serializers.Serializer):
    category = serializers.CharField()
    rate = serializers.DecimalField(max_digits=6, decimal_places=3, coerce_to_string=True)
    taxable_amount = serializers.DecimalField(**_AMOUNT)
    tax_amount = serializers.DecimalField(**_AMOUNT)
    exemption_reason_code = serializers.CharField()
    exemption_reason = serializers.CharField()


class TaxResultSerializer(serializers.Serializer):
    currency = serializers.CharField()
    lines = LineResultSerializer(many=True)
    breakdown = CategoryTotalSerializer(many=True)
    net_amount = serializers.DecimalField(**_AMOUNT)
    tax_amount = serializers.DecimalField(**_AMOUNT)
    gross_amount = serializers.DecimalField(**_AMOUNT)
    place_of_supply = serializers.CharField(help_text="Empty when the lines' places of supply differ.")
    legal_notes = serializers.ListField(child=serializers.CharField())
    rules_fired = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    engine = serializers.CharField()
    engine_version = serializers.CharField()
    rate_data_version = serializers.CharField()
    context_sha256 = serializers.CharField(help_text="SHA-256 of the canonical JSON of the context used.")


class TaxRateSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    country = serializers.CharField(source="jurisdiction.country", max_length=2)
    kind = serializers.ChoiceField(choices=RATE_KINDS)
    rate = serializers.DecimalField(max_digits=6, decimal_places=3, coerce_to_string=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = TaxRate
        fields = [
            "id",
            "country",
            "kind",
            "rate",
            "valid_from",
            "valid_to",
            "source",
            "source_reference",
            "note",
            "created_by",
            "created_at",
        ]
        read_only_fields = ["source", "created_at"]


class JurisdictionSerializer(serializers.ModelSerializer):
    rates = serializers.SerializerMethodField()

    class Meta:
        model = Jurisdiction
        fields = ["country", "name", "currency", "in_eu", "note", "rates"]

    def get_rates(self, obj) -> list[dict]:
        return TaxRateSerializer(obj.rates.all(), many=True).data


class TaxCalculationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    locked = serializers.BooleanField(source="is_locked", read_only=True)

    class Meta:
        model = TaxCalculation
        fields = [
            "id",
            "created_at",
            "purpose",
            "document_type",
            "document_ref",
            "locked",
            "locked_at",
            "tax_point",
            "currency",
            "place_of_supply",
            "net_amount",
            "tax_amount",
            "engine",
            "engine_version",
            "rate_data_version",
            "rules_fired",
            "legal_notes",
            "warnings",
            "sha256",
            "context",
            "result",
        ]
        read_only_fields = fields
