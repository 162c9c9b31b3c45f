"""API representations of customers, contacts, the catalog and our legal entities.

Serializers only parse and present: types, choices and lengths. Every business rule (countries, VAT numbers,
IBANs, the one billing address, who may change what) is checked by the services, which report errors under
the same flat keys the API returns (``addresses.1.country``). Model-level validators (regexes, uniqueness)
are therefore left to the services too, so that one rule has one message.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backbone.models import ExternalId
from backbone.money import CURRENCY_CHOICES
from tax.categories import PRODUCT_TAX_CATEGORIES
from tax.context import SupplyKind

from .models import (
    Address,
    BankAccount,
    BillingModel,
    Contact,
    Customer,
    Deal,
    ExemptionCertificate,
    LegalEntity,
    LegalEntityRegistration,
    PipelineStage,
    Product,
    Quote,
    QuoteAttachment,
    TaxRegistration,
    UnitCode,
)
from .selectors import customers_visible_to, deals_visible_to, legal_entities_visible_to, products_visible_to

COUNTRY_HELP = "ISO 3166-1 alpha-2 country code, e.g. DE, FR, GB."


@extend_schema_field(
    {"type": "string", "enum": [code for code, _ in CURRENCY_CHOICES], "description": "ISO 4217 currency code."},
    component_name="Currency",
)
class CurrencyField(serializers.ChoiceField):
    """One schema component for every currency field (``currency``, ``default_currency``)."""

    def __init__(self, **kwargs):
        kwargs["choices"] = CURRENCY_CHOICES
        super().__init__(**kwargs)


class ServiceModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that leaves model validators (regexes, unique checks) to the services."""

    def build_standard_field(self, field_name, model_field):
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        field_kwargs.pop("validators", None)
        if model_field.choices == CURRENCY_CHOICES:
            field_class = CurrencyField
            field_kwargs.pop("choices", None)
        return field_class, field_kwargs

    def get_validators(self):
        return []


class PublicIdRelatedField(serializers.SlugRelatedField):
    """A reference to another record by its public ID; the choices are what the requesting user may see.

    ``scope`` maps the user to the visible queryset (a ``*_visible_to`` selector); without a request (schema
    generation) the class-level queryset is used.
    """

    def __init__(self, *, scope=None, **kwargs):
        self.scope = scope
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        if self.scope is not None and request is not None:
            return self.scope(request.user)
        return super().get_queryset()

    def to_internal_value(self, data):
        try:
            public_id = uuid.UUID(str(data))
        except (TypeError, ValueError, AttributeError):
            self.fail("invalid")
        try:
            return self.get_queryset().get(public_id=public_id)
        except self.get_queryset().model.DoesNotExist:
            self.fail("does_not_exist", slug_name="id", value=str(data))


def _public_id_field(**kwargs) -> serializers.UUIDField:
    return serializers.UUIDField(source="public_id", **kwargs)


class CustomerExternalIdSerializer(serializers.Serializer):
    system = serializers.CharField(max_length=40, help_text="Upstream system slug, e.g. 'hubspot'.")
    external_id = serializers.CharField(max_length=200)


class ExternalIdsField(serializers.ListField):
    """A customer's external IDs. Read from ``_api_external_ids`` when the view attached them for a whole
    page (one query per page); written once and never changed."""

    child = CustomerExternalIdSerializer()

    def get_attribute(self, instance):
        links = getattr(instance, "_api_external_ids", None)
        if links is None:
            links = ExternalId.objects.filter(
                content_type=ContentType.objects.get_for_model(Customer), object_id=instance.pk
            ).order_by("system")
        return [{"system": link.system, "external_id": link.external_id} for link in links]


# --- customers ----------------------------------------------------------------------------------------


class AddressSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this address; leave it out to add one.")
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)

    class Meta:
        model = Address
        fields = ["id", "kind", "label", "line1", "line2", "postal_code", "city", "region", "country"]


class TaxRegistrationSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this registration; leave it out to add one.")
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)
    number = serializers.CharField(
        max_length=40, help_text="Validated and stored normalised (country prefix, no spaces)."
    )

    class Meta:
        model = TaxRegistration
        fields = ["id", "kind", "country", "number", "validated_at"]
        read_only_fields = ["validated_at"]


class CustomerContactSerializer(ServiceModelSerializer):
    id = _public_id_field(required=False, help_text="Give it to change this contact; leave it out to add one.")

    class Meta:
        model = Contact
        fields = [
            "id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "job_title",
            "role",
            "receives_invoices",
            "receives_reminders",
            "is_active",
        ]


class ExemptionCertificateSerializer(ServiceModelSerializer):
    """Read-only here: certificates are kept on the customer page by finance."""

    id = _public_id_field(read_only=True)
    country = serializers.CharField(
        read_only=True, allow_blank=True, help_text="Where it exempts (ISO code); empty: wherever supplied."
    )
    reason_text = serializers.CharField(read_only=True, help_text="The text printed on invoices.")
    has_document = serializers.SerializerMethodField(help_text="Whether a scan of the certificate is on file.")

    class Meta:
        model = ExemptionCertificate
        fields = [
            "id",
            "reference",
            "reason_code",
            "reason",
            "reason_text",
            "country",
            "valid_from",
            "valid_to",
            "has_document",
        ]
        read_only_fields = fields

    def get_has_document(self, certificate: ExemptionCertificate) -> bool:
        return bool(certificate.document)


class CustomerSerializer(ServiceModelSerializer):
    """A customer with its addresses, tax registrations, contacts and external IDs.

    On update, a nested list that is present replaces the current rows: items with an ``id`` change that
    row, items without one are added, rows left out are deleted. A list that is absent is left alone.
    """

    id = _public_id_field(read_only=True)
    status = serializers.ChoiceField(
        choices=Customer.Status.choices,
        required=False,
        help_text="On create: prospect (default) or active. Later changes go through POST …/status/.",
    )
    display_name = serializers.CharField(
        max_length=120, required=False, allow_blank=True, help_text="Defaults to the legal name."
    )
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        allow_null=True,
        help_text="Username of the sales rep who owns the account; defaults to the creating sales rep.",
    )
    parent = PublicIdRelatedField(
        queryset=Customer.objects.all(),
        scope=customers_visible_to,
        required=False,
        allow_null=True,
        help_text="ID of the group parent customer.",
    )
    billing_entity = PublicIdRelatedField(
        queryset=LegalEntity.objects.all(),
        scope=legal_entities_visible_to,
        required=False,
        allow_null=True,
        help_text="ID of our legal entity that bills this customer by default.",
    )
    addresses = AddressSerializer(many=True, required=False, help_text="Exactly one of kind 'billing'.")
    registrations = TaxRegistrationSerializer(many=True, required=False)
    contacts = CustomerContactSerializer(many=True, required=False)
    exemption_certificates = ExemptionCertificateSerializer(
        many=True, read_only=True, help_text="Tax exemption certificates; read-only (kept on the customer page)."
    )
    external_ids = ExternalIdsField(
        required=False, help_text="Upstream IDs; linked once, never changed or moved to another customer."
    )
    reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500, help_text="Why; kept in the history."
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "number",
            "legal_name",
            "display_name",
            "kind",
            "status",
            "owner",
            "parent",
            "billing_entity",
            "default_currency",
            "payment_terms_days",
            "early_discount_percent",
            "early_discount_days",
            "invoice_language",
            "delivery_channel",
            "consolidation",
            "purchase_order_required",
            "einvoice_endpoint",
            "notes",
            "addresses",
            "registrations",
            "contacts",
            "exemption_certificates",
            "external_ids",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["number", "created_at", "updated_at"]


class CustomerStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Customer.Status.choices)
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Required when archiving."
    )


# --- contacts -----------------------------------------------------------------------------------------


class ContactSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    customer = PublicIdRelatedField(
        queryset=Customer.objects.all(),
        scope=customers_visible_to,
        required=False,
        help_text="ID of the customer: required on create, cannot change later.",
    )
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        if self.instance is None and attrs.get("customer") is None:
            raise serializers.ValidationError({"customer": ["Say which customer the contact belongs to."]})
        if self.instance is not None and attrs.get("customer") not in (None, self.instance.customer):
            raise serializers.ValidationError(
                {"customer": ["A contact stays with its customer; add a new contact to the other customer."]}
            )
        return attrs

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "first_name",
            "last_name",
            "email",
            "phone",
            "job_title",
            "role",
            "receives_invoices",
            "receives_reminders",
            "is_active",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


# --- catalog ------------------------------------------------------------------------------------------


class ProductSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = Product
        fields = [
            "id",
            "code",
            "name",
            "description",
            "kind",
            "unit",
            "default_price_amount",
            "currency",
            "pricing_rule",
            "revenue_account",
            "default_tax_category",
            "revenue_recognition",
            "is_active",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"code": {"help_text": "Capital letters, digits, '.', '_' or '-'; stored upper-case."}}


# --- our legal entities -------------------------------------------------------------------------------


class LegalEntityRegistrationSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)

    class Meta:
        model = LegalEntityRegistration
        fields = ["id", "kind", "country", "number", "is_oss_registered"]


class BankAccountSerializer(ServiceModelSerializer):
    id = _public_id_field(read_only=True)
    # Longer than the stored forms: the service accepts spaces and stores the compact IBAN and BIC.
    iban = serializers.CharField(max_length=50, help_text="IBAN; spaces allowed, stored compact.")
    bic = serializers.CharField(max_length=20, help_text="BIC, 8 or 11 characters.")

    class Meta:
        model = BankAccount
        fields = ["id", "bank_name", "account_holder", "iban", "bic", "currency", "is_default"]


class LegalEntitySerializer(ServiceModelSerializer):
    """One of our billing companies. Nested lists, when present on update, replace the current rows."""

    id = _public_id_field(read_only=True)
    country = serializers.CharField(max_length=2, help_text=COUNTRY_HELP)
    logo = serializers.ImageField(read_only=True, help_text="Uploaded on the legal entity page.")
    registrations = LegalEntityRegistrationSerializer(many=True, required=False)
    bank_accounts = BankAccountSerializer(many=True, required=False)
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = LegalEntity
        fields = [
            "id",
            "legal_name",
            "short_name",
            "line1",
            "line2",
            "postal_code",
            "city",
            "region",
            "country",
            "default_currency",
            "email",
            "website",
            "company_register",
            "logo",
            "brand_colour",
            "invoice_prefix",
            "invoice_number_padding",
            "invoice_numbers_restart_yearly",
            "is_active",
            "registrations",
            "bank_accounts",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


# --- deals and quotes ---------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "string",
        "enum": BillingModel.values,
        "description": "How the line is billed: " + "; ".join(f"{v} = {label}" for v, label in BillingModel.choices),
    },
    component_name="QuoteBillingModel",
)
class BillingModelField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        kwargs["choices"] = BillingModel.choices
        super().__init__(**kwargs)


@extend_schema_field(
    {
        "type": "string",
        "enum": [value for value, _ in PRODUCT_TAX_CATEGORIES],
        "description": "The VAT category the line asks for (UNCL5305): S, AA, Z or E; the tax engine decides "
        "reverse charge, exports and the like.",
    },
    component_name="QuoteLineTaxCategory",
)
class LineTaxCategoryField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        kwargs["choices"] = PRODUCT_TAX_CATEGORIES
        super().__init__(**kwargs)


@extend_schema_field(
    {
        "type": "string",
        "enum": Quote.Status.values,
        "description": "draft → sent → accepted; superseded by a newer version; declined when the deal is lost.",
    },
    component_name="QuoteStatus",
)
class QuoteStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        kwargs["choices"] = Quote.Status.choices
        super().__init__(**kwargs)


class DealSerializer(ServiceModelSerializer):
    """A deal. The stage is given on create only; later it moves through POST …/stage/."""

    id = _public_id_field(read_only=True)
    customer = PublicIdRelatedField(
        queryset=Customer.objects.all(), scope=customers_visible_to, help_text="ID of the customer."
    )
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="Username of the sales rep who owns the deal; defaults to you (admins may name another).",
    )
    legal_entity = PublicIdRelatedField(
        queryset=LegalEntity.objects.all(),
        scope=legal_entities_visible_to,
        required=False,
        help_text="ID of our legal entity that delivers; defaults to the customer's billing entity.",
    )
    stage = serializers.SlugRelatedField(
        slug_field="code",
        queryset=PipelineStage.objects.all(),
        required=False,
        help_text="Stage code (e.g. qualified). On create only: the first open stage when left out.",
    )
    stage_name = serializers.CharField(source="stage.name", read_only=True)
    outcome = serializers.CharField(source="stage.outcome", read_only=True, help_text="open, won or lost.")
    probability = serializers.IntegerField(
        required=False, min_value=0, max_value=100, help_text="Win probability %; the stage's default when left out."
    )
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, min_value=0)
    currency = CurrencyField(required=False, help_text="ISO 4217 code; the customer's currency when left out.")
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = Deal
        fields = [
            "id",
            "number",
            "title",
            "customer",
            "owner",
            "legal_entity",
            "stage",
            "stage_name",
            "outcome",
            "probability",
            "amount",
            "currency",
            "expected_close_date",
            "next_step",
            "lost_reason",
            "closed_at",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["number", "lost_reason", "closed_at", "created_at", "updated_at"]


class DealStageSerializer(serializers.Serializer):
    stage = serializers.SlugRelatedField(
        slug_field="code", queryset=PipelineStage.objects.all(), help_text="Stage code, e.g. proposal or lost."
    )
    lost_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Required when moving to the lost stage."
    )
    probability = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=100, help_text="Default: the stage's probability."
    )


class QuoteLineSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    product = PublicIdRelatedField(
        queryset=Product.objects.all(),
        scope=products_visible_to,
        required=False,
        allow_null=True,
        help_text="ID of a catalog product.",
    )
    description = serializers.CharField(
        max_length=300, required=False, allow_blank=True, help_text="The product's name when left out."
    )
    phase = serializers.CharField(max_length=120, required=False, allow_blank=True)
    billing_model = BillingModelField(required=False)
    labour_category = serializers.CharField(
        max_length=80, required=False, allow_blank=True, help_text="Required for time & materials lines."
    )
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    unit = serializers.ChoiceField(choices=UnitCode.choices, required=False, help_text="UN/ECE Rec. 20 unit code.")
    unit_price = serializers.DecimalField(max_digits=18, decimal_places=4, required=False, allow_null=True)
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)
    tax_category = LineTaxCategoryField(required=False)
    supply_kind = serializers.ChoiceField(choices=SupplyKind.CHOICES, required=False)
    net_amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        read_only=True,
        help_text="quantity x unit price (plus the expense markup) less the discount, rounded once.",
    )


class QuoteMilestoneSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    phase = serializers.CharField(max_length=120, required=False, allow_blank=True)
    planned_date = serializers.DateField(required=False, allow_null=True)
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, allow_null=True, help_text="For fixed-fee work; else 0."
    )
    acceptance_criteria = serializers.CharField(required=False, allow_blank=True)


class QuoteSerializer(ServiceModelSerializer):
    """A version of the offer on a deal, with its lines and milestones. Lines and milestones given on update
    replace the current ones; left out, they stay. Only drafts change."""

    id = _public_id_field(read_only=True)
    deal = PublicIdRelatedField(
        queryset=Deal.objects.all(),
        scope=deals_visible_to,
        required=False,
        help_text="ID of the deal: required on create, cannot change later.",
    )
    deal_number = serializers.CharField(source="deal.number", read_only=True)
    status = QuoteStatusField(read_only=True)
    currency = CurrencyField(required=False, help_text="ISO 4217 code; the deal's currency when left out.")
    valid_until = serializers.DateField(required=False, help_text="30 days from today when left out.")
    payment_terms_days = serializers.IntegerField(required=False, min_value=0, max_value=365)
    retainer_amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    expense_markup_percent = serializers.DecimalField(max_digits=6, decimal_places=2, required=False)
    lines = QuoteLineSerializer(many=True, required=False)
    milestones = QuoteMilestoneSerializer(many=True, required=False)
    net_amount = serializers.SerializerMethodField(help_text="The sum of the lines' net amounts.")
    has_pdf = serializers.SerializerMethodField(help_text="Whether the PDF (rendered once when sent) is stored.")
    accepted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reason = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)

    class Meta:
        model = Quote
        fields = [
            "id",
            "deal",
            "deal_number",
            "version",
            "status",
            "currency",
            "valid_until",
            "payment_terms_days",
            "po_number",
            "po_required",
            "portal_required",
            "planned_start",
            "planned_end",
            "retainer_amount",
            "expense_markup_percent",
            "terms",
            "lines",
            "milestones",
            "net_amount",
            "sent_at",
            "accepted_at",
            "accepted_by",
            "customer_signatory",
            "has_pdf",
            "pdf_sha256",
            "reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "version",
            "status",
            "sent_at",
            "accepted_at",
            "customer_signatory",
            "pdf_sha256",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs):
        if self.instance is None and attrs.get("deal") is None:
            raise serializers.ValidationError({"deal": ["Say which deal the quote is for."]})
        if self.instance is not None and attrs.get("deal") not in (None, self.instance.deal):
            raise serializers.ValidationError({"deal": ["A quote stays with its deal."]})
        return attrs

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=2))
    def get_net_amount(self, quote: Quote) -> str:
        total = sum((line.net_amount for line in quote.lines.all()), Decimal("0"))
        return format(total, "f")

    def get_has_pdf(self, quote: Quote) -> bool:
        return bool(quote.pdf)


class QuoteAcceptSerializer(serializers.Serializer):
    customer_signatory = serializers.CharField(
        required=False, allow_blank=True, max_length=120, help_text="Who accepted on the customer's side."
    )


class QuoteAttachmentSerializer(serializers.ModelSerializer):
    id = _public_id_field(read_only=True)
    file = serializers.FileField(write_only=True, help_text="PDF, JPEG, PNG, DOCX, XLSX or ODT; at most 10 MB.")
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = QuoteAttachment
        fields = ["id", "kind", "file", "filename", "content_type", "size", "sha256", "uploaded_by", "created_at"]
        read_only_fields = ["filename", "content_type", "size", "sha256", "created_at"]
